//! Encryption at rest as kube-apiserver does it: the `EncryptionConfiguration` file and its
//! `aescbc`, `aesgcm`, `secretbox`, `identity` and `kms` providers.
//!
//! An encrypted value in etcd is `k8s:enc:<provider>:v1:<key name>:` followed by:
//!
//! | provider    | after the prefix                                              | authenticated data |
//! |-------------|---------------------------------------------------------------|--------------------|
//! | `aescbc`    | 16-byte IV, AES-CBC of the value with PKCS#7 padding          | none               |
//! | `aesgcm`    | 12-byte nonce, AES-GCM ciphertext with the 16-byte tag last   | the etcd key       |
//! | `secretbox` | 24-byte nonce, NaCl secretbox (16-byte Poly1305 tag first)    | none               |
//! | `kms` v1    | `k8s:enc:kms:v1:<plugin>:`, 2-byte DEK length, DEK, data      | (plugin's)         |
//! | `kms` v2    | `k8s:enc:kms:v2:<plugin>:`, protobuf `EncryptedObject`        | (plugin's)         |
//!
//! AES keys are 16, 24 or 32 bytes; secretbox keys 32. `aesgcm` authenticates the full etcd
//! key (`/registry/secrets/default/db`, with the API server's `--etcd-prefix`), so a value
//! copied under another key does not decrypt; `secretbox` and `aescbc` ignore the key, as
//! in kube-apiserver. `identity` stores plaintext. KMS values need the KMS plugin, which only
//! a running API server can call: reading them reports which plugin (and, for v2, which key
//! id) is needed.
//!
//! Reading ([`EncryptionConfig::decrypt`]) tries every key of the configuration whose
//! provider and name match the value's prefix, in file order, like kube-apiserver does for
//! the keys of one resource (a recovery tool reads what any entry can read; a value without
//! the `k8s:enc:` prefix is returned as plaintext). Writing ([`EncryptionConfig::encrypt`])
//! uses the first key of the first provider configured for the resource, the key
//! kube-apiserver writes with, and produces values it reads.
//!
//! Secrets never appear in `Debug` output or errors.
//!
//! ```
//! use snapshot_format::k8s::encryption::{Decrypted, EncryptionConfig, ProviderKind};
//! let config = EncryptionConfig::from_slice(br#"
//! apiVersion: apiserver.config.k8s.io/v1
//! kind: EncryptionConfiguration
//! resources:
//!   - resources: [secrets]
//!     providers:
//!       - aesgcm:
//!           keys:
//!             - name: key1
//!               secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
//!       - identity: {}
//! "#)?;
//! let key = b"/registry/secrets/default/db";
//! let stored = config.encrypt("secrets", key, b"k8s\0...")?;
//! assert!(stored.starts_with(b"k8s:enc:aesgcm:v1:key1:"));
//! let Decrypted::WithKey { key: used, plaintext } = config.decrypt(key, &stored)? else {
//!     unreachable!()
//! };
//! assert_eq!((used.provider, used.key_name.as_str()), (ProviderKind::AesGcm, "key1"));
//! assert_eq!(plaintext, b"k8s\0...");
//! // AES-GCM authenticates the etcd key: the same value under another key is rejected.
//! assert!(config.decrypt(b"/registry/secrets/default/other", &stored).is_err());
//! # Ok::<(), snapshot_format::k8s::encryption::EncryptionError>(())
//! ```

use std::fmt;
use std::path::{Path, PathBuf};

use aes_gcm::aead::consts::U12;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::{Aes128, Aes192, Aes256};
use cbc::cipher::block_padding::NoPadding;
use cbc::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit};
use prost::Message as _;
use zeroize::Zeroize;

use super::keys::RegistryKey;
use super::{CodecError, ENCRYPTED_PREFIX, StoredObject, decode_storage_value};

const AES_BLOCK: usize = 16;
const AES_KEY_SIZES: &[usize] = &[16, 24, 32];
const GCM_NONCE: usize = 12;
const GCM_TAG: usize = 16;
const SECRETBOX_NONCE: usize = 24;
const SECRETBOX_TAG: usize = 16;
const SECRETBOX_KEY_SIZES: &[usize] = &[32];

const API_VERSION: &str = "apiserver.config.k8s.io/v1";
const KIND: &str = "EncryptionConfiguration";
const LEGACY_API_VERSION: &str = "v1";
const LEGACY_KIND: &str = "EncryptionConfig";

/// An encryption provider of kube-apiserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// AES-CBC with PKCS#7 padding (`aescbc`).
    AesCbc,
    /// AES-GCM (`aesgcm`).
    AesGcm,
    /// XSalsa20-Poly1305, NaCl secretbox (`secretbox`).
    Secretbox,
    /// No encryption (`identity`).
    Identity,
    /// Envelope encryption through a KMS plugin (`kms`).
    Kms,
}

impl ProviderKind {
    /// The provider's name in the configuration and in the value prefix (`aescbc`).
    pub fn name(self) -> &'static str {
        match self {
            ProviderKind::AesCbc => "aescbc",
            ProviderKind::AesGcm => "aesgcm",
            ProviderKind::Secretbox => "secretbox",
            ProviderKind::Identity => "identity",
            ProviderKind::Kms => "kms",
        }
    }

    /// The prefix of values this provider writes with the key `key_name` (`aescbc`, `aesgcm`,
    /// `secretbox`; KMS prefixes also carry the API version, see [`KmsProvider::prefix`]).
    fn key_prefix(self, key_name: &str) -> String {
        format!("k8s:enc:{}:v1:{key_name}:", self.name())
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A resource as the configuration names it: `secrets`, `deployments.apps`, `*.apps`
/// (every resource of a group), `*.` (every core resource), `*.*` (everything).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct GroupResource {
    /// API group, `""` for core, `*` for any.
    pub group: String,
    /// Plural resource name, `*` for any.
    pub resource: String,
}

impl GroupResource {
    /// A group and resource.
    pub fn new(group: impl Into<String>, resource: impl Into<String>) -> Self {
        GroupResource {
            group: group.into(),
            resource: resource.into(),
        }
    }

    /// Parses `resource[.group]` as kube-apiserver does: the group is everything after the
    /// first dot.
    pub fn parse(s: &str) -> Self {
        match s.split_once('.') {
            Some((resource, group)) => GroupResource::new(group, resource),
            None => GroupResource::new("", s),
        }
    }

    /// The `*.<group>` entry that covers this resource.
    fn any_in_group(&self) -> GroupResource {
        GroupResource::new(self.group.clone(), "*")
    }

