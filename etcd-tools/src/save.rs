//! `salvor etcd snapshot save`: stream a member's backend into a snapshot file or an
//! object in S3, verified.
//!
//! etcd sends the backend followed by the SHA-256 of everything before it. The stream
//! is hashed as it is written; nothing appears under the destination name unless the
//! hash matches, so an interrupted or corrupted download never looks complete:
//! - a file is written to `DEST.part`, fsynced and renamed to `DEST` (and the directory
//!   synced), then read back for its status;
//! - an object is sent as a multipart upload that is completed only after the hash
//!   matched (and aborted otherwise), then its size is checked with the store. No local
//!   disk is needed, which matters on a control-plane node whose disk is full.
//!
//! With several endpoints, the next is tried when one fails.

use std::path::{Path, PathBuf};
use std::time::Instant;

use etcd_rpc::{Client, ConnectOptions};
use object_storage::{Storage, Upload};

pub use crate::remote::SnapshotLocation;
use serde::Serialize;
use sha2::{Digest, Sha256};
use snapshot_format::etcd::{OpenOptions, Snapshot, StatusOptions};
use tokio::io::AsyncWriteExt;

/// Why a save failed.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    /// Every endpoint failed; each error is listed.
    #[error("no endpoint produced a snapshot: {0}")]
    AllEndpointsFailed(String),
    /// The stream's SHA-256 did not match its content.
    #[error(
        "the snapshot from {endpoint} is corrupt: its sha256 trailer is {expected} but the \
         content hashes to {actual}"
    )]
    HashMismatch {
        /// Endpoint.
        endpoint: String,
        /// Trailer sent by etcd.
        expected: String,
        /// Hash of the content received.
        actual: String,
    },
    /// A local file error.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The destination is not usable, or object storage failed.
    #[error(transparent)]
    Storage(#[from] object_storage::Error),
    /// The store holds a different size than was sent.
    #[error("{location}: the store reports {stored} bytes after {sent} were sent")]
    SizeMismatch {
        /// The object.
        location: String,
        /// Bytes sent.
        sent: u64,
        /// Bytes the store reports.
        stored: u64,
    },
    /// Reading back the saved file failed.
    #[error("the saved snapshot does not read back: {0}")]
    ReadBack(#[from] snapshot_format::Error),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SaveError {
    let context = context.into();
    move |source| SaveError::Io { context, source }
}

/// What was saved.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SaveReport {
    /// The snapshot file, or the object's URL.
    pub path: String,
    /// The endpoint that sent it.
    pub endpoint: String,
    /// Bytes written (the sha256 trailer included).
    pub bytes: u64,
    /// The verified sha256 of the backend (hex).
    pub sha256: String,
    /// Revision of the snapshot (read back from a file; not known for an object, which
    /// is never read back).
    pub revision: Option<i64>,
    /// Keys across all buckets (as `snapshot status`; a file only).
    pub total_key: Option<u64>,
    /// `snapshot status` hash (a file only).
    pub hash: Option<u32>,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Progress: bytes received, and the total when etcd announced it.
pub type StreamProgress<'a> = &'a (dyn Fn(u64, Option<u64>) + Sync);

/// Saves a snapshot from the first endpoint that completes one. See the module docs.
pub async fn save(
    endpoints: &[String],
    options: &ConnectOptions,
    dest: &SnapshotLocation,
    progress: StreamProgress<'_>,
) -> Result<SaveReport, SaveError> {
    let started = Instant::now();
    let mut failures = Vec::new();
    for endpoint in endpoints {
        let mut sink = Sink::open(dest).await?;
        match save_from(endpoint, options, &mut sink, progress).await {
            Ok((bytes, sha256)) => {
                sink.commit().await?;
                let (revision, total_key, hash) = match dest {
                    SnapshotLocation::File(path) => {
                        let snap = Snapshot::open(path, &OpenOptions::default())?;
                        let status = snap.status(&StatusOptions::default())?;
                        (
                            Some(status.revision),
                            Some(status.total_key),
                            Some(status.hash),
                        )
                    }
                    SnapshotLocation::Object { .. } => (None, None, None),
                };
                return Ok(SaveReport {
                    path: dest.display(),
                    endpoint: endpoint.clone(),
                    bytes,
                    sha256,
                    revision,
                    total_key,
                    hash,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                });
            }
            Err(e) => {
                sink.discard().await;
                // Local or storage failures are not the endpoint's fault.
                if matches!(e, SaveError::Io { .. } | SaveError::Storage(_)) {
                    return Err(e);
                }
                tracing::warn!(%endpoint, error = %e, "snapshot failed; trying the next endpoint");
                failures.push(format!("{endpoint}: {e}"));
            }
        }
    }
    Err(SaveError::AllEndpointsFailed(failures.join("; ")))
}

/// Where the bytes go while they arrive.
enum Sink {
    File {
        file: tokio::fs::File,
        part: PathBuf,
        path: PathBuf,
    },
    Object {
        upload: Upload,
        storage: Storage,
        key: String,
    },
}

impl Sink {
    async fn open(dest: &SnapshotLocation) -> Result<Sink, SaveError> {
        match dest {
            SnapshotLocation::File(path) => {
                let part = crate::fsutil::part_path(path);
                let file = tokio::fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&part)
                    .await
                    .map_err(io(format!("creating {}", part.display())))?;
                Ok(Sink::File {
                    file,
                    part,
                    path: path.clone(),
                })
            }
            SnapshotLocation::Object { storage, key } => Ok(Sink::Object {
                upload: storage.upload(key).await?,
                storage: storage.clone(),
                key: key.clone(),
            }),
        }
    }

    async fn write(&mut self, chunk: &[u8]) -> Result<(), SaveError> {
        match self {
            Sink::File { file, part, .. } => file
                .write_all(chunk)
                .await
                .map_err(io(format!("writing {}", part.display()))),
            Sink::Object { upload, .. } => Ok(upload.write(chunk).await?),
        }
    }

    /// Makes the verified snapshot visible under its name, durably.
    async fn commit(self) -> Result<(), SaveError> {
        match self {
            Sink::File {
                mut file,
                part,
                path,
            } => {
                file.flush()
                    .await
                    .map_err(io(format!("writing {}", part.display())))?;
                file.sync_all()
                    .await
                    .map_err(io(format!("syncing {}", part.display())))?;
                drop(file);
                let context = format!("renaming {} to {}", part.display(), path.display());
                tokio::task::spawn_blocking(move || {
                    std::fs::rename(&part, &path)?;
                    let dir = path
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."));
                    std::fs::File::open(dir)?.sync_all()
                })
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
                .map_err(io(context))
            }
            Sink::Object {
                upload,
                storage,
                key,
            } => {
                let sent = upload.finish().await?;
                let stored = storage.size(&key).await?.unwrap_or(0);
                if stored != sent {
                    return Err(SaveError::SizeMismatch {
                        location: storage.location(&key),
                        sent,
                        stored,
                    });
                }
                Ok(())
            }
        }
    }

    /// Leaves nothing under the destination name.
    async fn discard(self) {
        match self {
            Sink::File { file, part, .. } => {
                drop(file);
                let _ = tokio::fs::remove_file(&part).await;
            }
            Sink::Object { upload, .. } => upload.abort().await,
        }
    }
}

