//! A minimal, borrowing protobuf field reader for the two messages on the hot path
//! (`walpb.Record` and `raftpb.Entry`): no allocation, every length checked against the
//! bytes present. Everything else is decoded with `prost`.

/// A field value, borrowing from the message bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Value<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2.
    Bytes(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

/// Iterates the fields of one message. Stops with an error on a truncated field, a
/// varint longer than 10 bytes, a length running past the end, or a group (wire types 3
/// and 4; etcd never writes them).
pub(crate) struct Fields<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Fields { bytes, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for shift in 0..10 {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err(format!("varint truncated at byte {}", self.pos));
            };
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * shift);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(format!(
            "varint longer than 10 bytes ending at byte {}",
            self.pos
        ))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "field of {n} bytes at byte {} runs past the end ({} bytes)",
                    self.pos,
                    self.bytes.len()
                )
            })?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Value<'a>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.bytes.len() {
            return None;
        }
        let result = (|| {
            let key = self.varint()?;
            let tag = u32::try_from(key >> 3)
                .map_err(|_| format!("field number {} too large", key >> 3))?;
            if tag == 0 {
                return Err("field number 0".to_string());
            }
            let value = match key & 7 {
                0 => Value::Varint(self.varint()?),
                1 => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(self.take(8)?);
                    Value::Fixed64(u64::from_le_bytes(a))
                }
                2 => {
                    let len = self.varint()?;
                    let len =
                        usize::try_from(len).map_err(|_| format!("length {len} too large"))?;
                    Value::Bytes(self.take(len)?)
                }
                5 => {
                    let mut a = [0u8; 4];
                    a.copy_from_slice(self.take(4)?);
                    Value::Fixed32(u32::from_le_bytes(a))
                }
                w => return Err(format!("unsupported wire type {w} for field {tag}")),
            };
            Ok((tag, value))
        })();
        if result.is_err() {
            // Stop after the first error.
            self.pos = self.bytes.len();
        }
        Some(result)
    }
}

/// The value of a varint field, or an error naming the field when the wire type differs.
pub(crate) fn varint(name: &str, value: Value<'_>) -> Result<u64, String> {
    match value {
        Value::Varint(v) => Ok(v),
        other => Err(format!(
            "field {name} has wire type {}, expected varint",
            wire_name(other)
        )),
    }
}

/// The value of a length-delimited field.
pub(crate) fn bytes<'a>(name: &str, value: Value<'a>) -> Result<&'a [u8], String> {
    match value {
        Value::Bytes(b) => Ok(b),
        other => Err(format!(
            "field {name} has wire type {}, expected length-delimited",
            wire_name(other)
        )),
    }
}

fn wire_name(value: Value<'_>) -> &'static str {
    match value {
        Value::Varint(_) => "varint",
        Value::Fixed64(_) => "fixed64",
        Value::Bytes(_) => "length-delimited",
        Value::Fixed32(_) => "fixed32",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields() {
        // type=2, crc=0x12345678, data="ab"
        let msg = [
            0x08, 0x02, 0x10, 0xf8, 0xac, 0xd1, 0x91, 0x01, 0x1a, 0x02, b'a', b'b',
        ];
        let fields: Vec<_> = Fields::new(&msg).collect::<Result<_, _>>().unwrap();
        assert_eq!(
            fields,
            vec![
                (1, Value::Varint(2)),
                (2, Value::Varint(0x1234_5678)),
                (3, Value::Bytes(b"ab"))
            ]
        );
    }

    #[test]
    fn rejects_truncation_and_overlong() {
        assert!(Fields::new(&[0x1a, 0x05, 1]).next().unwrap().is_err());
        assert!(Fields::new(&[0x08, 0xff, 0xff]).next().unwrap().is_err());
        assert!(
            Fields::new(
                &[0x08; 1]
                    .iter()
                    .chain([0xff; 11].iter())
                    .copied()
                    .collect::<Vec<_>>()
            )
            .next()
            .unwrap()
            .is_err()
        );
        assert!(Fields::new(&[0x0b]).next().unwrap().is_err()); // group
        assert!(
            Fields::new(&[
                0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01
            ])
            .next()
            .unwrap()
            .is_err()
        );
        let mut f = Fields::new(&[0x0b, 0x08, 0x01]);
        assert!(f.next().unwrap().is_err());
        assert!(f.next().is_none());
    }
}
