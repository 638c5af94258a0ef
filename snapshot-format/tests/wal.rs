//! The WAL and `.snap` reader against files written by real etcd 3.4 (started by
//! testenv), undamaged and deliberately damaged, plus segments crafted from them to
//! cover multi-segment logs and raft-log truncation.
//!
//! One cluster is started for the whole file (with `--snapshot-count 500` so `.snap`
//! files and WAL snapshot records exist), loaded, stopped, and its data dir copied; every
//! damage is done to a further copy.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use snapshot_format::wal::{
    AuthOp, EntryFilter, EntryKind, EntryPayload, MAX_LOG_PROBLEMS, ReadOptions, RecordType,
    RequestOp, SegmentEnd, Severity, TxnStep, Wal, WalContents, WalEvent, WalProblemKind,
    WalSnapshot, check_data_dir, check_snapshots, loadable_snapshot, read_snap_dir,
};

/// What the fixture cluster wrote and reported.
struct Fixture {
    /// A copy of the stopped member's data dir.
    data_dir: PathBuf,
    /// Keeps the copy alive.
    _dir: tempfile::TempDir,
    cluster_id: u64,
    member_id: u64,
    raft_index: u64,
    /// Plain puts written (workload + the leased key).
    puts: u64,
    /// Deletes written.
    deletes: u64,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(make_fixture())
    })
}

async fn make_fixture() -> Fixture {
    let options = testenv::EtcdOptions {
        snapshot_count: Some(500),
        ..testenv::EtcdOptions::members(1)
    };
    let mut cluster = testenv::EtcdCluster::start_with(options).await.unwrap();
    let client = cluster.client().await.unwrap();
    let workload = testenv::Workload {
        overwrites: 0.3,
        deletes: 0.1,
        ..testenv::Workload::new(2000)
    };
    let report = testenv::load(&client, &workload).await.unwrap();

    // A lease with a key, then revoked.
    let grant = cluster.run_etcdctl(["lease", "grant", "600"]).unwrap();
    let lease = grant.split_whitespace().nth(1).unwrap().to_string();
    cluster
        .run_etcdctl(["put", "--lease", &lease, "/leased", "value"])
        .unwrap();
    cluster.run_etcdctl(["lease", "revoke", &lease]).unwrap();
    // A transaction.
    let mut txn = cluster
        .etcdctl()
        .args(["txn"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    txn.stdin
        .take()
        .unwrap()
        .write_all(b"mod(\"/leased\") > \"0\"\n\nput /txn-put yes\nget /leased\n\ndel /nothing\n\n")
        .unwrap();
    assert!(txn.wait().unwrap().success());
    // Auth changes (auth stays disabled). etcd 3.4 writes the password into the WAL.
    cluster
        .run_etcdctl(["user", "add", "alice", "--new-user-password", "s3cr3t-pw"])
        .unwrap();
    cluster.run_etcdctl(["role", "add", "reader"]).unwrap();
    cluster
        .run_etcdctl([
            "role",
            "grant-permission",
            "reader",
            "read",
            "/registry/",
            "/registry0",
        ])
        .unwrap();
    cluster
        .run_etcdctl(["user", "grant-role", "alice", "reader"])
        .unwrap();
    // A compaction.
    let compact = (report.revision / 2).to_string();
    cluster.run_etcdctl(["compact", &compact]).unwrap();

    let status = cluster
        .run_etcdctl(["endpoint", "status", "-w", "json"])
        .unwrap();
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    let status = &status[0]["Status"];
    let raft_index = status["raftIndex"].as_u64().unwrap();
    let cluster_id = status["header"]["cluster_id"].as_u64().unwrap();
    let member_id = status["header"]["member_id"].as_u64().unwrap();
    cluster.stop(0).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    copy_dir(&cluster.members()[0].data_dir, &data_dir);
    Fixture {
        data_dir,
        _dir: dir,
        cluster_id,
        member_id,
        raft_index,
        puts: report.puts + 1,
        deletes: report.deletes,
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for item in std::fs::read_dir(from).unwrap() {
        let item = item.unwrap();
        let target = to.join(item.file_name());
        if item.file_type().unwrap().is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).unwrap();
        }
    }
}

/// A fresh copy of the fixture's data dir to damage.
fn damaged_copy() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    copy_dir(&fixture().data_dir, &data_dir);
    (dir, data_dir)
}

fn wal_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("member/wal")
}

fn only_segment(data_dir: &Path) -> PathBuf {
    let wal = Wal::open(data_dir).unwrap();
    assert_eq!(wal.segments().len(), 1, "the fixture WAL has one segment");
    wal.segments()[0].path.clone()
}

fn read(data_dir: &Path, keep_going: bool) -> WalContents {
    Wal::open(data_dir).unwrap().read_all(&ReadOptions {
        keep_going,
        ..Default::default()
    })
}

fn kinds(contents: &WalContents) -> Vec<&WalProblemKind> {
    contents.problems.iter().map(|p| &p.kind).collect()
}

/// Offset of every record.
fn record_offsets(data_dir: &Path) -> Vec<u64> {
    let wal = Wal::open(data_dir).unwrap();
    wal.records(&ReadOptions::default())
        .filter_map(|e| match e {
            WalEvent::Record(r) => Some(r.offset),
            _ => None,
        })
        .collect()
}

