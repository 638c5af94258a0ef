//! Reading records out of segments: frames, the running CRC-32C chain across records and
//! segments, and the classification of every way a segment can end or break.
//!
//! The rules follow etcd 3.4's `wal/decoder.go` and `wal.ReadAll`:
//!
//! - a zero length word (or the end of the file) ends a segment's data;
//! - a record's CRC is `crc32c(running, data)`; a `crc` record re-seeds the chain and must
//!   carry the running value (skipped while it is 0, i.e. at the very start);
//! - a frame cut by the end of the file, or a record in the last segment that fails to
//!   decode or to verify and contains an all-zero sector chunk, is a torn write
//!   (`io.ErrUnexpectedEOF`), which etcd repairs in the last segment by truncating.
//!
//! On top of that, when something fails, the scanner looks for valid records further on
//! (a record that chains with the one after it): if there are some, the damage is in the
//! middle and is reported as such even where etcd would mistake it for a torn write.

use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;

use serde::Serialize;

use super::problem::{Severity, WalProblem, WalProblemKind};
use super::raftpb;
use super::record::{
    EntryType, FRAME_ALIGN, FRAME_HEADER_SIZE, FrameHeader, RecordFields, RecordType, SECTOR_SIZE,
    decode_entry, decode_record,
};
use super::segment::WalSegment;

/// How to read a WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOptions {
    /// Keep reading after damage: skip a record whose CRC does not match (re-seeding the
    /// chain from it), resynchronise after a broken frame, read segments after a gap.
    /// Without it reading stops at the first error, as etcd does.
    pub keep_going: bool,
    /// Read the log as etcd does when it starts from this snapshot: entries at or below
    /// its index are dropped, and the WAL must hold a matching snapshot record. `None`
    /// keeps every entry present.
    pub start: Option<raftpb::WalSnapshot>,
    /// Segments larger than this are not read (etcd's are 64 MB; the limit bounds memory
    /// on hostile input).
    pub max_segment_size: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            keep_going: false,
            start: None,
            max_segment_size: 1 << 30,
        }
    }
}

/// One record as read from a segment, its CRC verified against the chain (with
/// `keep_going`, the first record after damage that leaves the chain value unknown is
/// taken on trust and re-seeds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRecord {
    /// Position of the segment in [`super::Wal::segments`].
    pub segment: usize,
    /// Byte offset of the record's length word in the segment.
    pub offset: u64,
    /// The record type.
    pub record_type: RecordType,
    /// The CRC stored in the record.
    pub crc: u32,
    /// The record's data.
    pub data: Vec<u8>,
}

/// How a segment's data ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SegmentEnd {
    /// At the end of the file (etcd truncates every segment but the last when it cuts).
    EndOfFile,
    /// At a zero length word: the preallocated, zero-filled rest of the file.
    ZeroTail,
    /// At a torn write.
    TornTail,
    /// At damage with nothing readable after it.
    Damaged,
    /// Reading stopped at an error (`keep_going` off).
    Stopped,
    /// The segment was not read.
    NotRead,
}

/// What was found in one segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentSummary {
    /// File name.
    pub file: String,
    /// Sequence number from the name.
    pub seq: u64,
    /// First index from the name.
    pub index: u64,
    /// File size.
    pub size: u64,
    /// Valid records read.
    pub records: u64,
    /// Offset just past the last valid record (where etcd's repair would truncate).
    pub data_end: u64,
    /// How the data ended.
    pub end: SegmentEnd,
    /// The running CRC after the last valid record.
    pub final_crc: u32,
}

/// One step of reading a WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalEvent {
    /// Reading segment `n` (position in [`super::Wal::segments`]) begins.
    SegmentStart(usize),
    /// A valid record.
    Record(WalRecord),
    /// A problem, just before the records that follow it.
    Problem(WalProblem),
    /// Segment done.
    SegmentEnd(SegmentSummary),
}

/// The running CRC. `known` is false after damage that leaves the chain value unknown
/// (the next record is then taken on trust and re-seeds it).
#[derive(Debug, Clone, Copy)]
struct Chain {
    crc: u32,
    known: bool,
}

/// Iterator over the records of every segment, with problems and segment boundaries.
pub struct WalRecords<'a> {
    segments: &'a [WalSegment],
    options: ReadOptions,
    next_segment: usize,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    queue: VecDeque<WalEvent>,
    chain: Chain,
    /// The segment being scanned, frame by frame.
    cursor: Option<Cursor>,
    done: bool,
}