    fn any() -> GroupResource {
        GroupResource::new("*", "*")
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.group.as_str(), self.resource.as_str()) {
            ("", "*") => f.write_str("*."),
            ("", resource) => f.write_str(resource),
            (group, resource) => write!(f, "{resource}.{group}"),
        }
    }
}

/// Key material from the configuration. Never printed; zeroed when dropped.
#[derive(Clone)]
pub struct SecretKey(Vec<u8>);

impl SecretKey {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty key (never the case in a parsed configuration).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(<redacted, {} bytes>)", self.0.len())
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// A named key of an `aescbc`, `aesgcm` or `secretbox` provider.
#[derive(Debug, Clone)]
pub struct Key {
    /// The name, also written into the prefix of every value encrypted with the key.
    pub name: String,
    /// The decoded secret.
    pub secret: SecretKey,
}

/// A KMS API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KmsApiVersion {
    /// KMS v1 (deprecated in Kubernetes 1.28): one DEK per value.
    V1,
    /// KMS v2: values carry an `EncryptedObject` naming the key id.
    V2,
}

impl fmt::Display for KmsApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KmsApiVersion::V1 => "v1",
            KmsApiVersion::V2 => "v2",
        })
    }
}

/// A `kms` provider: kept so values can name their plugin; Salvor cannot call plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KmsProvider {
    /// The plugin name, written into the value prefix.
    pub name: String,
    /// `v1` (the default) or `v2`.
    pub api_version: KmsApiVersion,
    /// The plugin's gRPC endpoint (`unix:///…`).
    pub endpoint: String,
    /// `cachesize`, when set.
    pub cache_size: Option<i32>,
    /// `timeout` as written (`3s`), when set.
    pub timeout: Option<String>,
}

impl KmsProvider {
    /// The prefix of values this plugin encrypts: `k8s:enc:kms:<version>:<name>:`.
    pub fn prefix(&self) -> String {
        format!("k8s:enc:kms:{}:{}:", self.api_version, self.name)
    }
}

/// One entry of a rule's `providers` list.
#[derive(Debug, Clone)]
pub enum Provider {
    /// `aescbc` with its keys; the first encrypts.
    AesCbc {
        /// The keys, in the file's order.
        keys: Vec<Key>,
    },
    /// `aesgcm` with its keys; the first encrypts.
    AesGcm {
        /// The keys, in the file's order.
        keys: Vec<Key>,
    },
    /// `secretbox` with its keys; the first encrypts.
    Secretbox {
        /// The keys, in the file's order.
        keys: Vec<Key>,
    },
    /// `identity`: plaintext.
    Identity,
    /// `kms`.
    Kms(KmsProvider),
}

impl Provider {
    /// Which provider this is.
    pub fn kind(&self) -> ProviderKind {
        match self {
            Provider::AesCbc { .. } => ProviderKind::AesCbc,
            Provider::AesGcm { .. } => ProviderKind::AesGcm,
            Provider::Secretbox { .. } => ProviderKind::Secretbox,
            Provider::Identity => ProviderKind::Identity,
            Provider::Kms(_) => ProviderKind::Kms,
        }
    }

    /// The keys of `aescbc`, `aesgcm` and `secretbox`; empty for `identity` and `kms`.
    pub fn keys(&self) -> &[Key] {
        match self {
            Provider::AesCbc { keys }
            | Provider::AesGcm { keys }
            | Provider::Secretbox { keys } => keys,
            Provider::Identity | Provider::Kms(_) => &[],
        }
    }
}

/// One entry of the configuration's `resources` list: which resources, and the providers
/// that encrypt them (the first writes, all read).
#[derive(Debug, Clone)]
pub struct ResourceRule {
    /// The resources the rule covers.
    pub resources: Vec<GroupResource>,
    /// The providers, in the file's order.
    pub providers: Vec<Provider>,
}

/// A cluster's `EncryptionConfiguration` (kube-apiserver's
/// `--encryption-provider-config`), parsed and checked.
#[derive(Debug, Clone)]
pub struct EncryptionConfig {
    /// The rules, in the file's order.
    pub rules: Vec<ResourceRule>,
}

/// Which key decrypted a value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct KeyRef {
    /// The provider.
    pub provider: ProviderKind,
    /// The key's name in the configuration.
    pub key_name: String,
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} key '{}'", self.provider, self.key_name)
    }
}

/// A value read from etcd, with encryption at rest removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decrypted<'v> {
    /// The value had no `k8s:enc:` prefix: stored in plaintext (`identity`, or written
    /// before encryption was configured).
    Plain(&'v [u8]),
    /// Decrypted with a key of the configuration.
    WithKey {
        /// The key used.
        key: KeyRef,
        /// The plaintext: the value as it would be stored without encryption.
        plaintext: Vec<u8>,
    },
}

impl Decrypted<'_> {
    /// The plaintext bytes.
    pub fn plaintext(&self) -> &[u8] {
        match self {
            Decrypted::Plain(bytes) => bytes,
            Decrypted::WithKey { plaintext, .. } => plaintext,
        }
    }

    /// The plaintext bytes, owned.
    pub fn into_plaintext(self) -> Vec<u8> {
        match self {
            Decrypted::Plain(bytes) => bytes.to_vec(),
            Decrypted::WithKey { plaintext, .. } => plaintext,
        }
    }

    /// The key used, `None` for a plaintext value.
    pub fn key(&self) -> Option<&KeyRef> {
        match self {
            Decrypted::Plain(_) => None,
            Decrypted::WithKey { key, .. } => Some(key),
        }
    }
}

/// A stored value decrypted (when a configuration is given) and decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct DecryptedObject {
    /// The decoded value; [`StoredObject::Encrypted`] only when no configuration was given.
    pub object: StoredObject,
    /// The key that decrypted it, `None` for a value stored in plaintext.
    pub key: Option<KeyRef>,
}

