//! Patches: JSON merge patch (RFC 7386), JSON patch (RFC 6902), and strategic merge
//! patch approximated as a merge patch (lists are replaced, `$patch` directives are not
//! interpreted). Server-side apply is not supported.

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

/// Drops strategic-merge-patch directives (`$setElementOrder/…`, `$retainKeys`,
/// `$deleteFromPrimitiveList/…`, `$patch`), which a plain merge cannot honour.
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
            merge_patch(&mut object, &strip_directives(patch));
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
}
