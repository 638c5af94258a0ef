//! Patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge
//! patch as `kubectl apply`, `label` and `edit` send it: lists of objects merge by their
//! key (`name`, `containerPort`, `mountPath`, `port`, …), with `$patch: delete|replace`,
//! `$setElementOrder/…` and `$deleteFromPrimitiveList/…`; other lists are replaced.
//! Server-side apply is not supported.

use serde_json::Value;

use super::status::ApiError;

/// The patch formats, by Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json` (applied as a merge patch).
    Strategic,
    /// `application/json-patch+json`.
    Json,
}

impl PatchType {
    /// The patch type of a Content-Type header.
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/apply-patch+yaml" => Err(ApiError::unsupported_media_type(
                "server-side apply is not supported by this server; use a merge patch",
            )),
            other => Err(ApiError::unsupported_media_type(format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {other:?})"
            ))),
        }
    }
}

/// RFC 7386.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            if let Value::Object(map) = target {
                for (key, value) in patch {
                    if value.is_null() {
                        map.remove(key);
                    } else {
                        merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn pointer_parts(path: &str) -> Result<Vec<String>, ApiError> {
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let rest = path
        .strip_prefix('/')
        .ok_or_else(|| ApiError::bad_request(format!("invalid JSON pointer {path:?}")))?;
    Ok(rest
        .split('/')
        .map(|p| p.replace("~1", "/").replace("~0", "~"))
        .collect())
}

fn parent_and_key<'v>(
    document: &'v mut Value,
    path: &str,
) -> Result<(&'v mut Value, String), ApiError> {
    let mut parts = pointer_parts(path)?;
    let last = parts
        .pop()
        .ok_or_else(|| ApiError::bad_request("a JSON patch operation cannot target the root"))?;
    let mut node = document;
    for part in &parts {
        node = match node {
            Value::Object(map) => map.get_mut(part),
            Value::Array(list) => part.parse::<usize>().ok().and_then(|i| list.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| ApiError::bad_request(format!("path {path:?} does not exist")))?;
    }
    Ok((node, last))
}

fn add(document: &mut Value, path: &str, value: Value) -> Result<(), ApiError> {
    let (parent, key) = parent_and_key(document, path)?;
    match parent {
        Value::Object(map) => {
            map.insert(key, value);
            Ok(())
        }
        Value::Array(list) => {
            let index = if key == "-" {
                list.len()
            } else {
                key.parse::<usize>()
                    .ok()
                    .filter(|i| *i <= list.len())
                    .ok_or_else(|| ApiError::bad_request(format!("bad array index in {path:?}")))?
            };
            list.insert(index, value);
            Ok(())
        }
        _ => Err(ApiError::bad_request(format!("cannot add at {path:?}"))),
    }
}

fn remove(document: &mut Value, path: &str) -> Result<Value, ApiError> {
    let (parent, key) = parent_and_key(document, path)?;
    let missing = || ApiError::bad_request(format!("path {path:?} does not exist"));
    match parent {
        Value::Object(map) => map.remove(&key).ok_or_else(missing),
        Value::Array(list) => {
            let index = key
                .parse::<usize>()
                .ok()
                .filter(|i| *i < list.len())
                .ok_or_else(missing)?;
            Ok(list.remove(index))
        }
        _ => Err(missing()),
    }
}

/// RFC 6902.
pub fn json_patch(document: &mut Value, operations: &Value) -> Result<(), ApiError> {
    let operations = operations
        .as_array()
        .ok_or_else(|| ApiError::bad_request("a JSON patch must be an array of operations"))?;
    for operation in operations {
        let op = operation.get("op").and_then(Value::as_str).unwrap_or("");
        let path = operation
            .get("path")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::bad_request("a JSON patch operation needs a path"))?;
        let value = || {
            operation
                .get("value")
                .cloned()
                .ok_or_else(|| ApiError::bad_request(format!("{op} at {path:?} needs a value")))
        };
        let from = || {
            operation
                .get("from")
                .and_then(Value::as_str)
                .ok_or_else(|| ApiError::bad_request(format!("{op} at {path:?} needs from")))
        };
        match op {
            "add" => add(document, path, value()?)?,
            "remove" => {
                remove(document, path)?;
            }
            "replace" => {
                remove(document, path)?;
                add(document, path, value()?)?;
            }
            "move" => {
                let moved = remove(document, from()?)?;
                add(document, path, moved)?;
            }
            "copy" => {
                let copied = document.pointer(from()?).cloned().ok_or_else(|| {
                    ApiError::bad_request(format!("path {path:?} does not exist"))
                })?;
                add(document, path, copied)?;
            }
            "test" => {
                if document.pointer(path) != Some(&value()?) {
                    return Err(ApiError::invalid(
                        "",
                        "Patch",
                        "",
                        vec![super::status::Cause::invalid(
                            path,
                            &value()?,
                            "test operation failed",
                        )],
                    ));
                }
            }
            other => {
                return Err(ApiError::bad_request(format!(
                    "unknown JSON patch operation {other:?}"
                )));
            }
        }
    }
    Ok(())
}

/// Keys lists of objects merge by in a strategic merge patch, in the order tried
/// (`name` for containers, env, volumes…; `containerPort` for container ports;
/// `mountPath` for volume mounts; `port` for Service ports; `ip` for host aliases).
const MERGE_KEYS: &[&str] = &[
    "name",
    "containerPort",
    "mountPath",
    "devicePath",
    "port",
    "ip",
    "type",
    "topologyKey",
];

fn merge_key(items: &[&Value]) -> Option<&'static str> {
    MERGE_KEYS
        .iter()
        .copied()
        .find(|key| !items.is_empty() && items.iter().all(|item| item.get(*key).is_some()))
}

