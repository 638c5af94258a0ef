//! Damaged and hostile inputs: every one must give an error naming what is wrong, never a
//! panic, a hang or unbounded memory. The base file is a real etcd 3.4 snapshot
//! (`testenv/fixtures/k8s-small.db`, see the README there).

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use snapshot_format::Error;
use snapshot_format::bbolt::SourceKind;
use snapshot_format::etcd::{OpenOptions, RangeQuery, Snapshot, StatusOptions};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testenv/fixtures/k8s-small.db")
}

fn write_variant(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Runs every read-only operation; returns the first error, if any.
fn exercise(path: &Path, source: SourceKind) -> Result<(), Error> {
    let snap = Snapshot::open(
        path,
        &OpenOptions {
            source,
            verify_trailer: false,
            ..Default::default()
        },
    )?;
    snap.status(&StatusOptions::default())?;
    snap.range(&RangeQuery::prefix(b"/registry/"))?;
    snap.history(b"/registry/pods/default/late")?;
    snap.key_stats(5, 2)?;
    snap.hash_kv(0)?;
    snap.members()?;
    snap.leases()?;
    snap.auth()?;
    Ok(())
}

/// Fails the test run (instead of hanging CI) if a case loops.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("robustness test exceeded {limit:?}: a damaged file made a reader loop");
        std::process::exit(101);
    });
}

