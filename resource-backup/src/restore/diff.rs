//! Comparing a restored object with the live one: what an update writes (the backup's
//! fields merged over the live object) and a unified YAML diff of the change.

use serde_json::{Map, Value};

use super::normalize::prune_empty;

/// The object an update writes: `desired` merged over `live`. Maps merge key by key
/// (a null in `desired` removes the key); everything else — scalars and lists — is
/// replaced. Fields only the live object has (server defaults, allocations) stay.
/// Service ports keep the live node ports where `desired` has none (the target
/// allocated them).
pub(crate) fn merge_over(live: &Value, desired: &Value) -> Value {
    let mut merged = live.clone();
    merge_into(&mut merged, desired);
    merged
}

fn merge_into(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                if value.is_null() {
                    base.remove(key);
                    continue;
                }
                match base.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge_into(existing, value);
                    }
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// Carries the live Service's node ports over to `desired` ports without one (matched
/// by port number and protocol), so an update does not move them.
pub(crate) fn keep_node_ports(live: &Value, desired: &mut Value) {
    let live_ports: Vec<&Map<String, Value>> = live
        .get("spec")
        .and_then(|s| s.get("ports"))
        .and_then(Value::as_array)
        .map(|ports| ports.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default();
    let Some(ports) = desired
        .get_mut("spec")
        .and_then(|s| s.get_mut("ports"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for port in ports {
        let Some(port) = port.as_object_mut() else {
            continue;
        };
        if port.contains_key("nodePort") {
            continue;
        }
        let protocol = |p: &Map<String, Value>| {
            p.get("protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP")
                .to_string()
        };
        if let Some(node_port) = live_ports
            .iter()
            .find(|l| l.get("port") == port.get("port") && protocol(l) == protocol(port))
            .and_then(|l| l.get("nodePort"))
        {
            port.insert("nodePort".into(), node_port.clone());
        }
    }
}

/// Whether two objects are the same once empty values are ignored.
pub(crate) fn equivalent(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    let (mut a, mut b) = (a.clone(), b.clone());
    prune_empty(&mut a);
    prune_empty(&mut b);
    a == b
}

/// A unified diff of two objects as YAML, `live` to `restored`.
pub(crate) fn yaml_diff(live: &Value, restored: &Value) -> String {
    let (mut live, mut restored) = (live.clone(), restored.clone());
    prune_empty(&mut live);
    prune_empty(&mut restored);
    let a = serde_yaml::to_string(&live).unwrap_or_default();
    let b = serde_yaml::to_string(&restored).unwrap_or_default();
    similar::TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header("live", "restored")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_keeps_live_only_fields() {
        let live = json!({"metadata": {"name": "a", "labels": {"x": "1", "server": "y"}}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80, "nodePort": 30001}]}});
        let mut desired = json!({"metadata": {"name": "a", "labels": {"x": "2"}}, "spec": {"ports": [{"port": 80}]}});
        keep_node_ports(&live, &mut desired);
        let merged = merge_over(&live, &desired);
        assert_eq!(
            merged,
            json!({"metadata": {"name": "a", "labels": {"x": "2", "server": "y"}}, "spec": {"clusterIP": "10.0.0.1", "ports": [{"port": 80, "nodePort": 30001}]}})
        );
        assert!(!equivalent(&live, &merged));
        assert!(equivalent(
            &json!({"a": {}, "b": 1}),
            &json!({"b": 1, "c": null})
        ));
        let diff = yaml_diff(&live, &merged);
        assert!(
            diff.contains("-    x: '1'") && diff.contains("+    x: '2'"),
            "{diff}"
        );
    }
}
