//! Where kube-apiserver keeps objects in etcd: `/registry/<resource>/[<namespace>/]<name>`.
//!
//! Built-in resources use their plural name without the group (`/registry/deployments/…`),
//! with historical exceptions kept for compatibility: services live under `services/specs`,
//! endpoints under `services/endpoints`, nodes under `minions`, replication controllers under
//! `controllers`, ingresses under `ingress`, pod security policies under
//! `podsecuritypolicy`. Custom resources, CRDs (`apiextensions.k8s.io`) and APIServices
//! (`apiregistration.k8s.io`) live under `/registry/<group>/<resource>/…`.
//!
//! ```
//! use snapshot_format::k8s::keys::{RegistryKey, storage_key};
//! let key = RegistryKey::parse(b"/registry/services/specs/default/kubernetes")?;
//! assert_eq!((key.group.as_str(), key.resource.as_str()), ("", "services"));
//! assert_eq!(key.namespace.as_deref(), Some("default"));
//! assert_eq!(storage_key("", "nodes", None, "node-1")?, "/registry/minions/node-1");
//! # Ok::<(), snapshot_format::k8s::keys::KeyError>(())
//! ```

use std::fmt;

use super::Schema;

/// kube-apiserver's default `--etcd-prefix`.
pub const DEFAULT_PREFIX: &str = "/registry";

/// A resource the API server stores, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct BuiltinResource {
    /// API group, `""` for the core group.
    pub group: &'static str,
    /// Plural resource name as the API serves it (`replicationcontrollers`).
    pub resource: &'static str,
    /// Kind of its objects.
    pub kind: &'static str,
    /// True for namespaced resources.
    pub namespaced: bool,
    /// The key segment(s) after the prefix (`controllers`, `services/specs`).
    pub key_prefix: &'static str,
}

const fn res(
    group: &'static str,
    resource: &'static str,
    kind: &'static str,
    namespaced: bool,
    key_prefix: &'static str,
) -> BuiltinResource {
    BuiltinResource {
        group,
        resource,
        kind,
        namespaced,
        key_prefix,
    }
}