/// Streams one member's snapshot into the sink, verified.
async fn save_from(
    endpoint: &str,
    options: &ConnectOptions,
    sink: &mut Sink,
    progress: StreamProgress<'_>,
) -> Result<(u64, String), SaveError> {
    let rpc = |e: etcd_rpc::Error| SaveError::AllEndpointsFailed(format!("{e:#}"));
    let client = Client::connect(&[endpoint.to_string()], options.clone())
        .await
        .map_err(rpc)?;
    let mut stream = client.snapshot().await.map_err(rpc)?;
    let mut hasher = Sha256::new();
    // The last 32 bytes seen, which are the trailer once the stream ends.
    let mut tail: Vec<u8> = Vec::with_capacity(64);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.chunk().await.map_err(rpc)? {
        sink.write(&chunk).await?;
        bytes += chunk.len() as u64;
        tail.extend_from_slice(&chunk);
        if tail.len() > 32 {
            let cut = tail.len() - 32;
            hasher.update(&tail[..cut]);
            tail.drain(..cut);
        }
        let total = stream.remaining_bytes().map(|r| bytes + r);
        progress(bytes, total);
    }
    let actual = hasher.finalize();
    if tail.len() != 32 || tail.as_slice() != actual.as_slice() {
        return Err(SaveError::HashMismatch {
            endpoint: endpoint.to_string(),
            expected: hex::encode(&tail),
            actual: hex::encode(actual),
        });
    }
    Ok((bytes, hex::encode(actual)))
}
