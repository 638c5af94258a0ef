//! Label selectors (`app=web,tier!=db,env in (a,b),!legacy`, the parser shared with the
//! rest of Salvor: [`snapshot_format::k8s::selector`]) and field selectors
//! (`metadata.name=x`, `metadata.namespace!=y`), parsed as kube-apiserver parses them.

use serde_json::Value;

use super::meta::at_path;
use super::status::ApiError;

pub use snapshot_format::k8s::selector::LabelSelector;
use snapshot_format::k8s::selector::SelectorError;

impl From<SelectorError> for ApiError {
    /// kube-apiserver answers 400 BadRequest to a `labelSelector` that does not parse.
    fn from(error: SelectorError) -> Self {
        ApiError::bad_request(error.to_string())
    }
}

/// A parsed field selector: (field, value, equal?) terms, all of which must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector(Vec<(String, String, bool)>);

/// Fields every resource can be selected by, plus a few well-known ones.
const SELECTABLE_FIELDS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "type",
    "involvedObject.name",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "status.podIP",
    "status.nominatedNodeName",
    "spec.unschedulable",
    "spec.signerName",
];

impl FieldSelector {
    /// Parses a selector, rejecting fields it cannot select on.
    pub fn parse(text: &str) -> Result<Self, ApiError> {
        let mut terms = Vec::new();
        if text.trim().is_empty() {
            return Ok(FieldSelector(terms));
        }
        for part in text.split(',') {
            let (field, value, equal) = if let Some((f, v)) = part.split_once("!=") {
                (f, v, false)
            } else if let Some((f, v)) = part.split_once("==") {
                (f, v, true)
            } else if let Some((f, v)) = part.split_once('=') {
                (f, v, true)
            } else {
                return Err(ApiError::bad_request(format!(
                    "invalid selector: {text:?}; can't understand {part:?}"
                )));
            };
            let field = field.trim();
            if !SELECTABLE_FIELDS.contains(&field) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {field}"
                )));
            }
            terms.push((field.to_string(), value.trim().to_string(), equal));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether the selector has no term.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The name `metadata.name=` pins, if any (lets a list read one key).
    pub fn exact_name(&self) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _, equal)| f == "metadata.name" && *equal)
            .map(|(_, v, _)| v.as_str())
    }

    /// Whether `object` matches.
    pub fn matches(&self, object: &Value) -> bool {
        self.0.iter().all(|(field, value, equal)| {
            // Field values compare as text: `spec.unschedulable=true` matches a boolean.
            let actual = match at_path(object, field) {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Bool(b)) => b.to_string(),
                Some(Value::Number(n)) => n.to_string(),
                _ => String::new(),
            };
            (actual == *value) == *equal
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn field_selectors() {
        let pod = json!({"metadata": {"name": "a", "namespace": "ns"}});
        assert!(
            FieldSelector::parse("metadata.name=a")
                .unwrap()
                .matches(&pod)
        );
        assert!(
            !FieldSelector::parse("metadata.namespace!=ns")
                .unwrap()
                .matches(&pod)
        );
        assert!(FieldSelector::parse("spec.bogus=1").is_err());
        let node = json!({"metadata": {"name": "n"}, "spec": {"unschedulable": true}});
        assert!(
            FieldSelector::parse("spec.unschedulable=true")
                .unwrap()
                .matches(&node)
        );
        assert!(
            FieldSelector::parse("spec.unschedulable!=true")
                .unwrap()
                .matches(&json!({}))
        );
    }
}
