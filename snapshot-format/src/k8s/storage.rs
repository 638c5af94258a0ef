//! Stored values: which envelope a value in etcd has, and the codec between it and the API's
//! JSON.

use std::fmt;

use base64::Engine as _;
use serde_json::{Map, Value};

use super::CodecError;
use super::decode::{Decoder, Path};
use super::encode::{Encoder, json_type};
use super::gojson;
use super::schema::{MessageId, Schema};
use super::wire::{self, Reader, put_bytes_field, put_nested};

/// The prefix of a protobuf-encoded object: `k8s` and a zero byte, then `runtime.Unknown`.
pub const PROTOBUF_PREFIX: &[u8] = b"k8s\x00";

/// The prefix of a value encrypted at rest: `k8s:enc:<provider>:<version>:<key name>:`.
pub const ENCRYPTED_PREFIX: &[u8] = b"k8s:enc:";

const UNKNOWN_TYPE: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";
const TYPE_META_TYPE: &str = "k8s.io.apimachinery.pkg.runtime.TypeMeta";

/// How kube-apiserver encodes an object in etcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageFormat {
    /// `k8s\0` + `runtime.Unknown` around the typed protobuf: built-in types.
    Protobuf,
    /// Plain JSON: custom resources, CRDs, APIServices.
    Json,
}

impl fmt::Display for StorageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StorageFormat::Protobuf => "protobuf",
            StorageFormat::Json => "json",
        })
    }
}

/// A value read from etcd, as far as it can be read without keys.
#[derive(Debug, Clone, PartialEq)]
pub enum StoredObject {
    /// A protobuf or JSON object, decoded.
    Decoded(DecodedObject),
    /// Encrypted at rest: readable only with the provider's key.
    Encrypted(EncryptedValue),
    /// Neither protobuf, JSON nor an encryption prefix (kept as is).
    Unrecognized(Vec<u8>),
}

/// A decoded object: the API's JSON and what could not be put into it.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedObject {
    /// How it was stored.
    pub format: StorageFormat,
    /// `apiVersion`, from the envelope (protobuf) or the object (JSON).
    pub api_version: String,
    /// `kind`, likewise.
    pub kind: String,
    /// The protobuf message type it was decoded as (`k8s.io.api.core.v1.Pod`).
    pub type_name: Option<String>,
    /// The object as the API's JSON: `kind` and `apiVersion` first, then the fields in the
    /// API server's order.
    pub object: Value,
    /// Data that is not in `object`: unknown fields with their bytes, an unknown type's
    /// raw bytes, strings that are not UTF-8. Empty for a clean object.
    pub issues: Vec<Issue>,
}

/// A value encrypted at rest (`k8s:enc:aescbc:v1:key1:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedValue {
    /// Provider: `aescbc`, `aesgcm`, `secretbox`, `kms`.
    pub provider: String,
    /// Provider format version: `v1` (`v2` for KMS v2).
    pub version: String,
    /// The key (or KMS plugin) name from the encryption configuration.
    pub key_name: String,
    /// Everything after the prefix: nonce or IV and ciphertext (KMS v2: `EncryptedObject`).
    pub payload: Vec<u8>,
}

impl fmt::Display for EncryptedValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "encrypted at rest by provider {} ({}) with key {:?}: needs that key to read ({} bytes)",
            self.provider,
            self.version,
            self.key_name,
            self.payload.len()
        )
    }
}

/// Data the JSON object cannot carry, and where it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// JSON path of the enclosing value, e.g. `.spec.containers[0]` (empty: the top level).
    pub path: String,
    /// What it is.
    pub kind: IssueKind,
}

