//! Restore against real testenv clusters: a realistic workload on cluster A (newer
//! profile) is read through the API at one resourceVersion and restored into empty
//! clusters of the older profile, with namespace mapping, storage class mapping, an
//! image rewrite and patch rules; checked object by object. Dry runs write nothing, a
//! second run is all skips, an interrupted restore re-run ends identical to an
//! uninterrupted one, existing objects follow --existing, and removed API versions are
//! converted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use resource_backup::cluster::listable;
use resource_backup::restore::{
    self, Action, ExistingPolicy, ObjectRef, Outcome, RestoreOptions, Transforms,
};
use resource_backup::{BackupItem, Cluster, Error, Gvr, LiveSource, ObjectSource, ResourceType};
use serde_json::{Value, json};
use testenv::apiserver::workload::ClusterWorkload;
use testenv::apiserver::{
    ApiServerOptions, KubeCluster, KubeClusterOptions, NEWER, OLDER, Profile,
};

async fn start(profile: &'static Profile) -> (KubeCluster, Cluster) {
    let kube = KubeCluster::start(KubeClusterOptions {
        server: ApiServerOptions {
            profile,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    resource_backup::cluster::install_crypto_provider();
    let mut config = kube::Config::new(kube.server().url().parse().unwrap());
    config.read_timeout = Some(Duration::from_secs(60));
    let client = kube::Client::try_from(config).unwrap();
    let cluster = Cluster::from_client(client, kube.server().url());
    (kube, cluster)
}

async fn call(
    cluster: &Cluster,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, Error> {
    let mut builder = http::Request::builder().method(method).uri(path);
    if body.is_some() {
        builder = builder.header("content-type", "application/json");
    }
    let request = builder
        .body(
            body.map(|b| serde_json::to_vec(&b).unwrap())
                .unwrap_or_default(),
        )
        .unwrap();
    cluster
        .client()
        .request::<Value>(request)
        .await
        .map_err(|e| Error::kube(format!("{method} {path}"), e))
}

/// An in-memory source.
struct MemorySource {
    items: Vec<BackupItem>,
    types: Vec<ResourceType>,
}

impl ObjectSource for MemorySource {
    fn resource_types(&self) -> Vec<ResourceType> {
        self.types.clone()
    }
    async fn objects(&self, gvr: &Gvr) -> Result<Vec<BackupItem>, Error> {
        Ok(self
            .items
            .iter()
            .filter(|i| &i.gvr == gvr)
            .cloned()
            .collect())
    }
}

/// The workload of cluster A, with what the generator lacks: a CR owning a ConfigMap,
/// a StatefulSet and a PVC on the default class `gp3`, a PodDisruptionBudget.
async fn load_cluster_a(kube: &KubeCluster, cluster: &Cluster) {
    ClusterWorkload {
        namespaces: 3,
        deployments_per_namespace: 3,
        pods_per_replica_set: 2,
        seed: 7,
    }
    .load(kube.server().api(), 16)
    .await
    .unwrap();
    let widget = call(
        cluster,
        "GET",
        "/apis/example.com/v1/namespaces/app-000/widgets/web-0",
        None,
    )
    .await
    .unwrap();
    call(
        cluster,
        "POST",
        "/api/v1/namespaces/app-000/configmaps",
        Some(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "widget-state", "namespace": "app-000", "ownerReferences": [{
                "apiVersion": "example.com/v1", "kind": "Widget", "name": "web-0",
                "uid": widget["metadata"]["uid"], "controller": true}]},
            "data": {"state": "ok"},
        })),
    )
    .await
    .unwrap();
    call(
        cluster,
        "POST",
        "/api/v1/namespaces/app-000/persistentvolumeclaims",
        Some(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "scratch", "namespace": "app-000"},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
                     "resources": {"requests": {"storage": "5Gi"}}},
        })),
    )
    .await
    .unwrap();
    call(cluster, "POST", "/apis/apps/v1/namespaces/app-000/statefulsets", Some(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "app-000"},
        "spec": {"serviceName": "db", "replicas": 1, "selector": {"matchLabels": {"app": "db"}},
                 "template": {"metadata": {"labels": {"app": "db"}},
                              "spec": {"containers": [{"name": "db", "image": "registry.example.com/db:15"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
                              "resources": {"requests": {"storage": "10Gi"}}}}]},
    }))).await.unwrap();
    call(
        cluster,
        "POST",
        "/apis/policy/v1/namespaces/app-001/poddisruptionbudgets",
        Some(json!({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "web", "namespace": "app-001"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web-0"}}},
        })),
    )
    .await
    .unwrap();
}

