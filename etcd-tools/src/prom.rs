//! Prometheus text exposition (format 0.0.4): the writer behind `salvor server`'s
//! `/metrics`, and metrics files for jobs that run unattended (`snapshot save` and
//! `backup create` from cron), written atomically for node_exporter's textfile
//! collector.

use std::fmt::Write as _;
use std::path::Path;

/// The `Content-Type` of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value (`\`, `"`, newline).
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A Prometheus number: `+Inf`, `-Inf`, `NaN` or Rust's shortest round-trip form.
pub fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value == f64::INFINITY {
        "+Inf".to_string()
    } else if value == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{value}")
    }
}

/// One sample: its labels and value.
pub type Sample<'a> = (Vec<(&'a str, String)>, f64);

/// Writes metric families one at a time (all samples of a family together).
#[derive(Debug, Default)]
pub struct Writer {
    out: String,
}

impl Writer {
    /// An empty page.
    pub fn new() -> Writer {
        Writer::default()
    }

    /// A family: HELP, TYPE, then its samples.
    pub fn family(&mut self, name: &str, kind: &str, help: &str, samples: &[Sample<'_>]) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = write!(self.out, "{name}");
            if !labels.is_empty() {
                let text = labels
                    .iter()
                    .map(|(key, value)| format!("{key}=\"{}\"", escape(value)))
                    .collect::<Vec<_>>()
                    .join(",");
                let _ = write!(self.out, "{{{text}}}");
            }
            let _ = writeln!(self.out, " {}", number(*value));
        }
    }

    /// A gauge without labels.
    pub fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, "gauge", help, &[(Vec::new(), value)]);
    }

    /// The page.
    pub fn finish(self) -> String {
        self.out
    }
}

/// One run of an unattended job, for its metrics file.
#[derive(Debug, Clone)]
pub struct JobRun<'a> {
    /// Metric name prefix after `salvor_`: `snapshot_save`, `backup`.
    pub job: &'a str,
    /// Labels of every sample (what was saved where).
    pub labels: Vec<(&'a str, String)>,
    /// Whether the run succeeded.
    pub success: bool,
    /// Unix time the run ended.
    pub finished_unix_seconds: f64,
    /// Its wall time.
    pub duration_seconds: f64,
    /// What the run measured: metric suffix, help, value (absent when unknown).
    pub values: Vec<(&'a str, &'a str, f64)>,
}

/// The value of `name` in an earlier page written by [`render_job`] (the first sample).
fn previous_value(previous: &str, name: &str) -> Option<f64> {
    previous.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = match rest.chars().next()? {
            '{' => &rest[rest.find('}')? + 1..],
            ' ' => rest,
            _ => return None,
        };
        rest.trim().parse().ok()
    })
}

/// The metrics of a job run. `previous` is the page the last run wrote: a failed run
/// keeps the last success's time from it, so that an alert on "no success for a day"
/// keeps working through failures.
pub fn render_job(run: &JobRun<'_>, previous: Option<&str>) -> String {
    let job = run.job;
    let mut w = Writer::new();
    let labels = || run.labels.clone();
    let last_success = if run.success {
        Some(run.finished_unix_seconds)
    } else {
        previous.and_then(|p| {
            previous_value(p, &format!("salvor_{job}_last_success_timestamp_seconds"))
        })
    };
    w.family(
        &format!("salvor_{job}_last_run_success"),
        "gauge",
        "1 when the last run succeeded, 0 when it failed.",
        &[(labels(), f64::from(u8::from(run.success)))],
    );
    w.family(
        &format!("salvor_{job}_last_run_timestamp_seconds"),
        "gauge",
        "Unix time the last run ended.",
        &[(labels(), run.finished_unix_seconds)],
    );
    w.family(
        &format!("salvor_{job}_last_success_timestamp_seconds"),
        "gauge",
        "Unix time the last successful run ended (0: none recorded).",
        &[(labels(), last_success.unwrap_or(0.0))],
    );
    w.family(
        &format!("salvor_{job}_last_run_duration_seconds"),
        "gauge",
        "Wall time of the last run.",
        &[(labels(), run.duration_seconds)],
    );
    for (suffix, help, value) in &run.values {
        w.family(
            &format!("salvor_{job}_{suffix}"),
            "gauge",
            help,
            &[(labels(), *value)],
        );
    }
    w.finish()
}

/// Writes a job's metrics to `path` atomically (a temporary file in the same
/// directory, renamed), as the textfile collector requires, reading the previous page
/// from it first.
pub fn write_job_file(path: &Path, run: &JobRun<'_>) -> std::io::Result<()> {
    let previous = std::fs::read_to_string(path).ok();
    let page = render_job(run, previous.as_deref());
    let tmp = crate::fsutil::with_suffix(path, ".tmp");
    std::fs::write(&tmp, page)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(number(f64::INFINITY), "+Inf");
        assert_eq!(number(0.5), "0.5");
    }

    #[test]
    fn a_failed_run_keeps_the_last_success_time() {
        let mut run = JobRun {
            job: "backup",
            labels: vec![("backup", "nightly \"a\"".into())],
            success: true,
            finished_unix_seconds: 1000.0,
            duration_seconds: 2.5,
            values: vec![("objects", "Objects stored.", 42.0)],
        };
        let first = render_job(&run, None);
        assert!(first.contains("salvor_backup_objects{backup=\"nightly \\\"a\\\"\"} 42\n"));
        assert!(first.contains(
            "salvor_backup_last_success_timestamp_seconds{backup=\"nightly \\\"a\\\"\"} 1000\n"
        ));
        run.success = false;
        run.finished_unix_seconds = 2000.0;
        let second = render_job(&run, Some(&first));
        assert!(
            second.contains("salvor_backup_last_run_success{backup=\"nightly \\\"a\\\"\"} 0\n")
        );
        assert!(second.contains(
            "salvor_backup_last_success_timestamp_seconds{backup=\"nightly \\\"a\\\"\"} 1000\n"
        ));
        assert!(
            render_job(&run, None)
                .contains("last_success_timestamp_seconds{backup=\"nightly \\\"a\\\"\"} 0\n")
        );
    }
}
