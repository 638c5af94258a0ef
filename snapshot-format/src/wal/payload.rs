//! What a raft entry says: the etcd request inside a normal entry, the membership change
//! inside a conf-change entry, as typed values with a one-line summary for dumps.
//!
//! A normal entry is decoded the way etcd applies it: an empty entry is the leader's
//! no-op; otherwise the data is an `InternalRaftRequest`, and when that does not decode
//! it is a v2 `Request` (etcd 3.4 publishes member attributes and the cluster version
//! this way). Whatever decodes as neither is kept as raw bytes.

use std::fmt;

use prost::Message;
use serde::{Serialize, Serializer};

use super::raftpb;
use super::record::EntryType;
use crate::etcdserverpb::{self, InternalRaftRequest, request_op};

/// The decoded data of one entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum EntryPayload {
    /// A normal entry without data: the no-op a new leader appends.
    Empty,
    /// A v3 request (`etcdserverpb.InternalRaftRequest`).
    Request(InternalRequest),
    /// A v2 store request (`etcdserverpb.Request`) stored directly as entry data.
    V2(V2Request),
    /// A membership change (`raftpb.ConfChange`).
    ConfChange(ConfChange),
    /// A membership change (`raftpb.ConfChangeV2`).
    ConfChangeV2(ConfChangeV2),
    /// Data that decodes as nothing etcd writes.
    Unknown(UnknownPayload),
}

/// An `InternalRaftRequest`: the header and the one operation it carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InternalRequest {
    /// Request id (from the header, else the request's own `ID`).
    pub request_id: u64,
    /// User that sent the request (auth enabled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Auth revision the request was checked against.
    #[serde(skip_serializing_if = "is_zero")]
    pub auth_revision: u64,
    /// The operation.
    #[serde(flatten)]
    pub op: RequestOp,
}

/// The operation of an [`InternalRequest`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum RequestOp {
    /// No operation field is set.
    None,
    /// A serializable range read sent through raft (linearizable reads in old clients).
    Range(RangeOp),
    /// A put.
    Put(PutOp),
    /// A delete of a key or range.
    DeleteRange(DeleteOp),
    /// A transaction.
    Txn(TxnOp),
    /// A compaction.
    Compaction {
        /// Compact up to this revision.
        revision: i64,
        /// Wait until the compaction is physically applied.
        physical: bool,
    },
    /// A lease grant.
    LeaseGrant {
        /// Lease id.
        lease_id: i64,
        /// TTL in seconds.
        ttl: i64,
    },
    /// A lease revoke.
    LeaseRevoke {
        /// Lease id.
        lease_id: i64,
    },
    /// Remaining TTLs checkpointed by the leader.
    LeaseCheckpoint {
        /// `(lease id, remaining TTL)` pairs.
        checkpoints: Vec<LeaseCheckpoint>,
    },
    /// An alarm change.
    Alarm {
        /// `GET`, `ACTIVATE` or `DEACTIVATE`.
        action: String,
        /// Member the alarm is for (0: all).
        member_id: u64,
        /// `NONE`, `NOSPACE` or `CORRUPT`.
        alarm: String,
    },
    /// An auth change.
    Auth(AuthOp),
    /// A v2 request wrapped in an `InternalRaftRequest`.
    V2(V2Request),
    /// etcd 3.5: set the cluster version.
    ClusterVersionSet {
        /// The version.
        version: String,
    },
    /// etcd 3.5: publish a member's attributes.
    ClusterMemberAttrSet {
        /// Member id.
        member_id: u64,
        /// Member name.
        name: String,
        /// Client URLs.
        client_urls: Vec<String>,
    },
    /// etcd 3.5: set downgrade info.
    DowngradeInfoSet {
        /// Downgrade enabled.
        enabled: bool,
        /// Target version.
        version: String,
    },
}

/// A range request.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeOp {
    /// First key.
    #[serde(serialize_with = "serialize_bytes")]
    pub key: Vec<u8>,
    /// Range end (exclusive); empty for one key.
    #[serde(
        serialize_with = "serialize_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub range_end: Vec<u8>,
    /// Revision to read at (0: newest).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub revision: i64,
    /// Most keys to return (0: all).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub limit: i64,
}

