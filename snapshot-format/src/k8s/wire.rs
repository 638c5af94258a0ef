//! Protobuf wire format: a bounds-checked reader over absolute offsets of one buffer, and
//! the few writers the encoder needs.

/// Protobuf wire types.
pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const START_GROUP: u8 = 3;
pub(crate) const END_GROUP: u8 = 4;
pub(crate) const FIXED32: u8 = 5;

/// A damaged spot in the wire bytes: where, and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct WireError {
    /// Absolute offset in the buffer.
    pub offset: usize,
    /// What is wrong.
    pub problem: String,
}

/// Reads `buf[pos..end]`; every offset is absolute in `buf`, so errors point into the
/// whole stored value.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    end: usize,
}

impl<'a> Reader<'a> {
    /// A reader over `buf[start..end]`; `end` must be within `buf` (checked by callers,
    /// clamped here so a bad caller cannot panic).
    pub fn new(buf: &'a [u8], start: usize, end: usize) -> Self {
        let end = end.min(buf.len());
        Reader {
            buf,
            pos: start.min(end),
            end,
        }
    }

    /// Current absolute offset.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// True when every byte has been read.
    pub fn is_done(&self) -> bool {
        self.pos >= self.end
    }

    /// A base-128 varint.
    pub fn varint(&mut self) -> Result<u64, WireError> {
        let start = self.pos;
        let mut value: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf[..self.end].get(self.pos) else {
                return Err(WireError {
                    offset: start,
                    problem: format!(
                        "varint runs past the end of its message (which ends at byte {})",
                        self.end
                    ),
                });
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(WireError {
            offset: start,
            problem: "varint longer than 10 bytes".into(),
        })
    }

    /// A field key: (field number, wire type).
    pub fn key(&mut self) -> Result<(u32, u8), WireError> {
        let start = self.pos;
        let key = self.varint()?;
        let wire_type = (key & 7) as u8;
        let number = key >> 3;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            return Err(WireError {
                offset: start,
                problem: format!("invalid field number {number} (key 0x{key:x})"),
            });
        }
        Ok((number as u32, wire_type))
    }

    /// A length-delimited payload: returns its absolute range.
    pub fn len_delimited(&mut self) -> Result<(usize, usize), WireError> {
        let start = self.pos;
        let len = self.varint()?;
        let remaining = (self.end - self.pos) as u64;
        if len > remaining {
            return Err(WireError {
                offset: start,
                problem: format!(
                    "length {len} runs past the end of its message ({remaining} bytes left)"
                ),
            });
        }
        let s = self.pos;
        self.pos += len as usize;
        Ok((s, self.pos))
    }

    /// A little-endian fixed-width value of `N` bytes.
    pub fn fixed<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let start = self.pos;
        match self.buf[..self.end].get(self.pos..self.pos + N) {
            Some(bytes) => {
                self.pos += N;
                let mut out = [0u8; N];
                out.copy_from_slice(bytes);
                Ok(out)
            }
            None => Err(WireError {
                offset: start,
                problem: format!(
                    "{N}-byte fixed value runs past the end of its message (which ends at byte {})",
                    self.end
                ),
            }),
        }
    }

    /// Skips one field's value of `wire_type`; returns the end offset.
    pub fn skip(&mut self, wire_type: u8) -> Result<usize, WireError> {
        match wire_type {
            VARINT => {
                self.varint()?;
            }
            FIXED64 => {
                self.fixed::<8>()?;
            }
            LEN => {
                self.len_delimited()?;
            }
            FIXED32 => {
                self.fixed::<4>()?;
            }
            START_GROUP => self.skip_group()?,
            _ => {
                return Err(WireError {
                    offset: self.pos,
                    problem: format!("invalid wire type {wire_type}"),
                });
            }
        }
        Ok(self.pos)
    }

    /// Skips a (deprecated) group up to its matching end-group key, without recursion.
    fn skip_group(&mut self) -> Result<(), WireError> {
        let start = self.pos;
        let mut depth = 1usize;
        while depth > 0 {
            if self.is_done() {
                return Err(WireError {
                    offset: start,
                    problem: "group has no end marker before the end of its message".into(),
                });
            }
            let (_, wt) = self.key()?;
            match wt {
                START_GROUP => depth += 1,
                END_GROUP => depth -= 1,
                other => {
                    self.skip(other)?;
                }
            }
        }
        Ok(())
    }
}

/// Appends `v` as a varint.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a field key.
pub(crate) fn put_key(out: &mut Vec<u8>, number: u32, wire_type: u8) {
    put_varint(out, (u64::from(number) << 3) | u64::from(wire_type));
}

/// Appends a length-delimited field.
pub(crate) fn put_bytes_field(out: &mut Vec<u8>, number: u32, bytes: &[u8]) {
    put_key(out, number, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Appends a varint field.
pub(crate) fn put_varint_field(out: &mut Vec<u8>, number: u32, v: u64) {
    put_key(out, number, VARINT);
    put_varint(out, v);
}

/// Writes a length-delimited field whose payload `body` appends to `out`, without a
/// temporary buffer: one byte is reserved for the length and the payload is shifted only
/// when its length needs more.
pub(crate) fn put_nested<E>(
    out: &mut Vec<u8>,
    number: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    put_key(out, number, LEN);
    let len_at = out.len();
    out.push(0);
    body(out)?;
    let len = out.len() - len_at - 1;
    if len < 0x80 {
        out[len_at] = len as u8;
    } else {
        let mut prefix = Vec::with_capacity(10);
        put_varint(&mut prefix, len as u64);
        out.splice(len_at..len_at + 1, prefix);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_truncation_is_reported() {
        for v in [0u64, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, v);
            let mut r = Reader::new(&out, 0, out.len());
            assert_eq!(r.varint().unwrap(), v);
            assert!(r.is_done());
            let mut short = Reader::new(&out, 0, out.len() - 1);
            if out.len() > 1 {
                assert!(short.varint().is_err());
            }
        }
    }

    #[test]
    fn nested_lengths_longer_than_one_byte_are_shifted() {
        let mut out = Vec::new();
        put_nested::<()>(&mut out, 2, |o| {
            o.extend(std::iter::repeat_n(7u8, 300));
            Ok(())
        })
        .unwrap();
        let mut r = Reader::new(&out, 0, out.len());
        assert_eq!(r.key().unwrap(), (2, LEN));
        let (s, e) = r.len_delimited().unwrap();
        assert_eq!(e - s, 300);
        assert!(r.is_done());
    }

    #[test]
    fn lengths_past_the_end_are_errors() {
        let bytes = [0x0a, 0x05, 1, 2];
        let mut r = Reader::new(&bytes, 0, bytes.len());
        r.key().unwrap();
        let e = r.len_delimited().unwrap_err();
        assert_eq!(e.offset, 1);
        assert!(e.problem.contains("past the end"), "{}", e.problem);
    }
}
