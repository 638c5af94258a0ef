//! The API's JSON → protobuf, byte for byte as kube-apiserver's gogo-protobuf code writes it:
//! fields in field-number order, embedded messages and inline structs always written, map
//! entries sorted by key with key and value always present, repeated scalars unpacked
//! (proto2), special types in their own wire forms.
//!
//! A JSON field that is absent is not written. Go writes the zero value of a non-pointer
//! field even when its JSON omits it (`omitempty`); the schema cannot tell pointer from
//! value fields, so such bytes can differ while decoding to the same object.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::CodecError;
use super::decode::Path;
use super::gojson;
use super::schema::{FieldType, JsonForm, MessageId, Scalar, Schema};
use super::time::{GO_ZERO_TIME_UNIX, parse_duration, parse_rfc3339};
use super::wire::{self, put_bytes_field, put_key, put_nested, put_varint, put_varint_field};

/// Deeper nesting than this is refused (real objects nest about 15 deep).
const MAX_DEPTH: u32 = 100;

/// Encodes JSON values as messages of one schema.
pub(crate) struct Encoder<'s> {
    schema: &'s Schema,
}

impl<'s> Encoder<'s> {
    pub fn new(schema: &'s Schema) -> Self {
        Encoder { schema }
    }

    fn error(&self, id: MessageId, path: &Path<'_>, problem: String) -> CodecError {
        CodecError::Encode {
            type_name: self.schema.message_name(id).to_string(),
            path: path.render(),
            problem,
        }
    }

