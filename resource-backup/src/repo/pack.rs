//! Pack files: many zstd-compressed objects in one stored file, with an index saying
//! where each is. A pack is sealed when it reaches its target size; its id is the
//! sha256 of the file as stored (after encryption, if any), so anyone can check a
//! pack's integrity without keys.

use sha2::{Digest, Sha256};

use super::format::{INDEX_FORMAT, IndexedBlob, PACK_MAGIC, PackIndex, limits};
use crate::Error;
use crate::canonical::ContentId;
use crate::crypto::Recipients;

/// zstd level: fast, and Kubernetes JSON compresses well at any level.
const ZSTD_LEVEL: i32 = 3;

/// One object compressed, ready to go into a pack.
#[derive(Debug)]
pub struct CompressedBlob {
    /// Content id.
    pub id: ContentId,
    /// The zstd frame.
    pub frame: Vec<u8>,
    /// Canonical length.
    pub raw_length: u64,
}

/// Compresses canonical JSON.
pub fn compress(id: ContentId, canonical: &[u8]) -> Result<CompressedBlob, Error> {
    let frame = zstd::bulk::compress(canonical, ZSTD_LEVEL)
        .map_err(|e| Error::Invalid(format!("zstd: {e}")))?;
    Ok(CompressedBlob {
        id,
        frame,
        raw_length: canonical.len() as u64,
    })
}

/// A pack being filled.
#[derive(Debug)]
pub struct PackBuilder {
    body: Vec<u8>,
    blobs: Vec<IndexedBlob>,
    target: usize,
}

/// A sealed pack: the bytes to store and its index.
#[derive(Debug)]
pub struct SealedPack {
    /// Pack id (sha256 hex of `bytes`).
    pub id: String,
    /// The file.
    pub bytes: Vec<u8>,
    /// Its index.
    pub index: PackIndex,
}

impl PackBuilder {
    /// An empty pack that wants sealing at about `target` bytes.
    pub fn new(target: usize) -> PackBuilder {
        let mut body = Vec::with_capacity(target.min(16 << 20) + 4096);
        body.extend_from_slice(PACK_MAGIC);
        PackBuilder {
            body,
            blobs: Vec::new(),
            target,
        }
    }

    /// Adds a blob.
    pub fn add(&mut self, blob: CompressedBlob) {
        self.blobs.push(IndexedBlob {
            id: blob.id,
            offset: self.body.len() as u64,
            length: blob.frame.len() as u64,
            raw_length: blob.raw_length,
        });
        self.body.extend_from_slice(&blob.frame);
    }

    /// Whether it reached its target size.
    pub fn is_full(&self) -> bool {
        self.body.len() >= self.target
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.blobs.is_empty()
    }

    /// Seals it, encrypting to `recipients` when there are any.
    pub fn seal(self, recipients: &Recipients) -> Result<SealedPack, Error> {
        let encrypted = !recipients.is_empty();
        let bytes = if encrypted {
            recipients.encrypt(&self.body)?
        } else {
            self.body
        };
        let id = hex::encode(Sha256::digest(&bytes));
        let index = PackIndex {
            format: INDEX_FORMAT.to_string(),
            pack: id.clone(),
            size: bytes.len() as u64,
            encrypted,
            blobs: self.blobs,
        };
        Ok(SealedPack { id, bytes, index })
    }
}

/// Key of a pack.
pub fn pack_key(id: &str) -> String {
    let shard = id.get(..2).unwrap_or("00");
    format!("packs/{shard}/{id}.pack")
}

/// Key of a pack's index.
pub fn index_key(id: &str) -> String {
    format!("index/{id}.json.zst")
}

/// Whether a string is a pack id (64 lower-case hex digits), so it can go into a key.
pub fn is_pack_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Encodes an index for storage.
pub fn encode_index(index: &PackIndex) -> Result<Vec<u8>, Error> {
    let json = serde_json::to_vec(index).map_err(|e| Error::Invalid(e.to_string()))?;
    zstd::bulk::compress(&json, ZSTD_LEVEL).map_err(|e| Error::Invalid(format!("zstd: {e}")))
}

