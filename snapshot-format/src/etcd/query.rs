//! Reading the key space offline the way etcd serves it: ranges at a revision, the full
//! history of a key, `HashKV`, and per-key statistics.

use std::collections::{BTreeMap, HashMap, HashSet};

use prost::Message;
use serde::Serialize;

use super::revision::{Revision, RevisionKey, kv_user_key};
use super::snapshot::Snapshot;
use super::status::key_prefix;
use crate::bbolt::{Bucket, LeafElement};
use crate::error::{Error, Location, Result};
use crate::mvcc::KeyValue;

/// A key range in etcd's terms.
#[derive(Debug, Clone, Default)]
pub struct RangeQuery {
    /// Start key.
    pub key: Vec<u8>,
    /// End key (exclusive). `None`: only `key`. `Some([0])`: every key `>= key`.
    pub range_end: Option<Vec<u8>>,
    /// Revision to read at; 0 for the newest.
    pub revision: i64,
    /// Return at most this many keys (0: no limit).
    pub limit: usize,
    /// Leave values empty.
    pub keys_only: bool,
}

impl RangeQuery {
    /// Every key starting with `prefix` (etcdctl `--prefix`).
    pub fn prefix(prefix: &[u8]) -> Self {
        if prefix.is_empty() {
            return RangeQuery {
                key: vec![0],
                range_end: Some(vec![0]),
                ..Default::default()
            };
        }
        RangeQuery {
            key: prefix.to_vec(),
            range_end: Some(prefix_end(prefix)),
            ..Default::default()
        }
    }

    /// One key.
    pub fn single(key: &[u8]) -> Self {
        RangeQuery {
            key: key.to_vec(),
            ..Default::default()
        }
    }

    /// Whether `k` is inside the range.
    pub fn contains(&self, k: &[u8]) -> bool {
        match &self.range_end {
            None => k == self.key.as_slice(),
            Some(end) if end.as_slice() == [0] => k >= self.key.as_slice(),
            Some(end) => k >= self.key.as_slice() && k < end.as_slice(),
        }
    }
}

/// The `range_end` that selects every key starting with `prefix`, as etcd's
/// `clientv3.GetPrefixRangeEnd`: the prefix with its last byte below `0xff` incremented
/// and what follows dropped; `[0]` (every key from `key` on) when there is no such byte,
/// including for the empty prefix.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&byte| byte < 0xff) {
        Some(last) => {
            let mut end = prefix[..=last].to_vec();
            end[last] += 1;
            end
        }
        None => vec![0],
    }
}

/// The outcome of a range read.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RangeResult {
    /// Newest revision of the database (etcd's response header revision).
    pub header_revision: i64,
    /// Revision the range was read at.
    pub revision: i64,
    /// Keys matching (before the limit).
    pub count: usize,
    /// True when the limit cut the result.
    pub more: bool,
    /// The key-values, sorted by key.
    #[serde(skip)]
    pub kvs: Vec<RangeEntry>,
}

/// One key of a range result.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeEntry {
    /// The record (value empty when the query asked for keys only).
    pub kv: KeyValue,
    /// Size of the value in the database.
    pub value_size: usize,
    /// Where the record is stored (fetch its value later with [`Snapshot::record`]).
    pub revision: Revision,
}

/// One revision of a key.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The revision key.
    pub revision: RevisionKey,
    /// The record (for a delete: the key and its mod revision only).
    pub kv: KeyValue,
}

/// The result of `HashKV`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HashKv {
    /// CRC-32C as etcd's `HashKV` computes it.
    pub hash: u32,
    /// Revision hashed up to.
    pub hash_revision: i64,
    /// Newest revision in the database.
    pub current_revision: i64,
    /// Compacted revision.
    pub compact_revision: i64,
}

/// A key and a size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeySize {
    /// The user key.
    pub key: String,
    /// Bytes of its newest value.
    pub value_bytes: u64,
    /// Its newest revision.
    pub mod_revision: i64,
}

/// A key and its revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyRevisions {
    /// The user key.
    pub key: String,
    /// Revisions present (puts and deletes).
    pub revisions: u64,
    /// Bytes of all of them.
    pub bytes: u64,
}

/// Live keys and history per prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixUsage {
    /// The prefix.
    pub prefix: String,
    /// Keys whose newest revision is not a delete.
    pub live_keys: u64,
    /// Bytes of those keys' newest values.
    pub live_bytes: u64,
    /// Revisions (all, including history and deletes).
    pub revisions: u64,
    /// Bytes of all revisions (revision key + record).
    pub bytes: u64,
}

