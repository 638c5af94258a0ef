//! `salvor etcd check` and `salvor etcd wal dump` on the data dir of a real etcd member:
//! clean when undamaged, the WAL damage found at its segment and offset, and the dump
//! showing every write.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
use common::{copy_dir, salvor};

use serde_json::Value;
use testenv::{EtcdCluster, Workload};

fn codes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] != "info")
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_and_dump_a_real_data_dir() {
    let mut cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();
    let workload = Workload {
        overwrites: 0.2,
        deletes: 0.1,
        ..Workload::new(3_000)
    };
    let report = testenv::load(&client, &workload).await.unwrap();
    cluster.stop(0).await.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    copy_dir(&cluster.members()[0].data_dir, &clean);
    let clean_str = clean.to_str().unwrap();

    let (code, out, err) = salvor(&["etcd", "check", clean_str, "-o", "json"]);
    let report_json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(code, 0, "{err} {:?}", codes(&report_json));
    assert!(codes(&report_json).is_empty(), "{:?}", codes(&report_json));
    assert_eq!(report_json["kind"], "dataDir");

    // The dump shows every put and delete the load made.
    let (code, out, err) = salvor(&["etcd", "wal", "dump", clean_str, "--entry-type", "IRRPut"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!("Entry types (IRRPut) count is : {}", report.puts)),
        "{}",
        &out[out.len().saturating_sub(200)..]
    );
    let (_, out, _) = salvor(&[
        "etcd",
        "wal",
        "dump",
        clean_str,
        "--entry-type",
        "IRRDeleteRange",
        "-o",
        "json",
    ]);
    let dump: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        dump["entries"].as_array().unwrap().len() as u64,
        report.deletes
    );

    // A flipped byte in the middle of the WAL: found at its segment, exit 3; the dump stops
    // there as etcd does, and with --raw keeps going.
    let damaged = tmp.path().join("damaged");
    copy_dir(&clean, &damaged);
    let wal_dir = damaged.join("member/wal");
    let mut segments: Vec<_> = std::fs::read_dir(&wal_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    segments.sort();
    let segment = &segments[0];
    let mut bytes = std::fs::read(segment).unwrap();
    let data_end = bytes.iter().rposition(|&b| b != 0).unwrap();
    let at = data_end / 2;
    bytes[at] ^= 0x5a;
    std::fs::write(segment, &bytes).unwrap();
    let (code, out, _) = salvor(&["etcd", "check", damaged.to_str().unwrap(), "-o", "json"]);
    assert_eq!(code, 3);
    let report_json: Value = serde_json::from_str(&out).unwrap();
    let wal_error = report_json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"].as_str().unwrap().starts_with("WAL_") && f["severity"] == "error")
        .unwrap_or_else(|| panic!("{:?}", codes(&report_json)));
    assert!(
        wal_error["location"]["file"]
            .as_str()
            .unwrap()
            .ends_with(segment.file_name().unwrap().to_str().unwrap())
    );
    let offset = wal_error["location"]["offset"].as_u64().unwrap();
    assert!(
        offset <= at as u64 && at as u64 - offset < 70_000,
        "finding at {offset}, damage at {at}"
    );

    let (code, strict, _) = salvor(&["etcd", "wal", "dump", damaged.to_str().unwrap()]);
    assert_eq!(code, 3);
    let (code, raw, _) = salvor(&["etcd", "wal", "dump", damaged.to_str().unwrap(), "--raw"]);
    assert_eq!(code, 3);
    assert!(
        raw.lines().count() > strict.lines().count() + 100,
        "--raw reads past the damage"
    );
}
