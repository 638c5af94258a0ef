//! Raft snapshot files (`member/snap/%016x-%016x.snap`, term and index) and their
//! relation to the WAL's snapshot records.
//!
//! A `.snap` file is `snappb.Snapshot {crc=1 uint32, data=2 bytes}` where `crc` is the
//! CRC-32C of `data`, and `data` is `raftpb.Snapshot {data=1 (the v2 store as JSON),
//! metadata=2 {conf_state=1, index=2, term=3}}`. etcd loads the newest file that reads
//! correctly (renaming broken ones to `*.broken`), then opens the WAL at its index.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use prost::Message;
use serde::Serialize;

use super::problem::{WalProblem, WalProblemKind};
use super::raftpb::{ConfState, RaftSnapshot, SnapFilePb, WalSnapshot};
use super::reader::WalContents;
use super::segment::{WalSegment, parse_two_hex};
use crate::error::{Error, Result};

/// Largest `.snap` file read (they hold the v2 store, normally kilobytes).
const MAX_SNAP_FILE: u64 = 1 << 30;

/// A `.snap` file name: `%016x-%016x.snap` with the term and index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapName {
    /// Raft term.
    pub term: u64,
    /// Raft index.
    pub index: u64,
}

impl SnapName {
    /// Parses a file name such as `0000000000000002-0000000000000033.snap`.
    pub fn parse(file_name: &str) -> Option<SnapName> {
        parse_two_hex(file_name, ".snap").map(|(term, index)| SnapName { term, index })
    }

    /// The file name etcd gives this snapshot.
    pub fn file_name(&self) -> String {
        format!("{:016x}-{:016x}.snap", self.term, self.index)
    }
}

/// One `.snap` file and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapFile {
    /// File name.
    pub file: String,
    /// Full path.
    pub path: PathBuf,
    /// File size.
    pub size: u64,
    /// Term and index from the name.
    pub name: SnapName,
    /// True when the file reads as etcd requires (decodes, CRC matches).
    pub valid: bool,
    /// CRC stored in the file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crc: Option<u32>,
    /// Term from the metadata inside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    /// Index from the metadata inside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Members at the snapshot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conf_state: Option<ConfState>,
    /// Size of the v2 store (JSON) inside.
    pub store_size: u64,
}

impl SnapFile {
    /// The WAL snapshot marker this file corresponds to (from its metadata, else its name).
    pub fn wal_snapshot(&self) -> WalSnapshot {
        WalSnapshot {
            index: self.index.unwrap_or(self.name.index),
            term: self.term.unwrap_or(self.name.term),
        }
    }
}

/// A `%016x.snap.db` file: a backend received from the leader, named by snapshot index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapDbFile {
    /// File name.
    pub file: String,
    /// Snapshot index from the name.
    pub index: u64,
    /// File size.
    pub size: u64,
}

/// The snapshot directory (`member/snap`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapDir {
    /// The directory.
    pub dir: PathBuf,
    /// `.snap` files, oldest first (by term, then index).
    pub files: Vec<SnapFile>,
    /// `.snap.db` files.
    pub db_files: Vec<SnapDbFile>,
    /// Whether the backend `db` is there.
    pub has_db: bool,
    /// Problems found.
    pub problems: Vec<WalProblem>,
}

impl SnapDir {
    /// The newest file that reads correctly (etcd 3.4.23 also requires a matching WAL
    /// snapshot record: see [`loadable_snapshot`]).
    pub fn newest_valid(&self) -> Option<&SnapFile> {
        self.files.iter().rev().find(|f| f.valid)
    }
}

/// Finds the snapshot directory for `path`: `PATH/member/snap` for a data dir,
/// `PATH/snap` for a member dir, or `PATH` itself.
pub fn resolve_snap_dir(path: &Path) -> Result<PathBuf> {
    for candidate in [path.join("member/snap"), path.join("snap")] {
        if candidate.is_dir() {
            return Ok(candidate);
        }
    }
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    Err(Error::BadPath(format!(
        "{} is not a directory: give an etcd data dir or its member/snap dir",
        path.display()
    )))
}

