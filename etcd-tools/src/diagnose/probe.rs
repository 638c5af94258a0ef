//! Talking to the members: discovery, the per-member probe, HashKV.

use std::future::Future;
use std::time::Instant;

use etcd_rpc::proto::{AlarmMember, AlarmType, Member, RangeRequest, StatusResponse};
use etcd_rpc::{Client, Error as RpcError};
use tokio::task::JoinSet;

use super::metrics::MemberMetrics;
use super::{DiagnoseOptions, MemberDiagnosis, MemberStatus, hex_id};

/// Which endpoints to probe, and what discovery saw.
#[derive(Debug, Clone)]
pub(crate) struct Targets {
    /// Endpoints to probe.
    pub endpoints: Vec<String>,
    /// With `--cluster`: the member list discovery read.
    pub discovered: Option<Vec<Member>>,
    /// With `--cluster`: why discovery failed (the given endpoints are probed instead).
    pub discovery_error: Option<String>,
}

/// Everything one member answered.
#[derive(Debug, Clone)]
pub(crate) struct Probe {
    pub diagnosis: MemberDiagnosis,
    pub client: Option<Client>,
    pub status: Option<StatusResponse>,
    pub members: Option<Vec<Member>>,
    pub alarms: Option<Vec<AlarmMember>>,
    /// HashKV answer: hash and compact revision.
    pub hash_kv: Option<(u32, i64)>,
    pub hash_kv_error: Option<String>,
    /// The member answered but rejected the credentials.
    pub auth_failed: bool,
    /// Calls after Status that failed (member list, alarm list).
    pub call_errors: Vec<String>,
}

impl Probe {
    pub fn member_id(&self) -> Option<u64> {
        self.status
            .as_ref()
            .and_then(|s| s.header)
            .map(|h| h.member_id)
    }

    pub fn cluster_id(&self) -> Option<u64> {
        self.status
            .as_ref()
            .and_then(|s| s.header)
            .map(|h| h.cluster_id)
    }

    pub fn revision(&self) -> Option<i64> {
        self.status
            .as_ref()
            .and_then(|s| s.header)
            .map(|h| h.revision)
    }
}

/// An error with its causes, on one line.
pub(crate) fn error_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = source.and_then(std::error::Error::source);
    }
    text
}

/// The endpoints to probe: as given, or with `cluster` every started member's
/// first client URL from the member list.
pub(crate) async fn targets(options: &DiagnoseOptions) -> Targets {
    let given = Targets {
        endpoints: options.endpoints.clone(),
        discovered: None,
        discovery_error: None,
    };
    if !options.cluster {
        return given;
    }
    let discover = async {
        let client = Client::connect(&options.endpoints, options.connect.clone()).await?;
        client.member_list().await
    };
    let budget = options.connect.dial_timeout + options.connect.request_timeout.unwrap_or_default();
    match tokio::time::timeout(budget, discover).await {
        Ok(Ok(list)) => {
            let endpoints = list
                .members
                .iter()
                .filter_map(|member| member.client_urls.first().cloned())
                .collect();
            Targets {
                endpoints,
                discovered: Some(list.members),
                discovery_error: None,
            }
        }
        Ok(Err(error)) => Targets {
            discovery_error: Some(error_text(&error)),
            ..given
        },
        Err(_) => Targets {
            discovery_error: Some(format!("no member list within {budget:?}")),
            ..given
        },
    }
}

/// Probes every endpoint at once.
pub(crate) async fn probe_all(endpoints: &[String], options: &DiagnoseOptions) -> Vec<Probe> {
    join_in_order(endpoints.iter().map(|endpoint| {
        let endpoint = endpoint.clone();
        let options = options.clone();
        async move { probe(endpoint, options).await }
    }))
    .await
}

fn millis(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1000.0
}

