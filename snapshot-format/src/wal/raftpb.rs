//! The raft-level records inside WAL and `.snap` files: `walpb.Snapshot`,
//! `raftpb.HardState`, `raftpb.ConfState`, `raftpb.SnapshotMetadata`,
//! `raftpb.Snapshot`, `raftpb.ConfChange(V2)`, `etcdserverpb.Metadata` and
//! `snappb.Snapshot`, with field numbers from etcd 3.4's `.proto` files.
//!
//! `walpb.Record` and `raftpb.Entry` are decoded by hand (see [`super::record`]) because
//! they are on the hot path and their data should not be copied twice.

use serde::Serialize;

/// `walpb.Snapshot`: a snapshot marker in the WAL (record type 5).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalSnapshot {
    /// Raft index of the snapshot.
    #[prost(uint64, tag = "1")]
    pub index: u64,
    /// Raft term of the snapshot.
    #[prost(uint64, tag = "2")]
    pub term: u64,
}

/// `raftpb.HardState`: the persisted raft state (record type 3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HardState {
    /// Current term.
    #[prost(uint64, tag = "1")]
    pub term: u64,
    /// Member voted for in the current term (0: none).
    #[prost(uint64, tag = "2")]
    pub vote: u64,
    /// Highest index known to be committed.
    #[prost(uint64, tag = "3")]
    pub commit: u64,
}

/// `etcdserverpb.Metadata`: the WAL's metadata record (type 1), the same in every
/// segment.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalMetadata {
    /// This member's id.
    #[prost(uint64, tag = "1")]
    pub node_id: u64,
    /// The cluster's id.
    #[prost(uint64, tag = "2")]
    pub cluster_id: u64,
}

/// `raftpb.ConfState`: the voters and learners at a snapshot.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfState {
    /// Voting members (ids).
    #[prost(uint64, repeated, tag = "1")]
    pub voters: Vec<u64>,
    /// Learners (ids).
    #[prost(uint64, repeated, tag = "2")]
    pub learners: Vec<u64>,
    /// Voters of the outgoing configuration (joint consensus).
    #[prost(uint64, repeated, tag = "3")]
    pub voters_outgoing: Vec<u64>,
    /// Learners once the outgoing configuration is left.
    #[prost(uint64, repeated, tag = "4")]
    pub learners_next: Vec<u64>,
    /// Leave the joint configuration automatically.
    #[prost(bool, tag = "5")]
    pub auto_leave: bool,
}

/// `raftpb.SnapshotMetadata`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub(crate) struct SnapshotMetadata {
    #[prost(message, optional, tag = "1")]
    pub conf_state: Option<ConfState>,
    #[prost(uint64, tag = "2")]
    pub index: u64,
    #[prost(uint64, tag = "3")]
    pub term: u64,
}

/// `raftpb.Snapshot`: the v2 store (JSON) plus metadata, inside a `.snap` file.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub(crate) struct RaftSnapshot {
    #[prost(bytes = "vec", tag = "1")]
    pub data: Vec<u8>,
    #[prost(message, optional, tag = "2")]
    pub metadata: Option<SnapshotMetadata>,
}

/// `snappb.Snapshot`: the `.snap` file itself.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub(crate) struct SnapFilePb {
    #[prost(uint32, tag = "1")]
    pub crc: u32,
    #[prost(bytes = "vec", tag = "2")]
    pub data: Vec<u8>,
}

/// `raftpb.ConfChange` (entry type 1).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub(crate) struct ConfChange {
    #[prost(uint64, tag = "1")]
    pub id: u64,
    #[prost(int32, tag = "2")]
    pub change_type: i32,
    #[prost(uint64, tag = "3")]
    pub node_id: u64,
    #[prost(bytes = "vec", tag = "4")]
    pub context: Vec<u8>,
}

/// `raftpb.ConfChangeSingle`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub(crate) struct ConfChangeSingle {
    #[prost(int32, tag = "1")]
    pub change_type: i32,
    #[prost(uint64, tag = "2")]
    pub node_id: u64,
}

/// `raftpb.ConfChangeV2` (entry type 2).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub(crate) struct ConfChangeV2 {
    #[prost(int32, tag = "1")]
    pub transition: i32,
    #[prost(message, repeated, tag = "2")]
    pub changes: Vec<ConfChangeSingle>,
    #[prost(bytes = "vec", tag = "3")]
    pub context: Vec<u8>,
}
