//! HTTP: paths and verbs of the Kubernetes API mapped onto [`Api`], bearer-token auth,
//! JSON bodies (size-capped), server-side `Table`s for `kubectl get`, and watches
//! streamed from an etcd watch.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use etcd_rpc::proto::WatchCreateRequest;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::discovery::ApiResource;
use super::meta;
use super::objects::{Api, DeleteOptions, ListOptions, Part};
use super::patch::PatchType;
use super::selectors::{FieldSelector, LabelSelector};
use super::status::ApiError;
use super::storage::collection_prefix;

/// Largest request body accepted (kube-apiserver's limit is 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// What each request sees.
#[derive(Clone, Debug)]
pub struct HttpState {
    /// The API.
    pub api: Arc<Api>,
    /// Bearer token required, if any.
    pub token: Option<String>,
    /// `host:port` the server listens on.
    pub address: String,
    /// Resources whose every request fails (fault injection).
    pub faults: Arc<Faults>,
}

/// Fault injection: resources (`configmaps`, `deployments.apps`,
/// `widgets.example.com`) whose every request is answered with a 500 `InternalError`
/// `Status`. Discovery still lists them.
#[derive(Debug, Default)]
pub struct Faults {
    failing: RwLock<BTreeSet<String>>,
    reject_exact: std::sync::atomic::AtomicBool,
    /// Every n-th resource request fails transiently (0: none).
    fail_every: std::sync::atomic::AtomicU64,
    requests: std::sync::atomic::AtomicU64,
    injected: std::sync::atomic::AtomicU64,
}

