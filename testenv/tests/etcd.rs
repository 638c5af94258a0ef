//! Behaviour against real etcd 3.4 members on loopback.
//!
//! Needs `etcd` and `etcdctl` 3.4 (`apt-get install etcd-server etcd-client`).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use etcd_rpc::proto::{WatchCreateRequest, authpb};
use etcd_rpc::{Client, ConnectOptions, EventType};
use sha2::{Digest, Sha256};
use testenv::{EtcdCluster, EtcdOptions, ValueSizes, Workload};

fn etcdctl_output(command: &mut Command) -> String {
    let output = command.output().expect("etcdctl runs");
    assert!(
        output.status.success(),
        "etcdctl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Asserts the file ends with the SHA-256 of everything before it, as
/// `etcdctl snapshot save` files do, and returns its size.
fn assert_snapshot_file(path: &Path) -> u64 {
    let bytes = std::fs::read(path).expect("snapshot readable");
    assert_eq!(
        bytes.len() % 512,
        32,
        "size {} of {}",
        bytes.len(),
        path.display()
    );
    let (db, trailer) = bytes.split_at(bytes.len() - 32);
    assert_eq!(
        Sha256::digest(db).as_slice(),
        trailer,
        "sha256 trailer of {}",
        path.display()
    );
    bytes.len() as u64
}

#[tokio::test]
async fn single_member_serves_rpc_and_etcdctl() {
    let cluster = EtcdCluster::start(1).await.unwrap();
    assert_eq!(cluster.endpoints().len(), 1);
    assert!(cluster.endpoints()[0].starts_with("http://127.0.0.1:"));
    let member = &cluster.members()[0];
    assert!(member.db_path().exists(), "{}", member.db_path().display());
    assert!(member.log.exists());

    let client = cluster.client().await.unwrap();
    let status = client.status().await.unwrap();
    assert!(status.version.starts_with("3.4."), "{}", status.version);

    let put = client.put("/salvor/rpc", "from-rpc").await.unwrap();
    assert_eq!(put.header.unwrap().revision, 2);
    let got = client.get("/salvor/rpc").await.unwrap().unwrap();
    assert_eq!(got.value, b"from-rpc");
    assert_eq!(got.create_revision, 2);
    assert_eq!(client.get("/salvor/missing").await.unwrap(), None);

    let value =
        etcdctl_output(
            cluster
                .etcdctl()
                .args(["get", "/salvor/rpc", "--print-value-only"]),
        );
    assert_eq!(value.trim(), "from-rpc");
    etcdctl_output(
        cluster
            .etcdctl()
            .args(["put", "/salvor/ctl", "from-etcdctl"]),
    );
    let got = client.get("/salvor/ctl").await.unwrap().unwrap();
    assert_eq!(got.value, b"from-etcdctl");

    let listed = client.get_prefix("/salvor/").await.unwrap();
    assert_eq!(listed.count, 2);
    assert_eq!(listed.kvs[0].key, b"/salvor/ctl");
    let deleted = client.delete_prefix("/salvor/").await.unwrap();
    assert_eq!(deleted.deleted, 2);

    let dir = cluster.dir().to_path_buf();
    let endpoint = cluster.endpoints()[0].clone();
    drop(cluster);
    assert!(!dir.exists(), "temporary directory removed on drop");
    let address = endpoint.trim_start_matches("http://");
    assert!(TcpStream::connect(address).is_err(), "etcd killed on drop");
}

#[tokio::test]
async fn three_members_survive_kill_and_restart() {
    let mut cluster = EtcdCluster::start(3).await.unwrap();
    let client = cluster.client().await.unwrap();
    let members = client.member_list().await.unwrap().members;
    assert_eq!(members.len(), 3);
    let mut names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["m0", "m1", "m2"]);
    assert!(
        members
            .iter()
            .all(|m| m.client_urls.len() == 1 && !m.is_learner)
    );

    let mut statuses = Vec::new();
    for index in 0..3 {
        let status = cluster
            .member_client(index)
            .await
            .unwrap()
            .status()
            .await
            .unwrap();
        statuses.push(status);
    }
    let leader = statuses[0].leader;
    assert!(leader != 0 && statuses.iter().all(|status| status.leader == leader));
    // Kill a follower: killing the leader would make writes in flight time out
    // on the server (etcd's own behaviour) while a new leader is elected.
    let follower = statuses
        .iter()
        .position(|status| status.header.unwrap().member_id != leader)
        .unwrap();
    client.put("/salvor/before", "v").await.unwrap();

    cluster.kill(follower).unwrap();
    assert!(!cluster.is_running(follower));
    // Reads fail over to the live members by themselves, even when sent on the
    // connection that just broke.
    for _ in 0..20 {
        assert_eq!(client.count_prefix("/salvor/before").await.unwrap(), 1);
    }
    // A write sent on the broken connection may or may not have been applied,
    // so the client reports it (Error::Transport) instead of retrying; these
    // writes are idempotent, so retry them here.
    for index in 0..20 {
        put_retrying(&client, &format!("/salvor/while-down/{index}")).await;
    }
    assert!(cluster.member_client(follower).await.is_err());
    let each = Client::connect_each(&cluster.endpoints(), cluster.connect_options().unwrap()).await;
    assert_eq!(each.len(), 3);
    for (index, connected) in each.iter().enumerate() {
        match connected {
            Ok(member) => {
                assert_ne!(index, follower);
                assert_eq!(member.endpoints(), [cluster.endpoints()[index].clone()]);
            }
            Err(error) => {
                assert_eq!(index, follower);
                assert!(error.is_unreachable(), "{error}");
            }
        }
    }

    cluster.restart(follower).await.unwrap();
    let restarted = cluster.member_client(follower).await.unwrap();
    assert_eq!(
        restarted.count_prefix("/salvor/while-down/").await.unwrap(),
        20
    );
    let per_member = client.endpoint_clients();
    assert_eq!(per_member.len(), 3);
    let ids: Vec<u64> = {
        let mut ids = Vec::new();
        for member in &per_member {
            ids.push(member.status().await.unwrap().header.unwrap().member_id);
        }
        ids
    };
    let mut distinct = ids.clone();
    distinct.dedup();
    assert_eq!(distinct.len(), 3, "{ids:?}");

    cluster.stop(follower).await.unwrap();
    assert!(!cluster.is_running(follower));
    cluster.restart(follower).await.unwrap();
    assert!(cluster.is_running(follower));

    // Leadership moves when asked through the leader.
    let leader_index = (0..3)
        .find(|&index| statuses[index].header.unwrap().member_id == leader)
        .unwrap();
    let target = statuses[follower].header.unwrap().member_id;
    cluster
        .member_client(leader_index)
        .await
        .unwrap()
        .move_leader(target)
        .await
        .unwrap();
    let status = cluster
        .member_client(follower)
        .await
        .unwrap()
        .status()
        .await
        .unwrap();
    assert_eq!(status.leader, target);
}

async fn put_retrying(client: &Client, key: &str) {
    for attempt in 1.. {
        match client.put(key, "v").await {
            Ok(_) => return,
            Err(error) if error.is_unreachable() && attempt < 5 => {
                eprintln!("retrying put {key}: {error}");
            }
            Err(error) => panic!("put {key}: {error}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_gives_one_revision_per_write() {
    let mut cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();
    let workload = Workload {
        keys: 2_000,
        overwrites: 0.5,
        deletes: 0.1,
        seed: 42,
        ..Workload::default()
    };
    let report = testenv::load(&client, &workload).await.unwrap();
    assert_eq!(report.puts, 3_000);
    assert_eq!(report.deletes, 200);
    assert_eq!(report.writes() as usize, workload.write_count());
    assert_eq!(report.revision, 1 + report.writes() as i64);
    let status = client.status().await.unwrap();
    assert_eq!(status.header.unwrap().revision, report.revision);

    let live = workload.live_key_count() as i64;
    assert_eq!(client.count_prefix("/registry/").await.unwrap(), live);
    // etcdctl 3.4 has no --count-only; the JSON count of a limited get is the total.
    let json = etcdctl_output(cluster.etcdctl().args([
        "get",
        "/registry/",
        "--prefix",
        "--keys-only",
        "--limit=1",
        "-w",
        "json",
    ]));
    let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(parsed["count"].as_i64(), Some(live));

    // The deleted keys are gone, the others hold their last value.
    let deleted = workload.deleted_keys();
    assert_eq!(client.get(workload.key(deleted[0])).await.unwrap(), None);
    let kept = (0..workload.keys).find(|i| !deleted.contains(i)).unwrap();
    assert!(client.get(workload.key(kept)).await.unwrap().is_some());

    // Compaction, then reading below it fails with a typed error.
    client.compact(report.revision - 10, true).await.unwrap();
    let error = client
        .range(etcd_rpc::proto::RangeRequest {
            key: workload.key(kept).into_bytes(),
            revision: 2,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(error, etcd_rpc::Error::Compacted { .. }),
        "{error}"
    );
    let error = client
        .range(etcd_rpc::proto::RangeRequest {
            key: b"k".to_vec(),
            revision: report.revision + 100,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(error, etcd_rpc::Error::FutureRevision { .. }),
        "{error}"
    );

    assert!(cluster.is_running(0));
}

#[tokio::test]
async fn tls_requires_client_certificates() {
    let cluster = EtcdCluster::start_with(EtcdOptions {
        tls: true,
        ..EtcdOptions::default()
    })
    .await
    .unwrap();
    let endpoint = cluster.endpoints()[0].clone();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    let tls = cluster.tls_files().unwrap().clone();
    assert!(tls.ca_cert.exists() && tls.client_key.exists());

    let client = cluster.client().await.unwrap();
    client.put("/salvor/tls", "secure").await.unwrap();
    assert_eq!(
        client.get("/salvor/tls").await.unwrap().unwrap().value,
        b"secure"
    );
    let value =
        etcdctl_output(
            cluster
                .etcdctl()
                .args(["get", "/salvor/tls", "--print-value-only"]),
        );
    assert_eq!(value.trim(), "secure");

    // The same endpoint given without a scheme uses https because TLS is configured.
    let bare = vec![endpoint.trim_start_matches("https://").to_string()];
    let bare_client = Client::connect(&bare, cluster.connect_options().unwrap())
        .await
        .unwrap();
    bare_client.status().await.unwrap();

    // Without a client certificate the server refuses the handshake.
    let no_cert = ConnectOptions {
        tls: Some(tls.ca_only_tls().unwrap()),
        dial_timeout: Duration::from_secs(2),
        request_timeout: Some(Duration::from_secs(5)),
        ..ConnectOptions::default()
    };
    let refused = match Client::connect(std::slice::from_ref(&endpoint), no_cert).await {
        Ok(client) => client.status().await.err(),
        Err(error) => Some(error),
    };
    assert!(refused.is_some(), "a client without certificate was served");

    // Plain HTTP to the TLS port fails too.
    let plain = vec![endpoint.replacen("https://", "http://", 1)];
    let plain_options = ConnectOptions {
        dial_timeout: Duration::from_secs(2),
        request_timeout: Some(Duration::from_secs(5)),
        ..ConnectOptions::default()
    };
    let refused = match Client::connect(&plain, plain_options).await {
        Ok(client) => client.status().await.err(),
        Err(error) => Some(error),
    };
    assert!(refused.is_some(), "a plain-text client was served");

    let output = Command::new(&cluster.options().etcdctl_binary)
        .env("ETCDCTL_API", "3")
        .args([
            format!("--endpoints={endpoint}"),
            format!("--cacert={}", tls.ca_cert.display()),
            "--dial-timeout=2s".to_string(),
            "--command-timeout=3s".to_string(),
            "get".to_string(),
            "/salvor/tls".to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        !output.status.success(),
        "etcdctl without client certificate succeeded"
    );
}

#[tokio::test]
async fn snapshots_over_grpc_and_etcdctl_carry_the_sha256_trailer() {
    let mut cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();
    let workload = Workload {
        keys: 300,
        value_size: ValueSizes::Uniform {
            min: 100,
            max: 2_000,
        },
        ..Workload::default()
    };
    testenv::load(&client, &workload).await.unwrap();

    let out = tempfile::tempdir().unwrap();
    let grpc_path = out.path().join("grpc.db");
    let bytes = testenv::snapshot(&client, &grpc_path).await.unwrap();
    assert_eq!(assert_snapshot_file(&grpc_path), bytes);
    assert!(!out.path().join("grpc.db.part").exists());

    let etcdctl_path = out.path().join("etcdctl.db");
    let bytes = cluster.etcdctl_snapshot_save(&etcdctl_path).unwrap();
    assert_eq!(assert_snapshot_file(&etcdctl_path), bytes);

    // The stream API counts bytes; etcd 3.4 sends no header (3.5+ does).
    let mut stream = client.snapshot().await.unwrap();
    let mut streamed = 0;
    while let Some(chunk) = stream.chunk().await.unwrap() {
        streamed += chunk.len() as u64;
    }
    assert_eq!(streamed, stream.received_bytes());
    assert_eq!(streamed % 512, 32);
    assert!(matches!(stream.revision(), None | Some(301)));
    assert_eq!(stream.remaining_bytes(), Some(0));
}

#[tokio::test]
async fn auth_token_is_sent_and_refreshed() {
    let cluster = EtcdCluster::start_with(EtcdOptions {
        // Tokens expire after a second so the refresh path runs; cheap bcrypt.
        extra_args: vec!["--auth-token-ttl=1".into(), "--bcrypt-cost=4".into()],
        ..EtcdOptions::default()
    })
    .await
    .unwrap();
    let admin = cluster.client().await.unwrap();
    admin.user_add("root", "root-password").await.unwrap();
    admin.role_add("root").await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.user_add("reader", "reader-password").await.unwrap();
    admin.role_add("registry-reader").await.unwrap();
    admin
        .role_grant_permission(
            "registry-reader",
            authpb::Permission {
                perm_type: authpb::PermissionType::Read as i32,
                key: b"/registry/".to_vec(),
                range_end: etcd_rpc::prefix_range_end(b"/registry/"),
            },
        )
        .await
        .unwrap();
    admin
        .user_grant_role("reader", "registry-reader")
        .await
        .unwrap();
    admin.put("/registry/pods/default/a", "pod").await.unwrap();
    admin.auth_enable().await.unwrap();

    let unauthenticated = admin.get("/registry/pods/default/a").await.unwrap_err();
    assert!(unauthenticated.code().is_some(), "{unauthenticated}");

    let with_password = |user: &str, password: &str| ConnectOptions {
        user: Some(user.to_string()),
        password: Some(password.to_string()),
        ..ConnectOptions::default()
    };
    let root = Client::connect(&cluster.endpoints(), with_password("root", "root-password"))
        .await
        .unwrap();
    root.put("/registry/pods/default/b", "pod").await.unwrap();
    let mut users = root.user_list().await.unwrap().users;
    users.sort();
    assert_eq!(users, ["reader", "root"]);
    assert!(
        root.role_list()
            .await
            .unwrap()
            .roles
            .contains(&"registry-reader".to_string())
    );

    let reader = Client::connect(
        &cluster.endpoints(),
        with_password("reader", "reader-password"),
    )
    .await
    .unwrap();
    assert_eq!(reader.count_prefix("/registry/").await.unwrap(), 2);
    let denied = reader
        .put("/registry/pods/default/c", "pod")
        .await
        .unwrap_err();
    assert!(
        matches!(denied, etcd_rpc::Error::PermissionDenied { .. }),
        "{denied}"
    );

    // After the token expires the client authenticates again by itself.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(reader.count_prefix("/registry/").await.unwrap(), 2);
    root.put("/registry/pods/default/d", "pod").await.unwrap();

    let wrong = Client::connect(&cluster.endpoints(), with_password("root", "nope"))
        .await
        .unwrap_err();
    assert!(
        matches!(wrong, etcd_rpc::Error::AuthFailed { .. }),
        "{wrong}"
    );

    let value = etcdctl_output(cluster.etcdctl().args([
        "--user=root:root-password",
        "get",
        "/registry/pods/default/b",
        "--print-value-only",
    ]));
    assert_eq!(value.trim(), "pod");
    root.auth_disable().await.unwrap();
}

#[tokio::test]
async fn watch_leases_txn_membership_and_maintenance() {
    let cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();

    let mut watcher = client
        .watch(WatchCreateRequest {
            key: b"/watched/".to_vec(),
            range_end: etcd_rpc::prefix_range_end(b"/watched/"),
            prev_kv: true,
            ..Default::default()
        })
        .await
        .unwrap();
    client.put("/watched/a", "1").await.unwrap();
    client.put("/watched/a", "2").await.unwrap();
    client.delete("/watched/a").await.unwrap();
    let mut events = Vec::new();
    while events.len() < 3 {
        let response = watcher.message().await.unwrap().unwrap();
        events.extend(response.events);
    }
    assert_eq!(events[0].r#type(), EventType::Put);
    assert_eq!(events[1].prev_kv.as_ref().unwrap().value, b"1");
    assert_eq!(events[2].r#type(), EventType::Delete);
    watcher.cancel().await.unwrap();

    let lease = client.lease_grant(60).await.unwrap();
    assert_eq!(lease.ttl, 60);
    client
        .put_request(etcd_rpc::proto::PutRequest {
            key: b"/leased".to_vec(),
            value: b"v".to_vec(),
            lease: lease.id,
            ..Default::default()
        })
        .await
        .unwrap();
    let alive = client.lease_keep_alive_once(lease.id).await.unwrap();
    assert_eq!(alive.id, lease.id);
    let ttl = client.lease_time_to_live(lease.id, true).await.unwrap();
    assert_eq!(ttl.keys, [b"/leased".to_vec()]);
    assert!(
        client
            .lease_leases()
            .await
            .unwrap()
            .leases
            .iter()
            .any(|l| l.id == lease.id)
    );
    client.lease_revoke(lease.id).await.unwrap();
    assert_eq!(client.get("/leased").await.unwrap(), None);
    let missing = client.lease_revoke(lease.id).await.unwrap_err();
    assert!(
        matches!(missing, etcd_rpc::Error::LeaseNotFound { .. }),
        "{missing}"
    );

    use etcd_rpc::proto::{Compare, CompareResult, PutRequest, RequestOp, TxnRequest, response_op};
    let create_if_absent = TxnRequest {
        compare: vec![Compare::create_revision("/txn", CompareResult::Equal, 0)],
        success: vec![RequestOp::put(PutRequest {
            key: b"/txn".to_vec(),
            value: b"first".to_vec(),
            ..Default::default()
        })],
        failure: vec![RequestOp::range(etcd_rpc::proto::RangeRequest {
            key: b"/txn".to_vec(),
            ..Default::default()
        })],
    };
    assert!(
        client
            .txn(create_if_absent.clone())
            .await
            .unwrap()
            .succeeded
    );
    let second = client.txn(create_if_absent).await.unwrap();
    assert!(!second.succeeded);
    match &second.responses[0].response {
        Some(response_op::Response::ResponseRange(range)) => {
            assert_eq!(range.kvs[0].value, b"first")
        }
        other => panic!("unexpected response {other:?}"),
    }

    // Membership changes: a learner that never starts can be added and removed
    // without touching the quorum; it cannot be promoted before it catches up.
    // (In a cluster whose members restarted less than 5 s ago etcd refuses
    // reconfiguration as "unhealthy cluster", so this runs on its own cluster.)
    let learner_url = "http://127.0.0.1:9".to_string();
    let added = client
        .member_add(vec![learner_url.clone()], true)
        .await
        .unwrap();
    let learner = added.member.unwrap();
    assert!(learner.is_learner);
    assert_eq!(learner.peer_urls, [learner_url]);
    assert_eq!(added.members.len(), 2);
    let promoted = client.member_promote(learner.id).await.unwrap_err();
    assert!(
        promoted.grpc_message().unwrap().contains("learner"),
        "{promoted}"
    );
    let updated = client
        .member_update(learner.id, vec!["http://127.0.0.1:10".to_string()])
        .await
        .unwrap();
    assert!(
        updated
            .members
            .iter()
            .any(|m| m.peer_urls == ["http://127.0.0.1:10"])
    );
    let removed = client.member_remove(learner.id).await.unwrap();
    assert_eq!(removed.members.len(), 1);
    let missing = client.member_remove(learner.id).await.unwrap_err();
    assert!(
        matches!(missing, etcd_rpc::Error::MemberNotFound { .. }),
        "{missing}"
    );

    let alarms = client.alarm_list().await.unwrap();
    assert!(alarms.alarms.is_empty());
    client.defragment().await.unwrap();
    let hash = client.hash_kv(0).await.unwrap();
    assert!(hash.header.unwrap().revision > 0);
}

#[tokio::test]
async fn a_member_that_exits_reports_its_log() {
    let error = EtcdCluster::start_with(EtcdOptions {
        extra_args: vec!["--snapshot-count=not-a-number".into()],
        ..EtcdOptions::default()
    })
    .await
    .unwrap_err();
    assert!(
        matches!(error, testenv::Error::MemberExited { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("not-a-number"), "{error}");
}

#[tokio::test]
async fn missing_etcd_binary_names_the_package() {
    let error = EtcdCluster::start_with(EtcdOptions {
        etcd_binary: "/nonexistent/etcd".into(),
        ..EtcdOptions::default()
    })
    .await
    .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("apt-get install etcd-server etcd-client"),
        "{error}"
    );
}

/// etcd must not outlive testenv even when testenv is killed without unwinding.
#[test]
fn etcd_dies_with_the_testenv_process() {
    let mut testenv = Command::new(env!("CARGO_BIN_EXE_testenv"))
        .args(["etcd", "up"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = testenv.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let endpoint = first.strip_prefix("endpoints: ").unwrap().to_string();
    let description: serde_json::Value =
        serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(
        description["endpoints"][0].as_str(),
        Some(endpoint.as_str())
    );
    assert!(description["members"][0]["data_dir"].is_string());

    let address = endpoint.trim_start_matches("http://").to_string();
    assert!(TcpStream::connect(&address).is_ok(), "etcd is up");
    testenv.kill().unwrap();
    testenv.wait().unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(&address).is_ok() {
        assert!(
            Instant::now() < deadline,
            "etcd still serves after testenv died"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Killed without unwinding, testenv could not remove its directory.
    let dir = description["dir"].as_str().unwrap();
    assert!(dir.contains("testenv-etcd-"), "{dir}");
    std::fs::remove_dir_all(dir).unwrap();
}
