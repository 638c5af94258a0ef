//! [`Wal`]: a WAL directory, read the way etcd's `wal.ReadAll` reads it — metadata, the
//! last HardState, snapshot markers and the raft log with later entries replacing the
//! uncommitted tail they conflict with — plus every problem found on the way.

use std::path::{Path, PathBuf};

use prost::Message;
use serde::{Serialize, Serializer};

use super::payload::EntryPayload;
use super::problem::{Severity, WalProblem, WalProblemKind};
use super::raftpb::{HardState, WalMetadata, WalSnapshot};
use super::record::{EntryType, RecordType, decode_entry};
use super::scan::{ReadOptions, SegmentEnd, SegmentSummary, WalEvent, WalRecord, WalRecords};
use super::segment::{WalSegment, list_segments, resolve_wal_dir};
use crate::error::Result;

/// An etcd WAL directory (`member/wal`).
#[derive(Debug, Clone)]
pub struct Wal {
    dir: PathBuf,
    segments: Vec<WalSegment>,
    listing_problems: Vec<WalProblem>,
}

/// One raft entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalEntry {
    /// Raft term.
    pub term: u64,
    /// Raft index.
    pub index: u64,
    /// Entry type.
    pub entry_type: EntryType,
    /// The entry's data (serialized as its size, `dataSize`).
    #[serde(rename = "dataSize", serialize_with = "serialize_len")]
    pub data: Vec<u8>,
    /// Position of its segment in [`WalContents::segments`].
    pub segment: usize,
    /// Byte offset of its record in the segment.
    pub offset: u64,
}

fn serialize_len<S: Serializer>(data: &[u8], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(data.len() as u64)
}

impl WalEntry {
    /// Decodes the entry's data.
    pub fn payload(&self) -> EntryPayload {
        EntryPayload::decode(self.entry_type, &self.data)
    }
}

/// A snapshot marker found in the WAL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalSnapshotRecord {
    /// Raft index.
    pub index: u64,
    /// Raft term.
    pub term: u64,
    /// Segment file name.
    pub file: String,
    /// Byte offset of the record.
    pub offset: u64,
}

/// Counts of what was read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalStats {
    /// Valid records of every type.
    pub records: u64,
    /// Entry records (including the ones later overwritten or before the start).
    pub entry_records: u64,
    /// HardState records.
    pub state_records: u64,
    /// Metadata records.
    pub metadata_records: u64,
    /// Snapshot records.
    pub snapshot_records: u64,
    /// CRC records.
    pub crc_records: u64,
    /// Entries at or below the start snapshot's index, dropped.
    pub skipped_entries: u64,
    /// Entries replaced by a later entry with the same index (raft log truncation).
    pub overwritten_entries: u64,
    /// Bytes of valid records (up to each segment's data end).
    pub data_bytes: u64,
}

/// Everything read from a WAL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalContents {
    /// The WAL directory.
    pub dir: PathBuf,
    /// Every segment read, in order.
    pub segments: Vec<SegmentSummary>,
    /// Node and cluster id.
    pub metadata: Option<WalMetadata>,
    /// Snapshot markers, in order.
    pub snapshots: Vec<WalSnapshotRecord>,
    /// The last HardState.
    pub hard_state: Option<HardState>,
    /// The raft log as etcd would load it (serialized as a count; dump them with an
    /// [`super::EntryFilter`]).
    #[serde(rename = "entryCount", serialize_with = "serialize_count")]
    pub entries: Vec<WalEntry>,
    /// Counts.
    pub stats: WalStats,
    /// Every problem found, in file order.
    pub problems: Vec<WalProblem>,
}

fn serialize_count<S: Serializer>(
    entries: &[WalEntry],
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_u64(entries.len() as u64)
}

impl WalContents {
    /// Index of the first entry.
    pub fn first_index(&self) -> Option<u64> {
        self.entries.first().map(|e| e.index)
    }

    /// Index of the last entry.
    pub fn last_index(&self) -> Option<u64> {
        self.entries.last().map(|e| e.index)
    }

    /// Problems of at least `severity`.
    pub fn problem_count(&self, severity: Severity) -> usize {
        self.problems
            .iter()
            .filter(|p| p.severity >= severity)
            .count()
    }

    /// True when no problem of severity error was found.
    pub fn is_healthy(&self) -> bool {
        self.problem_count(Severity::Error) == 0
    }

    /// The entry with index `index`.
    pub fn entry(&self, index: u64) -> Option<&WalEntry> {
        let pos = self.entries.partition_point(|e| e.index < index);
        self.entries.get(pos).filter(|e| e.index == index)
    }
}

