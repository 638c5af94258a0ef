//! `salvor restore` end to end: cluster A (newer profile) backed up, then restored into
//! empty clusters of the older profile — from the backup and from an etcd snapshot of
//! A imported with `backup import-etcd` — with namespace and storage class mapping,
//! checked object by object; a dry run changes nothing; a second run changes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
use common::salvor;

use std::collections::BTreeMap;

use serde_json::Value;
use testenv::apiserver::objects::ListOptions;
use testenv::apiserver::workload::ClusterWorkload;
use testenv::apiserver::{ApiServerOptions, KubeCluster, KubeClusterOptions, OLDER};

const KINDS: &[(&str, &str, &str)] = &[
    ("", "v1", "configmaps"),
    ("", "v1", "secrets"),
    ("", "v1", "services"),
    ("", "v1", "serviceaccounts"),
    ("", "v1", "persistentvolumeclaims"),
    ("", "v1", "pods"),
    ("apps", "v1", "deployments"),
    ("apps", "v1", "replicasets"),
    ("rbac.authorization.k8s.io", "v1", "roles"),
    ("rbac.authorization.k8s.io", "v1", "rolebindings"),
    ("example.com", "v1", "widgets"),
];

/// Objects of one namespace by (resource, name).
async fn namespace_objects(kube: &KubeCluster, ns: &str) -> BTreeMap<(String, String), Value> {
    let api = kube.server().api();
    let mut out = BTreeMap::new();
    for (g, v, r) in KINDS {
        let Some(rt) = api.discovery().get(g, v, r) else {
            continue;
        };
        let list = api
            .list(&rt, Some(ns), &ListOptions::default())
            .await
            .unwrap();
        for item in list["items"].as_array().unwrap() {
            let name = item["metadata"]["name"].as_str().unwrap().to_string();
            out.insert((r.to_string(), name), item.clone());
        }
    }
    out
}

/// What must survive a restore: the object without server-owned and mapped fields.
fn essence(resource: &str, o: &Value) -> Value {
    let mut o = o.clone();
    let meta = o["metadata"].as_object_mut().unwrap();
    for k in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "managedFields",
        "namespace",
        "ownerReferences",
        "selfLink",
    ] {
        meta.remove(k);
    }
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    match resource {
        "services" => {
            let spec = o["spec"].as_object_mut().unwrap();
            spec.remove("clusterIP");
            spec.remove("clusterIPs");
            for p in spec
                .get_mut("ports")
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                p.as_object_mut().unwrap().remove("nodePort");
            }
        }
        "persistentvolumeclaims" => {
            o["spec"]
                .as_object_mut()
                .unwrap()
                .remove("storageClassName");
        }
        "pods" => {
            o["spec"].as_object_mut().unwrap().remove("nodeName");
        }
        "rolebindings" => {
            for s in o["subjects"].as_array_mut().into_iter().flatten() {
                s.as_object_mut().unwrap().remove("namespace");
            }
        }
        _ => {}
    }
    o
}