/// Decodes a stored index, checking it describes the pack it is named after.
pub fn decode_index(key: &str, bytes: &[u8], expected_pack: &str) -> Result<PackIndex, Error> {
    let json = decompress_limited(key, bytes, limits::INDEX)?;
    let index: PackIndex = serde_json::from_slice(&json)
        .map_err(|e| Error::corrupt(key, format!("not a pack index: {e}")))?;
    if index.format != INDEX_FORMAT {
        return Err(Error::corrupt(
            key,
            format!("format {:?}, expected {INDEX_FORMAT:?}", index.format),
        ));
    }
    if index.pack != expected_pack {
        return Err(Error::corrupt(
            key,
            format!("describes pack {} instead of {expected_pack}", index.pack),
        ));
    }
    Ok(index)
}

/// Decompresses one zstd stream, refusing output beyond `limit`.
pub fn decompress_limited(what: &str, bytes: &[u8], limit: u64) -> Result<Vec<u8>, Error> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::new(bytes)
        .map_err(|e| Error::corrupt(what, format!("zstd: {e}")))?;
    let mut out = Vec::new();
    decoder
        .take(limit + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::corrupt(what, format!("not valid zstd data: {e}")))?;
    if out.len() as u64 > limit {
        return Err(Error::corrupt(
            what,
            format!("decompresses to more than {limit} bytes"),
        ));
    }
    Ok(out)
}

/// Takes one object out of a pack's plaintext and checks it against its id.
pub fn read_blob(pack_key: &str, plaintext: &[u8], blob: &IndexedBlob) -> Result<Vec<u8>, Error> {
    let at = |m: String| Error::corrupt(format!("{pack_key} at offset {}", blob.offset), m);
    let end = blob
        .offset
        .checked_add(blob.length)
        .filter(|&e| e <= plaintext.len() as u64 && blob.offset >= PACK_MAGIC.len() as u64)
        .ok_or_else(|| {
            at(format!(
                "blob {} ({} bytes) lies outside the pack ({} bytes)",
                blob.id,
                blob.length,
                plaintext.len()
            ))
        })?;
    if blob.raw_length > limits::OBJECT {
        return Err(at(format!(
            "blob {} claims {} bytes, more than an object may have",
            blob.id, blob.raw_length
        )));
    }
    let frame = &plaintext[blob.offset as usize..end as usize];
    let raw = zstd::bulk::decompress(frame, blob.raw_length as usize)
        .map_err(|e| at(format!("blob {} is not valid zstd: {e}", blob.id)))?;
    let actual = ContentId::of(&raw);
    if actual != blob.id || raw.len() as u64 != blob.raw_length {
        return Err(at(format!(
            "blob {} has sha256 {actual}: the pack was damaged or tampered with",
            blob.id
        )));
    }
    Ok(raw)
}

/// Checks a pack's magic.
pub fn check_magic(pack_key: &str, plaintext: &[u8]) -> Result<(), Error> {
    if plaintext.starts_with(PACK_MAGIC) {
        Ok(())
    } else {
        Err(Error::corrupt(pack_key, "not a Salvor pack (bad magic)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_round_trip_and_tampering_is_caught() {
        let mut pack = PackBuilder::new(1 << 20);
        let objs: Vec<Vec<u8>> = (0..10)
            .map(|i| format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat(i * 100)).into_bytes())
            .collect();
        for o in &objs {
            pack.add(compress(ContentId::of(o), o).unwrap());
        }
        let sealed = pack.seal(&Recipients::default()).unwrap();
        check_magic("p", &sealed.bytes).unwrap();
        for (blob, o) in sealed.index.blobs.iter().zip(&objs) {
            assert_eq!(&read_blob("p", &sealed.bytes, blob).unwrap(), o);
        }
        let enc = encode_index(&sealed.index).unwrap();
        assert_eq!(decode_index("i", &enc, &sealed.id).unwrap(), sealed.index);
        assert!(decode_index("i", &enc, "other").is_err());
        let mut bad = sealed.bytes.clone();
        let b = &sealed.index.blobs[3];
        bad[(b.offset + b.length - 2) as usize] ^= 0xff;
        assert!(read_blob("p", &bad, b).is_err());
        let mut outside = b.clone();
        outside.offset = u64::MAX - 1;
        assert!(read_blob("p", &sealed.bytes, &outside).is_err());
    }
}
