//! A backup repository on object storage (format: docs/format.md).
//!
//! ```text
//! salvor-repository.json             format and version
//! packs/<xx>/<pack-id>.pack          objects: zstd frames, optionally age-encrypted
//! index/<pack-id>.json.zst           what each pack holds (content id -> offset)
//! backups/<name>/started.json        a backup began (an incomplete one has only this)
//! backups/<name>/entries.jsonl.zst   every object: gvr, namespace, name -> content id
//! backups/<name>/log.jsonl.zst       what happened
//! backups/<name>/manifest.json       written last: summary, checksums, signature
//! locks/<id>.json                    shared (backups) and exclusive (garbage collection)
//! ```

pub mod format;
pub mod pack;

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::canonical::{self, ContentId};
use crate::crypto::{Identities, Recipients, SigningKey, VerifyingKey};
use crate::storage::Storage;
use format::{
    CONFIG_KEY, ChunkRef, Entry, EntryChunk, FileRef, IndexedBlob, Lock, LockKind, MANIFEST_FORMAT,
    Manifest, REPOSITORY_FORMAT, RepoConfig, Signature, StartedMarker, limits,
};
use pack::SealedPack;

/// A lock not refreshed for this long belongs to a process that died.
pub const LOCK_STALE_AFTER: Duration = Duration::from_secs(600);
/// How often a held lock is refreshed.
const LOCK_REFRESH: Duration = Duration::from_secs(60);

/// Now as RFC 3339 with milliseconds.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// This host's name (for locks and markers).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".to_string())
}

/// Checks a backup name: DNS-1123 subdomain characters, so it is safe as a key part.
pub fn check_backup_name(name: &str) -> Result<(), Error> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
        && !name.contains("..");
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "backup name {name:?}: use lower-case letters, digits, '-' and '.', starting and \
             ending with a letter or digit (at most 253)"
        )))
    }
}

/// Where one object is stored.
#[derive(Debug, Clone, Copy)]
pub struct BlobLocation {
    /// Index into [`BlobMap::packs`].
    pub pack: u32,
    /// Offset in the pack's plaintext.
    pub offset: u64,
    /// Compressed length.
    pub length: u64,
    /// Canonical length.
    pub raw_length: u64,
}

/// Every object the repository holds, from the pack indexes.
#[derive(Debug, Default)]
pub struct BlobMap {
    /// Pack ids and whether each is encrypted.
    pub packs: Vec<(String, bool)>,
    /// Content id -> location.
    pub blobs: HashMap<ContentId, BlobLocation>,
    /// Index files that could not be read (named, with why).
    pub broken_indexes: Vec<String>,
}

impl BlobMap {
    /// Records a pack's index.
    pub fn add(&mut self, pack: &str, encrypted: bool, blobs: &[IndexedBlob]) {
        let n = self.packs.len() as u32;
        self.packs.push((pack.to_string(), encrypted));
        for b in blobs {
            self.blobs.entry(b.id).or_insert(BlobLocation {
                pack: n,
                offset: b.offset,
                length: b.length,
                raw_length: b.raw_length,
            });
        }
    }

    /// Pack id of a location.
    pub fn pack_id(&self, loc: &BlobLocation) -> &str {
        self.packs
            .get(loc.pack as usize)
            .map(|p| p.0.as_str())
            .unwrap_or("")
    }
}

/// A listed backup.
#[derive(Debug, Clone)]
pub struct BackupListing {
    /// Name.
    pub name: String,
    /// Its manifest when complete.
    pub manifest: Option<Manifest>,
    /// When an incomplete one started.
    pub started: Option<StartedMarker>,
    /// Why the manifest could not be read, if it could not.
    pub error: Option<String>,
}

/// An open repository.
#[derive(Debug, Clone)]
pub struct Repository {
    storage: Storage,
    packs_cache: Arc<Mutex<Vec<CachedPack>>>,
}

