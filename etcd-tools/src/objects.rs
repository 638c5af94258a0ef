//! The Kubernetes objects inside an etcd snapshot: list, get (with history), dump and
//! stats, decoded with `snapshot_format::k8s` as the API's own JSON.
//!
//! Values are fetched one at a time from the snapshot (by revision), so memory stays
//! bounded by one object plus the key list, whatever the snapshot's size.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde_json::Value;
use snapshot_format::etcd::{RangeQuery, Snapshot};
use snapshot_format::k8s::keys::RegistryKey;
pub use snapshot_format::k8s::selector::LabelSelector;
use snapshot_format::k8s::selector::SelectorError;
use snapshot_format::k8s::{
    EncryptionConfig, StorageFormat, StoredObject, decode_storage_value_with,
};

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ObjectsError {
    /// Reading the snapshot failed.
    #[error(transparent)]
    Snapshot(#[from] snapshot_format::Error),
    /// A label selector could not be parsed.
    #[error("invalid label selector {selector:?}: {problem}")]
    Selector {
        /// The selector given.
        selector: String,
        /// What is wrong.
        problem: String,
    },
    /// The object asked for does not exist.
    #[error("no object {0} in the snapshot")]
    NotFound(String),
    /// Writing the dump failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl From<SelectorError> for ObjectsError {
    fn from(error: SelectorError) -> Self {
        ObjectsError::Selector {
            selector: error.selector,
            problem: error.problem,
        }
    }
}

/// Which objects.
#[derive(Debug, Clone)]
pub struct ObjectFilter {
    /// The API server's `--etcd-prefix` (`/registry`).
    pub prefix: String,
    /// Resource (`pods`, `deployments`, `deployments.apps`, `widgets.example.com`).
    pub resource: Option<String>,
    /// Namespace; `None` for all.
    pub namespace: Option<String>,
    /// Name; a trailing `*` matches a prefix.
    pub name: Option<String>,
    /// Labels.
    pub labels: LabelSelector,
    /// Revision to read at (0: newest).
    pub revision: i64,
    /// The cluster's encryption configuration, to decrypt values encrypted at rest.
    pub encryption: Option<std::sync::Arc<EncryptionConfig>>,
}

impl Default for ObjectFilter {
    fn default() -> Self {
        ObjectFilter {
            prefix: snapshot_format::k8s::keys::DEFAULT_PREFIX.to_string(),
            resource: None,
            namespace: None,
            name: None,
            labels: LabelSelector::default(),
            revision: 0,
            encryption: None,
        }
    }
}

/// A resource's name as kubectl accepts it: `pods`, `deployments.apps`.
pub fn qualified_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

impl ObjectFilter {
    fn key_matches(&self, key: &RegistryKey) -> bool {
        let resource_ok = self.resource.as_deref().is_none_or(|r| {
            r == key.resource || r == qualified_resource(&key.group, &key.resource)
        });
        let ns_ok = self
            .namespace
            .as_deref()
            .is_none_or(|n| key.namespace.as_deref() == Some(n));
        let name_ok = self
            .name
            .as_deref()
            .is_none_or(|n| match n.strip_suffix('*') {
                Some(prefix) => key.name.starts_with(prefix),
                None => key.name == n,
            });
        resource_ok && ns_ok && name_ok
    }
}

/// How a value is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Encoding {
    /// `k8s\0` protobuf.
    Protobuf,
    /// JSON.
    Json,
    /// Encrypted at rest with this provider and key (decrypted when a configuration with
    /// the key was given).
    Encrypted {
        /// Provider (`aescbc`, `aesgcm`, `secretbox`, `kms`).
        provider: String,
        /// Key name.
        key: String,
    },
    /// Not recognised.
    Unrecognized,
}

/// One object of a listing.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRow {
    /// The etcd key.
    pub key: String,
    /// API group (`""` for core).
    pub group: String,
    /// Resource.
    pub resource: String,
    /// Namespace.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// `apiVersion`, when decoded.
    pub api_version: Option<String>,
    /// `kind`, when decoded.
    pub kind: Option<String>,
    /// Storage encoding.
    pub encoding: Encoding,
    /// Bytes of the stored value.
    pub bytes: usize,
    /// etcd revision of this version.
    pub mod_revision: i64,
    /// Versions since creation.
    pub version: i64,
    /// Why the value could not be decoded, if it could not.
    pub error: Option<String>,
    /// Data the JSON could not hold (unknown fields, unknown types), as messages.
    pub issues: Vec<String>,
}

