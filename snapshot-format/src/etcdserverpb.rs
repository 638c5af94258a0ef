//! `etcdserverpb`: the etcd v3 request messages, one declaration for the two places
//! they appear: inside raft entries (the WAL decoder in [`crate::wal`] reads
//! [`InternalRaftRequest`]) and on the wire of the gRPC client (`etcd-rpc` re-exports
//! the requests it sends from here, and declares the responses and client-only
//! messages itself).
//!
//! Field numbers follow etcd's `api/etcdserverpb/rpc.proto`, `raft_internal.proto` and
//! `etcdserver.proto`, and 3.5's `server/etcdserver/api/membership/membershippb`.
//! Fields added after 3.4 are declared too (marked "etcd 3.5+"); a 3.4 server ignores
//! them in requests.
//!
//! Every protobuf `string` is declared as bytes: etcd (gogoproto) does not check
//! UTF-8, and an entry must decode here exactly when it decodes in etcd. Every field of
//! a message is declared, so a field with the wrong wire type fails here as it fails in
//! etcd instead of being skipped as unknown. Enumeration fields are stored as `i32`, as
//! prost does; prost derives typed accessors (for example [`RangeRequest::sort_order`]
//! and [`RangeRequest::set_sort_order`]) and unknown values read as the default.
//!
//! Messages that carry a password or a token print it redacted in `Debug`.

use std::fmt;

use crate::authpb::{Permission, UserAddOptions};

/// Prints `<redacted>` for a non-empty secret and `""` for an empty one.
struct Redacted<'a>(&'a [u8]);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "<redacted>"
        })
    }
}

/// Prints bytes that hold a protobuf `string` as (lossy) text.
struct Text<'a>(&'a [u8]);

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&String::from_utf8_lossy(self.0), f)
    }
}

/// `RequestHeader`: who sent a request that went through raft.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct RequestHeader {
    /// Request id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// User that sent the request (auth enabled); a protobuf `string`.
    #[prost(bytes = "vec", tag = "2")]
    pub username: Vec<u8>,
    /// Auth revision the request was checked against.
    #[prost(uint64, tag = "3")]
    pub auth_revision: u64,
}

