//! The diagnosis as Prometheus metrics (text exposition format 0.0.4), for
//! `salvor server`'s `/metrics`.
//!
//! Every finding code has a `salvor_etcd_findings{code}` series, 0 when absent,
//! so that alert rules and dashboards see stable series.

use super::{Code, DiagnosisReport, MemberDiagnosis, Severity};
use crate::prom::Writer;

/// The `Content-Type` of [`render`]'s output.
pub use crate::prom::CONTENT_TYPE;

/// What the exporter knows besides the last report.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ExporterCounters {
    /// Diagnoses run since the exporter started.
    pub runs: u64,
    /// Unix time the last diagnosis finished.
    pub last_run_unix_seconds: f64,
}

fn member_labels(member: &MemberDiagnosis) -> Vec<(&'static str, String)> {
    vec![
        ("member", member.label()),
        ("endpoint", member.endpoint.clone()),
    ]
}

/// One per-member family from the members that have the value.
fn per_member(
    w: &mut Writer,
    report: &DiagnosisReport,
    name: &str,
    kind: &str,
    help: &str,
    value: impl Fn(&MemberDiagnosis) -> Option<f64>,
) {
    let samples: Vec<_> = report
        .members
        .iter()
        .filter_map(|m| Some((member_labels(m), value(m)?)))
        .collect();
    w.family(name, kind, help, &samples);
}

