//! `backup::create` against testenv's Kubernetes API server over real etcd, into a
//! repository in a directory: point-in-time contents under concurrent writes,
//! incremental uploads, filters with related cluster-scoped objects, encryption,
//! signatures, tampering, garbage collection and locks.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use resource_backup::backup::{self, BackupOptions};
use resource_backup::catalog::{self, StoredBackup};
use resource_backup::crypto::{Identities, Recipients, SigningKey};
use resource_backup::repo::format::{LockKind, Manifest, Phase};
use resource_backup::{Cluster, ClusterArgs, Repository, Storage, StorageOptions, StorageUrl};
use serde_json::{Value, json};
use testenv::apiserver::objects::ListOptions;
use testenv::apiserver::workload::ClusterWorkload;
use testenv::apiserver::{KubeCluster, KubeClusterOptions};

type Key = (String, String, Option<String>, String); // group, resource, namespace, name

async fn start(objects: usize) -> (KubeCluster, tempfile::TempDir, Cluster) {
    let kube = KubeCluster::start(KubeClusterOptions::default())
        .await
        .unwrap();
    ClusterWorkload::sized(objects, 7)
        .load(kube.server().api(), 16)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    kube.server().write_kubeconfig(&kubeconfig).unwrap();
    let cluster = Cluster::connect(&ClusterArgs {
        kubeconfig: Some(kubeconfig),
        context: None,
    })
    .await
    .unwrap();
    (kube, dir, cluster)
}

async fn repo_in(dir: &Path) -> Repository {
    let storage = Storage::open(
        &StorageUrl::Dir(dir.to_path_buf()),
        &StorageOptions::default(),
    )
    .unwrap();
    Repository::open_or_init(storage).await.unwrap()
}

async fn run(cluster: &Cluster, repo: &Repository, options: &BackupOptions) -> Manifest {
    backup::create(cluster, repo, options, &|_| {})
        .await
        .unwrap()
}

/// What the API serves at `rv` for every type the backup listed.
async fn served_at(kube: &KubeCluster, manifest: &Manifest) -> BTreeMap<Key, Value> {
    let api = kube.server().api();
    let mut out = BTreeMap::new();
    for listed in &manifest.resources {
        // "resource.group/version" or "resource/version"
        let (gr, version) = listed.rsplit_once('/').unwrap();
        let (resource, group) = gr.split_once('.').unwrap_or((gr, ""));
        let resource_type = api.discovery().get(group, version, resource).unwrap();
        let list = api
            .list(
                &resource_type,
                None,
                &ListOptions {
                    resource_version: Some(manifest.resource_version.clone()),
                    resource_version_match: Some("Exact".into()),
                    ..ListOptions::default()
                },
            )
            .await
            .unwrap();
        for mut item in list["items"].as_array().unwrap().clone() {
            item["apiVersion"] = json!(resource_type.api_version());
            item["kind"] = json!(resource_type.kind);
            let key = (
                group.to_string(),
                resource.to_string(),
                item["metadata"]["namespace"].as_str().map(str::to_string),
                item["metadata"]["name"].as_str().unwrap().to_string(),
            );
            out.insert(key, item);
        }
    }
    out
}

