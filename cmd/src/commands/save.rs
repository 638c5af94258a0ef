//! `salvor etcd snapshot save`.

use anyhow::Context;
use etcd_tools::save::{SnapshotLocation, save};

use super::jobmetrics::{self, MetricsFileArgs};
use crate::cli::{EtcdConnArgs, S3Args};
use crate::exit;
use crate::output::{Format, human_bytes, print_structured, print_table, properties};

/// Saves and prints what was written.
pub fn run(
    conn: &EtcdConnArgs,
    dest: &str,
    s3: &S3Args,
    metrics: &MetricsFileArgs,
    format: Format,
) -> anyhow::Result<u8> {
    let started = std::time::Instant::now();
    let options = super::conn::connect_options(conn)?;
    let dest = SnapshotLocation::parse(dest, &s3.options())?;
    // Labelled by where snapshots go, not by the file's name (which usually carries a
    // date), so that every run writes the same series.
    let location = match &dest {
        SnapshotLocation::File(path) => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| ".".to_string(), |p| p.display().to_string()),
        SnapshotLocation::Object { storage, .. } => storage.url().to_string(),
    };
    let bar = super::progress::bytes("receiving");
    let report = super::conn::runtime()?
        .block_on(save(&conn.endpoints, &options, &dest, &|done, total| {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(done);
        }))
        .with_context(|| format!("saving a snapshot to {}", dest.display()));
    let labels = vec![("location", location)];
    let report = match report {
        Ok(report) => {
            let mut values = vec![(
                "bytes",
                "Bytes of the last snapshot saved (its sha256 trailer included).",
                report.bytes as f64,
            )];
            if let Some(revision) = report.revision {
                values.push((
                    "revision",
                    "Revision of the last snapshot saved.",
                    revision as f64,
                ));
            }
            jobmetrics::record(metrics, started, "snapshot_save", labels, true, values);
            report
        }
        Err(e) => {
            jobmetrics::record(metrics, started, "snapshot_save", labels, false, Vec::new());
            return Err(e);
        }
    };
    let unknown = || "not read back (object storage)".to_string();
    bar.finish_and_clear();
    if !print_structured(format, &report)? {
        print_table(&properties(vec![
            ("snapshot", report.path.clone()),
            ("from", report.endpoint.clone()),
            ("size", human_bytes(report.bytes)),
            ("sha256", format!("{} (verified)", report.sha256)),
            (
                "revision",
                report.revision.map_or_else(unknown, |r| r.to_string()),
            ),
            (
                "total keys",
                report.total_key.map_or_else(unknown, |k| k.to_string()),
            ),
            (
                "hash",
                report.hash.map_or_else(unknown, |h| format!("{h:08x}")),
            ),
            ("time", format!("{} ms", report.elapsed_ms)),
        ]))?;
    }
    Ok(exit::OK)
}
