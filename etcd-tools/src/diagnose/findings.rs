//! The finding codes of `salvor etcd diagnose`: what each means and what to do.

use serde::Serialize;

pub use crate::check::Severity;

/// One finding about a live cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable code, e.g. `ENDPOINT_UNREACHABLE`.
    pub code: Code,
    /// Severity.
    pub severity: Severity,
    /// The member it is about (name, else ID, else endpoint); `None` for the cluster.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// What was measured or seen.
    pub evidence: String,
    /// What it means.
    pub meaning: &'static str,
    /// What to do.
    pub remedy: &'static str,
}

impl Finding {
    /// A finding with the code's meaning and remedy.
    pub fn new(code: Code, severity: Severity, member: Option<String>, evidence: String) -> Self {
        Finding {
            code,
            severity,
            member,
            evidence,
            meaning: code.meaning(),
            remedy: code.remedy(),
        }
    }
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $text:literal, $meaning:literal, $remedy:literal; )*) => {
        /// Every finding code of the diagnosis.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Code {
            $( $(#[$doc])* $variant, )*
        }

        impl Code {
            /// Every code, in declaration order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as printed, e.g. `ENDPOINT_UNREACHABLE`.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text,)* }
            }

            /// What a finding of this code means.
            pub fn meaning(self) -> &'static str {
                match self { $(Code::$variant => $meaning,)* }
            }

            /// What to do about it.
            pub fn remedy(self) -> &'static str {
                match self { $(Code::$variant => $remedy,)* }
            }
        }
    };
}