impl Faults {
    /// Faults for `resources`.
    pub fn new(resources: impl IntoIterator<Item = String>) -> Self {
        Faults {
            failing: RwLock::new(resources.into_iter().collect()),
            reject_exact: std::sync::atomic::AtomicBool::new(false),
            fail_every: std::sync::atomic::AtomicU64::new(0),
            requests: std::sync::atomic::AtomicU64::new(0),
            injected: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Fails every `n`-th resource request transiently (0 ends it); see
    /// [`super::ApiServer::fail_every`].
    pub fn fail_every(&self, n: u64) {
        use std::sync::atomic::Ordering::Relaxed;
        self.requests.store(0, Relaxed);
        self.fail_every.store(n, Relaxed);
    }

    /// How many requests [`Faults::fail_every`] failed so far.
    pub fn injected(&self) -> u64 {
        self.injected.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Makes every request for `resource` fail.
    pub fn fail(&self, resource: String) {
        self.failing
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(resource);
    }

    /// Makes lists with `resourceVersionMatch=Exact` fail with 400 (as a server or proxy
    /// that does not support them would), or work again.
    pub fn reject_exact_lists(&self, reject: bool) {
        self.reject_exact
            .store(reject, std::sync::atomic::Ordering::Relaxed);
    }

    /// Lets every resource work again and ends throttling.
    pub fn clear(&self) {
        self.fail_every(0);
        self.failing
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    /// The failing resources, sorted.
    pub fn failing(&self) -> Vec<String> {
        self.failing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    /// The injected error for a request of `resource` in `group`, if it is to fail.
    fn check(&self, group: &str, resource: &str) -> Result<(), ApiError> {
        use std::sync::atomic::Ordering::Relaxed;
        let every = self.fail_every.load(Relaxed);
        if every > 0 && self.requests.fetch_add(1, Relaxed) % every == every - 1 {
            return Err(if self.injected.fetch_add(1, Relaxed).is_multiple_of(2) {
                ApiError::too_many_requests(
                    "injected fault: too many requests, please try again later",
                )
            } else {
                ApiError::internal("injected fault: etcdserver: request timed out")
            });
        }
        let failing = self
            .failing
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failing.is_empty() {
            return Ok(());
        }
        let name = super::status::qualified(group, resource);
        if failing.contains(&name) {
            return Err(ApiError::internal(format!(
                "Internal error occurred: injected fault: every request for {name} fails"
            )));
        }
        Ok(())
    }
}

/// The router.
pub fn router(state: HttpState) -> Router {
    Router::new()
        .fallback(dispatch)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

fn json_response(code: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_default();
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error_response(error: &ApiError) -> Response {
    let code = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(code, &error.to_status())
}

/// The request's target after the version prefix.
struct Target {
    resource: Arc<ApiResource>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

async fn dispatch(
    State(state): State<HttpState>,
    method: Method,
    uri: Uri,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if let Some(token) = &state.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return error_response(&ApiError::unauthorized());
        }
    }
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => {
            return error_response(&ApiError::bad_request(rejection.body_text()));
        }
    };
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            return error_response(&if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::too_large(format!(
                    "the request body is larger than {MAX_BODY_BYTES} bytes"
                ))
            } else {
                ApiError::bad_request(rejection.body_text())
            });
        }
    };
    match route(&state, &method, uri.path(), &query, &headers, body).await {
        Ok(response) => response,
        Err(error) => error_response(&error),
    }
}

async fn route(
    state: &HttpState,
    method: &Method,
    path: &str,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let segments: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let discovery = state.api.discovery();
    let ok = |value: Value| Ok(json_response(StatusCode::OK, &value));
    let (group, version, rest) = match segments.as_slice() {
        ["version"] => return ok(state.api.profile.version_info()),
        ["healthz" | "livez" | "readyz", ..] => {
            return Ok((StatusCode::OK, "ok").into_response());
        }
        ["api"] => return ok(discovery.api_versions(&state.address)),
        ["openapi", "v3"] => return ok(discovery.openapi_v3_root()),
        ["openapi", "v3", "api", version] => {
            return discovery
                .openapi_v3_group_version("", version, state.api.profile.git_version)
                .map_or_else(|| Err(ApiError::path_not_found(path)), ok);
        }
        ["openapi", "v3", "apis", group, version] => {
            return discovery
                .openapi_v3_group_version(group, version, state.api.profile.git_version)
                .map_or_else(|| Err(ApiError::path_not_found(path)), ok);
        }
        ["apis"] => return ok(discovery.api_group_list()),
        ["apis", group] => {
            return discovery
                .api_group(group)
                .map_or_else(|| Err(ApiError::path_not_found(path)), ok);
        }
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Err(ApiError::path_not_found(path)),
    };
    if rest.is_empty() {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not allowed on {path}"
            )));
        }
        return discovery
            .resource_list(group, version)
            .map_or_else(|| Err(ApiError::path_not_found(path)), ok);
    }
    let lookup = |resource: &str| discovery.get(group, version, resource);
    let not_found = || ApiError::path_not_found(path);
    let target = match rest {
        ["namespaces", namespace, resource, tail @ ..]
            if lookup(resource).is_some_and(|r| r.namespaced) =>
        {
            let resource = lookup(resource).ok_or_else(not_found)?;
            Target {
                resource,
                namespace: Some(namespace.to_string()),
                name: tail.first().map(|s| s.to_string()),
                subresource: match tail {
                    [_] | [] => None,
                    [_, sub] => Some(sub.to_string()),
                    _ => return Err(not_found()),
                },
            }
        }
        [resource, tail @ ..] => {
            let resource = lookup(resource).ok_or_else(not_found)?;
            if resource.namespaced && !tail.is_empty() {
                return Err(not_found());
            }
            Target {
                resource,
                namespace: None,
                name: tail.first().map(|s| s.to_string()),
                subresource: match tail {
                    [_] | [] => None,
                    [_, sub] => Some(sub.to_string()),
                    _ => return Err(not_found()),
                },
            }
        }
        [] => return Err(not_found()),
    };
    state
        .faults
        .check(&target.resource.group, &target.resource.resource)?;
    if state
        .faults
        .reject_exact
        .load(std::sync::atomic::Ordering::Relaxed)
        && query
            .get("resourceVersionMatch")
            .is_some_and(|m| m == "Exact")
    {
        return Err(ApiError::bad_request(
            "resourceVersionMatch=Exact is not supported by this server (injected fault)",
        ));
    }
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    super::objects::DRY_RUN
        .scope(dry_run, serve(state, method, query, headers, body, target))
        .await
}

/// The request body as JSON: JSON itself, or Kubernetes protobuf (`k8s\0` + the
/// `runtime.Unknown` envelope, what typed clients such as `kubectl create configmap`
/// send), decoded with the storage codec.
fn parse_body_as(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("application/vnd.kubernetes.protobuf") {
        return parse_body(body);
    }
    match snapshot_format::k8s::decode_storage_value(body) {
        Ok(snapshot_format::k8s::StoredObject::Decoded(decoded)) if decoded.issues.is_empty() => {
            Ok(decoded.object)
        }
        Ok(snapshot_format::k8s::StoredObject::Decoded(decoded)) => {
            Err(ApiError::bad_request(format!(
                "the protobuf body has data this server cannot read: {:?}",
                decoded.issues
            )))
        }
        Ok(_) => Err(ApiError::bad_request(
            "the body is not a Kubernetes protobuf object",
        )),
        Err(error) => Err(ApiError::bad_request(format!(
            "the protobuf body cannot be decoded: {error}"
        ))),
    }
}