/// What `salvor etcd snapshot stats` reports.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyStats {
    /// Records in the key bucket.
    pub revisions: u64,
    /// Distinct user keys.
    pub keys: u64,
    /// Keys whose newest revision is not a delete.
    pub live_keys: u64,
    /// Bytes of all records.
    pub bytes: u64,
    /// Bytes of the newest records of live keys.
    pub live_bytes: u64,
    /// Largest live values.
    pub largest: Vec<KeySize>,
    /// Keys with the most revisions.
    pub most_revisions: Vec<KeyRevisions>,
    /// Usage per prefix, largest first.
    pub prefixes: Vec<PrefixUsage>,
}

fn rev_key(e: &LeafElement<'_>, bucket: &Bucket<'_>) -> Result<RevisionKey> {
    RevisionKey::parse(e.key).map_err(|err| {
        Error::corrupt(
            Location::default().in_bucket(bucket.name()).at_key(e.key),
            err.to_string(),
        )
    })
}

fn user_key<'v>(e: &LeafElement<'v>, bucket: &Bucket<'_>) -> Result<&'v [u8]> {
    kv_user_key(e.value).ok_or_else(|| {
        Error::corrupt(
            Location::default().in_bucket(bucket.name()).at_key(e.key),
            "value is not a valid mvccpb.KeyValue",
        )
    })
}

fn decode_kv(e: &LeafElement<'_>, bucket: &Bucket<'_>) -> Result<KeyValue> {
    KeyValue::decode(e.value).map_err(|err| {
        Error::corrupt(
            Location::default().in_bucket(bucket.name()).at_key(e.key),
            format!("value is not a valid mvccpb.KeyValue: {err}"),
        )
    })
}

#[derive(Clone)]
struct Latest {
    rev: RevisionKey,
    entry: RangeEntry,
}

#[derive(Default, Clone)]
struct KeyAgg {
    revisions: u64,
    bytes: u64,
    latest_bytes: u64,
    latest_main: i64,
    latest_tombstone: bool,
}

impl Snapshot {
    /// Newest main revision in the key bucket (etcd's current revision; 1 when empty).
    pub fn current_revision(&self) -> Result<i64> {
        let bucket = self.key_bucket()?;
        match bucket.last_key()? {
            Some(k) => RevisionKey::parse(&k)
                .map(|r| r.revision.main)
                .map_err(|e| {
                    Error::corrupt(
                        Location::default().in_bucket(bucket.name()).at_key(&k),
                        e.to_string(),
                    )
                }),
            None => Ok(1),
        }
    }

    /// Resolves `rev` (0 = newest) against the compacted and current revisions, the way
    /// etcd's Range does.
    fn read_revision(&self, rev: i64) -> Result<(i64, i64)> {
        let current = self.current_revision()?;
        let compacted = self.etcd_meta()?.compact_revision();
        if rev > current {
            return Err(Error::FutureRevision {
                requested: rev,
                current,
            });
        }
        if rev > 0 && rev < compacted {
            return Err(Error::Compacted {
                requested: rev,
                compacted,
            });
        }
        Ok((if rev <= 0 { current } else { rev }, current))
    }

    /// Reads a range at a revision, like etcd's Range.
    pub fn range(&self, q: &RangeQuery) -> Result<RangeResult> {
        let (rev, current) = self.read_revision(q.revision)?;
        let bucket = self.key_bucket()?;
        let parts = bucket.scan_parallel(HashMap::<Vec<u8>, Latest>::new, |acc, e| {
            let k = rev_key(e, &bucket)?;
            if k.revision.main > rev {
                return Ok(());
            }
            let user = user_key(e, &bucket)?;
            if !q.contains(user) {
                return Ok(());
            }
            let mut kv = decode_kv(e, &bucket)?;
            let value_size = kv.value.len();
            if q.keys_only {
                kv.value = Vec::new();
            }
            acc.insert(
                user.to_vec(),
                Latest {
                    rev: k,
                    entry: RangeEntry {
                        kv,
                        value_size,
                        revision: k.revision,
                    },
                },
            );
            Ok(())
        })?;
        let mut latest: BTreeMap<Vec<u8>, Latest> = BTreeMap::new();
        for (acc, _) in parts {
            for (k, l) in acc {
                match latest.get(&k) {
                    Some(prev) if prev.rev.revision > l.rev.revision => {}
                    _ => {
                        latest.insert(k, l);
                    }
                }
            }
        }
        let mut kvs: Vec<RangeEntry> = latest
            .into_values()
            .filter(|l| !l.rev.tombstone)
            .map(|l| l.entry)
            .collect();
        let count = kvs.len();
        let more = q.limit > 0 && count > q.limit;
        if more {
            kvs.truncate(q.limit);
        }
        Ok(RangeResult {
            header_revision: current,
            revision: rev,
            count,
            more,
            kvs,
        })
    }

