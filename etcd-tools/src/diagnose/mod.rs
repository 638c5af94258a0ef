//! `salvor etcd diagnose`: a live cluster's health as one report of findings.
//!
//! Every member is probed concurrently: a Status call (reachability and
//! latency, bounded by the dial timeout so a dead or frozen member costs at
//! most that), then at once its member list, alarms, a linearizable and a
//! serializable read and its `/metrics`. Then HashKV at a revision every member
//! has, on every member at once. The answers are judged into [`Finding`]s
//! (code, severity, member, evidence, meaning, remedy); see `docs/diagnose.md`.
//!
//! ```no_run
//! use etcd_tools::diagnose::{diagnose, DiagnoseOptions};
//!
//! # async fn example() {
//! let options = DiagnoseOptions::new(vec!["http://127.0.0.1:2379".to_string()]);
//! let report = diagnose(&options).await;
//! for finding in &report.findings {
//!     println!("{} {:?} {}", finding.code, finding.severity, finding.evidence);
//! }
//! # }
//! ```

mod analysis;
pub mod exposition;
mod findings;
pub mod metrics;
mod probe;

use std::time::Duration;

use serde::Serialize;

pub use etcd_rpc::{ConnectOptions, TlsOptions};

pub use findings::{Code, Finding, Severity};
pub use metrics::{LatencySummary, MemberMetrics};

/// What to diagnose and how.
#[derive(Debug, Clone)]
pub struct DiagnoseOptions {
    /// Endpoints as given (`http://host:port`, `https://…` or `host:port`).
    pub endpoints: Vec<String>,
    /// Discover every member from the endpoints' member list and probe their
    /// client URLs instead of the endpoints given (like etcdctl's `--cluster`).
    pub cluster: bool,
    /// Connection settings. `dial_timeout` bounds a member's first answer
    /// (connect and Status); `request_timeout` every later call.
    pub connect: ConnectOptions,
    /// Fetch and judge each member's `/metrics`.
    pub metrics: bool,
    /// Compare HashKV across members.
    pub hash_kv: bool,
    /// Limits the findings are judged against.
    pub thresholds: Thresholds,
}

impl DiagnoseOptions {
    /// Defaults like etcdctl's (dial timeout 2 s, command timeout 5 s), for `endpoints`.
    pub fn new(endpoints: Vec<String>) -> Self {
        DiagnoseOptions {
            endpoints,
            cluster: false,
            connect: ConnectOptions {
                dial_timeout: Duration::from_secs(2),
                request_timeout: Some(Duration::from_secs(5)),
                // One-shot calls: no keep-alive pings needed.
                keep_alive_interval: None,
                ..ConnectOptions::default()
            },
            metrics: true,
            hash_kv: true,
            thresholds: Thresholds::default(),
        }
    }
}

/// The limits findings are judged against; the defaults follow etcd's guidance.
#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    /// A read slower than this is `SLOW_READ`.
    pub slow_read: Duration,
    /// WAL fsync p99 above this (seconds) is `WAL_FSYNC_SLOW` (etcd: 10 ms).
    pub wal_fsync_p99_seconds: f64,
    /// Backend commit p99 above this (seconds) is `BACKEND_COMMIT_SLOW` (etcd: 25 ms).
    pub backend_commit_p99_seconds: f64,
    /// Peer round trip p99 above this (seconds) is `PEER_ROUND_TRIP_HIGH`.
    pub peer_round_trip_p99_seconds: f64,
    /// Latency histograms with fewer observations are not judged: their p99 says nothing.
    pub min_histogram_samples: u64,
    /// Share of the quota above which `DB_QUOTA` is a warning.
    pub quota_warning: f64,
    /// Share of the quota above which `DB_QUOTA` is an error.
    pub quota_error: f64,
    /// Free share of the database file above which it is `DB_FRAGMENTED` …
    pub fragmentation_share: f64,
    /// … when at least this many bytes are free.
    pub fragmentation_min_free_bytes: u64,
    /// Raft index distance behind the most advanced member for `RAFT_INDEX_LAG`.
    pub raft_index_lag: u64,
    /// Committed but unapplied entries for an `APPLY_LAG` warning (etcd refuses
    /// proposals at 5000: an error).
    pub apply_lag: u64,
    /// Leader changes per 15 minutes for `LEADER_CHANGES_FREQUENT` (etcd's
    /// mixin alert: 4 in 15 minutes).
    pub leader_changes_per_15m: f64,
    /// Failed proposals per 15 minutes for `PROPOSALS_FAILED`.
    pub proposals_failed_per_15m: f64,
    /// Pending proposals for `PROPOSALS_PENDING`.
    pub proposals_pending: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            slow_read: Duration::from_millis(500),
            wal_fsync_p99_seconds: 0.010,
            backend_commit_p99_seconds: 0.025,
            peer_round_trip_p99_seconds: 0.100,
            min_histogram_samples: 100,
            quota_warning: 0.8,
            quota_error: 0.95,
            fragmentation_share: 0.5,
            fragmentation_min_free_bytes: 32 * 1024 * 1024,
            raft_index_lag: 1000,
            apply_lag: 1000,
            leader_changes_per_15m: 4.0,
            proposals_failed_per_15m: 5.0,
            proposals_pending: 10.0,
        }
    }
}