/// `InternalRaftRequest`: the data of every v3 normal raft entry. Exactly one request
/// field is set in what etcd writes.
#[derive(Clone, PartialEq, prost::Message)]
pub struct InternalRaftRequest {
    /// Header.
    #[prost(message, optional, tag = "100")]
    pub header: Option<RequestHeader>,
    /// Request id when there is no header.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// A v2 store request.
    #[prost(message, optional, tag = "2")]
    pub v2: Option<V2Request>,
    /// A range read sent through raft.
    #[prost(message, optional, tag = "3")]
    pub range: Option<RangeRequest>,
    /// A put.
    #[prost(message, optional, tag = "4")]
    pub put: Option<PutRequest>,
    /// A delete.
    #[prost(message, optional, tag = "5")]
    pub delete_range: Option<DeleteRangeRequest>,
    /// A transaction.
    #[prost(message, optional, tag = "6")]
    pub txn: Option<TxnRequest>,
    /// A compaction.
    #[prost(message, optional, tag = "7")]
    pub compaction: Option<CompactionRequest>,
    /// A lease grant.
    #[prost(message, optional, tag = "8")]
    pub lease_grant: Option<LeaseGrantRequest>,
    /// A lease revocation.
    #[prost(message, optional, tag = "9")]
    pub lease_revoke: Option<LeaseRevokeRequest>,
    /// An alarm change.
    #[prost(message, optional, tag = "10")]
    pub alarm: Option<AlarmRequest>,
    /// Lease checkpoints (remaining TTLs).
    #[prost(message, optional, tag = "11")]
    pub lease_checkpoint: Option<LeaseCheckpointRequest>,
    /// `Auth.AuthEnable`.
    #[prost(message, optional, tag = "1000")]
    pub auth_enable: Option<AuthEnableRequest>,
    /// `Auth.AuthDisable`.
    #[prost(message, optional, tag = "1011")]
    pub auth_disable: Option<AuthDisableRequest>,
    /// `Auth.Authenticate`, with the token the leader chose.
    #[prost(message, optional, tag = "1012")]
    pub authenticate: Option<InternalAuthenticateRequest>,
    /// `Auth.UserAdd`.
    #[prost(message, optional, tag = "1100")]
    pub auth_user_add: Option<AuthUserAddRequest>,
    /// `Auth.UserDelete`.
    #[prost(message, optional, tag = "1101")]
    pub auth_user_delete: Option<AuthUserDeleteRequest>,
    /// `Auth.UserGet`.
    #[prost(message, optional, tag = "1102")]
    pub auth_user_get: Option<AuthUserGetRequest>,
    /// `Auth.UserChangePassword`.
    #[prost(message, optional, tag = "1103")]
    pub auth_user_change_password: Option<AuthUserChangePasswordRequest>,
    /// `Auth.UserGrantRole`.
    #[prost(message, optional, tag = "1104")]
    pub auth_user_grant_role: Option<AuthUserGrantRoleRequest>,
    /// `Auth.UserRevokeRole`.
    #[prost(message, optional, tag = "1105")]
    pub auth_user_revoke_role: Option<AuthUserRevokeRoleRequest>,
    /// `Auth.UserList`.
    #[prost(message, optional, tag = "1106")]
    pub auth_user_list: Option<AuthUserListRequest>,
    /// `Auth.RoleList`.
    #[prost(message, optional, tag = "1107")]
    pub auth_role_list: Option<AuthRoleListRequest>,
    /// `Auth.RoleAdd`.
    #[prost(message, optional, tag = "1200")]
    pub auth_role_add: Option<AuthRoleAddRequest>,
    /// `Auth.RoleDelete`.
    #[prost(message, optional, tag = "1201")]
    pub auth_role_delete: Option<AuthRoleDeleteRequest>,
    /// `Auth.RoleGet`.
    #[prost(message, optional, tag = "1202")]
    pub auth_role_get: Option<AuthRoleGetRequest>,
    /// `Auth.RoleGrantPermission`.
    #[prost(message, optional, tag = "1203")]
    pub auth_role_grant_permission: Option<AuthRoleGrantPermissionRequest>,
    /// `Auth.RoleRevokePermission`.
    #[prost(message, optional, tag = "1204")]
    pub auth_role_revoke_permission: Option<AuthRoleRevokePermissionRequest>,
    /// The cluster version (etcd 3.5+).
    #[prost(message, optional, tag = "1300")]
    pub cluster_version_set: Option<ClusterVersionSetRequest>,
    /// A member's published attributes (etcd 3.5+).
    #[prost(message, optional, tag = "1301")]
    pub cluster_member_attr_set: Option<ClusterMemberAttrSetRequest>,
    /// The downgrade state (etcd 3.5+).
    #[prost(message, optional, tag = "1302")]
    pub downgrade_info_set: Option<DowngradeInfoSetRequest>,
}

/// `etcdserverpb.Request`: a v2 store request (etcd 3.4 publishes member attributes and
/// the cluster version this way, as the whole entry data or in
/// [`InternalRaftRequest::v2`]).
#[derive(Clone, PartialEq, prost::Message)]
pub struct V2Request {
    /// Request id.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// HTTP-like method (`PUT`, `DELETE`, `QGET`, `SYNC`, …); a protobuf `string`.
    #[prost(bytes = "vec", tag = "2")]
    pub method: Vec<u8>,
    /// Store path; a protobuf `string`.
    #[prost(bytes = "vec", tag = "3")]
    pub path: Vec<u8>,
    /// Value; a protobuf `string`.
    #[prost(bytes = "vec", tag = "4")]
    pub val: Vec<u8>,
    /// Whether the path is a directory.
    #[prost(bool, tag = "5")]
    pub dir: bool,
    /// Compare-and-swap: expected previous value; a protobuf `string`.
    #[prost(bytes = "vec", tag = "6")]
    pub prev_value: Vec<u8>,
    /// Compare-and-swap: expected previous index.
    #[prost(uint64, tag = "7")]
    pub prev_index: u64,
    /// Compare-and-swap: whether the node must (not) exist.
    #[prost(bool, optional, tag = "8")]
    pub prev_exist: Option<bool>,
    /// Expiration time, Unix nanoseconds.
    #[prost(int64, tag = "9")]
    pub expiration: i64,
    /// Watch instead of get.
    #[prost(bool, tag = "10")]
    pub wait: bool,
    /// Watch from this index.
    #[prost(uint64, tag = "11")]
    pub since: u64,
    /// Recursive get or delete.
    #[prost(bool, tag = "12")]
    pub recursive: bool,
    /// Sorted get.
    #[prost(bool, tag = "13")]
    pub sorted: bool,
    /// Quorum get.
    #[prost(bool, tag = "14")]
    pub quorum: bool,
    /// Time of the request, Unix nanoseconds.
    #[prost(int64, tag = "15")]
    pub time: i64,
    /// Streaming watch.
    #[prost(bool, tag = "16")]
    pub stream: bool,
    /// Refresh the TTL without notifying watchers.
    #[prost(bool, optional, tag = "17")]
    pub refresh: Option<bool>,
}

