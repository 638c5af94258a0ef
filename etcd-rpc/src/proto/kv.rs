//! `etcdserverpb` responses of the `KV` service: Range, Put, DeleteRange, Txn, Compact
//! (the requests are [`snapshot_format::etcdserverpb`]'s).

use super::ResponseHeader;
use crate::proto::mvccpb::KeyValue;

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

/// `ResponseOp`: the result of one [`RequestOp`](super::RequestOp).
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

/// `CompactionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct CompactionResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