/// Reads and verifies one `.snap` file as etcd's `snap.Read` does. Returns what could be
/// read and the problems found (none for a good file).
pub fn read_snap_file(path: &Path) -> (SnapFile, Vec<WalProblem>) {
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut snap = SnapFile {
        name: SnapName::parse(&file).unwrap_or(SnapName { term: 0, index: 0 }),
        file: file.clone(),
        path: path.to_path_buf(),
        size: 0,
        valid: false,
        crc: None,
        term: None,
        index: None,
        conf_state: None,
        store_size: 0,
    };
    let mut problems = Vec::new();
    let mut problem = |kind, detail: String| {
        problems.push(WalProblem::new(kind, file.clone(), None, detail));
    };
    let mut bytes = Vec::new();
    let read = File::open(path).and_then(|f| {
        let size = f.metadata()?.len();
        if size > MAX_SNAP_FILE {
            return Err(std::io::Error::other(format!(
                "{size} bytes, more than the {MAX_SNAP_FILE}-byte limit"
            )));
        }
        f.take(MAX_SNAP_FILE).read_to_end(&mut bytes)
    });
    if let Err(e) = read {
        problem(WalProblemKind::Unreadable, format!("cannot read: {e}"));
        return (snap, problems);
    }
    snap.size = bytes.len() as u64;
    if bytes.is_empty() {
        problem(
            WalProblemKind::SnapEmpty,
            "the file is empty (etcd: snap: empty snapshot)".into(),
        );
        return (snap, problems);
    }
    let outer = match SnapFilePb::decode(bytes.as_slice()) {
        Ok(outer) => outer,
        Err(e) => {
            problem(
                WalProblemKind::SnapBadFormat,
                format!("not a snappb.Snapshot: {e}"),
            );
            return (snap, problems);
        }
    };
    snap.crc = Some(outer.crc);
    if outer.data.is_empty() || outer.crc == 0 {
        problem(
            WalProblemKind::SnapEmpty,
            "no data or a zero CRC (etcd: snap: empty snapshot)".into(),
        );
        return (snap, problems);
    }
    let computed = crc32c::crc32c(&outer.data);
    if computed != outer.crc {
        problem(
            WalProblemKind::SnapCrcMismatch {
                stored: outer.crc,
                computed,
            },
            format!(
                "stored CRC {:08x}, data hashes to {computed:08x} (etcd: snap: crc mismatch; it \
                 renames the file to .broken and falls back to an older snapshot)",
                outer.crc
            ),
        );
        return (snap, problems);
    }
    let inner = match RaftSnapshot::decode(outer.data.as_slice()) {
        Ok(inner) => inner,
        Err(e) => {
            problem(
                WalProblemKind::SnapBadFormat,
                format!("not a raftpb.Snapshot: {e}"),
            );
            return (snap, problems);
        }
    };
    let metadata = inner.metadata.unwrap_or_default();
    snap.valid = true;
    snap.term = Some(metadata.term);
    snap.index = Some(metadata.index);
    snap.conf_state = Some(metadata.conf_state.unwrap_or_default());
    snap.store_size = inner.data.len() as u64;
    if SnapName::parse(&file).is_some_and(|n| (n.term, n.index) != (metadata.term, metadata.index))
    {
        problem(
            WalProblemKind::SnapNameMismatch {
                name_term: snap.name.term,
                name_index: snap.name.index,
                term: metadata.term,
                index: metadata.index,
            },
            format!(
                "named for term {} index {}, holds term {} index {}",
                snap.name.term, snap.name.index, metadata.term, metadata.index
            ),
        );
    }
    (snap, problems)
}

