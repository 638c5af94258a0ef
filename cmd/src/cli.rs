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
    /// etcd: offline snapshot inspection and live diagnosis.
    Etcd {
        /// etcd command.
        #[command(subcommand)]
        command: EtcdCommand,
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
