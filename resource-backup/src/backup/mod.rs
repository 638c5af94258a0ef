//! `salvor backup create`: every selected object of a cluster, listed at one
//! resourceVersion, stored content-addressed in a repository.
//!
//! Types are listed several at a time, page by page; each object is canonicalised,
//! hashed and — when the repository does not hold it yet — compressed into the current
//! pack, which is uploaded (with its index) as soon as it is full. Memory is bounded by
//! the packs and pages in flight, not by the size of the cluster. The manifest is
//! written last.

pub mod filter;
pub mod import;
pub mod list;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use serde_json::Value;
use tokio::sync::{Mutex, Semaphore};

use crate::Error;
use crate::canonical::{self, ContentId};
use crate::cluster::{self, Cluster};
use crate::crypto::{Recipients, SigningKey};
use crate::model::ResourceType;
pub use crate::repo::format::Manifest;
use crate::repo::format::{
    ClusterIdentity, Counts, FilterSpec, LockKind, MANIFEST_FORMAT, Phase, Problem,
};
use crate::repo::pack::{self, PackBuilder};
use crate::repo::{BlobMap, JsonLinesWriter, Repository, check_backup_name, now_rfc3339};
use filter::{ClusterMode, Filters, Related};
use list::{PageRequest, Pin};

/// Most per-object errors a manifest records (the count of the rest is kept).
const MAX_OBJECT_ERRORS: usize = 1000;

/// How to back up.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Backup name.
    pub name: String,
    /// Selection.
    pub filters: FilterSpec,
    /// Objects per list page.
    pub page_size: u32,
    /// Types listed at once.
    pub concurrency: usize,
    /// Pack size target in bytes.
    pub pack_size: usize,
    /// Encrypt to these age recipients (none: plaintext).
    pub recipients: Recipients,
    /// Sign the manifest.
    pub signing: Option<SigningKey>,
    /// kubeconfig context name, recorded in the manifest.
    pub context: Option<String>,
}

impl BackupOptions {
    /// Defaults for a name.
    pub fn new(name: &str) -> BackupOptions {
        BackupOptions {
            name: name.to_string(),
            filters: FilterSpec {
                include_cluster_resources: "auto".to_string(),
                exclude_label: Some("salvor.io/exclude-from-backup=true".to_string()),
                ..FilterSpec::default()
            },
            page_size: 500,
            concurrency: 4,
            pack_size: 8 << 20,
            recipients: Recipients::default(),
            signing: None,
            context: None,
        }
    }
}

/// Progress of a running backup.
#[derive(Debug, Clone)]
pub enum Progress {
    /// Discovery done: this many types will be listed.
    Types(usize),
    /// Objects backed up so far (all types).
    Objects(u64),
    /// One type finished.
    TypeDone {
        /// `deployments.apps/v1`.
        resource: String,
        /// Objects taken from it.
        objects: u64,
    },
}

/// Entries gathered for one type and namespace, stored as one content-addressed blob
/// so that a namespace that did not change costs nothing in the next backup.
struct Chunk {
    t: ResourceType,
    namespace: Option<String>,
    items: Vec<(String, ContentId)>,
}

/// Entries per chunk at most.
const CHUNK_ENTRIES: usize = 1000;

pub use crate::repo::format::{ChunkRef, EntryChunk};

/// One line of a backup's log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LogLine {
    /// RFC 3339.
    pub time: String,
    /// `info`, `warning` or `error`.
    pub level: String,
    /// The message.
    pub message: String,
}

struct SinkState {
    pack: PackBuilder,
    entries: JsonLinesWriter,
    counts: Counts,
    packs_used: BTreeSet<String>,
    /// Types with at least one object stored (`deployments.apps/v1`).
    chunk_types: BTreeSet<String>,
    related: Related,
    object_errors: Vec<Problem>,
    dropped_errors: u64,
}

struct Sink {
    repo: Repository,
    recipients: Recipients,
    known: BlobMap,
    pack_size: usize,
    state: Mutex<SinkState>,
    objects: AtomicU64,
    log: std::sync::Mutex<Vec<LogLine>>,
}

