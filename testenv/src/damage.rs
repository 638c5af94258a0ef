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