/// Why a configuration cannot be used, or a value cannot be decrypted or encrypted.
#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    /// The configuration file cannot be read.
    #[error("cannot read encryption configuration {}: {source}", path.display())]
    ReadConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration does not parse or is not one kube-apiserver accepts. (The YAML
    /// parser's message is kept as text with quoted values redacted, so no secret leaks.)
    #[error("invalid encryption configuration{}: {at}: {problem}", in_file(file.as_deref()))]
    Config {
        /// The file, when read from one.
        file: Option<PathBuf>,
        /// Where: a field path (`resources[0].providers[1].aescbc.keys[0].secret`) or a
        /// line and column.
        at: String,
        /// What is wrong.
        problem: String,
    },
    /// The value was encrypted with a key the configuration does not have.
    #[error(
        "value of {storage_key} needs {provider} key '{key_name}', not in the encryption configuration"
    )]
    MissingKey {
        /// The etcd key of the value, printable.
        storage_key: String,
        /// The provider of the value's prefix.
        provider: ProviderKind,
        /// The key name of the value's prefix.
        key_name: String,
    },
    /// Every configured key of the value's provider and name failed: a wrong key with the
    /// right name, a damaged value, or (AES-GCM) a value stored under another etcd key.
    #[error("value of {storage_key} does not decrypt with {provider} key '{key_name}'{}: {problem}",
        tried_note(*tried))]
    DecryptFailed {
        /// The etcd key of the value, printable.
        storage_key: String,
        /// The provider.
        provider: ProviderKind,
        /// The key name.
        key_name: String,
        /// How many configured keys have this provider and name (all were tried).
        tried: usize,
        /// What failed, for the first key tried.
        problem: String,
    },
    /// The value is encrypted by a KMS plugin, which only a running kube-apiserver can call.
    #[error(
        "value of {storage_key} needs KMS {api_version} plugin '{plugin}'{}{}: a KMS plugin cannot be called offline; read the object through the API server",
        key_id.as_deref().map(|k| format!(" (key id '{k}')")).unwrap_or_default(),
        if *configured { "" } else { ", which the encryption configuration does not name" }
    )]
    NeedsKmsPlugin {
        /// The etcd key of the value, printable.
        storage_key: String,
        /// KMS API version of the value.
        api_version: KmsApiVersion,
        /// The plugin name of the value's prefix.
        plugin: String,
        /// KMS v2: the key id in the value's `EncryptedObject`.
        key_id: Option<String>,
        /// True when the configuration has a `kms` provider of that name.
        configured: bool,
    },
    /// The value has the `k8s:enc:` prefix but is not a well-formed encrypted value.
    #[error("value of {storage_key} is not a readable encrypted value: {problem}")]
    Malformed {
        /// The etcd key of the value, printable.
        storage_key: String,
        /// What is wrong.
        problem: String,
    },
    /// The value names a provider or format version kube-apiserver does not have.
    #[error("value of {storage_key} is encrypted by unknown provider '{provider}' ({version})")]
    UnknownProvider {
        /// The etcd key of the value, printable.
        storage_key: String,
        /// The provider of the prefix.
        provider: String,
        /// The version of the prefix.
        version: String,
    },
    /// The resource's first provider is `kms`: values for it cannot be written offline.
    #[error(
        "{resource} is encrypted first by KMS {api_version} plugin '{plugin}', which cannot be called offline"
    )]
    KmsCannotEncrypt {
        /// The resource.
        resource: String,
        /// KMS API version.
        api_version: KmsApiVersion,
        /// The plugin name.
        plugin: String,
    },
    /// A key cannot be used for its provider (a configuration built by hand).
    #[error("{provider} key '{key_name}' cannot be used: {problem}")]
    BadKey {
        /// The provider.
        provider: ProviderKind,
        /// The key name.
        key_name: String,
        /// What is wrong.
        problem: String,
    },
    /// The operating system's random number generator failed.
    #[error("no random bytes for an IV or nonce: {0}")]
    Random(#[source] getrandom::Error),
    /// The decrypted value does not decode.
    #[error("value of {storage_key}: {source}")]
    Codec {
        /// The etcd key of the value, printable.
        storage_key: String,
        /// The codec's error.
        #[source]
        source: CodecError,
    },
}

fn in_file(file: Option<&Path>) -> String {
    file.map(|p| format!(" {}", p.display()))
        .unwrap_or_default()
}

fn tried_note(tried: usize) -> String {
    if tried > 1 {
        format!(" (all {tried} keys of that name)")
    } else {
        String::new()
    }
}

