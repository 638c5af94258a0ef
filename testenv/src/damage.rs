//! A corruption generator: copies a snapshot or db made by real etcd and applies one
//! named damage to the copy, reporting exactly where, so tests can assert that
//! `salvor etcd check` finds it there. The source file is never modified.

use std::path::Path;

use snapshot_format::bbolt::SourceKind;
use snapshot_format::etcd::{OpenOptions, Snapshot};

use crate::Error;

/// Damage kinds for bbolt files and snapshot files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    /// Cut the file in half.
    Truncate,
    /// Zero meta page 0 (the other meta page survives).
    ZeroMetaPage,
    /// Flip a byte inside meta page 1's fields (its checksum no longer matches).
    FlipMetaByte,
    /// Zero a leaf page of the `key` bucket (a torn write).
    ZeroLeafPage,
    /// Flip a byte in the element table of a leaf page of the `key` bucket.
    FlipLeafElement,
    /// Flip a byte in the element table of the `key` bucket's root branch page.
    FlipBranchElement,
    /// Point the `key` bucket root's first child at the root itself (a cycle).
    BranchSelfReference,
    /// Point the `key` bucket root's second child at its first child (a shared page).
    DuplicatePageReference,
    /// Replace a `KeyValue` record in a leaf with bytes that do not decode.
    GarbleRecord,
    /// Change the last byte of the sha256 trailer.
    BreakTrailer,
}

impl Damage {
    /// Every kind.
    pub const ALL: [Damage; 10] = [
        Damage::Truncate,
        Damage::ZeroMetaPage,
        Damage::FlipMetaByte,
        Damage::ZeroLeafPage,
        Damage::FlipLeafElement,
        Damage::FlipBranchElement,
        Damage::BranchSelfReference,
        Damage::DuplicatePageReference,
        Damage::GarbleRecord,
        Damage::BreakTrailer,
    ];
}

/// Where a damage was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The kind.
    pub damage: Damage,
    /// The page damaged (or pointing to the damage), if any.
    pub page: Option<u64>,
    /// The byte offset changed first.
    pub offset: u64,
    /// In words.
    pub description: String,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn bad(what: &str) -> Error {
    Error::Damage(what.to_string())
}

/// Copies `src` to `dst` and applies `damage` to the copy.
pub fn apply(src: &Path, dst: &Path, damage: Damage) -> Result<Applied, Error> {
    let snap = Snapshot::open(
        src,
        &OpenOptions {
            source: SourceKind::Memory,
            ..Default::default()
        },
    )
    .map_err(|e| Error::Damage(format!("the source must be a readable etcd database: {e}")))?;
    let ps = snap.db().page_size() as usize;
    let key_root = snap
        .key_bucket()
        .map_err(|e| Error::Damage(e.to_string()))?
        .root_page();
    let mut bytes = std::fs::read(src).map_err(|e| Error::io("read the source", src, e))?;
    let root_off = key_root as usize * ps;
    if key_root == 0 || u16_at(&bytes, root_off + 8) != 0x01 {
        return Err(bad(
            "the key bucket's root must be a branch page (load more keys)",
        ));
    }
    let children: Vec<u64> = (0..u16_at(&bytes, root_off + 10) as usize)
        .map(|i| {
            let at = root_off + 16 + i * 16 + 8;
            u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default())
        })
        .collect();
    if children.len() < 2 {
        return Err(bad("the key bucket's root needs two children"));
    }
    // A leaf of the key bucket: the first child if it is a leaf, else its first child.
    let mut leaf = children[children.len() / 2];
    while u16_at(&bytes, leaf as usize * ps + 8) == 0x01 {
        let at = leaf as usize * ps + 16 + 8;
        leaf = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap_or_default());
    }
    let leaf_off = leaf as usize * ps;
    let applied = |page: Option<u64>, offset: usize, description: String| Applied {
        damage,
        page,
        offset: offset as u64,
        description,
    };
    let result = match damage {
        Damage::Truncate => {
            let len = bytes.len() / 2;
            bytes.truncate(len);
            applied(None, len, format!("file cut to {len} bytes"))
        }
        Damage::ZeroMetaPage => {
            bytes[..ps].fill(0);
            applied(Some(0), 0, "meta page 0 zeroed".into())
        }
        Damage::FlipMetaByte => {
            let at = ps + 16 + 40;
            bytes[at] ^= 0x01;
            applied(Some(1), at, "high-water mark of meta page 1 changed".into())
        }
        Damage::ZeroLeafPage => {
            bytes[leaf_off..leaf_off + ps].fill(0);
            applied(Some(leaf), leaf_off, format!("leaf page {leaf} zeroed"))
        }
        Damage::FlipLeafElement => {
            // The `pos` of element 1 points far outside the page.
            let at = leaf_off + 16 + 16 + 4 + 3;
            bytes[at] ^= 0x7f;
            applied(
                Some(leaf),
                at,
                format!("leaf page {leaf} element 1 position changed"),
            )
        }
        Damage::FlipBranchElement => {
            let at = root_off + 16 + 16 + 4 + 3;
            bytes[at] ^= 0x7f;
            applied(
                Some(key_root),
                at,
                format!("branch page {key_root} element 1 key size changed"),
            )
        }
        Damage::BranchSelfReference => {
            let at = root_off + 16 + 8;
            bytes[at..at + 8].copy_from_slice(&key_root.to_le_bytes());
            applied(
                Some(key_root),
                at,
                format!("branch page {key_root} element 0 points to itself"),
            )
        }
        Damage::DuplicatePageReference => {
            let at = root_off + 16 + 16 + 8;
            bytes[at..at + 8].copy_from_slice(&children[0].to_le_bytes());
            applied(
                Some(children[0]),
                at,
                format!(
                    "branch page {key_root} elements 0 and 1 both point to page {}",
                    children[0]
                ),
            )
        }
        Damage::GarbleRecord => {
            // Overwrite the start of element 0's value with an invalid protobuf tag.
            let e = leaf_off + 16;
            let pos = u32_at(&bytes, e + 4) as usize;
            let ksize = u32_at(&bytes, e + 8) as usize;
            let at = e + pos + ksize;
            bytes[at] = 0xff;
            bytes[at + 1] = 0xff;
            applied(
                Some(leaf),
                at,
                format!("record 0 of leaf page {leaf} garbled"),
            )
        }
        Damage::BreakTrailer => {
            if snap.trailer().is_none() {
                return Err(bad("the source has no sha256 trailer"));
            }
            let at = bytes.len() - 1;
            bytes[at] ^= 0x55;
            applied(None, at, "last byte of the sha256 trailer changed".into())
        }
    };
    std::fs::write(dst, &bytes).map_err(|e| Error::io("write the damaged copy", dst, e))?;
    Ok(result)
}

