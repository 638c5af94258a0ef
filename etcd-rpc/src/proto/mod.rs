//! The etcd v3 API messages (`etcdserverpb`, `authpb`, `mvccpb`), declared by hand.
//!
//! Field numbers follow etcd's `api/etcdserverpb/rpc.proto`, `api/authpb/auth.proto`
//! and `api/mvccpb/kv.proto`. Fields added after 3.4 are declared too (marked
//! "etcd 3.5+" or "3.6+"); a 3.4 server ignores them in requests and leaves them
//! at their default in responses.
//!
//! The requests that also travel in raft entries (KV, `LeaseGrant`/`LeaseRevoke`,
//! `Alarm`, and the `Auth` requests but `Authenticate` and `AuthStatus`) are
//! [`snapshot_format::etcdserverpb`]'s, re-exported here, so the WAL decoder and this
//! client share one declaration. Their protobuf `string` fields are bytes (`Vec<u8>`),
//! as etcd does not check UTF-8; the [`Client`](crate::Client) methods take `String`s.
//! The responses and the client-only messages are declared here.
//!
//! Enumeration fields are stored as `i32`, as prost does; prost derives typed
//! accessors (for example [`RangeRequest::sort_order`] and
//! [`RangeRequest::set_sort_order`]) and unknown values read as the default.

mod auth;
pub use snapshot_format::authpb;
mod cluster;
mod kv;
mod lease;
mod maintenance;
mod watch;

pub use auth::*;
pub use cluster::*;
pub use kv::*;
pub use lease::*;
pub use maintenance::*;
pub use snapshot_format::etcdserverpb::{
    AlarmAction, AlarmRequest, AlarmType, AuthDisableRequest, AuthEnableRequest,
    AuthRoleAddRequest, AuthRoleDeleteRequest, AuthRoleGetRequest, AuthRoleGrantPermissionRequest,
    AuthRoleListRequest, AuthRoleRevokePermissionRequest, AuthUserAddRequest,
    AuthUserChangePasswordRequest, AuthUserDeleteRequest, AuthUserGetRequest,
    AuthUserGrantRoleRequest, AuthUserListRequest, AuthUserRevokeRoleRequest, CompactionRequest,
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, LeaseGrantRequest,
    LeaseRevokeRequest, PutRequest, RangeRequest, RequestOp, SortOrder, SortTarget, TxnRequest,
    compare, request_op,
};
pub use watch::*;

/// `mvccpb`: key-value records and watch events, shared with the on-disk format.
pub use snapshot_format::mvcc as mvccpb;

/// `ResponseHeader`: which member answered, and the cluster state it answered at.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct ResponseHeader {
    /// ID of the cluster that sent the response.
    #[prost(uint64, tag = "1")]
    pub cluster_id: u64,
    /// ID of the member that sent the response.
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    /// Key-value store revision when the request was applied (or served).
    #[prost(int64, tag = "3")]
    pub revision: i64,
    /// Raft term when the request was applied.
    #[prost(uint64, tag = "4")]
    pub raft_term: u64,
}

