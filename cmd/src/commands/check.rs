//! `salvor etcd check PATH`.

use std::collections::BTreeMap;
use std::path::Path;

use etcd_tools::check::{Severity, check_path};

use crate::exit;
use crate::output::{Format, print_structured, print_table, table};

/// Runs the check and prints the findings; exit code 3 when any is an error.
pub fn run(path: &Path, all: bool, format: Format) -> anyhow::Result<u8> {
    let report = check_path(path);
    if !print_structured(format, &report)? {
        let shown: Vec<_> = report
            .findings
            .iter()
            .filter(|f| all || f.severity > Severity::Info)
            .collect();
        let mut t = table(["SEVERITY", "CODE", "LOCATION", "FOUND"]);
        for f in &shown {
            t.add_row(vec![
                format!("{:?}", f.severity).to_lowercase(),
                f.code.clone(),
                f.location.display(),
                f.message.clone(),
            ]);
        }
        if !shown.is_empty() {
            print_table(&t)?;
        }
        // What it means and what to do, once per code.
        let mut advice: BTreeMap<&str, (&str, &str)> = BTreeMap::new();
        for f in &shown {
            advice.entry(&f.code).or_insert((&f.meaning, &f.remedy));
        }
        for (code, (meaning, remedy)) in advice {
            println!("{code}: {meaning}.\n  what to do: {remedy}.");
        }
        let stats = report.bbolt.as_ref();
        let mvcc = report.mvcc.as_ref();
        println!(
            "{}: {} errors, {} warnings{}{}",
            report.path.display(),
            report.count(Severity::Error),
            report.count(Severity::Warning) - report.count(Severity::Error),
            stats.map_or(String::new(), |s| format!(
                "; {} pages reachable of {}, {} entries",
                s.reachable_pages, s.high_water_mark, s.entries
            )),
            mvcc.map_or(String::new(), |m| format!(
                ", {} key revisions",
                m.revisions
            )),
        );
    }
    Ok(if report.is_clean() {
        exit::OK
    } else {
        exit::FINDINGS
    })
}
