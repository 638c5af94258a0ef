//! `salvor etcd snapshot save`.

use std::path::Path;

use anyhow::Context;
use etcd_tools::save::save;

use crate::cli::EtcdConnArgs;
use crate::exit;
use crate::output::{Format, human_bytes, print_structured, print_table, properties};

/// Saves and prints what was written.
pub fn run(conn: &EtcdConnArgs, dest: &Path, format: Format) -> anyhow::Result<u8> {
    let options = super::conn::connect_options(conn)?;
    let bar = super::progress::bytes("receiving");
    let report = super::conn::runtime()?
        .block_on(save(&conn.endpoints, &options, dest, &|done, total| {
            if let Some(t) = total {
                bar.set_length(t);
            }
            bar.set_position(done);
        }))
        .with_context(|| format!("saving a snapshot to {}", dest.display()))?;
    bar.finish_and_clear();
    if !print_structured(format, &report)? {
        print_table(&properties(vec![
            ("snapshot", report.path.display().to_string()),
            ("from", report.endpoint.clone()),
            ("size", human_bytes(report.bytes)),
            ("sha256", format!("{} (verified)", report.sha256)),
            ("revision", report.revision.to_string()),
            ("total keys", report.total_key.to_string()),
            ("hash", format!("{:08x}", report.hash)),
            ("time", format!("{} ms", report.elapsed_ms)),
        ]))?;
    }
    Ok(exit::OK)
}
