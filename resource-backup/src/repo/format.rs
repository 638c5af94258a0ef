//! The documents of a repository (specified in docs/format.md): repository config,
//! pack indexes, backup entries, manifests, locks.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::canonical::ContentId;
use crate::model::Gvr;

/// `format` of the repository config.
pub const REPOSITORY_FORMAT: &str = "salvor-backup-repository";
/// `format` of pack indexes.
pub const INDEX_FORMAT: &str = "salvor-pack-index/v1";
/// `format` of manifests.
pub const MANIFEST_FORMAT: &str = "salvor-backup-manifest/v1";
/// First bytes of a pack's plaintext.
pub const PACK_MAGIC: &[u8; 16] = b"salvor-pack/v1\n\0";

/// Key of the repository config.
pub const CONFIG_KEY: &str = "salvor-repository.json";

/// Size limits on what is read back (a hostile repository cannot make a reader allocate
/// more).
pub mod limits {
    /// A pack as stored.
    pub const PACK: u64 = 256 << 20;
    /// One object, decompressed.
    pub const OBJECT: u64 = 64 << 20;
    /// A pack index, compressed.
    pub const INDEX: u64 = 64 << 20;
    /// A manifest.
    pub const MANIFEST: u64 = 64 << 20;
    /// Entries or log of one backup, as stored.
    pub const ENTRIES: u64 = 256 << 20;
    /// Entries or log of one backup, decompressed.
    pub const ENTRIES_PLAIN: u64 = 1 << 30;
    /// Small documents (config, locks, markers).
    pub const SMALL: u64 = 1 << 20;
}

/// `salvor-repository.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RepoConfig {
    /// Always [`REPOSITORY_FORMAT`].
    pub format: String,
    /// Format version (1).
    pub version: u32,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// One blob inside a pack.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct IndexedBlob {
    /// sha256 of the canonical JSON.
    pub id: ContentId,
    /// Offset of its zstd frame in the pack's plaintext.
    pub offset: u64,
    /// Length of the zstd frame.
    pub length: u64,
    /// Length of the canonical JSON.
    pub raw_length: u64,
}

/// `index/<pack>.json.zst`: what a pack holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PackIndex {
    /// Always [`INDEX_FORMAT`].
    pub format: String,
    /// Pack id: sha256 of the pack file as stored.
    pub pack: String,
    /// Stored size.
    pub size: u64,
    /// Whether the pack is an age file.
    pub encrypted: bool,
    /// Its blobs.
    pub blobs: Vec<IndexedBlob>,
}

/// One object of a backup: one line of `entries.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Entry {
    /// API group.
    #[serde(rename = "g", default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Version it was read at.
    #[serde(rename = "v")]
    pub version: String,
    /// Plural resource.
    #[serde(rename = "r")]
    pub resource: String,
    /// Kind.
    #[serde(rename = "k")]
    pub kind: String,
    /// Namespace (absent for cluster-scoped objects).
    #[serde(rename = "ns", default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    #[serde(rename = "n")]
    pub name: String,
    /// Content id.
    pub id: ContentId,
}

impl Entry {
    /// Its gvr.
    pub fn gvr(&self) -> Gvr {
        Gvr::new(&self.group, &self.version, &self.resource)
    }
}

/// A blob listing the objects of one type in one namespace (up to 1000): part of a
/// backup's entries, content-addressed like objects so unchanged ones are not stored
/// again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct EntryChunk {
    /// API group.
    #[serde(rename = "g", default)]
    pub group: String,
    /// Version.
    #[serde(rename = "v")]
    pub version: String,
    /// Plural resource.
    #[serde(rename = "r")]
    pub resource: String,
    /// Kind.
    #[serde(rename = "k")]
    pub kind: String,
    /// Namespace (null for cluster-scoped objects).
    #[serde(rename = "ns", default)]
    pub namespace: Option<String>,
    /// (name, content id) of each object.
    pub items: Vec<(String, ContentId)>,
}

/// One line of `entries.jsonl.zst`: a chunk of entries.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ChunkRef {
    /// API group.
    #[serde(rename = "g", default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Version.
    #[serde(rename = "v")]
    pub version: String,
    /// Plural resource.
    #[serde(rename = "r")]
    pub resource: String,
    /// Kind.
    #[serde(rename = "k")]
    pub kind: String,
    /// Namespace.
    #[serde(rename = "ns", default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Objects in the chunk.
    #[serde(rename = "n")]
    pub count: u64,
    /// Content id of the [`EntryChunk`] blob.
    pub chunk: ContentId,
}

