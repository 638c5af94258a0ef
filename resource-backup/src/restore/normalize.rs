//! What a restore leaves out: fields the server owns, types and objects the target's
//! control plane makes itself, and objects a controller recreates.

use serde_json::{Map, Value};

use super::options::RestoreOptions;

/// Deepest JSON nesting accepted from a backup (the API server's own decoder stops at
/// a similar depth); deeper objects are reported, never walked.
pub const MAX_DEPTH: usize = 100;

/// The nesting depth of a value, stopping once it exceeds `limit`.
pub fn depth_exceeds(value: &Value, limit: usize) -> bool {
    // Iterative, so hostile nesting cannot overflow the stack.
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        if depth > limit {
            return true;
        }
        match value {
            Value::Array(items) => stack.extend(items.iter().map(|v| (v, depth + 1))),
            Value::Object(map) => stack.extend(map.values().map(|v| (v, depth + 1))),
            _ => {}
        }
    }
    false
}

/// Types the target's control plane owns: never restored unless named in
/// `include_resources`.
pub(crate) const SKIPPED_TYPES: &[(&str, &str, &str)] = &[
    ("", "nodes", "nodes belong to the target's infrastructure"),
    ("", "events", "events are history, not state"),
    ("events.k8s.io", "events", "events are history, not state"),
    ("", "endpoints", "endpoints are rebuilt from Services"),
    (
        "discovery.k8s.io",
        "endpointslices",
        "endpoint slices are rebuilt from Services",
    ),
    ("", "componentstatuses", "component statuses are computed"),
    (
        "coordination.k8s.io",
        "leases",
        "leases are heartbeats and leader elections of the source",
    ),
    (
        "storage.k8s.io",
        "csinodes",
        "CSI nodes belong to the target's nodes",
    ),
    (
        "storage.k8s.io",
        "volumeattachments",
        "volume attachments belong to the target's nodes",
    ),
    (
        "certificates.k8s.io",
        "certificatesigningrequests",
        "certificate requests are bound to the source's signers",
    ),
    (
        "internal.apiserver.k8s.io",
        "storageversions",
        "storage versions are the API server's own",
    ),
    (
        "resource.k8s.io",
        "resourceslices",
        "resource slices belong to the target's drivers",
    ),
    (
        "networking.k8s.io",
        "ipaddresses",
        "IP addresses are allocated by the target",
    ),
];

/// Kinds whose controllers recreate the objects they own.
const CONTROLLERS: &[&str] = &[
    "Deployment",
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "ReplicationController",
];

/// Why an object is left out by default, if it is.
pub(crate) fn default_skip(
    group: &str,
    resource: &str,
    object: &Value,
    options: &RestoreOptions,
) -> Option<String> {
    let name = object
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let namespace = object
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match (group, resource) {
        ("", "secrets")
            if object.get("type").and_then(Value::as_str)
                == Some("kubernetes.io/service-account-token") =>
        {
            return Some("service account tokens are issued by the target".into());
        }
        ("", "configmaps") if name == "kube-root-ca.crt" => {
            return Some("kube-root-ca.crt is published by the target".into());
        }
        ("", "services") if name == "kubernetes" && namespace == "default" => {
            return Some("the kubernetes Service belongs to the target's API server".into());
        }
        ("apiregistration.k8s.io", "apiservices")
            if object
                .get("spec")
                .and_then(|s| s.get("service"))
                .is_none_or(Value::is_null) =>
        {
            return Some("local API services are registered by the target".into());
        }
        _ => {}
    }
    if !options.include_controller_owned
        && let Some(owners) = owner_references(object)
    {
        for owner in owners {
            let controller = owner.get("controller").and_then(Value::as_bool) == Some(true);
            let kind = owner.get("kind").and_then(Value::as_str).unwrap_or("");
            if controller && CONTROLLERS.contains(&kind) {
                let owner_name = owner.get("name").and_then(Value::as_str).unwrap_or("");
                return Some(format!("recreated by its controller {kind} {owner_name}"));
            }
        }
    }
    None
}

pub(crate) fn owner_references(object: &Value) -> Option<&Vec<Value>> {
    object.get("metadata")?.get("ownerReferences")?.as_array()
}

fn metadata(object: &mut Value) -> Option<&mut Map<String, Value>> {
    object.get_mut("metadata").and_then(Value::as_object_mut)
}

