//! Quorum-loss recovery against real etcd 3.4: a three-member cluster loses two members
//! (killed, data dirs deleted) and the third is killed too; `salvor etcd recover plan`
//! picks the survivor, and `recover apply`, run step by step as an operator would
//! (starting each member when asked), brings back three healthy voting members holding
//! every key written before the failure.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
use common::salvor;

use std::path::PathBuf;

use serde_json::Value;
use testenv::{EtcdCluster, EtcdOptions, Workload};

fn flag(flags: &[Value], name: &str) -> Option<String> {
    flags
        .iter()
        .filter_map(Value::as_str)
        .find_map(|f| f.strip_prefix(&format!("--{name}=")).map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_lost_cluster_recovered_to_three() {
    let mut cluster = EtcdCluster::start_with(EtcdOptions::members(3))
        .await
        .unwrap();
    let client = cluster.client().await.unwrap();
    let workload = Workload {
        overwrites: 0.2,
        deletes: 0.05,
        ..Workload::new(2_000)
    };
    testenv::load(&client, &workload).await.unwrap();
    let expected = common::all_keys(&client, false).await;
    drop(client);
    // The survivor must have applied everything before the failure: a follower learns
    // the last commit index from the leader's next message, and force-new-cluster drops
    // what it did not know to be committed (the data loss recovery cannot avoid).
    let survivor_client = cluster.member_client(0).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while common::all_keys(&survivor_client, true).await != expected {
        assert!(
            std::time::Instant::now() < deadline,
            "member 0 never caught up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    drop(survivor_client);

    // Two members die with their data. The third, which cannot commit anything without
    // quorum, is stopped by the operator before the recovery (SIGTERM, as systemd
    // does). A SIGKILL could lose its last <100 ms of applied writes: etcd commits its
    // backend in batches and keeps a WAL HardState that only advanced the commit index
    // in a user-space buffer until the next fsync, so the tail would look uncommitted
    // and be dropped, by `--force-new-cluster` as by `recover` (docs/recovery.md).
    let survivor = cluster.members()[0].data_dir.clone();
    let lost: Vec<PathBuf> = (1..3)
        .map(|i| cluster.members()[i].data_dir.clone())
        .collect();
    cluster.kill(1).unwrap();
    cluster.kill(2).unwrap();
    for d in &lost {
        std::fs::remove_dir_all(d).unwrap();
    }
    cluster.stop(0).await.unwrap();

    // Plan: the survivor is chosen; the lost dirs are listed as unusable.
    let tmp = tempfile::tempdir().unwrap();
    let plan_path = tmp.path().join("plan.json");
    let (code, out, err) = salvor(&[
        "etcd",
        "recover",
        "plan",
        survivor.to_str().unwrap(),
        lost[0].to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(plan["source"], survivor.to_str().unwrap());
    assert_eq!(plan["candidates"][1]["usable"], false);
    let steps = plan["steps"].as_array().unwrap();
    let actions: Vec<&str> = steps
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "forceNewCluster",
            "startMember",
            "addLearner",
            "startMember",
            "promote",
            "addLearner",
            "startMember",
            "promote",
            "verify"
        ]
    );
    std::fs::write(&plan_path, &out).unwrap();
    let plan_str = plan_path.to_str().unwrap();

    // A dry run changes nothing.
    let (code, out, _) = salvor(&["etcd", "recover", "apply", "--plan", plan_str, "--dry-run"]);
    assert_eq!(code, 0);
    assert!(out.contains("wouldRun"), "{out}");
    assert!(!tmp.path().join("plan.json.state").exists());

    // Apply, starting each member when asked, as an operator would.
    let mut rounds = 0;
    loop {
        rounds += 1;
        assert!(rounds < 12, "apply did not converge");
        let (code, out, err) = salvor(&[
            "etcd", "recover", "apply", "--plan", plan_str, "--wait", "3s", "-o", "json",
        ]);
        let report: Value = serde_json::from_str(&out).unwrap_or_else(|_| {
            let log = std::fs::read_to_string(&cluster.members()[0].log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "{out} {err}\nm0 log:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        });
        if code == 0 {
            assert_eq!(report["complete"], true, "{out}");
            break;
        }
        assert_eq!(code, 4, "{out} {err}");
        let step = &report["waitingFor"]["step"];
        assert_eq!(step["action"], "startMember");
        let name = step["name"].as_str().unwrap();
        let index = cluster
            .members()
            .iter()
            .position(|m| m.name == name)
            .unwrap();
        let data_dir = PathBuf::from(step["dataDir"].as_str().unwrap());
        let flags = step["flags"].as_array().unwrap();
        let (initial, state, learner) = match flag(flags, "initial-cluster") {
            Some(initial) => (initial, flag(flags, "initial-cluster-state").unwrap(), true),
            // The recovered source member: its WAL holds the membership.
            None => (cluster.initial_cluster(), "existing".to_string(), false),
        };
        cluster
            .start_member_with(index, &data_dir, &initial, &state, learner)
            .await
            .unwrap();
    }

    // Three voting members, every key on each.
    let client = cluster.client().await.unwrap();
    let members = client.member_list().await.unwrap().members;
    assert_eq!(members.len(), 3);
    assert!(members.iter().all(|m| !m.is_learner));
    for index in 0..3 {
        let c = cluster.member_client(index).await.unwrap();
        let got = common::all_keys(&c, true).await;
        assert_eq!(got.len(), expected.len(), "member {index}");
        assert!(got == expected, "member {index} differs");
    }
    // The rebuilt cluster takes writes.
    client.put("/after-recovery", "ok").await.unwrap();
    // Running apply again finds everything done.
    let (code, _, err) = salvor(&["etcd", "recover", "apply", "--plan", plan_str]);
    assert_eq!(code, 0, "{err}");
    // The survivor's own data dir was never modified: it still plans the same.
    assert!(survivor.join("member/wal").is_dir());
}
