//! Quorum-loss recovery: `salvor etcd recover plan` and `salvor etcd recover apply`.
//!
//! **Plan.** Every surviving data dir is inspected offline: its WAL (member id, cluster id,
//! HardState commit, last index, damage), its backend (consistent index, revision,
//! members with their URLs) and whether a running etcd holds it. The member to recover
//! from is the usable one with the highest commit index (then last index, then
//! revision), as vmware's etcd-recovery chooses; the reasons are part of the plan.
//!
//! **Steps.** The plan is a list of steps, printed before anything runs:
//! 1. `forceNewCluster`: a new data dir from the source, offline, with etcd's
//!    `--force-new-cluster` semantics written into the WAL: the committed log is kept
//!    (uncommitted entries dropped), conf-change entries removing every other member
//!    are appended and committed. The source data dir is only read.
//! 2. `startMember` (operator): start the source member on the new data dir. etcd applies
//!    the removals and leads a one-member cluster holding every committed write.
//! 3. For each other member, one at a time (etcd 3.4 allows one learner):
//!    `addLearner` (membership API), `startMember` (operator: an empty data dir,
//!    `--initial-cluster-state existing`), `promote` (retried until the learner has
//!    caught up).
//! 4. `verify`: every member answers, all voters, HashKV equal at a common revision.
//!
//! **Apply** runs the steps in order and records each finished step in a state file, so
//! an interrupted apply resumes where it stopped and a repeated step is recognised as
//! done (a learner already added, a member already promoted). A `startMember` step is
//! done when the member answers; until then apply waits (up to `--wait`) and stops with
//! the command to run, to be run again once the member is started.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use etcd_rpc::{Client, ConnectOptions};
use serde::{Deserialize, Serialize};
use snapshot_format::bbolt::SourceKind;
use snapshot_format::etcd::membership::ClusterMember;
use snapshot_format::etcd::{OpenOptions, Snapshot};
use snapshot_format::wal::{
    EntryPayload, EntryType, HardState, NewEntry, ReadOptions, Severity, Wal, WalMetadata,
    WalSegmentName, WalSnapshot, WalWriter, encode_conf_change, loadable_snapshot, read_snap_dir,
};
use snapshot_format::{Error, Result};

use crate::defrag::ensure_not_in_use;
use crate::fsutil::{make_private_dir, part_path, rename_into_place, sync_dir};
use crate::restore::latest_revision;

/// One surviving member's data dir, as inspected.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The data dir.
    pub data_dir: PathBuf,
    /// Member name (from the backend's members bucket).
    pub name: Option<String>,
    /// Member id (hex).
    pub member_id: Option<String>,
    /// Cluster id (hex).
    pub cluster_id: Option<String>,
    /// HardState commit index.
    pub commit_index: Option<u64>,
    /// Last raft index in the WAL.
    pub last_index: Option<u64>,
    /// Raft term.
    pub term: Option<u64>,
    /// Backend consistent index.
    pub consistent_index: Option<u64>,
    /// Backend revision.
    pub revision: Option<i64>,
    /// A running etcd holds the backend.
    pub in_use: bool,
    /// Can be recovered from.
    pub usable: bool,
    /// Why not, or what to know.
    pub problems: Vec<String>,
}

/// A member of the cluster being rebuilt.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PlannedMember {
    /// Name.
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Client URLs.
    pub client_urls: Vec<String>,
    /// Data dir it starts on.
    pub data_dir: PathBuf,
}