/// A put.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PutOp {
    /// The key.
    #[serde(serialize_with = "serialize_bytes")]
    pub key: Vec<u8>,
    /// The value.
    #[serde(serialize_with = "serialize_bytes")]
    pub value: Vec<u8>,
    /// Value size in bytes.
    pub value_size: usize,
    /// Lease attached (0: none).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub lease: i64,
    /// Keep the current value.
    #[serde(skip_serializing_if = "is_false")]
    pub ignore_value: bool,
    /// Keep the current lease.
    #[serde(skip_serializing_if = "is_false")]
    pub ignore_lease: bool,
    /// The previous key-value was requested.
    #[serde(skip_serializing_if = "is_false")]
    pub prev_kv: bool,
}

/// A delete of a key or range.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOp {
    /// First key.
    #[serde(serialize_with = "serialize_bytes")]
    pub key: Vec<u8>,
    /// Range end (exclusive); empty for one key.
    #[serde(
        serialize_with = "serialize_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub range_end: Vec<u8>,
    /// The previous key-values were requested.
    #[serde(skip_serializing_if = "is_false")]
    pub prev_kv: bool,
}

/// A transaction: comparisons and the operations of both branches.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxnOp {
    /// The comparisons.
    pub compare: Vec<TxnCompare>,
    /// Operations run when every comparison holds.
    pub success: Vec<TxnStep>,
    /// Operations run otherwise.
    pub failure: Vec<TxnStep>,
}

/// One comparison of a transaction.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TxnCompare {
    /// `version`, `create`, `mod`, `value` or `lease`.
    pub target: String,
    /// `=`, `>`, `<` or `!=`.
    pub result: String,
    /// The key.
    #[serde(serialize_with = "serialize_bytes")]
    pub key: Vec<u8>,
    /// Range end, when the comparison covers a range.
    #[serde(
        serialize_with = "serialize_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub range_end: Vec<u8>,
    /// The value compared against, rendered (a number, or the value bytes quoted).
    pub operand: String,
}

/// One operation of a transaction branch.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum TxnStep {
    /// Range read.
    Range(RangeOp),
    /// Put.
    Put(PutOp),
    /// Delete.
    DeleteRange(DeleteOp),
    /// Nested transaction.
    Txn(TxnOp),
    /// A `RequestOp` with no operation set.
    None,
}

/// A lease's remaining TTL, checkpointed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseCheckpoint {
    /// Lease id.
    pub lease_id: i64,
    /// Remaining TTL in seconds.
    pub remaining_ttl: i64,
}

/// An auth change. Passwords are never decoded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "auth",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum AuthOp {
    /// `auth enable`.
    Enable,
    /// `auth disable`.
    Disable,
    /// A successful authentication (issues a simple token).
    Authenticate {
        /// User name.
        name: String,
    },
    /// `user add`.
    UserAdd {
        /// User name.
        name: String,
        /// The user authenticates with a certificate only.
        no_password: bool,
    },
    /// `user delete`.
    UserDelete {
        /// User name.
        name: String,
    },
    /// `user get`.
    UserGet {
        /// User name.
        name: String,
    },
    /// `user passwd`.
    UserChangePassword {
        /// User name.
        name: String,
    },
    /// `user grant-role`.
    UserGrantRole {
        /// User name.
        user: String,
        /// Role name.
        role: String,
    },
    /// `user revoke-role`.
    UserRevokeRole {
        /// User name.
        user: String,
        /// Role name.
        role: String,
    },
    /// `user list`.
    UserList,
    /// `role list`.
    RoleList,
    /// `role add`.
    RoleAdd {
        /// Role name.
        name: String,
    },
    /// `role delete`.
    RoleDelete {
        /// Role name.
        role: String,
    },
    /// `role get`.
    RoleGet {
        /// Role name.
        role: String,
    },
    /// `role grant-permission`.
    RoleGrantPermission {
        /// Role name.
        role: String,
        /// `read`, `write` or `readwrite`.
        permission: String,
        /// First key.
        #[serde(serialize_with = "serialize_bytes")]
        key: Vec<u8>,
        /// Range end.
        #[serde(
            serialize_with = "serialize_bytes",
            skip_serializing_if = "Vec::is_empty"
        )]
        range_end: Vec<u8>,
    },
    /// `role revoke-permission`.
    RoleRevokePermission {
        /// Role name.
        role: String,
        /// First key.
        #[serde(serialize_with = "serialize_bytes")]
        key: Vec<u8>,
        /// Range end.
        #[serde(
            serialize_with = "serialize_bytes",
            skip_serializing_if = "Vec::is_empty"
        )]
        range_end: Vec<u8>,
    },
}