/// `RangeRequest.SortOrder`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SortOrder {
    /// Default, no sorting.
    None = 0,
    /// Lowest target value first.
    Ascend = 1,
    /// Highest target value first.
    Descend = 2,
}

/// `RangeRequest.SortTarget`: the field the range is sorted by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum SortTarget {
    /// The key.
    Key = 0,
    /// The version.
    Version = 1,
    /// The create revision.
    Create = 2,
    /// The mod revision.
    Mod = 3,
    /// The value.
    Value = 4,
}

/// `RangeRequest`: read the keys in `[key, range_end)`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct RangeRequest {
    /// First key of the range; alone (empty `range_end`) the single key to read.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Upper bound (exclusive). `[0]` with `key = [0]` means all keys; `key + 1`
    /// (see [`crate::etcd::prefix_end`]) means every key with the prefix `key`.
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    /// Maximum number of keys returned; 0 means no limit.
    #[prost(int64, tag = "3")]
    pub limit: i64,
    /// Point-in-time revision to read at; 0 or negative means the newest.
    #[prost(int64, tag = "4")]
    pub revision: i64,
    /// Sort order, see [`SortOrder`].
    #[prost(enumeration = "SortOrder", tag = "5")]
    pub sort_order: i32,
    /// Sort target, see [`SortTarget`].
    #[prost(enumeration = "SortTarget", tag = "6")]
    pub sort_target: i32,
    /// Serve from the local member without a quorum read (may be stale).
    #[prost(bool, tag = "7")]
    pub serializable: bool,
    /// Return only the keys, not the values.
    #[prost(bool, tag = "8")]
    pub keys_only: bool,
    /// Return only the count of keys in the range.
    #[prost(bool, tag = "9")]
    pub count_only: bool,
    /// Lower bound (inclusive) for `mod_revision` of returned keys; 0 disables.
    #[prost(int64, tag = "10")]
    pub min_mod_revision: i64,
    /// Upper bound (inclusive) for `mod_revision` of returned keys; 0 disables.
    #[prost(int64, tag = "11")]
    pub max_mod_revision: i64,
    /// Lower bound (inclusive) for `create_revision` of returned keys; 0 disables.
    #[prost(int64, tag = "12")]
    pub min_create_revision: i64,
    /// Upper bound (inclusive) for `create_revision` of returned keys; 0 disables.
    #[prost(int64, tag = "13")]
    pub max_create_revision: i64,
}

/// `PutRequest`: write one key.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct PutRequest {
    /// The key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// The value.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    /// Lease to attach the key to; 0 for none.
    #[prost(int64, tag = "3")]
    pub lease: i64,
    /// Return the previous key-value pair in the response.
    #[prost(bool, tag = "4")]
    pub prev_kv: bool,
    /// Keep the current value (error if the key does not exist).
    #[prost(bool, tag = "5")]
    pub ignore_value: bool,
    /// Keep the current lease (error if the key does not exist).
    #[prost(bool, tag = "6")]
    pub ignore_lease: bool,
}

