//! `salvor etcd salvage BROKEN NEW_DB`: recover every intact revision of a damaged
//! etcd backend into a new, valid one, and say exactly what was lost.
//!
//! 1. **Tree walk, tolerant.** From the newest valid meta page (the other one when the
//!    root it names is unreadable), every bucket is walked; a page that cannot be read
//!    (wrong id, bad flags, bounds, cycles, pages reached twice) is skipped and the key
//!    range it covered becomes a *hole*; unreadable elements of a readable page are
//!    skipped one by one.
//! 2. **Page scan.** Every page of the file the walk did not reach is read; leaf pages of
//!    the `key` bucket (all keys revision keys) add their records. Unreachable pages are
//!    live data cut off by damage, or stale copies etcd freed. Revisions are immutable,
//!    so a stale copy can only bring back what compaction removed: a page holding a
//!    record compaction would have removed (an overwritten revision at or below the
//!    compaction revision, or a delete there) is stale, and its records at or below the
//!    compaction are ignored. When the root itself was found by scanning (both meta
//!    pages unusable), the `key` bucket is judged the same way, page by page.
//! 3. **Validation.** Each `key` record must have a well-formed revision key and decode as
//!    a `KeyValue` stored at its own revision (see [`record_problem`]); others are
//!    reported and dropped.
//! 4. **Output.** The recovered buckets are written by the bulk writer as a new db
//!    (`NEW.part`, fsynced, renamed), which then passes `salvor etcd check`. The input
//!    is only read.
//!
//! The report names every unreadable page, every dropped record, and the revisions lost:
//! above the compaction revision etcd's revisions are contiguous, so missing ones are
//! known exactly; below it, holes are reported as ranges that may be incomplete.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use snapshot_format::bbolt::page::{
    BUCKET_HEADER_SIZE, FLAG_BRANCH, FLAG_LEAF, LEAF_FLAG_BUCKET, Meta, NodePage, PAGE_HEADER_SIZE,
    PageHeader,
};
use snapshot_format::bbolt::{
    BoltWriter, MAX_DEPTH, PageSource, SourceKind, WriteSummary, WriterOptions,
};
use snapshot_format::etcd::check::{is_bump_marker, record_problem};
use snapshot_format::etcd::{Revision, RevisionKey, TRAILER_LEN};
use snapshot_format::mvcc::KeyValueRef;
use snapshot_format::{Error, Location, Result};

use crate::check::check_path;
use crate::view::Bytes;

/// The buckets etcd 3.4 creates; salvage writes each (empty when nothing was found).
pub const ETCD_BUCKETS: [&str; 10] = [
    "alarm",
    "auth",
    "authRoles",
    "authUsers",
    "cluster",
    "key",
    "lease",
    "members",
    "members_removed",
    "meta",
];

/// Records of one kind kept in the report before the rest are only counted.
const MAX_LISTED: usize = 1000;

/// What to salvage.
#[derive(Debug, Clone)]
pub struct SalvageOptions {
    /// The damaged snapshot file, `member/snap/db` or data dir.
    pub input: PathBuf,
    /// The new db to write (must not exist).
    pub output: PathBuf,
    /// Analyse and report only; write nothing.
    pub dry_run: bool,
}

/// A page the walk could not read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PageProblem {
    /// Page id.
    pub page: u64,
    /// The branch page that points to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent: Option<u64>,
    /// The bucket being walked.
    pub bucket: String,
    /// What is wrong.
    pub problem: String,
}

/// A record dropped because it is damaged.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordProblem {
    /// Page holding it.
    pub page: u64,
    /// Bucket.
    pub bucket: String,
    /// The record's key, when readable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<Bytes>,
    /// Revision, for `key` records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// What is wrong.
    pub problem: String,
}

/// Revisions lost, as a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LostRange {
    /// First main revision of the range.
    pub from_revision: i64,
    /// Last main revision of the range.
    pub to_revision: i64,
    /// True when every revision of the range existed and is missing (above the
    /// compaction revision, where etcd's revisions are contiguous); false for a hole
    /// below it, where compaction may have removed some legitimately.
    pub certain: bool,
}

/// Per-bucket counts.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketSalvage {
    /// Bucket name.
    pub name: String,
    /// Entries recovered.
    pub entries: u64,
    /// Of which found by the page scan.
    pub from_unreachable_pages: u64,
    /// True when the bucket was not found at all (written empty).
    pub missing: bool,
}

