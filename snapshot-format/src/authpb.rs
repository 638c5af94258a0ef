//! `authpb`: users, roles and permissions, as sent over gRPC and stored in the
//! `authUsers` / `authRoles` buckets.

use std::fmt;

/// `authpb.UserAddOptions`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, prost::Message)]
pub struct UserAddOptions {
    /// The user has no password and can only authenticate with a client certificate.
    #[prost(bool, tag = "1")]
    pub no_password: bool,
}

/// `authpb.User`, as stored in the `authUsers` bucket.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
#[prost(skip_debug)]
pub struct User {
    /// User name.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// bcrypt hash of the password (redacted in `Debug`).
    #[prost(bytes = "vec", tag = "2")]
    pub password: Vec<u8>,
    /// Granted roles.
    #[prost(string, repeated, tag = "3")]
    pub roles: Vec<String>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &String::from_utf8_lossy(&self.name))
            .field(
                "password",
                &format_args!(
                    "{}",
                    if self.password.is_empty() {
                        "\"\""
                    } else {
                        "<redacted>"
                    }
                ),
            )
            .field("roles", &self.roles)
            .finish()
    }
}

/// `authpb.Permission.Type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum PermissionType {
    /// Read only.
    Read = 0,
    /// Write only.
    Write = 1,
    /// Read and write.
    Readwrite = 2,
}

/// `authpb.Permission`: access to the keys in `[key, range_end)`.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Permission {
    /// The access, see [`PermissionType`].
    #[prost(enumeration = "PermissionType", tag = "1")]
    pub perm_type: i32,
    /// First key.
    #[prost(bytes = "vec", tag = "2")]
    pub key: Vec<u8>,
    /// Range end (exclusive); empty for the single key, `[0]` for every key from `key` on.
    #[prost(bytes = "vec", tag = "3")]
    pub range_end: Vec<u8>,
}

/// `authpb.Role`, as stored in the `authRoles` bucket.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Role {
    /// Role name.
    #[prost(bytes = "vec", tag = "1")]
    pub name: Vec<u8>,
    /// Permissions of the role.
    #[prost(message, repeated, tag = "2")]
    pub key_permission: Vec<Permission>,
}