/// `DeleteRangeRequest`: delete the keys in `[key, range_end)`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct DeleteRangeRequest {
    /// First key of the range; alone the single key to delete.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Upper bound (exclusive), same conventions as [`RangeRequest::range_end`].
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    /// Return the deleted key-value pairs in the response.
    #[prost(bool, tag = "3")]
    pub prev_kv: bool,
}

/// `RequestOp`: one operation inside a transaction.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestOp {
    /// The operation.
    #[prost(oneof = "request_op::Request", tags = "1, 2, 3, 4")]
    pub request: Option<request_op::Request>,
}

/// Nested types of [`RequestOp`].
pub mod request_op {
    /// `RequestOp.request`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Request {
        /// A range read.
        #[prost(message, tag = "1")]
        RequestRange(super::RangeRequest),
        /// A put.
        #[prost(message, tag = "2")]
        RequestPut(super::PutRequest),
        /// A delete.
        #[prost(message, tag = "3")]
        RequestDeleteRange(super::DeleteRangeRequest),
        /// A nested transaction.
        #[prost(message, tag = "4")]
        RequestTxn(super::TxnRequest),
    }
}

impl RequestOp {
    /// A range read operation.
    pub fn range(request: RangeRequest) -> Self {
        Self {
            request: Some(request_op::Request::RequestRange(request)),
        }
    }

    /// A put operation.
    pub fn put(request: PutRequest) -> Self {
        Self {
            request: Some(request_op::Request::RequestPut(request)),
        }
    }

    /// A delete operation.
    pub fn delete_range(request: DeleteRangeRequest) -> Self {
        Self {
            request: Some(request_op::Request::RequestDeleteRange(request)),
        }
    }

    /// A nested transaction.
    pub fn txn(request: TxnRequest) -> Self {
        Self {
            request: Some(request_op::Request::RequestTxn(request)),
        }
    }
}

/// `Compare.CompareResult`: the comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CompareResult {
    /// `==`.
    Equal = 0,
    /// `>`.
    Greater = 1,
    /// `<`.
    Less = 2,
    /// `!=`.
    NotEqual = 3,
}

/// `Compare.CompareTarget`: what is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum CompareTarget {
    /// The key's version.
    Version = 0,
    /// The key's create revision.
    Create = 1,
    /// The key's mod revision.
    Mod = 2,
    /// The key's value.
    Value = 3,
    /// The key's lease.
    Lease = 4,
}

/// `Compare`: one guard of a transaction.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Compare {
    /// The operator, see [`CompareResult`].
    #[prost(enumeration = "CompareResult", tag = "1")]
    pub result: i32,
    /// The compared field, see [`CompareTarget`]; must match `target_union`.
    #[prost(enumeration = "CompareTarget", tag = "2")]
    pub target: i32,
    /// The key to compare.
    #[prost(bytes = "vec", tag = "3")]
    pub key: Vec<u8>,
    /// The value compared against.
    #[prost(oneof = "compare::TargetUnion", tags = "4, 5, 6, 7, 8")]
    pub target_union: Option<compare::TargetUnion>,
    /// Compare every key in `[key, range_end)` instead of the single key.
    #[prost(bytes = "vec", tag = "64")]
    pub range_end: Vec<u8>,
}

/// Nested types of [`Compare`].
pub mod compare {
    /// `Compare.target_union`.
    #[derive(Clone, PartialEq, Eq, Hash, prost::Oneof)]
    pub enum TargetUnion {
        /// Compare the version.
        #[prost(int64, tag = "4")]
        Version(i64),
        /// Compare the create revision.
        #[prost(int64, tag = "5")]
        CreateRevision(i64),
        /// Compare the mod revision.
        #[prost(int64, tag = "6")]
        ModRevision(i64),
        /// Compare the value.
        #[prost(bytes = "vec", tag = "7")]
        Value(Vec<u8>),
        /// Compare the lease.
        #[prost(int64, tag = "8")]
        Lease(i64),
    }
}