/// What salvage found and wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SalvageReport {
    /// Input file.
    pub input: PathBuf,
    /// Output db (none with `--dry-run`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<PathBuf>,
    /// Page size used.
    pub page_size: u32,
    /// Pages in the file.
    pub file_pages: u64,
    /// Meta page the tree was read from (none: root found by the scan).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta_page: Option<u64>,
    /// Problems of the meta pages.
    pub meta_problems: Vec<String>,
    /// Root page of the buckets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_page: Option<u64>,
    /// Per bucket.
    pub buckets: Vec<BucketSalvage>,
    /// `key` records recovered.
    pub revisions: u64,
    /// Newest main revision recovered.
    pub latest_revision: i64,
    /// The compaction revision from the recovered `meta` bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compacted_revision: Option<i64>,
    /// Pages the walk could not read.
    pub unreadable_pages: Vec<PageProblem>,
    /// Damaged records dropped.
    pub bad_records: Vec<RecordProblem>,
    /// Damaged records beyond the listed ones.
    pub bad_records_not_listed: u64,
    /// Revisions lost.
    pub lost: Vec<LostRange>,
    /// Stale records in free pages, ignored.
    pub stale_records_ignored: u64,
    /// True when nothing was lost (no hole left unfilled, no record dropped).
    pub complete: bool,
    /// What was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written: Option<WriteSummary>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Top-level buckets: name and raw bucket value.
type TopBuckets = Vec<(String, Vec<u8>)>;

/// The file as raw pages.
struct Raw {
    source: Box<dyn PageSource>,
    page_size: u64,
    pages: u64,
}

impl Raw {
    /// Page `id` with its overflow, checked: id in the page header, flags branch or leaf,
    /// overflow inside the file.
    fn node_page(&self, id: u64) -> std::result::Result<(PageHeader, Cow<'_, [u8]>), String> {
        if id < 2 || id >= self.pages {
            return Err(format!(
                "page {id} is outside the file ({} pages)",
                self.pages
            ));
        }
        let head = self
            .source
            .read_at(id * self.page_size, PAGE_HEADER_SIZE)
            .map_err(|e| format!("unreadable: {e}"))?;
        let header = PageHeader::parse(&head, Location::default()).map_err(|e| e.to_string())?;
        if header.id != id {
            return Err(format!("the page header says page {}", header.id));
        }
        if header.flags != FLAG_BRANCH && header.flags != FLAG_LEAF {
            return Err(format!(
                "flags 0x{:02x} are not a branch or leaf page",
                header.flags
            ));
        }
        let span = 1 + u64::from(header.overflow);
        if id + span > self.pages {
            return Err(format!(
                "overflow of {} pages runs past the file",
                header.overflow
            ));
        }
        let bytes = self
            .source
            .read_at(id * self.page_size, (span * self.page_size) as usize)
            .map_err(|e| format!("unreadable: {e}"))?;
        Ok((header, bytes))
    }
}

/// A key range `[lo, hi)` the walk could not read (`None`: unbounded).
#[derive(Debug, Clone)]
struct Hole {
    lo: Option<Vec<u8>>,
    hi: Option<Vec<u8>>,
}

/// What the walk of one bucket found.
#[derive(Default)]
struct Walked {
    entries: BTreeMap<Vec<u8>, Vec<u8>>,
    holes: Vec<Hole>,
}

struct Walker<'r> {
    raw: &'r Raw,
    visited: HashSet<u64>,
    problems: Vec<PageProblem>,
    bad: Vec<RecordProblem>,
    bad_not_listed: u64,
}

