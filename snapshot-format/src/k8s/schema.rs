//! The Kubernetes protobuf schema: every message of `k8s.io/api` and
//! `k8s.io/apimachinery`, read from a protobuf `FileDescriptorSet` at run time.
//!
//! The set is embedded ([`Schema::kubernetes`]; `schema/kubernetes-api.binpb`, see the README
//! beside it) and can be replaced by another one ([`Schema::from_descriptor_set`]). Beyond what
//! the descriptors say, this module knows Kubernetes' JSON conventions that they cannot
//! express: which message types have their own JSON form (`Time`, `Quantity`, …), which
//! fields Go embeds inline, and the handful of fields whose proto name is not the JSON name.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::Message as _;

use super::CodecError;

/// The descriptor set compiled into the crate: kubernetes/api and apimachinery.
const EMBEDDED_DESCRIPTOR_SET: &[u8] = include_bytes!("../../schema/kubernetes-api.binpb");

/// Types and fields that earlier releases wrote and the main set no longer has (API versions
/// since removed, alpha fields since dropped): `schema/removed/*.proto`.
const EMBEDDED_REMOVED_SET: &[u8] = include_bytes!("../../schema/kubernetes-api-removed.binpb");

/// Index of a message type in a [`Schema`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MessageId(u32);

/// A set of protobuf message types with Kubernetes' JSON conventions attached.
#[derive(Debug)]
pub struct Schema {
    messages: Vec<MessageType>,
    by_name: HashMap<String, MessageId>,
    /// (`k8s.io.api.<package>`, kind) → that kind's types in every version, preferred first.
    versions_of_kind: HashMap<(String, String), Vec<(String, MessageId)>>,
}

/// One message type.
#[derive(Debug)]
pub struct MessageType {
    pub(crate) full_name: String,
    /// Fields in declaration order, which is Go's struct order and so the API's JSON order.
    pub(crate) fields: Vec<Field>,
    /// `by_number[n]` = declaration index + 1 of field number `n`, 0 for none.
    by_number: Vec<u16>,
    /// Declaration indexes sorted by field number: the order gogo-protobuf writes.
    pub(crate) encode_order: Vec<u16>,
    pub(crate) form: JsonForm,
    pub(crate) map_entry: bool,
    /// JSON keys this message accepts, including those of inline-embedded fields.
    accepted_keys: Vec<String>,
}

/// One field of a message type.
#[derive(Debug)]
pub struct Field {
    pub(crate) name: String,
    pub(crate) json_name: String,
    pub(crate) number: u32,
    pub(crate) repeated: bool,
    /// Go embeds the field's struct inline: its JSON keys sit in the parent object.
    pub(crate) inline: bool,
    pub(crate) ty: FieldType,
}

/// The type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FieldType {
    Scalar(Scalar),
    Message(MessageId),
    /// A `map<K, V>`: the id is the synthetic map-entry message {key = 1, value = 2}.
    Map(MessageId),
}

/// Protobuf scalar types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    Double,
    Float,
    Int64,
    Uint64,
    Int32,
    Fixed64,
    Fixed32,
    Bool,
    String,
    Bytes,
    Uint32,
    Enum,
    Sfixed32,
    Sfixed64,
    Sint32,
    Sint64,
}

impl Scalar {
    fn from_proto(t: i32) -> Option<Scalar> {
        Some(match t {
            1 => Scalar::Double,
            2 => Scalar::Float,
            3 => Scalar::Int64,
            4 => Scalar::Uint64,
            5 => Scalar::Int32,
            6 => Scalar::Fixed64,
            7 => Scalar::Fixed32,
            8 => Scalar::Bool,
            9 => Scalar::String,
            12 => Scalar::Bytes,
            13 => Scalar::Uint32,
            14 => Scalar::Enum,
            15 => Scalar::Sfixed32,
            16 => Scalar::Sfixed64,
            17 => Scalar::Sint32,
            18 => Scalar::Sint64,
            _ => return None,
        })
    }