/// Kinds of [`Issue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueKind {
    /// A field number the schema does not know (written by a newer or older API server).
    UnknownField {
        /// The message it was in.
        message: String,
        /// Its field number.
        number: u32,
        /// Its wire type.
        wire_type: u8,
        /// The whole field as on the wire: key and value.
        bytes: Vec<u8>,
    },
    /// No schema type for the envelope's apiVersion and kind: the object is only
    /// `kind` and `apiVersion`, the typed bytes are here.
    UnknownType {
        /// The `raw` bytes of the envelope.
        raw: Vec<u8>,
    },
    /// The envelope says the raw bytes are compressed or of a content type this codec does
    /// not read.
    UnreadableContent {
        /// `contentEncoding` of the envelope.
        content_encoding: String,
        /// `contentType` of the envelope.
        content_type: String,
        /// The `raw` bytes.
        raw: Vec<u8>,
    },
    /// A `RawExtension` or `FieldsV1` whose bytes are not JSON (shown base64 in the object).
    NotJson {
        /// The message type.
        message: String,
        /// The embedded bytes.
        bytes: Vec<u8>,
    },
    /// A string that is not UTF-8 (shown with U+FFFD replacements, as Go prints it).
    InvalidUtf8 {
        /// The message it was in.
        message: String,
        /// The original bytes.
        bytes: Vec<u8>,
    },
    /// A time with more precision than its JSON form shows (`Time` shows whole seconds,
    /// `MicroTime` microseconds).
    TimePrecision {
        /// Unix seconds.
        seconds: i64,
        /// Nanoseconds, of which the JSON drops some.
        nanos: u32,
    },
    /// An `IntOrString` whose type is neither 0 (int) nor 1 (string).
    BadIntOrString {
        /// The type code found.
        type_code: i64,
    },
    /// The value was decoded with the schema of another version of its group, because the
    /// schema has no type for its own version (an API version since removed).
    OtherVersionSchema {
        /// The message type used.
        message: String,
    },
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let at = if self.path.is_empty() {
            "top level"
        } else {
            &self.path
        };
        match &self.kind {
            IssueKind::UnknownField {
                message,
                number,
                wire_type,
                bytes,
            } => write!(
                f,
                "{at}: unknown field {number} (wire type {wire_type}) in {message}, kept: {}",
                b64(bytes)
            ),
            IssueKind::UnknownType { raw } => write!(
                f,
                "{at}: no schema for this apiVersion and kind; {} raw bytes kept: {}",
                raw.len(),
                b64(raw)
            ),
            IssueKind::UnreadableContent {
                content_encoding,
                content_type,
                raw,
            } => write!(
                f,
                "{at}: content encoding {content_encoding:?} type {content_type:?} not readable; raw kept: {}",
                b64(raw)
            ),
            IssueKind::NotJson { message, bytes } => {
                write!(
                    f,
                    "{at}: {message} does not hold JSON; bytes kept: {}",
                    b64(bytes)
                )
            }
            IssueKind::InvalidUtf8 { message, bytes } => {
                write!(
                    f,
                    "{at}: string in {message} is not UTF-8; bytes kept: {}",
                    b64(bytes)
                )
            }
            IssueKind::TimePrecision { seconds, nanos } => write!(
                f,
                "{at}: time {seconds}s {nanos}ns has more precision than its JSON form shows"
            ),
            IssueKind::BadIntOrString { type_code } => {
                write!(
                    f,
                    "{at}: IntOrString type {type_code} is neither int (0) nor string (1)"
                )
            }
            IssueKind::OtherVersionSchema { message } => write!(
                f,
                "{at}: version not in the schema, decoded with {message} (same kind, other version)"
            ),
        }
    }
}

/// Reads and writes stored values with one [`Schema`].
#[derive(Debug, Clone, Copy)]
pub struct Codec<'s> {
    schema: &'s Schema,
}

impl Codec<'static> {
    /// A codec with the embedded Kubernetes schema.
    pub fn kubernetes() -> Self {
        Codec {
            schema: Schema::kubernetes(),
        }
    }
}

impl Default for Codec<'static> {
    fn default() -> Self {
        Codec::kubernetes()
    }
}

