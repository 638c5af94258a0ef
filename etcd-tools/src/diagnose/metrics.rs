//! Reading a member's `/metrics` (Prometheus text exposition format) into the
//! few numbers the diagnosis judges: latency percentiles from histograms,
//! leader changes, proposals.
//!
//! The parser is tolerant: lines it cannot read are counted and skipped, never
//! a panic, so a garbled or hostile answer gives missing numbers, not a crash.

use std::collections::BTreeMap;

use serde::Serialize;

/// One sample line: `name{label="value",…} 1.5`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name, e.g. `etcd_disk_wal_fsync_duration_seconds_bucket`.
    pub name: String,
    /// Labels in the order given.
    pub labels: Vec<(String, String)>,
    /// The value (`+Inf`, `-Inf` and `NaN` included).
    pub value: f64,
}

impl Sample {
    /// The value of label `name`, if present.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Every sample of a metrics page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsPage {
    /// The samples, in page order.
    pub samples: Vec<Sample>,
    /// Lines that were neither comments nor readable samples.
    pub unreadable_lines: usize,
}

/// Lines longer than this are not parsed (etcd's are below 300 bytes).
const MAX_LINE: usize = 64 * 1024;

impl MetricsPage {
    /// Parses the text exposition format. Never fails: unreadable lines are counted.
    pub fn parse(text: &str) -> Self {
        let mut page = MetricsPage::default();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match parse_sample(line) {
                Some(sample) if line.len() <= MAX_LINE => page.samples.push(sample),
                _ => page.unreadable_lines += 1,
            }
        }
        page
    }

    /// Samples named `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The sum of every sample named `name` (over all label sets); `None` when absent.
    pub fn sum(&self, name: &str) -> Option<f64> {
        let mut found = false;
        let mut total = 0.0;
        for sample in self.named(name) {
            found = true;
            total += sample.value;
        }
        found.then_some(total)
    }

    /// The histogram `name` (`name_bucket` samples), summed over every label set
    /// except `le`. `None` when absent. Meant for durations and sizes: buckets
    /// with negative bounds are skipped.
    pub fn histogram(&self, name: &str) -> Option<Histogram> {
        self.histograms_by(name, None)
            .into_iter()
            .next()
            .map(|(_, h)| h)
    }

    /// The histogram `name` per value of label `by` (e.g. each peer's round trip).
    pub fn histograms_by_label(&self, name: &str, by: &str) -> BTreeMap<String, Histogram> {
        self.histograms_by(name, Some(by))
    }

    fn histograms_by(&self, name: &str, by: Option<&str>) -> BTreeMap<String, Histogram> {
        let bucket = format!("{name}_bucket");
        let mut groups: BTreeMap<String, BTreeMap<OrderedBound, f64>> = BTreeMap::new();
        for sample in self.named(&bucket) {
            let Some(le) = sample.label("le").and_then(parse_value) else {
                continue;
            };
            // Durations and sizes only: a negative or NaN bound, or a count that
            // is not a finite non-negative number, is damage and skipped.
            if le.is_nan() || le < 0.0 || !sample.value.is_finite() || sample.value < 0.0 {
                continue;
            }
            let group = by
                .map(|label| sample.label(label).unwrap_or_default().to_string())
                .unwrap_or_default();
            *groups
                .entry(group)
                .or_default()
                .entry(OrderedBound(le))
                .or_default() += sample.value;
        }
        groups
            .into_iter()
            .map(|(group, buckets)| {
                let buckets = buckets
                    .into_iter()
                    .map(|(bound, count)| (bound.0, count))
                    .collect();
                (group, Histogram { buckets })
            })
            .collect()
    }
}

/// A cumulative histogram: `(upper bound, observations at or below it)`,
/// bounds increasing, the last one normally `+Inf`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// The buckets.
    pub buckets: Vec<(f64, f64)>,
}

impl Histogram {
    /// Number of observations (the `+Inf` bucket, else the largest count).
    pub fn count(&self) -> f64 {
        self.buckets
            .iter()
            .map(|(_, count)| *count)
            .fold(0.0, f64::max)
    }