/// Reads every `.snap` file of a snapshot directory (or of a data dir / member dir).
pub fn read_snap_dir(path: &Path) -> Result<SnapDir> {
    let dir = resolve_snap_dir(path)?;
    let read_dir = std::fs::read_dir(&dir)
        .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
    let mut result = SnapDir {
        dir: dir.clone(),
        files: Vec::new(),
        db_files: Vec::new(),
        has_db: false,
        problems: Vec::new(),
    };
    let mut names = Vec::new();
    for item in read_dir {
        let item = item.map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        names.push(item.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    for name in names {
        if name == "db" {
            result.has_db = true;
        } else if let Some(stem) = name.strip_suffix(".snap.db") {
            let index = (stem.len() == 16)
                .then(|| u64::from_str_radix(stem, 16).ok())
                .flatten();
            match index {
                Some(index) => result.db_files.push(SnapDbFile {
                    size: std::fs::metadata(dir.join(&name))
                        .map(|m| m.len())
                        .unwrap_or(0),
                    file: name,
                    index,
                }),
                None => result.problems.push(WalProblem::new(
                    WalProblemKind::BadFileName,
                    name.clone(),
                    None,
                    format!("{name} is not a %016x.snap.db name"),
                )),
            }
        } else if name.ends_with(".snap") {
            if SnapName::parse(&name).is_none() {
                result.problems.push(WalProblem::new(
                    WalProblemKind::BadFileName,
                    name.clone(),
                    None,
                    format!("{name} is not a %016x-%016x.snap name; etcd still tries to load it"),
                ));
            }
            let (file, problems) = read_snap_file(&dir.join(&name));
            result.files.push(file);
            result.problems.extend(problems);
        } else {
            let detail = if name.ends_with(".broken") {
                format!("{name}: etcd renamed this file after failing to read it")
            } else {
                format!("{name} is not a snapshot file; etcd ignores it")
            };
            result.problems.push(WalProblem::new(
                WalProblemKind::BadFileName,
                name,
                None,
                detail,
            ));
        }
    }
    // etcd orders by name, which for %016x names is (term, index).
    result
        .files
        .sort_by(|a, b| (a.name, &a.file).cmp(&(b.name, &b.file)));
    Ok(result)
}

/// The `.snap` file etcd 3.4.23 loads at start (`LoadNewestAvailable`): the newest that
/// reads correctly and matches a WAL snapshot record at or below the last HardState's
/// commit index.
pub fn loadable_snapshot<'s>(wal: &WalContents, snaps: &'s SnapDir) -> Option<&'s SnapFile> {
    let commit = wal.hard_state.map_or(0, |s| s.commit);
    snaps.files.iter().rev().find(|f| {
        let s = f.wal_snapshot();
        f.valid
            && wal
                .snapshots
                .iter()
                .any(|r| r.index == s.index && r.term == s.term && r.index <= commit)
    })
}

