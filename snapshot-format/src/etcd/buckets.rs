//! etcd's bbolt buckets other than `key`: meta, members, lease, alarm, cluster, auth.

use prost::Message;
use serde::Serialize;

use super::revision::Revision;
use super::snapshot::Snapshot;
use crate::authpb::{Role, User};
use crate::bbolt::Bucket;
use crate::error::{Error, Location, Result};

/// The mvcc bucket: revision key -> `KeyValue`.
pub const KEY: &str = "key";
/// Consistent index, term, compaction marks, conf state.
pub const META: &str = "meta";
/// Leases.
pub const LEASE: &str = "lease";
/// Active alarms.
pub const ALARM: &str = "alarm";
/// Cluster version.
pub const CLUSTER: &str = "cluster";
/// Members (3.4+ mirror of the v2 store's membership).
pub const MEMBERS: &str = "members";
/// Removed member ids.
pub const MEMBERS_REMOVED: &str = "members_removed";
/// Auth enabled flag and auth revision.
pub const AUTH: &str = "auth";
/// Auth users.
pub const AUTH_USERS: &str = "authUsers";
/// Auth roles.
pub const AUTH_ROLES: &str = "authRoles";
/// Every bucket etcd 3.4 creates.
pub const ALL: [&str; 10] = [
    KEY,
    META,
    LEASE,
    ALARM,
    CLUSTER,
    MEMBERS,
    MEMBERS_REMOVED,
    AUTH,
    AUTH_USERS,
    AUTH_ROLES,
];

/// The `meta` bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EtcdMeta {
    /// Index of the last applied raft entry.
    pub consistent_index: Option<u64>,
    /// Raft term of that entry (etcd 3.5+).
    pub term: Option<u64>,
    /// Revision of the last compaction requested.
    pub scheduled_compact_revision: Option<i64>,
    /// Revision of the last compaction completed.
    pub finished_compact_revision: Option<i64>,
    /// Raft conf state as JSON (etcd 3.5+).
    pub conf_state: Option<serde_json::Value>,
    /// Storage version (etcd 3.6+).
    pub storage_version: Option<String>,
}

impl EtcdMeta {
    /// The compacted revision a restarted etcd would use: a scheduled compaction that did
    /// not finish is resumed, so it counts. `-1` when nothing was ever compacted, as etcd
    /// reports it (`compactMainRev` starts at -1).
    pub fn compact_revision(&self) -> i64 {
        match (
            self.finished_compact_revision,
            self.scheduled_compact_revision,
        ) {
            (None, None) => -1,
            (f, s) => f.unwrap_or(-1).max(s.unwrap_or(-1)),
        }
    }
}

fn be_u64(value: &[u8], bucket: &str, key: &str) -> Result<u64> {
    let arr: [u8; 8] = value.try_into().map_err(|_| {
        Error::corrupt(
            Location::default()
                .in_bucket(bucket.as_bytes())
                .at_key(key.as_bytes()),
            format!(
                "expected an 8-byte big-endian integer, found {} bytes",
                value.len()
            ),
        )
    })?;
    Ok(u64::from_be_bytes(arr))
}

fn revision_value(value: &[u8], key: &str) -> Result<i64> {
    Revision::parse(value).map(|r| r.main).ok_or_else(|| {
        Error::corrupt(
            Location::default()
                .in_bucket(META.as_bytes())
                .at_key(key.as_bytes()),
            format!("expected a 17-byte revision, found {} bytes", value.len()),
        )
    })
}

/// A cluster member as recorded in the `members` bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Member id.
    pub id: u64,
    /// Member name.
    #[serde(default)]
    pub name: String,
    /// Peer URLs.
    #[serde(default, rename = "peerURLs")]
    pub peer_urls: Vec<String>,
    /// Client URLs.
    #[serde(default, rename = "clientURLs")]
    pub client_urls: Vec<String>,
    /// True for a learner.
    #[serde(default)]
    pub is_learner: bool,
}

/// `leasepb.Lease`.
#[derive(Clone, PartialEq, Message, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    /// Lease id.
    #[prost(int64, tag = "1")]
    #[serde(rename = "ID")]
    pub id: i64,
    /// Granted TTL in seconds.
    #[prost(int64, tag = "2")]
    #[serde(rename = "TTL")]
    pub ttl: i64,
    /// Remaining TTL (checkpointed leases).
    #[prost(int64, tag = "3")]
    #[serde(rename = "remainingTTL")]
    pub remaining_ttl: i64,
}

/// `etcdserverpb.AlarmMember` as stored in the `alarm` bucket key.
#[derive(Clone, PartialEq, Message, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmMember {
    /// The member raising the alarm.
    #[prost(uint64, tag = "1")]
    #[serde(rename = "memberID")]
    pub member_id: u64,
    /// 1 = NOSPACE, 2 = CORRUPT.
    #[prost(int32, tag = "2")]
    pub alarm: i32,
}

impl AlarmMember {
    /// The alarm's name as etcdctl prints it.
    pub fn alarm_name(&self) -> &'static str {
        match self.alarm {
            0 => "NONE",
            1 => "NOSPACE",
            2 => "CORRUPT",
            _ => "UNKNOWN",
        }
    }
}