/// The diagnosis of a cluster.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosisReport {
    /// Cluster ID (hex) as most members report it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    /// Leader ID (hex) as most members report it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Number of members that answered.
    pub reachable: usize,
    /// One entry per endpoint probed, in order.
    pub members: Vec<MemberDiagnosis>,
    /// The member list of the first member that answered it.
    pub membership: Vec<MembershipEntry>,
    /// Raised alarms (every member's answer, merged).
    pub alarms: Vec<AlarmEntry>,
    /// The HashKV comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_kv: Option<HashKvComparison>,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
    /// Wall time of the whole diagnosis, milliseconds.
    pub elapsed_ms: f64,
}

impl DiagnosisReport {
    /// Findings of at least `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity >= severity)
            .count()
    }

    /// Whether any finding has `code`.
    pub fn has(&self, code: Code) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// True when no finding is an error.
    pub fn is_healthy(&self) -> bool {
        self.count(Severity::Error) == 0
    }
}

/// What one endpoint answered.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberDiagnosis {
    /// The endpoint probed, as a URL.
    pub endpoint: String,
    /// Member name, from the member list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Member ID (hex), from its Status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Whether it answered Status within the dial timeout.
    pub reachable: bool,
    /// Why not, or the first failed call.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Connect and Status, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_ms: Option<f64>,
    /// A linearizable read, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linearizable_read_ms: Option<f64>,
    /// Why the linearizable read failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub linearizable_read_error: Option<String>,
    /// A serializable read, milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serializable_read_ms: Option<f64>,
    /// Why the serializable read failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serializable_read_error: Option<String>,
    /// Its Status.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<MemberStatus>,
    /// Its member list, as member IDs (hex), sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member_ids: Option<Vec<String>>,
    /// What its `/metrics` said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics: Option<MemberMetrics>,
    /// Why `/metrics` could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_error: Option<String>,
    /// Its HashKV at the common revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash_kv: Option<u32>,
}

impl MemberDiagnosis {
    /// How findings name this member: its name, else its ID, else the endpoint.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .filter(|name| !name.is_empty())
            .or_else(|| self.id.clone())
            .unwrap_or_else(|| self.endpoint.clone())
    }
}

/// A member's Status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberStatus {
    /// Cluster ID (hex).
    pub cluster_id: String,
    /// etcd version.
    pub version: String,
    /// Backend file size, bytes.
    pub db_size: i64,
    /// Backend bytes in use.
    pub db_size_in_use: i64,
    /// Quota, bytes (from Status on etcd 3.6+, else `/metrics`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub db_size_quota: Option<i64>,
    /// Leader ID (hex); `0` when none.
    pub leader: String,
    /// Raft term.
    pub raft_term: u64,
    /// Raft index.
    pub raft_index: u64,
    /// Raft applied index.
    pub raft_applied_index: u64,
    /// Key-value store revision.
    pub revision: i64,
    /// Whether it is a learner.
    pub is_learner: bool,
    /// Errors the member reports.
    pub errors: Vec<String>,
}

/// One member of the member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MembershipEntry {
    /// Member ID (hex).
    pub id: String,
    /// Name; empty when it never started.
    pub name: String,
    /// Peer URLs.
    pub peer_urls: Vec<String>,
    /// Client URLs; empty when it never started.
    pub client_urls: Vec<String>,
    /// Whether it is a learner.
    pub is_learner: bool,
}

/// A raised alarm.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlarmEntry {
    /// Member ID (hex) that raised it.
    pub member_id: String,
    /// `NOSPACE` or `CORRUPT`.
    pub alarm: String,
}

/// HashKV of every member at one revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HashKvComparison {
    /// The revision hashed (the lowest current revision among the members).
    pub revision: i64,
    /// Whether every member that answered has the same hash.
    pub consistent: bool,
}

/// Formats a member or cluster ID like etcdctl (`8e9e05c52164694d`).
pub fn hex_id(id: u64) -> String {
    format!("{id:x}")
}

/// Diagnoses the cluster. Never fails: what could not be reached is a finding.
pub async fn diagnose(options: &DiagnoseOptions) -> DiagnosisReport {
    let started = std::time::Instant::now();
    let targets = probe::targets(options).await;
    let mut probes = probe::probe_all(&targets.endpoints, options).await;
    let hash_kv = if options.hash_kv {
        probe::compare_hash_kv(&mut probes).await
    } else {
        None
    };
    let mut report = analysis::judge(targets, probes, hash_kv, options);
    report.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    report
}
