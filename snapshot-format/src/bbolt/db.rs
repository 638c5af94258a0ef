//! An open bbolt database: meta selection, page reads, buckets, cursors and scans.

use std::borrow::Cow;

use rayon::prelude::*;

use super::page::{
    BUCKET_HEADER_SIZE, LeafElement, META_SIZE, Meta, MetaProblem, NodePage, PAGE_HEADER_SIZE,
    PGID_NO_FREELIST, PageHeader, describe_flags, u64_at,
};
use super::source::PageSource;
use crate::error::{Error, Location, Result};

/// Deepest tree accepted. bbolt trees of real databases are a handful of levels deep; a
/// deeper path means a page points back up the tree.
pub const MAX_DEPTH: usize = 64;

/// Page sizes tried when meta page 0 is unreadable and the page size must be guessed.
const CANDIDATE_PAGE_SIZES: [u32; 8] = [4096, 8192, 16384, 32768, 65536, 2048, 1024, 512];

/// A page read from the file, with its bytes (including overflow pages).
pub struct PageBuf<'a> {
    /// Page id.
    pub id: u64,
    /// Absolute file offset.
    pub offset: u64,
    /// The header as read.
    pub header: PageHeader,
    /// The bytes, `(1 + overflow) * page_size` long.
    pub data: Cow<'a, [u8]>,
}

impl PageBuf<'_> {
    /// A branch/leaf view of this page.
    pub fn node(&self) -> Result<NodePage<'_>> {
        NodePage::new(&self.data, self.id, Some(self.offset))
    }

    /// Number of file pages this page spans.
    pub fn span(&self) -> u64 {
        1 + self.header.overflow as u64
    }
}

/// The state of one of the two meta pages.
pub type MetaSlot = std::result::Result<Meta, MetaProblem>;

/// An open, read-only bbolt database.
pub struct Db {
    source: Box<dyn PageSource>,
    page_size: u32,
    metas: [MetaSlot; 2],
    active: Meta,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("len", &self.source.len())
            .field("page_size", &self.page_size)
            .field("active", &self.active)
            .finish()
    }
}

fn read_meta(source: &dyn PageSource, page: u64, page_size: u32) -> MetaSlot {
    let want = PAGE_HEADER_SIZE + META_SIZE;
    match source.read_at(page * page_size as u64, want) {
        Ok(bytes) => Meta::parse_valid(page, &bytes),
        Err(_) => Err(MetaProblem::Truncated),
    }
}

fn sane_page_size(size: u32) -> bool {
    size.is_power_of_two() && (512..=1 << 20).contains(&size)
}

impl Db {
    /// Opens a database from `source`, choosing the active meta page as bbolt does: the
    /// valid meta (magic, version, checksum) with the higher transaction id. Fails only
    /// when no meta page is usable; see [`Db::validate_meta`] for the rest.
    pub fn open_unchecked(source: Box<dyn PageSource>) -> Result<Db> {
        if source.len() < (PAGE_HEADER_SIZE + META_SIZE) as u64 {
            return Err(Error::NotBbolt(format!(
                "the file has {} bytes, too small for a bbolt meta page",
                source.len()
            )));
        }
        let meta0 = read_meta(&*source, 0, 0);
        let page_size = match &meta0 {
            Ok(m) if sane_page_size(m.page_size) => Some(m.page_size),
            _ => CANDIDATE_PAGE_SIZES
                .into_iter()
                .find(|&ps| read_meta(&*source, 1, ps).is_ok_and(|m| m.page_size == ps)),
        };
        let Some(page_size) = page_size else {
            let why = match &meta0 {
                Ok(m) => format!("meta page 0 has an invalid page size {}", m.page_size),
                Err(p) => format!("meta page 0: {p}; no valid meta page 1 found either"),
            };
            return Err(Error::NotBbolt(why));
        };
        let meta1 = read_meta(&*source, 1, page_size);
        let metas = [meta0, meta1];
        let active = match (&metas[0], &metas[1]) {
            (Ok(a), Ok(b)) => {
                if b.txid > a.txid {
                    *b
                } else {
                    *a
                }
            }
            (Ok(a), Err(_)) => *a,
            (Err(_), Ok(b)) => *b,
            (Err(a), Err(b)) => {
                return Err(Error::NotBbolt(format!(
                    "both meta pages are invalid: page 0: {a}; page 1: {b}"
                )));
            }
        };
        Ok(Db {
            source,
            page_size,
            metas,
            active,
        })
    }