fn parse_body(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request needs a body"));
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(format!(
            "the body of the request could not be decoded as JSON: {error}"
        ))
    })
}

fn list_options(query: &HashMap<String, String>) -> Result<ListOptions, ApiError> {
    let limit = match query.get("limit").map(String::as_str) {
        None | Some("") => 0,
        Some(text) => text
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid limit {text:?}")))?,
    };
    Ok(ListOptions {
        labels: LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?,
        fields: FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))?,
        limit,
        continue_token: query.get("continue").filter(|c| !c.is_empty()).cloned(),
        resource_version: query.get("resourceVersion").cloned(),
        resource_version_match: query
            .get("resourceVersionMatch")
            .filter(|c| !c.is_empty())
            .cloned(),
    })
}

fn delete_options(
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<DeleteOptions, ApiError> {
    let mut options = DeleteOptions {
        propagation: query.get("propagationPolicy").cloned(),
        ..DeleteOptions::default()
    };
    if !body.is_empty() {
        let body = parse_body_as(headers, body)?;
        if let Some(policy) = body.get("propagationPolicy").and_then(Value::as_str) {
            options.propagation = Some(policy.to_string());
        }
        if body.get("orphanDependents") == Some(&Value::Bool(true)) {
            options.propagation = Some("Orphan".into());
        }
        let preconditions = body.get("preconditions");
        options.uid = preconditions
            .and_then(|p| p.get("uid"))
            .and_then(Value::as_str)
            .map(str::to_string);
        options.resource_version = preconditions
            .and_then(|p| p.get("resourceVersion"))
            .and_then(Value::as_str)
            .map(str::to_string);
    }
    if let Some(policy) = &options.propagation
        && !matches!(policy.as_str(), "Orphan" | "Background" | "Foreground")
    {
        return Err(ApiError::bad_request(format!(
            "unknown propagationPolicy {policy:?}"
        )));
    }
    Ok(options)
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("as=Table"))
}

/// A cell of a custom resource's printer column: the value at a simple JSONPath
/// (`.spec.size`), as kubectl would print it.
fn printer_cell(item: &Value, json_path: &str) -> Value {
    let path = json_path.trim_start_matches('{').trim_end_matches('}');
    match meta::at_path(item, path.trim_start_matches('.')) {
        Some(Value::String(text)) => json!(text),
        Some(Value::Number(number)) => json!(number),
        Some(Value::Bool(flag)) => json!(flag),
        Some(other @ (Value::Object(_) | Value::Array(_))) => json!(other.to_string()),
        _ => Value::Null,
    }
}

