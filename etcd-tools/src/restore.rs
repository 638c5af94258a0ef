//! `salvor etcd snapshot restore`: a new member data dir from a snapshot, with
//! `etcdutl snapshot restore`'s semantics and output layout.
//!
//! - The snapshot's sha256 trailer is verified (unless `--skip-hash-check`; a file
//!   without a trailer, such as a member's `member/snap/db`, needs that flag).
//! - `member/snap/db` is the snapshot's backend with `consistent_index` set to the
//!   number of members, the `members` bucket holding the new members and
//!   `members_removed` emptied. The file is copied by the kernel and patched
//!   copy-on-write (a few new pages and new meta pages), so restore costs about one
//!   copy of the file while the hash is computed alongside.
//! - `member/wal` holds one segment: metadata (member and cluster id), a conf-change
//!   entry adding each member (term 1, index 1..n), the HardState (commit n) and a
//!   snapshot marker at n; `member/snap/<term>-<index>.snap` holds the v2 store with the
//!   members, as etcd 3.4 writes it.
//! - With `--bump-revision N --mark-compacted` (etcdutl 3.5.13+), the latest revision
//!   jumps by N and is scheduled for compaction, so watchers of the old cluster relist.
//!
//! Everything is written into `<data-dir>.part` and renamed into place once complete
//! and synced: an interrupted restore never leaves a data dir that looks complete.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use sha2::{Digest, Sha256};
use snapshot_format::bbolt::{Db, FileSource};
use snapshot_format::etcd::membership::{
    ClusterMember, cluster_id, initial_members, restore_v2_store,
};
use snapshot_format::etcd::{
    OpenOptions as SnapshotOpenOptions, Revision, RevisionKey, Snapshot, TRAILER_LEN,
};
use snapshot_format::wal::{
    ConfState, EntryType, HardState, NewEntry, WalMetadata, WalSegmentName, WalSnapshot, WalWriter,
    encode_conf_change, write_snap_file,
};
use snapshot_format::{Error, Result};

use crate::dbedit::{self, DbEdits};
use crate::fsutil::{make_private_dir, part_path, rename_into_place, sync_dir};

/// What to restore, with etcdutl's flags and defaults.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The snapshot file (or a `member/snap/db` with `skip_hash_check`).
    pub snapshot: PathBuf,
    /// Output data dir (`<name>.etcd` by default).
    pub data_dir: PathBuf,
    /// Separate WAL dir (`<data-dir>/member/wal` by default).
    pub wal_dir: Option<PathBuf>,
    /// This member's name.
    pub name: String,
    /// `--initial-cluster`.
    pub initial_cluster: String,
    /// `--initial-cluster-token`.
    pub initial_cluster_token: String,
    /// `--initial-advertise-peer-urls`.
    pub initial_advertise_peer_urls: Vec<String>,
    /// Do not verify the sha256 trailer.
    pub skip_hash_check: bool,
    /// Add this much to the latest revision.
    pub bump_revision: u64,
    /// Schedule compaction at the bumped revision.
    pub mark_compacted: bool,
    /// Check everything (flags, membership, the snapshot and its hash) and report what
    /// would be written; write nothing.
    pub dry_run: bool,
}

impl RestoreOptions {
    /// etcdutl's defaults for `snapshot` with member `name`.
    pub fn new(snapshot: PathBuf, name: &str) -> Self {
        RestoreOptions {
            snapshot,
            data_dir: PathBuf::from(format!("{name}.etcd")),
            wal_dir: None,
            name: name.to_string(),
            initial_cluster: format!("{name}=http://localhost:2380"),
            initial_cluster_token: "etcd-cluster".to_string(),
            initial_advertise_peer_urls: vec!["http://localhost:2380".to_string()],
            skip_hash_check: false,
            bump_revision: 0,
            mark_compacted: false,
            dry_run: false,
        }
    }
}