/// One step of a recovery.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", tag = "action")]
pub enum Step {
    /// Write a one-member data dir from the source (offline).
    #[serde(rename_all = "camelCase")]
    ForceNewCluster {
        /// Source data dir (only read).
        source: PathBuf,
        /// The new data dir.
        output: PathBuf,
        /// The member kept.
        member: String,
    },
    /// The operator starts a member; done once it answers at its client URL.
    #[serde(rename_all = "camelCase")]
    StartMember {
        /// Member name.
        name: String,
        /// Its data dir.
        data_dir: PathBuf,
        /// Client URL to wait for.
        client_url: String,
        /// The etcd flags that matter for the recovery (add the usual TLS, quota… flags).
        flags: Vec<String>,
    },
    /// Add a member as a learner through the membership API.
    #[serde(rename_all = "camelCase")]
    AddLearner {
        /// Member name.
        name: String,
        /// Its peer URLs.
        peer_urls: Vec<String>,
    },
    /// Promote a learner once it has caught up.
    #[serde(rename_all = "camelCase")]
    Promote {
        /// Member name.
        name: String,
        /// Its peer URLs (how it is found in the member list).
        peer_urls: Vec<String>,
    },
    /// Check the rebuilt cluster.
    #[serde(rename_all = "camelCase")]
    Verify {
        /// Voting members expected.
        members: usize,
    },
}

impl Step {
    /// One line for humans.
    pub fn describe(&self) -> String {
        match self {
            Step::ForceNewCluster {
                source,
                output,
                member,
            } => format!(
                "write {} from {} as a one-member cluster of {member} (offline, force-new-cluster)",
                output.display(),
                source.display()
            ),
            Step::StartMember { name, flags, .. } => {
                format!("start {name}: etcd {}", flags.join(" "))
            }
            Step::AddLearner { name, peer_urls } => {
                format!("add {name} ({}) as a learner", peer_urls.join(","))
            }
            Step::Promote { name, .. } => format!("promote {name} to a voting member"),
            Step::Verify { members } => {
                format!("verify: {members} voting members answer and agree on HashKV")
            }
        }
    }
}

/// A recovery plan: data, printed before it runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryPlan {
    /// Cluster id (hex).
    pub cluster_id: String,
    /// Every data dir inspected.
    pub candidates: Vec<Candidate>,
    /// The data dir recovered from.
    pub source: PathBuf,
    /// Why it was chosen.
    pub reasons: Vec<String>,
    /// The rebuilt cluster, source member first.
    pub members: Vec<PlannedMember>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

/// How to plan.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Surviving data dirs.
    pub data_dirs: Vec<PathBuf>,
    /// New data dir of the source member (default: `<source>-recovered`).
    pub recovered_data_dir: Option<PathBuf>,
    /// Data dirs for the re-added members, by name (default: `<dir of source>/<name>-rejoined`).
    pub member_data_dirs: BTreeMap<String, PathBuf>,
}

fn inspect(dir: &Path) -> (Candidate, Vec<ClusterMember>) {
    let mut c = Candidate {
        data_dir: dir.to_path_buf(),
        name: None,
        member_id: None,
        cluster_id: None,
        commit_index: None,
        last_index: None,
        term: None,
        consistent_index: None,
        revision: None,
        in_use: false,
        usable: true,
        problems: Vec::new(),
    };
    let mut members = Vec::new();
    let db = dir.join("member").join("snap").join("db");
    match ensure_not_in_use(&db) {
        Ok(()) => {}
        Err(Error::Invalid(_)) => {
            c.in_use = true;
            c.problems
                .push("a running etcd holds this data dir: stop it before apply".into());
        }
        Err(e) => {
            c.usable = false;
            c.problems.push(format!("backend: {e}"));
        }
    }
    match Wal::open(dir) {
        Ok(wal) => {
            let log = wal.read_all(&ReadOptions::default());
            let fatal: Vec<_> = log
                .problems
                .iter()
                .filter(|p| p.kind.severity() == Severity::Error && !p.is_repairable())
                .collect();
            if let Some(p) = fatal.first() {
                c.usable = false;
                c.problems.push(format!(
                    "WAL damaged before its end ({} problems; first: {p}); salvage the backend instead",
                    fatal.len()
                ));
            }
            c.member_id = log.metadata.map(|m| format!("{:x}", m.node_id));
            c.cluster_id = log.metadata.map(|m| format!("{:x}", m.cluster_id));
            c.commit_index = log.hard_state.map(|h| h.commit);
            c.term = log.hard_state.map(|h| h.term);
            c.last_index = log.last_index().or(log.snapshots.last().map(|s| s.index));
        }
        Err(e) => {
            c.usable = false;
            c.problems.push(format!("WAL: {e}"));
        }
    }
    let opts = OpenOptions {
        source: SourceKind::Pread,
        ..Default::default()
    };
    match Snapshot::open(dir, &opts) {
        Ok(snap) => {
            match snap.etcd_meta() {
                Ok(meta) => c.consistent_index = meta.consistent_index,
                Err(e) => c.problems.push(format!("backend meta: {e}")),
            }
            c.revision = latest_revision(snap.db()).ok().filter(|&r| r > 0);
            match snap.members() {
                Ok(ms) => {
                    members = ms
                        .into_iter()
                        .map(|m| ClusterMember {
                            id: m.id,
                            name: m.name,
                            peer_urls: m.peer_urls,
                            client_urls: m.client_urls,
                            is_learner: m.is_learner,
                        })
                        .collect();
                }
                Err(e) => c.problems.push(format!("members bucket: {e}")),
            }
        }
        Err(e) => {
            c.usable = false;
            c.problems.push(format!("backend: {e}"));
        }
    }
    let id = c
        .member_id
        .as_deref()
        .and_then(|h| u64::from_str_radix(h, 16).ok());
    c.name = members
        .iter()
        .find(|m| Some(m.id) == id)
        .map(|m| m.name.clone());
    (c, members)
}

