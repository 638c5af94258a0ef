//! Structural check of a bbolt file in one pass: every problem, not just the first.
//!
//! The walk never trusts what it reads: a page is visited at most once (so cycles and
//! pages shared between parents are reported, not followed), every element is bounds
//! checked, keys are checked against their neighbours and against the range their parent
//! branch gives them. Leaf entries are handed to a visitor so a higher layer (etcd's
//! mvcc check) can check them in the same pass.

use std::borrow::Cow;

use serde::Serialize;

use super::db::{Db, MAX_DEPTH};
use super::page::{
    BUCKET_HEADER_SIZE, FLAG_BRANCH, FLAG_FREELIST, FLAG_LEAF, FreelistPage, LeafElement,
    MetaProblem, NodePage, PGID_NO_FREELIST, PageHeader, describe_flags, u64_at,
};
use crate::error::Location;

/// Kinds of structural problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProblemKind {
    /// One meta page is invalid (the other is used).
    MetaInvalid,
    /// The active meta page disagrees with the file (page size, root).
    MetaInconsistent,
    /// The file is shorter than the high-water mark says.
    FileTruncated,
    /// A page id referenced by the tree is outside the tree area (2..high-water mark).
    PageOutOfRange,
    /// A page inside the high-water mark lies past the end of the file.
    PageBeyondFile,
    /// A page's header carries another id than its position.
    PageIdMismatch,
    /// A page reached through the tree is not a branch or leaf page.
    BadPageType,
    /// An element's key or value runs outside its page, or the element table does.
    ElementOutOfBounds,
    /// Keys out of order within a page, or outside the range their parent gives.
    KeysUnsorted,
    /// A branch key differs from the first key of the child it points to.
    BranchKeyMismatch,
    /// A page's overflow runs past the high-water mark.
    OverflowPastHighWater,
    /// A branch page without elements, or an empty leaf below a branch.
    EmptyPage,
    /// A page reached twice: shared between parents, or a cycle.
    PageReferencedTwice,
    /// The tree is deeper than any real database's.
    TooDeep,
    /// A nested bucket's header or inline page is invalid.
    BadBucket,
    /// The persisted freelist page cannot be read.
    FreelistInvalid,
    /// A page listed as free is also reachable from the tree.
    FreePageReachable,
    /// With a persisted freelist: a page neither reachable nor free (leaked).
    UnreachableNotFree,
}

/// One structural problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// Where.
    #[serde(serialize_with = "serialize_location")]
    pub location: Location,
    /// The details, in words.
    pub detail: String,
}

fn serialize_location<S: serde::Serializer>(l: &Location, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&l.to_string())
}

/// Largest read for a run of neighbouring child pages.
const RUN_BYTES: u64 = 1 << 20;
/// Largest gap, in pages, between neighbouring children read together.
const RUN_GAP: u64 = 8;

/// Neighbouring pages read at once: the first page id and the bytes.
type Run<'d> = (u64, Cow<'d, [u8]>);

/// Problems recorded per kind before the rest are only counted.
pub const MAX_PROBLEMS_PER_KIND: usize = 100;

/// Counts of one run, for reports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckStats {
    /// Page size.
    pub page_size: u32,
    /// High-water mark of the active meta page.
    pub high_water_mark: u64,
    /// Whole pages in the file.
    pub file_pages: u64,
    /// Pages reached from the active meta (overflow included, meta and freelist pages too).
    pub reachable_pages: u64,
    /// Pages below the high-water mark nothing reaches (free pages with `NoFreelistSync`).
    pub unreachable_pages: u64,
    /// Leaf entries visited (nested bucket entries included).
    pub entries: u64,
    /// Buckets visited (the root excluded).
    pub buckets: u64,
    /// Problems beyond [`MAX_PROBLEMS_PER_KIND`] that were counted but not kept.
    pub problems_not_kept: u64,
}

/// The result of [`check`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    /// Everything found, in discovery order.
    pub problems: Vec<Problem>,
    /// Counts.
    pub stats: CheckStats,
}

