//! `salvor etcd defrag` and `salvor etcd salvage`: offline repairs that write new files.

use std::path::PathBuf;

use anyhow::Context;
use etcd_tools::defrag::{DefragOptions, defrag as run_defrag};
use etcd_tools::salvage::{SalvageOptions, salvage as run_salvage};

use crate::exit;
use crate::output::{Format, human_bytes, print_structured, print_table, properties, table};

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

/// `salvor etcd salvage`.
pub fn salvage(
    input: PathBuf,
    output: Option<PathBuf>,
    dry_run: bool,
    format: Format,
) -> anyhow::Result<u8> {
    let report = run_salvage(&SalvageOptions {
        input: input.clone(),
        output: output.unwrap_or_default(),
        dry_run,
    })
    .with_context(|| format!("salvaging {}", input.display()))?;
    if !print_structured(format, &report)? {
        let mut rows = vec![
            ("input", report.input.display().to_string()),
            (
                "read from",
                match (report.meta_page, report.root_page) {
                    (Some(m), Some(r)) => format!("meta page {m}, root page {r}"),
                    (None, Some(r)) => {
                        format!("root page {r} (found by scanning; both metas unusable)")
                    }
                    _ => "no root found: only the page scan".to_string(),
                },
            ),
            ("revisions recovered", report.revisions.to_string()),
            ("latest revision", report.latest_revision.to_string()),
            (
                "compacted revision",
                report
                    .compacted_revision
                    .map_or("-".into(), |r| r.to_string()),
            ),
            (
                "unreadable pages",
                report.unreadable_pages.len().to_string(),
            ),
            (
                "damaged records dropped",
                (report.bad_records.len() as u64 + report.bad_records_not_listed).to_string(),
            ),
            (
                "stale records ignored",
                report.stale_records_ignored.to_string(),
            ),
        ];
        for p in &report.meta_problems {
            rows.push(("meta problem", p.clone()));
        }
        if let (Some(out), Some(w)) = (&report.output, &report.written) {
            rows.push((
                "output",
                format!("{} ({})", out.display(), human_bytes(w.size)),
            ));
        }
        print_table(&properties(rows))?;
        let mut t = table(["BUCKET", "ENTRIES", "FROM UNREACHABLE PAGES", "MISSING"]);
        for b in &report.buckets {
            t.add_row(vec![
                b.name.clone(),
                b.entries.to_string(),
                b.from_unreachable_pages.to_string(),
                if b.missing {
                    "yes (written empty)".into()
                } else {
                    String::new()
                },
            ]);
        }
        print_table(&t)?;
        if !report.unreadable_pages.is_empty() {
            let mut t = table(["PAGE", "PARENT", "BUCKET", "PROBLEM"]);
            for p in &report.unreadable_pages {
                t.add_row(vec![
                    p.page.to_string(),
                    p.parent.map_or(String::new(), |x| x.to_string()),
                    p.bucket.clone(),
                    p.problem.clone(),
                ]);
            }
            print_table(&t)?;
        }
        if !report.bad_records.is_empty() {
            let mut t = table(["PAGE", "BUCKET", "REVISION", "PROBLEM"]);
            for r in &report.bad_records {
                t.add_row(vec![
                    r.page.to_string(),
                    r.bucket.clone(),
                    r.revision.map_or(String::new(), |x| x.to_string()),
                    r.problem.clone(),
                ]);
            }
            print_table(&t)?;
        }
        for l in &report.lost {
            if l.certain {
                println!("lost: revisions {}..={}", l.from_revision, l.to_revision);
            } else {
                println!(
                    "possibly lost: revisions {}..={} (below the compaction; some may have been compacted legitimately)",
                    l.from_revision, l.to_revision
                );
            }
        }
        println!(
            "{}",
            if report.complete {
                "nothing was lost"
            } else {
                "some data was lost (listed above); restore the output with `salvor etcd snapshot restore --skip-hash-check`"
            }
        );
        if dry_run {
            println!("dry run: nothing written");
        }
    }
    Ok(if report.complete {
        exit::OK
    } else {
        exit::FINDINGS
    })
}