    /// The wire type a single value of this scalar is written with.
    pub(crate) fn wire_type(self) -> u8 {
        use super::wire::{FIXED32, FIXED64, LEN, VARINT};
        match self {
            Scalar::Double | Scalar::Fixed64 | Scalar::Sfixed64 => FIXED64,
            Scalar::Float | Scalar::Fixed32 | Scalar::Sfixed32 => FIXED32,
            Scalar::String | Scalar::Bytes => LEN,
            _ => VARINT,
        }
    }

    /// The proto name of the type, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Scalar::Double => "double",
            Scalar::Float => "float",
            Scalar::Int64 => "int64",
            Scalar::Uint64 => "uint64",
            Scalar::Int32 => "int32",
            Scalar::Fixed64 => "fixed64",
            Scalar::Fixed32 => "fixed32",
            Scalar::Bool => "bool",
            Scalar::String => "string",
            Scalar::Bytes => "bytes",
            Scalar::Uint32 => "uint32",
            Scalar::Enum => "enum",
            Scalar::Sfixed32 => "sfixed32",
            Scalar::Sfixed64 => "sfixed64",
            Scalar::Sint32 => "sint32",
            Scalar::Sint64 => "sint64",
        }
    }
}

/// How a message type looks in the API's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JsonForm {
    /// A JSON object of its fields.
    Object,
    /// `meta/v1.Time` {seconds, nanos}: RFC 3339 in whole seconds, `null` when zero.
    Time,
    /// `meta/v1.MicroTime`: RFC 3339 with six fractional digits.
    MicroTime,
    /// `meta/v1.Duration` {duration ns}: a Go duration string.
    Duration,
    /// `resource.Quantity` {string}: the string.
    Quantity,
    /// `intstr.IntOrString` {type, intVal, strVal}: a number or a string.
    IntOrString,
    /// `runtime.RawExtension` {raw} and `meta/v1.FieldsV1` {Raw}: the embedded JSON.
    EmbeddedJson,
    /// Go named slices of strings (`Verbs`, `ExtraValue`) {repeated items}: a JSON array.
    StringList,
}

/// Fields Go embeds with `json:",inline"`: (message name, field name), any package.
const INLINE_FIELDS: &[(&str, &str)] = &[
    ("Unknown", "typeMeta"),
    ("Volume", "volumeSource"),
    ("PersistentVolumeSpec", "persistentVolumeSource"),
    ("EphemeralContainer", "ephemeralContainerCommon"),
    ("Probe", "handler"),
    ("ConfigMapEnvSource", "localObjectReference"),
    ("ConfigMapKeySelector", "localObjectReference"),
    ("ConfigMapProjection", "localObjectReference"),
    ("ConfigMapVolumeSource", "localObjectReference"),
    ("SecretEnvSource", "localObjectReference"),
    ("SecretKeySelector", "localObjectReference"),
    ("SecretProjection", "localObjectReference"),
    ("NamedRuleWithOperations", "ruleWithOperations"),
    ("RuleWithOperations", "rule"),
    ("IngressRule", "ingressRuleValue"),
    ("DeviceAllocationConfiguration", "deviceConfiguration"),
    ("DeviceClaimConfiguration", "deviceConfiguration"),
    ("DeviceClassConfiguration", "deviceConfiguration"),
];

/// Fields whose proto name is not their JSON name: (message name, proto name, JSON name).
/// go-to-protobuf derives proto names from Go field names, and a few of those kept Go's
/// capitals; everywhere else the two are equal (and `json_name` in the set is no help: protoc
/// fills it from the proto name).
const JSON_NAMES: &[(&str, &str, &str)] = &[
    ("BoundObjectReference", "uID", "uid"),
    ("IngressClassParametersReference", "aPIGroup", "apiGroup"),
    ("MutatingWebhookConfiguration", "Webhooks", "webhooks"),
    ("ValidatingWebhookConfiguration", "Webhooks", "webhooks"),
    ("Validation", "Expression", "expression"),
    ("Variable", "Name", "name"),
    ("Variable", "Expression", "expression"),
];

