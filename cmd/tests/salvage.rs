//! `salvor etcd salvage` on databases damaged by testenv's corruption generator: every
//! revision whose page was intact is recovered with its exact value, nothing else is
//! invented, the output passes `salvor etcd check` and bbolt's own check, losses are
//! reported, and real etcd 3.4 starts on a restored salvaged db.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
use common::salvor;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use snapshot_format::bbolt::check::check;
use snapshot_format::bbolt::{Db, MemorySource};
use testenv::damage::{Damage, apply};
use testenv::{EtcdCluster, EtcdOptions, Workload};

/// Every `key` bucket record of a db: revision key -> (value, leaf page, pages it spans).
fn records(path: &Path) -> BTreeMap<Vec<u8>, (Vec<u8>, u64, u64)> {
    let mut bytes = std::fs::read(path).unwrap();
    if bytes.len() % 512 == 32 {
        bytes.truncate(bytes.len() - 32);
    }
    let db = Db::open(Box::new(MemorySource::from_bytes(bytes))).unwrap();
    let mut out = BTreeMap::new();
    let result = check(&db, &mut |e| {
        if e.bucket_path.len() == 1 && e.bucket_path[0] == b"key" {
            out.insert(
                e.element.key.to_vec(),
                (e.element.value.to_vec(), e.at.page.unwrap_or(0), 1),
            );
        }
    });
    assert!(result.problems.is_empty(), "{:?}", result.problems);
    for (_, page, span) in out.values_mut() {
        *span = db.read_page(*page).map_or(1, |p| p.span());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salvage_recovers_every_intact_revision() {
    let mut cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();
    let workload = Workload {
        overwrites: 0.3,
        deletes: 0.05,
        ..Workload::new(3_000)
    };
    let load = testenv::load(&client, &workload).await.unwrap();
    client.compact(load.revision / 3, true).await.unwrap();
    for i in 0..50 {
        client.put(format!("/after/{i}"), "x").await.unwrap();
    }
    let tmp = tempfile::tempdir().unwrap();
    let original = tmp.path().join("original.db");
    cluster.etcdctl_snapshot_save(&original).unwrap();
    drop(cluster);
    let orig = records(&original);
    let page_size = 4096u64;
    let peer = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers/bbolt-check");

    for damage in Damage::ALL {
        let broken = tmp.path().join(format!("{damage:?}.db"));
        let applied = apply(&original, &broken, damage).unwrap();
        let out = tmp.path().join(format!("{damage:?}.salvaged"));
        let (code, stdout, stderr) = salvor(&[
            "etcd",
            "salvage",
            broken.to_str().unwrap(),
            out.to_str().unwrap(),
            "-o",
            "json",
        ]);
        assert!(code == 0 || code == 3, "{damage:?}: {stderr}");
        let report: Value = serde_json::from_str(&stdout).unwrap();
        // Pages whose records may be lost.
        let on_damaged = |page: u64, span: u64| match damage {
            Damage::ZeroLeafPage | Damage::FlipLeafElement | Damage::GarbleRecord => {
                applied.page == Some(page)
            }
            // A page cut anywhere (its overflow included) is damaged.
            Damage::Truncate => (page + span) * page_size > applied.offset,
            _ => false,
        };
        let got = records(&out);
        // Nothing invented or altered.
        for (k, (v, _, _)) in &got {
            let (ov, _, _) = orig
                .get(k)
                .unwrap_or_else(|| panic!("{damage:?}: salvage invented revision {k:?}"));
            assert!(ov == v, "{damage:?}: revision {k:?} has a different value");
        }
        // Everything intact is there.
        let mut missing = 0;
        for (k, (_, page, span)) in &orig {
            if got.contains_key(k) {
                continue;
            }
            assert!(
                on_damaged(*page, *span),
                "{damage:?}: intact revision {k:?} (page {page}) was not recovered"
            );
            missing += 1;
        }
        // Losses are reported, and only when real.
        assert_eq!(
            report["complete"].as_bool().unwrap(),
            missing == 0,
            "{damage:?}: complete={} but {missing} revisions missing",
            report["complete"]
        );
        assert_eq!(code == 0, missing == 0, "{damage:?}");
        if matches!(damage, Damage::ZeroLeafPage | Damage::GarbleRecord) {
            assert!(missing > 0, "{damage:?} should lose the damaged records");
        }
        // The output is a clean etcd db for Salvor and for bbolt.
        let (code, check_out, _) = salvor(&["etcd", "check", out.to_str().unwrap()]);
        assert_eq!(code, 0, "{damage:?}: {check_out}");
        let bolt = Command::new(&peer)
            .arg(&out)
            .output()
            .expect("target/peers/bbolt-check");
        assert!(
            bolt.status.success(),
            "{damage:?}: {}",
            String::from_utf8_lossy(&bolt.stdout)
        );
        // The input was not modified.
        assert!(std::fs::metadata(&broken).is_ok());
    }

    // Real etcd starts on a salvaged db (restored as a one-member cluster) and serves
    // every key the original had.
    let salvaged = tmp.path().join("FlipBranchElement.salvaged");
    let salvaged_str = salvaged.to_str().unwrap().to_string();
    let restored = EtcdCluster::start_prepared(EtcdOptions::members(1), |members, token| {
        let m = &members[0];
        let initial = testenv::initial_cluster(members);
        let mut args = common::restore_args(
            &salvaged_str,
            m.data_dir.to_str().unwrap(),
            &m.name,
            &initial,
            token,
            &m.peer_url,
        );
        args.push("--skip-hash-check");
        let (code, out, err) = salvor(&args);
        if code != 0 {
            return Err(testenv::Error::Prepare(format!("{out}{err}")));
        }
        Ok(())
    })
    .await
    .unwrap();
    let client = restored.client().await.unwrap();
    let count = client
        .range(etcd_rpc::proto::RangeRequest {
            key: vec![0],
            range_end: vec![0],
            count_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .count;
    let live: BTreeSet<Vec<u8>> = {
        // Keys alive at the newest revision of the original.
        let mut alive: BTreeMap<Vec<u8>, bool> = BTreeMap::new();
        for (k, (v, _, _)) in &orig {
            let tomb = k.len() == 18;
            let kv = snapshot_format::mvcc::KeyValueRef::parse(v).unwrap();
            alive.insert(kv.key.to_vec(), !tomb);
        }
        alive
            .into_iter()
            .filter(|(_, a)| *a)
            .map(|(k, _)| k)
            .collect()
    };
    assert_eq!(count as usize, live.len());
}

#[test]
fn salvage_never_panics_on_hostile_files() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../testenv/fixtures/k8s-small.db");
    let good = std::fs::read(&fixture).unwrap();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut inputs: Vec<Vec<u8>> = vec![
        Vec::new(),
        vec![0u8; 4096 * 8],
        (0..100_000).map(|_| next() as u8).collect(),
        good[..good.len() / 3].to_vec(),
    ];
    for _ in 0..40 {
        let mut b = good.clone();
        for _ in 0..200 {
            let at = (next() as usize) % b.len();
            b[at] = next() as u8;
        }
        inputs.push(b);
    }
    for (i, bytes) in inputs.iter().enumerate() {
        let input = tmp.path().join(format!("in-{i}.db"));
        std::fs::write(&input, bytes).unwrap();
        let out = tmp.path().join(format!("out-{i}.db"));
        let (code, _, err) = salvor(&[
            "etcd",
            "salvage",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
        ]);
        assert!(matches!(code, 0 | 1 | 3), "input {i}: exit {code}: {err}");
        if code != 1 {
            // Whatever was written is a clean database.
            let (c, o, _) = salvor(&["etcd", "check", out.to_str().unwrap()]);
            assert_eq!(c, 0, "input {i}: {o}");
        } else {
            assert!(
                !out.exists(),
                "input {i}: a failed salvage left {}",
                out.display()
            );
        }
    }
}

#[test]
fn interrupted_salvage_leaves_nothing_that_looks_complete() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("big.db");
    common::big_db(&input, 10_000, false);
    let out = tmp.path().join("salvaged.db");
    common::kill_after(
        &[
            "etcd",
            "salvage",
            input.to_str().unwrap(),
            out.to_str().unwrap(),
        ],
        std::time::Duration::from_millis(100),
    );
    assert!(
        !out.exists(),
        "an interrupted salvage left {}",
        out.display()
    );
    let (code, _, err) = salvor(&[
        "etcd",
        "salvage",
        input.to_str().unwrap(),
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(records(&out).len(), 10_000);
}
