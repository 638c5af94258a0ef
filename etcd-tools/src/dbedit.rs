//! Writing a changed copy of an etcd backend: whole buckets replaced, keys appended.
//!
//! Two ways, same result for etcd:
//! - [`patch`]: the output is a byte copy of the source, extended copy-on-write like a
//!   bbolt commit: replaced buckets are written after the old high-water mark and new
//!   meta pages switch to the new root. Cost: one copy of the file (in the kernel) plus a
//!   few pages. Used by `snapshot restore`.
//! - [`rebuild`]: every bucket is read and written again, compactly, by the bulk writer.
//!   Used by `defrag`, and by restore when keys are appended (`--bump-revision`).
//!
//! Neither edits its source: they write a new file the caller names.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::BufWriter;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use snapshot_format::bbolt::{BoltWriter, Db, WriteSummary, WriterOptions};
use snapshot_format::{Error, Result};

/// Sorted key/value pairs of one bucket.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Changes to make while copying a backend.
#[derive(Debug, Clone, Default)]
pub struct DbEdits {
    /// Buckets whose whole content is replaced (created when missing), keys sorted.
    pub replace: BTreeMap<Vec<u8>, Entries>,
    /// Keys appended after the last key of a bucket (must sort after it).
    pub append: BTreeMap<Vec<u8>, Entries>,
}

impl DbEdits {
    /// Replaces bucket `name` with `entries` (sorted here).
    pub fn replace_bucket(&mut self, name: &[u8], mut entries: Entries) {
        entries.sort();
        entries.dedup_by(|a, b| a.0 == b.0);
        self.replace.insert(name.to_vec(), entries);
    }
}

/// Top-level buckets of `db` with their raw bucket values, in order.
fn top_buckets(db: &Db) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    db.root().for_each(|e| {
        if !e.is_bucket() {
            return Err(Error::Invalid(format!(
                "the root of the database holds a plain key {}; not an etcd backend",
                snapshot_format::display_bytes(e.key)
            )));
        }
        out.push((e.key.to_vec(), e.value.to_vec()));
        Ok(())
    })?;
    Ok(out)
}

/// Extends `out` (a byte copy of `db`'s file, opened read-write) copy-on-write with
/// `edits`. `edits.append` must be empty (use [`rebuild`]).
pub fn patch(db: &Db, out: File, edits: &DbEdits) -> Result<WriteSummary> {
    if !edits.append.is_empty() {
        return Err(Error::Invalid(
            "patch cannot append keys; rebuild the database instead".into(),
        ));
    }
    let meta = db.meta();
    let options = WriterOptions {
        page_size: db.page_size(),
        ..Default::default()
    };
    let mut w = BoltWriter::append(
        BufWriter::with_capacity(1 << 20, out),
        options,
        meta.high_water_mark,
        meta.txid,
    )?;
    let existing = top_buckets(db)?;
    let mut names: Vec<&[u8]> = existing.iter().map(|(n, _)| n.as_slice()).collect();
    names.extend(edits.replace.keys().map(Vec::as_slice));
    names.sort();
    names.dedup();
    for name in names {
        if let Some(entries) = edits.replace.get(name) {
            let sequence = db.bucket(name)?.map_or(0, |b| b.sequence());
            w.begin_bucket(name, sequence)?;
            for (k, v) in entries {
                w.put(k, v)?;
            }
            w.end_bucket()?;
        } else if let Some((_, value)) = existing.iter().find(|(n, _)| n == name) {
            w.put_raw_bucket(name, value)?;
        }
    }
    let (buf, summary) = w.finish()?;
    let file = buf
        .into_inner()
        .map_err(|e| Error::io("flushing the database", e.into_error()))?;
    file.sync_all()
        .map_err(|e| Error::io("syncing the database", e))?;
    Ok(summary)
}

/// Progress of a rebuild: keys copied so far.
pub type KeyProgress<'a> = &'a (dyn Fn(u64) + Sync);

/// Writes a compact copy of `db` with `edits` to a new file at `path` (which must not
/// exist), fsynced.
pub fn rebuild(
    db: &Db,
    path: &Path,
    edits: &DbEdits,
    progress: KeyProgress<'_>,
) -> Result<WriteSummary> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    let options = WriterOptions {
        page_size: db.page_size(),
        ..Default::default()
    };
    let mut w = BoltWriter::create(BufWriter::with_capacity(1 << 20, file), options)?;
    let existing = top_buckets(db)?;
    let mut names: Vec<&[u8]> = existing.iter().map(|(n, _)| n.as_slice()).collect();
    names.extend(edits.replace.keys().map(Vec::as_slice));
    names.extend(edits.append.keys().map(Vec::as_slice));
    names.sort();
    names.dedup();
    let mut copied = 0u64;
    for name in names {
        let bucket = db.bucket(name)?;
        let sequence = bucket.as_ref().map_or(0, |b| b.sequence());
        w.begin_bucket(name, sequence)?;
        if let Some(entries) = edits.replace.get(name) {
            for (k, v) in entries {
                w.put(k, v)?;
            }
        } else if let Some(bucket) = bucket {
            bucket.for_each(|e| {
                if e.is_bucket() {
                    return Err(Error::Invalid(format!(
                        "bucket {} holds a nested bucket {}; etcd backends have none",
                        snapshot_format::display_bytes(name),
                        snapshot_format::display_bytes(e.key)
                    )));
                }
                w.put(e.key, e.value)?;
                copied += 1;
                if copied.is_multiple_of(65_536) {
                    progress(copied);
                }
                Ok(())
            })?;
        }
        if let Some(extra) = edits.append.get(name) {
            for (k, v) in extra {
                w.put(k, v)?;
            }
        }
        w.end_bucket()?;
    }
    progress(copied);
    let (buf, summary) = w.finish()?;
    let file = buf
        .into_inner()
        .map_err(|e| Error::io("flushing the database", e.into_error()))?;
    file.sync_all()
        .map_err(|e| Error::io(format!("syncing {}", path.display()), e))?;
    Ok(summary)
}