/// Inspects the data dirs and plans the recovery.
pub fn plan(opts: &PlanOptions) -> Result<RecoveryPlan> {
    if opts.data_dirs.is_empty() {
        return Err(Error::Invalid(
            "give the data dir of at least one surviving member".into(),
        ));
    }
    let inspected: Vec<(Candidate, Vec<ClusterMember>)> =
        opts.data_dirs.iter().map(|d| inspect(d)).collect();
    let mut ranked: Vec<&(Candidate, Vec<ClusterMember>)> =
        inspected.iter().filter(|(c, _)| c.usable).collect();
    // The backend's consistent index counts as committed too (the persisted HardState
    // can lag it).
    ranked.sort_by_key(|(c, _)| {
        std::cmp::Reverse((
            c.commit_index.max(c.consistent_index),
            c.last_index,
            c.revision,
        ))
    });
    let Some((source, members)) = ranked.first().copied() else {
        let why: Vec<String> = inspected
            .iter()
            .map(|(c, _)| format!("{}: {}", c.data_dir.display(), c.problems.join("; ")))
            .collect();
        return Err(Error::Invalid(format!(
            "no data dir can be recovered from ({}); salvage a backend with `salvor etcd \
             salvage` and restore it with `salvor etcd snapshot restore --skip-hash-check`",
            why.join(" | ")
        )));
    };
    let clusters: BTreeSet<&str> = inspected
        .iter()
        .filter_map(|(c, _)| c.cluster_id.as_deref())
        .collect();
    if clusters.len() > 1 {
        return Err(Error::Invalid(format!(
            "the data dirs belong to different clusters ({}); give only one cluster's",
            clusters.into_iter().collect::<Vec<_>>().join(", ")
        )));
    }
    let mut reasons = vec![format!(
        "highest commit index: {} (last index {}, revision {})",
        source.commit_index.unwrap_or(0),
        source.last_index.unwrap_or(0),
        source.revision.unwrap_or(0)
    )];
    for (other, _) in inspected
        .iter()
        .filter(|(c, _)| c.data_dir != source.data_dir)
    {
        reasons.push(format!(
            "{} ({}): {}",
            other.name.clone().unwrap_or_else(|| "?".into()),
            other.data_dir.display(),
            if other.usable {
                format!(
                    "commit index {} is not higher",
                    other.commit_index.unwrap_or(0)
                )
            } else {
                format!("unusable: {}", other.problems.join("; "))
            }
        ));
    }
    let source_id = source
        .member_id
        .as_deref()
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .unwrap_or(0);
    let me = members.iter().find(|m| m.id == source_id).ok_or_else(|| {
        Error::Invalid(format!(
            "member {:x} of {} is not in its own members bucket; cannot tell its URLs",
            source_id,
            source.data_dir.display()
        ))
    })?;
    if me.client_urls.is_empty() {
        return Err(Error::Invalid(format!(
            "member {} never published its client URLs; cannot tell where it will answer",
            me.name
        )));
    }
    let base = source
        .data_dir
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let recovered = opts.recovered_data_dir.clone().unwrap_or_else(|| {
        let mut n = source
            .data_dir
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_default();
        n.push("-recovered");
        source.data_dir.with_file_name(n)
    });
    let mut planned = vec![PlannedMember {
        name: me.name.clone(),
        peer_urls: me.peer_urls.clone(),
        client_urls: me.client_urls.clone(),
        data_dir: recovered.clone(),
    }];
    for m in members.iter().filter(|m| m.id != source_id) {
        let name = if m.name.is_empty() {
            format!("member-{:x}", m.id)
        } else {
            m.name.clone()
        };
        let data_dir = opts
            .member_data_dirs
            .get(&name)
            .cloned()
            .unwrap_or_else(|| base.join(format!("{name}-rejoined")));
        planned.push(PlannedMember {
            name,
            peer_urls: m.peer_urls.clone(),
            client_urls: m.client_urls.clone(),
            data_dir,
        });
    }
    let mut steps = vec![
        Step::ForceNewCluster {
            source: source.data_dir.clone(),
            output: recovered.clone(),
            member: me.name.clone(),
        },
        start_step(&planned[..1], "new-or-existing"),
    ];
    for k in 1..planned.len() {
        let m = &planned[k];
        steps.push(Step::AddLearner {
            name: m.name.clone(),
            peer_urls: m.peer_urls.clone(),
        });
        steps.push(start_step(&planned[..=k], "existing"));
        steps.push(Step::Promote {
            name: m.name.clone(),
            peer_urls: m.peer_urls.clone(),
        });
    }
    steps.push(Step::Verify {
        members: planned.len(),
    });
    let cluster_id = source.cluster_id.clone().unwrap_or_default();
    let source_dir = source.data_dir.clone();
    Ok(RecoveryPlan {
        cluster_id,
        candidates: inspected.iter().map(|(c, _)| c.clone()).collect(),
        source: source_dir,
        reasons,
        members: planned,
        steps,
    })
}

