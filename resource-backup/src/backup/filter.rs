//! What a backup selects: namespaces, resources, labels and names, and the
//! cluster-scoped objects that selected namespaces depend on.

use std::collections::BTreeSet;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde_json::Value;

use crate::Error;
use crate::model::ResourceType;
use crate::repo::format::FilterSpec;

/// Whether cluster-scoped objects are backed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterResources {
    /// All of them when no namespace filter is given; otherwise only those related to
    /// the selected namespaces' objects.
    Auto,
    /// All of them.
    Include,
    /// None (the selected namespaces' Namespace objects still are).
    Exclude,
}

impl ClusterResources {
    /// Parses `auto|true|false`.
    pub fn parse(s: &str) -> Result<ClusterResources, Error> {
        match s {
            "auto" | "" => Ok(ClusterResources::Auto),
            "true" | "include" => Ok(ClusterResources::Include),
            "false" | "exclude" => Ok(ClusterResources::Exclude),
            other => Err(Error::Invalid(format!(
                "--include-cluster-resources {other:?}: expected auto, true or false"
            ))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            ClusterResources::Auto => "auto",
            ClusterResources::Include => "true",
            ClusterResources::Exclude => "false",
        }
    }
}

/// Compiled filters.
#[derive(Debug, Clone)]
pub struct Filters {
    spec: FilterSpec,
    include_ns: Option<GlobSet>,
    exclude_ns: GlobSet,
    include_res: Option<GlobSet>,
    exclude_res: GlobSet,
    names: Option<GlobSet>,
    exclude_label: Option<(String, Option<String>)>,
    cluster: ClusterResources,
}

fn globs(what: &str, patterns: &[String]) -> Result<GlobSet, Error> {
    let mut builder = GlobSetBuilder::new();
    for p in patterns {
        builder
            .add(Glob::new(p).map_err(|e| Error::Invalid(format!("{what} pattern {p:?}: {e}")))?);
    }
    builder
        .build()
        .map_err(|e| Error::Invalid(format!("{what} patterns: {e}")))
}

fn optional_globs(what: &str, patterns: &[String]) -> Result<Option<GlobSet>, Error> {
    if patterns.is_empty() || patterns.iter().any(|p| p == "*") {
        Ok(None)
    } else {
        globs(what, patterns).map(Some)
    }
}

/// The label value of an object.
fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object["metadata"]["labels"][key].as_str()
}

impl Filters {
    /// Compiles a filter spec.
    pub fn new(spec: FilterSpec) -> Result<Filters, Error> {
        let exclude_label = spec
            .exclude_label
            .as_ref()
            .map(|l| match l.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (l.clone(), None),
            });
        Ok(Filters {
            include_ns: optional_globs("namespace", &spec.include_namespaces)?,
            exclude_ns: globs("namespace", &spec.exclude_namespaces)?,
            include_res: optional_globs("resource", &spec.include_resources)?,
            exclude_res: globs("resource", &spec.exclude_resources)?,
            names: optional_globs("name", &spec.include_names)?,
            cluster: ClusterResources::parse(&spec.include_cluster_resources)?,
            exclude_label,
            spec,
        })
    }

    /// The spec (recorded in the manifest).
    pub fn spec(&self) -> FilterSpec {
        let mut spec = self.spec.clone();
        spec.include_cluster_resources = self.cluster.as_str().to_string();
        spec
    }

    /// Whether namespaces are filtered at all.
    pub fn filters_namespaces(&self) -> bool {
        self.include_ns.is_some() || !self.exclude_ns.is_empty()
    }

    /// Whether a resource type is selected: matched by plural (`deployments`),
    /// group-qualified plural (`deployments.apps`) or lower-case kind.
    pub fn resource_selected(&self, t: &ResourceType) -> bool {
        let names = [
            t.gvr.resource.clone(),
            t.gvr.group_resource(),
            t.kind.to_ascii_lowercase(),
        ];
        let matches = |set: &GlobSet| names.iter().any(|n| set.is_match(n));
        if matches(&self.exclude_res) {
            return false;
        }
        self.include_res.as_ref().is_none_or(matches)
    }

    /// Whether a namespace is selected.
    pub fn namespace_selected(&self, ns: &str) -> bool {
        !self.exclude_ns.is_match(ns) && self.include_ns.as_ref().is_none_or(|s| s.is_match(ns))
    }

    /// The label selector for lists of primary objects.
    pub fn selector(&self) -> Option<&str> {
        self.spec.selector.as_deref().filter(|s| !s.is_empty())
    }

    /// Whether the object carries the exclude label.
    pub fn excluded_by_label(&self, object: &Value) -> bool {
        match &self.exclude_label {
            Some((k, None)) => label(object, k).is_some(),
            Some((k, Some(v))) => label(object, k) == Some(v.as_str()),
            None => false,
        }
    }

    /// Whether a name matches the name patterns.
    pub fn name_selected(&self, name: &str) -> bool {
        self.names.as_ref().is_none_or(|s| s.is_match(name))
    }

    /// How cluster-scoped objects of this type are chosen.
    pub fn cluster_mode(&self) -> ClusterMode {
        match self.cluster {
            ClusterResources::Include => ClusterMode::All,
            ClusterResources::Exclude => ClusterMode::NamespacesOnly,
            ClusterResources::Auto if self.filters_namespaces() => ClusterMode::Related,
            ClusterResources::Auto => ClusterMode::All,
        }
    }
}

