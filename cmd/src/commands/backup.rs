//! `salvor backup …`: API-layer backups in a repository on object storage.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use resource_backup::backup::{self, BackupOptions, Progress};
use resource_backup::catalog::{self, StoredBackup};
use resource_backup::crypto::{Identities, Recipients, SigningKey, VerifyingKey};
use resource_backup::repo::format::{FilterSpec, Manifest, Phase};
use resource_backup::{Cluster, ClusterArgs, Repository, Storage, StorageUrl};

use crate::cli::S3Args;

use crate::exit;
use crate::output::{Format, human_bytes, print_structured, print_table, properties, table};

/// Where the repository is.
#[derive(Debug, Clone, Args)]
pub struct StorageArgs {
    /// Repository: a directory, file:///path, or s3://bucket/prefix (credentials from
    /// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN).
    #[arg(long, env = "SALVOR_STORAGE")]
    pub storage: String,
    #[command(flatten)]
    pub s3: S3Args,
}

impl StorageArgs {
    /// Opens the location.
    pub fn storage(&self) -> anyhow::Result<Storage> {
        let url = StorageUrl::parse(&self.storage)?;
        Ok(Storage::open(&url, &self.s3.options())?)
    }

    /// Opens the repository (which must exist).
    pub async fn open(&self) -> anyhow::Result<Repository> {
        Ok(Repository::open(self.storage()?).await?)
    }
}

/// kubectl's cluster flags.
#[derive(Debug, Clone, Args)]
pub struct KubeArgs {
    /// kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster).
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// kubeconfig context (default: the current one).
    #[arg(long)]
    pub context: Option<String>,
}

impl KubeArgs {
    /// As the library wants them.
    pub fn cluster_args(&self) -> ClusterArgs {
        ClusterArgs {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        }
    }
}

/// Age identities for reading encrypted backups.
#[derive(Debug, Clone, Args)]
pub struct IdentityArgs {
    /// age identity file (as age-keygen writes) to read encrypted backups.
    #[arg(long, short = 'i', env = "SALVOR_IDENTITY")]
    pub identity: Vec<PathBuf>,
}

impl IdentityArgs {
    /// Reads them.
    pub fn identities(&self) -> anyhow::Result<Identities> {
        let mut all = Identities::default();
        for path in &self.identity {
            all = all.with(Identities::read_file(path)?);
        }
        Ok(all)
    }
}