/// What the walk tells a visitor about a leaf entry.
pub struct VisitedEntry<'a> {
    /// Names of the buckets from the top down (`["key"]` for etcd's key bucket).
    pub bucket_path: &'a [Vec<u8>],
    /// The entry.
    pub element: &'a LeafElement<'a>,
    /// Where the entry's element is: page and byte offset (none for inline buckets).
    pub at: At<'a>,
}

impl VisitedEntry<'_> {
    /// The entry's location, built when a problem needs it.
    pub fn location(&self) -> Location {
        self.at.key(self.element.key)
    }
}

/// A place in the file, turned into a [`Location`] only when a problem is reported (the
/// walk passes through millions of places that need none).
#[derive(Debug, Clone, Copy)]
pub struct At<'a> {
    /// Page id, if the place is in a page of the file.
    pub page: Option<u64>,
    /// Absolute byte offset.
    pub offset: Option<u64>,
    /// The bucket.
    pub bucket: &'a [u8],
}

impl At<'_> {
    /// The location.
    pub fn location(&self) -> Location {
        let loc = Location {
            page: self.page,
            offset: self.offset,
            ..Default::default()
        };
        if self.bucket.is_empty() {
            loc
        } else {
            loc.in_bucket(self.bucket)
        }
    }

    /// The location, at `key`.
    pub fn key(&self, key: &[u8]) -> Location {
        self.location().at_key(key)
    }
}

struct Checker<'d, 'v> {
    db: &'d Db,
    seen: Vec<u64>,
    problems: Vec<Problem>,
    per_kind: std::collections::HashMap<ProblemKind, usize>,
    stats: CheckStats,
    visit: &'v mut dyn FnMut(&VisitedEntry<'_>),
}

