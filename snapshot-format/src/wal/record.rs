//! WAL frames and `walpb.Record`s: the length word, the record fields, and the raft
//! entry inside an entry record.

use serde::Serialize;

use super::proto::{self, Fields};

/// Size of the little-endian length word in front of every record.
pub const FRAME_HEADER_SIZE: usize = 8;
/// Records are padded to this alignment, so a length word never straddles a sector.
pub const FRAME_ALIGN: usize = 8;
/// Size etcd preallocates every segment to (`wal.SegmentSizeBytes`).
pub const SEGMENT_SIZE: u64 = 64_000_000;
/// Torn-write granularity etcd assumes (`minSectorSize`).
pub const SECTOR_SIZE: u64 = 512;

/// A decoded length word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    /// Length of the record (`walpb.Record` bytes), the low 56 bits.
    pub record_len: u64,
    /// Padding bytes after the record, from the low 3 bits of the top byte when its
    /// high bit is set.
    pub padding: u8,
    /// The top byte as written: `0x00`, or `0x80 | padding`.
    pub top_byte: u8,
}

impl FrameHeader {
    /// Decodes a length word the way etcd's `decodeFrameSize` does.
    pub fn decode(word: u64) -> FrameHeader {
        let top_byte = (word >> 56) as u8;
        let padding = if top_byte & 0x80 != 0 {
            top_byte & 0x07
        } else {
            0
        };
        FrameHeader {
            record_len: word & 0x00ff_ffff_ffff_ffff,
            padding,
            top_byte,
        }
    }

    /// The length word etcd's encoder writes for a record of `record_len` bytes.
    pub fn encode(record_len: u64) -> u64 {
        let padding = (FRAME_ALIGN as u64 - record_len % FRAME_ALIGN as u64) % FRAME_ALIGN as u64;
        if padding == 0 {
            record_len
        } else {
            record_len | ((0x80 | padding) << 56)
        }
    }

    /// Record plus padding: the bytes after the length word.
    pub fn body_len(&self) -> u64 {
        self.record_len + u64::from(self.padding)
    }

    /// Why this header is not one etcd's encoder writes, if it is not: a top byte with
    /// bits other than `0x80 | padding`, or a padding that does not align the record.
    pub fn irregularity(&self) -> Option<String> {
        let expected = FrameHeader::encode(self.record_len);
        let expected_top = (expected >> 56) as u8;
        if self.top_byte == expected_top {
            return None;
        }
        Some(format!(
            "length word top byte 0x{:02x} (padding {}) for a {}-byte record; etcd writes 0x{:02x}",
            self.top_byte, self.padding, self.record_len, expected_top
        ))
    }
}

/// The type of a WAL record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum RecordType {
    /// 1: `etcdserverpb.Metadata` (node id, cluster id).
    Metadata,
    /// 2: a `raftpb.Entry`.
    Entry,
    /// 3: a `raftpb.HardState`.
    State,
    /// 4: re-seeds the running CRC; its `crc` is the previous segment's final CRC.
    Crc,
    /// 5: a `walpb.Snapshot` marker.
    Snapshot,
    /// Any other value (etcd refuses to start on it).
    Unknown(i64),
}

impl RecordType {
    /// The type for the record's `type` field.
    pub fn from_i64(value: i64) -> RecordType {
        match value {
            1 => RecordType::Metadata,
            2 => RecordType::Entry,
            3 => RecordType::State,
            4 => RecordType::Crc,
            5 => RecordType::Snapshot,
            other => RecordType::Unknown(other),
        }
    }

    /// The value stored in the record.
    pub fn as_i64(self) -> i64 {
        match self {
            RecordType::Metadata => 1,
            RecordType::Entry => 2,
            RecordType::State => 3,
            RecordType::Crc => 4,
            RecordType::Snapshot => 5,
            RecordType::Unknown(other) => other,
        }
    }
}

impl std::fmt::Display for RecordType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordType::Metadata => f.write_str("metadata"),
            RecordType::Entry => f.write_str("entry"),
            RecordType::State => f.write_str("state"),
            RecordType::Crc => f.write_str("crc"),
            RecordType::Snapshot => f.write_str("snapshot"),
            RecordType::Unknown(t) => write!(f, "unknown({t})"),
        }
    }
}

/// The fields of a `walpb.Record`, borrowing the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordFields<'a> {
    pub record_type: i64,
    pub crc: u32,
    pub data: &'a [u8],
}

