//! Where snapshots are kept: a local file, or an object in S3 (`s3://bucket/key`).
//! `snapshot save` writes either (see [`crate::save`]); the commands that read files
//! (`snapshot restore s3://…`) [`fetch`] an object into a local file first.
//!
//! A fetched object is streamed into a new private file; a transfer that ends early, or runs
//! past the size the store announced, is an error and the partial file is removed.
//! The snapshot's own sha256 trailer is checked afterwards by whoever reads the file.

use std::path::{Path, PathBuf};

use object_storage::{Storage, StorageOptions, StorageUrl};
use tokio::io::AsyncWriteExt;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The store failed or the object is missing.
    #[error(transparent)]
    Storage(#[from] object_storage::Error),
    /// The local file failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A snapshot's place: a local file, or an object in object storage.
#[derive(Debug, Clone)]
pub enum SnapshotLocation {
    /// A local file.
    File(PathBuf),
    /// An object in object storage.
    Object {
        /// The store (its URL is the object's directory).
        storage: Storage,
        /// The object's name in it.
        key: String,
    },
}

impl SnapshotLocation {
    /// A path, `file:///path` or `s3://bucket/key` (S3 settings from `options` and the
    /// `AWS_*` variables).
    pub fn parse(
        text: &str,
        options: &StorageOptions,
    ) -> Result<SnapshotLocation, object_storage::Error> {
        if !text.contains("://") {
            return Ok(SnapshotLocation::File(PathBuf::from(text)));
        }
        Ok(match StorageUrl::parse_object(text)? {
            (StorageUrl::Dir(dir), key) => SnapshotLocation::File(dir.join(key)),
            (url, key) => SnapshotLocation::Object {
                storage: Storage::open(&url, options)?,
                key,
            },
        })
    }

    /// For messages: the path or the object's URL.
    pub fn display(&self) -> String {
        match self {
            SnapshotLocation::File(p) => p.display().to_string(),
            SnapshotLocation::Object { storage, key } => storage.location(key),
        }
    }
}

/// Downloads `key` into `dest`, which must not exist; returns the bytes written.
/// `progress` gets the bytes so far and the object's size.
pub async fn fetch(
    storage: &Storage,
    key: &str,
    dest: &Path,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Result<u64, FetchError> {
    let mut download = storage.download(key).await?;
    let io = |context: String| move |source| FetchError::Io { context, source };
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .await
        .map_err(io(format!("creating {}", dest.display())))?;
    let result = async {
        let mut written = 0u64;
        while let Some(chunk) = download.next_chunk().await? {
            file.write_all(&chunk)
                .await
                .map_err(io(format!("writing {}", dest.display())))?;
            written += chunk.len() as u64;
            progress(written, download.size());
        }
        file.flush()
            .await
            .map_err(io(format!("writing {}", dest.display())))?;
        Ok(written)
    }
    .await;
    if result.is_err() {
        drop(file);
        let _ = tokio::fs::remove_file(dest).await;
    }
    result
}
