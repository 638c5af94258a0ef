//! Output formats shared by every command: `-o table|json|yaml` (`-w` as etcdctl's alias).

use std::io::Write;

use comfy_table::{Cell, ContentArrangement, Table, presets};
use serde::Serialize;

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Human-readable tables.
    #[default]
    Table,
    /// JSON, one document.
    Json,
    /// YAML, one document.
    Yaml,
}

/// Prints `value` as JSON or YAML; returns false for table output (the caller prints).
pub fn print_structured<T: Serialize>(format: Format, value: &T) -> anyhow::Result<bool> {
    let mut out = std::io::stdout().lock();
    match format {
        Format::Table => return Ok(false),
        Format::Json => {
            // Keep I/O errors (a closed pipe) as io::Error so the caller can recognise them.
            serde_json::to_writer_pretty(&mut out, value).map_err(|e| match e.io_error_kind() {
                Some(kind) => anyhow::Error::from(std::io::Error::from(kind)),
                None => anyhow::Error::from(e),
            })?;
            writeln!(out)?;
        }
        Format::Yaml => out.write_all(serde_yaml::to_string(value)?.as_bytes())?,
    }
    Ok(true)
}

/// etcdctl's table style: ASCII borders, a plain `-` rule under the header.
fn etcdctl_preset() -> String {
    presets::ASCII_FULL_CONDENSED.replace('=', "-")
}

/// A table in etcdctl's style.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<Cell>,
{
    let mut t = Table::new();
    t.load_preset(&etcdctl_preset())
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    t
}

/// A two-column property table.
pub fn properties(rows: Vec<(&str, String)>) -> Table {
    let mut t = Table::new();
    t.load_preset(&etcdctl_preset())
        .set_content_arrangement(ContentArrangement::Disabled);
    for (k, v) in rows {
        t.add_row(vec![k.to_string(), v]);
    }
    t
}

/// Bytes as etcdctl prints sizes (`66 kB`, SI units).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "kB", "MB", "GB", "TB", "PB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1000.0 && unit < UNITS.len() - 1 {
        v /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// Prints a table followed by a newline.
pub fn print_table(t: &Table) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{t}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(65536), "65.5 kB");
        assert_eq!(human_bytes(2_000_000_000), "2.0 GB");
    }
}
