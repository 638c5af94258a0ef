//! A Kubernetes API server backed by real etcd, storing objects exactly as kube-apiserver
//! does, so that the API path (backup, restore) and the etcd path (snapshot → objects)
//! see the same cluster. The real `kubectl` is the judge of its compatibility.
//!
//! [`ApiServer::start`] serves plain HTTP on 127.0.0.1 over an [`etcd_rpc::Client`];
//! [`KubeCluster::start`] also starts the etcd member. Modules: [`discovery`] (what is
//! served), [`storage`] (keys and encodings in etcd), [`objects`] (the verbs),
//! `handlers` (HTTP), [`validation`], [`allocation`] (cluster IPs, node ports), [`crd`],
//! [`profiles`] and [`workload`] (realistic clusters).
//!
//! ```no_run
//! # async fn example() -> Result<(), testenv::Error> {
//! let cluster = testenv::apiserver::KubeCluster::start(Default::default()).await?;
//! cluster.server().write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! // kubectl --kubeconfig /tmp/kubeconfig get namespaces
//! # Ok(())
//! # }
//! ```

pub mod allocation;
pub mod crd;
pub mod discovery;
mod handlers;
pub mod meta;
pub mod objects;
pub mod patch;
pub mod profiles;
pub mod selectors;
pub mod status;
pub mod storage;
pub mod validation;
pub mod workload;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use snapshot_format::k8s::EncryptionConfig;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use handlers::MAX_BODY_BYTES;
pub use objects::Api;
pub use profiles::{NEWER, OLDER, PROFILES, Profile};
pub use status::ApiError;

use crate::{Error, EtcdCluster, EtcdOptions};

/// How to run the API server.
#[derive(Debug, Clone)]
pub struct ApiServerOptions {
    /// What kind of cluster to look like.
    pub profile: &'static Profile,
    /// Require `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Encrypt at rest, like kube-apiserver's `--encryption-provider-config`.
    pub encryption: Option<EncryptionConfig>,
    /// Fault injection: every request for these resources (`configmaps`,
    /// `deployments.apps`, `widgets.example.com`: plural, then `.group` unless core)
    /// is answered with a 500 `InternalError` `Status`, while discovery still lists
    /// them. See [`ApiServer::fail_resource`] to change this at run time.
    pub fail_resources: Vec<String>,
}

impl Default for ApiServerOptions {
    fn default() -> Self {
        ApiServerOptions {
            profile: &NEWER,
            token: None,
            encryption: None,
            fail_resources: Vec::new(),
        }
    }
}

/// A running API server.
#[derive(Debug)]
pub struct ApiServer {
    address: SocketAddr,
    token: Option<String>,
    api: Arc<Api>,
    faults: Arc<handlers::Faults>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    background: JoinHandle<()>,
}

