//! Typed, bounds-checked views over bbolt pages.
//!
//! Every view borrows the page bytes and validates offsets before slicing, so a damaged
//! page produces an [`Error::Corrupt`] naming the page, the element and the byte offset.

use crate::error::{Error, Location, Result};

/// Size of the page header `{id u64, flags u16, count u16, overflow u32}`.
pub const PAGE_HEADER_SIZE: usize = 16;
/// Size of a branch element `{pos u32, ksize u32, pgid u64}`.
pub const BRANCH_ELEMENT_SIZE: usize = 16;
/// Size of a leaf element `{flags u32, pos u32, ksize u32, vsize u32}`.
pub const LEAF_ELEMENT_SIZE: usize = 16;
/// Size of the meta structure (including its checksum).
pub const META_SIZE: usize = 64;
/// Size of a bucket header `{root u64, sequence u64}` stored as a leaf value.
pub const BUCKET_HEADER_SIZE: usize = 16;
/// bbolt's magic number.
pub const MAGIC: u32 = 0xED0C_DAED;
/// The only bbolt file format version.
pub const VERSION: u32 = 2;
/// Freelist page id meaning "the freelist is not persisted" (etcd's NoFreelistSync).
pub const PGID_NO_FREELIST: u64 = u64::MAX;

/// Page flag: branch page.
pub const FLAG_BRANCH: u16 = 0x01;
/// Page flag: leaf page.
pub const FLAG_LEAF: u16 = 0x02;
/// Page flag: meta page.
pub const FLAG_META: u16 = 0x04;
/// Page flag: freelist page.
pub const FLAG_FREELIST: u16 = 0x10;
/// Leaf element flag: the value is a nested bucket.
pub const LEAF_FLAG_BUCKET: u32 = 0x01;

pub(crate) fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
pub(crate) fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}
pub(crate) fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

/// The kind of a page, from its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PageKind {
    /// Interior node of a B+tree.
    Branch,
    /// Leaf node of a B+tree.
    Leaf,
    /// One of the two meta pages.
    Meta,
    /// A persisted freelist.
    Freelist,
}

impl PageKind {
    /// The kind for `flags`, or `None` for an invalid combination.
    pub fn from_flags(flags: u16) -> Option<PageKind> {
        match flags {
            FLAG_BRANCH => Some(PageKind::Branch),
            FLAG_LEAF => Some(PageKind::Leaf),
            FLAG_META => Some(PageKind::Meta),
            FLAG_FREELIST => Some(PageKind::Freelist),
            _ => None,
        }
    }
}

/// A page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageHeader {
    /// Page id as written in the page.
    pub id: u64,
    /// Page flags.
    pub flags: u16,
    /// Element count.
    pub count: u16,
    /// Number of extra pages this page spans.
    pub overflow: u32,
}

impl PageHeader {
    /// Parses the header at the start of `bytes`.
    pub fn parse(bytes: &[u8], at: Location) -> Result<PageHeader> {
        if bytes.len() < PAGE_HEADER_SIZE {
            return Err(Error::corrupt(
                at,
                format!(
                    "page header needs {PAGE_HEADER_SIZE} bytes, only {} present",
                    bytes.len()
                ),
            ));
        }
        Ok(PageHeader {
            id: u64_at(bytes, 0),
            flags: u16_at(bytes, 8),
            count: u16_at(bytes, 10),
            overflow: u32_at(bytes, 12),
        })
    }

    /// The page kind, if the flags are valid.
    pub fn kind(&self) -> Option<PageKind> {
        PageKind::from_flags(self.flags)
    }
}

/// A B+tree node (branch or leaf) over its full bytes (including overflow pages).
#[derive(Clone, Copy)]
pub struct NodePage<'a> {
    bytes: &'a [u8],
    header: PageHeader,
    /// Page id used in error messages (0 for inline bucket pages).
    id: u64,
    /// Absolute file offset of the page start, for error messages (None for inline pages).
    base: Option<u64>,
}

/// One element of a branch page.
#[derive(Debug, Clone, Copy)]
pub struct BranchElement<'a> {
    /// First key of the child.
    pub key: &'a [u8],
    /// Child page id.
    pub child: u64,
}

/// One element of a leaf page.
#[derive(Debug, Clone, Copy)]
pub struct LeafElement<'a> {
    /// Element flags ([`LEAF_FLAG_BUCKET`] for nested buckets).
    pub flags: u32,
    /// The key.
    pub key: &'a [u8],
    /// The value (a bucket header plus optional inline page for nested buckets).
    pub value: &'a [u8],
}

impl LeafElement<'_> {
    /// True when this element is a nested bucket.
    pub fn is_bucket(&self) -> bool {
        self.flags & LEAF_FLAG_BUCKET != 0
    }
}

