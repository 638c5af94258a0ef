//! The `salvor` binary: parses the command line, calls the libraries, prints.

mod cli;
mod commands;
mod output;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command, EtcdCommand, LogFormat};

// Decoding Kubernetes objects allocates many small strings; mimalloc makes that about
// 1.6x faster than glibc's allocator (docs/benchmarks.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes shared by every command.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// Any error.
    pub const ERROR: u8 = 1;
    /// Usage error (clap uses 2 as well).
    pub const USAGE: u8 = 2;
    /// A check or diagnosis found error-level problems.
    pub const FINDINGS: u8 = 3;
    /// Nothing answered (or, for `recover apply`, a member the operator must start does
    /// not answer yet).
    pub const UNREACHABLE: u8 = 4;
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Etcd {
            command: EtcdCommand::Snapshot { command },
        } => commands::snapshot::run(command, cli.output),
        Command::Etcd {
            command:
                EtcdCommand::Defrag {
                    data_dir,
                    keep_old,
                    dry_run,
                },
        } => commands::recovery::defrag(data_dir, keep_old, dry_run, cli.output),
        Command::Etcd {
            command:
                EtcdCommand::Salvage {
                    input,
                    new_db,
                    dry_run,
                },
        } => commands::recovery::salvage(input, new_db, dry_run, cli.output),
        Command::Etcd {
            command: EtcdCommand::Recover { command },
        } => commands::recover::run(command, cli.output),
        Command::Etcd {
            command: EtcdCommand::Check { path, all },
        } => commands::check::run(&path, all, cli.output),
        Command::Etcd {
            command: EtcdCommand::Objects { command },
        } => commands::objects::run(command, cli.output),
        Command::Etcd {
            command: EtcdCommand::Wal { command },
        } => commands::wal::run(command, cli.output),
        Command::Etcd {
            command: EtcdCommand::Diagnose(args),
        } => commands::diagnose::run(&args, cli.output),
        Command::Backup { command } => commands::backup::run(command, cli.output),
        Command::Restore { command } => commands::api_restore::run(command, cli.output),
        Command::Server(args) => commands::server::run(&args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "salvor", &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man { dir } => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(Cli::command(), &dir)?;
            eprintln!("man pages written to {}", dir.display());
            Ok(exit::OK)
        }
        Command::Version => {
            println!("salvor {}", env!("CARGO_PKG_VERSION"));
            Ok(exit::OK)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let broken_pipe = e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            });
            if broken_pipe {
                // `salvor … | head` is normal use, not an error.
                return ExitCode::from(exit::OK);
            }
            eprintln!("error: {e:#}");
            if let Some(hint) = commands::hint(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(exit::ERROR)
        }
    }
}