    /// Writes the fields of message `id` from the JSON object `obj`.
    pub fn object(
        &self,
        id: MessageId,
        obj: &Map<String, Value>,
        out: &mut Vec<u8>,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<(), CodecError> {
        self.check_keys(id, obj, path)?;
        self.fields(id, obj, out, path, depth)
    }

    /// Every JSON key must be a field (or, for Go's embedded `TypeMeta`, `apiVersion` and
    /// `kind`, which protobuf keeps in the envelope): nothing is dropped silently.
    fn check_keys(
        &self,
        id: MessageId,
        obj: &Map<String, Value>,
        path: &Path<'_>,
    ) -> Result<(), CodecError> {
        let msg = self.schema.message(id);
        for (key, value) in obj {
            if msg.accepts_key(key) {
                continue;
            }
            if matches!(key.as_str(), "apiVersion" | "kind") && matches!(value, Value::String(_)) {
                continue;
            }
            return Err(self.error(
                id,
                path,
                format!("unknown field {key:?}: {} has no such field", msg.full_name),
            ));
        }
        Ok(())
    }

    fn fields(
        &self,
        id: MessageId,
        obj: &Map<String, Value>,
        out: &mut Vec<u8>,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<(), CodecError> {
        if depth > MAX_DEPTH {
            return Err(self.error(
                id,
                path,
                format!("objects nest deeper than {MAX_DEPTH} levels"),
            ));
        }
        let msg = self.schema.message(id);
        for &i in &msg.encode_order {
            let field = &msg.fields[usize::from(i)];
            if field.inline
                && let FieldType::Message(child) = field.ty
            {
                // Go embeds a struct value: it is always written, from the parent's keys.
                put_nested(out, field.number, |o| {
                    self.fields(child, obj, o, path, depth + 1)
                })?;
                continue;
            }
            let Some(value) = obj.get(&field.json_name) else {
                continue;
            };
            let fpath = path.field(&field.json_name);
            match (field.ty, value) {
                (FieldType::Map(entry), Value::Object(map)) => {
                    let mut keys: Vec<&String> = map.keys().collect();
                    keys.sort_unstable();
                    for k in keys {
                        let v = &map[k.as_str()];
                        let kpath = fpath.key(k);
                        put_nested(out, field.number, |o| {
                            self.map_entry(entry, k, v, o, &kpath, depth + 1)
                        })?;
                    }
                }
                (FieldType::Map(_), Value::Null) => {}
                (FieldType::Map(_), other) => {
                    return Err(self.error(
                        id,
                        &fpath,
                        format!("expected an object (a map), found {}", json_type(other)),
                    ));
                }
                (_, Value::Array(items)) if field.repeated => {
                    for (n, item) in items.iter().enumerate() {
                        self.single(
                            id,
                            field.number,
                            field.ty,
                            item,
                            out,
                            &fpath.index(n),
                            depth,
                        )?;
                    }
                }
                (_, Value::Null) if field.repeated => {}
                (_, other) if field.repeated => {
                    return Err(self.error(
                        id,
                        &fpath,
                        format!("expected an array, found {}", json_type(other)),
                    ));
                }
                (FieldType::Message(child), Value::Null) => {
                    // A Go value-type time that is zero marshals as `null` and is written as an
                    // empty message; other nulls are nil pointers and are not written.
                    let form = self.schema.message(child).form;
                    if matches!(form, JsonForm::Time | JsonForm::MicroTime) {
                        put_key(out, field.number, wire::LEN);
                        put_varint(out, 0);
                    }
                }
                (FieldType::Scalar(_), Value::Null) => {}
                (ty, v) => self.single(id, field.number, ty, v, out, &fpath, depth)?,
            }
        }
        Ok(())
    }

    /// One value of a field (one element when repeated).
    #[allow(clippy::too_many_arguments)]
    fn single(
        &self,
        id: MessageId,
        number: u32,
        ty: FieldType,
        value: &Value,
        out: &mut Vec<u8>,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<(), CodecError> {
        match ty {
            FieldType::Scalar(s) => {
                put_key(out, number, s.wire_type());
                // Go leaves the zero value for a `null` element of a slice of scalars.
                let zero;
                let value = if value.is_null() {
                    zero = zero_of(s);
                    &zero
                } else {
                    value
                };
                self.scalar(id, s, value, out, path)
            }
            FieldType::Message(child) => put_nested(out, number, |o| {
                self.message_value(child, value, o, path, depth + 1)
            }),
            FieldType::Map(_) => {
                Err(self.error(id, path, "a repeated map is not valid protobuf".into()))
            }
        }
    }

    /// The payload of message `id` for the JSON `value` (its special form, or an object).
    fn message_value(
        &self,
        id: MessageId,
        value: &Value,
        out: &mut Vec<u8>,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<(), CodecError> {
        let form = self.schema.message(id).form;
        match (form, value) {
            (JsonForm::Object, Value::Object(obj)) => self.object(id, obj, out, path, depth),
            (JsonForm::Object, Value::Null) => Ok(()),
            (JsonForm::Object, other) => Err(self.error(
                id,
                path,
                format!("expected an object, found {}", json_type(other)),
            )),
            (JsonForm::Time | JsonForm::MicroTime, Value::Null) => Ok(()),
            (JsonForm::Time | JsonForm::MicroTime, Value::String(s)) => {
                let Some((seconds, nanos)) = parse_rfc3339(s) else {
                    return Err(self.error(id, path, format!("{s:?} is not an RFC 3339 time")));
                };
                if seconds == GO_ZERO_TIME_UNIX && nanos == 0 {
                    return Ok(()); // Go's zero time marshals to nothing
                }
                put_varint_field(out, 1, seconds as u64);
                put_varint_field(out, 2, u64::from(nanos));
                Ok(())
            }
            (JsonForm::Duration, Value::String(s)) => {
                let ns = parse_duration(s).map_err(|e| self.error(id, path, e))?;
                put_varint_field(out, 1, ns as u64);
                Ok(())
            }
            (JsonForm::Quantity, Value::String(s)) => {
                put_bytes_field(out, 1, s.as_bytes());
                Ok(())
            }
            (JsonForm::Quantity, Value::Number(n)) => {
                // Go accepts an unquoted number for a quantity.
                put_bytes_field(out, 1, n.to_string().as_bytes());
                Ok(())
            }
            (JsonForm::Quantity, Value::Null) => {
                put_bytes_field(out, 1, b"0");
                Ok(())
            }
            (JsonForm::IntOrString, Value::Number(n)) => {
                let v = n
                    .as_i64()
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(|| self.error(id, path, format!("{n} is not a 32-bit integer")))?;
                put_varint_field(out, 1, 0);
                put_varint_field(out, 2, i64::from(v) as u64);
                put_bytes_field(out, 3, b"");
                Ok(())
            }
            (JsonForm::IntOrString, Value::String(s)) => {
                put_varint_field(out, 1, 1);
                put_varint_field(out, 2, 0);
                put_bytes_field(out, 3, s.as_bytes());
                Ok(())
            }
            (JsonForm::IntOrString, Value::Null) => {
                put_varint_field(out, 1, 0);
                put_varint_field(out, 2, 0);
                put_bytes_field(out, 3, b"");
                Ok(())
            }
            (JsonForm::EmbeddedJson, Value::Null) => Ok(()),
            (JsonForm::EmbeddedJson, v) => {
                put_bytes_field(out, 1, &gojson::to_vec(v));
                Ok(())
            }
            (JsonForm::StringList, Value::Null) => Ok(()),
            (JsonForm::StringList, Value::Array(items)) => {
                for (n, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => put_bytes_field(out, 1, s.as_bytes()),
                        other => {
                            return Err(self.error(
                                id,
                                &path.index(n),
                                format!("expected a string, found {}", json_type(other)),
                            ));
                        }
                    }
                }
                Ok(())
            }
            (form, other) => Err(self.error(
                id,
                path,
                format!(
                    "expected {}, found {}",
                    form_expects(form),
                    json_type(other)
                ),
            )),
        }
    }

    /// One map entry: key (always written) and value (always, except a nil `[]byte`).
    fn map_entry(
        &self,
        entry: MessageId,
        key: &str,
        value: &Value,
        out: &mut Vec<u8>,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<(), CodecError> {
        let msg = self.schema.message(entry);
        let (Some(kf), Some(vf)) = (msg.field_by_number(1), msg.field_by_number(2)) else {
            return Err(self.error(entry, path, "map entry without key or value".into()));
        };
        let FieldType::Scalar(ks) = kf.ty else {
            return Err(self.error(entry, path, "map key is not a scalar".into()));
        };
        put_key(out, 1, ks.wire_type());
        let key_value = match ks {
            Scalar::String | Scalar::Bytes => Value::String(key.to_string()),
            Scalar::Bool => Value::Bool(key == "true"),
            _ => serde_json::from_str::<Value>(key)
                .ok()
                .filter(Value::is_number)
                .ok_or_else(|| {
                    self.error(entry, path, format!("map key {key:?} is not a number"))
                })?,
        };
        if ks == Scalar::Bytes {
            put_varint(out, key.len() as u64);
            out.extend_from_slice(key.as_bytes());
        } else {
            self.scalar(entry, ks, &key_value, out, path)?;
        }
        match (vf.ty, value) {
            (FieldType::Scalar(Scalar::Bytes), Value::Null) => Ok(()),
            (FieldType::Scalar(s), Value::Null) => {
                put_key(out, 2, s.wire_type());
                self.scalar(entry, s, &zero_of(s), out, path)
            }
            (ty, v) => self.single(entry, 2, ty, v, out, path, depth),
        }
    }

    fn scalar(
        &self,
        id: MessageId,
        s: Scalar,
        value: &Value,
        out: &mut Vec<u8>,
        path: &Path<'_>,
    ) -> Result<(), CodecError> {
        let mismatch = || {
            self.error(
                id,
                path,
                format!(
                    "expected {} ({}), found {}",
                    scalar_expects(s),
                    s.name(),
                    json_type(value)
                ),
            )
        };
        let int = |lo: i64, hi: i64| -> Result<i64, CodecError> {
            let v = value.as_i64().ok_or_else(mismatch)?;
            if v < lo || v > hi {
                return Err(self.error(id, path, format!("{v} is out of range for {}", s.name())));
            }
            Ok(v)
        };
        match s {
            Scalar::String => {
                let text = value.as_str().ok_or_else(mismatch)?;
                put_varint(out, text.len() as u64);
                out.extend_from_slice(text.as_bytes());
            }
            Scalar::Bytes => {
                let text = value.as_str().ok_or_else(mismatch)?;
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|e| self.error(id, path, format!("not base64: {e}")))?;
                put_varint(out, bytes.len() as u64);
                out.extend_from_slice(&bytes);
            }
            Scalar::Bool => put_varint(out, u64::from(value.as_bool().ok_or_else(mismatch)?)),
            Scalar::Int32 | Scalar::Enum => {
                put_varint(out, int(i64::from(i32::MIN), i64::from(i32::MAX))? as u64)
            }
            Scalar::Int64 => put_varint(out, int(i64::MIN, i64::MAX)? as u64),
            Scalar::Sint32 => {
                let v = int(i64::from(i32::MIN), i64::from(i32::MAX))? as i32;
                put_varint(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
            }
            Scalar::Sint64 => {
                let v = int(i64::MIN, i64::MAX)?;
                put_varint(out, ((v << 1) ^ (v >> 63)) as u64);
            }
            Scalar::Uint32 => {
                let v = value.as_u64().ok_or_else(mismatch)?;
                let v = u32::try_from(v)
                    .map_err(|_| self.error(id, path, format!("{v} is out of range for uint32")))?;
                put_varint(out, u64::from(v));
            }
            Scalar::Uint64 => put_varint(out, value.as_u64().ok_or_else(mismatch)?),
            Scalar::Fixed32 => {
                let v = value.as_u64().ok_or_else(mismatch)?;
                let v = u32::try_from(v).map_err(|_| {
                    self.error(id, path, format!("{v} is out of range for fixed32"))
                })?;
                out.extend_from_slice(&v.to_le_bytes());
            }
            Scalar::Sfixed32 => {
                let v = int(i64::from(i32::MIN), i64::from(i32::MAX))? as i32;
                out.extend_from_slice(&v.to_le_bytes());
            }
            Scalar::Fixed64 => {
                out.extend_from_slice(&value.as_u64().ok_or_else(mismatch)?.to_le_bytes())
            }
            Scalar::Sfixed64 => out.extend_from_slice(&int(i64::MIN, i64::MAX)?.to_le_bytes()),
            Scalar::Float => {
                out.extend_from_slice(&(value.as_f64().ok_or_else(mismatch)? as f32).to_le_bytes())
            }
            Scalar::Double => {
                out.extend_from_slice(&value.as_f64().ok_or_else(mismatch)?.to_le_bytes())
            }
        }
        Ok(())
    }
}

fn zero_of(s: Scalar) -> Value {
    match s {
        Scalar::String | Scalar::Bytes => Value::String(String::new()),
        Scalar::Bool => Value::Bool(false),
        Scalar::Float | Scalar::Double => Value::from(0.0),
        _ => Value::from(0),
    }
}

/// The JSON type of a value, for messages.
pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn scalar_expects(s: Scalar) -> &'static str {
    match s {
        Scalar::String => "a string",
        Scalar::Bytes => "a base64 string",
        Scalar::Bool => "a boolean",
        Scalar::Float | Scalar::Double => "a number",
        _ => "an integer",
    }
}

fn form_expects(form: JsonForm) -> &'static str {
    match form {
        JsonForm::Object => "an object",
        JsonForm::Time | JsonForm::MicroTime => "an RFC 3339 time string",
        JsonForm::Duration => "a Go duration string",
        JsonForm::Quantity => "a quantity string",
        JsonForm::IntOrString => "an integer or a string",
        JsonForm::EmbeddedJson => "JSON",
        JsonForm::StringList => "an array of strings",
    }
}