impl<'a> NodePage<'a> {
    /// A view of a tree page read from the file at page `id`, `base` = its file offset.
    pub fn new(bytes: &'a [u8], id: u64, base: Option<u64>) -> Result<NodePage<'a>> {
        let at = Location {
            page: Some(id),
            offset: base,
            ..Default::default()
        };
        let header = PageHeader::parse(bytes, at.clone())?;
        let page = NodePage {
            bytes,
            header,
            id,
            base,
        };
        match header.kind() {
            Some(PageKind::Branch) | Some(PageKind::Leaf) => {}
            _ => {
                return Err(Error::corrupt(
                    at,
                    format!(
                        "expected a branch or leaf page, found flags 0x{:02x} ({})",
                        header.flags,
                        describe_flags(header.flags)
                    ),
                ));
            }
        }
        let elements_end = PAGE_HEADER_SIZE + header.count as usize * LEAF_ELEMENT_SIZE;
        if elements_end > bytes.len() {
            return Err(Error::corrupt(
                at,
                format!(
                    "{} elements need {elements_end} bytes, the page has {}",
                    header.count,
                    bytes.len()
                ),
            ));
        }
        Ok(page)
    }

    /// The header.
    pub fn header(&self) -> PageHeader {
        self.header
    }

    /// Page id (0 for inline pages).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// True for leaf pages.
    pub fn is_leaf(&self) -> bool {
        self.header.flags == FLAG_LEAF
    }

    /// Number of elements.
    pub fn count(&self) -> usize {
        self.header.count as usize
    }

    /// All bytes of this page (with overflow).
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    fn location(&self, rel: usize) -> Location {
        Location {
            page: Some(self.id),
            offset: self.base.map(|b| b + rel as u64),
            ..Default::default()
        }
    }

    fn span(&self, start: usize, len: usize, i: usize, what: &str) -> Result<&'a [u8]> {
        match start
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
        {
            Some(end) => Ok(&self.bytes[start..end]),
            None => Err(Error::corrupt(
                self.location(PAGE_HEADER_SIZE + i * LEAF_ELEMENT_SIZE),
                format!(
                    "element {i}: {what} at page byte {start} of length {len} ends past the page ({} bytes)",
                    self.bytes.len()
                ),
            )),
        }
    }

    /// Branch element `i`. The caller guarantees this is a branch page and `i < count`.
    pub fn branch(&self, i: usize) -> Result<BranchElement<'a>> {
        let off = PAGE_HEADER_SIZE + i * BRANCH_ELEMENT_SIZE;
        let pos = u32_at(self.bytes, off) as usize;
        let ksize = u32_at(self.bytes, off + 4) as usize;
        let child = u64_at(self.bytes, off + 8);
        let key = self.span(off.saturating_add(pos), ksize, i, "key")?;
        Ok(BranchElement { key, child })
    }

    /// Leaf element `i`. The caller guarantees this is a leaf page and `i < count`.
    pub fn leaf(&self, i: usize) -> Result<LeafElement<'a>> {
        let off = PAGE_HEADER_SIZE + i * LEAF_ELEMENT_SIZE;
        let flags = u32_at(self.bytes, off);
        let pos = u32_at(self.bytes, off + 4) as usize;
        let ksize = u32_at(self.bytes, off + 8) as usize;
        let vsize = u32_at(self.bytes, off + 12) as usize;
        let kstart = off.saturating_add(pos);
        let key = self.span(kstart, ksize, i, "key")?;
        let value = self.span(kstart + ksize, vsize, i, "value")?;
        Ok(LeafElement { flags, key, value })
    }

    /// Location of element `i`, for error messages.
    pub fn element_location(&self, i: usize) -> Location {
        self.location(PAGE_HEADER_SIZE + i * LEAF_ELEMENT_SIZE)
    }
}

/// Human words for page flags.
pub fn describe_flags(flags: u16) -> String {
    match PageKind::from_flags(flags) {
        Some(kind) => format!("{kind:?}").to_lowercase(),
        None if flags == 0 => "no flags: a zeroed or never-written page".to_string(),
        None => "not a valid page type".to_string(),
    }
}

/// The meta structure at byte 16 of pages 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    /// Page id the meta was read from (0 or 1).
    pub page: u64,
    /// Magic number.
    pub magic: u32,
    /// Format version.
    pub version: u32,
    /// Page size in bytes.
    pub page_size: u32,
    /// Flags (unused by bbolt).
    pub flags: u32,
    /// Root bucket page.
    pub root: u64,
    /// Root bucket sequence.
    pub root_sequence: u64,
    /// Freelist page, or [`PGID_NO_FREELIST`].
    pub freelist: u64,
    /// High-water mark: number of pages in use by the file.
    pub high_water_mark: u64,
    /// Transaction id.
    pub txid: u64,
    /// Stored checksum.
    pub checksum: u64,
}