/// Removes what the server owns, as a restore must (and as a comparison with a live
/// object must, on both sides).
pub(crate) fn strip_server_fields(
    group: &str,
    resource: &str,
    object: &mut Value,
    options: &RestoreOptions,
) {
    if let Some(meta) = metadata(object) {
        for field in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "generation",
            "selfLink",
            "managedFields",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            meta.remove(field);
        }
        if meta.get("generateName").is_some() && meta.get("name").is_some() {
            meta.remove("generateName");
        }
    }
    if !options.restore_status
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
    match (group, resource) {
        ("", "services") => {
            let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
                return;
            };
            let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None");
            if !options.preserve_cluster_ips && !headless {
                spec.remove("clusterIP");
                spec.remove("clusterIPs");
            }
            if !options.preserve_node_ports {
                spec.remove("healthCheckNodePort");
                if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                    for port in ports {
                        if let Some(port) = port.as_object_mut() {
                            port.remove("nodePort");
                        }
                    }
                }
            }
        }
        ("", "pods") => {
            if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
                spec.remove("nodeName");
            }
        }
        ("", "persistentvolumes") => {
            if let Some(claim) = object
                .get_mut("spec")
                .and_then(|s| s.get_mut("claimRef"))
                .and_then(Value::as_object_mut)
            {
                claim.remove("uid");
                claim.remove("resourceVersion");
            }
        }
        ("batch", "jobs") => strip_job_controller_uid(object),
        _ => {}
    }
}

/// A Job's generated selector names the source Job's uid; the target generates its own.
fn strip_job_controller_uid(object: &mut Value) {
    const LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];
    let manual = object
        .get("spec")
        .and_then(|s| s.get("manualSelector"))
        .and_then(Value::as_bool)
        == Some(true);
    if !manual && let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        let generated = spec
            .get("selector")
            .and_then(|s| s.get("matchLabels"))
            .and_then(Value::as_object)
            .is_some_and(|m| LABELS.iter().any(|l| m.contains_key(*l)));
        if generated {
            spec.remove("selector");
        }
    }
    for path in [
        &["metadata", "labels"][..],
        &["spec", "template", "metadata", "labels"],
    ] {
        let mut at = Some(&mut *object);
        for key in path {
            at = at.and_then(|v| v.get_mut(*key));
        }
        if let Some(labels) = at.and_then(Value::as_object_mut) {
            for label in LABELS {
                labels.remove(label);
            }
        }
    }
}

/// Removes nulls, empty maps and empty lists, which the API server drops when it
/// stores an object: what comparisons look through.
pub(crate) fn prune_empty(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|_, v| {
                prune_empty(v);
                !is_empty(v)
            });
        }
        Value::Array(items) => items.iter_mut().for_each(prune_empty),
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_fields_are_stripped() {
        let options = RestoreOptions::default();
        let mut service = json!({
            "metadata": {"name": "s", "uid": "u", "resourceVersion": "5", "creationTimestamp": "t", "managedFields": []},
            "spec": {"clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"], "ports": [{"port": 80, "nodePort": 30001}]},
            "status": {"loadBalancer": {}},
        });
        strip_server_fields("", "services", &mut service, &options);
        assert_eq!(
            service,
            json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}})
        );
        let mut headless = json!({"metadata": {"name": "h"}, "spec": {"clusterIP": "None"}});
        strip_server_fields("", "services", &mut headless, &options);
        assert_eq!(headless["spec"]["clusterIP"], "None");

        let mut pv = json!({"metadata": {"name": "p"}, "spec": {"claimRef": {"name": "c", "namespace": "n", "uid": "u", "resourceVersion": "9"}}});
        strip_server_fields("", "persistentvolumes", &mut pv, &options);
        assert_eq!(
            pv["spec"]["claimRef"],
            json!({"name": "c", "namespace": "n"})
        );

        let mut job = json!({"metadata": {"name": "j", "labels": {"controller-uid": "x", "job-name": "j"}},
            "spec": {"selector": {"matchLabels": {"controller-uid": "x"}},
                     "template": {"metadata": {"labels": {"controller-uid": "x", "job-name": "j"}}}}});
        strip_server_fields("batch", "jobs", &mut job, &options);
        assert_eq!(job["spec"].get("selector"), None);
        assert_eq!(
            job["spec"]["template"]["metadata"]["labels"],
            json!({"job-name": "j"})
        );
    }

    #[test]
    fn controller_owned_objects_are_skipped_unless_asked() {
        let pod = json!({"metadata": {"name": "p", "ownerReferences": [{"kind": "ReplicaSet", "name": "rs", "controller": true}]}});
        let mut options = RestoreOptions::default();
        assert!(default_skip("", "pods", &pod, &options).is_some());
        options.include_controller_owned = true;
        assert!(default_skip("", "pods", &pod, &options).is_none());
        let token =
            json!({"type": "kubernetes.io/service-account-token", "metadata": {"name": "t"}});
        assert!(default_skip("", "secrets", &token, &options).is_some());
    }

    #[test]
    fn depth_is_bounded() {
        let mut deep = json!(1);
        for _ in 0..10_000 {
            deep = Value::Array(vec![deep]);
        }
        assert!(depth_exceeds(&deep, MAX_DEPTH));
        assert!(!depth_exceeds(&json!({"a": [1, {"b": 2}]}), MAX_DEPTH));
        // Dropping a deep value must not overflow the stack either.
        let mut value = deep;
        while let Value::Array(mut items) = value {
            value = items.pop().unwrap_or(Value::Null);
        }
    }
}
