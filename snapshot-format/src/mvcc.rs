//! etcd's mvcc record types (`mvccpb`), as stored in the `key` bucket and sent over gRPC.
//!
//! Declared with `prost` derives so no `protoc` is needed to build.

/// `mvccpb.KeyValue`: one revision of one key.
#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct KeyValue {
    /// The user key.
    #[prost(bytes = "vec", tag = "1")]
    pub key: Vec<u8>,
    /// Revision of the last creation of this key.
    #[prost(int64, tag = "2")]
    pub create_revision: i64,
    /// Revision of the last modification of this key.
    #[prost(int64, tag = "3")]
    pub mod_revision: i64,
    /// Number of modifications since the key was created (1 on creation).
    #[prost(int64, tag = "4")]
    pub version: i64,
    /// The value.
    #[prost(bytes = "vec", tag = "5")]
    pub value: Vec<u8>,
    /// Lease ID attached to the key, 0 for none.
    #[prost(int64, tag = "6")]
    pub lease: i64,
}

/// `mvccpb.Event.EventType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum EventType {
    /// A put.
    Put = 0,
    /// A delete.
    Delete = 1,
}

/// `mvccpb.Event`: a watch event.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Event {
    /// Put or delete.
    #[prost(enumeration = "EventType", tag = "1")]
    pub r#type: i32,
    /// The key-value after the event.
    #[prost(message, optional, tag = "2")]
    pub kv: Option<KeyValue>,
    /// The key-value before the event, when requested.
    #[prost(message, optional, tag = "3")]
    pub prev_kv: Option<KeyValue>,
}

/// A `KeyValue` read in place: key and value borrow from the encoded bytes, so large
/// values are not copied (the check reads every record of the database this way).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KeyValueRef<'a> {
    /// The user key.
    pub key: &'a [u8],
    /// Revision of the last creation of this key.
    pub create_revision: i64,
    /// Revision of this modification.
    pub mod_revision: i64,
    /// Modifications since creation.
    pub version: i64,
    /// The value.
    pub value: &'a [u8],
    /// Lease id.
    pub lease: i64,
}

impl<'a> KeyValueRef<'a> {
    /// Parses an encoded `mvccpb.KeyValue` as prost would (unknown fields skipped, a known
    /// field with the wrong wire type is an error).
    pub fn parse(bytes: &'a [u8]) -> Result<Self, String> {
        let mut kv = KeyValueRef::default();
        for field in Fields::new(bytes) {
            let (number, value) = field?;
            let wrong = || format!("field {number} has the wrong wire type");
            match (number, value) {
                (1, WireValue::Bytes(b)) => kv.key = b,
                (5, WireValue::Bytes(b)) => kv.value = b,
                (2, WireValue::Varint(v)) => kv.create_revision = v as i64,
                (3, WireValue::Varint(v)) => kv.mod_revision = v as i64,
                (4, WireValue::Varint(v)) => kv.version = v as i64,
                (6, WireValue::Varint(v)) => kv.lease = v as i64,
                (1..=6, _) => return Err(wrong()),
                _ => {}
            }
        }
        Ok(kv)
    }
}

/// A protobuf field value on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WireValue<'a> {
    Varint(u64),
    Fixed64,
    Bytes(&'a [u8]),
    Fixed32,
    Group,
}