/// What a restore wrote.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    /// The new data dir.
    pub data_dir: PathBuf,
    /// The WAL dir.
    pub wal_dir: PathBuf,
    /// This member.
    pub name: String,
    /// This member's id (hex).
    pub member_id: String,
    /// The new cluster's id (hex).
    pub cluster_id: String,
    /// Every member of the new cluster.
    pub members: Vec<ClusterMember>,
    /// Whether the sha256 trailer was verified.
    pub hash_verified: bool,
    /// Latest revision in the restored backend.
    pub revision: i64,
    /// Revision the restored cluster is compacted to (with `--mark-compacted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compacted_revision: Option<i64>,
    /// `consistent_index` written (the number of members).
    pub consistent_index: u64,
    /// Size of the restored `member/snap/db`.
    pub db_size: u64,
    /// Wall time in milliseconds.
    pub elapsed_ms: u64,
    /// Nothing was written.
    pub dry_run: bool,
}

/// Progress: bytes processed of the total.
pub type ByteProgress<'a> = &'a (dyn Fn(u64, u64) + Sync);

const CHUNK: u64 = 64 << 20;

/// Checks the flags and that the output dirs are free, without reading the snapshot:
/// the membership, this member, and its WAL dir.
fn validate(opts: &RestoreOptions) -> Result<(Vec<ClusterMember>, ClusterMember, PathBuf)> {
    let members = initial_members(&opts.initial_cluster, &opts.initial_cluster_token)?;
    let me = members
        .iter()
        .find(|m| m.name == opts.name)
        .ok_or_else(|| {
            Error::Invalid(format!(
                "--name {:?} is not a member of --initial-cluster {:?}",
                opts.name, opts.initial_cluster
            ))
        })?
        .clone();
    let mut advertised = opts.initial_advertise_peer_urls.clone();
    advertised.sort();
    if advertised != me.peer_urls {
        return Err(Error::Invalid(format!(
            "--initial-cluster has {}={} but --initial-advertise-peer-urls is {}; they must match",
            me.name,
            me.peer_urls.join(","),
            opts.initial_advertise_peer_urls.join(",")
        )));
    }
    let wal_dir = opts
        .wal_dir
        .clone()
        .unwrap_or_else(|| opts.data_dir.join("member").join("wal"));
    for dir in [Some(&opts.data_dir), opts.wal_dir.as_ref()]
        .into_iter()
        .flatten()
    {
        if dir_has_entries(dir)? {
            return Err(Error::Invalid(format!(
                "{} exists and is not empty; restore never writes over an existing data dir \
                 (move it aside, or pick another --data-dir)",
                dir.display()
            )));
        }
    }
    if opts.bump_revision > 0 && !opts.mark_compacted {
        return Err(Error::Invalid(
            "--bump-revision needs --mark-compacted (as etcdutl requires): clients watching \
             the old revisions must see them as compacted"
                .into(),
        ));
    }
    if opts.mark_compacted && opts.bump_revision == 0 {
        return Err(Error::Invalid(
            "--mark-compacted needs --bump-revision".into(),
        ));
    }
    Ok((members, me, wal_dir))
}

/// Checks the flags and the output dirs before any work (for callers that must fetch
/// the snapshot first).
pub fn check_options(opts: &RestoreOptions) -> Result<()> {
    validate(opts).map(|_| ())
}

