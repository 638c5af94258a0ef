//! The error type of this crate.

use std::time::Duration;

use tonic::{Code, Status};

/// Everything that can go wrong talking to etcd.
///
/// Errors returned by the server keep the gRPC [`Status`] as their source; the
/// etcd errors callers commonly react to get their own variant (matched on
/// etcd's error text, which is stable across releases, like `clientv3` does).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// [`crate::Client::connect`] was given no endpoint.
    #[error("no etcd endpoint given")]
    NoEndpoints,

    /// An endpoint is not a valid URI.
    #[error("invalid etcd endpoint {endpoint:?}")]
    InvalidEndpoint {
        /// The endpoint as given.
        endpoint: String,
        /// Why it is invalid.
        #[source]
        source: tonic::transport::Error,
    },

    /// The TLS material could not be used (bad PEM, bad key, ...).
    #[error("invalid TLS configuration for {endpoint}")]
    Tls {
        /// The endpoint it was applied to.
        endpoint: String,
        /// Why it is invalid.
        #[source]
        source: tonic::transport::Error,
    },

    /// The TLS options are incomplete.
    #[error("invalid TLS options: {0}")]
    IncompleteTls(&'static str),

    /// A TLS file could not be read.
    #[error("cannot read TLS file {path}")]
    TlsFile {
        /// The file.
        path: std::path::PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// None of the endpoints accepted a connection within the dial timeout.
    #[error("cannot connect to any etcd endpoint of {endpoints:?}")]
    Connect {
        /// Every endpoint tried.
        endpoints: Vec<String>,
        /// The error of the first endpoint.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// No answer within the request timeout.
    #[error("{}: no answer within {timeout:?}", short(method))]
    Timeout {
        /// The gRPC method.
        method: &'static str,
        /// The timeout that expired.
        timeout: Duration,
    },

    /// The token returned by Authenticate cannot be sent as gRPC metadata.
    #[error("etcd returned an auth token that is not valid gRPC metadata")]
    InvalidTokenMetadata(#[source] tonic::metadata::errors::InvalidMetadataValue),

    /// The requested revision has been compacted away.
    #[error("{}: {}", short(method), status.message())]
    Compacted {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// The requested revision is newer than the store's current revision.
    #[error("{}: {}", short(method), status.message())]
    FutureRevision {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// The backend quota is exhausted (NOSPACE alarm): only reads and deletes succeed.
    #[error("{}: {}", short(method), status.message())]
    NoSpace {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// The cluster has a corruption alarm raised.
    #[error("{}: {}", short(method), status.message())]
    Corrupt {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// The member has no leader (no quorum, or an election is in progress).
    #[error("{}: {}", short(method), status.message())]
    NoLeader {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// The server timed out applying the request; it may or may not have been applied.
    #[error("{}: {}", short(method), status.message())]
    ServerTimeout {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// No member with the given ID.
    #[error("{}: {}", short(method), status.message())]
    MemberNotFound {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// No lease with the given ID.
    #[error("{}: {}", short(method), status.message())]
    LeaseNotFound {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// Authentication is not enabled on the cluster.
    #[error("{}: {}", short(method), status.message())]
    AuthNotEnabled {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// Wrong user name or password.
    #[error("{}: {}", short(method), status.message())]
    AuthFailed {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// The auth token is missing, expired or unknown to the member.
    #[error("{}: {}", short(method), status.message())]
    InvalidAuthToken {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// The user lacks the permission for this request.
    #[error("{}: {}", short(method), status.message())]
    PermissionDenied {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd.
        #[source]
        status: Status,
    },

    /// The endpoint could not be reached (connection refused, dial or TLS
    /// failure), or the connection broke during the call: for a write, etcd may
    /// or may not have applied it.
    #[error("{}: cannot reach etcd: {}", short(method), status.message())]
    Transport {
        /// The gRPC method.
        method: &'static str,
        /// The status made up by the transport (its source is the I/O error).
        #[source]
        status: Status,
    },

    /// etcd answered that it is unavailable (for example while it has no leader).
    #[error("{}: etcd unavailable: {}", short(method), status.message())]
    Unavailable {
        /// The gRPC method.
        method: &'static str,
        /// The status (code `Unavailable`).
        #[source]
        status: Status,
    },

    /// Any other gRPC error.
    #[error("{}: {:?}: {}", short(method), status.code(), status.message())]
    Grpc {
        /// The gRPC method.
        method: &'static str,
        /// The status returned by etcd or by the transport.
        #[source]
        status: Status,
    },

    /// etcd cancelled a watcher when creating it (for example because its start
    /// revision was compacted, or for lack of permission).
    #[error("watch cancelled by etcd: {reason} (compact revision {compact_revision})")]
    WatchCanceled {
        /// etcd's reason.
        reason: String,
        /// The compaction revision, when the start revision was compacted.
        compact_revision: i64,
    },

    /// Writing a snapshot to its destination failed.
    #[error("cannot write the snapshot")]
    SnapshotWrite(#[source] std::io::Error),

    /// A plain HTTP request to a member's client URL (`/metrics`) failed.
    #[error("GET {url}: {what}")]
    Http {
        /// The URL requested.
        url: String,
        /// What failed (connect, TLS, timeout, status, size).
        what: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },

    /// The server closed a stream in a way the protocol does not allow.
    #[error("{}: {reason}", short(method))]
    Protocol {
        /// The gRPC method.
        method: &'static str,
        /// What was wrong.
        reason: String,
    },
}

/// `"/etcdserverpb.KV/Range"` -> `"KV/Range"`.
fn short(method: &str) -> &str {
    method.strip_prefix("/etcdserverpb.").unwrap_or(method)
}

impl Error {
    /// Classifies a gRPC status returned for `method`.
    pub(crate) fn from_status(method: &'static str, status: Status) -> Self {
        if crate::client::local_transport_failure(&status) {
            return Error::Transport { method, status };
        }
        let message = status.message();
        if message.starts_with("etcdserver: request timed out") {
            return Error::ServerTimeout { method, status };
        }
        match message {
            "etcdserver: mvcc: required revision has been compacted" => {
                Error::Compacted { method, status }
            }
            "etcdserver: mvcc: required revision is a future revision" => {
                Error::FutureRevision { method, status }
            }
            "etcdserver: mvcc: database space exceeded" => Error::NoSpace { method, status },
            "etcdserver: corrupt cluster" => Error::Corrupt { method, status },
            "etcdserver: no leader" => Error::NoLeader { method, status },
            "etcdserver: member not found" => Error::MemberNotFound { method, status },
            "etcdserver: requested lease not found" => Error::LeaseNotFound { method, status },
            "etcdserver: authentication is not enabled" => Error::AuthNotEnabled { method, status },
            "etcdserver: authentication failed, invalid user ID or password" => {
                Error::AuthFailed { method, status }
            }
            "etcdserver: invalid auth token" => Error::InvalidAuthToken { method, status },
            "etcdserver: permission denied" => Error::PermissionDenied { method, status },
            _ if status.code() == Code::Unavailable => Error::Unavailable { method, status },
            _ => Error::Grpc { method, status },
        }
    }

    /// The gRPC status, when the error came from the server or the transport.
    pub fn status(&self) -> Option<&Status> {
        match self {
            Error::Compacted { status, .. }
            | Error::FutureRevision { status, .. }
            | Error::NoSpace { status, .. }
            | Error::Corrupt { status, .. }
            | Error::NoLeader { status, .. }
            | Error::ServerTimeout { status, .. }
            | Error::MemberNotFound { status, .. }
            | Error::LeaseNotFound { status, .. }
            | Error::AuthNotEnabled { status, .. }
            | Error::AuthFailed { status, .. }
            | Error::InvalidAuthToken { status, .. }
            | Error::PermissionDenied { status, .. }
            | Error::Transport { status, .. }
            | Error::Unavailable { status, .. }
            | Error::Grpc { status, .. } => Some(status),
            _ => None,
        }
    }

    /// The gRPC status code, when the error came from the server or the transport.
    pub fn code(&self) -> Option<Code> {
        self.status().map(Status::code)
    }

    /// The gRPC status message (etcd's error text), when there is one.
    pub fn grpc_message(&self) -> Option<&str> {
        self.status().map(Status::message)
    }

    /// Whether etcd could not be reached or did not answer (connection refused,
    /// dial timeout, broken connection, no answer in time, server unavailable):
    /// the caller may try another member.
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self,
            Error::Connect { .. }
                | Error::Timeout { .. }
                | Error::Transport { .. }
                | Error::Unavailable { .. }
                | Error::NoLeader { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_etcd_errors_by_message() {
        let compacted = Error::from_status(
            crate::proto::method::RANGE,
            Status::out_of_range("etcdserver: mvcc: required revision has been compacted"),
        );
        assert!(matches!(compacted, Error::Compacted { .. }));
        assert_eq!(compacted.code(), Some(Code::OutOfRange));
        assert_eq!(
            compacted.to_string(),
            "KV/Range: etcdserver: mvcc: required revision has been compacted"
        );

        let timeout = Error::from_status(
            crate::proto::method::PUT,
            Status::unavailable(
                "etcdserver: request timed out, possibly due to previous leader failure",
            ),
        );
        assert!(matches!(timeout, Error::ServerTimeout { .. }));

        let unavailable = Error::from_status(
            crate::proto::method::STATUS,
            Status::unavailable("etcdserver: leader changed"),
        );
        assert!(matches!(unavailable, Error::Unavailable { .. }));
        assert!(unavailable.is_unreachable());

        let mut broken = Status::unknown("transport error");
        broken.set_source(std::sync::Arc::new(std::io::Error::from(
            std::io::ErrorKind::BrokenPipe,
        )));
        let broken = Error::from_status(crate::proto::method::PUT, broken);
        assert!(matches!(broken, Error::Transport { .. }), "{broken:?}");
        assert!(broken.is_unreachable());

        let other = Error::from_status(crate::proto::method::PUT, Status::internal("boom"));
        assert!(matches!(other, Error::Grpc { .. }));
        assert_eq!(other.grpc_message(), Some("boom"));
    }
}
