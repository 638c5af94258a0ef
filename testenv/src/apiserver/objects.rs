//! The object lifecycle behind every verb: create, get, list, update, patch and delete,
//! with kube-apiserver's metadata rules (uid, creationTimestamp, generation,
//! generateName, resourceVersion = etcd mod_revision), optimistic concurrency,
//! validation, allocation, namespace rules and finalizers.

use std::sync::{Arc, RwLock, Weak};

use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use super::allocation::Allocator;
use super::crd;
use super::discovery::{ApiResource, Discovery};
use super::meta::{self, metadata_mut, now_rfc3339};
use super::patch::{PatchType, apply_patch};
use super::profiles::Profile;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::{ApiError, Cause};
use super::storage::{Store, StoredItem, collection_prefix, object_key};
use super::validation::{validate_name, validate_object, validate_update};

tokio::task_local! {
    /// Set for a `dryRun=All` request: everything but the etcd write (and its effects).
    pub static DRY_RUN: bool;
}

/// Whether the current request is a server-side dry run.
fn dry_run() -> bool {
    DRY_RUN.try_with(|dry| *dry).unwrap_or(false)
}

/// Work done after a request returns: garbage collection and namespace cleanup.
#[derive(Debug)]
pub enum Background {
    /// Delete (or orphan) the dependents of the object with this uid.
    Dependents {
        /// The deleted owner's uid.
        uid: String,
        /// Its namespace (dependents live there), `None` for cluster-scoped owners.
        namespace: Option<String>,
        /// Remove the owner reference instead of deleting.
        orphan: bool,
    },
    /// Delete everything in a terminating namespace, then the namespace.
    Namespace(String),
    /// Foreground deletion: delete the dependents of the object, then remove its
    /// `foregroundDeletion` finalizer (which completes its deletion).
    Foreground {
        /// The owner's resource.
        resource: Arc<ApiResource>,
        /// Its namespace.
        namespace: Option<String>,
        /// Its name.
        name: String,
        /// Its uid.
        uid: String,
    },
}

/// The `status` subresource or the object itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The whole object (status changes are ignored where a status subresource exists).
    Main,
    /// Only the status.
    Status,
}

/// Query options of a list (or watch).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0: no limit).
    pub limit: i64,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion`.
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`.
    pub resource_version_match: Option<String>,
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `propagationPolicy`: `Orphan`, `Background` (default) or `Foreground`.
    pub propagation: Option<String>,
    /// `preconditions.uid`.
    pub uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub resource_version: Option<String>,
}

/// State shared by every request.
pub struct Api {
    pub(crate) store: Store,
    pub(crate) discovery: RwLock<Discovery>,
    pub(crate) profile: &'static Profile,
    pub(crate) allocator: Allocator,
    pub(crate) background: mpsc::UnboundedSender<Background>,
    /// uids named in some object's ownerReferences: only their deletion needs a
    /// garbage-collection scan.
    pub(crate) owners: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("profile", &self.profile.name)
            .finish()
    }
}

/// A continue token: the revision of the first page and the key to resume at.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

fn encode_continue(revision: i64, next_key: &[u8], prefix: &str) -> String {
    let start = String::from_utf8_lossy(&next_key[prefix.len().min(next_key.len())..]).into_owned();
    let token = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv: revision,
        start,
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&token).unwrap_or_default())
}

fn decode_continue(token: &str) -> Result<ContinueToken, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let token: ContinueToken = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if token.rv <= 0 || token.start.contains("..") {
        return Err(bad());
    }
    Ok(token)
}

fn parse_revision(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|rv| *rv >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version {text:?}")))
}

/// The whole object minus metadata and status: what `generation` counts changes of.
fn spec_part(object: &Value) -> Value {
    let mut copy = object.clone();
    if let Some(map) = copy.as_object_mut() {
        for key in ["metadata", "status", "apiVersion", "kind"] {
            map.remove(key);
        }
    }
    copy
}

fn owner_key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or(""))
}

impl Api {
    /// A new shared state, and the receiver of its background work.
    pub fn new(
        store: Store,
        profile: &'static Profile,
    ) -> (Arc<Api>, mpsc::UnboundedReceiver<Background>) {
        let (background, receiver) = mpsc::unbounded_channel();
        let api = Arc::new(Api {
            store,
            discovery: RwLock::new(Discovery::builtin(profile)),
            profile,
            allocator: Allocator::default(),
            background,
            owners: Default::default(),
        });
        (api, receiver)
    }

