//! `salvor backup import-etcd`: the Kubernetes objects inside an etcd snapshot become a
//! backup in the repository, exactly as if they had been listed through the API at the
//! snapshot's revision — so a dead cluster's workloads restore into a new cluster.
//!
//! The caller walks the snapshot (etcd-tools decodes the storage values) and hands
//! each object to [`Importer::add`], in key order.

use std::time::Instant;

use serde_json::Value;

use super::filter::Filters;
use super::{BackupOptions, Chunk, Finish, Sink, is_builtin_group};
use crate::Error;
use crate::model::{Gvr, ResourceType};
use crate::repo::format::{ClusterIdentity, LockKind, Problem};
use crate::repo::{LockGuard, Repository, now_rfc3339};

/// One object read from the snapshot.
#[derive(Debug, Clone)]
pub struct ImportedObject {
    /// The etcd key (for messages).
    pub key: String,
    /// API group from the key.
    pub group: String,
    /// Resource from the key.
    pub resource: String,
    /// Namespace from the key.
    pub namespace: Option<String>,
    /// Name from the key.
    pub name: String,
    /// etcd mod_revision: the object's resourceVersion.
    pub mod_revision: i64,
    /// The object as the API's JSON, or why it could not be decoded.
    pub object: Result<Value, String>,
}

/// Where the objects came from.
#[derive(Debug, Clone)]
pub struct ImportSource {
    /// `etcd snapshot /backups/etcd.db`.
    pub description: String,
    /// The snapshot's revision (the backup's resourceVersion).
    pub revision: i64,
}

/// An import in progress.
pub struct Importer {
    sink: Sink,
    options: BackupOptions,
    filters: Filters,
    chunk: Option<Chunk>,
    lock: Option<LockGuard>,
    started: Instant,
    started_at: String,
    uploaded_before: u64,
    kube_system_uid: Option<String>,
}

impl std::fmt::Debug for Importer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Importer")
            .field("name", &self.options.name)
            .finish()
    }
}

impl Importer {
    /// Starts an import into backup `options.name` (which must not exist).
    pub async fn start(repo: &Repository, options: &BackupOptions) -> Result<Importer, Error> {
        super::ensure_new(repo, &options.name).await?;
        let filters = Filters::new(options.filters.clone())?;
        let lock = repo
            .lock(LockKind::Shared, &format!("import-etcd {}", options.name))
            .await?;
        let uploaded_before = repo.storage().uploaded_bytes();
        repo.mark_started(&options.name).await?;
        let sink = Sink::new(repo, options).await?;
        Ok(Importer {
            sink,
            options: options.clone(),
            filters,
            chunk: None,
            lock: Some(lock),
            started: Instant::now(),
            started_at: now_rfc3339(),
            uploaded_before,
            kube_system_uid: None,
        })
    }

    /// Adds one object (in key order: objects of one type and namespace together).
    pub async fn add(&mut self, item: ImportedObject) -> Result<(), Error> {
        let mut object = match item.object {
            Ok(o) => o,
            Err(why) => {
                self.sink
                    .object_error(Problem {
                        resource: Some(Gvr::new(&item.group, "", &item.resource).group_resource()),
                        namespace: item.namespace.clone(),
                        name: Some(item.name.clone()),
                        message: format!("{}: {why}", item.key),
                    })
                    .await;
                return Ok(());
            }
        };
        let api_version = object["apiVersion"].as_str().unwrap_or("").to_string();
        let version = api_version.rsplit('/').next().unwrap_or("").to_string();
        let kind = object["kind"].as_str().unwrap_or("").to_string();
        if version.is_empty() || kind.is_empty() {
            self.sink
                .object_error(Problem {
                    resource: Some(Gvr::new(&item.group, "", &item.resource).group_resource()),
                    namespace: item.namespace.clone(),
                    name: Some(item.name.clone()),
                    message: format!("{}: the object has no apiVersion or kind", item.key),
                })
                .await;
            return Ok(());
        }
        let t = ResourceType {
            gvr: Gvr::new(&item.group, &version, &item.resource),
            kind,
            namespaced: item.namespace.is_some(),
            verbs: vec!["list".to_string()],
            preferred: true,
        };
        if !self.wanted(&t, &item.namespace, &item.name) {
            return Ok(());
        }
        // The API server serves the etcd mod_revision as resourceVersion.
        if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            meta.insert(
                "resourceVersion".into(),
                Value::String(item.mod_revision.to_string()),
            );
        }
        if t.gvr.group.is_empty() && t.gvr.resource == "namespaces" && item.name == "kube-system" {
            self.kube_system_uid = object["metadata"]["uid"].as_str().map(str::to_string);
        }
        let builtin = is_builtin_group(&t.gvr.group);
        let Some(entry) = self.sink.add(&t, builtin, &object).await? else {
            return Ok(());
        };
        let chunk = self.chunk.get_or_insert_with(|| Chunk {
            t: t.clone(),
            namespace: item.namespace.clone(),
            items: Vec::new(),
        });
        self.sink
            .push_entry(chunk, &t, item.namespace.as_deref(), entry)
            .await
    }

    fn wanted(&self, t: &ResourceType, namespace: &Option<String>, name: &str) -> bool {
        if !self.filters.resource_selected(t) {
            return false;
        }
        match namespace {
            Some(ns) => self.filters.namespace_selected(ns) && self.filters.name_selected(name),
            None if t.gvr.group.is_empty() && t.gvr.resource == "namespaces" => {
                self.filters.namespace_selected(name)
            }
            None => match self.filters.cluster_mode() {
                super::filter::ClusterMode::All => self.filters.name_selected(name),
                _ => false,
            },
        }
    }

    /// Writes the entries, log and manifest (last).
    pub async fn finish(mut self, source: ImportSource) -> Result<super::Manifest, Error> {
        if let Some(mut done) = self.chunk.take() {
            self.sink.flush_chunk(&mut done).await?;
        }
        self.sink.log(
            "info",
            format!(
                "imported from {} at revision {}",
                source.description, source.revision
            ),
        );
        let result = self
            .sink
            .finish(
                &self.options,
                Finish {
                    cluster: ClusterIdentity {
                        server: source.description.clone(),
                        context: None,
                        git_version: String::new(),
                        kube_system_uid: self.kube_system_uid.clone(),
                    },
                    started: self.started,
                    started_at: self.started_at.clone(),
                    uploaded_before: self.uploaded_before,
                    resource_version: source.revision.to_string(),
                    // A snapshot is one revision: as consistent as a backup gets.
                    consistent: true,
                    filters: self.filters.spec(),
                    resources: self.sink.chunk_types().await,
                    warnings: Vec::new(),
                    errors: Vec::new(),
                },
            )
            .await;
        if let Some(lock) = self.lock.take() {
            lock.release().await;
        }
        result
    }
}
