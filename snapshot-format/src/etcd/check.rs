//! etcd's layer of the check: what the mvcc store requires of the `key` bucket and the
//! small buckets, found in the same pass as the bbolt check.

use std::collections::HashMap;

use serde::Serialize;

use super::buckets::{self, EtcdMeta};
use super::revision::RevisionKey;
use super::snapshot::Snapshot;
use crate::bbolt::check::{self as bbolt_check, CheckResult, VisitedEntry};
use crate::error::Location;
use crate::mvcc::KeyValueRef;

/// Kinds of etcd-level problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MvccProblemKind {
    /// A bucket etcd always creates is missing.
    MissingBucket,
    /// A `key` bucket key is not `main '_' sub ['t']`.
    BadRevisionKey,
    /// A `key` bucket value is not a `mvccpb.KeyValue`.
    BadKeyValue,
    /// A put's `mod_revision` differs from its revision key.
    ModRevisionMismatch,
    /// `create_revision` after `mod_revision`, or a non-positive version.
    BadCreateRevision,
    /// A key's versions do not follow each other (1, 2, 3 … per generation), or its
    /// `create_revision` changes inside a generation.
    VersionSequence,
    /// A delete record with fields other than the key set, or without a key.
    BadTombstone,
    /// Compaction markers inconsistent with each other or with the revisions present.
    CompactionMarkers,
    /// More than one revision of a key at or below the compacted revision.
    UncompactedHistory,
    /// A value of the `meta`, `members`, `lease`, `alarm` or `auth` buckets is unreadable.
    BadMetaValue,
    /// An alarm is raised (NOSPACE, CORRUPT).
    AlarmRaised,
}

/// One etcd-level problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MvccProblem {
    /// What kind.
    pub kind: MvccProblemKind,
    /// Where (bucket, key).
    #[serde(serialize_with = "serialize_location")]
    pub location: Location,
    /// The revision concerned, when there is one.
    pub revision: Option<i64>,
    /// The details, in words.
    pub detail: String,
}

fn serialize_location<S: serde::Serializer>(l: &Location, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&l.to_string())
}

/// What the mvcc layer saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MvccStats {
    /// Records in the `key` bucket.
    pub revisions: u64,
    /// Of which deletes.
    pub tombstones: u64,
    /// Distinct user keys.
    pub keys: u64,
    /// Oldest main revision present.
    pub oldest_revision: Option<i64>,
    /// Newest main revision present.
    pub newest_revision: Option<i64>,
    /// Empty records written by `etcdutl snapshot restore --bump-revision` to move the
    /// revision forward (not key revisions).
    pub bump_markers: u64,
    /// The `meta` bucket.
    pub meta: Option<EtcdMeta>,
    /// Problems counted but not kept.
    pub problems_not_kept: u64,
}

/// Both layers' results of one pass.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DbCheck {
    /// The bbolt layer.
    pub bbolt: CheckResult,
    /// The etcd layer.
    pub mvcc: Vec<MvccProblem>,
    /// etcd-layer counts.
    pub mvcc_stats: MvccStats,
}

#[derive(Clone, Copy)]
struct KeyState {
    create_revision: i64,
    version: i64,
    alive: bool,
    revisions_at_or_below_compaction: u32,
}

/// True for the empty record `etcdutl snapshot restore --bump-revision` writes at the
/// bumped revision (sub revision 0) to move the store's revision forward.
pub fn is_bump_marker(rk: &RevisionKey, value: &[u8]) -> bool {
    value.is_empty() && !rk.tombstone && rk.revision.sub == 0
}

/// What is wrong with one `key` bucket record on its own (not against other revisions
/// of its key), if anything: a delete must hold only the key; a put must be stored at
/// its `mod_revision`, with `0 < create_revision <= mod_revision` and a positive version.
pub fn record_problem(rk: &RevisionKey, kv: &KeyValueRef<'_>) -> Option<(MvccProblemKind, String)> {
    let rev = rk.revision.main;
    if rk.tombstone {
        if kv.key.is_empty()
            || kv.create_revision != 0
            || kv.version != 0
            || !kv.value.is_empty()
            || kv.lease != 0
        {
            return Some((
                MvccProblemKind::BadTombstone,
                "a delete record must hold the key and nothing else".into(),
            ));
        }
        return None;
    }
    if kv.mod_revision != rev {
        return Some((
            MvccProblemKind::ModRevisionMismatch,
            format!(
                "mod_revision is {} but the record is stored at revision {rev}",
                kv.mod_revision
            ),
        ));
    }
    if kv.create_revision > kv.mod_revision || kv.create_revision <= 0 || kv.version <= 0 {
        return Some((
            MvccProblemKind::BadCreateRevision,
            format!(
                "create_revision {} mod_revision {} version {}",
                kv.create_revision, kv.mod_revision, kv.version
            ),
        ));
    }
    None
}

