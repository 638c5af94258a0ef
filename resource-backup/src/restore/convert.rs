//! API versions: restore every object at a version the target serves. Objects whose
//! version the target no longer serves are converted where the conversion is known
//! (removed beta APIs), moved to another served version of the same group where the
//! schema is the same, or reported.

use serde_json::{Value, json};

/// What the conversion did.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Converted {
    /// The target group.
    pub group: String,
    /// The target version.
    pub version: String,
    /// What changed, for the plan.
    pub note: String,
}

/// A conversion of an object's fields; returns what changed.
type Conversion = fn(&mut Value) -> Result<Vec<String>, String>;

/// A known conversion from a removed version.
struct Known {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    to_group: &'static str,
    to_version: &'static str,
    /// `None`: the schema is the same, only apiVersion changes.
    convert: Option<Conversion>,
}

const KNOWN: &[Known] = &[
    Known {
        group: "policy",
        version: "v1beta1",
        resource: "poddisruptionbudgets",
        to_group: "policy",
        to_version: "v1",
        convert: Some(pdb_v1beta1),
    },
    Known {
        group: "autoscaling",
        version: "v2beta2",
        resource: "horizontalpodautoscalers",
        to_group: "autoscaling",
        to_version: "v2",
        convert: None,
    },
    Known {
        group: "autoscaling",
        version: "v2beta1",
        resource: "horizontalpodautoscalers",
        to_group: "autoscaling",
        to_version: "v2",
        convert: Some(hpa_v2beta1),
    },
    Known {
        group: "networking.k8s.io",
        version: "v1beta1",
        resource: "ingresses",
        to_group: "networking.k8s.io",
        to_version: "v1",
        convert: Some(ingress_v1beta1),
    },
    Known {
        group: "extensions",
        version: "v1beta1",
        resource: "ingresses",
        to_group: "networking.k8s.io",
        to_version: "v1",
        convert: Some(ingress_v1beta1),
    },
    Known {
        group: "networking.k8s.io",
        version: "v1beta1",
        resource: "ingressclasses",
        to_group: "networking.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "batch",
        version: "v1beta1",
        resource: "cronjobs",
        to_group: "batch",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "extensions",
        version: "v1beta1",
        resource: "deployments",
        to_group: "apps",
        to_version: "v1",
        convert: Some(workload_beta),
    },
    Known {
        group: "extensions",
        version: "v1beta1",
        resource: "daemonsets",
        to_group: "apps",
        to_version: "v1",
        convert: Some(workload_beta),
    },
    Known {
        group: "extensions",
        version: "v1beta1",
        resource: "replicasets",
        to_group: "apps",
        to_version: "v1",
        convert: Some(workload_beta),
    },
    Known {
        group: "extensions",
        version: "v1beta1",
        resource: "networkpolicies",
        to_group: "networking.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "apps",
        version: "v1beta1",
        resource: "deployments",
        to_group: "apps",
        to_version: "v1",
        convert: Some(workload_beta),
    },
    Known {
        group: "apps",
        version: "v1beta1",
        resource: "statefulsets",
        to_group: "apps",
        to_version: "v1",
        convert: Some(workload_beta),
    },
    Known {
        group: "apps",
        version: "v1beta2",
        resource: "deployments",
        to_group: "apps",
        to_version: "v1",
        convert: Some(workload_beta),
    },
    Known {
        group: "apps",
        version: "v1beta2",
        resource: "statefulsets",
        to_group: "apps",
        to_version: "v1",
        convert: Some(workload_beta),
    },
    Known {
        group: "apps",
        version: "v1beta2",
        resource: "daemonsets",
        to_group: "apps",
        to_version: "v1",
        convert: Some(workload_beta),
    },
    Known {
        group: "apps",
        version: "v1beta2",
        resource: "replicasets",
        to_group: "apps",
        to_version: "v1",
        convert: Some(workload_beta),
    },
    Known {
        group: "rbac.authorization.k8s.io",
        version: "v1beta1",
        resource: "roles",
        to_group: "rbac.authorization.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "rbac.authorization.k8s.io",
        version: "v1beta1",
        resource: "rolebindings",
        to_group: "rbac.authorization.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "rbac.authorization.k8s.io",
        version: "v1beta1",
        resource: "clusterroles",
        to_group: "rbac.authorization.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "rbac.authorization.k8s.io",
        version: "v1beta1",
        resource: "clusterrolebindings",
        to_group: "rbac.authorization.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "scheduling.k8s.io",
        version: "v1beta1",
        resource: "priorityclasses",
        to_group: "scheduling.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "storage.k8s.io",
        version: "v1beta1",
        resource: "storageclasses",
        to_group: "storage.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "storage.k8s.io",
        version: "v1beta1",
        resource: "csidrivers",
        to_group: "storage.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "node.k8s.io",
        version: "v1beta1",
        resource: "runtimeclasses",
        to_group: "node.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "coordination.k8s.io",
        version: "v1beta1",
        resource: "leases",
        to_group: "coordination.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "flowcontrol.apiserver.k8s.io",
        version: "v1beta3",
        resource: "flowschemas",
        to_group: "flowcontrol.apiserver.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "flowcontrol.apiserver.k8s.io",
        version: "v1beta3",
        resource: "prioritylevelconfigurations",
        to_group: "flowcontrol.apiserver.k8s.io",
        to_version: "v1",
        convert: None,
    },
    Known {
        group: "flowcontrol.apiserver.k8s.io",
        version: "v1beta2",
        resource: "flowschemas",
        to_group: "flowcontrol.apiserver.k8s.io",
        to_version: "v1",
        convert: None,
    },
];

