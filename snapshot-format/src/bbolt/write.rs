//! A bulk bbolt writer: builds a compact, valid bbolt file from buckets and keys given in
//! sorted order, in one sequential pass.
//!
//! Leaves are filled up to the fill limit and written as they fill; branch levels are
//! built bottom-up once a bucket ends; small buckets are stored inline in their parent
//! exactly when bbolt itself would inline them (no nested buckets, at most a quarter of
//! a page). The two meta pages are written last, with checksums, so a file whose writing
//! was interrupted has no valid meta page and never opens as a database.
//!
//! Two modes:
//! - [`BoltWriter::create`] writes a new file: meta pages 0 and 1, then the trees.
//! - [`BoltWriter::append`] extends an existing file copy-on-write, as a bbolt commit
//!   does: new pages go after the old high-water mark, untouched buckets are carried over
//!   by their existing bucket headers ([`BoltWriter::put_raw_bucket`]), and new meta
//!   pages with a higher transaction id switch to the new root.
//!
//! Files are written without a persisted freelist (freelist id all ones), as etcd writes
//! them (`NoFreelistSync`); bbolt rebuilds the free list by reachability when it opens.

use std::io::{Seek, SeekFrom, Write};

use super::page::{
    BRANCH_ELEMENT_SIZE, BUCKET_HEADER_SIZE, FLAG_BRANCH, FLAG_LEAF, LEAF_ELEMENT_SIZE,
    LEAF_FLAG_BUCKET, MAGIC, Meta, PAGE_HEADER_SIZE, PGID_NO_FREELIST, VERSION,
};
use crate::error::{Error, Result};

/// Output is handed to the underlying writer in chunks of this size.
const OUT_CHUNK: usize = 1 << 20;

/// Options for [`BoltWriter`].
#[derive(Debug, Clone, Copy)]
pub struct WriterOptions {
    /// Page size in bytes (a power of two, 512 to 1 MiB). etcd on Linux uses 4096.
    pub page_size: u32,
    /// Fraction of a page filled before a new page is started (0.1 to 1.0). 1.0 gives
    /// the most compact file; bbolt's own default is 0.5, etcd's key bucket uses 0.9 for
    /// sequential writes.
    pub fill_percent: f64,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            page_size: 4096,
            fill_percent: 1.0,
        }
    }
}

/// What a finished write produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteSummary {
    /// Pages in the file (the new high-water mark).
    pub pages: u64,
    /// File size in bytes (`pages * page_size`).
    pub size: u64,
    /// Pages written by this writer (meta pages included).
    pub pages_written: u64,
    /// Top-level buckets in the file.
    pub buckets: u64,
    /// Keys written through [`BoltWriter::put`].
    pub keys: u64,
    /// Transaction id of the active meta page.
    pub txid: u64,
    /// Root page of the file.
    pub root: u64,
}

/// A node being filled: elements with their keys and values in one arena.
#[derive(Default)]
struct NodeBuf {
    /// (flags, key length, value length) per element; for branches value length is 0
    /// and the child page id is kept in `children`.
    elems: Vec<(u32, u32, u32)>,
    children: Vec<u64>,
    data: Vec<u8>,
}

impl NodeBuf {
    fn size(&self) -> usize {
        PAGE_HEADER_SIZE + self.elems.len() * LEAF_ELEMENT_SIZE + self.data.len()
    }

    fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    fn clear(&mut self) {
        self.elems.clear();
        self.children.clear();
        self.data.clear();
    }

    fn first_key(&self) -> &[u8] {
        match self.elems.first() {
            Some(&(_, k, _)) => &self.data[..k as usize],
            None => &[],
        }
    }

    /// Serializes the node as a page (header id `id`) into `out`, padded to whole pages.
    /// Returns the number of file pages it spans.
    fn write_page(&self, id: u64, leaf: bool, page_size: usize, out: &mut Vec<u8>) -> u64 {
        let size = self.size();
        let span = size.div_ceil(page_size).max(1);
        let start = out.len();
        out.resize(start + span * page_size, 0);
        let page = &mut out[start..];
        self.write_into(page, id, leaf, (span - 1) as u32);
        span as u64
    }