impl ApiServer {
    /// Serves the API over `client`'s etcd on a free 127.0.0.1 port. Creates the system
    /// namespaces, the `kubernetes` Service and the default StorageClass if missing.
    pub async fn start(client: etcd_rpc::Client, options: ApiServerOptions) -> Result<Self, Error> {
        let store = storage::Store::new(client, options.encryption);
        let (api, work) = Api::new(store, options.profile);
        let background = tokio::spawn(Api::run_background(Arc::downgrade(&api), work));
        let failed = |during: &str| {
            let during = during.to_string();
            move |source| Error::Api {
                during,
                source: Box::new(source),
            }
        };
        api.load_existing()
            .await
            .map_err(failed("loading existing objects"))?;
        api.bootstrap()
            .await
            .map_err(failed("creating the system namespaces"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(Error::Port)?;
        let address = listener.local_addr().map_err(Error::Port)?;
        let faults = Arc::new(handlers::Faults::new(options.fail_resources));
        let router = handlers::router(handlers::HttpState {
            api: api.clone(),
            token: options.token.clone(),
            address: address.to_string(),
            faults: faults.clone(),
        });
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = stop.await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "API server stopped");
            }
        });
        Ok(ApiServer {
            address,
            token: options.token,
            api,
            faults,
            shutdown: Some(shutdown),
            task: Some(task),
            background,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The listening address.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The API itself, for in-process writers such as the workload generator.
    pub fn api(&self) -> &Arc<Api> {
        &self.api
    }

    /// Fault injection: from now on every request for `resource` (`configmaps`,
    /// `deployments.apps`, `widgets.example.com`: plural, then `.group` unless core) —
    /// any verb, namespace or subresource, watches too — is answered with a 500
    /// `Status` of reason `InternalError`. Discovery and OpenAPI still list the
    /// resource, so a client sees it and then fails to use it. Requests already
    /// running (open watches) are not cut.
    pub fn fail_resource(&self, resource: impl Into<String>) {
        self.faults.fail(resource.into());
    }

    /// Makes lists with `resourceVersionMatch=Exact` answer 400 BadRequest (`true`), as a
    /// server that cannot serve lists at an exact resourceVersion would, or serve them
    /// again (`false`).
    pub fn reject_exact_lists(&self, reject: bool) {
        self.faults.reject_exact_lists(reject);
    }

    /// Fault injection: from now on every `n`-th request for a resource (any verb; not
    /// discovery) fails transiently, alternately with 429 TooManyRequests (what API
    /// Priority and Fairness answers under load; kube-rs retries it by itself) and 500
    /// `etcdserver: request timed out` (an etcd hiccup, which the client must retry on
    /// its own). 0 ends it.
    pub fn fail_every(&self, n: u64) {
        self.faults.fail_every(n);
    }

    /// How many requests [`ApiServer::fail_every`] has failed so far.
    pub fn injected_failures(&self) -> u64 {
        self.faults.injected()
    }

    /// Ends every fault injected by [`ApiServer::fail_resource`],
    /// [`ApiServer::fail_every`] or [`ApiServerOptions::fail_resources`].
    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    /// The resources failing on purpose, sorted.
    pub fn failing_resources(&self) -> Vec<String> {
        self.faults.failing()
    }

    /// A kubeconfig for this server (JSON, which is YAML).
    pub fn kubeconfig(&self) -> String {
        let mut user = serde_json::json!({});
        if let Some(token) = &self.token {
            user["token"] = serde_json::json!(token);
        }
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "testenv", "cluster": {"server": self.url()}}],
            "users": [{"name": "testenv", "user": user}],
            "contexts": [{"name": "testenv", "context": {"cluster": "testenv", "user": "testenv", "namespace": "default"}}],
            "current-context": "testenv",
            "preferences": {},
        });
        serde_json::to_string_pretty(&config).unwrap_or_default()
    }

    /// Writes [`ApiServer::kubeconfig`] to `path` (mode 0600).
    pub fn write_kubeconfig(&self, path: &Path) -> Result<(), Error> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io("write the kubeconfig", path, e))?;
        file.write_all(self.kubeconfig().as_bytes())
            .map_err(|e| Error::io("write the kubeconfig", path, e))
    }

    /// Stops serving (open watches end).
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            // Watches hold connections open; do not wait for them forever.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), task).await;
        }
        self.background.abort();
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.background.abort();
    }
}

/// Options of a [`KubeCluster`].
#[derive(Debug, Clone, Default)]
pub struct KubeClusterOptions {
    /// The API server's options.
    pub server: ApiServerOptions,
    /// The etcd member's options (`members` is forced to at least 1).
    pub etcd: EtcdOptions,
}

/// etcd and an API server over it, stopped when dropped.
#[derive(Debug)]
pub struct KubeCluster {
    server: ApiServer,
    etcd: EtcdCluster,
}

impl KubeCluster {
    /// Starts etcd, then the API server.
    pub async fn start(options: KubeClusterOptions) -> Result<Self, Error> {
        let mut etcd_options = options.etcd;
        etcd_options.members = etcd_options.members.max(1);
        let etcd = EtcdCluster::start_with(etcd_options).await?;
        let client = etcd.client().await?;
        let server = ApiServer::start(client, options.server).await?;
        Ok(KubeCluster { server, etcd })
    }

    /// The API server.
    pub fn server(&self) -> &ApiServer {
        &self.server
    }

    /// The etcd cluster.
    pub fn etcd(&self) -> &EtcdCluster {
        &self.etcd
    }

    /// The etcd cluster, mutably (to stop members or save snapshots with etcdctl).
    pub fn etcd_mut(&mut self) -> &mut EtcdCluster {
        &mut self.etcd
    }

    /// Stops the API server, then etcd.
    pub async fn stop(mut self) -> Result<(), Error> {
        self.server.stop().await;
        for index in 0..self.etcd.members().len() {
            self.etcd.stop(index).await?;
        }
        Ok(())
    }
}
