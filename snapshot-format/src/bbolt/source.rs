//! Where pages come from: a file read into memory (default), positioned reads (bounded
//! memory, for very large files) or a memory map (opt-in).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// A random-access byte source holding a bbolt file.
///
/// Reading past [`PageSource::len`] is an error, never a short read.
pub trait PageSource: Send + Sync {
    /// Usable length in bytes (for snapshot files: without the sha256 trailer).
    fn len(&self) -> u64;

    /// True when the source holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lends `len` bytes at `offset` when the source holds the file in memory; `None`
    /// when bytes must be copied out with [`PageSource::read_exact_at`].
    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<&[u8]>> {
        let _ = (offset, len);
        None
    }

    /// Fills `buf` with the bytes at `offset`.
    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// `len` bytes starting at `offset`, lent or copied.
    fn read_at(&self, offset: u64, len: usize) -> io::Result<Cow<'_, [u8]>> {
        if let Some(lent) = self.lend(offset, len) {
            return lent.map(Cow::Borrowed);
        }
        let mut buf = vec![0u8; len];
        self.read_exact_at(offset, &mut buf)?;
        Ok(Cow::Owned(buf))
    }
}

fn out_of_range(offset: u64, len: usize, total: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "read of {len} bytes at offset {offset} runs past the end of the data ({total} bytes)"
        ),
    )
}

fn slice_at(data: &[u8], offset: u64, len: usize) -> io::Result<&[u8]> {
    let total = data.len() as u64;
    let end = offset.checked_add(len as u64).filter(|&e| e <= total);
    match end {
        Some(end) => Ok(&data[offset as usize..end as usize]),
        None => Err(out_of_range(offset, len, total)),
    }
}

/// The whole file held in memory.
pub struct MemorySource {
    data: Vec<u8>,
    len: u64,
}

impl MemorySource {
    /// Reads the first `len` bytes of `path` into memory.
    pub fn read(path: &Path, len: u64) -> io::Result<Self> {
        let mut file = File::open(path)?;
        let mut data = Vec::new();
        data.try_reserve_exact(len as usize)
            .map_err(io::Error::other)?;
        (&mut file).take(len).read_to_end(&mut data)?;
        if (data.len() as u64) < len {
            return Err(out_of_range(0, len as usize, data.len() as u64));
        }
        Ok(MemorySource { len, data })
    }

    /// Wraps bytes already in memory.
    pub fn from_bytes(data: Vec<u8>) -> Self {
        MemorySource {
            len: data.len() as u64,
            data,
        }
    }
}

impl PageSource for MemorySource {
    fn len(&self) -> u64 {
        self.len
    }

    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<&[u8]>> {
        Some(slice_at(&self.data, offset, len))
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.copy_from_slice(slice_at(&self.data, offset, buf.len())?);
        Ok(())
    }
}

/// Positioned reads (`pread`) on demand: memory stays bounded whatever the file size.
pub struct FileSource {
    file: File,
    len: u64,
}

impl FileSource {
    /// Opens `path`, using its first `len` bytes.
    pub fn open(path: &Path, len: u64) -> io::Result<Self> {
        Ok(FileSource {
            file: File::open(path)?,
            len,
        })
    }
}

impl PageSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.len)
        {
            return Err(out_of_range(offset, buf.len(), self.len));
        }
        FileExt::read_exact_at(&self.file, buf, offset)
    }
}

/// A read-only memory map of the file.
///
/// Opt-in: if another process truncates or rewrites the file while it is mapped, reads
/// may fault (SIGBUS) or see changing bytes. Use it on files nobody else is writing.
pub struct MmapSource {
    map: memmap2::Mmap,
    len: u64,
}

impl MmapSource {
    /// Maps `path`, using its first `len` bytes.
    pub fn open(path: &Path, len: u64) -> io::Result<Self> {
        let file = File::open(path)?;
        let file_len = file.metadata()?.len();
        if file_len < len {
            return Err(out_of_range(0, len as usize, file_len));
        }
        // SAFETY: the map is read-only and private to this process. The documented
        // hazard (another process truncating the file) is why this source is opt-in.
        #[allow(unsafe_code)]
        let map = unsafe { memmap2::MmapOptions::new().len(len as usize).map(&file)? };
        Ok(MmapSource { map, len })
    }
}

impl PageSource for MmapSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn lend(&self, offset: u64, len: usize) -> Option<io::Result<&[u8]>> {
        Some(slice_at(&self.map, offset, len))
    }

    fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.copy_from_slice(slice_at(&self.map, offset, buf.len())?);
        Ok(())
    }
}

/// How to read a file's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceKind {
    /// Memory for files up to [`SourceKind::AUTO_MEMORY_LIMIT`], positioned reads above.
    #[default]
    Auto,
    /// Read the whole file into memory.
    Memory,
    /// Positioned reads, bounded memory.
    Pread,
    /// Memory-map the file (opt-in; see [`MmapSource`]).
    Mmap,
}

impl SourceKind {
    /// Largest file [`SourceKind::Auto`] reads into memory.
    pub const AUTO_MEMORY_LIMIT: u64 = 256 << 20;

    /// Opens the first `len` bytes of `path` as a page source of this kind.
    pub fn open(self, path: &Path, len: u64) -> io::Result<Box<dyn PageSource>> {
        Ok(match self {
            SourceKind::Auto if len <= Self::AUTO_MEMORY_LIMIT => {
                Box::new(MemorySource::read(path, len)?)
            }
            SourceKind::Memory => Box::new(MemorySource::read(path, len)?),
            SourceKind::Auto | SourceKind::Pread => Box::new(FileSource::open(path, len)?),
            SourceKind::Mmap => Box::new(MmapSource::open(path, len)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_end_are_errors() {
        let src = MemorySource::from_bytes(vec![1, 2, 3, 4]);
        assert_eq!(&*src.read_at(1, 3).unwrap(), &[2, 3, 4]);
        assert!(src.read_at(2, 3).is_err());
        assert!(src.read_at(u64::MAX, 2).is_err());
    }

    #[test]
    fn file_sources_agree() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, (0..=255u8).collect::<Vec<_>>()).unwrap();
        for kind in [
            SourceKind::Memory,
            SourceKind::Pread,
            SourceKind::Mmap,
            SourceKind::Auto,
        ] {
            let src = kind.open(&path, 200).unwrap();
            assert_eq!(src.len(), 200);
            assert_eq!(&*src.read_at(10, 2).unwrap(), &[10, 11]);
            let mut buf = [0u8; 2];
            src.read_exact_at(198, &mut buf).unwrap();
            assert_eq!(buf, [198, 199]);
            assert!(src.read_exact_at(199, &mut buf).is_err(), "{kind:?}");
            assert!(src.read_at(199, 2).is_err(), "{kind:?}");
        }
    }
}