#[test]
fn undamaged_wal_reads_as_etcd_reported() {
    let f = fixture();
    let contents = read(&f.data_dir, false);
    assert!(contents.problems.is_empty(), "{:#?}", contents.problems);
    let metadata = contents.metadata.unwrap();
    assert_eq!(metadata.cluster_id, f.cluster_id);
    assert_eq!(metadata.node_id, f.member_id);
    assert_eq!(contents.last_index(), Some(f.raft_index));
    assert_eq!(contents.first_index(), Some(1));
    let state = contents.hard_state.unwrap();
    assert_eq!(state.commit, f.raft_index);
    assert_eq!(state.vote, f.member_id);
    // Indexes are exactly 1..=last.
    for (i, e) in contents.entries.iter().enumerate() {
        assert_eq!(e.index, i as u64 + 1);
    }
    assert_eq!(contents.segments.len(), 1);
    assert_eq!(contents.segments[0].end, SegmentEnd::ZeroTail);
    assert_eq!(contents.segments[0].size, 64_000_000);
    assert_eq!(contents.stats.overwritten_entries, 0);

    let count = |kind: EntryKind| {
        contents
            .entries
            .iter()
            .filter(|e| e.payload().kind() == kind)
            .count() as u64
    };
    assert_eq!(count(EntryKind::IrrPut), f.puts);
    assert_eq!(count(EntryKind::IrrDeleteRange), f.deletes);
    assert_eq!(count(EntryKind::IrrTxn), 1);
    assert_eq!(count(EntryKind::IrrCompaction), 1);
    assert_eq!(count(EntryKind::IrrLeaseGrant), 1);
    assert_eq!(count(EntryKind::IrrLeaseRevoke), 1);
    assert_eq!(count(EntryKind::ConfigChange), 1);
    assert_eq!(count(EntryKind::UnknownNormal), 0);
    assert!(count(EntryKind::Empty) >= 1);
    assert!(
        count(EntryKind::Request) >= 2,
        "member attributes and cluster version"
    );
    // The filter agrees.
    let filter = EntryFilter::default().with_types("IRRPut").unwrap();
    assert_eq!(filter.apply(&contents.entries).count() as u64, f.puts);

    // Snapshot markers: the initial one, then one every ~500 entries.
    assert_eq!(contents.snapshots[0].index, 0);
    assert!(contents.snapshots.len() >= 5, "{:?}", contents.snapshots);
    for pair in contents.snapshots.windows(2) {
        assert!(pair[0].index < pair[1].index);
    }
}

#[test]
fn payloads_decode_like_etcd_dump_logs() {
    let f = fixture();
    let contents = read(&f.data_dir, false);
    let payloads: Vec<EntryPayload> = contents.entries.iter().map(|e| e.payload()).collect();

    let EntryPayload::ConfChange(cc) = &payloads[0] else {
        panic!("entry 1 is the member's addition: {:?}", payloads[0]);
    };
    assert_eq!(cc.change_type, "addNode");
    assert_eq!(cc.node_id, f.member_id);
    assert_eq!(cc.member.as_ref().unwrap()["name"], "m0");

    let v2: Vec<_> = payloads
        .iter()
        .filter_map(|p| match p {
            EntryPayload::V2(r) => Some(r),
            _ => None,
        })
        .collect();
    assert!(
        v2.iter()
            .any(|r| r.method == "PUT" && r.path.ends_with("/attributes"))
    );
    assert!(
        v2.iter()
            .any(|r| r.method == "PUT" && r.path == "/0/version")
    );

    let txn = payloads
        .iter()
        .find_map(|p| match p {
            EntryPayload::Request(r) => match &r.op {
                RequestOp::Txn(t) => Some(t),
                _ => None,
            },
            _ => None,
        })
        .unwrap();
    assert_eq!(txn.compare.len(), 1);
    assert_eq!(txn.compare[0].target, "mod");
    assert_eq!(txn.compare[0].key, b"/leased");
    assert!(
        matches!(&txn.success[0], TxnStep::Put(p) if p.key == b"/txn-put" && p.value == b"yes")
    );
    assert!(matches!(&txn.success[1], TxnStep::Range(r) if r.key == b"/leased"));
    assert!(matches!(&txn.failure[0], TxnStep::DeleteRange(d) if d.key == b"/nothing"));
    assert_eq!(txn.put_count(), 1);

    let auth: Vec<&AuthOp> = payloads
        .iter()
        .filter_map(|p| match p {
            EntryPayload::Request(r) => match &r.op {
                RequestOp::Auth(a) => Some(a),
                _ => None,
            },
            _ => None,
        })
        .collect();
    assert!(auth.contains(&&AuthOp::UserAdd {
        name: "alice".into(),
        no_password: false
    }));
    assert!(auth.contains(&&AuthOp::RoleAdd {
        name: "reader".into()
    }));
    assert!(auth.contains(&&AuthOp::UserGrantRole {
        user: "alice".into(),
        role: "reader".into()
    }));
    assert!(auth.iter().any(
        |a| matches!(a, AuthOp::RoleGrantPermission { permission, key, range_end, .. }
        if permission == "read" && key == b"/registry/" && range_end == b"/registry0")
    ));

    // The dump never shows the password etcd 3.4 stored in the WAL.
    let filter = EntryFilter::default();
    let mut text = String::new();
    for line in filter.apply(&contents.entries) {
        text.push_str(&line.to_string());
        text.push('\n');
        text.push_str(&serde_json::to_string(&line).unwrap());
        text.push('\n');
    }
    assert!(!text.contains("s3cr3t-pw"));
    assert!(text.contains("auth_user_add name=\"alice\""));

    // Dump lines look like etcd-dump-logs': term, index, type, data.
    let lines: Vec<String> = filter
        .apply(&contents.entries)
        .map(|l| l.to_string())
        .collect();
    assert!(lines[0].starts_with("   1\t         1\tconf\tmethod=addNode id="));
    let lease_line = lines.iter().find(|l| l.contains("lease_grant")).unwrap();
    assert!(lease_line.contains("ttl=600"), "{lease_line}");

    // JSON: camelCase, bytes as text.
    let put = filter
        .apply(&contents.entries)
        .find(|l| l.kind() == EntryKind::IrrPut)
        .unwrap();
    let json = serde_json::to_value(&put).unwrap();
    assert_eq!(json["entryType"], "normal");
    assert_eq!(json["payload"]["kind"], "request");
    assert_eq!(json["payload"]["op"], "put");
    assert!(
        json["payload"]["key"]
            .as_str()
            .unwrap()
            .starts_with("/registry/")
    );
    assert!(json["dataSize"].as_u64().unwrap() > 0);

    // Index range.
    let range = EntryFilter {
        start_index: Some(10),
        end_index: Some(19),
        ..Default::default()
    };
    let indexes: Vec<u64> = range
        .apply(&contents.entries)
        .map(|l| l.entry.index)
        .collect();
    assert_eq!(indexes, (10..=19).collect::<Vec<_>>());
}

