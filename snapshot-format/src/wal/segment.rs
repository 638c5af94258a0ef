//! WAL segment files: their names (`%016x-%016x.wal`: sequence, first index) and the
//! listing of a WAL directory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;

use super::problem::{WalProblem, WalProblemKind};
use crate::error::{Error, Result};

/// A segment's name: `%016x-%016x.wal` with the sequence number and the raft index of
/// the first entry that may be in the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalSegmentName {
    /// Sequence number; consecutive across the directory.
    pub seq: u64,
    /// Raft index of the first entry the segment may hold.
    pub index: u64,
}

/// Parses `16 hex digits` + `sep` + `16 hex digits` + `suffix` (etcd's
/// `%016x-%016x<suffix>`; both cases of hex digits, as Go's `Sscanf` accepts).
pub(crate) fn parse_two_hex(name: &str, suffix: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(suffix)?;
    let (a, b) = stem.split_once('-')?;
    let hex = |s: &str| {
        (s.len() == 16 && s.bytes().all(|c| c.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(s, 16).ok())
            .flatten()
    };
    Some((hex(a)?, hex(b)?))
}

impl WalSegmentName {
    /// Parses a file name such as `0000000000000001-00000000000003e9.wal`; `None` when it
    /// is not a segment name (etcd ignores such files).
    pub fn parse(file_name: &str) -> Option<WalSegmentName> {
        parse_two_hex(file_name, ".wal").map(|(seq, index)| WalSegmentName { seq, index })
    }

    /// The file name etcd gives this segment.
    pub fn file_name(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for WalSegmentName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}-{:016x}.wal", self.seq, self.index)
    }
}

impl FromStr for WalSegmentName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        WalSegmentName::parse(s).ok_or_else(|| {
            Error::BadPath(format!("{s:?} is not a WAL segment name (%016x-%016x.wal)"))
        })
    }
}

/// A segment file found in a WAL directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WalSegment {
    /// Parsed name.
    pub name: WalSegmentName,
    /// Full path.
    pub path: PathBuf,
    /// File size in bytes.
    pub size: u64,
}

impl WalSegment {
    /// The file name.
    pub fn file_name(&self) -> String {
        self.name.file_name()
    }
}

/// Finds the WAL directory for `path`: `PATH/member/wal` for a data dir, `PATH/wal` for
/// a member dir, or `PATH` itself.
pub fn resolve_wal_dir(path: &Path) -> Result<PathBuf> {
    for candidate in [path.join("member/wal"), path.join("wal")] {
        if candidate.is_dir() {
            return Ok(candidate);
        }
    }
    if path.is_dir() {
        return Ok(path.to_path_buf());
    }
    Err(Error::BadPath(format!(
        "{} is not a directory: give an etcd data dir or its member/wal dir",
        path.display()
    )))
}

/// Lists the segments of a WAL directory, sorted by sequence number, with a problem for
/// every other file etcd would warn about (left-over `*.tmp` files are expected).
pub fn list_segments(dir: &Path) -> Result<(Vec<WalSegment>, Vec<WalProblem>)> {
    let read_dir = std::fs::read_dir(dir)
        .map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
    let mut segments = Vec::new();
    let mut problems = Vec::new();
    for item in read_dir {
        let item = item.map_err(|e| Error::io(format!("cannot list {}", dir.display()), e))?;
        let file_name = item.file_name().to_string_lossy().into_owned();
        let Some(name) = WalSegmentName::parse(&file_name) else {
            if !file_name.ends_with(".tmp") {
                let detail = if file_name.ends_with(".wal.broken") {
                    format!(
                        "{file_name}: the segment as it was before etcd repaired a torn write in \
                         it (etcd ignores this copy)"
                    )
                } else {
                    format!(
                        "{file_name} is not a WAL segment name (%016x-%016x.wal); etcd ignores it"
                    )
                };
                problems.push(WalProblem::new(
                    WalProblemKind::BadFileName,
                    file_name.clone(),
                    None,
                    detail,
                ));
            }
            continue;
        };
        let path = item.path();
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => segments.push(WalSegment {
                name,
                path,
                size: meta.len(),
            }),
            Ok(_) => problems.push(WalProblem::new(
                WalProblemKind::Unreadable,
                file_name,
                None,
                "not a regular file",
            )),
            Err(e) => problems.push(WalProblem::new(
                WalProblemKind::Unreadable,
                file_name,
                None,
                format!("cannot stat: {e}"),
            )),
        }
    }
    segments.sort_by_key(|s| s.name);
    problems.sort_by(|a, b| a.file.cmp(&b.file));
    Ok((segments, problems))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let n = WalSegmentName::parse("0000000000000001-00000000000003e9.wal").unwrap();
        assert_eq!(
            n,
            WalSegmentName {
                seq: 1,
                index: 0x3e9
            }
        );
        assert_eq!(n.file_name(), "0000000000000001-00000000000003e9.wal");
        assert_eq!(
            WalSegmentName::parse("0000000000000001-00000000000003E9.wal"),
            Some(n)
        );
        for bad in [
            "0.tmp",
            "0000000000000001-00000000000003e9.wal.broken",
            "000000000000001-00000000000003e9.wal",
            "0000000000000001_00000000000003e9.wal",
            "000000000000000g-00000000000003e9.wal",
            "+000000000000001-00000000000003e9.wal",
        ] {
            assert_eq!(WalSegmentName::parse(bad), None, "{bad}");
        }
        assert!("x.wal".parse::<WalSegmentName>().is_err());
    }
}
