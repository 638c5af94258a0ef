//! `salvor etcd objects ls|get|dump|stats FILE`.

use std::io::Write;

use anyhow::Context;
use etcd_tools::objects::{
    self, LabelSelector, ObjectFilter, ObjectView, dump_path, for_each_object, resolve_key,
};

use snapshot_format::k8s::EncryptionConfig;

use crate::cli::{ObjectSelection, ObjectsCommand};
use crate::commands::snapshot::open;
use crate::exit;
use crate::output::{Format, human_bytes, print_structured, print_table, properties, table};

fn encryption(path: Option<&std::path::Path>) -> anyhow::Result<Option<EncryptionConfig>> {
    path.map(|p| EncryptionConfig::from_file(p).map_err(anyhow::Error::from))
        .transpose()
}

fn filter(select: &ObjectSelection) -> anyhow::Result<ObjectFilter> {
    Ok(ObjectFilter {
        encryption: encryption(select.encryption_config.as_deref())?.map(std::sync::Arc::new),
        prefix: select.etcd_prefix.clone(),
        resource: select.resource.clone(),
        namespace: select.namespace.clone(),
        name: select.name.clone(),
        labels: match &select.selector {
            Some(s) => LabelSelector::parse(s).map_err(objects::ObjectsError::from)?,
            None => LabelSelector::default(),
        },
        revision: select.rev,
    })
}

fn print_object(format: Format, view: &ObjectView) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match (&view.object, format) {
        (Some(obj), Format::Json) => writeln!(out, "{}", serde_json::to_string_pretty(obj)?)?,
        (Some(obj), _) => out.write_all(serde_yaml::to_string(obj)?.as_bytes())?,
        (None, _) => {}
    }
    if let Some(e) = &view.row.error {
        eprintln!("{}: cannot decode: {e}", view.row.key);
    }
    for issue in &view.row.issues {
        eprintln!("{}: {issue}", view.row.key);
    }
    Ok(())
}

