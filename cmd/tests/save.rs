//! `salvor etcd snapshot save` against real etcd 3.4: over TLS with client certificates,
//! with user/password auth, failing over past a dead endpoint; the file equals what
//! `etcdctl snapshot status` reads; a killed save leaves no file under the destination.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
use common::salvor;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testenv::{EtcdCluster, EtcdOptions, Workload};

fn etcdctl_status(path: &std::path::Path) -> Value {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", path.to_str().unwrap(), "-w", "json"])
        .output()
        .expect("etcdctl must be installed (Debian etcd-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_over_tls_with_failover() {
    let cluster = EtcdCluster::start_with(EtcdOptions {
        tls: true,
        ..EtcdOptions::members(1)
    })
    .await
    .unwrap();
    let client = cluster.client().await.unwrap();
    let load = testenv::load(&client, &Workload::new(2_000)).await.unwrap();
    let tls = cluster.tls_files().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("snap.db");
    // A dead endpoint first: the save goes on with the next one.
    let endpoints = format!("https://127.0.0.1:1,{}", cluster.endpoints()[0]);
    let (code, out, err) = salvor(&[
        "etcd",
        "snapshot",
        "save",
        "--endpoints",
        &endpoints,
        "--cacert",
        tls.ca_cert.to_str().unwrap(),
        "--cert",
        tls.client_cert.to_str().unwrap(),
        "--key",
        tls.client_key.to_str().unwrap(),
        "--dial-timeout",
        "1s",
        dest.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["endpoint"], cluster.endpoints()[0]);
    assert_eq!(report["revision"], load.revision);
    let theirs = etcdctl_status(&dest);
    assert_eq!(theirs["revision"], load.revision);
    assert_eq!(theirs["hash"], report["hash"]);
    assert_eq!(theirs["totalKey"], report["totalKey"]);
    assert!(!tmp.path().join("snap.db.part").exists());
    // The file restores (its trailer verifies).
    let (code, _, err) = salvor(&["etcd", "check", dest.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    // Without the client certificate the member refuses, and nothing is left behind.
    let refused = tmp.path().join("refused.db");
    let (code, _, err) = salvor(&[
        "etcd",
        "snapshot",
        "save",
        "--endpoints",
        &cluster.endpoints()[0],
        "--cacert",
        tls.ca_cert.to_str().unwrap(),
        "--dial-timeout",
        "2s",
        refused.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(!refused.exists() && !tmp.path().join("refused.db.part").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_with_auth_and_interrupted_save() {
    let cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();
    // ~100 MB, so that the save is still streaming when it is killed.
    let load = testenv::load(
        &client,
        &Workload {
            value_size: testenv::ValueSizes::Uniform {
                min: 20_000,
                max: 30_000,
            },
            ..Workload::new(4_000)
        },
    )
    .await
    .unwrap();
    client.user_add("root", "pw").await.unwrap();
    client.user_grant_role("root", "root").await.unwrap();
    client.auth_enable().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("snap.db");
    let ep = &cluster.endpoints()[0];
    // Without credentials: refused.
    let (code, _, err) = salvor(&[
        "etcd",
        "snapshot",
        "save",
        "--endpoints",
        ep,
        dest.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(!dest.exists(), "{err}");
    // Killed while streaming: no file under the destination name.
    let mut child = Command::new(env!("CARGO_BIN_EXE_salvor"))
        .args([
            "etcd",
            "snapshot",
            "save",
            "--endpoints",
            ep,
            "--user",
            "root:pw",
        ])
        .arg(&dest)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    child.kill().unwrap();
    assert!(
        !child.wait().unwrap().success(),
        "the save finished before it was killed"
    );
    assert!(!dest.exists());
    // With credentials (password from the environment): saved.
    let out = Command::new(env!("CARGO_BIN_EXE_salvor"))
        .args([
            "etcd",
            "snapshot",
            "save",
            "--endpoints",
            ep,
            "--user",
            "root",
            "-o",
            "json",
        ])
        .arg(&dest)
        .env("SALVOR_PASSWORD", "pw")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("pw\""));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["revision"].as_i64().unwrap() >= load.revision);
    assert_eq!(etcdctl_status(&dest)["hash"], report["hash"]);
}