/// Where scanning of the current segment is.
struct Cursor {
    segment: usize,
    file: String,
    is_last: bool,
    pos: usize,
    records: u64,
    data_end: usize,
    /// A fatal problem was found and `keep_going` is off.
    stop: bool,
    /// Bytes resynchronisation may still hash or decode, so hostile input cannot make it
    /// quadratic.
    resync_budget: u64,
    /// Problems reported in this segment.
    problems: usize,
    summary: SegmentSummary,
}

/// A segment with this many problems is garbage: reading it stops, so memory stays
/// bounded on hostile input.
pub const MAX_SEGMENT_PROBLEMS: usize = 1000;

impl<'a> WalRecords<'a> {
    pub(crate) fn new(segments: &'a [WalSegment], options: ReadOptions) -> Self {
        WalRecords {
            segments,
            options,
            next_segment: 0,
            buf: Vec::new(),
            scratch: Vec::new(),
            queue: VecDeque::new(),
            chain: Chain {
                crc: 0,
                known: true,
            },
            cursor: None,
            done: false,
        }
    }

    fn stop_on(&mut self, problem: WalProblem) {
        if problem.severity == Severity::Error && !self.options.keep_going {
            self.done = true;
        }
        self.queue.push_back(WalEvent::Problem(problem));
    }

    fn read_segment(&mut self) {
        let index = self.next_segment;
        self.next_segment += 1;
        let segment = &self.segments[index];
        let file = segment.file_name();
        let mut summary = SegmentSummary {
            file: file.clone(),
            seq: segment.name.seq,
            index: segment.name.index,
            size: segment.size,
            records: 0,
            data_end: 0,
            end: SegmentEnd::NotRead,
            final_crc: self.chain.crc,
        };
        self.queue.push_back(WalEvent::SegmentStart(index));
        if index > 0 {
            let previous = self.segments[index - 1].name.seq;
            if previous.checked_add(1) != Some(segment.name.seq) {
                self.stop_on(WalProblem::new(
                    WalProblemKind::SegmentGap {
                        expected_seq: previous.wrapping_add(1),
                        found_seq: segment.name.seq,
                    },
                    file.clone(),
                    None,
                    format!(
                        "segment sequence jumps from {previous:x} to {:x}: segments are missing \
                         (etcd refuses to open the WAL: file not found)",
                        segment.name.seq
                    ),
                ));
                // The chain cannot continue across missing segments.
                self.chain.known = false;
                if self.done {
                    self.queue.push_back(WalEvent::SegmentEnd(summary));
                    return;
                }
            }
        }
        if segment.size > self.options.max_segment_size {
            self.chain.known = false;
            self.stop_on(WalProblem::new(
                WalProblemKind::Unreadable,
                file,
                None,
                format!(
                    "segment is {} bytes, more than the {}-byte limit (etcd's segments are 64 MB)",
                    segment.size, self.options.max_segment_size
                ),
            ));
            self.queue.push_back(WalEvent::SegmentEnd(summary));
            return;
        }
        let read = File::open(&segment.path).and_then(|f| {
            // Never read more than the limit, even if the file grew since it was listed.
            let mut f = f.take(self.options.max_segment_size);
            load_segment(&mut f, &mut self.buf, &mut self.scratch)
        });
        let size = match read {
            Ok(size) => size,
            Err(e) => {
                self.chain.known = false;
                self.stop_on(WalProblem::new(
                    WalProblemKind::Unreadable,
                    file,
                    None,
                    format!("cannot read: {e}"),
                ));
                self.queue.push_back(WalEvent::SegmentEnd(summary));
                return;
            }
        };
        summary.size = size;
        self.cursor = Some(Cursor {
            segment: index,
            file,
            is_last: index + 1 == self.segments.len(),
            pos: 0,
            records: 0,
            data_end: 0,
            stop: false,
            resync_budget: 4 * self.buf.len() as u64 + (1 << 20),
            problems: 0,
            summary,
        });
    }