/// A pack's id and plaintext.
type CachedPack = (String, Arc<Vec<u8>>);

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn to_json(value: &impl serde::Serialize) -> Result<Vec<u8>, Error> {
    serde_json::to_vec_pretty(value).map_err(|e| Error::Invalid(e.to_string()))
}

/// The bytes a manifest signature covers: canonical JSON without `signature`.
pub fn signed_bytes(manifest: &Manifest) -> Result<Vec<u8>, Error> {
    let mut unsigned = manifest.clone();
    unsigned.signature = None;
    let value = serde_json::to_value(&unsigned).map_err(|e| Error::Invalid(e.to_string()))?;
    Ok(canonical::to_vec(&value))
}

impl Repository {
    /// Opens a repository, creating its config when the location is empty. A location
    /// that holds something else is refused.
    pub async fn open_or_init(storage: Storage) -> Result<Repository, Error> {
        let repo = Repository::at(storage);
        if !repo.read_config().await? {
            let config = RepoConfig {
                format: REPOSITORY_FORMAT.to_string(),
                version: 1,
                created_at: now_rfc3339(),
            };
            repo.storage
                .put(CONFIG_KEY, Bytes::from(to_json(&config)?))
                .await?;
        }
        Ok(repo)
    }

    /// Opens an existing repository.
    pub async fn open(storage: Storage) -> Result<Repository, Error> {
        let repo = Repository::at(storage);
        if !repo.read_config().await? {
            return Err(Error::NotFound(format!(
                "{}: no Salvor backup repository here (no {CONFIG_KEY}); check --storage",
                repo.storage.url()
            )));
        }
        Ok(repo)
    }

    fn at(storage: Storage) -> Repository {
        Repository {
            storage,
            packs_cache: Arc::default(),
        }
    }

    /// Checks the config; false when there is none.
    async fn read_config(&self) -> Result<bool, Error> {
        match self.storage.get_opt(CONFIG_KEY, limits::SMALL).await? {
            Some(bytes) => self.check_config(&bytes).map(|()| true),
            None => Ok(false),
        }
    }

    fn check_config(&self, bytes: &[u8]) -> Result<(), Error> {
        let config: RepoConfig = serde_json::from_slice(bytes)
            .map_err(|e| Error::corrupt(CONFIG_KEY, format!("not a repository config: {e}")))?;
        if config.format != REPOSITORY_FORMAT || config.version != 1 {
            return Err(Error::corrupt(
                CONFIG_KEY,
                format!(
                    "format {:?} version {}: this Salvor reads {REPOSITORY_FORMAT:?} version 1",
                    config.format, config.version
                ),
            ));
        }
        Ok(())
    }

    /// The storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Reads every pack index. Unreadable indexes are noted, not fatal: their packs'
    /// objects are simply uploaded again.
    pub async fn load_blobs(&self) -> Result<BlobMap, Error> {
        use futures::StreamExt;
        let keys = self.storage.list("index/").await?;
        let mut map = BlobMap::default();
        let fetched: Vec<_> = futures::stream::iter(keys.into_iter().map(|(key, _)| {
            let storage = self.storage.clone();
            async move {
                let pack = key
                    .strip_prefix("index/")
                    .and_then(|k| k.strip_suffix(".json.zst"))
                    .unwrap_or("")
                    .to_string();
                if !pack::is_pack_id(&pack) {
                    return (
                        key,
                        Err(Error::corrupt("index", "not named after a pack id")),
                    );
                }
                let result = match storage.get(&key, limits::INDEX).await {
                    Ok(bytes) => pack::decode_index(&key, &bytes, &pack),
                    Err(e) => Err(e.into()),
                };
                (key, result)
            }
        }))
        .buffer_unordered(16)
        .collect()
        .await;
        for (key, result) in fetched {
            match result {
                Ok(index) => map.add(&index.pack, index.encrypted, &index.blobs),
                Err(Error::Storage { source, location }) => {
                    return Err(Error::Storage { source, location });
                }
                Err(e) => map.broken_indexes.push(format!("{key}: {e}")),
            }
        }
        Ok(map)
    }