impl EncryptionConfig {
    /// Reads and checks an `EncryptionConfiguration` file (YAML or JSON).
    pub fn from_file(path: impl AsRef<Path>) -> Result<EncryptionConfig, EncryptionError> {
        let path = path.as_ref();
        let mut bytes = std::fs::read(path).map_err(|source| EncryptionError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        let parsed = EncryptionConfig::from_slice(&bytes);
        bytes.zeroize();
        parsed.map_err(|e| match e {
            EncryptionError::Config { at, problem, .. } => EncryptionError::Config {
                file: Some(path.to_path_buf()),
                at,
                problem,
            },
            other => other,
        })
    }

    /// Parses and checks an `EncryptionConfiguration` (`apiserver.config.k8s.io/v1`, or the
    /// legacy `v1` `EncryptionConfig`), YAML or JSON. Checks what kube-apiserver checks that
    /// decides how values are read and written: one provider per list element, keys with
    /// names and base64 secrets of the right length, KMS names and versions, resource names,
    /// and no rule masked by an earlier wildcard. KMS connection settings are kept unchecked.
    pub fn from_slice(bytes: &[u8]) -> Result<EncryptionConfig, EncryptionError> {
        let config_error = |at: String, problem: String| EncryptionError::Config {
            file: None,
            at,
            problem,
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(config_error(
                "the top level".into(),
                "the file is empty".into(),
            ));
        }
        let raw: raw::Config = serde_yaml::from_slice(bytes).map_err(|e| {
            let message = e.to_string();
            let (at, problem) = match e.location() {
                Some(l) => {
                    let at = format!("line {} column {}", l.line(), l.column());
                    let problem = message
                        .strip_suffix(&format!(" at {at}"))
                        .unwrap_or(&message)
                        .to_string();
                    (at, problem)
                }
                None => ("the top level".to_string(), message),
            };
            config_error(at, redact_quoted(&problem))
        })?;
        raw.check()
            .map_err(|(at, problem)| config_error(at, problem))
    }

    /// The providers kube-apiserver uses for `resource`, in order (the first writes): those
    /// of every rule naming the resource exactly, else `*.<group>`, else `*.*`. Empty when
    /// no rule covers the resource, which is then stored in plaintext.
    pub fn providers_for(&self, resource: &GroupResource) -> Vec<&Provider> {
        let names_it = |gr: &GroupResource| self.rules.iter().any(|r| r.resources.contains(gr));
        let Some(entry) = [
            resource.clone(),
            resource.any_in_group(),
            GroupResource::any(),
        ]
        .into_iter()
        .find(names_it) else {
            return Vec::new();
        };
        self.rules
            .iter()
            .filter(|r| r.resources.contains(&entry))
            .flat_map(|r| &r.providers)
            .collect()
    }

    /// Removes encryption at rest from a value read from etcd under `storage_key` (the full
    /// key, e.g. `/registry/secrets/default/db`: AES-GCM authenticates it). A value without
    /// the `k8s:enc:` prefix is returned as is.
    pub fn decrypt<'v>(
        &self,
        storage_key: &[u8],
        value: &'v [u8],
    ) -> Result<Decrypted<'v>, EncryptionError> {
        if !value.starts_with(ENCRYPTED_PREFIX) {
            return Ok(Decrypted::Plain(value));
        }
        let mut tried: Vec<(ProviderKind, &SecretKey)> = Vec::new();
        let mut failures: Vec<(KeyRef, String)> = Vec::new();
        let mut kms_match: Option<&KmsProvider> = None;
        for provider in self.rules.iter().flat_map(|r| &r.providers) {
            if let Provider::Kms(kms) = provider {
                if value.starts_with(kms.prefix().as_bytes()) {
                    kms_match.get_or_insert(kms);
                }
                continue;
            }
            let kind = provider.kind();
            for key in provider.keys() {
                let Some(payload) = value.strip_prefix(kind.key_prefix(&key.name).as_bytes())
                else {
                    continue;
                };
                // The same key listed for several resources is tried once.
                if tried
                    .iter()
                    .any(|(k, s)| *k == kind && s.bytes() == key.secret.bytes())
                {
                    continue;
                }
                tried.push((kind, &key.secret));
                let key_ref = KeyRef {
                    provider: kind,
                    key_name: key.name.clone(),
                };
                match open(kind, key.secret.bytes(), storage_key, payload) {
                    Ok(plaintext) => {
                        return Ok(Decrypted::WithKey {
                            key: key_ref,
                            plaintext,
                        });
                    }
                    Err(problem) => failures.push((key_ref, problem)),
                }
            }
        }
        if let Some((key, problem)) = failures.first() {
            return Err(EncryptionError::DecryptFailed {
                storage_key: crate::display_bytes(storage_key),
                provider: key.provider,
                key_name: key.key_name.clone(),
                tried: failures.len(),
                problem: problem.clone(),
            });
        }
        Err(unreadable(storage_key, value, kms_match))
    }

    /// Encrypts `plaintext` (the value as stored without encryption) for `resource`
    /// (`secrets`, `deployments.apps`) under `storage_key`, as kube-apiserver would: with the
    /// first key of the first provider configured for the resource, a fresh random IV or
    /// nonce, and the `k8s:enc:` prefix. Returns the plaintext when the resource is not
    /// encrypted (no rule, or `identity` first).
    pub fn encrypt(
        &self,
        resource: &str,
        storage_key: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EncryptionError> {
        let resource = GroupResource::parse(resource);
        let providers = self.providers_for(&resource);
        let Some(provider) = providers.first() else {
            return Ok(plaintext.to_vec());
        };
        let kind = provider.kind();
        match provider {
            Provider::Identity => Ok(plaintext.to_vec()),
            Provider::Kms(kms) => Err(EncryptionError::KmsCannotEncrypt {
                resource: resource.to_string(),
                api_version: kms.api_version,
                plugin: kms.name.clone(),
            }),
            Provider::AesCbc { keys }
            | Provider::AesGcm { keys }
            | Provider::Secretbox { keys } => {
                let Some(key) = keys.first() else {
                    return Err(EncryptionError::BadKey {
                        provider: kind,
                        key_name: String::new(),
                        problem: format!("the {kind} provider for {resource} has no keys"),
                    });
                };
                let mut out = kind.key_prefix(&key.name).into_bytes();
                seal(kind, key, storage_key, plaintext, &mut out)?;
                Ok(out)
            }
        }
    }

    /// [`EncryptionConfig::encrypt`] for the object at `key`, under the default
    /// `/registry` prefix.
    pub fn encrypt_object(
        &self,
        key: &RegistryKey,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, EncryptionError> {
        let resource = GroupResource::new(key.group.clone(), key.resource.clone());
        self.encrypt(
            &resource.to_string(),
            key.storage_key().as_bytes(),
            plaintext,
        )
    }
}

/// Decrypts (with `config`, when given) and decodes a value read from etcd under
/// `storage_key`: [`EncryptionConfig::decrypt`], then [`decode_storage_value`]. Without a
/// configuration an encrypted value decodes to [`StoredObject::Encrypted`].
pub fn decode_storage_value_with(
    bytes: &[u8],
    storage_key: &[u8],
    config: Option<&EncryptionConfig>,
) -> Result<DecryptedObject, EncryptionError> {
    let decrypted = match config {
        Some(config) => config.decrypt(storage_key, bytes)?,
        None => Decrypted::Plain(bytes),
    };
    let object =
        decode_storage_value(decrypted.plaintext()).map_err(|source| EncryptionError::Codec {
            storage_key: crate::display_bytes(storage_key),
            source,
        })?;
    Ok(DecryptedObject {
        object,
        key: decrypted.key().cloned(),
    })
}

/// Why no configured key could read an encrypted value: a KMS plugin, a key the
/// configuration lacks, an unknown provider, or a malformed prefix.
fn unreadable(
    storage_key: &[u8],
    value: &[u8],
    kms_match: Option<&KmsProvider>,
) -> EncryptionError {
    let storage_key = crate::display_bytes(storage_key);
    if let Some(kms) = kms_match {
        // Matched on the whole configured prefix: a KMS v1 name may contain ':'.
        let payload = &value[kms.prefix().len()..];
        return kms_requirement(storage_key, kms.api_version, &kms.name, payload, true);
    }
    let envelope = match decode_storage_value(value) {
        Ok(StoredObject::Encrypted(envelope)) => envelope,
        Ok(_) => {
            return EncryptionError::Malformed {
                storage_key,
                problem: "not an encrypted value".into(),
            };
        }
        Err(e) => {
            return EncryptionError::Malformed {
                storage_key,
                problem: e.to_string(),
            };
        }
    };
    let provider = match (envelope.provider.as_str(), envelope.version.as_str()) {
        ("aescbc", "v1") => ProviderKind::AesCbc,
        ("aesgcm", "v1") => ProviderKind::AesGcm,
        ("secretbox", "v1") => ProviderKind::Secretbox,
        ("kms", version @ ("v1" | "v2")) => {
            let api_version = if version == "v1" {
                KmsApiVersion::V1
            } else {
                KmsApiVersion::V2
            };
            let plugin = envelope.key_name.as_str();
            return kms_requirement(storage_key, api_version, plugin, &envelope.payload, false);
        }
        _ => {
            return EncryptionError::UnknownProvider {
                storage_key,
                provider: envelope.provider,
                version: envelope.version,
            };
        }
    };
    EncryptionError::MissingKey {
        storage_key,
        provider,
        key_name: envelope.key_name,
    }
}

/// The error for a KMS value: which plugin, and for v2 which key id.
fn kms_requirement(
    storage_key: String,
    api_version: KmsApiVersion,
    plugin: &str,
    payload: &[u8],
    configured: bool,
) -> EncryptionError {
    let key_id = match api_version {
        KmsApiVersion::V1 => {
            // 2-byte big-endian DEK length, the encrypted DEK, the data.
            let dek_len = payload
                .get(..2)
                .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
            if dek_len.is_none_or(|n| n + 2 > payload.len()) {
                return EncryptionError::Malformed {
                    storage_key,
                    problem: format!(
                        "KMS v1 value of {} bytes is shorter than its DEK length says",
                        payload.len()
                    ),
                };
            }
            None
        }
        KmsApiVersion::V2 => {
            let malformed = |problem: String| EncryptionError::Malformed {
                storage_key: storage_key.clone(),
                problem,
            };
            match EncryptedObject::decode(payload) {
                Ok(object)
                    if !object.key_id.is_empty()
                        && !object.encrypted_data.is_empty()
                        && !object.encrypted_dek_source.is_empty() =>
                {
                    Some(object.key_id)
                }
                Ok(_) => {
                    return malformed(
                        "KMS v2 EncryptedObject lacks its key id, data or encrypted DEK".into(),
                    );
                }
                Err(e) => return malformed(format!("KMS v2 EncryptedObject does not parse: {e}")),
            }
        }
    };
    EncryptionError::NeedsKmsPlugin {
        storage_key,
        api_version,
        plugin: plugin.to_string(),
        key_id,
        configured,
    }
}

/// KMS v2's `EncryptedObject` (`k8s.io/apiserver/pkg/storage/value/encrypt/envelope/kmsv2/v2`).
#[derive(Clone, PartialEq, prost::Message)]
struct EncryptedObject {
    #[prost(bytes = "vec", tag = "1")]
    encrypted_data: Vec<u8>,
    #[prost(string, tag = "2")]
    key_id: String,
    #[prost(bytes = "vec", tag = "3")]
    encrypted_dek_source: Vec<u8>,
    // 4 (annotations) and 5 (encryptedDEKSourceType) are not needed to name the key.
}

/// Decrypts a payload (the value after its prefix). Errors are plain text for
/// [`EncryptionError::DecryptFailed`].
fn open(
    kind: ProviderKind,
    key: &[u8],
    storage_key: &[u8],
    payload: &[u8],
) -> Result<Vec<u8>, String> {
    match kind {
        ProviderKind::AesCbc => aes_cbc_open(key, payload),
        ProviderKind::AesGcm => aes_gcm_open(key, storage_key, payload),
        ProviderKind::Secretbox => secretbox_open(key, payload),
        ProviderKind::Identity | ProviderKind::Kms => {
            Err(format!("{kind} values are not decrypted with a key"))
        }
    }
}

/// Encrypts `plaintext` with `key` and appends IV or nonce and ciphertext to `out`.
fn seal(
    kind: ProviderKind,
    key: &Key,
    storage_key: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), EncryptionError> {
    let bad_key = |problem: String| EncryptionError::BadKey {
        provider: kind,
        key_name: key.name.clone(),
        problem,
    };
    let secret = key.secret.bytes();
    match kind {
        ProviderKind::AesCbc => {
            let iv = random::<AES_BLOCK>()?;
            aes_cbc_seal(secret, &iv, plaintext, out).map_err(bad_key)
        }
        ProviderKind::AesGcm => {
            let nonce = random::<GCM_NONCE>()?;
            aes_gcm_seal(secret, &nonce, storage_key, plaintext, out).map_err(bad_key)
        }
        ProviderKind::Secretbox => {
            let nonce = random::<SECRETBOX_NONCE>()?;
            secretbox_seal(secret, &nonce, plaintext, out).map_err(bad_key)
        }
        ProviderKind::Identity | ProviderKind::Kms => {
            Err(bad_key(format!("{kind} does not encrypt with a key")))
        }
    }
}

fn random<const N: usize>() -> Result<[u8; N], EncryptionError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(EncryptionError::Random)?;
    Ok(bytes)
}