/// Resources built into kube-apiserver (and the two aggregation-layer types it stores), with
/// their etcd key prefixes. Where two groups share one storage (events, ingresses, the
/// `extensions` copies of `apps` types) the group the API server stores in comes first;
/// key parsing reports that one.
pub const BUILTIN_RESOURCES: &[BuiltinResource] = &[
    // core
    res("", "configmaps", "ConfigMap", true, "configmaps"),
    res("", "endpoints", "Endpoints", true, "services/endpoints"),
    res("", "events", "Event", true, "events"),
    res("", "limitranges", "LimitRange", true, "limitranges"),
    res("", "namespaces", "Namespace", false, "namespaces"),
    res("", "nodes", "Node", false, "minions"),
    res(
        "",
        "persistentvolumeclaims",
        "PersistentVolumeClaim",
        true,
        "persistentvolumeclaims",
    ),
    res(
        "",
        "persistentvolumes",
        "PersistentVolume",
        false,
        "persistentvolumes",
    ),
    res("", "pods", "Pod", true, "pods"),
    res("", "podtemplates", "PodTemplate", true, "podtemplates"),
    res(
        "",
        "replicationcontrollers",
        "ReplicationController",
        true,
        "controllers",
    ),
    res(
        "",
        "resourcequotas",
        "ResourceQuota",
        true,
        "resourcequotas",
    ),
    res("", "secrets", "Secret", true, "secrets"),
    res(
        "",
        "serviceaccounts",
        "ServiceAccount",
        true,
        "serviceaccounts",
    ),
    res("", "services", "Service", true, "services/specs"),
    // Allocator state (`/registry/ranges/serviceips`, `…/servicenodeports`) and the
    // API servers' own endpoint leases: not served, but stored.
    res("", "rangeallocations", "RangeAllocation", false, "ranges"),
    res("", "masterleases", "Endpoints", false, "masterleases"),
    // admissionregistration.k8s.io
    res(
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicies",
        "MutatingAdmissionPolicy",
        false,
        "mutatingadmissionpolicies",
    ),
    res(
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicybindings",
        "MutatingAdmissionPolicyBinding",
        false,
        "mutatingadmissionpolicybindings",
    ),
    res(
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        false,
        "mutatingwebhookconfigurations",
    ),
    res(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
        "ValidatingAdmissionPolicy",
        false,
        "validatingadmissionpolicies",
    ),
    res(
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        false,
        "validatingadmissionpolicybindings",
    ),
    res(
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        false,
        "validatingwebhookconfigurations",
    ),
    // stored as JSON
    res(
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        false,
        "apiextensions.k8s.io/customresourcedefinitions",
    ),
    res(
        "apiregistration.k8s.io",
        "apiservices",
        "APIService",
        false,
        "apiregistration.k8s.io/apiservices",
    ),
    // apps
    res(
        "apps",
        "controllerrevisions",
        "ControllerRevision",
        true,
        "controllerrevisions",
    ),
    res("apps", "daemonsets", "DaemonSet", true, "daemonsets"),
    res("apps", "deployments", "Deployment", true, "deployments"),
    res("apps", "replicasets", "ReplicaSet", true, "replicasets"),
    res("apps", "statefulsets", "StatefulSet", true, "statefulsets"),
    // autoscaling, batch
    res(
        "autoscaling",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        true,
        "horizontalpodautoscalers",
    ),
    res("batch", "cronjobs", "CronJob", true, "cronjobs"),
    res("batch", "jobs", "Job", true, "jobs"),
    // certificates.k8s.io
    res(
        "certificates.k8s.io",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        false,
        "certificatesigningrequests",
    ),
    res(
        "certificates.k8s.io",
        "clustertrustbundles",
        "ClusterTrustBundle",
        false,
        "clustertrustbundles",
    ),
    res(
        "certificates.k8s.io",
        "podcertificaterequests",
        "PodCertificateRequest",
        true,
        "podcertificaterequests",
    ),
    // coordination.k8s.io
    res(
        "coordination.k8s.io",
        "leasecandidates",
        "LeaseCandidate",
        true,
        "leasecandidates",
    ),
    res("coordination.k8s.io", "leases", "Lease", true, "leases"),
    // discovery.k8s.io
    res(
        "discovery.k8s.io",
        "endpointslices",
        "EndpointSlice",
        true,
        "endpointslices",
    ),
    // flowcontrol.apiserver.k8s.io
    res(
        "flowcontrol.apiserver.k8s.io",
        "flowschemas",
        "FlowSchema",
        false,
        "flowschemas",
    ),
    res(
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
        "PriorityLevelConfiguration",
        false,
        "prioritylevelconfigurations",
    ),
    // internal.apiserver.k8s.io
    res(
        "internal.apiserver.k8s.io",
        "storageversions",
        "StorageVersion",
        false,
        "storageversions",
    ),
    // networking.k8s.io
    res(
        "networking.k8s.io",
        "ingressclasses",
        "IngressClass",
        false,
        "ingressclasses",
    ),
    res("networking.k8s.io", "ingresses", "Ingress", true, "ingress"),
    res(
        "networking.k8s.io",
        "ipaddresses",
        "IPAddress",
        false,
        "ipaddresses",
    ),
    res(
        "networking.k8s.io",
        "networkpolicies",
        "NetworkPolicy",
        true,
        "networkpolicies",
    ),
    res(
        "networking.k8s.io",
        "servicecidrs",
        "ServiceCIDR",
        false,
        "servicecidrs",
    ),
    // node.k8s.io
    res(
        "node.k8s.io",
        "runtimeclasses",
        "RuntimeClass",
        false,
        "runtimeclasses",
    ),
    // policy
    res(
        "policy",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        true,
        "poddisruptionbudgets",
    ),
    res(
        "policy",
        "podsecuritypolicies",
        "PodSecurityPolicy",
        false,
        "podsecuritypolicy",
    ),
    // rbac.authorization.k8s.io
    res(
        "rbac.authorization.k8s.io",
        "clusterrolebindings",
        "ClusterRoleBinding",
        false,
        "clusterrolebindings",
    ),
    res(
        "rbac.authorization.k8s.io",
        "clusterroles",
        "ClusterRole",
        false,
        "clusterroles",
    ),
    res(
        "rbac.authorization.k8s.io",
        "rolebindings",
        "RoleBinding",
        true,
        "rolebindings",
    ),
    res("rbac.authorization.k8s.io", "roles", "Role", true, "roles"),
    // resource.k8s.io
    res(
        "resource.k8s.io",
        "deviceclasses",
        "DeviceClass",
        false,
        "deviceclasses",
    ),
    res(
        "resource.k8s.io",
        "devicetaintrules",
        "DeviceTaintRule",
        false,
        "devicetaintrules",
    ),
    res(
        "resource.k8s.io",
        "resourceclaims",
        "ResourceClaim",
        true,
        "resourceclaims",
    ),
    res(
        "resource.k8s.io",
        "resourceclaimtemplates",
        "ResourceClaimTemplate",
        true,
        "resourceclaimtemplates",
    ),
    res(
        "resource.k8s.io",
        "resourceslices",
        "ResourceSlice",
        false,
        "resourceslices",
    ),
    // scheduling.k8s.io
    res(
        "scheduling.k8s.io",
        "priorityclasses",
        "PriorityClass",
        false,
        "priorityclasses",
    ),
    res(
        "scheduling.k8s.io",
        "workloads",
        "Workload",
        true,
        "workloads",
    ),
    // storage.k8s.io
    res(
        "storage.k8s.io",
        "csidrivers",
        "CSIDriver",
        false,
        "csidrivers",
    ),
    res("storage.k8s.io", "csinodes", "CSINode", false, "csinodes"),
    res(
        "storage.k8s.io",
        "csistoragecapacities",
        "CSIStorageCapacity",
        true,
        "csistoragecapacities",
    ),
    res(
        "storage.k8s.io",
        "storageclasses",
        "StorageClass",
        false,
        "storageclasses",
    ),
    res(
        "storage.k8s.io",
        "volumeattachments",
        "VolumeAttachment",
        false,
        "volumeattachments",
    ),
    res(
        "storage.k8s.io",
        "volumeattributesclasses",
        "VolumeAttributesClass",
        false,
        "volumeattributesclasses",
    ),
    // storagemigration.k8s.io
    res(
        "storagemigration.k8s.io",
        "storageversionmigrations",
        "StorageVersionMigration",
        false,
        "storageversionmigrations",
    ),
    // Groups that share a storage above: parsed as the entry above, written the same way.
    res("events.k8s.io", "events", "Event", true, "events"),
    res("extensions", "daemonsets", "DaemonSet", true, "daemonsets"),
    res(
        "extensions",
        "deployments",
        "Deployment",
        true,
        "deployments",
    ),
    res("extensions", "ingresses", "Ingress", true, "ingress"),
    res(
        "extensions",
        "networkpolicies",
        "NetworkPolicy",
        true,
        "networkpolicies",
    ),
    res(
        "extensions",
        "replicasets",
        "ReplicaSet",
        true,
        "replicasets",
    ),
];