/// `salvor backup …`
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Back up the API objects of a cluster, all listed at one resourceVersion.
    Create(Box<CreateArgs>),
    /// List the backups of a repository (or show one).
    Get {
        /// Backup name (all when absent).
        name: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Show a backup: counts per resource and namespace, size, duration,
    /// resourceVersion, warnings and errors.
    Describe {
        /// Backup name.
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Check a backup end to end: signature, checksums of every file, every object's
    /// content against its id. Exit code 3 when anything is wrong.
    Verify {
        /// Backup name.
        name: String,
        /// Require a signature by this ed25519 public key (PEM or base64).
        #[arg(long)]
        public_key: Option<PathBuf>,
        #[command(flatten)]
        identity: IdentityArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Print a backup's log.
    Logs {
        /// Backup name.
        name: String,
        #[command(flatten)]
        identity: IdentityArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Delete a backup and the packs no other backup uses (never while a backup runs).
    Delete {
        /// Backup name.
        name: String,
        /// Only show what would be deleted.
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Write every object of a backup as YAML files: DIR/<namespace|_cluster>/<resource>/<name>.yaml.
    Download {
        /// Backup name.
        name: String,
        /// Target directory (absent or empty).
        dir: PathBuf,
        #[command(flatten)]
        identity: IdentityArgs,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Turn the Kubernetes objects inside an etcd snapshot into a backup (restorable
    /// into any cluster through its API, even when the old API server is dead).
    ImportEtcd(Box<super::import::ImportArgs>),
    /// Write a new ed25519 signing key (PKCS#8 PEM) and print its public key.
    Keygen {
        /// Where to write the private key (mode 0600).
        #[arg(long)]
        sign_key: PathBuf,
    },
}

/// Which namespaces and resources (backup, import, restore).
#[derive(Debug, Clone, Args)]
pub struct ScopeArgs {
    /// Namespaces to include (globs, comma-separated or repeated; default all).
    #[arg(long, value_delimiter = ',')]
    pub include_namespaces: Vec<String>,
    /// Namespaces to exclude (globs).
    #[arg(long, value_delimiter = ',')]
    pub exclude_namespaces: Vec<String>,
    /// Resources to include: plural, plural.group or kind, globs (default all).
    #[arg(long, value_delimiter = ',')]
    pub include_resources: Vec<String>,
    /// Resources to exclude.
    #[arg(long, value_delimiter = ',')]
    pub exclude_resources: Vec<String>,
}

/// Encryption and signing of new backups.
#[derive(Debug, Clone, Args)]
pub struct SealArgs {
    /// Encrypt to this age recipient (age1…; repeatable).
    #[arg(long, short = 'r')]
    pub recipient: Vec<String>,
    /// Encrypt to the recipients in this file (one per line).
    #[arg(long, short = 'R')]
    pub recipients_file: Vec<PathBuf>,
    /// Sign the manifest with this ed25519 key (PKCS#8 PEM; see `salvor backup keygen`).
    #[arg(long)]
    pub sign_key: Option<PathBuf>,
}

impl SealArgs {
    /// Applies them to backup options.
    pub fn apply(&self, options: &mut BackupOptions) -> anyhow::Result<()> {
        let mut recipients = Recipients::parse(self.recipient.iter().map(String::as_str))?;
        for f in &self.recipients_file {
            recipients.extend(Recipients::read_file(f)?);
        }
        options.recipients = recipients;
        options.signing = self
            .sign_key
            .as_deref()
            .map(SigningKey::read_file)
            .transpose()?;
        Ok(())
    }
}

/// `salvor backup create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Backup name (lower-case letters, digits, '-', '.').
    pub name: String,
    #[command(flatten)]
    pub storage: StorageArgs,
    #[command(flatten)]
    pub kube: KubeArgs,
    #[command(flatten)]
    pub scope: ScopeArgs,
    /// Label selector, as kubectl's -l.
    #[arg(short = 'l', long)]
    pub selector: Option<String>,
    /// Object names to include (globs).
    #[arg(long, value_delimiter = ',')]
    pub include_names: Vec<String>,
    /// Leave out objects with this label (KEY or KEY=VALUE).
    #[arg(long, default_value = "salvor.io/exclude-from-backup=true")]
    pub exclude_label: String,
    /// Cluster-scoped objects: auto (all without a namespace filter, else only those
    /// the selected namespaces use: CRDs, PVs, StorageClasses, ClusterRoles and
    /// bindings of their ServiceAccounts), true, or false.
    #[arg(long, default_value = "auto")]
    pub include_cluster_resources: String,
    /// Back up every served version of each resource, not only the preferred one.
    #[arg(long)]
    pub all_versions: bool,
    #[command(flatten)]
    pub seal: SealArgs,
    /// Resource types listed at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Objects per list page.
    #[arg(long, default_value_t = 500)]
    pub page_size: u32,
    #[command(flatten)]
    pub metrics: super::jobmetrics::MetricsFileArgs,
}

/// Runs a backup command.
pub fn run(command: BackupCommand, format: Format) -> anyhow::Result<u8> {
    let runtime = super::conn::runtime()?;
    match command {
        BackupCommand::Create(args) => runtime.block_on(create(*args, format)),
        BackupCommand::Get { name, storage } => runtime.block_on(get(name, &storage, format)),
        BackupCommand::Describe { name, storage } => {
            runtime.block_on(describe(&name, &storage, format))
        }
        BackupCommand::Verify {
            name,
            public_key,
            identity,
            storage,
        } => runtime.block_on(verify(
            &name,
            public_key.as_deref(),
            &identity,
            &storage,
            format,
        )),
        BackupCommand::Logs {
            name,
            identity,
            storage,
        } => runtime.block_on(logs(&name, &identity, &storage, format)),
        BackupCommand::Delete {
            name,
            dry_run,
            storage,
        } => runtime.block_on(delete(&name, dry_run, &storage, format)),
        BackupCommand::Download {
            name,
            dir,
            identity,
            storage,
        } => runtime.block_on(download(&name, &dir, &identity, &storage, format)),
        BackupCommand::Keygen { sign_key } => keygen(&sign_key),
        BackupCommand::ImportEtcd(args) => runtime.block_on(super::import::run(*args, format)),
    }
}

async fn create(args: CreateArgs, format: Format) -> anyhow::Result<u8> {
    let started = std::time::Instant::now();
    // Labelled by the repository, not the backup's name (which usually carries a
    // date), so that every run writes the same series.
    let labels = vec![("storage", args.storage.storage.clone())];
    let metrics = args.metrics.clone();
    let result = create_inner(args, format).await;
    match &result {
        Ok(manifest) => super::jobmetrics::record(
            &metrics,
            started,
            "backup",
            labels,
            manifest.phase == Phase::Completed,
            vec![
                (
                    "objects",
                    "Objects in the last backup.",
                    manifest.counts.objects as f64,
                ),
                (
                    "new_objects",
                    "Objects the last backup stored that the repository did not hold.",
                    manifest.counts.new_objects as f64,
                ),
                (
                    "uploaded_bytes",
                    "Bytes the last backup uploaded.",
                    manifest.counts.uploaded_bytes as f64,
                ),
                (
                    "errors",
                    "Errors of the last backup (types or objects that failed).",
                    manifest.errors.len() as f64,
                ),
                (
                    "warnings",
                    "Warnings of the last backup.",
                    manifest.warnings.len() as f64,
                ),
            ],
        ),
        Err(_) => super::jobmetrics::record(&metrics, started, "backup", labels, false, Vec::new()),
    }
    result.map(|manifest| phase_code(&manifest))
}

/// Runs the backup and prints its manifest.
async fn create_inner(args: CreateArgs, format: Format) -> anyhow::Result<Manifest> {
    let cluster = Cluster::connect(&args.kube.cluster_args()).await?;
    let repo = Repository::open_or_init(args.storage.storage()?).await?;
    let mut options = BackupOptions::new(&args.name);
    options.filters = FilterSpec {
        include_namespaces: args.scope.include_namespaces,
        exclude_namespaces: args.scope.exclude_namespaces,
        include_resources: args.scope.include_resources,
        exclude_resources: args.scope.exclude_resources,
        selector: args.selector,
        include_names: args.include_names,
        exclude_label: Some(args.exclude_label).filter(|l| !l.is_empty()),
        include_cluster_resources: args.include_cluster_resources,
        all_versions: args.all_versions,
    };
    options.page_size = args.page_size;
    options.concurrency = args.concurrency;
    args.seal.apply(&mut options)?;
    options.context = args
        .kube
        .context
        .clone()
        .or_else(|| resource_backup::cluster::current_context(args.kube.kubeconfig.as_deref()));
    let bar = super::progress::counter("backing up", "objects");
    let manifest = backup::create(&cluster, &repo, &options, &|p| match p {
        Progress::Objects(n) => bar.set_position(n),
        Progress::Types(n) => bar.set_message(format!("backing up {n} types:")),
        Progress::TypeDone { .. } => {}
    })
    .await
    .with_context(|| format!("backup {} to {}", args.name, repo.storage().url()))?;
    bar.finish_and_clear();
    print_manifest(&manifest, format)?;
    Ok(manifest)
}

/// The exit code of a finished backup: 3 when PartiallyFailed.
pub fn phase_code(m: &Manifest) -> u8 {
    match m.phase {
        Phase::Completed => exit::OK,
        Phase::PartiallyFailed => exit::FINDINGS,
    }
}

fn phase(m: &Manifest) -> &'static str {
    match m.phase {
        Phase::Completed => "Completed",
        Phase::PartiallyFailed => "PartiallyFailed",
    }
}

/// Prints a manifest as a summary table (or JSON/YAML).
pub fn print_manifest(m: &Manifest, format: Format) -> anyhow::Result<()> {
    if print_structured(format, m)? {
        return Ok(());
    }
    print_table(&properties(vec![
        ("backup", m.name.clone()),
        ("phase", phase(m).to_string()),
        (
            "cluster",
            format!("{} ({})", m.cluster.server, m.cluster.git_version),
        ),
        (
            "resourceVersion",
            format!(
                "{}{}",
                m.resource_version,
                if m.consistent {
                    " (every list pinned)"
                } else {
                    " (NOT point-in-time)"
                }
            ),
        ),
        ("objects", m.counts.objects.to_string()),
        ("new objects", m.counts.new_objects.to_string()),
        ("size", human_bytes(m.counts.raw_bytes)),
        ("uploaded", human_bytes(m.counts.uploaded_bytes)),
        ("duration", format!("{:.2}s", m.duration_seconds)),
        ("started", m.started_at.clone()),
        ("encrypted", (!m.recipients.is_empty()).to_string()),
        (
            "signed",
            m.signature
                .as_ref()
                .map_or("no".to_string(), |s| format!("ed25519 {}", s.public_key)),
        ),
        ("warnings", m.warnings.len().to_string()),
        ("errors", m.errors.len().to_string()),
    ]))?;
    for e in &m.errors {
        eprintln!(
            "error: {}{}",
            e.resource
                .as_deref()
                .map(|r| format!("{r}: "))
                .unwrap_or_default(),
            e.message
        );
    }
    for w in &m.warnings {
        eprintln!("warning: {}", w.message);
    }
    Ok(())
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedBackup {
    name: String,
    phase: String,
    objects: Option<u64>,
    size: Option<u64>,
    resource_version: Option<String>,
    started: Option<String>,
    errors: Option<usize>,
}

async fn get(name: Option<String>, storage: &StorageArgs, format: Format) -> anyhow::Result<u8> {
    let repo = storage.open().await?;
    if let Some(name) = name {
        let manifest = repo.manifest(&name).await?;
        print_manifest(&manifest, format)?;
        return Ok(exit::OK);
    }
    let rows: Vec<ListedBackup> = repo
        .list_backups()
        .await?
        .into_iter()
        .map(|l| match l.manifest {
            Some(m) => ListedBackup {
                phase: phase(&m).to_string(),
                objects: Some(m.counts.objects),
                size: Some(m.counts.raw_bytes),
                resource_version: Some(m.resource_version.clone()),
                started: Some(m.started_at.clone()),
                errors: Some(m.errors.len()),
                name: l.name,
            },
            None => ListedBackup {
                phase: if l.error.is_some() {
                    "Invalid".to_string()
                } else {
                    "Incomplete".to_string()
                },
                objects: None,
                size: None,
                resource_version: None,
                started: l.started.map(|s| s.started_at),
                errors: None,
                name: l.name,
            },
        })
        .collect();
    if !print_structured(format, &rows)? {
        let mut t = table([
            "NAME",
            "PHASE",
            "OBJECTS",
            "SIZE",
            "RESOURCEVERSION",
            "STARTED",
            "ERRORS",
        ]);
        let dash = || "-".to_string();
        for r in &rows {
            t.add_row(vec![
                r.name.clone(),
                r.phase.clone(),
                r.objects.map_or_else(dash, |n| n.to_string()),
                r.size.map_or_else(dash, human_bytes),
                r.resource_version.clone().unwrap_or_else(dash),
                r.started.clone().unwrap_or_else(dash),
                r.errors.map_or_else(dash, |n| n.to_string()),
            ]);
        }
        print_table(&t)?;
    }
    Ok(exit::OK)
}

async fn describe(name: &str, storage: &StorageArgs, format: Format) -> anyhow::Result<u8> {
    let repo = storage.open().await?;
    let m = repo.manifest(name).await?;
    if print_structured(format, &m)? {
        return Ok(exit::OK);
    }
    print_manifest(&m, Format::Table)?;
    println!();
    let mut t = table(["RESOURCE", "OBJECTS"]);
    for (r, n) in &m.counts.by_resource {
        t.add_row(vec![r.clone(), n.to_string()]);
    }
    print_table(&t)?;
    println!();
    let mut t = table(["NAMESPACE", "OBJECTS"]);
    for (ns, n) in &m.counts.by_namespace {
        let ns = if ns.is_empty() {
            "(cluster-scoped)"
        } else {
            ns
        };
        t.add_row(vec![ns.to_string(), n.to_string()]);
    }
    print_table(&t)?;
    if !m.filters.include_namespaces.is_empty() || !m.filters.include_resources.is_empty() {
        println!();
        println!("filters: {}", serde_json::to_string(&m.filters)?);
    }
    Ok(exit::OK)
}

async fn verify(
    name: &str,
    public_key: Option<&Path>,
    identity: &IdentityArgs,
    storage: &StorageArgs,
    format: Format,
) -> anyhow::Result<u8> {
    let trusted = public_key.map(VerifyingKey::read_file).transpose()?;
    let repo = storage.open().await?;
    let identities = identity.identities()?;
    let report = catalog::verify(&repo, name, &identities, trusted.as_ref()).await?;
    if !print_structured(format, &report)? {
        print_table(&properties(vec![
            ("backup", report.backup.clone()),
            ("signature", report.signature.clone()),
            ("packs", report.packs.to_string()),
            (
                "objects",
                if report.contents_checked {
                    format!("{} of {} hashed", report.objects_checked, report.objects)
                } else {
                    format!(
                        "{} (encrypted: pass --identity to check contents; pack checksums were checked)",
                        report.objects
                    )
                },
            ),
            (
                "result",
                if report.ok() { "OK" } else { "DAMAGED" }.to_string(),
            ),
        ]))?;
        if !report.ok() {
            let mut t = table(["CODE", "WHERE", "PROBLEM"]);
            for p in &report.problems {
                t.add_row(vec![p.code.clone(), p.location.clone(), p.message.clone()]);
            }
            print_table(&t)?;
        }
    }
    Ok(if report.ok() {
        exit::OK
    } else {
        exit::FINDINGS
    })
}

async fn logs(
    name: &str,
    identity: &IdentityArgs,
    storage: &StorageArgs,
    format: Format,
) -> anyhow::Result<u8> {
    let repo = storage.open().await?;
    let manifest = repo.manifest(name).await?;
    let lines = catalog::log(&repo, &manifest, &identity.identities()?).await?;
    if !print_structured(format, &lines)? {
        for l in &lines {
            println!("{} {:7} {}", l.time, l.level, l.message);
        }
    }
    Ok(exit::OK)
}

async fn delete(
    name: &str,
    dry_run: bool,
    storage: &StorageArgs,
    format: Format,
) -> anyhow::Result<u8> {
    let repo = storage.open().await?;
    let report = repo.delete_backup(name, dry_run).await?;
    if !print_structured(format, &report)? {
        let verb = if dry_run { "would delete" } else { "deleted" };
        println!(
            "{verb} backup {name} ({} files), {} unreferenced packs, {} freed; {} packs still used by other backups",
            report.backup_files.len(),
            report.packs_deleted.len(),
            human_bytes(report.bytes_freed),
            report.packs_kept
        );
    }
    Ok(exit::OK)
}

async fn download(
    name: &str,
    dir: &Path,
    identity: &IdentityArgs,
    storage: &StorageArgs,
    format: Format,
) -> anyhow::Result<u8> {
    let repo = storage.open().await?;
    let backup = StoredBackup::open(&repo, name, identity.identities()?).await?;
    let n = catalog::download(&backup, dir).await?;
    #[derive(serde::Serialize)]
    struct Downloaded<'a> {
        backup: &'a str,
        dir: String,
        files: u64,
    }
    let out = Downloaded {
        backup: name,
        dir: dir.display().to_string(),
        files: n,
    };
    if !print_structured(format, &out)? {
        println!("wrote {n} objects of backup {name} to {}", dir.display());
    }
    Ok(exit::OK)
}

fn keygen(path: &Path) -> anyhow::Result<u8> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let key = SigningKey::generate()?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("{} (it must not exist yet)", path.display()))?;
    file.write_all(key.to_pem()?.as_bytes())?;
    file.sync_all()?;
    let public = key.public_key();
    let pub_path = PathBuf::from(format!("{}.pub", path.display()));
    std::fs::write(&pub_path, public.to_pem()?)?;
    println!("{}", public.to_base64());
    eprintln!(
        "private key: {} (keep it secret); public key: {} (give it to `salvor backup verify --public-key`)",
        path.display(),
        pub_path.display()
    );
    Ok(exit::OK)
}
