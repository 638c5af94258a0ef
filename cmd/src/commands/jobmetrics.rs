//! `--metrics-file` of the commands that run unattended (`etcd snapshot save`,
//! `backup create`): the run's outcome as Prometheus metrics in a file, for
//! node_exporter's textfile collector. See `etcd_tools::prom`.

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use etcd_tools::prom::{JobRun, write_job_file};

/// `--metrics-file`.
#[derive(Debug, Clone, Args)]
pub struct MetricsFileArgs {
    /// Write the run's outcome (success, time, duration, sizes) as Prometheus metrics to
    /// this file, atomically, for node_exporter's textfile collector; a failed run
    /// keeps the time of the last success.
    #[arg(long, env = "SALVOR_METRICS_FILE")]
    pub metrics_file: Option<PathBuf>,
}

/// Writes the file when asked. A file that cannot be written is reported on stderr
/// and does not change the command's outcome.
pub fn record(
    args: &MetricsFileArgs,
    started: Instant,
    job: &str,
    labels: Vec<(&str, String)>,
    success: bool,
    values: Vec<(&str, &str, f64)>,
) {
    let Some(path) = &args.metrics_file else {
        return;
    };
    let run = JobRun {
        job,
        labels,
        success,
        finished_unix_seconds: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        duration_seconds: started.elapsed().as_secs_f64(),
        values,
    };
    if let Err(e) = write_job_file(path, &run) {
        report_failure(path, &e);
    }
}

fn report_failure(path: &Path, e: &std::io::Error) {
    tracing::error!(path = %path.display(), error = %e, "cannot write the metrics file");
    eprintln!(
        "warning: cannot write the metrics file {}: {e}",
        path.display()
    );
}
