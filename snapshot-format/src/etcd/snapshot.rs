//! Opening etcd databases: `snapshot save` files (with their sha256 trailer), raw
//! `member/snap/db` files and data dirs.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::bbolt::{Bucket, Db, SourceKind};
use crate::error::{Error, Result};

/// Length of the sha256 trailer `snapshot save` appends.
pub const TRAILER_LEN: u64 = 32;

/// How to open a snapshot.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// How pages are read.
    pub source: SourceKind,
    /// Verify the sha256 trailer while opening (reads the whole file once more).
    pub verify_trailer: bool,
    /// Open even when the active meta page disagrees with the file (truncated file, root
    /// outside the tree area), for diagnosis: reads then report the damage page by page.
    pub unchecked_meta: bool,
}

/// What the path given turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SnapshotKind {
    /// A file written by `snapshot save`: the db followed by its sha256.
    SnapshotFile,
    /// A bare bbolt file (e.g. `member/snap/db`), no trailer.
    DbFile,
    /// A data dir; the db is `member/snap/db` inside it.
    DataDir,
}

/// Result of checking the sha256 trailer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrailerCheck {
    /// The digest stored in the file (hex).
    pub stored: String,
    /// The digest of the content (hex).
    pub computed: String,
    /// True when they match.
    pub matches: bool,
}

/// An open etcd database.
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    db_path: PathBuf,
    kind: SnapshotKind,
    file_len: u64,
    trailer: Option<[u8; 32]>,
    db: Db,
}

/// Finds the db file inside a data dir (`DIR/member/snap/db`, or `DIR/snap/db` when
/// given the `member` dir, or `DIR/db` when given the `snap` dir).
pub fn resolve_db_path(dir: &Path) -> Result<PathBuf> {
    let candidates = [
        dir.join("member/snap/db"),
        dir.join("snap/db"),
        dir.join("db"),
    ];
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .ok_or_else(|| {
            Error::BadPath(format!(
                "{} is a directory but not an etcd data dir: none of member/snap/db, snap/db, db \
             exists inside it",
                dir.display()
            ))
        })
}

impl Snapshot {
    /// Opens a snapshot file, a raw db file or a data dir.
    pub fn open(path: &Path, opts: &OpenOptions) -> Result<Snapshot> {
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        let (db_path, dir) = if meta.is_dir() {
            (resolve_db_path(path)?, true)
        } else {
            (path.to_path_buf(), false)
        };
        let file_len = std::fs::metadata(&db_path)
            .map_err(|e| Error::io(format!("cannot open {}", db_path.display()), e))?
            .len();
        // etcd's own rule (snapshot restore): a trailer is present when size % 512 == 32.
        let has_trailer = !dir && file_len % 512 == TRAILER_LEN;
        let (kind, db_len, trailer) = if has_trailer {
            let mut t = [0u8; 32];
            let mut f = File::open(&db_path)
                .map_err(|e| Error::io(format!("cannot open {}", db_path.display()), e))?;
            std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(file_len - TRAILER_LEN))
                .and_then(|_| f.read_exact(&mut t))
                .map_err(|e| {
                    Error::io(format!("cannot read trailer of {}", db_path.display()), e)
                })?;
            (SnapshotKind::SnapshotFile, file_len - TRAILER_LEN, Some(t))
        } else if dir {
            (SnapshotKind::DataDir, file_len, None)
        } else {
            (SnapshotKind::DbFile, file_len, None)
        };
        let source = opts
            .source
            .open(&db_path, db_len)
            .map_err(|e| Error::io(format!("cannot read {}", db_path.display()), e))?;
        let db = if opts.unchecked_meta {
            Db::open_unchecked(source)?
        } else {
            Db::open(source)?
        };
        let snap = Snapshot {
            path: path.to_path_buf(),
            db_path,
            kind,
            file_len,
            trailer,
            db,
        };
        if opts.verify_trailer {
            let check = snap.verify_trailer()?;
            if let Some(c) = check.filter(|c| !c.matches) {
                return Err(Error::TrailerMismatch {
                    expected: c.stored,
                    actual: c.computed,
                });
            }
        }
        Ok(snap)
    }

    /// Wraps an already open database (bytes in memory, a test's or a fuzzer's input): a
    /// bare db, no trailer, no path.
    pub fn from_db(db: Db) -> Snapshot {
        Snapshot {
            path: PathBuf::from("<memory>"),
            db_path: PathBuf::from("<memory>"),
            kind: SnapshotKind::DbFile,
            file_len: db.source_len(),
            trailer: None,
            db,
        }
    }

    /// The path given to [`Snapshot::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The db file actually read.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// What kind of input this is.
    pub fn kind(&self) -> SnapshotKind {
        self.kind
    }

    /// Size of the file on disk, trailer included.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// The stored sha256 trailer, if the file has one.
    pub fn trailer(&self) -> Option<&[u8; 32]> {
        self.trailer.as_ref()
    }

    /// The bbolt database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Recomputes the sha256 of the content and compares it with the trailer
    /// (`None` when the file has no trailer).
    pub fn verify_trailer(&self) -> Result<Option<TrailerCheck>> {
        let Some(stored) = self.trailer else {
            return Ok(None);
        };
        let ctx = || format!("cannot read {}", self.db_path.display());
        let file = File::open(&self.db_path).map_err(|e| Error::io(ctx(), e))?;
        let mut reader = file.take(self.file_len - TRAILER_LEN);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader.read(&mut buf).map_err(|e| Error::io(ctx(), e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let computed = hex::encode(hasher.finalize());
        let stored = hex::encode(stored);
        Ok(Some(TrailerCheck {
            matches: computed == stored,
            stored,
            computed,
        }))
    }

    /// A top-level bucket that must exist.
    pub fn required_bucket(&self, name: &str) -> Result<Bucket<'_>> {
        self.db
            .bucket(name.as_bytes())?
            .ok_or_else(|| Error::MissingBucket(name.to_string()))
    }

    /// The `key` bucket.
    pub fn key_bucket(&self) -> Result<Bucket<'_>> {
        self.required_bucket(super::buckets::KEY)
    }
}
