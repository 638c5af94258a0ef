//! kube-rs (`kube::Client`, `Discovery`, `DynamicObject`) against testenv's API server:
//! every discovered resource type lists, takes a create, reads back, patches and deletes;
//! a custom resource appears in discovery once its CRD exists; watches stream changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::discovery::{Discovery, Scope};
use serde_json::{Value, json};
use testenv::apiserver::{KubeCluster, KubeClusterOptions};
use tokio_stream::StreamExt as _;

/// What a new object of `resource` needs beyond metadata to pass validation.
fn body_for(group: &str, resource: &str, name: &str) -> Value {
    let pod_spec = json!({"containers": [{"name": "c", "image": "busybox"}]});
    let template = json!({"metadata": {"labels": {"app": name}}, "spec": pod_spec});
    let selector = json!({"matchLabels": {"app": name}});
    match (group, resource) {
        ("", "pods") => json!({"spec": pod_spec}),
        ("", "podtemplates") => json!({"template": template}),
        ("", "services") => json!({"spec": {"ports": [{"port": 80}]}}),
        ("", "persistentvolumeclaims") => {
            json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
        }
        ("", "persistentvolumes") => {
            json!({"spec": {"accessModes": ["ReadWriteOnce"], "capacity": {"storage": "1Gi"}, "hostPath": {"path": "/tmp"}}})
        }
        ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets") => {
            json!({"spec": {"selector": selector, "template": template}})
        }
        ("batch", "jobs") => {
            json!({"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": pod_spec["containers"]}}}})
        }
        ("batch", "cronjobs") => {
            json!({"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}})
        }
        ("rbac.authorization.k8s.io", "rolebindings" | "clusterrolebindings") => {
            json!({"roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}})
        }
        ("storage.k8s.io", "storageclasses") => json!({"provisioner": "example.com/none"}),
        ("apiextensions.k8s.io", "customresourcedefinitions") => json!({"spec": {
            "group": "kube-rs.example.com", "scope": "Cluster",
            "names": {"plural": "customresourcedefinitions", "kind": "Thing"},
            "versions": [{"name": "v1", "served": true, "storage": true}]}}),
        _ => json!({}),
    }
}

fn object_name(group: &str, resource: &str) -> String {
    match (group, resource) {
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            "customresourcedefinitions.kube-rs.example.com".into()
        }
        _ => format!("kube-rs-{resource}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_rs_lists_and_writes_every_resource_type() {
    let cluster = KubeCluster::start(KubeClusterOptions::default())
        .await
        .unwrap();
    let client = common::client(cluster.server(), None);
    let test = async {
        let version = client.apiserver_version().await.unwrap();
        assert_eq!(version.git_version, "v1.34.1-testenv");
        let namespaces: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
        );
        let ns = DynamicObject::new(
            "kube-rs",
            &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
        );
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let crd: Api<DynamicObject> = Api::all_with(
            client.clone(),
            &kube::discovery::ApiResource::erase::<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>(&()),
        );
        let widget_crd: DynamicObject =
            serde_json::from_value(testenv::apiserver::workload::widget_crd()).unwrap();
        crd.create(&PostParams::default(), &widget_crd)
            .await
            .unwrap();

        let discovery = Discovery::new(client.clone()).run().await.unwrap();
        let mut tested = Vec::new();
        for group in discovery.groups() {
            for (ar, caps) in group.recommended_resources() {
                let api: Api<DynamicObject> = match caps.scope {
                    Scope::Namespaced => Api::namespaced_with(client.clone(), "kube-rs", &ar),
                    Scope::Cluster => Api::all_with(client.clone(), &ar),
                };
                let what = format!("{}/{} {}", ar.group, ar.version, ar.plural);
                let before = api
                    .list(&ListParams::default())
                    .await
                    .unwrap_or_else(|e| panic!("listing {what}: {e}"));
                let name = object_name(&ar.group, &ar.plural);
                let mut object = DynamicObject::new(&name, &ar);
                object.data = body_for(&ar.group, &ar.plural, &name);
                object.metadata.labels =
                    Some([("made-by".to_string(), "kube-rs".to_string())].into());
                let created = api
                    .create(&PostParams::default(), &object)
                    .await
                    .unwrap_or_else(|e| panic!("creating {what}: {e}"));
                assert_eq!(
                    created.metadata.name.as_deref(),
                    Some(name.as_str()),
                    "{what}"
                );
                assert!(created.metadata.uid.is_some(), "{what}");
                let types = created.types.clone().unwrap();
                assert_eq!(
                    (types.api_version.as_str(), types.kind.as_str()),
                    (ar.api_version.as_str(), ar.kind.as_str())
                );
                let fetched = api
                    .get(&name)
                    .await
                    .unwrap_or_else(|e| panic!("getting {what}: {e}"));
                assert_eq!(
                    fetched.metadata.resource_version, created.metadata.resource_version,
                    "{what}"
                );
                let patched = api
                    .patch(
                        &name,
                        &PatchParams::default(),
                        &Patch::Merge(json!({"metadata": {"annotations": {"patched": "yes"}}})),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("patching {what}: {e}"));
                assert_eq!(
                    patched.metadata.annotations.unwrap()["patched"],
                    "yes",
                    "{what}"
                );
                let listed = api
                    .list(&ListParams::default().labels("made-by=kube-rs"))
                    .await
                    .unwrap();
                assert_eq!(listed.items.len(), 1, "{what}");
                assert_eq!(
                    listed.items[0].metadata.name.as_deref(),
                    Some(name.as_str())
                );
                api.delete(&name, &DeleteParams::default())
                    .await
                    .unwrap_or_else(|e| panic!("deleting {what}: {e}"));
                if ar.plural != "namespaces" {
                    let after = api.list(&ListParams::default()).await.unwrap();
                    assert_eq!(after.items.len(), before.items.len(), "{what}");
                }
                tested.push(format!("{}/{}", ar.group, ar.plural));
            }
        }
        for expected in [
            "/pods",
            "/services",
            "apps/deployments",
            "batch/cronjobs",
            "rbac.authorization.k8s.io/clusterroles",
            "apiextensions.k8s.io/customresourcedefinitions",
            "example.com/widgets",
            "admissionregistration.k8s.io/validatingwebhookconfigurations",
        ] {
            assert!(
                tested.iter().any(|t| t == expected),
                "{expected} not discovered: {tested:?}"
            );
        }
        assert!(tested.len() > 45, "{}", tested.len());

        // A watch from the current resourceVersion sees a create, a patch and a delete.
        let ar = kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&());
        let configmaps: Api<DynamicObject> = Api::namespaced_with(client.clone(), "kube-rs", &ar);
        let list = configmaps.list(&ListParams::default()).await.unwrap();
        let version = list.metadata.resource_version.unwrap();
        let events = configmaps
            .watch(&WatchParams::default().timeout(20), &version)
            .await
            .unwrap();
        let mut events = std::pin::pin!(events);
        let mut cm = DynamicObject::new("watched", &ar);
        cm.data = json!({"data": {"a": "1"}});
        configmaps
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
        configmaps
            .patch(
                "watched",
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"a": "2"}})),
            )
            .await
            .unwrap();
        configmaps
            .delete("watched", &DeleteParams::default())
            .await
            .unwrap();
        let mut seen = Vec::new();
        while seen.len() < 3 {
            let event = tokio::time::timeout(Duration::from_secs(10), events.next())
                .await
                .expect("a watch event within 10 s");
            match event.expect("the watch stays open").unwrap() {
                WatchEvent::Added(o) => seen.push(format!("ADDED {}", o.data["data"]["a"])),
                WatchEvent::Modified(o) => seen.push(format!("MODIFIED {}", o.data["data"]["a"])),
                WatchEvent::Deleted(o) => seen.push(format!("DELETED {}", o.data["data"]["a"])),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seen, ["ADDED \"1\"", "MODIFIED \"2\"", "DELETED \"2\""]);

        // A watch from a compacted revision ends with a 410 Expired error event.
        let etcd = cluster.etcd().client().await.unwrap();
        let now = configmaps
            .list(&ListParams::default())
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
        etcd.compact(now.parse().unwrap(), true).await.unwrap();
        let old = configmaps
            .watch(&WatchParams::default().timeout(20), &version)
            .await
            .unwrap();
        let mut old = std::pin::pin!(old);
        let event = tokio::time::timeout(Duration::from_secs(10), old.next())
            .await
            .expect("an event within 10 s");
        match event.expect("an event").unwrap() {
            WatchEvent::Error(error) => {
                assert_eq!((error.code, error.reason.as_str()), (410, "Expired"))
            }
            other => panic!("expected a 410, got {other:?}"),
        }
    };
    tokio::time::timeout(Duration::from_secs(180), test)
        .await
        .expect("finished within 180 s");
    cluster.stop().await.unwrap();
}

