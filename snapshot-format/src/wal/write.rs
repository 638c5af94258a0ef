//! Writing WAL segments and `.snap` files byte for byte as etcd 3.4 writes them.
//!
//! Messages are encoded the way gogo-protobuf encodes etcd's `nullable=false` proto2
//! fields: every scalar field is written, zero or not, in field-number order; optional
//! byte fields only when present. The result is what `wal.Create`, `wal.Save`,
//! `wal.SaveSnapshot` and `snap.SaveSnap` produce, so a data dir written here is read by
//! etcd (and compared byte for byte with `etcdctl snapshot restore`'s in the tests).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::record::{EntryType, FrameHeader, RecordType, SEGMENT_SIZE};
use super::segment::WalSegmentName;
use super::snap::SnapName;
use super::{ConfState, HardState, WalMetadata, WalSnapshot};
use crate::error::{Error, Result};

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_uint(out: &mut Vec<u8>, field: u32, v: u64) {
    put_varint(out, u64::from(field) << 3);
    put_varint(out, v);
}

fn put_bytes(out: &mut Vec<u8>, field: u32, v: &[u8]) {
    put_varint(out, (u64::from(field) << 3) | 2);
    put_varint(out, v.len() as u64);
    out.extend_from_slice(v);
}

fn entry_type_value(t: EntryType) -> u64 {
    match t {
        EntryType::Normal => 0,
        EntryType::ConfChange => 1,
        EntryType::ConfChangeV2 => 2,
        EntryType::Unknown(v) => v as i64 as u64,
    }
}

/// A raft entry to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Raft term.
    pub term: u64,
    /// Raft index.
    pub index: u64,
    /// Entry type.
    pub entry_type: EntryType,
    /// Data (`None` for an entry without data, such as a leader's no-op).
    pub data: Option<Vec<u8>>,
}

/// `raftpb.Entry` bytes.
pub fn encode_entry(e: &NewEntry) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + e.data.as_ref().map_or(0, Vec::len));
    put_uint(&mut out, 1, entry_type_value(e.entry_type));
    put_uint(&mut out, 2, e.term);
    put_uint(&mut out, 3, e.index);
    if let Some(d) = &e.data {
        put_bytes(&mut out, 4, d);
    }
    out
}

/// `raftpb.HardState` bytes.
pub fn encode_hard_state(h: &HardState) -> Vec<u8> {
    let mut out = Vec::new();
    put_uint(&mut out, 1, h.term);
    put_uint(&mut out, 2, h.vote);
    put_uint(&mut out, 3, h.commit);
    out
}

/// `etcdserverpb.Metadata` bytes.
pub fn encode_metadata(m: &WalMetadata) -> Vec<u8> {
    let mut out = Vec::new();
    put_uint(&mut out, 1, m.node_id);
    put_uint(&mut out, 2, m.cluster_id);
    out
}

/// `walpb.Snapshot` bytes.
pub fn encode_wal_snapshot(s: &WalSnapshot) -> Vec<u8> {
    let mut out = Vec::new();
    put_uint(&mut out, 1, s.index);
    put_uint(&mut out, 2, s.term);
    out
}

/// `raftpb.ConfChange` bytes (`change_type`: 0 add node, 1 remove node, 2 update node,
/// 3 add learner node).
pub fn encode_conf_change(
    id: u64,
    change_type: u64,
    node_id: u64,
    context: Option<&[u8]>,
) -> Vec<u8> {
    let mut out = Vec::new();
    put_uint(&mut out, 1, id);
    put_uint(&mut out, 2, change_type);
    put_uint(&mut out, 3, node_id);
    if let Some(c) = context {
        put_bytes(&mut out, 4, c);
    }
    out
}

/// `raftpb.ConfState` bytes.
pub fn encode_conf_state(c: &ConfState) -> Vec<u8> {
    let mut out = Vec::new();
    for &v in &c.voters {
        put_uint(&mut out, 1, v);
    }
    for &v in &c.learners {
        put_uint(&mut out, 2, v);
    }
    for &v in &c.voters_outgoing {
        put_uint(&mut out, 3, v);
    }
    for &v in &c.learners_next {
        put_uint(&mut out, 4, v);
    }
    put_uint(&mut out, 5, u64::from(c.auto_leave));
    out
}

