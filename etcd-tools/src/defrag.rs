//! `salvor etcd defrag`: an offline defragmentation of a member's backend.
//!
//! The backend is rewritten compactly (every page filled, no free pages) into
//! `member/snap/db.defrag.part` next to it. The new file is then verified: it must pass
//! the structural and etcd checks and hold exactly the same buckets, keys and values
//! (the `snapshot status` hash, a CRC over every bucket's keys and values, must be
//! equal, and so must the key count). Only then is it renamed over `db`; the old file
//! is kept as `db.pre-defrag` when asked. The old backend is never modified.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use snapshot_format::bbolt::{Db, FileSource, SourceKind};
use snapshot_format::etcd::{OpenOptions, Snapshot, StatusOptions};
use snapshot_format::{Error, Result};

use crate::check::check_path;
use crate::dbedit::{DbEdits, KeyProgress, rebuild};
use crate::fsutil::{backend_path, part_path, rename_into_place, with_suffix};

/// What to defragment.
#[derive(Debug, Clone)]
pub struct DefragOptions {
    /// The data dir (`member/snap/db` inside), or a db file.
    pub path: PathBuf,
    /// Keep the old backend as `db.pre-defrag`.
    pub keep_old: bool,
    /// Only measure: write nothing, report what defrag would reclaim.
    pub dry_run: bool,
}

/// What a defrag did (or would do).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DefragReport {
    /// The backend file.
    pub db: PathBuf,
    /// Size before.
    pub size_before: u64,
    /// Size after (estimated from the pages in use with `--dry-run`).
    pub size_after: u64,
    /// Free pages before.
    pub free_pages_before: u64,
    /// Keys copied.
    pub keys: u64,
    /// The `snapshot status` hash of both files (equal, or defrag fails).
    pub hash: String,
    /// Where the old backend was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_old: Option<PathBuf>,
    /// Nothing was written.
    pub dry_run: bool,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Fails when a running etcd holds the backend's lock (bbolt takes an exclusive
/// `flock` on the file while open for writing).
pub fn ensure_not_in_use(db: &Path) -> Result<()> {
    let file = fs::File::open(db).map_err(|e| Error::io(format!("opening {}", db.display()), e))?;
    match file.try_lock_shared() {
        Ok(()) => {
            let _ = file.unlock();
            Ok(())
        }
        Err(fs::TryLockError::WouldBlock) => Err(Error::Invalid(format!(
            "{} is locked by a running process (etcd holds this lock while it runs); stop the \
             member first, or defragment it online with `etcdctl defrag`",
            db.display()
        ))),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(
            format!("checking the lock on {}", db.display()),
            e,
        )),
    }
}

fn open(db: &Path) -> Result<Snapshot> {
    Snapshot::open(
        db,
        &OpenOptions {
            source: SourceKind::Pread,
            ..Default::default()
        },
    )
}

/// Defragments the backend at `opts.path`. See the module docs.
pub fn defrag(opts: &DefragOptions, progress: KeyProgress<'_>) -> Result<DefragReport> {
    let started = Instant::now();
    let db = backend_path(&opts.path);
    ensure_not_in_use(&db)?;
    let before = open(&db)?;
    let status = before.status(&StatusOptions::default())?;
    let page_size = u64::from(before.db().page_size());
    let mut report = DefragReport {
        db: db.clone(),
        size_before: before.file_len(),
        size_after: (status.reachable_pages) * page_size,
        free_pages_before: status.free_pages,
        keys: status.total_key,
        hash: format!("{:08x}", status.hash),
        kept_old: None,
        dry_run: opts.dry_run,
        elapsed_ms: 0,
    };
    if opts.dry_run {
        report.elapsed_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    let part = part_path(&with_suffix(&db, ".defrag"));
    if part.exists() {
        fs::remove_file(&part)
            .map_err(|e| Error::io(format!("removing the leftover {}", part.display()), e))?;
    }
    let summary = rebuild(before.db(), &part, &DbEdits::default(), progress)?;
    drop(before);
    // Verify before anything is replaced.
    let verify = || -> Result<()> {
        let after = Snapshot::from_db(Db::open(Box::new(
            FileSource::open(&part, summary.size)
                .map_err(|e| Error::io(format!("reading {}", part.display()), e))?,
        ))?);
        let new_status = after.status(&StatusOptions::default())?;
        if new_status.hash != status.hash || new_status.total_key != status.total_key {
            return Err(Error::Invalid(format!(
                "the rewritten backend differs from the original (hash {:08x} vs {:08x}, {} vs \
                 {} keys); the original is untouched",
                new_status.hash, status.hash, new_status.total_key, status.total_key
            )));
        }
        if let Some(first) = check_path(&part).first_error() {
            return Err(Error::Invalid(format!(
                "the rewritten backend fails its check ({first}); the original is untouched"
            )));
        }
        Ok(())
    };
    if let Err(e) = verify() {
        let _ = fs::remove_file(&part);
        return Err(e);
    }
    if opts.keep_old {
        let old = with_suffix(&db, ".pre-defrag");
        fs::rename(&db, &old).map_err(|e| Error::io(format!("renaming {}", db.display()), e))?;
        report.kept_old = Some(old);
    }
    rename_into_place(&part, &db)?;
    report.size_after = summary.size;
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}
