//! Transforms applied to objects on their way into the target: storage class mapping,
//! image registry rewrites, and JSON patch / merge patch rules chosen by resource,
//! namespace, name and labels. Read from a YAML (or JSON) file; see docs/restore.md.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::options::{LabelSelector, Patterns};
use crate::Error;

/// A transforms file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Transforms {
    /// Old storage class name -> new one, in PVs, PVCs and StatefulSet claim templates.
    pub storage_class_mapping: BTreeMap<String, String>,
    /// Registry (`registry.example.com`, `docker.io`) or repository prefix
    /// (`registry.example.com/team`) -> its replacement, in every container image of
    /// Pods and pod templates.
    pub image_registry_rewrite: BTreeMap<String, String>,
    /// Patch rules, applied in order to the objects their selector matches.
    pub rules: Vec<Rule>,
}

/// Which objects a rule applies to. Every given field must match; an empty selector
/// matches everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Selector {
    /// Resources (`deployments`, `deployments.apps`, a kind, `*`).
    pub resources: Vec<String>,
    /// Namespace globs, matched against the backup's namespace and the mapped one.
    pub namespaces: Vec<String>,
    /// Name globs.
    pub names: Vec<String>,
    /// A label selector (`app=web,tier in (a,b)`).
    pub labels: Option<String>,
}

/// One patch rule: a selector and exactly one of `jsonPatch` or `mergePatch`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Rule {
    /// Which objects.
    pub selector: Selector,
    /// RFC 6902 operations.
    pub json_patch: Option<Value>,
    /// RFC 7386 merge patch.
    pub merge_patch: Option<Value>,
}

const MAX_TRANSFORMS_BYTES: usize = 4 << 20;
const MAX_RULES: usize = 10_000;

impl Transforms {
    /// Parses a transforms file (YAML or JSON).
    pub fn from_yaml(text: &str) -> Result<Transforms, Error> {
        if text.len() > MAX_TRANSFORMS_BYTES {
            return Err(Error::Invalid(
                "transforms file is larger than 4 MiB".into(),
            ));
        }
        let transforms: Transforms =
            serde_yaml::from_str(text).map_err(|e| Error::Invalid(format!("transforms: {e}")))?;
        transforms.compile()?;
        Ok(transforms)
    }

    /// Reads a transforms file.
    pub fn from_file(path: &std::path::Path) -> Result<Transforms, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Transforms::from_yaml(&text).map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))
    }

    /// Checks the rules and compiles their selectors.
    pub(crate) fn compile(&self) -> Result<CompiledTransforms, Error> {
        if self.rules.len() > MAX_RULES {
            return Err(Error::Invalid(format!(
                "transforms: more than {MAX_RULES} rules"
            )));
        }
        let mut rules = Vec::new();
        for (i, rule) in self.rules.iter().enumerate() {
            let what = format!("transforms rule {}", i + 1);
            let patch = match (&rule.json_patch, &rule.merge_patch) {
                (Some(ops), None) => {
                    let ops: json_patch::Patch = serde_json::from_value(ops.clone())
                        .map_err(|e| Error::Invalid(format!("{what}: jsonPatch: {e}")))?;
                    CompiledPatch::Json(ops)
                }
                (None, Some(merge)) => {
                    if !merge.is_object() {
                        return Err(Error::Invalid(format!(
                            "{what}: mergePatch must be a mapping"
                        )));
                    }
                    CompiledPatch::Merge(merge.clone())
                }
                _ => {
                    return Err(Error::Invalid(format!(
                        "{what}: give exactly one of jsonPatch and mergePatch"
                    )));
                }
            };
            rules.push(CompiledRule {
                index: i + 1,
                resources: rule
                    .selector
                    .resources
                    .iter()
                    .map(|r| r.to_ascii_lowercase())
                    .collect(),
                namespaces: Patterns::new(&what, &rule.selector.namespaces)?,
                names: Patterns::new(&what, &rule.selector.names)?,
                labels: rule
                    .selector
                    .labels
                    .as_deref()
                    .map(LabelSelector::parse)
                    .transpose()?,
                patch,
            });
        }
        for (from, to) in self
            .storage_class_mapping
            .iter()
            .chain(self.image_registry_rewrite.iter())
        {
            if from.is_empty() || to.is_empty() {
                return Err(Error::Invalid(
                    "transforms: mapping keys and values must not be empty".into(),
                ));
            }
        }
        Ok(CompiledTransforms {
            storage_classes: self.storage_class_mapping.clone(),
            registries: self.image_registry_rewrite.clone(),
            rules,
        })
    }
}

#[derive(Debug, Clone)]
enum CompiledPatch {
    Json(json_patch::Patch),
    Merge(Value),
}

