//! `salvor etcd snapshot save` against real etcd 3.4: over TLS with client certificates,
//! with user/password auth, failing over past a dead endpoint; the file equals what
//! `etcdctl snapshot status` reads; a killed save leaves no file under the destination.
//! Saved straight to S3 (Garage) and restored from there.

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

/// Starts `save`, kills it after `after` and checks that it had not finished by then.
fn kill_while_saving(mut save: Command, after: Duration) {
    let mut child = save.stdout(std::process::Stdio::null()).spawn().unwrap();
    std::thread::sleep(after);
    child.kill().unwrap();
    assert!(
        !child.wait().unwrap().success(),
        "the save finished before it was killed"
    );
}

/// ~100 MB of keys, so that a save is still streaming a moment after it starts.
async fn load_100mb(client: &etcd_rpc::Client) -> testenv::LoadReport {
    testenv::load(
        client,
        &Workload {
            value_size: testenv::ValueSizes::Uniform {
                min: 20_000,
                max: 30_000,
            },
            ..Workload::new(4_000)
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_with_auth_and_interrupted_save() {
    let cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();
    let load = load_100mb(&client).await;
    client.user_add("root", "pw").await.unwrap();
    client.user_grant_role("root", "root").await.unwrap();
    client.auth_enable().await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("snap.db");
    let metrics = tmp.path().join("salvor.prom");
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
    let mut save = Command::new(env!("CARGO_BIN_EXE_salvor"));
    save.args([
        "etcd",
        "snapshot",
        "save",
        "--endpoints",
        ep,
        "--user",
        "root:pw",
    ])
    .arg(&dest);
    kill_while_saving(save, Duration::from_millis(150));
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
            "--metrics-file",
        ])
        .arg(&metrics)
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

    // The metrics file (for node_exporter's textfile collector) says what was saved.
    let page = std::fs::read_to_string(&metrics).unwrap();
    common::assert_promtool_accepts_metrics(&page);
    let location = tmp.path().display().to_string();
    let value = |page: &str, name: &str| -> f64 {
        let prefix = format!("{name}{{location=\"{location}\"}} ");
        page.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {prefix} in\n{page}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value(&page, "salvor_snapshot_save_last_run_success"), 1.0);
    assert_eq!(
        value(&page, "salvor_snapshot_save_bytes"),
        report["bytes"].as_f64().unwrap()
    );
    assert_eq!(
        value(&page, "salvor_snapshot_save_revision"),
        report["revision"].as_f64().unwrap()
    );
    let succeeded = value(&page, "salvor_snapshot_save_last_success_timestamp_seconds");
    assert!(succeeded > 1.7e9, "{page}");
    // A failed run says so and keeps the time of the last success.
    let (code, _, _) = salvor(&[
        "etcd",
        "snapshot",
        "save",
        "--endpoints",
        ep,
        "--metrics-file",
        metrics.to_str().unwrap(),
        tmp.path().join("refused.db").to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    let page = std::fs::read_to_string(&metrics).unwrap();
    common::assert_promtool_accepts_metrics(&page);
    assert_eq!(value(&page, "salvor_snapshot_save_last_run_success"), 0.0);
    assert_eq!(
        value(&page, "salvor_snapshot_save_last_success_timestamp_seconds"),
        succeeded
    );
    assert!(value(&page, "salvor_snapshot_save_last_run_timestamp_seconds") >= succeeded);
}

/// A client of the test's Garage for checking what is in the bucket.
fn bucket(garage: &testenv::Garage, prefix: &str) -> object_storage::Storage {
    let options = object_storage::StorageOptions {
        s3: object_storage::S3Options {
            endpoint: Some(garage.endpoint()),
            region: Some(garage.region().to_string()),
            path_style: None,
            credentials: Some(object_storage::S3Credentials {
                access_key_id: garage.access_key_id().to_string(),
                secret_access_key: garage.secret_access_key().to_string(),
            }),
        },
        retry_timeout: Duration::from_secs(5),
    };
    let url = object_storage::StorageUrl::parse(&garage.url(prefix)).unwrap();
    object_storage::Storage::open(&url, &options).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_to_s3_and_restore_from_it() {
    use sha2::Digest;
    let garage = testenv::Garage::start().await.unwrap();
    let env = garage.env();
    let store = bucket(&garage, "etcd");
    let cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();
    // A dozen upload parts.
    let load = load_100mb(&client).await;
    let ep = &cluster.endpoints()[0];

    // Killed mid-upload: no object under the name.
    let mut save = Command::new(env!("CARGO_BIN_EXE_salvor"));
    save.args(["etcd", "snapshot", "save", "--endpoints", ep])
        .arg(garage.url("etcd/killed.db"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    kill_while_saving(save, Duration::from_millis(300));
    assert_eq!(store.size("killed.db").await.unwrap(), None);

    // Saved straight to the bucket, verified.
    let url = garage.url("etcd/snap.db");
    let (code, out, err) = common::salvor_env(
        &[
            "etcd",
            "snapshot",
            "save",
            "--endpoints",
            ep,
            &url,
            "-o",
            "json",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["path"], url.as_str());
    assert!(report["revision"].is_null(), "{report}");
    let size = store.size("snap.db").await.unwrap().unwrap();
    assert_eq!(report["bytes"], size);
    // The object is the verified stream: its content hashes to the reported sha256,
    // which is also its trailer.
    let mut download = store.download("snap.db").await.unwrap();
    let mut body = Vec::new();
    while let Some(chunk) = download.next_chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
    }
    let (content, trailer) = body.split_at(body.len() - 32);
    let sha = hex::encode(sha2::Sha256::digest(content));
    assert_eq!(report["sha256"], sha.as_str());
    assert_eq!(hex::encode(trailer), sha);

    // Restored from the bucket: the member's db holds the saved revision.
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("restored.etcd");
    let (code, out, err) = common::salvor_env(
        &[
            "etcd",
            "snapshot",
            "restore",
            &url,
            "--data-dir",
            data_dir.to_str().unwrap(),
            "-o",
            "json",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let restored: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(restored["hashVerified"], true);
    assert_eq!(restored["revision"], load.revision);
    let names: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["restored.etcd".to_string()],
        "download left behind"
    );
    let db = data_dir.join("member/snap/db");
    let (code, out, err) = common::salvor(&[
        "etcd",
        "snapshot",
        "status",
        db.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let status: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(status["revision"], load.revision);

    // Into a data dir that exists: refused before anything is downloaded.
    let (code, _, err) = common::salvor_env(
        &[
            "etcd",
            "snapshot",
            "restore",
            &url,
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(code, 1);
    assert!(err.contains("exists and is not empty"), "{err}");
    assert!(!tmp.path().join("restored.etcd.snapshot.download").exists());

    // A missing object is named.
    let (code, _, err) = common::salvor_env(
        &[
            "etcd",
            "snapshot",
            "restore",
            &garage.url("etcd/missing.db"),
            "--data-dir",
            tmp.path().join("other").to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(code, 1);
    assert!(err.contains("etcd/missing.db: no such object"), "{err}");
    assert!(!tmp.path().join("other").exists());
}
