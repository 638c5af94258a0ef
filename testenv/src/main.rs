//! `testenv`: start real etcd, the Kubernetes API server and Garage (S3) on loopback for
//! manual testing, and make snapshot fixtures.

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use testenv::{EtcdCluster, EtcdOptions, LoadProgress, ValueSizes, Workload};
use tracing_subscriber::EnvFilter;

/// Test environment for Salvor: real etcd members, a Kubernetes API server and a real S3
/// server (Garage) on 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "testenv", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// etcd clusters and snapshots.
    #[command(subcommand)]
    Etcd(EtcdCommand),
    /// Kubernetes clusters: etcd plus testenv's API server.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// S3 object storage: a real Garage server.
    #[command(subcommand)]
    S3(S3Command),
}

#[derive(Debug, Subcommand)]
enum S3Command {
    /// Start Garage with an access key and the bucket `salvor`, print a JSON line with the
    /// endpoint, region, bucket and credentials once ready, and run until Ctrl-C or
    /// SIGTERM.
    Up,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Start etcd and the API server (and Garage with --s3), write a kubeconfig once ready,
    /// and run until Ctrl-C or SIGTERM.
    Up(ClusterUpArgs),
}

#[derive(Debug, Args)]
struct ClusterUpArgs {
    /// Where to write the kubeconfig.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Cluster profile: `newer` (GA APIs, StorageClass gp3) or `older` (policy/v1beta1,
    /// batch/v1beta1, StorageClass standard).
    #[arg(long, default_value = "newer")]
    profile: String,
    /// Require this bearer token (written into the kubeconfig).
    #[arg(long)]
    token: Option<String>,
    /// Encrypt at rest with this EncryptionConfiguration file (aescbc, aesgcm, secretbox).
    #[arg(long, value_name = "FILE")]
    encryption_provider_config: Option<PathBuf>,
    /// Generate a realistic workload of about this many objects before writing the
    /// kubeconfig.
    #[arg(long, value_name = "OBJECTS")]
    workload: Option<usize>,
    /// Seed of the workload.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also start Garage (S3) and add it to the printed JSON as `s3`.
    #[arg(long)]
    s3: bool,
}

#[derive(Debug, Subcommand)]
enum EtcdCommand {
    /// Start a cluster, print its endpoints, and run until Ctrl-C or SIGTERM.
    Up(UpArgs),
    /// Start one member, load it, optionally compact, and save a snapshot with etcdctl.
    Snapshot(SnapshotArgs),
}

/// Workload flags shared by the commands.
#[derive(Debug, Args)]
struct WorkloadArgs {
    /// Extra puts to existing keys, as a fraction of the keys.
    #[arg(long, default_value_t = 0.0)]
    overwrites: f64,
    /// Keys deleted at the end, as a fraction of the keys.
    #[arg(long, default_value_t = 0.0)]
    deletes: f64,
    /// Seed of the key names, values, overwrites and deletes.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Value sizes: `kubernetes` (0.5-64 KiB, mostly small), `N` bytes, or `MIN-MAX` bytes.
    #[arg(long, default_value = "kubernetes", value_parser = parse_value_sizes)]
    value_size: ValueSizes,
    /// Requests in flight.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
}

#[derive(Debug, Args)]
struct UpArgs {
    /// Number of members.
    #[arg(long, default_value_t = 1)]
    members: usize,
    /// Load this many keys after start.
    #[arg(long, value_name = "KEYS")]
    load: Option<usize>,
    /// Serve clients over TLS and require client certificates.
    #[arg(long)]
    tls: bool,
    /// `--quota-backend-bytes` of every member.
    #[arg(long, value_name = "BYTES")]
    quota_bytes: Option<u64>,
    #[command(flatten)]
    workload: WorkloadArgs,
}

#[derive(Debug, Args)]
struct SnapshotArgs {
    /// Distinct keys to create.
    #[arg(long)]
    keys: usize,
    /// After loading, compact at the current revision (physically), then write a few more keys.
    #[arg(long)]
    compact: bool,
    /// The snapshot file to write.
    #[arg(long)]
    out: PathBuf,
    /// `--quota-backend-bytes` of the member.
    #[arg(long, value_name = "BYTES")]
    quota_bytes: Option<u64>,
    /// Also keep the member's data dir (db, WAL, .snap files), copied here once the
    /// member has stopped cleanly.
    #[arg(long, value_name = "DIR")]
    keep_data_dir: Option<PathBuf>,
    #[command(flatten)]
    workload: WorkloadArgs,
}