impl Compare {
    fn with(key: impl Into<Vec<u8>>, result: CompareResult, target: compare::TargetUnion) -> Self {
        let target_kind = match target {
            compare::TargetUnion::Version(_) => CompareTarget::Version,
            compare::TargetUnion::CreateRevision(_) => CompareTarget::Create,
            compare::TargetUnion::ModRevision(_) => CompareTarget::Mod,
            compare::TargetUnion::Value(_) => CompareTarget::Value,
            compare::TargetUnion::Lease(_) => CompareTarget::Lease,
        };
        Self {
            result: result as i32,
            target: target_kind as i32,
            key: key.into(),
            target_union: Some(target),
            range_end: Vec::new(),
        }
    }

    /// Compare the key's version (0 when the key does not exist).
    pub fn version(key: impl Into<Vec<u8>>, result: CompareResult, version: i64) -> Self {
        Self::with(key, result, compare::TargetUnion::Version(version))
    }

    /// Compare the key's create revision (0 when the key does not exist).
    pub fn create_revision(key: impl Into<Vec<u8>>, result: CompareResult, revision: i64) -> Self {
        Self::with(key, result, compare::TargetUnion::CreateRevision(revision))
    }

    /// Compare the key's mod revision (0 when the key does not exist).
    pub fn mod_revision(key: impl Into<Vec<u8>>, result: CompareResult, revision: i64) -> Self {
        Self::with(key, result, compare::TargetUnion::ModRevision(revision))
    }

    /// Compare the key's value.
    pub fn value(
        key: impl Into<Vec<u8>>,
        result: CompareResult,
        value: impl Into<Vec<u8>>,
    ) -> Self {
        Self::with(key, result, compare::TargetUnion::Value(value.into()))
    }

    /// Compare the key's lease.
    pub fn lease(key: impl Into<Vec<u8>>, result: CompareResult, lease: i64) -> Self {
        Self::with(key, result, compare::TargetUnion::Lease(lease))
    }

    /// Apply the comparison to every key in `[key, range_end)`.
    pub fn with_range_end(mut self, range_end: impl Into<Vec<u8>>) -> Self {
        self.range_end = range_end.into();
        self
    }
}

/// `TxnRequest`: if all `compare` hold, run `success`, else `failure`; one revision at most.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxnRequest {
    /// The guards, combined with AND.
    #[prost(message, repeated, tag = "1")]
    pub compare: Vec<Compare>,
    /// Operations run when every guard holds.
    #[prost(message, repeated, tag = "2")]
    pub success: Vec<RequestOp>,
    /// Operations run otherwise.
    #[prost(message, repeated, tag = "3")]
    pub failure: Vec<RequestOp>,
}

/// `CompactionRequest`: forget history older than `revision`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct CompactionRequest {
    /// Revisions below this one are discarded (the newest version of each live key is kept).
    #[prost(int64, tag = "1")]
    pub revision: i64,
    /// Wait until the compaction is physically applied to the backend before answering.
    #[prost(bool, tag = "2")]
    pub physical: bool,
}

/// `LeaseGrantRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct LeaseGrantRequest {
    /// Time to live in seconds.
    #[prost(int64, tag = "1")]
    pub ttl: i64,
    /// Requested lease ID; 0 lets the server choose.
    #[prost(int64, tag = "2")]
    pub id: i64,
}

/// `LeaseRevokeRequest`: revoke a lease and delete its keys.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct LeaseRevokeRequest {
    /// The lease ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// `LeaseCheckpoint`: the remaining TTL of one lease, persisted through raft.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct LeaseCheckpoint {
    /// The lease ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// Remaining TTL in seconds.
    #[prost(int64, tag = "2")]
    pub remaining_ttl: i64,
}

/// `LeaseCheckpointRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct LeaseCheckpointRequest {
    /// The checkpoints.
    #[prost(message, repeated, tag = "1")]
    pub checkpoints: Vec<LeaseCheckpoint>,
}

/// `AlarmType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum AlarmType {
    /// No alarm; in a request, "any alarm".
    None = 0,
    /// The backend exceeded its quota; the cluster only accepts reads and deletes.
    Nospace = 1,
    /// A member's data differs from the others'.
    Corrupt = 2,
}