impl Wal {
    /// Opens the WAL of a data dir (`member/wal`), of a member dir (`wal`), or a WAL
    /// directory itself, and lists its segments.
    pub fn open(path: &Path) -> Result<Wal> {
        let dir = resolve_wal_dir(path)?;
        let (segments, listing_problems) = list_segments(&dir)?;
        Ok(Wal {
            dir,
            segments,
            listing_problems,
        })
    }

    /// The WAL directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segments, by sequence number.
    pub fn segments(&self) -> &[WalSegment] {
        &self.segments
    }

    /// Problems found while listing the directory (files etcd ignores).
    pub fn listing_problems(&self) -> &[WalProblem] {
        &self.listing_problems
    }

    /// Every record in file order, with problems and segment boundaries, CRCs verified:
    /// the raw view (entries later overwritten included).
    pub fn records(&self, options: &ReadOptions) -> WalRecords<'_> {
        WalRecords::new(&self.segments, options.clone())
    }

    /// Reads the whole WAL as etcd's `ReadAll` does and checks the log: metadata
    /// agreement, index continuity, terms, the commit index, segment names.
    pub fn read_all(&self, options: &ReadOptions) -> WalContents {
        let mut log = LogBuilder::new(self, options);
        if self.segments.is_empty() {
            log.problem(
                WalProblemKind::NoSegments,
                "",
                None,
                format!("{} holds no WAL segment", self.dir.display()),
            );
            return log.contents;
        }
        if let Some(start) = options.start
            && !self.segments.iter().any(|s| s.name.index <= start.index)
        {
            log.problem(
                WalProblemKind::SnapshotNotFound {
                    index: start.index,
                    term: start.term,
                },
                "",
                None,
                format!(
                    "no segment may hold index {} (the first starts at {}): etcd cannot open \
                     the WAL at this snapshot (wal: file not found)",
                    start.index, self.segments[0].name.index
                ),
            );
        }
        for event in self.records(options) {
            match event {
                WalEvent::SegmentStart(i) => log.segment_start(i),
                WalEvent::Problem(p) => log.push(p),
                WalEvent::SegmentEnd(s) => {
                    log.contents.stats.data_bytes += s.data_end;
                    log.contents.segments.push(s);
                }
                WalEvent::Record(r) => log.record(r),
            }
            if log.stopped {
                break;
            }
        }
        log.finish();
        log.contents
    }
}

/// The state of `ReadAll` while records stream in.
struct LogBuilder<'w> {
    wal: &'w Wal,
    options: ReadOptions,
    contents: WalContents,
    metadata_raw: Option<Vec<u8>>,
    /// The last commit index seen so far.
    commit: u64,
    /// etcd's `enti`: index of the last entry written (or of a later snapshot marker).
    enti: Option<u64>,
    /// Index of the last entry record read.
    last_entry: Option<u64>,
    start_matched: bool,
    /// A problem of severity error was found (consequential checks are skipped).
    damaged: bool,
    /// Stop reading (a decoding error with `keep_going` off).
    stopped: bool,
    /// Problems not recorded once [`MAX_LOG_PROBLEMS`] were.
    suppressed: u64,
}

/// Most problems [`Wal::read_all`] records; the rest are counted.
pub const MAX_LOG_PROBLEMS: usize = 10_000;

impl<'w> LogBuilder<'w> {
    fn new(wal: &'w Wal, options: &ReadOptions) -> Self {
        LogBuilder {
            wal,
            options: options.clone(),
            contents: WalContents {
                dir: wal.dir.clone(),
                segments: Vec::new(),
                metadata: None,
                snapshots: Vec::new(),
                hard_state: None,
                entries: Vec::new(),
                stats: WalStats::default(),
                problems: wal.listing_problems.clone(),
            },
            metadata_raw: None,
            commit: 0,
            enti: None,
            last_entry: None,
            start_matched: false,
            damaged: false,
            stopped: false,
            suppressed: 0,
        }
    }

    fn push(&mut self, problem: WalProblem) {
        if problem.severity == Severity::Error {
            self.damaged = true;
        }
        if self.contents.problems.len() < MAX_LOG_PROBLEMS {
            self.contents.problems.push(problem);
        } else {
            self.suppressed += 1;
        }
    }

    fn problem(&mut self, kind: WalProblemKind, file: &str, offset: Option<u64>, detail: String) {
        self.push(WalProblem::new(kind, file, offset, detail));
    }

    fn file(&self, segment: usize) -> String {
        self.wal.segments[segment].file_name()
    }