/// Copies a directory tree (regular files and directories only).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if entry.file_type()?.is_file() {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Keys written after a compaction, so the snapshot has history above it.
const KEYS_AFTER_COMPACTION: usize = 10;

fn parse_value_sizes(text: &str) -> Result<ValueSizes, String> {
    if text.eq_ignore_ascii_case("kubernetes") || text.eq_ignore_ascii_case("k8s") {
        return Ok(ValueSizes::Kubernetes);
    }
    let number = |part: &str| {
        part.trim()
            .parse::<usize>()
            .map_err(|error| format!("{part:?} is not a byte count: {error}"))
    };
    match text.split_once('-') {
        Some((min, max)) => {
            let (min, max) = (number(min)?, number(max)?);
            if min > max {
                return Err(format!("{min} is larger than {max}"));
            }
            Ok(ValueSizes::Uniform { min, max })
        }
        None => Ok(ValueSizes::Fixed(number(text)?)),
    }
}

impl WorkloadArgs {
    fn workload(&self, keys: usize) -> Workload {
        Workload {
            keys,
            value_size: self.value_size.clone(),
            overwrites: self.overwrites,
            deletes: self.deletes,
            seed: self.seed,
            concurrency: self.concurrency.max(1),
            ..Workload::default()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Etcd(EtcdCommand::Up(args)) => up(args).await,
        Command::Etcd(EtcdCommand::Snapshot(args)) => snapshot(args).await,
        Command::Cluster(ClusterCommand::Up(args)) => cluster_up(args).await,
        Command::S3(S3Command::Up) => s3_up().await,
    }
}

async fn s3_up() -> anyhow::Result<()> {
    let mut garage = testenv::Garage::start().await.context("starting Garage")?;
    println!("{}", garage.description());
    wait_for_shutdown_signal().await?;
    eprintln!("stopping Garage");
    garage.stop().await?;
    Ok(())
}

async fn cluster_up(args: ClusterUpArgs) -> anyhow::Result<()> {
    use testenv::apiserver::{ApiServerOptions, KubeCluster, KubeClusterOptions, Profile};
    let Some(profile) = Profile::by_name(&args.profile) else {
        let names: Vec<&str> = testenv::apiserver::PROFILES
            .iter()
            .map(|p| p.name)
            .collect();
        bail!(
            "unknown profile {:?}; profiles: {}",
            args.profile,
            names.join(", ")
        );
    };
    let encryption = match &args.encryption_provider_config {
        Some(path) => Some(
            snapshot_format::k8s::EncryptionConfig::from_file(path)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let cluster = KubeCluster::start(KubeClusterOptions {
        server: ApiServerOptions {
            profile,
            token: args.token.clone(),
            encryption,
            ..ApiServerOptions::default()
        },
        ..KubeClusterOptions::default()
    })
    .await
    .context("starting the cluster")?;
    let mut garage = if args.s3 {
        Some(testenv::Garage::start().await.context("starting Garage")?)
    } else {
        None
    };
    if let Some(objects) = args.workload {
        let workload = testenv::apiserver::workload::ClusterWorkload::sized(objects, args.seed);
        let report = workload
            .load(cluster.server().api(), 32)
            .await
            .context("loading the workload")?;
        eprintln!(
            "created {} objects in {:.1?} ({:.0} objects/s)",
            report.objects,
            report.elapsed,
            report.objects as f64 / report.elapsed.as_secs_f64().max(1e-9)
        );
    }
    cluster
        .server()
        .write_kubeconfig(&args.kubeconfig)
        .with_context(|| format!("writing {}", args.kubeconfig.display()))?;
    let mut description = serde_json::json!({
        "server": cluster.server().url(),
        "kubeconfig": args.kubeconfig,
        "profile": profile.name,
        "etcd": cluster.etcd().endpoints(),
    });
    if let Some(garage) = &garage {
        description["s3"] = garage.description();
    }
    println!("{description}");
    wait_for_shutdown_signal().await?;
    eprintln!("stopping the API server and etcd");
    cluster.stop().await?;
    if let Some(garage) = &mut garage {
        eprintln!("stopping Garage");
        garage.stop().await?;
    }
    let _ = std::fs::remove_file(&args.kubeconfig);
    Ok(())
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    if args.members == 0 {
        bail!("--members must be at least 1");
    }
    let mut cluster = EtcdCluster::start_with(EtcdOptions {
        members: args.members,
        tls: args.tls,
        quota_backend_bytes: args.quota_bytes,
        ..EtcdOptions::default()
    })
    .await
    .context("starting etcd")?;
    if let Some(keys) = args.load {
        let client = cluster.client().await?;
        let report = load(&client, &args.workload.workload(keys)).await?;
        eprintln!(
            "loaded {} puts and {} deletes up to revision {} in {:.1?} ({:.0} writes/s)",
            report.puts,
            report.deletes,
            report.revision,
            report.elapsed,
            report.writes_per_second()
        );
    }

    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "endpoints: {}", cluster.endpoints().join(","))?;
    let description = serde_json::json!({
        "endpoints": cluster.endpoints(),
        "members": cluster.members(),
        "tls": cluster.tls_files(),
        "dir": cluster.dir(),
    });
    writeln!(stdout, "{description}")?;
    stdout.flush()?;
    drop(stdout);

    wait_for_shutdown_signal().await?;
    eprintln!("stopping etcd");
    for index in 0..cluster.members().len() {
        cluster.stop(index).await?;
    }
    Ok(())
}

async fn snapshot(args: SnapshotArgs) -> anyhow::Result<()> {
    let mut cluster = EtcdCluster::start_with(EtcdOptions {
        members: 1,
        quota_backend_bytes: args.quota_bytes,
        ..EtcdOptions::default()
    })
    .await
    .context("starting etcd")?;
    let client = cluster.client().await?;
    let workload = args.workload.workload(args.keys);
    let report = load(&client, &workload).await?;
    eprintln!(
        "loaded {} puts and {} deletes up to revision {} in {:.1?} ({:.0} writes/s)",
        report.puts,
        report.deletes,
        report.revision,
        report.elapsed,
        report.writes_per_second()
    );

    let mut compacted_at = None;
    let mut revision = report.revision;
    if args.compact {
        client
            .compact(report.revision, true)
            .await
            .with_context(|| format!("compacting at revision {}", report.revision))?;
        compacted_at = Some(report.revision);
        for index in 0..KEYS_AFTER_COMPACTION {
            let key = format!("/registry/configmaps/testenv/after-compaction-{index}");
            let put = client
                .put(key.as_bytes(), workload.create_value(index))
                .await
                .with_context(|| format!("writing {key}"))?;
            revision = revision.max(put.header.map_or(0, |header| header.revision));
        }
        eprintln!(
            "compacted at revision {}, then wrote {KEYS_AFTER_COMPACTION} keys",
            report.revision
        );
    }

    if let Some(parent) = args
        .out
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let bytes = cluster
        .etcdctl_snapshot_save(&args.out)
        .with_context(|| format!("saving the snapshot to {}", args.out.display()))?;
    let summary = serde_json::json!({
        "file": args.out,
        "bytes": bytes,
        "revision": revision,
        "compacted_at": compacted_at,
        "keys": workload.keys,
        "live_keys": workload.live_key_count() + if args.compact { KEYS_AFTER_COMPACTION } else { 0 },
        "puts": report.puts,
        "deletes": report.deletes,
        "seed": workload.seed,
    });
    println!("{summary}");
    cluster.stop(0).await?;
    if let Some(dir) = &args.keep_data_dir {
        copy_tree(&cluster.members()[0].data_dir, dir)?;
        eprintln!("data dir kept in {}", dir.display());
    }
    Ok(())
}

/// Loads the workload, printing progress to stderr.
async fn load(
    client: &etcd_rpc::Client,
    workload: &Workload,
) -> anyhow::Result<testenv::LoadReport> {
    let report = testenv::load_with_progress(client, workload, |progress: &LoadProgress| {
        eprintln!(
            "{:?}: {}/{} ({:.0} writes/s)",
            progress.phase,
            progress.done,
            progress.total,
            progress.writes_per_second()
        );
    })
    .await
    .context("loading the workload")?;
    Ok(report)
}

async fn wait_for_shutdown_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("waiting for Ctrl-C")?,
        _ = terminate.recv() => {}
    }
    Ok(())
}
