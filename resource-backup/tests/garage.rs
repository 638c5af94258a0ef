//! Backups into a real S3 server (Garage) and the failures users meet: the server
//! dying mid-backup, one resource type failing on the API server, wrong credentials.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use resource_backup::backup::{self, BackupOptions};
use resource_backup::catalog;
use resource_backup::crypto::Identities;
use resource_backup::repo::format::Phase;
use resource_backup::storage::{S3Credentials, S3Options};
use resource_backup::{
    Cluster, ClusterArgs, Error, Repository, Storage, StorageOptions, StorageUrl,
};
use testenv::Garage;
use testenv::apiserver::workload::ClusterWorkload;
use testenv::apiserver::{KubeCluster, KubeClusterOptions};

async fn cluster(objects: usize) -> (KubeCluster, tempfile::TempDir, Cluster) {
    let kube = KubeCluster::start(KubeClusterOptions::default())
        .await
        .unwrap();
    ClusterWorkload::sized(objects, 3)
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

fn storage(garage: &Garage, prefix: &str, secret: &str) -> Storage {
    let url = StorageUrl::parse(&garage.url(prefix)).unwrap();
    let options = StorageOptions {
        s3: S3Options {
            endpoint: Some(garage.endpoint()),
            region: Some(garage.region().to_string()),
            path_style: None,
            credentials: Some(S3Credentials {
                access_key_id: garage.access_key_id().to_string(),
                secret_access_key: secret.to_string(),
            }),
        },
        retry_timeout: Duration::from_secs(3),
    };
    Storage::open(&url, &options).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_on_s3_survive_a_dead_server_and_a_failing_type() {
    let garage = Arc::new(tokio::sync::Mutex::new(Garage::start().await.unwrap()));
    let (kube, _dir, cluster) = cluster(600).await;
    let (key, secret, url) = {
        let g = garage.lock().await;
        (
            g.access_key_id().to_string(),
            g.secret_access_key().to_string(),
            g.url("team-a"),
        )
    };
    let _ = key;
    let repo = Repository::open_or_init(storage(&*garage.lock().await, "team-a", &secret))
        .await
        .unwrap();
    assert_eq!(repo.storage().url().to_string(), url);

    // Garage dies after a few types: a clear storage error, and no complete backup.
    let mut options = BackupOptions::new("nightly");
    options.pack_size = 32 << 10; // many small packs, uploaded all along
    options.concurrency = 2;
    // Garage is stopped as soon as one pack is stored with its index, so that the
    // re-run has something to reuse, while the backup is still running.
    let killer = {
        let garage = garage.clone();
        let storage = repo.storage().clone();
        tokio::spawn(async move {
            while storage.list("index/").await.unwrap_or_default().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            garage.lock().await.stop().await.unwrap();
        })
    };
    let err = backup::create(&cluster, &repo, &options, &|_| {})
        .await
        .unwrap_err();
    killer.await.unwrap();
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("s3://salvor/team-a/"), "{message}");

    garage.lock().await.start_again().await.unwrap();
    let listed = repo.list_backups().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].manifest.is_none() && listed[0].started.is_some());
    let incomplete = repo.manifest("nightly").await.unwrap_err().to_string();
    assert!(incomplete.contains("incomplete"), "{incomplete}");
    let uploaded_before = repo.storage().list("packs/").await.unwrap().len();
    assert!(uploaded_before > 0);

    // The re-run completes and reuses what was uploaded.
    let manifest = backup::create(&cluster, &repo, &options, &|_| {})
        .await
        .unwrap();
    assert_eq!(manifest.phase, Phase::Completed);
    assert!(
        manifest.counts.new_objects < manifest.counts.objects,
        "{} new of {}",
        manifest.counts.new_objects,
        manifest.counts.objects
    );
    let report = catalog::verify(&repo, "nightly", &Identities::default(), None)
        .await
        .unwrap();
    assert!(report.ok(), "{:#?}", report.problems);
    assert_eq!(report.objects_checked, manifest.counts.objects);

    // One resource type failing on the API server: PartiallyFailed, naming it.
    kube.server().fail_resource("configmaps");
    let partial = backup::create(&cluster, &repo, &BackupOptions::new("partial"), &|_| {})
        .await
        .unwrap();
    assert_eq!(partial.phase, Phase::PartiallyFailed);
    assert_eq!(partial.errors.len(), 1, "{:#?}", partial.errors);
    assert_eq!(partial.errors[0].resource.as_deref(), Some("configmaps"));
    assert!(
        partial.errors[0].message.contains("500"),
        "{}",
        partial.errors[0].message
    );
    assert!(!partial.counts.by_resource.contains_key("configmaps"));
    assert_eq!(
        partial.counts.objects + manifest.counts.by_resource["configmaps"],
        manifest.counts.objects
    );
    kube.server().clear_faults();

    // Wrong credentials: a clear error before anything is written.
    let wrong = storage(&*garage.lock().await, "team-a", &"0".repeat(64));
    let err = Repository::open_or_init(wrong)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("s3://salvor/team-a/salvor-repository.json")
            && err.to_lowercase().contains("denied"),
        "{err}"
    );
}
