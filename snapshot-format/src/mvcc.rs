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

    fn field(&mut self) -> Result<(u32, WireValue<'a>), String> {
        let tag = self.varint()?;
        let number =
            u32::try_from(tag >> 3).map_err(|_| format!("field number {} too large", tag >> 3))?;
        if number == 0 {
            return Err("field number 0".into());
        }
        let value = match tag & 7 {
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
            t => return Err(format!("wire type {t} of field {number} is not supported")),
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
    }
}