async fn older_cluster() -> (KubeCluster, tempfile::TempDir) {
    let kube = KubeCluster::start(KubeClusterOptions {
        server: ApiServerOptions {
            profile: &OLDER,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    kube.server()
        .write_kubeconfig(&dir.path().join("kc"))
        .unwrap();
    (kube, dir)
}

async fn check_restored(a: &KubeCluster, b: &KubeCluster) {
    let source = namespace_objects(a, "app-000").await;
    let restored = namespace_objects(b, "moved-000").await;
    assert_eq!(
        source.keys().collect::<Vec<_>>(),
        restored.keys().collect::<Vec<_>>(),
        "the objects of app-000 are all in moved-000"
    );
    let uids: BTreeMap<String, String> = restored
        .values()
        .map(|o| {
            (
                o["metadata"]["uid"].as_str().unwrap().to_string(),
                o["metadata"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for ((resource, name), object) in &source {
        let new = &restored[&(resource.clone(), name.clone())];
        assert_eq!(
            essence(resource, object),
            essence(resource, new),
            "{resource}/{name}"
        );
        // Owners point at B's objects, by the owner's name.
        let owners_a = object["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let owners_b = new["metadata"]["ownerReferences"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(owners_a.len(), owners_b.len(), "{resource}/{name}");
        for (oa, ob) in owners_a.iter().zip(&owners_b) {
            assert_eq!(oa["name"], ob["name"]);
            assert_eq!(
                uids.get(ob["uid"].as_str().unwrap()),
                ob["name"].as_str().map(str::to_string).as_ref(),
                "{resource}/{name}: owner uid is not B's"
            );
        }
        if resource == "persistentvolumeclaims" {
            assert_eq!(object["spec"]["storageClassName"], "fast-ssd");
            assert_eq!(new["spec"]["storageClassName"], "standard");
        }
        if resource == "rolebindings" {
            for s in new["subjects"].as_array().into_iter().flatten() {
                if s["kind"] == "ServiceAccount" {
                    assert_eq!(s["namespace"], "moved-000");
                }
            }
        }
    }
    assert!(source.keys().any(|k| k.0 == "pods") && source.keys().any(|k| k.0 == "widgets"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_and_an_etcd_snapshot_restore_into_an_older_cluster() {
    let a = KubeCluster::start(KubeClusterOptions::default())
        .await
        .unwrap();
    ClusterWorkload::sized(300, 9)
        .load(a.server().api(), 16)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kc_a = dir.path().join("kc-a");
    a.server().write_kubeconfig(&kc_a).unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    let (code, _, err) = salvor(&[
        "backup",
        "create",
        "a",
        "--storage",
        repo,
        "--kubeconfig",
        kc_a.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let transforms = dir.path().join("transforms.yaml");
    std::fs::write(&transforms, "storageClassMapping: {fast-ssd: standard}\n").unwrap();

    let (b, b_dir) = older_cluster().await;
    let kc_b = b_dir.path().join("kc");
    let kc_b = kc_b.to_str().unwrap();
    let restore_args = |extra: &[&'static str]| {
        let mut args = vec![
            "restore",
            "create",
            "--from-backup",
            "a",
            "--storage",
            repo,
            "--kubeconfig",
            kc_b,
            "--include-namespaces",
            "app-000",
            "--namespace-mapping",
            "app-000:moved-000",
            "--transforms",
            transforms.to_str().unwrap(),
            "--include-controller-owned",
        ];
        args.extend_from_slice(extra);
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        salvor(&refs)
    };

    // Dry run: the plan, and no write at all.
    let before = b
        .etcd()
        .client()
        .await
        .unwrap()
        .status()
        .await
        .unwrap()
        .header
        .unwrap()
        .revision;
    let (code, out, err) = run(restore_args(&["--dry-run", "-o", "json"]));
    assert_eq!(code, 0, "{err}");
    let plan: Value = serde_json::from_str(&out).unwrap();
    let creates = plan["summary"]["create"].as_u64().unwrap();
    assert!(creates > 30, "{creates}");
    let after = b
        .etcd()
        .client()
        .await
        .unwrap()
        .status()
        .await
        .unwrap()
        .header
        .unwrap()
        .revision;
    assert_eq!(before, after, "the dry run wrote to the cluster");

    let (code, out, err) = run(restore_args(&["--name", "first", "-o", "json"]));
    assert_eq!(code, 0, "{out}{err}");
    let record: Value = serde_json::from_str(&out).unwrap();
    let summary = &record["report"]["summary"];
    // The namespace's `default` ServiceAccount, planned as a create, is made by the
    // target when the namespace is: then it is skipped as unchanged.
    let created = summary["created"].as_u64().unwrap();
    assert!(creates - created <= 1, "{summary}");
    assert_eq!(
        created + summary["skipped"].as_u64().unwrap(),
        creates,
        "{summary}"
    );
    assert_eq!(summary["failed"], 0);
    check_restored(&a, &b).await;

    // Re-running converges: nothing to do.
    let (code, out, err) = run(restore_args(&["--name", "second", "-o", "json"]));
    assert_eq!(code, 0, "{out}{err}");
    let record: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(record["report"]["summary"]["created"], 0);
    assert_eq!(record["report"]["summary"]["updated"], 0);
    let (code, out, _) = salvor(&["restore", "get", "--storage", repo, "-o", "json"]);
    assert_eq!(code, 0);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let (code, out, _) = salvor(&["restore", "describe", "first", "--storage", repo]);
    assert_eq!(code, 0);
    assert!(out.contains("moved-000"), "{out}");

    // From an etcd snapshot of A, into another empty older cluster.
    let snapshot = dir.path().join("a.db");
    testenv::snapshot(&a.etcd().client().await.unwrap(), &snapshot)
        .await
        .unwrap();
    let (code, out, err) = salvor(&[
        "backup",
        "import-etcd",
        snapshot.to_str().unwrap(),
        "--storage",
        repo,
        "--name",
        "from-etcd",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (c, c_dir) = older_cluster().await;
    let kc_c = c_dir.path().join("kc");
    let mut args = restore_args(&[]);
    args[3] = "from-etcd".into();
    args[7] = kc_c.to_str().unwrap().into();
    let (code, out, err) = run(args);
    assert_eq!(code, 0, "{out}{err}");
    check_restored(&a, &c).await;
}