#[test]
fn snap_files_match_the_wal() {
    let f = fixture();
    let snaps = read_snap_dir(&f.data_dir).unwrap();
    assert!(snaps.problems.is_empty(), "{:#?}", snaps.problems);
    assert!(snaps.has_db);
    assert!(!snaps.files.is_empty());
    for file in &snaps.files {
        assert!(file.valid);
        assert_eq!(file.term, Some(file.name.term));
        assert_eq!(file.index, Some(file.name.index));
        assert_eq!(file.conf_state.as_ref().unwrap().voters, vec![f.member_id]);
        assert!(file.store_size > 0);
    }
    let check = check_data_dir(&f.data_dir, None).unwrap();
    assert!(check.problems.is_empty(), "{:#?}", check.problems);

    // Reading from the newest snapshot, as etcd does at start.
    let newest = snaps.newest_valid().unwrap().wal_snapshot();
    let wal = Wal::open(&f.data_dir).unwrap();
    let from_snap = wal.read_all(&ReadOptions {
        start: Some(newest),
        ..Default::default()
    });
    assert!(from_snap.problems.is_empty(), "{:#?}", from_snap.problems);
    assert_eq!(from_snap.first_index(), Some(newest.index + 1));
    assert_eq!(from_snap.last_index(), Some(f.raft_index));
    assert_eq!(from_snap.stats.skipped_entries, newest.index);

    // A start snapshot the WAL does not know.
    let unknown = wal.read_all(&ReadOptions {
        start: Some(WalSnapshot {
            index: newest.index + 1,
            term: newest.term,
        }),
        ..Default::default()
    });
    assert!(matches!(
        kinds(&unknown)[..],
        [WalProblemKind::SnapshotNotFound { .. }]
    ));
    let wrong_term = wal.read_all(&ReadOptions {
        start: Some(WalSnapshot {
            index: newest.index,
            term: newest.term + 7,
        }),
        ..Default::default()
    });
    assert!(
        kinds(&wrong_term).contains(&&WalProblemKind::SnapshotTermMismatch {
            index: newest.index,
            expected_term: newest.term + 7,
            wal_term: newest.term,
        })
    );

    // The backend is at least at the newest snapshot; a db behind it is reported.
    let behind = check_data_dir(&f.data_dir, Some(newest.index - 1)).unwrap();
    assert!(matches!(
        behind.problems[..],
        [ref p] if matches!(p.kind, WalProblemKind::DbBehindSnapshot { .. })
    ));
}

#[test]
fn crc_mismatch_in_the_middle() {
    let f = fixture();
    let (_dir, data_dir) = damaged_copy();
    let segment = only_segment(&data_dir);
    let original = read(&data_dir, false);
    let victim = &original.entries[original.entries.len() / 2];
    // Flip the last byte of the record: the end of its data (a value byte of a put).
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = victim.offset as usize;
    let word = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
    let record_len = (word & 0x00ff_ffff_ffff_ffff) as usize;
    bytes[at + 8 + record_len - 1] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();

    let stopped = read(&data_dir, false);
    assert_eq!(stopped.problems.len(), 1, "{:#?}", stopped.problems);
    let p = &stopped.problems[0];
    assert!(matches!(
        p.kind,
        WalProblemKind::CrcMismatch {
            record_type: RecordType::Entry,
            ..
        }
    ));
    assert_eq!(p.offset, Some(victim.offset));
    assert_eq!(p.file, segment.file_name().unwrap().to_str().unwrap());
    assert_eq!(p.severity, Severity::Error);
    assert!(
        p.detail.contains(&format!("index {}", victim.index)),
        "{}",
        p.detail
    );
    assert_eq!(stopped.last_index(), Some(victim.index - 1));

    let kept = read(&data_dir, true);
    let k = kinds(&kept);
    assert!(matches!(k[0], WalProblemKind::CrcMismatch { .. }));
    assert_eq!(
        k[1],
        &WalProblemKind::IndexGap {
            expected: victim.index,
            found: victim.index + 1
        }
    );
    assert_eq!(k.len(), 2, "{:#?}", kept.problems);
    assert_eq!(kept.last_index(), Some(f.raft_index));
    assert_eq!(kept.entries.len(), original.entries.len() - 1);
}

/// The last record whose frame crosses a sector boundary after its length word.
fn last_record_crossing_a_sector(data_dir: &Path) -> (u64, usize, usize) {
    let segment = only_segment(data_dir);
    let bytes = std::fs::read(&segment).unwrap();
    record_offsets(data_dir)
        .iter()
        .rev()
        .find_map(|&offset| {
            let offset = offset as usize;
            let word = u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap());
            let len = (word & 0x00ff_ffff_ffff_ffff) as usize;
            let pad = if word >> 63 == 1 {
                ((word >> 56) & 7) as usize
            } else {
                0
            };
            let end = offset + 8 + len + pad;
            let sector = (offset + 8).div_ceil(512) * 512;
            (sector > offset + 8 && sector < end).then_some((offset as u64, sector, end))
        })
        .unwrap()
}

#[test]
fn zeroed_sector_at_the_end_is_a_repairable_torn_tail() {
    let (_dir, data_dir) = damaged_copy();
    let segment = only_segment(&data_dir);
    let original = read(&data_dir, false);
    let data_end = original.segments[0].data_end as usize;
    let (offset, sector, _) = last_record_crossing_a_sector(&data_dir);
    // A torn write: everything from the sector on never reached the disk.
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[sector..data_end].fill(0);
    std::fs::write(&segment, &bytes).unwrap();

    for keep_going in [false, true] {
        let torn = read(&data_dir, keep_going);
        assert_eq!(
            kinds(&torn),
            vec![&WalProblemKind::TornTail { repairable: true }]
        );
        let p = &torn.problems[0];
        assert_eq!(p.offset, Some(offset));
        assert_eq!(p.severity, Severity::Warning);
        assert!(p.is_repairable());
        assert_eq!(torn.segments[0].data_end, offset);
        assert_eq!(torn.segments[0].end, SegmentEnd::TornTail);
        assert!(torn.last_index() <= original.last_index());
    }
}

#[test]
fn truncation_mid_record_is_a_torn_tail() {
    let (_dir, data_dir) = damaged_copy();
    let segment = only_segment(&data_dir);
    let original = read(&data_dir, false);
    let last = original.entries.last().unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(last.offset + 8 + last.data.len() as u64 / 2)
        .unwrap();
    drop(file);

    let torn = read(&data_dir, false);
    assert_eq!(
        kinds(&torn),
        vec![&WalProblemKind::TornTail { repairable: true }]
    );
    assert_eq!(torn.problems[0].offset, Some(last.offset));
    assert_eq!(torn.last_index(), Some(last.index - 1));

    // Cut inside a length word.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(last.offset + 3).unwrap();
    drop(file);
    let torn = read(&data_dir, false);
    assert_eq!(
        kinds(&torn),
        vec![&WalProblemKind::TornTail { repairable: true }]
    );
    assert_eq!(torn.problems[0].offset, Some(last.offset));
}

