//! What to restore and how: filters, namespace mapping and the policy for objects that
//! already exist. Label selectors are [`snapshot_format::k8s::selector`]'s.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

pub use snapshot_format::k8s::selector::LabelSelector;

use super::transform::Transforms;
use crate::Error;

/// What to do with an object that already exists in the target and differs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExistingPolicy {
    /// Leave it; the plan reports a conflict (`--existing none`).
    #[default]
    None,
    /// Merge the backup's fields over it (`--existing update`).
    Update,
    /// Delete it (orphaning its dependents) and create it again (`--existing recreate`).
    /// Namespaces and CRDs are updated instead: deleting them deletes what they hold.
    Recreate,
}

impl std::str::FromStr for ExistingPolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "none" => Ok(ExistingPolicy::None),
            "update" => Ok(ExistingPolicy::Update),
            "recreate" => Ok(ExistingPolicy::Recreate),
            other => Err(Error::Invalid(format!(
                "--existing {other:?}: expected none, update or recreate"
            ))),
        }
    }
}

/// Options of a restore (plan and apply).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RestoreOptions {
    /// Namespaces to restore (globs over the backup's namespace names); empty: all.
    pub include_namespaces: Vec<String>,
    /// Namespaces not to restore (globs).
    pub exclude_namespaces: Vec<String>,
    /// Resources to restore: `deployments`, `deployments.apps`, a kind (`Deployment`,
    /// any case) or `*`; empty: all. Naming a resource that is skipped by default
    /// (events, nodes, endpoints, …) restores it.
    pub include_resources: Vec<String>,
    /// Resources not to restore.
    pub exclude_resources: Vec<String>,
    /// Restore cluster-scoped objects (CRDs, PVs, ClusterRoles, …). PVs follow their
    /// claim's namespace filter either way.
    pub include_cluster_scoped: bool,
    /// Label selector (`app=web,tier in (a,b),!legacy`, as `kubectl -l` and
    /// [`LabelSelector::parse`] take it), applied to every object.
    pub label_selector: Option<String>,
    /// Object names to restore (globs); empty: all.
    pub names: Vec<String>,
    /// Backup namespace -> target namespace.
    pub namespace_mapping: BTreeMap<String, String>,
    /// What to do with objects that exist and differ.
    pub existing: ExistingPolicy,
    /// Restore `status` too (through the status subresource where there is one).
    pub restore_status: bool,
    /// Keep Services' node ports instead of letting the target allocate new ones.
    pub preserve_node_ports: bool,
    /// Keep Services' cluster IPs instead of letting the target allocate new ones.
    pub preserve_cluster_ips: bool,
    /// Restore objects a controller recreates (Pods of ReplicaSets, ReplicaSets of
    /// Deployments, Jobs of CronJobs, …).
    pub include_controller_owned: bool,
    /// Storage class mapping, image registry rewrites and patch rules.
    pub transforms: Transforms,
    /// Requests in flight per wave.
    pub concurrency: usize,
    /// Plan only: write nothing.
    pub dry_run: bool,
    /// Seconds to wait for a CRD to become Established.
    pub crd_timeout_seconds: u64,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        RestoreOptions {
            include_namespaces: Vec::new(),
            exclude_namespaces: Vec::new(),
            include_resources: Vec::new(),
            exclude_resources: Vec::new(),
            include_cluster_scoped: true,
            label_selector: None,
            names: Vec::new(),
            namespace_mapping: BTreeMap::new(),
            existing: ExistingPolicy::None,
            restore_status: false,
            preserve_node_ports: false,
            preserve_cluster_ips: false,
            include_controller_owned: false,
            transforms: Transforms::default(),
            concurrency: 32,
            dry_run: false,
            crd_timeout_seconds: 60,
        }
    }
}

impl RestoreOptions {
    /// The target namespace of a backup namespace.
    pub fn map_namespace<'a>(&'a self, namespace: &'a str) -> &'a str {
        self.namespace_mapping
            .get(namespace)
            .map(String::as_str)
            .unwrap_or(namespace)
    }
}

/// Globs compiled once.
#[derive(Debug, Clone)]
pub(crate) struct Patterns {
    set: Option<GlobSet>,
}

impl Patterns {
    pub(crate) fn new(what: &str, globs: &[String]) -> Result<Patterns, Error> {
        if globs.is_empty() {
            return Ok(Patterns { set: None });
        }
        let mut builder = GlobSetBuilder::new();
        for glob in globs {
            let glob = Glob::new(glob)
                .map_err(|e| Error::Invalid(format!("{what} pattern {glob:?}: {e}")))?;
            builder.add(glob);
        }
        let set = builder
            .build()
            .map_err(|e| Error::Invalid(format!("{what} patterns: {e}")))?;
        Ok(Patterns { set: Some(set) })
    }

    /// Whether any pattern matches (`None`: there are no patterns).
    pub(crate) fn matches(&self, text: &str) -> Option<bool> {
        self.set.as_ref().map(|set| set.is_match(text))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.set.is_none()
    }
}
