//! Realistic clusters, deterministic from a seed: many namespaces with Deployments →
//! ReplicaSets → Pods linked by ownerReferences, Services, ConfigMaps, Secrets,
//! ServiceAccounts, Roles and RoleBindings, PVCs bound to PVs, plus ClusterRoles and
//! bindings, a StorageClass, CRDs with their CRs, and webhook configurations — from
//! hundreds to 100k+ objects.
//!
//! Objects are written through the API ([`Api`]), in dependency waves (cluster-scoped
//! objects and CRDs, namespaces, namespaced objects, ReplicaSets, Pods) with many in
//! flight, so they get uids, resourceVersions and allocated cluster IPs like any other.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::objects::{Api, Part};
use super::status::ApiError;
use crate::SplitMix64;

/// The shape of a generated cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterWorkload {
    /// Application namespaces (`app-000`, …).
    pub namespaces: usize,
    /// Deployments per namespace; each has a ReplicaSet, a Service, two ConfigMaps, a
    /// Secret, a `Widget` custom resource, and every other one a PVC bound to a PV.
    pub deployments_per_namespace: usize,
    /// Pods per ReplicaSet.
    pub pods_per_replica_set: usize,
    /// Seed of names, labels and payloads.
    pub seed: u64,
}

/// A workload's counts after loading.
#[derive(Debug, Clone)]
pub struct WorkloadReport {
    /// Objects created (not counting the `default` ServiceAccounts namespaces get).
    pub objects: usize,
    /// Wall time.
    pub elapsed: Duration,
}

/// The CRD of the generated custom resources.
pub const WIDGET_CRD: &str = "widgets.example.com";

/// Which generated object to take an owner uid from.
#[derive(Debug, Clone)]
struct OwnerLink {
    key: String,
    api_version: &'static str,
    kind: &'static str,
    name: String,
}

/// One object to create.
#[derive(Debug, Clone)]
struct Planned {
    group: &'static str,
    version: &'static str,
    resource: &'static str,
    namespace: Option<String>,
    object: Value,
    owner: Option<OwnerLink>,
    /// Written through the status subresource after creation.
    status: Option<Value>,
}

fn uid_key(group: &str, resource: &str, namespace: Option<&str>, name: &str) -> String {
    format!("{group}/{resource}/{}/{name}", namespace.unwrap_or(""))
}

/// `len` printable characters from the generator.
fn payload(rng: &mut SplitMix64, len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 =:-_";
    (0..len)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
        .collect()
}

const COLORS: &[&str] = &["red", "green", "blue"];

const APPS: &[&str] = &[
    "web", "api", "worker", "cache", "auth", "billing", "search", "gateway", "metrics", "mailer",
    "queue", "frontend",
];

impl ClusterWorkload {
    /// A cluster of about `objects` objects: 3 namespaces for small sizes, then more
    /// namespaces of 10 Deployments each (about 118 objects per namespace).
    pub fn sized(objects: usize, seed: u64) -> Self {
        let per_deployment_small = 12; // with 3 pods
        if objects < 1000 {
            let namespaces = 3;
            let deployments =
                (objects.saturating_sub(40) / (namespaces * per_deployment_small)).max(1);
            ClusterWorkload {
                namespaces,
                deployments_per_namespace: deployments,
                pods_per_replica_set: 3,
                seed,
            }
        } else {
            let template = ClusterWorkload {
                namespaces: 1,
                deployments_per_namespace: 10,
                pods_per_replica_set: 3,
                seed,
            };
            let per_namespace = template.object_count() - template.cluster_scoped_count();
            ClusterWorkload {
                namespaces: (objects.saturating_sub(template.cluster_scoped_count())
                    / per_namespace)
                    .max(1),
                ..template
            }
        }
    }

    fn cluster_scoped_count(&self) -> usize {
        // StorageClass, 5 ClusterRoles, 5 bindings, PriorityClass, 2 CRDs, 2 webhooks.
        16
    }

    /// Objects the workload creates.
    pub fn object_count(&self) -> usize {
        self.waves().iter().map(Vec::len).sum()
    }