    /// Stores a sealed pack, then its index (a pack without an index is garbage that
    /// collection removes; an index never points at a missing pack).
    pub async fn upload_pack(&self, sealed: SealedPack) -> Result<(), Error> {
        let index = pack::encode_index(&sealed.index)?;
        self.storage
            .put(&pack::pack_key(&sealed.id), Bytes::from(sealed.bytes))
            .await?;
        self.storage
            .put(&pack::index_key(&sealed.id), Bytes::from(index))
            .await?;
        Ok(())
    }

    /// A pack's plaintext, its stored sha256 checked (cached: a few recent packs).
    pub async fn pack_plaintext(
        &self,
        id: &str,
        identities: &Identities,
    ) -> Result<Arc<Vec<u8>>, Error> {
        if let Ok(cache) = self.packs_cache.lock()
            && let Some((_, p)) = cache.iter().find(|(k, _)| k == id)
        {
            return Ok(p.clone());
        }
        let key = pack::pack_key(id);
        let stored = self.storage.get(&key, limits::PACK).await?;
        let actual = sha256_hex(&stored);
        if actual != id {
            return Err(Error::corrupt(
                &key,
                format!("sha256 is {actual}: the pack was damaged or tampered with"),
            ));
        }
        let plaintext = if crate::crypto::is_age(&stored) {
            identities.decrypt(&key, &stored)?
        } else {
            stored.to_vec()
        };
        pack::check_magic(&key, &plaintext)?;
        let plaintext = Arc::new(plaintext);
        if let Ok(mut cache) = self.packs_cache.lock() {
            cache.push((id.to_string(), plaintext.clone()));
            if cache.len() > 4 {
                cache.remove(0);
            }
        }
        Ok(plaintext)
    }

    /// One object's canonical JSON, checked against its id.
    pub async fn read_object(
        &self,
        blobs: &BlobMap,
        id: &ContentId,
        identities: &Identities,
    ) -> Result<Vec<u8>, Error> {
        let loc = blobs.blobs.get(id).ok_or_else(|| {
            Error::corrupt(
                "index",
                format!("object {id} is in no pack index: the repository lost it"),
            )
        })?;
        let pack_id = blobs.pack_id(loc);
        let plaintext = self.pack_plaintext(pack_id, identities).await?;
        pack::read_blob(
            &pack::pack_key(pack_id),
            &plaintext,
            &IndexedBlob {
                id: *id,
                offset: loc.offset,
                length: loc.length,
                raw_length: loc.raw_length,
            },
        )
    }

    fn backup_key(name: &str, file: &str) -> String {
        format!("backups/{name}/{file}")
    }

    /// Marks a backup as started.
    pub async fn mark_started(&self, name: &str) -> Result<(), Error> {
        let marker = StartedMarker {
            name: name.to_string(),
            started_at: now_rfc3339(),
            host: host_name(),
        };
        self.storage
            .put(
                &Self::backup_key(name, "started.json"),
                Bytes::from(to_json(&marker)?),
            )
            .await?;
        Ok(())
    }

    /// Stores a backup's file (entries or log), encrypted when there are recipients.
    pub async fn put_backup_file(
        &self,
        name: &str,
        file: &str,
        plaintext: Vec<u8>,
        recipients: &Recipients,
    ) -> Result<FileRef, Error> {
        let bytes = if recipients.is_empty() {
            plaintext
        } else {
            recipients.encrypt(&plaintext)?
        };
        let key = Self::backup_key(name, file);
        let file_ref = FileRef {
            key: key.clone(),
            sha256: sha256_hex(&bytes),
            size: bytes.len() as u64,
        };
        self.storage.put(&key, Bytes::from(bytes)).await?;
        Ok(file_ref)
    }