/// How cluster-scoped objects are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterMode {
    /// Every one (with the label and name filters).
    All,
    /// Those the selected namespaced objects depend on, plus the selected namespaces.
    Related,
    /// Only the selected namespaces' Namespace objects.
    NamespacesOnly,
}

/// Cluster-scoped objects the selected namespaced objects refer to.
#[derive(Debug, Clone, Default)]
pub struct Related {
    /// CRD names (`widgets.example.com`) of custom resources backed up.
    pub crds: BTreeSet<String>,
    /// PersistentVolumes bound to backed-up claims.
    pub persistent_volumes: BTreeSet<String>,
    /// StorageClasses used by claims and volumes.
    pub storage_classes: BTreeSet<String>,
    /// ServiceAccounts backed up (namespace, name).
    pub service_accounts: BTreeSet<(String, String)>,
    /// ClusterRoles referenced by backed-up (cluster) role bindings.
    pub cluster_roles: BTreeSet<String>,
    /// Namespaces with at least one selected object, or selected by name.
    pub namespaces: BTreeSet<String>,
}

impl Related {
    /// Notes what a backed-up object refers to.
    pub fn note(&mut self, t: &ResourceType, builtin_group: bool, object: &Value) {
        let group = t.gvr.group.as_str();
        let resource = t.gvr.resource.as_str();
        if let Some(ns) = object["metadata"]["namespace"].as_str() {
            self.namespaces.insert(ns.to_string());
        }
        if !builtin_group {
            self.crds.insert(format!("{resource}.{group}"));
        }
        match (group, resource) {
            ("", "persistentvolumeclaims") => {
                if let Some(v) = object["spec"]["volumeName"].as_str() {
                    self.persistent_volumes.insert(v.to_string());
                }
                if let Some(sc) = object["spec"]["storageClassName"].as_str() {
                    self.storage_classes.insert(sc.to_string());
                }
            }
            ("", "persistentvolumes") => {
                if let Some(sc) = object["spec"]["storageClassName"].as_str() {
                    self.storage_classes.insert(sc.to_string());
                }
            }
            ("", "serviceaccounts") => {
                if let (Some(ns), Some(n)) = (
                    object["metadata"]["namespace"].as_str(),
                    object["metadata"]["name"].as_str(),
                ) {
                    self.service_accounts
                        .insert((ns.to_string(), n.to_string()));
                }
            }
            ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
                if object["roleRef"]["kind"] == "ClusterRole"
                    && let Some(n) = object["roleRef"]["name"].as_str()
                {
                    self.cluster_roles.insert(n.to_string());
                }
            }
            _ => {}
        }
    }

    /// Whether a cluster-scoped object is related to the selection.
    pub fn wants(&self, t: &ResourceType, object: &Value) -> bool {
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        match (t.gvr.group.as_str(), t.gvr.resource.as_str()) {
            ("", "namespaces") => self.namespaces.contains(name),
            ("", "persistentvolumes") => self.persistent_volumes.contains(name),
            ("storage.k8s.io", "storageclasses") => self.storage_classes.contains(name),
            ("apiextensions.k8s.io", "customresourcedefinitions") => self.crds.contains(name),
            ("rbac.authorization.k8s.io", "clusterroles") => self.cluster_roles.contains(name),
            ("rbac.authorization.k8s.io", "clusterrolebindings") => {
                object["subjects"].as_array().is_some_and(|subjects| {
                    subjects.iter().any(|s| {
                        s["kind"] == "ServiceAccount"
                            && s["namespace"].as_str().zip(s["name"].as_str()).is_some_and(
                                |(ns, n)| {
                                    self.service_accounts
                                        .contains(&(ns.to_string(), n.to_string()))
                                },
                            )
                    })
                })
            }
            _ => false,
        }
    }
}

