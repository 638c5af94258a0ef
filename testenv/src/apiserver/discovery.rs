//! The resources this server serves and the discovery documents describing them:
//! built-in resources (from the storage table of `snapshot_format::k8s::keys` and the
//! versions the embedded protobuf schema has, filtered by the cluster profile) plus the
//! resources of established CustomResourceDefinitions.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use snapshot_format::k8s::Schema;
use snapshot_format::k8s::keys::BUILTIN_RESOURCES;

use super::profiles::Profile;

/// Verbs every served resource supports.
pub const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One resource in one group version.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResource {
    /// API group, `""` for core.
    pub group: String,
    /// Version served (`v1`).
    pub version: String,
    /// Plural name (`deployments`).
    pub resource: String,
    /// Singular name (`deployment`).
    pub singular: String,
    /// Kind (`Deployment`).
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// `kubectl` short names (`deploy`).
    pub short_names: Vec<String>,
    /// Categories (`all`).
    pub categories: Vec<String>,
    /// Has a `status` subresource.
    pub status_subresource: bool,
    /// Stored as JSON (custom resources, CRDs, APIServices) rather than protobuf.
    pub json_storage: bool,
    /// A custom resource (served from a CRD).
    pub custom: bool,
    /// A custom resource's `openAPIV3Schema` in this version, for validation.
    pub schema: Option<Value>,
    /// A custom resource's `additionalPrinterColumns` in this version (`kubectl get`).
    pub printer_columns: Vec<Value>,
}

impl ApiResource {
    /// `apps/v1`, `v1`.
    pub fn api_version(&self) -> String {
        group_version(&self.group, &self.version)
    }
}

/// `g/v`, or `v` for the core group.
pub fn group_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Short names as kube-apiserver reports them.
fn short_names(group: &str, resource: &str) -> &'static [&'static str] {
    match (group, resource) {
        ("", "configmaps") => &["cm"],
        ("", "endpoints") => &["ep"],
        ("", "events") => &["ev"],
        ("", "limitranges") => &["limits"],
        ("", "namespaces") => &["ns"],
        ("", "nodes") => &["no"],
        ("", "persistentvolumeclaims") => &["pvc"],
        ("", "persistentvolumes") => &["pv"],
        ("", "pods") => &["po"],
        ("", "replicationcontrollers") => &["rc"],
        ("", "resourcequotas") => &["quota"],
        ("", "serviceaccounts") => &["sa"],
        ("", "services") => &["svc"],
        ("apiextensions.k8s.io", "customresourcedefinitions") => &["crd", "crds"],
        ("apps", "daemonsets") => &["ds"],
        ("apps", "deployments") => &["deploy"],
        ("apps", "replicasets") => &["rs"],
        ("apps", "statefulsets") => &["sts"],
        ("autoscaling", "horizontalpodautoscalers") => &["hpa"],
        ("batch", "cronjobs") => &["cj"],
        ("certificates.k8s.io", "certificatesigningrequests") => &["csr"],
        ("events.k8s.io", "events") => &["ev"],
        ("networking.k8s.io", "ingresses") => &["ing"],
        ("networking.k8s.io", "networkpolicies") => &["netpol"],
        ("policy", "poddisruptionbudgets") => &["pdb"],
        ("policy", "podsecuritypolicies") => &["psp"],
        ("scheduling.k8s.io", "priorityclasses") => &["pc"],
        ("storage.k8s.io", "storageclasses") => &["sc"],
        _ => &[],
    }
}

fn in_category_all(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        ("", "pods" | "services" | "replicationcontrollers")
            | (
                "apps",
                "deployments" | "replicasets" | "statefulsets" | "daemonsets"
            )
            | ("batch", "jobs" | "cronjobs")
            | ("autoscaling", "horizontalpodautoscalers")
    )
}

/// Built-in resources with a `status` subresource.
fn has_status(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        (
            "",
            "pods"
                | "services"
                | "nodes"
                | "namespaces"
                | "persistentvolumes"
                | "persistentvolumeclaims"
                | "replicationcontrollers"
                | "resourcequotas"
        ) | (
            "apps",
            "deployments" | "replicasets" | "statefulsets" | "daemonsets"
        ) | ("batch", "jobs" | "cronjobs")
            | ("autoscaling", "horizontalpodautoscalers")
            | ("policy", "poddisruptionbudgets")
            | ("networking.k8s.io", "ingresses" | "servicecidrs")
            | ("certificates.k8s.io", "certificatesigningrequests")
            | ("apiextensions.k8s.io", "customresourcedefinitions")
            | ("apiregistration.k8s.io", "apiservices")
            | (
                "flowcontrol.apiserver.k8s.io",
                "flowschemas" | "prioritylevelconfigurations"
            )
            | ("storage.k8s.io", "volumeattachments")
            | (
                "admissionregistration.k8s.io",
                "validatingadmissionpolicies"
            )
            | ("resource.k8s.io", "resourceclaims")
    )
}

