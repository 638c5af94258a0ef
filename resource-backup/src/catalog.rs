//! Reading backups back from the repository, with no state anywhere else: the objects
//! of a backup (the restore's source), `verify`, `download` and the log.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Component, Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::Error;
use crate::backup::LogLine;
use crate::canonical::ContentId;
use crate::crypto::{Identities, VerifyingKey};
use crate::model::{BackupItem, Gvr, ObjectSource, ResourceType};
use crate::repo::format::{Entry, Manifest, limits};
use crate::repo::pack::{self, decode_index};
use crate::repo::{BlobMap, Repository, check_signature};

/// A complete backup, opened for reading.
#[derive(Debug)]
pub struct StoredBackup {
    repo: Repository,
    manifest: Manifest,
    entries: Vec<Entry>,
    blobs: BlobMap,
    identities: Identities,
}

impl StoredBackup {
    /// Opens backup `name`: manifest, entries and pack indexes.
    pub async fn open(
        repo: &Repository,
        name: &str,
        identities: Identities,
    ) -> Result<StoredBackup, Error> {
        let manifest = repo.manifest(name).await?;
        let blobs = repo.load_blobs().await?;
        let entries = repo.entries(&manifest, &blobs, &identities).await?;
        Ok(StoredBackup {
            repo: repo.clone(),
            manifest,
            entries,
            blobs,
            identities,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The entries.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// One object, parsed, checked against its entry.
    pub async fn object(&self, entry: &Entry) -> Result<Value, Error> {
        let raw = self
            .repo
            .read_object(&self.blobs, &entry.id, &self.identities)
            .await?;
        let value: Value = serde_json::from_slice(&raw).map_err(|e| {
            Error::corrupt(format!("object {}", entry.id), format!("not JSON: {e}"))
        })?;
        let meta = &value["metadata"];
        if meta["name"].as_str() != Some(entry.name.as_str())
            || meta["namespace"].as_str() != entry.namespace.as_deref()
        {
            return Err(Error::corrupt(
                format!("object {}", entry.id),
                format!(
                    "is {}/{} but the backup lists it as {}/{}",
                    meta["namespace"].as_str().unwrap_or(""),
                    meta["name"].as_str().unwrap_or(""),
                    entry.namespace.as_deref().unwrap_or(""),
                    entry.name
                ),
            ));
        }
        Ok(value)
    }

    /// Entries ordered so that each pack is read once.
    fn entries_by_pack<'a>(&self, entries: impl Iterator<Item = &'a Entry>) -> Vec<&'a Entry> {
        let mut out: Vec<&Entry> = entries.collect();
        out.sort_by_key(|e| {
            self.blobs
                .blobs
                .get(&e.id)
                .map_or((u32::MAX, 0), |l| (l.pack, l.offset))
        });
        out
    }
}

impl ObjectSource for StoredBackup {
    fn resource_types(&self) -> Vec<ResourceType> {
        let mut seen: BTreeMap<Gvr, ResourceType> = BTreeMap::new();
        for e in &self.entries {
            seen.entry(e.gvr()).or_insert_with(|| ResourceType {
                gvr: e.gvr(),
                kind: e.kind.clone(),
                namespaced: e.namespace.is_some(),
                verbs: vec!["list".to_string()],
                preferred: true,
            });
        }
        seen.into_values().collect()
    }

    async fn objects(&self, gvr: &Gvr) -> Result<Vec<BackupItem>, Error> {
        let wanted = self.entries_by_pack(self.entries.iter().filter(|e| {
            e.group == gvr.group && e.version == gvr.version && e.resource == gvr.resource
        }));
        let mut out = Vec::with_capacity(wanted.len());
        for entry in wanted {
            let object = self.object(entry).await?;
            out.push(BackupItem {
                gvr: gvr.clone(),
                kind: entry.kind.clone(),
                namespace: entry.namespace.clone(),
                name: entry.name.clone(),
                object,
            });
        }
        Ok(out)
    }
}

/// One problem `verify` found.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct VerifyProblem {
    /// Stable code (`PACK_MISSING`, `PACK_HASH_MISMATCH`, …).
    pub code: String,
    /// Where: key in the repository, with offset or object when known.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

/// What `verify` checked.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VerifyReport {
    /// Backup name.
    pub backup: String,
    /// `signed by KEY`, `unsigned`, or why it failed.
    pub signature: String,
    /// Packs checked.
    pub packs: usize,
    /// Objects whose content was hashed (0 for encrypted packs without an identity).
    pub objects_checked: u64,
    /// Objects in the backup.
    pub objects: u64,
    /// Whether object contents were checked (false: encrypted and no identity given).
    pub contents_checked: bool,
    /// Problems; empty when the backup is intact.
    pub problems: Vec<VerifyProblem>,
}