impl Walker<'_> {
    fn bad_record(&mut self, r: RecordProblem) {
        if self.bad.len() < MAX_LISTED {
            self.bad.push(r);
        } else {
            self.bad_not_listed += 1;
        }
    }

    /// Walks the bucket whose value (header + maybe inline page) is `value`.
    fn bucket(&mut self, name: &str, value: &[u8]) -> Walked {
        let mut out = Walked::default();
        if value.len() < BUCKET_HEADER_SIZE {
            out.holes.push(Hole { lo: None, hi: None });
            return out;
        }
        let root = u64::from_le_bytes(value[0..8].try_into().unwrap_or_default());
        if root == 0 {
            match NodePage::new(&value[BUCKET_HEADER_SIZE..], 0, None) {
                Ok(node) if node.is_leaf() => self.leaf(name, 0, &node, None, None, &mut out),
                _ => out.holes.push(Hole { lo: None, hi: None }),
            }
        } else {
            self.walk(name, root, None, None, None, 0, &mut out);
        }
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn walk(
        &mut self,
        name: &str,
        id: u64,
        parent: Option<u64>,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        depth: usize,
        out: &mut Walked,
    ) {
        let hole = |out: &mut Walked| {
            out.holes.push(Hole {
                lo: lo.map(<[u8]>::to_vec),
                hi: hi.map(<[u8]>::to_vec),
            })
        };
        let fail = |w: &mut Self, problem: String| {
            w.problems.push(PageProblem {
                page: id,
                parent,
                bucket: name.to_string(),
                problem,
            })
        };
        if depth > MAX_DEPTH {
            fail(self, format!("deeper than {MAX_DEPTH} levels"));
            return hole(out);
        }
        if !self.visited.insert(id) {
            fail(self, "reached twice (a cycle or a shared page)".into());
            return hole(out);
        }
        let (header, bytes) = match self.raw.node_page(id) {
            Ok(p) => p,
            Err(problem) => {
                fail(self, problem);
                return hole(out);
            }
        };
        for extra in 1..=u64::from(header.overflow) {
            self.visited.insert(id + extra);
        }
        let node = match NodePage::new(&bytes, id, Some(id * self.raw.page_size)) {
            Ok(n) => n,
            Err(e) => {
                fail(self, e.to_string());
                return hole(out);
            }
        };
        if node.is_leaf() {
            return self.leaf(name, id, &node, lo, hi, out);
        }
        let children: Vec<Option<(Vec<u8>, u64)>> = (0..node.count())
            .map(|i| node.branch(i).ok().map(|b| (b.key.to_vec(), b.child)))
            .collect();
        if children.is_empty() {
            fail(self, "branch page with no elements".into());
            return hole(out);
        }
        for (i, child) in children.iter().enumerate() {
            // The child's range: its own key (or the parent's lower bound for the first)
            // up to the next readable sibling's key.
            let next_key = children[i + 1..]
                .iter()
                .flatten()
                .map(|(k, _)| k.as_slice())
                .next()
                .or(hi);
            match child {
                Some((key, child)) => {
                    let child_lo = if i == 0 { lo } else { Some(key.as_slice()) };
                    self.walk(name, *child, Some(id), child_lo, next_key, depth + 1, out);
                }
                None => {
                    self.problems.push(PageProblem {
                        page: id,
                        parent,
                        bucket: name.to_string(),
                        problem: format!("branch element {i} is unreadable"),
                    });
                    let prev_key = children[..i]
                        .iter()
                        .flatten()
                        .map(|(k, _)| k.as_slice())
                        .next_back()
                        .or(lo);
                    out.holes.push(Hole {
                        lo: prev_key.map(<[u8]>::to_vec),
                        hi: next_key.map(<[u8]>::to_vec),
                    });
                }
            }
        }
    }

    fn leaf(
        &mut self,
        name: &str,
        id: u64,
        node: &NodePage<'_>,
        lo: Option<&[u8]>,
        hi: Option<&[u8]>,
        out: &mut Walked,
    ) {
        let mut prev: Option<Vec<u8>> = lo.map(<[u8]>::to_vec);
        let mut open_hole: Option<Option<Vec<u8>>> = None;
        for i in 0..node.count() {
            let element = node.leaf(i).ok().filter(|e| {
                e.flags & LEAF_FLAG_BUCKET == 0
                    && prev
                        .as_deref()
                        .is_none_or(|p| e.key > p || (lo == Some(p) && e.key == p))
                    && hi.is_none_or(|h| e.key < h)
            });
            let Some(e) = element else {
                self.problems.push(PageProblem {
                    page: id,
                    parent: None,
                    bucket: name.to_string(),
                    problem: format!("leaf element {i} is unreadable or out of order"),
                });
                open_hole.get_or_insert(prev.clone());
                continue;
            };
            if let Some(start) = open_hole.take() {
                out.holes.push(Hole {
                    lo: start,
                    hi: Some(e.key.to_vec()),
                });
            }
            if name == "key"
                && let Err(problem) = key_record(e.key, e.value)
            {
                {
                    let revision = RevisionKey::parse(e.key).ok().map(|r| r.revision.main);
                    self.bad_record(RecordProblem {
                        page: id,
                        bucket: name.to_string(),
                        key: Some(Bytes::from(e.key)),
                        revision,
                        problem,
                    });
                    prev = Some(e.key.to_vec());
                    continue;
                }
            }
            out.entries.insert(e.key.to_vec(), e.value.to_vec());
            prev = Some(e.key.to_vec());
        }
        if let Some(start) = open_hole {
            out.holes.push(Hole {
                lo: start,
                hi: hi.map(<[u8]>::to_vec),
            });
        }
    }
}