fn migration_options() -> RestoreOptions {
    RestoreOptions {
        include_namespaces: vec!["app-000".into(), "app-001".into()],
        namespace_mapping: BTreeMap::from([("app-000".to_string(), "moved-000".to_string())]),
        include_controller_owned: true,
        transforms: Transforms::from_yaml(
            r#"
storageClassMapping: {gp3: standard}
imageRegistryRewrite: {registry.example.com: mirror.local:5000}
rules:
  - selector: {resources: [configmaps], names: ["*-env"]}
    mergePatch: {data: {region: eu-central-1}}
  - selector: {resources: [widgets.example.com], namespaces: [moved-000]}
    jsonPatch: [{op: add, path: /metadata/labels/migrated, value: "true"}]
"#,
        )
        .unwrap(),
        ..Default::default()
    }
}

/// Types never restored by default.
const SKIPPED: &[&str] = &[
    "events",
    "endpoints",
    "endpointslices",
    "leases",
    "nodes",
    "componentstatuses",
];

fn key(gvr: &Gvr, ns: Option<&str>, name: &str) -> (String, String, Option<String>, String) {
    (
        gvr.group.clone(),
        gvr.resource.clone(),
        ns.map(str::to_string),
        name.to_string(),
    )
}

type Key = (String, String, Option<String>, String);

/// The objects of A the migration selects, by their place in the target.
async fn expected_objects(source: &LiveSource) -> BTreeMap<Key, BackupItem> {
    let mut out = BTreeMap::new();
    for t in source.resource_types() {
        if SKIPPED.contains(&t.gvr.resource.as_str()) {
            continue;
        }
        for item in source.objects(&t.gvr).await.unwrap() {
            let selected_ns = |ns: &str| ns == "app-000" || ns == "app-001";
            let map = |ns: &str| {
                if ns == "app-000" {
                    "moved-000".to_string()
                } else {
                    ns.to_string()
                }
            };
            let (ns, name) = match (&item.namespace, t.gvr.resource.as_str()) {
                (Some(ns), _) if t.namespaced => {
                    if !selected_ns(ns) {
                        continue;
                    }
                    (Some(map(ns)), item.name.clone())
                }
                (_, "namespaces") => {
                    if !selected_ns(&item.name) {
                        continue;
                    }
                    (None, map(&item.name))
                }
                (_, "persistentvolumes") => {
                    let claim_ns = item.object["spec"]["claimRef"]["namespace"]
                        .as_str()
                        .unwrap_or("");
                    if !selected_ns(claim_ns) {
                        continue;
                    }
                    (None, item.name.clone())
                }
                _ => (None, item.name.clone()),
            };
            out.insert(key(&t.gvr, ns.as_deref(), &name), item);
        }
    }
    out
}

/// What both sides are compared on: no server-owned fields, owner uids left to a
/// separate check.
fn normalized(object: &Value) -> Value {
    let mut o = object.clone();
    let meta = o["metadata"].as_object_mut().unwrap();
    for f in [
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "generation",
        "managedFields",
        "namespace",
    ] {
        meta.remove(f);
    }
    if let Some(refs) = meta
        .get_mut("ownerReferences")
        .and_then(Value::as_array_mut)
    {
        for r in refs {
            r.as_object_mut().unwrap().remove("uid");
        }
    }
    let map = o.as_object_mut().unwrap();
    map.remove("status");
    map.remove("apiVersion");
    if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
        for f in ["clusterIP", "clusterIPs", "nodeName"] {
            spec.remove(f);
        }
        if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
            for p in ports {
                p.as_object_mut().unwrap().remove("nodePort");
            }
        }
        if let Some(claim) = spec.get_mut("claimRef").and_then(Value::as_object_mut) {
            claim.remove("uid");
            claim.remove("resourceVersion");
        }
    }
    o
}