impl Sink {
    fn log(&self, level: &str, message: String) {
        match level {
            "error" => tracing::error!("{message}"),
            "warning" => tracing::warn!("{message}"),
            _ => tracing::info!("{message}"),
        }
        if let Ok(mut log) = self.log.lock() {
            log.push(LogLine {
                time: now_rfc3339(),
                level: level.to_string(),
                message,
            });
        }
    }

    /// Stores a blob (canonical JSON) unless the repository holds it already; returns
    /// its id and whether it was new to the repository.
    async fn put_blob(&self, bytes: &[u8]) -> Result<(ContentId, bool), Error> {
        let id = ContentId::of(bytes);
        let existing = self
            .known
            .blobs
            .get(&id)
            .map(|l| self.known.pack_id(l).to_string());
        let new = existing.is_none();
        let full = match existing {
            Some(pack_id) => {
                self.state.lock().await.packs_used.insert(pack_id);
                None
            }
            None => {
                let blob = pack::compress(id, bytes)?;
                let mut state = self.state.lock().await;
                state.pack.add(blob);
                state
                    .pack
                    .is_full()
                    .then(|| std::mem::replace(&mut state.pack, PackBuilder::new(self.pack_size)))
            }
        };
        if let Some(full) = full {
            self.upload(full).await?;
        }
        Ok((id, new))
    }

    /// Stores one selected object; returns its name and id for the entry chunk.
    async fn add(
        &self,
        t: &ResourceType,
        builtin: bool,
        object: &Value,
    ) -> Result<Option<(String, ContentId)>, Error> {
        let meta = &object["metadata"];
        let Some(name) = meta["name"].as_str() else {
            let mut state = self.state.lock().await;
            push_error(
                &mut state,
                Problem {
                    resource: Some(t.gvr.group_resource()),
                    namespace: meta["namespace"].as_str().map(str::to_string),
                    name: None,
                    message: "object without metadata.name: skipped".to_string(),
                },
            );
            return Ok(None);
        };
        let namespace = meta["namespace"].as_str().unwrap_or_default();
        let bytes = canonical::to_vec(object);
        let (id, new) = self.put_blob(&bytes).await?;
        {
            let mut state = self.state.lock().await;
            state.related.note(t, builtin, object);
            let counts = &mut state.counts;
            counts.objects += 1;
            counts.new_objects += u64::from(new);
            counts.raw_bytes += bytes.len() as u64;
            *counts
                .by_resource
                .entry(t.gvr.group_resource())
                .or_default() += 1;
            *counts
                .by_namespace
                .entry(namespace.to_string())
                .or_default() += 1;
        }
        self.objects.fetch_add(1, Ordering::Relaxed);
        Ok(Some((name.to_string(), id)))
    }

    /// Stores a chunk of entries (one type, one namespace) as a blob, and records it
    /// in the backup's entry list.
    async fn flush_chunk(&self, chunk: &mut Chunk) -> Result<(), Error> {
        if chunk.items.is_empty() {
            return Ok(());
        }
        let body = EntryChunk {
            group: chunk.t.gvr.group.clone(),
            version: chunk.t.gvr.version.clone(),
            resource: chunk.t.gvr.resource.clone(),
            kind: chunk.t.kind.clone(),
            namespace: chunk.namespace.clone(),
            items: std::mem::take(&mut chunk.items),
        };
        let value = serde_json::to_value(&body).map_err(|e| Error::Invalid(e.to_string()))?;
        let (id, _) = self.put_blob(&canonical::to_vec(&value)).await?;
        let line = ChunkRef {
            group: body.group,
            version: body.version,
            resource: body.resource,
            kind: body.kind,
            namespace: body.namespace,
            count: body.items.len() as u64,
            chunk: id,
        };
        let mut state = self.state.lock().await;
        state.entries.push(&line)?;
        state.chunk_types.insert(chunk.t.gvr.to_string());
        Ok(())
    }

