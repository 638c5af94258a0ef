//! `salvor etcd snapshot status|ls|get|history|stats`: offline, read-only.

use std::io::Write;

use anyhow::Context;
use etcd_tools::view::{Bytes, HistoryView, KvView};
use serde::Serialize;
use snapshot_format::etcd::{OpenOptions, RangeQuery, Snapshot, SnapshotStatus, StatusOptions};

use crate::cli::{ReadArgs, SnapshotCommand};
use crate::exit;
use crate::output::{Format, human_bytes, print_structured, print_table, properties, table};

/// Widest value shown in a table cell.
const CELL_WIDTH: usize = 80;

/// Opens the file named on the command line, refusing a damaged meta page unless allowed.
pub fn open(read: &ReadArgs) -> anyhow::Result<Snapshot> {
    let opts = OpenOptions {
        source: read.read_mode.into(),
        verify_trailer: read.verify,
        ..Default::default()
    };
    let snap =
        Snapshot::open(&read.file, &opts).with_context(|| read.file.display().to_string())?;
    for (page, slot) in snap.db().metas().iter().enumerate() {
        if let Err(problem) = slot {
            let active = snap.db().meta();
            let damage = format!(
                "{}: meta page {page} is damaged: {problem}; meta page {} is valid (txid {})",
                read.file.display(),
                active.page,
                active.txid
            );
            if !read.allow_bad_meta {
                anyhow::bail!(
                    "{damage}. The file can be read from the surviving meta page with \
                     --allow-bad-meta (a crash can tear the newest meta page: the last \
                     transaction may be missing)"
                );
            }
            tracing::warn!("{damage}: reading from meta page {}", active.page);
        }
    }
    Ok(snap)
}