    /// Opens a database like [`Db::open`], then checks that the active meta page fits the
    /// file: same page size as meta page 0, high-water mark inside the file, root page
    /// inside the tree area.
    pub fn open(source: Box<dyn PageSource>) -> Result<Db> {
        let db = Db::open_unchecked(source)?;
        db.validate_meta()?;
        Ok(db)
    }

    /// The checks [`Db::open`] makes on the active meta page, as an error.
    pub fn validate_meta(&self) -> Result<()> {
        let (active, page_size) = (&self.active, self.page_size);
        let meta_at = Location::page(active.page, active.page * page_size as u64);
        if active.page_size != page_size {
            return Err(Error::corrupt(
                meta_at,
                format!(
                    "meta page {} says the page size is {}, but meta page 0 says {page_size}",
                    active.page, active.page_size
                ),
            ));
        }
        let needed = active.high_water_mark.saturating_mul(page_size as u64);
        if needed > self.source.len() {
            return Err(Error::corrupt(
                Location::offset(self.source.len()),
                format!(
                    "the file is truncated: meta page {} (txid {}) says the database uses {} pages \
                     ({needed} bytes) but the file has only {} bytes",
                    active.page,
                    active.txid,
                    active.high_water_mark,
                    self.source.len()
                ),
            ));
        }
        if active.root < 2 || active.root >= active.high_water_mark {
            return Err(Error::corrupt(
                meta_at,
                format!(
                    "meta page {} points the root bucket at page {}, outside 2..{}",
                    active.page, active.root, active.high_water_mark
                ),
            ));
        }
        Ok(())
    }

    /// Page size in bytes.
    pub fn page_size(&self) -> u32 {
        self.page_size
    }

    /// The meta page in use.
    pub fn meta(&self) -> &Meta {
        &self.active
    }

    /// Both meta pages, valid or with the reason they are not.
    pub fn metas(&self) -> &[MetaSlot; 2] {
        &self.metas
    }

    /// Bytes of the source (without any snapshot trailer).
    pub fn source_len(&self) -> u64 {
        self.source.len()
    }

    /// Size of the database as bbolt reports it (`tx.Size()`): high-water mark × page size.
    pub fn size(&self) -> u64 {
        self.active.high_water_mark * self.page_size as u64
    }

    /// True when the freelist is not persisted (etcd's `NoFreelistSync`).
    pub fn freelist_persisted(&self) -> bool {
        self.active.freelist != PGID_NO_FREELIST
    }

