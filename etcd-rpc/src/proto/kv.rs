//! `etcdserverpb` messages of the `KV` service: Range, Put, DeleteRange, Txn, Compact.

use super::ResponseHeader;
use crate::proto::mvccpb::KeyValue;

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
    /// (see [`crate::prefix_range_end`]) means every key with the prefix `key`.
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

/// `RangeResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RangeResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The key-value pairs; empty with `count_only`.
    #[prost(message, repeated, tag = "2")]
    pub kvs: Vec<KeyValue>,
    /// Whether more keys remain in the range beyond `limit`.
    #[prost(bool, tag = "3")]
    pub more: bool,
    /// Total number of keys in the range.
    #[prost(int64, tag = "4")]
    pub count: i64,
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

/// `PutResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct PutResponse {
    /// Response header; its revision is the revision of this write.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The previous key-value pair, when `prev_kv` was requested and the key existed.
    #[prost(message, optional, tag = "2")]
    pub prev_kv: Option<KeyValue>,
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

/// `DeleteRangeResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DeleteRangeResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Number of keys deleted.
    #[prost(int64, tag = "2")]
    pub deleted: i64,
    /// The deleted pairs, when `prev_kv` was requested.
    #[prost(message, repeated, tag = "3")]
    pub prev_kvs: Vec<KeyValue>,
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

/// `ResponseOp`: the result of one [`RequestOp`].
#[derive(Clone, PartialEq, prost::Message)]
pub struct ResponseOp {
    /// The result.
    #[prost(oneof = "response_op::Response", tags = "1, 2, 3, 4")]
    pub response: Option<response_op::Response>,
}

/// Nested types of [`ResponseOp`].
pub mod response_op {
    /// `ResponseOp.response`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum Response {
        /// Result of a range read.
        #[prost(message, tag = "1")]
        ResponseRange(super::RangeResponse),
        /// Result of a put.
        #[prost(message, tag = "2")]
        ResponsePut(super::PutResponse),
        /// Result of a delete.
        #[prost(message, tag = "3")]
        ResponseDeleteRange(super::DeleteRangeResponse),
        /// Result of a nested transaction.
        #[prost(message, tag = "4")]
        ResponseTxn(super::TxnResponse),
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

/// `TxnResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TxnResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Whether the guards held (the `success` branch ran).
    #[prost(bool, tag = "2")]
    pub succeeded: bool,
    /// One response per operation of the branch that ran.
    #[prost(message, repeated, tag = "3")]
    pub responses: Vec<ResponseOp>,
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

/// `CompactionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CompactionResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
