//! etcd's data on top of bbolt: snapshot files, revision keys, buckets, status, hashes.

pub mod buckets;
pub mod check;
pub mod membership;
mod query;
pub mod revision;
mod snapshot;
mod status;

pub use buckets::{AlarmMember, AuthSummary, EtcdMeta, Lease, Member};
pub use query::{
    HashKv, HistoryEntry, KeyRevisions, KeySize, KeyStats, PrefixUsage, RangeEntry, RangeQuery,
    RangeResult, prefix_end,
};
pub use revision::{Revision, RevisionKey, RevisionKeyError, kv_user_key};
pub use snapshot::{
    OpenOptions, Snapshot, SnapshotKind, TRAILER_LEN, TrailerCheck, resolve_db_path,
};
pub use status::{BucketSummary, PrefixSummary, SnapshotStatus, StatusOptions, key_prefix};