/// The objects `download` writes.
fn downloaded(dir: &Path) -> BTreeMap<Key, Value> {
    let mut out = BTreeMap::new();
    for ns in std::fs::read_dir(dir).unwrap() {
        let ns = ns.unwrap().path();
        for gr in std::fs::read_dir(&ns).unwrap() {
            let gr = gr.unwrap().path();
            let gr_name = gr.file_name().unwrap().to_str().unwrap().to_string();
            let (resource, group) = gr_name.split_once('.').unwrap_or((&gr_name, ""));
            for file in std::fs::read_dir(&gr).unwrap() {
                let file = file.unwrap().path();
                let value: Value =
                    serde_yaml::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
                let key = (
                    group.to_string(),
                    resource.to_string(),
                    value["metadata"]["namespace"].as_str().map(str::to_string),
                    value["metadata"]["name"].as_str().unwrap().to_string(),
                );
                out.insert(key, value);
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_is_the_cluster_at_its_resource_version_while_a_writer_runs() {
    let (kube, dir, cluster) = start(600).await;
    let repo = repo_in(&dir.path().join("repo")).await;

    // A writer that keeps creating, changing and deleting objects during the backup.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let api = kube.server().api().clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let cms = api.discovery().get("", "v1", "configmaps").unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let name = format!("churn-{i}");
                api.create(
                    &cms,
                    Some("app-000"),
                    json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": name}, "data": {"i": i.to_string()}}),
                )
                .await
                .unwrap();
                if i >= 3 {
                    let old = format!("churn-{}", i - 3);
                    api.delete(&cms, Some("app-000"), &old, &Default::default())
                        .await
                        .unwrap();
                }
                i += 1;
            }
            i
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut options = BackupOptions::new("first");
    options.page_size = 50; // many pages, so the writer lands between them
    options.concurrency = 3;
    let manifest = run(&cluster, &repo, &options).await;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes > 5, "the writer made only {writes} changes");
    assert_eq!(manifest.phase, Phase::Completed, "{:#?}", manifest.errors);
    assert!(manifest.consistent);
    assert!(manifest.counts.objects > 500, "{}", manifest.counts.objects);

    let out = dir.path().join("download");
    let stored = StoredBackup::open(&repo, "first", Identities::default())
        .await
        .unwrap();
    let files = catalog::download(&stored, &out).await.unwrap();
    assert_eq!(files, manifest.counts.objects);
    let got = downloaded(&out);
    let want = served_at(&kube, &manifest).await;
    let missing: Vec<_> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<_> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, extra {extra:?}"
    );
    for (key, value) in &want {
        assert_eq!(got.get(key), Some(value), "{key:?}");
    }
    // The writer's objects are there exactly as they were at the resourceVersion.
    assert!(got.keys().any(|k| k.3.starts_with("churn-")));

    let report = catalog::verify(&repo, "first", &Identities::default(), None)
        .await
        .unwrap();
    assert!(report.ok(), "{:#?}", report.problems);
    assert_eq!(report.objects_checked, manifest.counts.objects);

    // The writer's last changes land in the second backup; the third, of an unchanged
    // cluster, uploads (almost) nothing.
    let second = run(&cluster, &repo, &BackupOptions::new("second")).await;
    assert!(
        second.counts.new_objects <= 6,
        "{}",
        second.counts.new_objects
    );
    let third = run(&cluster, &repo, &BackupOptions::new("third")).await;
    assert_eq!(third.counts.objects, second.counts.objects);
    assert_eq!(third.counts.new_objects, 0);
    let ratio = third.counts.uploaded_bytes as f64 / manifest.counts.uploaded_bytes as f64;
    assert!(
        ratio < 0.05,
        "an unchanged backup uploaded {ratio:.3} of the first"
    );
    repo.delete_backup("third", false).await.unwrap();

    // Deleting the first keeps everything the second needs.
    let gc = repo.delete_backup("first", false).await.unwrap();
    assert!(gc.packs_deleted.is_empty(), "{gc:#?}");
    let report = catalog::verify(&repo, "second", &Identities::default(), None)
        .await
        .unwrap();
    assert!(report.ok(), "{:#?}", report.problems);
    assert!(repo.manifest("first").await.is_err());
    // Deleting the last one leaves no pack behind.
    let gc = repo.delete_backup("second", false).await.unwrap();
    assert!(!gc.packs_deleted.is_empty());
    assert!(repo.storage().list("packs/").await.unwrap().is_empty());
    assert!(repo.storage().list("index/").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_backup_takes_the_cluster_objects_it_uses() {
    let (kube, dir, cluster) = start(300).await;
    let repo = repo_in(&dir.path().join("repo")).await;
    let mut options = BackupOptions::new("ns");
    options.filters.include_namespaces = vec!["app-000".into()];
    options.filters.exclude_resources = vec!["events*".into()];
    let manifest = run(&cluster, &repo, &options).await;
    assert_eq!(manifest.phase, Phase::Completed);
    let stored = StoredBackup::open(&repo, "ns", Identities::default())
        .await
        .unwrap();
    let entries: BTreeSet<(String, String, Option<String>, String)> = stored
        .entries()
        .iter()
        .map(|e| {
            (
                e.group.clone(),
                e.resource.clone(),
                e.namespace.clone(),
                e.name.clone(),
            )
        })
        .collect();

    // Every namespaced object of app-000, and nothing of other namespaces.
    let api = kube.server().api();
    let all = served_at(&kube, &manifest).await;
    let mut expected: BTreeSet<Key> = all
        .keys()
        .filter(|k| k.2.as_deref() == Some("app-000") && !k.1.starts_with("events"))
        .cloned()
        .collect();
    assert!(
        entries
            .iter()
            .all(|e| e.2.is_none() || e.2.as_deref() == Some("app-000"))
    );

    // Related cluster-scoped objects, derived independently from the API's objects.
    let ns_objects: Vec<&Value> = all
        .iter()
        .filter(|(k, _)| k.2.as_deref() == Some("app-000"))
        .map(|(_, v)| v)
        .collect();
    let mut related: BTreeSet<Key> = BTreeSet::new();
    let cluster_key =
        |g: &str, r: &str, n: &str| (g.to_string(), r.to_string(), None, n.to_string());
    related.insert(cluster_key("", "namespaces", "app-000"));
    let mut sas = BTreeSet::new();
    for o in &ns_objects {
        match o["kind"].as_str().unwrap() {
            "PersistentVolumeClaim" => {
                let pv = o["spec"]["volumeName"].as_str().unwrap();
                related.insert(cluster_key("", "persistentvolumes", pv));
                let sc = o["spec"]["storageClassName"].as_str().unwrap();
                related.insert(cluster_key("storage.k8s.io", "storageclasses", sc));
            }
            "Widget" => {
                related.insert(cluster_key(
                    "apiextensions.k8s.io",
                    "customresourcedefinitions",
                    "widgets.example.com",
                ));
            }
            "ServiceAccount" => {
                sas.insert(o["metadata"]["name"].as_str().unwrap().to_string());
            }
            "RoleBinding" if o["roleRef"]["kind"] == "ClusterRole" => {
                let cr = o["roleRef"]["name"].as_str().unwrap();
                related.insert(cluster_key("rbac.authorization.k8s.io", "clusterroles", cr));
            }
            _ => {}
        }
    }
    for ((g, r, ns, n), o) in &all {
        if g == "rbac.authorization.k8s.io" && r == "clusterrolebindings" && ns.is_none() {
            let binds_ours = o["subjects"].as_array().into_iter().flatten().any(|s| {
                s["kind"] == "ServiceAccount"
                    && s["namespace"] == "app-000"
                    && sas.contains(s["name"].as_str().unwrap_or(""))
            });
            if binds_ours {
                related.insert(cluster_key(g, r, n));
                let cr = o["roleRef"]["name"].as_str().unwrap();
                related.insert(cluster_key(g, "clusterroles", cr));
            }
        }
    }
    assert!(
        related.iter().any(|k| k.1 == "persistentvolumes"),
        "{related:?}"
    );
    assert!(related.iter().any(|k| k.1 == "customresourcedefinitions"));
    expected.extend(related);
    assert_eq!(entries, expected);
    let _ = api;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_and_signed_backups_verify_and_tampering_is_named() {
    let (kube, dir, cluster) = start(120).await;
    let repo_dir = dir.path().join("repo");
    let repo = repo_in(&repo_dir).await;
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let key = SigningKey::generate().unwrap();
    let api = kube.server().api();
    let secrets = api.discovery().get("", "v1", "secrets").unwrap();
    api.create(
        &secrets,
        Some("app-000"),
        json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "marker"}, "stringData": {"password": "hunter2-plaintext-marker"}}),
    )
    .await
    .unwrap();
    let mut options = BackupOptions::new("sealed");
    options.recipients = Recipients::parse([recipient.as_str()]).unwrap();
    options.signing = Some(key.clone());
    let manifest = run(&cluster, &repo, &options).await;
    assert_eq!(manifest.recipients, vec![recipient.clone()]);

    // Nothing in the repository shows the secret, in plain or base64 form.
    let needles: [&[u8]; 2] = [
        b"hunter2-plaintext-marker",
        b"aHVudGVyMi1wbGFpbnRleHQtbWFya2Vy",
    ];
    for (k, _) in repo.storage().list("").await.unwrap() {
        let bytes = std::fs::read(repo_dir.join(&k)).unwrap();
        for n in needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n),
                "{k} leaks the secret"
            );
        }
    }
    let ids = || Identities::from_x25519(vec![identity.clone()]);
    let public = key.public_key();
    let report = catalog::verify(&repo, "sealed", &ids(), Some(&public))
        .await
        .unwrap();
    assert!(
        report.ok() && report.contents_checked,
        "{:#?}",
        report.problems
    );
    assert!(report.signature.starts_with("valid"));
    // Without the identity: packs are still checked, contents are not.
    let report = catalog::verify(&repo, "sealed", &Identities::default(), Some(&public))
        .await
        .unwrap();
    assert!(report.ok() && !report.contents_checked);
    assert!(
        StoredBackup::open(&repo, "sealed", Identities::default())
            .await
            .is_err()
    );
    // Another signer is not trusted.
    let other = SigningKey::generate().unwrap().public_key();
    let report = catalog::verify(&repo, "sealed", &ids(), Some(&other))
        .await
        .unwrap();
    assert_eq!(report.problems[0].code, "SIGNATURE_INVALID");

    // A changed manifest no longer verifies.
    let manifest_path = repo_dir.join("backups/sealed/manifest.json");
    let original = std::fs::read(&manifest_path).unwrap();
    let mut edited: Value = serde_json::from_slice(&original).unwrap();
    edited["resourceVersion"] = json!("1");
    std::fs::write(&manifest_path, serde_json::to_vec(&edited).unwrap()).unwrap();
    let report = catalog::verify(&repo, "sealed", &ids(), Some(&public))
        .await
        .unwrap();
    assert_eq!(
        report.problems[0].code, "SIGNATURE_INVALID",
        "{:#?}",
        report.problems
    );
    std::fs::write(&manifest_path, &original).unwrap();

    // A flipped byte in a pack is named.
    let pack = &manifest.packs[0];
    let pack_path = repo_dir.join(format!("packs/{}/{pack}.pack", &pack[..2]));
    let mut bytes = std::fs::read(&pack_path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&pack_path, &bytes).unwrap();
    let report = catalog::verify(&repo, "sealed", &ids(), Some(&public))
        .await
        .unwrap();
    let problem = report
        .problems
        .iter()
        .find(|p| p.code == "PACK_HASH_MISMATCH")
        .unwrap();
    assert!(problem.location.contains(pack.as_str()), "{problem:?}");
    assert!(report.problems.iter().any(|p| p.code == "OBJECT_MISSING"));
    // A missing pack too.
    std::fs::remove_file(&pack_path).unwrap();
    let report = catalog::verify(&repo, "sealed", &ids(), None)
        .await
        .unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.code == "PACK_MISSING" && p.location.contains(pack.as_str()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_collection_never_runs_under_a_backup() {
    let dir = tempfile::tempdir().unwrap();
    let repo = repo_in(dir.path()).await;
    let shared = repo.lock(LockKind::Shared, "backup a").await.unwrap();
    let also_shared = repo.lock(LockKind::Shared, "backup b").await.unwrap();
    let err = repo
        .lock(LockKind::Exclusive, "delete x")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("backup a") || err.to_string().contains("backup b"),
        "{err}"
    );
    shared.release().await;
    also_shared.release().await;
    let exclusive = repo.lock(LockKind::Exclusive, "delete x").await.unwrap();
    let err = repo.lock(LockKind::Shared, "backup c").await.unwrap_err();
    assert!(err.to_string().contains("delete x"), "{err}");
    exclusive.release().await;
    assert!(repo.storage().list("locks/").await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_repository_is_reported_not_followed() {
    let (_kube, dir, cluster) = start(60).await;
    let repo_dir = dir.path().join("repo");
    let repo = repo_in(&repo_dir).await;
    let manifest = run(&cluster, &repo, &BackupOptions::new("victim")).await;
    let manifest_path = repo_dir.join("backups/victim/manifest.json");
    let original = std::fs::read(&manifest_path).unwrap();

    // Entries named outside the backup: refused before anything is read.
    let mut edited: Value = serde_json::from_slice(&original).unwrap();
    edited["entries"]["key"] = json!("backups/victim/../../salvor-repository.json");
    std::fs::write(&manifest_path, serde_json::to_vec(&edited).unwrap()).unwrap();
    let err = StoredBackup::open(&repo, "victim", Identities::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("outside the backup"), "{err}");

    // A manifest that claims far more objects than its entries hold.
    let mut edited: Value = serde_json::from_slice(&original).unwrap();
    edited["counts"]["objects"] = json!(u64::MAX);
    std::fs::write(&manifest_path, serde_json::to_vec(&edited).unwrap()).unwrap();
    let err = StoredBackup::open(&repo, "victim", Identities::default())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("entries, the manifest says"),
        "{err}"
    );

    // Garbage for a manifest: listed as invalid, verify says so.
    std::fs::write(&manifest_path, b"\x00\xffnot json").unwrap();
    let listed = repo.list_backups().await.unwrap();
    assert!(
        listed[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not a backup manifest")
    );
    let report = catalog::verify(&repo, "victim", &Identities::default(), None)
        .await
        .unwrap();
    assert_eq!(report.problems[0].code, "MANIFEST_INVALID");
    std::fs::write(&manifest_path, &original).unwrap();

    // A zstd bomb for a pack index (a gigabyte of zeros in a few kB): refused at its
    // limit, the pack's objects then count as lost.
    let pack = &manifest.packs[0];
    let index_path = repo_dir.join(format!("index/{pack}.json.zst"));
    let mut bomb = zstd::stream::write::Encoder::new(Vec::new(), 19).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..1024 {
        std::io::Write::write_all(&mut bomb, &zeros).unwrap();
    }
    let bomb = bomb.finish().unwrap();
    assert!(bomb.len() < 1 << 20);
    std::fs::write(&index_path, &bomb).unwrap();
    let blobs = repo.load_blobs().await.unwrap();
    assert_eq!(blobs.broken_indexes.len(), 1, "{:?}", blobs.broken_indexes);
    assert!(blobs.broken_indexes[0].contains("decompresses to more than"));
    let report = catalog::verify(&repo, "victim", &Identities::default(), None)
        .await
        .unwrap();
    assert!(
        report.problems.iter().any(|p| p.code == "INDEX_INVALID"),
        "{:#?}",
        report.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_cannot_pin_lists_gets_a_backup_that_says_so() {
    let (kube, dir, cluster) = start(120).await;
    let repo = repo_in(&dir.path().join("repo")).await;
    kube.server().reject_exact_lists(true);
    let manifest = run(&cluster, &repo, &BackupOptions::new("unpinned")).await;
    assert!(!manifest.consistent);
    assert_eq!(manifest.phase, Phase::Completed, "{:#?}", manifest.errors);
    assert_eq!(manifest.warnings.len(), 1);
    assert!(
        manifest.warnings[0].message.contains("not point-in-time"),
        "{:?}",
        manifest.warnings
    );
    // Nothing is missing: the objects are those the API serves now (nothing changed).
    kube.server().reject_exact_lists(false);
    let out = dir.path().join("download");
    let stored = StoredBackup::open(&repo, "unpinned", Identities::default())
        .await
        .unwrap();
    catalog::download(&stored, &out).await.unwrap();
    let mut pinned = manifest.clone();
    pinned.resource_version = served_rv(&kube).await;
    let want = served_at(&kube, &pinned).await;
    assert_eq!(downloaded(&out), want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_api_errors_are_retried_into_a_complete_backup() {
    let (kube, dir, cluster) = start(300).await;
    let repo = repo_in(&dir.path().join("repo")).await;
    // Every 5th resource request fails, with 429 or with a 500 from an etcd timeout.
    kube.server().fail_every(5);
    let mut options = BackupOptions::new("flaky");
    options.page_size = 40;
    let manifest = run(&cluster, &repo, &options).await;
    let injected = kube.server().injected_failures();
    kube.server().clear_faults();
    assert!(
        injected >= 5,
        "only {injected} requests failed: the fault did not bite"
    );
    assert_eq!(manifest.phase, Phase::Completed, "{:#?}", manifest.errors);
    assert!(manifest.consistent);
    let out = dir.path().join("download");
    let stored = StoredBackup::open(&repo, "flaky", Identities::default())
        .await
        .unwrap();
    catalog::download(&stored, &out).await.unwrap();
    assert_eq!(downloaded(&out), served_at(&kube, &manifest).await);
}

/// The current resourceVersion of the API server.
async fn served_rv(kube: &KubeCluster) -> String {
    let api = kube.server().api();
    let namespaces = api.discovery().get("", "v1", "namespaces").unwrap();
    let list = api
        .list(&namespaces, None, &ListOptions::default())
        .await
        .unwrap();
    list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}