struct MvccChecker {
    problems: Vec<MvccProblem>,
    per_kind: HashMap<MvccProblemKind, usize>,
    stats: MvccStats,
    keys: HashMap<Vec<u8>, KeyState>,
    compacted: i64,
}

impl MvccChecker {
    fn report(
        &mut self,
        kind: MvccProblemKind,
        location: Location,
        revision: Option<i64>,
        detail: String,
    ) {
        let n = self.per_kind.entry(kind).or_insert(0);
        *n += 1;
        if *n > bbolt_check::MAX_PROBLEMS_PER_KIND {
            self.stats.problems_not_kept += 1;
            return;
        }
        self.problems.push(MvccProblem {
            kind,
            location,
            revision,
            detail,
        });
    }

    fn visit(&mut self, entry: &VisitedEntry<'_>) {
        let [bucket] = entry.bucket_path else { return };
        if bucket.as_slice() != buckets::KEY.as_bytes() {
            return;
        }
        let e = entry.element;
        let loc = || entry.location();
        self.stats.revisions += 1;
        let rk = match RevisionKey::parse(e.key) {
            Ok(rk) => rk,
            Err(why) => {
                self.report(
                    MvccProblemKind::BadRevisionKey,
                    loc(),
                    None,
                    why.to_string(),
                );
                return;
            }
        };
        let rev = rk.revision.main;
        self.stats.oldest_revision.get_or_insert(rev);
        self.stats.newest_revision = Some(rev);
        if is_bump_marker(&rk, e.value) {
            self.stats.bump_markers += 1;
            return;
        }
        let kv = match KeyValueRef::parse(e.value) {
            Ok(kv) => kv,
            Err(why) => {
                self.report(
                    MvccProblemKind::BadKeyValue,
                    loc(),
                    Some(rev),
                    format!(
                        "value ({} bytes) is not a mvccpb.KeyValue: {why}",
                        e.value.len()
                    ),
                );
                return;
            }
        };
        let at = || loc().at_key(kv.key);
        if rk.tombstone {
            self.stats.tombstones += 1;
        }
        if let Some((kind, detail)) = record_problem(&rk, &kv) {
            self.report(kind, at(), Some(rev), detail);
        }
        self.check_sequence(&kv, rk, at());
    }

    fn check_sequence(&mut self, kv: &KeyValueRef<'_>, rk: RevisionKey, at: Location) {
        let rev = rk.revision.main;
        let compacted = self.compacted;
        let state = self.keys.get(kv.key).copied();
        let below = u32::from(rev <= compacted);
        let next = match (state, rk.tombstone) {
            (None, true) => KeyState {
                create_revision: 0,
                version: 0,
                alive: false,
                revisions_at_or_below_compaction: below,
            },
            // First record of a key: older history may have been compacted away.
            (None, false) => KeyState {
                create_revision: kv.create_revision,
                version: kv.version,
                alive: true,
                revisions_at_or_below_compaction: below,
            },
            (Some(s), true) => {
                if !s.alive {
                    self.report(
                        MvccProblemKind::VersionSequence,
                        at.clone(),
                        Some(rev),
                        "deleted while already deleted".into(),
                    );
                }
                KeyState {
                    alive: false,
                    revisions_at_or_below_compaction: s.revisions_at_or_below_compaction + below,
                    ..s
                }
            }
            (Some(s), false) => {
                let (want_create, want_version) = if s.alive {
                    (s.create_revision, s.version + 1)
                } else {
                    (rev, 1)
                };
                if kv.create_revision != want_create || kv.version != want_version {
                    self.report(
                        MvccProblemKind::VersionSequence,
                        at.clone(),
                        Some(rev),
                        format!(
                            "expected create_revision {want_create} version {want_version} after the \
                             previous revision, found create_revision {} version {}",
                            kv.create_revision, kv.version
                        ),
                    );
                }
                KeyState {
                    create_revision: kv.create_revision,
                    version: kv.version,
                    alive: true,
                    revisions_at_or_below_compaction: s.revisions_at_or_below_compaction + below,
                }
            }
        };
        if next.revisions_at_or_below_compaction == 2 && below == 1 {
            self.report(
                MvccProblemKind::UncompactedHistory,
                at,
                Some(rev),
                format!(
                    "a second revision of this key at or below the compacted revision {compacted}: \
                     compaction keeps only the newest one"
                ),
            );
        }
        match self.keys.get_mut(kv.key) {
            Some(slot) => *slot = next,
            None => {
                self.keys.insert(kv.key.to_vec(), next);
            }
        }
    }
}

