//! `salvor etcd diagnose` and `salvor server` as a user runs them, against
//! real three-member etcd 3.4 clusters; the exporter's output and the alert
//! rules are checked by the real `promtool` (Debian's `prometheus` package).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::salvor;
use serde_json::Value;
use testenv::{EtcdCluster, EtcdOptions};

/// Every test is bounded in time.
async fn bounded<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(180), future)
        .await
        .expect("test took longer than 180 s")
}

fn codes(report: &Value) -> Vec<(String, String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["code"].as_str().unwrap().to_string(),
                f["severity"].as_str().unwrap().to_string(),
                f["member"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn diagnose_json(args: &[&str]) -> (i32, Value) {
    let mut all = vec!["etcd", "diagnose", "-o", "json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = salvor(&all);
    let report = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (code, report)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthy_cluster_exits_0_and_table_names_every_member() {
    bounded(async {
        let cluster = EtcdCluster::start(3).await.unwrap();
        let first = cluster.member(0).unwrap().client_url.clone();
        let (code, report) = diagnose_json(&["--endpoints", &first, "--cluster"]);
        assert_eq!(code, 0, "{:?}", codes(&report));
        assert_eq!(report["reachable"], 3);
        assert!(
            codes(&report)
                .iter()
                .all(|(_, severity, _)| severity == "info"),
            "{:?}",
            codes(&report)
        );
        let (code, table, _) = salvor(&[
            "etcd",
            "diagnose",
            "--endpoints",
            &cluster.endpoints().join(","),
        ]);
        assert_eq!(code, 0, "{table}");
        for member in cluster.members() {
            assert!(table.contains(&member.client_url), "{table}");
        }
        assert!(table.contains("3 of 3 members answered"), "{table}");
        assert!(table.contains("agrees"), "{table}");
        let (code, yaml, _) = salvor(&["etcd", "diagnose", "-o", "yaml", "--endpoints", &first]);
        assert_eq!(code, 0);
        assert!(yaml.contains("clusterId:"), "{yaml}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_member_exits_3_and_nothing_answering_exits_4() {
    bounded(async {
        let mut cluster = EtcdCluster::start(3).await.unwrap();
        let endpoints = cluster.endpoints().join(",");
        cluster.kill(1).unwrap();
        let (code, report) = diagnose_json(&["--endpoints", &endpoints]);
        assert_eq!(code, 3);
        assert!(
            codes(&report).contains(&(
                "ENDPOINT_UNREACHABLE".to_string(),
                "error".to_string(),
                "m1".to_string()
            )),
            "{:?}",
            codes(&report)
        );
        let (code, table, _) = salvor(&["etcd", "diagnose", "--endpoints", &endpoints]);
        assert_eq!(code, 3);
        assert!(table.contains("ENDPOINT_UNREACHABLE"), "{table}");
        assert!(table.contains("what to do:"), "{table}");

        cluster.kill(0).unwrap();
        cluster.kill(2).unwrap();
        let (code, report) = diagnose_json(&["--endpoints", &endpoints, "--dial-timeout", "500ms"]);
        assert_eq!(code, 4);
        assert_eq!(report["reachable"], 0);
        assert!(
            codes(&report)
                .iter()
                .any(|(c, _, _)| c == "CLUSTER_UNREACHABLE")
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_member_costs_the_dial_timeout() {
    bounded(async {
        let mut cluster = EtcdCluster::start(3).await.unwrap();
        cluster.pause(2).unwrap();
        let endpoints = cluster.endpoints().join(",");
        let (code, report) = diagnose_json(&[
            "--endpoints",
            &endpoints,
            "--dial-timeout",
            "1s",
            "--command-timeout",
            "20s",
        ]);
        cluster.resume(2).unwrap();
        assert_eq!(code, 3);
        let unreachable: Vec<_> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["code"] == "ENDPOINT_UNREACHABLE")
            .collect();
        assert_eq!(unreachable.len(), 1, "{:?}", codes(&report));
        assert_eq!(unreachable[0]["member"], "m2");
        // The frozen member was given up after the dial timeout, not the
        // command timeout (timing itself is measured in docs/benchmarks.md).
        assert!(
            unreachable[0]["evidence"]
                .as_str()
                .unwrap()
                .contains("dial timeout"),
            "{unreachable:?}"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_cluster_with_client_certificates_from_flags() {
    bounded(async {
        let cluster = EtcdCluster::start_with(EtcdOptions {
            tls: true,
            ..EtcdOptions::members(3)
        })
        .await
        .unwrap();
        let tls = cluster.tls_files().unwrap();
        let endpoints = cluster.endpoints().join(",");
        let (code, report) = diagnose_json(&[
            "--endpoints",
            &endpoints,
            "--cacert",
            tls.ca_cert.to_str().unwrap(),
            "--cert",
            tls.client_cert.to_str().unwrap(),
            "--key",
            tls.client_key.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{:?}", codes(&report));
        assert_eq!(report["reachable"], 3);
        for member in report["members"].as_array().unwrap() {
            assert!(
                member["metrics"]["backendCommit"]["count"]
                    .as_u64()
                    .unwrap()
                    > 0
            );
        }
        // Only the CA: the members demand a client certificate.
        let (code, report) = diagnose_json(&[
            "--endpoints",
            &endpoints,
            "--cacert",
            tls.ca_cert.to_str().unwrap(),
        ]);
        assert_eq!(code, 4, "{:?}", codes(&report));
    })
    .await;
}

/// `GET path` with HTTP/1.1; status code and body.
fn http_get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_serves_metrics_promtool_accepts_and_stops_on_sigterm() {
    bounded(async {
        let mut cluster = EtcdCluster::start(3).await.unwrap();
        let mut server = Command::new(env!("CARGO_BIN_EXE_salvor"))
            .args([
                "server",
                "--listen",
                "127.0.0.1:0",
                "--interval",
                "200ms",
                "--cluster",
            ])
            .arg("--endpoints")
            .arg(&cluster.member(0).unwrap().client_url)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(server.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let address = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_string();

        assert_eq!(http_get(&address, "/healthz").0, 200);
        let deadline = Instant::now() + Duration::from_secs(30);
        while http_get(&address, "/readyz").0 != 200 {
            assert!(Instant::now() < deadline, "never ready");
            std::thread::sleep(Duration::from_millis(50));
        }
        let (status, metrics) = http_get(&address, "/metrics");
        assert_eq!(status, 200);
        assert!(metrics.contains("salvor_etcd_up 1"), "{metrics}");
        assert!(
            metrics.contains("salvor_etcd_members_reachable 3"),
            "{metrics}"
        );
        assert!(
            metrics.contains("salvor_etcd_findings{code=\"ENDPOINT_UNREACHABLE\"} 0"),
            "{metrics}"
        );
        assert!(
            metrics.contains("salvor_etcd_member_up{member=\"m0\""),
            "{metrics}"
        );
        assert!(
            metrics.contains("salvor_etcd_member_wal_fsync_p99_seconds{"),
            "{metrics}"
        );
        check_metrics_with_promtool(&metrics);
        every_documented_metric_is_served(&metrics);

        // A member dies: the next diagnoses say so.
        cluster.kill(2).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        let metrics = loop {
            let (_, metrics) = http_get(&address, "/metrics");
            if metrics.contains("salvor_etcd_findings{code=\"ENDPOINT_UNREACHABLE\"} 1") {
                break metrics;
            }
            assert!(
                Instant::now() < deadline,
                "the killed member never showed: {metrics}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            metrics.contains("salvor_etcd_member_up{member=\"m2\""),
            "{metrics}"
        );
        assert!(metrics.contains("salvor_etcd_healthy 0"), "{metrics}");
        check_metrics_with_promtool(&metrics);
        assert_eq!(http_get(&address, "/nope").0, 404);

        // Graceful shutdown on SIGTERM, exit code 0.
        let status = Command::new("kill")
            .args(["-TERM", &server.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(15);
        let exit = loop {
            if let Some(exit) = server.try_wait().unwrap() {
                break exit;
            }
            if Instant::now() > deadline {
                server.kill().unwrap();
                panic!("salvor server ignored SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(exit.success(), "{exit}");
        let mut rest = String::new();
        stderr.read_to_string(&mut rest).unwrap();
        assert!(rest.contains("stopped"), "{rest}");
    })
    .await;
}

/// The dashboard and the alert rules use only metrics the exporter serves.
fn every_documented_metric_is_served(metrics: &str) {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/monitoring");
    let mut used = std::collections::BTreeSet::new();
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(docs.join("salvor-dashboard.json")).unwrap())
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() > 10);
    for panel in panels {
        assert!(!panel["targets"].as_array().unwrap().is_empty(), "{panel}");
    }
    for file in ["salvor-dashboard.json", "salvor-alerts.yaml"] {
        let text = std::fs::read_to_string(docs.join(file)).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find("salvor_etcd_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            used.insert(name);
        }
    }
    assert!(used.len() > 10, "{used:?}");
    for name in used {
        assert!(
            metrics.contains(&format!("# TYPE {name} ")),
            "{name} is used by docs/monitoring but not served"
        );
    }
}

fn check_metrics_with_promtool(metrics: &str) {
    common::assert_promtool_accepts_metrics(metrics);
}

#[test]
fn promtool_accepts_the_alert_rules() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/monitoring/salvor-alerts.yaml");
    let output = common::promtool()
        .args(["check", "rules"])
        .arg(&rules)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("SUCCESS"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_never_reaches_output_or_logs() {
    bounded(async {
        let cluster = EtcdCluster::start(1).await.unwrap();
        let client = cluster.client().await.unwrap();
        client.role_add("root").await.unwrap();
        client.user_add("root", "pa55-not-in-logs").await.unwrap();
        client.user_grant_role("root", "root").await.unwrap();
        client.auth_enable().await.unwrap();
        for (args, env) in [
            (vec!["--user", "root:pa55-not-in-logs"], None),
            (vec!["--user", "root"], Some("pa55-not-in-logs")),
        ] {
            let mut command = Command::new(env!("CARGO_BIN_EXE_salvor"));
            command
                .args(["etcd", "diagnose", "-o", "json", "--endpoints"])
                .arg(cluster.endpoints().join(","))
                .args(&args)
                .env("RUST_LOG", "trace");
            if let Some(password) = env {
                command.env("SALVOR_PASSWORD", password);
            }
            let output = command.output().unwrap();
            let stdout = String::from_utf8_lossy(&output.stdout);
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
            assert!(!stdout.contains("pa55-not-in-logs"));
            assert!(!stderr.contains("pa55-not-in-logs"));
        }
    })
    .await;
}
