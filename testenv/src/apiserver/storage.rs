//! Objects in etcd exactly as kube-apiserver keeps them: keys from
//! `snapshot_format::k8s::keys`, built-in types as `k8s\0` protobuf and CRs/CRDs/APIServices
//! as JSON through the storage codec, optionally encrypted at rest; writes guarded by
//! etcd transactions on `mod_revision` (optimistic concurrency).

use std::sync::Arc;

use etcd_rpc::Client;
use etcd_rpc::proto::{
    Compare, CompareResult, CompareTarget, DeleteRangeRequest, PutRequest, RangeRequest, RequestOp,
    TxnRequest, compare, request_op,
};
use serde_json::Value;
use snapshot_format::k8s::keys::{DEFAULT_PREFIX, storage_key};
use snapshot_format::k8s::{
    Codec, CodecError, EncryptionConfig, StorageFormat, StoredObject, decode_storage_value_with,
};

use super::discovery::ApiResource;
use super::status::ApiError;

/// One object read from etcd.
#[derive(Debug, Clone)]
pub struct StoredItem {
    /// The etcd key.
    pub key: Vec<u8>,
    /// The object (without `resourceVersion`).
    pub object: Value,
    /// The key's mod_revision: the object's resourceVersion.
    pub mod_revision: i64,
}

/// A page of a range read.
#[derive(Debug)]
pub struct Page {
    /// Objects in key order.
    pub items: Vec<StoredItem>,
    /// Whether keys remain after the last one.
    pub more: bool,
    /// Keys in the whole range at that revision.
    pub count: i64,
    /// The revision read.
    pub revision: i64,
}

/// Reads and writes objects in etcd.
#[derive(Clone)]
pub struct Store {
    client: Client,
    encryption: Option<Arc<EncryptionConfig>>,
    codec: Codec<'static>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("encrypted", &self.encryption.is_some())
            .finish()
    }
}

/// The key of one object.
pub fn object_key(
    resource: &ApiResource,
    namespace: Option<&str>,
    name: &str,
) -> Result<String, ApiError> {
    storage_key(&resource.group, &resource.resource, namespace, name)
        .map_err(|error| ApiError::bad_request(error.to_string()))
}

/// The key prefix of a resource's objects, in one namespace or all.
pub fn collection_prefix(resource: &ApiResource, namespace: Option<&str>) -> String {
    // storage_key needs a namespace exactly for namespaced resources; build from a dummy
    // name and cut it off.
    let dummy_ns = if resource.namespaced {
        Some(namespace.unwrap_or("x"))
    } else {
        None
    };
    let key = storage_key(&resource.group, &resource.resource, dummy_ns, "x")
        .unwrap_or_else(|_| format!("{DEFAULT_PREFIX}/{}/x", resource.resource));
    let mut prefix = key[..key.len() - 1].to_string();
    if resource.namespaced && namespace.is_none() {
        // Drop "x/" (the dummy namespace) too.
        prefix.truncate(prefix.len() - 2);
    }
    prefix
}

fn codec_error(error: CodecError) -> ApiError {
    ApiError::bad_request(error.to_string())
}

impl Store {
    /// A store over `client`, encrypting with `encryption` when given.
    pub fn new(client: Client, encryption: Option<EncryptionConfig>) -> Self {
        Store {
            client,
            encryption: encryption.map(Arc::new),
            codec: Codec::kubernetes(),
        }
    }

    /// The etcd client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bytes kube-apiserver would store for `object` at `key`.
    pub fn encode(
        &self,
        resource: &ApiResource,
        key: &str,
        object: &Value,
    ) -> Result<Vec<u8>, ApiError> {
        let format = if resource.json_storage {
            StorageFormat::Json
        } else {
            StorageFormat::Protobuf
        };
        let plain = self.codec.encode_as(object, format).map_err(codec_error)?;
        match &self.encryption {
            Some(config) => {
                let group_resource = if resource.group.is_empty() {
                    resource.resource.clone()
                } else {
                    format!("{}.{}", resource.resource, resource.group)
                };
                config
                    .encrypt(&group_resource, key.as_bytes(), &plain)
                    .map_err(|error| ApiError::internal(format!("encrypting {key}: {error}")))
            }
            None => Ok(plain),
        }
    }

    /// Decodes a stored value.
    pub fn decode(&self, key: &[u8], value: &[u8]) -> Result<Value, ApiError> {
        let printable = String::from_utf8_lossy(key);
        let decrypted = decode_storage_value_with(value, key, self.encryption.as_deref())
            .map_err(|error| ApiError::internal(format!("reading {printable}: {error}")))?;
        match decrypted.object {
            StoredObject::Decoded(decoded) => Ok(decoded.object),
            StoredObject::Encrypted(_) => Err(ApiError::internal(format!(
                "{printable} is encrypted at rest and this server has no key for it"
            ))),
            StoredObject::Unrecognized(_) => Err(ApiError::internal(format!(
                "{printable} holds a value that is not a Kubernetes object"
            ))),
        }
    }