/// Checks the structure of `db` in one pass, calling `visit` for every leaf entry that
/// is not a nested bucket. Never fails: what cannot be read becomes a problem.
pub fn check(db: &Db, visit: &mut dyn FnMut(&VisitedEntry<'_>)) -> CheckResult {
    let meta = *db.meta();
    let ps = db.page_size() as u64;
    let file_pages = db.source_len() / ps;
    // Bitmap over the pages that exist in the file (a meta page with a valid checksum
    // can still claim a huge high-water mark; memory follows the file, not the claim).
    let tracked = meta.high_water_mark.min(file_pages.max(2));
    let mut c = Checker {
        db,
        seen: vec![0u64; tracked.div_ceil(64) as usize],
        problems: Vec::new(),
        per_kind: Default::default(),
        stats: CheckStats {
            page_size: db.page_size(),
            high_water_mark: meta.high_water_mark,
            file_pages,
            ..Default::default()
        },
        visit,
    };
    for (page, slot) in db.metas().iter().enumerate() {
        if let Err(problem) = slot {
            c.report_meta(page as u64, problem);
        }
    }
    if let Err(e) = db.validate_meta() {
        let kind = if e.to_string().contains("truncated") {
            ProblemKind::FileTruncated
        } else {
            ProblemKind::MetaInconsistent
        };
        let location = match &e {
            crate::Error::Corrupt { location, .. } => location.clone(),
            _ => Location::default(),
        };
        c.report(kind, location, e.to_string());
    }
    c.mark(0, 2);
    if meta.freelist != PGID_NO_FREELIST {
        c.check_freelist_page(meta.freelist);
    }
    let mut path = Vec::new();
    c.check_tree(meta.root, None, &mut path, None, None, None, 0);
    c.finish_free_pages(meta.freelist);
    CheckResult {
        problems: c.problems,
        stats: c.stats,
    }
}

impl<'d> Checker<'d, '_> {
    fn report(&mut self, kind: ProblemKind, location: Location, detail: impl Into<String>) {
        let n = self.per_kind.entry(kind).or_insert(0);
        *n += 1;
        if *n > MAX_PROBLEMS_PER_KIND {
            self.stats.problems_not_kept += 1;
            return;
        }
        self.problems.push(Problem {
            kind,
            location,
            detail: detail.into(),
        });
    }

    fn report_meta(&mut self, page: u64, problem: &MetaProblem) {
        let ps = self.db.page_size() as u64;
        self.report(
            ProblemKind::MetaInvalid,
            Location::page(page, page * ps),
            format!("meta page {page}: {problem}"),
        );
    }

    fn is_seen(&self, id: u64) -> bool {
        self.seen
            .get((id / 64) as usize)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// Marks `count` pages from `id`; returns the first one already marked.
    fn mark(&mut self, id: u64, count: u64) -> Option<u64> {
        let mut again = None;
        for p in id..id.saturating_add(count) {
            let Some(word) = self.seen.get_mut((p / 64) as usize) else {
                break;
            };
            if *word & (1 << (p % 64)) != 0 {
                again.get_or_insert(p);
            }
            *word |= 1 << (p % 64);
            self.stats.reachable_pages += 1;
        }
        again
    }

    /// Reads and validates the header of a page reached from `parent`; returns its bytes
    /// (overflow included) when it can be walked. `pre` holds the page's bytes already
    /// read with its neighbours (possibly without all of its overflow).
    fn load<'p>(
        &mut self,
        id: u64,
        parent: &str,
        pre: Option<&'p [u8]>,
    ) -> Option<(Cow<'p, [u8]>, u64)>
    where
        'd: 'p,
    {
        let hwm = self.db.meta().high_water_mark;
        let ps = self.db.page_size() as u64;
        let at = Location::page(id, id.saturating_mul(ps));
        if id < 2 || id >= hwm {
            self.report(
                ProblemKind::PageOutOfRange,
                Location {
                    page: Some(id),
                    ..Default::default()
                },
                format!("{parent} points to page {id}, outside the tree area (2..{hwm})"),
            );
            return None;
        }
        if self.is_seen(id) {
            self.report(
                ProblemKind::PageReferencedTwice,
                at,
                format!("{parent} points to page {id}, which is already part of the tree (shared page or cycle)"),
            );
            return None;
        }
        let first = match pre.filter(|p| p.len() >= ps as usize) {
            Some(p) => Cow::Borrowed(p),
            None => match self.db.read_raw(id * ps, ps as usize) {
                Ok(b) => b,
                Err(_) => {
                    self.mark(id, 1);
                    self.report(
                        ProblemKind::PageBeyondFile,
                        at,
                        format!(
                            "{parent} points to page {id}, past the end of the file ({} pages)",
                            self.stats.file_pages
                        ),
                    );
                    return None;
                }
            },
        };
        let header = match PageHeader::parse(&first, at.clone()) {
            Ok(h) => h,
            Err(e) => {
                self.report(ProblemKind::ElementOutOfBounds, at, e.to_string());
                return None;
            }
        };
        if header.id != id {
            self.mark(id, 1);
            self.report(
                ProblemKind::PageIdMismatch,
                at,
                format!(
                    "page at position {id} carries id {} (flags 0x{:02x}, {}); reached from {parent}",
                    header.id,
                    header.flags,
                    describe_flags(header.flags)
                ),
            );
            return None;
        }
        if header.flags != FLAG_BRANCH && header.flags != FLAG_LEAF {
            self.mark(id, 1);
            self.report(
                ProblemKind::BadPageType,
                at,
                format!(
                    "{parent} points to page {id} whose flags are 0x{:02x} ({}), not a branch or leaf",
                    header.flags,
                    describe_flags(header.flags)
                ),
            );
            return None;
        }
        let span = 1 + header.overflow as u64;
        if id + span > hwm {
            self.mark(id, 1);
            self.report(
                ProblemKind::OverflowPastHighWater,
                at,
                format!(
                    "page {id} claims {} overflow pages, running to page {} past the high-water mark {hwm}",
                    header.overflow,
                    id + span - 1
                ),
            );
            return None;
        }
        if let Some(p) = self.mark(id, span) {
            self.report(
                ProblemKind::PageReferencedTwice,
                at.clone(),
                format!("overflow of page {id} covers page {p}, which is already part of the tree"),
            );
        }
        let len = (span * ps) as usize;
        match first {
            Cow::Borrowed(p) if p.len() >= len => return Some((Cow::Borrowed(&p[..len]), id * ps)),
            Cow::Owned(v) if span == 1 => return Some((Cow::Owned(v), id * ps)),
            _ => {}
        }
        match self.db.read_raw(id * ps, len) {
            Ok(b) => Some((b, id * ps)),
            Err(_) => {
                self.report(
                    ProblemKind::PageBeyondFile,
                    at,
                    format!(
                        "page {id} with {} overflow pages runs past the end of the file",
                        header.overflow
                    ),
                );
                None
            }
        }
    }

    /// Checks the tree under page `id`. Keys must lie in `[lower, upper)`; the first key
    /// must equal `first` (the parent's branch key) when given. `pre` holds the page's
    /// bytes when they were read together with its neighbours.
    #[allow(clippy::too_many_arguments)]
    fn check_tree(
        &mut self,
        id: u64,
        pre: Option<&[u8]>,
        path: &mut Vec<Vec<u8>>,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        first: Option<&[u8]>,
        depth: usize,
    ) {
        let parent = match path.last() {
            Some(b) => format!("bucket {}", crate::display_bytes(b)),
            None => "the root bucket".to_string(),
        };
        if depth >= MAX_DEPTH {
            self.report(
                ProblemKind::TooDeep,
                Location {
                    page: Some(id),
                    ..Default::default()
                },
                format!("the tree of {parent} is deeper than {MAX_DEPTH} levels at page {id}"),
            );
            return;
        }
        let Some((bytes, offset)) = self.load(id, &parent, pre) else {
            return;
        };
        let node = match NodePage::new(&bytes, id, Some(offset)) {
            Ok(n) => n,
            Err(e) => {
                self.report(
                    ProblemKind::ElementOutOfBounds,
                    Location::page(id, offset),
                    e.to_string(),
                );
                return;
            }
        };
        let count = node.count();
        if count == 0 && (!node.is_leaf() || depth > 0) {
            let what = if node.is_leaf() {
                "leaf page below a branch"
            } else {
                "branch page"
            };
            self.report(
                ProblemKind::EmptyPage,
                Location::page(id, offset),
                format!("{what} {id} has no elements"),
            );
            return;
        }
        let bucket = path.last().cloned().unwrap_or_default();
        let mut keys: Vec<Option<&[u8]>> = Vec::with_capacity(count);
        let mut children = Vec::new();
        for i in 0..count {
            let loc = At {
                page: Some(id),
                offset: Some(offset + (16 + i * 16) as u64),
                bucket: &bucket,
            };
            if node.is_leaf() {
                match node.leaf(i) {
                    Ok(e) => {
                        self.check_key(&keys, e.key, i, lower, upper, first, loc, id);
                        keys.push(Some(e.key));
                        self.leaf_entry(&e, path, loc, depth);
                    }
                    Err(err) => {
                        self.report(
                            ProblemKind::ElementOutOfBounds,
                            loc.location(),
                            err.to_string(),
                        );
                        keys.push(None);
                    }
                }
            } else {
                match node.branch(i) {
                    Ok(e) => {
                        self.check_key(&keys, e.key, i, lower, upper, first, loc, id);
                        keys.push(Some(e.key));
                        children.push((i, e.child));
                    }
                    Err(err) => {
                        self.report(
                            ProblemKind::ElementOutOfBounds,
                            loc.location(),
                            err.to_string(),
                        );
                        keys.push(None);
                    }
                }
            }
        }
        let mut k = 0;
        while k < children.len() {
            // A run of children stored next to each other is read at once.
            let (run_end, run) = self.read_run(&children[k..]);
            for &(i, child) in &children[k..k + run_end] {
                let child_lower = keys[i];
                let child_upper = keys[i + 1..].iter().flatten().next().copied().or(upper);
                let pre = run.as_ref().and_then(|(first_id, buf)| {
                    let ps = self.db.page_size() as usize;
                    buf.get((child.checked_sub(*first_id)? as usize) * ps..)
                });
                self.check_tree(
                    child,
                    pre,
                    path,
                    child_lower,
                    child_upper,
                    child_lower,
                    depth + 1,
                );
            }
            k += run_end;
        }
    }

    /// Reads the longest run of neighbouring pages starting at `children[0]` in one read;
    /// returns how many children it covers and the run (first page id, bytes).
    fn read_run(&self, children: &[(usize, u64)]) -> (usize, Option<Run<'d>>) {
        let ps = self.db.page_size() as u64;
        let first = children[0].1;
        let mut last = first;
        let mut n = 1;
        while let Some(&(_, next)) = children.get(n) {
            let fits = next
                .saturating_sub(first)
                .saturating_add(1)
                .saturating_mul(ps)
                <= RUN_BYTES;
            if next <= last || next - last > RUN_GAP || !fits {
                break;
            }
            last = next;
            n += 1;
        }
        let hwm = self.db.meta().high_water_mark;
        if n == 1 || first < 2 || last >= hwm {
            return (1, None);
        }
        match self
            .db
            .read_raw(first * ps, ((last - first + 1) * ps) as usize)
        {
            Ok(buf) => (n, Some((first, buf))),
            Err(_) => (1, None),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check_key(
        &mut self,
        keys: &[Option<&[u8]>],
        key: &[u8],
        i: usize,
        lower: Option<&[u8]>,
        upper: Option<&[u8]>,
        first: Option<&[u8]>,
        at: At<'_>,
        id: u64,
    ) {
        let loc = || at.key(key);
        if let Some(prev) = keys.iter().rev().flatten().next()
            && key <= *prev
        {
            self.report(
                ProblemKind::KeysUnsorted,
                loc(),
                format!(
                    "page {id} element {i} is not greater than the key before it ({})",
                    crate::display_bytes(prev)
                ),
            );
        }
        if i == 0
            && let Some(expected) = first
            && key != expected
        {
            self.report(
                ProblemKind::BranchKeyMismatch,
                loc(),
                format!(
                    "first key of page {id} differs from the parent branch key {}",
                    crate::display_bytes(expected)
                ),
            );
        } else if lower.is_some_and(|l| key < l) {
            self.report(
                ProblemKind::KeysUnsorted,
                loc(),
                format!("page {id} element {i} sorts before its parent branch key"),
            );
        }
        if upper.is_some_and(|u| key >= u) {
            self.report(
                ProblemKind::KeysUnsorted,
                loc(),
                format!(
                    "page {id} element {i} sorts at or after the next branch key of its parent"
                ),
            );
        }
    }

    fn leaf_entry(
        &mut self,
        e: &LeafElement<'_>,
        path: &mut Vec<Vec<u8>>,
        at: At<'_>,
        depth: usize,
    ) {
        self.stats.entries += 1;
        if !e.is_bucket() {
            (self.visit)(&VisitedEntry {
                bucket_path: path,
                element: e,
                at,
            });
            return;
        }
        self.stats.buckets += 1;
        let loc = at.key(e.key);
        if e.value.len() < BUCKET_HEADER_SIZE {
            self.report(
                ProblemKind::BadBucket,
                loc,
                format!(
                    "bucket value has {} bytes, a bucket header needs 16",
                    e.value.len()
                ),
            );
            return;
        }
        let root = u64_at(e.value, 0);
        path.push(e.key.to_vec());
        if root == 0 {
            self.check_inline(&e.value[BUCKET_HEADER_SIZE..], path, loc, depth);
        } else {
            self.check_tree(root, None, path, None, None, None, depth + 1);
        }
        path.pop();
    }

    fn check_inline(&mut self, page: &[u8], path: &mut Vec<Vec<u8>>, loc: Location, depth: usize) {
        let node = match NodePage::new(page, 0, None) {
            Ok(n) if n.is_leaf() => n,
            Ok(_) => {
                self.report(
                    ProblemKind::BadBucket,
                    loc,
                    "inline bucket page is not a leaf page",
                );
                return;
            }
            Err(e) => {
                self.report(
                    ProblemKind::BadBucket,
                    loc,
                    format!("inline bucket page: {e}"),
                );
                return;
            }
        };
        // Entries of an inline bucket are located by the parent's element.
        let bucket = path.last().cloned().unwrap_or_default();
        let at = At {
            page: loc.page,
            offset: loc.offset,
            bucket: &bucket,
        };
        let mut keys: Vec<Option<&[u8]>> = Vec::new();
        for i in 0..node.count() {
            match node.leaf(i) {
                Ok(e) => {
                    self.check_key(&keys, e.key, i, None, None, None, at, 0);
                    keys.push(Some(e.key));
                    self.leaf_entry(&e, path, at, depth + 1);
                }
                Err(err) => {
                    self.report(
                        ProblemKind::BadBucket,
                        loc.clone(),
                        format!("inline bucket: {err}"),
                    );
                    keys.push(None);
                }
            }
        }
    }

    fn check_freelist_page(&mut self, id: u64) {
        let hwm = self.db.meta().high_water_mark;
        let ps = self.db.page_size() as u64;
        if id < 2 || id >= hwm {
            self.report(
                ProblemKind::FreelistInvalid,
                Location {
                    page: Some(id),
                    ..Default::default()
                },
                format!("the meta page points the freelist at page {id}, outside 2..{hwm}"),
            );
            return;
        }
        match self.db.read_raw(id * ps, ps as usize) {
            Ok(b) => {
                let overflow =
                    PageHeader::parse(&b, Location::page(id, id * ps)).map(|h| h.overflow);
                if let Ok(o) = overflow {
                    self.mark(id, 1 + o as u64);
                }
            }
            Err(e) => self.report(
                ProblemKind::FreelistInvalid,
                Location::page(id, id * ps),
                format!("cannot read the freelist page: {e}"),
            ),
        }
    }

    fn finish_free_pages(&mut self, freelist: u64) {
        let hwm = self.db.meta().high_water_mark;
        let tracked = hwm.min(self.stats.file_pages.max(2));
        let unreachable: Vec<u64> = (2..tracked).filter(|&p| !self.is_seen(p)).collect();
        self.stats.unreachable_pages = unreachable.len() as u64 + hwm.saturating_sub(tracked);
        if freelist == PGID_NO_FREELIST {
            return;
        }
        let ps = self.db.page_size() as u64;
        let free: Vec<u64> = match self.db.read_page_any(freelist) {
            Some(bytes) => match FreelistPage::new(&bytes, freelist, freelist * ps) {
                Ok(fl) => fl.ids().collect(),
                Err(e) => {
                    self.report(
                        ProblemKind::FreelistInvalid,
                        Location::page(freelist, freelist * ps),
                        e.to_string(),
                    );
                    return;
                }
            },
            None => return,
        };
        let mut is_free = std::collections::HashSet::with_capacity(free.len());
        for id in free {
            if id < 2 || id >= hwm {
                self.report(
                    ProblemKind::FreelistInvalid,
                    Location::page(freelist, freelist * ps),
                    format!("freelist lists page {id}, outside 2..{hwm}"),
                );
            } else if self.is_seen(id) {
                self.report(
                    ProblemKind::FreePageReachable,
                    Location::page(id, id * ps),
                    format!("page {id} is listed as free but is part of the tree"),
                );
            }
            is_free.insert(id);
        }
        for id in unreachable {
            if !is_free.contains(&id) {
                self.report(
                    ProblemKind::UnreachableNotFree,
                    Location::page(id, id * ps),
                    format!("page {id} is neither reachable nor free (leaked)"),
                );
            }
        }
    }
}

impl Db {
    /// The bytes of page `id` with its overflow, whatever its type, if they can be read.
    fn read_page_any(&self, id: u64) -> Option<Vec<u8>> {
        let ps = self.page_size() as u64;
        let first = self.read_raw(id * ps, ps as usize).ok()?;
        let header = PageHeader::parse(&first, Location::default()).ok()?;
        if header.flags != FLAG_FREELIST {
            return Some(first.into_owned());
        }
        let len = (1 + header.overflow as u64) * ps;
        self.read_raw(id * ps, len as usize)
            .ok()
            .map(|b| b.into_owned())
    }
}