/// Built-in resources with a `scale` subresource (`autoscaling/v1` Scale).
pub fn has_scale(group: &str, resource: &str) -> bool {
    matches!(
        (group, resource),
        ("apps", "deployments" | "replicasets" | "statefulsets") | ("", "replicationcontrollers")
    )
}

/// Stored as JSON by kube-apiserver.
pub fn json_stored_group(group: &str) -> bool {
    matches!(group, "apiextensions.k8s.io" | "apiregistration.k8s.io")
}

/// Kubernetes version priority: GA before beta before alpha, higher numbers first.
fn version_rank(version: &str) -> (u8, i64, i64) {
    let Some(rest) = version.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major = digits.parse::<i64>().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let (class, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse::<i64>().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse::<i64>().unwrap_or(0))
    } else {
        (0, 0)
    };
    (class, major, minor)
}

/// Sorts versions by priority, preferred first.
pub fn sort_versions(versions: &mut [String]) {
    versions.sort_by(|a, b| version_rank(b).cmp(&version_rank(a)).then(a.cmp(b)));
}

fn is_ga(version: &str) -> bool {
    version_rank(version).0 == 3
}

/// Every served resource, by group version.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// (group, version) -> resources.
    resources: BTreeMap<(String, String), Vec<Arc<ApiResource>>>,
}

impl Discovery {
    /// The built-in resources the profile serves.
    pub fn builtin(profile: &Profile) -> Self {
        let schema = Schema::kubernetes();
        let mut discovery = Discovery::default();
        for entry in BUILTIN_RESOURCES {
            if matches!(entry.resource, "rangeallocations" | "masterleases")
                || entry.group == "extensions"
                || !profile.serves(entry.group, entry.resource)
            {
                continue;
            }
            let mut versions: Vec<String> = schema
                .types_of_kind(entry.group, entry.kind)
                .into_iter()
                .filter_map(|id| {
                    let name = schema.message_name(id);
                    let mut parts = name.rsplit('.');
                    parts.next()?;
                    parts.next().map(str::to_string)
                })
                .filter(|version| {
                    is_ga(version)
                        || profile.extra_versions.iter().any(|(g, v, resources)| {
                            *g == entry.group && v == version && resources.contains(&entry.resource)
                        })
                })
                .collect();
            versions.dedup();
            if versions.is_empty() && json_stored_group(entry.group) {
                // CRDs and APIServices have no protobuf types in k8s.io/api.
                versions.push("v1".to_string());
            }
            for version in versions {
                discovery.insert(ApiResource {
                    group: entry.group.to_string(),
                    version,
                    resource: entry.resource.to_string(),
                    singular: entry.kind.to_ascii_lowercase(),
                    kind: entry.kind.to_string(),
                    namespaced: entry.namespaced,
                    short_names: short_names(entry.group, entry.resource)
                        .iter()
                        .map(|s| s.to_string())
                        .collect(),
                    categories: if in_category_all(entry.group, entry.resource) {
                        vec!["all".to_string()]
                    } else {
                        Vec::new()
                    },
                    status_subresource: has_status(entry.group, entry.resource),
                    json_storage: json_stored_group(entry.group),
                    custom: false,
                    schema: None,
                    printer_columns: Vec::new(),
                });
            }
        }
        discovery
    }

    /// Adds (or replaces) a resource in its group version.
    pub fn insert(&mut self, resource: ApiResource) {
        let list = self
            .resources
            .entry((resource.group.clone(), resource.version.clone()))
            .or_default();
        list.retain(|r| r.resource != resource.resource);
        list.push(Arc::new(resource));
        list.sort_by(|a, b| a.resource.cmp(&b.resource));
    }

    /// Removes `resource` of `group` from every version.
    pub fn remove(&mut self, group: &str, resource: &str) {
        for ((g, _), list) in self.resources.iter_mut() {
            if g == group {
                list.retain(|r| r.resource != resource);
            }
        }
        self.resources.retain(|_, list| !list.is_empty());
    }