/// Merges a list patch into a list by merge key, or replaces it.
fn strategic_list(target: &mut Value, patch: &[Value]) {
    let target_items: Vec<&Value> = target
        .as_array()
        .map(|t| t.iter().collect())
        .unwrap_or_default();
    let patch_items: Vec<&Value> = patch.iter().collect();
    let all_objects =
        patch.iter().all(Value::is_object) && target_items.iter().all(|t| t.is_object());
    let key = merge_key(
        &patch_items
            .iter()
            .chain(target_items.iter())
            .copied()
            .collect::<Vec<_>>(),
    );
    let (true, Some(key), Some(list)) =
        (all_objects && !patch.is_empty(), key, target.as_array_mut())
    else {
        *target = Value::Array(patch.iter().map(strip_directives).collect());
        return;
    };
    for item in patch {
        let id = item.get(key).cloned();
        let position = list.iter().position(|t| t.get(key).cloned() == id);
        let directive = item.get("$patch").and_then(Value::as_str);
        match (position, directive) {
            (Some(index), Some("delete")) => {
                list.remove(index);
            }
            (_, Some("delete")) => {}
            (Some(index), Some("replace")) => list[index] = strip_directives(item),
            (Some(index), _) => strategic_merge(&mut list[index], item),
            (None, _) => list.push(strip_directives(item)),
        }
    }
}

/// Applies a strategic merge patch.
fn strategic_merge(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        *target = strip_directives(patch);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Default::default());
    }
    let Value::Object(map) = target else { return };
    for (key, value) in patch_map {
        if key.starts_with('$') {
            continue;
        }
        match value {
            Value::Null => {
                map.remove(key);
            }
            Value::Array(items) => {
                strategic_list(map.entry(key.clone()).or_insert(Value::Null), items)
            }
            Value::Object(_) => {
                strategic_merge(map.entry(key.clone()).or_insert(Value::Null), value)
            }
            other => {
                map.insert(key.clone(), other.clone());
            }
        }
    }
    for (key, value) in patch_map {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/")
            && let (Some(Value::Array(list)), Some(remove)) = (map.get_mut(field), value.as_array())
        {
            list.retain(|item| !remove.contains(item));
        }
        if let Some(field) = key.strip_prefix("$setElementOrder/")
            && let (Some(Value::Array(list)), Some(order)) = (map.get_mut(field), value.as_array())
        {
            let key = merge_key(&order.iter().collect::<Vec<_>>());
            let rank = |item: &Value| {
                order
                    .iter()
                    .position(|o| match key {
                        Some(k) => o.get(k) == item.get(k),
                        None => o == item,
                    })
                    .unwrap_or(usize::MAX)
            };
            list.sort_by_key(rank);
        }
    }
}

/// A patch without strategic-merge directives.
fn strip_directives(patch: &Value) -> Value {
    match patch {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, _)| !key.starts_with('$'))
                .map(|(key, value)| (key.clone(), strip_directives(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_directives).collect()),
        other => other.clone(),
    }
}

/// Applies `patch` to `object`.
pub fn apply_patch(kind: PatchType, mut object: Value, patch: &Value) -> Result<Value, ApiError> {
    match kind {
        PatchType::Merge => {
            if !patch.is_object() {
                return Err(ApiError::bad_request("a merge patch must be a JSON object"));
            }
            merge_patch(&mut object, patch);
        }
        PatchType::Strategic => {
            if !patch.is_object() {
                return Err(ApiError::bad_request(
                    "a strategic merge patch must be a JSON object",
                ));
            }
            strategic_merge(&mut object, patch);
        }
        PatchType::Json => json_patch(&mut object, patch)?,
    }
    Ok(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_and_json_patches() {
        let object = json!({"a": {"b": 1, "c": 2}, "l": [1, 2]});
        let merged = apply_patch(
            PatchType::Merge,
            object.clone(),
            &json!({"a": {"b": null, "d": 3}}),
        )
        .unwrap();
        assert_eq!(merged, json!({"a": {"c": 2, "d": 3}, "l": [1, 2]}));
        let patched = apply_patch(
            PatchType::Json,
            object,
            &json!([{"op": "add", "path": "/l/-", "value": 3}, {"op": "replace", "path": "/a/b", "value": 9}]),
        )
        .unwrap();
        assert_eq!(patched, json!({"a": {"b": 9, "c": 2}, "l": [1, 2, 3]}));
        assert!(
            apply_patch(
                PatchType::Json,
                json!({}),
                &json!([{"op": "remove", "path": "/x"}])
            )
            .is_err()
        );
    }

    #[test]
    fn strategic_patches_merge_lists_by_key() {
        let deployment = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox"}]}}},
            "metadata": {"finalizers": ["a", "b"]}});
        // What `kubectl apply` sends when one image changes.
        let patch = json!({"spec": {"template": {"spec": {
            "$setElementOrder/containers": [{"name": "web"}, {"name": "side"}],
            "containers": [{"name": "side", "image": "busybox:1.36"}]}}},
            "metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}});
        let patched = apply_patch(PatchType::Strategic, deployment.clone(), &patch).unwrap();
        assert_eq!(
            patched["spec"]["template"]["spec"]["containers"],
            json!([{"name": "web", "image": "nginx"}, {"name": "side", "image": "busybox:1.36"}])
        );
        assert_eq!(patched["metadata"]["finalizers"], json!(["b"]));
        let delete = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "$patch": "delete"}]}}}});
        let patched = apply_patch(PatchType::Strategic, deployment, &delete).unwrap();
        assert_eq!(
            patched["spec"]["template"]["spec"]["containers"],
            json!([{"name": "side", "image": "busybox"}])
        );
    }
}