/// A v2 store request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct V2Request {
    /// Request id.
    pub id: u64,
    /// `PUT`, `DELETE`, `QGET`, `SYNC`, … (empty: a no-op).
    pub method: String,
    /// The v2 key, e.g. `/0/members/8e9e05c52164694d/attributes`.
    pub path: String,
    /// The value (JSON for member attributes).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub val: String,
    /// Time for `SYNC` (Unix nanoseconds).
    #[serde(skip_serializing_if = "is_zero_i64")]
    pub time: i64,
}

/// A `raftpb.ConfChange`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfChange {
    /// `addNode`, `removeNode`, `updateNode` or `addLearnerNode`.
    pub change_type: String,
    /// The member the change is about.
    pub node_id: u64,
    /// etcd's change id.
    pub id: u64,
    /// The context: for adds and updates, the member as JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<serde_json::Value>,
    /// The raw context when it is not JSON.
    #[serde(
        serialize_with = "serialize_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub context: Vec<u8>,
}

/// A `raftpb.ConfChangeV2`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfChangeV2 {
    /// `auto`, `jointImplicit` or `jointExplicit`.
    pub transition: String,
    /// `(change type, node id)` pairs.
    pub changes: Vec<(String, u64)>,
    /// The context.
    #[serde(
        serialize_with = "serialize_bytes",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub context: Vec<u8>,
}

/// Entry data that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UnknownPayload {
    /// Why it did not decode.
    pub reason: String,
    /// The data.
    #[serde(serialize_with = "serialize_bytes")]
    pub data: Vec<u8>,
}

impl EntryPayload {
    /// Decodes the data of an entry of type `entry_type`.
    pub fn decode(entry_type: EntryType, data: &[u8]) -> EntryPayload {
        match entry_type {
            EntryType::Normal => decode_normal(data),
            EntryType::ConfChange => match raftpb::ConfChange::decode(data) {
                Ok(cc) => EntryPayload::ConfChange(ConfChange::from_pb(cc)),
                Err(e) => unknown(format!("not a raftpb.ConfChange: {e}"), data),
            },
            EntryType::ConfChangeV2 => match raftpb::ConfChangeV2::decode(data) {
                Ok(cc) => EntryPayload::ConfChangeV2(ConfChangeV2 {
                    transition: match cc.transition {
                        0 => "auto".to_string(),
                        1 => "jointImplicit".to_string(),
                        2 => "jointExplicit".to_string(),
                        t => format!("unknown({t})"),
                    },
                    changes: cc
                        .changes
                        .iter()
                        .map(|c| (conf_change_type(c.change_type), c.node_id))
                        .collect(),
                    context: cc.context,
                }),
                Err(e) => unknown(format!("not a raftpb.ConfChangeV2: {e}"), data),
            },
            EntryType::Unknown(t) => unknown(format!("unknown entry type {t}"), data),
        }
    }

    /// The filter category of this payload.
    pub fn kind(&self) -> super::EntryKind {
        use super::EntryKind;
        match self {
            EntryPayload::Empty => EntryKind::Empty,
            EntryPayload::V2(_) => EntryKind::Request,
            EntryPayload::ConfChange(_) | EntryPayload::ConfChangeV2(_) => EntryKind::ConfigChange,
            EntryPayload::Unknown(_) => EntryKind::UnknownNormal,
            EntryPayload::Request(r) => match &r.op {
                RequestOp::Range(_) => EntryKind::IrrRange,
                RequestOp::Put(_) => EntryKind::IrrPut,
                RequestOp::DeleteRange(_) => EntryKind::IrrDeleteRange,
                RequestOp::Txn(_) => EntryKind::IrrTxn,
                RequestOp::Compaction { .. } => EntryKind::IrrCompaction,
                RequestOp::LeaseGrant { .. } => EntryKind::IrrLeaseGrant,
                RequestOp::LeaseRevoke { .. } => EntryKind::IrrLeaseRevoke,
                RequestOp::LeaseCheckpoint { .. } => EntryKind::IrrLeaseCheckpoint,
                RequestOp::Alarm { .. } => EntryKind::IrrAlarm,
                RequestOp::Auth(_) => EntryKind::IrrAuth,
                RequestOp::V2(_) => EntryKind::IrrV2,
                RequestOp::ClusterVersionSet { .. }
                | RequestOp::ClusterMemberAttrSet { .. }
                | RequestOp::DowngradeInfoSet { .. } => EntryKind::IrrCluster,
                RequestOp::None => EntryKind::IrrNone,
            },
        }
    }
}