/// Checks that the `.snap` files and the WAL's snapshot records agree, the way etcd 3.4.23
/// uses them at start:
///
/// - etcd loads the newest valid `.snap` that matches a WAL snapshot record at or below
///   the commit index ([`loadable_snapshot`]); newer valid files without a record are
///   skipped (a warning each);
/// - with no loadable snapshot etcd replays the WAL from index 1, which fails once old
///   segments are purged (an error);
/// - a segment must cover the loaded snapshot's index (etcd: `wal: file not found`);
/// - every WAL snapshot record newer than the oldest `.snap` file (older files are
///   purged; 5 are kept by default) should have its `.snap` file, or a `.snap.db` with
///   its index (a warning: etcd falls back to an older snapshot);
/// - when `db_consistent_index` (the backend's `meta/consistent_index`) is given, it must
///   not be below the loaded snapshot's index unless a `.snap.db` can replace the db.
///
/// `wal` should be read without a start snapshot and with `keep_going`, so that every
/// snapshot record is present.
pub fn check_snapshots(
    wal: &WalContents,
    segments: &[WalSegment],
    snaps: &SnapDir,
    db_consistent_index: Option<u64>,
) -> Vec<WalProblem> {
    let mut problems = Vec::new();
    let loadable = loadable_snapshot(wal, snaps);
    let first_wal_index = segments.first().map_or(0, |seg| seg.name.index);
    for file in snaps.files.iter().rev() {
        if loadable.is_some_and(|l| l.name >= file.name) {
            break;
        }
        if file.valid {
            let s = file.wal_snapshot();
            problems.push(WalProblem::new(
                WalProblemKind::SnapNotInWal {
                    term: s.term,
                    index: s.index,
                },
                file.file.clone(),
                None,
                format!(
                    "no WAL snapshot record for term {} index {} at or below the commit index: \
                     etcd skips this file and loads {}",
                    s.term,
                    s.index,
                    loadable.map_or("no snapshot".to_string(), |l| l.file.clone())
                ),
            ));
        }
    }
    match loadable {
        None if first_wal_index > 0 => problems.push(WalProblem::new(
            WalProblemKind::NoLoadableSnapshot { first_wal_index },
            "",
            None,
            format!(
                "no .snap file is valid and matches a WAL snapshot record, so etcd would replay \
                 the WAL from the beginning, but the first segment starts at index \
                 {first_wal_index}: etcd cannot start (wal: file not found)"
            ),
        )),
        None => {}
        Some(file) => {
            let s = file.wal_snapshot();
            if !segments.iter().any(|seg| seg.name.index <= s.index) {
                problems.push(WalProblem::new(
                    WalProblemKind::SnapshotNotFound {
                        index: s.index,
                        term: s.term,
                    },
                    file.file.clone(),
                    None,
                    format!(
                        "no WAL segment may hold index {} (the first is named for \
                         {first_wal_index}): etcd loads this snapshot and then fails to open \
                         the WAL (wal: file not found)",
                        s.index
                    ),
                ));
            }
        }
    }
    let oldest_file = snaps.files.iter().map(|f| f.name.index).min();
    for record in &wal.snapshots {
        if record.index == 0 || oldest_file.is_some_and(|oldest| record.index < oldest) {
            continue;
        }
        let has_file = snaps.files.iter().any(|f| {
            let s = f.wal_snapshot();
            s.index == record.index && s.term == record.term
        }) || snaps.db_files.iter().any(|d| d.index == record.index);
        if !has_file {
            problems.push(WalProblem::new(
                WalProblemKind::WalSnapshotWithoutFile {
                    term: record.term,
                    index: record.index,
                },
                record.file.clone(),
                Some(record.offset),
                format!(
                    "snapshot record term {} index {} has no {} file in {}: etcd starts from an \
                     older snapshot and replays more of the WAL",
                    record.term,
                    record.index,
                    SnapName {
                        term: record.term,
                        index: record.index
                    }
                    .file_name(),
                    snaps.dir.display()
                ),
            ));
        }
    }
    if let (Some(ci), Some(loaded)) = (db_consistent_index, loadable) {
        let index = loaded.wal_snapshot().index;
        let replacement = snaps.db_files.iter().any(|d| d.index >= index);
        if ci < index && !replacement {
            problems.push(WalProblem::new(
                WalProblemKind::DbBehindSnapshot {
                    consistent_index: ci,
                    snapshot_index: index,
                },
                "db",
                None,
                format!(
                    "the backend's consistent index {ci} is below the index {index} of the \
                     snapshot etcd loads ({}) and no .snap.db can replace it: etcd refuses to \
                     start (database file does not match with snapshot)",
                    loaded.file
                ),
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_names() {
        let n = SnapName::parse("0000000000000002-0000000000000033.snap").unwrap();
        assert_eq!((n.term, n.index), (2, 0x33));
        assert_eq!(n.file_name(), "0000000000000002-0000000000000033.snap");
        assert!(SnapName::parse("0000000000000002-0000000000000033.snap.broken").is_none());
    }
}
