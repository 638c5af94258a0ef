//! The real `kubectl` (v1.32, `/usr/bin/kubectl` or `$KUBECTL`) against testenv's API
//! server over real etcd: api-resources, create -f of a multi-document manifest with a
//! CRD and its custom resources, get -o yaml, get --chunk-size, replace (and a stale
//! replace), patch --type merge, delete, delete namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use testenv::apiserver::KubeCluster;

/// The kubectl binary; the test fails (not skips) when it is missing.
fn kubectl_binary() -> PathBuf {
    let path = std::env::var_os("KUBECTL")
        .map_or_else(|| PathBuf::from("/usr/bin/kubectl"), PathBuf::from);
    assert!(
        path.exists(),
        "kubectl not found at {} (install kubectl v1.32 or set KUBECTL)",
        path.display()
    );
    path
}

struct Kubectl {
    binary: PathBuf,
    kubeconfig: PathBuf,
    home: PathBuf,
}

struct Output {
    success: bool,
    stdout: String,
    stderr: String,
}

impl Kubectl {
    async fn run(&self, args: &[&str]) -> Output {
        self.run_with_input(args, None).await
    }

    async fn run_with_input(&self, args: &[&str], input: Option<&Path>) -> Output {
        let mut command = tokio::process::Command::new(&self.binary);
        command
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .env("HOME", &self.home)
            .env_remove("KUBECONFIG")
            .kill_on_drop(true);
        if let Some(input) = input {
            command.arg("-f").arg(input);
        }
        let output = tokio::time::timeout(Duration::from_secs(60), command.output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within 60 s"))
            .expect("kubectl runs");
        Output {
            success: output.status.success(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.success,
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            output.stdout, output.stderr
        );
        output.stdout
    }

    async fn yaml(&self, args: &[&str]) -> Value {
        let text = self.ok(args).await;
        serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("kubectl {args:?} printed bad YAML ({e}): {text}"))
    }
}

const MANIFEST: &str = r#"apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wg]}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: blue, namespace: shop, labels: {color: blue}}
spec: {size: 3}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: red, namespace: shop}
spec: {size: 5}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {mode: fast}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"#;