impl Schema {
    /// The schema compiled into this crate: kubernetes/api and apimachinery, 1.37 line.
    pub fn kubernetes() -> &'static Schema {
        static SCHEMA: OnceLock<Schema> = OnceLock::new();
        SCHEMA.get_or_init(|| {
            // The embedded set is checked by the tests; a failure here is a build defect.
            match Schema::from_descriptor_sets(&[EMBEDDED_DESCRIPTOR_SET, EMBEDDED_REMOVED_SET]) {
                Ok(schema) => schema,
                Err(e) => panic!("the embedded Kubernetes schema does not load: {e}"),
            }
        })
    }

    /// Loads a binary `FileDescriptorSet` (as written by `protoc --descriptor_set_out
    /// --include_imports`).
    pub fn from_descriptor_set(bytes: &[u8]) -> Result<Schema, CodecError> {
        Schema::from_descriptor_sets(&[bytes])
    }

    /// Loads several descriptor sets as one. A message defined again in a later set adds
    /// the fields whose numbers the earlier definition lacks (how fields that a release
    /// dropped are kept readable); other messages are added.
    pub fn from_descriptor_sets(sets: &[&[u8]]) -> Result<Schema, CodecError> {
        // Pass 1: name every message so fields can refer to them.
        let mut flat: Vec<(String, descriptor::DescriptorProto)> = Vec::new();
        let mut by_name: HashMap<String, MessageId> = HashMap::new();
        for (n, bytes) in sets.iter().enumerate() {
            let set = descriptor::FileDescriptorSet::decode(*bytes).map_err(|e| {
                CodecError::Schema(format!(
                    "descriptor set {n} is not a FileDescriptorSet: {e}"
                ))
            })?;
            let mut found = Vec::new();
            for file in &set.file {
                let package = file.package.as_deref().unwrap_or("");
                for m in &file.message_type {
                    collect_messages(package, m, &mut found);
                }
            }
            for (name, proto) in found {
                match by_name.get(&name) {
                    Some(id) if n > 0 => merge_fields(&mut flat[id.0 as usize].1, proto),
                    Some(_) => {
                        return Err(CodecError::Schema(format!(
                            "message {name} is defined twice"
                        )));
                    }
                    None => {
                        by_name.insert(name.clone(), MessageId(flat.len() as u32));
                        flat.push((name, proto.clone()));
                    }
                }
            }
        }
        // Pass 2: fields.
        let mut messages = Vec::with_capacity(flat.len());
        for (full_name, proto) in &flat {
            let proto = &proto;
            let short = short_name(full_name);
            let mut fields = Vec::with_capacity(proto.field.len());
            for f in &proto.field {
                fields.push(build_field(full_name, short, f, &by_name, &flat)?);
            }
            let max = fields.iter().map(|f| f.number).max().unwrap_or(0);
            if max > 1 << 16 || fields.len() >= usize::from(u16::MAX) {
                return Err(CodecError::Schema(format!(
                    "message {full_name} has field number {max}; this codec supports up to 65536"
                )));
            }
            let mut by_number = vec![0u16; max as usize + 1];
            for (i, f) in fields.iter().enumerate() {
                if by_number[f.number as usize] != 0 {
                    return Err(CodecError::Schema(format!(
                        "message {full_name} has field number {} twice",
                        f.number
                    )));
                }
                by_number[f.number as usize] = i as u16 + 1;
            }
            let mut encode_order: Vec<u16> = (0..fields.len() as u16).collect();
            encode_order.sort_by_key(|&i| fields[usize::from(i)].number);
            let map_entry = proto
                .options
                .as_ref()
                .and_then(|o| o.map_entry)
                .unwrap_or(false);
            messages.push(MessageType {
                form: json_form(full_name, &fields),
                full_name: full_name.clone(),
                fields,
                by_number,
                encode_order,
                map_entry,
                accepted_keys: Vec::new(),
            });
        }
        let mut schema = Schema {
            messages,
            by_name,
            versions_of_kind: HashMap::new(),
        };
        schema.check_map_entries()?;
        schema.collect_accepted_keys();
        schema.index_versions();
        Ok(schema)
    }

    /// The message type named `full_name` (e.g. `k8s.io.api.core.v1.Pod`).
    pub fn message_id(&self, full_name: &str) -> Option<MessageId> {
        self.by_name
            .get(full_name.strip_prefix('.').unwrap_or(full_name))
            .copied()
    }

    /// The full name of a message type.
    pub fn message_name(&self, id: MessageId) -> &str {
        &self.message(id).full_name
    }

    /// Number of message types.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// True when the schema has no message types.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Every message's full name.
    pub fn message_names(&self) -> impl Iterator<Item = &str> {
        self.messages.iter().map(|m| m.full_name.as_str())
    }

    /// The protobuf message a built-in object of `api_version` and `kind` is stored as.
    ///
    /// Follows the Go package layout: group `apps`, version `v1` → `k8s.io.api.apps.v1`;
    /// the core group (`apiVersion: v1`) → `k8s.io.api.core.v1`; a group's package is the
    /// first label of its name, except `internal.apiserver.k8s.io` (`apiserverinternal`).
    /// Kinds every group version registers from `meta/v1` (`Status`, `DeleteOptions`,
    /// `WatchEvent`, `APIGroup`, …) resolve there.
    pub fn message_for_kind(&self, api_version: &str, kind: &str) -> Option<MessageId> {
        if kind.is_empty() || kind.contains('.') {
            return None;
        }
        let package = api_package(api_version)?;
        let found = self
            .message_id(&format!("{package}.{kind}"))
            .or_else(|| self.message_id(&format!("k8s.io.apimachinery.pkg.apis.meta.v1.{kind}")))?;
        let m = self.message(found);
        (!m.map_entry && m.form == JsonForm::Object).then_some(found)
    }

    /// Types of the same kind in the other versions of `api_version`'s group, preferred
    /// first (GA before beta before alpha, newer first): the fallback for objects stored in
    /// a version the schema no longer has.
    pub fn other_versions_of_kind(&self, api_version: &str, kind: &str) -> Vec<MessageId> {
        let Some(package) = api_package(api_version) else {
            return Vec::new();
        };
        let Some((base, version)) = package.rsplit_once('.') else {
            return Vec::new();
        };
        self.versions_of_kind
            .get(&(base.to_string(), kind.to_string()))
            .map(|all| {
                all.iter()
                    .filter(|(v, _)| v != version)
                    .map(|(_, id)| *id)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The types of `kind` in every version of `group` the schema has, preferred first.
    pub fn types_of_kind(&self, group: &str, kind: &str) -> Vec<MessageId> {
        api_package_of_group(group)
            .and_then(|package| self.versions_of_kind.get(&(package, kind.to_string())))
            .map(|all| all.iter().map(|(_, id)| *id).collect())
            .unwrap_or_default()
    }

    /// Kinds that can be stored: messages of `k8s.io.api` with `ObjectMeta metadata = 1` and
    /// a `<Kind>List` beside them, as (`k8s.io.api.<package>`, kind).
    pub fn storable_kinds(&self) -> Vec<(String, String)> {
        let object_meta = self.message_id("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta");
        let mut out = Vec::new();
        for ((package, kind), versions) in &self.versions_of_kind {
            let storable = versions.iter().any(|(version, id)| {
                let m = self.message(*id);
                let has_meta = m.field_by_number(1).is_some_and(|f| {
                    f.name == "metadata" && Some(f.ty) == object_meta.map(FieldType::Message)
                });
                has_meta
                    && self
                        .message_id(&format!("{package}.{version}.{kind}List"))
                        .is_some()
            });
            if storable {
                out.push((package.clone(), kind.clone()));
            }
        }
        out.sort();
        out
    }

    fn index_versions(&mut self) {
        let mut index: HashMap<(String, String), Vec<(String, MessageId)>> = HashMap::new();
        for (i, m) in self.messages.iter().enumerate() {
            if m.map_entry || m.form != JsonForm::Object {
                continue;
            }
            let Some(rest) = m.full_name.strip_prefix("k8s.io.api.") else {
                continue;
            };
            let parts: Vec<&str> = rest.split('.').collect();
            let [package, version, kind] = parts[..] else {
                continue;
            };
            index
                .entry((format!("k8s.io.api.{package}"), kind.to_string()))
                .or_default()
                .push((version.to_string(), MessageId(i as u32)));
        }
        for versions in index.values_mut() {
            versions.sort_by_key(|(v, _)| std::cmp::Reverse(version_priority(v)));
        }
        self.versions_of_kind = index;
    }

    pub(crate) fn message(&self, id: MessageId) -> &MessageType {
        &self.messages[id.0 as usize]
    }

    /// Every map-entry message must be {key = 1 scalar, value = 2}.
    fn check_map_entries(&self) -> Result<(), CodecError> {
        for m in &self.messages {
            if !m.map_entry {
                continue;
            }
            let ok = m.fields.len() == 2
                && m.field_by_number(1)
                    .is_some_and(|f| matches!(f.ty, FieldType::Scalar(_)))
                && m.field_by_number(2).is_some();
            if !ok {
                return Err(CodecError::Schema(format!(
                    "map entry {} is not {{key = 1, value = 2}}",
                    m.full_name
                )));
            }
        }
        Ok(())
    }

    fn collect_accepted_keys(&mut self) {
        let mut all = Vec::with_capacity(self.messages.len());
        for i in 0..self.messages.len() {
            let mut keys = Vec::new();
            self.gather_keys(MessageId(i as u32), &mut keys, 0);
            keys.sort();
            keys.dedup();
            all.push(keys);
        }
        for (m, keys) in self.messages.iter_mut().zip(all) {
            m.accepted_keys = keys;
        }
    }

    fn gather_keys(&self, id: MessageId, keys: &mut Vec<String>, depth: usize) {
        if depth > 16 {
            return; // an inline cycle would be a schema defect; do not recurse forever
        }
        for f in &self.message(id).fields {
            match (f.inline, f.ty) {
                (true, FieldType::Message(child)) => self.gather_keys(child, keys, depth + 1),
                _ => keys.push(f.json_name.clone()),
            }
        }
    }
}

impl MessageType {
    /// The field with protobuf number `number`.
    pub(crate) fn field_by_number(&self, number: u32) -> Option<&Field> {
        let i = *self.by_number.get(number as usize)?;
        (i != 0).then(|| &self.fields[usize::from(i - 1)])
    }

    /// Declaration index of field number `number`.
    pub(crate) fn index_of_number(&self, number: u32) -> Option<usize> {
        let i = *self.by_number.get(number as usize)?;
        (i != 0).then(|| usize::from(i - 1))
    }

    /// True when `key` is a JSON key of this message or of one of its inline fields.
    pub(crate) fn accepts_key(&self, key: &str) -> bool {
        self.accepted_keys
            .binary_search_by(|k| k.as_str().cmp(key))
            .is_ok()
    }
}

/// Kubernetes' version order: `v2` > `v1` > `v2beta1` > `v1beta2` > `v1beta1` > `v1alpha1`.
pub fn version_priority(version: &str) -> (u8, u32, u32) {
    let Some(rest) = version.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let major = rest[..digits].parse().unwrap_or(0);
    let tail = &rest[digits..];
    let (stage, minor) = if tail.is_empty() {
        (3, 0)
    } else if let Some(n) = tail.strip_prefix("beta") {
        (2, n.parse().unwrap_or(0))
    } else if let Some(n) = tail.strip_prefix("alpha") {
        (1, n.parse().unwrap_or(0))
    } else {
        (0, 0)
    };
    (stage, major, minor)
}

/// The Go package (as a proto package) of an apiVersion: `apps/v1` → `k8s.io.api.apps.v1`.
fn api_package(api_version: &str) -> Option<String> {
    let (group, version) = match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    if version.is_empty() || !version.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some(format!("{}.{version}", api_package_of_group(group)?))
}

/// The Go package of an API group without its version: `apps` → `k8s.io.api.apps`.
pub(crate) fn api_package_of_group(group: &str) -> Option<String> {
    let package = match group {
        "" => "core",
        "internal.apiserver.k8s.io" => "apiserverinternal",
        g => g.split('.').next().unwrap_or(g),
    };
    if package.is_empty() || !package.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return None;
    }
    Some(format!("k8s.io.api.{package}"))
}

fn short_name(full_name: &str) -> &str {
    full_name.rsplit('.').next().unwrap_or(full_name)
}

/// Adds to `base` the fields of `extra` whose numbers it lacks, each before the first field
/// with a higher number (declaration order is JSON order).
fn merge_fields(base: &mut descriptor::DescriptorProto, extra: &descriptor::DescriptorProto) {
    for f in &extra.field {
        if base
            .field
            .iter()
            .any(|b| b.number == f.number || b.name == f.name)
        {
            continue;
        }
        let at = base
            .field
            .iter()
            .position(|b| b.number > f.number)
            .unwrap_or(base.field.len());
        base.field.insert(at, f.clone());
    }
}

fn collect_messages<'a>(
    prefix: &str,
    m: &'a descriptor::DescriptorProto,
    out: &mut Vec<(String, &'a descriptor::DescriptorProto)>,
) {
    let name = m.name.as_deref().unwrap_or("");
    let full = if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    };
    for nested in &m.nested_type {
        collect_messages(&full, nested, out);
    }
    out.push((full, m));
}