#[test]
fn damaged_length_word_is_not_mistaken_for_a_torn_write() {
    let f = fixture();
    let (_dir, data_dir) = damaged_copy();
    let segment = only_segment(&data_dir);
    let original = read(&data_dir, false);
    let victim = &original.entries[original.entries.len() / 3];
    let mut bytes = std::fs::read(&segment).unwrap();
    // Claim 2^55 bytes: must be rejected against the file size, not allocated.
    let at = victim.offset as usize;
    bytes[at..at + 8].copy_from_slice(&(1u64 << 55).to_le_bytes());
    std::fs::write(&segment, &bytes).unwrap();

    let stopped = read(&data_dir, false);
    assert!(
        matches!(
            kinds(&stopped)[..],
            [WalProblemKind::BadFrame {
                claimed_len: 0x0080_0000_0000_0000
            }]
        ),
        "{:#?}",
        stopped.problems
    );
    assert_eq!(stopped.problems[0].offset, Some(victim.offset));

    let kept = read(&data_dir, true);
    assert!(matches!(kinds(&kept)[0], WalProblemKind::BadFrame { .. }));
    assert!(matches!(kinds(&kept)[1], WalProblemKind::IndexGap { .. }));
    assert_eq!(kept.problems.len(), 2, "{:#?}", kept.problems);
    assert_eq!(kept.last_index(), Some(f.raft_index));
}

#[test]
fn zeroed_region_in_the_middle_loses_data() {
    let f = fixture();
    let (_dir, data_dir) = damaged_copy();
    let segment = only_segment(&data_dir);
    let original = read(&data_dir, false);
    let victim = &original.entries[original.entries.len() / 2];
    let mut bytes = std::fs::read(&segment).unwrap();
    let start = victim.offset as usize / 4096 * 4096;
    bytes[start..start + 4096].fill(0);
    std::fs::write(&segment, &bytes).unwrap();

    let stopped = read(&data_dir, false);
    assert_eq!(stopped.problems.len(), 1, "{:#?}", stopped.problems);
    assert_eq!(stopped.problems[0].severity, Severity::Error);

    let kept = read(&data_dir, true);
    assert!(
        kinds(&kept)
            .iter()
            .any(|k| matches!(k, WalProblemKind::ZeroedRegion { .. })),
        "{:#?}",
        kept.problems
    );
    assert_eq!(kept.last_index(), Some(f.raft_index));
    assert!(kept.entries.len() < original.entries.len());
}

#[test]
fn damaged_snap_file_is_reported_and_skipped() {
    let f = fixture();
    let (_dir, data_dir) = damaged_copy();
    let snaps = read_snap_dir(&data_dir).unwrap();
    assert!(snaps.files.len() >= 2);
    let newest = snaps.newest_valid().unwrap().clone();
    let mut bytes = std::fs::read(&newest.path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&newest.path, &bytes).unwrap();

    let damaged = read_snap_dir(&data_dir).unwrap();
    assert_eq!(damaged.problems.len(), 1, "{:#?}", damaged.problems);
    assert!(matches!(
        damaged.problems[0].kind,
        WalProblemKind::SnapCrcMismatch { .. }
    ));
    assert_eq!(damaged.problems[0].file, newest.file);
    let fallback = damaged.newest_valid().unwrap();
    assert!(fallback.name < newest.name);
    // The fallback still has its WAL record.
    let contents = read(&data_dir, true);
    let wal = Wal::open(&data_dir).unwrap();
    assert!(check_snapshots(&contents, wal.segments(), &damaged, None).is_empty());

    // Removing the newest .snap leaves its WAL record without a file (a warning).
    std::fs::remove_file(&newest.path).unwrap();
    let without = read_snap_dir(&data_dir).unwrap();
    let relation = check_snapshots(&contents, wal.segments(), &without, None);
    assert_eq!(relation.len(), 1, "{relation:#?}");
    assert_eq!(
        relation[0].kind,
        WalProblemKind::WalSnapshotWithoutFile {
            term: newest.name.term,
            index: newest.name.index
        }
    );
    assert_eq!(relation[0].severity, Severity::Warning);

    // A .snap newer than anything in the WAL is skipped by etcd (a warning).
    let snap_path = data_dir.join(format!(
        "member/snap/{:016x}-{:016x}.snap",
        9,
        f.raft_index + 100
    ));
    std::fs::write(
        &snap_path,
        craft_snap_file(9, f.raft_index + 100, f.member_id),
    )
    .unwrap();
    let extra = read_snap_dir(&data_dir).unwrap();
    assert!(extra.problems.is_empty(), "{:#?}", extra.problems);
    assert_eq!(extra.newest_valid().unwrap().name.index, f.raft_index + 100);
    assert_eq!(
        loadable_snapshot(&contents, &extra).unwrap().name,
        fallback.name
    );
    let relation = check_snapshots(&contents, wal.segments(), &extra, None);
    assert!(relation.iter().any(|p| p.kind
        == WalProblemKind::SnapNotInWal {
            term: 9,
            index: f.raft_index + 100
        }
        && p.severity == Severity::Warning));

    // Without any loadable snapshot, a WAL that no longer starts at index 0 cannot be
    // replayed.
    for file in read_snap_dir(&data_dir).unwrap().files {
        std::fs::remove_file(file.path).unwrap();
    }
    let segment = only_segment(&data_dir);
    std::fs::rename(
        &segment,
        segment.with_file_name("0000000000000000-0000000000000005.wal"),
    )
    .unwrap();
    let check = check_data_dir(&data_dir, None).unwrap();
    assert!(check.problems.iter().any(|p| p.kind
        == WalProblemKind::NoLoadableSnapshot { first_wal_index: 5 }
        && p.severity == Severity::Error));
    std::fs::rename(
        segment.with_file_name("0000000000000000-0000000000000005.wal"),
        &segment,
    )
    .unwrap();

    // Empty and garbage .snap files.
    std::fs::write(
        data_dir.join("member/snap/0000000000000001-0000000000000001.snap"),
        b"",
    )
    .unwrap();
    std::fs::write(
        data_dir.join("member/snap/0000000000000001-0000000000000002.snap"),
        b"\xff\xff\xff",
    )
    .unwrap();
    let bad = read_snap_dir(&data_dir).unwrap();
    let k: Vec<_> = bad.problems.iter().map(|p| &p.kind).collect();
    assert!(k.contains(&&WalProblemKind::SnapEmpty));
    assert!(k.contains(&&WalProblemKind::SnapBadFormat));
}

// ---- Crafted segments: a second segment written the way etcd's cut() writes one. ----

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn field_varint(out: &mut Vec<u8>, tag: u64, v: u64) {
    put_varint(out, tag << 3);
    put_varint(out, v);
}

