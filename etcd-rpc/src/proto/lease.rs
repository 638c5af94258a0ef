//! `etcdserverpb` messages of the `Lease` service (`LeaseGrantRequest` and
//! `LeaseRevokeRequest` are [`snapshot_format::etcdserverpb`]'s).

use super::ResponseHeader;

/// `LeaseGrantResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseGrantResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The granted lease ID.
    #[prost(int64, tag = "2")]
    pub id: i64,
    /// The granted TTL in seconds.
    #[prost(int64, tag = "3")]
    pub ttl: i64,
    /// Error text, if any.
    #[prost(string, tag = "4")]
    pub error: String,
}

/// `LeaseRevokeResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseRevokeResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `LeaseKeepAliveRequest`: one message of the keep-alive stream.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct LeaseKeepAliveRequest {
    /// The lease to refresh.
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// `LeaseKeepAliveResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseKeepAliveResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The refreshed lease.
    #[prost(int64, tag = "2")]
    pub id: i64,
    /// The new TTL in seconds; 0 or less if the lease is gone.
    #[prost(int64, tag = "3")]
    pub ttl: i64,
}

/// `LeaseTimeToLiveRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct LeaseTimeToLiveRequest {
    /// The lease ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
    /// Also list the keys attached to the lease.
    #[prost(bool, tag = "2")]
    pub keys: bool,
}

/// `LeaseTimeToLiveResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseTimeToLiveResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The lease ID.
    #[prost(int64, tag = "2")]
    pub id: i64,
    /// Remaining TTL in seconds; -1 if the lease does not exist.
    #[prost(int64, tag = "3")]
    pub ttl: i64,
    /// TTL granted at creation or last renewal.
    #[prost(int64, tag = "4")]
    pub granted_ttl: i64,
    /// Keys attached to the lease, when requested.
    #[prost(bytes = "vec", repeated, tag = "5")]
    pub keys: Vec<Vec<u8>>,
}

/// `LeaseLeasesRequest`: list all leases.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct LeaseLeasesRequest {}

/// `LeaseStatus`: one lease in a [`LeaseLeasesResponse`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct LeaseStatus {
    /// The lease ID.
    #[prost(int64, tag = "1")]
    pub id: i64,
}

/// `LeaseLeasesResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LeaseLeasesResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The leases.
    #[prost(message, repeated, tag = "2")]
    pub leases: Vec<LeaseStatus>,
}
