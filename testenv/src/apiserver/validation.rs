//! The validation that matters for backup and restore: object names, required fields,
//! and fields that may not change after creation.

use serde_json::Value;

use super::discovery::ApiResource;
use super::meta::at_path;
use super::status::Cause;

/// A DNS-1123 label: at most 63 lowercase alphanumerics or '-', alphanumeric at both ends.
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A DNS-1123 subdomain: at most 253 characters, dot-separated labels.
pub fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253 && name.split('.').all(is_dns_label)
}

/// A DNS-1035 label (Service names): a DNS-1123 label starting with a letter.
pub fn is_dns1035_label(name: &str) -> bool {
    is_dns_label(name) && name.starts_with(|c: char| c.is_ascii_lowercase())
}

/// Problems with `name` for `resource`.
pub fn validate_name(resource: &ApiResource, name: &str) -> Vec<Cause> {
    let value = Value::String(name.to_string());
    if name.is_empty() {
        return vec![Cause::required("metadata.name")];
    }
    let (ok, rule) = match (resource.group.as_str(), resource.resource.as_str()) {
        ("", "namespaces") => (
            is_dns_label(name),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        ),
        ("", "services") => (
            is_dns1035_label(name),
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character",
        ),
        // RBAC names are path segments: anything without '/' or '%' and not . or ..
        ("rbac.authorization.k8s.io", _) => (
            !name.contains('/') && !name.contains('%') && name != "." && name != "..",
            "may not contain '/' or '%'",
        ),
        _ => (
            is_dns_subdomain(name),
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        ),
    };
    if ok {
        Vec::new()
    } else {
        vec![Cause::invalid("metadata.name", &value, rule)]
    }
}

fn require(object: &Value, path: &str, causes: &mut Vec<Cause>) {
    let missing = match at_path(object, path) {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    };
    if missing {
        causes.push(Cause::required(path));
    }
}

fn validate_pod_spec(spec: Option<&Value>, prefix: &str, causes: &mut Vec<Cause>) {
    let containers = spec
        .and_then(|s| s.get("containers"))
        .and_then(Value::as_array);
    match containers {
        None => causes.push(Cause::required(format!("{prefix}.containers"))),
        Some(list) if list.is_empty() => {
            causes.push(Cause::required(format!("{prefix}.containers")))
        }
        Some(list) => {
            for (i, container) in list.iter().enumerate() {
                let name = container.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() {
                    causes.push(Cause::required(format!("{prefix}.containers[{i}].name")));
                } else if !is_dns_label(name) {
                    causes.push(Cause::invalid(
                        format!("{prefix}.containers[{i}].name"),
                        &Value::String(name.into()),
                        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
                    ));
                }
                if container
                    .get("image")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::required(format!("{prefix}.containers[{i}].image")));
                }
            }
        }
    }
}

/// Checks a workload's selector against its template labels.
fn validate_selector(object: &Value, causes: &mut Vec<Cause>) {
    let Some(selector) = at_path(object, "spec.selector") else {
        causes.push(Cause::required("spec.selector"));
        return;
    };
    let labels = at_path(object, "spec.template.metadata.labels");
    if let Some(match_labels) = selector.get("matchLabels").and_then(Value::as_object) {
        let all_match = match_labels
            .iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
        if !all_match {
            causes.push(Cause::invalid(
                "spec.template.metadata.labels",
                labels.unwrap_or(&Value::Null),
                "`selector` does not match template `labels`",
            ));
        }
    }
}

/// Required fields and well-formed values of a new or updated object.
pub fn validate_object(resource: &ApiResource, object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if resource.custom {
        return causes;
    }
    match (resource.group.as_str(), resource.resource.as_str()) {
        ("", "pods") => validate_pod_spec(object.get("spec"), "spec", &mut causes),
        ("", "podtemplates") => validate_pod_spec(
            at_path(object, "template.spec"),
            "template.spec",
            &mut causes,
        ),
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") => {
            validate_selector(object, &mut causes);
            validate_pod_spec(
                at_path(object, "spec.template.spec"),
                "spec.template.spec",
                &mut causes,
            );
        }
        ("batch", "jobs") => validate_pod_spec(
            at_path(object, "spec.template.spec"),
            "spec.template.spec",
            &mut causes,
        ),
        ("", "persistentvolumeclaims") => {
            require(object, "spec.accessModes", &mut causes);
            require(object, "spec.resources.requests.storage", &mut causes);
        }
        ("", "persistentvolumes") => {
            require(object, "spec.capacity.storage", &mut causes);
            require(object, "spec.accessModes", &mut causes);
        }
        ("", "services") => {
            let kind = at_path(object, "spec.type")
                .and_then(Value::as_str)
                .unwrap_or("ClusterIP");
            const TYPES: &[&str] = &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"];
            if !TYPES.contains(&kind) {
                causes.push(Cause::not_supported(
                    "spec.type",
                    &Value::String(kind.into()),
                    TYPES,
                ));
            }
            if kind == "ExternalName" {
                require(object, "spec.externalName", &mut causes);
            } else if at_path(object, "spec.clusterIP").and_then(Value::as_str) != Some("None") {
                require(object, "spec.ports", &mut causes);
            }
        }
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            require(object, "roleRef.kind", &mut causes);
            require(object, "roleRef.name", &mut causes);
        }
        ("storage.k8s.io", "storageclasses") => require(object, "provisioner", &mut causes),
        _ => {}
    }
    causes
}