/// A server-side `Table` (what `kubectl get` asks for): NAME, a custom resource's
/// additional printer columns, and AGE (unless the printer columns are given), with
/// the full object in each row.
fn table(resource: &ApiResource, value: &Value) -> Value {
    let items: Vec<&Value> = match value.get("items").and_then(Value::as_array) {
        Some(items) => items.iter().collect(),
        None => vec![value],
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let age_of = |item: &Value| {
        meta::meta_str(item, "creationTimestamp")
            .and_then(meta::parse_rfc3339)
            .map_or_else(
                || "<unknown>".to_string(),
                |t| human_age(now.saturating_sub(t)),
            )
    };
    let mut columns = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": "Name must be unique within a namespace.", "priority": 0}),
    ];
    let age_column = json!({"name": "Age", "type": "date", "format": "", "description": "CreationTimestamp is a timestamp representing the server time when this object was created.", "priority": 0});
    if resource.printer_columns.is_empty() {
        columns.push(age_column);
    }
    for column in &resource.printer_columns {
        columns.push(json!({
            "name": column.get("name").cloned().unwrap_or(json!("")),
            "type": column.get("type").cloned().unwrap_or(json!("string")),
            "format": column.get("format").cloned().unwrap_or(json!("")),
            "description": column.get("description").cloned().unwrap_or(json!("")),
            "priority": column.get("priority").cloned().unwrap_or(json!(0)),
        }));
    }
    let rows: Vec<Value> = items
        .iter()
        .map(|item| {
            let mut cells = vec![json!(meta::name(item).unwrap_or(""))];
            if resource.printer_columns.is_empty() {
                cells.push(json!(age_of(item)));
            }
            for column in &resource.printer_columns {
                let path = column.get("jsonPath").and_then(Value::as_str).unwrap_or("");
                let cell = if column.get("type").and_then(Value::as_str) == Some("date") {
                    meta::at_path(item, path.trim_start_matches('.'))
                        .and_then(Value::as_str)
                        .and_then(meta::parse_rfc3339)
                        .map_or(Value::Null, |t| json!(human_age(now.saturating_sub(t))))
                } else {
                    printer_cell(item, path)
                };
                cells.push(cell);
            }
            json!({"cells": cells, "object": item})
        })
        .collect();
    let mut metadata = json!({"resourceVersion": value["metadata"]["resourceVersion"]});
    if let Some(token) = value["metadata"].get("continue") {
        metadata["continue"] = token.clone();
    }
    if let Some(count) = value["metadata"].get("remainingItemCount") {
        metadata["remainingItemCount"] = count.clone();
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// `kubectl`'s short ages: `45s`, `12m`, `5h`, `3d`.
fn human_age(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

async fn serve(
    state: &HttpState,
    method: &Method,
    query: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
    target: Target,
) -> Result<Response, ApiError> {
    let api = &state.api;
    let resource = &target.resource;
    let namespace = target.namespace.as_deref();
    if target.subresource.as_deref() == Some("scale")
        && !resource.custom
        && super::discovery::has_scale(&resource.group, &resource.resource)
    {
        let name = target.name.as_deref().unwrap_or("");
        let scale = match method.clone() {
            Method::GET => api.get_scale(resource, namespace, name).await?,
            Method::PUT => {
                api.update_scale(resource, namespace, name, &parse_body_as(headers, &body)?)
                    .await?
            }
            Method::PATCH => {
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let patch_type = PatchType::from_content_type(content_type)?;
                let current = api.get_scale(resource, namespace, name).await?;
                let wanted = super::patch::apply_patch(patch_type, current, &parse_body(&body)?)?;
                api.update_scale(resource, namespace, name, &wanted).await?
            }
            other => {
                return Err(ApiError::method_not_allowed(format!(
                    "{other} is not supported on {}/scale",
                    resource.resource
                )));
            }
        };
        return Ok(json_response(StatusCode::OK, &scale));
    }
    let part = match target.subresource.as_deref() {
        None => Part::Main,
        Some("status") if resource.status_subresource => Part::Status,
        Some(other) => {
            return Err(ApiError::path_not_found(&format!(
                "{}/{other}",
                resource.resource
            )));
        }
    };
    // The dry run itself is set around this call (`DRY_RUN`); only check the value.
    match query.get("dryRun").map(String::as_str) {
        None | Some("" | "All") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "unsupported dryRun value {other:?}: only \"All\""
            )));
        }
    }
    let present = |value: Value| {
        if wants_table(headers) {
            table(resource, &value)
        } else {
            value
        }
    };
    let respond = |code: StatusCode, value: Value| Ok(json_response(code, &value));
    match (method.clone(), target.name.as_deref()) {
        (Method::GET, None) => {
            let options = list_options(query)?;
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                return watch(
                    state,
                    resource.clone(),
                    target.namespace.clone(),
                    options,
                    query,
                )
                .await;
            }
            respond(
                StatusCode::OK,
                present(api.list(resource, namespace, &options).await?),
            )
        }
        (Method::POST, None) => {
            let created = api
                .create(resource, namespace, parse_body_as(headers, &body)?)
                .await?;
            respond(StatusCode::CREATED, created)
        }
        (Method::DELETE, None) => {
            let options = list_options(query)?;
            let delete = delete_options(query, headers, &body)?;
            respond(
                StatusCode::OK,
                api.delete_collection(resource, namespace, &options, &delete)
                    .await?,
            )
        }
        (Method::GET, Some(name)) => respond(
            StatusCode::OK,
            present(api.get(resource, namespace, name).await?),
        ),
        (Method::PUT, Some(name)) => respond(
            StatusCode::OK,
            api.update(
                resource,
                namespace,
                name,
                parse_body_as(headers, &body)?,
                part,
            )
            .await?,
        ),
        (Method::PATCH, Some(name)) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let patch_type = PatchType::from_content_type(content_type)?;
            let patch = parse_body(&body)?;
            respond(
                StatusCode::OK,
                api.patch(resource, namespace, name, patch_type, &patch, part)
                    .await?,
            )
        }
        (Method::DELETE, Some(name)) => {
            let options = delete_options(query, headers, &body)?;
            respond(
                StatusCode::OK,
                api.delete(resource, namespace, name, &options).await?,
            )
        }
        (method, _) => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on {}",
            resource.resource
        ))),
    }
}

