//! Errors of the storage layer, each naming the object or location.

use std::path::PathBuf;

/// What went wrong, with where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A URL or option the user gave is not usable.
    #[error("{0}")]
    Invalid(String),
    /// The object does not exist (the message names it).
    #[error("{0}")]
    NotFound(String),
    /// An object is larger than what the reader accepts for it.
    #[error("{location}: {size} bytes, more than the {limit} this kind of object may have")]
    TooLarge {
        /// Where.
        location: String,
        /// Its size.
        size: u64,
        /// What the reader accepts.
        limit: u64,
    },
    /// The object store failed (after its retries).
    #[error("storage {location}: {source}")]
    Store {
        /// The object's location or the storage URL.
        location: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// A store error at `location`.
    pub fn store(location: impl Into<String>, source: object_store::Error) -> Error {
        Error::Store {
            location: location.into(),
            source: Box::new(source),
        }
    }
}

/// Whether an object store error may go away by itself (not a missing object or
/// refused access), for callers that retry on their own.
pub fn is_transient(e: &object_store::Error) -> bool {
    !matches!(
        e,
        object_store::Error::NotFound { .. }
            | object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. }
            | object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. }
    )
}