/// Versions removed with no replacement.
const REMOVED: &[(&str, &str, &str)] = &[(
    "policy",
    "podsecuritypolicies",
    "PodSecurityPolicy was removed in Kubernetes 1.25 with no replacement API (use Pod Security Admission namespace labels)",
)];

/// Converts `object` (read at `group/version`) to a version `serves` accepts.
/// `serves(group, version)` says whether the target serves this resource there.
/// `None`: no conversion needed.
pub(crate) fn to_served(
    group: &str,
    version: &str,
    resource: &str,
    custom: bool,
    object: &mut Value,
    serves: &dyn Fn(&str, &str) -> bool,
    served_versions: &dyn Fn(&str) -> Vec<String>,
) -> Result<Option<Converted>, String> {
    if serves(group, version) {
        return Ok(None);
    }
    if let Some((_, _, why)) = REMOVED
        .iter()
        .find(|(g, r, _)| *g == group && *r == resource)
    {
        return Err(why.to_string());
    }
    if let Some(known) = KNOWN
        .iter()
        .find(|k| k.group == group && k.version == version && k.resource == resource)
        && serves(known.to_group, known.to_version)
    {
        let mut notes = match known.convert {
            Some(convert) => convert(object)?,
            None => Vec::new(),
        };
        let api_version = format!("{}/{}", known.to_group, known.to_version);
        object["apiVersion"] = json!(api_version);
        notes.insert(0, format!("converted {group}/{version} -> {api_version}"));
        return Ok(Some(Converted {
            group: known.to_group.to_string(),
            version: known.to_version.to_string(),
            note: notes.join("; "),
        }));
    }
    // Another served version of the same group: custom resources convert with the
    // `None` strategy (only apiVersion changes, as the API server itself does), and
    // built-in types whose versions share a schema (listed without a conversion above) too.
    let others = served_versions(group);
    let same_schema = custom
        || KNOWN.iter().any(|k| {
            k.group == group
                && k.resource == resource
                && k.convert.is_none()
                && others.iter().any(|o| o == k.to_version)
        });
    if same_schema && let Some(best) = others.first() {
        let api_version = if group.is_empty() {
            best.clone()
        } else {
            format!("{group}/{best}")
        };
        object["apiVersion"] = json!(api_version);
        return Ok(Some(Converted {
            group: group.to_string(),
            version: best.clone(),
            note: format!(
                "apiVersion {group}/{version} is not served; restored as {api_version} (same schema)"
            ),
        }));
    }
    let served = if others.is_empty() {
        "does not serve this resource at all".to_string()
    } else {
        format!("serves it only as {}", others.join(", "))
    };
    Err(format!(
        "{resource} {}{version} is not served by the target, which {served}; no known conversion",
        if group.is_empty() {
            String::new()
        } else {
            format!("{group}/")
        }
    ))
}

/// policy/v1beta1 -> v1: an empty selector selected no pods in v1beta1 and selects
/// every pod in v1; Kubernetes' own conversion keeps the old meaning with a selector
/// that matches nothing.
fn pdb_v1beta1(object: &mut Value) -> Result<Vec<String>, String> {
    let spec = object
        .get_mut("spec")
        .and_then(Value::as_object_mut)
        .ok_or("PodDisruptionBudget without spec")?;
    let empty = match spec.get("selector") {
        None | Some(Value::Null) => true,
        Some(Value::Object(selector)) => selector.values().all(|v| match v {
            Value::Null => true,
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        }),
        Some(_) => false,
    };
    if empty && spec.contains_key("selector") {
        spec.insert(
            "selector".into(),
            json!({"matchExpressions": [{"key": "pdb.kubernetes.io/deprecated-v1beta1-empty-selector-match", "operator": "Exists"}]}),
        );
        return Ok(vec![
            "empty v1beta1 selector kept as one that matches no pods".into(),
        ]);
    }
    Ok(Vec::new())
}

