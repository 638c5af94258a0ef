//! Problems found in WAL segments and `.snap` files, as data: every reader collects
//! them instead of stopping at the first error.

use std::fmt;

use serde::Serialize;

use super::record::RecordType;

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// etcd starts anyway (possibly after repairing it itself); worth knowing.
    Warning,
    /// Data is damaged or inconsistent; etcd refuses to start or loses data.
    Error,
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum WalProblemKind {
    /// The WAL directory holds no segment.
    NoSegments,
    /// A `.wal` / `.snap` file whose name does not parse (etcd ignores it).
    BadFileName,
    /// A file could not be read.
    Unreadable,
    /// Segment sequence numbers are not consecutive (etcd: `wal: file not found`).
    SegmentGap {
        /// The sequence number that should follow.
        expected_seq: u64,
        /// The one found.
        found_seq: u64,
    },
    /// A segment's name index is not the index after the last entry of the previous
    /// segment, as etcd names a new segment when it cuts one.
    SegmentIndexMismatch {
        /// Index in the file name.
        name_index: u64,
        /// Index expected from the previous segment.
        expected_index: u64,
    },
    /// A length word etcd's encoder would not write (stray bits in its top byte or a
    /// padding that does not align the record). etcd reads it anyway.
    BadPadding {
        /// The length word's top byte.
        top_byte: u8,
    },
    /// A length word that cannot be right: it runs past the end of the file while valid
    /// records follow it.
    BadFrame {
        /// The record length claimed.
        claimed_len: u64,
    },
    /// The record bytes are not a `walpb.Record`.
    BadRecord,
    /// A record type other than 1–5 (etcd: `unexpected block type`).
    UnknownRecordType {
        /// The type found.
        record_type: i64,
    },
    /// A record's CRC does not match the running CRC-32C chain (for a `crc` record at the
    /// start of a segment: the chain from the previous segment is broken).
    CrcMismatch {
        /// The record's type.
        record_type: RecordType,
        /// CRC stored in the record.
        stored: u32,
        /// CRC computed from the chain.
        computed: u32,
    },
    /// The record's CRC is right but its data does not decode as its type says
    /// (etcd panics on it).
    BadRecordData {
        /// The record's type.
        record_type: RecordType,
    },
    /// The last record is incomplete: a partial frame at the end of the file, or a
    /// record containing a zeroed sector. In the last segment etcd repairs this at start
    /// by truncating the segment at the last valid record (losing only the unfinished
    /// write); in an earlier segment it cannot.
    TornTail {
        /// Whether etcd's automatic repair applies (last segment).
        repairable: bool,
    },
    /// A zero length word (which ends a segment's data) followed by valid records: a
    /// zeroed region inside written data. etcd stops reading there and loses what
    /// follows.
    ZeroedRegion {
        /// Bytes of zeros before the next valid record.
        zero_bytes: u64,
    },
    /// Non-zero bytes after the end of a segment's data that are not valid records (a
    /// torn write that went further than the last complete record). etcd zeroes them in
    /// the last segment when it opens the WAL for writing.
    GarbageAfterEnd {
        /// Non-zero bytes found after the end.
        nonzero_bytes: u64,
    },
    /// Two metadata records differ (etcd: `wal: conflicting metadata found`).
    MetadataMismatch,
    /// No metadata record at all.
    MissingMetadata,
    /// Entries skip indexes (etcd's `ReadAll` would panic on it).
    IndexGap {
        /// The index expected next.
        expected: u64,
        /// The index found.
        found: u64,
    },
    /// An entry's term is lower than the term of the entry before it.
    TermRegression {
        /// The entry's index.
        index: u64,
        /// Its term.
        term: u64,
        /// The previous entry's term.
        previous_term: u64,
    },
    /// An entry at or below the commit index was rewritten: committed entries must never
    /// change.
    CommittedEntryOverwritten {
        /// The rewritten index.
        index: u64,
        /// The commit index recorded before.
        commit: u64,
    },
    /// The last HardState's commit index is past the last entry (raft: `tocommit is out
    /// of range`; the log was truncated or lost).
    CommitBeyondLastIndex {
        /// HardState commit.
        commit: u64,
        /// Last index present.
        last_index: u64,
    },
    /// The snapshot the WAL is read from has no snapshot record in the WAL (etcd: `wal:
    /// snapshot not found`), or no segment covers its index (`wal: file not found`).
    SnapshotNotFound {
        /// Snapshot index.
        index: u64,
        /// Snapshot term.
        term: u64,
    },
    /// The WAL's snapshot record at the start index has another term (etcd: `wal:
    /// snapshot mismatch`).
    SnapshotTermMismatch {
        /// Snapshot index.
        index: u64,
        /// Term expected.
        expected_term: u64,
        /// Term in the WAL record.
        wal_term: u64,
    },
    /// So many problems that the rest were not recorded (a segment stops being read
    /// after 1,000; the log keeps at most 10,000).
    TooManyProblems {
        /// Problems left out, when counted.
        suppressed: u64,
    },
    /// A `.snap` file is empty (etcd: `snap: empty snapshot`).
    SnapEmpty,
    /// A `.snap` file does not decode (`snappb.Snapshot` or `raftpb.Snapshot`).
    SnapBadFormat,
    /// A `.snap` file's CRC-32C does not match its data (etcd: `snap: crc mismatch`).
    SnapCrcMismatch {
        /// CRC stored in the file.
        stored: u32,
        /// CRC of the data.
        computed: u32,
    },
    /// A `.snap` file's name disagrees with the term and index inside it.
    SnapNameMismatch {
        /// Term in the name.
        name_term: u64,
        /// Index in the name.
        name_index: u64,
        /// Term inside.
        term: u64,
        /// Index inside.
        index: u64,
    },
    /// A valid `.snap` file newer than the one etcd loads has no matching snapshot record
    /// in the WAL (at or below the commit index): etcd 3.4.23 skips it.
    SnapNotInWal {
        /// Snapshot term.
        term: u64,
        /// Snapshot index.
        index: u64,
    },
    /// No `.snap` file can be loaded (none is valid and matches a WAL snapshot record)
    /// while the WAL no longer starts at index 0: etcd cannot find where to start.
    NoLoadableSnapshot {
        /// Index the first WAL segment is named for.
        first_wal_index: u64,
    },
    /// A WAL snapshot record newer than the oldest `.snap` file has no `.snap` (nor
    /// `.snap.db`) file; etcd falls back to an older snapshot and replays more entries.
    WalSnapshotWithoutFile {
        /// Snapshot term.
        term: u64,
        /// Snapshot index.
        index: u64,
    },
    /// The backend's consistent index is below the newest snapshot's index and no
    /// `.snap.db` can bring it forward (etcd: `database file … does not match with
    /// snapshot`).
    DbBehindSnapshot {
        /// `meta/consistent_index` of `member/snap/db`.
        consistent_index: u64,
        /// Index of the newest valid `.snap`.
        snapshot_index: u64,
    },
}