    /// Serializes into `page` (at least `size()` bytes), with the given header fields.
    fn write_into(&self, page: &mut [u8], id: u64, leaf: bool, overflow: u32) {
        let n = self.elems.len();
        page[0..8].copy_from_slice(&id.to_le_bytes());
        let flags = if leaf { FLAG_LEAF } else { FLAG_BRANCH };
        page[8..10].copy_from_slice(&flags.to_le_bytes());
        page[10..12].copy_from_slice(&(n as u16).to_le_bytes());
        page[12..16].copy_from_slice(&overflow.to_le_bytes());
        let mut data_at = PAGE_HEADER_SIZE + n * LEAF_ELEMENT_SIZE;
        let mut arena = 0usize;
        for (i, &(flags, klen, vlen)) in self.elems.iter().enumerate() {
            let elem_at = PAGE_HEADER_SIZE + i * LEAF_ELEMENT_SIZE;
            let pos = (data_at - elem_at) as u32;
            let e = &mut page[elem_at..elem_at + LEAF_ELEMENT_SIZE];
            if leaf {
                e[0..4].copy_from_slice(&flags.to_le_bytes());
                e[4..8].copy_from_slice(&pos.to_le_bytes());
                e[8..12].copy_from_slice(&klen.to_le_bytes());
                e[12..16].copy_from_slice(&vlen.to_le_bytes());
            } else {
                e[0..4].copy_from_slice(&pos.to_le_bytes());
                e[4..8].copy_from_slice(&klen.to_le_bytes());
                e[8..16].copy_from_slice(&self.children[i].to_le_bytes());
            }
            let len = (klen + vlen) as usize;
            page[data_at..data_at + len].copy_from_slice(&self.data[arena..arena + len]);
            data_at += len;
            arena += len;
        }
    }
}

/// One level of a tree under construction: the first key and page id of each node.
#[derive(Default)]
struct Level {
    keys: Vec<u8>,
    entries: Vec<(u32, u64)>,
}

impl Level {
    fn push(&mut self, key: &[u8], pgid: u64) {
        self.entries.push((key.len() as u32, pgid));
        self.keys.extend_from_slice(key);
    }
}

/// A bucket being written.
struct OpenBucket {
    name: Vec<u8>,
    sequence: u64,
    leaf: NodeBuf,
    leaves: Level,
    last_key: Option<Vec<u8>>,
    keys: u64,
    has_nested: bool,
}

/// Writes a bbolt file from sorted input. See the module docs.
pub struct BoltWriter<W: Write + Seek> {
    out: W,
    buf: Vec<u8>,
    page_size: usize,
    fill_limit: usize,
    next_pgid: u64,
    first_pgid: u64,
    prev_txid: u64,
    top: NodeBuf,
    last_bucket: Option<Vec<u8>>,
    open: Option<OpenBucket>,
    keys: u64,
    buckets: u64,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::Invalid(msg.into())
}

impl<W: Write + Seek> BoltWriter<W> {
    /// Starts a new file at the current position of `out` (which should be empty):
    /// two meta pages are reserved and written by [`BoltWriter::finish`].
    pub fn create(mut out: W, options: WriterOptions) -> Result<Self> {
        let page_size = Self::check_options(&options)?;
        out.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seeking to the start of the output", e))?;
        let mut w = Self::new(out, page_size, options.fill_percent, 2, 0);
        // Placeholder meta pages: zeros, so an interrupted write has no valid meta.
        w.buf.resize(2 * page_size, 0);
        Ok(w)
    }

    /// Continues an existing file copy-on-write: new pages are written from
    /// `high_water_mark` on, and [`BoltWriter::finish`] writes meta pages with
    /// transaction ids above `txid`. The caller carries over untouched top-level buckets
    /// with [`BoltWriter::put_raw_bucket`].
    pub fn append(
        mut out: W,
        options: WriterOptions,
        high_water_mark: u64,
        txid: u64,
    ) -> Result<Self> {
        let page_size = Self::check_options(&options)?;
        if high_water_mark < 2 {
            return Err(invalid(format!(
                "cannot append after high-water mark {high_water_mark}: the file has no meta pages"
            )));
        }
        out.seek(SeekFrom::Start(high_water_mark * page_size as u64))
            .map_err(|e| Error::io("seeking to the end of the database", e))?;
        Ok(Self::new(
            out,
            page_size,
            options.fill_percent,
            high_water_mark,
            txid,
        ))
    }

    fn check_options(options: &WriterOptions) -> Result<usize> {
        let ps = options.page_size;
        if !ps.is_power_of_two() || !(512..=1 << 20).contains(&ps) {
            return Err(invalid(format!(
                "page size {ps} is not a power of two between 512 and 1048576"
            )));
        }
        if !(0.1..=1.0).contains(&options.fill_percent) {
            return Err(invalid(format!(
                "fill percent {} is outside 0.1..=1.0",
                options.fill_percent
            )));
        }
        Ok(ps as usize)
    }

