//! `salvor etcd check`: every problem of an etcd snapshot or data dir in one pass, as
//! findings with a code, a severity, a location, what it means and what to do.

use std::path::{Path, PathBuf};

use serde::Serialize;
use snapshot_format::Location;
use snapshot_format::bbolt::check::{CheckStats, ProblemKind};
use snapshot_format::etcd::check::{MvccProblemKind, MvccStats};
use snapshot_format::etcd::{OpenOptions, Snapshot, SnapshotKind};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is wrong.
    Info,
    /// Works, but needs attention.
    Warning,
    /// Data is damaged or unreadable.
    Error,
}

/// Where a finding is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FindingLocation {
    /// The file.
    pub file: PathBuf,
    /// bbolt page id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<u64>,
    /// Byte offset in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Bucket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Key (bucket key: for the `key` bucket, the revision key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<crate::view::Bytes>,
    /// Revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}

impl FindingLocation {
    fn from_format(file: &Path, l: &Location) -> Self {
        FindingLocation {
            file: file.to_path_buf(),
            page: l.page,
            offset: l.offset,
            bucket: l
                .bucket
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            key: l.key.as_deref().map(crate::view::Bytes::from),
            revision: None,
        }
    }

    /// A one-line rendering: `file page 12 offset 49152 bucket "key" key "…" rev 5`.
    pub fn display(&self) -> String {
        let mut parts = vec![self.file.display().to_string()];
        if let Some(p) = self.page {
            parts.push(format!("page {p}"));
        }
        if let Some(o) = self.offset {
            parts.push(format!("offset {o}"));
        }
        if let Some(b) = &self.bucket {
            parts.push(format!("bucket {b}"));
        }
        if let Some(k) = &self.key {
            parts.push(format!("key {}", k.display(60)));
        }
        if let Some(r) = self.revision {
            parts.push(format!("revision {r}"));
        }
        parts.join(" ")
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable code, e.g. `BBOLT_PAGE_ID_MISMATCH`.
    pub code: String,
    /// Severity.
    pub severity: Severity,
    /// Where.
    pub location: FindingLocation,
    /// What was found.
    pub message: String,
    /// What it means.
    pub meaning: String,
    /// What to do.
    pub remedy: String,
}

/// The result of a check.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// The path checked.
    pub path: PathBuf,
    /// What it was.
    pub kind: Option<SnapshotKind>,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
    /// bbolt counts.
    pub bbolt: Option<CheckStats>,
    /// etcd counts.
    pub mvcc: Option<MvccStats>,
}

impl CheckReport {
    /// Findings of at least `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity >= severity)
            .count()
    }

    /// True when no finding is an error.
    pub fn is_clean(&self) -> bool {
        self.count(Severity::Error) == 0
    }

    /// The first error finding as `CODE: message`, if any.
    pub fn first_error(&self) -> Option<String> {
        self.findings
            .iter()
            .find(|f| f.severity == Severity::Error)
            .map(|f| format!("{}: {}", f.code, f.message))
    }
}

/// Free-page share above which defragmenting is advised.
pub const FRAGMENTATION_WARNING: f64 = 0.5;

/// What to do about a damaged db, depending on where it came from.
fn rebuild_remedy(kind: Option<SnapshotKind>) -> &'static str {
    match kind {
        Some(SnapshotKind::SnapshotFile) => {
            "do not restore from this snapshot: use an older good one, or take a new snapshot \
             from a healthy member (`etcdctl snapshot save`); keep this file for salvage"
        }
        _ => {
            "this member's backend is damaged: stop it, keep a copy of its data dir, then \
             replace it from a healthy peer (`etcdctl member remove`, wipe the data dir, \
             `etcdctl member add`, start it with --initial-cluster-state existing); if no \
             member is healthy, restore the cluster from the last good snapshot"
        }
    }
}

