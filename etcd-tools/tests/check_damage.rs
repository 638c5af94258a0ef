//! `check` on a real etcd snapshot and on copies damaged by testenv's generator: each
//! damage is reported with the right code at the right page; the undamaged file is clean.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use etcd_tools::check::{Severity, check_path};
use testenv::damage::{self, Damage};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testenv/fixtures/k8s-small.db")
}

#[test]
fn an_undamaged_snapshot_from_real_etcd_is_clean() {
    let report = check_path(&fixture());
    let worse_than_info: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity > Severity::Info)
        .collect();
    assert!(worse_than_info.is_empty(), "{worse_than_info:#?}");
    let stats = report.bbolt.unwrap();
    assert_eq!(stats.entries, 378);
    assert!(stats.unreachable_pages > 0);
    assert_eq!(report.mvcc.unwrap().revisions, 361);
}

#[test]
fn every_damage_is_found_where_it_was_made() {
    let dir = tempfile::tempdir().unwrap();
    for kind in Damage::ALL {
        let path = dir.path().join(format!("{kind:?}.db"));
        let applied = damage::apply(&fixture(), &path, kind).unwrap();
        let report = check_path(&path);
        let (code, page) = match kind {
            Damage::Truncate => ("BBOLT_FILE_TRUNCATED", None),
            Damage::ZeroMetaPage => ("BBOLT_META_INVALID", Some(0)),
            Damage::FlipMetaByte => ("BBOLT_META_INVALID", Some(1)),
            Damage::ZeroLeafPage => ("BBOLT_PAGE_ID_MISMATCH", applied.page),
            Damage::FlipLeafElement | Damage::FlipBranchElement => {
                ("BBOLT_ELEMENT_OUT_OF_BOUNDS", applied.page)
            }
            Damage::BranchSelfReference | Damage::DuplicatePageReference => {
                ("BBOLT_PAGE_REFERENCED_TWICE", applied.page)
            }
            Damage::GarbleRecord => ("MVCC_BAD_KEY_VALUE", applied.page),
            Damage::BreakTrailer => ("SNAPSHOT_TRAILER_MISMATCH", None),
        };
        let found = report.findings.iter().find(|f| f.code == code);
        let found =
            found.unwrap_or_else(|| panic!("{kind:?}: no {code} in {:#?}", report.findings));
        assert_eq!(found.severity, Severity::Error, "{kind:?}");
        if page.is_some() {
            assert_eq!(found.location.page, page, "{kind:?}: {found:#?}");
        }
        assert!(!found.remedy.is_empty() && !found.meaning.is_empty());
        assert!(!report.is_clean(), "{kind:?}");
        if kind == Damage::BreakTrailer {
            // Only the trailer is wrong: nothing else may be reported.
            assert_eq!(report.count(Severity::Warning), 1, "{:#?}", report.findings);
        }
    }
}

#[test]
fn a_raw_db_with_a_torn_meta_page_is_a_warning_not_an_error() {
    // Without a trailer (a member's db), one bad meta page is what bbolt survives.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixture()).unwrap();
    bytes.truncate(bytes.len() - 32);
    bytes[..4096].fill(0);
    let path = dir.path().join("db");
    std::fs::write(&path, &bytes).unwrap();
    let report = check_path(&path);
    let meta = report
        .findings
        .iter()
        .find(|f| f.code == "BBOLT_META_INVALID")
        .unwrap();
    assert_eq!(meta.severity, Severity::Warning);
    assert!(report.is_clean(), "{:#?}", report.findings);
}

/// The Go peer, built from Debian's bbolt by `tools/peers/build.sh` (`.ci/run` and
/// `scripts/test` build it).
fn bbolt_check() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers/bbolt-check");
    assert!(
        path.exists(),
        "{} missing: run tools/peers/build.sh",
        path.display()
    );
    path
}