    /// Raw bytes at an absolute offset.
    pub fn read_raw(&self, offset: u64, len: usize) -> Result<Cow<'_, [u8]>> {
        self.source.read_at(offset, len).map_err(|e| {
            Error::corrupt(
                Location::offset(offset),
                format!("cannot read {len} bytes: {e}"),
            )
        })
    }

    /// Checks that page `id` may be read: inside the tree area, below the high-water mark.
    fn check_page_id(&self, id: u64) -> Result<u64> {
        let hwm = self.active.high_water_mark;
        if id < 2 || id >= hwm {
            return Err(Error::corrupt(
                Location {
                    page: Some(id),
                    ..Default::default()
                },
                format!("page id {id} is outside the tree area (pages 2..{hwm})"),
            ));
        }
        Ok(id * self.page_size as u64)
    }

    /// Validates the header of page `id` and returns the length of the whole page span.
    fn checked_span(&self, id: u64, offset: u64, first: &[u8]) -> Result<(PageHeader, usize)> {
        let at = Location::page(id, offset);
        let header = PageHeader::parse(first, at.clone())?;
        if header.id != id {
            return Err(Error::corrupt(
                at,
                format!(
                    "page header carries id {} (flags 0x{:02x}, {}): the page is not where its \
                     parent says, or it was overwritten",
                    header.id,
                    header.flags,
                    describe_flags(header.flags)
                ),
            ));
        }
        let hwm = self.active.high_water_mark;
        let last = id + header.overflow as u64;
        if last >= hwm {
            return Err(Error::corrupt(
                at,
                format!(
                    "page spans {} overflow pages up to page {last}, past the high-water mark {hwm}",
                    header.overflow
                ),
            ));
        }
        Ok((
            header,
            (header.overflow as usize + 1) * self.page_size as usize,
        ))
    }

    fn read_error(id: u64, offset: u64, e: std::io::Error) -> Error {
        Error::corrupt(Location::page(id, offset), format!("cannot read page: {e}"))
    }

    /// Reads page `id` with its overflow pages, checking that it lies inside the
    /// high-water mark and that its header carries its own id.
    pub fn read_page(&self, id: u64) -> Result<PageBuf<'_>> {
        let offset = self.check_page_id(id)?;
        let ps = self.page_size as usize;
        let first = self
            .source
            .read_at(offset, ps)
            .map_err(|e| Self::read_error(id, offset, e))?;
        let (header, len) = self.checked_span(id, offset, &first)?;
        if len == ps {
            return Ok(PageBuf {
                id,
                offset,
                header,
                data: first,
            });
        }
        drop(first);
        let data = self
            .source
            .read_at(offset, len)
            .map_err(|e| Self::read_error(id, offset, e))?;
        Ok(PageBuf {
            id,
            offset,
            header,
            data,
        })
    }

    /// Like [`Db::read_page`], but without allocating: the bytes are lent by the source
    /// when it holds the file in memory, or read into `scratch` (reused across calls).
    /// Returns the page's bytes (with overflow) and its file offset.
    pub fn read_page_into<'a>(
        &'a self,
        id: u64,
        scratch: &'a mut Vec<u8>,
    ) -> Result<(&'a [u8], u64)> {
        let offset = self.check_page_id(id)?;
        let ps = self.page_size as usize;
        let err = |e| Self::read_error(id, offset, e);
        if let Some(first) = self.source.lend(offset, ps) {
            let (_, len) = self.checked_span(id, offset, first.map_err(err)?)?;
            let all = self
                .source
                .lend(offset, len)
                .unwrap_or_else(|| Err(std::io::Error::other("source stopped lending bytes")));
            return Ok((all.map_err(err)?, offset));
        }
        // Resizing a reused buffer zero-fills only when it grows.
        scratch.resize(ps, 0);
        self.source.read_exact_at(offset, scratch).map_err(err)?;
        let (_, len) = self.checked_span(id, offset, scratch)?;
        if len > ps {
            scratch.resize(len, 0);
            self.source
                .read_exact_at(offset + ps as u64, &mut scratch[ps..])
                .map_err(err)?;
        }
        Ok((scratch.as_slice(), offset))
    }

    /// The root bucket, whose entries are the top-level buckets.
    pub fn root(&self) -> Bucket<'_> {
        Bucket {
            db: self,
            name: Vec::new(),
            root: self.active.root,
            sequence: self.active.root_sequence,
            inline: None,
        }
    }

    /// The top-level bucket `name`, if present.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'_>>> {
        self.root().bucket(name)
    }

    /// Names of the top-level buckets, in byte order.
    pub fn bucket_names(&self) -> Result<Vec<Vec<u8>>> {
        let mut names = Vec::new();
        self.root().for_each(|e| {
            if e.is_bucket() {
                names.push(e.key.to_vec());
            }
            Ok(())
        })?;
        Ok(names)
    }
}

/// A bucket: a B+tree rooted at a page or stored inline in its parent's leaf.
#[derive(Clone)]
pub struct Bucket<'db> {
    db: &'db Db,
    name: Vec<u8>,
    root: u64,
    sequence: u64,
    inline: Option<Vec<u8>>,
}

impl std::fmt::Debug for Bucket<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bucket")
            .field("name", &String::from_utf8_lossy(&self.name))
            .field("root", &self.root)
            .field("inline", &self.inline.is_some())
            .finish()
    }
}

/// Statistics of one contiguous, key-ordered part of a scan.
#[derive(Debug, Clone, Default)]
pub struct ScanPart {
    /// First key seen.
    pub first_key: Option<Vec<u8>>,
    /// Last key seen.
    pub last_key: Option<Vec<u8>>,
    /// Leaf entries visited.
    pub entries: u64,
    /// File pages visited (overflow included).
    pub pages: u64,
}