codes! {
    /// No endpoint answered at all.
    ClusterUnreachable = "CLUSTER_UNREACHABLE",
        "no endpoint answered: the cluster is down, the endpoints are wrong, or the network or TLS settings keep the client out",
        "check the endpoints, --cacert/--cert/--key and that etcd runs (`systemctl status etcd`, the static pod, its logs); if every member is gone, restore from the last snapshot";
    /// One member did not answer within the dial timeout.
    EndpointUnreachable = "ENDPOINT_UNREACHABLE",
        "this member did not answer a Status call within the dial timeout: it is down, frozen, or cut off; the cluster runs with one fault tolerance less",
        "look at the member's process and logs; restart it. If its data is damaged (`salvor etcd check DATA_DIR`), replace it: `etcdctl member remove`, wipe the data dir, `etcdctl member add`, start it with --initial-cluster-state existing";
    /// The member rejected the credentials.
    AuthFailed = "AUTH_FAILED",
        "the member answered but rejected the user name or password, so nothing else could be asked",
        "check --user and the password (SALVOR_PASSWORD); the user needs read access to the key `health` for the read checks";
    /// Quorum is lost.
    QuorumLost = "QUORUM_LOST",
        "fewer voting members answer than a majority: the cluster accepts no writes and no linearizable reads (Kubernetes stops)",
        "bring members back first (restart them). If a majority is lost for good, recover from quorum loss with `salvor etcd recover plan|apply` (docs/runbooks/quorum-loss.md)";
    /// One more failure loses quorum.
    QuorumAtRisk = "QUORUM_AT_RISK",
        "the cluster has quorum, but one more member failure loses it",
        "bring the unreachable members back before any maintenance (no rolling restarts, no member replacement now)";
    /// A linearizable read failed.
    LinearizableReadFailed = "LINEARIZABLE_READ_FAILED",
        "a linearizable read (one that goes through the leader) failed on this member: it has no leader, no quorum, or cannot reach the leader",
        "check the leader and the network between members (peer round trip); look for `lost leader`/`election` in the logs";
    /// A serializable read failed.
    SerializableReadFailed = "SERIALIZABLE_READ_FAILED",
        "a serializable read (served from the member's own data) failed: the member's store does not answer",
        "look at the member's logs; restart it; check its data with `salvor etcd check`";
    /// Reads are slow.
    SlowRead = "SLOW_READ",
        "a read took longer than the threshold: the member, its disk or the leader is overloaded",
        "check the disk latency findings, CPU and memory of the member, and expensive requests in its log (`took too long`)";
    /// Members report different cluster IDs.
    ClusterIdMismatch = "CLUSTER_ID_MISMATCH",
        "the endpoints belong to different clusters (a member was re-created as a new cluster, or wrong endpoints)",
        "check the endpoints; a member of another cluster must be removed and re-added from scratch";
    /// Members run different versions.
    VersionMismatch = "VERSION_MISMATCH",
        "members run different etcd versions: normal during a rolling upgrade, a risk if left so",
        "finish the upgrade (or downgrade) so every member runs the same version";
    /// A member has no leader.
    NoLeader = "NO_LEADER",
        "the member sees no leader: an election is in progress or it is cut off from the majority",
        "check the network between members and the peer round trip; if it persists on all members, see QUORUM_LOST";
    /// Members disagree about the leader.
    LeaderMismatch = "LEADER_MISMATCH",
        "members name different leaders: a member is partitioned or lagging behind an election",
        "check connectivity between members (peer URLs, firewalls); run again to rule out an election in progress";
    /// Members are in different raft terms.
    RaftTermMismatch = "RAFT_TERM_MISMATCH",
        "members are in different raft terms: an election just happened or a member cannot hear the leader",
        "run again; if it persists, check the member's connectivity and logs";
    /// A member's raft index lags.
    RaftIndexLag = "RAFT_INDEX_LAG",
        "this member's raft index is far behind the others': it is catching up or cannot keep up",
        "check the member's disk (WAL fsync) and network; a member that never catches up should be replaced";
    /// Committed entries not yet applied.
    ApplyLag = "APPLY_LAG",
        "entries are committed but not applied: the backend is slow; etcd rejects proposals beyond 5000 ('too many requests')",
        "check backend commit latency and the disk; look for expensive requests (large ranges) in the log";
    /// Members disagree about membership.
    MembershipMismatch = "MEMBERSHIP_MISMATCH",
        "members list different members: a member change did not reach everyone, or a member belongs to another configuration",
        "run `etcdctl member list` against each member; remove the stray member and re-add it cleanly";
    /// A member was added but never started.
    MemberUnstarted = "MEMBER_UNSTARTED",
        "a member was added (`member add`) but never started: it counts towards quorum without voting, so the cluster tolerates one failure less",
        "start the new member with --initial-cluster-state existing, or remove it (`etcdctl member remove ID`)";
    /// A learner is present.
    MemberLearner = "MEMBER_LEARNER",
        "a non-voting learner is part of the cluster",
        "promote it once it has caught up (`etcdctl member promote ID`)";
    /// A member is not among the probed endpoints.
    MemberNotProbed = "MEMBER_NOT_PROBED",
        "a member of the cluster was not among the endpoints, so it was not diagnosed",
        "pass every member's endpoint, or use --cluster to discover them";
    /// An endpoint's member is not in the member list.
    EndpointNotMember = "ENDPOINT_NOT_MEMBER",
        "the member answering at this endpoint is not in the member list the others report (removed, or another cluster)",
        "check the endpoint; stop a removed member that still runs";
    /// The database is close to its quota.
    DbQuota = "DB_QUOTA",
        "the database is close to --quota-backend-bytes: when it reaches it, etcd raises NOSPACE and refuses writes",
        "compact old revisions (`etcdctl compact REV`, or --auto-compaction-retention), defragment each member (`etcdctl defrag`), or raise --quota-backend-bytes (at most 8 GiB recommended)";
    /// The database is fragmented.
    DbFragmented = "DB_FRAGMENTED",
        "much of the database file is free pages left by compaction: the file, and the quota it counts against, stays large",
        "defragment each member, one at a time, followers first (`etcdctl defrag --endpoints=URL`, or `salvor etcd defrag --data-dir` offline); defrag blocks the member while it runs";
    /// A NOSPACE alarm is raised.
    AlarmNospace = "ALARM_NOSPACE",
        "the NOSPACE alarm is raised: the cluster accepts only reads and deletes until it is disarmed (Kubernetes cannot write)",
        "1. compact: `etcdctl compact $(etcdctl endpoint status -w json | jq '.[0].Status.header.revision')`; 2. defragment every member: `etcdctl defrag --cluster`; 3. disarm: `etcdctl alarm disarm`; raise --quota-backend-bytes if the data really needs the space";
    /// A CORRUPT alarm is raised.
    AlarmCorrupt = "ALARM_CORRUPT",
        "the CORRUPT alarm is raised: a member's data differs from the others'; the cluster refuses writes",
        "find the diverging member (HASHKV_MISMATCH, `etcdctl endpoint hashkv --cluster`), stop it, keep a copy of its data dir, replace it (`member remove`, wipe, `member add`, start with --initial-cluster-state existing), then `etcdctl alarm disarm`";
    /// HashKV differs between members.
    HashkvMismatch = "HASHKV_MISMATCH",
        "members hash their key space differently at the same revision: their data diverged (this member differs from the majority)",
        "stop the diverging member and keep its data dir for analysis; replace it from the healthy majority (`member remove`, wipe the data dir, `member add`, start with --initial-cluster-state existing)";
    /// HashKV could not be compared.
    HashkvSkipped = "HASHKV_SKIPPED",
        "HashKV could not be compared across members (fewer than two answered, the revision was compacted, or compactions differ)",
        "run again; compare with `etcdctl endpoint hashkv --cluster`";
    /// A call other than Status failed.
    CallFailed = "CALL_FAILED",
        "a call of the diagnosis failed on this member (member list or alarm list), so part of the picture is missing",
        "read the evidence: a permission error needs a user with the root role (alarms and membership are admin calls); a timeout points at an overloaded member";
    /// The metrics page could not be read.
    MetricsUnavailable = "METRICS_UNAVAILABLE",
        "the member's /metrics could not be fetched or read, so disk and network latency were not judged",
        "check that /metrics is served on the client URL (or --listen-metrics-urls) and reachable with the same TLS settings";
    /// WAL fsync is slow.
    WalFsyncSlow = "WAL_FSYNC_SLOW",
        "WAL fsync p99 is above etcd's guidance (10 ms): every write waits for it, and slow fsyncs cause missed heartbeats and elections",
        "put the WAL on a dedicated fast disk (SSD/NVMe, --wal-dir), away from noisy neighbours; check `iostat`; raise the process' I/O priority (`ionice`)";
    /// Backend commit is slow.
    BackendCommitSlow = "BACKEND_COMMIT_SLOW",
        "backend commit p99 is above etcd's guidance (25 ms): applying writes is slow, which raises latency and apply lag",
        "use a faster disk for the data dir; defragment a fragmented database; check memory pressure";
    /// Peer round trip is high.
    PeerRoundTripHigh = "PEER_ROUND_TRIP_HIGH",
        "the round trip to a peer is above the threshold: heartbeats and replication are slow, elections become likely",
        "check the network between members; in a wide-area cluster, raise --heartbeat-interval to about the round trip and --election-timeout to 10x that";
    /// Frequent leader changes.
    LeaderChangesFrequent = "LEADER_CHANGES_FREQUENT",
        "the member has seen many leader changes: elections interrupt writes, usually because of slow disks, CPU starvation or network trouble",
        "check the WAL fsync and peer round trip findings, CPU throttling and the election logs";
    /// Proposals failed.
    ProposalsFailed = "PROPOSALS_FAILED",
        "raft proposals failed on this member (usually during elections or loss of quorum)",
        "check for leader changes and quorum; look at the member's logs around the failures";
    /// Many proposals pending.
    ProposalsPending = "PROPOSALS_PENDING",
        "many proposals wait to be committed: the cluster cannot keep up with the write load",
        "check disk latency and the network; reduce the write load (Kubernetes events, leases)";
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Code {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Code::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == text)
            .ok_or_else(|| format!("unknown finding code {text:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for code in Code::ALL {
            assert!(seen.insert(code.as_str()), "{code} twice");
            assert_eq!(code.as_str().parse::<Code>(), Ok(*code));
            assert!(!code.meaning().is_empty() && !code.remedy().is_empty());
        }
    }

    /// docs/diagnose.md lists every code with its meaning.
    #[test]
    fn every_code_is_documented() {
        let doc = include_str!("../../../docs/diagnose.md");
        for code in Code::ALL {
            assert!(
                doc.contains(&format!("| `{code}` |")),
                "{code} is not in docs/diagnose.md"
            );
            assert!(
                doc.contains(code.meaning()),
                "{code}: meaning differs from docs/diagnose.md"
            );
        }
    }
}
