//! A connection to a Kubernetes API server (kubeconfig, context, TLS, auth) and
//! discovery of the resource types it serves.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{Discovery, Scope};

use crate::Error;
use crate::model::{Gvr, ResourceType};

/// How to reach a cluster: kubectl's `--kubeconfig` and `--context`.
#[derive(Debug, Clone, Default)]
pub struct ClusterArgs {
    /// Kubeconfig file; `$KUBECONFIG` or `~/.kube/config` (or the in-cluster service
    /// account) when absent.
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Context to use instead of the current one.
    pub context: Option<String>,
}

/// A connected cluster.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    server: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server)
            .finish()
    }
}

/// What `/version` says.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ServerVersion {
    /// `gitVersion`, e.g. `v1.33.0`.
    pub git_version: String,
    /// `major`.
    pub major: String,
    /// `minor`.
    pub minor: String,
    /// `platform`.
    pub platform: String,
}

impl Cluster {
    /// Connects as kubectl would with the same `--kubeconfig` and `--context`.
    pub async fn connect(args: &ClusterArgs) -> Result<Cluster, Error> {
        install_crypto_provider();
        let options = KubeConfigOptions {
            context: args.context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &args.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path)
                    .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?;
                kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| Error::Kubeconfig(format!("{}: {e}", path.display())))?
            }
            None if args.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| Error::Kubeconfig(e.to_string()))?,
            None => kube::Config::infer()
                .await
                .map_err(|e| Error::Kubeconfig(e.to_string()))?,
        };
        let server = config.cluster_url.to_string();
        let client = kube::Client::try_from(config)
            .map_err(|e| Error::kube(format!("connect to {server}"), e))?;
        Ok(Cluster { client, server })
    }

    /// A cluster from an existing client.
    pub fn from_client(client: kube::Client, server: impl Into<String>) -> Cluster {
        Cluster {
            client,
            server: server.into(),
        }
    }

    /// The client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// `/version`.
    pub async fn version(&self) -> Result<ServerVersion, Error> {
        let info = self
            .client
            .apiserver_version()
            .await
            .map_err(|e| Error::kube(format!("GET {}/version", self.server), e))?;
        Ok(ServerVersion {
            git_version: info.git_version,
            major: info.major,
            minor: info.minor,
            platform: info.platform,
        })
    }

    /// Every resource type the server serves, at every served version (the group's
    /// preferred version flagged), CRDs and aggregated APIs included. Subresources are
    /// left out.
    pub async fn discover(&self) -> Result<Vec<ResourceType>, Error> {
        let discovery = Discovery::new(self.client.clone())
            .run()
            .await
            .map_err(|e| Error::kube(format!("discovery at {}", self.server), e))?;
        let mut types = Vec::new();
        for group in discovery.groups() {
            let preferred = group.preferred_version_or_latest().to_string();
            for version in group.versions() {
                for (resource, caps) in group.versioned_resources(version) {
                    if resource.plural.contains('/') {
                        continue;
                    }
                    types.push(ResourceType {
                        gvr: Gvr::new(&resource.group, &resource.version, &resource.plural),
                        kind: resource.kind,
                        namespaced: caps.scope == Scope::Namespaced,
                        verbs: caps.operations,
                        preferred: version == preferred,
                    });
                }
            }
        }
        types.sort_by(|a, b| a.gvr.cmp(&b.gvr));
        types.dedup_by(|a, b| a.gvr == b.gvr);
        Ok(types)
    }
}

/// The types to read objects from: each group-resource once, at its group's preferred
/// version (or, with `all_versions`, at every served version), listable ones only.
pub fn listable(types: &[ResourceType], all_versions: bool) -> Vec<ResourceType> {
    let mut out: Vec<ResourceType> = types
        .iter()
        .filter(|t| t.supports("list") && (all_versions || t.preferred))
        .cloned()
        .collect();
    if !all_versions {
        // A resource missing from the preferred version (served only by an older one)
        // still counts: take it at its newest version.
        let mut seen: std::collections::BTreeSet<(String, String)> = out
            .iter()
            .map(|t| (t.gvr.group.clone(), t.gvr.resource.clone()))
            .collect();
        let mut rest: Vec<&ResourceType> = types
            .iter()
            .filter(|t| t.supports("list") && !t.preferred)
            .collect();
        rest.sort_by_key(|t| std::cmp::Reverse(version_order(&t.gvr.version)));
        for t in rest {
            if seen.insert((t.gvr.group.clone(), t.gvr.resource.clone())) {
                out.push(t.clone());
            }
        }
    }
    out.sort_by(|a, b| a.gvr.cmp(&b.gvr));
    out
}

/// Kubernetes version priority: GA > beta > alpha, then by number
/// (`v2` > `v1` > `v1beta2` > `v1beta1` > `v1alpha1`).
pub use snapshot_format::k8s::version_priority as version_order;

pub use object_storage::install_crypto_provider;

/// Reads a kubeconfig file (for callers that need its current context's name).
pub fn current_context(path: Option<&Path>) -> Option<String> {
    let config = match path {
        Some(p) => Kubeconfig::read_from(p).ok()?,
        None => Kubeconfig::read().ok()?,
    };
    config.current_context
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_as_kubernetes_does() {
        let mut v = vec!["v1beta1", "v1", "v2", "v1alpha1", "v1beta2", "v2beta2"];
        v.sort_by_key(|v| std::cmp::Reverse(version_order(v)));
        assert_eq!(v, ["v2", "v1", "v2beta2", "v1beta2", "v1beta1", "v1alpha1"]);
    }
}