/// Damage kinds for a member's data dir (WAL and raft snapshot files).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataDirDamage {
    /// Cut the last WAL segment in the middle of its records (a lost tail).
    CutWalMidRecord,
    /// Zero the last WAL segment from a sector boundary inside its last entry record
    /// that spans one (a torn write that loses an applied entry).
    ZeroWalTail,
    /// Flip a byte in a record in the middle of the first WAL segment.
    FlipWalRecord,
    /// Flip a byte inside the newest `.snap` file.
    CorruptSnap,
    /// Delete a WAL segment between the first and the last (needs three or more).
    DeleteMiddleSegment,
}

impl DataDirDamage {
    /// Every kind.
    pub const ALL: [DataDirDamage; 5] = [
        DataDirDamage::CutWalMidRecord,
        DataDirDamage::ZeroWalTail,
        DataDirDamage::FlipWalRecord,
        DataDirDamage::CorruptSnap,
        DataDirDamage::DeleteMiddleSegment,
    ];
}

/// Where a data dir damage was applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedToFile {
    /// The kind.
    pub damage: DataDirDamage,
    /// The file damaged (in the copy).
    pub file: std::path::PathBuf,
    /// The byte offset changed first.
    pub offset: u64,
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(to).map_err(|e| Error::io("create", to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error::io("read", from, e))? {
        let entry = entry.map_err(|e| Error::io("read", from, e))?;
        let target = to.join(entry.file_name());
        let kind = entry
            .file_type()
            .map_err(|e| Error::io("stat", entry.path(), e))?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target).map_err(|e| Error::io("copy", entry.path(), e))?;
        }
    }
    Ok(())
}

/// How a `walpb.Record` of type entry (2) begins: field 1 (`type`), varint 2.
const WAL_ENTRY_RECORD: &[u8] = &[0x08, 0x02];

/// The frames of a WAL segment as (body start, frame end) offsets, up to the first zero
/// length word or the first frame that does not fit.
fn wal_frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut frames = Vec::new();
    let mut pos = 0usize;
    while let Some(word) = bytes.get(pos..pos + 8) {
        let word = u64::from_le_bytes(word.try_into().unwrap_or_default());
        if word == 0 {
            break;
        }
        let len = word & !(0xff << 56);
        let pad = if word >> 63 == 1 {
            (word >> 56) & 0x7
        } else {
            0
        };
        let body = pos + 8;
        let Some(end) = usize::try_from(len + pad)
            .ok()
            .and_then(|n| body.checked_add(n))
            .filter(|&e| e <= bytes.len())
        else {
            break;
        };
        frames.push((body, end));
        pos = end;
    }
    frames
}