/// Runs one objects command.
pub fn run(command: ObjectsCommand, format: Format) -> anyhow::Result<u8> {
    match command {
        ObjectsCommand::Ls { read, select } => {
            let snap = open(&read)?;
            let list = objects::list(&snap, &filter(&select)?)
                .with_context(|| read.file.display().to_string())?;
            if !print_structured(format, &list)? {
                let mut t = table([
                    "NAMESPACE",
                    "RESOURCE",
                    "NAME",
                    "KIND",
                    "ENCODING",
                    "SIZE",
                    "REV",
                    "PROBLEM",
                ]);
                for o in &list.objects {
                    let resource = objects::qualified_resource(&o.group, &o.resource);
                    let encoding = match &o.encoding {
                        objects::Encoding::Encrypted { provider, key } => {
                            format!("{provider}:{key}")
                        }
                        other => format!("{other:?}").to_lowercase(),
                    };
                    let problem = o.error.clone().or_else(|| {
                        (!o.issues.is_empty()).then(|| format!("{} issues", o.issues.len()))
                    });
                    t.add_row(vec![
                        o.namespace.clone().unwrap_or_default(),
                        resource,
                        o.name.clone(),
                        o.kind.clone().unwrap_or_default(),
                        encoding,
                        o.bytes.to_string(),
                        o.mod_revision.to_string(),
                        problem.unwrap_or_default(),
                    ]);
                }
                print_table(&t)?;
                eprintln!(
                    "{} objects at revision {} ({} not decodable)",
                    list.objects.len(),
                    list.revision,
                    list.failed
                );
            }
        }
        ObjectsCommand::Get {
            read,
            key,
            rev,
            history,
            etcd_prefix,
            encryption_config,
        } => {
            let encryption = encryption(encryption_config.as_deref())?;
            let snap = open(&read)?;
            let storage_key = resolve_key(&key, &etcd_prefix)?;
            let got = objects::get(
                &snap,
                &storage_key,
                &etcd_prefix,
                rev,
                history,
                encryption.as_ref(),
            )
            .with_context(|| read.file.display().to_string())?;
            if history {
                if !print_structured(format, &got)? {
                    for h in &got.history {
                        println!(
                            "# revision {}{}",
                            h.revision,
                            if h.deleted { " (deleted)" } else { "" }
                        );
                        if let Some(v) = &h.object {
                            print_object(Format::Yaml, v)?;
                        }
                        println!("---");
                    }
                }
            } else {
                match &got.current {
                    Some(view) => print_object(format, view)?,
                    None => anyhow::bail!(
                        "{storage_key} does not exist at revision {rev} (it has history: use --history)"
                    ),
                }
            }
        }
        ObjectsCommand::Dump { read, select, dir } => {
            let snap = open(&read)?;
            let filter = filter(&select)?;
            let (mut written, mut failed) = (0u64, 0u64);
            let ext = if format == Format::Json {
                "json"
            } else {
                "yaml"
            };
            let mut out = std::io::stdout().lock();
            for_each_object(&snap, &filter, |view| {
                let Some(obj) = &view.object else {
                    failed += 1;
                    eprintln!(
                        "{}: skipped: {}",
                        view.row.key,
                        view.row.error.clone().unwrap_or_default()
                    );
                    return Ok(());
                };
                let text = if ext == "json" {
                    serde_json::to_string(obj).map(|s| s + "\n")
                } else {
                    serde_yaml::to_string(obj)
                        .map_err(|e| serde_json::Error::io(std::io::Error::other(e)))
                }
                .map_err(|e| objects::ObjectsError::Write {
                    path: "stdout".into(),
                    source: std::io::Error::other(e),
                })?;
                match &dir {
                    Some(dir) => {
                        let path = dump_path(dir, &view.row, ext);
                        let write = || -> std::io::Result<()> {
                            if let Some(parent) = path.parent() {
                                std::fs::create_dir_all(parent)?;
                            }
                            std::fs::write(&path, text.as_bytes())
                        };
                        write().map_err(|source| objects::ObjectsError::Write {
                            path: path.clone(),
                            source,
                        })?;
                    }
                    None => {
                        let doc = if ext == "yaml" {
                            format!("---\n{text}")
                        } else {
                            text
                        };
                        out.write_all(doc.as_bytes()).map_err(|source| {
                            objects::ObjectsError::Write {
                                path: "stdout".into(),
                                source,
                            }
                        })?;
                    }
                }
                written += 1;
                Ok(())
            })
            .with_context(|| read.file.display().to_string())?;
            eprintln!("{written} objects written, {failed} could not be decoded");
            if failed > 0 {
                return Ok(exit::ERROR);
            }
        }
        ObjectsCommand::Stats {
            read,
            top,
            etcd_prefix,
        } => {
            let snap = open(&read)?;
            let stats = objects::stats(&snap, &etcd_prefix, top)
                .with_context(|| read.file.display().to_string())?;
            if !print_structured(format, &stats)? {
                print_table(&properties(vec![
                    ("Objects", stats.objects.to_string()),
                    ("Bytes of live objects", human_bytes(stats.live_bytes)),
                    ("Bytes with history", human_bytes(stats.all_bytes)),
                    (
                        "History share",
                        format!("{:.1}%", stats.history_share * 100.0),
                    ),
                    ("Database size", human_bytes(stats.database_bytes)),
                ]))?;
                for (title, rows) in [
                    ("RESOURCE", &stats.resources),
                    ("NAMESPACE", &stats.namespaces),
                ] {
                    let mut t = table([title, "OBJECTS", "LIVE BYTES", "WITH HISTORY"]);
                    for g in rows.iter().take(top) {
                        t.add_row(vec![
                            g.name.clone(),
                            g.objects.to_string(),
                            human_bytes(g.live_bytes),
                            human_bytes(g.all_bytes),
                        ]);
                    }
                    print_table(&t)?;
                }
                let mut t = table(["LARGEST OBJECTS", "BYTES"]);
                for k in &stats.largest {
                    t.add_row(vec![k.key.clone(), human_bytes(k.bytes)]);
                }
                print_table(&t)?;
                let mut t = table(["MOST REVISIONS", "REVISIONS"]);
                for k in &stats.most_revisions {
                    t.add_row(vec![k.key.clone(), k.revisions.to_string()]);
                }
                print_table(&t)?;
            }
        }
    }
    Ok(exit::OK)
}