/// Checks one `key` bucket record on its own.
fn key_record(key: &[u8], value: &[u8]) -> std::result::Result<RevisionKey, String> {
    let rk = RevisionKey::parse(key).map_err(|e| e.to_string())?;
    if is_bump_marker(&rk, value) {
        return Ok(rk);
    }
    let kv = KeyValueRef::parse(value).map_err(|e| format!("not a mvccpb.KeyValue: {e}"))?;
    if let Some((_, detail)) = record_problem(&rk, &kv) {
        return Err(detail);
    }
    Ok(rk)
}

/// Salvages `opts.input`. See the module docs.
pub fn salvage(opts: &SalvageOptions) -> Result<SalvageReport> {
    let started = Instant::now();
    let db_path = crate::fsutil::backend_path(&opts.input);
    let len = fs::metadata(&db_path)
        .map_err(|e| Error::io(format!("reading {}", db_path.display()), e))?
        .len();
    // A trailer is only recognised by the size rule; the bytes are scanned either way.
    let db_len = if len % 512 == TRAILER_LEN {
        len - TRAILER_LEN
    } else {
        len
    };
    let source = SourceKind::Auto
        .open(&db_path, db_len)
        .map_err(|e| Error::io(format!("reading {}", db_path.display()), e))?;
    // Meta pages: each read with every plausible page size.
    let mut meta_problems = Vec::new();
    let mut metas: Vec<Meta> = Vec::new();
    for page in 0..2u64 {
        let candidates: &[u64] = if page == 0 {
            &[0]
        } else {
            &[4096, 8192, 16384, 32768, 65536, 2048, 1024, 512]
        };
        let mut found = None;
        let mut last_err = String::from("no page size fits");
        for &ps in candidates {
            let want = (PAGE_HEADER_SIZE + 64) as u64;
            if page * ps + want > db_len {
                last_err = "the file ends before it".into();
                continue;
            }
            match source.read_at(page * ps, want as usize) {
                Ok(bytes) => match Meta::parse_valid(page, &bytes) {
                    Ok(m)
                        if (page == 0 || u64::from(m.page_size) == ps)
                            && m.page_size.is_power_of_two()
                            && (512..=1 << 20).contains(&m.page_size) =>
                    {
                        found = Some(m);
                        break;
                    }
                    Ok(m) => last_err = format!("page size {} does not fit", m.page_size),
                    Err(p) => last_err = p.to_string(),
                },
                Err(e) => last_err = e.to_string(),
            }
        }
        match found {
            Some(m) => metas.push(m),
            None => meta_problems.push(format!("meta page {page}: {last_err}")),
        }
    }
    metas.sort_by_key(|m| std::cmp::Reverse(m.txid));
    let page_size = metas.first().map_or(4096, |m| u64::from(m.page_size));
    let raw = Raw {
        source,
        page_size,
        pages: db_len / page_size,
    };
    let mut walker = Walker {
        raw: &raw,
        visited: HashSet::new(),
        problems: Vec::new(),
        bad: Vec::new(),
        bad_not_listed: 0,
    };

    // The root: from the newest meta whose root page reads, else a scanned candidate.
    let mut root: Option<(Option<u64>, u64, TopBuckets)> = None;
    for m in &metas {
        match root_buckets(&raw, m.root) {
            Ok(b) => {
                root = Some((Some(m.page), m.root, b));
                break;
            }
            Err(problem) => walker.problems.push(PageProblem {
                page: m.root,
                parent: None,
                bucket: String::new(),
                problem: format!("root page of meta page {}: {problem}", m.page),
            }),
        }
    }
    if root.is_none() {
        root = scan_root_candidates(&raw).map(|(id, b)| (None, id, b));
    }
    let (meta_page, root_page, top) = match root {
        Some((m, r, b)) => (m, Some(r), b),
        None => (None, None, Vec::new()),
    };
    if let Some(r) = root_page {
        walker.visited.insert(r);
    }
    // The key bucket of a root found by scanning may be a stale copy: its records are
    // then judged page by page like every other unreachable page.
    let trusted_root = meta_page.is_some();
    let mut walked: BTreeMap<String, Walked> = BTreeMap::new();
    for (name, value) in &top {
        if name == "key" && !trusted_root {
            continue;
        }
        let w = walker.bucket(name, value);
        walked.insert(name.clone(), w);
    }

    // Compaction revision, from the recovered meta bucket (0: never compacted, or lost).
    let compacted = walked
        .get("meta")
        .and_then(|w| w.entries.get(b"finishedCompactRev".as_slice()))
        .and_then(|v| Revision::parse(v))
        .map(|r| r.main);
    // With a root found by scanning, other buckets' pointers may be stale and lead into
    // pages reused by the key bucket: scan every page then, and drop key records walked
    // into from another bucket.
    let visited = if trusted_root {
        std::mem::take(&mut walker.visited)
    } else {
        for (name, w) in walked.iter_mut() {
            if name != "key" {
                w.entries.retain(|k, v| key_record(k, v).is_err());
            }
        }
        HashSet::new()
    };
    let scan = scan_key_pages(&raw, &visited, &mut walker);
    let key_walk = walked.entry("key".to_string()).or_default();
    let (scanned_used, stale) = merge_scanned(key_walk, scan, compacted.unwrap_or(0));

    // What was lost.
    let key_entries = &walked["key"].entries;
    let mains: Vec<i64> = {
        let mut v: Vec<i64> = key_entries
            .keys()
            .filter_map(|k| RevisionKey::parse(k).ok())
            .map(|r| r.revision.main)
            .collect();
        v.dedup();
        v
    };
    let latest = mains.last().copied().unwrap_or(0);
    let lost = lost_ranges(&mains, compacted.unwrap_or(0), &walked["key"].holes);
    let bad_key_records = walker.bad.iter().filter(|r| r.bucket == "key").count();

    let mut buckets = Vec::new();
    let mut names: Vec<String> = walked.keys().cloned().collect();
    for b in ETCD_BUCKETS {
        if !names.iter().any(|n| n == b) {
            names.push(b.to_string());
        }
    }
    names.sort();
    for name in &names {
        let w = walked.get(name);
        buckets.push(BucketSalvage {
            name: name.clone(),
            entries: w.map_or(0, |w| w.entries.len() as u64),
            from_unreachable_pages: if name == "key" { scanned_used } else { 0 },
            missing: w.is_none() || (name == "key" && top.iter().all(|(n, _)| n != "key")),
        });
    }
    let unfilled_holes = walked
        .iter()
        .any(|(n, w)| n != "key" && !w.holes.is_empty());
    let complete = lost.is_empty()
        && walker.bad.is_empty()
        && walker.bad_not_listed == 0
        && !unfilled_holes
        && bad_key_records == 0;
    let mut report = SalvageReport {
        input: opts.input.clone(),
        output: None,
        page_size: page_size as u32,
        file_pages: raw.pages,
        meta_page,
        meta_problems,
        root_page,
        buckets,
        revisions: key_entries.len() as u64,
        latest_revision: latest,
        compacted_revision: compacted,
        unreadable_pages: walker.problems.clone(),
        bad_records: walker.bad.clone(),
        bad_records_not_listed: walker.bad_not_listed,
        lost,
        stale_records_ignored: stale,
        complete,
        written: None,
        elapsed_ms: 0,
    };
    if !opts.dry_run {
        report.written = Some(write_output(
            &opts.output,
            page_size as u32,
            &names,
            &walked,
        )?);
        report.output = Some(opts.output.clone());
    }
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// One `key` record found on a page the walk did not reach.
struct ScannedRecord {
    key: Vec<u8>,
    value: Vec<u8>,
    user_key: Vec<u8>,
    main: i64,
    tombstone: bool,
}

/// Valid `key` records of every leaf page the walk did not reach, by page.
fn scan_key_pages(
    raw: &Raw,
    visited: &HashSet<u64>,
    walker: &mut Walker<'_>,
) -> Vec<(u64, Vec<ScannedRecord>)> {
    let mut pages = Vec::new();
    let mut id = 2u64;
    while id < raw.pages {
        if visited.contains(&id) {
            id += 1;
            continue;
        }
        let Ok((header, bytes)) = raw.node_page(id) else {
            id += 1;
            continue;
        };
        let span = 1 + u64::from(header.overflow);
        if header.flags == FLAG_LEAF
            && let Ok(node) = NodePage::new(&bytes, id, None)
        {
            let elements: Vec<_> = (0..node.count())
                .filter_map(|i| node.leaf(i).ok())
                .collect();
            let key_leaf = !elements.is_empty()
                && elements
                    .iter()
                    .all(|e| e.flags == 0 && RevisionKey::parse(e.key).is_ok());
            if key_leaf {
                let mut records = Vec::new();
                for e in elements {
                    match key_record(e.key, e.value) {
                        Ok(rk) => {
                            let user_key = KeyValueRef::parse(e.value)
                                .map(|kv| kv.key.to_vec())
                                .unwrap_or_default();
                            records.push(ScannedRecord {
                                key: e.key.to_vec(),
                                value: e.value.to_vec(),
                                user_key,
                                main: rk.revision.main,
                                tombstone: rk.tombstone,
                            });
                        }
                        Err(problem) => walker.bad_record(RecordProblem {
                            page: id,
                            bucket: "key".into(),
                            key: Some(Bytes::from(e.key)),
                            revision: RevisionKey::parse(e.key).ok().map(|r| r.revision.main),
                            problem,
                        }),
                    }
                }
                pages.push((id, records));
            }
        }
        id += span;
    }
    pages
}

/// Adds the scanned records that are live data to `walk`; returns (records added, stale
/// records ignored).
///
/// etcd never removes `key` records except by compaction, which keeps, per key, only the
/// newest revision at or below the compaction revision (and not even that one when it is
/// a delete). A page holding a record compaction would have removed is a stale copy freed
/// by a later transaction: its records at or below the compaction are ignored (they
/// would bring back overwritten values and deleted keys). Records above the compaction
/// are never removed by etcd, so they are kept from any page.
fn merge_scanned(
    walk: &mut Walked,
    pages: Vec<(u64, Vec<ScannedRecord>)>,
    compacted: i64,
) -> (u64, u64) {
    // Newest revision at or below the compaction per user key, over everything seen.
    let mut newest: std::collections::HashMap<Vec<u8>, i64> = std::collections::HashMap::new();
    let mut note = |user_key: &[u8], main: i64| {
        if main <= compacted {
            let e = newest.entry(user_key.to_vec()).or_insert(main);
            *e = (*e).max(main);
        }
    };
    for (k, v) in &walk.entries {
        if let (Ok(rk), Ok(kv)) = (RevisionKey::parse(k), KeyValueRef::parse(v)) {
            note(kv.key, rk.revision.main);
        }
    }
    for (_, records) in &pages {
        for r in records {
            note(&r.user_key, r.main);
        }
    }
    let mut added = 0u64;
    let mut stale = 0u64;
    for (_, records) in pages {
        let is_stale = records.iter().any(|r| {
            r.main <= compacted
                && (r.tombstone || newest.get(&r.user_key).is_some_and(|&n| n > r.main))
        });
        for r in records {
            if is_stale && r.main <= compacted {
                stale += 1;
                continue;
            }
            if let std::collections::btree_map::Entry::Vacant(slot) = walk.entries.entry(r.key) {
                slot.insert(r.value);
                added += 1;
            }
        }
    }
    (added, stale)
}

/// Revisions missing: above the compaction every main revision up to the latest must
/// exist; below it, the holes of the walk that no scanned page filled.
fn lost_ranges(mains: &[i64], compacted: i64, holes: &[Hole]) -> Vec<LostRange> {
    let mut lost = Vec::new();
    let latest = mains.last().copied().unwrap_or(0);
    // Above the compaction every main revision up to the latest exists: each gap between
    // consecutive revisions present is lost (found from the sorted revisions, so a
    // damaged, huge revision costs nothing).
    let mut prev = compacted.max(0);
    for &m in mains.iter().filter(|&&m| m > compacted) {
        if m > prev + 1 && lost.len() < MAX_LISTED {
            lost.push(LostRange {
                from_revision: prev + 1,
                to_revision: m - 1,
                certain: true,
            });
        }
        prev = m;
    }
    // Holes below the compaction: the revisions between the hole's bounds.
    for h in holes {
        let lo =
            h.lo.as_deref()
                .and_then(|k| RevisionKey::parse(k).ok())
                .map_or(1, |r| r.revision.main);
        let hi =
            h.hi.as_deref()
                .and_then(|k| RevisionKey::parse(k).ok())
                .map_or(latest, |r| r.revision.main);
        let to = hi.min(compacted);
        if lo <= to {
            // Filled when the scan recovered revisions covering it: only report when
            // nothing inside was recovered.
            let recovered_inside = mains.iter().any(|&m| m > lo && m < hi);
            if !recovered_inside {
                lost.push(LostRange {
                    from_revision: lo,
                    to_revision: to,
                    certain: false,
                });
            }
        }
    }
    lost.sort_by_key(|l| l.from_revision);
    lost
}

/// The top-level buckets in root page `id` (a leaf of bucket entries, or a branch over
/// such leaves; every page read once, at most [`MAX_DEPTH`] levels).
fn root_buckets(raw: &Raw, id: u64) -> std::result::Result<TopBuckets, String> {
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    root_pages(raw, id, 0, &mut seen, &mut out)?;
    if !out.iter().any(|(n, _)| n == "key") {
        return Err("no \"key\" bucket".into());
    }
    Ok(out)
}

fn root_pages(
    raw: &Raw,
    id: u64,
    depth: usize,
    seen: &mut HashSet<u64>,
    out: &mut TopBuckets,
) -> std::result::Result<(), String> {
    if depth > MAX_DEPTH || !seen.insert(id) {
        return Err(format!("page {id} is reached twice or too deep"));
    }
    let (header, bytes) = raw.node_page(id)?;
    let node = NodePage::new(&bytes, id, None).map_err(|e| e.to_string())?;
    if header.flags == FLAG_BRANCH {
        for i in 0..node.count() {
            let child = node.branch(i).map_err(|e| e.to_string())?.child;
            root_pages(raw, child, depth + 1, seen, out)?;
        }
        return Ok(());
    }
    for i in 0..node.count() {
        let e = node.leaf(i).map_err(|e| e.to_string())?;
        if e.flags & LEAF_FLAG_BUCKET == 0 {
            return Err(format!("element {i} is not a bucket"));
        }
        out.push((
            String::from_utf8_lossy(e.key).into_owned(),
            e.value.to_vec(),
        ));
    }
    Ok(())
}

/// Leaf pages that look like an etcd root (only bucket entries named like etcd's
/// buckets, a `key` bucket among them); the one with the highest page id wins.
fn scan_root_candidates(raw: &Raw) -> Option<(u64, TopBuckets)> {
    let mut best = None;
    for id in 2..raw.pages {
        let is_leaf = raw.node_page(id).is_ok_and(|(h, _)| h.flags == FLAG_LEAF);
        if is_leaf
            && let Ok(b) = root_buckets(raw, id)
            && b.iter().all(|(n, _)| ETCD_BUCKETS.contains(&n.as_str()))
        {
            best = Some((id, b));
        }
    }
    best
}

fn write_output(
    output: &Path,
    page_size: u32,
    names: &[String],
    walked: &BTreeMap<String, Walked>,
) -> Result<WriteSummary> {
    if output.exists() {
        return Err(Error::Invalid(format!(
            "{} exists; salvage writes a new file and never replaces one",
            output.display()
        )));
    }
    let part = crate::fsutil::part_path(output);
    let _ = fs::remove_file(&part);
    let file = fs::File::create(&part)
        .map_err(|e| Error::io(format!("creating {}", part.display()), e))?;
    let mut w = BoltWriter::create(
        std::io::BufWriter::with_capacity(1 << 20, file),
        WriterOptions {
            page_size,
            ..Default::default()
        },
    )?;
    for name in names {
        w.begin_bucket(name.as_bytes(), 0)?;
        if let Some(b) = walked.get(name) {
            for (k, v) in &b.entries {
                w.put(k, v)?;
            }
        }
        w.end_bucket()?;
    }
    let (buf, summary) = w.finish()?;
    let file = buf
        .into_inner()
        .map_err(|e| Error::io("flushing the output", e.into_error()))?;
    file.sync_all()
        .map_err(|e| Error::io(format!("syncing {}", part.display()), e))?;
    drop(file);
    if let Some(first) = check_path(&part).first_error() {
        return Err(Error::Invalid(format!(
            "the salvaged db fails its check ({first}); left at {} for inspection",
            part.display()
        )));
    }
    crate::fsutil::rename_into_place(&part, output)?;
    Ok(summary)
}
