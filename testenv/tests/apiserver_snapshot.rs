//! Objects written through the API server decode, from an etcd snapshot of the same
//! cluster, with the offline reader (`etcd_tools::objects`, what `salvor etcd objects`
//! runs) to exactly what the API returns — with encryption at rest on for secrets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use etcd_tools::objects::{ObjectFilter, for_each_object};
use serde_json::{Value, json};
use snapshot_format::etcd::{OpenOptions, Snapshot};
use snapshot_format::k8s::EncryptionConfig;
use testenv::apiserver::workload::ClusterWorkload;
use testenv::apiserver::{ApiServerOptions, KubeCluster, KubeClusterOptions};

const ENCRYPTION: &str = "apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
- resources: [secrets]
  providers:
  - secretbox:
      keys:
      - name: box1
        secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_reader_sees_what_the_api_serves() {
    let encryption = EncryptionConfig::from_slice(ENCRYPTION.as_bytes()).unwrap();
    let cluster = KubeCluster::start(KubeClusterOptions {
        server: ApiServerOptions {
            encryption: Some(encryption.clone()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let c = common::client(cluster.server(), None);
    let dir = tempfile::tempdir().unwrap();
    let test = async {
        let workload = ClusterWorkload::sized(400, 3);
        let report = workload.load(cluster.server().api(), 16).await.unwrap();
        assert_eq!(report.objects, workload.object_count());
        // Some history: updates, a delete, a status write.
        common::expect(
            &c,
            "PATCH",
            "/api/v1/namespaces/app-000/configmaps/web-0-config",
            Some(json!({"data": {"region": "us-east-1"}})),
            200,
        )
        .await;
        common::expect(
            &c,
            "DELETE",
            "/api/v1/namespaces/app-001/secrets/web-0-credentials",
            None,
            200,
        )
        .await;

        // Everything the API serves, by etcd key, in the preferred version of each resource.
        let mut served: BTreeMap<String, Value> = BTreeMap::new();
        for resource in cluster.server().api().discovery().storage_resources() {
            let prefix = if resource.group.is_empty() {
                "/api/v1".to_string()
            } else {
                format!("/apis/{}/{}", resource.group, resource.version)
            };
            let list = common::expect(
                &c,
                "GET",
                &format!("{prefix}/{}", resource.resource),
                None,
                200,
            )
            .await;
            for item in list["items"].as_array().unwrap() {
                let key = snapshot_format::k8s::keys::storage_key(
                    &resource.group,
                    &resource.resource,
                    item["metadata"]["namespace"].as_str(),
                    item["metadata"]["name"].as_str().unwrap(),
                )
                .unwrap();
                served.insert(key, item.clone());
            }
        }
        assert!(
            served.len() >= report.objects,
            "{} served, {} created",
            served.len(),
            report.objects
        );

        let etcd = cluster.etcd().client().await.unwrap();
        let path = dir.path().join("cluster.db");
        testenv::snapshot(&etcd, &path).await.unwrap();
        let snap = Snapshot::open(&path, &OpenOptions::default()).unwrap();
        let filter = ObjectFilter {
            encryption: Some(Arc::new(encryption)),
            ..ObjectFilter::default()
        };
        let mut offline: BTreeMap<String, Value> = BTreeMap::new();
        let mut encrypted = 0;
        for_each_object(&snap, &filter, |view| {
            assert!(
                view.row.error.is_none() && view.row.issues.is_empty(),
                "{:?}",
                view.row
            );
            if matches!(
                view.row.encoding,
                etcd_tools::objects::Encoding::Encrypted { .. }
            ) {
                encrypted += 1;
            }
            let mut object = view.object.unwrap();
            object["metadata"]["resourceVersion"] = json!(view.row.mod_revision.to_string());
            offline.insert(view.row.key.clone(), object);
            Ok(())
        })
        .unwrap();
        assert!(encrypted > 0, "secrets are encrypted at rest");
        assert_eq!(
            offline.keys().collect::<Vec<_>>(),
            served.keys().collect::<Vec<_>>()
        );
        for (key, object) in &served {
            assert_eq!(&offline[key], object, "{key}");
        }
    };
    tokio::time::timeout(Duration::from_secs(180), test)
        .await
        .expect("finished within 180 s");
    cluster.stop().await.unwrap();
}