/// The `runtime.Unknown` envelope, as read.
struct Envelope {
    api_version: String,
    kind: String,
    raw: (usize, usize),
    content_encoding: String,
    content_type: String,
    issues: Vec<Issue>,
}

impl<'s> Codec<'s> {
    /// A codec with `schema`.
    pub fn new(schema: &'s Schema) -> Self {
        Codec { schema }
    }

    /// The schema in use.
    pub fn schema(&self) -> &'s Schema {
        self.schema
    }

    /// Reads a value as stored in etcd. Errors only for damaged protobuf or JSON; an unknown
    /// type, encryption or an unrecognised value are results.
    pub fn decode(&self, bytes: &[u8]) -> Result<StoredObject, CodecError> {
        if bytes.starts_with(PROTOBUF_PREFIX) {
            return self.decode_protobuf(bytes).map(StoredObject::Decoded);
        }
        if bytes.starts_with(ENCRYPTED_PREFIX) {
            return parse_encrypted(bytes).map(StoredObject::Encrypted);
        }
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
            return decode_json(bytes).map(StoredObject::Decoded);
        }
        Ok(StoredObject::Unrecognized(bytes.to_vec()))
    }

    /// How an object of `api_version` and `kind` is stored: protobuf when the schema has its
    /// type (or a type of the same kind in another version of its group), else JSON.
    pub fn storage_format(&self, api_version: &str, kind: &str) -> StorageFormat {
        if self.schema.message_for_kind(api_version, kind).is_some()
            || !self
                .schema
                .other_versions_of_kind(api_version, kind)
                .is_empty()
        {
            StorageFormat::Protobuf
        } else {
            StorageFormat::Json
        }
    }

    /// Writes an object (the API's JSON, with `apiVersion` and `kind`) as kube-apiserver
    /// stores it, in the format [`Codec::storage_format`] picks.
    pub fn encode(&self, object: &Value) -> Result<Vec<u8>, CodecError> {
        let (api_version, kind) = type_of(object)?;
        self.encode_as(object, self.storage_format(api_version, kind))
    }

    /// Writes an object in the given format.
    pub fn encode_as(&self, object: &Value, format: StorageFormat) -> Result<Vec<u8>, CodecError> {
        let (api_version, kind) = type_of(object)?;
        match format {
            StorageFormat::Json => {
                // The API server's JSON serializer: compact, HTML-safe, newline-terminated.
                let mut out = gojson::to_vec(object);
                out.push(b'\n');
                Ok(out)
            }
            StorageFormat::Protobuf => {
                let obj = object.as_object().ok_or_else(|| not_an_object(object))?;
                let candidates = self.candidates(api_version, kind);
                if candidates.is_empty() {
                    return Err(CodecError::UnknownType {
                        api_version: api_version.to_string(),
                        kind: kind.to_string(),
                    });
                }
                let mut first_error = None;
                for id in candidates {
                    match self.encode_protobuf(id, api_version, kind, obj) {
                        Ok(bytes) => return Ok(bytes),
                        Err(e) => {
                            first_error.get_or_insert(e);
                        }
                    }
                }
                Err(first_error.unwrap_or_else(|| CodecError::UnknownType {
                    api_version: api_version.to_string(),
                    kind: kind.to_string(),
                }))
            }
        }
    }

    /// Decodes one protobuf message of type `type_name` (no envelope) as JSON.
    pub fn decode_message(
        &self,
        type_name: &str,
        bytes: &[u8],
    ) -> Result<(Value, Vec<Issue>), CodecError> {
        let id = self.message_id(type_name)?;
        let mut d = Decoder::new(self.schema, bytes);
        let v = d.message_value(id, 0, bytes.len(), &Path::ROOT, 0)?;
        Ok((v, d.issues))
    }

    /// Encodes JSON as one protobuf message of type `type_name` (no envelope).
    pub fn encode_message(&self, type_name: &str, value: &Value) -> Result<Vec<u8>, CodecError> {
        let id = self.message_id(type_name)?;
        let obj = value.as_object().ok_or_else(|| not_an_object(value))?;
        let mut out = Vec::new();
        Encoder::new(self.schema).object(id, obj, &mut out, &Path::ROOT, 0)?;
        Ok(out)
    }

    /// Writes `object` as message `type_name` inside a `k8s\0` envelope whose typeMeta holds
    /// `api_version` and `kind` as given (even empty, as Go writes a `WatchEvent`).
    pub fn encode_envelope(
        &self,
        type_name: &str,
        api_version: &str,
        kind: &str,
        object: &Value,
    ) -> Result<Vec<u8>, CodecError> {
        let id = self.message_id(type_name)?;
        let obj = object.as_object().ok_or_else(|| not_an_object(object))?;
        self.encode_protobuf(id, api_version, kind, obj)
    }

    fn message_id(&self, type_name: &str) -> Result<MessageId, CodecError> {
        self.schema
            .message_id(type_name)
            .ok_or_else(|| CodecError::Schema(format!("no message type {type_name}")))
    }

    /// The exact type first, then the same kind in other versions of the group.
    fn candidates(&self, api_version: &str, kind: &str) -> Vec<MessageId> {
        match self.schema.message_for_kind(api_version, kind) {
            Some(id) => vec![id],
            None => self.schema.other_versions_of_kind(api_version, kind),
        }
    }

    fn encode_protobuf(
        &self,
        id: MessageId,
        api_version: &str,
        kind: &str,
        obj: &Map<String, Value>,
    ) -> Result<Vec<u8>, CodecError> {
        let encoder = Encoder::new(self.schema);
        let mut out = Vec::with_capacity(1024);
        out.extend_from_slice(PROTOBUF_PREFIX);
        put_nested(&mut out, 1, |o| {
            put_bytes_field(o, 1, api_version.as_bytes());
            put_bytes_field(o, 2, kind.as_bytes());
            Ok::<(), CodecError>(())
        })?;
        put_nested(&mut out, 2, |o| encoder.object(id, obj, o, &Path::ROOT, 0))?;
        put_bytes_field(&mut out, 3, b"");
        put_bytes_field(&mut out, 4, b"");
        Ok(out)
    }

    fn decode_protobuf(&self, bytes: &[u8]) -> Result<DecodedObject, CodecError> {
        let mut env = parse_envelope(bytes)?;
        let mut issues = std::mem::take(&mut env.issues);
        let mut object = Map::new();
        object.insert("kind".into(), Value::String(env.kind.clone()));
        object.insert("apiVersion".into(), Value::String(env.api_version.clone()));
        let (rs, re) = env.raw;
        let raw = &bytes[rs..re];
        let mut type_name = None;
        if !env.content_encoding.is_empty()
            || !(env.content_type.is_empty() || env.content_type.contains("protobuf"))
        {
            if env.content_encoding.is_empty()
                && env.content_type.contains("json")
                && let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(raw)
            {
                for (k, v) in map {
                    object.entry(k).or_insert(v);
                }
                return Ok(DecodedObject {
                    format: StorageFormat::Protobuf,
                    api_version: env.api_version,
                    kind: env.kind,
                    type_name,
                    object: Value::Object(object),
                    issues,
                });
            }
            issues.push(Issue {
                path: String::new(),
                kind: IssueKind::UnreadableContent {
                    content_encoding: env.content_encoding,
                    content_type: env.content_type,
                    raw: raw.to_vec(),
                },
            });
        } else if let Some(id) = self.schema.message_for_kind(&env.api_version, &env.kind) {
            let mut d = Decoder::new(self.schema, bytes);
            d.object_into(id, rs, re, &Path::ROOT, 0, &mut object)?;
            issues.extend(d.issues);
            type_name = Some(self.schema.message_name(id).to_string());
        } else if let Some((id, fields, mut found)) = self.decode_other_version(bytes, &env)? {
            object.extend(fields);
            found.insert(
                0,
                Issue {
                    path: String::new(),
                    kind: IssueKind::OtherVersionSchema {
                        message: self.schema.message_name(id).to_string(),
                    },
                },
            );
            issues.extend(found);
            type_name = Some(self.schema.message_name(id).to_string());
        } else {
            issues.push(Issue {
                path: String::new(),
                kind: IssueKind::UnknownType { raw: raw.to_vec() },
            });
        }
        Ok(DecodedObject {
            format: StorageFormat::Protobuf,
            api_version: env.api_version,
            kind: env.kind,
            type_name,
            object: Value::Object(object),
            issues,
        })
    }

    /// Decodes with each other version's type of the same kind; keeps the one that leaves the
    /// fewest issues (none, when the version was removed without changing its fields).
    #[allow(clippy::type_complexity)]
    fn decode_other_version(
        &self,
        bytes: &[u8],
        env: &Envelope,
    ) -> Result<Option<(MessageId, Map<String, Value>, Vec<Issue>)>, CodecError> {
        let mut best: Option<(MessageId, Map<String, Value>, Vec<Issue>)> = None;
        let mut first_error = None;
        for id in self
            .schema
            .other_versions_of_kind(&env.api_version, &env.kind)
        {
            let mut d = Decoder::new(self.schema, bytes);
            let mut fields = Map::new();
            match d.object_into(id, env.raw.0, env.raw.1, &Path::ROOT, 0, &mut fields) {
                Ok(()) => {
                    if best
                        .as_ref()
                        .is_none_or(|(_, _, i)| d.issues.len() < i.len())
                    {
                        best = Some((id, fields, d.issues));
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (best, first_error) {
            (Some(b), _) => Ok(Some(b)),
            (None, Some(e)) => Err(e),
            (None, None) => Ok(None),
        }
    }
}

/// Reads a value as stored in etcd, with the embedded Kubernetes schema.
///
/// ```
/// use snapshot_format::k8s::{decode_storage_value, StoredObject};
/// let stored = br#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w"}}"#;
/// let StoredObject::Decoded(obj) = decode_storage_value(stored)? else { unreachable!() };
/// assert_eq!(obj.kind, "Widget");
/// # Ok::<(), snapshot_format::k8s::CodecError>(())
/// ```
pub fn decode_storage_value(bytes: &[u8]) -> Result<StoredObject, CodecError> {
    Codec::kubernetes().decode(bytes)
}

/// Writes an object as kube-apiserver stores it, with the embedded Kubernetes schema:
/// protobuf for built-in types, JSON otherwise.
pub fn encode_storage_value(object: &Value) -> Result<Vec<u8>, CodecError> {
    Codec::kubernetes().encode(object)
}

fn not_an_object(v: &Value) -> CodecError {
    CodecError::Encode {
        type_name: String::new(),
        path: String::new(),
        problem: format!(
            "a Kubernetes object must be a JSON object, found {}",
            json_type(v)
        ),
    }
}

fn type_of(object: &Value) -> Result<(&str, &str), CodecError> {
    let obj = object.as_object().ok_or_else(|| not_an_object(object))?;
    let text = |key: &str| -> Result<&str, CodecError> {
        obj.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| CodecError::Encode {
                type_name: String::new(),
                path: format!(".{key}"),
                problem: format!("a stored object needs a non-empty string {key:?}"),
            })
    };
    Ok((text("apiVersion")?, text("kind")?))
}

fn decode_json(bytes: &[u8]) -> Result<DecodedObject, CodecError> {
    let value: Value = serde_json::from_slice(bytes).map_err(CodecError::Json)?;
    let Value::Object(_) = &value else {
        return Err(CodecError::Envelope(format!(
            "JSON value is {}, not an object",
            json_type(&value)
        )));
    };
    let text = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok(DecodedObject {
        format: StorageFormat::Json,
        api_version: text("apiVersion"),
        kind: text("kind"),
        type_name: None,
        object: value,
        issues: Vec::new(),
    })
}

fn parse_encrypted(bytes: &[u8]) -> Result<EncryptedValue, CodecError> {
    let rest = &bytes[ENCRYPTED_PREFIX.len()..];
    let mut parts = Vec::with_capacity(3);
    let mut at = 0;
    for _ in 0..3 {
        let Some(colon) = rest[at..].iter().take(256).position(|&b| b == b':') else {
            return Err(CodecError::Envelope(
                "value starts with k8s:enc: but has no <provider>:<version>:<key name>: after it"
                    .into(),
            ));
        };
        parts.push(String::from_utf8_lossy(&rest[at..at + colon]).into_owned());
        at += colon + 1;
    }
    let [provider, version, key_name]: [String; 3] = parts
        .try_into()
        .map_err(|_| CodecError::Envelope("bad encryption prefix".into()))?;
    Ok(EncryptedValue {
        provider,
        version,
        key_name,
        payload: rest[at..].to_vec(),
    })
}

fn parse_envelope(bytes: &[u8]) -> Result<Envelope, CodecError> {
    let err = |path: &str, e: wire::WireError| CodecError::Protobuf {
        type_name: UNKNOWN_TYPE.into(),
        path: path.into(),
        offset: e.offset,
        problem: e.problem,
    };
    let string = |s: usize, e: usize| String::from_utf8_lossy(&bytes[s..e]).into_owned();
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: (bytes.len(), bytes.len()),
        content_encoding: String::new(),
        content_type: String::new(),
        issues: Vec::new(),
    };
    let mut r = Reader::new(bytes, PROTOBUF_PREFIX.len(), bytes.len());
    while !r.is_done() {
        let start = r.pos();
        let (number, wt) = r.key().map_err(|e| err("", e))?;
        if (1..=4).contains(&number) && wt != wire::LEN {
            return Err(CodecError::Protobuf {
                type_name: UNKNOWN_TYPE.into(),
                path: String::new(),
                offset: start,
                problem: format!(
                    "field {number} has wire type {wt}, expected 2 (length-delimited)"
                ),
            });
        }
        match number {
            1 => {
                let (s, e) = r.len_delimited().map_err(|e| err(".typeMeta", e))?;
                let mut tm = Reader::new(bytes, s, e);
                while !tm.is_done() {
                    let fstart = tm.pos();
                    let (n, wt) = tm.key().map_err(|e| err(".typeMeta", e))?;
                    if (n == 1 || n == 2) && wt == wire::LEN {
                        let (s, e) = tm.len_delimited().map_err(|e| err(".typeMeta", e))?;
                        if n == 1 {
                            env.api_version = string(s, e);
                        } else {
                            env.kind = string(s, e);
                        }
                    } else {
                        let end = tm.skip(wt).map_err(|e| err(".typeMeta", e))?;
                        env.issues
                            .push(unknown_field(TYPE_META_TYPE, n, wt, &bytes[fstart..end]));
                    }
                }
            }
            2 => env.raw = r.len_delimited().map_err(|e| err(".raw", e))?,
            3 => {
                let (s, e) = r.len_delimited().map_err(|e| err(".contentEncoding", e))?;
                env.content_encoding = string(s, e);
            }
            4 => {
                let (s, e) = r.len_delimited().map_err(|e| err(".contentType", e))?;
                env.content_type = string(s, e);
            }
            _ => {
                let end = r.skip(wt).map_err(|e| err("", e))?;
                env.issues
                    .push(unknown_field(UNKNOWN_TYPE, number, wt, &bytes[start..end]));
            }
        }
    }
    Ok(env)
}

fn unknown_field(message: &str, number: u32, wire_type: u8, bytes: &[u8]) -> Issue {
    Issue {
        path: String::new(),
        kind: IssueKind::UnknownField {
            message: message.into(),
            number,
            wire_type,
            bytes: bytes.to_vec(),
        },
    }
}
