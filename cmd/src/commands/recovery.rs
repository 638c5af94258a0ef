//! `salvor etcd defrag` and `salvor etcd salvage`: offline repairs that write new files.

use std::path::PathBuf;

use anyhow::Context;
use etcd_tools::defrag::{DefragOptions, defrag as run_defrag};

use crate::exit;
use crate::output::{Format, human_bytes, print_structured, print_table, properties};

/// `salvor etcd defrag`.
pub fn defrag(
    data_dir: PathBuf,
    keep_old: bool,
    dry_run: bool,
    format: Format,
) -> anyhow::Result<u8> {
    let bar = super::progress::counter("copying", "keys");
    let report = run_defrag(
        &DefragOptions {
            path: data_dir.clone(),
            keep_old,
            dry_run,
        },
        &|n| bar.set_position(n),
    )
    .with_context(|| format!("defragmenting {}", data_dir.display()))?;
    bar.finish_and_clear();
    if !print_structured(format, &report)? {
        let mut rows = vec![
            ("db", report.db.display().to_string()),
            ("size before", human_bytes(report.size_before)),
            (
                if report.dry_run {
                    "size after (estimate)"
                } else {
                    "size after"
                },
                human_bytes(report.size_after),
            ),
            ("free pages before", report.free_pages_before.to_string()),
            ("keys", report.keys.to_string()),
            ("hash", format!("{} (unchanged)", report.hash)),
            ("time", format!("{} ms", report.elapsed_ms)),
        ];
        if let Some(old) = &report.kept_old {
            rows.push(("old backend kept", old.display().to_string()));
        }
        print_table(&properties(rows))?;
        if report.dry_run {
            println!("dry run: nothing written");
        }
    }
    Ok(exit::OK)
}