/// Runs one snapshot command.
pub fn run(command: SnapshotCommand, format: Format) -> anyhow::Result<u8> {
    match command {
        SnapshotCommand::Restore(args) => return super::restore::run(args, format),
        SnapshotCommand::Save {
            conn,
            dest,
            s3,
            metrics,
        } => {
            return super::save::run(&conn, &dest, &s3, &metrics, format);
        }
        SnapshotCommand::Status {
            read,
            prefix_depth,
            top,
        } => {
            let snap = open(&read)?;
            let status = snap
                .status(&StatusOptions { prefix_depth })
                .with_context(|| read.file.display().to_string())?;
            if !print_structured(format, &status)? {
                print_status(&status, top)?;
            }
        }
        SnapshotCommand::Ls {
            read,
            prefix,
            rev,
            keys_only,
            values,
            limit,
        } => {
            let snap = open(&read)?;
            let mut q = RangeQuery::prefix(prefix.as_bytes());
            q.revision = rev;
            q.limit = limit;
            q.keys_only = !values;
            let result = snap
                .range(&q)
                .with_context(|| read.file.display().to_string())?;
            print_range(format, &result, values, keys_only)?;
        }
        SnapshotCommand::Get {
            read,
            key,
            rev,
            prefix,
            print_value_only,
        } => {
            let snap = open(&read)?;
            let mut q = if prefix {
                RangeQuery::prefix(key.as_bytes())
            } else {
                RangeQuery::single(key.as_bytes())
            };
            q.revision = rev;
            let result = snap
                .range(&q)
                .with_context(|| read.file.display().to_string())?;
            if print_value_only {
                let mut out = std::io::stdout().lock();
                for e in &result.kvs {
                    out.write_all(&e.kv.value)?;
                    writeln!(out)?;
                }
            } else {
                print_range(format, &result, true, false)?;
            }
        }
        SnapshotCommand::History { read, key, values } => {
            let snap = open(&read)?;
            let history = snap
                .history(key.as_bytes())
                .with_context(|| read.file.display().to_string())?;
            let views: Vec<HistoryView> = history
                .iter()
                .map(|h| HistoryView::new(h, values))
                .collect();
            if !print_structured(format, &views)? {
                let mut header = vec![
                    "REVISION",
                    "EVENT",
                    "CREATE REV",
                    "VERSION",
                    "LEASE",
                    "SIZE",
                ];
                if values {
                    header.push("VALUE");
                }
                let mut t = table(header);
                for v in &views {
                    let mut row = vec![
                        format!("{}.{}", v.revision, v.sub_revision),
                        format!("{:?}", v.event).to_uppercase(),
                        v.kv.create_revision.to_string(),
                        v.kv.version.to_string(),
                        format!("{:x}", v.kv.lease),
                        v.kv.value_size.to_string(),
                    ];
                    if let Some(val) = &v.kv.value {
                        row.push(val.display(CELL_WIDTH));
                    }
                    t.add_row(row);
                }
                print_table(&t)?;
                if views.is_empty() {
                    eprintln!("no revision of {key:?} in this file");
                }
            }
        }
        SnapshotCommand::Stats {
            read,
            top,
            prefix_depth,
        } => {
            let snap = open(&read)?;
            let stats = snap
                .key_stats(top, prefix_depth)
                .with_context(|| read.file.display().to_string())?;
            if !print_structured(format, &stats)? {
                print_table(&properties(vec![
                    ("Revisions", stats.revisions.to_string()),
                    ("Keys", stats.keys.to_string()),
                    ("Live keys", stats.live_keys.to_string()),
                    ("Bytes (all revisions)", human_bytes(stats.bytes)),
                    ("Bytes (live values)", human_bytes(stats.live_bytes)),
                ]))?;
                let mut t = table(["LARGEST KEYS", "VALUE BYTES", "MOD REV"]);
                for k in &stats.largest {
                    t.add_row(vec![
                        k.key.clone(),
                        k.value_bytes.to_string(),
                        k.mod_revision.to_string(),
                    ]);
                }
                print_table(&t)?;
                let mut t = table(["MOST REVISIONS", "REVISIONS", "BYTES"]);
                for k in &stats.most_revisions {
                    t.add_row(vec![
                        k.key.clone(),
                        k.revisions.to_string(),
                        human_bytes(k.bytes),
                    ]);
                }
                print_table(&t)?;
                let mut t = table(["PREFIX", "LIVE KEYS", "LIVE BYTES", "REVISIONS", "BYTES"]);
                for p in stats.prefixes.iter().take(top) {
                    t.add_row(vec![
                        p.prefix.clone(),
                        p.live_keys.to_string(),
                        human_bytes(p.live_bytes),
                        p.revisions.to_string(),
                        human_bytes(p.bytes),
                    ]);
                }
                print_table(&t)?;
            }
        }
    }
    Ok(exit::OK)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RangeView {
    header_revision: i64,
    revision: i64,
    count: usize,
    more: bool,
    kvs: Vec<KvView>,
}

fn print_range(
    format: Format,
    result: &snapshot_format::etcd::RangeResult,
    values: bool,
    keys_only: bool,
) -> anyhow::Result<()> {
    let view = RangeView {
        header_revision: result.header_revision,
        revision: result.revision,
        count: result.count,
        more: result.more,
        kvs: result
            .kvs
            .iter()
            .map(|e| KvView::with_size(&e.kv, e.value_size, values))
            .collect(),
    };
    if print_structured(format, &view)? {
        return Ok(());
    }
    if keys_only {
        let mut out = std::io::stdout().lock();
        for kv in &view.kvs {
            writeln!(out, "{}", kv.key.display(usize::MAX))?;
        }
        return Ok(());
    }
    let mut header = vec!["KEY", "CREATE REV", "MOD REV", "VERSION", "LEASE", "SIZE"];
    if values {
        header.push("VALUE");
    }
    let mut t = table(header);
    for kv in &view.kvs {
        let mut row = vec![
            kv.key.display(usize::MAX),
            kv.create_revision.to_string(),
            kv.mod_revision.to_string(),
            kv.version.to_string(),
            format!("{:x}", kv.lease),
            kv.value_size.to_string(),
        ];
        if let Some(v) = &kv.value {
            row.push(v.display(CELL_WIDTH));
        }
        t.add_row(row);
    }
    print_table(&t)?;
    let more = if view.more {
        " (more keys beyond --limit)"
    } else {
        ""
    };
    eprintln!("{} keys at revision {}{more}", view.count, view.revision);
    Ok(())
}

fn print_status(s: &SnapshotStatus, top: usize) -> anyhow::Result<()> {
    let mut t = table(["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"]);
    t.add_row(vec![
        format!("{:x}", s.hash),
        s.revision.to_string(),
        s.total_key.to_string(),
        human_bytes(s.total_size),
    ]);
    print_table(&t)?;
    let opt = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    let optu = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
    print_table(&properties(vec![
        ("Kind", format!("{:?}", s.kind)),
        (
            "File size",
            format!("{} ({} bytes)", human_bytes(s.file_size), s.file_size),
        ),
        (
            "sha256 trailer",
            if s.sha256_trailer {
                "present (not verified)"
            } else {
                "none"
            }
            .into(),
        ),
        ("Page size", s.page_size.to_string()),
        ("Transaction id", s.txid.to_string()),
        ("Consistent index", optu(s.consistent_index)),
        ("Raft term", optu(s.term)),
        ("Compacted revision", opt(s.compacted_revision)),
        ("Scheduled compaction", opt(s.scheduled_compact_revision)),
        ("Oldest revision", opt(s.oldest_revision)),
        (
            "Key revisions",
            format!("{} ({} deletes)", s.key_revisions, s.tombstones),
        ),
        (
            "Cluster version",
            s.cluster_version.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Leases", s.leases.to_string()),
        (
            "Alarms",
            if s.alarms.is_empty() {
                "none".into()
            } else {
                s.alarms.join(", ")
            },
        ),
        (
            "Auth",
            if s.auth_enabled {
                "enabled"
            } else {
                "disabled"
            }
            .into(),
        ),
        (
            "Pages",
            format!(
                "{} in use, {} reachable, {} free ({:.1}%)",
                s.high_water_mark,
                s.reachable_pages,
                s.free_pages,
                s.free_page_ratio * 100.0
            ),
        ),
    ]))?;
    if !s.members.is_empty() {
        let mut t = table(["MEMBER ID", "NAME", "PEER URLS", "CLIENT URLS", "LEARNER"]);
        for m in &s.members {
            t.add_row(vec![
                format!("{:x}", m.id),
                m.name.clone(),
                m.peer_urls.join(","),
                m.client_urls.join(","),
                m.is_learner.to_string(),
            ]);
        }
        print_table(&t)?;
    }
    let mut t = table(["PREFIX", "REVISIONS", "DELETES", "BYTES"]);
    for p in s.prefixes.iter().take(top) {
        t.add_row(vec![
            Bytes(p.prefix.as_bytes().to_vec()).display(CELL_WIDTH),
            p.revisions.to_string(),
            p.tombstones.to_string(),
            human_bytes(p.bytes),
        ]);
    }
    if s.prefixes.len() > top {
        t.add_row(vec![format!("… {} more (--top)", s.prefixes.len() - top)]);
    }
    print_table(&t)?;
    Ok(())
}