    fn new(out: W, page_size: usize, fill: f64, first_pgid: u64, prev_txid: u64) -> Self {
        let fill_limit = ((page_size as f64 * fill) as usize).max(PAGE_HEADER_SIZE * 2);
        BoltWriter {
            out,
            buf: Vec::with_capacity(OUT_CHUNK + page_size),
            page_size,
            fill_limit,
            next_pgid: first_pgid,
            first_pgid,
            prev_txid,
            top: NodeBuf::default(),
            last_bucket: None,
            open: None,
            keys: 0,
            buckets: 0,
        }
    }

    /// Starts the top-level bucket `name` with sequence `sequence`. Names must come in
    /// strictly increasing byte order, and the previous bucket must have ended.
    pub fn begin_bucket(&mut self, name: &[u8], sequence: u64) -> Result<()> {
        if let Some(open) = &self.open {
            return Err(invalid(format!(
                "bucket {} begun while bucket {} is still open",
                crate::display_bytes(name),
                crate::display_bytes(&open.name)
            )));
        }
        self.check_bucket_order(name)?;
        self.open = Some(OpenBucket {
            name: name.to_vec(),
            sequence,
            leaf: NodeBuf::default(),
            leaves: Level::default(),
            last_key: None,
            keys: 0,
            has_nested: false,
        });
        Ok(())
    }

    fn check_bucket_order(&self, name: &[u8]) -> Result<()> {
        if name.is_empty() {
            return Err(invalid("bucket names cannot be empty"));
        }
        if let Some(last) = &self.last_bucket
            && name <= last.as_slice()
        {
            return Err(invalid(format!(
                "bucket {} given after bucket {}: buckets must come in increasing byte order",
                crate::display_bytes(name),
                crate::display_bytes(last)
            )));
        }
        Ok(())
    }