fn bbolt_finding(
    kind: ProblemKind,
    snap_kind: Option<SnapshotKind>,
) -> (Severity, &'static str, String) {
    use ProblemKind::*;
    let rebuild = rebuild_remedy(snap_kind).to_string();
    match kind {
        MetaInvalid => (
            // `snapshot save` writes both meta pages: in a snapshot file either one damaged
            // is damage; in a live db a torn meta write is what bbolt survives by design.
            if snap_kind == Some(SnapshotKind::SnapshotFile) {
                Severity::Error
            } else {
                Severity::Warning
            },
            "one of bbolt's two meta pages is damaged; the other one is used, which may be the \
             previous transaction (a crash can tear the meta page being written)",
            "the data of the surviving meta page is readable: take a snapshot from a healthy \
             member, or from this file once the other findings are clean"
                .into(),
        ),
        MetaInconsistent => (
            Severity::Error,
            "the active meta page contradicts the file (page size or root page)",
            rebuild,
        ),
        FileTruncated => (
            Severity::Error,
            "the file ends before the pages the database uses: what was in the missing tail is lost",
            rebuild,
        ),
        FreePageReachable | UnreachableNotFree => (
            Severity::Error,
            "the persisted freelist disagrees with the tree: bbolt may hand out a page that is in \
             use (\"page already freed\") or has leaked pages",
            rebuild,
        ),
        FreelistInvalid => (
            Severity::Error,
            "the persisted freelist page is unreadable",
            rebuild,
        ),
        BadBucket => (
            Severity::Error,
            "a bucket header or inline bucket is damaged",
            rebuild,
        ),
        _ => (
            Severity::Error,
            "the B+tree is damaged here: reads that pass through this page fail or return wrong \
             data, and etcd may panic when it touches it",
            rebuild,
        ),
    }
}

fn mvcc_finding(
    kind: MvccProblemKind,
    snap_kind: Option<SnapshotKind>,
) -> (Severity, &'static str, String) {
    use MvccProblemKind::*;
    let rebuild = rebuild_remedy(snap_kind).to_string();
    match kind {
        UncompactedHistory => (
            Severity::Warning,
            "revisions that compaction should have removed are still present (an interrupted \
             compaction); etcd serves the compacted view and removes them on the next compaction",
            "nothing is lost; run a compaction (`etcdctl compact REV`) to reclaim the space".into(),
        ),
        AlarmRaised => (
            Severity::Warning,
            "an alarm is raised: NOSPACE makes the cluster refuse writes, CORRUPT marks members \
             whose data diverged",
            "NOSPACE: compact, defragment (`etcdctl defrag`), raise --quota-backend-bytes if \
             needed, then `etcdctl alarm disarm`. CORRUPT: find the diverging member by comparing \
             `etcdctl endpoint hashkv` and replace it from a healthy peer"
                .into(),
        ),
        CompactionMarkers => (
            Severity::Warning,
            "the compaction markers in the meta bucket contradict each other or the revisions present",
            "etcd trusts these markers on start; compare with a peer's `etcdctl endpoint status` \
             and replace this member if they differ"
                .into(),
        ),
        MissingBucket | BadRevisionKey | BadKeyValue | BadMetaValue => (
            Severity::Error,
            "etcd cannot load this record: the member will fail to start or panic when it reads it",
            rebuild,
        ),
        ModRevisionMismatch | BadCreateRevision | VersionSequence | BadTombstone => (
            Severity::Error,
            "the key's records are inconsistent: reads and watches of this key return wrong \
             revisions, and members' hashes (HashKV) diverge",
            rebuild,
        ),
    }
}

fn code(prefix: &str, kind: impl Serialize) -> String {
    let name = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default();
    format!("{prefix}_{name}")
}

