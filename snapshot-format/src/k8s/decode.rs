//! Protobuf → the API's JSON, driven by the schema.
//!
//! Everything on the wire shows up in the output: fields in the schema as JSON (zero values
//! included: Go's pointer fields make `0` and "unset" different things), fields not in the
//! schema as [`Issue`]s with their bytes. Offsets in errors are absolute in the stored value.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{FieldType, JsonForm, MessageId, Scalar, Schema};
use super::time::{GO_ZERO_TIME_UNIX, format_duration, format_rfc3339};
use super::wire::{self, Reader, WireError};
use super::{CodecError, Issue, IssueKind};

/// Deeper nesting than this is treated as damage (real objects nest about 15 deep).
const MAX_DEPTH: u32 = 100;

/// One step of a JSON path.
#[derive(Clone, Copy)]
pub(crate) enum Seg<'a> {
    Field(&'a str),
    Index(usize),
    Key(&'a str),
}

/// A JSON path as a chain on the stack: free to extend, rendered only for errors and issues.
#[derive(Clone, Copy)]
pub(crate) struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Option<Seg<'a>>,
}

impl<'a> Path<'a> {
    /// The top level.
    pub const ROOT: Path<'static> = Path {
        parent: None,
        seg: None,
    };

    /// This path, then `.name`.
    pub fn field(&'a self, name: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Some(Seg::Field(name)),
        }
    }

    /// This path, then `[index]`.
    pub fn index(&'a self, index: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Some(Seg::Index(index)),
        }
    }

    /// This path, then `["key"]`.
    pub fn key(&'a self, key: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Some(Seg::Key(key)),
        }
    }

    /// `.spec.containers[0].env["NAME"]`; empty for the top level.
    pub fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut p = Some(self);
        while let Some(cur) = p {
            if let Some(s) = cur.seg {
                segs.push(s);
            }
            p = cur.parent;
        }
        let mut out = String::new();
        for s in segs.iter().rev() {
            match s {
                Seg::Field(name) => {
                    out.push('.');
                    out.push_str(name);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
                Seg::Key(k) => out.push_str(&format!("[{k:?}]")),
            }
        }
        out
    }
}

/// Decodes messages of one buffer.
pub(crate) struct Decoder<'s, 'b> {
    schema: &'s Schema,
    buf: &'b [u8],
    pub issues: Vec<Issue>,
    /// Emptied slot vectors for reuse: one message's fields are gathered in one, and
    /// allocating it per message costs more than decoding small messages.
    slot_pool: Vec<Vec<Option<Value>>>,
}

/// A special type's fields 1..=3, as read from the wire.
#[derive(Default)]
struct SmallFields {
    varints: [Option<u64>; 4],
    ranges: [Option<(usize, usize)>; 4],
}

impl<'s, 'b> Decoder<'s, 'b> {
    pub fn new(schema: &'s Schema, buf: &'b [u8]) -> Self {
        Decoder {
            schema,
            buf,
            issues: Vec::new(),
            slot_pool: Vec::new(),
        }
    }

    fn error(&self, id: MessageId, path: &Path<'_>, offset: usize, problem: String) -> CodecError {
        CodecError::Protobuf {
            type_name: self.schema.message_name(id).to_string(),
            path: path.render(),
            offset,
            problem,
        }
    }

    fn wire_error(&self, id: MessageId, path: &Path<'_>, e: WireError) -> CodecError {
        self.error(id, path, e.offset, e.problem)
    }