fn build_field(
    message: &str,
    short: &str,
    f: &descriptor::FieldDescriptorProto,
    by_name: &HashMap<String, MessageId>,
    flat: &[(String, descriptor::DescriptorProto)],
) -> Result<Field, CodecError> {
    let name = f.name.clone().unwrap_or_default();
    let number = f.number.unwrap_or(0);
    if number <= 0 {
        return Err(CodecError::Schema(format!(
            "{message}.{name} has field number {number}"
        )));
    }
    let proto_type = f.r#type.unwrap_or(0);
    let ty = if proto_type == 11 {
        let type_name = f.type_name.as_deref().unwrap_or("");
        let id = by_name
            .get(type_name.strip_prefix('.').unwrap_or(type_name))
            .copied()
            .ok_or_else(|| {
                CodecError::Schema(format!(
                    "{message}.{name} refers to unknown message {type_name}"
                ))
            })?;
        let is_map = flat[id.0 as usize]
            .1
            .options
            .as_ref()
            .and_then(|o| o.map_entry)
            .unwrap_or(false);
        if is_map {
            FieldType::Map(id)
        } else {
            FieldType::Message(id)
        }
    } else {
        FieldType::Scalar(Scalar::from_proto(proto_type).ok_or_else(|| {
            CodecError::Schema(format!(
                "{message}.{name} has unsupported protobuf type {proto_type} (groups are not supported)"
            ))
        })?)
    };
    let json_name = JSON_NAMES
        .iter()
        .find(|(m, p, _)| *m == short && *p == name)
        .map(|(_, _, j)| (*j).to_string())
        .unwrap_or_else(|| name.clone());
    let inline = matches!(ty, FieldType::Message(_))
        && INLINE_FIELDS.iter().any(|(m, n)| *m == short && *n == name);
    Ok(Field {
        json_name,
        number: number as u32,
        repeated: f.label == Some(3),
        inline,
        ty,
        name,
    })
}

