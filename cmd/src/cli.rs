//! The command line: clap definitions only.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use clap_complete::Shell;
use snapshot_format::bbolt::SourceKind;

use crate::output::Format;

/// Salvor: protect and recover Kubernetes clusters at the etcd and API layers.
#[derive(Debug, Parser)]
#[command(
    name = "salvor",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Output format.
    #[arg(
        short = 'o',
        long = "output",
        visible_short_alias = 'w',
        visible_alias = "write-out",
        global = true,
        value_enum,
        default_value_t = Format::Table,
        env = "SALVOR_OUTPUT"
    )]
    pub output: Format,

    /// Log format on stderr (filter with RUST_LOG, e.g. RUST_LOG=debug).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "SALVOR_LOG_FORMAT")]
    pub log_format: LogFormat,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// etcd: offline inspection, live diagnosis, recovery.
    Etcd {
        /// etcd command.
        #[command(subcommand)]
        command: EtcdCommand,
    },
    /// Kubernetes API backups in a repository on object storage (or a directory).
    Backup {
        /// Backup command.
        #[command(subcommand)]
        command: crate::commands::backup::BackupCommand,
    },
    /// Restore a backup into a cluster through its API (plan first; --dry-run diffs).
    Restore {
        /// Restore command.
        #[command(subcommand)]
        command: crate::commands::api_restore::RestoreCommand,
    },
    /// Serve the live diagnosis of an etcd cluster as Prometheus metrics (/metrics),
    /// with /healthz and /readyz, re-checking on an interval.
    Server(crate::commands::server::ServerArgs),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: Shell,
    },
    /// Write man pages (one per command) into a directory.
    Man {
        /// Directory to write `salvor*.1` into.
        #[arg(long, default_value = "man")]
        dir: PathBuf,
    },
    /// Print version information.
    Version,
}