/// Rows of a `kubectl api-resources` table, split on whitespace.
fn table_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .skip(1)
        .map(|line| line.split_whitespace().map(str::to_string).collect())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_drives_the_api_server() {
    let binary = kubectl_binary();
    let version = std::process::Command::new(&binary)
        .args(["version", "--client", "-o", "json"])
        .output()
        .expect("kubectl runs");
    let version: Value = serde_json::from_slice(&version.stdout).expect("kubectl version JSON");
    let git_version = version["clientVersion"]["gitVersion"]
        .as_str()
        .unwrap_or("");
    assert!(
        git_version.starts_with("v1.32."),
        "kubectl v1.32 expected: {version}"
    );

    let dir = tempfile::tempdir().unwrap();
    let cluster = KubeCluster::start(Default::default()).await.unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.server().write_kubeconfig(&kubeconfig).unwrap();
    let kubectl = Kubectl {
        binary,
        kubeconfig,
        home: dir.path().to_path_buf(),
    };
    let test = async {
        // Discovery.
        let resources = kubectl.ok(&["api-resources"]).await;
        let rows = table_rows(&resources);
        let find = |name: &str| rows.iter().find(|r| r[0] == name).cloned();
        assert_eq!(
            find("deployments").unwrap(),
            ["deployments", "deploy", "apps/v1", "true", "Deployment"]
        );
        assert_eq!(
            find("namespaces").unwrap(),
            ["namespaces", "ns", "v1", "false", "Namespace"]
        );
        assert_eq!(
            find("customresourcedefinitions").unwrap(),
            [
                "customresourcedefinitions",
                "crd,crds",
                "apiextensions.k8s.io/v1",
                "false",
                "CustomResourceDefinition"
            ]
        );
        assert_eq!(
            find("secrets").unwrap(),
            ["secrets", "v1", "true", "Secret"]
        );
        assert!(find("widgets").is_none());
        assert!(rows.len() > 40, "{resources}");
        let server = kubectl.ok(&["version", "-o", "json"]).await;
        let server: Value = serde_json::from_str(&server).unwrap();
        assert_eq!(server["serverVersion"]["gitVersion"], "v1.34.1-testenv");

        // create -f: as against kube-apiserver, kubectl with freshly fetched discovery
        // does not find the kind of a CRD created by the same command, so the custom
        // resources fail until the next run…
        let manifest = dir.path().join("manifest.yaml");
        std::fs::write(&manifest, MANIFEST).unwrap();
        let fresh_cache = |n: usize| dir.path().join(format!("cache-{n}")).display().to_string();
        let first = kubectl
            .run_with_input(&["create", "--cache-dir", &fresh_cache(1)], Some(&manifest))
            .await;
        assert!(!first.success);
        for created in [
            "namespace/shop created",
            "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created",
            "configmap/settings created",
            "deployment.apps/web created",
            "service/web created",
        ] {
            assert!(
                first.stdout.contains(created),
                "missing {created:?} in {}",
                first.stdout
            );
        }
        assert!(
            first
                .stderr
                .contains("no matches for kind \"Widget\" in version \"example.com/v1\""),
            "{}",
            first.stderr
        );
        assert!(
            first.stderr.contains("ensure CRDs are installed first"),
            "{}",
            first.stderr
        );
        // …and the second run creates them; the rest already exists.
        let second = kubectl
            .run_with_input(&["create", "--cache-dir", &fresh_cache(2)], Some(&manifest))
            .await;
        assert!(!second.success);
        assert!(
            second.stdout.contains("widget.example.com/blue created"),
            "{}",
            second.stdout
        );
        assert!(
            second.stdout.contains("widget.example.com/red created"),
            "{}",
            second.stdout
        );
        assert!(
            second
                .stderr
                .contains("Error from server (AlreadyExists): error when creating")
                && second
                    .stderr
                    .contains("configmaps \"settings\" already exists"),
            "{}",
            second.stderr
        );
        let rows = table_rows(
            &kubectl
                .ok(&["api-resources", "--api-group", "example.com"])
                .await,
        );
        assert_eq!(
            rows,
            [["widgets", "wg", "example.com/v1", "true", "Widget"]]
        );

        // The CRD's printer columns.
        let table = kubectl.ok(&["get", "widgets", "-n", "shop"]).await;
        let rows = table_rows(&format!("x\n{table}"));
        assert_eq!(rows[0], ["NAME", "SIZE", "AGE"], "{table}");
        assert_eq!(&rows[1][..2], ["blue", "3"], "{table}");
        assert_eq!(&rows[2][..2], ["red", "5"], "{table}");

        // get -o yaml.
        let widget = kubectl
            .yaml(&["get", "wg", "blue", "-n", "shop", "-o", "yaml"])
            .await;
        assert_eq!(widget["apiVersion"], "example.com/v1");
        assert_eq!(widget["kind"], "Widget");
        assert_eq!(widget["spec"]["size"], 3);
        assert_eq!(widget["metadata"]["labels"]["color"], "blue");
        assert_eq!(widget["metadata"]["generation"], 1);
        assert_eq!(widget["metadata"]["uid"].as_str().unwrap().len(), 36);
        assert!(
            widget["metadata"]["resourceVersion"]
                .as_str()
                .unwrap()
                .parse::<i64>()
                .unwrap()
                > 1
        );
        let listed = kubectl
            .ok(&[
                "get",
                "widgets",
                "-n",
                "shop",
                "-l",
                "color=blue",
                "-o",
                "name",
            ])
            .await;
        assert_eq!(listed.trim(), "widget.example.com/blue");
        let crd = kubectl
            .yaml(&["get", "crd", "widgets.example.com", "-o", "yaml"])
            .await;
        let established = crd["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True");
        assert!(established, "{crd:?}");
        let deployment = kubectl
            .yaml(&["get", "deploy", "web", "-n", "shop", "-o", "yaml"])
            .await;
        assert_eq!(deployment["spec"]["replicas"], 2);
        assert_eq!(
            deployment["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1.27"
        );
        let ip = kubectl
            .ok(&[
                "get",
                "svc",
                "web",
                "-n",
                "shop",
                "-o",
                "jsonpath={.spec.clusterIP}",
            ])
            .await;
        assert!(
            ip.starts_with("10.9") || ip.starts_with("10.10") || ip.starts_with("10.11"),
            "{ip}"
        );

        // get --chunk-size: typed creates (protobuf bodies), then a paginated list.
        for i in 1..=7 {
            let out = kubectl
                .ok(&[
                    "create",
                    "configmap",
                    &format!("c{i}"),
                    "-n",
                    "shop",
                    &format!("--from-literal=k=v{i}"),
                ])
                .await;
            assert_eq!(out.trim(), format!("configmap/c{i} created"));
        }
        let chunked = kubectl
            .run(&["get", "configmaps", "-n", "shop", "--chunk-size=3", "-v=6"])
            .await;
        assert!(chunked.success, "{}", chunked.stderr);
        let pages = chunked
            .stderr
            .lines()
            .filter(|l| l.contains("/configmaps?") && l.contains("200 OK"))
            .count();
        let continued = chunked
            .stderr
            .lines()
            .filter(|l| l.contains("/configmaps?continue="))
            .count();
        // 8 configmaps in pages of 3: three requests, two with a continue token.
        assert_eq!((pages, continued), (3, 2), "{}", chunked.stderr);
        let names: Vec<&str> = chunked
            .stdout
            .lines()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .collect();
        assert_eq!(
            names,
            ["c1", "c2", "c3", "c4", "c5", "c6", "c7", "settings"]
        );

        // replace, then a stale replace (409 Conflict).
        let original = kubectl
            .ok(&["get", "configmap", "c1", "-n", "shop", "-o", "yaml"])
            .await;
        let edited = dir.path().join("c1.yaml");
        std::fs::write(&edited, original.replace("k: v1", "k: replaced")).unwrap();
        let out = kubectl.run_with_input(&["replace"], Some(&edited)).await;
        assert_eq!(out.stdout.trim(), "configmap/c1 replaced", "{}", out.stderr);
        let after = kubectl
            .yaml(&["get", "configmap", "c1", "-n", "shop", "-o", "yaml"])
            .await;
        assert_eq!(after["data"]["k"], "replaced");
        let stale = dir.path().join("stale.yaml");
        std::fs::write(&stale, original.replace("k: v1", "k: stale")).unwrap();
        let out = kubectl.run_with_input(&["replace"], Some(&stale)).await;
        assert!(!out.success);
        assert!(
            out.stderr.contains("Error from server (Conflict)")
                && out.stderr.contains("the object has been modified; please apply your changes to the latest version and try again"),
            "{}",
            out.stderr
        );

        // patch --type merge.
        let out = kubectl
            .ok(&[
                "patch",
                "configmap",
                "c2",
                "-n",
                "shop",
                "--type",
                "merge",
                "-p",
                r#"{"data":{"k":"patched","extra":"yes"}}"#,
            ])
            .await;
        assert_eq!(out.trim(), "configmap/c2 patched");
        let patched = kubectl
            .yaml(&["get", "configmap", "c2", "-n", "shop", "-o", "yaml"])
            .await;
        assert_eq!(patched["data"]["k"], "patched");
        assert_eq!(patched["data"]["extra"], "yes");
        let out = kubectl
            .ok(&[
                "patch",
                "wg",
                "red",
                "-n",
                "shop",
                "--type",
                "merge",
                "-p",
                r#"{"spec":{"size":6}}"#,
            ])
            .await;
        assert_eq!(out.trim(), "widget.example.com/red patched");
        let red = kubectl
            .yaml(&["get", "wg", "red", "-n", "shop", "-o", "yaml"])
            .await;
        assert_eq!(
            (
                red["spec"]["size"].as_i64(),
                red["metadata"]["generation"].as_i64()
            ),
            (Some(6), Some(2))
        );

        // apply (strategic merge patches merge containers by name), scale, label.
        let applied = dir.path().join("applied.yaml");
        let manifest = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: applied, namespace: shop}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: applied}}\n  template:\n    metadata: {labels: {app: applied}}\n    spec:\n      containers: [{name: web, image: \"nginx:1.27\"}, {name: side, image: busybox}]\n";
        std::fs::write(&applied, manifest).unwrap();
        let out = kubectl.run_with_input(&["apply"], Some(&applied)).await;
        assert_eq!(
            out.stdout.trim(),
            "deployment.apps/applied created",
            "{}",
            out.stderr
        );
        std::fs::write(
            &applied,
            manifest
                .replace("replicas: 1", "replicas: 3")
                .replace("image: busybox", "image: \"busybox:1.36\""),
        )
        .unwrap();
        let out = kubectl.run_with_input(&["apply"], Some(&applied)).await;
        assert_eq!(
            out.stdout.trim(),
            "deployment.apps/applied configured",
            "{}",
            out.stderr
        );
        let images = kubectl
            .ok(&[
                "get",
                "deploy",
                "applied",
                "-n",
                "shop",
                "-o",
                "jsonpath={.spec.replicas} {.spec.template.spec.containers[*].image}",
            ])
            .await;
        assert_eq!(images, "3 nginx:1.27 busybox:1.36");
        let out = kubectl
            .ok(&["scale", "deploy", "applied", "-n", "shop", "--replicas=2"])
            .await;
        assert_eq!(out.trim(), "deployment.apps/applied scaled");
        let out = kubectl
            .ok(&["label", "deploy", "applied", "-n", "shop", "tier=web"])
            .await;
        assert_eq!(out.trim(), "deployment.apps/applied labeled");
        let state = kubectl
            .ok(&[
                "get",
                "deploy",
                "applied",
                "-n",
                "shop",
                "-o",
                "jsonpath={.spec.replicas} {.metadata.labels.tier} {.metadata.generation}",
            ])
            .await;
        assert_eq!(state, "2 web 3");

        let out = kubectl
            .ok(&[
                "create",
                "configmap",
                "dry",
                "-n",
                "shop",
                "--from-literal=a=b",
                "--dry-run=server",
            ])
            .await;
        assert_eq!(out.trim(), "configmap/dry created (server dry run)");
        let out = kubectl
            .run(&["get", "configmap", "dry", "-n", "shop"])
            .await;
        assert!(!out.success, "a server dry run writes nothing");

        // Errors as kube-apiserver words them.
        let out = kubectl
            .run(&["create", "configmap", "Bad_Name", "-n", "shop"])
            .await;
        assert!(
            out.stderr
                .contains("is invalid: metadata.name: Invalid value: \"Bad_Name\""),
            "{}",
            out.stderr
        );
        let out = kubectl
            .run(&["create", "configmap", "x", "-n", "missing"])
            .await;
        assert!(
            out.stderr.contains("namespaces \"missing\" not found"),
            "{}",
            out.stderr
        );

        // delete.
        let out = kubectl
            .ok(&["delete", "configmap", "c3", "-n", "shop"])
            .await;
        assert_eq!(out.trim(), "configmap \"c3\" deleted");
        let out = kubectl.run(&["get", "configmap", "c3", "-n", "shop"]).await;
        assert!(!out.success);
        assert_eq!(
            out.stderr.trim(),
            "Error from server (NotFound): configmaps \"c3\" not found"
        );

        // delete namespace: waits for the namespace to go, with everything in it.
        let out = kubectl.ok(&["delete", "namespace", "shop"]).await;
        assert_eq!(out.trim(), "namespace \"shop\" deleted");
        let out = kubectl.run(&["get", "namespace", "shop"]).await;
        assert_eq!(
            out.stderr.trim(),
            "Error from server (NotFound): namespaces \"shop\" not found"
        );
        for resource in [
            "widgets",
            "configmaps",
            "deployments",
            "services",
            "serviceaccounts",
        ] {
            let out = kubectl.ok(&["get", resource, "-A", "-o", "name"]).await;
            let left: Vec<&str> = out.lines().filter(|l| !l.is_empty()).collect();
            let expected: &[&str] = match resource {
                "services" => &["service/kubernetes"],
                "serviceaccounts" => &["serviceaccount/default"; 4],
                _ => &[],
            };
            assert_eq!(
                left, expected,
                "{resource} left after deleting the namespace"
            );
        }
        let namespaces = kubectl.ok(&["get", "namespaces", "-o", "name"]).await;
        assert_eq!(
            namespaces.lines().collect::<Vec<_>>(),
            [
                "namespace/default",
                "namespace/kube-node-lease",
                "namespace/kube-public",
                "namespace/kube-system"
            ]
        );
    };
    tokio::time::timeout(Duration::from_secs(240), test)
        .await
        .expect("the kubectl test finished within 240 s");
    cluster.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_up_serves_kubectl_until_interrupted() {
    let binary = kubectl_binary();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    let mut up = tokio::process::Command::new(env!("CARGO_BIN_EXE_testenv"))
        .args([
            "cluster",
            "up",
            "--profile",
            "older",
            "--workload",
            "300",
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("testenv runs");
    let test = async {
        // The kubeconfig appears once the server is ready, with the JSON line on stdout.
        let mut stdout = tokio::io::BufReader::new(up.stdout.take().unwrap());
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(&mut stdout, &mut line)
            .await
            .unwrap();
        let description: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(description["profile"], "older");
        assert!(kubeconfig.exists());
        let kubectl = Kubectl {
            binary,
            kubeconfig: kubeconfig.clone(),
            home: dir.path().to_path_buf(),
        };
        let version: Value =
            serde_json::from_str(&kubectl.ok(&["version", "-o", "json"]).await).unwrap();
        assert_eq!(version["serverVersion"]["gitVersion"], "v1.24.17-testenv");
        let pods = kubectl.ok(&["get", "pods", "-A", "-o", "name"]).await;
        assert!(pods.lines().count() >= 3, "{pods}");
        let sc = kubectl.ok(&["get", "storageclass", "-o", "name"]).await;
        assert!(sc.contains("storageclass.storage.k8s.io/standard"), "{sc}");
        let rows = table_rows(
            &kubectl
                .ok(&["api-resources", "--api-group", "policy"])
                .await,
        );
        assert!(rows.iter().any(|r| r[2] == "policy/v1"), "{rows:?}");
        let owned = kubectl
            .ok(&[
                "get",
                "pods",
                "-n",
                "app-000",
                "-o",
                "jsonpath={.items[0].metadata.ownerReferences[0].kind}",
            ])
            .await;
        assert_eq!(owned, "ReplicaSet");
        // SIGINT: the command stops etcd and the server and removes the kubeconfig.
        let pid = up.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = up.wait().await.unwrap();
        assert!(exit.success(), "{exit:?}");
        assert!(!kubeconfig.exists());
    };
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("finished within 120 s");
}