fn unknown(reason: String, data: &[u8]) -> EntryPayload {
    EntryPayload::Unknown(UnknownPayload {
        reason,
        data: data.to_vec(),
    })
}

fn decode_normal(data: &[u8]) -> EntryPayload {
    if data.is_empty() {
        return EntryPayload::Empty;
    }
    match InternalRaftRequest::decode(data) {
        Ok(irr) => EntryPayload::Request(InternalRequest::from_pb(irr)),
        Err(irr_error) => match etcdserverpb::V2Request::decode(data) {
            Ok(r) => EntryPayload::V2(V2Request::from_pb(r)),
            Err(v2_error) => unknown(
                format!(
                    "neither an InternalRaftRequest ({irr_error}) nor a v2 Request ({v2_error})"
                ),
                data,
            ),
        },
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

impl InternalRequest {
    fn from_pb(irr: InternalRaftRequest) -> Self {
        let (id, username, auth_revision) = match &irr.header {
            Some(h) => (
                if h.id != 0 { h.id } else { irr.id },
                (!h.username.is_empty()).then(|| text(&h.username)),
                h.auth_revision,
            ),
            None => (irr.id, None, 0),
        };
        InternalRequest {
            request_id: id,
            username,
            auth_revision,
            op: RequestOp::from_pb(irr),
        }
    }
}

impl RequestOp {
    fn from_pb(irr: InternalRaftRequest) -> Self {
        use AuthOp as A;
        // Exactly one is set in what etcd writes; take the first in field order.
        if let Some(v2) = irr.v2 {
            return RequestOp::V2(V2Request::from_pb(v2));
        }
        if let Some(r) = irr.range {
            return RequestOp::Range(RangeOp::from_pb(r));
        }
        if let Some(p) = irr.put {
            return RequestOp::Put(PutOp::from_pb(p));
        }
        if let Some(d) = irr.delete_range {
            return RequestOp::DeleteRange(DeleteOp::from_pb(d));
        }
        if let Some(t) = irr.txn {
            return RequestOp::Txn(TxnOp::from_pb(t));
        }
        if let Some(c) = irr.compaction {
            return RequestOp::Compaction {
                revision: c.revision,
                physical: c.physical,
            };
        }
        if let Some(l) = irr.lease_grant {
            return RequestOp::LeaseGrant {
                lease_id: l.id,
                ttl: l.ttl,
            };
        }
        if let Some(l) = irr.lease_revoke {
            return RequestOp::LeaseRevoke { lease_id: l.id };
        }
        if let Some(a) = irr.alarm {
            return RequestOp::Alarm {
                action: match a.action {
                    0 => "GET".to_string(),
                    1 => "ACTIVATE".to_string(),
                    2 => "DEACTIVATE".to_string(),
                    n => format!("unknown({n})"),
                },
                member_id: a.member_id,
                alarm: match a.alarm {
                    0 => "NONE".to_string(),
                    1 => "NOSPACE".to_string(),
                    2 => "CORRUPT".to_string(),
                    n => format!("unknown({n})"),
                },
            };
        }
        if let Some(l) = irr.lease_checkpoint {
            return RequestOp::LeaseCheckpoint {
                checkpoints: l
                    .checkpoints
                    .iter()
                    .map(|c| LeaseCheckpoint {
                        lease_id: c.id,
                        remaining_ttl: c.remaining_ttl,
                    })
                    .collect(),
            };
        }
        let auth = if irr.auth_enable.is_some() {
            Some(A::Enable)
        } else if irr.auth_disable.is_some() {
            Some(A::Disable)
        } else if let Some(a) = irr.authenticate {
            Some(A::Authenticate {
                name: text(&a.name),
            })
        } else if let Some(a) = irr.auth_user_add {
            Some(A::UserAdd {
                name: text(&a.name),
                no_password: a.options.is_some_and(|o| o.no_password),
            })
        } else if let Some(a) = irr.auth_user_delete {
            Some(A::UserDelete {
                name: text(&a.name),
            })
        } else if let Some(a) = irr.auth_user_get {
            Some(A::UserGet {
                name: text(&a.name),
            })
        } else if let Some(a) = irr.auth_user_change_password {
            Some(A::UserChangePassword {
                name: text(&a.name),
            })
        } else if let Some(a) = irr.auth_user_grant_role {
            Some(A::UserGrantRole {
                user: text(&a.user),
                role: text(&a.role),
            })
        } else if let Some(a) = irr.auth_user_revoke_role {
            Some(A::UserRevokeRole {
                user: text(&a.name),
                role: text(&a.role),
            })
        } else if irr.auth_user_list.is_some() {
            Some(A::UserList)
        } else if irr.auth_role_list.is_some() {
            Some(A::RoleList)
        } else if let Some(a) = irr.auth_role_add {
            Some(A::RoleAdd {
                name: text(&a.name),
            })
        } else if let Some(a) = irr.auth_role_delete {
            Some(A::RoleDelete {
                role: text(&a.role),
            })
        } else if let Some(a) = irr.auth_role_get {
            Some(A::RoleGet {
                role: text(&a.role),
            })
        } else if let Some(a) = irr.auth_role_grant_permission {
            let perm = a.perm.unwrap_or_default();
            Some(A::RoleGrantPermission {
                role: text(&a.name),
                permission: match perm.perm_type {
                    0 => "read".to_string(),
                    1 => "write".to_string(),
                    2 => "readwrite".to_string(),
                    n => format!("unknown({n})"),
                },
                key: perm.key,
                range_end: perm.range_end,
            })
        } else {
            irr.auth_role_revoke_permission
                .map(|a| A::RoleRevokePermission {
                    role: text(&a.role),
                    key: a.key,
                    range_end: a.range_end,
                })
        };
        if let Some(auth) = auth {
            return RequestOp::Auth(auth);
        }
        if let Some(c) = irr.cluster_version_set {
            return RequestOp::ClusterVersionSet {
                version: text(&c.ver),
            };
        }
        if let Some(c) = irr.cluster_member_attr_set {
            let attrs = c.member_attributes.unwrap_or_default();
            return RequestOp::ClusterMemberAttrSet {
                member_id: c.member_id,
                name: text(&attrs.name),
                client_urls: attrs.client_urls.iter().map(|u| text(u)).collect(),
            };
        }
        if let Some(d) = irr.downgrade_info_set {
            return RequestOp::DowngradeInfoSet {
                enabled: d.enabled,
                version: text(&d.ver),
            };
        }
        RequestOp::None
    }
}

impl RangeOp {
    fn from_pb(r: etcdserverpb::RangeRequest) -> Self {
        RangeOp {
            key: r.key,
            range_end: r.range_end,
            revision: r.revision,
            limit: r.limit,
        }
    }
}

impl PutOp {
    fn from_pb(p: etcdserverpb::PutRequest) -> Self {
        PutOp {
            key: p.key,
            value_size: p.value.len(),
            value: p.value,
            lease: p.lease,
            ignore_value: p.ignore_value,
            ignore_lease: p.ignore_lease,
            prev_kv: p.prev_kv,
        }
    }
}

impl DeleteOp {
    fn from_pb(d: etcdserverpb::DeleteRangeRequest) -> Self {
        DeleteOp {
            key: d.key,
            range_end: d.range_end,
            prev_kv: d.prev_kv,
        }
    }
}

impl TxnOp {
    fn from_pb(t: etcdserverpb::TxnRequest) -> Self {
        let steps = |ops: Vec<etcdserverpb::RequestOp>| -> Vec<TxnStep> {
            ops.into_iter()
                .map(|op| match op.request {
                    Some(request_op::Request::RequestRange(r)) => {
                        TxnStep::Range(RangeOp::from_pb(r))
                    }
                    Some(request_op::Request::RequestPut(p)) => TxnStep::Put(PutOp::from_pb(p)),
                    Some(request_op::Request::RequestDeleteRange(d)) => {
                        TxnStep::DeleteRange(DeleteOp::from_pb(d))
                    }
                    Some(request_op::Request::RequestTxn(t)) => TxnStep::Txn(TxnOp::from_pb(t)),
                    None => TxnStep::None,
                })
                .collect()
        };
        TxnOp {
            compare: t.compare.into_iter().map(TxnCompare::from_pb).collect(),
            success: steps(t.success),
            failure: steps(t.failure),
        }
    }

    /// Puts in this transaction, both branches, nested transactions included.
    pub fn put_count(&self) -> usize {
        self.success
            .iter()
            .chain(&self.failure)
            .map(|step| match step {
                TxnStep::Put(_) => 1,
                TxnStep::Txn(t) => t.put_count(),
                _ => 0,
            })
            .sum()
    }
}

impl TxnCompare {
    fn from_pb(c: etcdserverpb::Compare) -> Self {
        use etcdserverpb::compare::TargetUnion;
        let operand = match c.target_union {
            Some(TargetUnion::Version(v))
            | Some(TargetUnion::CreateRevision(v))
            | Some(TargetUnion::ModRevision(v))
            | Some(TargetUnion::Lease(v)) => v.to_string(),
            Some(TargetUnion::Value(v)) => crate::display_bytes(&v),
            None => "0".to_string(),
        };
        TxnCompare {
            target: match c.target {
                0 => "version".to_string(),
                1 => "create".to_string(),
                2 => "mod".to_string(),
                3 => "value".to_string(),
                4 => "lease".to_string(),
                n => format!("unknown({n})"),
            },
            result: match c.result {
                0 => "=".to_string(),
                1 => ">".to_string(),
                2 => "<".to_string(),
                3 => "!=".to_string(),
                n => format!("unknown({n})"),
            },
            key: c.key,
            range_end: c.range_end,
            operand,
        }
    }
}

impl V2Request {
    fn from_pb(r: etcdserverpb::V2Request) -> Self {
        V2Request {
            id: r.id,
            method: text(&r.method),
            path: text(&r.path),
            val: text(&r.val),
            time: r.time,
        }
    }
}

fn conf_change_type(t: i32) -> String {
    match t {
        0 => "addNode".to_string(),
        1 => "removeNode".to_string(),
        2 => "updateNode".to_string(),
        3 => "addLearnerNode".to_string(),
        n => format!("unknown({n})"),
    }
}

impl ConfChange {
    fn from_pb(cc: raftpb::ConfChange) -> Self {
        let member = serde_json::from_slice::<serde_json::Value>(&cc.context).ok();
        ConfChange {
            change_type: conf_change_type(cc.change_type),
            node_id: cc.node_id,
            id: cc.id,
            context: if member.is_some() {
                Vec::new()
            } else {
                cc.context
            },
            member,
        }
    }
}

/// Renders a key (and range end) the way etcdctl shows ranges.
fn key_range(key: &[u8], range_end: &[u8]) -> String {
    let key = crate::display_bytes(key);
    if range_end.is_empty() {
        key
    } else {
        format!("[{key}, {})", crate::display_bytes(range_end))
    }
}

impl fmt::Display for EntryPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryPayload::Empty => f.write_str("empty"),
            EntryPayload::Request(r) => {
                write!(f, "{}", r.op)?;
                if let Some(user) = &r.username {
                    write!(f, " user={user:?}")?;
                }
                Ok(())
            }
            EntryPayload::V2(r) => write!(f, "v2 {r}"),
            EntryPayload::ConfChange(c) => {
                write!(f, "method={} id={:x}", c.change_type, c.node_id)?;
                if let Some(m) = &c.member {
                    write!(f, " member={m}")?;
                }
                Ok(())
            }
            EntryPayload::ConfChangeV2(c) => {
                write!(f, "transition={}", c.transition)?;
                for (t, id) in &c.changes {
                    write!(f, " {t}={id:x}")?;
                }
                Ok(())
            }
            EntryPayload::Unknown(u) => write!(f, "??? ({} bytes: {})", u.data.len(), u.reason),
        }
    }
}