/// `AlarmRequest.AlarmAction`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum AlarmAction {
    /// List alarms.
    Get = 0,
    /// Raise an alarm.
    Activate = 1,
    /// Clear an alarm.
    Deactivate = 2,
}

/// `AlarmRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AlarmRequest {
    /// The action, see [`AlarmAction`].
    #[prost(enumeration = "AlarmAction", tag = "1")]
    pub action: i32,
    /// Member the alarm applies to; 0 for all members.
    #[prost(uint64, tag = "2")]
    pub member_id: u64,
    /// The alarm, see [`AlarmType`]; `None` for every alarm.
    #[prost(enumeration = "AlarmType", tag = "3")]
    pub alarm: i32,
}

/// `AuthEnableRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthEnableRequest {}

/// `AuthDisableRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthDisableRequest {}

/// `InternalAuthenticateRequest`: an `Authenticate` as the leader puts it in the log,
/// with the simple token it generated (password and token redacted in `Debug`).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
#[prost(skip_debug)]
pub struct InternalAuthenticateRequest {
    /// User name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Password; a protobuf `string`.
    #[prost(bytes = "vec", tag = "2")]
    pub password: Vec<u8>,
    /// The simple token generated by the leader; a protobuf `string`.
    #[prost(bytes = "vec", tag = "3")]
    pub simple_token: Vec<u8>,
}

impl fmt::Debug for InternalAuthenticateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InternalAuthenticateRequest")
            .field("name", &Text(&self.name))
            .field("password", &Redacted(&self.password))
            .field("simple_token", &Redacted(&self.simple_token))
            .finish()
    }
}

/// `AuthUserAddRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
#[prost(skip_debug)]
pub struct AuthUserAddRequest {
    /// User name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Password (redacted in `Debug`); a protobuf `string`.
    #[prost(bytes = "vec", tag = "2")]
    pub password: Vec<u8>,
    /// Options, e.g. a user without password (certificate CN only).
    #[prost(message, optional, tag = "3")]
    pub options: Option<UserAddOptions>,
    /// Pre-hashed bcrypt password instead of `password` (etcd 3.5+; redacted in
    /// `Debug`); a protobuf `string`.
    #[prost(bytes = "vec", tag = "4")]
    pub hashed_password: Vec<u8>,
}

impl fmt::Debug for AuthUserAddRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthUserAddRequest")
            .field("name", &Text(&self.name))
            .field("password", &Redacted(&self.password))
            .field("options", &self.options)
            .field("hashed_password", &Redacted(&self.hashed_password))
            .finish()
    }
}

/// `AuthUserGetRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthUserGetRequest {
    /// User name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
}

/// `AuthUserDeleteRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthUserDeleteRequest {
    /// User name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
}

/// `AuthUserChangePasswordRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
#[prost(skip_debug)]
pub struct AuthUserChangePasswordRequest {
    /// User name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// New password (redacted in `Debug`); a protobuf `string`.
    #[prost(bytes = "vec", tag = "2")]
    pub password: Vec<u8>,
    /// New pre-hashed bcrypt password (etcd 3.5+; redacted in `Debug`); a protobuf
    /// `string`.
    #[prost(bytes = "vec", tag = "3")]
    pub hashed_password: Vec<u8>,
}

impl fmt::Debug for AuthUserChangePasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthUserChangePasswordRequest")
            .field("name", &Text(&self.name))
            .field("password", &Redacted(&self.password))
            .field("hashed_password", &Redacted(&self.hashed_password))
            .finish()
    }
}

/// `AuthUserGrantRoleRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthUserGrantRoleRequest {
    /// User name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub user: Vec<u8>,
    /// Role name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "2")]
    pub role: Vec<u8>,
}

/// `AuthUserRevokeRoleRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthUserRevokeRoleRequest {
    /// User name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Role name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "2")]
    pub role: Vec<u8>,
}

/// `AuthUserListRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthUserListRequest {}

/// `AuthRoleListRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleListRequest {}