/// One member: Status within the dial timeout, then the rest at once.
async fn probe(endpoint: String, options: DiagnoseOptions) -> Probe {
    let mut diagnosis = MemberDiagnosis {
        endpoint: endpoint.clone(),
        name: None,
        id: None,
        reachable: false,
        error: None,
        status_ms: None,
        linearizable_read_ms: None,
        linearizable_read_error: None,
        serializable_read_ms: None,
        serializable_read_error: None,
        status: None,
        member_ids: None,
        metrics: None,
        metrics_error: None,
        hash_kv: None,
    };
    let mut probe = Probe {
        diagnosis: diagnosis.clone(),
        client: None,
        status: None,
        members: None,
        alarms: None,
        hash_kv: None,
        hash_kv_error: None,
        auth_failed: false,
        call_errors: Vec::new(),
    };
    let started = Instant::now();
    let dial = options.connect.dial_timeout;
    let first_answer = async {
        let client =
            Client::connect(std::slice::from_ref(&endpoint), options.connect.clone()).await?;
        let status = client.status().await?;
        Ok::<_, RpcError>((client, status))
    };
    let (client, status) = match tokio::time::timeout(dial, first_answer).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(error)) => {
            probe.auth_failed = matches!(
                error,
                RpcError::AuthFailed { .. } | RpcError::InvalidAuthToken { .. }
            );
            diagnosis.error = Some(error_text(&error));
            probe.diagnosis = diagnosis;
            return probe;
        }
        Err(_) => {
            diagnosis.error = Some(format!(
                "no Status answer within the dial timeout ({dial:?})"
            ));
            probe.diagnosis = diagnosis;
            return probe;
        }
    };
    diagnosis.status_ms = Some(millis(started));
    diagnosis.reachable = true;
    let header = status.header.unwrap_or_default();
    diagnosis.id = Some(hex_id(header.member_id));

    let read = |serializable: bool| {
        let client = client.clone();
        async move {
            let started = Instant::now();
            let result = client
                .range(RangeRequest {
                    key: b"health".to_vec(),
                    serializable,
                    count_only: true,
                    ..Default::default()
                })
                .await;
            match result {
                // Like etcdctl endpoint health: a permission error still went
                // through the member (and, linearizable, through the leader).
                Ok(_) | Err(RpcError::PermissionDenied { .. }) => Ok(millis(started)),
                Err(error) => Err(error_text(&error)),
            }
        }
    };
    let metrics = async {
        if !options.metrics {
            return None;
        }
        Some(
            etcd_rpc::http::fetch_metrics(&endpoint, &options.connect)
                .await
                .map(|text| MemberMetrics::parse(&text))
                .map_err(|error| error_text(&error)),
        )
    };
    let (members, alarms, linearizable, serializable, metrics) = tokio::join!(
        client.member_list(),
        client.alarm_list(),
        read(false),
        read(true),
        metrics,
    );
    match linearizable {
        Ok(ms) => diagnosis.linearizable_read_ms = Some(ms),
        Err(error) => diagnosis.linearizable_read_error = Some(error),
    }
    match serializable {
        Ok(ms) => diagnosis.serializable_read_ms = Some(ms),
        Err(error) => diagnosis.serializable_read_error = Some(error),
    }
    match metrics {
        Some(Ok(metrics)) if metrics.is_empty() => {
            diagnosis.metrics_error = Some(format!(
                "no etcd metric in the page ({} unreadable lines)",
                metrics.unreadable_lines
            ));
        }
        Some(Ok(metrics)) => diagnosis.metrics = Some(metrics),
        Some(Err(error)) => diagnosis.metrics_error = Some(error),
        None => {}
    }
    let mut errors = Vec::new();
    match members {
        Ok(list) => {
            if let Some(me) = list.members.iter().find(|m| m.id == header.member_id) {
                diagnosis.name = Some(me.name.clone());
            }
            let mut ids: Vec<String> = list.members.iter().map(|m| hex_id(m.id)).collect();
            ids.sort();
            diagnosis.member_ids = Some(ids);
            probe.members = Some(list.members);
        }
        Err(error) => errors.push(format!("member list: {}", error_text(&error))),
    }
    match alarms {
        Ok(list) => probe.alarms = Some(list.alarms),
        Err(error) => errors.push(format!("alarm list: {}", error_text(&error))),
    }
    if !errors.is_empty() {
        diagnosis.error = Some(errors.join("; "));
    }
    probe.call_errors = errors;
    let quota = (status.db_size_quota > 0)
        .then_some(status.db_size_quota)
        .or_else(|| {
            diagnosis
                .metrics
                .as_ref()
                .and_then(|m| m.quota_backend_bytes)
                .filter(|q| *q > 0.0)
                .map(|q| q as i64)
        });
    diagnosis.status = Some(MemberStatus {
        cluster_id: hex_id(header.cluster_id),
        version: status.version.clone(),
        db_size: status.db_size,
        db_size_in_use: status.db_size_in_use,
        db_size_quota: quota,
        leader: hex_id(status.leader),
        raft_term: status.raft_term,
        raft_index: status.raft_index,
        raft_applied_index: status.raft_applied_index,
        revision: header.revision,
        is_learner: status.is_learner,
        errors: status.errors.clone(),
    });
    probe.diagnosis = diagnosis;
    probe.client = Some(client);
    probe.status = Some(status);
    probe
}