fn field_bytes(out: &mut Vec<u8>, tag: u64, b: &[u8]) {
    put_varint(out, (tag << 3) | 2);
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A segment writer chaining CRCs as etcd's encoder does.
struct SegmentWriter {
    bytes: Vec<u8>,
    crc: u32,
}

impl SegmentWriter {
    /// Starts a segment with the crc record carrying `previous_crc`.
    fn new(previous_crc: u32) -> Self {
        let mut w = SegmentWriter {
            bytes: Vec::new(),
            crc: previous_crc,
        };
        w.frame(4, previous_crc, None);
        w
    }

    fn frame(&mut self, record_type: i64, crc: u32, data: Option<&[u8]>) {
        let mut record = Vec::new();
        field_varint(&mut record, 1, record_type as u64);
        field_varint(&mut record, 2, u64::from(crc));
        if let Some(data) = data {
            field_bytes(&mut record, 3, data);
        }
        let pad = (8 - record.len() % 8) % 8;
        let mut word = record.len() as u64;
        if pad != 0 {
            word |= (0x80 | pad as u64) << 56;
        }
        self.bytes.extend_from_slice(&word.to_le_bytes());
        self.bytes.extend_from_slice(&record);
        self.bytes.extend(std::iter::repeat_n(0u8, pad));
    }

    fn record(&mut self, record_type: i64, data: &[u8]) {
        self.crc = crc32c::crc32c_append(self.crc, data);
        self.frame(record_type, self.crc, Some(data));
    }

    fn metadata(&mut self, raw: &[u8]) {
        self.record(1, raw);
    }

    fn state(&mut self, term: u64, vote: u64, commit: u64) {
        let mut data = Vec::new();
        field_varint(&mut data, 1, term);
        field_varint(&mut data, 2, vote);
        field_varint(&mut data, 3, commit);
        self.record(3, &data);
    }

    fn put(&mut self, term: u64, index: u64, key: &[u8]) {
        let mut put = Vec::new();
        field_bytes(&mut put, 1, key);
        field_bytes(&mut put, 2, b"crafted");
        let mut header = Vec::new();
        field_varint(&mut header, 1, index);
        let mut irr = Vec::new();
        field_bytes(&mut irr, 100, &header);
        field_bytes(&mut irr, 4, &put);
        let mut entry = Vec::new();
        field_varint(&mut entry, 1, 0);
        field_varint(&mut entry, 2, term);
        field_varint(&mut entry, 3, index);
        field_bytes(&mut entry, 4, &irr);
        self.record(2, &entry);
    }
}

/// The fixture's WAL cut after its last record (as etcd truncates a segment when it
/// cuts), with a second segment from `write`; returns the data dir.
fn with_second_segment(
    dir: &Path,
    name_seq: u64,
    name_index: Option<u64>,
    write: impl FnOnce(&mut SegmentWriter, &Base),
) -> PathBuf {
    let data_dir = dir.join("data");
    copy_dir(&fixture().data_dir, &data_dir);
    let base = base(&data_dir);
    let first = only_segment(&data_dir);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap();
    file.set_len(base.data_end).unwrap();
    drop(file);
    let mut w = SegmentWriter::new(base.final_crc);
    w.metadata(&base.metadata);
    w.state(base.term, base.vote, base.last_index);
    write(&mut w, &base);
    let name = format!(
        "{name_seq:016x}-{:016x}.wal",
        name_index.unwrap_or(base.last_index + 1)
    );
    std::fs::write(wal_dir(&data_dir).join(name), &w.bytes).unwrap();
    data_dir
}

/// What a crafted segment continues from.
struct Base {
    final_crc: u32,
    data_end: u64,
    metadata: Vec<u8>,
    term: u64,
    vote: u64,
    last_index: u64,
}

fn base(data_dir: &Path) -> Base {
    let wal = Wal::open(data_dir).unwrap();
    let mut metadata = None;
    for event in wal.records(&ReadOptions::default()) {
        if let WalEvent::Record(r) = event
            && r.record_type == RecordType::Metadata
        {
            metadata = Some(r.data);
        }
    }
    let contents = read(data_dir, false);
    let state = contents.hard_state.unwrap();
    Base {
        final_crc: contents.segments[0].final_crc,
        data_end: contents.segments[0].data_end,
        metadata: metadata.unwrap(),
        term: state.term,
        vote: state.vote,
        last_index: contents.last_index().unwrap(),
    }
}

#[test]
fn crafted_second_segment_chains_and_extends_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = with_second_segment(dir.path(), 1, None, |w, b| {
        w.put(b.term, b.last_index + 1, b"/crafted/1");
        w.put(b.term, b.last_index + 2, b"/crafted/2");
        w.state(b.term, b.vote, b.last_index + 2);
    });
    let contents = read(&data_dir, false);
    assert!(contents.problems.is_empty(), "{:#?}", contents.problems);
    assert_eq!(contents.segments.len(), 2);
    assert_eq!(contents.segments[0].end, SegmentEnd::EndOfFile);
    assert_eq!(contents.segments[1].end, SegmentEnd::EndOfFile);
    let base_last = fixture().raft_index;
    assert_eq!(contents.last_index(), Some(base_last + 2));
    let last = contents.entries.last().unwrap();
    assert_eq!(last.segment, 1);
    assert!(last.payload().to_string().contains("/crafted/2"));
    let check = check_data_dir(&data_dir, None).unwrap();
    assert!(check.problems.is_empty(), "{:#?}", check.problems);
}

#[test]
fn uncommitted_tail_is_replaced_as_etcd_does() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = with_second_segment(dir.path(), 1, None, |w, b| {
        let n = b.last_index;
        w.put(b.term, n + 1, b"/old/1");
        w.put(b.term, n + 2, b"/old/2");
        w.put(b.term, n + 3, b"/old/3");
        // A new leader (term + 1) rewrites from n + 2 on: entries n+2, n+3 are replaced.
        w.state(b.term + 1, 0, n + 1);
        w.put(b.term + 1, n + 2, b"/new/2");
        w.state(b.term + 1, 0, n + 2);
    });
    let contents = read(&data_dir, false);
    assert!(contents.problems.is_empty(), "{:#?}", contents.problems);
    let n = fixture().raft_index;
    assert_eq!(contents.last_index(), Some(n + 2));
    assert_eq!(contents.stats.overwritten_entries, 2);
    let last = contents.entry(n + 2).unwrap();
    assert_eq!(last.term, contents.entry(n + 1).unwrap().term + 1);
    assert!(last.payload().to_string().contains("/new/2"));
}

