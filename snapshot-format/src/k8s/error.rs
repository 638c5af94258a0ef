//! Errors of the Kubernetes storage codec: each names the type, the JSON path of the field
//! and, when reading protobuf, the byte offset in the stored value.

/// Why a stored value could not be decoded, or a JSON object could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The protobuf bytes are damaged: truncated, a length past the end, a wrong wire type.
    #[error(
        "corrupt protobuf in {type_name} at {path} (byte {offset} of the value): {problem}",
        path = display_path(path)
    )]
    Protobuf {
        /// Full protobuf name of the message being read, e.g. `k8s.io.api.core.v1.PodSpec`.
        type_name: String,
        /// JSON path of the field being read, e.g. `.spec.containers[0].ports`.
        path: String,
        /// Byte offset in the stored value (counting the `k8s\0` prefix).
        offset: usize,
        /// What is wrong, in words.
        problem: String,
    },
    /// The value starts like a `k8s\0` envelope or JSON but is not a Kubernetes object.
    #[error("not a Kubernetes storage value: {0}")]
    Envelope(String),
    /// A JSON-stored value does not parse.
    #[error("invalid JSON in a stored value: {0}")]
    Json(#[source] serde_json::Error),
    /// A JSON object cannot be written as protobuf: a value of the wrong JSON type, an
    /// unknown field, a malformed time or duration.
    #[error("cannot encode {type_name} at {path}: {problem}", path = display_path(path))]
    Encode {
        /// Full protobuf name of the message being written.
        type_name: String,
        /// JSON path of the offending value.
        path: String,
        /// What is wrong, in words.
        problem: String,
    },
    /// No message in the schema has this apiVersion and kind, so it cannot be written as
    /// protobuf.
    #[error(
        "no protobuf type in the Kubernetes schema for apiVersion {api_version:?} kind {kind:?}"
    )]
    UnknownType {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
    /// The embedded schema (or one given by the caller) is not a usable descriptor set.
    #[error("bad protobuf schema: {0}")]
    Schema(String),
}

fn display_path(path: &str) -> &str {
    if path.is_empty() {
        "the top level"
    } else {
        path
    }
}