impl fmt::Display for RequestOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestOp::None => f.write_str("request without operation"),
            RequestOp::Range(r) => write!(f, "{r}"),
            RequestOp::Put(p) => write!(f, "{p}"),
            RequestOp::DeleteRange(d) => write!(f, "{d}"),
            RequestOp::Txn(t) => write!(f, "{t}"),
            RequestOp::Compaction { revision, physical } => {
                write!(f, "compaction revision={revision}")?;
                if *physical {
                    f.write_str(" physical")?;
                }
                Ok(())
            }
            RequestOp::LeaseGrant { lease_id, ttl } => {
                write!(f, "lease_grant id={lease_id:x} ttl={ttl}")
            }
            RequestOp::LeaseRevoke { lease_id } => write!(f, "lease_revoke id={lease_id:x}"),
            RequestOp::LeaseCheckpoint { checkpoints } => {
                f.write_str("lease_checkpoint")?;
                for c in checkpoints {
                    write!(f, " {:x}={}", c.lease_id, c.remaining_ttl)?;
                }
                Ok(())
            }
            RequestOp::Alarm {
                action,
                member_id,
                alarm,
            } => write!(f, "alarm {action} {alarm} member={member_id:x}"),
            RequestOp::Auth(a) => write!(f, "{a}"),
            RequestOp::V2(r) => write!(f, "v2 {r}"),
            RequestOp::ClusterVersionSet { version } => {
                write!(f, "cluster_version_set version={version}")
            }
            RequestOp::ClusterMemberAttrSet {
                member_id,
                name,
                client_urls,
            } => write!(
                f,
                "cluster_member_attr_set id={member_id:x} name={name:?} client_urls={}",
                client_urls.join(",")
            ),
            RequestOp::DowngradeInfoSet { enabled, version } => {
                write!(f, "downgrade_info_set enabled={enabled} version={version}")
            }
        }
    }
}