/// Restores `opts.snapshot` into a new data dir. See the module docs.
pub fn restore(opts: &RestoreOptions, progress: ByteProgress<'_>) -> Result<RestoreReport> {
    let started = Instant::now();
    let (members, me, wal_dir) = validate(opts)?;
    let data_dir = opts.data_dir.clone();
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    if opts.dry_run {
        let snap = Snapshot::open(
            &opts.snapshot,
            &SnapshotOpenOptions {
                verify_trailer: !opts.skip_hash_check,
                ..Default::default()
            },
        )?;
        if snap.trailer().is_none() && !opts.skip_hash_check {
            return Err(no_trailer(&opts.snapshot));
        }
        let latest = latest_revision(snap.db())?;
        let bump = i64::try_from(opts.bump_revision).unwrap_or(i64::MAX);
        return Ok(RestoreReport {
            data_dir,
            wal_dir,
            name: me.name.clone(),
            member_id: format!("{:x}", me.id),
            cluster_id: format!("{:x}", cluster_id(&ids)),
            members,
            hash_verified: !opts.skip_hash_check,
            revision: latest.saturating_add(bump),
            compacted_revision: (bump > 0).then(|| latest.saturating_add(bump)),
            consistent_index: ids.len() as u64,
            db_size: snap.db().size(),
            elapsed_ms: started.elapsed().as_millis() as u64,
            dry_run: true,
        });
    }
    let part = part_path(&data_dir);
    let wal_part = opts.wal_dir.as_ref().map(|w| part_path(w));
    for p in [Some(&part), wal_part.as_ref()].into_iter().flatten() {
        if p.exists() {
            fs::remove_dir_all(p)
                .map_err(|e| Error::io(format!("removing the leftover {}", p.display()), e))?;
        }
    }
    let snap_dir = part.join("member").join("snap");
    let part_wal_dir = wal_part
        .clone()
        .unwrap_or_else(|| part.join("member").join("wal"));
    make_private_dir(&snap_dir)?;
    make_private_dir(&part_wal_dir)?;

    // 1. The backend: copy (and verify) the snapshot, then patch it.
    let db_path = snap_dir.join("db");
    let (db_len, hash_verified) =
        copy_and_verify(&opts.snapshot, &db_path, opts.skip_hash_check, progress)?;
    let db = Db::open(Box::new(
        FileSource::open(&db_path, db_len)
            .map_err(|e| Error::io(format!("reading {}", db_path.display()), e))?,
    ))
    .map_err(|e| in_file(e, &opts.snapshot))?;
    for bucket in ["key", "meta"] {
        if db.bucket(bucket.as_bytes())?.is_none() {
            return Err(Error::MissingBucket(bucket.to_string()));
        }
    }
    let commit = members.len() as u64;
    let mut edits = DbEdits::default();
    let latest = latest_revision(&db)?;
    let mut revision = latest;
    let mut compacted_revision = None;
    if opts.bump_revision > 0 {
        let bumped = latest
            .checked_add(i64::try_from(opts.bump_revision).unwrap_or(i64::MAX))
            .filter(|r| *r > 0)
            .ok_or_else(|| Error::Invalid("--bump-revision overflows the revision".into()))?;
        edits.append.insert(
            b"key".to_vec(),
            vec![(Revision::new(bumped).to_bytes().to_vec(), Vec::new())],
        );
        revision = bumped;
        compacted_revision = Some(bumped);
    }
    edits.replace_bucket(
        b"meta",
        meta_entries(&db, commit, &members, compacted_revision)?,
    );
    edits.replace_bucket(
        b"members",
        members
            .iter()
            .map(|m| (m.bucket_key().into_bytes(), m.to_json().into_bytes()))
            .collect(),
    );
    edits.replace_bucket(b"members_removed", Vec::new());
    let summary = if edits.append.is_empty() {
        let out = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&db_path)
            .map_err(|e| Error::io(format!("opening {}", db_path.display()), e))?;
        dbedit::patch(&db, out, &edits)?
    } else {
        let rebuilt = snap_dir.join("db.rebuild");
        let summary = dbedit::rebuild(&db, &rebuilt, &edits, &|_| {})?;
        drop(db);
        fs::rename(&rebuilt, &db_path)
            .map_err(|e| Error::io(format!("renaming {}", rebuilt.display()), e))?;
        summary
    };
    let db_size = fs::metadata(&db_path)
        .map_err(|e| Error::io(format!("reading {}", db_path.display()), e))?
        .len()
        .max(summary.size);

    // 2. WAL and .snap for the new membership.
    write_membership(&part_wal_dir, &snap_dir, &members, &me)?;

    // 3. Into place.
    sync_dir(&snap_dir)?;
    sync_dir(&part_wal_dir)?;
    if let (Some(wal_part), Some(wal_dir)) = (&wal_part, &opts.wal_dir) {
        rename_into_place(wal_part, wal_dir)?;
    }
    rename_into_place(&part, &data_dir)?;
    Ok(RestoreReport {
        data_dir,
        wal_dir,
        name: me.name.clone(),
        member_id: format!("{:x}", me.id),
        cluster_id: format!(
            "{:x}",
            cluster_id(&members.iter().map(|m| m.id).collect::<Vec<_>>())
        ),
        members,
        hash_verified,
        revision,
        compacted_revision,
        consistent_index: commit,
        db_size,
        elapsed_ms: started.elapsed().as_millis() as u64,
        dry_run: false,
    })
}

