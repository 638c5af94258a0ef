//! `salvor etcd snapshot restore` against real etcd 3.4: a snapshot restored into each
//! member of a new three-member cluster starts and serves every key at the snapshot's
//! revision; the WAL and .snap files are byte-identical to `etcdctl snapshot restore`'s;
//! the bumped-revision restore moves revisions forward; bad inputs are refused; an
//! interrupted restore never leaves a data dir that looks complete.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
use common::salvor;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use etcd_rpc::proto::RangeRequest;
use serde_json::Value;
use testenv::{EtcdCluster, EtcdOptions, Workload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_three_member_cluster_serves_every_key() {
    // A source cluster with history: overwrites, deletes, a compaction, a lease.
    let mut source = EtcdCluster::start(1).await.unwrap();
    let client = source.client().await.unwrap();
    let workload = Workload {
        overwrites: 0.3,
        deletes: 0.1,
        ..Workload::new(4_000)
    };
    let load = testenv::load(&client, &workload).await.unwrap();
    client.compact(load.revision / 2, true).await.unwrap();
    let lease = client.lease_grant(3600).await.unwrap();
    client
        .put_request(etcd_rpc::proto::PutRequest {
            key: b"/leased".to_vec(),
            value: b"v".to_vec(),
            lease: lease.id,
            ..Default::default()
        })
        .await
        .unwrap();
    let expected = common::all_keys(&client, false).await;
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("snap.db");
    source.etcdctl_snapshot_save(&snap).unwrap();
    let snap_status: Value = serde_json::from_str(
        &salvor(&[
            "etcd",
            "snapshot",
            "status",
            snap.to_str().unwrap(),
            "-o",
            "json",
        ])
        .1,
    )
    .unwrap();
    let revision = snap_status["revision"].as_i64().unwrap();
    drop(source);

    // Restore into each member of a new cluster, then start it.
    let snap_str = snap.to_str().unwrap().to_string();
    let restored = EtcdCluster::start_prepared(EtcdOptions::members(3), |members, token| {
        let initial = testenv::initial_cluster(members);
        for m in members {
            let (code, out, err) = salvor(&common::restore_args(
                &snap_str,
                m.data_dir.to_str().unwrap(),
                &m.name,
                &initial,
                token,
                &m.peer_url,
            ));
            if code != 0 {
                return Err(testenv::Error::Prepare(format!("{out}{err}")));
            }
            // The output passes Salvor's own check.
            let (code, out, _) =
                salvor(&["etcd", "check", m.data_dir.to_str().unwrap(), "-o", "json"]);
            if code != 0 {
                return Err(testenv::Error::Prepare(format!("check: {out}")));
            }
        }
        Ok(())
    })
    .await
    .unwrap();

    // Every member serves every key, with its original value and mod revision.
    for index in 0..3 {
        let member = restored.member_client(index).await.unwrap();
        let status = member.status().await.unwrap();
        assert_eq!(status.header.unwrap().revision, revision);
        let got = common::all_keys(&member, false).await;
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "member {index} differs from the source");
    }
    // The members agree on HashKV, and the cluster takes writes at the next revision.
    let mut hashes = Vec::new();
    for index in 0..3 {
        let member = restored.member_client(index).await.unwrap();
        hashes.push(member.hash_kv(revision).await.unwrap().hash);
    }
    assert!(hashes.windows(2).all(|w| w[0] == w[1]), "{hashes:?}");
    let client = restored.client().await.unwrap();
    let put = client.put("/after-restore", "x").await.unwrap();
    assert_eq!(put.header.unwrap().revision, revision + 1);
    // The lease survived (etcd restores leases from the backend).
    let leases = client.lease_leases().await.unwrap();
    assert!(leases.leases.iter().any(|l| l.id == lease.id));
}

