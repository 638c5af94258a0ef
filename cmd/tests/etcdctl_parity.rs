//! `salvor etcd snapshot …` against the real etcd 3.4 and etcdctl the snapshots come from:
//! same numbers for `status`, same key-values for `ls`/`get` (with `--rev`, `--prefix`),
//! history consistent with `etcdctl get --rev`, and `HashKV` equal to
//! `etcdctl endpoint hashkv --rev`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
use common::salvor;

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde_json::Value;
use snapshot_format::etcd::{OpenOptions, Snapshot};
use testenv::{EtcdCluster, Workload};

fn salvor_json(args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (code, stdout, stderr) = salvor(&all);
    assert_eq!(code, 0, "salvor {args:?} failed: {stderr}");
    serde_json::from_str(&stdout).unwrap()
}

fn etcdctl_json(cluster: &EtcdCluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-w", "json"]);
    serde_json::from_str(&cluster.run_etcdctl(&all).unwrap()).unwrap()
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// Salvor renders bytes as a string (UTF-8) or `{"base64": …}`.
fn salvor_bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Object(o) => b64(o["base64"].as_str().unwrap()),
        other => panic!("not a byte rendering: {other}"),
    }
}

/// (create, mod, version, lease, value) per key.
type Kvs = BTreeMap<Vec<u8>, (i64, i64, i64, i64, Vec<u8>)>;