/// Asserts discovery serves `K` with k8s-openapi's plural and scope.
fn check_against_k8s_openapi<K>(discovery: &Discovery, seen: &mut usize)
where
    K: k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>,
    K::Scope: 'static,
{
    let gvk = kube::api::GroupVersionKind::gvk(K::GROUP, K::VERSION, K::KIND);
    let (ar, caps) = discovery
        .resolve_gvk(&gvk)
        .unwrap_or_else(|| panic!("{gvk:?} is not served"));
    assert_eq!(ar.plural, K::URL_PATH_SEGMENT, "{gvk:?}");
    let namespaced = std::any::TypeId::of::<K::Scope>()
        == std::any::TypeId::of::<k8s_openapi::NamespaceResourceScope>();
    assert_eq!(caps.scope == Scope::Namespaced, namespaced, "{gvk:?}");
    *seen += 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_agrees_with_k8s_openapi() {
    use k8s_openapi::api::{
        admissionregistration, apps, autoscaling, batch, certificates, coordination, core,
        discovery, events, networking, node, policy, rbac, scheduling, storage,
    };
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration;
    let cluster = KubeCluster::start(KubeClusterOptions::default())
        .await
        .unwrap();
    let client = common::client(cluster.server(), None);
    let served = tokio::time::timeout(Duration::from_secs(60), Discovery::new(client).run())
        .await
        .expect("discovery within 60 s")
        .unwrap();
    let mut seen = 0;
    check_against_k8s_openapi::<core::v1::ConfigMap>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::Endpoints>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::Event>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::LimitRange>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::Namespace>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::Node>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::PersistentVolume>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::PersistentVolumeClaim>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::Pod>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::PodTemplate>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::ReplicationController>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::ResourceQuota>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::Secret>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::Service>(&served, &mut seen);
    check_against_k8s_openapi::<core::v1::ServiceAccount>(&served, &mut seen);
    check_against_k8s_openapi::<admissionregistration::v1::MutatingWebhookConfiguration>(
        &served, &mut seen,
    );
    check_against_k8s_openapi::<admissionregistration::v1::ValidatingWebhookConfiguration>(
        &served, &mut seen,
    );
    check_against_k8s_openapi::<admissionregistration::v1::ValidatingAdmissionPolicy>(
        &served, &mut seen,
    );
    check_against_k8s_openapi::<apiextensions::v1::CustomResourceDefinition>(&served, &mut seen);
    check_against_k8s_openapi::<apiregistration::v1::APIService>(&served, &mut seen);
    check_against_k8s_openapi::<apps::v1::ControllerRevision>(&served, &mut seen);
    check_against_k8s_openapi::<apps::v1::DaemonSet>(&served, &mut seen);
    check_against_k8s_openapi::<apps::v1::Deployment>(&served, &mut seen);
    check_against_k8s_openapi::<apps::v1::ReplicaSet>(&served, &mut seen);
    check_against_k8s_openapi::<apps::v1::StatefulSet>(&served, &mut seen);
    check_against_k8s_openapi::<autoscaling::v1::HorizontalPodAutoscaler>(&served, &mut seen);
    check_against_k8s_openapi::<autoscaling::v2::HorizontalPodAutoscaler>(&served, &mut seen);
    check_against_k8s_openapi::<batch::v1::CronJob>(&served, &mut seen);
    check_against_k8s_openapi::<batch::v1::Job>(&served, &mut seen);
    check_against_k8s_openapi::<certificates::v1::CertificateSigningRequest>(&served, &mut seen);
    check_against_k8s_openapi::<coordination::v1::Lease>(&served, &mut seen);
    check_against_k8s_openapi::<discovery::v1::EndpointSlice>(&served, &mut seen);
    check_against_k8s_openapi::<events::v1::Event>(&served, &mut seen);
    check_against_k8s_openapi::<networking::v1::Ingress>(&served, &mut seen);
    check_against_k8s_openapi::<networking::v1::IngressClass>(&served, &mut seen);
    check_against_k8s_openapi::<networking::v1::NetworkPolicy>(&served, &mut seen);
    check_against_k8s_openapi::<node::v1::RuntimeClass>(&served, &mut seen);
    check_against_k8s_openapi::<policy::v1::PodDisruptionBudget>(&served, &mut seen);
    check_against_k8s_openapi::<rbac::v1::ClusterRole>(&served, &mut seen);
    check_against_k8s_openapi::<rbac::v1::ClusterRoleBinding>(&served, &mut seen);
    check_against_k8s_openapi::<rbac::v1::Role>(&served, &mut seen);
    check_against_k8s_openapi::<rbac::v1::RoleBinding>(&served, &mut seen);
    check_against_k8s_openapi::<scheduling::v1::PriorityClass>(&served, &mut seen);
    check_against_k8s_openapi::<storage::v1::CSIDriver>(&served, &mut seen);
    check_against_k8s_openapi::<storage::v1::CSINode>(&served, &mut seen);
    check_against_k8s_openapi::<storage::v1::CSIStorageCapacity>(&served, &mut seen);
    check_against_k8s_openapi::<storage::v1::StorageClass>(&served, &mut seen);
    check_against_k8s_openapi::<storage::v1::VolumeAttachment>(&served, &mut seen);
    assert_eq!(seen, 48);
    cluster.stop().await.unwrap();
}