fn no_trailer(snapshot: &Path) -> Error {
    Error::Invalid(format!(
        "{} has no sha256 trailer (it is not a file written by `snapshot save`, or was cut \
         short); pass --skip-hash-check to restore it anyway, after `salvor etcd check` \
         finds it sound",
        snapshot.display()
    ))
}

fn in_file(e: Error, snapshot: &Path) -> Error {
    match e {
        Error::Corrupt { location, problem } => Error::Corrupt {
            location,
            problem: format!("{problem} (in {})", snapshot.display()),
        },
        other => other,
    }
}

fn dir_has_entries(dir: &Path) -> Result<bool> {
    match fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_some()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Ok(true),
        Err(e) => Err(Error::io(format!("reading {}", dir.display()), e)),
    }
}

/// Copies the backend part of `snapshot` to `dest` (new file, fsynced) while verifying
/// the sha256 trailer. Returns the backend length and whether the hash was verified.
fn copy_and_verify(
    snapshot: &Path,
    dest: &Path,
    skip_hash_check: bool,
    progress: ByteProgress<'_>,
) -> Result<(u64, bool)> {
    let open = || {
        File::open(snapshot).map_err(|e| Error::io(format!("opening {}", snapshot.display()), e))
    };
    let src = open()?;
    let len = src
        .metadata()
        .map_err(|e| Error::io(format!("reading {}", snapshot.display()), e))?
        .len();
    let has_hash = len % 512 == TRAILER_LEN;
    if !has_hash && !skip_hash_check {
        return Err(no_trailer(snapshot));
    }
    let db_len = if has_hash { len - TRAILER_LEN } else { len };
    let verify = has_hash && !skip_hash_check;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dest)
        .map_err(|e| Error::io(format!("creating {}", dest.display()), e))?;
    let (copied, digest) = std::thread::scope(|s| -> Result<(u64, Option<[u8; 32]>)> {
        let hasher = verify.then(|| {
            s.spawn(|| -> Result<[u8; 32]> {
                let mut f = open()?;
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 4 << 20];
                let mut left = db_len;
                while left > 0 {
                    let n = (buf.len() as u64).min(left) as usize;
                    f.read_exact(&mut buf[..n])
                        .map_err(|e| Error::io(format!("reading {}", snapshot.display()), e))?;
                    h.update(&buf[..n]);
                    left -= n as u64;
                    progress(db_len - left, db_len);
                }
                Ok(h.finalize().into())
            })
        });
        // std::io::copy between files uses copy_file_range: the kernel copies.
        let mut src = src;
        let mut copied = 0u64;
        while copied < db_len {
            let n = io::copy(&mut (&mut src).take(CHUNK.min(db_len - copied)), &mut out)
                .map_err(|e| Error::io(format!("copying to {}", dest.display()), e))?;
            if n == 0 {
                break;
            }
            copied += n;
            if !verify {
                progress(copied, db_len);
            }
        }
        let digest =
            match hasher {
                Some(h) => Some(h.join().map_err(|_| {
                    Error::Invalid("the hashing thread stopped unexpectedly".into())
                })??),
                None => None,
            };
        Ok((copied, digest))
    })?;
    if copied != db_len {
        return Err(Error::io(
            format!("copying {}", snapshot.display()),
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the file shrank while being copied ({copied} of {db_len} bytes)"),
            ),
        ));
    }
    if let Some(actual) = digest {
        let mut f = open()?;
        let mut expected = [0u8; 32];
        io::Seek::seek(&mut f, io::SeekFrom::Start(db_len))
            .and_then(|_| f.read_exact(&mut expected))
            .map_err(|e| Error::io(format!("reading the trailer of {}", snapshot.display()), e))?;
        if expected != actual {
            return Err(Error::TrailerMismatch {
                expected: hex::encode(expected),
                actual: hex::encode(actual),
            });
        }
    }
    out.sync_all()
        .map_err(|e| Error::io(format!("syncing {}", dest.display()), e))?;
    Ok((db_len, verify))
}