#[test]
fn log_level_damage_is_reported() {
    let n = fixture().raft_index;
    // A committed entry rewritten.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = with_second_segment(dir.path(), 1, None, |w, b| {
        w.put(b.term + 1, b.last_index - 1, b"/rewrite");
    });
    let k = read(&data_dir, false);
    assert_eq!(
        kinds(&k),
        vec![&WalProblemKind::CommittedEntryOverwritten {
            index: n - 1,
            commit: n
        }]
    );
    // An index gap, and a commit index past the end.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = with_second_segment(dir.path(), 1, None, |w, b| {
        w.put(b.term, b.last_index + 5, b"/gap");
        w.state(b.term, b.vote, b.last_index + 9);
    });
    let k = read(&data_dir, true);
    assert_eq!(
        kinds(&k),
        vec![
            &WalProblemKind::IndexGap {
                expected: n + 1,
                found: n + 5
            },
            &WalProblemKind::CommitBeyondLastIndex {
                commit: n + 9,
                last_index: n + 5
            }
        ]
    );
    // A term going back.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = with_second_segment(dir.path(), 1, None, |w, b| {
        w.put(b.term - 1, b.last_index + 1, b"/old-term");
    });
    let k = read(&data_dir, false);
    assert!(matches!(
        kinds(&k)[..],
        [WalProblemKind::TermRegression { .. }]
    ));
    // Extreme values: no overflow, no panic.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = with_second_segment(dir.path(), u64::MAX, Some(u64::MAX), |w, _| {
        w.put(u64::MAX, u64::MAX, b"/max");
        w.put(0, u64::MAX, b"/max-again");
        w.put(0, 0, b"/zero");
        w.state(u64::MAX, u64::MAX, u64::MAX);
        w.put(1, u64::MAX, b"/max-last");
    });
    for keep_going in [false, true] {
        let k = read(&data_dir, keep_going);
        assert!(!k.is_healthy());
    }
    let k = read(&data_dir, true);
    assert!(kinds(&k).contains(&&WalProblemKind::SegmentGap {
        expected_seq: 1,
        found_seq: u64::MAX
    }));
    // Conflicting metadata.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = with_second_segment(dir.path(), 1, None, |w, _| {
        let mut other = Vec::new();
        field_varint(&mut other, 1, 1);
        field_varint(&mut other, 2, 2);
        w.metadata(&other);
    });
    let k = read(&data_dir, false);
    assert_eq!(kinds(&k), vec![&WalProblemKind::MetadataMismatch]);
}

#[test]
fn segment_gaps_names_and_broken_chains() {
    let n = fixture().raft_index;
    // Sequence 0 then 2.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = with_second_segment(dir.path(), 2, None, |w, b| {
        w.put(b.term, b.last_index + 1, b"/after-gap");
    });
    let stopped = read(&data_dir, false);
    assert_eq!(
        kinds(&stopped),
        vec![&WalProblemKind::SegmentGap {
            expected_seq: 1,
            found_seq: 2
        }]
    );
    assert_eq!(stopped.last_index(), Some(n));
    let kept = read(&data_dir, true);
    assert_eq!(kinds(&kept).len(), 1, "{:#?}", kept.problems);
    assert_eq!(kept.last_index(), Some(n + 1));

    // A segment named for the wrong index.
    let dir = tempfile::tempdir().unwrap();
    let data_dir = with_second_segment(dir.path(), 1, Some(n + 7), |w, b| {
        w.put(b.term, b.last_index + 1, b"/x");
    });
    let named = read(&data_dir, false);
    assert_eq!(
        kinds(&named),
        vec![&WalProblemKind::SegmentIndexMismatch {
            name_index: n + 7,
            expected_index: n + 1
        }]
    );
    assert_eq!(named.problems[0].severity, Severity::Warning);

    // The second segment's crc record does not continue the chain (records were lost).
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    copy_dir(&fixture().data_dir, &data_dir);
    let b = base(&data_dir);
    let first = only_segment(&data_dir);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap();
    file.set_len(b.data_end).unwrap();
    drop(file);
    let mut w = SegmentWriter::new(b.final_crc ^ 1);
    w.metadata(&b.metadata);
    w.put(b.term, n + 1, b"/y");
    std::fs::write(
        wal_dir(&data_dir).join(format!("{:016x}-{:016x}.wal", 1, n + 1)),
        &w.bytes,
    )
    .unwrap();
    let broken = read(&data_dir, false);
    assert!(matches!(
        kinds(&broken)[..],
        [WalProblemKind::CrcMismatch {
            record_type: RecordType::Crc,
            ..
        }]
    ));
    assert_eq!(broken.problems[0].offset, Some(0));
    let kept = read(&data_dir, true);
    assert_eq!(kept.problems.len(), 1);
    assert_eq!(kept.last_index(), Some(n + 1));

    // Stray files are reported; *.tmp files are not.
    std::fs::write(wal_dir(&data_dir).join("notes.txt"), b"x").unwrap();
    let wal = Wal::open(&data_dir).unwrap();
    assert_eq!(wal.listing_problems().len(), 1);
    assert_eq!(wal.listing_problems()[0].kind, WalProblemKind::BadFileName);
}

#[test]
fn empty_wal_dir_is_a_problem_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let wal = Wal::open(dir.path()).unwrap();
    let contents = wal.read_all(&ReadOptions::default());
    assert_eq!(kinds(&contents), vec![&WalProblemKind::NoSegments]);
    assert!(Wal::open(&dir.path().join("missing")).is_err());
}

fn craft_snap_file(term: u64, index: u64, voter: u64) -> Vec<u8> {
    let mut conf_state = Vec::new();
    field_varint(&mut conf_state, 1, voter);
    let mut metadata = Vec::new();
    field_bytes(&mut metadata, 1, &conf_state);
    field_varint(&mut metadata, 2, index);
    field_varint(&mut metadata, 3, term);
    let mut snapshot = Vec::new();
    field_bytes(&mut snapshot, 1, b"{}");
    field_bytes(&mut snapshot, 2, &metadata);
    let mut file = Vec::new();
    field_varint(&mut file, 1, u64::from(crc32c::crc32c(&snapshot)));
    field_bytes(&mut file, 2, &snapshot);
    file
}

// ---- Random damage: never a panic, never a hang. ----

