//! Helpers shared by the CLI tests.

// Each test binary uses its own subset of these.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

/// Runs the salvor binary; returns exit code, stdout and stderr. A panic is a failure.
pub fn salvor(args: &[&str]) -> (i32, String, String) {
    salvor_env(args, &[])
}

/// Runs the salvor binary with extra environment variables.
pub fn salvor_env(args: &[&str], env: &[(String, String)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_salvor"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !stderr.contains("panicked"),
        "salvor {args:?} panicked: {stderr}"
    );
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

/// `promtool`; a missing one fails the test (the checks are part of the acceptance).
pub fn promtool() -> Command {
    let probe = Command::new("promtool").arg("--version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "promtool is missing: install Debian's `prometheus` package (.ci/run does)"
    );
    Command::new("promtool")
}

/// `promtool check metrics` accepts the page without a complaint (lint included).
pub fn assert_promtool_accepts_metrics(metrics: &str) {
    use std::io::Write;
    use std::process::Stdio;
    let mut check = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    check
        .stdin
        .take()
        .unwrap()
        .write_all(metrics.as_bytes())
        .unwrap();
    let output = check.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool check metrics: {said}\n{metrics}"
    );
    // Lint problems are printed even with exit code 0 by some versions.
    assert!(said.trim().is_empty(), "promtool check metrics: {said}");
}

/// Copies a directory tree (a data dir, for damaging a copy).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Writes a valid etcd-shaped db of `revisions` 60 kB records with the bulk writer (about
/// 60 kB per revision), with a sha256 trailer when asked: big enough that commands on it
/// are still running a moment after they start.
pub fn big_db(path: &Path, revisions: i64, trailer: bool) {
    use sha2::Digest;
    use snapshot_format::bbolt::{BoltWriter, WriterOptions};
    let file = std::fs::File::create(path).unwrap();
    let mut w =
        BoltWriter::create(std::io::BufWriter::new(file), WriterOptions::default()).unwrap();
    w.begin_bucket(b"key", 0).unwrap();
    let value = vec![7u8; 60_000];
    for rev in 1..=revisions {
        let mut k = rev.to_be_bytes().to_vec();
        k.push(b'_');
        k.extend_from_slice(&0i64.to_be_bytes());
        // A KeyValue {key, create_revision, mod_revision, version, value}.
        let mut kv = Vec::new();
        let key = format!("/big/{rev}");
        kv.push(0x0a);
        kv.push(key.len() as u8);
        kv.extend_from_slice(key.as_bytes());
        for (tag, v) in [(0x10u8, rev as u64), (0x18, rev as u64), (0x20, 1)] {
            kv.push(tag);
            let mut v = v;
            while v >= 0x80 {
                kv.push((v as u8) | 0x80);
                v >>= 7;
            }
            kv.push(v as u8);
        }
        kv.push(0x2a);
        let mut len = value.len();
        while len >= 0x80 {
            kv.push((len as u8) | 0x80);
            len >>= 7;
        }
        kv.push(len as u8);
        kv.extend_from_slice(&value);
        w.put(&k, &kv).unwrap();
    }
    w.end_bucket().unwrap();
    w.begin_bucket(b"meta", 0).unwrap();
    w.end_bucket().unwrap();
    let (out, _) = w.finish().unwrap();
    drop(out);
    if trailer {
        let bytes = std::fs::read(path).unwrap();
        let digest = sha2::Sha256::digest(&bytes);
        let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        std::io::Write::write_all(&mut f, &digest).unwrap();
    }
}

/// Starts salvor with `args`, kills it after `after`, and asserts it had not finished.
pub fn kill_after(args: &[&str], after: std::time::Duration) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_salvor"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "salvor {args:?} finished before it was killed"
    );
}

/// Every key with its value and mod revision at the newest revision, read from `client`
/// (serializable: the member's own copy, without going through the leader).
pub async fn all_keys(
    client: &etcd_rpc::Client,
    serializable: bool,
) -> std::collections::BTreeMap<Vec<u8>, (Vec<u8>, i64)> {
    client
        .range(etcd_rpc::proto::RangeRequest {
            key: vec![0],
            range_end: vec![0],
            serializable,
            ..Default::default()
        })
        .await
        .unwrap()
        .kvs
        .into_iter()
        .map(|kv| (kv.key, (kv.value, kv.mod_revision)))
        .collect()
}

/// `salvor etcd snapshot restore` arguments for one member of a new cluster.
pub fn restore_args<'a>(
    snapshot: &'a str,
    data_dir: &'a str,
    name: &'a str,
    initial_cluster: &'a str,
    token: &'a str,
    peer_url: &'a str,
) -> Vec<&'a str> {
    vec![
        "etcd",
        "snapshot",
        "restore",
        snapshot,
        "--data-dir",
        data_dir,
        "--name",
        name,
        "--initial-cluster",
        initial_cluster,
        "--initial-cluster-token",
        token,
        "--initial-advertise-peer-urls",
        peer_url,
    ]
}
