//! `salvor etcd objects` on a snapshot of real etcd holding Kubernetes objects exactly as
//! kube-apiserver stores them: the v1.35 protobuf fixtures under their storage keys, a
//! JSON custom resource, and one damaged value.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
use common::salvor;

use std::path::{Path, PathBuf};

use serde_json::Value;
use snapshot_format::k8s::keys::{builtin_resource_for_kind, storage_key};
use testenv::EtcdCluster;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testenv/fixtures/k8s-protobuf/v1.35.0")
}

/// (storage key, fixture JSON) of every storable fixture with a known resource.
fn storable() -> Vec<(String, PathBuf, Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("pb") {
            continue;
        }
        let json_path = path.with_extension("json");
        let Ok(text) = std::fs::read_to_string(&json_path) else {
            continue;
        };
        let json: Value = serde_json::from_str(&text).unwrap();
        let (Some(api_version), Some(kind)) = (json["apiVersion"].as_str(), json["kind"].as_str())
        else {
            continue;
        };
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        let Some(builtin) = builtin_resource_for_kind(group, kind) else {
            continue;
        };
        // One version per resource: the fixtures hold several versions of some kinds.
        if out.iter().any(|(k, _, _): &(String, PathBuf, Value)| {
            k.contains(&format!("/{}/", builtin.key_prefix))
        }) {
            continue;
        }
        let ns = builtin.namespaced.then_some("namespaceValue");
        let key = storage_key(builtin.group, builtin.resource, ns, "nameValue").unwrap();
        out.push((key, path, json));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_in_a_real_snapshot() {
    let mut cluster = EtcdCluster::start(1).await.unwrap();
    let client = cluster.client().await.unwrap();
    let objects = storable();
    assert!(
        objects.len() > 40,
        "fixtures with storage keys: {}",
        objects.len()
    );
    for (key, pb, _) in &objects {
        client
            .put(key.as_bytes(), std::fs::read(pb).unwrap())
            .await
            .unwrap();
    }
    let widget = serde_json::json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1", "namespace": "default", "labels": {"app": "web"}},
        "spec": {"size": 3},
    });
    client
        .put(
            "/registry/example.com/widgets/default/w1",
            serde_json::to_vec(&widget).unwrap(),
        )
        .await
        .unwrap();
    client
        .put(
            "/registry/pods/default/broken",
            b"k8s\0\x0a\xff\xff".to_vec(),
        )
        .await
        .unwrap();
    // A Secret encrypted at rest, as kube-apiserver writes it with aescbc.
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("encryption.yaml");
    std::fs::write(
        &config_path,
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n\
         - resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: key1\n\
         \x20       secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n  - identity: {}\n",
    )
    .unwrap();
    let config = snapshot_format::k8s::EncryptionConfig::from_file(&config_path).unwrap();
    let secret_pb = std::fs::read(fixtures().join("core.v1.Secret.pb")).unwrap();
    let secret_key = "/registry/secrets/default/sealed";
    let sealed = config
        .encrypt("secrets", secret_key.as_bytes(), &secret_pb)
        .unwrap();
    assert!(sealed.starts_with(b"k8s:enc:aescbc:v1:key1:"));
    client.put(secret_key, sealed).await.unwrap();
    // A second revision of one object, then its deletion, for history.
    let (pod_key, pod_pb, pod_json) = objects
        .iter()
        .find(|(k, _, _)| k.starts_with("/registry/pods/"))
        .unwrap()
        .clone();
    client
        .put(pod_key.as_bytes(), std::fs::read(&pod_pb).unwrap())
        .await
        .unwrap();
    let snap = dir.path().join("k8s.db");
    cluster.etcdctl_snapshot_save(&snap).unwrap();
    let file = snap.to_str().unwrap();

    // ls: every object, the broken one counted.
    let (code, out, err) = salvor(&["etcd", "objects", "ls", file, "-o", "json"]);
    assert_eq!(code, 0, "{err}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list["objects"].as_array().unwrap().len(), objects.len() + 3);
    assert_eq!(list["failed"], 2, "the broken value and the encrypted one");
    let sealed_row = list["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["key"] == secret_key)
        .unwrap();
    assert_eq!(sealed_row["encoding"]["encrypted"]["provider"], "aescbc");
    assert_eq!(sealed_row["encoding"]["encrypted"]["key"], "key1");
    assert!(
        sealed_row["error"].as_str().unwrap().contains("key1"),
        "{sealed_row}"
    );
    // With the cluster's configuration it decrypts and decodes.
    let config_arg = config_path.to_str().unwrap();
    let (code, out, err) = salvor(&[
        "etcd",
        "objects",
        "get",
        file,
        "secrets/default/sealed",
        "--encryption-config",
        config_arg,
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let secret: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(secret["kind"], "Secret");
    let (_, out, _) = salvor(&[
        "etcd",
        "objects",
        "ls",
        file,
        "--encryption-config",
        config_arg,
        "-o",
        "json",
    ]);
    let decrypted: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(decrypted["failed"], 1, "only the broken value is left");
    let (_, out, _) = salvor(&["etcd", "objects", "ls", file, "pods", "-o", "json"]);
    let pods: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pods["objects"].as_array().unwrap().len(), 2);
    let (_, out, _) = salvor(&[
        "etcd", "objects", "ls", file, "-l", "app=web", "-n", "default", "-o", "json",
    ]);
    let selected: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(selected["objects"][0]["kind"], "Widget");
    assert_eq!(selected["objects"].as_array().unwrap().len(), 1);

    // get by resource/namespace/name and by etcd key: the API's JSON.
    let (code, out, err) = salvor(&[
        "etcd",
        "objects",
        "get",
        file,
        "pods/namespaceValue/nameValue",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0, "{err}");
    let pod: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(pod["kind"], "Pod");
    assert_eq!(pod["metadata"], pod_json["metadata"]);
    assert_eq!(
        pod["spec"]["containers"][0]["name"],
        pod_json["spec"]["containers"][0]["name"]
    );
    let (code, out, _) = salvor(&[
        "etcd",
        "objects",
        "get",
        file,
        "/registry/example.com/widgets/default/w1",
    ]);
    assert_eq!(code, 0);
    let w: Value = serde_yaml::from_str(&out).unwrap();
    assert_eq!(w, widget);
    let (code, out, _) = salvor(&[
        "etcd",
        "objects",
        "get",
        file,
        "pods/namespaceValue/nameValue",
        "--history",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    let h: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(h["history"].as_array().unwrap().len(), 2);
    let (code, _, err) = salvor(&["etcd", "objects", "get", file, "pods/default/missing"]);
    assert_eq!(code, 1);
    assert!(err.contains("no object"), "{err}");

    // dump: a tree of YAML files, the broken value skipped and counted.
    let out_dir = dir.path().join("dump");
    let (code, _, err) = salvor(&[
        "etcd",
        "objects",
        "dump",
        file,
        "--dir",
        out_dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "two values cannot be decoded: {err}");
    assert!(
        err.contains(&format!(
            "{} objects written, 2 could not be decoded",
            objects.len() + 1
        )),
        "{err}"
    );
    let pod_file = out_dir.join("core/pods/namespaceValue/nameValue.yaml");
    let dumped: Value = serde_yaml::from_str(&std::fs::read_to_string(&pod_file).unwrap()).unwrap();
    assert_eq!(dumped, pod);
    assert!(out_dir.join("example.com/widgets/default/w1.yaml").exists());
    // A stream of JSON lines.
    let (_, out, _) = salvor(&[
        "etcd",
        "objects",
        "dump",
        file,
        "widgets.example.com",
        "-o",
        "json",
    ]);
    assert_eq!(serde_json::from_str::<Value>(out.trim()).unwrap(), widget);

    // stats: counts per resource, history share.
    let (code, out, _) = salvor(&["etcd", "objects", "stats", file, "-o", "json"]);
    assert_eq!(code, 0);
    let stats: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["objects"], objects.len() as u64 + 3);
    let pods = stats["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "pods")
        .unwrap();
    assert_eq!(pods["objects"], 2);
    assert!(stats["historyShare"].as_f64().unwrap() > 0.0);
    assert_eq!(stats["mostRevisions"][0]["key"], pod_key.as_str());
}