impl fmt::Display for RangeOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "range {}", key_range(&self.key, &self.range_end))?;
        if self.revision != 0 {
            write!(f, " revision={}", self.revision)?;
        }
        if self.limit != 0 {
            write!(f, " limit={}", self.limit)?;
        }
        Ok(())
    }
}

impl fmt::Display for PutOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "put {} value_size={}",
            crate::display_bytes(&self.key),
            self.value_size
        )?;
        if self.lease != 0 {
            write!(f, " lease={:x}", self.lease)?;
        }
        if self.ignore_value {
            f.write_str(" ignore_value")?;
        }
        if self.ignore_lease {
            f.write_str(" ignore_lease")?;
        }
        Ok(())
    }
}

impl fmt::Display for DeleteOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "delete_range {}", key_range(&self.key, &self.range_end))
    }
}

impl fmt::Display for TxnCompare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({}) {} {}",
            self.target,
            key_range(&self.key, &self.range_end),
            self.result,
            self.operand
        )
    }
}

impl fmt::Display for TxnStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TxnStep::Range(r) => write!(f, "{r}"),
            TxnStep::Put(p) => write!(f, "{p}"),
            TxnStep::DeleteRange(d) => write!(f, "{d}"),
            TxnStep::Txn(t) => write!(f, "{t}"),
            TxnStep::None => f.write_str("none"),
        }
    }
}