    /// Adds `key` = `value` to the open bucket. Keys must come in strictly increasing
    /// byte order.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.put_flagged(key, value, 0)
    }

    fn put_flagged(&mut self, key: &[u8], value: &[u8], flags: u32) -> Result<()> {
        let page_size = self.page_size;
        let fill_limit = self.fill_limit;
        let Some(open) = self.open.as_mut() else {
            return Err(invalid(format!(
                "key {} given outside a bucket",
                crate::display_bytes(key)
            )));
        };
        if key.is_empty() {
            return Err(invalid(format!(
                "empty key in bucket {}",
                crate::display_bytes(&open.name)
            )));
        }
        if key.len() > u32::MAX as usize / 2 || value.len() > u32::MAX as usize / 2 {
            return Err(invalid(format!(
                "key {} or its value is too large for a bbolt page",
                crate::display_bytes(key)
            )));
        }
        if let Some(last) = &open.last_key {
            if key <= last.as_slice() {
                return Err(invalid(format!(
                    "key {} given after key {} in bucket {}: keys must come in increasing byte order",
                    crate::display_bytes(key),
                    crate::display_bytes(last),
                    crate::display_bytes(&open.name)
                )));
            }
            let last = open.last_key.get_or_insert_with(Vec::new);
            last.clear();
            last.extend_from_slice(key);
        } else {
            open.last_key = Some(key.to_vec());
        }
        let add = LEAF_ELEMENT_SIZE + key.len() + value.len();
        if !open.leaf.is_empty()
            && (open.leaf.size() + add > fill_limit || open.leaf.elems.len() >= u16::MAX as usize)
        {
            let id = self.next_pgid;
            let span = open.leaf.write_page(id, true, page_size, &mut self.buf);
            open.leaves.push(open.leaf.first_key(), id);
            open.leaf.clear();
            self.next_pgid += span;
            if self.buf.len() >= OUT_CHUNK {
                let out = &mut self.out;
                out.write_all(&self.buf)
                    .map_err(|e| Error::io("writing database pages", e))?;
                self.buf.clear();
            }
        }
        open.leaf
            .elems
            .push((flags, key.len() as u32, value.len() as u32));
        open.leaf.data.extend_from_slice(key);
        open.leaf.data.extend_from_slice(value);
        open.keys += 1;
        if flags & LEAF_FLAG_BUCKET != 0 {
            open.has_nested = true;
        }
        Ok(())
    }

    /// Adds a nested bucket to the open bucket, given its complete bucket value (header
    /// plus inline page, or header pointing at pages already in the file).
    pub fn put_raw_nested_bucket(&mut self, name: &[u8], value: &[u8]) -> Result<()> {
        check_bucket_value(name, value)?;
        self.put_flagged(name, value, LEAF_FLAG_BUCKET)
    }

    /// Ends the open bucket: flushes its last leaf, builds its branch levels, and adds
    /// it to the root bucket (inline when small, as bbolt does).
    pub fn end_bucket(&mut self) -> Result<()> {
        let Some(mut open) = self.open.take() else {
            return Err(invalid("end_bucket called with no open bucket"));
        };
        let inline_limit = self.page_size / 4;
        let value = if open.leaves.entries.is_empty()
            && !open.has_nested
            && open.leaf.size() <= inline_limit
        {
            let size = open.leaf.size();
            let mut value = vec![0u8; BUCKET_HEADER_SIZE + size];
            value[8..16].copy_from_slice(&open.sequence.to_le_bytes());
            open.leaf
                .write_into(&mut value[BUCKET_HEADER_SIZE..], 0, true, 0);
            value
        } else {
            if !open.leaf.is_empty() || open.leaves.entries.is_empty() {
                let id = self.next_pgid;
                let span = open
                    .leaf
                    .write_page(id, true, self.page_size, &mut self.buf);
                open.leaves.push(open.leaf.first_key(), id);
                self.next_pgid += span;
            }
            let root = self.build_branches(open.leaves)?;
            let mut value = vec![0u8; BUCKET_HEADER_SIZE];
            value[0..8].copy_from_slice(&root.to_le_bytes());
            value[8..16].copy_from_slice(&open.sequence.to_le_bytes());
            value
        };
        self.keys += open.keys;
        self.push_top(&open.name, &value)
    }

    /// Adds a top-level bucket whose value is given as is: a bucket header pointing at
    /// pages already in the file (append mode), or a header with an inline page.
    pub fn put_raw_bucket(&mut self, name: &[u8], value: &[u8]) -> Result<()> {
        if self.open.is_some() {
            return Err(invalid("put_raw_bucket called while a bucket is open"));
        }
        self.check_bucket_order(name)?;
        check_bucket_value(name, value)?;
        let root = u64::from_le_bytes(value[0..8].try_into().unwrap_or_default());
        if root != 0 && root >= self.first_pgid {
            return Err(invalid(format!(
                "bucket {} points at page {root}, beyond the pages carried over (< {})",
                crate::display_bytes(name),
                self.first_pgid
            )));
        }
        self.push_top(name, value)
    }

    fn push_top(&mut self, name: &[u8], value: &[u8]) -> Result<()> {
        self.top
            .elems
            .push((LEAF_FLAG_BUCKET, name.len() as u32, value.len() as u32));
        self.top.data.extend_from_slice(name);
        self.top.data.extend_from_slice(value);
        self.last_bucket = Some(name.to_vec());
        self.buckets += 1;
        Ok(())
    }

    /// Builds branch levels over `level` until one page remains; returns the root id.
    fn build_branches(&mut self, mut level: Level) -> Result<u64> {
        let mut depth = 0;
        while level.entries.len() > 1 {
            depth += 1;
            if depth > super::MAX_DEPTH {
                return Err(invalid("tree deeper than bbolt allows"));
            }
            let mut next = Level::default();
            let mut node = NodeBuf::default();
            let mut at = 0usize;
            for &(klen, pgid) in &level.entries {
                let key = &level.keys[at..at + klen as usize];
                at += klen as usize;
                let add = BRANCH_ELEMENT_SIZE + key.len();
                if node.elems.len() >= 2
                    && (node.size() + add > self.fill_limit
                        || node.elems.len() >= u16::MAX as usize)
                {
                    self.flush_branch(&mut node, &mut next)?;
                }
                node.elems.push((0, klen, 0));
                node.children.push(pgid);
                node.data.extend_from_slice(key);
            }
            self.flush_branch(&mut node, &mut next)?;
            level = next;
        }
        level
            .entries
            .first()
            .map(|&(_, id)| id)
            .ok_or_else(|| invalid("a tree with no pages"))
    }

    fn flush_branch(&mut self, node: &mut NodeBuf, next: &mut Level) -> Result<()> {
        if node.is_empty() {
            return Ok(());
        }
        let id = self.next_pgid;
        let span = node.write_page(id, false, self.page_size, &mut self.buf);
        next.push(node.first_key(), id);
        node.clear();
        self.next_pgid += span;
        self.flush_if_full()
    }

    fn flush_if_full(&mut self) -> Result<()> {
        if self.buf.len() >= OUT_CHUNK {
            self.out
                .write_all(&self.buf)
                .map_err(|e| Error::io("writing database pages", e))?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes the root bucket and both meta pages; returns the output and a summary.
    /// The caller syncs the output.
    pub fn finish(mut self) -> Result<(W, WriteSummary)> {
        if self.open.is_some() {
            self.end_bucket()?;
        }
        // The root bucket: one tree over the top-level bucket entries.
        let top = std::mem::take(&mut self.top);
        let mut leaves = Level::default();
        let mut node = NodeBuf::default();
        let mut at = 0usize;
        for &(flags, klen, vlen) in &top.elems {
            let len = (klen + vlen) as usize;
            let add = LEAF_ELEMENT_SIZE + len;
            if !node.is_empty() && node.size() + add > self.fill_limit {
                let id = self.next_pgid;
                self.next_pgid += node.write_page(id, true, self.page_size, &mut self.buf);
                leaves.push(node.first_key(), id);
                node.clear();
            }
            node.elems.push((flags, klen, vlen));
            node.data.extend_from_slice(&top.data[at..at + len]);
            at += len;
        }
        let id = self.next_pgid;
        self.next_pgid += node.write_page(id, true, self.page_size, &mut self.buf);
        leaves.push(node.first_key(), id);
        let root = self.build_branches(leaves)?;
        self.out
            .write_all(&self.buf)
            .map_err(|e| Error::io("writing database pages", e))?;
        self.buf.clear();

        let hwm = self.next_pgid;
        let txid = self.prev_txid + 2;
        for page in 0..2u64 {
            let meta = Meta {
                page,
                magic: MAGIC,
                version: VERSION,
                page_size: self.page_size as u32,
                flags: 0,
                root,
                root_sequence: 0,
                freelist: PGID_NO_FREELIST,
                high_water_mark: hwm,
                // Page 1 carries the higher id: both are valid, bbolt picks page 1.
                txid: txid - 1 + page,
                checksum: 0,
            };
            self.out
                .seek(SeekFrom::Start(page * self.page_size as u64))
                .map_err(|e| Error::io("seeking to the meta pages", e))?;
            self.out
                .write_all(&meta.to_page())
                .map_err(|e| Error::io("writing the meta pages", e))?;
        }
        self.out
            .seek(SeekFrom::Start(hwm * self.page_size as u64))
            .map_err(|e| Error::io("seeking to the end of the database", e))?;
        self.out
            .flush()
            .map_err(|e| Error::io("flushing the database", e))?;
        let summary = WriteSummary {
            pages: hwm,
            size: hwm * self.page_size as u64,
            pages_written: hwm - self.first_pgid + 2,
            buckets: self.buckets,
            keys: self.keys,
            txid,
            root,
        };
        Ok((self.out, summary))
    }
}

fn check_bucket_value(name: &[u8], value: &[u8]) -> Result<()> {
    if value.len() < BUCKET_HEADER_SIZE {
        return Err(invalid(format!(
            "bucket {} has a {}-byte value, shorter than a bucket header",
            crate::display_bytes(name),
            value.len()
        )));
    }
    let root = u64::from_le_bytes(value[0..8].try_into().unwrap_or_default());
    if root == 0 && value.len() < BUCKET_HEADER_SIZE + PAGE_HEADER_SIZE {
        return Err(invalid(format!(
            "inline bucket {} has no page",
            crate::display_bytes(name)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bbolt::check::check;
    use crate::bbolt::{Db, MemorySource};
    use std::io::Cursor;

    type Kvs = Vec<(Vec<u8>, Vec<u8>)>;

    fn build(buckets: &[(&[u8], Kvs)], opts: WriterOptions) -> Vec<u8> {
        let mut w = BoltWriter::create(Cursor::new(Vec::new()), opts).unwrap();
        for (name, kvs) in buckets {
            w.begin_bucket(name, 7).unwrap();
            for (k, v) in kvs {
                w.put(k, v).unwrap();
            }
            w.end_bucket().unwrap();
        }
        let (out, summary) = w.finish().unwrap();
        let bytes = out.into_inner();
        assert_eq!(bytes.len() as u64, summary.size);
        bytes
    }

    fn read_back(bytes: Vec<u8>) -> Vec<(Vec<u8>, Kvs)> {
        let db = Db::open(Box::new(MemorySource::from_bytes(bytes))).unwrap();
        let mut out = Vec::new();
        for name in db.bucket_names().unwrap() {
            let b = db.bucket(&name).unwrap().unwrap();
            assert_eq!(b.sequence(), 7);
            let mut kvs = Vec::new();
            b.for_each(|e| {
                kvs.push((e.key.to_vec(), e.value.to_vec()));
                Ok(())
            })
            .unwrap();
            out.push((name, kvs));
        }
        out
    }

    fn kvs(n: usize, vlen: usize) -> Kvs {
        (0..n)
            .map(|i| {
                (
                    format!("key-{i:08}").into_bytes(),
                    vec![(i % 251) as u8; vlen + i % 7],
                )
            })
            .collect()
    }

    #[test]
    fn round_trips_small_large_and_empty_buckets() {
        let input: Vec<(&[u8], Kvs)> = vec![
            (b"alarm", vec![]),
            (b"big", kvs(20_000, 100)),
            (b"huge-values", kvs(20, 10_000)),
            (b"meta", kvs(3, 8)),
        ];
        for fill in [1.0, 0.5] {
            let bytes = build(
                &input,
                WriterOptions {
                    page_size: 4096,
                    fill_percent: fill,
                },
            );
            let report = check(
                &Db::open(Box::new(MemorySource::from_bytes(bytes.clone()))).unwrap(),
                &mut |_| {},
            );
            assert!(report.problems.is_empty(), "{:?}", report.problems);
            let back = read_back(bytes);
            assert_eq!(back.len(), input.len());
            for ((name, kvs), (bname, bkvs)) in input.iter().zip(&back) {
                assert_eq!(*name, bname.as_slice());
                assert_eq!(kvs, bkvs);
            }
        }
    }

    #[test]
    fn small_buckets_are_inline_like_bbolt() {
        let bytes = build(
            &[(b"a", kvs(2, 10)), (b"b", kvs(200, 10))],
            WriterOptions::default(),
        );
        let db = Db::open(Box::new(MemorySource::from_bytes(bytes))).unwrap();
        assert!(db.bucket(b"a").unwrap().unwrap().is_inline());
        assert!(!db.bucket(b"b").unwrap().unwrap().is_inline());
    }

    #[test]
    fn rejects_unsorted_input() {
        let mut w = BoltWriter::create(Cursor::new(Vec::new()), WriterOptions::default()).unwrap();
        w.begin_bucket(b"b", 0).unwrap();
        w.put(b"2", b"").unwrap();
        let err = w.put(b"1", b"").unwrap_err().to_string();
        assert!(err.contains("increasing"), "{err}");
        w.end_bucket().unwrap();
        assert!(w.begin_bucket(b"a", 0).is_err());
    }

    #[test]
    fn append_mode_carries_buckets_over() {
        let bytes = build(
            &[(b"keep", kvs(5_000, 50)), (b"meta", kvs(3, 8))],
            WriterOptions::default(),
        );
        let db = Db::open(Box::new(MemorySource::from_bytes(bytes.clone()))).unwrap();
        let meta = *db.meta();
        let root = db.root();
        let mut raw = Vec::new();
        root.for_each(|e| {
            raw.push((e.key.to_vec(), e.value.to_vec()));
            Ok(())
        })
        .unwrap();
        let mut w = BoltWriter::append(
            Cursor::new(bytes),
            WriterOptions::default(),
            meta.high_water_mark,
            meta.txid,
        )
        .unwrap();
        w.put_raw_bucket(b"keep", &raw[0].1).unwrap();
        w.begin_bucket(b"meta", 7).unwrap();
        w.put(b"consistent_index", &3u64.to_be_bytes()).unwrap();
        w.end_bucket().unwrap();
        let (out, summary) = w.finish().unwrap();
        assert!(summary.txid > meta.txid);
        let bytes = out.into_inner();
        let back = read_back(bytes.clone());
        assert_eq!(back[0].1, kvs(5_000, 50));
        assert_eq!(
            back[1].1,
            vec![(b"consistent_index".to_vec(), 3u64.to_be_bytes().to_vec())]
        );
        let db = Db::open(Box::new(MemorySource::from_bytes(bytes))).unwrap();
        let report = check(&db, &mut |_| {});
        // The replaced meta bucket's old pages are free (unreachable), nothing else.
        assert!(report.problems.is_empty(), "{:?}", report.problems);
    }
}
