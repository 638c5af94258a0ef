//! `etcdserverpb` messages of the `Maintenance` service (`AlarmRequest` and its
//! enumerations are [`snapshot_format::etcdserverpb`]'s).

use super::{AlarmType, ResponseHeader};

/// `AlarmMember`: one raised alarm.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AlarmMember {
    /// The member that raised the alarm.
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    /// The alarm, see [`AlarmType`].
    #[prost(enumeration = "AlarmType", tag = "2")]
    pub alarm: i32,
}

/// `AlarmResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AlarmResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Alarms raised (for `Get`) or affected (for the other actions).
    #[prost(message, repeated, tag = "2")]
    pub alarms: Vec<AlarmMember>,
}

/// `StatusRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct StatusRequest {}

/// `DowngradeInfo` (etcd 3.6+).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct DowngradeInfo {
    /// Whether a downgrade is in progress.
    #[prost(bool, tag = "1")]
    pub enabled: bool,
    /// The version being downgraded to.
    #[prost(string, tag = "2")]
    pub target_version: String,
}

/// `StatusResponse`: one member's view of itself.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusResponse {
    /// Response header; `member_id` says which member answered.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Server version, e.g. `3.4.23`.
    #[prost(string, tag = "2")]
    pub version: String,
    /// Backend file size in bytes.
    #[prost(int64, tag = "3")]
    pub db_size: i64,
    /// Member ID of the leader; 0 when there is none.
    #[prost(uint64, tag = "4")]
    pub leader: u64,
    /// Raft index of the member.
    #[prost(uint64, tag = "5")]
    pub raft_index: u64,
    /// Raft term of the member.
    #[prost(uint64, tag = "6")]
    pub raft_term: u64,
    /// Raft applied index of the member.
    #[prost(uint64, tag = "7")]
    pub raft_applied_index: u64,
    /// Errors the member reports (e.g. alarms).
    #[prost(string, repeated, tag = "8")]
    pub errors: Vec<String>,
    /// Bytes of the backend actually in use (the rest is free pages).
    #[prost(int64, tag = "9")]
    pub db_size_in_use: i64,
    /// Whether the member is a learner.
    #[prost(bool, tag = "10")]
    pub is_learner: bool,
    /// Storage version (etcd 3.6+).
    #[prost(string, tag = "11")]
    pub storage_version: String,
    /// Backend quota in bytes (etcd 3.6+).
    #[prost(int64, tag = "12")]
    pub db_size_quota: i64,
    /// Downgrade state (etcd 3.6+).
    #[prost(message, optional, tag = "13")]
    pub downgrade_info: Option<DowngradeInfo>,
}

/// `DefragmentRequest`: rewrite the member's backend to release free pages.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct DefragmentRequest {}

/// `DefragmentResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DefragmentResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `HashRequest`: hash of the whole backend (all buckets).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct HashRequest {}

/// `HashResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HashResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// CRC-32C of the backend.
    #[prost(uint32, tag = "2")]
    pub hash: u32,
}

/// `HashKVRequest`: hash of the key space up to a revision.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct HashKvRequest {
    /// Hash revisions up to this one; 0 for the newest.
    #[prost(int64, tag = "1")]
    pub revision: i64,
}

/// `HashKVResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HashKvResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// CRC-32C over the key space.
    #[prost(uint32, tag = "2")]
    pub hash: u32,
    /// The member's compaction revision when hashing.
    #[prost(int64, tag = "3")]
    pub compact_revision: i64,
    /// Revision up to which the hash was computed (etcd 3.6+).
    #[prost(int64, tag = "4")]
    pub hash_revision: i64,
}

/// `SnapshotRequest`: stream the member's backend.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct SnapshotRequest {}

/// `SnapshotResponse`: one chunk of the snapshot stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SnapshotResponse {
    /// Response header (the first message's carries the revision).
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Bytes still to come after this chunk.
    #[prost(uint64, tag = "2")]
    pub remaining_bytes: u64,
    /// The chunk. The last chunk is the SHA-256 of everything before it.
    #[prost(bytes = "vec", tag = "3")]
    pub blob: Vec<u8>,
    /// Storage version of the snapshot (etcd 3.6+).
    #[prost(string, tag = "4")]
    pub version: String,
}

/// `MoveLeaderRequest`: hand leadership to another member (send to the leader).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct MoveLeaderRequest {
    /// Member ID of the new leader.
    #[prost(uint64, tag = "1")]
    pub target_id: u64,
}

/// `MoveLeaderResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MoveLeaderResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
