//! `etcdserverpb` messages of the `Cluster` service: membership.

use super::ResponseHeader;

/// `Member`: one member of the cluster.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Member {
    /// Member ID.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// Member name; empty until the member has started and published it.
    #[prost(string, tag = "2")]
    pub name: String,
    /// URLs the other members use to reach this one.
    #[prost(string, repeated, tag = "3")]
    pub peer_urls: Vec<String>,
    /// URLs clients use; empty until the member has started.
    #[prost(string, repeated, tag = "4")]
    pub client_urls: Vec<String>,
    /// Whether the member is a non-voting learner.
    #[prost(bool, tag = "5")]
    pub is_learner: bool,
}

/// `MemberAddRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct MemberAddRequest {
    /// Peer URLs of the new member.
    #[prost(string, repeated, tag = "1")]
    pub peer_urls: Vec<String>,
    /// Add the member as a non-voting learner.
    #[prost(bool, tag = "2")]
    pub is_learner: bool,
}

/// `MemberAddResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberAddResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The added member.
    #[prost(message, optional, tag = "2")]
    pub member: Option<Member>,
    /// The members after the change.
    #[prost(message, repeated, tag = "3")]
    pub members: Vec<Member>,
}

/// `MemberRemoveRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct MemberRemoveRequest {
    /// The member ID.
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

/// `MemberRemoveResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberRemoveResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The members after the change.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}

/// `MemberUpdateRequest`: change a member's peer URLs.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct MemberUpdateRequest {
    /// The member ID.
    #[prost(uint64, tag = "1")]
    pub id: u64,
    /// The new peer URLs.
    #[prost(string, repeated, tag = "2")]
    pub peer_urls: Vec<String>,
}

/// `MemberUpdateResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberUpdateResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The members after the change.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}

/// `MemberListRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct MemberListRequest {
    /// Go through raft for an up-to-date list (etcd 3.5+; ignored by 3.4).
    #[prost(bool, tag = "1")]
    pub linearizable: bool,
}

/// `MemberListResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberListResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The members.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}

/// `MemberPromoteRequest`: turn a learner into a voting member.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct MemberPromoteRequest {
    /// The learner's member ID.
    #[prost(uint64, tag = "1")]
    pub id: u64,
}

/// `MemberPromoteResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MemberPromoteResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The members after the change.
    #[prost(message, repeated, tag = "2")]
    pub members: Vec<Member>,
}