    /// The record stored at `revision` (a put), if present.
    pub fn record(&self, revision: Revision) -> Result<Option<KeyValue>> {
        let bucket = self.key_bucket()?;
        match bucket.get(&revision.to_bytes())? {
            Some(value) => KeyValue::decode(value.as_slice()).map(Some).map_err(|err| {
                Error::corrupt(
                    Location::default()
                        .in_bucket(bucket.name())
                        .at_key(&revision.to_bytes()),
                    format!("value is not a valid mvccpb.KeyValue: {err}"),
                )
            }),
            None => Ok(None),
        }
    }

    /// Every revision of `key` present in the database, oldest first, deletes included.
    pub fn history(&self, key: &[u8]) -> Result<Vec<HistoryEntry>> {
        let bucket = self.key_bucket()?;
        let parts = bucket.scan_parallel(Vec::new, |acc: &mut Vec<HistoryEntry>, e| {
            if user_key(e, &bucket)? == key {
                acc.push(HistoryEntry {
                    revision: rev_key(e, &bucket)?,
                    kv: decode_kv(e, &bucket)?,
                });
            }
            Ok(())
        })?;
        Ok(parts.into_iter().flat_map(|(v, _)| v).collect())
    }

    /// `HashKV(rev)` exactly as etcd computes it: CRC-32C seeded with the bucket name
    /// `key` over each raw revision key and value up to `rev`, where revisions at or below
    /// the compacted revision count only if compaction keeps them.
    pub fn hash_kv(&self, rev: i64) -> Result<HashKv> {
        let current = self.current_revision()?;
        let compacted = self.etcd_meta()?.compact_revision();
        if rev > 0 && rev <= compacted {
            return Err(Error::Compacted {
                requested: rev,
                compacted,
            });
        }
        if rev > current {
            return Err(Error::FutureRevision {
                requested: rev,
                current,
            });
        }
        let rev = if rev <= 0 { current } else { rev };
        let bucket = self.key_bucket()?;
        let keep = if compacted > 0 {
            self.keep_set(&bucket, rev)?
        } else {
            HashSet::new()
        };
        let parts = bucket.scan_parallel(
            || (0u32, 0usize),
            |(crc, len), e| {
                let k = rev_key(e, &bucket)?;
                if k.revision.main > rev {
                    return Ok(());
                }
                if k.revision.main <= compacted && !keep.is_empty() && !keep.contains(&k.revision) {
                    return Ok(());
                }
                *crc = crc32c::crc32c_append(crc32c::crc32c_append(*crc, e.key), e.value);
                *len += e.key.len() + e.value.len();
                Ok(())
            },
        )?;
        let mut crc = crc32c::crc32c(b"key");
        for ((part_crc, part_len), _) in parts {
            crc = crc32c::crc32c_combine(crc, part_crc, part_len);
        }
        Ok(HashKv {
            hash: crc,
            hash_revision: rev,
            current_revision: current,
            compact_revision: compacted,
        })
    }

    /// The revisions etcd's `kvindex.Keep(at)` returns: per key, the newest revision at
    /// or below `at` in the generation alive at `at`, unless that revision is the
    /// generation's closing delete.
    fn keep_set(&self, bucket: &Bucket<'_>, at: i64) -> Result<HashSet<Revision>> {
        // Per key: generations of revisions, each closed by a delete.
        let mut index: HashMap<Vec<u8>, Vec<Vec<Revision>>> = HashMap::new();
        bucket.for_each(|e| {
            let k = rev_key(e, bucket)?;
            let gens = index
                .entry(user_key(e, bucket)?.to_vec())
                .or_insert_with(|| vec![Vec::new()]);
            let last = gens.len() - 1;
            gens[last].push(k.revision);
            if k.tombstone {
                gens.push(Vec::new());
            }
            Ok(())
        })?;
        let mut keep = HashSet::new();
        for gens in index.values() {
            let mut gi = 0;
            while gi < gens.len() - 1 {
                match gens[gi].last() {
                    Some(tomb) if tomb.main > at => break,
                    _ => gi += 1,
                }
            }
            let g = &gens[gi];
            if let Some(ri) = g.iter().rposition(|r| r.main <= at) {
                let closing_delete = ri == g.len() - 1 && gi != gens.len() - 1;
                if !closing_delete {
                    keep.insert(g[ri]);
                }
            }
        }
        Ok(keep)
    }