    /// Scans one frame of the current segment; finishes the segment at its end.
    fn advance(&mut self) {
        let Some(cursor) = self.cursor.as_mut() else {
            return;
        };
        let mut scanner = SegmentScanner {
            bytes: &self.buf,
            keep_going: self.options.keep_going,
            chain: &mut self.chain,
            out: &mut self.queue,
            cur: cursor,
        };
        let step = scanner.step(scanner.cur.pos);
        let end = match step {
            _ if cursor.stop => SegmentEnd::Stopped,
            _ if cursor.problems >= MAX_SEGMENT_PROBLEMS => {
                self.chain.known = false;
                SegmentEnd::Damaged
            }
            Step::Continue(next) => {
                cursor.pos = next;
                return;
            }
            Step::End(end) => end,
        };
        let mut summary = cursor.summary.clone();
        summary.records = cursor.records;
        summary.data_end = cursor.data_end as u64;
        summary.end = end;
        summary.final_crc = self.chain.crc;
        if cursor.stop {
            self.done = true;
        }
        self.cursor = None;
        self.queue.push_back(WalEvent::SegmentEnd(summary));
    }
}

impl Iterator for WalRecords<'_> {
    type Item = WalEvent;

    fn next(&mut self) -> Option<WalEvent> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            if self.cursor.is_some() {
                self.advance();
                continue;
            }
            if self.done || self.next_segment >= self.segments.len() {
                return None;
            }
            self.read_segment();
        }
    }
}

/// etcd 3.4.23's `maxWALEntrySizeLimit`: a frame body (record plus padding) of this
/// size or more is an error, never a torn write.
pub const MAX_RECORD_BYTES: u64 = 10 * 1024 * 1024;

/// Bytes read at a time.
const CHUNK: usize = 1 << 20;

/// Reads `n` bytes or up to the end of the file into `buf`, returning how many.
fn read_full(file: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads a segment into `buf` and returns the file's length. The zero-filled rest of a
/// preallocated segment is checked (through `scratch`) but not kept: `buf` stops after
/// the first whole zero chunk once everything after it is zero too, so a segment holding
/// a few kilobytes costs a few kilobytes of memory. If anything non-zero follows, the
/// whole file is kept.
fn load_segment(
    file: &mut impl Read,
    buf: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> std::io::Result<u64> {
    buf.clear();
    scratch.resize(CHUNK, 0);
    loop {
        let start = buf.len();
        buf.resize(start + CHUNK, 0);
        let n = read_full(file, &mut buf[start..])?;
        buf.truncate(start + n);
        if n < CHUNK {
            return Ok(buf.len() as u64);
        }
        if first_nonzero(&buf[start..]).is_some() {
            continue;
        }
        // A whole zero chunk: check the rest without keeping it.
        let mut skipped = 0u64;
        loop {
            let n = read_full(file, scratch)?;
            if n == 0 {
                return Ok(buf.len() as u64 + skipped);
            }
            if first_nonzero(&scratch[..n]).is_some() {
                // Not a plain zero tail: keep everything.
                let zeros = usize::try_from(skipped).map_err(std::io::Error::other)?;
                buf.resize(buf.len() + zeros, 0);
                buf.extend_from_slice(&scratch[..n]);
                break;
            }
            skipped += n as u64;
        }
    }
}

/// What to do after one frame.
enum Step {
    Continue(usize),
    End(SegmentEnd),
}

struct SegmentScanner<'b> {
    bytes: &'b [u8],
    keep_going: bool,
    chain: &'b mut Chain,
    out: &'b mut VecDeque<WalEvent>,
    cur: &'b mut Cursor,
}

fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let slice = bytes.get(at..at.checked_add(FRAME_HEADER_SIZE)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(slice);
    Some(u64::from_le_bytes(a))
}

fn align_up(n: usize) -> usize {
    n.div_ceil(FRAME_ALIGN) * FRAME_ALIGN
}

/// Position of the first non-zero byte, testing 4 KiB blocks at a time (a fold without
/// early exit vectorises; the zero tail of a segment is most of its 64 MB).
fn first_nonzero(bytes: &[u8]) -> Option<usize> {
    let mut base = 0;
    for block in bytes.chunks(4096) {
        if block.iter().fold(0u8, |acc, &b| acc | b) != 0 {
            return block.iter().position(|&b| b != 0).map(|p| base + p);
        }
        base += block.len();
    }
    None
}

/// etcd's `isTornEntry`: splits the frame body at sector boundaries of the file and
/// reports whether any chunk is entirely zero.
fn is_torn(body: &[u8], file_offset: usize) -> bool {
    let mut offset = file_offset as u64;
    let mut rest = body;
    while !rest.is_empty() {
        let chunk = ((SECTOR_SIZE - offset % SECTOR_SIZE) as usize).min(rest.len());
        if rest[..chunk].iter().all(|&b| b == 0) {
            return true;
        }
        offset += chunk as u64;
        rest = &rest[chunk..];
    }
    false
}

/// Decodes a record exactly as etcd's encoder lays it out (`type`, `crc`, optional
/// `data`, nothing else), in constant time apart from the data slice. Used to recognise
/// records when resynchronising, where a lenient decoder would waste time on garbage.
fn decode_record_strict(bytes: &[u8]) -> Option<RecordFields<'_>> {
    fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
        let mut value = 0u64;
        for shift in 0..10 {
            let byte = *b.get(*pos)?;
            *pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * shift);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut pos = 0;
    if bytes.first() != Some(&0x08) {
        return None;
    }
    pos += 1;
    let record_type = varint(bytes, &mut pos)? as i64;
    if bytes.get(pos) != Some(&0x10) {
        return None;
    }
    pos += 1;
    let crc = u32::try_from(varint(bytes, &mut pos)?).ok()?;
    let mut fields = RecordFields {
        record_type,
        crc,
        data: &[],
    };
    if pos < bytes.len() {
        if bytes[pos] != 0x1a {
            return None;
        }
        pos += 1;
        let len = usize::try_from(varint(bytes, &mut pos)?).ok()?;
        if bytes.len().checked_sub(pos)? != len {
            return None;
        }
        fields.data = &bytes[pos..];
    }
    Some(fields)
}