    fn waves(&self) -> Vec<Vec<Planned>> {
        let mut cluster = Vec::new();
        let mut namespaces = Vec::new();
        let mut namespaced = Vec::new();
        let mut replica_sets = Vec::new();
        let mut pods = Vec::new();
        let plan = |group, version, resource, namespace: Option<&str>, object| Planned {
            group,
            version,
            resource,
            namespace: namespace.map(str::to_string),
            object,
            owner: None,
            status: None,
        };

        cluster.push(plan(
            "storage.k8s.io",
            "v1",
            "storageclasses",
            None,
            json!({
                "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                "metadata": {"name": "fast-ssd", "labels": {"tier": "fast"}},
                "provisioner": "pd.csi.storage.gke.io", "reclaimPolicy": "Retain",
                "parameters": {"type": "pd-ssd"}, "allowVolumeExpansion": true,
            }),
        ));
        for i in 0..5 {
            let name = format!("testenv-reader-{i}");
            cluster.push(plan("rbac.authorization.k8s.io", "v1", "clusterroles", None, json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": {"name": name, "labels": {"testenv.salvor.io/generated": "true"}},
                "rules": [{"apiGroups": ["", "apps"], "resources": ["pods", "deployments", "configmaps"], "verbs": ["get", "list", "watch"]}],
            })));
            cluster.push(plan("rbac.authorization.k8s.io", "v1", "clusterrolebindings", None, json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "Group", "name": format!("readers-{i}"), "apiGroup": "rbac.authorization.k8s.io"}],
            })));
        }
        cluster.push(plan(
            "scheduling.k8s.io",
            "v1",
            "priorityclasses",
            None,
            json!({
                "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                "metadata": {"name": "business-critical"}, "value": 100000, "globalDefault": false,
                "description": "generated by testenv",
            }),
        ));
        cluster.push(plan(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            None,
            widget_crd(),
        ));
        cluster.push(plan("apiextensions.k8s.io", "v1", "customresourcedefinitions", None, json!({
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "backupschedules.ops.example.com"},
            "spec": {
                "group": "ops.example.com", "scope": "Cluster",
                "names": {"plural": "backupschedules", "singular": "backupschedule", "kind": "BackupSchedule", "listKind": "BackupScheduleList"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                              "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
            },
        })));
        let webhook = |kind: &str| {
            json!({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                "metadata": {"name": "policy.example.com"},
                "webhooks": [{
                    "name": "policy.example.com",
                    "clientConfig": {"service": {"namespace": "app-000", "name": "policy", "path": "/validate", "port": 443}},
                    "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"], "scope": "Namespaced"}],
                    "failurePolicy": "Ignore", "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5,
                }],
            })
        };
        cluster.push(plan(
            "admissionregistration.k8s.io",
            "v1",
            "validatingwebhookconfigurations",
            None,
            webhook("ValidatingWebhookConfiguration"),
        ));
        cluster.push(plan(
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            None,
            webhook("MutatingWebhookConfiguration"),
        ));

        for n in 0..self.namespaces {
            let ns = format!("app-{n:03}");
            let mut rng = SplitMix64::for_item(self.seed, 100, n as u64);
            let team = format!("team-{}", rng.below(8));
            namespaces.push(plan("", "v1", "namespaces", None, json!({
                "apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns, "labels": {"team": team, "testenv.salvor.io/generated": "true"}},
            })));
            let nsr = Some(ns.as_str());
            namespaced.push(plan(
                "",
                "v1",
                "serviceaccounts",
                nsr,
                json!({
                    "apiVersion": "v1", "kind": "ServiceAccount",
                    "metadata": {"name": "app", "namespace": ns, "labels": {"team": team}},
                }),
            ));
            namespaced.push(plan("rbac.authorization.k8s.io", "v1", "roles", nsr, json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "app", "namespace": ns},
                "rules": [{"apiGroups": [""], "resources": ["configmaps", "secrets"], "verbs": ["get", "list"]}],
            })));
            namespaced.push(plan("rbac.authorization.k8s.io", "v1", "rolebindings", nsr, json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "app", "namespace": ns},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "app"},
                "subjects": [{"kind": "ServiceAccount", "name": "app", "namespace": ns}],
            })));
            for d in 0..self.deployments_per_namespace {
                let mut rng = SplitMix64::for_item(self.seed, 101, (n * 100_000 + d) as u64);
                let app = format!("{}-{d}", APPS[d % APPS.len()]);
                let labels = json!({"app": app, "team": team, "tier": if d % 3 == 0 { "frontend" } else { "backend" }});
                let image = format!(
                    "registry.example.com/{}:{}.{}.{}",
                    APPS[d % APPS.len()],
                    rng.below(3),
                    rng.below(20),
                    rng.below(10)
                );
                let pod_spec = json!({
                    "serviceAccountName": "app",
                    "containers": [{
                        "name": "main", "image": image,
                        "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                        "env": [{"name": "CONFIG", "valueFrom": {"configMapKeyRef": {"name": format!("{app}-config"), "key": "settings"}}}],
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                    }],
                });
                let replicas = self.pods_per_replica_set;
                namespaced.push(plan(
                    "apps",
                    "v1",
                    "deployments",
                    nsr,
                    json!({
                        "apiVersion": "apps/v1", "kind": "Deployment",
                        "metadata": {"name": app, "namespace": ns, "labels": labels},
                        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app}},
                                 "template": {"metadata": {"labels": labels}, "spec": pod_spec}},
                    }),
                ));
                namespaced.push(plan("", "v1", "services", nsr, json!({
                    "apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": app, "namespace": ns, "labels": labels},
                    "spec": {"type": if d % 5 == 4 { "NodePort" } else { "ClusterIP" }, "selector": {"app": app},
                             "ports": [{"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}]},
                })));
                for suffix in ["config", "env"] {
                    let size = 200 + rng.below(3000) as usize;
                    namespaced.push(plan("", "v1", "configmaps", nsr, json!({
                        "apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("{app}-{suffix}"), "namespace": ns, "labels": {"app": app}},
                        "data": {"settings": payload(&mut rng, size), "region": "eu-west-1"},
                    })));
                }
                let secret_len = 32 + rng.below(64) as usize;
                let secret = payload(&mut rng, secret_len);
                namespaced.push(plan("", "v1", "secrets", nsr, json!({
                    "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"name": format!("{app}-credentials"), "namespace": ns, "labels": {"app": app}},
                    "data": {"password": base64::engine::general_purpose::STANDARD.encode(secret)},
                })));
                namespaced.push(plan("example.com", "v1", "widgets", nsr, json!({
                    "apiVersion": "example.com/v1", "kind": "Widget",
                    "metadata": {"name": app, "namespace": ns, "labels": {"app": app}},
                    "spec": {"size": rng.below(10) + 1, "color": COLORS[rng.below(3) as usize], "owner": team},
                })));
                if d % 2 == 0 {
                    let pv = format!("pv-{ns}-{app}");
                    let claim = format!("{app}-data");
                    let size = format!("{}Gi", 1 + rng.below(100));
                    let mut volume = plan(
                        "",
                        "v1",
                        "persistentvolumes",
                        None,
                        json!({
                            "apiVersion": "v1", "kind": "PersistentVolume",
                            "metadata": {"name": pv, "labels": {"app": app}},
                            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                                     "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "fast-ssd",
                                     "csi": {"driver": "pd.csi.storage.gke.io", "volumeHandle": format!("projects/p/disks/{pv}")},
                                     "claimRef": {"kind": "PersistentVolumeClaim", "namespace": ns, "name": claim, "apiVersion": "v1"}},
                        }),
                    );
                    volume.status = Some(json!({"phase": "Bound"}));
                    // PVs are cluster-scoped but must exist before their claims bind.
                    namespaced.push(volume);
                    let mut pvc = plan(
                        "",
                        "v1",
                        "persistentvolumeclaims",
                        nsr,
                        json!({
                            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
                            "metadata": {"name": claim, "namespace": ns, "labels": {"app": app},
                                         "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
                            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "fast-ssd", "volumeName": pv,
                                     "resources": {"requests": {"storage": size}}},
                        }),
                    );
                    pvc.status = Some(
                        json!({"phase": "Bound", "accessModes": ["ReadWriteOnce"], "capacity": {"storage": size}}),
                    );
                    namespaced.push(pvc);
                }
                let hash = format!("{:x}", rng.next_u64() & 0xff_ffff_ffff);
                let rs_name = format!("{app}-{hash}");
                let mut rs_labels = labels.clone();
                rs_labels["pod-template-hash"] = json!(hash);
                let mut rs = plan(
                    "apps",
                    "v1",
                    "replicasets",
                    nsr,
                    json!({
                        "apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "metadata": {"name": rs_name, "namespace": ns, "labels": rs_labels,
                                     "annotations": {"deployment.kubernetes.io/revision": "1"}},
                        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": app, "pod-template-hash": hash}},
                                 "template": {"metadata": {"labels": rs_labels}, "spec": pod_spec}},
                    }),
                );
                rs.owner = Some(OwnerLink {
                    key: uid_key("apps", "deployments", nsr, &app),
                    api_version: "apps/v1",
                    kind: "Deployment",
                    name: app.clone(),
                });
                replica_sets.push(rs);
                for p in 0..replicas {
                    let pod_name = format!("{rs_name}-{}", payload_name(&mut rng, p));
                    let mut pod = plan(
                        "",
                        "v1",
                        "pods",
                        nsr,
                        json!({
                            "apiVersion": "v1", "kind": "Pod",
                            "metadata": {"name": pod_name, "namespace": ns, "labels": rs_labels},
                            "spec": {"nodeName": format!("node-{}", rng.below(20)), "serviceAccountName": "app",
                                     "containers": pod_spec["containers"].clone()},
                        }),
                    );
                    pod.owner = Some(OwnerLink {
                        key: uid_key("apps", "replicasets", nsr, &rs_name),
                        api_version: "apps/v1",
                        kind: "ReplicaSet",
                        name: rs_name.clone(),
                    });
                    pods.push(pod);
                }
            }
        }
        vec![cluster, namespaces, namespaced, replica_sets, pods]
    }

    /// Creates the workload through `api` with `concurrency` requests in flight.
    pub async fn load(
        &self,
        api: &Arc<Api>,
        concurrency: usize,
    ) -> Result<WorkloadReport, ApiError> {
        let started = Instant::now();
        let uids: Arc<Mutex<HashMap<String, String>>> = Arc::default();
        let mut objects = 0;
        for wave in self.waves() {
            let mut tasks = JoinSet::new();
            for planned in wave {
                while tasks.len() >= concurrency.max(1) {
                    if let Some(joined) = tasks.join_next().await {
                        joined.map_err(|e| ApiError::internal(e.to_string()))??;
                    }
                }
                let (api, uids) = (api.clone(), uids.clone());
                tasks.spawn(async move { create_planned(&api, &uids, planned).await });
                objects += 1;
            }
            while let Some(joined) = tasks.join_next().await {
                joined.map_err(|e| ApiError::internal(e.to_string()))??;
            }
        }
        Ok(WorkloadReport {
            objects,
            elapsed: started.elapsed(),
        })
    }
}

