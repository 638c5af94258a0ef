//! Requests to the target: raw JSON over the cluster's client, with retries on
//! transient failures, and what the target serves.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::Error;
use crate::cluster::{Cluster, version_order};
use crate::model::Gvr;

/// One type the target serves (or will, once a restored CRD is established).
#[derive(Debug, Clone)]
pub(crate) struct TargetType {
    /// At its best served version.
    pub gvr: Gvr,
    pub kind: String,
    pub namespaced: bool,
    /// Every served version, best first.
    pub versions: Vec<String>,
    /// Defined by a CRD.
    pub custom: bool,
    /// Not served yet: its CRD is part of the restore.
    pub pending: bool,
}

/// What the target serves, by group and resource.
#[derive(Debug, Clone, Default)]
pub(crate) struct TargetTypes {
    types: HashMap<(String, String), TargetType>,
    kinds: HashMap<(String, String), (String, String)>,
}

impl TargetTypes {
    /// Discovery of the target, with the types its CRDs define marked custom.
    pub(crate) async fn discover(cluster: &Cluster) -> Result<TargetTypes, Error> {
        let discovered = cluster.discover().await?;
        let mut types = TargetTypes::default();
        for t in discovered {
            let key = (t.gvr.group.clone(), t.gvr.resource.clone());
            let entry = types.types.entry(key).or_insert_with(|| TargetType {
                gvr: t.gvr.clone(),
                kind: t.kind.clone(),
                namespaced: t.namespaced,
                versions: Vec::new(),
                custom: false,
                pending: false,
            });
            entry.versions.push(t.gvr.version.clone());
            if t.preferred {
                entry.gvr = t.gvr.clone();
            }
        }
        for t in types.types.values_mut() {
            t.versions
                .sort_by_key(|v| std::cmp::Reverse(version_order(v)));
            if !t.versions.contains(&t.gvr.version)
                && let Some(best) = t.versions.first()
            {
                t.gvr.version = best.clone();
            }
        }
        let crd_gvr = Gvr::new("apiextensions.k8s.io", "v1", "customresourcedefinitions");
        if types.serves(&crd_gvr.group, &crd_gvr.version, &crd_gvr.resource) {
            for crd in list_all(cluster, &crd_gvr).await? {
                if let (Some(group), Some(plural)) = (
                    crd.pointer("/spec/group").and_then(Value::as_str),
                    crd.pointer("/spec/names/plural").and_then(Value::as_str),
                ) && let Some(t) = types
                    .types
                    .get_mut(&(group.to_string(), plural.to_string()))
                {
                    t.custom = true;
                }
            }
        }
        types.index_kinds();
        Ok(types)
    }

    fn index_kinds(&mut self) {
        self.kinds = self
            .types
            .iter()
            .map(|((g, r), t)| ((g.clone(), t.kind.clone()), (g.clone(), r.clone())))
            .collect();
    }