impl<'b> SegmentScanner<'b> {
    fn problem(&mut self, kind: WalProblemKind, offset: usize, detail: String) {
        if self.cur.problems >= MAX_SEGMENT_PROBLEMS {
            return;
        }
        let problem = WalProblem::new(kind, self.cur.file.clone(), Some(offset as u64), detail);
        if problem.severity == Severity::Error && !self.keep_going {
            self.cur.stop = true;
        }
        self.out.push_back(WalEvent::Problem(problem));
        self.cur.problems += 1;
        if self.cur.problems == MAX_SEGMENT_PROBLEMS {
            self.out.push_back(WalEvent::Problem(WalProblem::new(
                WalProblemKind::TooManyProblems { suppressed: 0 },
                self.cur.file.clone(),
                Some(offset as u64),
                format!(
                    "{MAX_SEGMENT_PROBLEMS} problems in this segment: the rest of it is not read"
                ),
            )));
        }
    }

    fn step(&mut self, pos: usize) -> Step {
        let bytes = self.bytes;
        let rest = bytes.len() - pos;
        if rest == 0 {
            return Step::End(SegmentEnd::EndOfFile);
        }
        let Some(word) = word_at(bytes, pos) else {
            return self.cut_short(
                pos,
                format!("the file ends {rest} bytes into a length word: an unfinished write"),
            );
        };
        if word == 0 {
            return self.after_end(pos);
        }
        let header = FrameHeader::decode(word);
        if let Some(why) = header.irregularity() {
            self.problem(
                WalProblemKind::BadPadding {
                    top_byte: header.top_byte,
                },
                pos,
                why,
            );
        }
        let available = (rest - FRAME_HEADER_SIZE) as u64;
        if header.body_len() > available {
            return self.frame_past_end(pos, header.record_len, available);
        }
        if header.body_len() >= MAX_RECORD_BYTES {
            // Readable here, but etcd 3.4.23 checks the length before reading.
            self.problem(
                WalProblemKind::BadFrame {
                    claimed_len: header.record_len,
                },
                pos,
                format!(
                    "a {}-byte record: etcd refuses records of 10 MiB or more (wal: max entry \
                     size limit exceeded)",
                    header.record_len
                ),
            );
        }
        // Both fit in usize: they are at most the bytes present.
        let body_start = pos + FRAME_HEADER_SIZE;
        let record_end = body_start + header.record_len as usize;
        let frame_end = body_start + header.body_len() as usize;
        match decode_record(&bytes[body_start..record_end]) {
            Err(why) => self.bad_record(pos, frame_end, why),
            Ok(fields) => self.record(pos, frame_end, fields),
        }
    }