/// Full gRPC method paths of the etcd v3 services, as used on the wire.
pub mod method {
    /// `KV.Range`.
    pub const RANGE: &str = "/etcdserverpb.KV/Range";
    /// `KV.Put`.
    pub const PUT: &str = "/etcdserverpb.KV/Put";
    /// `KV.DeleteRange`.
    pub const DELETE_RANGE: &str = "/etcdserverpb.KV/DeleteRange";
    /// `KV.Txn`.
    pub const TXN: &str = "/etcdserverpb.KV/Txn";
    /// `KV.Compact`.
    pub const COMPACT: &str = "/etcdserverpb.KV/Compact";
    /// `Watch.Watch` (bidirectional stream).
    pub const WATCH: &str = "/etcdserverpb.Watch/Watch";
    /// `Lease.LeaseGrant`.
    pub const LEASE_GRANT: &str = "/etcdserverpb.Lease/LeaseGrant";
    /// `Lease.LeaseRevoke`.
    pub const LEASE_REVOKE: &str = "/etcdserverpb.Lease/LeaseRevoke";
    /// `Lease.LeaseKeepAlive` (bidirectional stream).
    pub const LEASE_KEEP_ALIVE: &str = "/etcdserverpb.Lease/LeaseKeepAlive";
    /// `Lease.LeaseTimeToLive`.
    pub const LEASE_TIME_TO_LIVE: &str = "/etcdserverpb.Lease/LeaseTimeToLive";
    /// `Lease.LeaseLeases`.
    pub const LEASE_LEASES: &str = "/etcdserverpb.Lease/LeaseLeases";
    /// `Cluster.MemberAdd`.
    pub const MEMBER_ADD: &str = "/etcdserverpb.Cluster/MemberAdd";
    /// `Cluster.MemberRemove`.
    pub const MEMBER_REMOVE: &str = "/etcdserverpb.Cluster/MemberRemove";
    /// `Cluster.MemberUpdate`.
    pub const MEMBER_UPDATE: &str = "/etcdserverpb.Cluster/MemberUpdate";
    /// `Cluster.MemberList`.
    pub const MEMBER_LIST: &str = "/etcdserverpb.Cluster/MemberList";
    /// `Cluster.MemberPromote`.
    pub const MEMBER_PROMOTE: &str = "/etcdserverpb.Cluster/MemberPromote";
    /// `Maintenance.Alarm`.
    pub const ALARM: &str = "/etcdserverpb.Maintenance/Alarm";
    /// `Maintenance.Status`.
    pub const STATUS: &str = "/etcdserverpb.Maintenance/Status";
    /// `Maintenance.Defragment`.
    pub const DEFRAGMENT: &str = "/etcdserverpb.Maintenance/Defragment";
    /// `Maintenance.Hash`.
    pub const HASH: &str = "/etcdserverpb.Maintenance/Hash";
    /// `Maintenance.HashKV`.
    pub const HASH_KV: &str = "/etcdserverpb.Maintenance/HashKV";
    /// `Maintenance.Snapshot` (server stream).
    pub const SNAPSHOT: &str = "/etcdserverpb.Maintenance/Snapshot";
    /// `Maintenance.MoveLeader`.
    pub const MOVE_LEADER: &str = "/etcdserverpb.Maintenance/MoveLeader";
    /// `Auth.AuthEnable`.
    pub const AUTH_ENABLE: &str = "/etcdserverpb.Auth/AuthEnable";
    /// `Auth.AuthDisable`.
    pub const AUTH_DISABLE: &str = "/etcdserverpb.Auth/AuthDisable";
    /// `Auth.AuthStatus` (etcd 3.5+).
    pub const AUTH_STATUS: &str = "/etcdserverpb.Auth/AuthStatus";
    /// `Auth.Authenticate`.
    pub const AUTHENTICATE: &str = "/etcdserverpb.Auth/Authenticate";
    /// `Auth.UserAdd`.
    pub const USER_ADD: &str = "/etcdserverpb.Auth/UserAdd";
    /// `Auth.UserGet`.
    pub const USER_GET: &str = "/etcdserverpb.Auth/UserGet";
    /// `Auth.UserList`.
    pub const USER_LIST: &str = "/etcdserverpb.Auth/UserList";
    /// `Auth.UserDelete`.
    pub const USER_DELETE: &str = "/etcdserverpb.Auth/UserDelete";
    /// `Auth.UserChangePassword`.
    pub const USER_CHANGE_PASSWORD: &str = "/etcdserverpb.Auth/UserChangePassword";
    /// `Auth.UserGrantRole`.
    pub const USER_GRANT_ROLE: &str = "/etcdserverpb.Auth/UserGrantRole";
    /// `Auth.UserRevokeRole`.
    pub const USER_REVOKE_ROLE: &str = "/etcdserverpb.Auth/UserRevokeRole";
    /// `Auth.RoleAdd`.
    pub const ROLE_ADD: &str = "/etcdserverpb.Auth/RoleAdd";
    /// `Auth.RoleGet`.
    pub const ROLE_GET: &str = "/etcdserverpb.Auth/RoleGet";
    /// `Auth.RoleList`.
    pub const ROLE_LIST: &str = "/etcdserverpb.Auth/RoleList";
    /// `Auth.RoleDelete`.
    pub const ROLE_DELETE: &str = "/etcdserverpb.Auth/RoleDelete";
    /// `Auth.RoleGrantPermission`.
    pub const ROLE_GRANT_PERMISSION: &str = "/etcdserverpb.Auth/RoleGrantPermission";
    /// `Auth.RoleRevokePermission`.
    pub const ROLE_REVOKE_PERMISSION: &str = "/etcdserverpb.Auth/RoleRevokePermission";
}