/// FNV-1a 64-bit, as bbolt checksums meta pages.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Why a meta page is not usable.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "problem")]
pub enum MetaProblem {
    /// Too few bytes to hold a meta page.
    Truncated,
    /// The page header does not carry the meta flag.
    NotMetaPage {
        /// The flags found.
        flags: u16,
    },
    /// Wrong magic number.
    BadMagic {
        /// The magic found.
        found: u32,
    },
    /// Unsupported version.
    BadVersion {
        /// The version found.
        found: u32,
    },
    /// Checksum does not match the content.
    BadChecksum {
        /// Stored checksum.
        stored: u64,
        /// Computed checksum.
        computed: u64,
    },
}

impl std::fmt::Display for MetaProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetaProblem::Truncated => f.write_str("the file ends inside the meta page"),
            MetaProblem::NotMetaPage { flags } => write!(
                f,
                "page flags are 0x{flags:02x} ({}), not meta (0x04)",
                describe_flags(*flags)
            ),
            MetaProblem::BadMagic { found } => {
                write!(f, "magic is 0x{found:08x}, expected 0x{MAGIC:08x}")
            }
            MetaProblem::BadVersion { found } => {
                write!(f, "version is {found}, expected {VERSION}")
            }
            MetaProblem::BadChecksum { stored, computed } => write!(
                f,
                "checksum is 0x{stored:016x} but the content hashes to 0x{computed:016x}"
            ),
        }
    }
}

impl Meta {
    /// Parses the meta page `page` (0 or 1) from its page bytes, without validating it.
    pub fn parse(page: u64, bytes: &[u8]) -> std::result::Result<Meta, MetaProblem> {
        if bytes.len() < PAGE_HEADER_SIZE + META_SIZE {
            return Err(MetaProblem::Truncated);
        }
        let m = &bytes[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE];
        Ok(Meta {
            page,
            magic: u32_at(m, 0),
            version: u32_at(m, 4),
            page_size: u32_at(m, 8),
            flags: u32_at(m, 12),
            root: u64_at(m, 16),
            root_sequence: u64_at(m, 24),
            freelist: u64_at(m, 32),
            high_water_mark: u64_at(m, 40),
            txid: u64_at(m, 48),
            checksum: u64_at(m, 56),
        })
    }

    /// Parses and validates like bbolt: page flag, magic, version, checksum.
    pub fn parse_valid(page: u64, bytes: &[u8]) -> std::result::Result<Meta, MetaProblem> {
        let meta = Meta::parse(page, bytes)?;
        let flags = u16_at(bytes, 8);
        if meta.magic != MAGIC {
            return Err(MetaProblem::BadMagic { found: meta.magic });
        }
        if meta.version != VERSION {
            return Err(MetaProblem::BadVersion {
                found: meta.version,
            });
        }
        let computed = fnv1a64(&bytes[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + 56]);
        if computed != meta.checksum {
            return Err(MetaProblem::BadChecksum {
                stored: meta.checksum,
                computed,
            });
        }
        if flags != FLAG_META {
            return Err(MetaProblem::NotMetaPage { flags });
        }
        Ok(meta)
    }

    /// Serializes this meta (recomputing the checksum) into a full page of `page_size` bytes.
    pub fn to_page(&self) -> Vec<u8> {
        let mut page = vec![0u8; self.page_size as usize];
        page[0..8].copy_from_slice(&self.page.to_le_bytes());
        page[8..10].copy_from_slice(&FLAG_META.to_le_bytes());
        let m = &mut page[PAGE_HEADER_SIZE..PAGE_HEADER_SIZE + META_SIZE];
        m[0..4].copy_from_slice(&self.magic.to_le_bytes());
        m[4..8].copy_from_slice(&self.version.to_le_bytes());
        m[8..12].copy_from_slice(&self.page_size.to_le_bytes());
        m[12..16].copy_from_slice(&self.flags.to_le_bytes());
        m[16..24].copy_from_slice(&self.root.to_le_bytes());
        m[24..32].copy_from_slice(&self.root_sequence.to_le_bytes());
        m[32..40].copy_from_slice(&self.freelist.to_le_bytes());
        m[40..48].copy_from_slice(&self.high_water_mark.to_le_bytes());
        m[48..56].copy_from_slice(&self.txid.to_le_bytes());
        let sum = fnv1a64(&m[0..56]);
        m[56..64].copy_from_slice(&sum.to_le_bytes());
        page
    }
}

/// A persisted freelist page.
pub struct FreelistPage<'a> {
    ids: &'a [u8],
}