/// Iterates the fields of an encoded protobuf message without decoding them.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(format!("varint runs past the end at byte {}", self.pos));
            };
            self.pos += 1;
            // As prost: the tenth byte may only carry the top bit of a u64.
            if i == 9 && byte > 1 {
                return Err(format!("varint overflows 64 bits at byte {}", self.pos));
            }
            v |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint longer than 10 bytes at byte {}", self.pos))
    }

    fn skip(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let Some(end) = end else {
            return Err(format!(
                "field of {n} bytes at byte {} runs past the end",
                self.pos
            ));
        };
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    /// Field numbers above this are invalid (protobuf's limit, as prost enforces it).
    const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;
    /// Nesting of groups prost accepts.
    const MAX_GROUP_DEPTH: u32 = 100;

    fn tag(&mut self) -> Result<(u32, u64), String> {
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 || number > Self::MAX_FIELD_NUMBER {
            return Err(format!("invalid field number {number}"));
        }
        Ok((number as u32, tag & 7))
    }

    /// Skips a group (wire type 3) up to its matching end tag, as prost skips unknown ones.
    fn skip_group(&mut self, number: u32, depth: u32) -> Result<(), String> {
        if depth > Self::MAX_GROUP_DEPTH {
            return Err("groups nested too deeply".into());
        }
        loop {
            if self.pos >= self.buf.len() {
                return Err(format!("group {number} is not closed"));
            }
            let (inner, wire) = self.tag()?;
            match wire {
                0 => drop(self.varint()?),
                1 => drop(self.skip(8)?),
                2 => {
                    let len = usize::try_from(self.varint()?).map_err(|_| "length too large")?;
                    self.skip(len)?;
                }
                3 => self.skip_group(inner, depth + 1)?,
                4 if inner == number => return Ok(()),
                4 => return Err(format!("group {number} closed by the end tag of {inner}")),
                5 => drop(self.skip(4)?),
                t => return Err(format!("wire type {t} of field {inner} is not valid")),
            }
        }
    }

    fn field(&mut self) -> Result<(u32, WireValue<'a>), String> {
        let (number, wire) = self.tag()?;
        let value = match wire {
            0 => WireValue::Varint(self.varint()?),
            1 => {
                self.skip(8)?;
                WireValue::Fixed64
            }
            2 => {
                let len =
                    usize::try_from(self.varint()?).map_err(|_| "length too large".to_string())?;
                WireValue::Bytes(self.skip(len)?)
            }
            5 => {
                self.skip(4)?;
                WireValue::Fixed32
            }
            3 => {
                self.skip_group(number, 0)?;
                WireValue::Group
            }
            t => return Err(format!("wire type {t} of field {number} is not valid here")),
        };
        Ok((number, value))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, WireValue<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let field = self.field();
        if field.is_err() {
            self.pos = self.buf.len();
        }
        Some(field)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn key_value_ref_agrees_with_prost() {
        let kv = KeyValue {
            key: b"/registry/pods/a".to_vec(),
            create_revision: 3,
            mod_revision: 9,
            version: 4,
            value: vec![1; 500],
            lease: -5,
        };
        let bytes = kv.encode_to_vec();
        let r = KeyValueRef::parse(&bytes).unwrap();
        assert_eq!(
            (
                r.key,
                r.create_revision,
                r.mod_revision,
                r.version,
                r.value,
                r.lease
            ),
            (&kv.key[..], 3, 9, 4, &kv.value[..], -5)
        );
        for cut in 0..bytes.len() {
            assert_eq!(
                KeyValueRef::parse(&bytes[..cut]).is_ok(),
                KeyValue::decode(&bytes[..cut]).is_ok(),
                "cut {cut}"
            );
        }
        assert!(KeyValueRef::parse(&[0x0a, 0x05, 1]).is_err());
        assert!(KeyValueRef::parse(&[0x10, 0x80]).is_err());
        // A known field with the wrong wire type.
        assert!(KeyValueRef::parse(&[0x0d, 0, 0, 0, 0]).is_err());
        // Unknown groups are skipped like prost skips them; broken ones are errors.
        let cases: [&[u8]; 6] = [
            &[0x3b, 0x08, 0x01, 0x3c, 0x0a, 0x01, b'k'],
            &[0x3b, 0x08, 0x01],
            &[0x3b, 0x44],
            &[
                0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x02,
            ],
            &[
                0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01,
            ],
            &[0xf8, 0xff, 0xff, 0xff, 0x0f, 0x00],
        ];
        for case in cases {
            assert_eq!(
                KeyValueRef::parse(case).is_ok(),
                KeyValue::decode(case).is_ok(),
                "{case:02x?}"
            );
        }
        assert_eq!(KeyValueRef::parse(cases[0]).unwrap().key, b"k");
    }
}