    /// The object at `key`, or `None`.
    pub async fn get(&self, key: &str) -> Result<Option<StoredItem>, ApiError> {
        let Some(kv) = self.client.get(key.as_bytes()).await? else {
            return Ok(None);
        };
        Ok(Some(StoredItem {
            object: self.decode(&kv.key, &kv.value)?,
            key: kv.key,
            mod_revision: kv.mod_revision,
        }))
    }

    /// Puts `value` at `key` if no key exists there. `Ok(None)` if one does.
    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<Option<i64>, ApiError> {
        self.put_if(key, value, CompareTarget::Create, 0).await
    }

    /// Puts `value` at `key` if its mod_revision is still `expected`. `Ok(None)` if not.
    pub async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: i64,
    ) -> Result<Option<i64>, ApiError> {
        self.put_if(key, value, CompareTarget::Mod, expected).await
    }

    async fn put_if(
        &self,
        key: &str,
        value: Vec<u8>,
        target: CompareTarget,
        revision: i64,
    ) -> Result<Option<i64>, ApiError> {
        let union = match target {
            CompareTarget::Create => compare::TargetUnion::CreateRevision(revision),
            _ => compare::TargetUnion::ModRevision(revision),
        };
        let response = self
            .client
            .txn(TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Equal as i32,
                    target: target as i32,
                    key: key.as_bytes().to_vec(),
                    range_end: Vec::new(),
                    target_union: Some(union),
                }],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestPut(PutRequest {
                        key: key.as_bytes().to_vec(),
                        value,
                        ..Default::default()
                    })),
                }],
                failure: Vec::new(),
            })
            .await?;
        Ok(response
            .succeeded
            .then(|| response.header.map_or(0, |h| h.revision)))
    }

    /// Deletes `key` if its mod_revision is still `expected`. Returns whether it did.
    pub async fn delete(&self, key: &str, expected: i64) -> Result<bool, ApiError> {
        let response = self
            .client
            .txn(TxnRequest {
                compare: vec![Compare {
                    result: CompareResult::Equal as i32,
                    target: CompareTarget::Mod as i32,
                    key: key.as_bytes().to_vec(),
                    range_end: Vec::new(),
                    target_union: Some(compare::TargetUnion::ModRevision(expected)),
                }],
                success: vec![RequestOp {
                    request: Some(request_op::Request::RequestDeleteRange(
                        DeleteRangeRequest {
                            key: key.as_bytes().to_vec(),
                            ..Default::default()
                        },
                    )),
                }],
                failure: Vec::new(),
            })
            .await?;
        Ok(response.succeeded)
    }

    /// Keys from `start` (inclusive) below `end`, at `revision` (0: newest), at most
    /// `limit` (0: all).
    pub async fn range(
        &self,
        start: &[u8],
        end: &[u8],
        revision: i64,
        limit: i64,
    ) -> Result<Page, ApiError> {
        let response = self
            .client
            .range(RangeRequest {
                key: start.to_vec(),
                range_end: end.to_vec(),
                revision,
                limit,
                ..Default::default()
            })
            .await
            .map_err(|error| match &error {
                etcd_rpc::Error::Compacted { .. } => ApiError::expired(format!(
                    "The resourceVersion for the provided list is too old: resource version {revision} has been compacted"
                )),
                _ if error.to_string().contains("future revision") => ApiError::timeout(format!(
                    "Too large resource version: {revision}"
                )),
                _ => ApiError::from(error),
            })?;
        let mut items = Vec::with_capacity(response.kvs.len());
        for kv in response.kvs {
            items.push(StoredItem {
                object: self.decode(&kv.key, &kv.value)?,
                key: kv.key,
                mod_revision: kv.mod_revision,
            });
        }
        Ok(Page {
            items,
            more: response.more,
            count: response.count,
            revision: response.header.map_or(0, |h| h.revision),
        })
    }

    /// The current etcd revision.
    pub async fn revision(&self) -> Result<i64, ApiError> {
        let response = self
            .client
            .range(RangeRequest {
                key: b"\0".to_vec(),
                count_only: true,
                ..Default::default()
            })
            .await?;
        Ok(response.header.map_or(0, |h| h.revision))
    }

    /// Deletes every key under `prefix`.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<i64, ApiError> {
        let response = self.client.delete_prefix(prefix.as_bytes()).await?;
        Ok(response.deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::discovery::Discovery;
    use crate::apiserver::profiles::NEWER;

    #[test]
    fn prefixes_follow_kube_apiserver() {
        let discovery = Discovery::builtin(&NEWER);
        let services = discovery.get("", "v1", "services").unwrap();
        assert_eq!(
            collection_prefix(&services, None),
            "/registry/services/specs/"
        );
        assert_eq!(
            collection_prefix(&services, Some("default")),
            "/registry/services/specs/default/"
        );
        let nodes = discovery.get("", "v1", "nodes").unwrap();
        assert_eq!(collection_prefix(&nodes, None), "/registry/minions/");
        let crds = discovery
            .get("apiextensions.k8s.io", "v1", "customresourcedefinitions")
            .unwrap();
        assert_eq!(
            collection_prefix(&crds, None),
            "/registry/apiextensions.k8s.io/customresourcedefinitions/"
        );
    }
}