/// Fields an update may not change, as kube-apiserver's strategies forbid.
pub fn validate_update(resource: &ApiResource, old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let immutable = |path: &str, why: &str, causes: &mut Vec<Cause>| {
        if at_path(old, path) != at_path(new, path) {
            causes.push(Cause::invalid(
                path,
                at_path(new, path).unwrap_or(&Value::Null),
                why,
            ));
        }
    };
    match (resource.group.as_str(), resource.resource.as_str()) {
        ("", "services") => {
            let old_ip = at_path(old, "spec.clusterIP");
            let new_ip = at_path(new, "spec.clusterIP");
            // Clearing or changing an allocated IP is refused (unless turning into
            // ExternalName, which releases it).
            let to_external =
                at_path(new, "spec.type").and_then(Value::as_str) == Some("ExternalName");
            if old_ip.is_some() && old_ip != new_ip && !to_external {
                causes.push(Cause::invalid(
                    "spec.clusterIPs[0]",
                    new_ip.unwrap_or(&Value::Null),
                    "may not change once set",
                ));
            }
        }
        ("", "persistentvolumeclaims") => {
            // Only resources.requests may grow; volumeName may be set once by the binder.
            let binding = at_path(old, "spec.volumeName").is_none();
            let strip = |object: &Value| {
                let mut spec = object.get("spec").cloned().unwrap_or(Value::Null);
                if let Some(spec) = spec.as_object_mut() {
                    spec.remove("resources");
                    spec.remove("volumeAttributesClassName");
                    if binding {
                        // The binder may set volumeName once.
                        spec.remove("volumeName");
                    }
                }
                spec
            };
            if strip(old) != strip(new) {
                causes.push(Cause::forbidden(
                    "spec",
                    "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims",
                ));
            }
        }
        ("batch", "jobs") => {
            immutable("spec.selector", "field is immutable", &mut causes);
            let template = |o: &Value| {
                let mut t = at_path(o, "spec.template").cloned().unwrap_or(Value::Null);
                // kube allows changing scheduling directives of suspended jobs only; keep
                // the whole template immutable apart from labels/annotations.
                if let Some(meta) = t.get_mut("metadata").and_then(Value::as_object_mut) {
                    meta.remove("annotations");
                }
                t
            };
            if template(old) != template(new) {
                causes.push(Cause::invalid(
                    "spec.template",
                    &Value::Null,
                    "field is immutable",
                ));
            }
        }
        ("apps", "deployments" | "replicasets" | "daemonsets" | "statefulsets") => {
            immutable("spec.selector", "field is immutable", &mut causes);
        }
        ("", "secrets" | "configmaps") if old.get("immutable") == Some(&Value::Bool(true)) => {
            for field in ["data", "stringData", "binaryData"] {
                if old.get(field) != new.get(field) {
                    causes.push(Cause::forbidden(
                        field,
                        "field is immutable when `immutable` is set",
                    ));
                }
            }
        }
        ("", "persistentvolumes") => {
            let source = |o: &Value| {
                let mut spec = o.get("spec").cloned().unwrap_or(Value::Null);
                if let Some(spec) = spec.as_object_mut() {
                    for mutable in [
                        "capacity",
                        "claimRef",
                        "persistentVolumeReclaimPolicy",
                        "mountOptions",
                        "storageClassName",
                        "nodeAffinity",
                        "accessModes",
                        "volumeAttributesClassName",
                    ] {
                        spec.remove(mutable);
                    }
                }
                spec
            };
            if source(old) != source(new) {
                causes.push(Cause::forbidden(
                    "spec.persistentvolumesource",
                    "spec.persistentvolumesource is immutable after creation",
                ));
            }
        }
        _ => {}
    }
    causes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_names() {
        assert!(is_dns_label("web-1"));
        assert!(!is_dns_label("Web"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
        assert!(is_dns_subdomain("a.b-c.d"));
        assert!(!is_dns_subdomain("a..b"));
        assert!(is_dns1035_label("svc"));
        assert!(!is_dns1035_label("1svc"));
    }
}