/// The built-in resource `resource` of `group`.
pub fn builtin_resource(group: &str, resource: &str) -> Option<&'static BuiltinResource> {
    BUILTIN_RESOURCES
        .iter()
        .find(|r| r.group == group && r.resource == resource)
}

/// The built-in resource whose objects are of `kind` in `group`.
pub fn builtin_resource_for_kind(group: &str, kind: &str) -> Option<&'static BuiltinResource> {
    BUILTIN_RESOURCES
        .iter()
        .find(|r| r.group == group && r.kind == kind)
}

/// Why a key is not an object key, or an object cannot have one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key is not under the prefix.
    #[error("key {key} is not under {prefix}/")]
    NotUnderPrefix {
        /// The key, printable.
        key: String,
        /// The prefix expected.
        prefix: String,
    },
    /// The key is under the prefix but is not `<resource>/[<namespace>/]<name>`.
    #[error("key {key} is not an object key: {problem}")]
    Malformed {
        /// The key, printable.
        key: String,
        /// What is wrong.
        problem: String,
    },
    /// A name, namespace, group or resource that cannot be part of a key.
    #[error("cannot make a key: {0}")]
    BadPart(String),
}

/// An object's etcd key, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct RegistryKey {
    /// API group (`""` for core). For a resource this module does not know, and whose key
    /// has no group (a built-in newer than this table), empty with [`RegistryKey::builtin`]
    /// `None`.
    pub group: String,
    /// Plural resource name as the API serves it (`nodes`, not `minions`).
    pub resource: String,
    /// Namespace, for namespaced objects.
    pub namespace: Option<String>,
    /// Object name.
    pub name: String,
    /// The table entry, for built-in resources.
    #[serde(skip)]
    pub builtin: Option<&'static BuiltinResource>,
}