/// `salvor etcd …`
#[derive(Debug, Subcommand)]
pub enum EtcdCommand {
    /// Find every problem in a snapshot file, a `member/snap/db` or a data dir, in one
    /// pass: bbolt structure, etcd's records, the sha256 trailer. Exit code 3 when any
    /// finding is an error.
    Check {
        /// Snapshot file, `member/snap/db`, or an etcd data dir.
        path: PathBuf,
        /// Also list info findings in the table (JSON and YAML always include them).
        #[arg(long)]
        all: bool,
    },
    /// The write-ahead log of a data dir (offline).
    Wal {
        /// WAL command.
        #[command(subcommand)]
        command: WalCommand,
    },
    /// The Kubernetes objects inside a snapshot, decoded as the API's JSON (offline).
    Objects {
        /// Objects command.
        #[command(subcommand)]
        command: ObjectsCommand,
    },
    /// Defragment a stopped member's backend offline: rewrite it compactly, verify the
    /// copy (same hash, clean check), then swap it in. Never touches a db etcd has open.
    Defrag {
        /// The member's data dir (or a db file).
        #[arg(long)]
        data_dir: PathBuf,
        /// Keep the old backend as `member/snap/db.pre-defrag`.
        #[arg(long)]
        keep_old: bool,
        /// Report what would be reclaimed; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Recover every intact revision of a damaged backend into a new db: walks the tree
    /// around damaged pages, scans unreachable pages to fill the holes, and reports
    /// exactly what was lost. Exit code 3 when anything was lost. Reads the input only.
    /// (`-o/--output` is the output format, as everywhere: the new db is the second
    /// argument.)
    Salvage {
        /// The damaged snapshot file, `member/snap/db` or data dir.
        input: PathBuf,
        /// The new db to write (must not exist).
        #[arg(required_unless_present = "dry_run")]
        new_db: Option<PathBuf>,
        /// Report what can be recovered; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Quorum-loss recovery: plan from the surviving data dirs, then apply step by step
    /// (resumable; every step printed before it runs).
    Recover {
        /// Recover command.
        #[command(subcommand)]
        command: RecoverCommand,
    },
    /// Inspect a snapshot file, a `member/snap/db` file or a data dir, offline and read-only.
    Snapshot {
        /// Snapshot command.
        #[command(subcommand)]
        command: SnapshotCommand,
    },
    /// Diagnose a live cluster: reachability, reads, leader and raft agreement,
    /// membership, quota and fragmentation, alarms, HashKV, disk and network
    /// latency from /metrics. Exit code 3 when any finding is an error, 4 when no
    /// member answers.
    Diagnose(crate::commands::diagnose::DiagnoseArgs),
}

/// How to read the file.
#[derive(Debug, Args)]
pub struct ReadArgs {
    /// Snapshot file (`etcdctl snapshot save` output), `member/snap/db`, or an etcd data dir.
    pub file: PathBuf,
    /// How to read pages: auto (memory up to 256 MiB, positioned reads above), memory,
    /// pread (bounded memory) or mmap (fast; only for files nobody is writing).
    #[arg(long, value_enum, default_value_t = ReadMode::Auto, env = "SALVOR_READ_MODE")]
    pub read_mode: ReadMode,
    /// Verify the sha256 trailer of a snapshot file before reading it (reads the file
    /// once more; etcdctl does not verify it either).
    #[arg(long)]
    pub verify: bool,
    /// Read the file even when one of its two meta pages is damaged, from the surviving
    /// one (as bbolt would). Without it a damaged meta page is an error.
    #[arg(long)]
    pub allow_bad_meta: bool,
}

/// Page source choice on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadMode {
    /// Memory for small files, positioned reads for large ones.
    Auto,
    /// Read the whole file into memory.
    Memory,
    /// Positioned reads, bounded memory.
    Pread,
    /// Memory-map the file.
    Mmap,
}

impl From<ReadMode> for SourceKind {
    fn from(m: ReadMode) -> Self {
        match m {
            ReadMode::Auto => SourceKind::Auto,
            ReadMode::Memory => SourceKind::Memory,
            ReadMode::Pread => SourceKind::Pread,
            ReadMode::Mmap => SourceKind::Mmap,
        }
    }
}

/// `salvor etcd snapshot …`
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Hash, revision, total keys and size (as etcdctl), plus compaction, raft index,
    /// members, per-prefix counts and free pages.
    Status {
        #[command(flatten)]
        read: ReadArgs,
        /// Key path segments that form a prefix in the per-prefix table.
        #[arg(long, default_value_t = 2)]
        prefix_depth: usize,
        /// Rows of the per-prefix table (table output).
        #[arg(long, default_value_t = 20)]
        top: usize,
    },
    /// List keys (by prefix, at a revision), with metadata and optionally values.
    Ls {
        #[command(flatten)]
        read: ReadArgs,
        /// Key prefix to list (all keys when omitted).
        #[arg(default_value = "")]
        prefix: String,
        /// Read at this revision (0: newest).
        #[arg(long, default_value_t = 0)]
        rev: i64,
        /// Print keys only, one per line (table output).
        #[arg(long, conflicts_with = "values")]
        keys_only: bool,
        /// Include values.
        #[arg(long)]
        values: bool,
        /// At most this many keys (0: no limit).
        #[arg(long, default_value_t = 0)]
        limit: usize,
    },
    /// Get a key (or every key under it with --prefix) at a revision.
    Get {
        #[command(flatten)]
        read: ReadArgs,
        /// The key.
        key: String,
        /// Read at this revision (0: newest).
        #[arg(long, default_value_t = 0)]
        rev: i64,
        /// Treat the key as a prefix.
        #[arg(long)]
        prefix: bool,
        /// Print only the value, raw (for piping).
        #[arg(long)]
        print_value_only: bool,
    },
    /// Every revision of a key present in the file, deletes included.
    History {
        #[command(flatten)]
        read: ReadArgs,
        /// The key.
        key: String,
        /// Include values.
        #[arg(long)]
        values: bool,
    },
    /// Largest keys, keys with most revisions, bytes per prefix.
    Stats {
        #[command(flatten)]
        read: ReadArgs,
        /// Rows per table.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// Key path segments that form a prefix.
        #[arg(long, default_value_t = 2)]
        prefix_depth: usize,
    },
    /// Create a new member data dir from a snapshot, as `etcdutl snapshot restore`: the
    /// backend with the new membership, a WAL and a .snap file. Run it once per member
    /// with the same --initial-cluster and --initial-cluster-token. Never writes over an
    /// existing data dir; an interrupted restore leaves only `<data-dir>.part`.
    Restore(RestoreArgs),
    /// Stream a snapshot from a live member to DEST, as `etcdctl snapshot save`, its
    /// sha256 verified before it appears under DEST: a file is written to `DEST.part`,
    /// fsynced, then renamed; an `s3://bucket/key` object is a multipart upload
    /// completed only once verified (no local disk needed). With several endpoints,
    /// the next is tried when one fails.
    Save {
        #[command(flatten)]
        conn: EtcdConnArgs,
        /// Destination: a file, file:///path or s3://bucket/key.
        dest: String,
        #[command(flatten)]
        s3: S3Args,
        #[command(flatten)]
        metrics: crate::commands::jobmetrics::MetricsFileArgs,
    },
}

