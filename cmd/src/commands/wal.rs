//! `salvor etcd wal dump DATA_DIR`.

use std::io::Write;

use anyhow::Context;
use serde::Serialize;
use snapshot_format::wal::{EntryDump, EntryFilter, ReadOptions, Severity, Wal, WalContents};

use crate::cli::WalCommand;
use crate::exit;
use crate::output::Format;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DumpView<'a> {
    #[serde(flatten)]
    contents: &'a WalContents,
    entries: Vec<EntryDump<'a>>,
}

/// Runs one WAL command.
pub fn run(command: WalCommand, format: Format) -> anyhow::Result<u8> {
    let WalCommand::Dump {
        data_dir,
        start_index,
        end_index,
        entry_type,
        raw,
    } = command;
    let wal = Wal::open(&data_dir).with_context(|| data_dir.display().to_string())?;
    let contents = wal.read_all(&ReadOptions {
        keep_going: raw,
        ..Default::default()
    });
    let mut filter = EntryFilter {
        start_index,
        end_index,
        ..Default::default()
    };
    if let Some(types) = &entry_type {
        filter = filter.with_types(types).map_err(anyhow::Error::msg)?;
    }
    let entries = filter.apply(&contents.entries);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    match format {
        Format::Json | Format::Yaml => {
            let view = DumpView {
                contents: &contents,
                entries: entries.collect(),
            };
            if format == Format::Json {
                serde_json::to_writer_pretty(&mut out, &view)?;
                writeln!(out)?;
            } else {
                out.write_all(serde_yaml::to_string(&view)?.as_bytes())?;
            }
        }
        Format::Table => {
            match contents.snapshots.last() {
                Some(s) => writeln!(out, "Snapshot:\nterm={} index={}", s.term, s.index)?,
                None => writeln!(out, "Snapshot:\nempty")?,
            }
            writeln!(out, "WAL metadata:")?;
            let (node, cluster) = contents
                .metadata
                .map_or((0, 0), |m| (m.node_id, m.cluster_id));
            let hs = contents.hard_state.unwrap_or_default();
            writeln!(
                out,
                "nodeID={node:x} clusterID={cluster:x} term={} commitIndex={} vote={:x}",
                hs.term, hs.commit, hs.vote
            )?;
            writeln!(
                out,
                "WAL entries:\nlastIndex={}",
                contents.last_index().unwrap_or(0)
            )?;
            writeln!(out, "term\t     index\ttype\tdata")?;
            let mut shown = 0u64;
            for e in entries {
                writeln!(out, "{e}")?;
                shown += 1;
            }
            writeln!(
                out,
                "\nEntry types ({}) count is : {shown}",
                entry_type.unwrap_or_default()
            )?;
        }
    }
    out.flush()?;
    drop(out);
    for p in &contents.problems {
        eprintln!(
            "{}: {} {} at {} offset {:?}: {}",
            p.code,
            match p.severity {
                Severity::Warning => "warning",
                Severity::Error => "error",
            },
            p.file,
            contents.dir.display(),
            p.offset,
            p.detail
        );
    }
    Ok(if contents.problem_count(Severity::Error) > 0 {
        exit::FINDINGS
    } else {
        exit::OK
    })
}
