//! The one error type of this crate: every failure names where it happened.

use std::fmt;
use std::io;

/// Where in a file a problem was found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// bbolt page id, when the problem is inside a page.
    pub page: Option<u64>,
    /// Absolute byte offset in the file.
    pub offset: Option<u64>,
    /// The bucket being read, when known.
    pub bucket: Option<Vec<u8>>,
    /// The key being read, when known.
    pub key: Option<Vec<u8>>,
}

impl Location {
    /// A location inside page `page` at absolute byte `offset`.
    pub fn page(page: u64, offset: u64) -> Self {
        Location {
            page: Some(page),
            offset: Some(offset),
            ..Default::default()
        }
    }

    /// A location given only by its absolute byte offset.
    pub fn offset(offset: u64) -> Self {
        Location {
            offset: Some(offset),
            ..Default::default()
        }
    }

    /// This location, inside bucket `name`.
    pub fn in_bucket(mut self, name: &[u8]) -> Self {
        self.bucket = Some(name.to_vec());
        self
    }

    /// This location, at key `key`.
    pub fn at_key(mut self, key: &[u8]) -> Self {
        self.key = Some(key.to_vec());
        self
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(p) = self.page {
            parts.push(format!("page {p}"));
        }
        if let Some(o) = self.offset {
            parts.push(format!("offset {o} (0x{o:x})"));
        }
        if let Some(b) = &self.bucket {
            parts.push(format!("bucket {:?}", String::from_utf8_lossy(b)));
        }
        if let Some(k) = &self.key {
            parts.push(format!("key {}", crate::display_bytes(k)));
        }
        if parts.is_empty() {
            f.write_str("unknown location")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// Errors from reading or writing etcd's on-disk formats.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on the file itself.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The file is damaged (or not the expected format) at a known place.
    #[error("corrupt data at {location}: {problem}")]
    Corrupt {
        /// Where.
        location: Location,
        /// What is wrong, in words.
        problem: String,
    },
    /// The file is not a bbolt database at all.
    #[error("not a bbolt database: {0}")]
    NotBbolt(String),
    /// The snapshot's sha256 trailer does not match its content.
    #[error(
        "sha256 trailer mismatch: the file says {expected} but its content hashes to {actual}; \
         the snapshot was truncated or modified after it was saved"
    )]
    TrailerMismatch {
        /// Hex digest stored in the trailer.
        expected: String,
        /// Hex digest of the content.
        actual: String,
    },
    /// A bucket the operation needs is missing.
    #[error("bucket {0:?} not found: this is not an etcd v3 database, or it is damaged")]
    MissingBucket(String),
    /// The requested revision has been compacted away.
    #[error("required revision {requested} has been compacted (compacted revision is {compacted})")]
    Compacted {
        /// Requested revision.
        requested: i64,
        /// The compacted revision.
        compacted: i64,
    },
    /// The requested revision is newer than the newest in the file.
    #[error("required revision {requested} is a future revision (latest is {current})")]
    FutureRevision {
        /// Requested revision.
        requested: i64,
        /// Newest revision present.
        current: i64,
    },
    /// The path given is neither a snapshot file nor an etcd data dir.
    #[error("{0}")]
    BadPath(String),
    /// An argument or input given to a writer is not valid (unsorted keys, a malformed
    /// `--initial-cluster`, …); the message says which and why.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// A corruption error at `location`.
    pub fn corrupt(location: Location, problem: impl Into<String>) -> Self {
        Error::Corrupt {
            location,
            problem: problem.into(),
        }
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// True when the error means the file content is damaged (as opposed to I/O or usage).
    pub fn is_corruption(&self) -> bool {
        matches!(
            self,
            Error::Corrupt { .. } | Error::NotBbolt(_) | Error::TrailerMismatch { .. }
        )
    }
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
