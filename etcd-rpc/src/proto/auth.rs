//! `etcdserverpb` messages of the `Auth` service (the requests that go through raft
//! are [`snapshot_format::etcdserverpb`]'s).
//!
//! Messages that carry a password or a token print it redacted in `Debug`.

use std::fmt;

use super::ResponseHeader;
use crate::proto::authpb::Permission;

/// Text printed instead of a secret.
const REDACTED: &str = "<redacted>";

/// Prints `<redacted>` for a non-empty secret and `""` for an empty one.
fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() { "\"\"" } else { REDACTED }
}

/// `AuthEnableResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthEnableResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthDisableResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthDisableResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthStatusRequest` (etcd 3.5+).
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthStatusRequest {}

/// `AuthStatusResponse` (etcd 3.5+).
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthStatusResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Whether authentication is enabled.
    #[prost(bool, tag = "2")]
    pub enabled: bool,
    /// Revision of the auth store.
    #[prost(uint64, tag = "3")]
    pub auth_revision: u64,
}

/// `AuthenticateRequest`: exchange a user name and password for a token.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
#[prost(skip_debug)]
pub struct AuthenticateRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Password (redacted in `Debug`).
    #[prost(string, tag = "2")]
    pub password: String,
}

impl fmt::Debug for AuthenticateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateRequest")
            .field("name", &self.name)
            .field("password", &format_args!("{}", redacted(&self.password)))
            .finish()
    }
}

/// `AuthenticateResponse`.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct AuthenticateResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// The token to send as the `token` metadata (redacted in `Debug`).
    #[prost(string, tag = "2")]
    pub token: String,
}

impl fmt::Debug for AuthenticateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthenticateResponse")
            .field("header", &self.header)
            .field("token", &format_args!("{}", redacted(&self.token)))
            .finish()
    }
}

/// `AuthUserAddResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserAddResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthUserGetResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserGetResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Roles granted to the user.
    #[prost(string, repeated, tag = "2")]
    pub roles: Vec<String>,
}

/// `AuthUserDeleteResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserDeleteResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthUserChangePasswordResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserChangePasswordResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthUserGrantRoleResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserGrantRoleResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthUserRevokeRoleResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserRevokeRoleResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthRoleAddResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRoleAddResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthRoleGetResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRoleGetResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Permissions of the role.
    #[prost(message, repeated, tag = "2")]
    pub perm: Vec<Permission>,
}

/// `AuthUserListResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserListResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// User names.
    #[prost(string, repeated, tag = "2")]
    pub users: Vec<String>,
}

/// `AuthRoleListResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRoleListResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
    /// Role names.
    #[prost(string, repeated, tag = "2")]
    pub roles: Vec<String>,
}

/// `AuthRoleDeleteResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRoleDeleteResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthRoleGrantPermissionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRoleGrantPermissionResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthRoleRevokePermissionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRoleRevokePermissionResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