    /// The resource `resource` served in `group`/`version`.
    pub fn get(&self, group: &str, version: &str, resource: &str) -> Option<Arc<ApiResource>> {
        self.resources
            .get(&(group.to_string(), version.to_string()))?
            .iter()
            .find(|r| r.resource == resource)
            .cloned()
    }

    /// Whether `group`/`version` is served.
    pub fn serves_group_version(&self, group: &str, version: &str) -> bool {
        self.resources
            .contains_key(&(group.to_string(), version.to_string()))
    }

    /// The preferred version of each distinct (group, resource): what namespace deletion
    /// and garbage collection walk.
    pub fn storage_resources(&self) -> Vec<Arc<ApiResource>> {
        let mut by_resource: BTreeMap<(String, String), Arc<ApiResource>> = BTreeMap::new();
        for resource in self.resources.values().flatten() {
            let key = (resource.group.clone(), resource.resource.clone());
            let better = by_resource.get(&key).is_none_or(|current| {
                version_rank(&resource.version) > version_rank(&current.version)
            });
            if better {
                by_resource.insert(key, resource.clone());
            }
        }
        by_resource.into_values().collect()
    }

    /// The preferred served version of `group`'s `resource`.
    pub fn preferred(&self, group: &str, resource: &str) -> Option<Arc<ApiResource>> {
        self.storage_resources()
            .into_iter()
            .find(|r| r.group == group && r.resource == resource)
    }

    /// Versions of `group`, preferred first.
    pub fn group_versions(&self, group: &str) -> Vec<String> {
        let mut versions: Vec<String> = self
            .resources
            .keys()
            .filter(|(g, _)| g == group)
            .map(|(_, v)| v.clone())
            .collect();
        sort_versions(&mut versions);
        versions
    }

    /// `/api`.
    pub fn api_versions(&self, server_address: &str) -> Value {
        json!({
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
        })
    }

    fn group_document(&self, group: &str) -> Option<Value> {
        let versions = self.group_versions(group);
        let preferred = versions.first()?;
        let entry = |v: &String| json!({"groupVersion": format!("{group}/{v}"), "version": v});
        Some(json!({
            "name": group,
            "versions": versions.iter().map(entry).collect::<Vec<_>>(),
            "preferredVersion": entry(preferred),
        }))
    }

    /// `/apis`.
    pub fn api_group_list(&self) -> Value {
        let mut groups: Vec<&str> = self
            .resources
            .keys()
            .map(|(g, _)| g.as_str())
            .filter(|g| !g.is_empty())
            .collect();
        groups.dedup();
        // Built-in groups first (in kube-apiserver's rough order), then CRD groups.
        json!({
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": groups.iter().filter_map(|g| self.group_document(g)).collect::<Vec<_>>(),
        })
    }

    /// `/apis/<group>`.
    pub fn api_group(&self, group: &str) -> Option<Value> {
        let mut document = self.group_document(group)?;
        document["kind"] = json!("APIGroup");
        document["apiVersion"] = json!("v1");
        Some(document)
    }

    /// `/api/v1`, `/apis/<group>/<version>`.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let list = self
            .resources
            .get(&(group.to_string(), version.to_string()))?;
        let mut resources = Vec::new();
        for r in list {
            let mut entry = json!({
                "name": r.resource,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": VERBS,
            });
            if !r.short_names.is_empty() {
                entry["shortNames"] = json!(r.short_names);
            }
            if !r.categories.is_empty() {
                entry["categories"] = json!(r.categories);
            }
            resources.push(entry);
            if !r.custom && has_scale(&r.group, &r.resource) {
                resources.push(json!({
                    "name": format!("{}/scale", r.resource),
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "group": "autoscaling",
                    "version": "v1",
                    "kind": "Scale",
                    "verbs": ["get", "patch", "update"],
                }));
            }
            if r.status_subresource {
                resources.push(json!({
                    "name": format!("{}/status", r.resource),
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": r.kind,
                    "verbs": ["get", "patch", "update"],
                }));
            }
        }
        Some(json!({
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version(group, version),
            "resources": resources,
        }))
    }
}

/// FNV-1a, for the `hash` of OpenAPI v3 URLs (clients cache by URL).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn openapi_path_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

