//! Serializable views of etcd records: keys and values are rendered losslessly (text
//! when they are UTF-8, base64 otherwise), revisions as numbers.

use base64::Engine;
use serde::{Serialize, Serializer};
use snapshot_format::etcd::HistoryEntry;
use snapshot_format::mvcc::KeyValue;

/// Bytes that serialize as a string when they are valid UTF-8 without control characters
/// other than whitespace, and as `{"base64": "…"}` otherwise, so nothing is lost.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl From<&[u8]> for Bytes {
    fn from(b: &[u8]) -> Self {
        Bytes(b.to_vec())
    }
}

impl Bytes {
    /// The text, when the bytes are printable UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.0).ok().filter(|s| {
            !s.chars()
                .any(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
        })
    }

    /// Base64 of the bytes.
    pub fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(&self.0)
    }

    /// A one-line rendering for tables: text, or escaped bytes, cut at `max` characters.
    pub fn display(&self, max: usize) -> String {
        let s = match self.as_text() {
            Some(t) => t.escape_debug().to_string(),
            None => self.0.escape_ascii().to_string(),
        };
        if s.chars().count() > max {
            let cut: String = s.chars().take(max.saturating_sub(1)).collect();
            format!("{cut}…")
        } else {
            s
        }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Bytes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_text() {
            Some(t) => s.serialize_str(t),
            None => {
                use serde::ser::SerializeMap;
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("base64", &self.base64())?;
                m.end()
            }
        }
    }
}

/// One key-value at one revision.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KvView {
    /// The user key.
    pub key: Bytes,
    /// Revision of the key's creation.
    pub create_revision: i64,
    /// Revision of this modification.
    pub mod_revision: i64,
    /// Modifications since creation.
    pub version: i64,
    /// Lease id (0 for none).
    pub lease: i64,
    /// Size of the value in bytes.
    pub value_size: usize,
    /// The value, when requested.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<Bytes>,
}

impl KvView {
    /// A view of `kv`, with its value when `with_value`.
    pub fn new(kv: &KeyValue, with_value: bool) -> Self {
        Self::with_size(kv, kv.value.len(), with_value)
    }

    /// A view of `kv` whose value (possibly left out of `kv`) has `value_size` bytes.
    pub fn with_size(kv: &KeyValue, value_size: usize, with_value: bool) -> Self {
        KvView {
            key: Bytes(kv.key.clone()),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            lease: kv.lease,
            value_size,
            value: with_value.then(|| Bytes(kv.value.clone())),
        }
    }
}

/// What happened at one revision of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum EventKind {
    /// The key was written.
    Put,
    /// The key was deleted.
    Delete,
}

/// One revision of a key's history.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryView {
    /// Main revision.
    pub revision: i64,
    /// Sub revision within the transaction.
    pub sub_revision: i64,
    /// Put or delete.
    pub event: EventKind,
    /// The record.
    #[serde(flatten)]
    pub kv: KvView,
}

impl HistoryView {
    /// A view of a history entry.
    pub fn new(entry: &HistoryEntry, with_value: bool) -> Self {
        HistoryView {
            revision: entry.revision.revision.main,
            sub_revision: entry.revision.revision.sub,
            event: if entry.revision.tombstone {
                EventKind::Delete
            } else {
                EventKind::Put
            },
            kv: KvView::new(&entry.kv, with_value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_render_losslessly() {
        let text = Bytes(b"hello".to_vec());
        assert_eq!(serde_json::to_string(&text).unwrap(), "\"hello\"");
        let bin = Bytes(b"k8s\x00\x0a\x0b".to_vec());
        assert_eq!(
            serde_json::to_string(&bin).unwrap(),
            "{\"base64\":\"azhzAAoL\"}"
        );
        assert_eq!(bin.display(100), "k8s\\x00\\n\\x0b");
        assert_eq!(Bytes(b"abcdef".to_vec()).display(4), "abc…");
    }
}
