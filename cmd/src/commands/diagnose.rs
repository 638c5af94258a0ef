//! `salvor etcd diagnose`: one report of a live cluster's health.

use std::collections::BTreeMap;

use clap::Args;
use etcd_tools::diagnose::{DiagnoseOptions, DiagnosisReport, Severity, diagnose};

use crate::cli::EtcdConnArgs;
use crate::exit;
use crate::output::{Format, human_bytes, print_structured, print_table, table};

/// `salvor etcd diagnose` flags.
#[derive(Debug, Args)]
pub struct DiagnoseArgs {
    #[command(flatten)]
    pub connect: EtcdConnArgs,
    /// Discover every member from the endpoints' member list and diagnose them all.
    #[arg(long)]
    pub cluster: bool,
    /// Do not fetch the members' /metrics (disk and network latency are then not judged).
    #[arg(long)]
    pub no_metrics: bool,
    /// Do not compare HashKV across members.
    #[arg(long)]
    pub no_hashkv: bool,
    /// Also list info findings in the table (JSON and YAML always include them).
    #[arg(long)]
    pub all: bool,
}

impl DiagnoseArgs {
    /// The library's options from the flags.
    pub fn options(&self) -> anyhow::Result<DiagnoseOptions> {
        let mut options = DiagnoseOptions::new(self.connect.endpoints.clone());
        options.cluster = self.cluster;
        options.connect = super::conn::connect_options(&self.connect)?;
        options.metrics = !self.no_metrics;
        options.hash_kv = !self.no_hashkv;
        Ok(options)
    }
}

/// A small runtime for the one-shot commands.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// Runs the diagnosis and prints it. Exit code 4 when no member answered, 3 when
/// any finding is an error.
pub fn run(args: &DiagnoseArgs, format: Format) -> anyhow::Result<u8> {
    let options = args.options()?;
    let report = runtime()?.block_on(diagnose(&options));
    if !print_structured(format, &report)? {
        print_report(&report, args.all)?;
    }
    Ok(exit_code(&report))
}

/// 4 when nothing answered, 3 with an error finding, else 0.
pub fn exit_code(report: &DiagnosisReport) -> u8 {
    if report.reachable == 0 {
        exit::UNREACHABLE
    } else if report.is_healthy() {
        exit::OK
    } else {
        exit::FINDINGS
    }
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |ms| format!("{ms:.1} ms"))
}

fn print_report(report: &DiagnosisReport, all: bool) -> anyhow::Result<()> {
    let mut members = table([
        "ENDPOINT",
        "NAME",
        "ID",
        "STATUS",
        "VERSION",
        "DB SIZE",
        "IN USE",
        "LEADER",
        "TERM",
        "INDEX",
        "APPLIED",
        "STATUS RTT",
        "LIN READ",
        "SER READ",
    ]);
    for m in &report.members {
        let mut row = vec![
            m.endpoint.clone(),
            m.name.clone().unwrap_or_default(),
            m.id.clone().unwrap_or_default(),
        ];
        match &m.status {
            Some(s) => row.extend([
                "ok".to_string(),
                s.version.clone(),
                human_bytes(s.db_size.max(0) as u64),
                human_bytes(s.db_size_in_use.max(0) as u64),
                (m.id.as_deref() == Some(s.leader.as_str())).to_string(),
                s.raft_term.to_string(),
                s.raft_index.to_string(),
                s.raft_applied_index.to_string(),
            ]),
            None => {
                row.push("unreachable".to_string());
                row.extend(std::iter::repeat_n("-".to_string(), 7));
            }
        }
        row.extend([
            ms(m.status_ms),
            ms(m.linearizable_read_ms),
            ms(m.serializable_read_ms),
        ]);
        members.add_row(row);
    }
    print_table(&members)?;

    let shown: Vec<_> = report
        .findings
        .iter()
        .filter(|f| all || f.severity > Severity::Info)
        .collect();
    if !shown.is_empty() {
        let mut findings = table(["SEVERITY", "CODE", "MEMBER", "EVIDENCE"]);
        for f in &shown {
            findings.add_row(vec![
                format!("{:?}", f.severity).to_lowercase(),
                f.code.to_string(),
                f.member.clone().unwrap_or_else(|| "(cluster)".to_string()),
                f.evidence.clone(),
            ]);
        }
        print_table(&findings)?;
        let mut advice: BTreeMap<String, (&str, &str)> = BTreeMap::new();
        for f in &shown {
            advice
                .entry(f.code.to_string())
                .or_insert((f.meaning, f.remedy));
        }
        for (code, (meaning, remedy)) in advice {
            println!("{code}: {meaning}.\n  what to do: {remedy}.");
        }
    }
    let errors = report.count(Severity::Error);
    println!(
        "cluster {}: {} of {} members answered{}; {} errors, {} warnings; in {:.0} ms",
        report.cluster_id.as_deref().unwrap_or("?"),
        report.reachable,
        report.members.len(),
        report.hash_kv.as_ref().map_or(String::new(), |h| format!(
            "; HashKV at revision {} {}",
            h.revision,
            if h.consistent { "agrees" } else { "DIFFERS" }
        )),
        errors,
        report.count(Severity::Warning) - errors,
        report.elapsed_ms,
    );
    Ok(())
}
