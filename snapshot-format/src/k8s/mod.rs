//! Kubernetes storage encoding: the `k8s\0` protobuf envelope, JSON, `/registry` keys and
//! encryption at rest.
//!
//! kube-apiserver stores built-in objects as `k8s\0` followed by a `runtime.Unknown`
//! {typeMeta {apiVersion, kind}, raw, contentEncoding, contentType} whose `raw` is the typed
//! protobuf (`k8s.io.api.core.v1.Pod`, …); custom resources, CRDs and APIServices as JSON;
//! and, with encryption at rest, `k8s:enc:<provider>:<version>:<key name>:` + ciphertext.
//!
//! [`decode_storage_value`] turns any of these into the API's own JSON — the form
//! `kubectl get -o json` shows, following Kubernetes' JSON conventions rather than proto3's
//! (RFC 3339 times, quantities and int-or-strings as scalars, embedded JSON for
//! `RawExtension`/`FieldsV1`, inline Go structs) — and reports whatever the JSON cannot hold
//! (unknown fields with their bytes, unknown types with their raw bytes) as [`Issue`]s, so
//! nothing is lost silently. [`encode_storage_value`] writes the exact bytes the API server
//! writes. [`keys`] maps `/registry/…` keys to group, resource, namespace and name.
//! [`selector`] parses label selectors as kube-apiserver does and matches objects' labels.
//!
//! The schema is a protobuf descriptor set of `k8s.io/api` and `k8s.io/apimachinery`
//! embedded in the crate ([`Schema::kubernetes`]).
//!
//! ```
//! use snapshot_format::k8s::{decode_storage_value, encode_storage_value, StoredObject};
//! let pod = serde_json::json!({
//!     "kind": "Pod", "apiVersion": "v1",
//!     "metadata": {"name": "web", "namespace": "default",
//!                  "creationTimestamp": "2024-05-01T10:00:00Z"},
//!     "spec": {"containers": [{"name": "web", "image": "nginx"}]},
//! });
//! let stored = encode_storage_value(&pod)?;
//! assert!(stored.starts_with(b"k8s\0"));
//! let StoredObject::Decoded(back) = decode_storage_value(&stored)? else { unreachable!() };
//! assert_eq!(back.object, pod);
//! assert!(back.issues.is_empty());
//! # Ok::<(), snapshot_format::k8s::CodecError>(())
//! ```

mod decode;
mod encode;
pub mod encryption;
mod error;
mod gojson;
pub mod keys;
mod schema;
pub mod selector;
mod storage;
mod time;
mod wire;

pub use encryption::{
    Decrypted, DecryptedObject, EncryptionConfig, EncryptionError, decode_storage_value_with,
};
pub use error::CodecError;
pub use schema::{MessageId, Schema, version_priority};
pub use storage::{
    Codec, DecodedObject, ENCRYPTED_PREFIX, EncryptedValue, Issue, IssueKind, PROTOBUF_PREFIX,
    StorageFormat, StoredObject, decode_storage_value, encode_storage_value,
};
