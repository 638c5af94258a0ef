//! `salvor restore create|get|describe`: a backup into a cluster through its API.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use resource_backup::Cluster;
use resource_backup::catalog::StoredBackup;
use resource_backup::restore::record::{self, RECORD_FORMAT, RestoreRecord};
use resource_backup::restore::{
    self, Action, ExistingPolicy, RestoreOptions, RestorePlan, Transforms,
};

use super::backup::{IdentityArgs, KubeArgs, ScopeArgs, StorageArgs};
use crate::exit;
use crate::output::{Format, print_structured, print_table, properties, table};

/// `salvor restore …`
#[derive(Debug, Subcommand)]
pub enum RestoreCommand {
    /// Plan, then apply, a restore of a backup into the cluster of the kubeconfig
    /// context. `--dry-run` prints the plan (with diffs) and changes nothing.
    Create(Box<CreateArgs>),
    /// List restores (or show one) from the repository.
    Get {
        /// Restore name (all when absent).
        name: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Show a restore with every object's outcome.
    Describe {
        /// Restore name.
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

/// `salvor restore create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The backup to restore.
    #[arg(long)]
    pub from_backup: String,
    /// Name of this restore (default: <backup>-<UTC time>); re-using a name re-runs it.
    #[arg(long)]
    pub name: Option<String>,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub identity: IdentityArgs,
    /// Print the plan, with a diff for every object that would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Namespaces and resources to restore (globs over the backup's names; naming a
    /// resource skipped by default, such as events or nodes, restores it).
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Leave cluster-scoped objects out (PVs still follow their claims).
    #[arg(long)]
    pub exclude_cluster_resources: bool,
    /// Label selector, as kubectl's -l.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Object names (globs).
    #[arg(long, value_delimiter = ',')]
    pub include_names: Vec<String>,
    /// Namespace mapping OLD:NEW (repeatable or comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub namespace_mapping: Vec<String>,
    /// Objects that exist and differ: none (report a conflict), update (merge), or
    /// recreate (delete and create; dependents are orphaned, not deleted).
    #[arg(long, default_value = "none")]
    pub existing: String,
    /// Restore status too.
    #[arg(long)]
    pub restore_status: bool,
    /// Keep Services' node ports.
    #[arg(long)]
    pub preserve_node_ports: bool,
    /// Keep Services' cluster IPs.
    #[arg(long)]
    pub preserve_cluster_ips: bool,
    /// Restore objects controllers recreate (Pods of ReplicaSets, ReplicaSets of
    /// Deployments, Jobs of CronJobs).
    #[arg(long)]
    pub include_controller_owned: bool,
    /// Transforms file (storage class mapping, image registry rewrites, patch rules;
    /// see docs/restore.md).
    #[arg(long)]
    pub transforms: Option<PathBuf>,
    /// Requests in flight per wave.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
}

/// Runs a restore command.
pub fn run(command: RestoreCommand, format: Format) -> anyhow::Result<u8> {
    let runtime = super::conn::runtime()?;
    match command {
        RestoreCommand::Create(args) => runtime.block_on(create(*args, format)),
        RestoreCommand::Get { name, storage } => runtime.block_on(get(name, &storage, format)),
        RestoreCommand::Describe { name, storage } => {
            runtime.block_on(describe(&name, &storage, format))
        }
    }
}

fn options(args: &CreateArgs) -> anyhow::Result<RestoreOptions> {
    let mut mapping = BTreeMap::new();
    for m in &args.namespace_mapping {
        let (from, to) = m
            .split_once(':')
            .with_context(|| format!("--namespace-mapping {m:?}: expected OLD:NEW"))?;
        mapping.insert(from.to_string(), to.to_string());
    }
    Ok(RestoreOptions {
        include_namespaces: args.scope.include_namespaces.clone(),
        exclude_namespaces: args.scope.exclude_namespaces.clone(),
        include_resources: args.scope.include_resources.clone(),
        exclude_resources: args.scope.exclude_resources.clone(),
        include_cluster_scoped: !args.exclude_cluster_resources,
        label_selector: args.selector.clone(),
        names: args.include_names.clone(),
        namespace_mapping: mapping,
        existing: args
            .existing
            .parse::<ExistingPolicy>()
            .map_err(|e| anyhow::anyhow!("--existing: {e}"))?,
        restore_status: args.restore_status,
        preserve_node_ports: args.preserve_node_ports,
        preserve_cluster_ips: args.preserve_cluster_ips,
        include_controller_owned: args.include_controller_owned,
        transforms: match &args.transforms {
            Some(p) => Transforms::from_file(p)?,
            None => Transforms::default(),
        },
        concurrency: args.concurrency.max(1),
        dry_run: args.dry_run,
        ..RestoreOptions::default()
    })
}

fn action(a: Action) -> &'static str {
    match a {
        Action::Create => "create",
        Action::Update => "update",
        Action::Recreate => "recreate",
        Action::Skip => "skip",
        Action::Conflict => "conflict",
        Action::Error => "error",
    }
}

fn print_plan(plan: &RestorePlan, format: Format) -> anyhow::Result<()> {
    if print_structured(format, plan)? {
        return Ok(());
    }
    let mut t = table(["WAVE", "ACTION", "OBJECT", "NOTE"]);
    for item in &plan.items {
        let note = item.reason.clone().unwrap_or_else(|| item.notes.join("; "));
        t.add_row(vec![
            item.wave.to_string(),
            action(item.action).to_string(),
            item.target.to_string(),
            note,
        ]);
    }
    print_table(&t)?;
    for item in &plan.items {
        if let Some(diff) = &item.diff {
            println!("\n--- {} ({})", item.target, action(item.action));
            print!("{diff}");
        }
    }
    let s = &plan.summary;
    println!(
        "\nplan: {} create, {} update, {} recreate, {} skip, {} conflict, {} error",
        s.create, s.update, s.recreate, s.skip, s.conflict, s.error
    );
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

async fn create(args: CreateArgs, format: Format) -> anyhow::Result<u8> {
    let options = options(&args)?;
    let repo = args.storage.open().await?;
    let backup = StoredBackup::open(&repo, &args.from_backup, args.identity.identities()?)
        .await
        .with_context(|| format!("opening backup {}", args.from_backup))?;
    let cluster = Cluster::connect(&args.kube.cluster_args()).await?;
    let plan = restore::plan(&backup, &cluster, &options)
        .await
        .context("planning the restore")?;
    if args.dry_run {
        print_plan(&plan, format)?;
        return Ok(exit::OK);
    }
    let name = args.name.clone().unwrap_or_else(|| {
        format!(
            "{}-{}",
            args.from_backup,
            chrono::Utc::now().format("%Y%m%d%H%M%S")
        )
    });
    let bar = super::progress::counter("restoring", "objects");
    let report = restore::apply(&plan, &cluster, &options, |_| bar.inc(1))
        .await
        .context("applying the restore")?;
    bar.finish_and_clear();
    let record = RestoreRecord {
        format: RECORD_FORMAT.to_string(),
        name,
        backup: args.from_backup.clone(),
        server: cluster.server().to_string(),
        options,
        plan: plan.summary.clone(),
        report,
    };
    record::save(&repo, &record).await?;
    print_record(&record, format, false)?;
    Ok(if record.report.succeeded() {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

fn print_record(r: &RestoreRecord, format: Format, outcomes: bool) -> anyhow::Result<()> {
    if print_structured(format, r)? {
        return Ok(());
    }
    let s = &r.report.summary;
    print_table(&properties(vec![
        ("restore", r.name.clone()),
        ("backup", r.backup.clone()),
        ("target", r.server.clone()),
        ("started", r.report.started.clone()),
        ("duration", format!("{:.2}s", r.report.elapsed_seconds)),
        ("created", s.created.to_string()),
        ("updated", s.updated.to_string()),
        ("recreated", s.recreated.to_string()),
        ("skipped", s.skipped.to_string()),
        ("conflict", s.conflict.to_string()),
        ("failed", s.failed.to_string()),
    ]))?;
    let shown: Vec<_> = r
        .report
        .outcomes
        .iter()
        .filter(|o| {
            outcomes || o.message.is_some() && !matches!(o.outcome, restore::Outcome::Skipped)
        })
        .collect();
    if !shown.is_empty() {
        let mut t = table(["WAVE", "OUTCOME", "OBJECT", "MESSAGE"]);
        for o in shown {
            t.add_row(vec![
                o.wave.to_string(),
                format!("{:?}", o.outcome),
                o.target.to_string(),
                o.message.clone().unwrap_or_default(),
            ]);
        }
        print_table(&t)?;
    }
    Ok(())
}

async fn get(name: Option<String>, storage: &StorageArgs, format: Format) -> anyhow::Result<u8> {
    let repo = storage.open().await?;
    if let Some(name) = name {
        print_record(&record::load(&repo, &name).await?, format, false)?;
        return Ok(exit::OK);
    }
    let records = record::list(&repo).await?;
    if !print_structured(format, &records)? {
        let mut t = table([
            "NAME", "BACKUP", "STARTED", "CREATED", "UPDATED", "SKIPPED", "FAILED",
        ]);
        for r in &records {
            let s = &r.report.summary;
            t.add_row(vec![
                r.name.clone(),
                r.backup.clone(),
                r.report.started.clone(),
                s.created.to_string(),
                s.updated.to_string(),
                s.skipped.to_string(),
                (s.failed + s.conflict).to_string(),
            ]);
        }
        print_table(&t)?;
    }
    Ok(exit::OK)
}

async fn describe(name: &str, storage: &StorageArgs, format: Format) -> anyhow::Result<u8> {
    let repo = storage.open().await?;
    print_record(&record::load(&repo, name).await?, format, true)?;
    Ok(exit::OK)
}