/// Fails the run instead of hanging if a damaged file makes the reader loop.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("WAL robustness test exceeded {limit:?}: a damaged file made the reader loop");
        std::process::exit(101);
    });
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn random_damage_never_panics_or_hangs() {
    watchdog(Duration::from_secs(600));
    let original = read(&fixture().data_dir, false);
    let data_end = original.segments[0].data_end as usize;
    let segment_bytes = std::fs::read(only_segment(&fixture().data_dir)).unwrap();
    // The data plus some of the zero tail keeps every case small.
    let base = &segment_bytes[..data_end + 8192];
    let dir = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    std::fs::create_dir(&wal).unwrap();
    let path = wal.join("0000000000000000-0000000000000000.wal");
    let mut rng = Rng(0x5eed);
    for case in 0..150 {
        let mut bytes = base.to_vec();
        let damage = case % 6;
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match damage {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => {
                    let len = rng.below(2048).min(bytes.len() - at);
                    bytes[at..at + len].fill(0);
                }
                2 => {
                    // A length word at a record boundary.
                    let at = at / 8 * 8;
                    let word = rng.next() >> rng.below(64);
                    let n = (bytes.len() - at).min(8);
                    bytes[at..at + n].copy_from_slice(&word.to_le_bytes()[..n]);
                }
                3 => bytes.truncate(at.max(1)),
                4 => {
                    let len = rng.below(512).min(bytes.len() - at);
                    for b in &mut bytes[at..at + len] {
                        *b = rng.next() as u8;
                    }
                }
                _ => {
                    // Copy a chunk over another place (looks valid, chains wrong).
                    let from = rng.below(bytes.len());
                    let len = rng
                        .below(4096)
                        .min(bytes.len() - at)
                        .min(bytes.len() - from);
                    let chunk = bytes[from..from + len].to_vec();
                    bytes[at..at + len].copy_from_slice(&chunk);
                }
            }
        }
        std::fs::write(&path, &bytes).unwrap();
        let wal = Wal::open(&wal).unwrap();
        for keep_going in [false, true] {
            let contents = wal.read_all(&ReadOptions {
                keep_going,
                ..Default::default()
            });
            // Whatever was read is a consistent, increasing log.
            for pair in contents.entries.windows(2) {
                assert!(pair[0].index < pair[1].index);
            }
            for e in contents.entries.iter().take(50) {
                let _ = e.payload().to_string();
            }
            let _ = serde_json::to_string(&contents).unwrap();
        }
    }
}

#[test]
fn hostile_segments_finish_quickly() {
    watchdog(Duration::from_secs(300));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0000000000000000-0000000000000000.wal");
    let mut rng = Rng(7);
    let cases: Vec<Vec<u8>> = vec![
        // A length word claiming 2^55 bytes.
        (1u64 << 55).to_le_bytes().to_vec(),
        // The largest length word.
        u64::MAX.to_le_bytes().to_vec(),
        // Random bytes.
        (0..1 << 20).map(|_| rng.next() as u8).collect(),
        // Frames that all claim the rest of the file.
        (0..1 << 16)
            .flat_map(|i: u64| ((1u64 << 20) - i * 8).to_le_bytes())
            .collect(),
        // A valid-looking record layout repeated: length 4, type 2, crc 0.
        [4u64 | (0x84 << 56)]
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .chain([0x08, 0x02, 0x10, 0x00, 0, 0, 0, 0])
            .cycle()
            .take(1 << 20)
            .collect(),
        // Zeros, then one byte.
        {
            let mut v = vec![0u8; 1 << 20];
            v[(1 << 20) - 1] = 1;
            v
        },
    ];
    for bytes in cases {
        std::fs::write(&path, &bytes).unwrap();
        let wal = Wal::open(dir.path()).unwrap();
        for keep_going in [false, true] {
            let start = std::time::Instant::now();
            let contents = wal.read_all(&ReadOptions {
                keep_going,
                ..Default::default()
            });
            assert!(start.elapsed() < Duration::from_secs(30));
            assert!(!contents.problems.is_empty());
            // Bounded: a garbage segment stops being read after 1,000 problems, the log
            // records at most 10,000.
            assert!(
                contents.problems.len() <= MAX_LOG_PROBLEMS + 1,
                "{} problems",
                contents.problems.len()
            );
        }
    }
}

// ---- Parity with etcd's own etcd-dump-logs (tools/peers/build.sh --etcd-tools). ----

/// The real etcd-dump-logs, built by `tools/peers/build.sh --etcd-tools` (`.ci/run` and
/// `scripts/test` build it). Missing, the test fails: a parity check is never skipped.
fn etcd_dump_logs() -> PathBuf {
    let path = std::env::var_os("ETCD_DUMP_LOGS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/peers/etcd-dump-logs")
        });
    assert!(
        path.is_file(),
        "{} missing: run tools/peers/build.sh --etcd-tools",
        path.display()
    );
    path
}

