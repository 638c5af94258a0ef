//! `etcdserverpb` messages of the `Auth` service.
//!
//! Messages that carry a password or a token print it redacted in `Debug`.

use std::fmt;

use super::ResponseHeader;
use crate::proto::authpb::{Permission, UserAddOptions};

/// Text printed instead of a secret.
const REDACTED: &str = "<redacted>";

/// Prints `<redacted>` for a non-empty secret and `""` for an empty one.
fn redacted(secret: &str) -> &'static str {
    if secret.is_empty() { "\"\"" } else { REDACTED }
}

/// `AuthEnableRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthEnableRequest {}

/// `AuthEnableResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthEnableResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthDisableRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthDisableRequest {}

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

/// `AuthUserAddRequest`.
#[derive(Clone, PartialEq, prost::Message)]
#[prost(skip_debug)]
pub struct AuthUserAddRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Password (redacted in `Debug`).
    #[prost(string, tag = "2")]
    pub password: String,
    /// Options, e.g. a user without password (certificate CN only).
    #[prost(message, optional, tag = "3")]
    pub options: Option<UserAddOptions>,
    /// Pre-hashed bcrypt password instead of `password` (etcd 3.5+; redacted in `Debug`).
    #[prost(string, tag = "4")]
    pub hashed_password: String,
}

impl fmt::Debug for AuthUserAddRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthUserAddRequest")
            .field("name", &self.name)
            .field("password", &format_args!("{}", redacted(&self.password)))
            .field("options", &self.options)
            .field(
                "hashed_password",
                &format_args!("{}", redacted(&self.hashed_password)),
            )
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

/// `AuthUserGetRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthUserGetRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
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

/// `AuthUserDeleteRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthUserDeleteRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `AuthUserDeleteResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserDeleteResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthUserChangePasswordRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
#[prost(skip_debug)]
pub struct AuthUserChangePasswordRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// New password (redacted in `Debug`).
    #[prost(string, tag = "2")]
    pub password: String,
    /// New pre-hashed bcrypt password (etcd 3.5+; redacted in `Debug`).
    #[prost(string, tag = "3")]
    pub hashed_password: String,
}

impl fmt::Debug for AuthUserChangePasswordRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthUserChangePasswordRequest")
            .field("name", &self.name)
            .field("password", &format_args!("{}", redacted(&self.password)))
            .field(
                "hashed_password",
                &format_args!("{}", redacted(&self.hashed_password)),
            )
            .finish()
    }
}

/// `AuthUserChangePasswordResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserChangePasswordResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthUserGrantRoleRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthUserGrantRoleRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub user: String,
    /// Role name.
    #[prost(string, tag = "2")]
    pub role: String,
}

/// `AuthUserGrantRoleResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserGrantRoleResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthUserRevokeRoleRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthUserRevokeRoleRequest {
    /// User name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Role name.
    #[prost(string, tag = "2")]
    pub role: String,
}

/// `AuthUserRevokeRoleResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthUserRevokeRoleResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthRoleAddRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleAddRequest {
    /// Role name.
    #[prost(string, tag = "1")]
    pub name: String,
}

/// `AuthRoleAddResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRoleAddResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthRoleGetRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleGetRequest {
    /// Role name.
    #[prost(string, tag = "1")]
    pub role: String,
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

/// `AuthUserListRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthUserListRequest {}

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

/// `AuthRoleListRequest`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleListRequest {}

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

/// `AuthRoleDeleteRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleDeleteRequest {
    /// Role name.
    #[prost(string, tag = "1")]
    pub role: String,
}

/// `AuthRoleDeleteResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRoleDeleteResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthRoleGrantPermissionRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleGrantPermissionRequest {
    /// Role name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The permission to grant.
    #[prost(message, optional, tag = "2")]
    pub perm: Option<Permission>,
}

/// `AuthRoleGrantPermissionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRoleGrantPermissionResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}

/// `AuthRoleRevokePermissionRequest`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct AuthRoleRevokePermissionRequest {
    /// Role name.
    #[prost(string, tag = "1")]
    pub role: String,
    /// First key of the permission to revoke.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// Range end of the permission to revoke.
    #[prost(bytes = "vec", tag = "3")]
    pub range_end: Vec<u8>,
}

/// `AuthRoleRevokePermissionResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct AuthRoleRevokePermissionResponse {
    /// Response header.
    #[prost(message, optional, tag = "1")]
    pub header: Option<ResponseHeader>,
}