/// Object storage settings for `s3://` locations (credentials come from
/// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN).
#[derive(Debug, Clone, Args)]
pub struct S3Args {
    /// S3 endpoint of an S3-compatible server (default: $AWS_ENDPOINT_URL, else AWS).
    #[arg(long, env = "SALVOR_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// S3 region (default: $AWS_REGION, else us-east-1).
    #[arg(long, env = "SALVOR_S3_REGION")]
    pub s3_region: Option<String>,
    /// Path-style S3 requests (default: on with --s3-endpoint, off for AWS).
    #[arg(long, env = "SALVOR_S3_PATH_STYLE")]
    pub s3_path_style: Option<bool>,
    /// Give up on a storage request after retrying this many seconds.
    #[arg(long, default_value_t = 60, env = "SALVOR_STORAGE_TIMEOUT")]
    pub storage_timeout: u64,
}

impl S3Args {
    /// As the storage layer takes them.
    pub fn options(&self) -> object_storage::StorageOptions {
        object_storage::StorageOptions {
            s3: object_storage::S3Options {
                endpoint: self.s3_endpoint.clone(),
                region: self.s3_region.clone(),
                path_style: self.s3_path_style,
                credentials: None,
            },
            retry_timeout: std::time::Duration::from_secs(self.storage_timeout.max(1)),
        }
    }
}

/// How to reach etcd (etcdctl's flags), for every command that talks to live members.
#[derive(Debug, Clone, Args)]
pub struct EtcdConnArgs {
    /// Comma-separated client URLs (`https://10.0.0.1:2379`, or `host:port`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "127.0.0.1:2379",
        env = "SALVOR_ENDPOINTS"
    )]
    pub endpoints: Vec<String>,
    #[command(flatten)]
    pub security: EtcdSecurityArgs,
}

/// TLS, authentication and timeouts for etcd, with etcdctl's names and defaults.
#[derive(Debug, Clone, Args)]
pub struct EtcdSecurityArgs {
    /// CA bundle that signs the members' server certificates.
    #[arg(long, env = "SALVOR_CACERT")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (for members started with --client-cert-auth).
    #[arg(long, env = "SALVOR_CERT", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key of the client certificate.
    #[arg(long, env = "SALVOR_KEY", requires = "cert")]
    pub key: Option<PathBuf>,
    /// etcd user, `name` or `name:password` (as etcdctl's --user).
    #[arg(long, env = "SALVOR_USER", hide_env_values = true)]
    pub user: Option<crate::commands::connect::UserArg>,
    /// Password of --user (prefer the SALVOR_PASSWORD environment variable to the
    /// command line).
    #[arg(long, env = "SALVOR_PASSWORD", hide_env_values = true)]
    pub password: Option<crate::commands::connect::Secret>,
    /// Time allowed to reach a member (connect, TLS): a dead or frozen member costs at
    /// most this. `500ms`, `2s`, `1m`.
    #[arg(long, default_value = "2s", value_parser = parse_duration, env = "SALVOR_DIAL_TIMEOUT")]
    pub dial_timeout: std::time::Duration,
    /// Time allowed for one request to answer (a stream such as a snapshot only has to
    /// start within it).
    #[arg(
        long,
        default_value = "5s",
        value_parser = parse_duration,
        env = "SALVOR_COMMAND_TIMEOUT"
    )]
    pub command_timeout: std::time::Duration,
}