    /// Reads a backup file named by the manifest, checking its sha256, decrypting and
    /// decompressing it.
    pub async fn get_backup_file(
        &self,
        manifest: &Manifest,
        file: &FileRef,
        identities: &Identities,
    ) -> Result<Vec<u8>, Error> {
        let expected = Self::backup_key(&manifest.name, "");
        if !file.key.starts_with(&expected) || file.key.contains("..") {
            return Err(Error::corrupt(
                Self::backup_key(&manifest.name, "manifest.json"),
                format!("names {:?}, outside the backup", file.key),
            ));
        }
        let stored = self.storage.get(&file.key, limits::ENTRIES).await?;
        let actual = sha256_hex(&stored);
        if actual != file.sha256 {
            return Err(Error::corrupt(
                &file.key,
                format!(
                    "sha256 is {actual}, the manifest says {}: damaged or tampered with",
                    file.sha256
                ),
            ));
        }
        let compressed = if crate::crypto::is_age(&stored) {
            identities.decrypt(&file.key, &stored)?
        } else {
            stored.to_vec()
        };
        pack::decompress_limited(&file.key, &compressed, limits::ENTRIES_PLAIN)
    }

    /// Every entry of a backup: the chunk list, then each chunk (from the packs),
    /// checked against the chunk list and the manifest's count.
    pub async fn entries(
        &self,
        manifest: &Manifest,
        blobs: &BlobMap,
        identities: &Identities,
    ) -> Result<Vec<Entry>, Error> {
        let text = self
            .get_backup_file(manifest, &manifest.entries, identities)
            .await?;
        let mut out = Vec::with_capacity(manifest.counts.objects.min(1 << 22) as usize);
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if line.is_empty() {
                continue;
            }
            let at = || format!("{} line {}", manifest.entries.key, i + 1);
            let chunk_ref: ChunkRef = serde_json::from_slice(line)
                .map_err(|e| Error::corrupt(at(), format!("not a chunk reference: {e}")))?;
            let raw = self
                .read_object(blobs, &chunk_ref.chunk, identities)
                .await?;
            let chunk: EntryChunk = serde_json::from_slice(&raw).map_err(|e| {
                Error::corrupt(
                    format!("entry chunk {}", chunk_ref.chunk),
                    format!("not an entry chunk: {e}"),
                )
            })?;
            if chunk.items.len() as u64 != chunk_ref.count
                || chunk.group != chunk_ref.group
                || chunk.version != chunk_ref.version
                || chunk.resource != chunk_ref.resource
                || chunk.namespace != chunk_ref.namespace
            {
                return Err(Error::corrupt(
                    at(),
                    format!("chunk {} does not match its reference", chunk_ref.chunk),
                ));
            }
            for (name, id) in chunk.items {
                out.push(Entry {
                    group: chunk.group.clone(),
                    version: chunk.version.clone(),
                    resource: chunk.resource.clone(),
                    kind: chunk.kind.clone(),
                    namespace: chunk.namespace.clone(),
                    name,
                    id,
                });
            }
            if out.len() as u64 > manifest.counts.objects {
                break;
            }
        }
        if out.len() as u64 != manifest.counts.objects {
            return Err(Error::corrupt(
                &manifest.entries.key,
                format!(
                    "{} entries, the manifest says {}",
                    out.len(),
                    manifest.counts.objects
                ),
            ));
        }
        Ok(out)
    }

    /// Writes the manifest (last), signed when a key is given.
    pub async fn write_manifest(
        &self,
        manifest: &mut Manifest,
        signing: Option<&SigningKey>,
    ) -> Result<(), Error> {
        manifest.signature = None;
        if let Some(key) = signing {
            let bytes = signed_bytes(manifest)?;
            manifest.signature = Some(Signature {
                algorithm: "ed25519".to_string(),
                public_key: key.public_key().to_base64(),
                value: key.sign(&bytes),
            });
        }
        self.storage
            .put(
                &Self::backup_key(&manifest.name, "manifest.json"),
                Bytes::from(to_json(manifest)?),
            )
            .await?;
        Ok(())
    }

    /// A complete backup's manifest.
    pub async fn manifest(&self, name: &str) -> Result<Manifest, Error> {
        check_backup_name(name)?;
        let key = Self::backup_key(name, "manifest.json");
        match self.storage.get_opt(&key, limits::MANIFEST).await? {
            Some(bytes) => parse_manifest(&key, name, &bytes),
            None => {
                let started = self
                    .storage
                    .size(&Self::backup_key(name, "started.json"))
                    .await?;
                Err(Error::NotFound(if started.is_some() {
                    format!(
                        "backup {name} is incomplete (it was interrupted or is still running): \
                         re-run `salvor backup create {name}` to finish it"
                    )
                } else {
                    format!("no backup named {name} in {}", self.storage.url())
                }))
            }
        }
    }

    /// Every backup, complete or not.
    pub async fn list_backups(&self) -> Result<Vec<BackupListing>, Error> {
        let names = self.storage.list_dirs("backups/").await?;
        let mut out = Vec::new();
        for name in names {
            if check_backup_name(&name).is_err() {
                continue;
            }
            let key = Self::backup_key(&name, "manifest.json");
            let mut listing = BackupListing {
                name: name.clone(),
                manifest: None,
                started: None,
                error: None,
            };
            match self.storage.get_opt(&key, limits::MANIFEST).await? {
                Some(bytes) => match parse_manifest(&key, &name, &bytes) {
                    Ok(m) => listing.manifest = Some(m),
                    Err(e) => listing.error = Some(e.to_string()),
                },
                None => {
                    let marker = self
                        .storage
                        .get_opt(&Self::backup_key(&name, "started.json"), limits::SMALL)
                        .await?;
                    listing.started = marker.and_then(|b| serde_json::from_slice(&b).ok());
                }
            }
            out.push(listing);
        }
        Ok(out)
    }

    /// Takes a lock: shared for backups, exclusive for garbage collection. Fails, naming
    /// the holder, when they conflict.
    pub async fn lock(&self, kind: LockKind, purpose: &str) -> Result<LockGuard, Error> {
        let mut id = [0u8; 12];
        getrandom::fill(&mut id).map_err(|e| Error::Crypto(format!("no randomness: {e}")))?;
        let key = format!("locks/{}.json", hex::encode(id));
        let now = now_rfc3339();
        let lock = Lock {
            kind,
            purpose: purpose.to_string(),
            host: host_name(),
            pid: std::process::id(),
            created_at: now.clone(),
            refreshed_at: now,
        };
        self.storage.put(&key, Bytes::from(to_json(&lock)?)).await?;
        // Both sides write before they look, so of two racing lockers at least one sees
        // the other.
        let others = self.live_locks().await?;
        for (other_key, other) in others {
            if other_key == key {
                continue;
            }
            if kind == LockKind::Exclusive || other.kind == LockKind::Exclusive {
                self.storage.delete(&key).await?;
                return Err(Error::Invalid(format!(
                    "the repository is locked by `{}` on {} (pid {}) since {} ({other_key}): \
                     wait for it to finish; a lock not refreshed for {} minutes is stale and \
                     ignored",
                    other.purpose,
                    other.host,
                    other.pid,
                    other.created_at,
                    LOCK_STALE_AFTER.as_secs() / 60
                )));
            }
        }
        let storage = self.storage.clone();
        let refresh_key = key.clone();
        let refresher = tokio::spawn(async move {
            let mut lock = lock;
            loop {
                tokio::time::sleep(LOCK_REFRESH).await;
                lock.refreshed_at = now_rfc3339();
                if let Ok(bytes) = to_json(&lock) {
                    let _ = storage.put(&refresh_key, Bytes::from(bytes)).await;
                }
            }
        });
        Ok(LockGuard {
            storage: self.storage.clone(),
            key,
            refresher: Some(refresher),
        })
    }

    /// Locks that are not stale.
    pub async fn live_locks(&self) -> Result<Vec<(String, Lock)>, Error> {
        let mut out = Vec::new();
        for (key, _) in self.storage.list("locks/").await? {
            let Some(bytes) = self.storage.get_opt(&key, limits::SMALL).await? else {
                continue;
            };
            let Ok(lock) = serde_json::from_slice::<Lock>(&bytes) else {
                continue;
            };
            let fresh = chrono::DateTime::parse_from_rfc3339(&lock.refreshed_at)
                .map(|t| {
                    let age = chrono::Utc::now().signed_duration_since(t);
                    age.to_std().map_or(true, |a| a < LOCK_STALE_AFTER)
                })
                .unwrap_or(false);
            if fresh {
                out.push((key, lock));
            }
        }
        Ok(out)
    }

    /// Deletes a backup and then every pack no remaining backup references (under the
    /// exclusive lock, so never under a running backup). With `dry_run`, only says what
    /// it would delete.
    pub async fn delete_backup(&self, name: &str, dry_run: bool) -> Result<GcReport, Error> {
        check_backup_name(name)?;
        let guard = if dry_run {
            None
        } else {
            Some(
                self.lock(LockKind::Exclusive, &format!("delete {name}"))
                    .await?,
            )
        };
        let result = self.delete_locked(name, dry_run).await;
        if let Some(guard) = guard {
            guard.release().await;
        }
        result
    }

    async fn delete_locked(&self, name: &str, dry_run: bool) -> Result<GcReport, Error> {
        let prefix = Self::backup_key(name, "");
        let files = self.storage.list(&prefix).await?;
        if files.is_empty() {
            return Err(Error::NotFound(format!(
                "no backup named {name} in {}",
                self.storage.url()
            )));
        }
        let mut report = GcReport {
            backup_files: files.iter().map(|(k, _)| k.clone()).collect(),
            ..GcReport::default()
        };
        if !dry_run {
            // The manifest goes first: from then on the backup is not complete.
            let manifest_key = Self::backup_key(name, "manifest.json");
            self.storage.delete(&manifest_key).await?;
            for (key, _) in &files {
                self.storage.delete(key).await?;
            }
        }
        // Packs every remaining complete backup references. An unreadable manifest
        // stops collection: its packs cannot be told apart from garbage.
        let mut referenced = BTreeSet::new();
        for listing in self.list_backups().await? {
            if listing.name == name {
                continue;
            }
            if let Some(error) = listing.error {
                return Err(Error::corrupt(
                    Self::backup_key(&listing.name, "manifest.json"),
                    format!("{error}; garbage collection stopped so nothing it uses is deleted"),
                ));
            }
            if let Some(m) = listing.manifest {
                referenced.extend(m.packs);
            }
        }
        for (key, size) in self.storage.list("packs/").await? {
            let id = key
                .rsplit('/')
                .next()
                .and_then(|f| f.strip_suffix(".pack"))
                .unwrap_or("");
            if !referenced.contains(id) {
                report.packs_deleted.push(key.clone());
                report.bytes_freed += size;
                if !dry_run {
                    self.storage.delete(&pack::index_key(id)).await?;
                    self.storage.delete(&key).await?;
                }
            }
        }
        for (key, size) in self.storage.list("index/").await? {
            let id = key
                .strip_prefix("index/")
                .and_then(|k| k.strip_suffix(".json.zst"))
                .unwrap_or("");
            if !referenced.contains(id) && !report.packs_deleted.iter().any(|p| p.contains(id)) {
                report.bytes_freed += size;
                if !dry_run {
                    self.storage.delete(&key).await?;
                }
            }
        }
        report.packs_kept = referenced.len();
        Ok(report)
    }
}