    /// Adds an entry to `chunk`, storing the chunk first when the entry is of another
    /// type or namespace or the chunk is full.
    async fn push_entry(
        &self,
        chunk: &mut Chunk,
        t: &ResourceType,
        namespace: Option<&str>,
        item: (String, ContentId),
    ) -> Result<(), Error> {
        if chunk.t.gvr != t.gvr
            || chunk.namespace.as_deref() != namespace
            || chunk.items.len() >= CHUNK_ENTRIES
        {
            self.flush_chunk(chunk).await?;
            if chunk.t.gvr != t.gvr {
                chunk.t = t.clone();
            }
            chunk.namespace = namespace.map(str::to_string);
        }
        chunk.items.push(item);
        Ok(())
    }

    async fn upload(&self, pack: PackBuilder) -> Result<(), Error> {
        let recipients = self.recipients.clone();
        let sealed = tokio::task::spawn_blocking(move || pack.seal(&recipients))
            .await
            .map_err(|e| Error::Invalid(format!("sealing a pack: {e}")))??;
        let id = sealed.id.clone();
        let blobs = sealed.index.blobs.len();
        self.repo.upload_pack(sealed).await?;
        self.state.lock().await.packs_used.insert(id.clone());
        self.log("info", format!("uploaded pack {id} ({blobs} objects)"));
        Ok(())
    }
}

fn push_error(state: &mut SinkState, problem: Problem) {
    if state.object_errors.len() < MAX_OBJECT_ERRORS {
        state.object_errors.push(problem);
    } else {
        state.dropped_errors += 1;
    }
}

/// Groups of the built-in API (objects of other groups are custom resources, whose
/// CRDs a namespace backup takes along).
fn is_builtin_group(group: &str) -> bool {
    group.is_empty() || !group.contains('.') || group.ends_with(".k8s.io")
}

/// How one type's objects are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Selection {
    /// Namespaced objects of selected namespaces, with selector and names.
    Primary,
    /// Cluster-scoped objects related to the selection.
    Related,
}