/// Parses `500ms`, `5s`, `2m` or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (examples: 500ms, 5s, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(format!("{s:?} is out of range"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// `salvor etcd snapshot restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// Snapshot file (`snapshot save` output; a `member/snap/db` needs --skip-hash-check),
    /// or an `s3://bucket/key` object, downloaded next to the data dir first.
    pub file: String,
    /// Data dir to create (default: `<name>.etcd`).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Separate WAL dir (default: `<data-dir>/member/wal`).
    #[arg(long)]
    pub wal_dir: Option<PathBuf>,
    /// Name of the member being restored.
    #[arg(long, default_value = "default")]
    pub name: String,
    /// The new cluster: `name=peer-url,…` (default: `<name>=http://localhost:2380`).
    #[arg(long)]
    pub initial_cluster: Option<String>,
    /// The new cluster's token (member and cluster ids derive from it).
    #[arg(long, default_value = "etcd-cluster")]
    pub initial_cluster_token: String,
    /// This member's peer URLs, comma-separated; must match its --initial-cluster entry.
    #[arg(long, value_delimiter = ',', default_value = "http://localhost:2380")]
    pub initial_advertise_peer_urls: Vec<String>,
    /// Do not verify the snapshot's sha256 trailer (needed for a `member/snap/db`).
    #[arg(long)]
    pub skip_hash_check: bool,
    /// Add this much to the latest revision, so that revisions never go backwards for
    /// clients of the old cluster (needs --mark-compacted).
    #[arg(long, default_value_t = 0)]
    pub bump_revision: u64,
    /// Mark the bumped revision compacted, so watchers of the old cluster relist.
    #[arg(long)]
    pub mark_compacted: bool,
    /// Check the flags, the membership and the snapshot (with its hash) and show what
    /// would be written; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub s3: S3Args,
}

/// Which objects (kubectl-style flags).
#[derive(Debug, Args)]
pub struct ObjectSelection {
    /// Resource: `pods`, `deployments`, `deployments.apps`, `widgets.example.com`.
    pub resource: Option<String>,
    /// Only this namespace (all namespaces when omitted).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Label selector, as `kubectl -l`: `app=web,tier!=db,env in (a,b),!legacy`.
    #[arg(short = 'l', long = "selector")]
    pub selector: Option<String>,
    /// Name, or a name prefix ending in `*`.
    #[arg(long)]
    pub name: Option<String>,
    /// Read at this revision (0: newest).
    #[arg(long, default_value_t = 0)]
    pub rev: i64,
    /// The API server's --etcd-prefix.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,
    /// The cluster's EncryptionConfiguration (kube-apiserver's
    /// --encryption-provider-config), to decrypt values encrypted at rest.
    #[arg(long, env = "SALVOR_ENCRYPTION_CONFIG")]
    pub encryption_config: Option<PathBuf>,
}