fn etcdctl_kvs(v: &Value) -> Kvs {
    let n = |kv: &Value, f: &str| kv.get(f).and_then(Value::as_i64).unwrap_or(0);
    v.get("kvs")
        .and_then(Value::as_array)
        .map(|kvs| {
            kvs.iter()
                .map(|kv| {
                    let value = kv
                        .get("value")
                        .and_then(Value::as_str)
                        .map(b64)
                        .unwrap_or_default();
                    let fields = (
                        n(kv, "create_revision"),
                        n(kv, "mod_revision"),
                        n(kv, "version"),
                        n(kv, "lease"),
                        value,
                    );
                    (b64(kv["key"].as_str().unwrap()), fields)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn salvor_kvs(v: &Value) -> Kvs {
    v["kvs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            let fields = (
                kv["createRevision"].as_i64().unwrap(),
                kv["modRevision"].as_i64().unwrap(),
                kv["version"].as_i64().unwrap(),
                kv["lease"].as_i64().unwrap(),
                salvor_bytes(&kv["value"]),
            );
            (salvor_bytes(&kv["key"]), fields)
        })
        .collect()
}

fn assert_status_matches(cluster: &EtcdCluster, file: &Path, what: &str) {
    let path = file.to_str().unwrap();
    let theirs = etcdctl_json(cluster, &["snapshot", "status", path]);
    let ours = salvor_json(&["etcd", "snapshot", "status", path]);
    for field in ["hash", "revision", "totalKey", "totalSize"] {
        assert_eq!(ours[field], theirs[field], "{what}: {field} differs");
    }
}

fn assert_hashkv_matches(cluster: &EtcdCluster, file: &Path, rev: i64) {
    let theirs = etcdctl_json(cluster, &["endpoint", "hashkv", "--rev", &rev.to_string()]);
    let theirs = &theirs[0]["HashKV"];
    let snap = Snapshot::open(file, &OpenOptions::default()).unwrap();
    let ours = snap.hash_kv(rev).unwrap();
    assert_eq!(
        ours.hash as u64,
        theirs["hash"].as_u64().unwrap(),
        "HashKV at {rev}"
    );
    assert_eq!(
        ours.compact_revision,
        theirs["compact_revision"].as_i64().unwrap_or(0)
    );
}

fn current_revision(cluster: &EtcdCluster) -> i64 {
    etcdctl_json(cluster, &["endpoint", "status"])[0]["Status"]["header"]["revision"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_agrees_with_etcdctl() {
    let mut cluster = EtcdCluster::start(1).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = cluster.client().await.unwrap();

    let empty = dir.path().join("empty.db");
    cluster.etcdctl_snapshot_save(&empty).unwrap();
    assert_status_matches(&cluster, &empty, "empty");

    cluster
        .run_etcdctl(["put", "/registry/namespaces/default", "v"])
        .unwrap();
    let one = dir.path().join("one.db");
    cluster.etcdctl_snapshot_save(&one).unwrap();
    assert_status_matches(&cluster, &one, "one key");
    assert_hashkv_matches(&cluster, &one, 0);

    let workload = Workload {
        overwrites: 0.3,
        deletes: 0.1,
        ..Workload::new(100_000)
    };
    let report = testenv::load(&client, &workload).await.unwrap();
    assert_eq!(report.writes(), workload.write_count() as u64);
    let big = dir.path().join("100k.db");
    cluster.etcdctl_snapshot_save(&big).unwrap();
    assert_status_matches(&cluster, &big, "100k keys with overwrites and deletes");
    let rev = current_revision(&cluster);
    assert_hashkv_matches(&cluster, &big, rev);
    assert_hashkv_matches(&cluster, &big, rev / 2);

    let compact_at = rev * 3 / 4;
    cluster
        .run_etcdctl(["compact", &compact_at.to_string(), "--physical"])
        .unwrap();
    cluster
        .run_etcdctl(["put", "/registry/pods/default/after", "x"])
        .unwrap();
    cluster
        .run_etcdctl(["del", "/registry/pods/default/after"])
        .unwrap();
    let compacted = dir.path().join("compacted.db");
    cluster.etcdctl_snapshot_save(&compacted).unwrap();
    assert_status_matches(&cluster, &compacted, "after a compaction");
    let rev = current_revision(&cluster);
    for at in [rev, compact_at + 1, (compact_at + rev) / 2] {
        assert_hashkv_matches(&cluster, &compacted, at);
    }
    let ours = salvor_json(&["etcd", "snapshot", "status", compacted.to_str().unwrap()]);
    assert_eq!(ours["compactedRevision"], compact_at);
    assert_eq!(
        ours["members"][0]["name"],
        cluster.members()[0].name.as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ls_get_history_agree_with_etcdctl_get() {
    let mut cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();
    let workload = Workload {
        overwrites: 0.5,
        deletes: 0.1,
        seed: 7,
        ..Workload::new(3_000)
    };
    testenv::load(&client, &workload).await.unwrap();
    let mid = current_revision(&cluster);
    let compact_at = mid / 3;
    cluster
        .run_etcdctl(["compact", &compact_at.to_string(), "--physical"])
        .unwrap();
    let more = Workload {
        overwrites: 1.0,
        seed: 8,
        ..Workload::new(500)
    };
    testenv::load(&client, &more).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snap.db");
    cluster.etcdctl_snapshot_save(&file).unwrap();
    let path = file.to_str().unwrap();
    let newest = current_revision(&cluster);

    // ls by prefix at several revisions, values included.
    for rev in [0, compact_at, compact_at + 1, mid, newest - 7] {
        for prefix in [
            "/registry/",
            "/registry/pods/",
            "/registry/configmaps/kube-system/",
        ] {
            let theirs = etcdctl_json(
                &cluster,
                &["get", prefix, "--prefix", "--rev", &rev.to_string()],
            );
            let ours = salvor_json(&[
                "etcd",
                "snapshot",
                "ls",
                path,
                prefix,
                "--rev",
                &rev.to_string(),
                "--values",
            ]);
            assert_eq!(
                salvor_kvs(&ours),
                etcdctl_kvs(&theirs),
                "ls {prefix} at {rev}"
            );
            assert_eq!(ours["count"].as_u64(), theirs["count"].as_u64().or(Some(0)));
        }
    }

    // get: live, overwritten and deleted keys, at several revisions.
    let deleted = workload.key(workload.deleted_keys()[0]);
    let overwritten = workload.key(workload.overwrite_target(0));
    let plain = workload.key(1);
    for key in [&deleted, &overwritten, &plain] {
        for rev in [0, compact_at, mid, newest] {
            let theirs = etcdctl_json(&cluster, &["get", key, "--rev", &rev.to_string()]);
            let ours = salvor_json(&[
                "etcd",
                "snapshot",
                "get",
                path,
                key,
                "--rev",
                &rev.to_string(),
            ]);
            assert_eq!(
                salvor_kvs(&ours),
                etcdctl_kvs(&theirs),
                "get {key} at {rev}"
            );
        }
    }

    // history: every PUT is what etcdctl returns at that revision; every DELETE makes the
    // key disappear at that revision; nothing below the compacted revision is claimed
    // that etcd would not serve.
    for key in [&deleted, &overwritten] {
        let history = salvor_json(&["etcd", "snapshot", "history", path, key]);
        let entries = history.as_array().unwrap();
        assert!(!entries.is_empty(), "{key} has history");
        for entry in entries {
            let rev = entry["revision"].as_i64().unwrap();
            let at = rev.max(compact_at).to_string();
            let theirs = etcdctl_kvs(&etcdctl_json(&cluster, &["get", key, "--rev", &at]));
            match entry["event"].as_str().unwrap() {
                "PUT" if rev >= compact_at => {
                    let (_, (create, modr, version, _, _)) = theirs.iter().next().unwrap();
                    assert_eq!(*modr, rev, "{key} at {rev}");
                    assert_eq!(*create, entry["createRevision"].as_i64().unwrap());
                    assert_eq!(*version, entry["version"].as_i64().unwrap());
                }
                "DELETE" => assert!(theirs.is_empty(), "{key} deleted at {rev}"),
                _ => {}
            }
        }
        let mods: Vec<i64> = entries
            .iter()
            .map(|e| e["revision"].as_i64().unwrap())
            .collect();
        assert!(
            mods.windows(2).all(|w| w[0] < w[1]),
            "history in revision order: {mods:?}"
        );
    }

    // Below the compacted revision both tools refuse.
    let below = (compact_at - 1).to_string();
    assert!(
        cluster
            .run_etcdctl(["get", "/registry/", "--prefix", "--rev", &below])
            .is_err()
    );
    let (code, _, stderr) = salvor(&["etcd", "snapshot", "ls", path, "--rev", &below]);
    assert_eq!(code, 1);
    assert!(stderr.contains("compacted"), "{stderr}");

    // Keys only and limits.
    let ours = salvor_json(&[
        "etcd",
        "snapshot",
        "ls",
        path,
        "/registry/pods/",
        "--limit",
        "5",
    ]);
    assert_eq!(ours["kvs"].as_array().unwrap().len(), 5);
    assert_eq!(ours["more"], true);
    let (code, keys, _) = salvor(&[
        "etcd",
        "snapshot",
        "ls",
        path,
        "/registry/pods/",
        "--keys-only",
    ]);
    assert_eq!(code, 0);
    let theirs = cluster
        .run_etcdctl(["get", "/registry/pods/", "--prefix", "--keys-only"])
        .unwrap();
    let theirs: Vec<&str> = theirs.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(keys.lines().collect::<Vec<_>>(), theirs);
}