impl Discovery {
    /// `/openapi/v3`: one entry per group version. kubectl reads it to learn that the
    /// server validates fields itself (`fieldValidation`), so it does not need schemas.
    pub fn openapi_v3_root(&self) -> Value {
        let mut paths = serde_json::Map::new();
        for (group, version) in self.resources.keys() {
            let key = openapi_path_key(group, version);
            let hash = self
                .resource_list(group, version)
                .map(|doc| fnv1a(doc.to_string().as_bytes()))
                .unwrap_or(0);
            paths.insert(
                key.clone(),
                json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash:016X}")}),
            );
        }
        json!({"paths": paths})
    }

    /// `/openapi/v3/apis/<group>/<version>`: the operations of every resource (with the
    /// `x-kubernetes-group-version-kind` and `fieldValidation` kubectl looks for); object
    /// schemas are open (`x-kubernetes-preserve-unknown-fields`).
    pub fn openapi_v3_group_version(
        &self,
        group: &str,
        version: &str,
        server_version: &str,
    ) -> Option<Value> {
        let list = self
            .resources
            .get(&(group.to_string(), version.to_string()))?;
        let base = format!("/{}", openapi_path_key(group, version));
        let mut paths = serde_json::Map::new();
        let mut schemas = serde_json::Map::new();
        let query = |name: &str| json!({"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        for r in list {
            let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
            let schema_name = format!(
                "{}.{}.{}",
                if r.group.is_empty() { "core" } else { &r.group },
                r.version,
                r.kind
            );
            schemas.insert(
                schema_name.clone(),
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                       "x-kubernetes-group-version-kind": [gvk]}),
            );
            let body = json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}}});
            let ok = json!({"200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema_name}")}}}}});
            let operation = |action: &str, params: Vec<Value>, with_body: bool| {
                let mut op = json!({
                    "operationId": format!("{action}{}", r.kind),
                    "x-kubernetes-action": action,
                    "x-kubernetes-group-version-kind": gvk,
                    "parameters": params,
                    "responses": ok,
                });
                if with_body {
                    op["requestBody"] = body.clone();
                }
                op
            };
            let write_params = vec![
                query("dryRun"),
                query("fieldManager"),
                query("fieldValidation"),
            ];
            let collection = if r.namespaced {
                format!("{base}/namespaces/{{namespace}}/{}", r.resource)
            } else {
                format!("{base}/{}", r.resource)
            };
            let mut path_params = vec![
                json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}}),
            ];
            if r.namespaced {
                path_params.push(json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string", "uniqueItems": true}}));
            }
            paths.insert(collection.clone(), json!({
                "get": operation("list", vec![query("labelSelector"), query("fieldSelector"), query("limit"), query("continue"), query("resourceVersion"), query("resourceVersionMatch"), query("watch")], false),
                "post": operation("post", write_params.clone(), true),
                "delete": operation("deletecollection", vec![query("labelSelector")], false),
            }));
            let item = json!({
                "get": operation("get", vec![], false),
                "put": operation("put", write_params.clone(), true),
                "patch": operation("patch", write_params.clone(), true),
                "delete": operation("delete", vec![query("propagationPolicy")], false),
                "parameters": path_params,
            });
            paths.insert(format!("{collection}/{{name}}"), item.clone());
            if r.status_subresource {
                paths.insert(format!("{collection}/{{name}}/status"), item);
            }
        }
        Some(json!({
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": server_version},
            "paths": paths,
            "components": {"schemas": schemas},
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::profiles::{NEWER, OLDER};

    #[test]
    fn versions_sort_by_priority() {
        let mut versions: Vec<String> = ["v1beta1", "v1alpha1", "v2", "v1", "v2beta2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        sort_versions(&mut versions);
        assert_eq!(versions, ["v2", "v1", "v2beta2", "v1beta1", "v1alpha1"]);
    }

    #[test]
    fn profiles_differ_in_served_versions() {
        let newer = Discovery::builtin(&NEWER);
        let older = Discovery::builtin(&OLDER);
        assert!(newer.get("apps", "v1", "deployments").is_some());
        assert!(newer.get("policy", "v1", "poddisruptionbudgets").is_some());
        assert!(
            newer
                .get("policy", "v1beta1", "poddisruptionbudgets")
                .is_none()
        );
        assert!(
            older
                .get("policy", "v1beta1", "poddisruptionbudgets")
                .is_some()
        );
        assert!(older.get("policy", "v1", "poddisruptionbudgets").is_some());
        assert!(
            newer
                .get("", "v1", "services")
                .is_some_and(|s| s.namespaced)
        );
        assert!(newer.get("", "v1", "nodes").is_some_and(|s| !s.namespaced));
        assert_eq!(newer.group_versions("autoscaling")[0], "v2");
    }
}