/// Summary of the auth buckets, without secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthSummary {
    /// Whether auth is enabled.
    pub enabled: bool,
    /// Auth store revision.
    pub revision: Option<u64>,
    /// User names with their roles.
    pub users: Vec<(String, Vec<String>)>,
    /// Role names.
    pub roles: Vec<String>,
}

/// Collects every entry of a bucket (small buckets only: not `key`).
fn entries(bucket: &Bucket<'_>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut out = Vec::new();
    bucket.for_each(|e| {
        if !e.is_bucket() {
            out.push((e.key.to_vec(), e.value.to_vec()));
        }
        Ok(())
    })?;
    Ok(out)
}

fn decode_err(bucket: &str, key: &[u8], what: &str, e: impl std::fmt::Display) -> Error {
    Error::corrupt(
        Location::default().in_bucket(bucket.as_bytes()).at_key(key),
        format!("cannot decode {what}: {e}"),
    )
}

impl Snapshot {
    fn optional_entries(&self, name: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match self.db().bucket(name.as_bytes())? {
            Some(b) => entries(&b),
            None => Ok(Vec::new()),
        }
    }

    /// The `meta` bucket.
    pub fn etcd_meta(&self) -> Result<EtcdMeta> {
        let mut meta = EtcdMeta::default();
        for (k, v) in self.optional_entries(META)? {
            match k.as_slice() {
                b"consistent_index" => {
                    meta.consistent_index = Some(be_u64(&v, META, "consistent_index")?)
                }
                b"term" => meta.term = Some(be_u64(&v, META, "term")?),
                b"scheduledCompactRev" => {
                    meta.scheduled_compact_revision =
                        Some(revision_value(&v, "scheduledCompactRev")?)
                }
                b"finishedCompactRev" => {
                    meta.finished_compact_revision = Some(revision_value(&v, "finishedCompactRev")?)
                }
                b"confState" => {
                    meta.conf_state = Some(
                        serde_json::from_slice(&v)
                            .map_err(|e| decode_err(META, &k, "confState JSON", e))?,
                    )
                }
                b"storageVersion" => {
                    meta.storage_version = Some(String::from_utf8_lossy(&v).into_owned())
                }
                _ => {}
            }
        }
        Ok(meta)
    }

    /// The `members` bucket, sorted by id.
    pub fn members(&self) -> Result<Vec<Member>> {
        let mut members = self
            .optional_entries(MEMBERS)?
            .into_iter()
            .map(|(k, v)| {
                serde_json::from_slice::<Member>(&v)
                    .map_err(|e| decode_err(MEMBERS, &k, "member JSON", e))
            })
            .collect::<Result<Vec<_>>>()?;
        members.sort_by_key(|m| m.id);
        Ok(members)
    }

    /// Ids in the `members_removed` bucket.
    pub fn removed_members(&self) -> Result<Vec<u64>> {
        self.optional_entries(MEMBERS_REMOVED)?
            .into_iter()
            .map(|(k, _)| {
                let s = String::from_utf8_lossy(&k);
                u64::from_str_radix(&s, 16)
                    .map_err(|e| decode_err(MEMBERS_REMOVED, &k, "member id", e))
            })
            .collect()
    }

    /// The `lease` bucket.
    pub fn leases(&self) -> Result<Vec<Lease>> {
        self.optional_entries(LEASE)?
            .into_iter()
            .map(|(k, v)| {
                Lease::decode(v.as_slice()).map_err(|e| decode_err(LEASE, &k, "lease", e))
            })
            .collect()
    }

    /// The `alarm` bucket.
    pub fn alarms(&self) -> Result<Vec<AlarmMember>> {
        self.optional_entries(ALARM)?
            .into_iter()
            .map(|(k, _)| {
                AlarmMember::decode(k.as_slice()).map_err(|e| decode_err(ALARM, &k, "alarm", e))
            })
            .collect()
    }

    /// The cluster version recorded in the `cluster` bucket.
    pub fn cluster_version(&self) -> Result<Option<String>> {
        Ok(self
            .optional_entries(CLUSTER)?
            .into_iter()
            .find(|(k, _)| k == b"clusterVersion")
            .map(|(_, v)| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The auth buckets, without password hashes.
    pub fn auth(&self) -> Result<AuthSummary> {
        let mut summary = AuthSummary::default();
        for (k, v) in self.optional_entries(AUTH)? {
            match k.as_slice() {
                b"authEnabled" => summary.enabled = v.first() == Some(&1),
                b"authRevision" => summary.revision = Some(be_u64(&v, AUTH, "authRevision")?),
                _ => {}
            }
        }
        for (k, v) in self.optional_entries(AUTH_USERS)? {
            let user =
                User::decode(v.as_slice()).map_err(|e| decode_err(AUTH_USERS, &k, "user", e))?;
            summary
                .users
                .push((String::from_utf8_lossy(&user.name).into_owned(), user.roles));
        }
        for (k, v) in self.optional_entries(AUTH_ROLES)? {
            let role =
                Role::decode(v.as_slice()).map_err(|e| decode_err(AUTH_ROLES, &k, "role", e))?;
            summary
                .roles
                .push(String::from_utf8_lossy(&role.name).into_owned());
        }
        Ok(summary)
    }
}
