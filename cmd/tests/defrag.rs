//! `salvor etcd defrag` on a stopped member of real etcd 3.4: the backend shrinks, keeps
//! its hash, passes the check, and the member restarts on it serving every key; a
//! running member's backend is refused; an interrupted defrag leaves the original.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
use common::salvor;

use std::time::Duration;

use serde_json::Value;
use testenv::{EtcdCluster, Workload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn defrag_a_stopped_member_and_restart_it() {
    let mut cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();
    let workload = Workload {
        overwrites: 1.0,
        deletes: 0.5,
        ..Workload::new(3_000)
    };
    let load = testenv::load(&client, &workload).await.unwrap();
    client.compact(load.revision, true).await.unwrap();
    let expected = common::all_keys(&client, false).await;
    let data_dir = cluster.members()[0].data_dir.clone();
    let d = data_dir.to_str().unwrap().to_string();

    // While etcd runs, its backend is locked: refused.
    let (code, _, err) = salvor(&["etcd", "defrag", "--data-dir", &d]);
    assert_eq!(code, 1);
    assert!(err.contains("locked"), "{err}");

    cluster.stop(0).await.unwrap();
    let before = std::fs::metadata(data_dir.join("member/snap/db"))
        .unwrap()
        .len();
    let (code, out, err) = salvor(&[
        "etcd",
        "defrag",
        "--data-dir",
        &d,
        "--dry-run",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let dry: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        std::fs::metadata(data_dir.join("member/snap/db"))
            .unwrap()
            .len(),
        before
    );
    let (code, out, err) = salvor(&[
        "etcd",
        "defrag",
        "--data-dir",
        &d,
        "--keep-old",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["hash"], dry["hash"]);
    let after = std::fs::metadata(data_dir.join("member/snap/db"))
        .unwrap()
        .len();
    assert!(after < before / 2, "{before} -> {after}");
    assert!(data_dir.join("member/snap/db.pre-defrag").exists());
    let (code, out, _) = salvor(&["etcd", "check", &d]);
    assert_eq!(code, 0, "{out}");

    cluster.restart(0).await.unwrap();
    let client = cluster.client().await.unwrap();
    assert!(common::all_keys(&client, false).await == expected);
    client.put("/after-defrag", "x").await.unwrap();
}

#[test]
fn interrupted_defrag_leaves_the_original() {
    let tmp = tempfile::tempdir().unwrap();
    let db_dir = tmp.path().join("member/snap");
    std::fs::create_dir_all(&db_dir).unwrap();
    let db = db_dir.join("db");
    common::big_db(&db, 10_000, false);
    let original = std::fs::read(&db).unwrap();
    let d = tmp.path().to_str().unwrap();
    common::kill_after(
        &["etcd", "defrag", "--data-dir", d],
        Duration::from_millis(100),
    );
    assert!(
        std::fs::read(&db).unwrap() == original,
        "an interrupted defrag changed the backend"
    );
    let (code, _, err) = salvor(&["etcd", "defrag", "--data-dir", d]);
    assert_eq!(code, 0, "{err}");
    assert!(!db_dir.join("db.defrag.part").exists());
}