fn payload_name(rng: &mut SplitMix64, index: usize) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut name: String = (0..5)
        .map(|_| ALPHABET[rng.below(ALPHABET.len() as u64) as usize] as char)
        .collect();
    name.push(ALPHABET[index % ALPHABET.len()] as char);
    name
}

async fn create_planned(
    api: &Api,
    uids: &Mutex<HashMap<String, String>>,
    mut planned: Planned,
) -> Result<(), ApiError> {
    let resource = api
        .discovery()
        .get(planned.group, planned.version, planned.resource)
        .ok_or_else(|| {
            ApiError::internal(format!(
                "the server does not serve {}/{} {}",
                planned.group, planned.version, planned.resource
            ))
        })?;
    if let Some(owner) = &planned.owner {
        let uid = uids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&owner.key)
            .cloned()
            .ok_or_else(|| ApiError::internal(format!("owner {} was not created", owner.key)))?;
        planned.object["metadata"]["ownerReferences"] = json!([{
            "apiVersion": owner.api_version, "kind": owner.kind, "name": owner.name,
            "uid": uid, "controller": true, "blockOwnerDeletion": true,
        }]);
    }
    let namespace = planned.namespace.as_deref().filter(|_| resource.namespaced);
    let created = api.create(&resource, namespace, planned.object).await?;
    let name = super::meta::name(&created).unwrap_or("").to_string();
    if let Some(uid) = super::meta::uid(&created) {
        uids.lock().unwrap_or_else(|p| p.into_inner()).insert(
            uid_key(planned.group, planned.resource, namespace, &name),
            uid.to_string(),
        );
    }
    if let Some(status) = planned.status {
        let mut object = created;
        object["status"] = status;
        api.update(&resource, namespace, &name, object, Part::Status)
            .await?;
    }
    Ok(())
}

/// The CRD of `Widget`s: namespaced, served as v1 (storage) and v1beta1, with a status
/// subresource and a short name.
pub fn widget_crd() -> Value {
    let schema = json!({"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}});
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": WIDGET_CRD},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wg"]},
            "versions": [
                {"name": "v1", "served": true, "storage": true, "schema": schema, "subresources": {"status": {}}},
                {"name": "v1beta1", "served": true, "storage": false, "schema": schema, "subresources": {"status": {}}},
            ],
            "conversion": {"strategy": "None"},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_scale() {
        let small = ClusterWorkload::sized(300, 1);
        let count = small.object_count();
        assert!((150..=600).contains(&count), "{count}");
        let large = ClusterWorkload::sized(100_000, 1);
        let count = large.object_count();
        assert!((90_000..=110_000).contains(&count), "{count}");
        assert_eq!(small.waves().len(), 5);
    }
}