#[derive(Debug, Clone)]
struct CompiledRule {
    index: usize,
    resources: Vec<String>,
    namespaces: Patterns,
    names: Patterns,
    labels: Option<LabelSelector>,
    patch: CompiledPatch,
}

/// Transforms ready to apply.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledTransforms {
    storage_classes: BTreeMap<String, String>,
    registries: BTreeMap<String, String>,
    rules: Vec<CompiledRule>,
}

/// Who an object is, for selectors.
pub(crate) struct Identity<'a> {
    pub group: &'a str,
    pub resource: &'a str,
    pub kind: &'a str,
    pub source_namespace: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
}

/// Whether a resource filter entry names this type: `*`, plural, `plural.group`, or
/// kind (any case).
pub(crate) fn resource_matches(entry: &str, group: &str, resource: &str, kind: &str) -> bool {
    let entry = entry.to_ascii_lowercase();
    entry == "*"
        || entry == resource
        || entry == kind.to_ascii_lowercase()
        || (!group.is_empty() && entry == format!("{resource}.{group}"))
        || (!group.is_empty() && entry == format!("{}.{group}", kind.to_ascii_lowercase()))
}

impl CompiledTransforms {
    /// Applies every transform to `object`; returns what was done.
    pub(crate) fn apply(
        &self,
        id: &Identity<'_>,
        object: &mut Value,
    ) -> Result<Vec<String>, String> {
        let mut notes = Vec::new();
        if !self.storage_classes.is_empty() {
            self.map_storage_classes(id, object, &mut notes);
        }
        if !self.registries.is_empty() {
            for_each_pod_spec(id.group, id.resource, object, |spec| {
                for list in ["containers", "initContainers", "ephemeralContainers"] {
                    let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
                        continue;
                    };
                    for container in containers {
                        let Some(image) = container.get("image").and_then(Value::as_str) else {
                            continue;
                        };
                        if let Some(new) = rewrite_image(&self.registries, image) {
                            notes.push(format!("image {image} -> {new}"));
                            container["image"] = Value::String(new);
                        }
                    }
                }
            });
        }
        for rule in &self.rules {
            if !rule.selects(id, object) {
                continue;
            }
            match &rule.patch {
                CompiledPatch::Json(ops) => {
                    json_patch::patch(object, ops)
                        .map_err(|e| format!("transforms rule {}: jsonPatch: {e}", rule.index))?;
                }
                CompiledPatch::Merge(merge) => json_patch::merge(object, merge),
            }
            notes.push(format!("transforms rule {} applied", rule.index));
        }
        Ok(notes)
    }

    fn map_storage_classes(&self, id: &Identity<'_>, object: &mut Value, notes: &mut Vec<String>) {
        let map = |slot: Option<&mut Value>, notes: &mut Vec<String>| {
            if let Some(slot) = slot
                && let Some(old) = slot.as_str()
                && let Some(new) = self.storage_classes.get(old)
            {
                notes.push(format!("storage class {old} -> {new}"));
                *slot = Value::String(new.clone());
            }
        };
        match (id.group, id.resource) {
            ("", "persistentvolumes" | "persistentvolumeclaims") => {
                map(
                    object
                        .get_mut("spec")
                        .and_then(|s| s.get_mut("storageClassName")),
                    notes,
                );
                // The beta annotation older clusters still read.
                map(
                    object
                        .get_mut("metadata")
                        .and_then(|m| m.get_mut("annotations"))
                        .and_then(|a| a.get_mut("volume.beta.kubernetes.io/storage-class")),
                    notes,
                );
            }
            ("apps", "statefulsets") => {
                if let Some(templates) = object
                    .get_mut("spec")
                    .and_then(|s| s.get_mut("volumeClaimTemplates"))
                    .and_then(Value::as_array_mut)
                {
                    for template in templates {
                        map(
                            template
                                .get_mut("spec")
                                .and_then(|s| s.get_mut("storageClassName")),
                            notes,
                        );
                    }
                }
            }
            _ => {}
        }
    }
}

impl CompiledRule {
    fn selects(&self, id: &Identity<'_>, object: &Value) -> bool {
        if !self.resources.is_empty()
            && !self
                .resources
                .iter()
                .any(|r| resource_matches(r, id.group, id.resource, id.kind))
        {
            return false;
        }
        if !self.namespaces.is_empty() {
            let hit = |ns: Option<&str>| {
                ns.is_some_and(|ns| self.namespaces.matches(ns).unwrap_or(false))
            };
            if !hit(id.namespace) && !hit(id.source_namespace) {
                return false;
            }
        }
        if self.names.matches(id.name) == Some(false) {
            return false;
        }
        self.labels
            .as_ref()
            .is_none_or(|labels| labels.matches(object))
    }
}