/// The start step for the last member of `members` (the ones before it already run).
fn start_step(members: &[PlannedMember], state: &str) -> Step {
    let Some(m) = members.last() else {
        return Step::Verify { members: 0 };
    };
    let initial: Vec<String> = members
        .iter()
        .flat_map(|x| x.peer_urls.iter().map(move |u| format!("{}={u}", x.name)))
        .collect();
    let mut flags = vec![
        format!("--name={}", m.name),
        format!("--data-dir={}", m.data_dir.display()),
        format!("--listen-peer-urls={}", m.peer_urls.join(",")),
        format!("--initial-advertise-peer-urls={}", m.peer_urls.join(",")),
        format!("--listen-client-urls={}", m.client_urls.join(",")),
        format!("--advertise-client-urls={}", m.client_urls.join(",")),
    ];
    if state == "existing" {
        flags.push(format!("--initial-cluster={}", initial.join(",")));
        flags.push("--initial-cluster-state=existing".into());
    }
    Step::StartMember {
        name: m.name.clone(),
        data_dir: m.data_dir.clone(),
        client_url: m.client_urls.first().cloned().unwrap_or_default(),
        flags,
    }
}

/// What `forceNewCluster` wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForceNewClusterReport {
    /// The new data dir.
    pub data_dir: PathBuf,
    /// Committed entries carried over (after the snapshot).
    pub entries: u64,
    /// Uncommitted entries dropped.
    pub dropped_uncommitted: u64,
    /// Members removed by the appended conf changes (hex ids).
    pub removed: Vec<String>,
    /// The new commit index.
    pub commit: u64,
}

