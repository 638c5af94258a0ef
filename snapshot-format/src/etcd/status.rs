//! `snapshot status`: etcdctl's four numbers (hash, revision, total keys, total size) and
//! what etcdctl does not show, computed in one parallel pass over the key bucket.

use std::collections::HashMap;

use serde::Serialize;

use super::buckets::{self, Member};
use super::revision::{RevisionKey, kv_user_key};
use super::snapshot::{Snapshot, SnapshotKind};
use crate::bbolt::{Bucket, LeafElement};
use crate::error::{Error, Location, Result};

/// Options for [`Snapshot::status`].
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// Path segments that make a key prefix (`/registry/pods/…` at depth 2).
    pub prefix_depth: usize,
}

impl Default for StatusOptions {
    fn default() -> Self {
        StatusOptions { prefix_depth: 2 }
    }
}

/// Entries and pages of one top-level bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BucketSummary {
    /// Bucket name.
    pub name: String,
    /// Entries.
    pub keys: u64,
    /// File pages of the bucket's tree (0 when inline).
    pub pages: u64,
}

/// Revisions and bytes under one key prefix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixSummary {
    /// The prefix.
    pub prefix: String,
    /// Revisions (puts and deletes) under the prefix.
    pub revisions: u64,
    /// Of which deletes.
    pub tombstones: u64,
    /// Bytes of the encoded records (revision key + `KeyValue`).
    pub bytes: u64,
}

/// Everything `salvor etcd snapshot status` reports.
///
/// The first four fields carry etcdctl's JSON names so scripts can switch tools.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotStatus {
    /// CRC-32C over every bucket, as `etcdctl snapshot status` computes it.
    pub hash: u32,
    /// Main revision of the newest record.
    pub revision: i64,
    /// Entries across all buckets.
    pub total_key: u64,
    /// High-water mark × page size (`tx.Size()`).
    pub total_size: u64,
    /// What was opened.
    pub kind: SnapshotKind,
    /// Size of the file on disk.
    pub file_size: u64,
    /// True when the file carries a sha256 trailer (not verified here; `check` does).
    pub sha256_trailer: bool,
    /// Page size.
    pub page_size: u32,
    /// Pages in use by the file.
    pub high_water_mark: u64,
    /// Pages reachable from the active meta page.
    pub reachable_pages: u64,
    /// Pages below the high-water mark that nothing references.
    pub free_pages: u64,
    /// `free_pages / high_water_mark`.
    pub free_page_ratio: f64,
    /// Transaction id of the active meta page.
    pub txid: u64,
    /// Raft index of the last applied entry.
    pub consistent_index: Option<u64>,
    /// Raft term (etcd 3.5+ records it).
    pub term: Option<u64>,
    /// Last completed compaction.
    pub compacted_revision: Option<i64>,
    /// Last requested compaction.
    pub scheduled_compact_revision: Option<i64>,
    /// Oldest main revision present.
    pub oldest_revision: Option<i64>,
    /// Records in the key bucket.
    pub key_revisions: u64,
    /// Of which deletes.
    pub tombstones: u64,
    /// Cluster version.
    pub cluster_version: Option<String>,
    /// Members.
    pub members: Vec<Member>,
    /// Leases.
    pub leases: usize,
    /// Active alarms, as `MEMBERID:ALARM`.
    pub alarms: Vec<String>,
    /// Auth enabled.
    pub auth_enabled: bool,
    /// Per top-level bucket.
    pub buckets: Vec<BucketSummary>,
    /// Per key prefix, largest first.
    pub prefixes: Vec<PrefixSummary>,
}

/// Returns `key` up to and including its `depth`-th separator after a leading `/`
/// (`/registry/pods/ns/x` at depth 2 is `/registry/pods/`); shorter keys give what
/// they have up to their last `/`.
pub fn key_prefix(key: &[u8], depth: usize) -> &[u8] {
    let start = usize::from(key.first() == Some(&b'/'));
    let mut last = None;
    let mut seen = 0;
    for (i, &b) in key.iter().enumerate().skip(start) {
        if b == b'/' {
            seen += 1;
            last = Some(i);
            if seen == depth {
                break;
            }
        }
    }
    match last {
        Some(i) => &key[..=i],
        None => &key[..start],
    }
}