    fn record(&mut self, pos: usize, frame_end: usize, fields: RecordFields<'_>) -> Step {
        let record_type = RecordType::from_i64(fields.record_type);
        if record_type == RecordType::Crc {
            if self.chain.known && self.chain.crc != 0 && fields.crc != self.chain.crc {
                let computed = self.chain.crc;
                self.problem(
                    WalProblemKind::CrcMismatch {
                        record_type,
                        stored: fields.crc,
                        computed,
                    },
                    pos,
                    format!(
                        "crc record carries {:08x} but the chain up to here gives {computed:08x}: \
                         records before it are missing or damaged (etcd: wal: crc mismatch)",
                        fields.crc
                    ),
                );
            }
        } else {
            let computed = crc32c::crc32c_append(self.chain.crc, fields.data);
            if self.chain.known && computed != fields.crc {
                return self.crc_failure(pos, frame_end, record_type, fields, computed);
            }
        }
        *self.chain = Chain {
            crc: fields.crc,
            known: true,
        };
        if let RecordType::Unknown(t) = record_type {
            self.problem(
                WalProblemKind::UnknownRecordType { record_type: t },
                pos,
                format!("record type {t} (etcd: unexpected block type)"),
            );
        }
        self.out.push_back(WalEvent::Record(WalRecord {
            segment: self.cur.segment,
            offset: pos as u64,
            record_type,
            crc: fields.crc,
            data: fields.data.to_vec(),
        }));
        self.cur.records += 1;
        self.cur.data_end = frame_end;
        Step::Continue(frame_end)
    }

    /// A record whose CRC does not verify.
    fn crc_failure(
        &mut self,
        pos: usize,
        frame_end: usize,
        record_type: RecordType,
        fields: RecordFields<'_>,
        computed: u32,
    ) -> Step {
        let body = &self.bytes[pos + FRAME_HEADER_SIZE..frame_end];
        let etcd_torn = self.cur.is_last && is_torn(body, pos + FRAME_HEADER_SIZE);
        let next_valid = self.peek_record(frame_end).is_some();
        if etcd_torn && !next_valid && self.find_resync(frame_end).is_none() {
            return self.torn(
                pos,
                format!("{record_type} record contains a zeroed sector: an unfinished write"),
            );
        }
        let mut detail = format!(
            "{record_type} record{}: stored CRC {:08x}, computed {computed:08x}",
            describe(record_type, fields.data),
            fields.crc
        );
        if etcd_torn {
            detail.push_str(
                "; it contains a zeroed sector, so etcd would take it for a torn write and \
                 truncate the segment here, discarding the valid records after it",
            );
        }
        self.problem(
            WalProblemKind::CrcMismatch {
                record_type,
                stored: fields.crc,
                computed,
            },
            pos,
            detail,
        );
        // Skip the record. Re-seed the chain with whichever value the next record
        // verifies against: the stored CRC (the data was damaged) or the computed one
        // (the CRC field was damaged).
        *self.chain = match self.peek_record(frame_end) {
            Some((next, _)) if chains(fields.crc, &next) => Chain {
                crc: fields.crc,
                known: true,
            },
            Some((next, _)) if chains(computed, &next) => Chain {
                crc: computed,
                known: true,
            },
            _ => Chain {
                crc: fields.crc,
                known: false,
            },
        };
        Step::Continue(frame_end)
    }

    /// Record bytes that are not a `walpb.Record`.
    fn bad_record(&mut self, pos: usize, frame_end: usize, why: String) -> Step {
        let body = &self.bytes[pos + FRAME_HEADER_SIZE..frame_end];
        let etcd_torn = self.cur.is_last && is_torn(body, pos + FRAME_HEADER_SIZE);
        let resume = if self.peek_record(frame_end).is_some() {
            Some(frame_end)
        } else {
            self.find_resync(pos + FRAME_HEADER_SIZE)
        };
        if etcd_torn && resume.is_none() {
            return self.torn(
                pos,
                "record contains a zeroed sector: an unfinished write".to_string(),
            );
        }
        let mut detail = format!("not a walpb.Record: {why}");
        if etcd_torn {
            detail.push_str(
                "; it contains a zeroed sector, so etcd would take it for a torn write and \
                 truncate the segment here, discarding the valid records after it",
            );
        }
        self.resume_after_damage(pos, WalProblemKind::BadRecord, detail, resume)
    }