impl<'db> Bucket<'db> {
    /// Opens the nested bucket stored in `value` (a leaf value with the bucket flag).
    pub fn from_value(db: &'db Db, name: &[u8], value: &[u8], at: Location) -> Result<Self> {
        if value.len() < BUCKET_HEADER_SIZE {
            return Err(Error::corrupt(
                at,
                format!(
                    "bucket value has {} bytes, a bucket header needs 16",
                    value.len()
                ),
            ));
        }
        let root = u64_at(value, 0);
        let sequence = u64_at(value, 8);
        let inline = if root == 0 {
            let page = &value[BUCKET_HEADER_SIZE..];
            let node = NodePage::new(page, 0, None).map_err(|e| {
                Error::corrupt(at.clone(), format!("inline bucket page unreadable: {e}"))
            })?;
            if !node.is_leaf() {
                return Err(Error::corrupt(at, "inline bucket page is not a leaf page"));
            }
            Some(page.to_vec())
        } else {
            let hwm = db.meta().high_water_mark;
            if root < 2 || root >= hwm {
                return Err(Error::corrupt(
                    at,
                    format!("bucket root page {root} is outside the tree area (2..{hwm})"),
                ));
            }
            None
        };
        Ok(Bucket {
            db,
            name: name.to_vec(),
            root,
            sequence,
            inline,
        })
    }

    /// The bucket name (empty for the root bucket).
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// Root page id (0 for inline buckets).
    pub fn root_page(&self) -> u64 {
        self.root
    }

    /// The bucket's sequence number.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// True for a bucket stored inline in its parent.
    pub fn is_inline(&self) -> bool {
        self.inline.is_some()
    }

