//! Decoding throughput of the Kubernetes storage codec on one core, over the real API
//! server fixtures repeated: `cargo run --release -p snapshot-format --example
//! k8s_decode_bench [-- SECONDS [DIR [decode|text|encode]]]`.
//!
//! Reports objects/s and MB/s of stored bytes for decoding (protobuf → the API's JSON as a
//! `serde_json::Value`), and for decoding plus printing the JSON, and encoding.
//!
//! DIR may also be an etcd snapshot file: then the values are every live object under
//! `/registry/` in it (the acceptance measure of the codec: a snapshot of 100k+ stored
//! objects). Encrypted and undecodable values are left out.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use snapshot_format::k8s::{Codec, StoredObject};

// The salvor binary's allocator, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let seconds: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(3.0);
    let dir = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testenv/fixtures/k8s-protobuf")
    });
    let only = args.next();
    let run = |mode: &str| only.as_deref().is_none_or(|o| o == mode);

    let mut values = Vec::new();
    if dir.is_file() {
        let snap = snapshot_format::etcd::Snapshot::open(&dir, &Default::default())?;
        let range = snap.range(&snapshot_format::etcd::RangeQuery::prefix(b"/registry/"))?;
        let codec = Codec::kubernetes();
        for entry in range.kvs {
            if matches!(codec.decode(&entry.kv.value), Ok(StoredObject::Decoded(_))) {
                values.push(entry.kv.value);
            }
        }
    } else {
        for release in std::fs::read_dir(&dir)? {
            let release = release?.path();
            if !release.is_dir() {
                continue; // the README
            }
            for entry in std::fs::read_dir(release)? {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "pb") {
                    values.push(std::fs::read(&path)?);
                }
            }
        }
    }
    let total_bytes: usize = values.iter().map(Vec::len).sum();
    println!(
        "{} stored values, {:.2} MB, mean {} bytes, from {}",
        values.len(),
        total_bytes as f64 / 1e6,
        total_bytes / values.len().max(1),
        dir.display()
    );

    let codec = Codec::kubernetes();
    // Warm up (loads the schema once) and collect the objects for the encode run.
    let mut objects = Vec::new();
    for v in &values {
        if let StoredObject::Decoded(d) = codec.decode(v)?
            && !d.kind.is_empty()
        {
            objects.push(d.object);
        }
    }

    let budget = Duration::from_secs_f64(seconds);
    if run("decode") {
        report("decode", budget, total_bytes, values.len(), || {
            for v in &values {
                std::hint::black_box(codec.decode(v)?);
            }
            Ok(())
        })?;
    }
    if run("text") {
        report(
            "decode + JSON text",
            budget,
            total_bytes,
            values.len(),
            || {
                for v in &values {
                    if let StoredObject::Decoded(d) = codec.decode(v)? {
                        std::hint::black_box(serde_json::to_vec(&d.object)?);
                    }
                }
                Ok(())
            },
        )?;
    }
    if run("encode") {
        let encoded_bytes: usize = objects
            .iter()
            .map(|o| codec.encode(o).map(|b| b.len()))
            .sum::<Result<usize, _>>()?;
        report("encode", budget, encoded_bytes, objects.len(), || {
            for o in &objects {
                std::hint::black_box(codec.encode(o)?);
            }
            Ok(())
        })?;
    }
    Ok(())
}

/// Runs `round` (one pass over every value) until `budget` is spent; prints the rates.
fn report(
    what: &str,
    budget: Duration,
    bytes_per_round: usize,
    objects_per_round: usize,
    mut round: impl FnMut() -> Result<(), Box<dyn std::error::Error>>,
) -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let cpu_start = thread_cpu_seconds();
    let mut rounds = 0u64;
    while start.elapsed() < budget || rounds == 0 {
        round()?;
        rounds += 1;
    }
    let wall = start.elapsed().as_secs_f64();
    // Per core = per second of this thread's CPU time, so other load on the machine does
    // not count against the codec; wall-clock time when the CPU time is unavailable.
    let (secs, clock) = match (cpu_start, thread_cpu_seconds()) {
        (Some(a), Some(b)) if b > a => (b - a, "CPU"),
        _ => (wall, "wall"),
    };
    println!(
        "{what:<20} {:>9.0} objects/s  {:>7.1} MB/s per core  ({rounds} rounds, {secs:.2}s {clock}, {wall:.2}s wall)",
        (objects_per_round as u64 * rounds) as f64 / secs,
        (bytes_per_round as u64 * rounds) as f64 / secs / 1e6,
    );
    Ok(())
}

/// This thread's user + system CPU time (Linux: `/proc/thread-self/stat`, in clock ticks of
/// 1/100 s).
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
