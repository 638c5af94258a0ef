//! `salvor etcd recover plan|apply`.

use std::collections::BTreeMap;

use anyhow::Context;
use etcd_tools::recover::{ApplyOptions, PlanOptions, RecoveryPlan, apply, plan};

use crate::cli::RecoverCommand;
use crate::exit;
use crate::output::{Format, print_structured, print_table, table};

/// Runs one recover command.
pub fn run(command: RecoverCommand, format: Format) -> anyhow::Result<u8> {
    match command {
        RecoverCommand::Plan {
            data_dirs,
            recovered_data_dir,
            member_data_dirs,
        } => {
            let p = plan(&PlanOptions {
                data_dirs,
                recovered_data_dir,
                member_data_dirs: member_data_dirs.into_iter().collect::<BTreeMap<_, _>>(),
            })?;
            if !print_structured(format, &p)? {
                print_plan(&p)?;
            }
            Ok(exit::OK)
        }
        RecoverCommand::Apply {
            plan: plan_path,
            state,
            dry_run,
            wait,
            security,
        } => {
            let bytes = std::fs::read(&plan_path)
                .with_context(|| format!("reading {}", plan_path.display()))?;
            let p: RecoveryPlan = serde_json::from_slice(&bytes).with_context(|| {
                format!(
                    "{} is not a plan written by `salvor etcd recover plan -o json`",
                    plan_path.display()
                )
            })?;
            let https = p
                .members
                .iter()
                .any(|m| m.client_urls.iter().any(|u| u.starts_with("https://")));
            let state = state.unwrap_or_else(|| {
                let mut n = plan_path.as_os_str().to_os_string();
                n.push(".state");
                n.into()
            });
            let opts = ApplyOptions {
                state,
                dry_run,
                wait,
                connect: super::conn::security_options(&security, https)?,
            };
            let table_output = format == Format::Table;
            let report = super::conn::runtime()?.block_on(apply(&p, &opts, &|o| {
                if table_output {
                    println!("[{}/{}] {}: {}", o.index, p.steps.len(), o.status, o.detail);
                }
            }))?;
            print_structured(format, &report)?;
            if let Some(w) = &report.waiting_for {
                if table_output {
                    println!(
                        "waiting for the operator: {}\nstart it, then run `salvor etcd recover apply --plan {}` again",
                        w.step.describe(),
                        plan_path.display()
                    );
                }
                return Ok(exit::UNREACHABLE);
            }
            if table_output && report.complete {
                println!("recovery complete");
            }
            Ok(exit::OK)
        }
    }
}

fn print_plan(p: &RecoveryPlan) -> anyhow::Result<()> {
    let mut t = table([
        "DATA DIR",
        "MEMBER",
        "ID",
        "COMMIT",
        "LAST INDEX",
        "REVISION",
        "USABLE",
        "NOTES",
    ]);
    for c in &p.candidates {
        t.add_row(vec![
            c.data_dir.display().to_string(),
            c.name.clone().unwrap_or_default(),
            c.member_id.clone().unwrap_or_default(),
            c.commit_index.map_or("-".into(), |v| v.to_string()),
            c.last_index.map_or("-".into(), |v| v.to_string()),
            c.revision.map_or("-".into(), |v| v.to_string()),
            if c.usable { "yes".into() } else { "no".into() },
            c.problems.join("; "),
        ]);
    }
    print_table(&t)?;
    println!(
        "recover from {} (cluster {}):",
        p.source.display(),
        p.cluster_id
    );
    for r in &p.reasons {
        println!("  - {r}");
    }
    println!("steps:");
    for (i, s) in p.steps.iter().enumerate() {
        println!("  {}. {}", i + 1, s.describe());
    }
    Ok(())
}