/// Writes a one-member data dir from `source` (which is only read), keeping member
/// `member`: etcd's `--force-new-cluster`, done offline into the WAL.
pub fn force_new_cluster(source: &Path, output: &Path) -> Result<ForceNewClusterReport> {
    let db = source.join("member").join("snap").join("db");
    ensure_not_in_use(&db)?;
    if output.exists() {
        return Err(Error::Invalid(format!(
            "{} exists; recovery writes a new data dir and never replaces one",
            output.display()
        )));
    }
    let wal = Wal::open(source)?;
    let all = wal.read_all(&ReadOptions::default());
    if let Some(p) = all
        .problems
        .iter()
        .find(|p| p.kind.severity() == Severity::Error && !p.is_repairable())
    {
        return Err(Error::Invalid(format!(
            "the WAL of {} is damaged before its end: {p}",
            source.display()
        )));
    }
    let meta = all.metadata.ok_or_else(|| {
        Error::Invalid(format!("the WAL of {} has no metadata", source.display()))
    })?;
    let hs = all.hard_state.unwrap_or_default();
    // The persisted HardState commit can lag what the backend has applied (etcd applies
    // entries before the next HardState reaches the WAL): entries up to the backend's
    // consistent index are committed too, and a member replaying the log must see them.
    let consistent_index = Snapshot::open(
        source,
        &OpenOptions {
            source: SourceKind::Pread,
            ..Default::default()
        },
    )?
    .etcd_meta()?
    .consistent_index
    .unwrap_or(0);
    let last_index = all.last_index().unwrap_or(0);
    if consistent_index > last_index && consistent_index > hs.commit {
        return Err(Error::Invalid(format!(
            "the backend of {} has applied entries up to {consistent_index} but its WAL ends at              {last_index}: a log that new members can replay cannot be built from it; restore              its backend as a snapshot instead (`salvor etcd snapshot restore --skip-hash-check`)",
            source.display()
        )));
    }
    let commit_index = hs.commit.max(consistent_index);
    let snaps = read_snap_dir(source)?;
    let snap = loadable_snapshot(&all, &snaps);
    let start = snap.map(|s| s.wal_snapshot()).unwrap_or_default();
    // Voters and learners: the snapshot's, then the committed conf changes.
    let mut ids: BTreeSet<u64> = BTreeSet::new();
    if let Some(cs) = snap.and_then(|s| s.conf_state.as_ref()) {
        ids.extend(cs.voters.iter().copied());
        ids.extend(cs.learners.iter().copied());
    }
    let mut entries = Vec::new();
    let mut dropped = 0u64;
    for e in &all.entries {
        if e.index <= start.index {
            continue;
        }
        if e.index > commit_index {
            dropped += 1;
            continue;
        }
        if e.entry_type == EntryType::ConfChange
            && let EntryPayload::ConfChange(cc) = e.payload()
        {
            match cc.change_type.as_str() {
                "addNode" | "addLearnerNode" => {
                    ids.insert(cc.node_id);
                }
                "removeNode" => {
                    ids.remove(&cc.node_id);
                }
                _ => {}
            }
        }
        entries.push(NewEntry {
            term: e.term,
            index: e.index,
            entry_type: e.entry_type,
            data: if e.data.is_empty() && e.entry_type == EntryType::Normal {
                None
            } else {
                Some(e.data.clone())
            },
        });
    }
    if !ids.contains(&meta.node_id) {
        return Err(Error::Invalid(format!(
            "member {:x} is not in its own cluster's membership; cannot keep it",
            meta.node_id
        )));
    }
    let mut next = entries
        .last()
        .map_or(start.index.max(commit_index), |e| e.index)
        + 1;
    let mut removed = Vec::new();
    for id in ids.iter().filter(|&&id| id != meta.node_id) {
        entries.push(NewEntry {
            term: hs.term,
            index: next,
            entry_type: EntryType::ConfChange,
            data: Some(encode_conf_change(0, 1, *id, None)),
        });
        removed.push(format!("{id:x}"));
        next += 1;
    }
    let commit = next - 1;
    let part = part_path(output);
    if part.exists() {
        fs::remove_dir_all(&part)
            .map_err(|e| Error::io(format!("removing the leftover {}", part.display()), e))?;
    }
    let snap_dir = part.join("member").join("snap");
    let wal_dir = part.join("member").join("wal");
    make_private_dir(&snap_dir)?;
    make_private_dir(&wal_dir)?;
    let copy = |from: &Path, to: &Path| -> Result<()> {
        fs::copy(from, to)
            .map(|_| ())
            .map_err(|e| Error::io(format!("copying {}", from.display()), e))?;
        fs::File::open(to)
            .and_then(|f| f.sync_all())
            .map_err(|e| Error::io(format!("syncing {}", to.display()), e))
    };
    copy(&db, &snap_dir.join("db"))?;
    if let Some(s) = snap {
        copy(&s.path, &snap_dir.join(&s.file))?;
    }
    let mut w = WalWriter::create(
        &wal_dir,
        WalSegmentName { seq: 0, index: 0 },
        &WalMetadata {
            node_id: meta.node_id,
            cluster_id: meta.cluster_id,
        },
        &WalSnapshot {
            index: start.index,
            term: start.term,
        },
    )?;
    // In batches, so memory stays bounded by the WAL's own size.
    for chunk in entries.chunks(4096) {
        let last = chunk.last().map_or(commit, |e| e.index);
        w.save(
            &HardState {
                term: hs.term,
                vote: hs.vote,
                commit: last.min(commit),
            },
            chunk,
        )?;
    }
    if entries.is_empty() {
        w.save(&hs, &[])?;
    }
    w.finish()?;
    sync_dir(&snap_dir)?;
    sync_dir(&wal_dir)?;
    rename_into_place(&part, output)?;
    Ok(ForceNewClusterReport {
        data_dir: output.to_path_buf(),
        entries: entries.len() as u64 - removed.len() as u64,
        dropped_uncommitted: dropped,
        removed,
        commit,
    })
}