/// What `delete` removed (or would remove).
#[derive(Debug, Clone, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GcReport {
    /// The backup's own files.
    pub backup_files: Vec<String>,
    /// Packs no backup references any more.
    pub packs_deleted: Vec<String>,
    /// Packs still referenced.
    pub packs_kept: usize,
    /// Bytes freed (packs and indexes).
    pub bytes_freed: u64,
}

/// A held lock: refreshed in the background until released.
#[derive(Debug)]
pub struct LockGuard {
    storage: Storage,
    key: String,
    refresher: Option<tokio::task::JoinHandle<()>>,
}

impl LockGuard {
    /// Releases the lock.
    pub async fn release(mut self) {
        if let Some(task) = self.refresher.take() {
            task.abort();
        }
        let _ = self.storage.delete(&self.key).await;
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Some(task) = self.refresher.take() {
            task.abort();
            // Not released explicitly (an error path): remove the lock if a runtime is
            // still there; otherwise it goes stale.
            let storage = self.storage.clone();
            let key = self.key.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = storage.delete(&key).await;
                });
            }
        }
    }
}

fn parse_manifest(key: &str, name: &str, bytes: &[u8]) -> Result<Manifest, Error> {
    let manifest: Manifest = serde_json::from_slice(bytes)
        .map_err(|e| Error::corrupt(key, format!("not a backup manifest: {e}")))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(Error::corrupt(
            key,
            format!("format {:?}, expected {MANIFEST_FORMAT:?}", manifest.format),
        ));
    }
    if manifest.name != name {
        return Err(Error::corrupt(
            key,
            format!("names backup {:?} but is stored as {name:?}", manifest.name),
        ));
    }
    if let Some(p) = manifest.packs.iter().find(|p| !pack::is_pack_id(p)) {
        return Err(Error::corrupt(key, format!("{p:?} is not a pack id")));
    }
    Ok(manifest)
}

