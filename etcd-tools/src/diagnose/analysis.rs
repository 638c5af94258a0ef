//! Judging the members' answers into findings.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{SystemTime, UNIX_EPOCH};

use etcd_rpc::proto::Member;

use super::probe::{Probe, Targets, alarm_name};
use super::{
    AlarmEntry, Code, DiagnoseOptions, DiagnosisReport, Finding, HashKvComparison, MembershipEntry,
    Severity, hex_id,
};

/// etcd refuses proposals when this many committed entries wait to be applied.
const ETCD_MAX_APPLY_GAP: u64 = 5000;

/// Collects findings.
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, code: Code, severity: Severity, member: Option<String>, evidence: String) {
        self.0.push(Finding::new(code, severity, member, evidence));
    }
}

/// The most common value (the first one seen on a tie).
fn most_common<T: Ord + Clone>(values: impl Iterator<Item = T>) -> Option<T> {
    let mut counts: BTreeMap<T, (usize, usize)> = BTreeMap::new();
    for (order, value) in values.enumerate() {
        counts.entry(value).or_insert((0, order)).0 += 1;
    }
    counts
        .into_iter()
        .max_by(|a, b| a.1.0.cmp(&b.1.0).then(b.1.1.cmp(&a.1.1)))
        .map(|(value, _)| value)
}

fn same_url(a: &str, b: &str) -> bool {
    let strip = |url: &str| {
        url.trim_end_matches('/')
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .to_string()
    };
    strip(a) == strip(b)
}

pub(crate) fn judge(
    targets: Targets,
    mut probes: Vec<Probe>,
    hash_revision: Option<i64>,
    options: &DiagnoseOptions,
) -> DiagnosisReport {
    let thresholds = &options.thresholds;
    let mut findings = Findings(Vec::new());
    let reachable = probes.iter().filter(|p| p.diagnosis.reachable).count();

    if let Some(error) = &targets.discovery_error {
        findings.add(
            Code::ClusterUnreachable,
            if reachable == 0 {
                Severity::Error
            } else {
                Severity::Warning
            },
            None,
            format!(
                "--cluster: cannot read the member list from {:?}: {error}",
                options.endpoints
            ),
        );
    }

    // The membership everything is compared with: discovery's, else the first answer.
    let reference: Option<Vec<Member>> = targets
        .discovered
        .clone()
        .or_else(|| probes.iter().find_map(|p| p.members.clone()));
    // Name the members that did not answer from the member list (by client URL).
    if let Some(list) = &reference {
        for probe in probes.iter_mut() {
            let d = &mut probe.diagnosis;
            let known = list.iter().find(|m| {
                d.id.as_deref() == Some(hex_id(m.id).as_str())
                    || m.client_urls.iter().any(|u| same_url(u, &d.endpoint))
            });
            if let Some(member) = known {
                if d.name.is_none() && !member.name.is_empty() {
                    d.name = Some(member.name.clone());
                }
                if d.id.is_none() {
                    d.id = Some(hex_id(member.id));
                }
            }
        }
    }

    for probe in probes.iter().filter(|p| !p.diagnosis.reachable) {
        findings.add(
            if probe.auth_failed {
                Code::AuthFailed
            } else {
                Code::EndpointUnreachable
            },
            Severity::Error,
            Some(probe.diagnosis.label()),
            format!(
                "{}: {}",
                probe.diagnosis.endpoint,
                probe.diagnosis.error.as_deref().unwrap_or("no answer")
            ),
        );
    }
    if reachable == 0 && targets.discovery_error.is_none() {
        findings.add(Code::ClusterUnreachable, Severity::Error, None, {
            let rejected = probes.iter().filter(|p| p.auth_failed).count();
            if rejected > 0 {
                format!(
                    "none of {} endpoints answered ({rejected} rejected the credentials)",
                    probes.len()
                )
            } else {
                format!("none of {} endpoints answered", probes.len())
            }
        });
    }

    let answered: Vec<&Probe> = probes.iter().filter(|p| p.diagnosis.reachable).collect();
    judge_members(&answered, thresholds, &mut findings);
    judge_agreement(&answered, &mut findings);
    if let Some(list) = &reference {
        judge_membership(list, &probes, &answered, &targets, &mut findings);
    }

    // Alarms: the union of every member's answer.
    let mut alarms = BTreeSet::new();
    for probe in &answered {
        for alarm in probe.alarms.iter().flatten() {
            alarms.insert(AlarmEntry {
                member_id: hex_id(alarm.member_id),
                alarm: alarm_name(alarm.alarm),
            });
        }
    }
    let name_of = |id: &str| {
        reference
            .iter()
            .flatten()
            .find(|m| hex_id(m.id) == id && !m.name.is_empty())
            .map_or_else(|| id.to_string(), |m| m.name.clone())
    };
    for alarm in &alarms {
        let code = match alarm.alarm.as_str() {
            "NOSPACE" => Code::AlarmNospace,
            "CORRUPT" => Code::AlarmCorrupt,
            _ => continue,
        };
        findings.add(
            code,
            Severity::Error,
            Some(name_of(&alarm.member_id)),
            format!("alarm {} raised by member {}", alarm.alarm, alarm.member_id),
        );
    }

    let hash_kv = judge_hash_kv(
        &answered,
        hash_revision,
        reference.as_deref(),
        &mut findings,
    );

    let cluster_id = most_common(answered.iter().filter_map(|p| p.cluster_id())).map(hex_id);
    let leader = most_common(
        answered
            .iter()
            .filter_map(|p| p.status.as_ref().map(|s| s.leader))
            .filter(|l| *l != 0),
    )
    .map(hex_id);
    let membership = reference
        .iter()
        .flatten()
        .map(|m| MembershipEntry {
            id: hex_id(m.id),
            name: m.name.clone(),
            peer_urls: m.peer_urls.clone(),
            client_urls: m.client_urls.clone(),
            is_learner: m.is_learner,
        })
        .collect();

    let mut findings = findings.0;
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then(a.code.cmp(&b.code))
            .then(a.member.cmp(&b.member))
    });
    DiagnosisReport {
        cluster_id,
        leader,
        reachable,
        members: probes.into_iter().map(|p| p.diagnosis).collect(),
        membership,
        alarms: alarms.into_iter().collect(),
        hash_kv,
        findings,
        elapsed_ms: 0.0,
    }
}