fn key_size_problem(kind: ProviderKind, len: usize, sizes: &[usize]) -> String {
    let sizes: Vec<String> = sizes.iter().map(usize::to_string).collect();
    format!(
        "key is {len} bytes; {kind} needs {} bytes",
        sizes.join(", ")
    )
}

/// kube-apiserver's `cbc.TransformFromStorage`: IV, CBC, then its PKCS#7 check (the pad
/// length is the last byte, 1 to the plaintext length, all pad bytes equal to it).
fn aes_cbc_open(key: &[u8], payload: &[u8]) -> Result<Vec<u8>, String> {
    let Some((iv, ciphertext)) = payload.split_at_checked(AES_BLOCK) else {
        return Err(format!(
            "{} bytes after the prefix, shorter than the {AES_BLOCK}-byte IV",
            payload.len()
        ));
    };
    if ciphertext.is_empty() || ciphertext.len() % AES_BLOCK != 0 {
        return Err(format!(
            "{} bytes of ciphertext after the IV, not a positive multiple of the {AES_BLOCK}-byte block",
            ciphertext.len()
        ));
    }
    let mut buf = ciphertext.to_vec();
    let decrypted = match key.len() {
        16 => cbc_decrypt::<Aes128>(key, iv, &mut buf),
        24 => cbc_decrypt::<Aes192>(key, iv, &mut buf),
        32 => cbc_decrypt::<Aes256>(key, iv, &mut buf),
        n => Err(key_size_problem(ProviderKind::AesCbc, n, AES_KEY_SIZES)),
    };
    if let Err(problem) = decrypted {
        buf.zeroize();
        return Err(problem);
    }
    let pad = buf.last().copied().map_or(0, usize::from);
    let valid = pad != 0
        && pad <= buf.len()
        && buf[buf.len() - pad..]
            .iter()
            .all(|&b| usize::from(b) == pad);
    if !valid {
        buf.zeroize();
        return Err("bad PKCS#7 padding after decryption: wrong key or damaged value".into());
    }
    buf.truncate(buf.len() - pad);
    Ok(buf)
}

fn cbc_decrypt<C>(key: &[u8], iv: &[u8], buf: &mut [u8]) -> Result<(), String>
where
    C: cbc::cipher::BlockDecrypt + cbc::cipher::BlockCipher + cbc::cipher::KeyInit,
{
    cbc::Decryptor::<C>::new_from_slices(key, iv)
        .map_err(|e| format!("bad AES-CBC key or IV: {e}"))?
        .decrypt_padded_mut::<NoPadding>(buf)
        .map(|_| ())
        .map_err(|e| format!("AES-CBC: {e}"))
}