/// The bytes of a `.snap` file: `snappb.Snapshot {crc, data = raftpb.Snapshot {data =
/// store, metadata {conf_state, index, term}}}`.
pub fn encode_snap_file(store: &[u8], conf_state: &ConfState, index: u64, term: u64) -> Vec<u8> {
    let mut metadata = Vec::new();
    put_bytes(&mut metadata, 1, &encode_conf_state(conf_state));
    put_uint(&mut metadata, 2, index);
    put_uint(&mut metadata, 3, term);
    let mut snapshot = Vec::with_capacity(store.len() + metadata.len() + 16);
    put_bytes(&mut snapshot, 1, store);
    put_bytes(&mut snapshot, 2, &metadata);
    let mut out = Vec::with_capacity(snapshot.len() + 16);
    put_uint(&mut out, 1, u64::from(crc32c::crc32c(&snapshot)));
    put_bytes(&mut out, 2, &snapshot);
    out
}

/// Writes `member/snap/<term>-<index>.snap` in `snap_dir` (fsynced); returns its path.
pub fn write_snap_file(
    snap_dir: &Path,
    store: &[u8],
    conf_state: &ConfState,
    index: u64,
    term: u64,
) -> Result<PathBuf> {
    let name = SnapName { term, index }.file_name();
    let path = snap_dir.join(&name);
    let bytes = encode_snap_file(store, conf_state, index, term);
    write_synced(&path, &bytes)?;
    Ok(path)
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Writes one WAL segment, as `wal.Create` followed by `Save` and `SaveSnapshot` calls.
///
/// The segment is preallocated to etcd's 64,000,000 bytes (sparse: the length is what
/// etcd reads, the zero tail marks the end of data).
pub struct WalWriter {
    file: File,
    path: PathBuf,
    buf: Vec<u8>,
    crc: u32,
    written: u64,
}

impl WalWriter {
    /// Creates segment `name` in `wal_dir` (which must exist) and writes the CRC record
    /// (carrying `prev_crc`, 0 for a new WAL), the metadata record and a snapshot record
    /// for `start` (index 0 term 0 for a new WAL), as `wal.Create` does.
    pub fn create(
        wal_dir: &Path,
        name: WalSegmentName,
        metadata: &WalMetadata,
        start: &WalSnapshot,
    ) -> Result<Self> {
        let path = wal_dir.join(name.file_name());
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
        let mut w = WalWriter {
            file,
            path,
            buf: Vec::new(),
            crc: 0,
            written: 0,
        };
        w.record(RecordType::Crc, None);
        w.record(RecordType::Metadata, Some(&encode_metadata(metadata)));
        w.record(RecordType::Snapshot, Some(&encode_wal_snapshot(start)));
        Ok(w)
    }

    /// The segment's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn record(&mut self, kind: RecordType, data: Option<&[u8]>) {
        if let Some(d) = data {
            self.crc = crc32c::crc32c_append(self.crc, d);
        }
        let mut rec = Vec::with_capacity(16 + data.map_or(0, <[u8]>::len));
        put_uint(&mut rec, 1, kind.as_i64() as u64);
        put_uint(&mut rec, 2, u64::from(self.crc));
        if let Some(d) = data {
            put_bytes(&mut rec, 3, d);
        }
        let word = FrameHeader::encode(rec.len() as u64);
        self.buf.extend_from_slice(&word.to_le_bytes());
        self.buf.extend_from_slice(&rec);
        let pad = FrameHeader::decode(word).padding as usize;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
    }

    /// Appends entries then the HardState, as `wal.Save` does.
    pub fn save(&mut self, state: &HardState, entries: &[NewEntry]) -> Result<()> {
        for e in entries {
            self.record(RecordType::Entry, Some(&encode_entry(e)));
        }
        self.record(RecordType::State, Some(&encode_hard_state(state)));
        self.flush()
    }

    /// Appends a snapshot record, as `wal.SaveSnapshot` does.
    pub fn save_snapshot(&mut self, snapshot: &WalSnapshot) -> Result<()> {
        self.record(RecordType::Snapshot, Some(&encode_wal_snapshot(snapshot)));
        self.flush()
    }

    fn flush(&mut self) -> Result<()> {
        self.file
            .write_all(&self.buf)
            .map_err(|e| Error::io(format!("writing {}", self.path.display()), e))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    /// Flushes, preallocates the segment to etcd's size and fsyncs it.
    pub fn finish(mut self) -> Result<PathBuf> {
        self.flush()?;
        let ctx = |e| Error::io(format!("finishing {}", self.path.display()), e);
        self.file
            .set_len(SEGMENT_SIZE.max(self.written))
            .map_err(ctx)?;
        self.file.sync_all().map_err(ctx)?;
        Ok(self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields() {
        let mut out = Vec::new();
        put_uint(&mut out, 1, 0);
        put_uint(&mut out, 2, 300);
        assert_eq!(out, [0x08, 0x00, 0x10, 0xac, 0x02]);
        let cs = ConfState {
            voters: vec![1, 2],
            ..Default::default()
        };
        assert_eq!(encode_conf_state(&cs), [0x08, 1, 0x08, 2, 0x28, 0]);
    }
}
