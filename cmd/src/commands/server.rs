//! `salvor server`: the monitoring endpoint (`/metrics`, `/healthz`, `/readyz`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use etcd_tools::exporter::{ExporterConfig, serve};

use super::diagnose::{DiagnoseArgs, runtime};
use crate::cli::parse_duration;
use crate::exit;

/// `salvor server` flags.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Address to serve /metrics, /healthz and /readyz on.
    #[arg(long, default_value = "127.0.0.1:9479", env = "SALVOR_LISTEN")]
    pub listen: SocketAddr,
    /// Pause between two diagnoses.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    #[command(flatten)]
    pub diagnose: DiagnoseArgs,
}

/// Serves until SIGINT or SIGTERM, then shuts down gracefully.
pub fn run(args: &ServerArgs) -> anyhow::Result<u8> {
    let config = ExporterConfig {
        diagnose: args.diagnose.options()?,
        interval: args.interval,
    };
    runtime()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        eprintln!("serving http://{address}/metrics (also /healthz, /readyz); Ctrl-C stops");
        serve(listener, config, shutdown_signal()).await?;
        eprintln!("stopped");
        Ok(exit::OK)
    })
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