/// The newest main revision in the `key` bucket (0 when empty).
pub fn latest_revision(db: &Db) -> Result<i64> {
    let Some(bucket) = db.bucket(b"key")? else {
        return Err(Error::MissingBucket("key".into()));
    };
    match bucket.last_key()? {
        Some(k) => RevisionKey::parse(&k)
            .map(|r| r.revision.main)
            .map_err(|e| {
                Error::Invalid(format!(
                    "the last key of bucket \"key\" is not a revision: {e}"
                ))
            }),
        None => Ok(0),
    }
}

/// The `meta` bucket for the new cluster: `consistent_index` = `commit` (and `term` = 1,
/// `confState` = the voters, where the source has those 3.5 keys); with a compaction mark,
/// `scheduledCompactRev` at the bumped revision.
fn meta_entries(
    db: &Db,
    commit: u64,
    members: &[ClusterMember],
    compacted: Option<i64>,
) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    if let Some(meta) = db.bucket(b"meta")? {
        meta.for_each(|e| {
            entries.push((e.key.to_vec(), e.value.to_vec()));
            Ok(())
        })?;
    }
    let mut set = |k: &[u8], v: Vec<u8>| match entries.iter_mut().find(|(ek, _)| ek == k) {
        Some(e) => e.1 = v,
        None => entries.push((k.to_vec(), v)),
    };
    set(b"consistent_index", commit.to_be_bytes().to_vec());
    if let Some(rev) = compacted {
        set(
            b"scheduledCompactRev",
            Revision::new(rev).to_bytes().to_vec(),
        );
    }
    if let Some(e) = entries.iter_mut().find(|(k, _)| k == b"term") {
        e.1 = 1u64.to_be_bytes().to_vec();
    }
    if let Some(e) = entries.iter_mut().find(|(k, _)| k == b"confState") {
        let voters: Vec<String> = members.iter().map(|m| m.id.to_string()).collect();
        e.1 = format!("{{\"voters\":[{}],\"auto_leave\":false}}", voters.join(",")).into_bytes();
    }
    Ok(entries)
}

/// Writes the WAL segment and `.snap` file of a new cluster, as `etcdutl` does.
fn write_membership(
    wal_dir: &Path,
    snap_dir: &Path,
    members: &[ClusterMember],
    me: &ClusterMember,
) -> Result<()> {
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let metadata = WalMetadata {
        node_id: me.id,
        cluster_id: cluster_id(&ids),
    };
    let mut wal = WalWriter::create(
        wal_dir,
        WalSegmentName { seq: 0, index: 0 },
        &metadata,
        &WalSnapshot::default(),
    )?;
    let entries: Vec<NewEntry> = members
        .iter()
        .enumerate()
        .map(|(i, m)| NewEntry {
            term: 1,
            index: i as u64 + 1,
            entry_type: EntryType::ConfChange,
            data: Some(encode_conf_change(0, 0, m.id, Some(m.to_json().as_bytes()))),
        })
        .collect();
    let commit = members.len() as u64;
    wal.save(
        &HardState {
            term: 1,
            vote: members.first().map_or(0, |m| m.id),
            commit,
        },
        &entries,
    )?;
    write_snap_file(
        snap_dir,
        restore_v2_store(members).as_bytes(),
        &ConfState {
            voters: ids,
            ..Default::default()
        },
        commit,
        1,
    )?;
    wal.save_snapshot(&WalSnapshot {
        index: commit,
        term: 1,
    })?;
    wal.finish()?;
    Ok(())
}
