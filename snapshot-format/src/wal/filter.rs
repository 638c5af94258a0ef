//! Choosing entries for a dump: by kind (etcd-dump-logs' `--entry-type` names) and by
//! index range.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use super::payload::EntryPayload;
use super::reader::WalEntry;
use super::record::EntryType;

/// The category of an entry, from its decoded payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum EntryKind {
    /// A conf change (v1 or v2).
    ConfigChange,
    /// A normal entry without data (leader no-op).
    Empty,
    /// A v2 `Request` stored directly.
    Request,
    /// A normal entry that decodes as nothing etcd writes.
    UnknownNormal,
    /// `InternalRaftRequest` range.
    #[serde(rename = "IRRRange")]
    IrrRange,
    /// `InternalRaftRequest` put.
    #[serde(rename = "IRRPut")]
    IrrPut,
    /// `InternalRaftRequest` delete range.
    #[serde(rename = "IRRDeleteRange")]
    IrrDeleteRange,
    /// `InternalRaftRequest` txn.
    #[serde(rename = "IRRTxn")]
    IrrTxn,
    /// `InternalRaftRequest` compaction.
    #[serde(rename = "IRRCompaction")]
    IrrCompaction,
    /// `InternalRaftRequest` lease grant.
    #[serde(rename = "IRRLeaseGrant")]
    IrrLeaseGrant,
    /// `InternalRaftRequest` lease revoke.
    #[serde(rename = "IRRLeaseRevoke")]
    IrrLeaseRevoke,
    /// `InternalRaftRequest` lease checkpoint.
    #[serde(rename = "IRRLeaseCheckpoint")]
    IrrLeaseCheckpoint,
    /// `InternalRaftRequest` alarm.
    #[serde(rename = "IRRAlarm")]
    IrrAlarm,
    /// `InternalRaftRequest` auth operation.
    #[serde(rename = "IRRAuth")]
    IrrAuth,
    /// `InternalRaftRequest` carrying a v2 request.
    #[serde(rename = "IRRV2")]
    IrrV2,
    /// `InternalRaftRequest` cluster version / member attributes / downgrade (3.5).
    #[serde(rename = "IRRCluster")]
    IrrCluster,
    /// `InternalRaftRequest` with no operation set.
    #[serde(rename = "IRRNone")]
    IrrNone,
}

impl EntryKind {
    /// Every kind.
    pub const ALL: [EntryKind; 17] = [
        EntryKind::ConfigChange,
        EntryKind::Empty,
        EntryKind::Request,
        EntryKind::UnknownNormal,
        EntryKind::IrrRange,
        EntryKind::IrrPut,
        EntryKind::IrrDeleteRange,
        EntryKind::IrrTxn,
        EntryKind::IrrCompaction,
        EntryKind::IrrLeaseGrant,
        EntryKind::IrrLeaseRevoke,
        EntryKind::IrrLeaseCheckpoint,
        EntryKind::IrrAlarm,
        EntryKind::IrrAuth,
        EntryKind::IrrV2,
        EntryKind::IrrCluster,
        EntryKind::IrrNone,
    ];

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            EntryKind::ConfigChange => "ConfigChange",
            EntryKind::Empty => "Empty",
            EntryKind::Request => "Request",
            EntryKind::UnknownNormal => "UnknownNormal",
            EntryKind::IrrRange => "IRRRange",
            EntryKind::IrrPut => "IRRPut",
            EntryKind::IrrDeleteRange => "IRRDeleteRange",
            EntryKind::IrrTxn => "IRRTxn",
            EntryKind::IrrCompaction => "IRRCompaction",
            EntryKind::IrrLeaseGrant => "IRRLeaseGrant",
            EntryKind::IrrLeaseRevoke => "IRRLeaseRevoke",
            EntryKind::IrrLeaseCheckpoint => "IRRLeaseCheckpoint",
            EntryKind::IrrAlarm => "IRRAlarm",
            EntryKind::IrrAuth => "IRRAuth",
            EntryKind::IrrV2 => "IRRV2",
            EntryKind::IrrCluster => "IRRCluster",
            EntryKind::IrrNone => "IRRNone",
        }
    }

    /// Whether this is an `InternalRaftRequest` kind.
    pub fn is_internal_raft_request(self) -> bool {
        self.name().starts_with("IRR")
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One `--entry-type` value: a kind, or one of etcd-dump-logs' groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntrySelector {
    /// `Normal`: every normal entry (requests, v2 requests, empty and undecodable ones).
    Normal,
    /// `InternalRaftRequest`: every v3 request, and empty entries (whose empty data
    /// decodes as one, as in etcd-dump-logs).
    InternalRaftRequest,
    /// One kind (`ConfigChange`, `Request`, `IRRPut`, …).
    Kind(EntryKind),
}

