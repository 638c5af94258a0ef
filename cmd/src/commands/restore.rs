//! `salvor etcd snapshot restore`.

use anyhow::Context;
use etcd_tools::restore::{RestoreOptions, restore};

use crate::cli::RestoreArgs;
use crate::exit;
use crate::output::{Format, human_bytes, print_structured, print_table, properties};

/// Restores and prints what was written.
pub fn run(args: RestoreArgs, format: Format) -> anyhow::Result<u8> {
    let mut opts = RestoreOptions::new(args.file.clone(), &args.name);
    if let Some(d) = args.data_dir {
        opts.data_dir = d;
    }
    opts.wal_dir = args.wal_dir;
    if let Some(c) = args.initial_cluster {
        opts.initial_cluster = c;
    } else {
        opts.initial_cluster = format!(
            "{}={}",
            args.name,
            args.initial_advertise_peer_urls
                .join(&format!(",{}=", args.name))
        );
    }
    opts.initial_cluster_token = args.initial_cluster_token;
    opts.initial_advertise_peer_urls = args.initial_advertise_peer_urls;
    opts.skip_hash_check = args.skip_hash_check;
    opts.bump_revision = args.bump_revision;
    opts.mark_compacted = args.mark_compacted;
    opts.dry_run = args.dry_run;
    let bar = super::progress::bytes(if opts.skip_hash_check {
        "copying"
    } else {
        "verifying and copying"
    });
    let report = restore(&opts, &|done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .with_context(|| format!("restoring {}", args.file.display()))?;
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