    /// etcd names a new segment after the index following the last entry it wrote.
    fn segment_start(&mut self, i: usize) {
        let Some(previous) = self.contents.segments.last() else {
            return;
        };
        let name = self.wal.segments[i].name;
        let clean = matches!(previous.end, SegmentEnd::EndOfFile | SegmentEnd::ZeroTail)
            && previous.seq.checked_add(1) == Some(name.seq);
        let Some(last) = self.last_entry else {
            return;
        };
        if !clean || self.damaged {
            return;
        }
        let expected = last.saturating_add(1);
        let by_enti = self.enti.map(|e| e.saturating_add(1));
        if name.index != expected && by_enti != Some(name.index) {
            let file = self.file(i);
            self.problem(
                WalProblemKind::SegmentIndexMismatch {
                    name_index: name.index,
                    expected_index: expected,
                },
                &file,
                None,
                format!(
                    "the segment is named for index {} but the previous segment's last entry is \
                     {last}: etcd names a new segment for the index after the last entry written",
                    name.index
                ),
            );
        }
    }

    fn bad_data(&mut self, r: &WalRecord, why: String) {
        let file = self.file(r.segment);
        self.problem(
            WalProblemKind::BadRecordData {
                record_type: r.record_type,
            },
            &file,
            Some(r.offset),
            format!(
                "{} record with a valid CRC does not decode: {why} (etcd panics on it)",
                r.record_type
            ),
        );
        if !self.options.keep_going {
            self.stopped = true;
        }
    }

    fn record(&mut self, r: WalRecord) {
        let stats = &mut self.contents.stats;
        stats.records += 1;
        match r.record_type {
            RecordType::Entry => {
                stats.entry_records += 1;
                self.entry(r);
            }
            RecordType::State => {
                stats.state_records += 1;
                match HardState::decode(r.data.as_slice()) {
                    Ok(state) => {
                        self.commit = state.commit;
                        self.contents.hard_state = Some(state);
                    }
                    Err(e) => self.bad_data(&r, e.to_string()),
                }
            }
            RecordType::Metadata => {
                stats.metadata_records += 1;
                if let Some(previous) = &self.metadata_raw
                    && *previous != r.data
                {
                    let file = self.file(r.segment);
                    let detail = format!(
                        "metadata record differs from the first one ({}): etcd refuses to start \
                         (wal: conflicting metadata found)",
                        match WalMetadata::decode(r.data.as_slice()) {
                            Ok(m) => format!("node {:x} cluster {:x}", m.node_id, m.cluster_id),
                            Err(_) => "undecodable".to_string(),
                        }
                    );
                    self.problem(
                        WalProblemKind::MetadataMismatch,
                        &file,
                        Some(r.offset),
                        detail,
                    );
                    if !self.options.keep_going {
                        self.stopped = true;
                    }
                    return;
                }
                match WalMetadata::decode(r.data.as_slice()) {
                    Ok(m) => {
                        if self.contents.metadata.is_none() {
                            self.contents.metadata = Some(m);
                        }
                    }
                    Err(e) => self.bad_data(&r, e.to_string()),
                }
                self.metadata_raw.get_or_insert(r.data);
            }
            RecordType::Snapshot => {
                stats.snapshot_records += 1;
                match WalSnapshot::decode(r.data.as_slice()) {
                    Ok(snap) => self.snapshot(&r, snap),
                    Err(e) => self.bad_data(&r, e.to_string()),
                }
            }
            RecordType::Crc => stats.crc_records += 1,
            // Reported by the scanner.
            RecordType::Unknown(_) => {}
        }
    }

    fn snapshot(&mut self, r: &WalRecord, snap: WalSnapshot) {
        if self.enti.is_none_or(|e| e < snap.index) {
            self.enti = Some(snap.index);
        }
        let file = self.file(r.segment);
        if let Some(start) = self.options.start
            && snap.index == start.index
        {
            if snap.term == start.term {
                self.start_matched = true;
            } else {
                self.problem(
                    WalProblemKind::SnapshotTermMismatch {
                        index: snap.index,
                        expected_term: start.term,
                        wal_term: snap.term,
                    },
                    &file,
                    Some(r.offset),
                    format!(
                        "the WAL's snapshot record at index {} has term {}, the snapshot term {} \
                         (etcd: wal: snapshot mismatch)",
                        snap.index, snap.term, start.term
                    ),
                );
                if !self.options.keep_going {
                    self.stopped = true;
                }
            }
        }
        self.contents.snapshots.push(WalSnapshotRecord {
            index: snap.index,
            term: snap.term,
            file,
            offset: r.offset,
        });
    }