/// Checks a snapshot file, a `member/snap/db` file or a data dir.
pub fn check_path(path: &Path) -> CheckReport {
    let opts = OpenOptions {
        unchecked_meta: true,
        ..Default::default()
    };
    let snap = match Snapshot::open(path, &opts) {
        Ok(s) => s,
        Err(e) => {
            let (code, meaning) = match &e {
                snapshot_format::Error::NotBbolt(_) => (
                    "BBOLT_NO_VALID_META",
                    "neither meta page is valid: this is not a bbolt file, or both meta pages are \
                     destroyed",
                ),
                snapshot_format::Error::Io { .. } | snapshot_format::Error::BadPath(_) => (
                    "CHECK_CANNOT_OPEN",
                    "the path cannot be read as an etcd database",
                ),
                _ => ("CHECK_CANNOT_OPEN", "the database cannot be opened"),
            };
            return CheckReport {
                path: path.to_path_buf(),
                kind: None,
                findings: vec![Finding {
                    code: code.into(),
                    severity: Severity::Error,
                    location: FindingLocation {
                        file: path.to_path_buf(),
                        ..Default::default()
                    },
                    message: e.to_string(),
                    meaning: meaning.into(),
                    remedy: "give a file written by `etcdctl snapshot save`, a member's \
                             `member/snap/db`, or a data dir; if this is one, it is beyond \
                             repair here: restore from another snapshot or a peer"
                        .into(),
                }],
                bbolt: None,
                mvcc: None,
            };
        }
    };
    let kind = Some(snap.kind());
    let file = snap.db_path().to_path_buf();
    // The trailer hash runs beside the tree walk: both read the whole file.
    let (trailer, db_check) = std::thread::scope(|scope| {
        let trailer = scope.spawn(|| snap.verify_trailer());
        let db_check = snap.check();
        (trailer.join(), db_check)
    });
    let mut findings = Vec::new();
    for p in &db_check.bbolt.problems {
        let (severity, meaning, remedy) = bbolt_finding(p.kind, kind);
        findings.push(Finding {
            code: code("BBOLT", p.kind),
            severity,
            location: FindingLocation::from_format(&file, &p.location),
            message: p.detail.clone(),
            meaning: meaning.into(),
            remedy,
        });
    }
    for p in &db_check.mvcc {
        let (severity, meaning, remedy) = mvcc_finding(p.kind, kind);
        let mut location = FindingLocation::from_format(&file, &p.location);
        location.revision = p.revision;
        findings.push(Finding {
            code: code("MVCC", p.kind),
            severity,
            location,
            message: p.detail.clone(),
            meaning: meaning.into(),
            remedy,
        });
    }
    let stats = &db_check.bbolt.stats;
    if stats.problems_not_kept + db_check.mvcc_stats.problems_not_kept > 0 {
        findings.push(Finding {
            code: "CHECK_FINDINGS_TRUNCATED".into(),
            severity: Severity::Warning,
            location: FindingLocation {
                file: file.clone(),
                ..Default::default()
            },
            message: format!(
                "{} more problems of kinds already listed were counted but not listed",
                stats.problems_not_kept + db_check.mvcc_stats.problems_not_kept
            ),
            meaning: "the damage is extensive".into(),
            remedy: rebuild_remedy(kind).into(),
        });
    }
    if stats.high_water_mark > 0 {
        let ratio = stats.unreachable_pages as f64 / stats.high_water_mark as f64;
        // Pages cut off by damage look free too: advise defragmenting only a sound tree.
        let tree_sound = db_check.bbolt.problems.is_empty();
        let severity = if ratio > FRAGMENTATION_WARNING && tree_sound {
            Severity::Warning
        } else {
            Severity::Info
        };
        findings.push(Finding {
            code: "BBOLT_FREE_PAGES".into(),
            severity,
            location: FindingLocation {
                file: file.clone(),
                ..Default::default()
            },
            message: format!(
                "{} of {} pages are free ({:.1}%)",
                stats.unreachable_pages,
                stats.high_water_mark,
                ratio * 100.0
            ),
            meaning: "free pages are space the file holds but no data uses".into(),
            remedy: if severity == Severity::Warning {
                "defragment to give the space back (`etcdctl defrag`, or offline on a stopped \
                 member with `etcdutl defrag`)"
                    .into()
            } else {
                "nothing to do".into()
            },
        });
    }
    match trailer {
        Ok(Ok(Some(t))) if !t.matches => findings.push(Finding {
            code: "SNAPSHOT_TRAILER_MISMATCH".into(),
            severity: Severity::Error,
            location: FindingLocation {
                file: file.clone(),
                offset: Some(snap.file_len() - 32),
                ..Default::default()
            },
            message: format!(
                "sha256 trailer is {} but the content hashes to {}",
                t.stored, t.computed
            ),
            meaning: "the snapshot changed after it was saved (truncated or partial copy, disk \
                      error, or an edit)"
                .into(),
            remedy: "copy the snapshot again from where it was saved; `etcdutl snapshot restore` \
                     refuses it without --skip-hash-check"
                .into(),
        }),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => findings.push(Finding {
            code: "SNAPSHOT_TRAILER_UNREADABLE".into(),
            severity: Severity::Error,
            location: FindingLocation {
                file: file.clone(),
                ..Default::default()
            },
            message: e.to_string(),
            meaning: "the file could not be read to the end".into(),
            remedy: "check the disk and copy the snapshot again".into(),
        }),
        Err(_) => findings.push(Finding {
            code: "CHECK_INTERNAL".into(),
            severity: Severity::Error,
            location: FindingLocation {
                file: file.clone(),
                ..Default::default()
            },
            message: "the trailer check stopped unexpectedly".into(),
            meaning: "a bug in Salvor".into(),
            remedy: "please report it with the file".into(),
        }),
    }
    if kind == Some(SnapshotKind::DataDir) {
        let consistent_index = db_check
            .mvcc_stats
            .meta
            .as_ref()
            .and_then(|m| m.consistent_index);
        let members: Option<Vec<u64>> = snap
            .members()
            .ok()
            .map(|m| m.iter().map(|m| m.id).collect());
        findings.extend(check_wal_and_snaps(
            path,
            consistent_index,
            members.as_deref(),
        ));
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    CheckReport {
        path: path.to_path_buf(),
        kind,
        findings,
        bbolt: Some(db_check.bbolt.stats),
        mvcc: Some(db_check.mvcc_stats),
    }
}

/// What a WAL or `.snap` problem means and what to do, by its code.
fn wal_advice(code: &str, severity: Severity) -> (&'static str, &'static str) {
    const REPLACE: &str = "replace this member from a healthy peer (`etcdctl member remove`, \
         wipe the data dir, `etcdctl member add`, start with --initial-cluster-state \
         existing); if it is the last member, restore from a snapshot. `salvor etcd wal dump \
         --raw` shows every entry that can still be read";
    match code {
        "WAL_TORN_TAIL" if severity == Severity::Warning => (
            "the last write before a crash was cut short; etcd repairs this on start by \
             truncating the tail (and keeps a .wal.broken copy)",
            "nothing to do: etcd repairs it",
        ),
        "WAL_DB_BEHIND_SNAPSHOT" => (
            "the backend has applied fewer entries than the raft snapshot it starts from: \
             etcd would lose the entries in between",
            REPLACE,
        ),
        _ if severity == Severity::Warning => (
            "etcd starts, but the WAL directory holds something unexpected",
            "look at the file named; nothing is lost",
        ),
        c if c.starts_with("SNAP_") || c.contains("SNAPSHOT") => (
            "a raft snapshot file is damaged or does not match the WAL: etcd falls back to an \
             older one if it can, else it cannot start",
            REPLACE,
        ),
        _ => (
            "the WAL is damaged where etcd needs it: etcd refuses to start (\"walpb: crc \
             mismatch\", \"wal: slice bounds out of range\") or loses committed entries",
            REPLACE,
        ),
    }
}

/// The WAL and `.snap` layer of a data dir's check, plus the cross-checks with the db.
fn check_wal_and_snaps(
    path: &Path,
    consistent_index: Option<u64>,
    members: Option<&[u64]>,
) -> Vec<Finding> {
    use snapshot_format::wal::{self, EntryPayload};
    let mut findings = Vec::new();
    let dir_check = match wal::check_data_dir(path, consistent_index) {
        Ok(c) => c,
        Err(e) => {
            findings.push(Finding {
                code: "WAL_UNREADABLE".into(),
                severity: Severity::Error,
                location: FindingLocation {
                    file: path.to_path_buf(),
                    ..Default::default()
                },
                message: e.to_string(),
                meaning: "the data dir's WAL cannot be read: etcd cannot start from it".into(),
                remedy: "check the path and permissions; if the WAL is gone, the member must be \
                         replaced from a peer or restored from a snapshot"
                    .into(),
            });
            return findings;
        }
    };
    let wal_dir = dir_check.wal.dir.clone();
    let snap_dir = dir_check.snap.dir.clone();
    for p in &dir_check.problems {
        let severity = match p.severity {
            wal::Severity::Warning => Severity::Warning,
            wal::Severity::Error => Severity::Error,
        };
        let (meaning, remedy) = wal_advice(p.code, severity);
        let base = if p.file.ends_with(".snap") || p.file.ends_with(".snap.db") {
            &snap_dir
        } else {
            &wal_dir
        };
        findings.push(Finding {
            code: p.code.to_string(),
            severity,
            location: FindingLocation {
                file: if p.file.is_empty() {
                    base.clone()
                } else {
                    base.join(&p.file)
                },
                offset: p.offset,
                ..Default::default()
            },
            message: p.detail.clone(),
            meaning: meaning.into(),
            remedy: remedy.into(),
        });
    }
    let contents = &dir_check.wal;
    if let (Some(ci), Some(last)) = (consistent_index, contents.last_index())
        && ci > last
    {
        findings.push(Finding {
            code: "CHECK_DB_AHEAD_OF_WAL".into(),
            severity: Severity::Error,
            location: FindingLocation {
                file: wal_dir.clone(),
                ..Default::default()
            },
            message: format!("the backend applied entry {ci} but the WAL ends at entry {last}"),
            meaning: "entries the backend applied are missing from the WAL: the log was \
                      truncated or replaced, and raft will disagree with the data"
                .into(),
            remedy: wal_advice("", Severity::Error).1.into(),
        });
    }
    // Membership the WAL describes: the loaded snapshot's conf state, then conf changes.
    let snap = dir_check.snap.newest_valid();
    let start = snap.and_then(|s| s.index).unwrap_or(0);
    let complete = snap.is_some() || contents.first_index() == Some(1);
    if let (Some(members), true) = (members, complete) {
        let mut ids: std::collections::BTreeSet<u64> = snap
            .and_then(|s| s.conf_state.as_ref())
            .map(|cs| cs.voters.iter().chain(&cs.learners).copied().collect())
            .unwrap_or_default();
        for e in contents.entries.iter().filter(|e| e.index > start) {
            if let EntryPayload::ConfChange(cc) = e.payload() {
                match cc.change_type.as_str() {
                    "removeNode" => {
                        ids.remove(&cc.node_id);
                    }
                    "addNode" | "addLearnerNode" => {
                        ids.insert(cc.node_id);
                    }
                    _ => {}
                }
            }
        }
        let in_db: std::collections::BTreeSet<u64> = members.iter().copied().collect();
        // The members bucket is written when entries apply: compare only when the db has
        // applied the whole log.
        let applied_all = consistent_index.is_some_and(|ci| Some(ci) >= contents.last_index());
        if applied_all && !in_db.is_empty() && ids != in_db {
            let show = |s: &std::collections::BTreeSet<u64>| {
                s.iter()
                    .map(|id| format!("{id:x}"))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            findings.push(Finding {
                code: "CHECK_MEMBERS_MISMATCH".into(),
                severity: Severity::Warning,
                location: FindingLocation {
                    file: wal_dir,
                    bucket: Some("members".into()),
                    ..Default::default()
                },
                message: format!(
                    "the members bucket holds [{}] but the WAL and snapshot describe [{}]",
                    show(&in_db),
                    show(&ids)
                ),
                meaning: "the backend's view of the membership differs from raft's: etcd uses \
                          raft's on start, but tools reading the db see the wrong members"
                    .into(),
                remedy: "compare with `etcdctl member list` on a healthy member; if this \
                         member's view is wrong, replace it from a peer"
                    .into(),
            });
        }
    }
    findings
}
