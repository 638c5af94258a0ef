//! `salvor etcd snapshot save`: stream a member's backend into a snapshot file, verified.
//!
//! etcd sends the backend followed by the SHA-256 of everything before it. The stream
//! is written to `DEST.part` while it is hashed; only when the hash matches is the file
//! fsynced and renamed to `DEST` (and the directory synced), so an interrupted or
//! corrupted download never leaves a file under the destination name. With several
//! endpoints, the next is tried when one fails.

use std::path::{Path, PathBuf};
use std::time::Instant;

use etcd_rpc::{Client, ConnectOptions};
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
    /// The destination is not supported.
    #[error("{0}")]
    Destination(String),
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
    /// The snapshot file.
    pub path: PathBuf,
    /// The endpoint that sent it.
    pub endpoint: String,
    /// Bytes written (the sha256 trailer included).
    pub bytes: u64,
    /// The verified sha256 of the backend (hex).
    pub sha256: String,
    /// Revision of the snapshot (read back from the file).
    pub revision: i64,
    /// Keys across all buckets (as `snapshot status`).
    pub total_key: u64,
    /// `snapshot status` hash.
    pub hash: u32,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
}

/// Progress: bytes received, and the total when etcd announced it.
pub type StreamProgress<'a> = &'a (dyn Fn(u64, Option<u64>) + Sync);

/// Saves a snapshot from the first endpoint that completes one. See the module docs.
pub async fn save(
    endpoints: &[String],
    options: &ConnectOptions,
    dest: &Path,
    progress: StreamProgress<'_>,
) -> Result<SaveReport, SaveError> {
    let text = dest.to_string_lossy();
    if text.contains("://") {
        return Err(SaveError::Destination(format!(
            "{text}: only local paths are supported as snapshot destinations so far (object \
             storage comes with `salvor backup`); save to a file and upload it"
        )));
    }
    let started = Instant::now();
    let part = crate::fsutil::part_path(dest);
    let mut failures = Vec::new();
    for endpoint in endpoints {
        match save_from(endpoint, options, &part, progress).await {
            Ok((bytes, sha256)) => {
                let dir = dest
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                tokio::fs::rename(&part, dest).await.map_err(io(format!(
                    "renaming {} to {}",
                    part.display(),
                    dest.display()
                )))?;
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(io(format!("syncing {}", dir.display())))?;
                let snap = Snapshot::open(dest, &OpenOptions::default())?;
                let status = snap.status(&StatusOptions::default())?;
                return Ok(SaveReport {
                    path: dest.to_path_buf(),
                    endpoint: endpoint.clone(),
                    bytes,
                    sha256,
                    revision: status.revision,
                    total_key: status.total_key,
                    hash: status.hash,
                    elapsed_ms: started.elapsed().as_millis() as u64,
                });
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                if matches!(e, SaveError::Io { .. }) {
                    return Err(e);
                }
                tracing::warn!(%endpoint, error = %e, "snapshot failed; trying the next endpoint");
                failures.push(format!("{endpoint}: {e}"));
            }
        }
    }
    Err(SaveError::AllEndpointsFailed(failures.join("; ")))
}

/// Streams one member's snapshot into `part`, verified and fsynced.
async fn save_from(
    endpoint: &str,
    options: &ConnectOptions,
    part: &Path,
    progress: StreamProgress<'_>,
) -> Result<(u64, String), SaveError> {
    let rpc = |e: etcd_rpc::Error| SaveError::AllEndpointsFailed(format!("{e:#}"));
    let client = Client::connect(&[endpoint.to_string()], options.clone())
        .await
        .map_err(rpc)?;
    let mut stream = client.snapshot().await.map_err(rpc)?;
    let mut file = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(part)
        .await
        .map_err(io(format!("creating {}", part.display())))?;
    let mut hasher = Sha256::new();
    // The last 32 bytes seen, which are the trailer once the stream ends.
    let mut tail: Vec<u8> = Vec::with_capacity(64);
    let mut bytes = 0u64;
    while let Some(chunk) = stream.chunk().await.map_err(rpc)? {
        file.write_all(&chunk)
            .await
            .map_err(io(format!("writing {}", part.display())))?;
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
    file.flush()
        .await
        .map_err(io(format!("writing {}", part.display())))?;
    file.sync_all()
        .await
        .map_err(io(format!("syncing {}", part.display())))?;
    Ok((bytes, hex::encode(actual)))
}
