//! testenv's Kubernetes API server over real etcd: HTTP semantics as kube-apiserver has
//! them (Status errors, optimistic concurrency, pagination, selectors, reads at a
//! revision, 410 after compaction), validation, allocation, CRDs, garbage collection,
//! namespace deletion, storage layout and encryption in etcd, auth and profiles.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{call, call_raw, client, eventually, expect, expect_status, names, rv};
use serde_json::{Value, json};
use testenv::apiserver::{ApiServerOptions, KubeCluster, KubeClusterOptions, OLDER};

async fn cluster() -> KubeCluster {
    KubeCluster::start(KubeClusterOptions::default())
        .await
        .unwrap()
}

fn configmap(name: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": labels}, "data": {"k": name}})
}

async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("the test finished within 120 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_have_kube_metadata_and_errors_are_status_objects() {
    let cluster = cluster().await;
    let c = client(cluster.server(), None);
    bounded(async {
        let base = "/api/v1/namespaces/default/configmaps";
        let created = expect(&c, "POST", base, Some(configmap("one", json!({}))), 201).await;
        assert_eq!(created["kind"], "ConfigMap");
        assert_eq!(created["apiVersion"], "v1");
        assert_eq!(created["metadata"]["namespace"], "default");
        assert_eq!(created["metadata"]["uid"].as_str().unwrap().len(), 36);
        assert!(created["metadata"]["creationTimestamp"].as_str().unwrap().ends_with('Z'));
        let fetched = expect(&c, "GET", &format!("{base}/one"), None, 200).await;
        assert_eq!(fetched, created);

        // resourceVersion is etcd's mod_revision.
        let etcd = cluster.etcd().client().await.unwrap();
        let kv = etcd.get("/registry/configmaps/default/one").await.unwrap().unwrap();
        assert_eq!(rv(&created), kv.mod_revision);

        let status = expect_status(&c, "POST", base, Some(configmap("one", json!({}))), 409, "AlreadyExists").await;
        assert_eq!(status["message"], "configmaps \"one\" already exists");
        assert_eq!(status["details"]["name"], "one");
        assert_eq!(status["details"]["kind"], "configmaps");
        let status = expect_status(&c, "GET", &format!("{base}/nope"), None, 404, "NotFound").await;
        assert_eq!(status["message"], "configmaps \"nope\" not found");
        let status = expect_status(&c, "GET", "/apis/apps/v1/namespaces/default/deployments/nope", None, 404, "NotFound").await;
        assert_eq!(status["message"], "deployments.apps \"nope\" not found");

        // Optimistic concurrency.
        let mut stale = created.clone();
        let mut update = created.clone();
        update["data"]["k"] = json!("two");
        let updated = expect(&c, "PUT", &format!("{base}/one"), Some(update.clone()), 200).await;
        assert!(rv(&updated) > rv(&created));
        assert_eq!(updated["metadata"]["uid"], created["metadata"]["uid"]);
        stale["data"]["k"] = json!("lost update");
        let status = expect_status(&c, "PUT", &format!("{base}/one"), Some(stale), 409, "Conflict").await;
        assert!(status["message"].as_str().unwrap().contains("the object has been modified"), "{status}");
        // An update that changes nothing keeps the resourceVersion.
        let same = expect(&c, "PUT", &format!("{base}/one"), Some(updated.clone()), 200).await;
        assert_eq!(rv(&same), rv(&updated));
        // A merge patch with a stale resourceVersion precondition conflicts too.
        let patch = json!({"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}, "data": {"k": "x"}});
        expect_status(&c, "PATCH", &format!("{base}/one"), Some(patch), 409, "Conflict").await;

        // A create carrying a resourceVersion (copied from a live object) fails like on
        // kube-apiserver: 500, no reason.
        let mut copied = created.clone();
        copied["metadata"]["name"] = json!("copy");
        let (status, body) = call(&c, "POST", base, Some(copied)).await;
        assert_eq!(status, 500, "{body}");
        assert_eq!(body["message"], "resourceVersion should not be set on objects to be created");
        assert!(body.get("reason").is_none(), "{body}");

        // generateName.
        let generated = expect(&c, "POST", base, Some(json!({"metadata": {"generateName": "job-"}, "data": {}})), 201).await;
        let name = generated["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("job-") && name.len() == 9, "{name}");

        // generation counts spec changes.
        let deployments = "/apis/apps/v1/namespaces/default/deployments";
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        let created = expect(&c, "POST", deployments, Some(deployment), 201).await;
        assert_eq!(created["metadata"]["generation"], 1);
        let scaled = expect(&c, "PATCH", &format!("{deployments}/web"), Some(json!({"spec": {"replicas": 3}})), 200).await;
        assert_eq!(scaled["metadata"]["generation"], 2);
        let labelled = expect(&c, "PATCH", &format!("{deployments}/web"), Some(json!({"metadata": {"labels": {"a": "b"}}})), 200).await;
        assert_eq!(labelled["metadata"]["generation"], 2);

        // Validation.
        let status = expect_status(&c, "POST", base, Some(configmap("Not_A_Name", json!({}))), 422, "Invalid").await;
        assert_eq!(status["details"]["causes"][0]["field"], "metadata.name");
        assert_eq!(status["details"]["causes"][0]["reason"], "FieldValueInvalid");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
        let status = expect_status(&c, "POST", "/api/v1/namespaces/default/pods", Some(pod), 422, "Invalid").await;
        assert_eq!(status["message"], "Pod \"p\" is invalid: spec.containers[0].image: Required value");
        let status = expect_status(&c, "POST", "/api/v1/namespaces/nowhere/configmaps", Some(configmap("x", json!({}))), 404, "NotFound").await;
        assert_eq!(status["message"], "namespaces \"nowhere\" not found");
        let unknown_field = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "u"}, "bogus": 1});
        let status = expect_status(&c, "POST", base, Some(unknown_field), 400, "BadRequest").await;
        assert!(status["message"].as_str().unwrap().contains("unknown field \"bogus\""), "{status}");
        let wrong_kind = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "w"}});
        expect_status(&c, "POST", base, Some(wrong_kind), 400, "BadRequest").await;

        // Hostile input: bad JSON, a non-object, an oversized body, unknown paths and verbs.
        let (status, body) = call_raw(&c, "POST", base, "application/json", b"{not json".to_vec()).await;
        assert_eq!((status, body["reason"].as_str()), (400, Some("BadRequest")), "{body}");
        let (status, _) = call_raw(&c, "POST", base, "application/json", b"[1,2]".to_vec()).await;
        assert_eq!(status, 400);
        let huge = vec![b' '; 4 * 1024 * 1024];
        let (status, body) = call_raw(&c, "POST", base, "application/json", huge).await;
        assert_eq!((status, body["reason"].as_str()), (413, Some("RequestEntityTooLarge")), "{body}");
        let (status, _) = call_raw(&c, "POST", base, "application/vnd.kubernetes.protobuf", b"k8s\0\x0a\xff\xff".to_vec()).await;
        assert_eq!(status, 400);
        expect_status(&c, "GET", "/api/v1/frobnicators", None, 404, "NotFound").await;
        expect_status(&c, "GET", "/apis/nope.example.com/v1/things", None, 404, "NotFound").await;
        expect_status(&c, "PUT", base, Some(configmap("x", json!({}))), 405, "MethodNotAllowed").await;
        let (status, _) = call_raw(&c, "PATCH", &format!("{base}/one"), "application/apply-patch+yaml", b"{}".to_vec()).await;
        assert_eq!(status, 415);

        for path in [
            "/api/v1/namespaces//configmaps",
            "/api/v1/namespaces/default/configmaps/a/b/c",
            "/apis/%ff%fe/v1/x",
            "/api/v1/namespaces/default/configmaps?limit=abc",
            "/api/v1/namespaces/default/configmaps?labelSelector=a+in+b",
            "/api/v1/namespaces/default/configmaps?continue=%00%01",
            "/api/v1/namespaces/default/configmaps/one/frobnicate",
            "/api/v1/pods/nope",
            "/openapi/v3/apis/nope/v1",
        ] {
            let (status, body) = call(&c, "GET", path, None).await;
            assert!((400..500).contains(&status), "{path}: {status} {body}");
            assert_eq!(body["kind"], "Status", "{path}: {body}");
        }
        expect(&c, "GET", "/version", None, 200).await;

        // Server-side dry runs validate and answer without writing.
        let dry = expect(&c, "POST", &format!("{base}?dryRun=All"), Some(configmap("dry", json!({}))), 201).await;
        assert_eq!(dry["metadata"]["name"], "dry");
        assert!(dry["metadata"].get("resourceVersion").is_none(), "{dry}");
        expect_status(&c, "GET", &format!("{base}/dry"), None, 404, "NotFound").await;
        expect_status(&c, "POST", &format!("{base}?dryRun=All"), Some(configmap("one", json!({}))), 409, "AlreadyExists").await;
        expect_status(&c, "POST", &format!("{base}?dryRun=All"), Some(configmap("Bad!", json!({}))), 422, "Invalid").await;
        let before = expect(&c, "GET", &format!("{base}/one"), None, 200).await;
        let dry = expect(&c, "PATCH", &format!("{base}/one?dryRun=All"), Some(json!({"data": {"k": "dry"}})), 200).await;
        assert_eq!(dry["data"]["k"], "dry");
        expect(&c, "DELETE", &format!("{base}/one?dryRun=All"), None, 200).await;
        assert_eq!(expect(&c, "GET", &format!("{base}/one"), None, 200).await, before);
        expect_status(&c, "DELETE", &format!("{base}/one?dryRun=Bogus"), None, 400, "BadRequest").await;
        let services = "/api/v1/namespaces/default/services";
        let svc = json!({"metadata": {"name": "dry"}, "spec": {"clusterIP": "10.96.50.50", "ports": [{"port": 80}]}});
        expect(&c, "POST", &format!("{services}?dryRun=All"), Some(svc.clone()), 201).await;
        expect(&c, "POST", services, Some(svc), 201).await;

        // JSON patch and delete preconditions.
        let (status, patched) = call_raw(&c, "PATCH", &format!("{base}/one"), "application/json-patch+json",
            serde_json::to_vec(&json!([{"op": "add", "path": "/data/extra", "value": "1"}])).unwrap()).await;
        assert_eq!(status, 200, "{patched}");
        assert_eq!(patched["data"]["extra"], "1");
        let wrong_uid = json!({"preconditions": {"uid": "00000000-0000-4000-8000-000000000000"}});
        expect_status(&c, "DELETE", &format!("{base}/one"), Some(wrong_uid), 409, "Conflict").await;
        expect(&c, "DELETE", &format!("{base}/one"), None, 200).await;
        expect_status(&c, "DELETE", &format!("{base}/one"), None, 404, "NotFound").await;
    })
    .await;
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_paginate_select_and_read_at_a_revision() {
    let cluster = cluster().await;
    let c = client(cluster.server(), None);
    bounded(async {
        for ns in ["a", "b"] {
            expect(&c, "POST", "/api/v1/namespaces", Some(json!({"metadata": {"name": ns}})), 201).await;
        }
        for i in 0..25 {
            let labels = json!({"group": (i % 3).to_string()});
            expect(&c, "POST", "/api/v1/namespaces/a/configmaps", Some(configmap(&format!("cm-{i:02}"), labels)), 201).await;
        }
        for i in 0..5 {
            expect(&c, "POST", "/api/v1/namespaces/b/configmaps", Some(configmap(&format!("cm-{i:02}"), json!({"group": "b"}))), 201).await;
        }

        // limit/continue: one consistent revision across pages.
        let mut all = Vec::new();
        let mut token = String::new();
        let mut revisions = Vec::new();
        let mut pages = 0;
        loop {
            let path = format!("/api/v1/namespaces/a/configmaps?limit=10&continue={token}");
            let page = expect(&c, "GET", &path, None, 200).await;
            pages += 1;
            if pages == 1 {
                assert_eq!(page["metadata"]["remainingItemCount"], 15, "{}", page["metadata"]);
                // A write between pages does not show up in later pages.
                expect(&c, "POST", "/api/v1/namespaces/a/configmaps", Some(configmap("cm-99", json!({}))), 201).await;
            }
            revisions.push(rv(&page));
            all.extend(names(&page));
            match page["metadata"]["continue"].as_str() {
                Some(next) => token = next.to_string(),
                None => break,
            }
        }
        assert_eq!(pages, 3);
        assert_eq!(all, (0..25).map(|i| format!("cm-{i:02}")).collect::<Vec<_>>());
        assert!(revisions.iter().all(|r| *r == revisions[0]), "{revisions:?}");

        // Label selectors, also with pagination over the filtered result.
        let list = expect(&c, "GET", "/api/v1/namespaces/a/configmaps?labelSelector=group%3D1", None, 200).await;
        assert_eq!(names(&list), ["cm-01", "cm-04", "cm-07", "cm-10", "cm-13", "cm-16", "cm-19", "cm-22"]);
        let list = expect(&c, "GET", "/api/v1/configmaps?labelSelector=group+in+(2,b),group!%3D2", None, 200).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 5);
        let page = expect(&c, "GET", "/api/v1/namespaces/a/configmaps?labelSelector=group%3D0&limit=4", None, 200).await;
        assert_eq!(names(&page), ["cm-00", "cm-03", "cm-06", "cm-09"]);
        let token = page["metadata"]["continue"].as_str().unwrap();
        let rest = expect(&c, "GET", &format!("/api/v1/namespaces/a/configmaps?labelSelector=group%3D0&limit=4&continue={token}"), None, 200).await;
        assert_eq!(names(&rest), ["cm-12", "cm-15", "cm-18", "cm-21"]);
        expect_status(&c, "GET", "/api/v1/configmaps?labelSelector=a%3D(", None, 400, "BadRequest").await;

        // Field selectors.
        let list = expect(&c, "GET", "/api/v1/configmaps?fieldSelector=metadata.name%3Dcm-03", None, 200).await;
        let namespaces: Vec<&str> = list["items"].as_array().unwrap().iter().map(|i| i["metadata"]["namespace"].as_str().unwrap()).collect();
        assert_eq!(namespaces, ["a", "b"]);
        let list = expect(&c, "GET", "/api/v1/configmaps?fieldSelector=metadata.namespace%3Db", None, 200).await;
        assert_eq!(list["items"].as_array().unwrap().len(), 5);
        let list = expect(&c, "GET", "/api/v1/namespaces?fieldSelector=metadata.name!%3Da", None, 200).await;
        assert!(!names(&list).contains(&"a".to_string()));
        expect_status(&c, "GET", "/api/v1/configmaps?fieldSelector=data.k%3Dx", None, 400, "BadRequest").await;

        // resourceVersion + resourceVersionMatch.
        let before = expect(&c, "GET", "/api/v1/namespaces/a/configmaps/cm-00", None, 200).await;
        let at = rv(&expect(&c, "GET", "/api/v1/namespaces/a/configmaps", None, 200).await);
        expect(&c, "PATCH", "/api/v1/namespaces/a/configmaps/cm-00", Some(json!({"data": {"k": "changed"}})), 200).await;
        expect(&c, "DELETE", "/api/v1/namespaces/a/configmaps/cm-01", None, 200).await;
        let old = expect(&c, "GET", &format!("/api/v1/namespaces/a/configmaps?resourceVersion={at}&resourceVersionMatch=Exact"), None, 200).await;
        assert_eq!(rv(&old), at);
        assert_eq!(old["items"][0], before);
        assert_eq!(old["items"][1]["metadata"]["name"], "cm-01");
        let new = expect(&c, "GET", &format!("/api/v1/namespaces/a/configmaps?resourceVersion={at}&resourceVersionMatch=NotOlderThan"), None, 200).await;
        assert!(rv(&new) > at);
        assert_eq!(new["items"][0]["data"]["k"], "changed");
        assert_eq!(new["items"][1]["metadata"]["name"], "cm-02");
        // kube-rs retries 504s, as client-go does; ask without it.
        let (status, body) = common::plain_get(cluster.server(), "/api/v1/configmaps?resourceVersion=999999&resourceVersionMatch=Exact").await;
        assert_eq!((status, body["reason"].as_str()), (504, Some("Timeout")), "{body}");
        expect_status(&c, "GET", "/api/v1/configmaps?resourceVersionMatch=Exact", None, 400, "BadRequest").await;
        expect_status(&c, "GET", "/api/v1/configmaps?resourceVersion=x&resourceVersionMatch=Exact", None, 400, "BadRequest").await;
        expect_status(&c, "GET", "/api/v1/configmaps?continue=garbage", None, 400, "BadRequest").await;

        // After compaction: 410 for the old revision and for an old continue token.
        let page = expect(&c, "GET", "/api/v1/namespaces/a/configmaps?limit=5", None, 200).await;
        let token = page["metadata"]["continue"].as_str().unwrap().to_string();
        expect(&c, "PATCH", "/api/v1/namespaces/a/configmaps/cm-02", Some(json!({"data": {"k": "again"}})), 200).await;
        let etcd = cluster.etcd().client().await.unwrap();
        let now = rv(&expect(&c, "GET", "/api/v1/namespaces/a/configmaps", None, 200).await);
        etcd.compact(now, true).await.unwrap();
        let status = expect_status(&c, "GET", &format!("/api/v1/namespaces/a/configmaps?resourceVersion={at}&resourceVersionMatch=Exact"), None, 410, "Expired").await;
        assert!(status["message"].as_str().unwrap().contains("too old"), "{status}");
        expect_status(&c, "GET", &format!("/api/v1/namespaces/a/configmaps?limit=5&continue={token}"), None, 410, "Expired").await;
    })
    .await;
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_get_unique_cluster_ips_and_node_ports_and_immutable_fields_hold() {
    let cluster = cluster().await;
    let c = client(cluster.server(), None);
    bounded(async {
        let base = "/api/v1/namespaces/default/services";
        let service = |name: &str, spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec});
        let first = expect(&c, "POST", base, Some(service("one", json!({"type": "NodePort", "ports": [{"port": 80}]}))), 201).await;
        let ip = first["spec"]["clusterIP"].as_str().unwrap().to_string();
        let port = first["spec"]["ports"][0]["nodePort"].as_u64().unwrap();
        assert!(ip.starts_with("10.9") && ip != "10.96.0.1", "{ip}");
        assert!((30000..=32767).contains(&port));
        let kubernetes = expect(&c, "GET", &format!("{base}/kubernetes"), None, 200).await;
        assert_eq!(kubernetes["spec"]["clusterIP"], "10.96.0.1");

        let status = expect_status(&c, "POST", base, Some(service("two", json!({"clusterIP": ip, "ports": [{"port": 80}]}))), 422, "Invalid").await;
        assert!(status["message"].as_str().unwrap().contains("provided IP is already allocated"), "{status}");
        let status = expect_status(&c, "POST", base, Some(service("two", json!({"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}))), 422, "Invalid").await;
        assert!(status["message"].as_str().unwrap().contains("provided port is already allocated"), "{status}");
        expect_status(&c, "POST", base, Some(service("two", json!({"clusterIP": "192.168.1.1", "ports": [{"port": 80}]}))), 422, "Invalid").await;
        let status = expect_status(&c, "PATCH", &format!("{base}/one"), Some(json!({"spec": {"clusterIP": "10.96.7.7"}})), 422, "Invalid").await;
        assert!(status["message"].as_str().unwrap().contains("may not change once set"), "{status}");
        let headless = expect(&c, "POST", base, Some(service("headless", json!({"clusterIP": "None"}))), 201).await;
        assert_eq!(headless["spec"]["clusterIP"], "None");
        // Deleting releases the IP and port.
        expect(&c, "DELETE", &format!("{base}/one"), None, 200).await;
        let reused = expect(&c, "POST", base, Some(service("two", json!({"clusterIP": ip, "type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}))), 201).await;
        assert_eq!(reused["spec"]["clusterIP"], ip.as_str());

        // PVC spec and Job selector are immutable.
        let pvcs = "/api/v1/namespaces/default/persistentvolumeclaims";
        let pvc = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        expect(&c, "POST", pvcs, Some(pvc), 201).await;
        expect_status(&c, "PATCH", &format!("{pvcs}/data"), Some(json!({"spec": {"accessModes": ["ReadWriteMany"]}})), 422, "Invalid").await;
        expect(&c, "PATCH", &format!("{pvcs}/data"), Some(json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}})), 200).await;
        let missing = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "bad"}, "spec": {}});
        let status = expect_status(&c, "POST", pvcs, Some(missing), 422, "Invalid").await;
        assert_eq!(status["details"]["causes"].as_array().unwrap().len(), 2, "{status}");
        let jobs = "/apis/batch/v1/namespaces/default/jobs";
        let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once"},
            "spec": {"selector": {"matchLabels": {"job": "once"}}, "template": {"metadata": {"labels": {"job": "once"}},
                     "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}});
        expect(&c, "POST", jobs, Some(job), 201).await;
        expect_status(&c, "PATCH", &format!("{jobs}/once"), Some(json!({"spec": {"selector": {"matchLabels": {"job": "other"}}}})), 422, "Invalid").await;
        // ConfigMaps marked immutable.
        let cms = "/api/v1/namespaces/default/configmaps";
        expect(&c, "POST", cms, Some(json!({"metadata": {"name": "frozen"}, "immutable": true, "data": {"a": "1"}})), 201).await;
        expect_status(&c, "PATCH", &format!("{cms}/frozen"), Some(json!({"data": {"a": "2"}})), 422, "Invalid").await;
    })
    .await;
    cluster.stop().await.unwrap();
}

fn gadget_crd() -> Value {
    let schema = json!({"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
        "properties": {"spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
            "properties": {"n": {"type": "integer", "minimum": 0}}}}}});
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "shortNames": ["gd"]},
                 "versions": [
                    {"name": "v1", "served": true, "storage": true, "schema": schema, "subresources": {"status": {}}},
                    {"name": "v1beta1", "served": true, "storage": false, "schema": schema, "subresources": {"status": {}}},
                    {"name": "v1alpha1", "served": false, "storage": false, "schema": schema}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crds_serve_their_versions_and_take_their_objects_along() {
    let cluster = cluster().await;
    let c = client(cluster.server(), None);
    bounded(async {
        let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
        let crd = expect(&c, "POST", crds, Some(gadget_crd()), 201).await;
        let conditions = crd["status"]["conditions"].as_array().unwrap();
        assert!(conditions.iter().any(|c| c["type"] == "Established" && c["status"] == "True"));
        assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
        assert_eq!(crd["status"]["acceptedNames"]["kind"], "Gadget");
        let bad = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "wrong.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "things", "kind": "Thing"}, "versions": [{"name": "v1", "served": true, "storage": true}]}});
        expect_status(&c, "POST", crds, Some(bad), 422, "Invalid").await;

        let group = expect(&c, "GET", "/apis/example.com", None, 200).await;
        assert_eq!(group["preferredVersion"]["version"], "v1");
        let versions: Vec<&str> = group["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
        assert_eq!(versions, ["v1", "v1beta1"]);
        let resources = expect(&c, "GET", "/apis/example.com/v1", None, 200).await;
        let names: Vec<&str> = resources["resources"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["gadgets", "gadgets/status"]);
        assert_eq!(resources["resources"][0]["shortNames"], json!(["gd"]));
        expect_status(&c, "GET", "/apis/example.com/v1alpha1/gadgets", None, 404, "NotFound").await;

        // Custom resources are validated against their schema.
        let wrong = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "bad"}, "spec": {"n": "many"}});
        let status = expect_status(&c, "POST", "/apis/example.com/v1/namespaces/default/gadgets", Some(wrong), 422, "Invalid").await;
        assert_eq!(status["details"]["causes"][0]["field"], "spec.n", "{status}");
        assert_eq!(status["details"]["group"], "example.com");
        let negative = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "bad"}, "spec": {"n": -1}});
        expect_status(&c, "POST", "/apis/example.com/v1/namespaces/default/gadgets", Some(negative), 422, "Invalid").await;

        // Written in v1beta1, read in v1 (conversion None: only apiVersion differs).
        let gadget = json!({"apiVersion": "example.com/v1beta1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"n": 1}, "status": {"ok": true}});
        let created = expect(&c, "POST", "/apis/example.com/v1beta1/namespaces/default/gadgets", Some(gadget), 201).await;
        assert!(created.get("status").is_none(), "status is dropped on create: {created}");
        let read = expect(&c, "GET", "/apis/example.com/v1/namespaces/default/gadgets/g", None, 200).await;
        assert_eq!(read["apiVersion"], "example.com/v1");
        assert_eq!(read["spec"], json!({"n": 1}));
        // Stored as JSON where kube-apiserver keeps CRs.
        let etcd = cluster.etcd().client().await.unwrap();
        let kv = etcd.get("/registry/example.com/gadgets/default/g").await.unwrap().unwrap();
        let stored: Value = serde_json::from_slice(&kv.value).unwrap();
        assert_eq!(stored["spec"], json!({"n": 1}));
        assert!(stored["metadata"].get("resourceVersion").is_none());

        // The status subresource changes only status; the main resource ignores status.
        let mut with_status = read.clone();
        with_status["status"] = json!({"phase": "Ready"});
        with_status["spec"] = json!({"n": 99});
        let after = expect(&c, "PUT", "/apis/example.com/v1/namespaces/default/gadgets/g/status", Some(with_status), 200).await;
        assert_eq!((after["status"]["phase"].as_str(), after["spec"]["n"].as_i64()), (Some("Ready"), Some(1)));
        let after = expect(&c, "PATCH", "/apis/example.com/v1/namespaces/default/gadgets/g", Some(json!({"status": {"phase": "Lost"}, "spec": {"n": 2}})), 200).await;
        assert_eq!((after["status"]["phase"].as_str(), after["spec"]["n"].as_i64()), (Some("Ready"), Some(2)));

        // Deleting the CRD removes its objects and its API.
        expect(&c, "DELETE", &format!("{crds}/gadgets.example.com"), None, 200).await;
        assert!(etcd.get("/registry/example.com/gadgets/default/g").await.unwrap().is_none());
        expect_status(&c, "GET", "/apis/example.com/v1/namespaces/default/gadgets", None, 404, "NotFound").await;
        expect_status(&c, "GET", "/apis/example.com", None, 404, "NotFound").await;
    })
    .await;
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_cascade_and_namespaces_empty_before_they_go() {
    let cluster = cluster().await;
    let c = client(cluster.server(), None);
    bounded(async {
        expect(&c, "POST", "/api/v1/namespaces", Some(json!({"metadata": {"name": "apps"}})), 201).await;
        let owner_ref = |kind: &str, object: &Value| json!([{"apiVersion": object["apiVersion"], "kind": kind,
            "name": object["metadata"]["name"], "uid": object["metadata"]["uid"], "controller": true}]);
        let chain = |name: &'static str| {
            let c = c.clone();
            async move {
                let pod_spec = json!({"containers": [{"name": "c", "image": "nginx"}]});
                let template = json!({"metadata": {"labels": {"app": name}}, "spec": pod_spec});
                let deployment = expect(&c, "POST", "/apis/apps/v1/namespaces/apps/deployments", Some(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                    "metadata": {"name": name}, "spec": {"selector": {"matchLabels": {"app": name}}, "template": template}})), 201).await;
                let rs = expect(&c, "POST", "/apis/apps/v1/namespaces/apps/replicasets", Some(json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": format!("{name}-rs"), "ownerReferences": owner_ref("Deployment", &deployment)},
                    "spec": {"selector": {"matchLabels": {"app": name}}, "template": template}})), 201).await;
                expect(&c, "POST", "/api/v1/namespaces/apps/pods", Some(json!({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": format!("{name}-pod"), "ownerReferences": owner_ref("ReplicaSet", &rs)}, "spec": pod_spec})), 201).await;
            }
        };
        chain("web").await;
        chain("kept").await;

        // Background cascading deletion: the ReplicaSet, then its Pod.
        expect(&c, "DELETE", "/apis/apps/v1/namespaces/apps/deployments/web", None, 200).await;
        eventually("the ReplicaSet and Pod of web are collected", || async {
            call(&c, "GET", "/api/v1/namespaces/apps/pods/web-pod", None).await.0 == 404
                && call(&c, "GET", "/apis/apps/v1/namespaces/apps/replicasets/web-rs", None).await.0 == 404
        })
        .await;
        // Orphaning keeps the dependents and drops their owner reference.
        expect(&c, "DELETE", "/apis/apps/v1/namespaces/apps/deployments/kept?propagationPolicy=Orphan", None, 200).await;
        eventually("kept-rs is orphaned", || async {
            let (status, rs) = call(&c, "GET", "/apis/apps/v1/namespaces/apps/replicasets/kept-rs", None).await;
            status == 200 && rs["metadata"].get("ownerReferences").is_none()
        })
        .await;
        expect(&c, "GET", "/api/v1/namespaces/apps/pods/kept-pod", None, 200).await;

        // Foreground: the owner waits (deletionTimestamp, foregroundDeletion finalizer)
        // until its dependents are gone, then goes too.
        chain("front").await;
        let deleting = expect(&c, "DELETE", "/apis/apps/v1/namespaces/apps/deployments/front?propagationPolicy=Foreground", None, 200).await;
        assert!(deleting["metadata"]["deletionTimestamp"].is_string(), "{deleting}");
        assert_eq!(deleting["metadata"]["finalizers"], json!(["foregroundDeletion"]));
        eventually("front and its dependents are gone", || async {
            call(&c, "GET", "/apis/apps/v1/namespaces/apps/deployments/front", None).await.0 == 404
                && call(&c, "GET", "/apis/apps/v1/namespaces/apps/replicasets/front-rs", None).await.0 == 404
                && call(&c, "GET", "/api/v1/namespaces/apps/pods/front-pod", None).await.0 == 404
        })
        .await;

        // A namespace stays Terminating while an object in it has a finalizer.
        expect(&c, "POST", "/api/v1/namespaces/apps/configmaps", Some(json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}})), 201).await;
        let deleted = expect(&c, "DELETE", "/api/v1/namespaces/apps", None, 200).await;
        assert_eq!(deleted["status"]["phase"], "Terminating");
        eventually("everything but the held object is gone", || async {
            let list = expect(&c, "GET", "/api/v1/namespaces/apps/pods", None, 200).await;
            list["items"].as_array().unwrap().is_empty()
        })
        .await;
        let ns = expect(&c, "GET", "/api/v1/namespaces/apps", None, 200).await;
        assert_eq!(ns["status"]["phase"], "Terminating");
        let held = expect(&c, "GET", "/api/v1/namespaces/apps/configmaps/held", None, 200).await;
        assert!(held["metadata"]["deletionTimestamp"].is_string());
        let status = expect_status(&c, "POST", "/api/v1/namespaces/apps/configmaps", Some(configmap("late", json!({}))), 403, "Forbidden").await;
        assert!(status["message"].as_str().unwrap().contains("because it is being terminated"), "{status}");
        expect(&c, "PATCH", "/api/v1/namespaces/apps/configmaps/held", Some(json!({"metadata": {"finalizers": null}})), 200).await;
        eventually("the namespace is gone", || async { call(&c, "GET", "/api/v1/namespaces/apps", None).await.0 == 404 }).await;
        let etcd = cluster.etcd().client().await.unwrap();
        for prefix in ["/registry/configmaps/apps/", "/registry/pods/apps/", "/registry/replicasets/apps/", "/registry/serviceaccounts/apps/"] {
            assert_eq!(etcd.count_prefix(prefix).await.unwrap(), 0, "{prefix}");
        }
    })
    .await;
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_is_laid_out_and_encrypted_like_kube_apiserver() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("encryption.yaml");
    std::fs::write(&config, "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers:\n  - aescbc:\n      keys:\n      - name: key1\n        secret: MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n  - identity: {}\n").unwrap();
    let encryption = snapshot_format::k8s::EncryptionConfig::from_file(&config).unwrap();
    let cluster = KubeCluster::start(KubeClusterOptions {
        server: ApiServerOptions {
            encryption: Some(encryption),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let c = client(cluster.server(), None);
    let etcd = cluster.etcd().client().await.unwrap();
    bounded(async {
        let value = |key: &'static str| {
            let etcd = etcd.clone();
            async move { etcd.get(key).await.unwrap().unwrap_or_else(|| panic!("{key} missing")).value }
        };
        assert!(value("/registry/services/specs/default/kubernetes").await.starts_with(b"k8s\0"));
        assert!(value("/registry/namespaces/kube-system").await.starts_with(b"k8s\0"));
        assert!(value("/registry/storageclasses/gp3").await.starts_with(b"k8s\0"));
        assert!(value("/registry/serviceaccounts/default/default").await.starts_with(b"k8s\0"));
        let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "node-1"}});
        expect(&c, "POST", "/api/v1/nodes", Some(node), 201).await;
        assert!(value("/registry/minions/node-1").await.starts_with(b"k8s\0"));
        expect(&c, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", Some(gadget_crd()), 201).await;
        assert!(value("/registry/apiextensions.k8s.io/customresourcedefinitions/gadgets.example.com").await.starts_with(b"{"));

        let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"}, "data": {"password": "aHVudGVyMg=="}});
        let created = expect(&c, "POST", "/api/v1/namespaces/default/secrets", Some(secret), 201).await;
        let stored = value("/registry/secrets/default/db").await;
        assert!(stored.starts_with(b"k8s:enc:aescbc:v1:key1:"), "{:?}", &stored[..30]);
        assert!(!stored.windows(7).any(|w| w == b"hunter2"));
        let read = expect(&c, "GET", "/api/v1/namespaces/default/secrets/db", None, 200).await;
        assert_eq!(read, created);
        assert_eq!(read["data"]["password"], "aHVudGVyMg==");
        // Other resources are not encrypted.
        expect(&c, "POST", "/api/v1/namespaces/default/configmaps", Some(configmap("plain", json!({}))), 201).await;
        assert!(value("/registry/configmaps/default/plain").await.starts_with(b"k8s\0"));
    })
    .await;
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_required_and_profiles_differ() {
    let older = KubeCluster::start(KubeClusterOptions {
        server: ApiServerOptions {
            profile: &OLDER,
            token: Some("s3cret".into()),
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let newer = cluster().await;
    bounded(async {
        let anonymous = client(older.server(), None);
        let (status, body) = call(&anonymous, "GET", "/api/v1/namespaces", None).await;
        assert_eq!((status, body["reason"].as_str()), (401, Some("Unauthorized")));
        let wrong = client(older.server(), Some("guess"));
        assert_eq!(call(&wrong, "GET", "/version", None).await.0, 401);
        let o = client(older.server(), Some("s3cret"));
        let n = client(newer.server(), None);

        let version = expect(&o, "GET", "/version", None, 200).await;
        assert_eq!((version["major"].as_str(), version["minor"].as_str()), (Some("1"), Some("24")));
        let policy = expect(&o, "GET", "/apis/policy", None, 200).await;
        let versions: Vec<&str> = policy["versions"].as_array().unwrap().iter().map(|v| v["version"].as_str().unwrap()).collect();
        assert_eq!(versions, ["v1", "v1beta1"]);
        let policy = expect(&n, "GET", "/apis/policy", None, 200).await;
        assert_eq!(policy["versions"].as_array().unwrap().len(), 1);
        expect_status(&n, "GET", "/apis/policy/v1beta1/poddisruptionbudgets", None, 404, "NotFound").await;
        expect_status(&o, "GET", "/apis/resource.k8s.io/v1/resourceclaims", None, 404, "NotFound").await;

        // An older cluster takes policy/v1beta1 and serves the object in v1 too.
        let pdb = json!({"apiVersion": "policy/v1beta1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}});
        expect(&o, "POST", "/apis/policy/v1beta1/namespaces/default/poddisruptionbudgets", Some(pdb), 201).await;
        let v1 = expect(&o, "GET", "/apis/policy/v1/namespaces/default/poddisruptionbudgets/web", None, 200).await;
        assert_eq!(v1["apiVersion"], "policy/v1");
        assert_eq!(v1["spec"]["minAvailable"], 1);

        let default_class = |list: &Value| -> Vec<String> {
            list["items"].as_array().unwrap().iter()
                .filter(|sc| sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true")
                .map(|sc| sc["metadata"]["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(default_class(&expect(&o, "GET", "/apis/storage.k8s.io/v1/storageclasses", None, 200).await), ["standard"]);
        assert_eq!(default_class(&expect(&n, "GET", "/apis/storage.k8s.io/v1/storageclasses", None, 200).await), ["gp3"]);
    })
    .await;
    older.stop().await.unwrap();
    newer.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_over_the_same_etcd_knows_crds_allocations_and_owners() {
    let cluster = cluster().await;
    let c = client(cluster.server(), None);
    bounded(async {
        expect(&c, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", Some(gadget_crd()), 201).await;
        let owner = expect(&c, "POST", "/apis/example.com/v1/namespaces/default/gadgets", Some(json!({"metadata": {"name": "owner"}})), 201).await;
        let refs = json!([{"apiVersion": "example.com/v1", "kind": "Gadget", "name": "owner", "uid": owner["metadata"]["uid"]}]);
        expect(&c, "POST", "/api/v1/namespaces/default/configmaps", Some(json!({"metadata": {"name": "owned", "ownerReferences": refs}})), 201).await;
        let service = json!({"metadata": {"name": "one"}, "spec": {"ports": [{"port": 80}]}});
        let one = expect(&c, "POST", "/api/v1/namespaces/default/services", Some(service), 201).await;

        let second = testenv::apiserver::ApiServer::start(cluster.etcd().client().await.unwrap(), ApiServerOptions::default())
            .await
            .unwrap();
        let c2 = client(&second, None);
        expect(&c2, "GET", "/apis/example.com/v1/namespaces/default/gadgets/owner", None, 200).await;
        let taken = json!({"metadata": {"name": "two"}, "spec": {"clusterIP": one["spec"]["clusterIP"], "ports": [{"port": 80}]}});
        expect_status(&c2, "POST", "/api/v1/namespaces/default/services", Some(taken), 422, "Invalid").await;
        expect(&c2, "DELETE", "/apis/example.com/v1/namespaces/default/gadgets/owner", None, 200).await;
        eventually("the owned ConfigMap is collected by the second server", || async {
            call(&c2, "GET", "/api/v1/namespaces/default/configmaps/owned", None).await.0 == 404
        })
        .await;
        second.shutdown().await;
    })
    .await;
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_fail_one_resource_and_leave_it_in_discovery() {
    let cluster = KubeCluster::start(KubeClusterOptions {
        server: ApiServerOptions {
            fail_resources: vec!["deployments.apps".to_string()],
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .unwrap();
    let server = cluster.server();
    let c = client(server, None);
    bounded(async {
        let base = "/api/v1/namespaces/default/configmaps";
        expect(&c, "POST", base, Some(configmap("before", json!({}))), 201).await;
        assert_eq!(server.failing_resources(), vec!["deployments.apps"]);

        // Failing from the options: every verb and scope of deployments.apps.
        for path in ["/apis/apps/v1/deployments", "/apis/apps/v1/namespaces/default/deployments", "/apis/apps/v1/namespaces/default/deployments/web"] {
            let status = expect_status(&c, "GET", path, None, 500, "InternalError").await;
            assert_eq!(status["message"], "Internal error occurred: injected fault: every request for deployments.apps fails");
        }
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}});
        expect_status(&c, "POST", "/apis/apps/v1/namespaces/default/deployments", Some(deployment.clone()), 500, "InternalError").await;
        // Other resources of the group still work; discovery still lists the resource.
        expect(&c, "GET", "/apis/apps/v1/namespaces/default/replicasets", None, 200).await;
        let resources = expect(&c, "GET", "/apis/apps/v1", None, 200).await;
        assert!(resources["resources"].as_array().unwrap().iter().any(|r| r["name"] == "deployments"), "{resources}");

        // Failing at run time: configmaps (core group), lists, gets and watches.
        server.fail_resource("configmaps");
        assert_eq!(server.failing_resources(), vec!["configmaps", "deployments.apps"]);
        let status = expect_status(&c, "GET", base, None, 500, "InternalError").await;
        assert_eq!(status["message"], "Internal error occurred: injected fault: every request for configmaps fails");
        expect_status(&c, "GET", "/api/v1/configmaps", None, 500, "InternalError").await;
        expect_status(&c, "GET", &format!("{base}/before"), None, 500, "InternalError").await;
        expect_status(&c, "GET", &format!("{base}?watch=true&timeoutSeconds=1"), None, 500, "InternalError").await;
        expect_status(&c, "DELETE", &format!("{base}/before"), None, 500, "InternalError").await;
        let v1 = expect(&c, "GET", "/api/v1", None, 200).await;
        assert!(v1["resources"].as_array().unwrap().iter().any(|r| r["name"] == "configmaps"), "{v1}");
        expect(&c, "GET", "/api/v1/namespaces/default/secrets", None, 200).await;
        expect(&c, "GET", "/api/v1/namespaces", None, 200).await;
        // kube-rs sees an API error with the code and reason.
        let typed: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::default_namespaced(c.clone());
        let error = typed.list(&Default::default()).await.unwrap_err();
        let text = format!("{error:?}");
        assert!(text.contains("500") && text.contains("InternalError"), "{text}");

        // Custom resources are named plural.group; their CRD keeps working.
        let crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";
        expect(&c, "POST", crds, Some(gadget_crd()), 201).await;
        let gadgets = "/apis/example.com/v1/namespaces/default/gadgets";
        let gadget = json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"n": 1}});
        expect(&c, "POST", gadgets, Some(gadget), 201).await;
        server.fail_resource("gadgets.example.com");
        let status = expect_status(&c, "GET", gadgets, None, 500, "InternalError").await;
        assert_eq!(status["message"], "Internal error occurred: injected fault: every request for gadgets.example.com fails");
        expect_status(&c, "GET", "/apis/example.com/v1beta1/gadgets", None, 500, "InternalError").await;
        expect_status(&c, "GET", &format!("{gadgets}/g/status"), None, 500, "InternalError").await;
        let resources = expect(&c, "GET", "/apis/example.com/v1", None, 200).await;
        assert!(resources["resources"].as_array().unwrap().iter().any(|r| r["name"] == "gadgets"), "{resources}");
        expect(&c, "GET", &format!("{crds}/gadgets.example.com"), None, 200).await;

        // Cleared: both work again, and the delete refused above did not happen.
        assert_eq!(server.failing_resources(), vec!["configmaps", "deployments.apps", "gadgets.example.com"]);
        server.clear_faults();
        assert!(server.failing_resources().is_empty());
        let list = expect(&c, "GET", base, None, 200).await;
        assert!(names(&list).contains(&"before".to_string()), "{list}");
        expect(&c, "POST", "/apis/apps/v1/namespaces/default/deployments", Some(deployment), 201).await;
        expect(&c, "GET", "/apis/apps/v1/namespaces/default/deployments/web", None, 200).await;
        expect(&c, "GET", &format!("{gadgets}/g"), None, 200).await;
    })
    .await;
}