/// Least time allowed for the cluster to accept a member add (etcd wants every voter
/// connected for 5 s) and for a learner to catch up before its promotion.
const SETTLE: Duration = Duration::from_secs(60);

/// Progress of an apply, kept next to the plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyState {
    /// Cluster id of the plan (a state file of another plan is refused).
    pub cluster_id: String,
    /// The source data dir of the plan.
    pub source: PathBuf,
    /// Steps finished, from the first.
    pub done: usize,
}

/// How to apply.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// State file.
    pub state: PathBuf,
    /// Print the steps that would run; change nothing.
    pub dry_run: bool,
    /// How long to wait for a member the operator starts (and at least a minute for a
    /// member add to be accepted and a learner to catch up).
    pub wait: Duration,
    /// Connection settings (TLS, auth) for the rebuilt cluster.
    pub connect: ConnectOptions,
}

/// One step's outcome.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepOutcome {
    /// Position in the plan (from 1).
    pub index: usize,
    /// The step.
    pub step: Step,
    /// `done`, `alreadyDone`, `wouldRun` (dry run) or `waiting`.
    pub status: String,
    /// Details.
    pub detail: String,
}

/// Where an apply stopped.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    /// Steps run (or shown) in this invocation.
    pub steps: Vec<StepOutcome>,
    /// Every step is done.
    pub complete: bool,
    /// The step waiting for the operator, when apply stopped at one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<StepOutcome>,
}

fn load_state(path: &Path, plan: &RecoveryPlan) -> Result<ApplyState> {
    match fs::read(path) {
        Ok(bytes) => {
            let state: ApplyState = serde_json::from_slice(&bytes).map_err(|e| {
                Error::Invalid(format!("state file {} is unreadable: {e}", path.display()))
            })?;
            if state.cluster_id != plan.cluster_id || state.source != plan.source {
                return Err(Error::Invalid(format!(
                    "state file {} belongs to another plan (cluster {}, source {}); give a new --state",
                    path.display(),
                    state.cluster_id,
                    state.source.display()
                )));
            }
            Ok(state)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ApplyState {
            cluster_id: plan.cluster_id.clone(),
            source: plan.source.clone(),
            done: 0,
        }),
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

fn save_state(path: &Path, state: &ApplyState) -> Result<()> {
    let tmp = part_path(path);
    let bytes = serde_json::to_vec_pretty(state)
        .map_err(|e| Error::Invalid(format!("encoding the state: {e}")))?;
    fs::write(&tmp, bytes).map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
    fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))?;
    fs::rename(&tmp, path).map_err(|e| Error::io(format!("renaming {}", tmp.display()), e))
}