impl fmt::Display for TxnOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
            f.write_str("[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str("; ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str("]")
        }
        f.write_str("txn compare=")?;
        list(f, &self.compare)?;
        f.write_str(" success=")?;
        list(f, &self.success)?;
        f.write_str(" failure=")?;
        list(f, &self.failure)
    }
}

impl fmt::Display for AuthOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthOp::Enable => f.write_str("auth_enable"),
            AuthOp::Disable => f.write_str("auth_disable"),
            AuthOp::Authenticate { name } => write!(f, "authenticate name={name:?}"),
            AuthOp::UserAdd { name, no_password } => {
                write!(f, "auth_user_add name={name:?}")?;
                if *no_password {
                    f.write_str(" no_password")?;
                }
                Ok(())
            }
            AuthOp::UserDelete { name } => write!(f, "auth_user_delete name={name:?}"),
            AuthOp::UserGet { name } => write!(f, "auth_user_get name={name:?}"),
            AuthOp::UserChangePassword { name } => {
                write!(f, "auth_user_change_password name={name:?}")
            }
            AuthOp::UserGrantRole { user, role } => {
                write!(f, "auth_user_grant_role user={user:?} role={role:?}")
            }
            AuthOp::UserRevokeRole { user, role } => {
                write!(f, "auth_user_revoke_role user={user:?} role={role:?}")
            }
            AuthOp::UserList => f.write_str("auth_user_list"),
            AuthOp::RoleList => f.write_str("auth_role_list"),
            AuthOp::RoleAdd { name } => write!(f, "auth_role_add name={name:?}"),
            AuthOp::RoleDelete { role } => write!(f, "auth_role_delete role={role:?}"),
            AuthOp::RoleGet { role } => write!(f, "auth_role_get role={role:?}"),
            AuthOp::RoleGrantPermission {
                role,
                permission,
                key,
                range_end,
            } => write!(
                f,
                "auth_role_grant_permission role={role:?} {permission} {}",
                key_range(key, range_end)
            ),
            AuthOp::RoleRevokePermission {
                role,
                key,
                range_end,
            } => write!(
                f,
                "auth_role_revoke_permission role={role:?} {}",
                key_range(key, range_end)
            ),
        }
    }
}

