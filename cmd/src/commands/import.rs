//! `salvor backup import-etcd SNAPSHOT`: the Kubernetes objects of an etcd snapshot as
//! a backup in a repository.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use etcd_tools::objects::{ObjectFilter, for_each_object};
use resource_backup::Repository;
use resource_backup::backup::BackupOptions;
use resource_backup::backup::import::{ImportSource, ImportedObject, Importer};
use snapshot_format::k8s::EncryptionConfig;

use super::backup::{ScopeArgs, SealArgs, StorageArgs, phase_code, print_manifest};
use crate::cli::ReadArgs;
use crate::output::Format;

/// `salvor backup import-etcd`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Backup name (default: etcd-<revision>).
    #[arg(long)]
    pub name: Option<String>,
    /// The cluster's EncryptionConfiguration, to decrypt values encrypted at rest.
    #[arg(long)]
    pub encryption_config: Option<PathBuf>,
    /// The API server's --etcd-prefix.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Cluster-scoped objects: auto (all unless namespaces are filtered; then only the
    /// selected Namespace objects), true, or false.
    #[arg(long, default_value = "auto")]
    pub include_cluster_resources: String,
    #[command(flatten)]
    pub seal: SealArgs,
}

/// Objects queued between the snapshot walk and the repository writer.
const QUEUE: usize = 1024;

/// Runs the import.
pub async fn run(args: ImportArgs, format: Format) -> anyhow::Result<u8> {
    let encryption = args
        .encryption_config
        .as_deref()
        .map(EncryptionConfig::from_file)
        .transpose()?
        .map(std::sync::Arc::new);
    let snap = super::snapshot::open(&args.read)?;
    let revision = snap.current_revision()?;
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| format!("etcd-{revision}"));
    let mut options = BackupOptions::new(&name);
    options.filters.include_namespaces = args.scope.include_namespaces.clone();
    options.filters.exclude_namespaces = args.scope.exclude_namespaces.clone();
    options.filters.include_resources = args.scope.include_resources.clone();
    options.filters.exclude_resources = args.scope.exclude_resources.clone();
    options.filters.include_cluster_resources = args.include_cluster_resources.clone();
    options.filters.exclude_label = None;
    args.seal.apply(&mut options)?;
    let repo = Repository::open_or_init(args.storage.storage()?).await?;
    let mut importer = Importer::start(&repo, &options).await?;

    // The snapshot is walked on a blocking thread; objects flow through a bounded queue.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ImportedObject>(QUEUE);
    let filter = ObjectFilter {
        prefix: args.etcd_prefix.clone(),
        encryption,
        ..ObjectFilter::default()
    };
    let walker = tokio::task::spawn_blocking(move || {
        for_each_object(&snap, &filter, |view| {
            let row = view.row;
            let object = match (view.object, row.error) {
                (Some(o), _) => Ok(o),
                (None, Some(e)) => Err(e),
                (None, None) => Err("not decodable".to_string()),
            };
            let item = ImportedObject {
                key: row.key,
                group: row.group,
                resource: row.resource,
                namespace: row.namespace,
                name: row.name,
                mod_revision: row.mod_revision,
                object,
            };
            // A closed queue means the writer failed; its error is reported.
            let _ = tx.blocking_send(item);
            Ok(())
        })
    });
    let bar = super::progress::counter("importing", "objects");
    let mut n = 0;
    while let Some(item) = rx.recv().await {
        importer.add(item).await?;
        n += 1;
        if n % 256 == 0 {
            bar.set_position(n);
        }
    }
    walker
        .await
        .context("reading the snapshot")?
        .with_context(|| format!("reading {}", args.read.file.display()))?;
    let manifest = importer
        .finish(ImportSource {
            description: format!("etcd snapshot {}", args.read.file.display()),
            revision,
        })
        .await?;
    bar.finish_and_clear();
    print_manifest(&manifest, format)?;
    Ok(phase_code(&manifest))
}
