//! Pure, synchronous readers and writers for etcd's on-disk formats.
//!
//! - [`bbolt`]: the B+tree file under etcd's backend (`member/snap/db`, snapshot files).
//! - [`etcd`]: etcd's buckets on top of it: revision keys, `KeyValue` records, meta,
//!   members, leases, alarms, auth; snapshot files with their sha256 trailer; the
//!   `snapshot status` hash and `HashKV`.
//! - [`mvcc`] and [`authpb`]: the `mvccpb` and `authpb` record types, shared with the
//!   gRPC client so records read from files and received over the wire are one type.
//! - [`etcdserverpb`]: the etcd v3 request messages, as the WAL carries them in raft
//!   entries and the gRPC client sends them.
//!
//! No network, no async runtime.
//!
//! ```no_run
//! use snapshot_format::etcd::{OpenOptions, Snapshot};
//! let snap = Snapshot::open("snapshot.db".as_ref(), &OpenOptions::default())?;
//! let status = snap.status(&Default::default())?;
//! println!("hash {:08x} revision {} keys {}", status.hash, status.revision, status.total_key);
//! # Ok::<(), snapshot_format::Error>(())
//! ```

pub mod authpb;
pub mod bbolt;
mod error;
pub mod etcd;
pub mod etcdserverpb;
pub mod k8s;
pub mod mvcc;
pub mod wal;

pub use error::{Error, Location, Result};

/// Renders bytes for humans: the UTF-8 text when printable, else escaped.
pub fn display_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) if !s.chars().any(char::is_control) => format!("{s:?}"),
        _ => format!("\"{}\"", bytes.escape_ascii()),
    }
}