/// `salvor etcd objects …`
#[derive(Debug, Subcommand)]
pub enum ObjectsCommand {
    /// List objects: resource, namespace, name, kind, encoding, size, revision.
    Ls {
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        select: ObjectSelection,
    },
    /// Print one object as YAML (default) or JSON, at a revision, optionally with its
    /// history. KEY is an etcd key or resource/namespace/name (resource/name when
    /// cluster-scoped).
    Get {
        #[command(flatten)]
        read: ReadArgs,
        /// etcd key, resource/namespace/name or resource/name.
        key: String,
        /// Read at this revision (0: newest).
        #[arg(long, default_value_t = 0)]
        rev: i64,
        /// Also print every revision still in the snapshot.
        #[arg(long)]
        history: bool,
        /// The API server's --etcd-prefix.
        #[arg(long, default_value = "/registry")]
        etcd_prefix: String,
        /// The cluster's EncryptionConfiguration, to decrypt values encrypted at rest.
        #[arg(long, env = "SALVOR_ENCRYPTION_CONFIG")]
        encryption_config: Option<PathBuf>,
    },
    /// Write every selected object: a directory tree
    /// (DIR/<group>/<resource>/<namespace>/<name>.yaml) or, without --dir, a stream of
    /// YAML documents (or JSON lines with -o json) on stdout. Keeps going past objects
    /// that cannot be decoded and counts them.
    Dump {
        #[command(flatten)]
        read: ReadArgs,
        #[command(flatten)]
        select: ObjectSelection,
        /// Directory to write the tree into (created if missing).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Objects and bytes per resource and namespace, largest objects, keys with most
    /// revisions, and the share of the database that is history.
    Stats {
        #[command(flatten)]
        read: ReadArgs,
        /// Rows per table.
        #[arg(long, default_value_t = 10)]
        top: usize,
        /// The API server's --etcd-prefix.
        #[arg(long, default_value = "/registry")]
        etcd_prefix: String,
    },
}

/// `salvor etcd wal …`
#[derive(Debug, Subcommand)]
pub enum WalCommand {
    /// Print the WAL like etcd-dump-logs: metadata, snapshot markers, HardState and
    /// every entry with its decoded request (put, delete range, txn, compaction, lease,
    /// member change …).
    Dump {
        /// Data dir, member dir or WAL dir.
        data_dir: PathBuf,
        /// First index to show (inclusive).
        #[arg(long)]
        start_index: Option<u64>,
        /// Last index to show (inclusive).
        #[arg(long)]
        end_index: Option<u64>,
        /// Comma-separated entry types, as etcd-dump-logs' --entry-type: Normal,
        /// ConfigChange, IRRRange, IRRPut, IRRDeleteRange, IRRTxn, IRRCompaction,
        /// IRRLeaseGrant, IRRLeaseRevoke, IRRLeaseCheckpoint, ….
        #[arg(long)]
        entry_type: Option<String>,
        /// Keep reading past CRC errors and broken frames, showing everything readable
        /// (etcd itself stops at the first error).
        #[arg(long)]
        raw: bool,
    },
}

/// `salvor etcd recover …`
#[derive(Debug, Subcommand)]
pub enum RecoverCommand {
    /// Inspect the surviving members' data dirs (offline) and plan the recovery: the
    /// member to recover from (highest commit index, with the reasons) and the steps.
    /// Save it with `-o json > plan.json` for `apply`.
    Plan {
        /// Data dirs of the surviving members.
        #[arg(required = true)]
        data_dirs: Vec<PathBuf>,
        /// New data dir for the source member (default: `<source>-recovered`).
        #[arg(long)]
        recovered_data_dir: Option<PathBuf>,
        /// Data dir for a re-added member, `name=path` (default:
        /// `<parent of source>/<name>-rejoined`). Repeatable.
        #[arg(long = "member-data-dir", value_parser = parse_name_path)]
        member_data_dirs: Vec<(String, PathBuf)>,
    },
    /// Run a plan's steps from where the state file says. Exit code 4 while waiting for
    /// the operator to start a member (the command to run is printed): start it, then
    /// run apply again.
    Apply {
        /// The plan (`recover plan -o json` output).
        #[arg(long)]
        plan: PathBuf,
        /// Progress file (default: `<plan>.state`).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Print the steps that would run; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// How long to wait for a member to start or a learner to catch up.
        #[arg(long, default_value = "2m", value_parser = parse_duration)]
        wait: std::time::Duration,
        #[command(flatten)]
        security: EtcdSecurityArgs,
    },
}

/// Parses `name=path`.
pub fn parse_name_path(s: &str) -> Result<(String, PathBuf), String> {
    match s.split_once('=') {
        Some((n, p)) if !n.is_empty() && !p.is_empty() => Ok((n.to_string(), PathBuf::from(p))),
        _ => Err(format!("{s:?} is not name=path")),
    }
}