fn files_with_extension(dir: &Path, ext: &str) -> Result<Vec<std::path::PathBuf>, Error> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io("read", dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    Ok(files)
}

/// Copies the data dir `src` (stopped member) to `dst` and applies `damage` to the copy.
pub fn apply_to_data_dir(
    src: &Path,
    dst: &Path,
    damage: DataDirDamage,
) -> Result<AppliedToFile, Error> {
    copy_tree(src, dst)?;
    let member = dst.join("member");
    let segments = files_with_extension(&member.join("wal"), "wal")?;
    let (first, last) = match (segments.first(), segments.last()) {
        (Some(f), Some(l)) => (f.clone(), l.clone()),
        _ => return Err(bad("the data dir has no WAL segment")),
    };
    let read = |p: &Path| std::fs::read(p).map_err(|e| Error::io("read", p, e));
    let write = |p: &Path, b: &[u8]| std::fs::write(p, b).map_err(|e| Error::io("write", p, e));
    // Records end where the preallocated zero tail starts.
    let data_end = |b: &[u8]| b.iter().rposition(|&x| x != 0).map_or(0, |i| i + 1);
    let applied = match damage {
        DataDirDamage::CutWalMidRecord => {
            let mut bytes = read(&last)?;
            let end = data_end(&bytes);
            if end < 4096 {
                return Err(bad("the last WAL segment holds too little to cut"));
            }
            // An odd offset is inside a record (frames are 8-byte aligned).
            let cut = (end * 3 / 4) | 1;
            bytes.truncate(cut);
            write(&last, &bytes)?;
            AppliedToFile {
                damage,
                file: last,
                offset: cut as u64,
            }
        }
        DataDirDamage::ZeroWalTail => {
            // A torn write: the sectors after some sector boundary never reached the
            // disk. The boundary is inside the body of the last entry record that spans
            // one, so the record holds an all-zero sector chunk (what etcd's
            // isTornEntry looks for) whatever the lengths of the records happen to be,
            // and an entry the backend has applied is lost with it. (A torn HardState
            // record alone loses nothing, and etcd repairs it silently.)
            let mut bytes = read(&last)?;
            let end = data_end(&bytes);
            let start = wal_frames(&bytes)
                .into_iter()
                .rev()
                .filter(|&(body, _)| bytes.get(body..body + 2) == Some(WAL_ENTRY_RECORD))
                .find_map(|(body, frame_end)| {
                    let boundary = (body / 512 + 1) * 512;
                    (boundary < frame_end.min(end)).then_some(boundary)
                })
                .ok_or_else(|| bad("no entry record of the last WAL segment spans a sector"))?;
            bytes[start..end].fill(0);
            write(&last, &bytes)?;
            AppliedToFile {
                damage,
                file: last,
                offset: start as u64,
            }
        }
        DataDirDamage::FlipWalRecord => {
            let mut bytes = read(&first)?;
            let end = data_end(&bytes);
            if end < 4096 {
                return Err(bad("the first WAL segment holds too little"));
            }
            let at = end / 2;
            bytes[at] ^= 0x5a;
            write(&first, &bytes)?;
            AppliedToFile {
                damage,
                file: first,
                offset: at as u64,
            }
        }
        DataDirDamage::DeleteMiddleSegment => {
            if segments.len() < 3 {
                return Err(bad(
                    "deleting a middle segment needs three WAL segments or more",
                ));
            }
            let victim = segments[segments.len() / 2].clone();
            std::fs::remove_file(&victim).map_err(|e| Error::io("remove", &victim, e))?;
            AppliedToFile {
                damage,
                file: victim,
                offset: 0,
            }
        }
        DataDirDamage::CorruptSnap => {
            let snaps = files_with_extension(&member.join("snap"), "snap")?;
            let newest = snaps
                .last()
                .ok_or_else(|| bad("the data dir has no .snap file (lower --snapshot-count)"))?
                .clone();
            let mut bytes = read(&newest)?;
            if bytes.len() < 64 {
                return Err(bad("the .snap file is too small"));
            }
            let at = bytes.len() / 2;
            bytes[at] ^= 0x5a;
            write(&newest, &bytes)?;
            AppliedToFile {
                damage,
                file: newest,
                offset: at as u64,
            }
        }
    };
    Ok(applied)
}