#[derive(Default)]
struct KeyAcc {
    crc: u32,
    len: usize,
    tombstones: u64,
    prefixes: HashMap<Vec<u8>, PrefixSummary>,
}

fn hash_entry(crc: u32, e: &LeafElement<'_>) -> (u32, usize) {
    let crc = crc32c::crc32c_append(crc, e.key);
    if e.is_bucket() {
        // Go's ForEach hands nil as the value of a nested bucket.
        (crc, e.key.len())
    } else {
        (
            crc32c::crc32c_append(crc, e.value),
            e.key.len() + e.value.len(),
        )
    }
}

impl Snapshot {
    /// Computes the status in one pass over every bucket (the key bucket in parallel).
    pub fn status(&self, opts: &StatusOptions) -> Result<SnapshotStatus> {
        let db = self.db();
        let meta = db.meta();
        let mut crc = 0u32;
        let mut total_key = 0u64;
        let mut reachable = 2u64;
        if db.freelist_persisted() {
            reachable += db.read_page(meta.freelist)?.span();
        }
        let names = db.bucket_names()?;
        reachable += db.root().for_each(|_| Ok(()))?.pages;
        let mut summaries = Vec::new();
        let mut key_stats = None;
        for name in &names {
            crc = crc32c::crc32c_append(crc, name);
            let bucket = db.bucket(name)?.ok_or_else(|| {
                Error::corrupt(
                    Location::default().at_key(name),
                    "bucket listed in the root but not found by lookup",
                )
            })?;
            let (keys, pages) = if name == buckets::KEY.as_bytes() {
                let (keys, pages, stats) = self.scan_key_bucket(&bucket, &mut crc, opts)?;
                key_stats = Some(stats);
                (keys, pages)
            } else {
                let mut nested = Vec::new();
                let part = bucket.for_each(|e| {
                    crc = hash_entry(crc, e).0;
                    if e.is_bucket() {
                        nested.push((e.key.to_vec(), e.value.to_vec()));
                    }
                    Ok(())
                })?;
                let mut pages = part.pages;
                for (k, v) in nested {
                    let at = Location::default().in_bucket(name).at_key(&k);
                    pages += Bucket::from_value(db, &k, &v, at)?.count_pages()?;
                }
                (part.entries, pages)
            };
            total_key += keys;
            reachable += pages;
            summaries.push(BucketSummary {
                name: String::from_utf8_lossy(name).into_owned(),
                keys,
                pages,
            });
        }
        let key_stats = key_stats.unwrap_or_default();
        let hwm = meta.high_water_mark;
        let free = hwm.saturating_sub(reachable);
        let etcd_meta = self.etcd_meta()?;
        let alarms = self
            .alarms()?
            .iter()
            .map(|a| format!("{:x}:{}", a.member_id, a.alarm_name()))
            .collect();
        Ok(SnapshotStatus {
            hash: crc,
            revision: key_stats.newest.unwrap_or(0),
            total_key,
            total_size: db.size(),
            kind: self.kind(),
            file_size: self.file_len(),
            sha256_trailer: self.trailer().is_some(),
            page_size: db.page_size(),
            high_water_mark: hwm,
            reachable_pages: reachable,
            free_pages: free,
            free_page_ratio: if hwm == 0 {
                0.0
            } else {
                free as f64 / hwm as f64
            },
            txid: meta.txid,
            consistent_index: etcd_meta.consistent_index,
            term: etcd_meta.term,
            compacted_revision: etcd_meta.finished_compact_revision,
            scheduled_compact_revision: etcd_meta.scheduled_compact_revision,
            oldest_revision: key_stats.oldest,
            key_revisions: key_stats.revisions,
            tombstones: key_stats.tombstones,
            cluster_version: self.cluster_version()?,
            members: self.members()?,
            leases: self.leases()?.len(),
            alarms,
            auth_enabled: self.auth()?.enabled,
            buckets: summaries,
            prefixes: key_stats.prefixes,
        })
    }