#[test]
fn wal_and_snap_are_byte_identical_to_etcdctl() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testenv/fixtures/tiny.db");
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("tiny.db");
    std::fs::copy(&fixture, &snap).unwrap();
    let initial = "a=http://127.0.0.1:2380,b=http://127.0.0.1:2381,c=http://127.0.0.1:2382";
    let ours = tmp.path().join("ours");
    let theirs = tmp.path().join("theirs");
    let (code, _, err) = salvor(&common::restore_args(
        snap.to_str().unwrap(),
        ours.to_str().unwrap(),
        "b",
        initial,
        "tok-1",
        "http://127.0.0.1:2381",
    ));
    assert_eq!(code, 0, "{err}");
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "restore", snap.to_str().unwrap()])
        .args(["--data-dir", theirs.to_str().unwrap()])
        .args(["--name", "b", "--initial-cluster", initial])
        .args(["--initial-cluster-token", "tok-1"])
        .args(["--initial-advertise-peer-urls", "http://127.0.0.1:2381"])
        .output()
        .expect("etcdctl must be installed (Debian etcd-client)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for rel in [
        "member/wal/0000000000000000-0000000000000000.wal",
        "member/snap/0000000000000001-0000000000000003.snap",
    ] {
        let a = std::fs::read(ours.join(rel)).unwrap();
        let b = std::fs::read(theirs.join(rel)).unwrap();
        assert!(a == b, "{rel} differs from etcdctl's");
    }
    // The backends hold the same keys; ours also replaces the old members with the new.
    let status = |dir: &Path| -> Value {
        serde_json::from_str(
            &salvor(&[
                "etcd",
                "snapshot",
                "status",
                dir.to_str().unwrap(),
                "-o",
                "json",
            ])
            .1,
        )
        .unwrap()
    };
    let (a, b) = (status(&ours), status(&theirs));
    assert_eq!(a["revision"], b["revision"]);
    assert_eq!(a["consistentIndex"], b["consistentIndex"]);
    assert_eq!(a["keyRevisions"], b["keyRevisions"]);
    let mut names: Vec<&str> = a["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["a", "b", "c"]); // the new members, not the snapshot's old one
    // bbolt itself accepts the backend.
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers/bbolt-check");
    let out = Command::new(&peer)
        .arg(ours.join("member/snap/db"))
        .output()
        .expect("target/peers/bbolt-check is built by tools/peers/build.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bumped_revision_moves_forward_and_is_compacted() {
    let mut source = EtcdCluster::start(1).await.unwrap();
    let client = source.client().await.unwrap();
    let load = testenv::load(&client, &Workload::new(500)).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("snap.db");
    source.etcdctl_snapshot_save(&snap).unwrap();
    drop(source);
    let snap_str = snap.to_str().unwrap().to_string();
    let restored = EtcdCluster::start_prepared(EtcdOptions::members(1), |members, token| {
        let m = &members[0];
        let initial = testenv::initial_cluster(members);
        let mut args = common::restore_args(
            &snap_str,
            m.data_dir.to_str().unwrap(),
            &m.name,
            &initial,
            token,
            &m.peer_url,
        );
        args.extend(["--bump-revision", "10000", "--mark-compacted"]);
        let (code, out, err) = salvor(&args);
        if code != 0 {
            return Err(testenv::Error::Prepare(format!("{out}{err}")));
        }
        Ok(())
    })
    .await
    .unwrap();
    let client = restored.client().await.unwrap();
    let put = client.put("/new", "v").await.unwrap();
    assert_eq!(put.header.unwrap().revision, load.revision + 10_000 + 1);
    // Old revisions read as compacted.
    let old = client
        .range(RangeRequest {
            key: b"/new".to_vec(),
            revision: load.revision,
            ..Default::default()
        })
        .await;
    let err = format!("{:?}", old.unwrap_err());
    assert!(err.contains("compacted"), "{err}");
    // Every key is still there.
    assert_eq!(common::all_keys(&client, false).await.len(), 501);
}

#[test]
fn refuses_bad_inputs_and_never_overwrites() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testenv/fixtures/tiny.db");
    let tmp = tempfile::tempdir().unwrap();
    let snap = tmp.path().join("tiny.db");
    std::fs::copy(&fixture, &snap).unwrap();
    let s = snap.to_str().unwrap();
    let dir = tmp.path().join("out");
    let d = dir.to_str().unwrap();
    // A dry run checks everything and writes nothing.
    let (code, out, err) = salvor(&[
        "etcd",
        "snapshot",
        "restore",
        s,
        "--data-dir",
        d,
        "--dry-run",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("dry run"), "{out}");
    assert!(!dir.exists());
    // Existing, non-empty data dir.
    std::fs::create_dir_all(dir.join("member")).unwrap();
    let (code, _, err) = salvor(&["etcd", "snapshot", "restore", s, "--data-dir", d]);
    assert_eq!(code, 1);
    assert!(err.contains("exists and is not empty"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
    // --name not in --initial-cluster.
    let (code, _, err) = salvor(&[
        "etcd",
        "snapshot",
        "restore",
        s,
        "--data-dir",
        d,
        "--name",
        "x",
        "--initial-cluster",
        "a=http://127.0.0.1:1",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("not a member"), "{err}");
    // A flipped byte: the sha256 trailer no longer matches.
    let mut bytes = std::fs::read(&snap).unwrap();
    bytes[5000] ^= 0xff;
    let bad = tmp.path().join("bad.db");
    std::fs::write(&bad, &bytes).unwrap();
    let (code, _, err) = salvor(&[
        "etcd",
        "snapshot",
        "restore",
        bad.to_str().unwrap(),
        "--data-dir",
        d,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("sha256"), "{err}");
    assert!(!dir.exists());
    // A raw db without a trailer needs --skip-hash-check.
    let raw = tmp.path().join("raw.db");
    std::fs::write(&raw, &bytes[..bytes.len() - 32]).unwrap();
    let mut fixed = std::fs::read(&snap).unwrap();
    fixed.truncate(fixed.len() - 32);
    std::fs::write(&raw, &fixed).unwrap();
    let (code, _, err) = salvor(&[
        "etcd",
        "snapshot",
        "restore",
        raw.to_str().unwrap(),
        "--data-dir",
        d,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("--skip-hash-check"), "{err}");
    let (code, _, err) = salvor(&[
        "etcd",
        "snapshot",
        "restore",
        raw.to_str().unwrap(),
        "--data-dir",
        d,
        "--skip-hash-check",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(dir.join("member/snap/db").exists());
}

#[test]
fn interrupted_restore_leaves_nothing_that_looks_complete() {
    // A 600 MB snapshot written with the bulk writer (values of 60 kB), with a trailer.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.db");
    common::big_db(&path, 10_000, true);

    let data_dir = tmp.path().join("restored");
    common::kill_after(
        &[
            "etcd",
            "snapshot",
            "restore",
            path.to_str().unwrap(),
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        Duration::from_millis(100),
    );
    assert!(
        !data_dir.exists(),
        "an interrupted restore left {}",
        data_dir.display()
    );
    // Running it again cleans up the leftover and completes.
    let (code, _, err) = salvor(&[
        "etcd",
        "snapshot",
        "restore",
        path.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(data_dir.join("member/snap/db").exists());
    assert!(!tmp.path().join("restored.part").exists());
}