impl VerifyReport {
    /// Whether nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    fn problem(&mut self, code: &str, location: impl Into<String>, message: impl Into<String>) {
        self.problems.push(VerifyProblem {
            code: code.to_string(),
            location: location.into(),
            message: message.into(),
        });
    }
}

/// Checks a backup end to end: the manifest's signature, the entries' and log's
/// checksums, every pack present with its sha256, every object in a pack of the backup
/// and (when readable) every object's content against its id.
pub async fn verify(
    repo: &Repository,
    name: &str,
    identities: &Identities,
    trusted: Option<&VerifyingKey>,
) -> Result<VerifyReport, Error> {
    let manifest_key = format!("backups/{name}/manifest.json");
    let manifest = match repo.manifest(name).await {
        Ok(m) => m,
        Err(Error::Corrupt { location, message }) => {
            let mut report = VerifyReport {
                backup: name.to_string(),
                ..VerifyReport::default()
            };
            report.problem("MANIFEST_INVALID", location, message);
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    let mut report = VerifyReport {
        backup: name.to_string(),
        objects: manifest.counts.objects,
        ..VerifyReport::default()
    };
    report.signature = match check_signature(&manifest, trusted) {
        Ok(Some(key)) => format!("valid, ed25519 key {key}"),
        Ok(None) if trusted.is_some() => {
            report.problem(
                "SIGNATURE_MISSING",
                &manifest_key,
                "a trusted key was given but the manifest is not signed",
            );
            "unsigned".to_string()
        }
        Ok(None) => "unsigned".to_string(),
        Err(e) => {
            report.problem("SIGNATURE_INVALID", &manifest_key, e.to_string());
            "invalid".to_string()
        }
    };
    let blobs = repo.load_blobs().await?;
    let entries = match repo.entries(&manifest, &blobs, identities).await {
        Ok(e) => Some(e),
        Err(Error::Crypto(_)) if identities.is_empty() => {
            // Encrypted and no key: packs and checksums are still checked below.
            report.contents_checked = false;
            None
        }
        Err(Error::Crypto(message)) => {
            report.problem("ENTRIES_UNREADABLE", &manifest.entries.key, message);
            None
        }
        Err(Error::Corrupt { location, message }) => {
            report.problem("ENTRIES_INVALID", location, message);
            None
        }
        Err(Error::NotFound(message)) => {
            report.problem("ENTRIES_MISSING", &manifest.entries.key, message);
            None
        }
        Err(e) => return Err(e),
    };
    match repo
        .get_backup_file(&manifest, &manifest.log, identities)
        .await
    {
        Ok(_) | Err(Error::Crypto(_)) => {}
        Err(Error::NotFound(m)) => report.problem("LOG_MISSING", &manifest.log.key, m),
        Err(Error::Corrupt { location, message }) => {
            report.problem("LOG_INVALID", location, message);
        }
        Err(e) => return Err(e),
    }
    let wanted: HashSet<ContentId> = entries.iter().flatten().map(|e| e.id).collect();
    let mut found: HashMap<ContentId, bool> = HashMap::new();
    report.contents_checked = entries.is_some();
    for pack_id in &manifest.packs {
        report.packs += 1;
        let pack_key = pack::pack_key(pack_id);
        let index_key = pack::index_key(pack_id);
        let index = match repo.storage().get_opt(&index_key, limits::INDEX).await? {
            None => {
                report.problem("INDEX_MISSING", &index_key, "the pack's index is missing");
                continue;
            }
            Some(bytes) => match decode_index(&index_key, &bytes, pack_id) {
                Ok(i) => i,
                Err(e) => {
                    report.problem("INDEX_INVALID", &index_key, e.to_string());
                    continue;
                }
            },
        };
        let Some(stored) = repo.storage().get_opt(&pack_key, limits::PACK).await? else {
            report.problem("PACK_MISSING", &pack_key, "the pack is missing");
            continue;
        };
        let actual = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&stored));
        if &actual != pack_id {
            report.problem(
                "PACK_HASH_MISMATCH",
                &pack_key,
                format!("sha256 is {actual}: damaged or tampered with"),
            );
            continue;
        }
        let plaintext = if crate::crypto::is_age(&stored) {
            if identities.is_empty() {
                report.contents_checked = false;
                for b in &index.blobs {
                    found.entry(b.id).or_insert(true);
                }
                continue;
            }
            match identities.decrypt(&pack_key, &stored) {
                Ok(p) => p,
                Err(e) => {
                    report.problem("PACK_UNREADABLE", &pack_key, e.to_string());
                    continue;
                }
            }
        } else {
            stored.to_vec()
        };
        if let Err(e) = pack::check_magic(&pack_key, &plaintext) {
            report.problem("PACK_INVALID", &pack_key, e.to_string());
            continue;
        }
        for blob in &index.blobs {
            if !wanted.contains(&blob.id) || found.get(&blob.id) == Some(&true) {
                continue;
            }
            match pack::read_blob(&pack_key, &plaintext, blob) {
                Ok(_) => {
                    report.objects_checked += 1;
                    found.insert(blob.id, true);
                }
                Err(e) => {
                    found.entry(blob.id).or_insert(false);
                    let location = match &e {
                        Error::Corrupt { location, .. } => location.clone(),
                        _ => pack_key.clone(),
                    };
                    report.problem("OBJECT_HASH_MISMATCH", location, e.to_string());
                }
            }
        }
    }
    for entry in entries.iter().flatten() {
        if !found.contains_key(&entry.id) {
            report.problem(
                "OBJECT_MISSING",
                format!(
                    "{} {}/{}",
                    entry.gvr(),
                    entry.namespace.as_deref().unwrap_or(""),
                    entry.name
                ),
                format!("object {} is in none of the backup's packs", entry.id),
            );
        }
    }
    Ok(report)
}

