//! `etcdserverpb` messages of the `Watch` service.

use super::ResponseHeader;
use crate::proto::mvccpb::Event;

/// `WatchRequest`: one message on the bidirectional watch stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchRequest {
    /// The request.
    #[prost(oneof = "watch_request::RequestUnion", tags = "1, 2, 3")]
    pub request_union: Option<watch_request::RequestUnion>,
}

/// Nested types of [`WatchRequest`].
pub mod watch_request {
    /// `WatchRequest.request_union`.
    #[derive(Clone, PartialEq, prost::Oneof)]
    pub enum RequestUnion {
        /// Start a watcher.
        #[prost(message, tag = "1")]
        CreateRequest(super::WatchCreateRequest),
        /// Stop a watcher.
        #[prost(message, tag = "2")]
        CancelRequest(super::WatchCancelRequest),
        /// Ask for a progress notification.
        #[prost(message, tag = "3")]
        ProgressRequest(super::WatchProgressRequest),
    }
}

/// `WatchCreateRequest.FilterType`: events the watcher does not want.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum WatchFilterType {
    /// Drop put events.
    NoPut = 0,
    /// Drop delete events.
    NoDelete = 1,
}

/// `WatchCreateRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct WatchCreateRequest {
    /// First key to watch.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Upper bound (exclusive) of the watched range; empty for the single key.
    #[prost(bytes = "vec", tag = "2")]
    pub range_end: Vec<u8>,
    /// Revision to start from (inclusive); 0 for "now".
    #[prost(int64, tag = "3")]
    pub start_revision: i64,
    /// Ask for periodic empty responses carrying the current revision.
    #[prost(bool, tag = "4")]
    pub progress_notify: bool,
    /// Event types filtered out, see [`WatchFilterType`].
    #[prost(enumeration = "WatchFilterType", repeated, tag = "5")]
    pub filters: Vec<i32>,
    /// Include the previous key-value pair in events.
    #[prost(bool, tag = "6")]
    pub prev_kv: bool,
    /// Client-chosen watch ID; 0 lets the server choose.
    #[prost(int64, tag = "7")]
    pub watch_id: i64,
    /// Allow the server to split large revisions over several responses.
    #[prost(bool, tag = "8")]
    pub fragment: bool,
}

/// `WatchCancelRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct WatchCancelRequest {
    /// The watcher to cancel.
    #[prost(int64, tag = "1")]
    pub watch_id: i64,
}

/// `WatchProgressRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct WatchProgressRequest {}

/// `WatchResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WatchResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The watcher this response belongs to.
    #[prost(int64, tag = "2")]
    pub watch_id: i64,
    /// Set on the response to a create request.
    #[prost(bool, tag = "3")]
    pub created: bool,
    /// Set when the watcher was cancelled (by request or by the server).
    #[prost(bool, tag = "4")]
    pub canceled: bool,
    /// When the start revision was compacted: the compaction revision.
    #[prost(int64, tag = "5")]
    pub compact_revision: i64,
    /// Why the server cancelled the watcher.
    #[prost(string, tag = "6")]
    pub cancel_reason: String,
    /// More fragments of this revision follow.
    #[prost(bool, tag = "7")]
    pub fragment: bool,
    /// The events.
    #[prost(message, repeated, tag = "11")]
    pub events: Vec<Event>,
}