/// Decodes `walpb.Record {type=1 int64, crc=2 uint32, data=3 bytes}` as gogoproto does:
/// unknown fields are skipped, a repeated field keeps its last value.
pub(crate) fn decode_record(bytes: &[u8]) -> Result<RecordFields<'_>, String> {
    let mut fields = RecordFields {
        record_type: 0,
        crc: 0,
        data: &[],
    };
    for field in Fields::new(bytes) {
        let (tag, value) = field?;
        match tag {
            1 => fields.record_type = proto::varint("type", value)? as i64,
            2 => fields.crc = proto::varint("crc", value)? as u32,
            3 => fields.data = proto::bytes("data", value)?,
            _ => {}
        }
    }
    Ok(fields)
}

/// The type of a raft entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum EntryType {
    /// 0: a normal entry (an etcd request, or empty).
    Normal,
    /// 1: a `raftpb.ConfChange`.
    ConfChange,
    /// 2: a `raftpb.ConfChangeV2`.
    ConfChangeV2,
    /// Any other value.
    Unknown(i32),
}

impl EntryType {
    /// The type for the entry's `Type` field.
    pub fn from_i32(value: i32) -> EntryType {
        match value {
            0 => EntryType::Normal,
            1 => EntryType::ConfChange,
            2 => EntryType::ConfChangeV2,
            other => EntryType::Unknown(other),
        }
    }

    /// The short name etcd-dump-logs prints: `norm`, `conf`, `conf2`.
    pub fn short_name(self) -> String {
        match self {
            EntryType::Normal => "norm".to_string(),
            EntryType::ConfChange => "conf".to_string(),
            EntryType::ConfChangeV2 => "conf2".to_string(),
            EntryType::Unknown(t) => format!("type{t}"),
        }
    }
}

/// The fields of a `raftpb.Entry`, borrowing the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EntryFields {
    pub term: u64,
    pub index: u64,
    pub entry_type: EntryType,
    /// Range of `Data` inside the entry bytes.
    pub data: std::ops::Range<usize>,
}

/// Decodes `raftpb.Entry {Type=1, Term=2, Index=3, Data=4}`.
pub(crate) fn decode_entry(bytes: &[u8]) -> Result<EntryFields, String> {
    let mut entry = EntryFields {
        term: 0,
        index: 0,
        entry_type: EntryType::Normal,
        data: 0..0,
    };
    for field in Fields::new(bytes) {
        let (tag, value) = field?;
        match tag {
            1 => entry.entry_type = EntryType::from_i32(proto::varint("Type", value)? as i32),
            2 => entry.term = proto::varint("Term", value)?,
            3 => entry.index = proto::varint("Index", value)?,
            4 => {
                let data = proto::bytes("Data", value)?;
                // `data` is a subslice of `bytes`: its offset is the pointer difference.
                let start = data.as_ptr() as usize - bytes.as_ptr() as usize;
                entry.data = start..start + data.len();
            }
            _ => {}
        }
    }
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_words() {
        assert_eq!(FrameHeader::encode(4), 0x8400_0000_0000_0004);
        assert_eq!(FrameHeader::encode(0x70), 0x70);
        let h = FrameHeader::decode(0x8700_0000_0000_0099);
        assert_eq!((h.record_len, h.padding, h.body_len()), (0x99, 7, 0xa0));
        assert!(h.irregularity().is_none());
        assert!(
            FrameHeader::decode(0x8100_0000_0000_0099)
                .irregularity()
                .is_some()
        );
        assert!(
            FrameHeader::decode(0x0700_0000_0000_0010)
                .irregularity()
                .is_some()
        );
        assert!(
            FrameHeader::decode(0x8000_0000_0000_0010)
                .irregularity()
                .is_some()
        );
    }

    #[test]
    fn records_and_entries() {
        // A crc record as etcd writes it first in every segment: type=4 crc=0.
        let r = decode_record(&[0x08, 0x04, 0x10, 0x00]).unwrap();
        assert_eq!((r.record_type, r.crc, r.data), (4, 0, &[][..]));
        // An empty entry: term 2 index 2.
        let e = decode_entry(&[0x08, 0x00, 0x10, 0x02, 0x18, 0x02]).unwrap();
        assert_eq!(
            (e.term, e.index, e.entry_type, e.data),
            (2, 2, EntryType::Normal, 0..0)
        );
        assert!(decode_entry(&[0x12, 0x02]).is_err());
    }
}