impl Snapshot {
    /// Checks both layers in one pass over the file.
    pub fn check(&self) -> DbCheck {
        let db = self.db();
        let mut problems = Vec::new();
        let meta = self.etcd_meta();
        let meta = match meta {
            Ok(m) => Some(m),
            Err(e) => {
                problems.push(MvccProblem {
                    kind: MvccProblemKind::BadMetaValue,
                    location: Location::default().in_bucket(buckets::META.as_bytes()),
                    revision: None,
                    detail: e.to_string(),
                });
                None
            }
        };
        let compacted = meta.as_ref().map_or(-1, EtcdMeta::compact_revision);
        let mut checker = MvccChecker {
            problems,
            per_kind: HashMap::new(),
            stats: MvccStats::default(),
            keys: HashMap::new(),
            compacted,
        };
        let bbolt = bbolt_check::check(db, &mut |e| checker.visit(e));
        checker.stats.keys = checker.keys.len() as u64;
        self.check_small_buckets(&mut checker);
        if let Some(m) = &meta {
            check_compaction(&mut checker, m);
        }
        checker.stats.meta = meta;
        DbCheck {
            bbolt,
            mvcc: checker.problems,
            mvcc_stats: checker.stats,
        }
    }

    fn check_small_buckets(&self, checker: &mut MvccChecker) {
        match self.db().bucket_names() {
            Ok(names) => {
                for name in [buckets::KEY, buckets::META] {
                    if !names.iter().any(|n| n == name.as_bytes()) {
                        checker.report(
                            MvccProblemKind::MissingBucket,
                            Location::default().in_bucket(name.as_bytes()),
                            None,
                            format!("bucket {name:?} is missing"),
                        );
                    }
                }
            }
            Err(_) => return, // the bbolt layer reports why the root is unreadable
        }
        let results: [(&str, Result<(), crate::Error>); 4] = [
            (buckets::MEMBERS, self.members().map(drop)),
            (buckets::LEASE, self.leases().map(drop)),
            (buckets::AUTH, self.auth().map(drop)),
            (buckets::MEMBERS_REMOVED, self.removed_members().map(drop)),
        ];
        for (bucket, result) in results {
            if let Err(e) = result
                && e.is_corruption()
            {
                checker.report(
                    MvccProblemKind::BadMetaValue,
                    Location::default().in_bucket(bucket.as_bytes()),
                    None,
                    e.to_string(),
                );
            }
        }
        match self.alarms() {
            Ok(alarms) => {
                for a in alarms {
                    checker.report(
                        MvccProblemKind::AlarmRaised,
                        Location::default().in_bucket(buckets::ALARM.as_bytes()),
                        None,
                        format!(
                            "alarm {} raised by member {:x}",
                            a.alarm_name(),
                            a.member_id
                        ),
                    );
                }
            }
            Err(e) => checker.report(
                MvccProblemKind::BadMetaValue,
                Location::default().in_bucket(buckets::ALARM.as_bytes()),
                None,
                e.to_string(),
            ),
        }
    }
}

fn check_compaction(checker: &mut MvccChecker, meta: &EtcdMeta) {
    let at = || Location::default().in_bucket(buckets::META.as_bytes());
    if let (Some(s), Some(f)) = (
        meta.scheduled_compact_revision,
        meta.finished_compact_revision,
    ) && f > s
    {
        checker.report(
            MvccProblemKind::CompactionMarkers,
            at(),
            Some(f),
            format!("finished compaction {f} is after the scheduled one {s}"),
        );
    }
    if let Some(newest) = checker.stats.newest_revision {
        let compacted = meta.compact_revision();
        if compacted > newest {
            checker.report(
                MvccProblemKind::CompactionMarkers,
                at(),
                Some(compacted),
                format!(
                    "compacted revision {compacted} is after the newest revision present {newest}"
                ),
            );
        }
    }
}