/// A decoded object with its row.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectView {
    /// The row.
    #[serde(flatten)]
    pub row: ObjectRow,
    /// The object as the API's JSON (absent when it could not be decoded).
    pub object: Option<Value>,
}

/// `(provider, key name)` of a `k8s:enc:<provider>:<version>:<key>:` value.
fn encryption_prefix(value: &[u8]) -> Option<(String, String)> {
    let rest = value.strip_prefix(snapshot_format::k8s::ENCRYPTED_PREFIX)?;
    let mut parts = rest.splitn(4, |&b| b == b':');
    let provider = String::from_utf8_lossy(parts.next()?).into_owned();
    let _version = parts.next()?;
    let key = String::from_utf8_lossy(parts.next()?).into_owned();
    Some((provider, key))
}

/// Decodes a stored value into a view, decrypting it first when `encryption` is given.
pub fn decode_value(
    key: &RegistryKey,
    storage_key: &str,
    kv_value: &[u8],
    mod_revision: i64,
    version: i64,
    encryption: Option<&EncryptionConfig>,
) -> ObjectView {
    let mut row = ObjectRow {
        key: storage_key.to_string(),
        group: key.group.clone(),
        resource: key.resource.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        api_version: None,
        kind: None,
        encoding: Encoding::Unrecognized,
        bytes: kv_value.len(),
        mod_revision,
        version,
        error: None,
        issues: Vec::new(),
    };
    if let Some((provider, key)) = encryption_prefix(kv_value) {
        row.encoding = Encoding::Encrypted { provider, key };
    }
    let object = match decode_storage_value_with(kv_value, storage_key.as_bytes(), encryption) {
        Ok(decrypted) => match decrypted.object {
            StoredObject::Decoded(d) => {
                if decrypted.key.is_none() {
                    row.encoding = match d.format {
                        StorageFormat::Protobuf => Encoding::Protobuf,
                        StorageFormat::Json => Encoding::Json,
                    };
                }
                row.api_version = Some(d.api_version);
                row.kind = Some(d.kind);
                row.issues = d.issues.iter().map(|i| i.to_string()).collect();
                Some(d.object)
            }
            StoredObject::Encrypted(e) => {
                row.error = Some(format!(
                    "{e} (give the cluster's EncryptionConfiguration with --encryption-config)"
                ));
                None
            }
            StoredObject::Unrecognized(_) => {
                row.error = Some("the value is neither protobuf, JSON nor encrypted".into());
                None
            }
        },
        Err(e) => {
            row.error = Some(e.to_string());
            None
        }
    };
    ObjectView { row, object }
}

/// The objects matching a filter, in key order.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectList {
    /// Revision read at.
    pub revision: i64,
    /// The objects.
    pub objects: Vec<ObjectRow>,
    /// Values that could not be decoded.
    pub failed: usize,
    /// Keys under the prefix that are not object keys (e.g. `/registry/health`).
    pub other_keys: usize,
}

/// Walks the objects matching `filter`, decoding each, in key order.
pub fn for_each_object(
    snap: &Snapshot,
    filter: &ObjectFilter,
    mut f: impl FnMut(ObjectView) -> Result<(), ObjectsError>,
) -> Result<(i64, usize), ObjectsError> {
    let mut q = RangeQuery::prefix(format!("{}/", filter.prefix.trim_end_matches('/')).as_bytes());
    q.revision = filter.revision;
    q.keys_only = true;
    let range = snap.range(&q)?;
    let mut other = 0;
    for entry in &range.kvs {
        let Ok(key) = RegistryKey::parse_with_prefix(&entry.kv.key, &filter.prefix) else {
            other += 1;
            continue;
        };
        if !filter.key_matches(&key) {
            continue;
        }
        let Some(kv) = snap.record(entry.revision)? else {
            continue;
        };
        let storage_key = String::from_utf8_lossy(&kv.key).into_owned();
        let view = decode_value(
            &key,
            &storage_key,
            &kv.value,
            kv.mod_revision,
            kv.version,
            filter.encryption.as_deref(),
        );
        if !filter.labels.is_empty()
            && !view
                .object
                .as_ref()
                .is_some_and(|o| filter.labels.matches(o))
        {
            continue;
        }
        f(view)?;
    }
    Ok((range.revision, other))
}

/// Lists the objects matching `filter`.
pub fn list(snap: &Snapshot, filter: &ObjectFilter) -> Result<ObjectList, ObjectsError> {
    let mut objects = Vec::new();
    let mut failed = 0;
    let (revision, other_keys) = for_each_object(snap, filter, |view| {
        failed += usize::from(view.row.error.is_some());
        objects.push(view.row);
        Ok(())
    })?;
    Ok(ObjectList {
        revision,
        objects,
        failed,
        other_keys,
    })
}