fn json_form(full_name: &str, fields: &[Field]) -> JsonForm {
    match full_name {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => JsonForm::Time,
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => JsonForm::MicroTime,
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => JsonForm::Duration,
        "k8s.io.apimachinery.pkg.api.resource.Quantity"
        | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => JsonForm::Quantity,
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => JsonForm::IntOrString,
        "k8s.io.apimachinery.pkg.runtime.RawExtension"
        | "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1" => JsonForm::EmbeddedJson,
        _ => {
            // go-to-protobuf turns `type X []string` into `message X { repeated string items = 1; }`.
            let wrapper = matches!(
                fields,
                [f] if f.name == "items" && f.number == 1 && f.repeated
                    && f.ty == FieldType::Scalar(Scalar::String)
            );
            if wrapper && !full_name.ends_with("List") {
                JsonForm::StringList
            } else {
                JsonForm::Object
            }
        }
    }
}

/// The parts of `google/protobuf/descriptor.proto` this module reads.
mod descriptor {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct FileDescriptorSet {
        #[prost(message, repeated, tag = "1")]
        pub file: Vec<FileDescriptorProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct FileDescriptorProto {
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        #[prost(string, optional, tag = "2")]
        pub package: Option<String>,
        #[prost(message, repeated, tag = "4")]
        pub message_type: Vec<DescriptorProto>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct DescriptorProto {
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        #[prost(message, repeated, tag = "2")]
        pub field: Vec<FieldDescriptorProto>,
        #[prost(message, repeated, tag = "3")]
        pub nested_type: Vec<DescriptorProto>,
        #[prost(message, optional, tag = "7")]
        pub options: Option<MessageOptions>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct FieldDescriptorProto {
        #[prost(string, optional, tag = "1")]
        pub name: Option<String>,
        #[prost(int32, optional, tag = "3")]
        pub number: Option<i32>,
        #[prost(int32, optional, tag = "4")]
        pub label: Option<i32>,
        #[prost(int32, optional, tag = "5")]
        pub r#type: Option<i32>,
        #[prost(string, optional, tag = "6")]
        pub type_name: Option<String>,
        #[prost(string, optional, tag = "10")]
        pub json_name: Option<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct MessageOptions {
        #[prost(bool, optional, tag = "7")]
        pub map_entry: Option<bool>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_schema_loads_with_its_special_types() {
        let s = Schema::kubernetes();
        assert!(s.len() > 1000, "{} messages", s.len());
        let pod = s.message_id("k8s.io.api.core.v1.Pod").unwrap();
        assert_eq!(s.message_for_kind("v1", "Pod"), Some(pod));
        let time = s
            .message_id("k8s.io.apimachinery.pkg.apis.meta.v1.Time")
            .unwrap();
        assert_eq!(s.message(time).form, JsonForm::Time);
        let verbs = s
            .message_id("k8s.io.apimachinery.pkg.apis.meta.v1.Verbs")
            .unwrap();
        assert_eq!(s.message(verbs).form, JsonForm::StringList);
        let volume = s.message(s.message_id("k8s.io.api.core.v1.Volume").unwrap());
        assert!(volume.fields.iter().any(|f| f.inline));
        assert!(volume.accepts_key("hostPath") && volume.accepts_key("name"));
    }

    #[test]
    fn kinds_resolve_through_go_packages_and_meta() {
        let s = Schema::kubernetes();
        let name = |v: &str, k: &str| {
            s.message_for_kind(v, k)
                .map(|id| s.message_name(id).to_string())
        };
        assert_eq!(
            name("apps/v1", "Deployment").as_deref(),
            Some("k8s.io.api.apps.v1.Deployment")
        );
        assert_eq!(
            name("rbac.authorization.k8s.io/v1", "Role").as_deref(),
            Some("k8s.io.api.rbac.v1.Role")
        );
        assert_eq!(
            name("internal.apiserver.k8s.io/v1alpha1", "StorageVersion").as_deref(),
            Some("k8s.io.api.apiserverinternal.v1alpha1.StorageVersion")
        );
        assert_eq!(
            name("v1", "Status").as_deref(),
            Some("k8s.io.apimachinery.pkg.apis.meta.v1.Status")
        );
        assert_eq!(name("example.com/v1", "Widget"), None);
        assert_eq!(name("v1", "Time"), None, "special types are not kinds");
        assert_eq!(name("../v1", "Pod"), None);
    }

    #[test]
    fn garbage_is_not_a_schema() {
        assert!(Schema::from_descriptor_set(b"\xff\xff\xff").is_err());
    }
}