/// autoscaling/v2beta1 -> v2: metric targets moved into `target` / `current`.
fn hpa_v2beta1(object: &mut Value) -> Result<Vec<String>, String> {
    let Some(metrics) = object
        .get_mut("spec")
        .and_then(|s| s.get_mut("metrics"))
        .and_then(Value::as_array_mut)
    else {
        return Ok(Vec::new());
    };
    for metric in metrics {
        let Some(kind) = metric.get("type").and_then(Value::as_str) else {
            continue;
        };
        let key = match kind {
            "Resource" => "resource",
            "Pods" => "pods",
            "Object" => "object",
            "External" => "external",
            "ContainerResource" => "containerResource",
            other => return Err(format!("HPA metric type {other:?} has no v2 form")),
        };
        let Some(source) = metric.get_mut(key).and_then(Value::as_object_mut) else {
            continue;
        };
        let mut target = serde_json::Map::new();
        if let Some(v) = source.remove("targetAverageUtilization") {
            target.insert("type".into(), json!("Utilization"));
            target.insert("averageUtilization".into(), v);
        }
        if let Some(v) = source.remove("targetAverageValue") {
            target.insert("type".into(), json!("AverageValue"));
            target.insert("averageValue".into(), v);
        }
        if let Some(v) = source.remove("targetValue") {
            target.insert("type".into(), json!("Value"));
            target.insert("value".into(), v);
        }
        if let Some(name) = source.remove("metricName") {
            let mut metric_id = json!({"name": name});
            if let Some(selector) = source.remove("metricSelector") {
                metric_id["selector"] = selector;
            }
            source.insert("metric".into(), metric_id);
        }
        if let Some(selector) = source.remove("selector") {
            // Pods/Object metrics named their label selector `selector`.
            if let Some(m) = source.get_mut("metric").and_then(Value::as_object_mut) {
                m.insert("selector".into(), selector);
            }
        }
        if let Some(target_ref) = source.remove("target") {
            source.insert("describedObject".into(), target_ref);
        }
        if !target.is_empty() {
            source.insert("target".into(), Value::Object(target));
        }
    }
    Ok(vec!["metric targets moved into target".into()])
}

/// networking.k8s.io/v1beta1 (and extensions/v1beta1) Ingress -> networking.k8s.io/v1.
fn ingress_v1beta1(object: &mut Value) -> Result<Vec<String>, String> {
    fn backend(old: &mut Value) {
        let Some(map) = old.as_object_mut() else {
            return;
        };
        let name = map.remove("serviceName");
        let port = map.remove("servicePort");
        if let Some(name) = name {
            let port = match port {
                Some(Value::Number(n)) => json!({"number": n}),
                Some(Value::String(s)) => match s.parse::<u64>() {
                    Ok(n) => json!({"number": n}),
                    Err(_) => json!({"name": s}),
                },
                _ => json!({}),
            };
            map.insert("service".into(), json!({"name": name, "port": port}));
        }
    }
    let mut notes = vec!["backends rewritten as service.name/port".to_string()];
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(notes);
    };
    if let Some(mut default) = spec.remove("backend") {
        backend(&mut default);
        spec.insert("defaultBackend".into(), default);
    }
    if let Some(rules) = spec.get_mut("rules").and_then(Value::as_array_mut) {
        for rule in rules {
            let Some(paths) = rule
                .get_mut("http")
                .and_then(|h| h.get_mut("paths"))
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for path in paths {
                if let Some(b) = path.get_mut("backend") {
                    backend(b);
                }
                if let Some(map) = path.as_object_mut()
                    && !map.contains_key("pathType")
                {
                    map.insert("pathType".into(), json!("ImplementationSpecific"));
                    if !notes.iter().any(|n| n.contains("pathType")) {
                        notes.push("pathType defaulted to ImplementationSpecific".into());
                    }
                }
            }
        }
    }
    Ok(notes)
}