impl WalProblemKind {
    /// How bad this kind of problem is.
    pub fn severity(&self) -> Severity {
        use WalProblemKind::*;
        match self {
            BadFileName
            | SegmentIndexMismatch { .. }
            | BadPadding { .. }
            | GarbageAfterEnd { .. }
            | WalSnapshotWithoutFile { .. }
            | SnapNotInWal { .. }
            | TornTail { repairable: true } => Severity::Warning,
            _ => Severity::Error,
        }
    }

    /// A stable code for scripts and findings, e.g. `WAL_CRC_MISMATCH`.
    pub fn code(&self) -> &'static str {
        use WalProblemKind::*;
        match self {
            NoSegments => "WAL_NO_SEGMENTS",
            BadFileName => "WAL_BAD_FILE_NAME",
            Unreadable => "WAL_UNREADABLE",
            SegmentGap { .. } => "WAL_SEGMENT_GAP",
            SegmentIndexMismatch { .. } => "WAL_SEGMENT_INDEX_MISMATCH",
            BadPadding { .. } => "WAL_BAD_PADDING",
            BadFrame { .. } => "WAL_BAD_FRAME",
            BadRecord => "WAL_BAD_RECORD",
            UnknownRecordType { .. } => "WAL_UNKNOWN_RECORD_TYPE",
            CrcMismatch { .. } => "WAL_CRC_MISMATCH",
            BadRecordData { .. } => "WAL_BAD_RECORD_DATA",
            TornTail { .. } => "WAL_TORN_TAIL",
            ZeroedRegion { .. } => "WAL_ZEROED_REGION",
            GarbageAfterEnd { .. } => "WAL_GARBAGE_AFTER_END",
            MetadataMismatch => "WAL_METADATA_MISMATCH",
            MissingMetadata => "WAL_MISSING_METADATA",
            IndexGap { .. } => "WAL_INDEX_GAP",
            TermRegression { .. } => "WAL_TERM_REGRESSION",
            CommittedEntryOverwritten { .. } => "WAL_COMMITTED_ENTRY_OVERWRITTEN",
            CommitBeyondLastIndex { .. } => "WAL_COMMIT_BEYOND_LAST_INDEX",
            SnapshotNotFound { .. } => "WAL_SNAPSHOT_NOT_FOUND",
            SnapshotTermMismatch { .. } => "WAL_SNAPSHOT_TERM_MISMATCH",
            SnapEmpty => "SNAP_EMPTY",
            SnapBadFormat => "SNAP_BAD_FORMAT",
            SnapCrcMismatch { .. } => "SNAP_CRC_MISMATCH",
            SnapNameMismatch { .. } => "SNAP_NAME_MISMATCH",
            SnapNotInWal { .. } => "SNAP_NOT_IN_WAL",
            NoLoadableSnapshot { .. } => "SNAP_NONE_LOADABLE",
            WalSnapshotWithoutFile { .. } => "WAL_SNAPSHOT_WITHOUT_FILE",
            DbBehindSnapshot { .. } => "SNAP_DB_BEHIND_SNAPSHOT",
            TooManyProblems { .. } => "WAL_TOO_MANY_PROBLEMS",
        }
    }
}