#[test]
fn whatever_bbolt_check_reports_salvor_reports_too() {
    let peer = bbolt_check();
    let dir = tempfile::tempdir().unwrap();
    let clean = std::process::Command::new(&peer)
        .arg(fixture())
        .output()
        .unwrap();
    assert!(
        clean.status.success(),
        "bbolt check on the undamaged fixture"
    );
    let mut peer_found = 0;
    for kind in Damage::ALL {
        let path = dir.path().join(format!("{kind:?}.db"));
        damage::apply(&fixture(), &path, kind).unwrap();
        // bbolt check does not read the sha256 trailer: give it the bare db.
        let mut db = std::fs::read(&path).unwrap();
        if std::fs::metadata(fixture()).unwrap().len() == db.len() as u64 {
            db.truncate(db.len() - 32);
        }
        let bare = dir.path().join(format!("{kind:?}.bare.db"));
        std::fs::write(&bare, &db).unwrap();
        let out = std::process::Command::new(&peer)
            .arg(&bare)
            .output()
            .unwrap();
        // Any failure (reported problems, a refusal to open, a panic) counts as a report.
        if out.status.success() {
            continue;
        }
        peer_found += 1;
        let report = check_path(&bare);
        assert!(
            report
                .findings
                .iter()
                .any(|f| f.severity >= Severity::Warning),
            "{kind:?}: bbolt check says {}{} but Salvor finds nothing",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or(""),
        );
    }
    assert!(
        peer_found >= 5,
        "the peer found only {peer_found} of the damages"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_data_dir_damage_is_found_where_it_was_made() {
    use testenv::damage::{DataDirDamage, apply_to_data_dir};
    use testenv::{EtcdCluster, EtcdOptions, Workload};

    let options = EtcdOptions {
        snapshot_count: Some(500),
        ..EtcdOptions::members(1)
    };
    let mut cluster = EtcdCluster::start_with(options).await.unwrap();
    let client = cluster.client().await.unwrap();
    let workload = Workload {
        overwrites: 0.2,
        ..Workload::new(2_000)
    };
    testenv::load(&client, &workload).await.unwrap();
    cluster.stop(0).await.unwrap();
    let src = cluster.members()[0].data_dir.clone();

    let clean = check_path(&src);
    assert!(clean.is_clean(), "{:#?}", clean.findings);
    let tmp = tempfile::tempdir().unwrap();
    // Deleting a middle segment needs a WAL of three segments: its own test below.
    for kind in DataDirDamage::ALL
        .into_iter()
        .filter(|k| *k != DataDirDamage::DeleteMiddleSegment)
    {
        let dst = tmp.path().join(format!("{kind:?}"));
        let applied = apply_to_data_dir(&src, &dst, kind).unwrap();
        let report = check_path(&dst);
        let code = match kind {
            DataDirDamage::CutWalMidRecord | DataDirDamage::ZeroWalTail => "WAL_TORN_TAIL",
            DataDirDamage::FlipWalRecord => "WAL_CRC_MISMATCH",
            DataDirDamage::CorruptSnap => "SNAP_CRC_MISMATCH",
            DataDirDamage::DeleteMiddleSegment => unreachable!("tested below"),
        };
        let found = report.findings.iter().find(|f| f.code == code);
        let found =
            found.unwrap_or_else(|| panic!("{kind:?}: no {code} in {:#?}", report.findings));
        assert_eq!(found.location.file, applied.file, "{kind:?}");
        if kind != DataDirDamage::CorruptSnap {
            // The finding points at the record holding the damage: at or before it.
            let offset = found.location.offset.unwrap();
            assert!(
                offset <= applied.offset && applied.offset - offset < 70_000,
                "{kind:?}: finding at {offset}, damage at {}",
                applied.offset
            );
        }
        assert!(!report.is_clean(), "{kind:?}: {:#?}", report.findings);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_middle_wal_segment_is_found() {
    use testenv::damage::{DataDirDamage, apply_to_data_dir};
    use testenv::{EtcdCluster, ValueSizes, Workload};

    // About 135 MB of WAL: etcd cuts 64 MB segments, so three of them.
    let mut cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();
    let workload = Workload {
        value_size: ValueSizes::Uniform { min: 400, max: 600 },
        ..Workload::new(270_000)
    };
    testenv::load(&client, &workload).await.unwrap();
    cluster.stop(0).await.unwrap();
    let src = cluster.members()[0].data_dir.clone();
    let tmp = tempfile::tempdir().unwrap();
    let dst = tmp.path().join("gap");
    let applied = apply_to_data_dir(&src, &dst, DataDirDamage::DeleteMiddleSegment).unwrap();
    assert!(!applied.file.exists());
    let report = check_path(&dst);
    let gap = report.findings.iter().find(|f| f.code == "WAL_SEGMENT_GAP");
    let gap = gap.unwrap_or_else(|| panic!("no WAL_SEGMENT_GAP in {:#?}", report.findings));
    // Reported at the segment after the hole.
    let after = gap
        .location
        .file
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let deleted = applied
        .file
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        after > deleted,
        "gap reported at {after}, deleted {deleted}"
    );
    assert!(report.findings.iter().any(|f| f.code == "WAL_INDEX_GAP"));
    assert!(!report.is_clean());
}
