//! CustomResourceDefinitions: validation, the status kube-apiserver's CRD controllers set
//! (NamesAccepted, Established, acceptedNames, storedVersions), and registering the
//! served versions in discovery (conversion strategy `None`: every version holds the same
//! JSON, only `apiVersion` differs).

use serde_json::{Value, json};

use super::discovery::{ApiResource, Discovery};
use super::meta::{self, now_rfc3339};
use super::status::Cause;
use super::validation::{is_dns_label, is_dns_subdomain};

fn text<'v>(object: &'v Value, path: &str) -> &'v str {
    meta::at_path(object, path)
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `(group, plural)` of a CRD.
pub fn group_and_plural(crd: &Value) -> Option<(String, String)> {
    let group = text(crd, "spec.group");
    let plural = text(crd, "spec.names.plural");
    (!group.is_empty() && !plural.is_empty()).then(|| (group.to_string(), plural.to_string()))
}

/// Validates a CRD and sets its status.
pub fn prepare(crd: &mut Value) -> Result<(), Vec<Cause>> {
    let mut causes = Vec::new();
    let group = text(crd, "spec.group").to_string();
    let plural = text(crd, "spec.names.plural").to_string();
    let kind = text(crd, "spec.names.kind").to_string();
    let scope = text(crd, "spec.scope").to_string();
    if group.is_empty() {
        causes.push(Cause::required("spec.group"));
    } else if !group.contains('.') || !is_dns_subdomain(&group) {
        causes.push(Cause::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural"));
    } else if !is_dns_label(&plural) {
        causes.push(Cause::invalid(
            "spec.names.plural",
            &json!(plural),
            "a lowercase RFC 1123 label",
        ));
    }
    if kind.is_empty() {
        causes.push(Cause::required("spec.names.kind"));
    }
    if !matches!(scope.as_str(), "Namespaced" | "Cluster") {
        causes.push(Cause::not_supported(
            "spec.scope",
            &json!(scope),
            &["Cluster", "Namespaced"],
        ));
    }
    let expected_name = format!("{plural}.{group}");
    if meta::name(crd) != Some(expected_name.as_str()) {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(meta::name(crd).unwrap_or("")),
            format!("must be spec.names.plural+\".\"+spec.group ({expected_name:?})"),
        ));
    }
    let versions = meta::at_path(crd, "spec.versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::required("spec.versions"));
    }
    let storage: Vec<&str> = versions
        .iter()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").and_then(Value::as_str))
        .collect();
    if !versions.is_empty() && storage.len() != 1 {
        causes.push(Cause::invalid(
            "spec.versions",
            &Value::Null,
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, version) in versions.iter().enumerate() {
        let name = version.get("name").and_then(Value::as_str).unwrap_or("");
        if !is_dns_label(name) {
            causes.push(Cause::invalid(
                format!("spec.versions[{i}].name"),
                &json!(name),
                "a DNS-1035 label",
            ));
        }
    }
    let strategy = text(crd, "spec.conversion.strategy");
    if !strategy.is_empty() && strategy != "None" {
        causes.push(Cause::not_supported(
            "spec.conversion.strategy",
            &json!(strategy),
            &["None"],
        ));
    }
    if !causes.is_empty() {
        return Err(causes);
    }
    let mut accepted = meta::at_path(crd, "spec.names")
        .cloned()
        .unwrap_or(json!({}));
    if accepted.get("singular").is_none() {
        accepted["singular"] = json!(kind.to_ascii_lowercase());
    }
    if accepted.get("listKind").is_none() {
        accepted["listKind"] = json!(format!("{kind}List"));
    }
    crd["spec"]["names"] = accepted.clone();
    let mut stored_versions: Vec<Value> = meta::at_path(crd, "status.storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !stored_versions
        .iter()
        .any(|v| v.as_str() == Some(storage[0]))
    {
        stored_versions.push(json!(storage[0]));
    }
    let now = meta::at_path(crd, "metadata.creationTimestamp")
        .and_then(Value::as_str)
        .map_or_else(now_rfc3339, str::to_string);
    crd["status"] = json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": now,
             "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": now,
             "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"},
        ],
        "acceptedNames": accepted,
        "storedVersions": stored_versions,
    });
    Ok(())
}

/// Registers (or re-registers) the served versions of a CRD in discovery.
pub fn register(discovery: &mut Discovery, crd: &Value) {
    let Some((group, plural)) = group_and_plural(crd) else {
        return;
    };
    discovery.remove(&group, &plural);
    let kind = text(crd, "spec.names.kind").to_string();
    let singular = match text(crd, "spec.names.singular") {
        "" => kind.to_ascii_lowercase(),
        s => s.to_string(),
    };
    let strings = |path: &str| -> Vec<String> {
        meta::at_path(crd, path)
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let versions = meta::at_path(crd, "spec.versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for version in versions {
        if version.get("served").and_then(Value::as_bool) != Some(true) {
            continue;
        }
        let Some(name) = version.get("name").and_then(Value::as_str) else {
            continue;
        };
        discovery.insert(ApiResource {
            group: group.clone(),
            version: name.to_string(),
            resource: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced: text(crd, "spec.scope") == "Namespaced",
            short_names: strings("spec.names.shortNames"),
            categories: strings("spec.names.categories"),
            status_subresource: meta::at_path(&version, "subresources.status").is_some(),
            json_storage: true,
            custom: true,
            schema: meta::at_path(&version, "schema.openAPIV3Schema").cloned(),
            printer_columns: version
                .get("additionalPrinterColumns")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        });
    }
}