/// kube-apiserver's `cbc.TransformToStorage`: random IV, PKCS#7 padding of 1 to 16 bytes.
fn aes_cbc_seal(
    key: &[u8],
    iv: &[u8; AES_BLOCK],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let pad = AES_BLOCK - plaintext.len() % AES_BLOCK;
    let mut buf = Vec::with_capacity(plaintext.len() + pad);
    buf.extend_from_slice(plaintext);
    buf.resize(plaintext.len() + pad, pad as u8);
    let len = buf.len();
    let sealed = match key.len() {
        16 => cbc_encrypt::<Aes128>(key, iv, &mut buf, len),
        24 => cbc_encrypt::<Aes192>(key, iv, &mut buf, len),
        32 => cbc_encrypt::<Aes256>(key, iv, &mut buf, len),
        n => Err(key_size_problem(ProviderKind::AesCbc, n, AES_KEY_SIZES)),
    };
    if let Err(problem) = sealed {
        buf.zeroize();
        return Err(problem);
    }
    out.extend_from_slice(iv);
    out.extend_from_slice(&buf);
    Ok(())
}

fn cbc_encrypt<C>(key: &[u8], iv: &[u8], buf: &mut [u8], len: usize) -> Result<(), String>
where
    C: cbc::cipher::BlockEncrypt + cbc::cipher::BlockCipher + cbc::cipher::KeyInit,
{
    cbc::Encryptor::<C>::new_from_slices(key, iv)
        .map_err(|e| format!("bad AES-CBC key or IV: {e}"))?
        .encrypt_padded_mut::<NoPadding>(buf, len)
        .map(|_| ())
        .map_err(|e| format!("AES-CBC: {e}"))
}

type Aes128Gcm = aes_gcm::AesGcm<Aes128, U12>;
type Aes192Gcm = aes_gcm::AesGcm<Aes192, U12>;
type Aes256Gcm = aes_gcm::AesGcm<Aes256, U12>;

/// kube-apiserver's `gcm.TransformFromStorage`: 12-byte nonce, ciphertext and tag, the etcd
/// key as additional authenticated data.
fn aes_gcm_open(key: &[u8], storage_key: &[u8], payload: &[u8]) -> Result<Vec<u8>, String> {
    let Some((nonce, ciphertext)) = payload.split_at_checked(GCM_NONCE) else {
        return Err(format!(
            "{} bytes after the prefix, shorter than the {GCM_NONCE}-byte nonce",
            payload.len()
        ));
    };
    if ciphertext.len() < GCM_TAG {
        return Err(format!(
            "{} bytes after the nonce, shorter than the {GCM_TAG}-byte tag",
            ciphertext.len()
        ));
    }
    let payload = Payload {
        msg: ciphertext,
        aad: storage_key,
    };
    let opened = match key.len() {
        16 => gcm_cipher::<Aes128Gcm>(key)?.decrypt(nonce_of(nonce), payload),
        24 => gcm_cipher::<Aes192Gcm>(key)?.decrypt(nonce_of(nonce), payload),
        32 => gcm_cipher::<Aes256Gcm>(key)?.decrypt(nonce_of(nonce), payload),
        n => return Err(key_size_problem(ProviderKind::AesGcm, n, AES_KEY_SIZES)),
    };
    opened.map_err(|_| {
        "AES-GCM authentication failed: wrong key, damaged value, or a value stored under \
         another etcd key (AES-GCM authenticates the key)"
            .into()
    })
}

fn aes_gcm_seal(
    key: &[u8],
    nonce: &[u8; GCM_NONCE],
    storage_key: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let payload = Payload {
        msg: plaintext,
        aad: storage_key,
    };
    let sealed = match key.len() {
        16 => gcm_cipher::<Aes128Gcm>(key)?.encrypt(nonce_of(nonce), payload),
        24 => gcm_cipher::<Aes192Gcm>(key)?.encrypt(nonce_of(nonce), payload),
        32 => gcm_cipher::<Aes256Gcm>(key)?.encrypt(nonce_of(nonce), payload),
        n => return Err(key_size_problem(ProviderKind::AesGcm, n, AES_KEY_SIZES)),
    }
    .map_err(|_| "AES-GCM refused the plaintext (too long)".to_string())?;
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    Ok(())
}

/// A 12-byte nonce as the AEAD API wants it; callers pass exactly [`GCM_NONCE`] bytes.
fn nonce_of(nonce: &[u8]) -> &aes_gcm::Nonce<U12> {
    aes_gcm::Nonce::<U12>::from_slice(nonce)
}

fn gcm_cipher<C: KeyInit>(key: &[u8]) -> Result<C, String> {
    C::new_from_slice(key)
        .map_err(|_| key_size_problem(ProviderKind::AesGcm, key.len(), AES_KEY_SIZES))
}

/// kube-apiserver's `secretbox.TransformFromStorage`: 24-byte nonce, then NaCl
/// `secretbox.Open` (tag first). No authenticated data: the etcd key is not bound.
fn secretbox_open(key: &[u8], payload: &[u8]) -> Result<Vec<u8>, String> {
    if payload.len() < SECRETBOX_NONCE + SECRETBOX_TAG {
        return Err(format!(
            "{} bytes after the prefix, shorter than the {SECRETBOX_NONCE}-byte nonce and \
             {SECRETBOX_TAG}-byte tag",
            payload.len()
        ));
    }
    let (nonce, sealed) = payload.split_at(SECRETBOX_NONCE);
    let cipher = secretbox_cipher(key)?;
    cipher
        .decrypt(crypto_secretbox::Nonce::from_slice(nonce), sealed)
        .map_err(|_| {
            "secretbox (XSalsa20-Poly1305) authentication failed: wrong key or damaged value".into()
        })
}

fn secretbox_seal(
    key: &[u8],
    nonce: &[u8; SECRETBOX_NONCE],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let sealed = secretbox_cipher(key)?
        .encrypt(crypto_secretbox::Nonce::from_slice(nonce), plaintext)
        .map_err(|_| "secretbox refused the plaintext (too long)".to_string())?;
    out.extend_from_slice(nonce);
    out.extend_from_slice(&sealed);
    Ok(())
}

fn secretbox_cipher(key: &[u8]) -> Result<crypto_secretbox::XSalsa20Poly1305, String> {
    use crypto_secretbox::aead::KeyInit as _;
    crypto_secretbox::XSalsa20Poly1305::new_from_slice(key)
        .map_err(|_| key_size_problem(ProviderKind::Secretbox, key.len(), SECRETBOX_KEY_SIZES))
}

/// Replaces the contents of every double-quoted span of a parser message, where a YAML
/// parser quotes the values it could not use, so a misplaced secret never reaches an error.
fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for c in message.chars() {
        if c == '"' {
            if inside {
                out.push_str("<redacted>");
            }
            inside = !inside;
            out.push(c);
        } else if !inside {
            out.push(c);
        }
    }
    out
}

