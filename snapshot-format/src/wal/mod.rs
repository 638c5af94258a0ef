//! etcd's write-ahead log (`member/wal/*.wal`) and raft snapshot files
//! (`member/snap/*.snap`).
//!
//! # Format (etcd 3.4)
//!
//! A WAL directory holds segments named `%016x-%016x.wal`: a sequence number
//! (consecutive) and the raft index of the first entry the segment may hold (etcd names
//! a new segment after the entry following the last one written). Each segment is
//! preallocated to 64,000,000 bytes of zeros; etcd truncates a segment to its data when
//! it cuts the next one. Left-over `*.tmp` files are preallocated spares.
//!
//! A segment is a sequence of frames:
//!
//! ```text
//! length  u64 little-endian: low 56 bits = record length N;
//!         top byte = 0x80 | padding when N % 8 != 0, else 0
//! record  N bytes: walpb.Record {type=1 int64, crc=2 uint32, data=3 bytes}
//! padding zeros up to a multiple of 8
//! ```
//!
//! A length word of 0 ends the data (the zero-filled rest of a preallocated segment).
//! Record types: 1 metadata (`etcdserverpb.Metadata {NodeID=1, ClusterID=2}`), 2 entry
//! (`raftpb.Entry {Type=1, Term=2, Index=3, Data=4}`), 3 state (`raftpb.HardState
//! {term=1, vote=2, commit=3}`), 4 crc, 5 snapshot (`walpb.Snapshot {index=1, term=2}`).
//!
//! CRCs chain across records and segments: each record's `crc` is CRC-32C (Castagnoli)
//! of its data continuing from the previous record's `crc`. Every segment starts with a
//! `crc` record (no data) carrying the previous segment's last value, then the metadata
//! and the last HardState. A torn write shows as a partial frame or a zeroed 512-byte
//! sector in the last segment; etcd repairs it at start by truncating.
//!
//! Entry data: an empty normal entry is a new leader's no-op; other normal entries hold
//! an `etcdserverpb.InternalRaftRequest`, or (publishing member attributes and the
//! cluster version in 3.4) a v2 `etcdserverpb.Request`; conf-change entries hold a
//! `raftpb.ConfChange` whose context is the member as JSON. See [`EntryPayload`].
//!
//! # Reading
//!
//! [`Wal::read_all`] gives what etcd would load — metadata, the last HardState, snapshot
//! markers, and the log with later entries replacing the conflicting uncommitted tail —
//! together with every problem found ([`WalProblem`]), instead of stopping at the first.
//! With [`ReadOptions::keep_going`] it reads past damage so that everything readable is
//! shown. [`Wal::records`] streams the raw records. [`EntryFilter`] picks entries for a
//! dump and [`EntryDump`] prints them like etcd-dump-logs.
//!
//! ```no_run
//! use snapshot_format::wal::{EntryFilter, ReadOptions, Wal};
//! let wal = Wal::open("default.etcd".as_ref())?;
//! let log = wal.read_all(&ReadOptions { keep_going: true, ..Default::default() });
//! for problem in &log.problems {
//!     eprintln!("{problem}");
//! }
//! let filter = EntryFilter::default().with_types("IRRPut,IRRTxn").map_err(snapshot_format::Error::BadPath)?;
//! for line in filter.apply(&log.entries) {
//!     println!("{line}");
//! }
//! # Ok::<(), snapshot_format::Error>(())
//! ```
//!
//! Nothing here panics or allocates more than the file sizes on any input: lengths are
//! checked against the bytes present and segments are bounded by
//! [`ReadOptions::max_segment_size`].

mod filter;
mod payload;
mod problem;
mod proto;
mod raftpb;
mod reader;
mod record;
mod scan;
mod segment;
mod snap;
mod write;

use std::path::Path;

use serde::Serialize;

pub use filter::{EntryDump, EntryFilter, EntryKind, EntrySelector};
pub use payload::{
    AuthOp, ConfChange, ConfChangeV2, DeleteOp, EntryPayload, InternalRequest, LeaseCheckpoint,
    PutOp, RangeOp, RequestOp, TxnCompare, TxnOp, TxnStep, UnknownPayload, V2Request,
};
pub use problem::{Severity, WalProblem, WalProblemKind};
pub use raftpb::{ConfState, HardState, WalMetadata, WalSnapshot};
pub use reader::{MAX_LOG_PROBLEMS, Wal, WalContents, WalEntry, WalSnapshotRecord, WalStats};
pub use record::{
    EntryType, FRAME_ALIGN, FRAME_HEADER_SIZE, FrameHeader, RecordType, SECTOR_SIZE, SEGMENT_SIZE,
};
pub use scan::{
    MAX_RECORD_BYTES, MAX_SEGMENT_PROBLEMS, ReadOptions, SegmentEnd, SegmentSummary, WalEvent,
    WalRecord, WalRecords,
};
pub use segment::{WalSegment, WalSegmentName, list_segments, resolve_wal_dir};
pub use snap::{
    SnapDbFile, SnapDir, SnapFile, SnapName, check_snapshots, loadable_snapshot, read_snap_dir,
    read_snap_file, resolve_snap_dir,
};
pub use write::{
    NewEntry, WalWriter, encode_conf_change, encode_conf_state, encode_entry, encode_hard_state,
    encode_metadata, encode_snap_file, encode_wal_snapshot, write_snap_file,
};

use crate::error::Result;

/// The WAL and snapshot files of one data dir, checked together.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DataDirCheck {
    /// The WAL as read (every entry, `keep_going`).
    pub wal: WalContents,
    /// The `.snap` files.
    pub snap: SnapDir,
    /// Every problem: the WAL's, the `.snap` files', and their relation's.
    pub problems: Vec<WalProblem>,
}

impl DataDirCheck {
    /// Problems of at least `severity`.
    pub fn problem_count(&self, severity: Severity) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity >= severity)
            .count()
    }
}

/// Checks the WAL and `.snap` files of a data dir (or member dir): reads every segment
/// with `keep_going`, every `.snap` file, and [`check_snapshots`] between them.
/// `db_consistent_index` is the backend's `meta/consistent_index` when known.
pub fn check_data_dir(path: &Path, db_consistent_index: Option<u64>) -> Result<DataDirCheck> {
    let wal = Wal::open(path)?;
    let contents = wal.read_all(&ReadOptions {
        keep_going: true,
        ..Default::default()
    });
    let snap = read_snap_dir(path)?;
    let mut problems = contents.problems.clone();
    problems.extend(snap.problems.iter().cloned());
    problems.extend(check_snapshots(
        &contents,
        wal.segments(),
        &snap,
        db_consistent_index,
    ));
    Ok(DataDirCheck {
        wal: contents,
        snap,
        problems,
    })
}