    /// The database.
    pub fn db(&self) -> &'db Db {
        self.db
    }

    fn location(&self, loc: Location) -> Location {
        if self.name.is_empty() {
            loc
        } else {
            loc.in_bucket(&self.name)
        }
    }

    fn err_in(&self, e: Error) -> Error {
        match e {
            Error::Corrupt { location, problem } if location.bucket.is_none() => Error::Corrupt {
                location: self.location(location),
                problem,
            },
            other => other,
        }
    }

    /// The nested bucket `name`, if present.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Bucket<'db>>> {
        let mut cursor = self.cursor();
        let Some(entry) = cursor.seek(name)? else {
            return Ok(None);
        };
        if entry.key != name || !entry.is_bucket() {
            return Ok(None);
        }
        let at = self.location(Location::default().at_key(name));
        Bucket::from_value(self.db, name, entry.value, at).map(Some)
    }

    /// The value of `key`, if present (and not a nested bucket).
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let mut cursor = self.cursor();
        match cursor.seek(key)? {
            Some(e) if e.key == key && !e.is_bucket() => Ok(Some(e.value.to_vec())),
            _ => Ok(None),
        }
    }

    /// An ordered cursor over this bucket.
    pub fn cursor(&self) -> Cursor<'db> {
        Cursor {
            bucket: self.clone(),
            stack: Vec::new(),
            last_key: None,
            done: false,
        }
    }

    /// Calls `f` for every entry in key order (nested buckets included, flagged).
    pub fn for_each(&self, mut f: impl FnMut(&LeafElement<'_>) -> Result<()>) -> Result<ScanPart> {
        let mut part = ScanPart::default();
        let mut last: Vec<u8> = Vec::new();
        let mut visit = |e: &LeafElement<'_>, page: &NodePage<'_>, i: usize| -> Result<()> {
            check_order(&mut part, &mut last, e.key, page, i)?;
            f(e)
        };
        match &self.inline {
            Some(bytes) => {
                let node = NodePage::new(bytes, 0, None).map_err(|e| self.err_in(e))?;
                visit_leaf(&node, &mut visit).map_err(|e| self.err_in(e))?;
            }
            None => {
                let mut pages = 0;
                walk(
                    self.db,
                    self.root,
                    &mut scratch_below(0),
                    &mut pages,
                    &mut visit,
                )
                .map_err(|e| self.err_in(e))?;
                part.pages = pages;
            }
        }
        if part.entries > 0 {
            part.last_key = Some(last);
        }
        Ok(part)
    }

    /// Scans the bucket in parallel: the tree is split into key-ordered subtrees, each
    /// folded into its own accumulator by `visit`. Returns the accumulators in key order
    /// with the statistics of each part; boundary key order is checked across parts.
    pub fn scan_parallel<A, M, V>(&self, make: M, visit: V) -> Result<Vec<(A, ScanPart)>>
    where
        A: Send,
        M: Fn() -> A + Sync,
        V: Fn(&mut A, &LeafElement<'_>) -> Result<()> + Sync,
    {
        if self.inline.is_some() {
            let mut acc = make();
            let part = self.for_each(|e| visit(&mut acc, e))?;
            return Ok(vec![(acc, part)]);
        }
        let threads = rayon::current_num_threads().max(1);
        let (upper_pages, roots) =
            split_subtrees(self.db, self.root, threads * 16).map_err(|e| self.err_in(e))?;
        let mut parts: Vec<(A, ScanPart)> = roots
            .par_iter()
            .map(|&(root, depth)| -> Result<(A, ScanPart)> {
                let mut acc = make();
                let mut part = ScanPart::default();
                let mut last: Vec<u8> = Vec::new();
                let mut pages = 0;
                walk(
                    self.db,
                    root,
                    &mut scratch_below(depth),
                    &mut pages,
                    &mut |e, page, i| {
                        check_order(&mut part, &mut last, e.key, page, i)?;
                        visit(&mut acc, e)
                    },
                )
                .map_err(|e| self.err_in(e))?;
                part.pages = pages;
                if part.entries > 0 {
                    part.last_key = Some(last);
                }
                Ok((acc, part))
            })
            .collect::<Result<_>>()?;
        let mut prev: Option<&[u8]> = None;
        for (_, part) in &parts {
            if let (Some(p), Some(first)) = (prev, part.first_key.as_deref())
                && p >= first
            {
                return Err(Error::corrupt(
                    self.location(Location::default().at_key(first)),
                    "keys out of order between sibling pages",
                ));
            }
            if let Some(l) = part.last_key.as_deref() {
                prev = Some(l);
            }
        }
        if let Some((_, first)) = parts.first_mut() {
            first.pages += upper_pages;
        }
        Ok(parts)
    }

    /// The last key of the bucket, found by descending the rightmost path.
    pub fn last_key(&self) -> Result<Option<Vec<u8>>> {
        let last_of = |node: &NodePage<'_>| -> Result<Option<Vec<u8>>> {
            match node.count() {
                0 => Ok(None),
                n => Ok(Some(node.leaf(n - 1)?.key.to_vec())),
            }
        };
        if let Some(bytes) = &self.inline {
            let node = NodePage::new(bytes, 0, None).map_err(|e| self.err_in(e))?;
            return last_of(&node).map_err(|e| self.err_in(e));
        }
        let mut id = self.root;
        for _ in 0..MAX_DEPTH {
            let buf = self.db.read_page(id).map_err(|e| self.err_in(e))?;
            let node = buf.node().map_err(|e| self.err_in(e))?;
            if node.is_leaf() {
                if node.count() == 0 && id != self.root {
                    return Err(self.err_in(Error::corrupt(
                        Location::page(id, buf.offset),
                        "empty leaf page below a branch",
                    )));
                }
                return last_of(&node).map_err(|e| self.err_in(e));
            }
            if node.count() == 0 {
                return Err(self.err_in(Error::corrupt(
                    node.element_location(0),
                    "branch page has no elements",
                )));
            }
            id = node
                .branch(node.count() - 1)
                .map_err(|e| self.err_in(e))?
                .child;
        }
        Err(self.err_in(Error::corrupt(
            Location {
                page: Some(id),
                ..Default::default()
            },
            format!("tree deeper than {MAX_DEPTH} levels: a branch page points back up the tree"),
        )))
    }

    /// Counts the file pages this bucket's tree occupies (overflow included), with nested
    /// buckets. Inline buckets occupy none.
    pub fn count_pages(&self) -> Result<u64> {
        if self.inline.is_some() {
            return Ok(0);
        }
        let mut nested = Vec::new();
        let mut pages = 0;
        walk(
            self.db,
            self.root,
            &mut scratch_below(0),
            &mut pages,
            &mut |e, page, i| {
                if e.is_bucket() {
                    let at = page.element_location(i).at_key(e.key);
                    nested.push(Bucket::from_value(self.db, e.key, e.value, at)?);
                }
                Ok(())
            },
        )
        .map_err(|e| self.err_in(e))?;
        for b in nested {
            pages += b.count_pages()?;
        }
        Ok(pages)
    }
}