    /// Adds the versions a CRD about to be restored will serve (where the target does
    /// not serve that resource yet).
    pub(crate) fn add_crd(&mut self, crd: &Value) {
        let Some(spec) = crd.get("spec") else { return };
        let (Some(group), Some(plural), Some(kind)) = (
            spec.get("group").and_then(Value::as_str),
            spec.pointer("/names/plural").and_then(Value::as_str),
            spec.pointer("/names/kind").and_then(Value::as_str),
        ) else {
            return;
        };
        let key = (group.to_string(), plural.to_string());
        if self.types.contains_key(&key) {
            return;
        }
        let mut versions: Vec<String> = spec
            .get("versions")
            .and_then(Value::as_array)
            .map(|vs| {
                vs.iter()
                    .filter(|v| v.get("served").and_then(Value::as_bool) != Some(false))
                    .filter_map(|v| v.get("name")?.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        if let Some(v) = spec.get("version").and_then(Value::as_str)
            && !versions.iter().any(|x| x == v)
        {
            versions.push(v.to_string());
        }
        versions.sort_by_key(|v| std::cmp::Reverse(version_order(v)));
        versions.truncate(64);
        let Some(best) = versions.first().cloned() else {
            return;
        };
        self.types.insert(
            key,
            TargetType {
                gvr: Gvr::new(group, &best, plural),
                kind: kind.to_string(),
                namespaced: spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
                versions,
                custom: true,
                pending: true,
            },
        );
        self.index_kinds();
    }

    pub(crate) fn get(&self, group: &str, resource: &str) -> Option<&TargetType> {
        self.types.get(&(group.to_string(), resource.to_string()))
    }

    pub(crate) fn serves(&self, group: &str, version: &str, resource: &str) -> bool {
        self.get(group, resource)
            .is_some_and(|t| t.versions.iter().any(|v| v == version))
    }

    pub(crate) fn versions(&self, group: &str, resource: &str) -> Vec<String> {
        self.get(group, resource)
            .map(|t| t.versions.clone())
            .unwrap_or_default()
    }

    /// Whether the type is only served once a CRD of the restore is established.
    pub(crate) fn is_pending(&self, group: &str, resource: &str) -> bool {
        self.get(group, resource).is_some_and(|t| t.pending)
    }

    pub(crate) fn is_custom(&self, group: &str, resource: &str) -> bool {
        self.get(group, resource).is_some_and(|t| t.custom)
    }

    /// The type of `kind` in `apiVersion`'s group (at that version when served).
    pub(crate) fn by_kind(&self, api_version: &str, kind: &str) -> Option<TargetType> {
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let (g, r) = self.kinds.get(&(group.to_string(), kind.to_string()))?;
        let mut t = self.get(g, r)?.clone();
        if t.versions.iter().any(|v| v == version) {
            t.gvr.version = version.to_string();
        }
        Some(t)
    }
}

/// Whether a name can be a URL path segment of the API (kube-apiserver's rule: not
/// `.` or `..`, no `/` or `%`), and is otherwise harmless in a URL.
pub(crate) fn valid_path_segment(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'%' | b'?' | b'#' | b'\\'))
}

/// Percent-encodes a query value.
fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The path of one object.
pub(crate) fn object_path(gvr: &Gvr, namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", gvr.collection_path(namespace))
}

/// How many attempts a transient failure gets.
const ATTEMPTS: u32 = 8;

/// Sends a request, retrying with exponential backoff on 429, 5xx and connection
/// errors.
pub(crate) async fn send(
    cluster: &Cluster,
    method: http::Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, Error> {
    let bytes = match body {
        Some(body) => {
            serde_json::to_vec(body).map_err(|e| Error::Invalid(format!("{method} {path}: {e}")))?
        }
        None => Vec::new(),
    };
    let mut delay = Duration::from_millis(100);
    let mut attempt = 1;
    loop {
        let mut builder = http::Request::builder().method(method.clone()).uri(path);
        if body.is_some() {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(bytes.clone())
            .map_err(|e| Error::Invalid(format!("{method} {path}: {e}")))?;
        let result = cluster
            .client()
            .request::<Value>(request)
            .await
            .map_err(|e| Error::kube(format!("{method} {path}"), e));
        match result {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                tracing::debug!(%path, attempt, error = %e, "retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// GET of one object; `None` when it does not exist.
pub(crate) async fn get(
    cluster: &Cluster,
    gvr: &Gvr,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>, Error> {
    match send(
        cluster,
        http::Method::GET,
        &object_path(gvr, namespace, name),
        None,
    )
    .await
    {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.api_code() == Some(404) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Lists every object of a type in every namespace, page by page.
pub(crate) async fn list_all(cluster: &Cluster, gvr: &Gvr) -> Result<Vec<Value>, Error> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..100_000 {
        let mut path = format!("{}?limit=500", gvr.collection_path(None));
        if let Some(t) = &token {
            path.push_str("&continue=");
            path.push_str(&encode_query(t));
        }
        let mut page = send(cluster, http::Method::GET, &path, None).await?;
        if let Some(items) = page.get_mut("items").and_then(Value::as_array_mut) {
            out.append(items);
        }
        token = page
            .pointer("/metadata/continue")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        if token.is_none() {
            return Ok(out);
        }
    }
    Err(Error::Invalid(format!("listing {gvr}: too many pages")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments() {
        assert!(valid_path_segment("system:controller:x"));
        assert!(valid_path_segment("web-0.example"));
        for bad in ["", ".", "..", "a/b", "a%2f", "a b", "a?b", "é"] {
            assert!(!valid_path_segment(bad), "{bad}");
        }
        assert_eq!(encode_query("a+b/c=="), "a%2Bb%2Fc%3D%3D");
    }
}