/// The file as written, before checking; secrets are zeroed when dropped.
mod raw {
    use base64::Engine as _;
    use serde::Deserialize;
    use zeroize::Zeroize;

    use super::{
        AES_KEY_SIZES, API_VERSION, EncryptionConfig, GroupResource, KIND, Key, KmsApiVersion,
        KmsProvider, LEGACY_API_VERSION, LEGACY_KIND, Provider, ProviderKind, ResourceRule,
        SECRETBOX_KEY_SIZES, SecretKey, key_size_problem,
    };

    /// (field path, problem)
    pub(super) type Problem = (String, String);

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename = "EncryptionConfiguration")]
    pub(super) struct Config {
        #[serde(rename = "apiVersion")]
        api_version: Option<String>,
        kind: Option<String>,
        #[serde(default)]
        resources: Vec<Rule>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename = "ResourceConfiguration")]
    struct Rule {
        #[serde(default)]
        resources: Vec<String>,
        #[serde(default)]
        providers: Vec<ProviderEntry>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename = "ProviderConfiguration")]
    struct ProviderEntry {
        aescbc: Option<Keys>,
        aesgcm: Option<Keys>,
        secretbox: Option<Keys>,
        identity: Option<Identity>,
        kms: Option<Kms>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename = "IdentityConfiguration")]
    struct Identity {}

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename = "KeysConfiguration")]
    struct Keys {
        #[serde(default)]
        keys: Vec<RawKey>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename = "Key")]
    struct RawKey {
        #[serde(default)]
        name: String,
        #[serde(default, deserialize_with = "secret_string")]
        secret: String,
    }

    impl Drop for RawKey {
        fn drop(&mut self) {
            self.secret.zeroize();
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename = "KMSConfiguration")]
    struct Kms {
        #[serde(rename = "apiVersion")]
        api_version: Option<String>,
        #[serde(default)]
        name: String,
        #[serde(default)]
        endpoint: String,
        cachesize: Option<i32>,
        timeout: Option<String>,
    }

    /// A secret is a string; anything else is rejected without quoting it.
    fn secret_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => Ok(s),
            _ => Err(serde::de::Error::custom(
                "a key's secret must be a base64 string",
            )),
        }
    }

    /// Go's `base64.StdEncoding`: padded, standard alphabet, lenient about trailing bits.
    /// (It also skips `\r` and `\n`, done before decoding.)
    const GO_STD_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
    );

    impl Config {
        pub(super) fn check(&self) -> Result<EncryptionConfig, Problem> {
            let problem = |at: &str, p: String| Err((at.to_string(), p));
            match (self.api_version.as_deref(), self.kind.as_deref()) {
                (Some(API_VERSION), Some(KIND)) | (Some(LEGACY_API_VERSION), Some(LEGACY_KIND)) => {
                }
                (api_version, kind) => {
                    return problem(
                        "apiVersion/kind",
                        format!(
                            "expected apiVersion {API_VERSION} kind {KIND} (or the legacy \
                             {LEGACY_API_VERSION} {LEGACY_KIND}), found apiVersion {} kind {}",
                            api_version.unwrap_or("(none)"),
                            kind.unwrap_or("(none)")
                        ),
                    );
                }
            }
            if self.resources.is_empty() {
                return problem("resources", "at least one entry is required".into());
            }
            let mut rules = Vec::with_capacity(self.resources.len());
            let mut earlier: Vec<GroupResource> = Vec::new();
            let mut kms_names: Vec<String> = Vec::new();
            for (i, rule) in self.resources.iter().enumerate() {
                let at = format!("resources[{i}]");
                let resources = rule.check_resources(&at, &mut earlier)?;
                if rule.providers.is_empty() {
                    return problem(
                        &format!("{at}.providers"),
                        "at least one provider is required".into(),
                    );
                }
                let mut providers = Vec::with_capacity(rule.providers.len());
                for (j, entry) in rule.providers.iter().enumerate() {
                    let at = format!("{at}.providers[{j}]");
                    let provider = entry.check(&at)?;
                    if let Provider::Kms(kms) = &provider {
                        if kms.api_version == KmsApiVersion::V2 && kms_names.contains(&kms.name) {
                            return problem(
                                &format!("{at}.kms.name"),
                                format!("duplicate KMS provider name '{}'", kms.name),
                            );
                        }
                        kms_names.push(kms.name.clone());
                    }
                    providers.push(provider);
                }
                rules.push(ResourceRule {
                    resources,
                    providers,
                });
            }
            Ok(EncryptionConfig { rules })
        }
    }

    impl Rule {
        /// kube's resource-name, overlap and masking checks.
        fn check_resources(
            &self,
            at: &str,
            earlier: &mut Vec<GroupResource>,
        ) -> Result<Vec<GroupResource>, Problem> {
            let at_list = format!("{at}.resources");
            if self.resources.is_empty() {
                return Err((at_list, "at least one resource is required".into()));
            }
            let mut parsed = Vec::with_capacity(self.resources.len());
            for (k, name) in self.resources.iter().enumerate() {
                let at = format!("{at_list}[{k}]");
                let gr = GroupResource::parse(name);
                let bad = if name.to_lowercase() != *name {
                    Some("resource names are lowercase")
                } else if name == "*" {
                    Some(
                        "use '*.' for every resource of the core group or '*.*' for every resource",
                    )
                } else if gr.group == "*" && gr.resource != "*" {
                    Some("a resource cannot be encrypted across groups ('<resource>.*')")
                } else if gr.resource.is_empty() {
                    Some("empty resource name")
                } else {
                    None
                };
                if let Some(bad) = bad {
                    return Err((at, format!("{name:?}: {bad}")));
                }
                if parsed.contains(&gr) {
                    return Err((at, format!("{name:?} is listed twice")));
                }
                let overlaps = parsed.iter().any(|p: &GroupResource| {
                    *p == GroupResource::any()
                        || gr == GroupResource::any()
                        || (p.group == gr.group && (p.resource == "*" || gr.resource == "*"))
                });
                if overlaps {
                    return Err((
                        at,
                        format!(
                            "{name:?} overlaps a wildcard in the same list, which would mask it"
                        ),
                    ));
                }
                for mask in [gr.any_in_group(), GroupResource::any()] {
                    if earlier.contains(&mask) {
                        return Err((
                            at,
                            format!("resource '{gr}' is masked by earlier rule '{mask}'"),
                        ));
                    }
                }
                parsed.push(gr);
            }
            earlier.extend(parsed.iter().cloned());
            Ok(parsed)
        }
    }

    impl ProviderEntry {
        fn check(&self, at: &str) -> Result<Provider, Problem> {
            let set = [
                self.aescbc.is_some().then_some("aescbc"),
                self.aesgcm.is_some().then_some("aesgcm"),
                self.secretbox.is_some().then_some("secretbox"),
                self.identity.is_some().then_some("identity"),
                self.kms.is_some().then_some("kms"),
            ];
            let named: Vec<&str> = set.into_iter().flatten().collect();
            if named.len() > 1 {
                return Err((
                    at.to_string(),
                    format!(
                        "one element names several providers ({}): give each its own list element",
                        named.join(", ")
                    ),
                ));
            }
            if let Some(keys) = &self.aescbc {
                return Ok(Provider::AesCbc {
                    keys: keys.check(at, ProviderKind::AesCbc, AES_KEY_SIZES)?,
                });
            }
            if let Some(keys) = &self.aesgcm {
                return Ok(Provider::AesGcm {
                    keys: keys.check(at, ProviderKind::AesGcm, AES_KEY_SIZES)?,
                });
            }
            if let Some(keys) = &self.secretbox {
                return Ok(Provider::Secretbox {
                    keys: keys.check(at, ProviderKind::Secretbox, SECRETBOX_KEY_SIZES)?,
                });
            }
            if self.identity.is_some() {
                return Ok(Provider::Identity);
            }
            if let Some(kms) = &self.kms {
                return kms.check(&format!("{at}.kms")).map(Provider::Kms);
            }
            Err((
                at.to_string(),
                "names none of aescbc, aesgcm, secretbox, identity, kms".into(),
            ))
        }
    }

    impl Keys {
        fn check(
            &self,
            at: &str,
            kind: ProviderKind,
            sizes: &[usize],
        ) -> Result<Vec<Key>, Problem> {
            let at = format!("{at}.{kind}.keys");
            if self.keys.is_empty() {
                return Err((at, "at least one key is required".into()));
            }
            self.keys
                .iter()
                .enumerate()
                .map(|(k, key)| key.check(&format!("{at}[{k}]"), kind, sizes))
                .collect()
        }
    }

    impl RawKey {
        fn check(&self, at: &str, kind: ProviderKind, sizes: &[usize]) -> Result<Key, Problem> {
            if self.name.is_empty() {
                return Err((format!("{at}.name"), "a key needs a name".into()));
            }
            let at = format!("{at}.secret");
            if self.secret.is_empty() {
                return Err((at, format!("key '{}' has no secret", self.name)));
            }
            let mut text: Vec<u8> = self
                .secret
                .bytes()
                .filter(|&b| b != b'\r' && b != b'\n')
                .collect();
            let decoded = GO_STD_BASE64.decode(&text);
            text.zeroize();
            let secret = SecretKey(decoded.map_err(|_| {
                (
                    at.clone(),
                    format!(
                        "key '{}': the secret is not base64 (standard alphabet, padded)",
                        self.name
                    ),
                )
            })?);
            if !sizes.contains(&secret.len()) {
                return Err((
                    at,
                    format!(
                        "key '{}': {}",
                        self.name,
                        key_size_problem(kind, secret.len(), sizes)
                    ),
                ));
            }
            Ok(Key {
                name: self.name.clone(),
                secret,
            })
        }
    }

    impl Kms {
        fn check(&self, at: &str) -> Result<KmsProvider, Problem> {
            let api_version = match self.api_version.as_deref() {
                None | Some("") | Some("v1") => KmsApiVersion::V1,
                Some("v2") => KmsApiVersion::V2,
                Some(other) => {
                    return Err((
                        format!("{at}.apiVersion"),
                        format!("KMS apiVersion {other:?}: only v1 and v2 exist"),
                    ));
                }
            };
            if self.name.is_empty() {
                return Err((format!("{at}.name"), "a KMS provider needs a name".into()));
            }
            if api_version == KmsApiVersion::V2 && self.name.contains(':') {
                return Err((
                    format!("{at}.name"),
                    format!("KMS v2 provider name '{}' must not contain ':'", self.name),
                ));
            }
            if self.endpoint.is_empty() {
                return Err((
                    format!("{at}.endpoint"),
                    format!("KMS provider '{}' needs an endpoint", self.name),
                ));
            }
            Ok(KmsProvider {
                name: self.name.clone(),
                api_version,
                endpoint: self.endpoint.clone(),
                cache_size: self.cachesize,
                timeout: self.timeout.clone(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parser_messages_lose_their_quoted_values() {
        assert_eq!(
            redact_quoted(r#"keys: invalid type: string "c2VjcmV0", expected a sequence"#),
            r#"keys: invalid type: string "<redacted>", expected a sequence"#
        );
        assert_eq!(redact_quoted("unknown field `x`"), "unknown field `x`");
    }

    #[test]
    fn cbc_padding_is_checked_as_kube_apiserver_checks_it() {
        let key = [7u8; 16];
        let iv = [9u8; AES_BLOCK];
        let encrypt_raw = |plain: &[u8]| {
            let mut buf = plain.to_vec();
            let len = buf.len();
            cbc_encrypt::<Aes128>(&key, &iv, &mut buf, len).unwrap();
            [&iv[..], &buf].concat()
        };
        // kube accepts a pad longer than a block (up to the whole plaintext), like this one
        // of 17 bytes: it checks only that the pad bytes agree and fit.
        let mut plain = vec![b'a'; 15];
        plain.extend([17u8; 17]);
        assert_eq!(
            aes_cbc_open(&key, &encrypt_raw(&plain)).unwrap(),
            b"aaaaaaaaaaaaaaa"
        );
        // A zero pad, a pad longer than the value, and disagreeing pad bytes are refused.
        for last in [[0u8; 16], [33u8; 16]] {
            let plain = [[1u8; 16], last].concat();
            assert!(aes_cbc_open(&key, &encrypt_raw(&plain)).is_err());
        }
        let mut plain = [3u8; 32];
        plain[30] = 4;
        assert!(aes_cbc_open(&key, &encrypt_raw(&plain)).is_err());
        // Only an IV: kube-apiserver would index before the start; here it is an error.
        assert!(aes_cbc_open(&key, &iv).is_err());
    }

    #[test]
    fn group_resources_parse_and_print_like_kube() {
        let gr = GroupResource::parse("leases.coordination.k8s.io");
        assert_eq!(
            (gr.group.as_str(), gr.resource.as_str()),
            ("coordination.k8s.io", "leases")
        );
        assert_eq!(gr.to_string(), "leases.coordination.k8s.io");
        assert_eq!(GroupResource::parse("*.*"), GroupResource::any());
        assert_eq!(GroupResource::parse("*.").to_string(), "*.");
        assert_eq!(
            GroupResource::parse("secrets").any_in_group().to_string(),
            "*."
        );
    }
}