/// Renders the report as Prometheus metrics.
pub fn render(report: &DiagnosisReport, counters: ExporterCounters) -> String {
    let mut w = Writer::new();
    w.gauge(
        "salvor_etcd_up",
        "1 when at least one etcd member answered the last diagnosis.",
        f64::from(u8::from(report.reachable > 0)),
    );
    w.gauge(
        "salvor_etcd_healthy",
        "1 when the last diagnosis found no error-level finding.",
        f64::from(u8::from(report.is_healthy())),
    );
    w.gauge(
        "salvor_etcd_diagnose_duration_seconds",
        "Wall time of the last diagnosis.",
        report.elapsed_ms / 1000.0,
    );
    w.gauge(
        "salvor_etcd_diagnose_last_run_timestamp_seconds",
        "Unix time the last diagnosis finished.",
        counters.last_run_unix_seconds,
    );
    w.family(
        "salvor_etcd_diagnose_runs_total",
        "counter",
        "Diagnoses run since the exporter started.",
        &[(Vec::new(), counters.runs as f64)],
    );
    w.gauge(
        "salvor_etcd_members",
        "Members in the cluster's member list.",
        report.membership.len() as f64,
    );
    w.gauge(
        "salvor_etcd_members_reachable",
        "Members that answered the last diagnosis.",
        report.reachable as f64,
    );
    if let Some(hash) = &report.hash_kv {
        w.gauge(
            "salvor_etcd_hashkv_consistent",
            "1 when every member hashed its key space identically at the common revision.",
            f64::from(u8::from(hash.consistent)),
        );
    }

    let counts: Vec<_> = Code::ALL
        .iter()
        .map(|code| {
            let n = report.findings.iter().filter(|f| f.code == *code).count();
            (vec![("code", code.as_str().to_string())], n as f64)
        })
        .collect();
    w.family(
        "salvor_etcd_findings",
        "gauge",
        "Findings of the last diagnosis per code (docs/diagnose.md).",
        &counts,
    );
    let severities: Vec<_> = [Severity::Info, Severity::Warning, Severity::Error]
        .iter()
        .map(|severity| {
            let n = report
                .findings
                .iter()
                .filter(|f| f.severity == *severity)
                .count();
            (
                vec![("severity", severity_name(*severity).to_string())],
                n as f64,
            )
        })
        .collect();
    w.family(
        "salvor_etcd_findings_by_severity",
        "gauge",
        "Findings of the last diagnosis per severity.",
        &severities,
    );
    let each: Vec<_> = report
        .findings
        .iter()
        .map(|f| {
            (
                vec![
                    ("code", f.code.as_str().to_string()),
                    ("severity", severity_name(f.severity).to_string()),
                    ("member", f.member.clone().unwrap_or_default()),
                ],
                1.0,
            )
        })
        .collect();
    w.family(
        "salvor_etcd_finding",
        "gauge",
        "1 for each finding of the last diagnosis, by code, severity and member (empty for the cluster).",
        &each,
    );
    let alarms: Vec<_> = report
        .alarms
        .iter()
        .map(|a| {
            (
                vec![
                    ("alarm", a.alarm.clone()),
                    ("member_id", a.member_id.clone()),
                ],
                1.0,
            )
        })
        .collect();
    w.family(
        "salvor_etcd_alarm",
        "gauge",
        "1 for each raised etcd alarm.",
        &alarms,
    );

    let status = |m: &MemberDiagnosis| m.status.clone();
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_up",
        "gauge",
        "1 when the member answered Status within the dial timeout.",
        |m| Some(f64::from(u8::from(m.reachable))),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_status_latency_seconds",
        "gauge",
        "Time to connect and get the member's Status.",
        |m| m.status_ms.map(|ms| ms / 1000.0),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_linearizable_read_seconds",
        "gauge",
        "Latency of a linearizable read on the member.",
        |m| m.linearizable_read_ms.map(|ms| ms / 1000.0),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_serializable_read_seconds",
        "gauge",
        "Latency of a serializable read on the member.",
        |m| m.serializable_read_ms.map(|ms| ms / 1000.0),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_is_leader",
        "gauge",
        "1 when the member is the leader.",
        |m| status(m).map(|s| f64::from(u8::from(m.id.as_deref() == Some(s.leader.as_str())))),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_is_learner",
        "gauge",
        "1 when the member is a learner.",
        |m| status(m).map(|s| f64::from(u8::from(s.is_learner))),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_raft_term",
        "gauge",
        "The member's raft term.",
        |m| status(m).map(|s| s.raft_term as f64),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_raft_index",
        "gauge",
        "The member's raft index.",
        |m| status(m).map(|s| s.raft_index as f64),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_raft_applied_index",
        "gauge",
        "The member's raft applied index.",
        |m| status(m).map(|s| s.raft_applied_index as f64),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_revision",
        "gauge",
        "The member's key-value store revision.",
        |m| status(m).map(|s| s.revision as f64),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_db_size_bytes",
        "gauge",
        "Size of the member's backend file.",
        |m| status(m).map(|s| s.db_size as f64),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_db_size_in_use_bytes",
        "gauge",
        "Bytes of the member's backend in use.",
        |m| status(m).map(|s| s.db_size_in_use as f64),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_db_quota_bytes",
        "gauge",
        "The member's backend quota (--quota-backend-bytes).",
        |m| status(m).and_then(|s| s.db_size_quota).map(|q| q as f64),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_wal_fsync_p99_seconds",
        "gauge",
        "99th percentile of WAL fsync since the member started (etcd guidance: below 10 ms).",
        |m| m.metrics.as_ref()?.wal_fsync.map(|s| s.p99_seconds),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_backend_commit_p99_seconds",
        "gauge",
        "99th percentile of backend commit since the member started (etcd guidance: below 25 ms).",
        |m| m.metrics.as_ref()?.backend_commit.map(|s| s.p99_seconds),
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_peer_round_trip_p99_seconds",
        "gauge",
        "Highest 99th percentile of the round trip to any peer.",
        |m| {
            m.metrics
                .as_ref()?
                .peer_round_trip
                .values()
                .map(|s| s.p99_seconds)
                .reduce(f64::max)
        },
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_leader_changes_seen_total",
        "counter",
        "Leader changes the member has seen since it started.",
        |m| m.metrics.as_ref()?.leader_changes_seen,
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_proposals_failed_total",
        "counter",
        "Failed raft proposals since the member started.",
        |m| m.metrics.as_ref()?.proposals_failed,
    );
    per_member(
        &mut w,
        report,
        "salvor_etcd_member_proposals_pending",
        "gauge",
        "Raft proposals waiting to be committed.",
        |m| m.metrics.as_ref()?.proposals_pending,
    );
    w.finish()
}

fn severity_name(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Error => "error",
    }
}
