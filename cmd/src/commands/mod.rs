//! One module per command group.

pub mod api_restore;
pub mod backup;
pub mod check;
pub mod conn;
pub mod connect;
pub mod diagnose;
pub mod import;
pub mod jobmetrics;
pub mod objects;
pub mod progress;
pub mod recover;
pub mod recovery;
pub mod restore;
pub mod save;
pub mod server;
pub mod snapshot;
pub mod wal;

use snapshot_format::Error as FormatError;

/// What the user can do about an error, when there is something to say.
pub fn hint(e: &anyhow::Error) -> Option<&'static str> {
    let fe = e.chain().find_map(|c| c.downcast_ref::<FormatError>())?;
    Some(match fe {
        FormatError::Corrupt { .. } => {
            "the file is damaged at the place named above; do not restore from it. Take a new \
             snapshot from a healthy member (`etcdctl snapshot save`), or keep this file for \
             salvage and diagnosis"
        }
        FormatError::NotBbolt(_) => {
            "give a file written by `etcdctl snapshot save`, a member's `member/snap/db`, or an \
             etcd data dir"
        }
        FormatError::TrailerMismatch { .. } => {
            "the snapshot changed after it was saved (truncated copy, partial download, disk \
             error); copy it again from its source"
        }
        FormatError::Compacted { .. } => {
            "history below the compacted revision is gone; ask for a newer --rev"
        }
        FormatError::FutureRevision { .. } => "ask for a revision at or below the newest one",
        FormatError::MissingBucket(_) => {
            "this bbolt file is not an etcd v3 backend (or lost its buckets)"
        }
        FormatError::BadPath(_) | FormatError::Invalid(_) | FormatError::Io { .. } => return None,
    })
}