    /// A length word claiming more bytes than the file has left.
    fn frame_past_end(&mut self, pos: usize, claimed: u64, available: u64) -> Step {
        let resume = self.find_resync(pos + FRAME_HEADER_SIZE);
        let oversized = claimed >= MAX_RECORD_BYTES;
        if resume.is_none() && !oversized {
            return self.cut_short(
                pos,
                format!(
                    "the length word claims a {claimed}-byte record but only {available} bytes \
                     follow: an unfinished write"
                ),
            );
        }
        let why = if oversized {
            "etcd refuses records of 10 MiB or more (wal: max entry size limit exceeded)"
        } else {
            "the length word is damaged (etcd would take it for a torn write and truncate the \
             segment here)"
        };
        self.resume_after_damage(
            pos,
            WalProblemKind::BadFrame {
                claimed_len: claimed,
            },
            format!(
                "the length word claims a {claimed}-byte record but only {available} bytes \
                 follow: {why}"
            ),
            resume,
        )
    }

    fn resume_after_damage(
        &mut self,
        pos: usize,
        kind: WalProblemKind,
        mut detail: String,
        resume: Option<usize>,
    ) -> Step {
        match resume {
            Some(q) if q != pos + FRAME_HEADER_SIZE => {
                detail.push_str(&format!("; valid records resume at offset {q}"));
            }
            None => detail.push_str("; nothing readable follows in this segment"),
            _ => {}
        }
        self.problem(kind, pos, detail);
        self.chain.known = false;
        match resume {
            Some(q) => Step::Continue(q),
            None => Step::End(SegmentEnd::Damaged),
        }
    }

    /// The file ends inside a frame (etcd: `io.ErrUnexpectedEOF`).
    fn cut_short(&mut self, pos: usize, detail: String) -> Step {
        self.torn(pos, detail)
    }

    fn torn(&mut self, pos: usize, detail: String) -> Step {
        let repairable = self.cur.is_last;
        let detail = if repairable {
            format!(
                "{detail}; etcd repairs this at start by truncating the segment at offset {pos} \
                 (the last valid record ends there)"
            )
        } else {
            format!(
                "{detail}, in a segment that is not the last: etcd cannot repair this, and the \
                 records after it in this segment are lost"
            )
        };
        self.problem(WalProblemKind::TornTail { repairable }, pos, detail);
        if !repairable {
            self.chain.known = false;
        }
        Step::End(SegmentEnd::TornTail)
    }

    /// A zero length word: the end of the data, unless valid records follow.
    fn after_end(&mut self, pos: usize) -> Step {
        let bytes = self.bytes;
        let tail = &bytes[pos..];
        let Some(first) = first_nonzero(tail) else {
            return Step::End(SegmentEnd::ZeroTail);
        };
        let first = pos + first;
        let from = (first / FRAME_ALIGN * FRAME_ALIGN).max(pos + 1);
        if let Some(q) = self.find_resync(from) {
            self.problem(
                WalProblemKind::ZeroedRegion {
                    zero_bytes: (q - pos) as u64,
                },
                pos,
                format!(
                    "a zero length word ends the data here, but valid records resume at offset \
                     {q} after {} zero bytes: etcd stops reading here and loses them{}",
                    q - pos,
                    if self.cur.is_last {
                        " (and zeroes them when it opens the WAL for writing)"
                    } else {
                        ""
                    }
                ),
            );
            self.chain.known = false;
            return Step::Continue(q);
        }
        let nonzero = tail.iter().filter(|&&b| b != 0).count() as u64;
        self.problem(
            WalProblemKind::GarbageAfterEnd {
                nonzero_bytes: nonzero,
            },
            first,
            format!(
                "{nonzero} non-zero bytes after the end of the data at offset {pos}, not valid \
                 records: {}",
                if self.cur.is_last {
                    "left by an unfinished write; etcd zeroes them when it opens the WAL"
                } else {
                    "etcd ignores them"
                }
            ),
        );
        Step::End(SegmentEnd::ZeroTail)
    }

    fn peek_record(&self, at: usize) -> Option<(RecordFields<'b>, usize)> {
        peek_record(self.bytes, at)
    }