/// HashKV at the lowest current revision of the members that answered, on all
/// of them at once. Returns the revision, or `None` when fewer than two answered.
pub(crate) async fn compare_hash_kv(probes: &mut [Probe]) -> Option<i64> {
    let revision = probes.iter().filter_map(Probe::revision).min()?;
    let clients: Vec<(usize, Client)> = probes
        .iter()
        .enumerate()
        .filter_map(|(i, p)| Some((i, p.client.clone()?)))
        .collect();
    if clients.len() < 2 {
        return None;
    }
    let hash_all = |revision: i64| {
        join_in_order(clients.iter().map(move |(_, client)| {
            let client = client.clone();
            async move { client.hash_kv(revision).await }
        }))
    };
    let mut answers = hash_all(revision).await;
    let mut revision = revision;
    // etcd refuses HashKV at the compacted revision itself, which is the
    // common revision when nothing was written since the compaction. Then
    // every member is at that revision: hash their newest and compare if all
    // answered at the same revision.
    if answers
        .iter()
        .any(|a| matches!(a, Err(RpcError::Compacted { .. })))
    {
        let newest = hash_all(0).await;
        let revisions: std::collections::BTreeSet<i64> = newest
            .iter()
            .filter_map(|a| a.as_ref().ok()?.header.map(|h| h.revision))
            .collect();
        if revisions.len() == 1 && newest.iter().all(Result::is_ok) {
            revision = revisions.into_iter().next().unwrap_or(revision);
            answers = newest;
        }
    }
    for ((index, _), answer) in clients.iter().zip(answers) {
        let probe = &mut probes[*index];
        match answer {
            Ok(response) => {
                probe.hash_kv = Some((response.hash, response.compact_revision));
                probe.diagnosis.hash_kv = Some(response.hash);
            }
            Err(error) => probe.hash_kv_error = Some(error_text(&error)),
        }
    }
    Some(revision)
}

/// The alarm's name as etcdctl prints it.
pub(crate) fn alarm_name(alarm: i32) -> String {
    match AlarmType::try_from(alarm) {
        Ok(AlarmType::Nospace) => "NOSPACE".to_string(),
        Ok(AlarmType::Corrupt) => "CORRUPT".to_string(),
        Ok(AlarmType::None) => "NONE".to_string(),
        Err(_) => format!("UNKNOWN({alarm})"),
    }
}

/// Runs the futures as concurrent tasks; outputs in input order.
async fn join_in_order<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut tasks = JoinSet::new();
    let mut count = 0;
    for (index, future) in futures.enumerate() {
        tasks.spawn(async move { (index, future.await) });
        count += 1;
    }
    let mut outputs: Vec<Option<F::Output>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((index, output)) => outputs[index] = Some(output),
            Err(error) => {
                if let Ok(panic) = error.try_into_panic() {
                    std::panic::resume_unwind(panic);
                }
            }
        }
    }
    outputs.into_iter().flatten().collect()
}