    /// The `q` quantile (0..=1) as Prometheus' `histogram_quantile` estimates
    /// it: linear interpolation inside the bucket that holds it; the highest
    /// finite bound when it falls in the `+Inf` bucket. `None` without
    /// observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if !(0.0..=1.0).contains(&q) {
            return None;
        }
        let total = self.count();
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        let mut previous_bound = 0.0;
        let mut previous_count = 0.0;
        for &(bound, count) in &self.buckets {
            // Buckets are cumulative; a smaller count than before is damage: skip it.
            let count = count.max(previous_count);
            if count >= rank {
                if bound.is_infinite() {
                    return Some(previous_bound);
                }
                let in_bucket = count - previous_count;
                if in_bucket <= 0.0 {
                    return Some(bound);
                }
                let lower = if previous_bound > bound {
                    bound
                } else {
                    previous_bound
                };
                return Some(lower + (bound - lower) * (rank - previous_count) / in_bucket);
            }
            if bound.is_finite() {
                previous_bound = bound;
            }
            previous_count = count;
        }
        Some(previous_bound)
    }

    /// Count, p50, p90 and p99 in one value.
    pub fn summary(&self) -> Option<LatencySummary> {
        Some(LatencySummary {
            count: self.count() as u64,
            p50_seconds: self.quantile(0.5)?,
            p90_seconds: self.quantile(0.9)?,
            p99_seconds: self.quantile(0.99)?,
        })
    }
}

/// Percentiles of a latency histogram, since the member started.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySummary {
    /// Number of observations.
    pub count: u64,
    /// Median, seconds.
    pub p50_seconds: f64,
    /// 90th percentile, seconds.
    pub p90_seconds: f64,
    /// 99th percentile, seconds.
    pub p99_seconds: f64,
}

/// A bucket bound ordered as a number (bounds are never NaN here).
#[derive(Debug, Clone, Copy, PartialEq)]
struct OrderedBound(f64);

impl Eq for OrderedBound {}

impl PartialOrd for OrderedBound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedBound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// What the diagnosis reads from one member's `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberMetrics {
    /// `etcd_disk_wal_fsync_duration_seconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_fsync: Option<LatencySummary>,
    /// `etcd_disk_backend_commit_duration_seconds`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend_commit: Option<LatencySummary>,
    /// `etcd_network_peer_round_trip_time_seconds`, per peer member ID.
    pub peer_round_trip: BTreeMap<String, LatencySummary>,
    /// `etcd_server_leader_changes_seen_total`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_changes_seen: Option<f64>,
    /// `etcd_server_proposals_failed_total`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposals_failed: Option<f64>,
    /// `etcd_server_proposals_pending`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proposals_pending: Option<f64>,
    /// `etcd_server_has_leader`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_leader: Option<f64>,
    /// `etcd_server_quota_backend_bytes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota_backend_bytes: Option<f64>,
    /// `process_start_time_seconds`, Unix time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_start_time_seconds: Option<f64>,
    /// Lines of the page that could not be read.
    pub unreadable_lines: usize,
}

impl MemberMetrics {
    /// Extracts the numbers from a parsed page.
    pub fn from_page(page: &MetricsPage) -> Self {
        let finite = |value: Option<f64>| value.filter(|v| v.is_finite());
        MemberMetrics {
            wal_fsync: page
                .histogram("etcd_disk_wal_fsync_duration_seconds")
                .and_then(|h| h.summary()),
            backend_commit: page
                .histogram("etcd_disk_backend_commit_duration_seconds")
                .and_then(|h| h.summary()),
            peer_round_trip: page
                .histograms_by_label("etcd_network_peer_round_trip_time_seconds", "To")
                .into_iter()
                .filter_map(|(peer, h)| Some((peer, h.summary()?)))
                .collect(),
            leader_changes_seen: finite(page.sum("etcd_server_leader_changes_seen_total")),
            proposals_failed: finite(page.sum("etcd_server_proposals_failed_total")),
            proposals_pending: finite(page.sum("etcd_server_proposals_pending")),
            has_leader: finite(page.sum("etcd_server_has_leader")),
            quota_backend_bytes: finite(page.sum("etcd_server_quota_backend_bytes")),
            process_start_time_seconds: finite(page.sum("process_start_time_seconds")),
            unreadable_lines: page.unreadable_lines,
        }
    }