/// Calls `f` with every pod spec of a Pod, pod template holder or CronJob.
pub(crate) fn for_each_pod_spec(
    group: &str,
    resource: &str,
    object: &mut Value,
    mut f: impl FnMut(&mut Value),
) {
    let path: &[&str] = match (group, resource) {
        ("", "pods") => &["spec"],
        ("", "podtemplates") => &["template", "spec"],
        ("", "replicationcontrollers")
        | ("apps" | "extensions", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => &["spec", "template", "spec"],
        ("batch", "cronjobs") => &["spec", "jobTemplate", "spec", "template", "spec"],
        _ => return,
    };
    let mut at = Some(object);
    for key in path {
        at = at.and_then(|v| v.get_mut(*key));
    }
    if let Some(spec) = at
        && spec.is_object()
    {
        f(spec);
    }
}

/// The image with its registry (or repository prefix) replaced, if a rule matches. The
/// longest matching prefix wins; `docker.io` matches images without a registry.
pub(crate) fn rewrite_image(rules: &BTreeMap<String, String>, image: &str) -> Option<String> {
    let first = image.split('/').next().unwrap_or("");
    let has_registry =
        image.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let full = if has_registry {
        image.to_string()
    } else if image.contains('/') {
        format!("docker.io/{image}")
    } else {
        format!("docker.io/library/{image}")
    };
    let mut best: Option<(&String, &String)> = None;
    for (from, to) in rules {
        let from_trimmed = from.trim_end_matches('/');
        let hit = full
            .strip_prefix(from_trimmed)
            .is_some_and(|rest| rest.starts_with('/'));
        if hit && best.is_none_or(|(b, _)| from_trimmed.len() > b.trim_end_matches('/').len()) {
            best = Some((from, to));
        }
    }
    let (from, to) = best?;
    let rest = &full[from.trim_end_matches('/').len()..];
    Some(format!("{}{rest}", to.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn images_are_rewritten_by_longest_prefix() {
        let rules: BTreeMap<String, String> = [
            ("registry.example.com", "mirror.local:5000"),
            ("registry.example.com/team", "team.local"),
            ("docker.io", "hub.local"),
        ]
        .into_iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(
            rewrite_image(&rules, "registry.example.com/web:1.2").as_deref(),
            Some("mirror.local:5000/web:1.2")
        );
        assert_eq!(
            rewrite_image(&rules, "registry.example.com/team/api@sha256:ab").as_deref(),
            Some("team.local/api@sha256:ab")
        );
        assert_eq!(
            rewrite_image(&rules, "nginx:1.25").as_deref(),
            Some("hub.local/library/nginx:1.25")
        );
        assert_eq!(rewrite_image(&rules, "quay.io/x/y"), None);
        assert_eq!(rewrite_image(&rules, "registry.example.community/x"), None);
    }

    #[test]
    fn transforms_file_parses_and_applies() {
        let transforms = Transforms::from_yaml(
            r#"
storageClassMapping: {gp3: standard}
imageRegistryRewrite: {registry.example.com: mirror.local}
rules:
  - selector: {resources: [deployments.apps], namespaces: ["app-*"], labels: "tier=frontend"}
    jsonPatch: [{op: replace, path: /spec/replicas, value: 1}]
  - selector: {names: ["web-*"]}
    mergePatch: {metadata: {annotations: {restored: "yes"}}}
"#,
        )
        .unwrap();
        let compiled = transforms.compile().unwrap();
        let mut deployment = json!({
            "metadata": {"name": "web-0", "namespace": "moved", "labels": {"tier": "frontend"}},
            "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "a", "image": "registry.example.com/web:1"}]}}},
        });
        let id = Identity {
            group: "apps",
            resource: "deployments",
            kind: "Deployment",
            source_namespace: Some("app-000"),
            namespace: Some("moved"),
            name: "web-0",
        };
        let notes = compiled.apply(&id, &mut deployment).unwrap();
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert_eq!(deployment["spec"]["replicas"], 1);
        assert_eq!(deployment["metadata"]["annotations"]["restored"], "yes");
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            "mirror.local/web:1"
        );
        let mut pvc = json!({"metadata": {"name": "d"}, "spec": {"storageClassName": "gp3"}});
        let id = Identity {
            group: "",
            resource: "persistentvolumeclaims",
            kind: "PersistentVolumeClaim",
            source_namespace: None,
            namespace: None,
            name: "d",
        };
        compiled.apply(&id, &mut pvc).unwrap();
        assert_eq!(pvc["spec"]["storageClassName"], "standard");

        assert!(Transforms::from_yaml("rules: [{selector: {}}]").is_err());
        assert!(Transforms::from_yaml("bogus: 1").is_err());
        assert!(Transforms::from_yaml("rules: [{jsonPatch: [{op: frobnicate}]}]").is_err());
    }
}
