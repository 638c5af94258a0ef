//! `salvor etcd objects` on a snapshot of a cluster written through testenv's
//! Kubernetes API server: every object decodes to exactly what the API serves
//! (resourceVersion = the key's mod_revision), secrets encrypted at rest included.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
use common::salvor;

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use snapshot_format::k8s::EncryptionConfig;
use snapshot_format::k8s::keys::storage_key;
use testenv::apiserver::objects::ListOptions;
use testenv::apiserver::workload::ClusterWorkload;
use testenv::apiserver::{ApiServerOptions, KubeCluster, KubeClusterOptions, OLDER};

const ENCRYPTION: &str = "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets, configmaps]
  providers:
  - aesgcm:
      keys:
      - name: gcm1
        secret: MDEyMzQ1Njc4OWFiY2RlZg==
  - identity: {}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn salvor_reads_a_cluster_written_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("encryption.yaml");
    std::fs::write(&config_path, ENCRYPTION).unwrap();
    let cluster = KubeCluster::start(KubeClusterOptions {
        server: ApiServerOptions {
            profile: &OLDER,
            encryption: Some(EncryptionConfig::from_file(&config_path).unwrap()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let snapshot = dir.path().join("cluster.db");
    let served = tokio::time::timeout(Duration::from_secs(120), async {
        let api = cluster.server().api();
        ClusterWorkload::sized(300, 11).load(api, 16).await.unwrap();
        // A policy/v1beta1 object, as an older cluster stores it.
        let pdbs = api
            .discovery()
            .get("policy", "v1beta1", "poddisruptionbudgets")
            .unwrap();
        let pdb = json!({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "app-000"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web-0"}}}});
        api.create(&pdbs, Some("app-000"), pdb).await.unwrap();

        let mut served: BTreeMap<String, Value> = BTreeMap::new();
        for resource in api.discovery().storage_resources() {
            // PodDisruptionBudgets are read back in the version they were written in.
            let resource = if resource.resource == "poddisruptionbudgets" {
                pdbs.clone()
            } else {
                resource
            };
            let list = api
                .list(&resource, None, &ListOptions::default())
                .await
                .unwrap();
            for item in list["items"].as_array().unwrap() {
                let key = storage_key(
                    &resource.group,
                    &resource.resource,
                    item["metadata"]["namespace"].as_str(),
                    item["metadata"]["name"].as_str().unwrap(),
                )
                .unwrap();
                served.insert(key, item.clone());
            }
        }
        let etcd = cluster.etcd().client().await.unwrap();
        testenv::snapshot(&etcd, &snapshot).await.unwrap();
        served
    })
    .await
    .expect("finished within 120 s");
    cluster.stop().await.unwrap();

    let file = snapshot.to_str().unwrap();
    let config = config_path.to_str().unwrap();
    let (code, out, err) = salvor(&[
        "etcd",
        "objects",
        "ls",
        file,
        "-o",
        "json",
        "--encryption-config",
        config,
    ]);
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    let rows = list["objects"].as_array().unwrap();
    assert_eq!(list["failed"], 0);
    let encrypted = rows
        .iter()
        .filter(|r| r["encoding"].get("encrypted").is_some())
        .count();
    let expected = served
        .keys()
        .filter(|k| k.starts_with("/registry/secrets/") || k.starts_with("/registry/configmaps/"))
        .count();
    assert_eq!(
        encrypted, expected,
        "every secret and configmap is encrypted at rest"
    );
    let (code, out, err) = salvor(&[
        "etcd",
        "objects",
        "dump",
        file,
        "-o",
        "json",
        "--encryption-config",
        config,
    ]);
    assert_eq!(code, 0, "{err}");
    let dumped: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dumped.len(), rows.len());
    let keys: Vec<&str> = rows.iter().map(|r| r["key"].as_str().unwrap()).collect();
    assert_eq!(keys, served.keys().map(String::as_str).collect::<Vec<_>>());
    for (row, object) in rows.iter().zip(dumped) {
        let key = row["key"].as_str().unwrap();
        let mut object = object;
        object["metadata"]["resourceVersion"] =
            json!(row["modRevision"].as_i64().unwrap().to_string());
        assert_eq!(object, served[key], "{key}");
    }
}
