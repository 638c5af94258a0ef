//! Canonical JSON: object keys sorted by their UTF-8 bytes, no whitespace, numbers and
//! strings as serde_json writes them. Objects are content-addressed by the sha256 of
//! this form, so the same object always gets the same id whatever order the API server
//! wrote its fields in.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Appends the canonical form of `value` to `out`.
pub fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push(b'{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_string(k, out);
                out.push(b':');
                write(v, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(v, out);
            }
            out.push(b']');
        }
        Value::String(s) => write_string(s, out),
        other => {
            // Null, booleans and numbers have one serde_json form.
            if serde_json::to_writer(&mut *out, other).is_err() {
                out.extend_from_slice(b"null");
            }
        }
    }
}

fn write_string(s: &str, out: &mut Vec<u8>) {
    if serde_json::to_writer(&mut *out, s).is_err() {
        out.extend_from_slice(b"\"\"");
    }
}

/// The canonical bytes of a value.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    write(value, &mut out);
    out
}

/// A content id: sha256 of canonical JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(pub [u8; 32]);

impl ContentId {
    /// The id of canonical bytes.
    pub fn of(canonical: &[u8]) -> ContentId {
        ContentId(Sha256::digest(canonical).into())
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<ContentId> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(ContentId(out))
    }
}

impl std::fmt::Display for ContentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl serde::Serialize for ContentId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for ContentId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ContentId::from_hex(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("not a sha256 content id: {s:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_order_does_not_change_the_id() {
        let a: Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":"é\n","x":[true,null,1.5]}}"#).unwrap();
        let b: Value =
            serde_json::from_str(r#"{"a":{"x":[true,null,1.5],"y":"é\n"},"b":1}"#).unwrap();
        assert_eq!(to_vec(&a), to_vec(&b));
        assert_eq!(
            String::from_utf8(to_vec(&a)).unwrap(),
            r#"{"a":{"x":[true,null,1.5],"y":"é\n"},"b":1}"#
        );
        let id = ContentId::of(&to_vec(&a));
        assert_eq!(ContentId::from_hex(&id.to_hex()), Some(id));
    }
}