    /// Decodes message `id` in `buf[start..end]` as its JSON value.
    pub fn message_value(
        &mut self,
        id: MessageId,
        start: usize,
        end: usize,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<Value, CodecError> {
        let msg = self.schema.message(id);
        match msg.form {
            JsonForm::Object => {
                let slots = self.fields(id, start, end, path, depth)?;
                let mut map = Map::with_capacity(self.json_len(id, &slots));
                self.assemble(id, slots, &mut map);
                Ok(Value::Object(map))
            }
            JsonForm::StringList => {
                let mut map = Map::new();
                self.object_into(id, start, end, path, depth, &mut map)?;
                Ok(map.remove("items").unwrap_or(Value::Null))
            }
            form => self.special(id, form, start, end, path),
        }
    }

    /// Decodes message `id` in `buf[start..end]`, appending its JSON fields to `out`.
    pub fn object_into(
        &mut self,
        id: MessageId,
        start: usize,
        end: usize,
        path: &Path<'_>,
        depth: u32,
        out: &mut Map<String, Value>,
    ) -> Result<(), CodecError> {
        let slots = self.fields(id, start, end, path, depth)?;
        self.assemble(id, slots, out);
        Ok(())
    }

    /// Number of JSON keys the gathered fields make.
    fn json_len(&self, id: MessageId, slots: &[Option<Value>]) -> usize {
        let msg = self.schema.message(id);
        msg.fields
            .iter()
            .zip(slots)
            .map(|(f, slot)| match slot {
                None => 0,
                Some(Value::Object(inner)) if f.inline => inner.len(),
                Some(_) => 1,
            })
            .sum()
    }

    /// Moves gathered fields into `out` in declaration (JSON) order; returns the slot vector
    /// to the pool.
    fn assemble(
        &mut self,
        id: MessageId,
        mut slots: Vec<Option<Value>>,
        out: &mut Map<String, Value>,
    ) {
        let msg = self.schema.message(id);
        for (field, slot) in msg.fields.iter().zip(slots.iter_mut()) {
            match slot.take() {
                None => {}
                Some(Value::Object(inner)) if field.inline => out.extend(inner),
                Some(v) => {
                    out.insert(field.json_name.clone(), v);
                }
            }
        }
        slots.clear();
        self.slot_pool.push(slots);
    }

    /// Reads the fields of message `id` into one slot per declared field.
    fn fields(
        &mut self,
        id: MessageId,
        start: usize,
        end: usize,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<Vec<Option<Value>>, CodecError> {
        if depth > MAX_DEPTH {
            return Err(self.error(
                id,
                path,
                start,
                format!("messages nest deeper than {MAX_DEPTH} levels"),
            ));
        }
        let schema = self.schema;
        let msg = schema.message(id);
        let mut slots = self.slot_pool.pop().unwrap_or_default();
        slots.resize_with(msg.fields.len(), || None);
        let mut r = Reader::new(self.buf, start, end);
        while !r.is_done() {
            let field_start = r.pos();
            let (number, wire_type) = r.key().map_err(|e| self.wire_error(id, path, e))?;
            let Some(index) = msg.index_of_number(number) else {
                let field_end = r
                    .skip(wire_type)
                    .map_err(|e| self.wire_error(id, path, e))?;
                self.issues.push(Issue {
                    path: path.render(),
                    kind: IssueKind::UnknownField {
                        message: msg.full_name.clone(),
                        number,
                        wire_type,
                        bytes: self.buf[field_start..field_end].to_vec(),
                    },
                });
                continue;
            };
            let field = &msg.fields[index];
            let fpath = path.field(&field.json_name);
            let slot = &mut slots[index];
            match field.ty {
                FieldType::Scalar(s) => {
                    if field.repeated && wire_type == wire::LEN && s.wire_type() != wire::LEN {
                        // Packed encoding; gogo reads it for every repeated scalar.
                        let (ps, pe) = r
                            .len_delimited()
                            .map_err(|e| self.wire_error(id, &fpath, e))?;
                        let mut packed = Reader::new(self.buf, ps, pe);
                        while !packed.is_done() {
                            let v = self.scalar(id, s, &mut packed, &fpath)?;
                            push(slot, v);
                        }
                        continue;
                    }
                    self.expect_wire_type(
                        id,
                        &fpath,
                        field_start,
                        wire_type,
                        s.wire_type(),
                        s.name(),
                    )?;
                    let v = self.scalar(id, s, &mut r, &fpath)?;
                    if field.repeated {
                        push(slot, v);
                    } else {
                        *slot = Some(v);
                    }
                }
                FieldType::Message(child) => {
                    self.expect_wire_type(
                        id,
                        &fpath,
                        field_start,
                        wire_type,
                        wire::LEN,
                        "message",
                    )?;
                    let (s, e) = r
                        .len_delimited()
                        .map_err(|e| self.wire_error(id, &fpath, e))?;
                    if field.repeated {
                        let i = match slot {
                            Some(Value::Array(a)) => a.len(),
                            _ => 0,
                        };
                        let v = self.message_value(child, s, e, &fpath.index(i), depth + 1)?;
                        push(slot, v);
                    } else {
                        let v = self.message_value(child, s, e, &fpath, depth + 1)?;
                        merge(slot, v);
                    }
                }
                FieldType::Map(entry) => {
                    self.expect_wire_type(
                        id,
                        &fpath,
                        field_start,
                        wire_type,
                        wire::LEN,
                        "map entry",
                    )?;
                    let (s, e) = r
                        .len_delimited()
                        .map_err(|e| self.wire_error(id, &fpath, e))?;
                    let (k, v) = self.map_entry(entry, s, e, &fpath, depth + 1)?;
                    match slot {
                        Some(Value::Object(m)) => {
                            m.insert(k, v);
                        }
                        _ => {
                            let mut m = Map::new();
                            m.insert(k, v);
                            *slot = Some(Value::Object(m));
                        }
                    }
                }
            }
        }
        Ok(slots)
    }

    fn expect_wire_type(
        &self,
        id: MessageId,
        path: &Path<'_>,
        offset: usize,
        found: u8,
        expected: u8,
        what: &str,
    ) -> Result<(), CodecError> {
        if found == expected {
            return Ok(());
        }
        Err(self.error(
            id,
            path,
            offset,
            format!("wire type {found} where a {what} (wire type {expected}) belongs"),
        ))
    }

    fn scalar(
        &mut self,
        id: MessageId,
        s: Scalar,
        r: &mut Reader<'_>,
        path: &Path<'_>,
    ) -> Result<Value, CodecError> {
        let wire = |d: &Self, e| d.wire_error(id, path, e);
        Ok(match s {
            Scalar::Int64 => Value::from(r.varint().map_err(|e| wire(self, e))? as i64),
            Scalar::Int32 | Scalar::Enum => {
                Value::from(r.varint().map_err(|e| wire(self, e))? as i32)
            }
            Scalar::Uint64 => Value::from(r.varint().map_err(|e| wire(self, e))?),
            Scalar::Uint32 => Value::from(r.varint().map_err(|e| wire(self, e))? as u32),
            Scalar::Bool => Value::Bool(r.varint().map_err(|e| wire(self, e))? != 0),
            Scalar::Sint32 => {
                let v = r.varint().map_err(|e| wire(self, e))? as u32;
                Value::from(((v >> 1) as i32) ^ -((v & 1) as i32))
            }
            Scalar::Sint64 => {
                let v = r.varint().map_err(|e| wire(self, e))?;
                Value::from(((v >> 1) as i64) ^ -((v & 1) as i64))
            }
            Scalar::Fixed32 => Value::from(u32::from_le_bytes(
                r.fixed::<4>().map_err(|e| wire(self, e))?,
            )),
            Scalar::Sfixed32 => Value::from(i32::from_le_bytes(
                r.fixed::<4>().map_err(|e| wire(self, e))?,
            )),
            Scalar::Float => Value::from(f64::from(f32::from_le_bytes(
                r.fixed::<4>().map_err(|e| wire(self, e))?,
            ))),
            Scalar::Fixed64 => Value::from(u64::from_le_bytes(
                r.fixed::<8>().map_err(|e| wire(self, e))?,
            )),
            Scalar::Sfixed64 => Value::from(i64::from_le_bytes(
                r.fixed::<8>().map_err(|e| wire(self, e))?,
            )),
            Scalar::Double => Value::from(f64::from_le_bytes(
                r.fixed::<8>().map_err(|e| wire(self, e))?,
            )),
            Scalar::String => {
                let (s, e) = r.len_delimited().map_err(|e| wire(self, e))?;
                Value::String(self.string(id, s, e, path))
            }
            Scalar::Bytes => {
                let (s, e) = r.len_delimited().map_err(|e| wire(self, e))?;
                Value::String(base64::engine::general_purpose::STANDARD.encode(&self.buf[s..e]))
            }
        })
    }

    /// A protobuf string; Go strings may hold any bytes, JSON cannot: invalid UTF-8 becomes
    /// U+FFFD as Go's encoder does, and the bytes are kept in an issue.
    fn string(&mut self, id: MessageId, start: usize, end: usize, path: &Path<'_>) -> String {
        let bytes = &self.buf[start..end];
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            Err(_) => {
                self.issues.push(Issue {
                    path: path.render(),
                    kind: IssueKind::InvalidUtf8 {
                        message: self.schema.message_name(id).to_string(),
                        bytes: bytes.to_vec(),
                    },
                });
                String::from_utf8_lossy(bytes).into_owned()
            }
        }
    }

    /// One map entry {key = 1, value = 2}: the key as a JSON object key, and the value.
    fn map_entry(
        &mut self,
        entry: MessageId,
        start: usize,
        end: usize,
        path: &Path<'_>,
        depth: u32,
    ) -> Result<(String, Value), CodecError> {
        let schema = self.schema;
        let msg = schema.message(entry);
        let (Some(key_field), Some(value_field)) = (msg.field_by_number(1), msg.field_by_number(2))
        else {
            return Err(self.error(entry, path, start, "map entry without key or value".into()));
        };
        let mut key: Option<Value> = None;
        let mut value: Option<Value> = None;
        let mut r = Reader::new(self.buf, start, end);
        while !r.is_done() {
            let field_start = r.pos();
            let (number, wire_type) = r.key().map_err(|e| self.wire_error(entry, path, e))?;
            match number {
                1 => {
                    let FieldType::Scalar(s) = key_field.ty else {
                        return Err(self.error(
                            entry,
                            path,
                            field_start,
                            "map key is not a scalar".into(),
                        ));
                    };
                    self.expect_wire_type(
                        entry,
                        path,
                        field_start,
                        wire_type,
                        s.wire_type(),
                        s.name(),
                    )?;
                    key = Some(self.scalar(entry, s, &mut r, path)?);
                }
                2 => {
                    let key_text = key.as_ref().map(key_string).unwrap_or_default();
                    let vpath = path.key(&key_text);
                    value = Some(match value_field.ty {
                        FieldType::Scalar(s) => {
                            self.expect_wire_type(
                                entry,
                                &vpath,
                                field_start,
                                wire_type,
                                s.wire_type(),
                                s.name(),
                            )?;
                            self.scalar(entry, s, &mut r, &vpath)?
                        }
                        FieldType::Message(child) | FieldType::Map(child) => {
                            self.expect_wire_type(
                                entry,
                                &vpath,
                                field_start,
                                wire_type,
                                wire::LEN,
                                "message",
                            )?;
                            let (s, e) = r
                                .len_delimited()
                                .map_err(|e| self.wire_error(entry, &vpath, e))?;
                            self.message_value(child, s, e, &vpath, depth + 1)?
                        }
                    });
                }
                _ => {
                    let field_end = r
                        .skip(wire_type)
                        .map_err(|e| self.wire_error(entry, path, e))?;
                    self.issues.push(Issue {
                        path: path.render(),
                        kind: IssueKind::UnknownField {
                            message: msg.full_name.clone(),
                            number,
                            wire_type,
                            bytes: self.buf[field_start..field_end].to_vec(),
                        },
                    });
                }
            }
        }
        let key = key.as_ref().map(key_string).unwrap_or_default();
        let value = match value {
            Some(v) => v,
            None => match value_field.ty {
                FieldType::Scalar(Scalar::Bytes) => Value::Null, // Go: a nil []byte
                FieldType::Scalar(s) => scalar_default(s),
                FieldType::Message(child) | FieldType::Map(child) => {
                    self.message_value(child, end, end, &path.key(&key), depth + 1)?
                }
            },
        };
        Ok((key, value))
    }

    /// Reads a special type's fields (numbers 1..=3; anything else is an issue).
    fn small_fields(
        &mut self,
        id: MessageId,
        start: usize,
        end: usize,
        path: &Path<'_>,
    ) -> Result<SmallFields, CodecError> {
        let schema = self.schema;
        let msg = schema.message(id);
        let mut out = SmallFields::default();
        let mut r = Reader::new(self.buf, start, end);
        while !r.is_done() {
            let field_start = r.pos();
            let (number, wire_type) = r.key().map_err(|e| self.wire_error(id, path, e))?;
            let known = msg
                .field_by_number(number)
                .filter(|_| number < 4)
                .and_then(|f| match f.ty {
                    FieldType::Scalar(s) => Some(s),
                    _ => None,
                });
            match known {
                Some(s) => {
                    self.expect_wire_type(
                        id,
                        path,
                        field_start,
                        wire_type,
                        s.wire_type(),
                        s.name(),
                    )?;
                    let n = number as usize;
                    if s.wire_type() == wire::LEN {
                        out.ranges[n] = Some(
                            r.len_delimited()
                                .map_err(|e| self.wire_error(id, path, e))?,
                        );
                    } else if s.wire_type() == wire::VARINT {
                        out.varints[n] =
                            Some(r.varint().map_err(|e| self.wire_error(id, path, e))?);
                    } else {
                        r.skip(wire_type)
                            .map_err(|e| self.wire_error(id, path, e))?;
                    }
                }
                None => {
                    let field_end = r
                        .skip(wire_type)
                        .map_err(|e| self.wire_error(id, path, e))?;
                    self.issues.push(Issue {
                        path: path.render(),
                        kind: IssueKind::UnknownField {
                            message: msg.full_name.clone(),
                            number,
                            wire_type,
                            bytes: self.buf[field_start..field_end].to_vec(),
                        },
                    });
                }
            }
        }
        Ok(out)
    }

    /// The JSON form of `Time`, `Quantity`, `IntOrString` and the other special types.
    fn special(
        &mut self,
        id: MessageId,
        form: JsonForm,
        start: usize,
        end: usize,
        path: &Path<'_>,
    ) -> Result<Value, CodecError> {
        let f = self.small_fields(id, start, end, path)?;
        Ok(match form {
            JsonForm::Time | JsonForm::MicroTime => {
                if start == end {
                    return Ok(Value::Null); // Go's zero time
                }
                let seconds = f.varints[1].unwrap_or(0) as i64;
                let raw_nanos = i64::from(f.varints[2].unwrap_or(0) as i32);
                // time.Unix normalises nanoseconds outside [0, 1e9).
                let seconds = seconds.saturating_add(raw_nanos.div_euclid(1_000_000_000));
                let nanos = raw_nanos.rem_euclid(1_000_000_000) as u32;
                if seconds == GO_ZERO_TIME_UNIX && nanos == 0 {
                    return Ok(Value::Null);
                }
                let micro = form == JsonForm::MicroTime;
                let kept = if micro {
                    nanos.is_multiple_of(1000)
                } else {
                    nanos == 0
                };
                if !kept {
                    self.issues.push(Issue {
                        path: path.render(),
                        kind: IssueKind::TimePrecision { seconds, nanos },
                    });
                }
                Value::String(format_rfc3339(seconds, micro.then_some(nanos / 1000)))
            }
            JsonForm::Duration => Value::String(format_duration(f.varints[1].unwrap_or(0) as i64)),
            JsonForm::Quantity => match f.ranges[1] {
                Some((s, e)) => Value::String(self.string(id, s, e, path)),
                None => Value::String("0".into()),
            },
            JsonForm::IntOrString => {
                let int_val = f.varints[2].unwrap_or(0) as i32;
                let str_val = match f.ranges[3] {
                    Some((s, e)) => self.string(id, s, e, path),
                    None => String::new(),
                };
                match f.varints[1].unwrap_or(0) as i64 {
                    0 => Value::from(int_val),
                    1 => Value::String(str_val),
                    other => {
                        self.issues.push(Issue {
                            path: path.render(),
                            kind: IssueKind::BadIntOrString { type_code: other },
                        });
                        let mut m = Map::new();
                        m.insert("type".into(), Value::from(other));
                        m.insert("intVal".into(), Value::from(int_val));
                        m.insert("strVal".into(), Value::String(str_val));
                        Value::Object(m)
                    }
                }
            }
            JsonForm::EmbeddedJson => match f.ranges[1] {
                None => Value::Null,
                Some((s, e)) if s == e => Value::Null,
                Some((s, e)) => {
                    let bytes = &self.buf[s..e];
                    match serde_json::from_slice(bytes) {
                        Ok(v) => v,
                        Err(_) => {
                            self.issues.push(Issue {
                                path: path.render(),
                                kind: IssueKind::NotJson {
                                    message: self.schema.message_name(id).to_string(),
                                    bytes: bytes.to_vec(),
                                },
                            });
                            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
                        }
                    }
                }
            },
            JsonForm::Object | JsonForm::StringList => Value::Null, // handled by message_value
        })
    }
}

fn push(slot: &mut Option<Value>, v: Value) {
    match slot {
        Some(Value::Array(a)) => a.push(v),
        _ => *slot = Some(Value::Array(vec![v])),
    }
}

/// A message field seen twice is merged, as protobuf (and gogo) do.
fn merge(slot: &mut Option<Value>, v: Value) {
    match (slot.as_mut(), v) {
        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
        (_, v) => *slot = Some(v),
    }
}

fn key_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn scalar_default(s: Scalar) -> Value {
    match s {
        Scalar::String => Value::String(String::new()),
        Scalar::Bool => Value::Bool(false),
        Scalar::Bytes => Value::Null,
        Scalar::Float | Scalar::Double => Value::from(0.0),
        _ => Value::from(0),
    }
}