fn run_dump_logs(tool: &Path, args: &[&str], data_dir: &Path) -> String {
    let output = std::process::Command::new(tool)
        .args(args)
        .arg(data_dir)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn entries_and_types_match_etcd_dump_logs() {
    let tool = etcd_dump_logs();
    let f = fixture();
    let contents = read(&f.data_dir, false);
    // etcd-dump-logs --start-index N shows the entries after N.
    let text = run_dump_logs(&tool, &["--start-index", "1"], &f.data_dir);
    let theirs: Vec<(u64, u64, String)> = text
        .lines()
        .skip_while(|l| !l.starts_with("term\t"))
        .skip(1)
        .filter(|l| l.starts_with(' ') || l.starts_with(|c: char| c.is_ascii_digit()))
        .map(|l| {
            let mut cols = l.split('\t');
            let term = cols.next().unwrap().trim().parse().unwrap();
            let index = cols.next().unwrap().trim().parse().unwrap();
            (term, index, cols.next().unwrap().to_string())
        })
        .collect();
    let ours: Vec<(u64, u64, String)> = EntryFilter {
        start_index: Some(2),
        ..Default::default()
    }
    .apply(&contents.entries)
    .map(|l| (l.entry.term, l.entry.index, l.entry.entry_type.short_name()))
    .collect();
    assert_eq!(theirs, ours);
    assert!(text.contains(&format!("lastIndex={}", f.raft_index)));
    assert!(text.contains(&format!("commitIndex={}", f.raft_index)));

    for entry_type in [
        "ConfigChange",
        "Normal",
        "Request",
        "InternalRaftRequest",
        "IRRRange",
        "IRRPut",
        "IRRDeleteRange",
        "IRRTxn",
        "IRRCompaction",
        "IRRLeaseGrant",
        "IRRLeaseRevoke",
        "IRRLeaseCheckpoint",
    ] {
        let text = run_dump_logs(
            &tool,
            &["--start-index", "1", "--entry-type", entry_type],
            &f.data_dir,
        );
        let count: usize = text
            .rsplit_once("count is : ")
            .unwrap()
            .1
            .trim()
            .parse()
            .unwrap();
        let filter = EntryFilter {
            start_index: Some(2),
            ..Default::default()
        }
        .with_types(entry_type)
        .unwrap();
        assert_eq!(
            filter.apply(&contents.entries).count(),
            count,
            "--entry-type {entry_type}"
        );
    }
}

// ---- etcd itself agrees: it repairs what is reported repairable, refuses the rest. ----

#[test]
fn etcd_repairs_a_torn_tail_and_refuses_a_crc_mismatch() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut cluster = testenv::EtcdCluster::start(1).await.unwrap();
        let client = cluster.client().await.unwrap();
        testenv::load(&client, &testenv::Workload::new(300))
            .await
            .unwrap();
        cluster.stop(0).await.unwrap();
        let data_dir = cluster.members()[0].data_dir.clone();

        // A torn write at the end of the only segment.
        let segment = only_segment(&data_dir);
        let before = read(&data_dir, false);
        let data_end = before.segments[0].data_end as usize;
        let (offset, sector, _) = last_record_crossing_a_sector(&data_dir);
        let mut bytes = std::fs::read(&segment).unwrap();
        bytes[sector..data_end].fill(0);
        std::fs::write(&segment, &bytes).unwrap();
        let torn = read(&data_dir, false);
        assert_eq!(
            kinds(&torn),
            vec![&WalProblemKind::TornTail { repairable: true }]
        );
        assert_eq!(torn.problems[0].offset, Some(offset));

        cluster.restart(0).await.unwrap();
        let client = cluster.client().await.unwrap();
        testenv::load(
            &client,
            &testenv::Workload {
                seed: 2,
                ..testenv::Workload::new(10)
            },
        )
        .await
        .unwrap();
        cluster.stop(0).await.unwrap();
        let repaired = read(&data_dir, false);
        assert_eq!(
            repaired.problem_count(Severity::Error),
            0,
            "{:#?}",
            repaired.problems
        );
        // etcd kept the torn segment as `*.wal.broken`, which the listing reports.
        assert!(
            repaired
                .problems
                .iter()
                .any(|p| p.kind == WalProblemKind::BadFileName && p.file.ends_with(".wal.broken"))
        );
        assert!(repaired.last_index() > torn.last_index());

        // A damaged record in the middle: etcd refuses to start.
        let victim = &repaired.entries[repaired.entries.len() / 2];
        let mut bytes = std::fs::read(&segment).unwrap();
        let at = victim.offset as usize;
        let word = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        let record_len = (word & 0x00ff_ffff_ffff_ffff) as usize;
        bytes[at + 8 + record_len - 1] ^= 0x55;
        std::fs::write(&segment, &bytes).unwrap();
        let damaged = read(&data_dir, false);
        assert!(matches!(
            kinds(&damaged)[..],
            [
                WalProblemKind::BadFileName,
                WalProblemKind::CrcMismatch { .. }
            ]
        ));
        assert!(cluster.restart(0).await.is_err());
    });
}

// ---- A WAL of several segments cut by etcd itself. ----

#[test]
fn real_multi_segment_wal_chains_across_segments() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (_dir, data_dir, raft_index) = runtime.block_on(async {
        let mut cluster = testenv::EtcdCluster::start(1).await.unwrap();
        let client = cluster.client().await.unwrap();
        // 5,000 values of 16 KiB: about 80 MB of WAL, so etcd cuts a second segment.
        let workload = testenv::Workload {
            value_size: testenv::ValueSizes::Fixed(16 * 1024),
            ..testenv::Workload::new(5000)
        };
        testenv::load(&client, &workload).await.unwrap();
        let status = cluster
            .run_etcdctl(["endpoint", "status", "-w", "json"])
            .unwrap();
        let status: serde_json::Value = serde_json::from_str(&status).unwrap();
        let raft_index = status[0]["Status"]["raftIndex"].as_u64().unwrap();
        cluster.stop(0).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        copy_dir(&cluster.members()[0].data_dir, &data_dir);
        (dir, data_dir, raft_index)
    });
    let wal = Wal::open(&data_dir).unwrap();
    assert!(wal.segments().len() >= 2, "{:?}", wal.segments());
    let contents = wal.read_all(&ReadOptions::default());
    assert!(contents.problems.is_empty(), "{:#?}", contents.problems);
    assert_eq!(contents.last_index(), Some(raft_index));
    assert_eq!(contents.hard_state.unwrap().commit, raft_index);
    // etcd truncates a segment when it cuts the next one, and names the next one after
    // the index following its last entry.
    let first = &contents.segments[0];
    assert_eq!(first.end, SegmentEnd::EndOfFile);
    assert_eq!(first.data_end, first.size);
    assert!(first.size >= 64_000_000);
    let last_in_first = contents
        .entries
        .iter()
        .filter(|e| e.segment == 0)
        .map(|e| e.index)
        .max()
        .unwrap();
    assert_eq!(contents.segments[1].index, last_in_first + 1);
    // Segment 1 starts with a crc record carrying segment 0's final CRC, then metadata
    // and the HardState.
    let types: Vec<(RecordType, u32)> = wal
        .records(&ReadOptions::default())
        .filter_map(|e| match e {
            WalEvent::Record(r) if r.segment == 1 => Some((r.record_type, r.crc)),
            _ => None,
        })
        .take(3)
        .collect();
    assert_eq!(types[0], (RecordType::Crc, first.final_crc));
    assert_eq!(types[1].0, RecordType::Metadata);
    assert_eq!(types[2].0, RecordType::State);

    // Damage in the first segment is not repairable, even at its end.
    let segment = &wal.segments()[0].path;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(segment)
        .unwrap();
    file.set_len(first.size - 100).unwrap();
    drop(file);
    let cut = read(&data_dir, true);
    assert!(
        matches!(
            kinds(&cut)[..],
            [WalProblemKind::TornTail { repairable: false }, ..]
        ),
        "{:#?}",
        cut.problems
    );
    assert_eq!(cut.problems[0].severity, Severity::Error);
    assert_eq!(cut.last_index(), Some(raft_index));
}

// ---- Speed: `cargo test -p snapshot-format --test wal -- --ignored --nocapture`. ----