/// What the migration does to an object of A, written out independently of the
/// library: namespace mapping of subjects and claimRefs, the storage class mapping,
/// the image rewrite and the two rules.
#[allow(clippy::collapsible_match)]
fn expected_after_transforms(gvr: &Gvr, object: &Value) -> Value {
    let mut o = normalized(object);
    let text = serde_json::to_string(&o).unwrap();
    let text = text.replace("\"registry.example.com/", "\"mirror.local:5000/");
    o = serde_json::from_str(&text).unwrap();
    match (gvr.group.as_str(), gvr.resource.as_str()) {
        ("", "namespaces") => {
            if o["metadata"]["name"] == "app-000" {
                o["metadata"]["name"] = json!("moved-000");
                o["metadata"]["labels"]["kubernetes.io/metadata.name"] = json!("moved-000");
            }
        }
        ("rbac.authorization.k8s.io", "rolebindings") => {
            for s in o["subjects"].as_array_mut().unwrap() {
                if s["namespace"] == "app-000" {
                    s["namespace"] = json!("moved-000");
                }
            }
        }
        ("", "persistentvolumes") => {
            if o["spec"]["claimRef"]["namespace"] == "app-000" {
                o["spec"]["claimRef"]["namespace"] = json!("moved-000");
            }
        }
        ("", "persistentvolumeclaims") => {
            if o["spec"]["storageClassName"] == "gp3" {
                o["spec"]["storageClassName"] = json!("standard");
            }
        }
        ("apps", "statefulsets") => {
            for t in o["spec"]["volumeClaimTemplates"].as_array_mut().unwrap() {
                if t["spec"]["storageClassName"] == "gp3" {
                    t["spec"]["storageClassName"] = json!("standard");
                }
            }
        }
        ("", "configmaps") => {
            if o["metadata"]["name"].as_str().unwrap().ends_with("-env") {
                o["data"]["region"] = json!("eu-central-1");
            }
        }
        ("admissionregistration.k8s.io", _) => {
            for w in o["webhooks"].as_array_mut().unwrap() {
                if w["clientConfig"]["service"]["namespace"] == "app-000" {
                    w["clientConfig"]["service"]["namespace"] = json!("moved-000");
                }
            }
        }
        ("example.com", "widgets") => {
            if object["metadata"]["namespace"] == "app-000" {
                o["metadata"]["labels"]["migrated"] = json!("true");
            }
        }
        _ => {}
    }
    o
}

async fn get_live(cluster: &Cluster, gvr: &Gvr, ns: Option<&str>, name: &str) -> Option<Value> {
    match call(
        cluster,
        "GET",
        &format!("{}/{name}", gvr.collection_path(ns)),
        None,
    )
    .await
    {
        Ok(v) => Some(v),
        Err(e) if e.api_code() == Some(404) => None,
        Err(e) => panic!("{e}"),
    }
}

/// Every ownerReference of `object` names the uid its owner has in `cluster`.
async fn assert_owners_linked(cluster: &Cluster, object: &Value) {
    let Some(refs) = object["metadata"]["ownerReferences"].as_array() else {
        return;
    };
    let ns = object["metadata"]["namespace"].as_str();
    for r in refs {
        let kind = r["kind"].as_str().unwrap();
        let (gvr, namespaced) = match kind {
            "Deployment" => (Gvr::new("apps", "v1", "deployments"), true),
            "ReplicaSet" => (Gvr::new("apps", "v1", "replicasets"), true),
            "Widget" => (Gvr::new("example.com", "v1", "widgets"), true),
            other => panic!("unexpected owner kind {other}"),
        };
        let owner = get_live(
            cluster,
            &gvr,
            if namespaced { ns } else { None },
            r["name"].as_str().unwrap(),
        )
        .await
        .unwrap_or_else(|| panic!("owner {r} of {} missing", object["metadata"]["name"]));
        assert_eq!(
            r["uid"], owner["metadata"]["uid"],
            "owner uid of {}",
            object["metadata"]["name"]
        );
    }
}

/// The etcd revision of a cluster: any write moves it.
async fn revision(cluster: &Cluster) -> String {
    let list = call(cluster, "GET", "/api/v1/namespaces?limit=1", None)
        .await
        .unwrap();
    list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string()
}

