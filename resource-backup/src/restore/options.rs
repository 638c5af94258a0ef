//! What to restore and how: filters, namespace mapping, the policy for objects that
//! already exist, and label selectors.

use std::collections::BTreeMap;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    /// Label selector (`app=web,tier in (a,b),!legacy`), applied to every object.
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

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector, as `kubectl -l` takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

const MAX_SELECTOR_LEN: usize = 4096;

impl LabelSelector {
    /// Parses `a=b,c!=d,e in (f,g),h notin (i),j,!k`.
    pub fn parse(text: &str) -> Result<LabelSelector, Error> {
        if text.len() > MAX_SELECTOR_LEN {
            return Err(Error::Invalid("label selector is too long".into()));
        }
        let bad = |why: &str| Error::Invalid(format!("label selector {text:?}: {why}"));
        let mut requirements = Vec::new();
        // Split on commas outside parentheses.
        let mut parts = Vec::new();
        let (mut depth, mut start) = (0usize, 0usize);
        for (i, c) in text.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.checked_sub(1).ok_or_else(|| bad("unbalanced ')'"))?,
                ',' if depth == 0 => {
                    parts.push(&text[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if depth != 0 {
            return Err(bad("unbalanced '('"));
        }
        parts.push(&text[start..]);
        for part in parts {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let key_ok = |k: &str| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
            };
            let requirement = if let Some(key) = part.strip_prefix('!') {
                Requirement::NotExists(key.trim().to_string())
            } else if let Some((key, value)) = part.split_once("!=") {
                Requirement::NotEquals(key.trim().to_string(), value.trim().to_string())
            } else if let Some((key, value)) = part.split_once("==") {
                Requirement::Equals(key.trim().to_string(), value.trim().to_string())
            } else if let Some((key, value)) = part.split_once('=') {
                Requirement::Equals(key.trim().to_string(), value.trim().to_string())
            } else if let Some((key, rest)) = split_word(part, "notin") {
                Requirement::NotIn(key, set_values(rest).ok_or_else(|| bad("bad set"))?)
            } else if let Some((key, rest)) = split_word(part, "in") {
                Requirement::In(key, set_values(rest).ok_or_else(|| bad("bad set"))?)
            } else {
                Requirement::Exists(part.to_string())
            };
            let key = match &requirement {
                Requirement::Equals(k, _)
                | Requirement::NotEquals(k, _)
                | Requirement::In(k, _)
                | Requirement::NotIn(k, _)
                | Requirement::Exists(k)
                | Requirement::NotExists(k) => k,
            };
            if !key_ok(key) {
                return Err(bad(&format!("invalid key {key:?}")));
            }
            requirements.push(requirement);
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether an object's labels match.
    pub fn matches(&self, labels: Option<&serde_json::Map<String, Value>>) -> bool {
        let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => get(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => get(k) != Some(v.as_str()),
            Requirement::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::NotIn(k, vs) => !get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
            Requirement::Exists(k) => get(k).is_some(),
            Requirement::NotExists(k) => get(k).is_none(),
        })
    }

    /// A selector from `matchLabels`-style pairs.
    pub fn from_map(map: &BTreeMap<String, String>) -> LabelSelector {
        LabelSelector {
            requirements: map
                .iter()
                .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
                .collect(),
        }
    }
}

/// `key word (…)` -> (key, "(…)").
fn split_word<'a>(part: &'a str, word: &str) -> Option<(String, &'a str)> {
    let mut pieces = part.splitn(2, char::is_whitespace);
    let key = pieces.next()?.trim();
    let rest = pieces.next()?.trim_start();
    let rest = rest.strip_prefix(word)?;
    if !rest.trim_start().starts_with('(') {
        return None;
    }
    Some((key.to_string(), rest.trim()))
}

fn set_values(text: &str) -> Option<Vec<String>> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    Some(
        inner
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors() {
        let labels = json!({"app": "web", "tier": "frontend"});
        let labels = labels.as_object();
        let ok = |s: &str| LabelSelector::parse(s).map(|sel| sel.matches(labels));
        assert!(ok("app=web").unwrap());
        assert!(ok("app==web,tier").unwrap());
        assert!(!ok("app!=web").unwrap());
        assert!(ok("tier in (frontend, backend)").unwrap());
        assert!(!ok("tier notin (frontend)").unwrap());
        assert!(ok("!legacy").unwrap());
        assert!(!ok("legacy").unwrap());
        assert!(ok("").unwrap());
        assert!(LabelSelector::parse("a in (b").is_err());
        assert!(LabelSelector::parse("a b=c").is_err());
        assert!(LabelSelector::parse(&"x".repeat(10_000)).is_err());
    }
}