    /// Appends an entry as `ReadAll` does: `ents = append(ents[:e.Index-start-1], e)`.
    fn entry(&mut self, r: WalRecord) {
        let fields = match decode_entry(&r.data) {
            Ok(fields) => fields,
            Err(why) => return self.bad_data(&r, why),
        };
        self.last_entry = Some(fields.index);
        self.enti = Some(fields.index);
        if let Some(start) = self.options.start
            && fields.index <= start.index
        {
            self.contents.stats.skipped_entries += 1;
            return;
        }
        let entries = &mut self.contents.entries;
        let expected = match entries.last() {
            Some(last) => Some(last.index.saturating_add(1)),
            None => self.options.start.map(|s| s.index.saturating_add(1)),
        };
        if let Some(last) = entries.last()
            && fields.index <= last.index
        {
            let keep = entries.partition_point(|e| e.index < fields.index);
            self.contents.stats.overwritten_entries += (entries.len() - keep) as u64;
            entries.truncate(keep);
            if fields.index <= self.commit {
                let commit = self.commit;
                let file = self.file(r.segment);
                self.problem(
                    WalProblemKind::CommittedEntryOverwritten {
                        index: fields.index,
                        commit,
                    },
                    &file,
                    Some(r.offset),
                    format!(
                        "entry {} (term {}) replaces an entry at or below the commit index {commit}: \
                         committed entries must never change",
                        fields.index, fields.term
                    ),
                );
            }
        } else if let Some(expected) = expected
            && fields.index != expected
        {
            let file = self.file(r.segment);
            self.problem(
                WalProblemKind::IndexGap {
                    expected,
                    found: fields.index,
                },
                &file,
                Some(r.offset),
                format!(
                    "entry index jumps to {} where {expected} was expected: entries {expected}..{} \
                     are missing (etcd: slice bounds out of range)",
                    fields.index,
                    fields.index - 1
                ),
            );
            if !self.options.keep_going {
                // etcd stops here, before appending.
                self.stopped = true;
                return;
            }
        }
        let entries = &mut self.contents.entries;
        if let Some(previous) = entries.last()
            && fields.term < previous.term
        {
            let previous_term = previous.term;
            let file = self.file(r.segment);
            self.problem(
                WalProblemKind::TermRegression {
                    index: fields.index,
                    term: fields.term,
                    previous_term,
                },
                &file,
                Some(r.offset),
                format!(
                    "entry {} has term {} after an entry of term {previous_term}: terms never \
                     decrease along the log",
                    fields.index, fields.term
                ),
            );
        }
        let mut data = r.data;
        data.truncate(fields.data.end);
        data.drain(..fields.data.start);
        self.contents.entries.push(WalEntry {
            term: fields.term,
            index: fields.index,
            entry_type: fields.entry_type,
            data,
            segment: r.segment,
            offset: r.offset,
        });
    }

    /// Checks that need the whole log.
    fn finish(&mut self) {
        self.final_checks();
        if self.suppressed > 0 {
            let suppressed = self.suppressed;
            self.contents.problems.push(WalProblem::new(
                WalProblemKind::TooManyProblems { suppressed },
                "",
                None,
                format!("{suppressed} more problems were found but not recorded"),
            ));
        }
    }

    fn final_checks(&mut self) {
        let complete = !self.damaged && !self.stopped;
        if !complete && !self.options.keep_going {
            return;
        }
        if self.contents.metadata.is_none() && self.contents.stats.metadata_records == 0 {
            self.problem(
                WalProblemKind::MissingMetadata,
                "",
                None,
                "no metadata record (node and cluster id) in any segment".to_string(),
            );
        }
        if let Some(start) = self.options.start
            && !self.start_matched
            && self
                .wal
                .segments
                .iter()
                .any(|s| s.name.index <= start.index)
        {
            self.problem(
                WalProblemKind::SnapshotNotFound {
                    index: start.index,
                    term: start.term,
                },
                "",
                None,
                format!(
                    "no snapshot record for index {} term {} in the WAL (etcd: wal: snapshot not \
                     found)",
                    start.index, start.term
                ),
            );
        }
        if let Some(state) = self.contents.hard_state {
            let last_index = [
                self.contents.last_index(),
                self.options.start.map(|s| s.index),
                self.contents.snapshots.iter().map(|s| s.index).max(),
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(0);
            if state.commit > last_index {
                self.problem(
                    WalProblemKind::CommitBeyondLastIndex {
                        commit: state.commit,
                        last_index,
                    },
                    "",
                    None,
                    format!(
                        "the HardState commits index {} but the log ends at {last_index}: \
                         committed entries are missing (raft: tocommit is out of range)",
                        state.commit
                    ),
                );
            }
        }
    }
}