fn target_key(r: &ObjectRef) -> Key {
    key(&r.gvr, r.namespace.as_deref(), &r.name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migration_to_an_older_cluster_object_by_object() {
    let (kube_a, a) = start(&NEWER).await;
    load_cluster_a(&kube_a, &a).await;
    let (_kube_b, b) = start(&OLDER).await;
    let source = LiveSource::new(&a).await.unwrap();
    let expected = expected_objects(&source).await;
    assert!(expected.len() > 80, "{}", expected.len());
    let options = migration_options();

    // Dry run: the plan lists exactly the selected objects as creates; nothing is written.
    let before = revision(&b).await;
    let plan = restore::plan(&source, &b, &options).await.unwrap();
    let dry = RestoreOptions {
        dry_run: true,
        ..options.clone()
    };
    let report = restore::apply(&plan, &b, &dry, |_| {}).await.unwrap();
    assert!(report.dry_run);
    assert_eq!(report.summary.created, 0);
    assert_eq!(revision(&b).await, before, "a dry run wrote to the target");
    let creates: BTreeSet<Key> = plan
        .items
        .iter()
        .filter(|i| i.action == Action::Create)
        .map(|i| target_key(&i.target))
        .collect();
    let wanted: BTreeSet<Key> = expected
        .keys()
        .map(|(g, r, ns, n)| {
            // Read at A's versions; planned at B's.
            (g.clone(), r.clone(), ns.clone(), n.clone())
        })
        .collect();
    assert_eq!(creates, wanted, "plan creates differ from the selection");
    assert_eq!(
        plan.summary.error,
        0,
        "{:#?}",
        plan.items
            .iter()
            .filter(|i| i.action == Action::Error)
            .collect::<Vec<_>>()
    );
    // Namespaces, then PVs, PVCs; CRDs first; owners before dependents.
    let wave_of = |g: &str, r: &str| {
        plan.items
            .iter()
            .filter(|i| i.target.gvr.group == g && i.target.gvr.resource == r)
            .map(|i| i.wave)
            .min()
            .unwrap()
    };
    assert!(
        wave_of("apiextensions.k8s.io", "customresourcedefinitions") < wave_of("", "namespaces")
    );
    assert!(wave_of("", "namespaces") < wave_of("", "persistentvolumes"));
    assert!(wave_of("", "persistentvolumes") < wave_of("", "persistentvolumeclaims"));
    assert!(wave_of("apps", "deployments") < wave_of("apps", "replicasets"));
    assert!(wave_of("apps", "replicasets") < wave_of("", "pods"));
    let state = plan
        .items
        .iter()
        .find(|i| i.target.name == "widget-state")
        .unwrap();
    assert!(state.wave > wave_of("example.com", "widgets"));

    // Restore.
    let seen = AtomicUsize::new(0);
    let report = restore::apply(&plan, &b, &options, |_| {
        seen.fetch_add(1, Ordering::Relaxed);
    })
    .await
    .unwrap();
    let failures: Vec<_> = report
        .outcomes
        .iter()
        .filter(|o| matches!(o.outcome, Outcome::Failed | Outcome::Conflict))
        .collect();
    assert!(failures.is_empty(), "{failures:#?}");
    assert_eq!(seen.load(Ordering::Relaxed), plan.items.len());
    assert_eq!(
        report.summary.created + report.summary.skipped,
        plan.items.len()
    );

    // Object by object.
    for ((group, resource, ns, name), item) in &expected {
        let served = if group == "policy" {
            "v1"
        } else {
            item.gvr.version.as_str()
        };
        let gvr = Gvr::new(group, served, resource);
        let live = get_live(&b, &gvr, ns.as_deref(), name)
            .await
            .unwrap_or_else(|| panic!("{gvr} {ns:?}/{name} missing in B"));
        assert_eq!(
            normalized(&live),
            expected_after_transforms(&item.gvr, &item.object),
            "{gvr} {ns:?}/{name}"
        );
        assert_owners_linked(&b, &live).await;
        if item.object["metadata"]["ownerReferences"].is_array() {
            assert_eq!(
                live["metadata"]["ownerReferences"].as_array().map(Vec::len),
                item.object["metadata"]["ownerReferences"]
                    .as_array()
                    .map(Vec::len),
                "{name}: owner references lost"
            );
        }
    }
    // Spot checks of the mappings.
    let binding = get_live(
        &b,
        &Gvr::new("rbac.authorization.k8s.io", "v1", "rolebindings"),
        Some("moved-000"),
        "app",
    )
    .await
    .unwrap();
    assert_eq!(binding["subjects"][0]["namespace"], "moved-000");
    let pvs = call(&b, "GET", "/api/v1/persistentvolumes", None)
        .await
        .unwrap();
    let claim_namespaces: BTreeSet<&str> = pvs["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pv| pv["spec"]["claimRef"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(claim_namespaces, BTreeSet::from(["app-001", "moved-000"]));
    let scratch = get_live(
        &b,
        &Gvr::new("", "v1", "persistentvolumeclaims"),
        Some("moved-000"),
        "scratch",
    )
    .await
    .unwrap();
    assert_eq!(scratch["spec"]["storageClassName"], "standard");
    assert!(
        get_live(&b, &Gvr::new("", "v1", "namespaces"), None, "app-000")
            .await
            .is_none()
    );
    assert!(
        get_live(&b, &Gvr::new("", "v1", "namespaces"), None, "app-002")
            .await
            .is_none()
    );

    // A second run changes nothing.
    let again = restore::plan(&source, &b, &options).await.unwrap();
    let changed: Vec<_> = again
        .items
        .iter()
        .filter(|i| i.action != Action::Skip)
        .collect();
    assert!(changed.is_empty(), "{changed:#?}");
    let before = revision(&b).await;
    let report = restore::apply(&again, &b, &options, |_| {}).await.unwrap();
    assert_eq!(report.summary.skipped, again.items.len());
    assert_eq!(revision(&b).await, before);

    // Existing objects: none reports a conflict with a diff and leaves it; update merges
    // the backup over it; recreate makes it anew.
    let cm_gvr = Gvr::new("", "v1", "configmaps");
    let cm_path = "/api/v1/namespaces/moved-000/configmaps/web-0-config";
    let mut changed_cm = call(&b, "GET", cm_path, None).await.unwrap();
    changed_cm["data"]["settings"] = json!("changed in B");
    changed_cm["metadata"]["labels"]["extra"] = json!("kept");
    call(&b, "PUT", cm_path, Some(changed_cm)).await.unwrap();
    let conflict = restore::plan(&source, &b, &options).await.unwrap();
    let item = conflict
        .items
        .iter()
        .find(|i| {
            i.target.name == "web-0-config" && i.target.namespace.as_deref() == Some("moved-000")
        })
        .unwrap();
    assert_eq!(item.action, Action::Conflict);
    let diff = item.diff.as_deref().unwrap();
    assert!(diff.contains("-  settings: changed in B"), "{diff}");
    assert_eq!(conflict.summary.conflict, 1);
    let report = restore::apply(&conflict, &b, &options, |_| {})
        .await
        .unwrap();
    assert_eq!(report.summary.conflict, 1);
    let live = get_live(&b, &cm_gvr, Some("moved-000"), "web-0-config")
        .await
        .unwrap();
    assert_eq!(live["data"]["settings"], "changed in B");

    let update = RestoreOptions {
        existing: ExistingPolicy::Update,
        ..options.clone()
    };
    let planned = restore::plan(&source, &b, &update).await.unwrap();
    assert_eq!(planned.summary.update, 1);
    let report = restore::apply(&planned, &b, &update, |_| {}).await.unwrap();
    assert_eq!(report.summary.updated, 1);
    let live = get_live(&b, &cm_gvr, Some("moved-000"), "web-0-config")
        .await
        .unwrap();
    let original = &expected[&key(&cm_gvr, Some("moved-000"), "web-0-config")];
    assert_eq!(live["data"], original.object["data"]);
    assert_eq!(live["metadata"]["labels"]["extra"], "kept");

    let uid_before = live["metadata"]["uid"].clone();
    let mut changed_cm = live.clone();
    changed_cm["data"]["settings"] = json!("changed again");
    call(&b, "PUT", cm_path, Some(changed_cm)).await.unwrap();
    let recreate = RestoreOptions {
        existing: ExistingPolicy::Recreate,
        ..options.clone()
    };
    let planned = restore::plan(&source, &b, &recreate).await.unwrap();
    let item = planned
        .items
        .iter()
        .find(|i| {
            i.target.name == "web-0-config" && i.target.namespace.as_deref() == Some("moved-000")
        })
        .unwrap();
    assert_eq!(item.action, Action::Recreate);
    let report = restore::apply(&planned, &b, &recreate, |_| {})
        .await
        .unwrap();
    assert_eq!(report.summary.recreated, 1, "{:?}", report.summary);
    let live = get_live(&b, &cm_gvr, Some("moved-000"), "web-0-config")
        .await
        .unwrap();
    assert_ne!(live["metadata"]["uid"], uid_before);
    assert_eq!(live["metadata"]["labels"].get("extra"), None);

    // Plans and reports are data.
    let text = serde_json::to_string(&planned).unwrap();
    assert!(text.contains("\"action\":\"recreate\""));
    serde_json::to_string(&report).unwrap();
}

/// Every restored object of a cluster, normalized, with owners as (kind, name).
async fn snapshot(cluster: &Cluster, namespaces: &[&str]) -> BTreeMap<Key, Value> {
    let mut out = BTreeMap::new();
    for t in listable(&cluster.discover().await.unwrap(), false) {
        if SKIPPED.contains(&t.gvr.resource.as_str()) {
            continue;
        }
        let list = call(cluster, "GET", &t.gvr.collection_path(None), None)
            .await
            .unwrap();
        for object in list["items"].as_array().unwrap() {
            let ns = object["metadata"]["namespace"].as_str();
            if ns.is_some_and(|ns| !namespaces.contains(&ns)) {
                continue;
            }
            assert_owners_linked(cluster, object).await;
            let name = object["metadata"]["name"].as_str().unwrap();
            out.insert(key(&t.gvr, ns, name), normalized(object));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_restore_rerun_ends_identical() {
    let (kube_a, a) = start(&NEWER).await;
    load_cluster_a(&kube_a, &a).await;
    let source = Arc::new(LiveSource::new(&a).await.unwrap());
    let options = migration_options();

    let (_kube_whole, whole) = start(&OLDER).await;
    let plan = restore::plan(source.as_ref(), &whole, &options)
        .await
        .unwrap();
    let report = restore::apply(&plan, &whole, &options, |_| {})
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", report.summary);

    // Killed halfway: the task is aborted with requests in flight.
    let (_kube_cut, cut) = start(&OLDER).await;
    let plan = restore::plan(source.as_ref(), &cut, &options)
        .await
        .unwrap();
    let total = plan.items.len();
    let done = Arc::new(AtomicUsize::new(0));
    let half = Arc::new(tokio::sync::Notify::new());
    let task = {
        let (cut, options, done, half) = (cut.clone(), options.clone(), done.clone(), half.clone());
        tokio::spawn(async move {
            restore::apply(&plan, &cut, &options, |_: &restore::ObjectOutcome| {
                if done.fetch_add(1, Ordering::SeqCst) + 1 == total / 2 {
                    half.notify_one();
                }
            })
            .await
        })
    };
    half.notified().await;
    task.abort();
    let _ = task.await;
    let finished = done.load(Ordering::SeqCst);
    assert!(
        finished < total,
        "the restore finished before it was interrupted"
    );

    // Re-run: plan again against what is there, apply.
    let plan = restore::plan(source.as_ref(), &cut, &options)
        .await
        .unwrap();
    assert!(
        plan.summary.skip > 0 && plan.summary.create > 0,
        "{:?}",
        plan.summary
    );
    assert_eq!(
        plan.summary.conflict,
        0,
        "{:#?}",
        plan.items
            .iter()
            .filter(|i| i.action == Action::Conflict)
            .collect::<Vec<_>>()
    );
    let report = restore::apply(&plan, &cut, &options, |_| {}).await.unwrap();
    assert!(report.succeeded(), "{:?}", report.summary);

    let namespaces = ["moved-000", "app-001"];
    let (left, right) = (
        snapshot(&whole, &namespaces).await,
        snapshot(&cut, &namespaces).await,
    );
    assert_eq!(left.len(), right.len());
    for (k, v) in &left {
        assert_eq!(Some(v), right.get(k), "{k:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_api_errors_are_retried_to_the_same_result() {
    let (kube_a, a) = start(&NEWER).await;
    load_cluster_a(&kube_a, &a).await;
    let source = LiveSource::new(&a).await.unwrap();
    let options = migration_options();

    let (_kube_whole, whole) = start(&OLDER).await;
    let plan = restore::plan(&source, &whole, &options).await.unwrap();
    let report = restore::apply(&plan, &whole, &options, |_| {})
        .await
        .unwrap();
    assert!(report.succeeded(), "{:?}", report.summary);

    // Every 7th resource request (plan's reads and apply's writes alike) fails, with
    // 429 or with a 500 from an etcd timeout.
    let (kube_busy, busy) = start(&OLDER).await;
    kube_busy.server().fail_every(7);
    let plan = restore::plan(&source, &busy, &options).await.unwrap();
    let report = restore::apply(&plan, &busy, &options, |_| {})
        .await
        .unwrap();
    let injected = kube_busy.server().injected_failures();
    kube_busy.server().clear_faults();
    assert!(report.succeeded(), "{:?}", report.summary);
    assert!(
        injected >= 10,
        "only {injected} requests failed: the fault did not bite"
    );

    let namespaces = ["moved-000", "app-001"];
    let (left, right) = (
        snapshot(&whole, &namespaces).await,
        snapshot(&busy, &namespaces).await,
    );
    assert!(!left.is_empty());
    assert_eq!(left.len(), right.len());
    for (k, v) in &left {
        assert_eq!(Some(v), right.get(k), "{k:?}");
    }
}

fn item(gvr: Gvr, kind: &str, namespace: Option<&str>, object: Value) -> BackupItem {
    BackupItem {
        name: object["metadata"]["name"].as_str().unwrap().to_string(),
        gvr,
        kind: kind.into(),
        namespace: namespace.map(str::to_string),
        object,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_api_versions_are_converted_or_reported() {
    let (_kube, target) = start(&NEWER).await;
    let ty = |g: &str, v: &str, r: &str, kind: &str, namespaced: bool| ResourceType {
        gvr: Gvr::new(g, v, r),
        kind: kind.into(),
        namespaced,
        verbs: vec!["list".into(), "create".into()],
        preferred: true,
    };
    let types = vec![
        ty("", "v1", "namespaces", "Namespace", false),
        ty(
            "policy",
            "v1beta1",
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
        ),
        ty("networking.k8s.io", "v1beta1", "ingresses", "Ingress", true),
        ty(
            "autoscaling",
            "v2beta2",
            "horizontalpodautoscalers",
            "HorizontalPodAutoscaler",
            true,
        ),
        ty("batch", "v1beta1", "cronjobs", "CronJob", true),
        ty(
            "policy",
            "v1beta1",
            "podsecuritypolicies",
            "PodSecurityPolicy",
            false,
        ),
        ty("example.org", "v1alpha1", "gadgets", "Gadget", true),
        ty("", "v1", "configmaps", "ConfigMap", true),
    ];
    let ns = Some("legacy");
    let items = vec![
        item(
            types[0].gvr.clone(),
            "Namespace",
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "legacy", "uid": "n1"}}),
        ),
        item(
            types[1].gvr.clone(),
            "PodDisruptionBudget",
            ns,
            json!({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget",
            "metadata": {"name": "pdb", "namespace": "legacy", "uid": "p1"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}),
        ),
        item(
            types[2].gvr.clone(),
            "Ingress",
            ns,
            json!({"apiVersion": "networking.k8s.io/v1beta1", "kind": "Ingress",
            "metadata": {"name": "web", "namespace": "legacy", "uid": "i1"},
            "spec": {"rules": [{"host": "web.example.com", "http": {"paths": [{"path": "/", "backend": {"serviceName": "web", "servicePort": 80}}]}}]}}),
        ),
        item(
            types[3].gvr.clone(),
            "HorizontalPodAutoscaler",
            ns,
            json!({"apiVersion": "autoscaling/v2beta2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "web", "namespace": "legacy", "uid": "h1"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5,
                     "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]}}),
        ),
        item(
            types[4].gvr.clone(),
            "CronJob",
            ns,
            json!({"apiVersion": "batch/v1beta1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "legacy", "uid": "c1"},
            "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
        ),
        item(
            types[5].gvr.clone(),
            "PodSecurityPolicy",
            None,
            json!({"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "restricted"}}),
        ),
        item(
            Gvr::new("", "v1", "configmaps"),
            "ConfigMap",
            Some("elsewhere"),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "lonely", "namespace": "elsewhere"}, "data": {"a": "b"}}),
        ),
        item(
            types[6].gvr.clone(),
            "Gadget",
            ns,
            json!({"apiVersion": "example.org/v1alpha1", "kind": "Gadget", "metadata": {"name": "g", "namespace": "legacy"}}),
        ),
    ];
    let source = MemorySource { items, types };
    let options = RestoreOptions::default();
    let plan = restore::plan(&source, &target, &options).await.unwrap();
    let by_name = |kind: &str| plan.items.iter().find(|i| i.source.kind == kind).unwrap();
    assert_eq!(
        by_name("PodDisruptionBudget").target.gvr,
        Gvr::new("policy", "v1", "poddisruptionbudgets")
    );
    assert_eq!(by_name("Ingress").target.gvr.version, "v1");
    assert_eq!(by_name("HorizontalPodAutoscaler").target.gvr.version, "v2");
    assert_eq!(by_name("CronJob").target.gvr.version, "v1");
    let psp = by_name("PodSecurityPolicy");
    assert_eq!(psp.action, Action::Error);
    assert!(
        psp.reason
            .as_deref()
            .unwrap()
            .contains("removed in Kubernetes 1.25")
    );
    let gadget = by_name("Gadget");
    assert_eq!(gadget.action, Action::Error);
    assert!(
        gadget.reason.as_deref().unwrap().contains("not served"),
        "{:?}",
        gadget.reason
    );

    let report = restore::apply(&plan, &target, &options, |_| {})
        .await
        .unwrap();
    // The namespace of the ConfigMap is not in the backup: it is created first.
    let elsewhere = plan
        .items
        .iter()
        .find(|i| i.target.name == "elsewhere")
        .unwrap();
    assert_eq!(elsewhere.action, Action::Create);
    assert!(
        elsewhere.wave
            < plan
                .items
                .iter()
                .find(|i| i.target.name == "lonely")
                .unwrap()
                .wave
    );
    assert_eq!(report.summary.created, 7, "{:#?}", report.outcomes);
    assert!(
        get_live(
            &target,
            &Gvr::new("", "v1", "configmaps"),
            Some("elsewhere"),
            "lonely"
        )
        .await
        .is_some()
    );
    assert_eq!(report.summary.failed, 2);
    let ingress = get_live(
        &target,
        &Gvr::new("networking.k8s.io", "v1", "ingresses"),
        ns,
        "web",
    )
    .await
    .unwrap();
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"],
        json!({"service": {"name": "web", "port": {"number": 80}}})
    );
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["pathType"],
        "ImplementationSpecific"
    );
    let pdb = get_live(
        &target,
        &Gvr::new("policy", "v1", "poddisruptionbudgets"),
        ns,
        "pdb",
    )
    .await
    .unwrap();
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_sources_are_reported_not_followed() {
    let (_kube, target) = start(&NEWER).await;
    let types = vec![ResourceType {
        gvr: Gvr::new("", "v1", "configmaps"),
        kind: "ConfigMap".into(),
        namespaced: true,
        verbs: vec!["list".into()],
        preferred: true,
    }];
    let gvr = types[0].gvr.clone();
    let mut deep = json!("x");
    for _ in 0..500 {
        deep = Value::Object(serde_json::Map::from_iter([("a".to_string(), deep)]));
    }
    let items = vec![
        item(
            gvr.clone(),
            "ConfigMap",
            Some("default"),
            json!({"metadata": {"name": "../../secrets"}}),
        ),
        item(
            gvr.clone(),
            "ConfigMap",
            Some("default"),
            json!({"metadata": {"name": "deep"}, "data": deep}),
        ),
        item(
            gvr.clone(),
            "ConfigMap",
            None,
            json!({"metadata": {"name": "nowhere"}}),
        ),
        item(
            gvr.clone(),
            "ConfigMap",
            Some("default"),
            json!({"metadata": {"name": "fine", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "cycle", "uid": "u2"}], "uid": "u1"}, "data": {"a": "b"}}),
        ),
        item(
            gvr.clone(),
            "ConfigMap",
            Some("default"),
            json!({"metadata": {"name": "cycle", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "fine", "uid": "u1"}], "uid": "u2"}, "data": {"a": "b"}}),
        ),
    ];
    let source = MemorySource { items, types };
    let plan = restore::plan(&source, &target, &RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(plan.summary.error, 3, "{:#?}", plan.items);
    assert_eq!(plan.summary.create, 2);
    let report = restore::apply(&plan, &target, &RestoreOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(report.summary.failed, 3);
    assert_eq!(report.summary.created, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_labels_and_names_follow_the_options() {
    let (_kube, target) = start(&NEWER).await;
    let ty = |r: &str, kind: &str, namespaced: bool| ResourceType {
        gvr: Gvr::new("", "v1", r),
        kind: kind.into(),
        namespaced,
        verbs: vec!["list".into()],
        preferred: true,
    };
    let types = vec![
        ty("persistentvolumes", "PersistentVolume", false),
        ty("configmaps", "ConfigMap", true),
    ];
    let items = vec![
        item(
            types[0].gvr.clone(),
            "PersistentVolume",
            None,
            json!({"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": "pv-1", "labels": {"keep": "yes"}, "uid": "a"},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/data"}},
            "status": {"phase": "Available"}}),
        ),
        item(
            types[1].gvr.clone(),
            "ConfigMap",
            Some("default"),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "keep-me", "namespace": "default", "labels": {"keep": "yes"}}, "data": {"a": "1"}}),
        ),
        item(
            types[1].gvr.clone(),
            "ConfigMap",
            Some("default"),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "drop-me", "namespace": "default", "labels": {"keep": "no"}}, "data": {"a": "1"}}),
        ),
        item(
            types[1].gvr.clone(),
            "ConfigMap",
            Some("default"),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "other-name", "namespace": "default", "labels": {"keep": "yes"}}, "data": {"a": "1"}}),
        ),
    ];
    // The same type at another version (a backup of every served version): read once.
    let mut types = types;
    types.push(ResourceType {
        gvr: Gvr::new("", "v1beta1", "configmaps"),
        preferred: false,
        ..types[1].clone()
    });
    let source = MemorySource { items, types };
    let options = RestoreOptions {
        label_selector: Some("keep=yes".into()),
        names: vec!["pv-*".into(), "keep-*".into()],
        restore_status: true,
        ..Default::default()
    };
    let plan = restore::plan(&source, &target, &options).await.unwrap();
    assert_eq!(plan.filtered_out, 2);
    assert!(
        plan.skipped_types
            .iter()
            .any(|s| s.contains("configmaps/v1beta1")),
        "{:?}",
        plan.skipped_types
    );
    assert_eq!(plan.summary.create, 2);
    let report = restore::apply(&plan, &target, &options, |_| {})
        .await
        .unwrap();
    assert!(report.succeeded(), "{:#?}", report.outcomes);
    let pv = get_live(
        &target,
        &Gvr::new("", "v1", "persistentvolumes"),
        None,
        "pv-1",
    )
    .await
    .unwrap();
    assert_eq!(pv["status"]["phase"], "Available");
    assert!(
        get_live(
            &target,
            &Gvr::new("", "v1", "configmaps"),
            Some("default"),
            "drop-me"
        )
        .await
        .is_none()
    );
    // With status restored, the second plan compares status too and finds it equal.
    let again = restore::plan(&source, &target, &options).await.unwrap();
    assert_eq!(again.summary.skip, 2, "{:#?}", again.items);
}

/// The CLI and a server spawn plans and applies on tokio tasks: their futures are Send.
#[allow(dead_code)]
fn futures_are_send(
    source: &'static LiveSource,
    cluster: &'static Cluster,
    plan: &'static restore::RestorePlan,
) {
    fn is_send<T: Send>(_: T) {}
    let options: &'static RestoreOptions = Box::leak(Box::default());
    is_send(restore::plan(source, cluster, options));
    is_send(restore::apply(
        plan,
        cluster,
        options,
        |_: &restore::ObjectOutcome| {},
    ));
}