impl RegistryKey {
    /// Parses a key under [`DEFAULT_PREFIX`].
    pub fn parse(key: &[u8]) -> Result<RegistryKey, KeyError> {
        RegistryKey::parse_with_prefix(key, DEFAULT_PREFIX)
    }

    /// Parses a key under `prefix` (an API server's `--etcd-prefix`, e.g. `/kubernetes.io`).
    pub fn parse_with_prefix(key: &[u8], prefix: &str) -> Result<RegistryKey, KeyError> {
        let printable = || crate::display_bytes(key);
        let prefix = prefix.trim_end_matches('/');
        let malformed = |problem: &str| KeyError::Malformed {
            key: printable(),
            problem: problem.to_string(),
        };
        let rest = key
            .strip_prefix(prefix.as_bytes())
            .and_then(|r| r.strip_prefix(b"/"))
            .ok_or_else(|| KeyError::NotUnderPrefix {
                key: printable(),
                prefix: prefix.to_string(),
            })?;
        let rest = std::str::from_utf8(rest).map_err(|_| malformed("not UTF-8"))?;
        if let Some(r) = BUILTIN_RESOURCES.iter().find(|r| {
            rest.strip_prefix(r.key_prefix)
                .is_some_and(|tail| tail.starts_with('/'))
        }) {
            let tail = &rest[r.key_prefix.len() + 1..];
            let parts: Vec<&str> = tail.split('/').collect();
            let (namespace, name) = match (r.namespaced, parts.as_slice()) {
                (true, [ns, name]) => (Some(*ns), *name),
                (false, [name]) => (None, *name),
                (true, _) => {
                    return Err(malformed(&format!(
                        "{} are namespaced: expected {}/<namespace>/<name>",
                        r.resource, r.key_prefix
                    )));
                }
                (false, _) => {
                    return Err(malformed(&format!(
                        "{} are cluster-scoped: expected {}/<name>",
                        r.resource, r.key_prefix
                    )));
                }
            };
            return RegistryKey::build(r.group, r.resource, namespace, name, Some(r), &malformed);
        }
        let parts: Vec<&str> = rest.split('/').collect();
        match parts.as_slice() {
            // `<group>/<resource>/…`: custom resources; groups always contain a dot.
            [group, resource, tail @ ..] if group.contains('.') => match tail {
                [name] => RegistryKey::build(group, resource, None, name, None, &malformed),
                [ns, name] => RegistryKey::build(group, resource, Some(ns), name, None, &malformed),
                _ => Err(malformed(
                    "expected <group>/<resource>/[<namespace>/]<name>",
                )),
            },
            // A resource this table does not know (newer than it): no group in the key.
            [resource, name] => RegistryKey::build("", resource, None, name, None, &malformed),
            [resource, ns, name] => {
                RegistryKey::build("", resource, Some(ns), name, None, &malformed)
            }
            _ => Err(malformed("expected <resource>/[<namespace>/]<name>")),
        }
    }

    fn build(
        group: &str,
        resource: &str,
        namespace: Option<&str>,
        name: &str,
        builtin: Option<&'static BuiltinResource>,
        malformed: &dyn Fn(&str) -> KeyError,
    ) -> Result<RegistryKey, KeyError> {
        if resource.is_empty() || name.is_empty() || namespace.is_some_and(str::is_empty) {
            return Err(malformed("empty segment"));
        }
        Ok(RegistryKey {
            group: group.to_string(),
            resource: resource.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
            builtin,
        })
    }

    /// The key again, under [`DEFAULT_PREFIX`].
    pub fn storage_key(&self) -> String {
        self.storage_key_with_prefix(DEFAULT_PREFIX)
    }

    /// The key again, under `prefix`.
    pub fn storage_key_with_prefix(&self, prefix: &str) -> String {
        let segment = match self.builtin {
            Some(b) => b.key_prefix.to_string(),
            None => key_segment(&self.group, &self.resource),
        };
        join(prefix, &segment, self.namespace.as_deref(), &self.name)
    }
}

impl fmt::Display for RegistryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.storage_key())
    }
}