/// A path component from a backup (namespace, resource, name), refused when it could
/// leave the target directory.
fn safe_component(s: &str) -> Result<&str, Error> {
    let ok = !s.is_empty()
        && s != "."
        && s != ".."
        && !s.contains(['/', '\\', '\0'])
        && matches!(Path::new(s).components().next(), Some(Component::Normal(_)));
    if ok {
        Ok(s)
    } else {
        Err(Error::corrupt(
            "entries",
            format!("{s:?} cannot be a file name: refusing to write outside the target"),
        ))
    }
}

/// Where `download` writes an entry: `<namespace or _cluster>/<resource.group>/<name>.yaml`.
pub fn download_path(dir: &Path, entry: &Entry) -> Result<PathBuf, Error> {
    let ns = match &entry.namespace {
        Some(ns) => safe_component(ns)?,
        None => "_cluster",
    };
    let gr = entry.gvr().group_resource();
    Ok(dir
        .join(ns)
        .join(safe_component(&gr)?)
        .join(format!("{}.yaml", safe_component(&entry.name)?)))
}

/// Writes every object of a backup as YAML under `dir` (which must be absent or
/// empty). Returns the number of files.
pub async fn download(backup: &StoredBackup, dir: &Path) -> Result<u64, Error> {
    let io = |path: &Path, source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if dir.exists() {
        let mut listing = std::fs::read_dir(dir).map_err(|e| io(dir, e))?;
        if listing.next().is_some() {
            return Err(Error::Invalid(format!(
                "{}: not empty; download into a new directory",
                dir.display()
            )));
        }
    }
    let mut n = 0;
    for entry in backup.entries_by_pack(backup.entries.iter()) {
        let path = download_path(dir, entry)?;
        let object = backup.object(entry).await?;
        let yaml = serde_yaml::to_string(&object)
            .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&path, yaml).map_err(|e| io(&path, e))?;
        n += 1;
    }
    Ok(n)
}

/// A backup's log.
pub async fn log(
    repo: &Repository,
    manifest: &Manifest,
    identities: &Identities,
) -> Result<Vec<LogLine>, Error> {
    let text = repo
        .get_backup_file(manifest, &manifest.log, identities)
        .await?;
    let mut out = Vec::new();
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        out.push(serde_json::from_slice(line).map_err(|e| {
            Error::corrupt(
                format!("{} line {}", manifest.log.key, i + 1),
                format!("not a log line: {e}"),
            )
        })?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_never_leave_the_directory() {
        let dir = Path::new("/out");
        let mut e = Entry {
            group: "apps".into(),
            version: "v1".into(),
            resource: "deployments".into(),
            kind: "Deployment".into(),
            namespace: Some("ns".into()),
            name: "web".into(),
            id: ContentId([0; 32]),
        };
        assert_eq!(
            download_path(dir, &e).unwrap(),
            Path::new("/out/ns/deployments.apps/web.yaml")
        );
        for bad in ["..", "../x", "a/b", "", ".", "x\0"] {
            e.name = bad.into();
            assert!(download_path(dir, &e).is_err(), "{bad:?}");
        }
        e.name = "ok".into();
        e.namespace = Some("..".into());
        assert!(download_path(dir, &e).is_err());
        e.namespace = None;
        e.resource = "../../etc".into();
        assert!(download_path(dir, &e).is_err());
    }
}