/// A failure talking to the rebuilt cluster.
fn rpc(what: &str) -> impl FnOnce(etcd_rpc::Error) -> Error + '_ {
    move |e| Error::Invalid(format!("{what}: {e:#}"))
}

async fn connect(url: &str, options: &ConnectOptions) -> Result<Client> {
    Client::connect(&[url.to_string()], options.clone())
        .await
        .map_err(rpc("connecting to the rebuilt cluster"))
}

/// Client URL of the first (source) member.
fn leader_url(plan: &RecoveryPlan) -> Result<String> {
    plan.members
        .first()
        .and_then(|m| m.client_urls.first().cloned())
        .ok_or_else(|| Error::Invalid("the plan has no client URL for the source member".into()))
}

/// Runs the plan's steps from where the state file says. See the module docs.
pub async fn apply(
    plan: &RecoveryPlan,
    opts: &ApplyOptions,
    log: &(dyn Fn(&StepOutcome) + Sync),
) -> Result<ApplyReport> {
    let mut state = load_state(&opts.state, plan)?;
    let mut report = ApplyReport {
        steps: Vec::new(),
        complete: false,
        waiting_for: None,
    };
    for (i, step) in plan.steps.iter().enumerate().skip(state.done) {
        let mut outcome = StepOutcome {
            index: i + 1,
            step: step.clone(),
            status: "wouldRun".into(),
            detail: step.describe(),
        };
        if opts.dry_run {
            log(&outcome);
            report.steps.push(outcome);
            continue;
        }
        let result = run_step(plan, step, opts).await?;
        match result {
            Some(detail) => {
                outcome.status = "done".into();
                outcome.detail = detail;
                log(&outcome);
                report.steps.push(outcome);
                state.done = i + 1;
                save_state(&opts.state, &state)?;
            }
            None => {
                outcome.status = "waiting".into();
                log(&outcome);
                report.waiting_for = Some(outcome);
                return Ok(report);
            }
        }
    }
    report.complete = !opts.dry_run;
    Ok(report)
}