fn sidecar(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(fixture().with_file_name(name)).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn the_fixture_matches_etcdctl() {
    let expected = sidecar("k8s-small.etcdctl-status.json");
    for source in [SourceKind::Memory, SourceKind::Pread, SourceKind::Mmap] {
        let opts = OpenOptions {
            source,
            verify_trailer: true,
            ..Default::default()
        };
        let snap = Snapshot::open(&fixture(), &opts).unwrap();
        let s = snap.status(&StatusOptions::default()).unwrap();
        assert_eq!(s.hash as u64, expected["hash"].as_u64().unwrap());
        assert_eq!(s.revision, expected["revision"].as_i64().unwrap());
        assert_eq!(s.total_key, expected["totalKey"].as_u64().unwrap());
        assert_eq!(s.total_size, expected["totalSize"].as_u64().unwrap());
    }
    let hashkv = sidecar("k8s-small.etcdctl-hashkv.json");
    let snap = Snapshot::open(&fixture(), &OpenOptions::default()).unwrap();
    let h = snap.hash_kv(hashkv["revision"].as_i64().unwrap()).unwrap();
    assert_eq!(h.hash as u64, hashkv["hash"].as_u64().unwrap());
    assert_eq!(
        h.compact_revision,
        hashkv["compact_revision"].as_i64().unwrap()
    );
}

#[test]
fn truncated_files_are_errors() {
    let bytes = std::fs::read(fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for len in [
        0,
        10,
        79,
        4096,
        4096 + 80,
        8192,
        bytes.len() / 2,
        bytes.len() - 4096 - 32,
    ] {
        let path = write_variant(dir.path(), "t.db", &bytes[..len]);
        let err = exercise(&path, SourceKind::Memory).expect_err("a truncated file must not read");
        assert!(err.is_corruption(), "len {len}: {err}");
        let msg = err.to_string();
        assert!(
            msg.contains("bbolt") || msg.contains("truncated") || msg.contains("page"),
            "len {len}: unclear error: {msg}"
        );
    }
}

#[test]
fn meta_page_damage() {
    let bytes = std::fs::read(fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();

    // One zeroed meta page: bbolt falls back to the other one; the damage stays visible.
    let mut one = bytes.clone();
    one[..4096].fill(0);
    let path = write_variant(dir.path(), "zero0.db", &one);
    let snap = Snapshot::open(&path, &OpenOptions::default()).unwrap();
    assert_eq!(snap.db().meta().page, 1);
    let problem = snap.db().metas()[0].as_ref().unwrap_err();
    assert!(problem.to_string().contains("magic"), "{problem}");
    exercise(&path, SourceKind::Memory).unwrap();

    // Both zeroed, or a wrong magic in both: not a bbolt file.
    let mut both = bytes.clone();
    both[..8192].fill(0);
    let path = write_variant(dir.path(), "zero01.db", &both);
    let err = exercise(&path, SourceKind::Memory).unwrap_err();
    assert!(matches!(err, Error::NotBbolt(_)), "{err}");
    assert!(err.to_string().contains("meta page 0"), "{err}");

    let mut magic = bytes.clone();
    magic[16] ^= 0xff;
    magic[4096 + 16] ^= 0xff;
    let path = write_variant(dir.path(), "magic.db", &magic);
    let err = exercise(&path, SourceKind::Memory).unwrap_err();
    assert!(err.to_string().contains("magic"), "{err}");

    // A flipped bit inside meta 1's fields is caught by its checksum.
    let mut sum = bytes.clone();
    sum[4096 + 16 + 40] ^= 1;
    let path = write_variant(dir.path(), "sum.db", &sum);
    let snap = Snapshot::open(&path, &OpenOptions::default()).unwrap();
    let problem = snap.db().metas()[1].as_ref().unwrap_err();
    assert!(problem.to_string().contains("checksum"), "{problem}");
}

#[test]
fn bad_sha256_trailer_is_detected() {
    let mut bytes = std::fs::read(fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0x55;
    let path = write_variant(dir.path(), "sha.db", &bytes);
    let verify = OpenOptions {
        verify_trailer: true,
        ..Default::default()
    };
    let err = Snapshot::open(&path, &verify).unwrap_err();
    assert!(matches!(err, Error::TrailerMismatch { .. }), "{err}");
    // A changed content byte (in a free page or not) is caught the same way.
    let mut bytes = std::fs::read(fixture()).unwrap();
    bytes[3 * 4096 + 100] ^= 1;
    let path = write_variant(dir.path(), "sha2.db", &bytes);
    let snap = Snapshot::open(&path, &OpenOptions::default()).unwrap();
    assert!(!snap.verify_trailer().unwrap().unwrap().matches);
}

#[test]
fn random_bytes_are_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    for size in [1usize, 100, 4096, 65536, 1 << 20] {
        let bytes: Vec<u8> = (0..size).map(|_| xorshift(&mut state) as u8).collect();
        let path = write_variant(dir.path(), "rand.db", &bytes);
        let err = exercise(&path, SourceKind::Memory).unwrap_err();
        assert!(matches!(err, Error::NotBbolt(_)), "size {size}: {err}");
    }
}

#[test]
fn a_branch_page_pointing_to_itself_is_an_error_not_a_hang() {
    watchdog(Duration::from_secs(60));
    let mut bytes = std::fs::read(fixture()).unwrap();
    let page_size = 4096;
    // The key bucket's root in this fixture is a branch page.
    let snap = Snapshot::open(&fixture(), &OpenOptions::default()).unwrap();
    let root = snap.key_bucket().unwrap().root_page();
    let header = &bytes[root as usize * page_size..];
    assert_eq!(
        u16::from_le_bytes([header[8], header[9]]),
        0x01,
        "key bucket root is a branch"
    );
    let elem0_child = root as usize * page_size + 16 + 8;
    bytes[elem0_child..elem0_child + 8].copy_from_slice(&root.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let path = write_variant(dir.path(), "cycle.db", &bytes);
    let err = exercise(&path, SourceKind::Memory).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("page {root}")), "{msg}");
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Random damage anywhere in the file: each variant must read or fail cleanly, under
/// every page source.
#[test]
fn random_damage_never_panics_or_hangs() {
    watchdog(Duration::from_secs(120));
    let original = std::fs::read(fixture()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let (mut failed, mut read) = (0, 0);
    for case in 0..400 {
        let mut bytes = original.clone();
        let damage = 1 + (xorshift(&mut state) % 8) as usize;
        for _ in 0..damage {
            let pos = (xorshift(&mut state) as usize) % bytes.len();
            match xorshift(&mut state) % 4 {
                0 => bytes[pos] ^= 1 << (xorshift(&mut state) % 8),
                1 => bytes[pos] = 0xff,
                2 => {
                    // zero a whole page, like a torn write
                    let start = pos / 4096 * 4096;
                    let end = (start + 4096).min(bytes.len());
                    bytes[start..end].fill(0);
                }
                _ => bytes[pos] = xorshift(&mut state) as u8,
            }
        }
        let path = write_variant(dir.path(), "fuzz.db", &bytes);
        let source = [SourceKind::Memory, SourceKind::Pread, SourceKind::Mmap][case % 3];
        // The check opens whatever has a valid meta page and must finish on anything.
        let lenient = OpenOptions {
            source,
            unchecked_meta: true,
            ..Default::default()
        };
        if let Ok(snap) = Snapshot::open(&path, &lenient) {
            let result = snap.check();
            assert!(
                result.bbolt.stats.reachable_pages <= result.bbolt.stats.high_water_mark.max(2)
            );
        }
        match exercise(&path, source) {
            Ok(()) => read += 1,
            Err(e) => {
                failed += 1;
                assert!(!e.to_string().is_empty());
            }
        }
    }
    // Damage in free pages or values is often harmless; damage in tree pages is not.
    assert!(failed > 0 && read > 0, "failed {failed}, read {read}");
}
