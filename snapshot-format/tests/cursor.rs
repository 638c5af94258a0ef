//! Ordered cursors and seeks over a real etcd snapshot agree with full scans.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use snapshot_format::bbolt::SourceKind;
use snapshot_format::etcd::{OpenOptions, Snapshot, buckets};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testenv/fixtures/k8s-small.db")
}

#[test]
fn cursor_walk_equals_scan_and_seek_finds_every_key() {
    for source in [SourceKind::Memory, SourceKind::Pread, SourceKind::Mmap] {
        let snap = Snapshot::open(
            &fixture(),
            &OpenOptions {
                source,
                verify_trailer: false,
                ..Default::default()
            },
        )
        .unwrap();
        for name in snap.db().bucket_names().unwrap() {
            let bucket = snap.db().bucket(&name).unwrap().unwrap();
            let mut scanned = Vec::new();
            bucket
                .for_each(|e| {
                    scanned.push((e.key.to_vec(), e.value.to_vec()));
                    Ok(())
                })
                .unwrap();
            let mut walked = Vec::new();
            let mut cursor = bucket.cursor();
            let mut entry = cursor
                .first()
                .unwrap()
                .map(|e| (e.key.to_vec(), e.value.to_vec()));
            while let Some(kv) = entry {
                walked.push(kv);
                entry = cursor
                    .next()
                    .unwrap()
                    .map(|e| (e.key.to_vec(), e.value.to_vec()));
            }
            assert_eq!(
                walked,
                scanned,
                "bucket {:?}",
                String::from_utf8_lossy(&name)
            );
            assert_eq!(
                bucket.last_key().unwrap(),
                scanned.last().map(|(k, _)| k.clone())
            );

            for (i, (key, value)) in scanned.iter().enumerate() {
                let mut c = bucket.cursor();
                let found = c.seek(key).unwrap().unwrap();
                assert_eq!((found.key, found.value), (key.as_slice(), value.as_slice()));
                assert_eq!(bucket.get(key).unwrap().as_ref(), Some(value));
                // Between this key and the next, seek lands on the next.
                let mut between = key.clone();
                between.push(0);
                let next = c.seek(&between).unwrap().map(|e| e.key.to_vec());
                assert_eq!(next, scanned.get(i + 1).map(|(k, _)| k.clone()));
            }
            let mut past = scanned.last().map(|(k, _)| k.clone()).unwrap_or_default();
            past.push(0xff);
            assert!(bucket.cursor().seek(&past).unwrap().is_none());
            assert!(bucket.get(&past).unwrap().is_none());
        }
    }
}

#[test]
fn buckets_of_etcd_34_are_present_and_small_ones_inline() {
    let snap = Snapshot::open(&fixture(), &OpenOptions::default()).unwrap();
    let names: Vec<String> = snap
        .db()
        .bucket_names()
        .unwrap()
        .into_iter()
        .map(|n| String::from_utf8(n).unwrap())
        .collect();
    for expected in [
        buckets::KEY,
        buckets::META,
        buckets::LEASE,
        buckets::MEMBERS,
        buckets::CLUSTER,
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} in {names:?}"
        );
    }
    assert!(!snap.key_bucket().unwrap().is_inline());
    assert!(snap.db().bucket(b"members").unwrap().unwrap().is_inline());
    assert_eq!(snap.leases().unwrap().len(), 1);
    assert_eq!(snap.cluster_version().unwrap().as_deref(), Some("3.4.0"));
    assert_eq!(snap.etcd_meta().unwrap().compact_revision(), 400);
}