/// extensions/v1beta1 and apps/v1beta1/2 workloads -> apps/v1: the selector became
/// required (the old versions defaulted it from the template labels) and rollback
/// fields are gone.
fn workload_beta(object: &mut Value) -> Result<Vec<String>, String> {
    let mut notes = Vec::new();
    let labels = object
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .cloned();
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return Err("workload without spec".into());
    };
    if spec.get("selector").is_none_or(Value::is_null) {
        let labels = labels.ok_or("no selector and no template labels to default it from")?;
        spec.insert("selector".into(), json!({"matchLabels": labels}));
        notes.push("selector defaulted from the template labels".into());
    }
    for gone in ["rollbackTo", "templateGeneration"] {
        if spec.remove(gone).is_some() {
            notes.push(format!("spec.{gone} dropped"));
        }
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(list: &'static [(&'static str, &'static str)]) -> impl Fn(&str, &str) -> bool {
        move |g, v| list.iter().any(|(a, b)| *a == g && *b == v)
    }

    #[test]
    fn removed_versions_convert() {
        let serves = served(&[
            ("policy", "v1"),
            ("networking.k8s.io", "v1"),
            ("autoscaling", "v2"),
        ]);
        let versions = |g: &str| match g {
            "policy" | "networking.k8s.io" => vec!["v1".to_string()],
            "autoscaling" => vec!["v2".to_string(), "v1".to_string()],
            _ => Vec::new(),
        };
        let mut pdb = json!({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "spec": {"minAvailable": 1, "selector": {}}});
        let c = to_served(
            "policy",
            "v1beta1",
            "poddisruptionbudgets",
            false,
            &mut pdb,
            &serves,
            &versions,
        )
        .unwrap()
        .unwrap();
        assert_eq!((c.group.as_str(), c.version.as_str()), ("policy", "v1"));
        assert_eq!(pdb["apiVersion"], "policy/v1");
        assert_eq!(
            pdb["spec"]["selector"]["matchExpressions"][0]["operator"],
            "Exists"
        );

        let mut ingress = json!({"apiVersion": "extensions/v1beta1", "kind": "Ingress", "spec": {
            "backend": {"serviceName": "d", "servicePort": 80},
            "rules": [{"host": "a", "http": {"paths": [{"path": "/", "backend": {"serviceName": "s", "servicePort": "http"}}]}}]}});
        let c = to_served(
            "extensions",
            "v1beta1",
            "ingresses",
            false,
            &mut ingress,
            &serves,
            &versions,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.group, "networking.k8s.io");
        assert_eq!(
            ingress["spec"]["defaultBackend"],
            json!({"service": {"name": "d", "port": {"number": 80}}})
        );
        let path = &ingress["spec"]["rules"][0]["http"]["paths"][0];
        assert_eq!(
            path["backend"],
            json!({"service": {"name": "s", "port": {"name": "http"}}})
        );
        assert_eq!(path["pathType"], "ImplementationSpecific");

        let mut hpa = json!({"apiVersion": "autoscaling/v2beta1", "spec": {"metrics": [
            {"type": "Resource", "resource": {"name": "cpu", "targetAverageUtilization": 80}}]}});
        to_served(
            "autoscaling",
            "v2beta1",
            "horizontalpodautoscalers",
            false,
            &mut hpa,
            &serves,
            &versions,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            hpa["spec"]["metrics"][0]["resource"],
            json!({"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}})
        );

        let mut psp = json!({});
        let err = to_served(
            "policy",
            "v1beta1",
            "podsecuritypolicies",
            false,
            &mut psp,
            &serves,
            &versions,
        )
        .unwrap_err();
        assert!(err.contains("removed"), "{err}");

        let mut custom = json!({"apiVersion": "example.com/v1beta1"});
        let versions2 = |_: &str| vec!["v1".to_string()];
        let c = to_served(
            "example.com",
            "v1beta1",
            "widgets",
            true,
            &mut custom,
            &|_, _| false,
            &versions2,
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.version, "v1");
        assert_eq!(custom["apiVersion"], "example.com/v1");

        let mut unknown = json!({});
        let err = to_served(
            "example.org",
            "v1alpha1",
            "gadgets",
            false,
            &mut unknown,
            &|_, _| false,
            &|_| Vec::new(),
        )
        .unwrap_err();
        assert!(err.contains("not served"), "{err}");
        // Served: untouched.
        let mut fine = json!({"apiVersion": "policy/v1"});
        assert_eq!(
            to_served(
                "policy",
                "v1",
                "poddisruptionbudgets",
                false,
                &mut fine,
                &serves,
                &versions
            )
            .unwrap(),
            None
        );
    }
}
