//! A live cluster as an [`ObjectSource`]: what a backup would hold, read straight from
//! the API (every listable type at its preferred version, each list pinned to the same
//! resourceVersion with `resourceVersionMatch=Exact`, pages retried on transient
//! errors). For restoring one cluster into another without a repository in between,
//! and for tests and benchmarks that compare a restore with its source.

use crate::Error;
use crate::backup::list::{self, PageRequest};
use crate::cluster::{Cluster, listable};
use crate::model::{BackupItem, Gvr, ObjectSource, ResourceType};

/// Objects per list page.
const PAGE_SIZE: u32 = 500;

/// A cluster read at one resourceVersion.
#[derive(Clone)]
pub struct LiveSource {
    cluster: Cluster,
    types: Vec<ResourceType>,
    resource_version: String,
}

impl std::fmt::Debug for LiveSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSource")
            .field("types", &self.types.len())
            .field("resource_version", &self.resource_version)
            .finish()
    }
}

impl LiveSource {
    /// Discovers the cluster's types and pins the source to its current
    /// resourceVersion (read from a one-item list of namespaces).
    pub async fn new(cluster: &Cluster) -> Result<LiveSource, Error> {
        let types = listable(&cluster.discover().await?, false);
        let namespaces = types
            .iter()
            .find(|t| t.gvr.group.is_empty() && t.gvr.resource == "namespaces")
            .ok_or_else(|| {
                Error::Invalid(
                    "the cluster serves no v1 namespaces to read a resourceVersion from".into(),
                )
            })?;
        let page = list::get_page(
            cluster.client(),
            namespaces,
            &PageRequest {
                limit: 1,
                ..PageRequest::default()
            },
        )
        .await?;
        if page.resource_version.is_empty() {
            return Err(Error::Invalid(
                "the namespaces list carries no resourceVersion".into(),
            ));
        }
        Ok(LiveSource {
            cluster: cluster.clone(),
            types,
            resource_version: page.resource_version,
        })
    }

    /// The resourceVersion every list is pinned to.
    pub fn resource_version(&self) -> &str {
        &self.resource_version
    }
}

impl ObjectSource for LiveSource {
    fn resource_types(&self) -> Vec<ResourceType> {
        self.types.clone()
    }

    async fn objects(&self, gvr: &Gvr) -> Result<Vec<BackupItem>, Error> {
        let t = self
            .types
            .iter()
            .find(|t| &t.gvr == gvr)
            .ok_or_else(|| Error::NotFound(format!("{gvr:?} is not a type of this source")))?;
        let mut out = Vec::new();
        let mut request = PageRequest {
            limit: PAGE_SIZE,
            resource_version: Some(self.resource_version.clone()),
            exact: true,
            ..PageRequest::default()
        };
        loop {
            let page = list::get_page(self.cluster.client(), t, &request).await?;
            for object in page.items {
                let metadata = &object["metadata"];
                out.push(BackupItem {
                    gvr: gvr.clone(),
                    kind: t.kind.clone(),
                    namespace: metadata["namespace"].as_str().map(str::to_string),
                    name: metadata["name"].as_str().unwrap_or_default().to_string(),
                    object,
                });
            }
            match page.continue_token {
                Some(token) => {
                    request = PageRequest {
                        limit: PAGE_SIZE,
                        continue_token: Some(token),
                        ..PageRequest::default()
                    };
                }
                None => return Ok(out),
            }
        }
    }
}
