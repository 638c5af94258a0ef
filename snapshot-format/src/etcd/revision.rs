//! Revision keys of etcd's `key` bucket: `main(8 BE) '_' sub(8 BE) ['t']`.

use std::fmt;

/// A revision: main revision (one per transaction) and sub revision (one per change in it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize)]
pub struct Revision {
    /// Main revision.
    pub main: i64,
    /// Sub revision inside the main revision.
    pub sub: i64,
}

/// A parsed key of the `key` bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct RevisionKey {
    /// The revision.
    pub revision: Revision,
    /// True when this revision deletes the key (`t` marker).
    pub tombstone: bool,
}

/// Length of a revision key without the tombstone marker.
pub const REVISION_KEY_LEN: usize = 17;
/// Tombstone marker byte.
pub const TOMBSTONE_MARK: u8 = b't';

/// Why bytes are not a revision key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevisionKeyError {
    /// Neither 17 nor 18 bytes.
    Length(usize),
    /// Byte 8 is not `_`.
    Separator(u8),
    /// Byte 17 is not `t`.
    Marker(u8),
}

impl fmt::Display for RevisionKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RevisionKeyError::Length(n) => {
                write!(
                    f,
                    "revision key is {n} bytes, expected 17 (or 18 for a tombstone)"
                )
            }
            RevisionKeyError::Separator(b) => {
                write!(f, "revision key byte 8 is 0x{b:02x}, expected '_' (0x5f)")
            }
            RevisionKeyError::Marker(b) => {
                write!(
                    f,
                    "revision key byte 17 is 0x{b:02x}, expected the tombstone mark 't'"
                )
            }
        }
    }
}

impl RevisionKey {
    /// Parses a `key` bucket key.
    pub fn parse(bytes: &[u8]) -> Result<RevisionKey, RevisionKeyError> {
        if bytes.len() != REVISION_KEY_LEN && bytes.len() != REVISION_KEY_LEN + 1 {
            return Err(RevisionKeyError::Length(bytes.len()));
        }
        if bytes[8] != b'_' {
            return Err(RevisionKeyError::Separator(bytes[8]));
        }
        let tombstone = bytes.len() == REVISION_KEY_LEN + 1;
        if tombstone && bytes[17] != TOMBSTONE_MARK {
            return Err(RevisionKeyError::Marker(bytes[17]));
        }
        Ok(RevisionKey {
            revision: Revision::parse_prefix(bytes),
            tombstone,
        })
    }

    /// The key's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.revision.to_bytes().to_vec();
        if self.tombstone {
            out.push(TOMBSTONE_MARK);
        }
        out
    }
}

impl Revision {
    /// A revision with sub revision 0.
    pub fn new(main: i64) -> Self {
        Revision { main, sub: 0 }
    }

    /// Reads main and sub from the first 17 bytes (caller checked the length).
    fn parse_prefix(bytes: &[u8]) -> Revision {
        let mut main = [0u8; 8];
        let mut sub = [0u8; 8];
        main.copy_from_slice(&bytes[0..8]);
        sub.copy_from_slice(&bytes[9..17]);
        Revision {
            main: i64::from_be_bytes(main),
            sub: i64::from_be_bytes(sub),
        }
    }

    /// Parses the 17-byte encoding used in the `meta` bucket's compaction keys.
    pub fn parse(bytes: &[u8]) -> Option<Revision> {
        (bytes.len() >= REVISION_KEY_LEN && bytes[8] == b'_').then(|| Revision::parse_prefix(bytes))
    }

    /// The 17-byte encoding.
    pub fn to_bytes(&self) -> [u8; REVISION_KEY_LEN] {
        let mut out = [0u8; REVISION_KEY_LEN];
        out[0..8].copy_from_slice(&self.main.to_be_bytes());
        out[8] = b'_';
        out[9..17].copy_from_slice(&self.sub.to_be_bytes());
        out
    }
}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.main, self.sub)
    }
}

/// The user key inside an encoded `mvccpb.KeyValue`, read without decoding the rest.
///
/// Returns `None` when the bytes are not a well-formed protobuf message up to the key.
pub fn kv_user_key(value: &[u8]) -> Option<&[u8]> {
    for field in crate::mvcc::Fields::new(value) {
        if let (1, crate::mvcc::WireValue::Bytes(key)) = field.ok()? {
            return Some(key);
        }
    }
    // A KeyValue with an empty key omits field 1.
    Some(&[][..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn parse_and_encode() {
        let rk = RevisionKey {
            revision: Revision { main: 300, sub: 2 },
            tombstone: true,
        };
        let b = rk.to_bytes();
        assert_eq!(b.len(), 18);
        assert_eq!(RevisionKey::parse(&b), Ok(rk));
        assert!(!RevisionKey::parse(&b[..17]).unwrap().tombstone);
        assert_eq!(
            RevisionKey::parse(&b[..10]),
            Err(RevisionKeyError::Length(10))
        );
        let mut bad = b.clone();
        bad[8] = b'x';
        assert!(matches!(
            RevisionKey::parse(&bad),
            Err(RevisionKeyError::Separator(_))
        ));
        bad[8] = b'_';
        bad[17] = b'q';
        assert!(matches!(
            RevisionKey::parse(&bad),
            Err(RevisionKeyError::Marker(_))
        ));
    }

    #[test]
    fn revision_keys_sort_like_revisions() {
        let a = Revision { main: 1, sub: 5 }.to_bytes();
        let b = Revision { main: 2, sub: 0 }.to_bytes();
        let c = Revision { main: 256, sub: 0 }.to_bytes();
        assert!(a < b && b < c);
    }

    #[test]
    fn user_key_fast_path_matches_prost() {
        let kv = crate::mvcc::KeyValue {
            key: b"/registry/pods/default/x".to_vec(),
            create_revision: 5,
            mod_revision: 9,
            version: 3,
            value: vec![7; 300],
            lease: 0,
        };
        let bytes = kv.encode_to_vec();
        assert_eq!(kv_user_key(&bytes), Some(&kv.key[..]));
        assert_eq!(kv_user_key(&bytes[..3]), None);
        let empty = crate::mvcc::KeyValue {
            mod_revision: 4,
            ..Default::default()
        };
        assert_eq!(kv_user_key(&empty.encode_to_vec()), Some(&[][..]));
        assert_eq!(kv_user_key(&[0xff; 12]), None);
    }
}
