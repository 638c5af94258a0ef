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

/// Checks `value` at `path` against a structural OpenAPI v3 schema: types, `required`,
/// `enum`, `minimum`/`maximum`, `maxLength`, `minItems`/`maxItems`, through
/// `properties`, `additionalProperties` and `items`. Unknown fields are kept (no
/// pruning).
pub fn validate_schema(value: &Value, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    let field = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    let expected = schema.get("type").and_then(Value::as_str);
    let int_or_string = schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
    let type_ok = match (expected, value) {
        (None, _) | (_, Value::Null) => true,
        (Some(_), Value::String(_) | Value::Number(_)) if int_or_string => true,
        (Some("object"), Value::Object(_))
        | (Some("array"), Value::Array(_))
        | (Some("string"), Value::String(_))
        | (Some("boolean"), Value::Bool(_))
        | (Some("number"), Value::Number(_)) => true,
        (Some("integer"), Value::Number(n)) => n.is_i64() || n.is_u64(),
        _ => false,
    };
    if !type_ok {
        let shown = match value {
            Value::Object(_) => "object",
            Value::Array(_) => "array",
            Value::String(_) => "string",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::Null => "null",
        };
        causes.push(Cause::invalid(
            path,
            &Value::String(shown.into()),
            format!(
                "{path} in body must be of type {}: {shown:?}",
                expected.unwrap_or("")
            ),
        ));
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !value.is_null()
        && !options.contains(value)
    {
        let supported: Vec<String> = options
            .iter()
            .map(|o| o.as_str().map_or_else(|| o.to_string(), str::to_string))
            .collect();
        let supported: Vec<&str> = supported.iter().map(String::as_str).collect();
        causes.push(Cause::not_supported(path, value, &supported));
    }
    if let Some(number) = value.as_f64() {
        if let Some(minimum) = schema.get("minimum").and_then(Value::as_f64)
            && number < minimum
        {
            causes.push(Cause::invalid(
                path,
                value,
                format!("{path} in body should be greater than or equal to {minimum}"),
            ));
        }
        if let Some(maximum) = schema.get("maximum").and_then(Value::as_f64)
            && number > maximum
        {
            causes.push(Cause::invalid(
                path,
                value,
                format!("{path} in body should be less than or equal to {maximum}"),
            ));
        }
    }
    if let (Some(text), Some(max)) = (
        value.as_str(),
        schema.get("maxLength").and_then(Value::as_u64),
    ) && text.chars().count() as u64 > max
    {
        causes.push(Cause {
            reason: "FieldValueTooLong",
            field: path.to_string(),
            message: format!("Too long: may not be more than {max} bytes"),
        });
    }
    match value {
        Value::Object(map) => {
            for required in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = required.as_str()
                    && map.get(name).is_none_or(Value::is_null)
                {
                    causes.push(Cause::required(field(name)));
                }
            }
            let properties = schema.get("properties").and_then(Value::as_object);
            for (name, child) in map {
                if path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata") {
                    continue;
                }
                let child_schema = properties
                    .and_then(|p| p.get(name))
                    .or_else(|| schema.get("additionalProperties").filter(|a| a.is_object()));
                if let Some(child_schema) = child_schema {
                    validate_schema(child, child_schema, &field(name), causes);
                }
            }
        }
        Value::Array(items) => {
            let count = items.len() as u64;
            if let Some(min) = schema.get("minItems").and_then(Value::as_u64)
                && count < min
            {
                causes.push(Cause::invalid(
                    path,
                    value,
                    format!("{path} in body should have at least {min} items"),
                ));
            }
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64)
                && count > max
            {
                causes.push(Cause {
                    reason: "FieldValueTooMany",
                    field: path.to_string(),
                    message: format!("Too many: {count}: must have at most {max} items"),
                });
            }
            if let Some(item_schema) = schema.get("items") {
                for (index, item) in items.iter().enumerate() {
                    validate_schema(item, item_schema, &format!("{path}[{index}]"), causes);
                }
            }
        }
        _ => {}
    }
}

/// Required fields and well-formed values of a new or updated object.
pub fn validate_object(resource: &ApiResource, object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if resource.custom {
        if let Some(schema) = &resource.schema {
            validate_schema(object, schema, "", &mut causes);
        }
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
    fn custom_resources_follow_their_schema() {
        let schema = serde_json::json!({"type": "object", "required": ["spec"], "properties": {
            "spec": {"type": "object", "required": ["size"], "properties": {
                "size": {"type": "integer", "minimum": 1, "maximum": 10},
                "color": {"type": "string", "enum": ["red", "blue"]},
                "tags": {"type": "array", "maxItems": 2, "items": {"type": "string"}}}}}});
        let check = |object: serde_json::Value| {
            let mut causes = Vec::new();
            validate_schema(&object, &schema, "", &mut causes);
            causes.into_iter().map(|c| c.field).collect::<Vec<_>>()
        };
        assert!(check(serde_json::json!({"metadata": {"name": "x"}, "spec": {"size": 3, "color": "red", "other": 1}})).is_empty());
        assert_eq!(check(serde_json::json!({"metadata": {}})), ["spec"]);
        assert_eq!(
            check(serde_json::json!({"spec": {"color": "green"}})),
            ["spec.size", "spec.color"]
        );
        assert_eq!(
            check(serde_json::json!({"spec": {"size": "3"}})),
            ["spec.size"]
        );
        assert_eq!(
            check(serde_json::json!({"spec": {"size": 11, "tags": ["a", 1, "c"]}})),
            ["spec.size", "spec.tags", "spec.tags[1]"]
        );
    }

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