/// Whether a manifest's signature verifies: `None` when unsigned, else whether the
/// signature is valid and (when `trusted` is given) made by that key.
pub fn check_signature(
    manifest: &Manifest,
    trusted: Option<&VerifyingKey>,
) -> Result<Option<String>, Error> {
    let Some(sig) = &manifest.signature else {
        return Ok(None);
    };
    let key = VerifyingKey::parse(&sig.public_key)
        .map_err(|e| Error::corrupt("manifest signature", e))?;
    if let Some(t) = trusted
        && *t != key
    {
        return Err(Error::Crypto(format!(
            "signed by key {}, not by the trusted key {}",
            key.to_base64(),
            t.to_base64()
        )));
    }
    if sig.algorithm != "ed25519" || !key.verify(&signed_bytes(manifest)?, &sig.value) {
        return Err(Error::Crypto(
            "the manifest signature does not verify: the manifest was changed after signing"
                .to_string(),
        ));
    }
    Ok(Some(key.to_base64()))
}

/// Writes JSON lines into a zstd stream kept in memory (compressed: a few MB for 100k
/// objects).
pub struct JsonLinesWriter {
    encoder: zstd::stream::write::Encoder<'static, Vec<u8>>,
    lines: u64,
}

impl std::fmt::Debug for JsonLinesWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JsonLinesWriter({} lines)", self.lines)
    }
}

impl JsonLinesWriter {
    /// A new writer.
    pub fn new() -> Result<JsonLinesWriter, Error> {
        Ok(JsonLinesWriter {
            encoder: zstd::stream::write::Encoder::new(Vec::new(), 3)
                .map_err(|e| Error::Invalid(format!("zstd: {e}")))?,
            lines: 0,
        })
    }

    /// Appends one value as a line.
    pub fn push(&mut self, value: &impl serde::Serialize) -> Result<(), Error> {
        serde_json::to_writer(&mut self.encoder, value)
            .map_err(|e| Error::Invalid(e.to_string()))?;
        self.encoder
            .write_all(b"\n")
            .map_err(|e| Error::Invalid(format!("zstd: {e}")))?;
        self.lines += 1;
        Ok(())
    }

    /// Lines written.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// The compressed bytes.
    pub fn finish(self) -> Result<Vec<u8>, Error> {
        self.encoder
            .finish()
            .map_err(|e| Error::Invalid(format!("zstd: {e}")))
    }
}