/// The etcd key of an object, under [`DEFAULT_PREFIX`].
pub fn storage_key(
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<String, KeyError> {
    storage_key_with_prefix(DEFAULT_PREFIX, group, resource, namespace, name)
}

/// The etcd key of an object, under `prefix`. Built-in resources get their historical key
/// prefix and must be given a namespace exactly when they are namespaced.
pub fn storage_key_with_prefix(
    prefix: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<String, KeyError> {
    let segment_ok = |s: &str| !s.is_empty() && !s.contains('/');
    if !segment_ok(resource) || !segment_ok(name) || group.contains('/') {
        return Err(KeyError::BadPart(format!(
            "group {group:?}, resource {resource:?} and name {name:?} must be non-empty (but the core group) and free of '/'"
        )));
    }
    if let Some(ns) = namespace
        && !segment_ok(ns)
    {
        return Err(KeyError::BadPart(format!(
            "namespace {ns:?} must be non-empty and free of '/'"
        )));
    }
    let segment = match builtin_resource(group, resource) {
        Some(b) => {
            if b.namespaced != namespace.is_some() {
                return Err(KeyError::BadPart(format!(
                    "{resource} are {}",
                    if b.namespaced {
                        "namespaced: a namespace is needed"
                    } else {
                        "cluster-scoped: no namespace"
                    }
                )));
            }
            b.key_prefix.to_string()
        }
        None => key_segment(group, resource),
    };
    Ok(join(prefix, &segment, namespace, name))
}

fn key_segment(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{group}/{resource}")
    }
}

fn join(prefix: &str, segment: &str, namespace: Option<&str>, name: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    match namespace {
        Some(ns) => format!("{prefix}/{segment}/{ns}/{name}"),
        None => format!("{prefix}/{segment}/{name}"),
    }
}

/// Kinds with object metadata and a list type in the schema that are deliberately not in
/// [`BUILTIN_RESOURCES`]: (proto package, kind, why).
pub const NOT_IN_TABLE: &[(&str, &str, &str)] = &[
    (
        "k8s.io.api.core",
        "ComponentStatus",
        "computed on request, never stored",
    ),
    (
        "k8s.io.api.apidiscovery",
        "APIGroupDiscovery",
        "discovery document, never stored",
    ),
    // Alpha in the 1.37 development line; group, resource names and scope are not settled.
    // Their keys still parse (as resources of unknown group).
    ("k8s.io.api.lifecycle", "Eviction", "unreleased alpha"),
    (
        "k8s.io.api.lifecycle",
        "EvictionRequest",
        "unreleased alpha",
    ),
    (
        "k8s.io.api.scheduling",
        "CompositePodGroup",
        "unreleased alpha",
    ),
    ("k8s.io.api.scheduling", "PodGroup", "unreleased alpha"),
    (
        "k8s.io.api.resource",
        "ResourcePoolStatusRequest",
        "unreleased alpha",
    ),
];

/// Kinds the schema can store (a message with `ObjectMeta metadata = 1` and a `<Kind>List`)
/// that neither [`BUILTIN_RESOURCES`] nor [`NOT_IN_TABLE`] lists, as `(proto package,
/// kind)`: what a schema update needs added to the table.
pub fn kinds_missing_from_table(schema: &Schema) -> Vec<(String, String)> {
    let mut missing: Vec<(String, String)> = schema
        .storable_kinds()
        .into_iter()
        .filter(|(package, kind)| {
            !NOT_IN_TABLE
                .iter()
                .any(|(p, k, _)| p == package && k == kind)
        })
        .filter(|(package, kind)| {
            !BUILTIN_RESOURCES.iter().any(|r| {
                r.kind == kind
                    && super::schema::api_package_of_group(r.group).as_deref() == Some(package)
            })
        })
        .collect();
    missing.sort();
    missing.dedup();
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn historical_prefixes_parse_to_api_names() {
        let cases: &[(&str, &str, &str, Option<&str>, &str)] = &[
            (
                "/registry/services/specs/default/kubernetes",
                "",
                "services",
                Some("default"),
                "kubernetes",
            ),
            (
                "/registry/services/endpoints/default/kubernetes",
                "",
                "endpoints",
                Some("default"),
                "kubernetes",
            ),
            ("/registry/minions/node-1", "", "nodes", None, "node-1"),
            (
                "/registry/controllers/ns/rc",
                "",
                "replicationcontrollers",
                Some("ns"),
                "rc",
            ),
            (
                "/registry/ingress/ns/web",
                "networking.k8s.io",
                "ingresses",
                Some("ns"),
                "web",
            ),
            (
                "/registry/deployments/kube-system/coredns",
                "apps",
                "deployments",
                Some("kube-system"),
                "coredns",
            ),
            (
                "/registry/clusterroles/admin",
                "rbac.authorization.k8s.io",
                "clusterroles",
                None,
                "admin",
            ),
            (
                "/registry/ranges/serviceips",
                "",
                "rangeallocations",
                None,
                "serviceips",
            ),
            (
                "/registry/podsecuritypolicy/eks.privileged",
                "policy",
                "podsecuritypolicies",
                None,
                "eks.privileged",
            ),
            (
                "/registry/apiextensions.k8s.io/customresourcedefinitions/widgets.example.com",
                "apiextensions.k8s.io",
                "customresourcedefinitions",
                None,
                "widgets.example.com",
            ),
            (
                "/registry/apiregistration.k8s.io/apiservices/v1.apps",
                "apiregistration.k8s.io",
                "apiservices",
                None,
                "v1.apps",
            ),
            (
                "/registry/example.com/widgets/default/w1",
                "example.com",
                "widgets",
                Some("default"),
                "w1",
            ),
            (
                "/registry/example.com/clusterwidgets/w1",
                "example.com",
                "clusterwidgets",
                None,
                "w1",
            ),
            ("/registry/newthings/ns/x", "", "newthings", Some("ns"), "x"),
        ];
        for (key, group, resource, ns, name) in cases {
            let k = RegistryKey::parse(key.as_bytes()).unwrap();
            assert_eq!(
                (
                    k.group.as_str(),
                    k.resource.as_str(),
                    k.namespace.as_deref(),
                    k.name.as_str()
                ),
                (*group, *resource, *ns, *name),
                "{key}"
            );
            assert_eq!(k.storage_key(), *key, "round trip of {key}");
            assert_eq!(k.to_string(), *key);
            if k.builtin.is_some() || group.contains('.') {
                assert_eq!(storage_key(group, resource, *ns, name).unwrap(), *key);
            }
        }
    }

    #[test]
    fn bad_keys_say_why() {
        for key in [
            &b"/other/pods/ns/x"[..],
            b"/registry/pods/onlyname",
            b"/registry/pods/a/b/c",
            b"/registry/minions/ns/node",
            b"/registry/pods//x",
            b"/registry/x",
            b"/registry/example.com/widgets/a/b/c",
            b"/registry/pods/ns/\xff",
        ] {
            let e = RegistryKey::parse(key).unwrap_err();
            assert!(!e.to_string().is_empty());
        }
        assert!(matches!(
            RegistryKey::parse(b"/other/pods/ns/x"),
            Err(KeyError::NotUnderPrefix { .. })
        ));
        assert!(
            storage_key("", "pods", None, "x").is_err(),
            "pods need a namespace"
        );
        assert!(storage_key("", "nodes", Some("ns"), "x").is_err());
        assert!(storage_key("", "pods", Some("ns"), "a/b").is_err());
    }

    #[test]
    fn other_prefixes_work() {
        let k =
            RegistryKey::parse_with_prefix(b"/kubernetes.io/pods/ns/p", "/kubernetes.io/").unwrap();
        assert_eq!(k.resource, "pods");
        assert_eq!(
            k.storage_key_with_prefix("/kubernetes.io"),
            "/kubernetes.io/pods/ns/p"
        );
    }

    #[test]
    fn the_table_agrees_with_the_schema() {
        let schema = Schema::kubernetes();
        // Every protobuf-stored kind in the table is in the schema, in its group's package.
        for r in BUILTIN_RESOURCES {
            let json_stored = r.group.ends_with("apiextensions.k8s.io")
                || r.group == "apiregistration.k8s.io"
                || r.kind == "PodSecurityPolicy"; // policy/v1beta1, removed in 1.25
            let found = !schema.types_of_kind(r.group, r.kind).is_empty();
            assert_eq!(found, !json_stored, "{}/{} {}", r.group, r.resource, r.kind);
        }
        // Every kind the schema can store is in the table.
        let missing = kinds_missing_from_table(schema);
        assert!(missing.is_empty(), "add to BUILTIN_RESOURCES: {missing:?}");
    }
}