/// `AuthRoleAddRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleAddRequest {
    /// Role name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
}

/// `AuthRoleGetRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleGetRequest {
    /// Role name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub role: Vec<u8>,
}

/// `AuthRoleDeleteRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleDeleteRequest {
    /// Role name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub role: Vec<u8>,
}

/// `AuthRoleGrantPermissionRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleGrantPermissionRequest {
    /// Role name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// The permission to grant.
    #[prost(message, optional, tag = "2")]
    pub perm: Option<Permission>,
}

/// `AuthRoleRevokePermissionRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleRevokePermissionRequest {
    /// Role name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub role: Vec<u8>,
    /// First key of the permission to revoke.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// Range end of the permission to revoke.
    #[prost(bytes = "vec", tag = "3")]
    pub range_end: Vec<u8>,
}

/// `membershippb.ClusterVersionSetRequest` (etcd 3.5+).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct ClusterVersionSetRequest {
    /// The cluster version, e.g. `3.5.0`; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub ver: Vec<u8>,
}

/// `membershippb.Attributes`: what a member publishes about itself.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct MemberAttributes {
    /// Member name; a protobuf `string`.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Client URLs; protobuf `string`s.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub client_urls: Vec<Vec<u8>>,
}

/// `membershippb.ClusterMemberAttrSetRequest` (etcd 3.5+).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct ClusterMemberAttrSetRequest {
    /// The member.
    #[prost(uint64, tag = "1")]
    pub member_id: u64,
    /// Its attributes.
    #[prost(message, optional, tag = "2")]
    pub member_attributes: Option<MemberAttributes>,
}

/// `membershippb.DowngradeInfoSetRequest` (etcd 3.5+).
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct DowngradeInfoSetRequest {
    /// Whether a downgrade is in progress.
    #[prost(bool, tag = "1")]
    pub enabled: bool,
    /// The version being downgraded to; a protobuf `string`.
    #[prost(bytes = "vec", tag = "2")]
    pub ver: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// Every `string` is bytes: invalid UTF-8 decodes, as it does in etcd.
    #[test]
    fn strings_are_not_checked_for_utf8() {
        let bytes = [0x0a, 2, 0xff, 0xfe];
        let get = AuthUserGetRequest::decode(&bytes[..]).expect("decodes");
        assert_eq!(get.name, [0xff, 0xfe]);
        assert_eq!(get.encode_to_vec(), bytes);
    }

    /// A declared field with the wrong wire type fails, as in etcd (a field that was
    /// not declared would be skipped).
    #[test]
    fn wrong_wire_type_of_a_declared_field_fails() {
        // RangeRequest.sort_order (5) as length-delimited.
        assert!(RangeRequest::decode(&[0x2a, 0][..]).is_err());
        // AuthUserChangePasswordRequest.password (2) as a varint.
        assert!(AuthUserChangePasswordRequest::decode(&[0x10, 1][..]).is_err());
        // An undeclared field number is skipped.
        assert!(RangeRequest::decode(&[0x70, 1][..]).is_ok());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let add = AuthUserAddRequest {
            name: b"root".to_vec(),
            password: b"hunter2".to_vec(),
            hashed_password: b"$2a$10$hash".to_vec(),
            options: None,
        };
        let printed = format!("{add:?}");
        assert!(printed.contains("\"root\""), "{printed}");
        assert!(!printed.contains("hunter2") && !printed.contains("$2a$"));

        let change = AuthUserChangePasswordRequest {
            name: b"root".to_vec(),
            password: b"hunter2".to_vec(),
            hashed_password: Vec::new(),
        };
        let printed = format!("{change:?}");
        assert!(printed.contains("\"root\"") && !printed.contains("hunter2"));
        assert!(printed.contains("hashed_password: \"\""), "{printed}");

        let auth = InternalAuthenticateRequest {
            name: b"root".to_vec(),
            password: b"hunter2".to_vec(),
            simple_token: b"token.42".to_vec(),
        };
        let printed = format!("{auth:?}");
        assert!(!printed.contains("hunter2") && !printed.contains("token.42"));
    }
}