fn check_order(
    part: &mut ScanPart,
    last: &mut Vec<u8>,
    key: &[u8],
    page: &NodePage<'_>,
    i: usize,
) -> Result<()> {
    if part.entries == 0 {
        part.first_key = Some(key.to_vec());
    } else if key <= last.as_slice() {
        return Err(Error::corrupt(
            page.element_location(i).at_key(key),
            format!(
                "keys out of order: element {i} is not greater than the previous key {}",
                crate::display_bytes(last)
            ),
        ));
    }
    part.entries += 1;
    last.clear();
    last.extend_from_slice(key);
    Ok(())
}

type Visit<'v> = dyn FnMut(&LeafElement<'_>, &NodePage<'_>, usize) -> Result<()> + 'v;

fn visit_leaf(node: &NodePage<'_>, visit: &mut Visit<'_>) -> Result<()> {
    for i in 0..node.count() {
        let e = node.leaf(i)?;
        visit(&e, node, i)?;
    }
    Ok(())
}

/// Depth-first walk of the tree under `id`, visiting leaf elements in key order.
/// `scratch` holds one reusable page buffer per level still allowed below this one.
fn walk(
    db: &Db,
    id: u64,
    scratch: &mut [Vec<u8>],
    pages: &mut u64,
    visit: &mut Visit<'_>,
) -> Result<()> {
    let Some((mine, below)) = scratch.split_first_mut() else {
        return Err(too_deep(id));
    };
    let (bytes, offset) = db.read_page_into(id, mine)?;
    walk_node(db, id, bytes, offset, below, pages, visit)
}

fn too_deep(id: u64) -> Error {
    Error::corrupt(
        Location {
            page: Some(id),
            ..Default::default()
        },
        format!("tree deeper than {MAX_DEPTH} levels: a branch page points back up the tree"),
    )
}

/// Largest read that [`walk_node`] makes for a run of neighbouring children.
const RUN_BYTES: u64 = 1 << 20;
/// Largest distance, in pages, between neighbouring children read together (the pages
/// in between are mostly the previous child's overflow).
const RUN_GAP: u64 = 8;

/// Walks the page `id` whose bytes are `bytes`. When the source copies bytes out
/// (positioned reads), children stored next to each other in the file, as etcd's
/// append-only key bucket lays them out, are read with one read per run.
fn walk_node(
    db: &Db,
    id: u64,
    bytes: &[u8],
    offset: u64,
    below: &mut [Vec<u8>],
    pages: &mut u64,
    visit: &mut Visit<'_>,
) -> Result<()> {
    let node = NodePage::new(bytes, id, Some(offset))?;
    *pages += 1 + node.header().overflow as u64;
    if node.is_leaf() {
        return visit_leaf(&node, visit);
    }
    let count = node.count();
    if count == 0 {
        return Err(Error::corrupt(
            node.element_location(0),
            "branch page has no elements",
        ));
    }
    // Each branch level takes two scratch buffers: one for runs of its children, one for
    // the level below. Sources that lend bytes need no run buffer.
    let Some((run_buf, deeper)) = below.split_first_mut() else {
        return Err(too_deep(id));
    };
    if db.source.lend(0, 0).is_some() {
        for i in 0..count {
            let child = node.branch(i)?.child;
            walk(db, child, deeper, pages, visit).map_err(|e| add_parent(e, &node, i))?;
        }
        return Ok(());
    }
    let ps = db.page_size as u64;
    let mut i = 0;
    while i < count {
        let first = node.branch(i)?.child;
        let mut last = first;
        let mut j = i + 1;
        while j < count {
            let next = node.branch(j)?.child;
            let fits = next
                .saturating_sub(first)
                .saturating_add(1)
                .saturating_mul(ps)
                <= RUN_BYTES;
            if next <= last || next - last > RUN_GAP || !fits {
                break;
            }
            last = next;
            j += 1;
        }
        if j == i + 1 {
            walk(db, first, deeper, pages, visit).map_err(|e| add_parent(e, &node, i))?;
            i = j;
            continue;
        }
        let run_offset = db.check_page_id(first)?;
        db.check_page_id(last)?;
        run_buf.resize(((last - first + 1) * ps) as usize, 0);
        db.source
            .read_exact_at(run_offset, run_buf)
            .map_err(|e| Db::read_error(first, run_offset, e))?;
        for k in i..j {
            let child = node.branch(k)?.child;
            let rel = ((child - first) * ps) as usize;
            let child_offset = run_offset + rel as u64;
            let (_, len) = db.checked_span(child, child_offset, &run_buf[rel..])?;
            let result = match run_buf.get(rel..rel + len) {
                Some(child_bytes) => {
                    walk_node(db, child, child_bytes, child_offset, deeper, pages, visit)
                }
                // The run ends inside this child's overflow: read it on its own.
                None => walk(db, child, deeper, pages, visit),
            };
            result.map_err(|e| add_parent(e, &node, k))?;
        }
        i = j;
    }
    Ok(())
}

