//! `diagnose` against real three-member etcd 3.4 clusters, each in a state
//! with a known finding.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::Duration;

use etcd_tools::diagnose::{Code, DiagnoseOptions, DiagnosisReport, Severity, diagnose};
use testenv::{EtcdCluster, EtcdOptions};

/// Every test is bounded in time.
async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(180), future)
        .await
        .expect("test took longer than 180 s")
}

fn options(cluster: &EtcdCluster) -> DiagnoseOptions {
    let mut options = DiagnoseOptions::new(cluster.endpoints());
    options.connect = etcd_tools::diagnose::ConnectOptions {
        dial_timeout: Duration::from_secs(2),
        request_timeout: Some(Duration::from_secs(10)),
        keep_alive_interval: None,
        ..cluster.connect_options().unwrap()
    };
    options
}

fn codes(report: &DiagnosisReport) -> Vec<String> {
    report
        .findings
        .iter()
        .map(|f| format!("{} {:?} {:?}: {}", f.code, f.severity, f.member, f.evidence))
        .collect()
}

fn finding_for<'a>(
    report: &'a DiagnosisReport,
    code: Code,
    member: &str,
) -> &'a etcd_tools::diagnose::Finding {
    report
        .findings
        .iter()
        .find(|f| f.code == code && f.member.as_deref() == Some(member))
        .unwrap_or_else(|| panic!("no {code} for {member}: {:#?}", codes(report)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cluster_has_no_warning() {
    bounded(async {
        let cluster = EtcdCluster::start(3).await.unwrap();
        let client = cluster.client().await.unwrap();
        for i in 0..20 {
            client
                .put(format!("/registry/pods/default/p{i}"), "x")
                .await
                .unwrap();
        }
        let report = diagnose(&options(&cluster)).await;
        assert_eq!(report.count(Severity::Warning), 0, "{:#?}", codes(&report));
        assert_eq!(report.reachable, 3);
        assert_eq!(report.membership.len(), 3);
        assert!(report.leader.is_some());
        let hash = report.hash_kv.as_ref().expect("HashKV compared");
        assert!(hash.consistent);
        for member in &report.members {
            assert!(member.reachable, "{member:?}");
            assert!(member.linearizable_read_ms.is_some(), "{member:?}");
            assert!(member.serializable_read_ms.is_some(), "{member:?}");
            assert!(member.hash_kv.is_some());
            // /metrics was fetched and read: etcd's own histograms are there.
            let metrics = member.metrics.as_ref().expect("metrics");
            assert!(
                metrics.backend_commit.is_some_and(|s| s.count > 0),
                "{metrics:?}"
            );
            assert_eq!(metrics.has_leader, Some(1.0));
            assert_eq!(metrics.quota_backend_bytes, Some(2147483648.0));
            assert_eq!(metrics.unreadable_lines, 0);
            let status = member.status.as_ref().unwrap();
            assert_eq!(status.db_size_quota, Some(2147483648));
            assert_eq!(status.leader, *report.leader.as_ref().unwrap());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_member_is_unreachable_and_quorum_at_risk() {
    bounded(async {
        let mut cluster = EtcdCluster::start(3).await.unwrap();
        cluster.kill(2).unwrap();
        let mut options = options(&cluster);
        // Discover from a live member: the dead one is still in the member list.
        options.endpoints = vec![cluster.member(0).unwrap().client_url.clone()];
        options.cluster = true;
        let report = diagnose(&options).await;
        assert_eq!(report.members.len(), 3, "{:#?}", report.members);
        assert_eq!(report.reachable, 2);
        let finding = finding_for(&report, Code::EndpointUnreachable, "m2");
        assert_eq!(finding.severity, Severity::Error);
        assert!(
            finding
                .evidence
                .contains(&cluster.member(2).unwrap().client_url)
        );
        assert!(report.has(Code::QuorumAtRisk), "{:#?}", codes(&report));
        assert!(!report.has(Code::QuorumLost), "{:#?}", codes(&report));
        assert!(!report.is_healthy());
        // The survivors still agree with each other.
        assert!(report.hash_kv.as_ref().unwrap().consistent);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nospace_alarm_is_reported_with_the_quota() {
    bounded(async {
        let cluster = EtcdCluster::start_with(EtcdOptions {
            quota_backend_bytes: Some(4 * 1024 * 1024),
            ..EtcdOptions::members(3)
        })
        .await
        .unwrap();
        let client = cluster.client().await.unwrap();
        let value = vec![b'v'; 100 * 1024];
        let mut filled = false;
        for i in 0..400 {
            match client.put(format!("/fill/{i}"), value.clone()).await {
                Ok(_) => {}
                Err(etcd_rpc::Error::NoSpace { .. }) => {
                    filled = true;
                    break;
                }
                Err(error) => panic!("put {i}: {error}"),
            }
        }
        assert!(filled, "the 4 MiB quota never filled up");
        let report = diagnose(&options(&cluster)).await;
        assert!(
            report.alarms.iter().any(|a| a.alarm == "NOSPACE"),
            "{:?}",
            report.alarms
        );
        let nospace = report
            .findings
            .iter()
            .find(|f| f.code == Code::AlarmNospace)
            .unwrap_or_else(|| panic!("{:#?}", codes(&report)));
        assert_eq!(nospace.severity, Severity::Error);
        assert!(nospace.remedy.contains("alarm disarm"));
        assert!(report.has(Code::DbQuota), "{:#?}", codes(&report));
        assert!(!report.is_healthy());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmentation_after_deletes_and_compaction() {
    bounded(async {
        let cluster = EtcdCluster::start(3).await.unwrap();
        let client = cluster.client().await.unwrap();
        let value = vec![b'f'; 200 * 1024];
        for i in 0..300 {
            client
                .put(format!("/frag/{i:04}"), value.clone())
                .await
                .unwrap();
        }
        let deleted = client.delete_prefix("/frag/").await.unwrap();
        let revision = deleted.header.unwrap().revision;
        client.compact(revision, true).await.unwrap();
        // Compaction frees pages in batches on each member; wait until every
        // member reports the space free.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let report = loop {
            let report = diagnose(&options(&cluster)).await;
            let fragmented = report
                .findings
                .iter()
                .filter(|f| f.code == Code::DbFragmented)
                .count();
            if fragmented == 3 || tokio::time::Instant::now() > deadline {
                break report;
            }
            // bbolt frees the compacted pages only once later write
            // transactions no longer need them: a live cluster keeps writing.
            client.put("/after-compaction", "x").await.unwrap();
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        for name in ["m0", "m1", "m2"] {
            let finding = finding_for(&report, Code::DbFragmented, name);
            assert_eq!(finding.severity, Severity::Warning);
            assert!(finding.remedy.contains("defrag"));
        }
        // Fragmentation alone is not an error; HashKV still compares (at the
        // newest revision when the common one is the compacted one).
        assert!(report.is_healthy(), "{:#?}", codes(&report));
        assert!(report.hash_kv.as_ref().unwrap().consistent);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_restored_from_an_older_snapshot_diverges() {
    bounded(async {
        let mut cluster = EtcdCluster::start(3).await.unwrap();
        let client = cluster.client().await.unwrap();
        for i in 0..50 {
            client
                .put(format!("/registry/configmaps/ns/c{i}"), format!("v1-{i}"))
                .await
                .unwrap();
        }
        let snapshot = cluster.dir().join("older.db");
        cluster.etcdctl_snapshot_save(&snapshot).unwrap();
        for i in 0..50 {
            client
                .put(format!("/registry/configmaps/ns/c{i}"), format!("v2-{i}"))
                .await
                .unwrap();
        }
        client
            .delete_prefix("/registry/configmaps/ns/c1")
            .await
            .unwrap();
        drop(client);
        // The operator mistake: one member "restored" from an old snapshot of
        // its own cluster while the others keep running.
        cluster
            .restore_member_from_snapshot(2, &snapshot)
            .await
            .unwrap();

        let report = diagnose(&options(&cluster)).await;
        let finding = finding_for(&report, Code::HashkvMismatch, "m2");
        assert_eq!(finding.severity, Severity::Error);
        assert!(
            !report
                .findings
                .iter()
                .any(|f| f.code == Code::HashkvMismatch && f.member.as_deref() != Some("m2")),
            "{:#?}",
            codes(&report)
        );
        assert!(!report.hash_kv.as_ref().unwrap().consistent);
        assert!(!report.is_healthy());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_with_client_certificates() {
    bounded(async {
        let cluster = EtcdCluster::start_with(EtcdOptions {
            tls: true,
            ..EtcdOptions::members(3)
        })
        .await
        .unwrap();
        let report = diagnose(&options(&cluster)).await;
        assert_eq!(report.reachable, 3, "{:#?}", codes(&report));
        assert_eq!(report.count(Severity::Warning), 0, "{:#?}", codes(&report));
        for member in &report.members {
            assert!(member.endpoint.starts_with("https://"));
            // /metrics over the same TLS, with the client certificate.
            assert!(member.metrics.is_some(), "{member:?}");
        }

        // Without the client certificate the members refuse us: nothing answers.
        let mut no_cert = options(&cluster);
        if let Some(tls) = no_cert.connect.tls.as_mut() {
            tls.client_cert_pem = None;
            tls.client_key_pem = None;
        }
        let refused = diagnose(&no_cert).await;
        assert_eq!(refused.reachable, 0);
        assert!(
            refused.has(Code::ClusterUnreachable),
            "{:#?}",
            codes(&refused)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authentication_with_user_and_password() {
    bounded(async {
        let cluster = EtcdCluster::start(3).await.unwrap();
        let client = cluster.client().await.unwrap();
        client.role_add("root").await.unwrap();
        client.user_add("root", "s3cret-pass").await.unwrap();
        client.user_grant_role("root", "root").await.unwrap();
        client.auth_enable().await.unwrap();

        let mut with_password = options(&cluster);
        with_password.connect.user = Some("root".to_string());
        with_password.connect.password = Some("s3cret-pass".to_string());
        let report = diagnose(&with_password).await;
        assert_eq!(report.reachable, 3, "{:#?}", codes(&report));
        assert_eq!(report.count(Severity::Warning), 0, "{:#?}", codes(&report));
        assert!(report.hash_kv.as_ref().unwrap().consistent);
        // The password is in no part of the report.
        let json = serde_json::to_string(&report).unwrap();
        assert!(!json.contains("s3cret-pass"));
        assert!(!format!("{with_password:?}").contains("s3cret-pass"));

        let mut wrong = with_password.clone();
        wrong.connect.password = Some("wrong".to_string());
        let report = diagnose(&wrong).await;
        assert_eq!(report.reachable, 0);
        // Nothing could be asked, not even the member names: endpoints name them.
        for endpoint in cluster.endpoints() {
            finding_for(&report, Code::AuthFailed, &endpoint);
        }
        assert!(!report.has(Code::QuorumLost), "{:#?}", codes(&report));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unstarted_member_and_learner() {
    bounded(async {
        let cluster = EtcdCluster::start(3).await.unwrap();
        let client = cluster.client().await.unwrap();
        let free_peer_url = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        // etcd refuses a member change unless every member is connected, so
        // one unstarted member at a time: first a learner that never starts …
        let learner = add_member(&client, free_peer_url(), true).await;
        let learner_id = learner.member.unwrap().id;
        let report = diagnose(&options(&cluster)).await;
        assert_eq!(report.membership.len(), 4);
        let learner_hex = format!("{learner_id:x}");
        assert_eq!(
            finding_for(&report, Code::MemberUnstarted, &learner_hex).severity,
            Severity::Warning
        );
        finding_for(&report, Code::MemberLearner, &learner_hex);
        // A learner does not vote: quorum is not at risk.
        assert!(!report.has(Code::QuorumAtRisk), "{:#?}", codes(&report));
        assert!(report.is_healthy(), "{:#?}", codes(&report));

        // … then a voting member that never starts.
        client.member_remove(learner_id).await.unwrap();
        let voter = add_member(&client, free_peer_url(), false).await;
        let voter_hex = format!("{:x}", voter.member.unwrap().id);
        let report = diagnose(&options(&cluster)).await;
        finding_for(&report, Code::MemberUnstarted, &voter_hex);
        // Four voters, one never started: one more failure loses quorum.
        let risk = report
            .findings
            .iter()
            .find(|f| f.code == Code::QuorumAtRisk)
            .unwrap_or_else(|| panic!("{:#?}", codes(&report)));
        assert!(
            risk.evidence.starts_with("1 of 4 voting members"),
            "{}",
            risk.evidence
        );
        assert!(!report.has(Code::MemberLearner), "{:#?}", codes(&report));
    })
    .await;
}

/// `member add`, retried while etcd calls the cluster unhealthy: it wants every
/// member connected for 5 s first, longer than a fresh cluster has been up.
async fn add_member(
    client: &etcd_rpc::Client,
    peer_url: String,
    learner: bool,
) -> etcd_rpc::proto::MemberAddResponse {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match client.member_add(vec![peer_url.clone()], learner).await {
            Ok(added) => return added,
            Err(etcd_rpc::Error::Unavailable { .. }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(error) => panic!("member add {peer_url}: {error}"),
        }
    }
}