    /// The first 8-aligned offset at or after `from` where a record starts that is
    /// confirmed by the record after it (it chains), or that is the last before the
    /// zero tail and decodes.
    fn find_resync(&mut self, from: usize) -> Option<usize> {
        let bytes = self.bytes;
        let mut at = align_up(from);
        while at + FRAME_HEADER_SIZE <= bytes.len() {
            if self.cur.resync_budget == 0 {
                return None;
            }
            if word_at(bytes, at) != Some(0)
                && let Some((first, end)) = self.peek_record(at)
            {
                let (confirmed, cost) = match self.peek_record(end) {
                    Some((second, _)) => (chains(first.crc, &second), second.data.len()),
                    None => (
                        (end == bytes.len() || word_at(bytes, end) == Some(0))
                            && payload_decodes(&first),
                        first.data.len(),
                    ),
                };
                self.cur.resync_budget = self.cur.resync_budget.saturating_sub(cost as u64 + 64);
                if confirmed {
                    return Some(at);
                }
            }
            at += FRAME_ALIGN;
        }
        None
    }
}

/// A well-formed record at `at` (regular length word, exact layout, known type) and the
/// end of its frame.
fn peek_record(bytes: &[u8], at: usize) -> Option<(RecordFields<'_>, usize)> {
    let word = word_at(bytes, at)?;
    if word == 0 {
        return None;
    }
    let header = FrameHeader::decode(word);
    if header.irregularity().is_some() || header.record_len == 0 {
        return None;
    }
    let body_start = at + FRAME_HEADER_SIZE;
    let available = (bytes.len() - body_start) as u64;
    if header.body_len() > available {
        return None;
    }
    let record_end = body_start + header.record_len as usize;
    let fields = decode_record_strict(&bytes[body_start..record_end])?;
    if matches!(
        RecordType::from_i64(fields.record_type),
        RecordType::Unknown(_)
    ) {
        return None;
    }
    Some((fields, body_start + header.body_len() as usize))
}

/// Whether `next` verifies against a chain value of `crc`.
fn chains(crc: u32, next: &RecordFields<'_>) -> bool {
    if next.record_type == RecordType::Crc.as_i64() {
        next.crc == crc
    } else {
        crc32c::crc32c_append(crc, next.data) == next.crc
    }
}

/// Whether a record's data decodes as its type says (to accept a lone record found when
/// resynchronising).
fn payload_decodes(fields: &RecordFields<'_>) -> bool {
    use prost::Message;
    match RecordType::from_i64(fields.record_type) {
        RecordType::Entry => decode_entry(fields.data).is_ok_and(|e| e.index > 0),
        RecordType::State => raftpb::HardState::decode(fields.data).is_ok(),
        RecordType::Metadata => raftpb::WalMetadata::decode(fields.data).is_ok(),
        RecordType::Snapshot => raftpb::WalSnapshot::decode(fields.data).is_ok(),
        RecordType::Crc | RecordType::Unknown(_) => false,
    }
}

/// ` (entry term 2 index 57, unverified)` for problem details.
fn describe(record_type: RecordType, data: &[u8]) -> String {
    match record_type {
        RecordType::Entry => match decode_entry(data) {
            Ok(e) => format!(
                " (claims entry term {} index {}{})",
                e.term,
                e.index,
                if e.entry_type == EntryType::Normal {
                    String::new()
                } else {
                    format!(" type {}", e.entry_type.short_name())
                }
            ),
            Err(_) => String::new(),
        },
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn torn_detection_splits_at_sectors() {
        // A body starting 8 bytes before a sector boundary, its second chunk all zero.
        let mut body = vec![1u8; 8];
        body.extend([0u8; 16]);
        assert!(is_torn(&body, 504));
        // The same body not crossing a boundary has no all-zero chunk.
        assert!(!is_torn(&body, 8));
    }

    #[test]
    fn strict_record_layout() {
        assert!(decode_record_strict(&[0x08, 0x04, 0x10, 0x00]).is_some());
        assert!(decode_record_strict(&[0x08, 0x02, 0x10, 0x01, 0x1a, 0x01, 0xaa]).is_some());
        assert!(decode_record_strict(&[0x08, 0x02, 0x10, 0x01, 0x1a, 0x02, 0xaa]).is_none());
        assert!(decode_record_strict(&[0x10, 0x01, 0x08, 0x02]).is_none());
        assert!(decode_record_strict(&[0x08, 0x02, 0x10, 0x01, 0x22, 0x00]).is_none());
    }
}