/// Page buffers for a walk starting at `depth`: two per level (see [`walk_node`]).
fn scratch_below(depth: usize) -> Vec<Vec<u8>> {
    vec![Vec::new(); 2 * MAX_DEPTH.saturating_sub(depth)]
}

/// Adds "reached from page P element i" to an error that has no page of its own.
fn add_parent(e: Error, parent: &NodePage<'_>, i: usize) -> Error {
    match e {
        Error::Corrupt { location, problem } if location.offset.is_none() => Error::Corrupt {
            problem: format!(
                "{problem} (referenced by branch page {} element {i})",
                parent.id()
            ),
            location,
        },
        other => other,
    }
}

/// Splits the tree under `root` into at least `want` key-ordered subtrees when it can,
/// returning the pages of the levels above them and each subtree's (page, depth).
fn split_subtrees(db: &Db, root: u64, want: usize) -> Result<(u64, Vec<(u64, usize)>)> {
    let mut level = vec![(root, 0usize)];
    let mut upper_pages = 0;
    loop {
        if level.len() >= want {
            return Ok((upper_pages, level));
        }
        let mut next = Vec::with_capacity(level.len() * 64);
        let mut expanded = false;
        for &(id, depth) in &level {
            if depth + 1 >= MAX_DEPTH {
                next.push((id, depth));
                continue;
            }
            let buf = db.read_page(id)?;
            let node = buf.node()?;
            if node.is_leaf() {
                next.push((id, depth));
                continue;
            }
            if node.count() == 0 {
                return Err(Error::corrupt(
                    node.element_location(0),
                    "branch page has no elements",
                ));
            }
            expanded = true;
            upper_pages += buf.span();
            for i in 0..node.count() {
                next.push((node.branch(i)?.child, depth + 1));
            }
        }
        if !expanded {
            return Ok((upper_pages, next));
        }
        level = next;
    }
}

/// One entry under a cursor.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'c> {
    /// Leaf flags.
    pub flags: u32,
    /// Key.
    pub key: &'c [u8],
    /// Value (bucket header for nested buckets).
    pub value: &'c [u8],
}

impl Entry<'_> {
    /// True for nested buckets.
    pub fn is_bucket(&self) -> bool {
        self.flags & super::page::LEAF_FLAG_BUCKET != 0
    }
}

struct Frame<'db> {
    id: u64,
    offset: Option<u64>,
    data: Cow<'db, [u8]>,
    index: usize,
}

impl Frame<'_> {
    fn node(&self) -> Result<NodePage<'_>> {
        NodePage::new(&self.data, self.id, self.offset)
    }
}

/// An ordered cursor over a bucket, with seek. Keys are checked to increase strictly, so
/// a damaged tree produces an error rather than a loop.
pub struct Cursor<'db> {
    bucket: Bucket<'db>,
    stack: Vec<Frame<'db>>,
    last_key: Option<Vec<u8>>,
    done: bool,
}