impl EntrySelector {
    /// The names accepted by [`EntrySelector::from_str`].
    pub fn names() -> Vec<&'static str> {
        let mut names = vec!["Normal", "InternalRaftRequest"];
        names.extend(EntryKind::ALL.iter().map(|k| k.name()));
        names
    }

    /// Whether an entry of kind `kind` is selected.
    pub fn matches(self, kind: EntryKind) -> bool {
        match self {
            EntrySelector::Normal => kind != EntryKind::ConfigChange,
            EntrySelector::InternalRaftRequest => {
                kind.is_internal_raft_request() || kind == EntryKind::Empty
            }
            EntrySelector::Kind(k) => k == kind,
        }
    }
}

impl FromStr for EntrySelector {
    type Err = String;

    /// Parses a name, ignoring case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("Normal") {
            return Ok(EntrySelector::Normal);
        }
        if s.eq_ignore_ascii_case("InternalRaftRequest") {
            return Ok(EntrySelector::InternalRaftRequest);
        }
        EntryKind::ALL
            .iter()
            .find(|k| k.name().eq_ignore_ascii_case(s))
            .map(|&k| EntrySelector::Kind(k))
            .ok_or_else(|| {
                format!(
                    "{s:?} is not an entry type; use one or more of: {}",
                    EntrySelector::names().join(", ")
                )
            })
    }
}

/// Which entries to dump.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFilter {
    /// Kinds to keep; empty keeps every entry.
    pub selectors: Vec<EntrySelector>,
    /// Lowest index kept (inclusive). Note that etcd-dump-logs' `--start-index N` shows
    /// the entries *after* N.
    pub start_index: Option<u64>,
    /// Highest index kept (inclusive).
    pub end_index: Option<u64>,
}

impl EntryFilter {
    /// Parses a comma-separated `--entry-type` list.
    pub fn with_types(mut self, list: &str) -> Result<Self, String> {
        for name in list.split(',').filter(|n| !n.trim().is_empty()) {
            self.selectors.push(name.parse()?);
        }
        Ok(self)
    }

    /// Whether `index` is inside the range.
    pub fn index_matches(&self, index: u64) -> bool {
        self.start_index.is_none_or(|s| index >= s) && self.end_index.is_none_or(|e| index <= e)
    }

    /// Whether an entry of kind `kind` is selected.
    pub fn kind_matches(&self, kind: EntryKind) -> bool {
        self.selectors.is_empty() || self.selectors.iter().any(|s| s.matches(kind))
    }

    /// The entries of `entries` this filter keeps, decoded.
    pub fn apply<'a>(
        &'a self,
        entries: &'a [WalEntry],
    ) -> impl Iterator<Item = EntryDump<'a>> + 'a {
        // Entries are in index order: skip to the start without decoding.
        let first = self
            .start_index
            .map_or(0, |s| entries.partition_point(|e| e.index < s));
        entries[first..]
            .iter()
            .take_while(|e| self.end_index.is_none_or(|end| e.index <= end))
            .filter_map(|entry| {
                let payload = entry.payload();
                self.kind_matches(payload.kind())
                    .then_some(EntryDump { entry, payload })
            })
    }
}

/// One entry with its decoded payload: a dump line.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EntryDump<'a> {
    /// The entry.
    #[serde(flatten)]
    pub entry: &'a WalEntry,
    /// What it says.
    pub payload: EntryPayload,
}

impl EntryDump<'_> {
    /// The entry's kind.
    pub fn kind(&self) -> EntryKind {
        self.payload.kind()
    }
}

impl fmt::Display for EntryDump<'_> {
    /// etcd-dump-logs' line: `term index type data`, tab-separated.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = match self.entry.entry_type {
            EntryType::Normal => "norm".to_string(),
            other => other.short_name(),
        };
        write!(
            f,
            "{:>4}\t{:>10}\t{}\t{}",
            self.entry.term, self.entry.index, short, self.payload
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_selectors() {
        let f = EntryFilter::default()
            .with_types("IRRPut, normal,ConfigChange")
            .unwrap();
        assert_eq!(
            f.selectors,
            vec![
                EntrySelector::Kind(EntryKind::IrrPut),
                EntrySelector::Normal,
                EntrySelector::Kind(EntryKind::ConfigChange)
            ]
        );
        assert!(EntryFilter::default().with_types("Bogus").is_err());
        assert!(EntrySelector::InternalRaftRequest.matches(EntryKind::Empty));
        assert!(!EntrySelector::InternalRaftRequest.matches(EntryKind::Request));
        assert!(EntrySelector::Normal.matches(EntryKind::UnknownNormal));
        assert!(!EntrySelector::Normal.matches(EntryKind::ConfigChange));
    }
}
