//! `salvor etcd snapshot restore`.

use anyhow::Context;
use etcd_tools::fsutil::with_suffix;
use etcd_tools::remote::{SnapshotLocation, fetch};
use etcd_tools::restore::{RestoreOptions, check_options, restore};

use crate::cli::RestoreArgs;
use crate::exit;
use crate::output::{Format, human_bytes, print_structured, print_table, properties};

/// Restores and prints what was written.
pub fn run(args: RestoreArgs, format: Format) -> anyhow::Result<u8> {
    let source = SnapshotLocation::parse(&args.file, &args.s3.options())?;
    let file = match &source {
        SnapshotLocation::File(path) => path.clone(),
        SnapshotLocation::Object { .. } => std::path::PathBuf::new(),
    };
    let mut opts = RestoreOptions::new(file, &args.name);
    if let Some(d) = args.data_dir {
        opts.data_dir = d;
    }
    opts.wal_dir = args.wal_dir.clone();
    if let Some(c) = &args.initial_cluster {
        opts.initial_cluster = c.clone();
    } else {
        opts.initial_cluster = format!(
            "{}={}",
            args.name,
            args.initial_advertise_peer_urls
                .join(&format!(",{}=", args.name))
        );
    }
    opts.initial_cluster_token = args.initial_cluster_token.clone();
    opts.initial_advertise_peer_urls = args.initial_advertise_peer_urls.clone();
    opts.skip_hash_check = args.skip_hash_check;
    opts.bump_revision = args.bump_revision;
    opts.mark_compacted = args.mark_compacted;
    opts.dry_run = args.dry_run;
    // An object is downloaded next to the data dir (the same file system, which the
    // restore needs room on anyway) and removed afterwards.
    let _download = match &source {
        SnapshotLocation::File(_) => None,
        SnapshotLocation::Object { storage, key } => {
            // Flags and output dirs first: no multi-gigabyte download to be refused.
            check_options(&opts)?;
            let local = with_suffix(&opts.data_dir, ".snapshot.download");
            // A leftover of an interrupted download goes; the parent must exist.
            if local.exists() {
                std::fs::remove_file(&local)
                    .with_context(|| format!("removing the leftover {}", local.display()))?;
            }
            if let Some(parent) = local.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let guard = RemoveOnDrop(local.clone());
            let bar = super::progress::bytes("downloading");
            super::conn::runtime()?
                .block_on(fetch(storage, key, &local, &|done, total| {
                    bar.set_length(total);
                    bar.set_position(done);
                }))
                .with_context(|| format!("downloading {}", source.display()))?;
            bar.finish_and_clear();
            opts.snapshot = local;
            Some(guard)
        }
    };
    let bar = super::progress::bytes(if opts.skip_hash_check {
        "copying"
    } else {
        "verifying and copying"
    });
    let report = restore(&opts, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("restoring {}", source.display()))?;
    bar.finish_and_clear();
    if !print_structured(format, &report)? {
        let members = report
            .members
            .iter()
            .map(|m| format!("{}={} ({:x})", m.name, m.peer_urls.join(","), m.id))
            .collect::<Vec<_>>()
            .join("\n");
        print_table(&properties(vec![
            ("data dir", report.data_dir.display().to_string()),
            ("wal dir", report.wal_dir.display().to_string()),
            ("member", format!("{} ({})", report.name, report.member_id)),
            ("cluster id", report.cluster_id.clone()),
            ("members", members),
            (
                "sha256",
                if report.hash_verified {
                    "verified".into()
                } else {
                    "not checked (--skip-hash-check)".into()
                },
            ),
            ("revision", report.revision.to_string()),
            ("db size", human_bytes(report.db_size)),
            ("time", format!("{} ms", report.elapsed_ms)),
        ]))?;
        if report.dry_run {
            println!("dry run: nothing written");
            return Ok(exit::OK);
        }
        if let Some(rev) = report.compacted_revision {
            println!(
                "revision bumped to {rev} and marked compacted: watchers of the old cluster must relist"
            );
        }
        println!(
            "start each member with --initial-cluster-state new (or none) and the same --initial-cluster; etcd serves the snapshot's keys at revision {}",
            report.revision
        );
    }
    Ok(exit::OK)
}

/// Removes a downloaded snapshot when the restore is done with it.
struct RemoveOnDrop(std::path::PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