    /// Parses a page and extracts the numbers.
    pub fn parse(text: &str) -> Self {
        Self::from_page(&MetricsPage::parse(text))
    }

    /// Whether the page had any etcd metric at all.
    pub fn is_empty(&self) -> bool {
        self.wal_fsync.is_none()
            && self.backend_commit.is_none()
            && self.leader_changes_seen.is_none()
            && self.proposals_pending.is_none()
            && self.has_leader.is_none()
    }
}

fn parse_value(text: &str) -> Option<f64> {
    match text {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => text.parse().ok(),
    }
}

fn is_name_char(c: char, first: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':' || (!first && c.is_ascii_digit())
}

/// `name{labels} value [timestamp]`.
fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line
        .char_indices()
        .find(|&(i, c)| !is_name_char(c, i == 0))
        .map_or(line.len(), |(i, _)| i);
    if name_end == 0 {
        return None;
    }
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after) = rest.strip_prefix('{') {
        let (parsed, remaining) = parse_labels(after)?;
        labels = parsed;
        rest = remaining;
    }
    let mut fields = rest.split_ascii_whitespace();
    let value = parse_value(fields.next()?)?;
    if let Some(timestamp) = fields.next() {
        timestamp.parse::<i64>().ok()?;
    }
    if fields.next().is_some() {
        return None;
    }
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Parses `a="x",b="y"}` and returns the labels and what follows the `}`.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            return Some((labels, rest));
        }
        let key_end = text.find('=')?;
        let key = text[..key_end].trim();
        if key.is_empty()
            || !key
                .chars()
                .enumerate()
                .all(|(i, c)| is_name_char(c, i == 0))
        {
            return None;
        }
        text = text[key_end + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = text.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                other => value.push(other),
            }
        };
        labels.push((key.to_string(), value));
        text = text[end + 1..].trim_start();
        if let Some(rest) = text.strip_prefix(',') {
            text = rest;
        } else if !text.starts_with('}') {
            return None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"# HELP etcd_disk_wal_fsync_duration_seconds The latency distributions of fsync called by WAL.
# TYPE etcd_disk_wal_fsync_duration_seconds histogram
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.001"} 90
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.002"} 95
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.004"} 99
etcd_disk_wal_fsync_duration_seconds_bucket{le="0.008"} 100
etcd_disk_wal_fsync_duration_seconds_bucket{le="+Inf"} 100
etcd_disk_wal_fsync_duration_seconds_sum 0.1
etcd_disk_wal_fsync_duration_seconds_count 100
etcd_network_peer_round_trip_time_seconds_bucket{To="a",le="0.0001"} 0
etcd_network_peer_round_trip_time_seconds_bucket{To="a",le="0.0002"} 10
etcd_network_peer_round_trip_time_seconds_bucket{To="a",le="+Inf"} 10
etcd_network_peer_round_trip_time_seconds_bucket{To="b",le="0.0001"} 10
etcd_network_peer_round_trip_time_seconds_bucket{To="b",le="+Inf"} 10
etcd_server_leader_changes_seen_total 2
etcd_server_proposals_pending 0
etcd_server_has_leader 1
etcd_server_quota_backend_bytes 2.147483648e+09
"#;

    #[test]
    fn quantiles_interpolate_like_prometheus() {
        let metrics = MemberMetrics::parse(PAGE);
        let wal = metrics.wal_fsync.unwrap();
        assert_eq!(wal.count, 100);
        // rank 50 of 90 in the first bucket [0, 0.001].
        assert!((wal.p50_seconds - 0.001 * 50.0 / 90.0).abs() < 1e-12);
        // rank 99: the end of the [0.002, 0.004] bucket.
        assert!((wal.p99_seconds - 0.004).abs() < 1e-12);
        assert_eq!(metrics.peer_round_trip.len(), 2);
        assert!((metrics.peer_round_trip["a"].p99_seconds - 0.000199).abs() < 1e-9);
        assert_eq!(metrics.leader_changes_seen, Some(2.0));
        assert_eq!(metrics.quota_backend_bytes, Some(2147483648.0));
        assert_eq!(metrics.unreadable_lines, 0);
    }

    #[test]
    fn quantile_in_the_inf_bucket_is_the_highest_bound() {
        let h = Histogram {
            buckets: vec![(0.1, 1.0), (f64::INFINITY, 10.0)],
        };
        assert_eq!(h.quantile(0.99), Some(0.1));
        assert_eq!(Histogram { buckets: vec![] }.quantile(0.5), None);
    }

    /// 20,000 mutated copies of a real-looking page (bytes flipped, inserted,
    /// lines cut): parsing never panics and percentiles stay finite and >= 0.
    #[test]
    fn mutated_pages_never_panic() {
        let mut state: u64 = 0x5eed;
        let mut next = move || {
            // SplitMix64.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let alphabet = b"{}=\",\\\n #e+-.0123456789InfNa_le";
        for _ in 0..20_000 {
            let mut bytes = PAGE.as_bytes().to_vec();
            for _ in 0..(next() % 8 + 1) {
                if bytes.is_empty() {
                    break;
                }
                let at = (next() as usize) % bytes.len();
                match next() % 3 {
                    0 => bytes[at] = alphabet[(next() as usize) % alphabet.len()],
                    1 => bytes.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                    _ => bytes.truncate(at),
                }
            }
            let text = String::from_utf8_lossy(&bytes);
            let metrics = MemberMetrics::parse(&text);
            let summaries = metrics
                .wal_fsync
                .iter()
                .chain(metrics.backend_commit.iter())
                .chain(metrics.peer_round_trip.values());
            for s in summaries {
                for q in [s.p50_seconds, s.p90_seconds, s.p99_seconds] {
                    assert!(q.is_finite() && q >= 0.0, "{q} from {text:?}");
                }
            }
        }
    }

    #[test]
    fn labels_with_escapes() {
        let page = MetricsPage::parse("m{a=\"x\\\"y\",b=\"\\\\\"} 3 1700000000000\n");
        assert_eq!(page.samples.len(), 1);
        assert_eq!(page.samples[0].label("a"), Some("x\"y"));
        assert_eq!(page.samples[0].label("b"), Some("\\"));
    }

    #[test]
    fn garbage_never_panics() {
        let inputs = [
            "{",
            "m{",
            "m{a}",
            "m{a=\"",
            "m{a=\"x\"",
            "m 1 2 3",
            "m abc",
            "é 1",
            "\u{0}\u{ffff}",
            "m{a=\"x\"b=\"y\"} 1",
        ];
        for input in inputs {
            let page = MetricsPage::parse(input);
            assert_eq!(page.samples.len(), 0, "{input:?}");
            let _ = MemberMetrics::from_page(&page);
        }
        // Valid lines with odd bucket bounds: read, then ignored by the histogram.
        let odd = MetricsPage::parse("x_bucket{le=\"NaN\"} 1\nx_bucket{le=\"zz\"} 1\n");
        assert_eq!(odd.samples.len(), 2);
        assert_eq!(odd.histogram("x"), None);
        let mut noisy = String::new();
        for i in 0..2000u32 {
            let c = char::from_u32((i * 7919) % 0x7f).unwrap_or('x');
            noisy.push(c);
            if i % 13 == 0 {
                noisy.push('\n');
            }
        }
        let _ = MemberMetrics::parse(&noisy);
        // Decreasing cumulative counts (damaged) do not panic or go negative.
        let h = Histogram {
            buckets: vec![(0.1, 5.0), (0.2, 3.0), (f64::INFINITY, 4.0)],
        };
        let q = h.quantile(0.99).unwrap();
        assert!(q >= 0.0 && q.is_finite());
    }
}