/// What the backup selected.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FilterSpec {
    /// Namespace globs to include (empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_namespaces: Vec<String>,
    /// Namespace globs to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_namespaces: Vec<String>,
    /// Resource globs to include (`deployments.apps`, `*.example.com`; empty: all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_resources: Vec<String>,
    /// Resource globs to exclude.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_resources: Vec<String>,
    /// Label selector passed to every list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Name globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include_names: Vec<String>,
    /// Objects carrying this label (`key` or `key=value`) are left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude_label: Option<String>,
    /// `auto`, `true` or `false`.
    pub include_cluster_resources: String,
    /// Every served version instead of the preferred one.
    #[serde(default)]
    pub all_versions: bool,
}

/// The cluster a backup was taken from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ClusterIdentity {
    /// API server URL.
    pub server: String,
    /// kubeconfig context, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// `/version` gitVersion.
    pub git_version: String,
    /// uid of the `kube-system` namespace: the cluster's identity across URL changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kube_system_uid: Option<String>,
}

/// An error or warning recorded during a backup.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// Group-resource it concerns, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Object name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What happened.
    pub message: String,
}

/// Object counts and bytes of a backup.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    /// Objects.
    pub objects: u64,
    /// Per group-resource (`deployments.apps`).
    pub by_resource: BTreeMap<String, u64>,
    /// Per namespace (cluster-scoped objects under `""`).
    pub by_namespace: BTreeMap<String, u64>,
    /// Canonical JSON bytes of all objects.
    pub raw_bytes: u64,
    /// Objects that were new to the repository.
    pub new_objects: u64,
    /// Bytes uploaded by this backup (packs, indexes, entries, log, manifest).
    pub uploaded_bytes: u64,
}

/// Outcome of a backup.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub enum Phase {
    /// Every selected object was backed up.
    Completed,
    /// Some types or objects failed; the rest is complete and restorable.
    PartiallyFailed,
}

/// Reference to a stored file with its checksum.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FileRef {
    /// Key in the repository.
    pub key: String,
    /// sha256 of the stored bytes.
    pub sha256: String,
    /// Stored size.
    pub size: u64,
}

/// Signature over a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Signature {
    /// `ed25519`.
    pub algorithm: String,
    /// Base64 of the raw public key.
    pub public_key: String,
    /// Base64 signature over the canonical JSON of the manifest without `signature`.
    pub value: String,
}

/// `backups/<name>/manifest.json`, written last.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always [`MANIFEST_FORMAT`].
    pub format: String,
    /// Backup name.
    pub name: String,
    /// Where from.
    pub cluster: ClusterIdentity,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339).
    pub completed_at: String,
    /// Wall time in seconds.
    pub duration_seconds: f64,
    /// Outcome.
    pub phase: Phase,
    /// The resourceVersion every list was pinned to (or the newest seen, when the
    /// server could not pin).
    pub resource_version: String,
    /// Whether every list was served at exactly `resource_version`.
    pub consistent: bool,
    /// Selection.
    pub filters: FilterSpec,
    /// Resource types listed (`deployments.apps/v1`).
    pub resources: Vec<String>,
    /// Counts.
    pub counts: Counts,
    /// Warnings.
    pub warnings: Vec<Problem>,
    /// Per-type and per-object errors.
    pub errors: Vec<Problem>,
    /// The entries file.
    pub entries: FileRef,
    /// The log.
    pub log: FileRef,
    /// Packs holding this backup's objects (ids).
    pub packs: Vec<String>,
    /// age recipients the entries and new packs are encrypted to (empty: plaintext).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// Signature, when signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// `backups/<name>/started.json`: marks a backup in progress (or interrupted).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StartedMarker {
    /// Backup name.
    pub name: String,
    /// When.
    pub started_at: String,
    /// Host that runs it.
    pub host: String,
}

/// `locks/<id>.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Lock {
    /// `shared` (backups) or `exclusive` (garbage collection).
    pub kind: LockKind,
    /// What holds it (`backup nightly`, `delete nightly`).
    pub purpose: String,
    /// Host and process.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// When it was taken.
    pub created_at: String,
    /// Last refresh; a lock not refreshed for [`super::LOCK_STALE_AFTER`] is stale.
    pub refreshed_at: String,
}

/// Lock kinds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    /// Many may hold it (backups).
    Shared,
    /// Nobody else may hold any lock (garbage collection).
    Exclusive,
}
