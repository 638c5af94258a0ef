//! `salvor etcd snapshot save`.

use anyhow::Context;
use etcd_tools::save::{SnapshotLocation, save};

use crate::cli::{EtcdConnArgs, S3Args};
use crate::exit;
use crate::output::{Format, human_bytes, print_structured, print_table, properties};

/// Saves and prints what was written.
pub fn run(conn: &EtcdConnArgs, dest: &str, s3: &S3Args, format: Format) -> anyhow::Result<u8> {
    let options = super::conn::connect_options(conn)?;
    let dest = SnapshotLocation::parse(dest, &s3.options())?;
    let bar = super::progress::bytes("receiving");
    let report = super::conn::runtime()?
        .block_on(save(&conn.endpoints, &options, &dest, &|done, total| {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(done);
        }))
        .with_context(|| format!("saving a snapshot to {}", dest.display()))?;
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