    /// A snapshot of the served resources.
    pub fn discovery(&self) -> Discovery {
        self.discovery
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub(crate) fn discovery_mut(&self) -> std::sync::RwLockWriteGuard<'_, Discovery> {
        self.discovery
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The object as the API returns it: apiVersion and kind of the version asked for,
    /// resourceVersion from etcd.
    pub fn present(&self, resource: &ApiResource, mut object: Value, mod_revision: i64) -> Value {
        if let Some(map) = object.as_object_mut() {
            // Keep kind and apiVersion first, as the API server writes them.
            let mut ordered = Map::new();
            ordered.insert("kind".into(), json!(resource.kind));
            ordered.insert("apiVersion".into(), json!(resource.api_version()));
            for (k, v) in std::mem::take(map) {
                if k != "kind" && k != "apiVersion" {
                    ordered.insert(k, v);
                }
            }
            *map = ordered;
        }
        metadata_mut(&mut object).insert("resourceVersion".into(), json!(mod_revision.to_string()));
        object
    }

    fn to_storage(resource: &ApiResource, object: &mut Value) {
        if let Some(map) = object.as_object_mut() {
            map.insert("apiVersion".into(), json!(resource.api_version()));
            map.insert("kind".into(), json!(resource.kind));
        }
        let metadata = metadata_mut(object);
        metadata.remove("resourceVersion");
        metadata.remove("selfLink");
    }

    /// Reads one object.
    pub async fn get(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let item = self.read(resource, namespace, name).await?;
        Ok(self.present(resource, item.object, item.mod_revision))
    }

    async fn read(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<StoredItem, ApiError> {
        let key = object_key(resource, namespace, name)?;
        self.store
            .get(&key)
            .await?
            .ok_or_else(|| ApiError::not_found(&resource.group, &resource.resource, name))
    }

    /// Lists objects.
    pub async fn list(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<Value, ApiError> {
        let prefix = collection_prefix(resource, namespace);
        let end = etcd_rpc::prefix_range_end(prefix.as_bytes());
        let (mut start, mut revision) = match &options.continue_token {
            Some(token) => {
                if options
                    .resource_version
                    .as_deref()
                    .is_some_and(|rv| !rv.is_empty())
                {
                    return Err(ApiError::bad_request(
                        "specifying resource version is not allowed when using continue",
                    ));
                }
                let token = decode_continue(token)?;
                (format!("{prefix}{}", token.start).into_bytes(), token.rv)
            }
            None => (
                prefix.clone().into_bytes(),
                self.list_revision(options).await?,
            ),
        };
        let filtered = !options.labels.is_empty() || !options.fields.is_empty();
        let limit = options.limit.max(0);
        let batch = if limit == 0 {
            0
        } else {
            limit.max(if filtered { 500 } else { limit })
        };
        let mut items = Vec::new();
        let mut next: Option<Vec<u8>> = None;
        let mut first_count = None;
        'pages: loop {
            let page = self.store.range(&start, &end, revision, batch).await.map_err(|e| {
                if e.code == 410 && options.continue_token.is_some() {
                    ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
                } else {
                    e
                }
            })?;
            if revision == 0 {
                revision = page.revision;
            }
            first_count.get_or_insert(page.count);
            let last_key = page.items.last().map(|i| i.key.clone());
            let count = page.items.len();
            for (index, item) in page.items.into_iter().enumerate() {
                if options.labels.matches(&item.object) && options.fields.matches(&item.object) {
                    let key = item.key.clone();
                    items.push(self.present(resource, item.object, item.mod_revision));
                    if limit > 0 && items.len() as i64 == limit {
                        if index + 1 < count || page.more {
                            let mut after = key;
                            after.push(0);
                            next = Some(after);
                        }
                        break 'pages;
                    }
                }
            }
            match (page.more, last_key) {
                (true, Some(mut key)) => {
                    key.push(0);
                    start = key;
                }
                _ => break,
            }
        }
        let mut metadata = json!({"resourceVersion": revision.to_string()});
        if let Some(next) = next {
            metadata["continue"] = json!(encode_continue(revision, &next, &prefix));
            if !filtered && let Some(total) = first_count {
                let remaining = total - items.len() as i64;
                if remaining > 0 {
                    metadata["remainingItemCount"] = json!(remaining);
                }
            }
        }
        Ok(json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.api_version(),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// The etcd revision a list reads at (0: the newest), per resourceVersion and
    /// resourceVersionMatch.
    async fn list_revision(&self, options: &ListOptions) -> Result<i64, ApiError> {
        let rv = options.resource_version.as_deref().unwrap_or("");
        let matching = options.resource_version_match.as_deref().unwrap_or("");
        match (rv, matching) {
            ("", "") => Ok(0),
            ("", other) => Err(ApiError::bad_request(format!(
                "resourceVersionMatch {other:?} is forbidden unless resourceVersion is provided"
            ))),
            (rv, "Exact") => {
                let revision = parse_revision(rv)?;
                if revision == 0 {
                    return Err(ApiError::bad_request(
                        "resourceVersionMatch \"Exact\" is forbidden for resourceVersion \"0\"",
                    ));
                }
                let current = self.store.revision().await?;
                if revision > current {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {revision}, current: {current}"
                    )));
                }
                Ok(revision)
            }
            (rv, "NotOlderThan" | "") => {
                let revision = parse_revision(rv)?;
                if revision > 0 && revision > self.store.revision().await? {
                    return Err(ApiError::timeout(format!(
                        "Too large resource version: {revision}, current: {}",
                        self.store.revision().await?
                    )));
                }
                Ok(0)
            }
            (_, other) => Err(ApiError::bad_request(format!(
                "unsupported resourceVersionMatch {other:?}: must be Exact or NotOlderThan"
            ))),
        }
    }

    /// Checks the body's kind and apiVersion against the URL.
    fn check_type(resource: &ApiResource, body: &Value) -> Result<(), ApiError> {
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request is not a JSON object",
            ));
        }
        if let Some(kind) = body.get("kind").and_then(Value::as_str)
            && kind != resource.kind
        {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({kind}) does not match the expected kind ({})",
                resource.kind
            )));
        }
        if let Some(version) = body.get("apiVersion").and_then(Value::as_str)
            && version != resource.api_version()
        {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({version}) does not match the expected API version ({})",
                resource.api_version()
            )));
        }
        Ok(())
    }

    fn check_namespace(
        resource: &ApiResource,
        namespace: Option<&str>,
        body: &mut Value,
    ) -> Result<(), ApiError> {
        let metadata = metadata_mut(body);
        if resource.namespaced {
            let Some(namespace) = namespace else {
                return Err(ApiError::bad_request(format!(
                    "{} are namespaced: the request needs a namespace",
                    resource.resource
                )));
            };
            match metadata.get("namespace").and_then(Value::as_str) {
                None | Some("") => {
                    metadata.insert("namespace".into(), json!(namespace));
                }
                Some(given) if given != namespace => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                Some(_) => {}
            }
        } else {
            metadata.remove("namespace");
        }
        Ok(())
    }

    /// Fails unless `namespace` exists and is not terminating.
    async fn check_namespace_usable(&self, namespace: &str) -> Result<(), ApiError> {
        let discovery = self.discovery();
        let Some(namespaces) = discovery.get("", "v1", "namespaces") else {
            return Ok(());
        };
        let key = object_key(&namespaces, None, namespace)?;
        match self.store.get(&key).await? {
            None => Err(ApiError::not_found("", "namespaces", namespace)),
            Some(item)
                if item
                    .object
                    .get("metadata")
                    .and_then(|m| m.get("deletionTimestamp"))
                    .is_some()
                    || meta::at_path(&item.object, "status.phase").and_then(Value::as_str)
                        == Some("Terminating") =>
            {
                Err(ApiError::forbidden(format!(
                    "unable to create new content in namespace {namespace} because it is being terminated"
                )))
            }
            Some(_) => Ok(()),
        }
    }

    fn invalid(resource: &ApiResource, name: &str, causes: Vec<Cause>) -> ApiError {
        ApiError::invalid(&resource.group, &resource.kind, name, causes)
    }

    /// Creates an object.
    pub async fn create(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        mut body: Value,
    ) -> Result<Value, ApiError> {
        Self::check_type(resource, &body)?;
        Self::check_namespace(resource, namespace, &mut body)?;
        // kube-apiserver refuses what was probably copied from another object (a
        // resourceVersion that does not parse is ignored, as there).
        if meta::meta_str(&body, "resourceVersion")
            .and_then(|rv| rv.parse::<u64>().ok())
            .is_some_and(|rv| rv != 0)
        {
            return Err(ApiError::storage_error(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let generate = meta::meta_str(&body, "generateName")
            .unwrap_or("")
            .to_string();
        let given_name = meta::name(&body).unwrap_or("").to_string();
        if given_name.is_empty() && generate.is_empty() {
            return Err(Self::invalid(
                resource,
                "",
                vec![Cause::required("metadata.name")],
            ));
        }
        if let Some(namespace) = namespace {
            self.check_namespace_usable(namespace).await?;
        }
        // generateName: retry a few times on a name collision, as kube-apiserver does.
        let attempts = if given_name.is_empty() { 5 } else { 1 };
        let mut last_error = None;
        for _ in 0..attempts {
            let mut object = body.clone();
            let name = if given_name.is_empty() {
                let base: String = generate.chars().take(58).collect();
                format!("{base}{}", meta::random_suffix())
            } else {
                given_name.clone()
            };
            metadata_mut(&mut object).insert("name".into(), json!(name));
            match self.create_named(resource, namespace, object, &name).await {
                Err(error) if error.reason == "AlreadyExists" && given_name.is_empty() => {
                    last_error = Some(error);
                }
                other => return other,
            }
        }
        Err(last_error.unwrap_or_else(|| ApiError::internal("generateName failed")))
    }

    async fn create_named(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        mut object: Value,
        name: &str,
    ) -> Result<Value, ApiError> {
        let mut causes = validate_name(resource, name);
        causes.extend(validate_object(resource, &object));
        if !causes.is_empty() {
            return Err(Self::invalid(resource, name, causes));
        }
        let metadata = metadata_mut(&mut object);
        metadata.insert("uid".into(), json!(meta::new_uid()));
        metadata.insert("creationTimestamp".into(), json!(now_rfc3339()));
        for field in [
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
        ] {
            metadata.remove(field);
        }
        let has_spec = object.get("spec").is_some();
        if has_spec || resource.custom {
            metadata_mut(&mut object).insert("generation".into(), json!(1));
        } else {
            metadata_mut(&mut object).remove("generation");
        }
        self.prepare_create(resource, &mut object)?;
        Self::to_storage(resource, &mut object);
        let key = object_key(resource, namespace, name)?;
        let owner = owner_key(namespace, name);
        let is_service = resource.group.is_empty() && resource.resource == "services";
        if is_service {
            self.allocator
                .allocate(&owner, &mut object)
                .map_err(|causes| Self::invalid(resource, name, causes))?;
        }
        let bytes = match self.store.encode(resource, &key, &object) {
            Ok(bytes) => bytes,
            Err(error) => {
                if is_service {
                    self.allocator.release(&owner);
                }
                return Err(error);
            }
        };
        let stored = self.store.decode(key.as_bytes(), &bytes)?;
        if dry_run() {
            if is_service {
                self.allocator.release(&owner);
            }
            if self.store.get(&key).await?.is_some() {
                return Err(ApiError::already_exists(
                    &resource.group,
                    &resource.resource,
                    name,
                ));
            }
            let mut shown = self.present(resource, stored, 0);
            metadata_mut(&mut shown).remove("resourceVersion");
            return Ok(shown);
        }
        match self.store.create(&key, bytes).await {
            Ok(Some(revision)) => {
                self.note_owners(&stored);
                self.after_create(resource, &stored).await;
                Ok(self.present(resource, stored, revision))
            }
            Ok(None) => {
                if is_service {
                    // The allocation belongs to the existing Service of that name.
                    if let Some(existing) = self.store.get(&key).await? {
                        self.allocator.record(&owner, &existing.object);
                    }
                }
                Err(ApiError::already_exists(
                    &resource.group,
                    &resource.resource,
                    name,
                ))
            }
            Err(error) => {
                if is_service {
                    self.allocator.release(&owner);
                }
                Err(error)
            }
        }
    }

    /// What kube-apiserver's create strategies set.
    fn prepare_create(&self, resource: &ApiResource, object: &mut Value) -> Result<(), ApiError> {
        let map = object
            .as_object_mut()
            .ok_or_else(|| ApiError::bad_request("not an object"))?;
        match (resource.group.as_str(), resource.resource.as_str()) {
            ("", "namespaces") => {
                let name = map
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .cloned()
                    .unwrap_or(Value::Null);
                map.insert("spec".into(), json!({"finalizers": ["kubernetes"]}));
                map.insert("status".into(), json!({"phase": "Active"}));
                let metadata = metadata_mut(object);
                let labels = metadata.entry("labels").or_insert_with(|| json!({}));
                if let Some(labels) = labels.as_object_mut() {
                    labels.insert("kubernetes.io/metadata.name".into(), name);
                }
            }
            ("", "pods") => {
                map.insert(
                    "status".into(),
                    json!({"phase": "Pending", "qosClass": "BestEffort"}),
                );
            }
            ("", "persistentvolumes" | "persistentvolumeclaims") => {
                map.insert("status".into(), json!({"phase": "Pending"}));
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                crd::prepare(object).map_err(|causes| {
                    let name = meta::name(object).unwrap_or("").to_string();
                    Self::invalid(resource, &name, causes)
                })?;
            }
            _ if resource.status_subresource => {
                map.remove("status");
            }
            _ => {}
        }
        Ok(())
    }

    async fn after_create(&self, resource: &ApiResource, stored: &Value) {
        match (resource.group.as_str(), resource.resource.as_str()) {
            ("", "namespaces") => {
                // The service account controller's work: every namespace has `default`.
                let name = meta::name(stored).unwrap_or("").to_string();
                let discovery = self.discovery();
                if let Some(accounts) = discovery.get("", "v1", "serviceaccounts") {
                    let account = json!({
                        "apiVersion": "v1", "kind": "ServiceAccount",
                        "metadata": {"name": "default", "namespace": name},
                    });
                    let _ = Box::pin(self.create(&accounts, Some(&name), account)).await;
                }
            }
            ("apiextensions.k8s.io", "customresourcedefinitions") => {
                crd::register(&mut self.discovery_mut(), stored);
            }
            _ => {}
        }
    }

    /// Replaces an object (PUT), or its status.
    pub async fn update(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        mut body: Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        Self::check_type(resource, &body)?;
        Self::check_namespace(resource, namespace, &mut body)?;
        match meta::name(&body) {
            Some(given) if given == name => {}
            None | Some("") => {
                metadata_mut(&mut body).insert("name".into(), json!(name));
            }
            Some(_) => {
                return Err(ApiError::bad_request(
                    "the name of the object does not match the name on the URL",
                ));
            }
        }
        let current = self.read(resource, namespace, name).await?;
        let expected = match meta::meta_str(&body, "resourceVersion") {
            Some(rv) if !rv.is_empty() => {
                let rv = parse_revision(rv).map_err(|_| {
                    Self::invalid(
                        resource,
                        name,
                        vec![Cause::invalid(
                            "metadata.resourceVersion",
                            &json!(rv),
                            "must be a number",
                        )],
                    )
                })?;
                if rv != current.mod_revision {
                    return Err(ApiError::conflict(
                        &resource.group,
                        &resource.resource,
                        name,
                    ));
                }
                rv
            }
            _ => current.mod_revision,
        };
        self.write_update(resource, namespace, name, current, body, part, expected)
            .await
    }

    /// Writes `new` over `current` if etcd still holds `expected`.
    #[allow(clippy::too_many_arguments)]
    async fn write_update(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        current: StoredItem,
        new: Value,
        part: Part,
        expected: i64,
    ) -> Result<Value, ApiError> {
        if current.mod_revision != expected {
            return Err(ApiError::conflict(
                &resource.group,
                &resource.resource,
                name,
            ));
        }
        let old = current.object;
        let mut object = match part {
            Part::Status => {
                let mut object = old.clone();
                match new.get("status") {
                    Some(status) => object["status"] = status.clone(),
                    None => {
                        if let Some(map) = object.as_object_mut() {
                            map.remove("status");
                        }
                    }
                }
                object
            }
            Part::Main => {
                let mut object = new;
                if resource.status_subresource {
                    match old.get("status") {
                        Some(status) => object["status"] = status.clone(),
                        None => {
                            if let Some(map) = object.as_object_mut() {
                                map.remove("status");
                            }
                        }
                    }
                }
                object
            }
        };
        // Metadata the client cannot change.
        let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
        {
            let metadata = metadata_mut(&mut object);
            for field in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "generation",
                "namespace",
                "name",
            ] {
                match old_meta.get(field) {
                    Some(value) => {
                        metadata.insert(field.into(), value.clone());
                    }
                    None => {
                        metadata.remove(field);
                    }
                }
            }
            metadata.remove("managedFields");
        }
        if part == Part::Main && spec_part(&old) != spec_part(&object) {
            let generation = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            if generation > 0 || resource.custom || object.get("spec").is_some() {
                metadata_mut(&mut object).insert("generation".into(), json!(generation + 1));
            }
        }
        if resource.group == "apiextensions.k8s.io" && part == Part::Main {
            crd::prepare(&mut object).map_err(|causes| Self::invalid(resource, name, causes))?;
        }
        let mut causes = validate_object(resource, &object);
        causes.extend(validate_update(resource, &old, &object));
        if !causes.is_empty() {
            return Err(Self::invalid(resource, name, causes));
        }
        Self::to_storage(resource, &mut object);
        let owner = owner_key(namespace, name);
        let is_service = resource.group.is_empty() && resource.resource == "services";
        if is_service && part == Part::Main {
            self.allocator
                .allocate(&owner, &mut object)
                .map_err(|causes| Self::invalid(resource, name, causes))?;
        }
        if dry_run() {
            if is_service && part == Part::Main {
                // Give back what the dry run allocated; keep what the Service holds.
                self.allocator.release(&owner);
                self.allocator.record(&owner, &old);
            }
            let key = object_key(resource, namespace, name)?;
            let bytes = self.store.encode(resource, &key, &object)?;
            let stored = self.store.decode(key.as_bytes(), &bytes)?;
            return Ok(self.present(resource, stored, expected));
        }
        // Finalizers all removed from an object being deleted: the delete completes.
        let deleting = old_meta.get("deletionTimestamp").is_some();
        let finalizers_left = object
            .get("metadata")
            .and_then(|m| m.get("finalizers"))
            .and_then(Value::as_array)
            .is_some_and(|f| !f.is_empty());
        let key = object_key(resource, namespace, name)?;
        if deleting
            && !finalizers_left
            && !(resource.group.is_empty() && resource.resource == "namespaces")
        {
            if !self.store.delete(&key, expected).await? {
                return Err(ApiError::conflict(
                    &resource.group,
                    &resource.resource,
                    name,
                ));
            }
            self.after_delete(resource, namespace, name, &object, None)
                .await;
            if let Some(namespace) = namespace {
                // The namespace may have waited for this object.
                let _ = self
                    .background
                    .send(Background::Namespace(namespace.to_string()));
            }
            return Ok(self.present(resource, object, expected));
        }
        let bytes = self.store.encode(resource, &key, &object)?;
        let stored = self.store.decode(key.as_bytes(), &bytes)?;
        if stored == old {
            // No change: kube-apiserver skips the write and keeps the resourceVersion.
            return Ok(self.present(resource, stored, expected));
        }
        match self.store.update(&key, bytes, expected).await? {
            Some(revision) => {
                if resource.group == "apiextensions.k8s.io" {
                    crd::register(&mut self.discovery_mut(), &stored);
                }
                self.note_owners(&stored);
                Ok(self.present(resource, stored, revision))
            }
            None => Err(ApiError::conflict(
                &resource.group,
                &resource.resource,
                name,
            )),
        }
    }

    /// Patches an object (or its status).
    pub async fn patch(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        part: Part,
    ) -> Result<Value, ApiError> {
        let precondition = patch
            .get("metadata")
            .and_then(|m| m.get("resourceVersion"))
            .and_then(Value::as_str)
            .map(str::to_string);
        // Like kube-apiserver, retry on a conflict the client did not ask for.
        for _ in 0..8 {
            let current = self.read(resource, namespace, name).await?;
            let expected = current.mod_revision;
            if let Some(rv) = &precondition
                && parse_revision(rv)? != expected
            {
                return Err(ApiError::conflict(
                    &resource.group,
                    &resource.resource,
                    name,
                ));
            }
            let shown = self.present(resource, current.object.clone(), expected);
            let patched = apply_patch(patch_type, shown, patch)?;
            if meta::name(&patched) != Some(name) {
                return Err(ApiError::bad_request(
                    "the patch may not change metadata.name",
                ));
            }
            let mut patched = patched;
            Self::check_type(resource, &patched)?;
            Self::check_namespace(resource, namespace, &mut patched)?;
            match self
                .write_update(resource, namespace, name, current, patched, part, expected)
                .await
            {
                Err(error) if error.reason == "Conflict" && precondition.is_none() => continue,
                other => return other,
            }
        }
        Err(ApiError::conflict(
            &resource.group,
            &resource.resource,
            name,
        ))
    }

    /// The `scale` subresource: an `autoscaling/v1` Scale of the object.
    pub async fn get_scale(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let object = self.get(resource, namespace, name).await?;
        Ok(Self::scale_of(&object))
    }

    fn scale_of(object: &Value) -> Value {
        let selector = meta::at_path(object, "spec.selector.matchLabels")
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default();
        let metadata = object.get("metadata").cloned().unwrap_or(json!({}));
        json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": metadata.get("name"),
                "namespace": metadata.get("namespace"),
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
                "creationTimestamp": metadata.get("creationTimestamp"),
            },
            "spec": {"replicas": meta::at_path(object, "spec.replicas").cloned().unwrap_or(json!(1))},
            "status": {
                "replicas": meta::at_path(object, "status.replicas").cloned().unwrap_or(json!(0)),
                "selector": selector,
            },
        })
    }

    /// Writes the `scale` subresource: `scale` is the new Scale (its spec.replicas,
    /// and its resourceVersion as a precondition when set).
    pub async fn update_scale(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        scale: &Value,
    ) -> Result<Value, ApiError> {
        let replicas = meta::at_path(scale, "spec.replicas")
            .and_then(Value::as_i64)
            .filter(|r| *r >= 0)
            .ok_or_else(|| {
                ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    name,
                    vec![Cause::invalid(
                        "spec.replicas",
                        meta::at_path(scale, "spec.replicas").unwrap_or(&Value::Null),
                        "must be greater than or equal to 0",
                    )],
                )
            })?;
        let mut patch = json!({"spec": {"replicas": replicas}});
        if let Some(rv) = meta::meta_str(scale, "resourceVersion").filter(|rv| !rv.is_empty()) {
            patch["metadata"] = json!({"resourceVersion": rv});
        }
        let object = self
            .patch(
                resource,
                namespace,
                name,
                PatchType::Merge,
                &patch,
                Part::Main,
            )
            .await?;
        Ok(Self::scale_of(&object))
    }

    /// Deletes an object (or starts deleting it, with finalizers or for a namespace).
    pub async fn delete(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        for _ in 0..8 {
            let current = self.read(resource, namespace, name).await?;
            if dry_run() {
                return Ok(self.present(resource, current.object, current.mod_revision));
            }
            if let Some(uid) = &options.uid
                && meta::uid(&current.object) != Some(uid.as_str())
            {
                return Err(ApiError::conflict(
                    &resource.group,
                    &resource.resource,
                    name,
                ));
            }
            if let Some(rv) = &options.resource_version
                && parse_revision(rv)? != current.mod_revision
            {
                return Err(ApiError::conflict(
                    &resource.group,
                    &resource.resource,
                    name,
                ));
            }
            let key = object_key(resource, namespace, name)?;
            let is_namespace = resource.group.is_empty() && resource.resource == "namespaces";
            let has_finalizers = current
                .object
                .get("metadata")
                .and_then(|m| m.get("finalizers"))
                .and_then(Value::as_array)
                .is_some_and(|f| !f.is_empty());
            let owns = meta::uid(&current.object).is_some_and(|uid| {
                self.owners
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(uid)
            });
            if options.propagation.as_deref() == Some("Foreground") && owns && !is_namespace {
                let mut object = current.object.clone();
                let metadata = metadata_mut(&mut object);
                metadata
                    .entry("deletionTimestamp")
                    .or_insert_with(|| json!(now_rfc3339()));
                metadata.insert("deletionGracePeriodSeconds".into(), json!(0));
                let finalizers = metadata.entry("finalizers").or_insert_with(|| json!([]));
                if let Some(list) = finalizers.as_array_mut()
                    && !list.contains(&json!("foregroundDeletion"))
                {
                    list.push(json!("foregroundDeletion"));
                }
                let bytes = self.store.encode(resource, &key, &object)?;
                let stored = self.store.decode(key.as_bytes(), &bytes)?;
                match self.store.update(&key, bytes, current.mod_revision).await? {
                    Some(revision) => {
                        let _ = self.background.send(Background::Foreground {
                            resource: Arc::new(resource.clone()),
                            namespace: namespace.map(str::to_string),
                            name: name.to_string(),
                            uid: meta::uid(&stored).unwrap_or("").to_string(),
                        });
                        return Ok(self.present(resource, stored, revision));
                    }
                    None => continue,
                }
            }
            if is_namespace || has_finalizers {
                let already = current
                    .object
                    .get("metadata")
                    .and_then(|m| m.get("deletionTimestamp"))
                    .is_some();
                if already {
                    return Ok(self.present(resource, current.object, current.mod_revision));
                }
                let mut object = current.object.clone();
                metadata_mut(&mut object).insert("deletionTimestamp".into(), json!(now_rfc3339()));
                metadata_mut(&mut object).insert("deletionGracePeriodSeconds".into(), json!(0));
                if is_namespace {
                    object["status"] = json!({"phase": "Terminating"});
                }
                let bytes = self.store.encode(resource, &key, &object)?;
                let stored = self.store.decode(key.as_bytes(), &bytes)?;
                match self.store.update(&key, bytes, current.mod_revision).await? {
                    Some(revision) => {
                        if is_namespace {
                            let _ = self
                                .background
                                .send(Background::Namespace(name.to_string()));
                        }
                        return Ok(self.present(resource, stored, revision));
                    }
                    None => continue,
                }
            }
            if self.store.delete(&key, current.mod_revision).await? {
                self.after_delete(
                    resource,
                    namespace,
                    name,
                    &current.object,
                    options.propagation.as_deref(),
                )
                .await;
                return Ok(self.present(resource, current.object, current.mod_revision));
            }
        }
        Err(ApiError::conflict(
            &resource.group,
            &resource.resource,
            name,
        ))
    }

    async fn after_delete(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        object: &Value,
        propagation: Option<&str>,
    ) {
        if resource.group.is_empty() && resource.resource == "services" {
            self.allocator.release(&owner_key(namespace, name));
        }
        if resource.group == "apiextensions.k8s.io"
            && resource.resource == "customresourcedefinitions"
            && let Some((group, plural)) = crd::group_and_plural(object)
        {
            let prefix = format!(
                "{}/{group}/{plural}/",
                snapshot_format::k8s::keys::DEFAULT_PREFIX
            );
            let _ = self.store.delete_prefix(&prefix).await;
            self.discovery_mut().remove(&group, &plural);
        }
        let owns = meta::uid(object).is_some_and(|uid| {
            self.owners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(uid)
        });
        if owns && let Some(uid) = meta::uid(object) {
            let _ = self.background.send(Background::Dependents {
                uid: uid.to_string(),
                namespace: namespace.map(str::to_string),
                orphan: propagation == Some("Orphan"),
            });
        }
    }

    /// Records the owners `object` refers to.
    fn note_owners(&self, object: &Value) {
        let Some(refs) =
            meta::at_path(object, "metadata.ownerReferences").and_then(Value::as_array)
        else {
            return;
        };
        let mut owners = self.owners.lock().unwrap_or_else(|p| p.into_inner());
        for uid in refs
            .iter()
            .filter_map(|r| r.get("uid").and_then(Value::as_str))
        {
            owners.insert(uid.to_string());
        }
    }

    /// Deletes every object of the collection matching the selectors.
    pub async fn delete_collection(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        options: &ListOptions,
        delete: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let mut list_options = options.clone();
        list_options.limit = 0;
        let list = self.list(resource, namespace, &list_options).await?;
        let mut deleted = Vec::new();
        for item in list["items"].as_array().cloned().unwrap_or_default() {
            let name = meta::name(&item).unwrap_or("").to_string();
            let ns = meta::meta_str(&item, "namespace").map(str::to_string);
            match self.delete(resource, ns.as_deref(), &name, delete).await {
                Ok(object) => deleted.push(object),
                Err(error) if error.code == 404 => {}
                Err(error) => return Err(error),
            }
        }
        Ok(json!({
            "kind": format!("{}List", resource.kind),
            "apiVersion": resource.api_version(),
            "metadata": {"resourceVersion": list["metadata"]["resourceVersion"]},
            "items": deleted,
        }))
    }

    /// Runs background work until the server (the last `Arc<Api>`) is gone.
    pub async fn run_background(api: Weak<Api>, mut work: mpsc::UnboundedReceiver<Background>) {
        while let Some(task) = work.recv().await {
            let Some(api) = api.upgrade() else { break };
            let result = match task {
                Background::Dependents {
                    uid,
                    namespace,
                    orphan,
                } => {
                    api.collect_dependents(&uid, namespace.as_deref(), orphan)
                        .await
                }
                Background::Namespace(name) => api.finish_namespace(&name).await,
                Background::Foreground {
                    resource,
                    namespace,
                    name,
                    uid,
                } => {
                    api.finish_foreground(&resource, namespace.as_deref(), &name, &uid)
                        .await
                }
            };
            if let Err(error) = result {
                tracing::warn!(%error, "background cleanup failed");
            }
        }
    }

    /// Background cascading deletion: dependents whose only owner was `uid` are deleted,
    /// others (or all, when orphaning) lose the owner reference.
    async fn collect_dependents(
        &self,
        uid: &str,
        namespace: Option<&str>,
        orphan: bool,
    ) -> Result<(), ApiError> {
        let resources = self.discovery().storage_resources();
        for resource in resources {
            if namespace.is_some() && !resource.namespaced {
                continue;
            }
            let prefix = collection_prefix(&resource, namespace);
            let end = etcd_rpc::prefix_range_end(prefix.as_bytes());
            let page = self.store.range(prefix.as_bytes(), &end, 0, 0).await?;
            for item in page.items {
                let refs = item
                    .object
                    .get("metadata")
                    .and_then(|m| m.get("ownerReferences"))
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if !refs
                    .iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                {
                    continue;
                }
                let name = meta::name(&item.object).unwrap_or("").to_string();
                let ns = meta::meta_str(&item.object, "namespace").map(str::to_string);
                let others: Vec<Value> = refs
                    .into_iter()
                    .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid))
                    .collect();
                if orphan || !others.is_empty() {
                    let patch = json!({"metadata": {"ownerReferences": if others.is_empty() { Value::Null } else { json!(others) }}});
                    let _ = self
                        .patch(
                            &resource,
                            ns.as_deref(),
                            &name,
                            PatchType::Merge,
                            &patch,
                            Part::Main,
                        )
                        .await;
                } else {
                    let _ = self
                        .delete(&resource, ns.as_deref(), &name, &DeleteOptions::default())
                        .await;
                }
            }
        }
        Ok(())
    }

    /// Foreground deletion: dependents first, then the owner (by removing its
    /// `foregroundDeletion` finalizer).
    async fn finish_foreground(
        &self,
        resource: &ApiResource,
        namespace: Option<&str>,
        name: &str,
        uid: &str,
    ) -> Result<(), ApiError> {
        self.owners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
        self.collect_dependents(uid, namespace, false).await?;
        let current = match self.read(resource, namespace, name).await {
            Ok(current) => current,
            Err(error) if error.code == 404 => return Ok(()),
            Err(error) => return Err(error),
        };
        if meta::uid(&current.object) != Some(uid) {
            return Ok(());
        }
        let finalizers: Vec<Value> = meta::at_path(&current.object, "metadata.finalizers")
            .and_then(Value::as_array)
            .map(|f| {
                f.iter()
                    .filter(|f| f.as_str() != Some("foregroundDeletion"))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        let patch = json!({"metadata": {"finalizers": if finalizers.is_empty() { Value::Null } else { json!(finalizers) }}});
        self.patch(
            resource,
            namespace,
            name,
            PatchType::Merge,
            &patch,
            Part::Main,
        )
        .await
        .map(|_| ())
    }

    /// The namespace controller's work: delete the namespace's objects, then it. Objects
    /// with finalizers are only marked deleted; the namespace stays `Terminating` until
    /// the last of them goes (removing a finalizer triggers another pass).
    async fn finish_namespace(&self, name: &str) -> Result<(), ApiError> {
        let discovery = self.discovery();
        let Some(namespaces) = discovery.get("", "v1", "namespaces") else {
            return Ok(());
        };
        let key = object_key(&namespaces, None, name)?;
        let Some(current) = self.store.get(&key).await? else {
            return Ok(());
        };
        if meta::at_path(&current.object, "metadata.deletionTimestamp").is_none() {
            return Ok(());
        }
        let mut remaining = 0;
        for resource in discovery.storage_resources() {
            if !resource.namespaced {
                continue;
            }
            let prefix = collection_prefix(&resource, Some(name));
            let end = etcd_rpc::prefix_range_end(prefix.as_bytes());
            let items = self.store.range(prefix.as_bytes(), &end, 0, 0).await?.items;
            if items.is_empty() {
                continue;
            }
            let held = |item: &StoredItem| {
                meta::at_path(&item.object, "metadata.finalizers")
                    .and_then(Value::as_array)
                    .is_some_and(|f| !f.is_empty())
            };
            if !items.iter().any(held) {
                if resource.group.is_empty() && resource.resource == "services" {
                    for item in &items {
                        self.allocator.release(&owner_key(
                            Some(name),
                            meta::name(&item.object).unwrap_or(""),
                        ));
                    }
                }
                self.store.delete_prefix(&prefix).await?;
                continue;
            }
            for item in items {
                remaining += usize::from(held(&item));
                let object_name = meta::name(&item.object).unwrap_or("").to_string();
                match self
                    .delete(
                        &resource,
                        Some(name),
                        &object_name,
                        &DeleteOptions::default(),
                    )
                    .await
                {
                    Ok(_) => {}
                    Err(error) if error.code == 404 => {}
                    Err(error) => return Err(error),
                }
            }
        }
        if remaining == 0 {
            self.store.delete(&key, current.mod_revision).await?;
        }
        Ok(())
    }

    /// Records the allocations of existing Services and the resources of existing CRDs
    /// (a restart over an etcd that already has a cluster).
    pub async fn load_existing(&self) -> Result<(), ApiError> {
        let discovery = self.discovery();
        if let Some(services) = discovery.get("", "v1", "services") {
            let prefix = collection_prefix(&services, None);
            let end = etcd_rpc::prefix_range_end(prefix.as_bytes());
            for item in self.store.range(prefix.as_bytes(), &end, 0, 0).await?.items {
                let owner = owner_key(
                    meta::meta_str(&item.object, "namespace"),
                    meta::name(&item.object).unwrap_or(""),
                );
                self.allocator.record(&owner, &item.object);
            }
        }
        if let Some(crds) = discovery.get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        {
            let prefix = collection_prefix(&crds, None);
            let end = etcd_rpc::prefix_range_end(prefix.as_bytes());
            for item in self.store.range(prefix.as_bytes(), &end, 0, 0).await?.items {
                crd::register(&mut self.discovery_mut(), &item.object);
            }
        }
        // With the CRDs registered, custom resources' owner references count too.
        for resource in self.discovery().storage_resources() {
            let prefix = collection_prefix(&resource, None);
            let end = etcd_rpc::prefix_range_end(prefix.as_bytes());
            let mut start = prefix.into_bytes();
            loop {
                let page = self.store.range(&start, &end, 0, 1000).await?;
                for item in &page.items {
                    self.note_owners(&item.object);
                }
                match (page.more, page.items.last()) {
                    (true, Some(last)) => {
                        start = last.key.clone();
                        start.push(0);
                    }
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// Creates what a fresh cluster has: the system namespaces, the `kubernetes`
    /// Service and the profile's default StorageClass. Existing objects are kept.
    pub async fn bootstrap(&self) -> Result<(), ApiError> {
        let discovery = self.discovery();
        let ignore_exists = |result: Result<Value, ApiError>| match result {
            Err(error) if error.reason != "AlreadyExists" => Err(error),
            _ => Ok(()),
        };
        if let Some(namespaces) = discovery.get("", "v1", "namespaces") {
            for name in ["default", "kube-system", "kube-public", "kube-node-lease"] {
                let namespace =
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
                ignore_exists(self.create(&namespaces, None, namespace).await)?;
            }
        }
        if let Some(services) = discovery.get("", "v1", "services") {
            let service = json!({
                "apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "kubernetes", "namespace": "default",
                             "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": super::allocation::KUBERNETES_SERVICE_IP, "type": "ClusterIP",
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": 6443}],
                         "sessionAffinity": "None"},
            });
            ignore_exists(self.create(&services, Some("default"), service).await)?;
        }
        if let Some(classes) = discovery.get("storage.k8s.io", "v1", "storageclasses") {
            ignore_exists(
                self.create(&classes, None, self.profile.storage_class())
                    .await,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let token = encode_continue(42, b"/registry/pods/ns/b\0", "/registry/pods/");
        let decoded = decode_continue(&token).unwrap();
        assert_eq!((decoded.rv, decoded.start.as_str()), (42, "ns/b\0"));
        assert!(decode_continue("!!!").is_err());
        assert!(decode_continue("e30").is_err());
    }
}
