//! Snapshots of a live cluster over gRPC.

use std::path::{Path, PathBuf};

use etcd_rpc::Client;
use tokio::io::BufWriter;

use crate::Error;

/// Streams `Maintenance.Snapshot` from the member the client reaches into
/// `path` and returns its size. The file is what `etcdctl snapshot save`
/// writes: the bbolt database followed by etcd's 32-byte SHA-256 trailer. It
/// is written to `<path>.part` and renamed into place once complete and synced.
pub async fn snapshot(client: &Client, path: &Path) -> Result<u64, Error> {
    let mut partial = PathBuf::from(path);
    partial.as_mut_os_string().push(".part");
    let result = write_snapshot(client, &partial).await;
    match result {
        Ok(bytes) => {
            tokio::fs::rename(&partial, path)
                .await
                .map_err(|source| Error::io("rename the snapshot to", path, source))?;
            Ok(bytes)
        }
        Err(error) => {
            // Best effort: the partial file is useless and the error says why.
            let _ = tokio::fs::remove_file(&partial).await;
            Err(error)
        }
    }
}

async fn write_snapshot(client: &Client, partial: &Path) -> Result<u64, Error> {
    let file = tokio::fs::File::create(partial)
        .await
        .map_err(|source| Error::io("create", partial, source))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let summary = client
        .snapshot_to(&mut out)
        .await
        .map_err(Error::rpc(format!(
            "streaming a snapshot into {}",
            partial.display()
        )))?;
    out.into_inner()
        .sync_all()
        .await
        .map_err(|source| Error::io("sync", partial, source))?;
    Ok(summary.bytes)
}