impl<'a> FreelistPage<'a> {
    /// A view of freelist page `id` (full bytes including overflow) at file offset `base`.
    pub fn new(bytes: &'a [u8], id: u64, base: u64) -> Result<FreelistPage<'a>> {
        let at = Location::page(id, base);
        let header = PageHeader::parse(bytes, at.clone())?;
        if header.flags != FLAG_FREELIST {
            return Err(Error::corrupt(
                at,
                format!(
                    "expected a freelist page, found flags 0x{:02x}",
                    header.flags
                ),
            ));
        }
        let (count, start) = if header.count == 0xFFFF {
            if bytes.len() < PAGE_HEADER_SIZE + 8 {
                return Err(Error::corrupt(at, "freelist count overflow word missing"));
            }
            (u64_at(bytes, PAGE_HEADER_SIZE), PAGE_HEADER_SIZE + 8)
        } else {
            (header.count as u64, PAGE_HEADER_SIZE)
        };
        let need = count
            .checked_mul(8)
            .and_then(|n| n.checked_add(start as u64));
        match need.filter(|&n| n <= bytes.len() as u64) {
            Some(end) => Ok(FreelistPage {
                ids: &bytes[start..end as usize],
            }),
            None => Err(Error::corrupt(
                at,
                format!(
                    "freelist claims {count} ids, more than fit in {} bytes",
                    bytes.len()
                ),
            )),
        }
    }

    /// Number of free page ids listed.
    pub fn len(&self) -> usize {
        self.ids.len() / 8
    }

    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The free page ids.
    pub fn ids(&self) -> impl Iterator<Item = u64> + 'a {
        self.ids.chunks_exact(8).map(|c| u64_at(c, 0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(page: u64) -> Meta {
        Meta {
            page,
            magic: MAGIC,
            version: VERSION,
            page_size: 4096,
            flags: 0,
            root: 3,
            root_sequence: 0,
            freelist: PGID_NO_FREELIST,
            high_water_mark: 4,
            txid: 7,
            checksum: 0,
        }
    }

    #[test]
    fn meta_roundtrip_and_checksum() {
        let page = meta(1).to_page();
        let m = Meta::parse_valid(1, &page).unwrap();
        assert_eq!(m.root, 3);
        assert_eq!(m.txid, 7);
        let mut bad = page.clone();
        bad[PAGE_HEADER_SIZE + 20] ^= 1;
        assert!(matches!(
            Meta::parse_valid(1, &bad),
            Err(MetaProblem::BadChecksum { .. })
        ));
        let mut bad = page.clone();
        bad[PAGE_HEADER_SIZE] = 0;
        assert!(matches!(
            Meta::parse_valid(1, &bad),
            Err(MetaProblem::BadMagic { .. })
        ));
        assert_eq!(
            Meta::parse_valid(1, &page[..40]),
            Err(MetaProblem::Truncated)
        );
    }

    #[test]
    fn leaf_element_bounds_are_checked() {
        let mut page = vec![0u8; 64];
        page[8..10].copy_from_slice(&FLAG_LEAF.to_le_bytes());
        page[10..12].copy_from_slice(&1u16.to_le_bytes());
        // element 0: pos 16 (-> byte 32), ksize 4, vsize 100 (too long)
        page[20..24].copy_from_slice(&16u32.to_le_bytes());
        page[24..28].copy_from_slice(&4u32.to_le_bytes());
        page[28..32].copy_from_slice(&100u32.to_le_bytes());
        let node = NodePage::new(&page, 9, Some(9 * 4096)).unwrap();
        let err = node.leaf(0).unwrap_err().to_string();
        assert!(err.contains("page 9") && err.contains("element 0"), "{err}");
        page[28..32].copy_from_slice(&8u32.to_le_bytes());
        let node = NodePage::new(&page, 9, None).unwrap();
        let e = node.leaf(0).unwrap();
        assert_eq!(e.key.len(), 4);
        assert_eq!(e.value.len(), 8);
    }

    #[test]
    fn element_count_beyond_page_is_an_error() {
        let mut page = vec![0u8; 64];
        page[8..10].copy_from_slice(&FLAG_BRANCH.to_le_bytes());
        page[10..12].copy_from_slice(&100u16.to_le_bytes());
        assert!(NodePage::new(&page, 5, None).is_err());
    }

    #[test]
    fn freelist_with_large_count() {
        let mut page = vec![0u8; 64];
        page[8..10].copy_from_slice(&FLAG_FREELIST.to_le_bytes());
        page[10..12].copy_from_slice(&0xFFFFu16.to_le_bytes());
        page[16..24].copy_from_slice(&2u64.to_le_bytes());
        page[24..32].copy_from_slice(&5u64.to_le_bytes());
        page[32..40].copy_from_slice(&6u64.to_le_bytes());
        let fl = FreelistPage::new(&page, 2, 0).unwrap();
        assert_eq!(fl.ids().collect::<Vec<_>>(), vec![5, 6]);
        page[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(FreelistPage::new(&page, 2, 0).is_err());
    }
}