    /// Per-key statistics: largest values, keys with most revisions, usage per prefix.
    pub fn key_stats(&self, top: usize, prefix_depth: usize) -> Result<KeyStats> {
        let bucket = self.key_bucket()?;
        let parts = bucket.scan_parallel(HashMap::<Vec<u8>, KeyAgg>::new, |acc, e| {
            let k = rev_key(e, &bucket)?;
            let user = user_key(e, &bucket)?;
            let bytes = (e.key.len() + e.value.len()) as u64;
            let value_bytes = if k.tombstone {
                0
            } else {
                decode_kv(e, &bucket)?.value.len() as u64
            };
            let agg = match acc.get_mut(user) {
                Some(a) => a,
                None => acc.entry(user.to_vec()).or_default(),
            };
            agg.revisions += 1;
            agg.bytes += bytes;
            agg.latest_bytes = value_bytes;
            agg.latest_main = k.revision.main;
            agg.latest_tombstone = k.tombstone;
            Ok(())
        })?;
        let mut keys: HashMap<Vec<u8>, KeyAgg> = HashMap::new();
        for (acc, _) in parts {
            for (k, a) in acc {
                match keys.get_mut(&k) {
                    Some(prev) => {
                        prev.revisions += a.revisions;
                        prev.bytes += a.bytes;
                        prev.latest_bytes = a.latest_bytes;
                        prev.latest_main = a.latest_main;
                        prev.latest_tombstone = a.latest_tombstone;
                    }
                    None => {
                        keys.insert(k, a);
                    }
                }
            }
        }
        let text = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        let mut prefixes: HashMap<&[u8], PrefixUsage> = HashMap::new();
        let (mut revisions, mut bytes, mut live_keys, mut live_bytes) = (0, 0, 0, 0);
        for (k, a) in &keys {
            let p = prefixes.entry(key_prefix(k, prefix_depth)).or_default();
            p.revisions += a.revisions;
            p.bytes += a.bytes;
            revisions += a.revisions;
            bytes += a.bytes;
            if !a.latest_tombstone {
                p.live_keys += 1;
                p.live_bytes += a.latest_bytes;
                live_keys += 1;
                live_bytes += a.latest_bytes;
            }
        }
        let mut largest: Vec<KeySize> = keys
            .iter()
            .filter(|(_, a)| !a.latest_tombstone)
            .map(|(k, a)| KeySize {
                key: text(k),
                value_bytes: a.latest_bytes,
                mod_revision: a.latest_main,
            })
            .collect();
        largest.sort_by(|a, b| {
            b.value_bytes
                .cmp(&a.value_bytes)
                .then_with(|| a.key.cmp(&b.key))
        });
        largest.truncate(top);
        let mut most: Vec<KeyRevisions> = keys
            .iter()
            .map(|(k, a)| KeyRevisions {
                key: text(k),
                revisions: a.revisions,
                bytes: a.bytes,
            })
            .collect();
        most.sort_by(|a, b| {
            b.revisions
                .cmp(&a.revisions)
                .then_with(|| a.key.cmp(&b.key))
        });
        most.truncate(top);
        let mut prefixes: Vec<PrefixUsage> = prefixes
            .into_iter()
            .map(|(k, mut p)| {
                p.prefix = text(k);
                p
            })
            .collect();
        prefixes.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.prefix.cmp(&b.prefix)));
        Ok(KeyStats {
            revisions,
            keys: keys.len() as u64,
            live_keys,
            bytes,
            live_bytes,
            largest,
            most_revisions: most,
            prefixes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_like_etcd() {
        assert_eq!(prefix_end(b"abc"), b"abd");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), vec![0]);
    }

    #[test]
    fn range_contains() {
        let q = RangeQuery::prefix(b"/a/");
        assert!(q.contains(b"/a/x"));
        assert!(!q.contains(b"/b"));
        let all = RangeQuery::prefix(b"");
        assert!(all.contains(b"\x01") && all.contains(b"zzz"));
        let one = RangeQuery::single(b"k");
        assert!(one.contains(b"k") && !one.contains(b"k2"));
    }
}
