//! The CLI on damaged and hostile files: a clear error on stderr, exit code 1, no panic.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testenv/fixtures/k8s-small.db")
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_salvor"))
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "salvor panicked on {args:?}: {stderr}"
    );
    (out.status.code().unwrap_or(-1), stderr)
}

/// Writes a damaged copy of the fixture and runs `status` (and `ls`) on it.
fn damaged(name: &str, damage: impl FnOnce(&mut Vec<u8>), extra: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixture()).unwrap();
    damage(&mut bytes);
    let path = dir.path().join(name);
    std::fs::write(&path, &bytes).unwrap();
    let path = path.to_str().unwrap();
    let mut args = vec!["etcd", "snapshot", "status", path];
    args.extend(extra);
    let status = run(&args);
    let mut ls = vec!["etcd", "snapshot", "ls", path];
    ls.extend(extra);
    let (ls_code, _) = run(&ls);
    assert_eq!(ls_code, status.0, "ls and status agree on {name}");
    status
}

#[test]
fn the_fixture_reads() {
    let (code, stderr) = run(&[
        "etcd",
        "snapshot",
        "status",
        fixture().to_str().unwrap(),
        "--verify",
    ]);
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn truncated_file() {
    let (code, err) = damaged("truncated.db", |b| b.truncate(b.len() / 2), &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("truncated") && err.contains("truncated.db"),
        "{err}"
    );
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn zeroed_meta_page() {
    let (code, err) = damaged("zeroed-meta.db", |b| b[..4096].fill(0), &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("meta page 0 is damaged") && err.contains("--allow-bad-meta"),
        "{err}"
    );
    // Asked to, Salvor reads it from the surviving meta page, as bbolt would.
    let (code, err) = damaged(
        "zeroed-meta.db",
        |b| b[..4096].fill(0),
        &["--allow-bad-meta"],
    );
    assert_eq!(code, 0, "{err}");
}

#[test]
fn wrong_magic() {
    let (code, err) = damaged(
        "magic.db",
        |b| {
            b[16] = 0;
            b[4096 + 16] = 0;
        },
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("not a bbolt database") && err.contains("magic"),
        "{err}"
    );
}

#[test]
fn bad_sha256_trailer() {
    let flip_last = |b: &mut Vec<u8>| {
        let n = b.len();
        b[n - 5] ^= 0xa5;
    };
    let (code, err) = damaged("sha.db", flip_last, &["--verify"]);
    assert_eq!(code, 1);
    assert!(err.contains("sha256 trailer mismatch"), "{err}");
}

#[test]
fn random_bytes() {
    let (code, err) = damaged(
        "random.db",
        |b| {
            let mut x = 0x1234_5678_9abc_def0u64;
            for byte in b.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *byte = x as u8;
            }
        },
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("not a bbolt database"), "{err}");
}

#[test]
fn missing_file_and_non_etcd_dir() {
    let (code, err) = run(&["etcd", "snapshot", "status", "/nonexistent/snap.db"]);
    assert_eq!(code, 1);
    assert!(err.contains("/nonexistent/snap.db"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let (code, err) = run(&["etcd", "snapshot", "status", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("not an etcd data dir"), "{err}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _) = run(&["etcd", "snapshot", "status"]);
    assert_eq!(code, 2);
    let (code, _) = run(&["etcd", "snapshot", "status", "x", "-o", "xml"]);
    assert_eq!(code, 2);
}

#[test]
fn check_exits_0_when_clean_and_3_on_damage() {
    let (code, err) = run(&["etcd", "check", fixture().to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(fixture()).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 1;
    let path = dir.path().join("bad-trailer.db");
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_salvor"))
        .args(["etcd", "check", path.to_str().unwrap(), "-o", "json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let codes: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"SNAPSHOT_TRAILER_MISMATCH"), "{codes:?}");
    let (code, _) = run(&["etcd", "check", "/nonexistent"]);
    assert_eq!(code, 3);
}