/// One problem: what, where (file name and byte offset) and the details in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalProblem {
    /// What is wrong.
    #[serde(flatten)]
    pub kind: WalProblemKind,
    /// Stable code of the kind, e.g. `WAL_CRC_MISMATCH`.
    pub code: &'static str,
    /// How bad it is (from the kind).
    pub severity: Severity,
    /// File name of the segment or `.snap` file (empty for problems of the whole log).
    pub file: String,
    /// Absolute byte offset in the file, when the problem is at one place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// The details, in words.
    pub detail: String,
}

impl WalProblem {
    /// A problem in `file` at `offset`.
    pub fn new(
        kind: WalProblemKind,
        file: impl Into<String>,
        offset: Option<u64>,
        detail: impl Into<String>,
    ) -> Self {
        WalProblem {
            code: kind.code(),
            severity: kind.severity(),
            kind,
            file: file.into(),
            offset,
            detail: detail.into(),
        }
    }

    /// Whether etcd repairs this by itself when it starts (a torn tail in the last
    /// segment, garbage after its end).
    pub fn is_repairable(&self) -> bool {
        matches!(
            self.kind,
            WalProblemKind::TornTail { repairable: true } | WalProblemKind::GarbageAfterEnd { .. }
        )
    }

    /// The problem as this crate's [`crate::Error`], for callers that stop at the first.
    pub fn to_error(&self) -> crate::Error {
        crate::Error::corrupt(
            crate::Location {
                offset: self.offset,
                ..Default::default()
            },
            format!("{}: {}", self.file, self.detail),
        )
    }
}

impl fmt::Display for WalProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Warning => "warning",
            Severity::Error => "error",
        };
        write!(f, "{severity} {}", self.code)?;
        if !self.file.is_empty() {
            write!(f, " in {}", self.file)?;
        }
        if let Some(offset) = self.offset {
            write!(f, " at offset {offset} (0x{offset:x})")?;
        }
        write!(f, ": {}", self.detail)
    }
}
