//! etcd's mvcc record types (`mvccpb`), as stored in the `key` bucket and sent over gRPC.
//!
//! Declared with `prost` derives so no `protoc` is needed to build.

/// `mvccpb.KeyValue`: one revision of one key.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct KeyValue {
    /// The user key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Revision of the last creation of this key.
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    /// Revision of the last modification of this key.
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    /// Number of modifications since the key was created (1 on creation).
    #[prost(int64, tag = "4")]
    pub version: i64,
    /// The value.
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
    /// Lease ID attached to the key, 0 for none.
    #[prost(int64, tag = "6")]
    pub lease: i64,
}

/// `mvccpb.Event.EventType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum EventType {
    /// A put.
    Put = 0,
    /// A delete.
    Delete = 1,
}

/// `mvccpb.Event`: a watch event.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Put or delete.
    #[prost(enumeration = "EventType", tag = "1")]
    pub r#type: i32,
    /// The key-value after the event.
    #[prost(message, optional, tag = "2")]
    pub kv: Option<KeyValue>,
    /// The key-value before the event, when requested.
    #[prost(message, optional, tag = "3")]
    pub prev_kv: Option<KeyValue>,
}