    fn scan_key_bucket(
        &self,
        bucket: &Bucket<'_>,
        crc: &mut u32,
        opts: &StatusOptions,
    ) -> Result<(u64, u64, KeyBucketStats)> {
        let depth = opts.prefix_depth;
        let parts = bucket.scan_parallel(KeyAcc::default, |acc, e| {
            let (c, n) = hash_entry(acc.crc, e);
            acc.crc = c;
            acc.len += n;
            let tombstone = e.key.len() == 18 && e.key[17] == b't';
            acc.tombstones += u64::from(tombstone);
            let prefix = kv_user_key(e.value)
                .map(|k| key_prefix(k, depth))
                .unwrap_or(b"<undecodable>");
            let bytes = (e.key.len() + e.value.len()) as u64;
            match acc.prefixes.get_mut(prefix) {
                Some(p) => {
                    p.revisions += 1;
                    p.tombstones += u64::from(tombstone);
                    p.bytes += bytes;
                }
                None => {
                    acc.prefixes.insert(
                        prefix.to_vec(),
                        PrefixSummary {
                            prefix: String::new(),
                            revisions: 1,
                            tombstones: u64::from(tombstone),
                            bytes,
                        },
                    );
                }
            }
            Ok(())
        })?;
        let mut stats = KeyBucketStats::default();
        let mut prefixes: HashMap<Vec<u8>, PrefixSummary> = HashMap::new();
        let (mut entries, mut pages) = (0, 0);
        for (acc, part) in parts {
            *crc = crc32c::crc32c_combine(*crc, acc.crc, acc.len);
            entries += part.entries;
            pages += part.pages;
            stats.tombstones += acc.tombstones;
            for (k, p) in acc.prefixes {
                let e = prefixes.entry(k).or_default();
                e.revisions += p.revisions;
                e.tombstones += p.tombstones;
                e.bytes += p.bytes;
            }
            if stats.oldest.is_none()
                && let Some(first) = &part.first_key
            {
                stats.oldest = Some(parse_rev(first, bucket)?.revision.main);
            }
            if let Some(last) = &part.last_key {
                stats.newest = Some(parse_rev(last, bucket)?.revision.main);
            }
        }
        stats.revisions = entries;
        let mut prefixes: Vec<PrefixSummary> = prefixes
            .into_iter()
            .map(|(k, mut p)| {
                p.prefix = String::from_utf8_lossy(&k).into_owned();
                p
            })
            .collect();
        prefixes.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.prefix.cmp(&b.prefix)));
        stats.prefixes = prefixes;
        Ok((entries, pages, stats))
    }
}

fn parse_rev(key: &[u8], bucket: &Bucket<'_>) -> Result<RevisionKey> {
    RevisionKey::parse(key).map_err(|e| {
        Error::corrupt(
            Location::default().in_bucket(bucket.name()).at_key(key),
            e.to_string(),
        )
    })
}

#[derive(Default)]
struct KeyBucketStats {
    revisions: u64,
    tombstones: u64,
    oldest: Option<i64>,
    newest: Option<i64>,
    prefixes: Vec<PrefixSummary>,
}

#[cfg(test)]
mod tests {
    use super::key_prefix;

    #[test]
    fn prefixes() {
        assert_eq!(key_prefix(b"/registry/pods/ns/x", 2), b"/registry/pods/");
        assert_eq!(key_prefix(b"/registry/pods/ns/x", 1), b"/registry/");
        assert_eq!(key_prefix(b"/registry/pods/ns/x", 9), b"/registry/pods/ns/");
        assert_eq!(key_prefix(b"/registry/health", 2), b"/registry/");
        assert_eq!(key_prefix(b"foo", 2), b"");
        assert_eq!(key_prefix(b"/foo", 2), b"/");
        assert_eq!(key_prefix(b"a/b/c", 1), b"a/");
        assert_eq!(key_prefix(b"", 2), b"");
    }
}