/// Resolves what the user typed: an etcd key (`/registry/...`), or
/// `resource/namespace/name`, or `resource/name` for cluster-scoped objects.
pub fn resolve_key(spec: &str, prefix: &str) -> Result<String, ObjectsError> {
    if spec.starts_with('/') {
        return Ok(spec.to_string());
    }
    let parts: Vec<&str> = spec.split('/').collect();
    let (resource, namespace, name) = match parts.as_slice() {
        [r, n] => (*r, None, *n),
        [r, ns, n] => (*r, Some(*ns), *n),
        _ => {
            return Err(ObjectsError::NotFound(format!(
                "{spec:?}: give an etcd key (/registry/...), resource/namespace/name or resource/name"
            )));
        }
    };
    let (resource, group) = match resource.split_once('.') {
        Some((r, g)) => (r, g),
        None => (
            resource,
            snapshot_format::k8s::keys::BUILTIN_RESOURCES
                .iter()
                .find(|b| b.resource == resource)
                .map_or("", |b| b.group),
        ),
    };
    snapshot_format::k8s::keys::storage_key_with_prefix(prefix, group, resource, namespace, name)
        .map_err(|e| ObjectsError::NotFound(format!("{spec:?}: {e}")))
}

/// One object at a revision, with its history when asked.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectWithHistory {
    /// The object at the revision asked for.
    pub current: Option<ObjectView>,
    /// Every revision still in the snapshot, oldest first (deletes have no object).
    pub history: Vec<HistoryItem>,
}

/// One revision of an object.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    /// Revision.
    pub revision: i64,
    /// True for the delete.
    pub deleted: bool,
    /// The decoded object (puts).
    pub object: Option<ObjectView>,
}

/// Gets one object (decoded whatever its key looks like) and optionally its history.
pub fn get(
    snap: &Snapshot,
    storage_key: &str,
    prefix: &str,
    revision: i64,
    with_history: bool,
    encryption: Option<&EncryptionConfig>,
) -> Result<ObjectWithHistory, ObjectsError> {
    let key = RegistryKey::parse_with_prefix(storage_key.as_bytes(), prefix).unwrap_or_else(|_| {
        RegistryKey {
            group: String::new(),
            resource: String::new(),
            namespace: None,
            name: storage_key
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .to_string(),
            builtin: None,
        }
    });
    let mut q = RangeQuery::single(storage_key.as_bytes());
    q.revision = revision;
    let range = snap.range(&q)?;
    let current = range.kvs.first().map(|e| {
        decode_value(
            &key,
            storage_key,
            &e.kv.value,
            e.kv.mod_revision,
            e.kv.version,
            encryption,
        )
    });
    let mut history = Vec::new();
    if with_history {
        for h in snap.history(storage_key.as_bytes())? {
            history.push(HistoryItem {
                revision: h.revision.revision.main,
                deleted: h.revision.tombstone,
                object: (!h.revision.tombstone).then(|| {
                    decode_value(
                        &key,
                        storage_key,
                        &h.kv.value,
                        h.kv.mod_revision,
                        h.kv.version,
                        encryption,
                    )
                }),
            });
        }
    }
    if current.is_none() && history.is_empty() {
        return Err(ObjectsError::NotFound(storage_key.to_string()));
    }
    Ok(ObjectWithHistory { current, history })
}

/// Makes one path segment from a name read out of a snapshot: names from a damaged or
/// hostile file must not climb out of the dump directory or hide files.
pub fn safe_segment(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if out.is_empty() || out == "." || out == ".." || out.starts_with('.') {
        out.insert(0, '_');
    }
    if out.len() > 200 {
        let mut cut = 200;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out
}

/// Where `dump` writes an object: `DIR/<group or core>/<resource>/<namespace or
/// _cluster>/<name>.<ext>`.
pub fn dump_path(dir: &Path, row: &ObjectRow, ext: &str) -> PathBuf {
    let group = if row.group.is_empty() {
        "core"
    } else {
        &row.group
    };
    let ns = row.namespace.as_deref().unwrap_or("_cluster");
    let path = dir
        .join(safe_segment(group))
        .join(safe_segment(&row.resource))
        .join(safe_segment(ns))
        .join(format!("{}.{ext}", safe_segment(&row.name)));
    debug_assert!(
        path.components()
            .all(|c| !matches!(c, Component::ParentDir))
    );
    path
}

/// Counts for `stats`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStats {
    /// Objects (live keys) under the prefix.
    pub objects: u64,
    /// Bytes of their newest values.
    pub live_bytes: u64,
    /// Bytes of every revision under the prefix (history included).
    pub all_bytes: u64,
    /// Share of the prefix's bytes that is history (old revisions and deletes).
    pub history_share: f64,
    /// Bytes of the whole database (`totalSize`).
    pub database_bytes: u64,
    /// Per resource (`resource.group`), largest first.
    pub resources: Vec<GroupCount>,
    /// Per namespace, largest first.
    pub namespaces: Vec<GroupCount>,
    /// Largest objects.
    pub largest: Vec<SizedKey>,
    /// Keys with the most revisions.
    pub most_revisions: Vec<RevisedKey>,
}