/// A watch: optional synthetic ADDED events for what exists (no resourceVersion or
/// `0`), then the changes etcd reports after that revision, as newline-delimited
/// `WatchEvent`s, until `timeoutSeconds` (at most 30 minutes) or the client leaves.
async fn watch(
    state: &HttpState,
    resource: Arc<ApiResource>,
    namespace: Option<String>,
    options: ListOptions,
    query: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let api = state.api.clone();
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(1800)
        .min(1800);
    let mut initial = Vec::new();
    let start = match options.resource_version.as_deref() {
        None | Some("") | Some("0") => {
            let mut list_options = options.clone();
            list_options.limit = 0;
            list_options.continue_token = None;
            list_options.resource_version = None;
            list_options.resource_version_match = None;
            let list = api
                .list(&resource, namespace.as_deref(), &list_options)
                .await?;
            for item in list["items"].as_array().cloned().unwrap_or_default() {
                initial.push(json!({"type": "ADDED", "object": item}));
            }
            list["metadata"]["resourceVersion"]
                .as_str()
                .and_then(|rv| rv.parse::<i64>().ok())
                .unwrap_or(0)
        }
        Some(rv) => rv
            .parse::<i64>()
            .map_err(|_| ApiError::bad_request(format!("invalid resource version {rv:?}")))?,
    };
    let prefix = collection_prefix(&resource, namespace.as_deref());
    let mut watcher = api
        .store
        .client()
        .watch(WatchCreateRequest {
            key: prefix.as_bytes().to_vec(),
            range_end: etcd_rpc::prefix_range_end(prefix.as_bytes()),
            start_revision: start + 1,
            prev_kv: true,
            ..Default::default()
        })
        .await?;
    let (sender, receiver) = mpsc::channel::<Result<Bytes, Infallible>>(64);
    let line = |event: &Value| {
        let mut bytes = serde_json::to_vec(event).unwrap_or_default();
        bytes.push(b'\n');
        Ok(Bytes::from(bytes))
    };
    tokio::spawn(async move {
        for event in &initial {
            if sender.send(line(event)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::sleep(Duration::from_secs(timeout));
        tokio::pin!(deadline);
        loop {
            let message = tokio::select! {
                _ = &mut deadline => break,
                _ = sender.closed() => break,
                message = watcher.message() => message,
            };
            let Ok(Some(response)) = message else { break };
            if response.compact_revision > 0 || response.canceled {
                let gone = ApiError::expired(format!(
                    "too old resource version: {start} ({})",
                    response.compact_revision
                ));
                let _ = sender
                    .send(line(&json!({"type": "ERROR", "object": gone.to_status()})))
                    .await;
                break;
            }
            for event in response.events {
                let deleted = event.r#type == etcd_rpc::EventType::Delete as i32;
                let (kv, kind) = match (&event.kv, &event.prev_kv, deleted) {
                    (_, Some(prev), true) => (prev, "DELETED"),
                    (Some(kv), _, false) if kv.create_revision == kv.mod_revision => (kv, "ADDED"),
                    (Some(kv), _, false) => (kv, "MODIFIED"),
                    _ => continue,
                };
                let Ok(object) = api.store.decode(&kv.key, &kv.value) else {
                    continue;
                };
                if !options.labels.matches(&object) || !options.fields.matches(&object) {
                    continue;
                }
                let revision = event
                    .kv
                    .as_ref()
                    .map_or(kv.mod_revision, |k| k.mod_revision);
                let object = api.present(&resource, object, revision);
                if sender
                    .send(line(&json!({"type": kind, "object": object})))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        let _ = watcher.cancel().await;
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response())
}