/// Per member: reads, leader, lag, database size, metrics.
fn judge_members(answered: &[&Probe], t: &super::Thresholds, findings: &mut Findings) {
    let max_index = answered
        .iter()
        .filter_map(|p| p.status.as_ref().map(|s| s.raft_index))
        .max()
        .unwrap_or(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    for probe in answered {
        let d = &probe.diagnosis;
        let member = Some(d.label());
        let Some(status) = &d.status else { continue };
        if let Some(error) = &d.linearizable_read_error
            && !status.is_learner
        {
            // Learners refuse linearizable reads by design ("rpc not supported for learner").
            findings.add(
                Code::LinearizableReadFailed,
                Severity::Error,
                member.clone(),
                error.clone(),
            );
        }
        for error in &probe.call_errors {
            findings.add(
                Code::CallFailed,
                Severity::Warning,
                member.clone(),
                error.clone(),
            );
        }
        if let Some(error) = &d.serializable_read_error {
            findings.add(
                Code::SerializableReadFailed,
                Severity::Error,
                member.clone(),
                error.clone(),
            );
        }
        let slow_ms = t.slow_read.as_secs_f64() * 1000.0;
        for (kind, ms) in [
            ("linearizable", d.linearizable_read_ms),
            ("serializable", d.serializable_read_ms),
        ] {
            if let Some(ms) = ms.filter(|ms| *ms > slow_ms) {
                findings.add(
                    Code::SlowRead,
                    Severity::Warning,
                    member.clone(),
                    format!("{kind} read took {ms:.0} ms (threshold {slow_ms:.0} ms)"),
                );
            }
        }
        if status.leader == "0" {
            findings.add(
                Code::NoLeader,
                Severity::Error,
                member.clone(),
                format!("Status reports no leader in raft term {}", status.raft_term),
            );
        }
        let unapplied = status.raft_index.saturating_sub(status.raft_applied_index);
        if unapplied > t.apply_lag {
            findings.add(
                Code::ApplyLag,
                if unapplied >= ETCD_MAX_APPLY_GAP {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                member.clone(),
                format!(
                    "raft index {} but applied index {}: {unapplied} entries wait (etcd refuses proposals at {ETCD_MAX_APPLY_GAP})",
                    status.raft_index, status.raft_applied_index
                ),
            );
        }
        let behind = max_index.saturating_sub(status.raft_index);
        if behind > t.raft_index_lag {
            findings.add(
                Code::RaftIndexLag,
                Severity::Warning,
                member.clone(),
                format!(
                    "raft index {} is {behind} behind the most advanced member ({max_index})",
                    status.raft_index
                ),
            );
        }
        judge_db(status, member.clone(), t, findings);
        match (&d.metrics, &d.metrics_error) {
            (Some(metrics), _) => judge_metrics(metrics, member.clone(), now, t, findings),
            (None, Some(error)) => findings.add(
                Code::MetricsUnavailable,
                Severity::Warning,
                member.clone(),
                error.clone(),
            ),
            (None, None) => {}
        }
    }
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
}

fn judge_db(
    status: &super::MemberStatus,
    member: Option<String>,
    t: &super::Thresholds,
    findings: &mut Findings,
) {
    let size = status.db_size.max(0) as f64;
    if let Some(quota) = status.db_size_quota.filter(|q| *q > 0) {
        let share = size / quota as f64;
        if share >= t.quota_warning {
            findings.add(
                Code::DbQuota,
                if share >= t.quota_error {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                member.clone(),
                format!(
                    "database {} is {:.0}% of the quota {}",
                    mib(size),
                    share * 100.0,
                    mib(quota as f64)
                ),
            );
        }
    }
    let in_use = status.db_size_in_use.max(0) as f64;
    let free = (size - in_use).max(0.0);
    if size > 0.0
        && free / size >= t.fragmentation_share
        && free >= t.fragmentation_min_free_bytes as f64
    {
        findings.add(
            Code::DbFragmented,
            Severity::Warning,
            member,
            format!(
                "database file {} but only {} in use: {} ({:.0}%) is free pages; defragmenting returns it",
                mib(size),
                mib(in_use),
                mib(free),
                free / size * 100.0
            ),
        );
    }
}

fn judge_metrics(
    metrics: &super::MemberMetrics,
    member: Option<String>,
    now: f64,
    t: &super::Thresholds,
    findings: &mut Findings,
) {
    let enough = |count: u64| count >= t.min_histogram_samples;
    let ms = |seconds: f64| seconds * 1000.0;
    if let Some(wal) = metrics.wal_fsync.filter(|s| enough(s.count))
        && wal.p99_seconds > t.wal_fsync_p99_seconds
    {
        findings.add(
            Code::WalFsyncSlow,
            Severity::Warning,
            member.clone(),
            format!(
                "WAL fsync p99 {:.1} ms over {} fsyncs (guidance < {:.0} ms)",
                ms(wal.p99_seconds),
                wal.count,
                ms(t.wal_fsync_p99_seconds)
            ),
        );
    }
    if let Some(commit) = metrics.backend_commit.filter(|s| enough(s.count))
        && commit.p99_seconds > t.backend_commit_p99_seconds
    {
        findings.add(
            Code::BackendCommitSlow,
            Severity::Warning,
            member.clone(),
            format!(
                "backend commit p99 {:.1} ms over {} commits (guidance < {:.0} ms)",
                ms(commit.p99_seconds),
                commit.count,
                ms(t.backend_commit_p99_seconds)
            ),
        );
    }
    for (peer, rtt) in &metrics.peer_round_trip {
        if rtt.count >= 10 && rtt.p99_seconds > t.peer_round_trip_p99_seconds {
            findings.add(
                Code::PeerRoundTripHigh,
                Severity::Warning,
                member.clone(),
                format!(
                    "round trip to peer {peer}: p99 {:.1} ms over {} probes (threshold {:.0} ms)",
                    ms(rtt.p99_seconds),
                    rtt.count,
                    ms(t.peer_round_trip_p99_seconds)
                ),
            );
        }
    }
    // Counters since the member started, as a rate per 15 minutes; a member up
    // for less than 15 minutes is judged on its count so far.
    let uptime = metrics
        .process_start_time_seconds
        .map(|start| (now - start).max(0.0));
    let per_15m = |count: f64| match uptime {
        Some(up) if up > 900.0 => count / up * 900.0,
        _ => count,
    };
    let uptime_text = uptime.map_or_else(String::new, |up| format!(" in {:.0} s of uptime", up));
    if let Some(changes) = metrics.leader_changes_seen
        && per_15m(changes) >= t.leader_changes_per_15m
    {
        findings.add(
            Code::LeaderChangesFrequent,
            Severity::Warning,
            member.clone(),
            format!(
                "{changes:.0} leader changes{uptime_text} ({:.1} per 15 min, threshold {})",
                per_15m(changes),
                t.leader_changes_per_15m
            ),
        );
    }
    if let Some(failed) = metrics.proposals_failed
        && per_15m(failed) >= t.proposals_failed_per_15m
    {
        findings.add(
            Code::ProposalsFailed,
            Severity::Warning,
            member.clone(),
            format!(
                "{failed:.0} failed proposals{uptime_text} ({:.1} per 15 min, threshold {})",
                per_15m(failed),
                t.proposals_failed_per_15m
            ),
        );
    }
    if let Some(pending) = metrics.proposals_pending
        && pending > t.proposals_pending
    {
        findings.add(
            Code::ProposalsPending,
            Severity::Warning,
            member,
            format!(
                "{pending:.0} proposals pending (threshold {})",
                t.proposals_pending
            ),
        );
    }
}

/// Across members: cluster ID, version, leader, term.
fn judge_agreement(answered: &[&Probe], findings: &mut Findings) {
    let describe = |values: &BTreeMap<String, Vec<String>>| {
        values
            .iter()
            .map(|(value, members)| format!("{value}: {}", members.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let group = |value: &dyn Fn(&super::MemberStatus) -> Option<String>| {
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for probe in answered {
            if let Some(v) = probe.diagnosis.status.as_ref().and_then(value) {
                groups.entry(v).or_default().push(probe.diagnosis.label());
            }
        }
        groups
    };
    let cluster_ids = group(&|s| Some(s.cluster_id.clone()));
    if cluster_ids.len() > 1 {
        let majority = cluster_ids
            .iter()
            .max_by_key(|(_, m)| m.len())
            .map(|(id, _)| id.clone());
        for (id, members) in &cluster_ids {
            if Some(id) != majority.as_ref()
                || cluster_ids.values().all(|m| m.len() == members.len())
            {
                for member in members {
                    findings.add(
                        Code::ClusterIdMismatch,
                        Severity::Error,
                        Some(member.clone()),
                        format!("cluster IDs: {}", describe(&cluster_ids)),
                    );
                }
            }
        }
    }
    let versions = group(&|s| Some(s.version.clone()));
    if versions.len() > 1 {
        findings.add(
            Code::VersionMismatch,
            Severity::Warning,
            None,
            format!("versions: {}", describe(&versions)),
        );
    }
    let leaders = group(&|s| (s.leader != "0").then(|| s.leader.clone()));
    if leaders.len() > 1 {
        findings.add(
            Code::LeaderMismatch,
            Severity::Error,
            None,
            format!("leaders named: {}", describe(&leaders)),
        );
    }
    let terms = group(&|s| Some(s.raft_term.to_string()));
    if terms.len() > 1 {
        findings.add(
            Code::RaftTermMismatch,
            Severity::Warning,
            None,
            format!("raft terms: {}", describe(&terms)),
        );
    }
    // Every member that answered Status but has no leader while none has one.
    let no_leader = answered
        .iter()
        .all(|p| p.status.as_ref().is_some_and(|s| s.leader == 0));
    if !answered.is_empty() && no_leader {
        findings.add(
            Code::QuorumLost,
            Severity::Error,
            None,
            format!(
                "none of the {} members that answered has a leader",
                answered.len()
            ),
        );
    }
}

/// Membership: agreement, unstarted members, learners, quorum.
fn judge_membership(
    reference: &[Member],
    probes: &[Probe],
    answered: &[&Probe],
    targets: &Targets,
    findings: &mut Findings,
) {
    let lists: BTreeMap<Vec<String>, Vec<String>> =
        answered.iter().fold(BTreeMap::new(), |mut groups, p| {
            if let Some(ids) = &p.diagnosis.member_ids {
                groups
                    .entry(ids.clone())
                    .or_default()
                    .push(p.diagnosis.label());
            }
            groups
        });
    if lists.len() > 1 {
        let text = lists
            .iter()
            .map(|(ids, members)| format!("[{}] from {}", ids.join(","), members.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        findings.add(
            Code::MembershipMismatch,
            Severity::Error,
            None,
            format!("member lists differ: {text}"),
        );
    }
    let reference_ids: BTreeSet<u64> = reference.iter().map(|m| m.id).collect();
    for probe in answered {
        if let Some(id) = probe.member_id()
            && !reference_ids.contains(&id)
        {
            findings.add(
                Code::EndpointNotMember,
                Severity::Warning,
                Some(probe.diagnosis.label()),
                format!(
                    "{} answers as member {} which is not in the member list",
                    probe.diagnosis.endpoint,
                    hex_id(id)
                ),
            );
        }
    }
    let mut down = 0;
    for member in reference {
        if member.is_learner {
            let index = probes
                .iter()
                .find(|p| p.member_id() == Some(member.id))
                .and_then(|p| p.status.as_ref())
                .map_or_else(String::new, |s| format!(" at raft index {}", s.raft_index));
            findings.add(
                Code::MemberLearner,
                Severity::Info,
                Some(if member.name.is_empty() {
                    hex_id(member.id)
                } else {
                    member.name.clone()
                }),
                format!("learner {}{index}", hex_id(member.id)),
            );
        }
        let unstarted = member.name.is_empty() || member.client_urls.is_empty();
        if unstarted {
            findings.add(
                Code::MemberUnstarted,
                Severity::Warning,
                Some(hex_id(member.id)),
                format!(
                    "member {} (peer URLs {}) has never started",
                    hex_id(member.id),
                    member.peer_urls.join(",")
                ),
            );
        }
        let probe = probes.iter().find(|p| {
            p.member_id() == Some(member.id)
                || member
                    .client_urls
                    .iter()
                    .any(|u| same_url(u, &p.diagnosis.endpoint))
        });
        match probe {
            Some(p) if !p.diagnosis.reachable && !p.auth_failed && !member.is_learner => down += 1,
            None if unstarted && !member.is_learner => down += 1,
            None if targets.discovered.is_none() && !unstarted => findings.add(
                Code::MemberNotProbed,
                Severity::Info,
                Some(member.name.clone()),
                format!(
                    "member {} at {} was not among the endpoints",
                    member.name,
                    member.client_urls.join(",")
                ),
            ),
            _ => {}
        }
    }
    let voters = reference.iter().filter(|m| !m.is_learner).count();
    let quorum = voters / 2 + 1;
    let tolerance = voters.saturating_sub(quorum);
    let already_lost = findings.0.iter().any(|f| f.code == Code::QuorumLost);
    if voters > 0 && down > tolerance && !already_lost {
        findings.add(
            Code::QuorumLost,
            Severity::Error,
            None,
            format!(
                "{down} of {voters} voting members are down or unstarted; quorum needs {quorum}"
            ),
        );
    } else if down > 0 && down == tolerance {
        findings.add(
            Code::QuorumAtRisk,
            Severity::Warning,
            None,
            format!("{down} of {voters} voting members are down or unstarted; one more failure loses quorum ({quorum} needed)"),
        );
    }
}

/// HashKV: every member at the same revision must hash the same.
fn judge_hash_kv(
    answered: &[&Probe],
    revision: Option<i64>,
    reference: Option<&[Member]>,
    findings: &mut Findings,
) -> Option<HashKvComparison> {
    let cluster_size = reference.map_or(answered.len(), <[Member]>::len);
    let Some(revision) = revision else {
        if cluster_size > 1 && answered.len() < 2 {
            findings.add(
                Code::HashkvSkipped,
                Severity::Info,
                None,
                format!("{} member(s) answered: nothing to compare", answered.len()),
            );
        }
        return None;
    };
    let errors: Vec<String> = answered
        .iter()
        .filter_map(|p| {
            Some(format!(
                "{}: {}",
                p.diagnosis.label(),
                p.hash_kv_error.as_ref()?
            ))
        })
        .collect();
    let hashes: Vec<(&Probe, u32, i64)> = answered
        .iter()
        .filter_map(|p| p.hash_kv.map(|(h, c)| (*p, h, c)))
        .collect();
    if !errors.is_empty() {
        findings.add(
            Code::HashkvSkipped,
            Severity::Info,
            None,
            format!(
                "HashKV at revision {revision} failed on {}",
                errors.join("; ")
            ),
        );
    }
    if hashes.len() < 2 {
        return None;
    }
    let compacts: BTreeSet<i64> = hashes.iter().map(|(_, _, c)| *c).collect();
    if compacts.len() > 1 {
        findings.add(
            Code::HashkvSkipped,
            Severity::Info,
            None,
            format!("members are compacted at different revisions ({compacts:?}); HashKV at {revision} is not comparable"),
        );
        return None;
    }
    let mut groups: BTreeMap<u32, Vec<String>> = BTreeMap::new();
    for (probe, hash, _) in &hashes {
        groups
            .entry(*hash)
            .or_default()
            .push(probe.diagnosis.label());
    }
    let consistent = groups.len() == 1;
    if !consistent {
        let largest = groups.values().map(Vec::len).max().unwrap_or(0);
        let majority: Vec<u32> = groups
            .iter()
            .filter(|(_, m)| m.len() == largest)
            .map(|(h, _)| *h)
            .collect();
        // With a tie nobody is known good: every member is reported.
        let good = (majority.len() == 1).then(|| majority[0]);
        let text = groups
            .iter()
            .map(|(hash, members)| format!("{hash} on {}", members.join(", ")))
            .collect::<Vec<_>>()
            .join("; ");
        for (probe, hash, _) in &hashes {
            if Some(*hash) != good {
                findings.add(
                    Code::HashkvMismatch,
                    Severity::Error,
                    Some(probe.diagnosis.label()),
                    format!("HashKV at revision {revision}: {text}"),
                );
            }
        }
    }
    Some(HashKvComparison {
        revision,
        consistent,
    })
}