impl fmt::Display for V2Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.method.as_str() {
            "" => f.write_str("noop"),
            "SYNC" => write!(f, "method=SYNC time={}", self.time),
            "QGET" | "DELETE" => write!(f, "method={} path={:?}", self.method, self.path),
            _ => write!(
                f,
                "method={} path={:?} val={:?}",
                self.method, self.path, self.val
            ),
        }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

fn is_zero_i64(v: &i64) -> bool {
    *v == 0
}

fn is_false(v: &bool) -> bool {
    !*v
}

/// Serializes bytes without loss: as a string when they are UTF-8 without control
/// characters other than whitespace, else as `{"base64": "…"}` (the convention of
/// Salvor's other JSON output).
pub(crate) fn serialize_bytes<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let text = std::str::from_utf8(bytes).ok().filter(|t| {
        !t.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    });
    match text {
        Some(t) => s.serialize_str(t),
        None => {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(Some(1))?;
            m.serialize_entry("base64", &base64(bytes))?;
            m.end()
        }
    }
}

/// Standard base64 with padding.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(&[0xff, 0x00, 0x10, 0x80]), "/wAQgA==");
    }

    #[test]
    fn random_data_never_panics() {
        let mut x = 0x1234_5678_9abc_def0u64;
        for len in 0..2000usize {
            let data: Vec<u8> = (0..len % 97)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            for t in [0, 1, 2, 9] {
                let p = EntryPayload::decode(EntryType::from_i32(t), &data);
                let _ = p.to_string();
                let _ = p.kind();
                let _ = serde_json::to_string(&p).unwrap();
            }
        }
    }

    #[test]
    fn decodes_requests_as_etcd_does() {
        let put = etcdserverpb::InternalRaftRequest {
            header: Some(etcdserverpb::RequestHeader {
                id: 7,
                ..Default::default()
            }),
            put: Some(etcdserverpb::PutRequest {
                key: b"/k1".to_vec(),
                value: b"v1".to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let p = EntryPayload::decode(EntryType::Normal, &put.encode_to_vec());
        assert_eq!(p.to_string(), "put \"/k1\" value_size=2");
        assert_eq!(p.kind(), super::super::EntryKind::IrrPut);
        let v2 = etcdserverpb::V2Request {
            id: 1,
            method: b"PUT".to_vec(),
            path: b"/0/version".to_vec(),
            val: b"3.4.0".to_vec(),
            ..Default::default()
        };
        let p = EntryPayload::decode(EntryType::Normal, &v2.encode_to_vec());
        assert_eq!(
            p.to_string(),
            "v2 method=PUT path=\"/0/version\" val=\"3.4.0\""
        );
        assert_eq!(
            EntryPayload::decode(EntryType::Normal, &[]),
            EntryPayload::Empty
        );
        assert!(matches!(
            EntryPayload::decode(EntryType::Normal, &[0xff, 0xff]),
            EntryPayload::Unknown(_)
        ));
        let json = serde_json::to_value(EntryPayload::decode(
            EntryType::Normal,
            &put.encode_to_vec(),
        ))
        .unwrap();
        assert_eq!(json["kind"], "request");
        assert_eq!(json["op"], "put");
        assert_eq!(json["key"], "/k1");
        assert_eq!(json["valueSize"], 2);
        assert_eq!(json["requestId"], 7);

        // Flattened fields never collide (a lease id next to the request id).
        let grant = etcdserverpb::InternalRaftRequest {
            header: Some(etcdserverpb::RequestHeader {
                id: 9,
                ..Default::default()
            }),
            lease_grant: Some(etcdserverpb::LeaseGrantRequest { ttl: 60, id: 5 }),
            ..Default::default()
        };
        let text = serde_json::to_string(&EntryPayload::decode(
            EntryType::Normal,
            &grant.encode_to_vec(),
        ))
        .unwrap();
        assert_eq!(
            text,
            r#"{"kind":"request","requestId":9,"op":"leaseGrant","leaseId":5,"ttl":60}"#
        );
    }
}