/// Order in which cluster-scoped types are read when only related objects are wanted:
/// a type's relations must be known before it is read (PVs name StorageClasses,
/// ClusterRoleBindings name ClusterRoles).
pub fn cluster_phase(t: &ResourceType) -> u8 {
    match (t.gvr.group.as_str(), t.gvr.resource.as_str()) {
        ("", "persistentvolumes") | ("rbac.authorization.k8s.io", "clusterrolebindings") => 0,
        _ => 1,
    }
}

/// Types served in two groups hold the same objects: keep one (Velero's cohabiting
/// resources). Returns whether to skip `t` given every listed type.
pub fn is_cohabitant_duplicate(t: &ResourceType, all: &[ResourceType]) -> bool {
    const PAIRS: &[(&str, &str, &str)] = &[
        // (resource, skipped group, preferred group)
        ("events", "", "events.k8s.io"),
        ("ingresses", "extensions", "networking.k8s.io"),
        ("networkpolicies", "extensions", "networking.k8s.io"),
        ("deployments", "extensions", "apps"),
        ("daemonsets", "extensions", "apps"),
        ("replicasets", "extensions", "apps"),
        ("podsecuritypolicies", "extensions", "policy"),
    ];
    PAIRS.iter().any(|(resource, skipped, preferred)| {
        t.gvr.resource == *resource
            && t.gvr.group == *skipped
            && all
                .iter()
                .any(|o| o.gvr.resource == *resource && o.gvr.group == *preferred)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Gvr;

    fn rt(group: &str, resource: &str, kind: &str, namespaced: bool) -> ResourceType {
        ResourceType {
            gvr: Gvr::new(group, "v1", resource),
            kind: kind.into(),
            namespaced,
            verbs: vec!["list".into()],
            preferred: true,
        }
    }

    #[test]
    fn resources_match_by_plural_group_or_kind() {
        let f = Filters::new(FilterSpec {
            include_resources: vec![
                "deployments.apps".into(),
                "configmap".into(),
                "*.example.com".into(),
            ],
            exclude_resources: vec!["secrets".into()],
            include_cluster_resources: "auto".into(),
            ..FilterSpec::default()
        })
        .unwrap();
        assert!(f.resource_selected(&rt("apps", "deployments", "Deployment", true)));
        assert!(f.resource_selected(&rt("", "configmaps", "ConfigMap", true)));
        assert!(f.resource_selected(&rt("example.com", "widgets", "Widget", true)));
        assert!(!f.resource_selected(&rt("", "secrets", "Secret", true)));
        assert!(!f.resource_selected(&rt("", "pods", "Pod", true)));
    }

    #[test]
    fn namespaces_and_labels() {
        let f = Filters::new(FilterSpec {
            include_namespaces: vec!["app-*".into()],
            exclude_namespaces: vec!["app-9*".into()],
            exclude_label: Some("skip=yes".into()),
            include_cluster_resources: "auto".into(),
            ..FilterSpec::default()
        })
        .unwrap();
        assert!(f.namespace_selected("app-001"));
        assert!(!f.namespace_selected("app-900"));
        assert!(!f.namespace_selected("kube-system"));
        assert_eq!(f.cluster_mode(), ClusterMode::Related);
        let o: Value = serde_json::json!({"metadata": {"labels": {"skip": "yes"}}});
        assert!(f.excluded_by_label(&o));
        let o: Value = serde_json::json!({"metadata": {"labels": {"skip": "no"}}});
        assert!(!f.excluded_by_label(&o));
    }
}