/// Runs one step: `Some(detail)` when done, `None` when waiting for the operator.
async fn run_step(plan: &RecoveryPlan, step: &Step, opts: &ApplyOptions) -> Result<Option<String>> {
    match step {
        Step::ForceNewCluster { source, output, .. } => {
            if output.join("member").join("wal").is_dir() {
                return Ok(Some(format!("{} already written", output.display())));
            }
            let r = force_new_cluster(source, output)?;
            Ok(Some(format!(
                "wrote {}: {} committed entries kept, {} uncommitted dropped, removed {} members, commit {}",
                r.data_dir.display(),
                r.entries,
                r.dropped_uncommitted,
                r.removed.len(),
                r.commit
            )))
        }
        Step::StartMember {
            name, client_url, ..
        } => {
            let deadline = Instant::now() + opts.wait;
            let probe = ConnectOptions {
                dial_timeout: Duration::from_millis(500),
                request_timeout: Some(Duration::from_secs(2)),
                ..opts.connect.clone()
            };
            loop {
                if let Ok(c) =
                    Client::connect(std::slice::from_ref(client_url), probe.clone()).await
                    && let Ok(s) = c.status().await
                {
                    let id = s.header.map_or(0, |h| h.member_id);
                    return Ok(Some(format!(
                        "{name} answers at {client_url} (member {id:x})"
                    )));
                }
                if Instant::now() >= deadline {
                    return Ok(None);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
        Step::AddLearner { name, peer_urls } => {
            let client = connect(&leader_url(plan)?, &opts.connect).await?;
            let list = client.member_list().await.map_err(rpc("listing members"))?;
            if let Some(m) = list
                .members
                .iter()
                .find(|m| m.peer_urls.iter().any(|u| peer_urls.contains(u)))
            {
                return Ok(Some(format!("{name} is already a member ({:x})", m.id)));
            }
            // etcd refuses a member add until every voter has been connected for 5 s
            // (`--strict-reconfig-check`): retry until then.
            let deadline = Instant::now() + opts.wait.max(SETTLE);
            let added = loop {
                match client.member_add(peer_urls.clone(), true).await {
                    Ok(added) => break added,
                    Err(e)
                        if Instant::now() < deadline
                            && format!("{e:#}").contains("unhealthy cluster") =>
                    {
                        tracing::info!(member = %name, "cluster not settled yet; retrying the add");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => return Err(rpc("adding the learner")(e)),
                }
            };
            let id = added.member.map_or(0, |m| m.id);
            Ok(Some(format!("added {name} as learner {id:x}")))
        }
        Step::Promote { name, peer_urls } => {
            let client = connect(&leader_url(plan)?, &opts.connect).await?;
            let deadline = Instant::now() + opts.wait.max(SETTLE);
            loop {
                let list = client.member_list().await.map_err(rpc("listing members"))?;
                let Some(m) = list
                    .members
                    .iter()
                    .find(|m| m.peer_urls.iter().any(|u| peer_urls.contains(u)))
                else {
                    return Err(Error::Invalid(format!(
                        "{name} is not a member; was it removed? Re-run from the addLearner step \
                         (delete the state file's progress)"
                    )));
                };
                if !m.is_learner {
                    return Ok(Some(format!("{name} ({:x}) is a voting member", m.id)));
                }
                match client.member_promote(m.id).await {
                    Ok(_) => return Ok(Some(format!("promoted {name} ({:x})", m.id))),
                    Err(e) if Instant::now() < deadline => {
                        tracing::info!(member = %name, error = %e, "learner not ready; retrying");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    Err(e) => {
                        return Err(Error::Invalid(format!(
                            "{name} could not be promoted within {:?}: {e:#}",
                            opts.wait.max(SETTLE)
                        )));
                    }
                }
            }
        }
        Step::Verify { members } => {
            let client = connect(&leader_url(plan)?, &opts.connect).await?;
            let list = client.member_list().await.map_err(rpc("listing members"))?;
            let voters = list.members.iter().filter(|m| !m.is_learner).count();
            if voters != *members {
                return Err(Error::Invalid(format!(
                    "{voters} voting members, expected {members}"
                )));
            }
            let rev = client
                .status()
                .await
                .map_err(rpc("status"))?
                .header
                .map_or(0, |h| h.revision);
            let mut hashes = Vec::new();
            for m in &plan.members {
                let url = m.client_urls.first().cloned().unwrap_or_default();
                let c = connect(&url, &opts.connect).await?;
                // A member that has just caught up may not have applied `rev` yet.
                let deadline = Instant::now() + SETTLE;
                let h = loop {
                    match c.hash_kv(rev).await {
                        Ok(h) => break h,
                        Err(e)
                            if Instant::now() < deadline
                                && format!("{e:#}").contains("future revision") =>
                        {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => {
                            let seen = c.status().await.ok().map(|s| {
                                format!(
                                    "its revision {}, raft index {} applied {}",
                                    s.header.map_or(0, |h| h.revision),
                                    s.raft_index,
                                    s.raft_applied_index
                                )
                            });
                            return Err(Error::Invalid(format!(
                                "HashKV of {} at revision {rev}: {e:#} ({})",
                                m.name,
                                seen.unwrap_or_default()
                            )));
                        }
                    }
                };
                hashes.push((m.name.clone(), h.hash));
            }
            if hashes.windows(2).any(|w| w[0].1 != w[1].1) {
                return Err(Error::Invalid(format!(
                    "members disagree on HashKV at revision {rev}: {hashes:?}"
                )));
            }
            Ok(Some(format!(
                "{voters} voting members agree on HashKV {:08x} at revision {rev}",
                hashes.first().map_or(0, |h| h.1)
            )))
        }
    }
}
