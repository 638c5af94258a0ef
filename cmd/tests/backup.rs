//! `salvor backup …` end to end: a testenv cluster (real etcd, testenv's API server)
//! backed up into Garage over S3, read back with every command from nothing but the
//! bucket; an etcd snapshot of the same cluster imported as a backup.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

mod common;
use common::{salvor, salvor_env};

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use testenv::Garage;
use testenv::apiserver::workload::ClusterWorkload;
use testenv::apiserver::{KubeCluster, KubeClusterOptions};

fn yaml_files(dir: &Path) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(
                    rel,
                    serde_yaml::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap(),
                );
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_commands_work_from_the_bucket_alone() {
    let garage = Garage::start().await.unwrap();
    let kube = KubeCluster::start(KubeClusterOptions::default())
        .await
        .unwrap();
    ClusterWorkload::sized(400, 5)
        .load(kube.server().api(), 16)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    kube.server().write_kubeconfig(&kubeconfig).unwrap();
    let kc = kubeconfig.to_str().unwrap();
    let env = garage.env();
    let url = garage.url("prod");
    let metrics = dir.path().join("backup.prom");

    let (code, out, err) = salvor_env(
        &[
            "backup",
            "create",
            "nightly",
            "--storage",
            &url,
            "--kubeconfig",
            kc,
            "-o",
            "json",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let manifest: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(manifest["phase"], "Completed");
    assert_eq!(manifest["consistent"], true);
    let objects = manifest["counts"]["objects"].as_u64().unwrap();
    assert!(objects > 300, "{objects}");
    // The metrics file for node_exporter's textfile collector agrees with the manifest.
    let page = std::fs::read_to_string(&metrics).unwrap();
    common::assert_promtool_accepts_metrics(&page);
    let labels = format!("{{storage=\"{url}\"}}");
    for (name, value) in [
        ("salvor_backup_last_run_success", 1),
        ("salvor_backup_objects", objects),
        (
            "salvor_backup_uploaded_bytes",
            manifest["counts"]["uploadedBytes"].as_u64().unwrap(),
        ),
        ("salvor_backup_errors", 0),
    ] {
        assert!(
            page.contains(&format!("{name}{labels} {value}\n")),
            "{name} {value}:\n{page}"
        );
    }

    let (code, out, _) = salvor_env(&["backup", "get", "--storage", &url, "-o", "json"], &env);
    assert_eq!(code, 0);
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed[0]["name"], "nightly");
    assert_eq!(listed[0]["phase"], "Completed");
    assert_eq!(listed[0]["objects"], objects);

    let (code, out, _) = salvor_env(&["backup", "describe", "nightly", "--storage", &url], &env);
    assert_eq!(code, 0);
    assert!(
        out.contains("deployments.apps") && out.contains("app-000"),
        "{out}"
    );

    let (code, out, err) = salvor_env(&["backup", "verify", "nightly", "--storage", &url], &env);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!("{objects} of {objects} hashed")),
        "{out}"
    );

    let (code, out, _) = salvor_env(&["backup", "logs", "nightly", "--storage", &url], &env);
    assert_eq!(code, 0);
    assert!(out.contains("pinned to resourceVersion"), "{out}");

    let target = dir.path().join("yaml");
    let (code, _, err) = salvor_env(
        &[
            "backup",
            "download",
            "nightly",
            target.to_str().unwrap(),
            "--storage",
            &url,
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let files = yaml_files(&target);
    assert_eq!(files.len() as u64, objects);
    // Each file is the object the API serves (nothing changed since the backup).
    let api = kube.server().api();
    let deployments = api.discovery().get("apps", "v1", "deployments").unwrap();
    for (path, value) in files
        .iter()
        .filter(|(p, _)| p.contains("/deployments.apps/"))
    {
        let ns = value["metadata"]["namespace"].as_str().unwrap();
        let name = value["metadata"]["name"].as_str().unwrap();
        let mut live = api.get(&deployments, Some(ns), name).await.unwrap();
        live["apiVersion"] = value["apiVersion"].clone();
        live["kind"] = value["kind"].clone();
        assert_eq!(&live, value, "{path}");
    }

    // Wrong credentials: a clear error.
    let mut wrong = env.clone();
    for (k, v) in &mut wrong {
        if k == "AWS_SECRET_ACCESS_KEY" {
            *v = "0".repeat(64);
        }
    }
    let (code, _, err) = salvor_env(&["backup", "get", "--storage", &url], &wrong);
    assert_eq!(code, 1);
    assert!(
        err.to_lowercase().contains("denied") || err.contains("403"),
        "{err}"
    );

    let (code, out, _) = salvor_env(&["backup", "delete", "nightly", "--storage", &url], &env);
    assert_eq!(code, 0, "{out}");
    let (_, out, _) = salvor_env(&["backup", "get", "--storage", &url, "-o", "json"], &env);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        serde_json::json!([])
    );

    // The same cluster from an etcd snapshot: every object as the API serves it.
    let snapshot = dir.path().join("etcd.db");
    let etcd = kube.etcd().client().await.unwrap();
    testenv::snapshot(&etcd, &snapshot).await.unwrap();
    let repo = dir.path().join("repo");
    let repo = repo.to_str().unwrap();
    // Signed with a key from `backup keygen`, encrypted to an age recipient.
    let key = dir.path().join("signing.pem");
    let (code, public, err) = salvor(&["backup", "keygen", "--sign-key", key.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let public_pem = dir.path().join("signing.pem.pub");
    assert!(
        std::fs::read_to_string(&public_pem)
            .unwrap()
            .contains("BEGIN PUBLIC KEY")
    );
    let (code, _, err) = salvor(&["backup", "keygen", "--sign-key", key.to_str().unwrap()]);
    assert_eq!(code, 1, "keygen must not overwrite a key: {err}");
    let identity = age::x25519::Identity::generate();
    let identity_file = dir.path().join("age.key");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(
            &identity_file,
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .unwrap();
    }
    let recipient = identity.to_public().to_string();
    let id = identity_file.to_str().unwrap();
    let (code, out, err) = salvor(&[
        "backup",
        "import-etcd",
        snapshot.to_str().unwrap(),
        "--storage",
        repo,
        "--name",
        "from-etcd",
        "-o",
        "json",
        "-r",
        &recipient,
        "--sign-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let imported: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(imported["phase"], "Completed", "{:#}", imported["errors"]);
    let target = dir.path().join("from-etcd");
    let (code, _, err) = salvor(&[
        "backup",
        "download",
        "from-etcd",
        target.to_str().unwrap(),
        "--storage",
        repo,
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("--identity"), "{err}");
    let (code, _, err) = salvor(&[
        "backup",
        "download",
        "from-etcd",
        target.to_str().unwrap(),
        "--storage",
        repo,
        "-i",
        id,
    ]);
    assert_eq!(code, 0, "{err}");
    let from_etcd = yaml_files(&target);
    assert!(
        from_etcd.len() as u64 >= objects - 50,
        "{} vs {objects}",
        from_etcd.len()
    );
    let mut compared = 0;
    for (path, value) in &from_etcd {
        let api_version = value["apiVersion"].as_str().unwrap();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        let resource = path.split('/').nth(1).unwrap();
        let resource = resource.split('.').next().unwrap();
        let Some(rt) = api.discovery().get(group, version, resource) else {
            continue;
        };
        let ns = value["metadata"]["namespace"].as_str();
        let name = value["metadata"]["name"].as_str().unwrap();
        let mut live = api.get(&rt, ns, name).await.unwrap();
        live["apiVersion"] = value["apiVersion"].clone();
        live["kind"] = value["kind"].clone();
        assert_eq!(&live, value, "{path}");
        compared += 1;
    }
    assert!(compared as u64 > objects / 2, "compared only {compared}");
    let pubkey = public_pem.to_str().unwrap();
    let (code, out, _) = salvor(&[
        "backup",
        "verify",
        "from-etcd",
        "--storage",
        repo,
        "-i",
        id,
        "--public-key",
        pubkey,
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("valid, ed25519 key {}", public.trim())),
        "{out}"
    );

    // A tampered pack: verify exits 3 and names it.
    let packs = dir.path().join("repo/packs");
    let shard = std::fs::read_dir(&packs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let pack = std::fs::read_dir(&shard)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&pack).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 1;
    std::fs::write(&pack, bytes).unwrap();
    let (code, out, _) = salvor(&["backup", "verify", "from-etcd", "--storage", repo, "-i", id]);
    assert_eq!(code, 3, "{out}");
    let stem = pack.file_stem().unwrap().to_str().unwrap();
    assert!(
        out.contains("PACK_HASH_MISMATCH") && out.contains(&stem[..16]),
        "{out}"
    );
}
