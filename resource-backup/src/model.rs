//! The vocabulary shared by backup and restore: resource types and the objects of a
//! backup.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A group/version/resource: where objects of one type are served.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Gvr {
    /// API group; empty for the core group.
    pub group: String,
    /// API version within the group (`v1`, `v1beta1`).
    pub version: String,
    /// Plural resource name (`deployments`).
    pub resource: String,
}

impl Gvr {
    /// A gvr from its parts.
    pub fn new(group: &str, version: &str, resource: &str) -> Gvr {
        Gvr {
            group: group.to_string(),
            version: version.to_string(),
            resource: resource.to_string(),
        }
    }

    /// `apiVersion` as objects carry it: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Group-qualified resource as kubectl spells it: `deployments.apps`, `pods`.
    pub fn group_resource(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }

    /// The URL path of the collection, all namespaces or one.
    pub fn collection_path(&self, namespace: Option<&str>) -> String {
        let base = if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        };
        match namespace {
            Some(ns) => format!("{base}/namespaces/{ns}/{}", self.resource),
            None => format!("{base}/{}", self.resource),
        }
    }
}

impl fmt::Display for Gvr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}/{}", self.resource, self.version)
        } else {
            write!(f, "{}.{}/{}", self.resource, self.group, self.version)
        }
    }
}

/// One resource type a cluster serves, as discovery describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceType {
    /// Where it is served.
    pub gvr: Gvr,
    /// Its kind (`Deployment`).
    pub kind: String,
    /// Namespaced (true) or cluster-scoped.
    pub namespaced: bool,
    /// Verbs discovery lists for it.
    pub verbs: Vec<String>,
    /// Whether `version` is the group's preferred version.
    pub preferred: bool,
}

impl ResourceType {
    /// Whether the type supports a verb.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

/// One object of a backup, exactly as the API returned it.
#[derive(Debug, Clone, PartialEq)]
pub struct BackupItem {
    /// The type and the version it was read at.
    pub gvr: Gvr,
    /// Its kind.
    pub kind: String,
    /// Namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// The object (apiVersion, kind, metadata, spec, status, ...).
    pub object: serde_json::Value,
}

/// Where a restore reads the objects it restores: a backup in a repository, or
/// anything else that yields objects by type.
pub trait ObjectSource: Send + Sync {
    /// The types the source holds objects of, with their scope.
    fn resource_types(&self) -> Vec<ResourceType>;

    /// Every object of one type (as listed by `resource_types`).
    fn objects(
        &self,
        gvr: &Gvr,
    ) -> impl std::future::Future<Output = Result<Vec<BackupItem>, crate::Error>> + Send;
}