impl<'db> Cursor<'db> {
    fn root_frame(&self) -> Result<Frame<'db>> {
        match &self.bucket.inline {
            Some(bytes) => Ok(Frame {
                id: 0,
                offset: None,
                data: Cow::Owned(bytes.clone()),
                index: 0,
            }),
            None => self.page_frame(self.bucket.root),
        }
    }

    fn page_frame(&self, id: u64) -> Result<Frame<'db>> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Error::corrupt(
                Location {
                    page: Some(id),
                    ..Default::default()
                },
                format!(
                    "tree deeper than {MAX_DEPTH} levels: a branch page points back up the tree"
                ),
            ));
        }
        let buf = self.bucket.db.read_page(id)?;
        Ok(Frame {
            id,
            offset: Some(buf.offset),
            data: buf.data,
            index: 0,
        })
    }

    /// Descends from the top frame to the leftmost leaf.
    fn descend_first(&mut self) -> Result<()> {
        loop {
            let Some(top) = self.stack.last() else {
                return Ok(());
            };
            let node = top.node()?;
            if node.is_leaf() {
                return Ok(());
            }
            if node.count() == 0 {
                return Err(Error::corrupt(
                    node.element_location(0),
                    "branch page has no elements",
                ));
            }
            let child = node.branch(top.index)?.child;
            let frame = self.page_frame(child)?;
            self.stack.push(frame);
        }
    }

    /// Positions at the first entry.
    pub fn first(&mut self) -> Result<Option<Entry<'_>>> {
        self.stack.clear();
        self.last_key = None;
        self.done = false;
        let root = self.root_frame().map_err(|e| self.bucket.err_in(e))?;
        self.stack.push(root);
        self.descend_first().map_err(|e| self.bucket.err_in(e))?;
        self.settle()
    }

    /// Positions at the first entry whose key is `>= key`.
    pub fn seek(&mut self, key: &[u8]) -> Result<Option<Entry<'_>>> {
        self.stack.clear();
        self.last_key = None;
        self.done = false;
        let root = self.root_frame().map_err(|e| self.bucket.err_in(e))?;
        self.stack.push(root);
        self.seek_down(key).map_err(|e| self.bucket.err_in(e))?;
        self.settle()
    }

    fn seek_down(&mut self, key: &[u8]) -> Result<()> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(());
            };
            let node = NodePage::new(&top.data, top.id, top.offset)?;
            let n = node.count();
            if node.is_leaf() {
                // first element with key >= target
                let (mut lo, mut hi) = (0, n);
                while lo < hi {
                    let mid = (lo + hi) / 2;
                    if node.leaf(mid)?.key < key {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                top.index = lo;
                return Ok(());
            }
            if n == 0 {
                return Err(Error::corrupt(
                    node.element_location(0),
                    "branch page has no elements",
                ));
            }
            // last element with key <= target, or 0
            let (mut lo, mut hi) = (0, n);
            while lo < hi {
                let mid = (lo + hi) / 2;
                if node.branch(mid)?.key <= key {
                    lo = mid + 1;
                } else {
                    hi = mid;
                }
            }
            let index = lo.saturating_sub(1);
            let child = node.branch(index)?.child;
            top.index = index;
            let frame = self.page_frame(child)?;
            self.stack.push(frame);
        }
    }

    /// Moves past exhausted leaves until the top frame points at an entry, or ends.
    fn advance_to_valid(&mut self) -> Result<bool> {
        loop {
            let Some(top) = self.stack.last() else {
                return Ok(false);
            };
            let count = top.node()?.count();
            if top.index < count {
                return Ok(true);
            }
            // This page is exhausted: pop and step the parent.
            self.stack.pop();
            let Some(parent) = self.stack.last_mut() else {
                return Ok(false);
            };
            parent.index += 1;
            let pcount = NodePage::new(&parent.data, parent.id, parent.offset)?.count();
            if parent.index < pcount {
                self.descend_first()?;
            }
        }
    }

    fn settle(&mut self) -> Result<Option<Entry<'_>>> {
        let valid = self.advance_to_valid().map_err(|e| self.bucket.err_in(e))?;
        if !valid {
            self.done = true;
            return Ok(None);
        }
        let Some(top) = self.stack.last() else {
            return Ok(None);
        };
        let found = NodePage::new(&top.data, top.id, top.offset).and_then(|node| {
            let e = node.leaf(top.index)?;
            if let Some(last) = &self.last_key
                && e.key <= last.as_slice()
            {
                return Err(Error::corrupt(
                    node.element_location(top.index).at_key(e.key),
                    format!(
                        "keys out of order: not greater than the previous key {}",
                        crate::display_bytes(last)
                    ),
                ));
            }
            Ok(e)
        });
        let e = found.map_err(|e| self.bucket.err_in(e))?;
        let last = self.last_key.get_or_insert_with(Vec::new);
        last.clear();
        last.extend_from_slice(e.key);
        Ok(Some(Entry {
            flags: e.flags,
            key: e.key,
            value: e.value,
        }))
    }

    /// Moves to the next entry. (Not `Iterator::next`: entries borrow from the cursor.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Entry<'_>>> {
        if self.done {
            return Ok(None);
        }
        if self.stack.is_empty() {
            return self.first();
        }
        if let Some(top) = self.stack.last_mut() {
            top.index += 1;
        }
        self.settle()
    }
}