/// Count and bytes of a group of objects.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupCount {
    /// Resource or namespace.
    pub name: String,
    /// Live objects.
    pub objects: u64,
    /// Bytes of their newest values.
    pub live_bytes: u64,
    /// Bytes of all revisions.
    pub all_bytes: u64,
}

/// A key and its size.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SizedKey {
    /// The etcd key.
    pub key: String,
    /// Bytes of the newest value.
    pub bytes: u64,
}

/// A key and its revision count.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisedKey {
    /// The etcd key.
    pub key: String,
    /// Revisions in the snapshot.
    pub revisions: u64,
}

/// "What is eating my quota": objects, live and historical bytes per resource and
/// namespace, largest objects, keys with most revisions. Reads keys and sizes only.
pub fn stats(snap: &Snapshot, prefix: &str, top: usize) -> Result<ObjectStats, ObjectsError> {
    let key_stats = snap.key_stats(usize::MAX, 1)?;
    let status_size = snap.db().size();
    let mut per_resource: HashMap<String, GroupCount> = HashMap::new();
    let mut per_ns: HashMap<String, GroupCount> = HashMap::new();
    let mut out = ObjectStats {
        database_bytes: status_size,
        ..Default::default()
    };
    // The groups an object counts in: its resource and its namespace.
    let groups = |key: &str| {
        RegistryKey::parse_with_prefix(key.as_bytes(), prefix)
            .ok()
            .map(|k| {
                let ns = k.namespace.clone().unwrap_or_else(|| "(cluster)".into());
                (qualified_resource(&k.group, &k.resource), ns)
            })
    };
    for k in &key_stats.most_revisions {
        let Some((resource, ns)) = groups(&k.key) else {
            continue;
        };
        for g in [
            per_resource.entry(resource).or_default(),
            per_ns.entry(ns).or_default(),
        ] {
            g.all_bytes += k.bytes;
        }
        out.all_bytes += k.bytes;
    }
    for k in &key_stats.largest {
        let Some((resource, ns)) = groups(&k.key) else {
            continue;
        };
        for g in [
            per_resource.entry(resource).or_default(),
            per_ns.entry(ns).or_default(),
        ] {
            g.objects += 1;
            g.live_bytes += k.value_bytes;
        }
        out.objects += 1;
        out.live_bytes += k.value_bytes;
        if out.largest.len() < top {
            out.largest.push(SizedKey {
                key: k.key.clone(),
                bytes: k.value_bytes,
            });
        }
    }
    out.history_share = if out.all_bytes == 0 {
        0.0
    } else {
        1.0 - (out.live_bytes as f64 / out.all_bytes as f64).min(1.0)
    };
    let finish = |m: HashMap<String, GroupCount>| {
        let mut v: Vec<GroupCount> = m
            .into_iter()
            .map(|(name, mut g)| {
                g.name = name;
                g
            })
            .collect();
        v.sort_by(|a, b| {
            b.all_bytes
                .cmp(&a.all_bytes)
                .then_with(|| a.name.cmp(&b.name))
        });
        v
    };
    out.resources = finish(per_resource);
    out.namespaces = finish(per_ns);
    out.most_revisions = key_stats
        .most_revisions
        .iter()
        .filter(|k| RegistryKey::parse_with_prefix(k.key.as_bytes(), prefix).is_ok())
        .take(top)
        .map(|k| RevisedKey {
            key: k.key.clone(),
            revisions: k.revisions,
        })
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_stay_inside_the_dump_dir() {
        for name in ["../../etc/passwd", "..", ".", "", "a/b", ".hidden", "x\0y"] {
            let s = safe_segment(name);
            assert!(
                !s.contains('/') && s != ".." && s != "." && !s.is_empty() && !s.starts_with('.'),
                "{name:?} -> {s:?}"
            );
        }
    }
}