/// Checks that `name` is a valid name no complete backup has (an incomplete one may be
/// finished by running it again).
pub(crate) async fn ensure_new(repo: &Repository, name: &str) -> Result<(), Error> {
    check_backup_name(name)?;
    match repo.manifest(name).await {
        Ok(_) => Err(Error::Invalid(format!(
            "backup {name} already exists in {}: choose another name or delete it first",
            repo.storage().url()
        ))),
        Err(Error::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Runs a backup. On success the manifest has been written; on a storage failure none
/// is, so the backup does not look complete (and a re-run reuses the packs uploaded).
pub async fn create(
    cluster: &Cluster,
    repo: &Repository,
    options: &BackupOptions,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Manifest, Error> {
    ensure_new(repo, &options.name).await?;
    let filters = Filters::new(options.filters.clone())?;
    let lock = repo
        .lock(LockKind::Shared, &format!("backup {}", options.name))
        .await?;
    let result = run(cluster, repo, options, &filters, progress).await;
    lock.release().await;
    result
}

async fn run(
    cluster: &Cluster,
    repo: &Repository,
    options: &BackupOptions,
    filters: &Filters,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Manifest, Error> {
    let started = Instant::now();
    let started_at = now_rfc3339();
    let uploaded_before = repo.storage().uploaded_bytes();
    repo.mark_started(&options.name).await?;
    let client = cluster.client().clone();
    let version = cluster.version().await?;
    let discovered = cluster.discover().await?;
    let mut types: Vec<ResourceType> = cluster::listable(&discovered, options.filters.all_versions)
        .into_iter()
        .filter(|t| filters.resource_selected(t))
        .collect();
    let all = types.clone();
    types.retain(|t| !filter::is_cohabitant_duplicate(t, &all));
    progress(Progress::Types(types.len()));

    let sink = Arc::new(Sink::new(repo, options).await?);
    sink.log(
        "info",
        format!(
            "backup {} of {} ({}): {} types",
            options.name,
            cluster.server(),
            version.git_version,
            types.len()
        ),
    );

    let mut warnings = Vec::new();
    let (pin, resource_version) = pin(&client).await?;
    let consistent = matches!(pin, Pin::Exact(_));
    if !consistent {
        let message = "the API server does not serve lists at an exact resourceVersion \
                       (resourceVersionMatch=Exact): types were listed one after another, so \
                       the backup is not point-in-time"
            .to_string();
        sink.log("warning", message.clone());
        warnings.push(Problem {
            resource: None,
            namespace: None,
            name: None,
            message,
        });
    } else {
        sink.log(
            "info",
            format!("every list pinned to resourceVersion {resource_version}"),
        );
    }
    let kube_system_uid = kube_system_uid(&client).await;

    // Namespaced types first (they tell which cluster-scoped objects are related), then
    // cluster-scoped ones in dependency phases.
    let mode = filters.cluster_mode();
    let mut batches: Vec<Vec<(ResourceType, Selection)>> = vec![
        types
            .iter()
            .filter(|t| t.namespaced)
            .map(|t| (t.clone(), Selection::Primary))
            .collect(),
    ];
    let cluster_types: Vec<&ResourceType> = types.iter().filter(|t| !t.namespaced).collect();
    match mode {
        ClusterMode::All => batches.push(
            cluster_types
                .iter()
                .map(|t| ((*t).clone(), Selection::Primary))
                .collect(),
        ),
        ClusterMode::Related | ClusterMode::NamespacesOnly => {
            for phase in 0..2 {
                batches.push(
                    cluster_types
                        .iter()
                        .filter(|t| filter::cluster_phase(t) == phase)
                        .filter(|t| {
                            mode == ClusterMode::Related
                                || (t.gvr.group.is_empty() && t.gvr.resource == "namespaces")
                        })
                        .map(|t| ((*t).clone(), Selection::Related))
                        .collect(),
                );
            }
        }
    }

    let mut type_errors = Vec::new();
    let mut listed = Vec::new();
    let semaphore = Arc::new(Semaphore::new(options.concurrency.max(1)));
    for batch in batches {
        let mut tasks = tokio::task::JoinSet::new();
        for (t, selection) in batch {
            let sink = sink.clone();
            let client = client.clone();
            let pin = pin.clone();
            let filters = filters.clone();
            let semaphore = semaphore.clone();
            let page_size = options.page_size;
            tasks.spawn(async move {
                let _permit = semaphore.acquire_owned().await;
                let result =
                    back_up_type(&client, &sink, &t, selection, &pin, &filters, page_size).await;
                (t, result)
            });
        }
        let mut fatal = None;
        while let Some(joined) = tasks.join_next().await {
            let (t, result) = match joined {
                Ok(r) => r,
                // Aborted after a fatal error, which is reported below.
                Err(e) if e.is_cancelled() => continue,
                Err(e) => return Err(Error::Invalid(format!("list task: {e}"))),
            };
            let name = t.gvr.to_string();
            match result {
                Ok(n) => {
                    listed.push(name.clone());
                    progress(Progress::TypeDone {
                        resource: name,
                        objects: n,
                    });
                    progress(Progress::Objects(sink.objects.load(Ordering::Relaxed)));
                }
                Err(e @ (Error::Storage { .. } | Error::Crypto(_) | Error::Io { .. })) => {
                    // The repository failed: nothing more can be stored.
                    fatal.get_or_insert(e);
                    tasks.abort_all();
                }
                Err(e) => {
                    let message = format!("listing {name} failed: {e}");
                    sink.log("error", message.clone());
                    type_errors.push(Problem {
                        resource: Some(t.gvr.group_resource()),
                        namespace: None,
                        name: None,
                        message,
                    });
                }
            }
        }
        if let Some(e) = fatal {
            sink.log("error", format!("backup failed: {e}"));
            return Err(e);
        }
    }

    listed.sort();
    sink.finish(
        options,
        Finish {
            cluster: ClusterIdentity {
                server: cluster.server().to_string(),
                context: options.context.clone(),
                git_version: version.git_version,
                kube_system_uid,
            },
            started,
            started_at,
            uploaded_before,
            resource_version,
            consistent,
            filters: filters.spec(),
            resources: listed,
            warnings,
            errors: type_errors,
        },
    )
    .await
}

/// What a finished backup records besides what the sink gathered.
pub(crate) struct Finish {
    pub(crate) cluster: ClusterIdentity,
    pub(crate) started: Instant,
    pub(crate) started_at: String,
    pub(crate) uploaded_before: u64,
    pub(crate) resource_version: String,
    pub(crate) consistent: bool,
    pub(crate) filters: FilterSpec,
    pub(crate) resources: Vec<String>,
    pub(crate) warnings: Vec<Problem>,
    pub(crate) errors: Vec<Problem>,
}

impl Sink {
    /// A sink writing into `repo`.
    pub(crate) async fn new(repo: &Repository, options: &BackupOptions) -> Result<Sink, Error> {
        let known = repo.load_blobs().await?;
        let sink = Sink {
            repo: repo.clone(),
            recipients: options.recipients.clone(),
            known,
            pack_size: options.pack_size,
            state: Mutex::new(SinkState {
                pack: PackBuilder::new(options.pack_size),
                entries: JsonLinesWriter::new()?,
                counts: Counts::default(),
                packs_used: BTreeSet::new(),
                chunk_types: BTreeSet::new(),
                related: Related::default(),
                object_errors: Vec::new(),
                dropped_errors: 0,
            }),
            objects: AtomicU64::new(0),
            log: std::sync::Mutex::new(Vec::new()),
        };
        for broken in &sink.known.broken_indexes {
            sink.log(
                "warning",
                format!("unreadable pack index ignored: {broken}"),
            );
        }
        Ok(sink)
    }

    /// Types with at least one object stored, sorted.
    pub(crate) async fn chunk_types(&self) -> Vec<String> {
        self.state
            .lock()
            .await
            .chunk_types
            .iter()
            .cloned()
            .collect()
    }

    /// Records a per-object error.
    pub(crate) async fn object_error(&self, problem: Problem) {
        self.log("error", problem.message.clone());
        push_error(&mut *self.state.lock().await, problem);
    }

    /// The last pack, then the entries and the log, then the manifest (last).
    pub(crate) async fn finish(
        &self,
        options: &BackupOptions,
        finish: Finish,
    ) -> Result<Manifest, Error> {
        let repo = &self.repo;
        let last = {
            let mut state = self.state.lock().await;
            std::mem::replace(&mut state.pack, PackBuilder::new(1))
        };
        if !last.is_empty() {
            self.upload(last).await?;
        }
        let mut state = self.state.lock().await;
        let entries_writer = std::mem::replace(&mut state.entries, JsonLinesWriter::new()?);
        let entries = repo
            .put_backup_file(
                &options.name,
                "entries.jsonl.zst",
                entries_writer.finish()?,
                &options.recipients,
            )
            .await?;
        let mut errors = finish.errors;
        errors.append(&mut state.object_errors);
        if state.dropped_errors > 0 {
            errors.push(Problem {
                resource: None,
                namespace: None,
                name: None,
                message: format!(
                    "{} more per-object errors (see the log)",
                    state.dropped_errors
                ),
            });
        }
        let phase = if errors.is_empty() {
            Phase::Completed
        } else {
            Phase::PartiallyFailed
        };
        self.log(
            "info",
            format!(
                "{} objects ({} new), phase {phase:?}, {:.1}s",
                state.counts.objects,
                state.counts.new_objects,
                finish.started.elapsed().as_secs_f64()
            ),
        );
        let mut log_writer = JsonLinesWriter::new()?;
        if let Ok(lines) = self.log.lock() {
            for line in lines.iter() {
                log_writer.push(line)?;
            }
        }
        let log = repo
            .put_backup_file(
                &options.name,
                "log.jsonl.zst",
                log_writer.finish()?,
                &options.recipients,
            )
            .await?;
        let mut counts = state.counts.clone();
        counts.uploaded_bytes = repo.storage().uploaded_bytes() - finish.uploaded_before;
        let mut manifest = Manifest {
            format: MANIFEST_FORMAT.to_string(),
            name: options.name.clone(),
            cluster: finish.cluster,
            started_at: finish.started_at,
            completed_at: now_rfc3339(),
            duration_seconds: finish.started.elapsed().as_secs_f64(),
            phase,
            resource_version: finish.resource_version,
            consistent: finish.consistent,
            filters: finish.filters,
            resources: finish.resources,
            counts,
            warnings: finish.warnings,
            errors,
            entries,
            log,
            packs: state.packs_used.iter().cloned().collect(),
            recipients: options.recipients.public_keys(),
            signature: None,
        };
        repo.write_manifest(&mut manifest, options.signing.as_ref())
            .await?;
        Ok(manifest)
    }
}

/// The current resourceVersion, and whether lists can be pinned to it.
async fn pin(client: &kube::Client) -> Result<(Pin, String), Error> {
    let namespaces = ResourceType {
        gvr: crate::Gvr::new("", "v1", "namespaces"),
        kind: "Namespace".to_string(),
        namespaced: false,
        verbs: vec!["list".to_string()],
        preferred: true,
    };
    let first = list::get_page(
        client,
        &namespaces,
        &PageRequest {
            limit: 1,
            ..PageRequest::default()
        },
    )
    .await?;
    let rv = first.resource_version;
    if rv.is_empty() {
        return Ok((Pin::Unpinned, String::new()));
    }
    let exact = list::get_page(
        client,
        &namespaces,
        &PageRequest {
            limit: 1,
            resource_version: Some(rv.clone()),
            exact: true,
            ..PageRequest::default()
        },
    )
    .await;
    match exact {
        Ok(_) => Ok((Pin::Exact(rv.clone()), rv)),
        Err(e) if matches!(e.api_code(), Some(400 | 410 | 422 | 501)) => Ok((Pin::Unpinned, rv)),
        Err(e) => Err(e),
    }
}

async fn kube_system_uid(client: &kube::Client) -> Option<String> {
    let req = http::Request::get("/api/v1/namespaces/kube-system")
        .body(Vec::new())
        .ok()?;
    let ns: Value = client.request(req).await.ok()?;
    ns["metadata"]["uid"].as_str().map(str::to_string)
}

async fn back_up_type(
    client: &kube::Client,
    sink: &Sink,
    t: &ResourceType,
    selection: Selection,
    pin: &Pin,
    filters: &Filters,
    page_size: u32,
) -> Result<u64, Error> {
    let builtin = is_builtin_group(&t.gvr.group);
    let mut taken = 0u64;
    let mut req = PageRequest {
        limit: page_size.max(1),
        selector: match selection {
            Selection::Primary => filters.selector().map(str::to_string),
            Selection::Related => None,
        },
        ..PageRequest::default()
    };
    if let Pin::Exact(rv) = pin {
        req.resource_version = Some(rv.clone());
        req.exact = true;
    }
    let is_namespaces = t.gvr.group.is_empty() && t.gvr.resource == "namespaces";
    let mut chunk = Chunk {
        t: t.clone(),
        namespace: None,
        items: Vec::new(),
    };
    // What the selection relates to is complete before this type is read: a type's
    // own objects never add to the relations it is chosen by (cluster_phase).
    let related = if selection == Selection::Related {
        Some(sink.state.lock().await.related.clone())
    } else {
        None
    };
    loop {
        let page = list::get_page(client, t, &req).await?;
        for object in &page.items {
            if filters.excluded_by_label(object) {
                continue;
            }
            let name = object["metadata"]["name"].as_str().unwrap_or("");
            let selected = match (&related, t.namespaced) {
                (Some(_), _) if is_namespaces => filters.namespace_selected(name),
                (Some(related), _) => related.wants(t, object),
                (None, true) => {
                    let ns = object["metadata"]["namespace"].as_str().unwrap_or("");
                    filters.namespace_selected(ns) && filters.name_selected(name)
                }
                (None, false) => filters.name_selected(name),
            };
            if selected && let Some(item) = sink.add(t, builtin, object).await? {
                let namespace = object["metadata"]["namespace"].as_str();
                sink.push_entry(&mut chunk, t, namespace, item).await?;
                taken += 1;
            }
        }
        match page.continue_token {
            Some(token) => {
                req.continue_token = Some(token);
                // The token carries the resourceVersion.
                req.resource_version = None;
                req.exact = false;
            }
            None => break,
        }
    }
    sink.flush_chunk(&mut chunk).await?;
    sink.log("info", format!("{}: {taken} objects", t.gvr));
    Ok(taken)
}
