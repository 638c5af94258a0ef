//! Kubernetes-like write workloads, deterministic from a seed.
//!
//! A [`Workload`] names `keys` distinct keys like `/registry/pods/<ns>/<name>`,
//! creates them, overwrites some, and deletes some. Every write is an individual
//! Put or DeleteRange, one revision each, as the Kubernetes API server writes;
//! many are in flight at once. On an empty cluster the final revision is
//! `1 + puts + deletes`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use etcd_rpc::Client;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::Error;

/// SplitMix64: a tiny, fast generator whose output is fixed forever, so a seed
/// gives the same keys and values in every version of this crate.
#[derive(Clone, Debug)]
pub struct SplitMix64 {
    state: u64,
}

/// SplitMix64's output function; a bijection on `u64`.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl SplitMix64 {
    const GOLDEN_GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// An independent generator for item `index` of `stream` under `seed`, so
    /// that each operation's randomness does not depend on execution order.
    pub fn for_item(seed: u64, stream: u64, index: u64) -> Self {
        Self::new(mix64(
            mix64(seed ^ stream.wrapping_mul(Self::GOLDEN_GAMMA)) ^ index,
        ))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(Self::GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// A number in `0..bound` (`bound` > 0), by multiply-shift.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }

    /// A number in `min..=max`.
    pub fn between(&mut self, min: u64, max: u64) -> u64 {
        min + self.below(max.saturating_sub(min).saturating_add(1))
    }

    /// A number in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Independent random streams of a workload.
mod stream {
    pub const KEY: u64 = 1;
    pub const CREATE_VALUE: u64 = 2;
    pub const OVERWRITE_TARGET: u64 = 3;
    pub const OVERWRITE_VALUE: u64 = 4;
    pub const DELETE_ORDER: u64 = 5;
    pub const NAME: u64 = 6;
}

/// Distribution of value sizes.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueSizes {
    /// Every value has this many bytes.
    Fixed(usize),
    /// Uniform in `min..=max` bytes.
    Uniform {
        /// Smallest size.
        min: usize,
        /// Largest size.
        max: usize,
    },
    /// Like the objects of a Kubernetes cluster: 80 % between 0.5 and 4 KiB,
    /// 17 % between 4 and 16 KiB, 3 % between 16 and 64 KiB.
    Kubernetes,
}

impl ValueSizes {
    /// Draws one size.
    pub fn sample(&self, rng: &mut SplitMix64) -> usize {
        let (min, max) = match *self {
            ValueSizes::Fixed(size) => return size,
            ValueSizes::Uniform { min, max } => (min, max.max(min)),
            ValueSizes::Kubernetes => {
                let class = rng.unit();
                if class < 0.80 {
                    (512, 4 * 1024)
                } else if class < 0.97 {
                    (4 * 1024, 16 * 1024)
                } else {
                    (16 * 1024, 64 * 1024)
                }
            }
        };
        rng.between(min as u64, max as u64) as usize
    }
}

/// A family of keys, `/registry/<resource>/[<namespace>/]<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPrefix {
    /// The resource path under `/registry/`, e.g. `pods` or `services/specs`.
    pub resource: String,
    /// Whether keys carry a namespace segment.
    pub namespaced: bool,
    /// Relative share of the keys.
    pub weight: u32,
}

impl KeyPrefix {
    /// A namespaced resource.
    pub fn namespaced(resource: &str, weight: u32) -> Self {
        Self {
            resource: resource.to_string(),
            namespaced: true,
            weight,
        }
    }

    /// A cluster-scoped resource.
    pub fn cluster(resource: &str, weight: u32) -> Self {
        Self {
            resource: resource.to_string(),
            namespaced: false,
            weight,
        }
    }

    /// A mix resembling a real cluster's key space (etcd paths as the API server
    /// writes them: services under `services/specs`, nodes under `minions`).
    pub fn kubernetes() -> Vec<Self> {
        vec![
            Self::namespaced("pods", 25),
            Self::namespaced("events", 20),
            Self::namespaced("configmaps", 10),
            Self::namespaced("secrets", 10),
            Self::namespaced("replicasets", 8),
            Self::namespaced("deployments", 5),
            Self::namespaced("services/specs", 4),
            Self::namespaced("services/endpoints", 4),
            Self::namespaced("endpointslices", 4),
            Self::namespaced("serviceaccounts", 4),
            Self::namespaced("leases", 3),
            Self::cluster("minions", 2),
            Self::cluster("namespaces", 1),
        ]
    }
}

const NAMESPACES: &[&str] = &[
    "default",
    "kube-system",
    "kube-public",
    "kube-node-lease",
    "monitoring",
    "logging",
    "ingress-nginx",
    "cert-manager",
    "argocd",
    "payments",
    "checkout",
    "catalog",
    "search",
    "identity",
    "notifications",
    "analytics",
    "staging",
    "ci",
    "data",
    "platform",
];

const APPS: &[&str] = &[
    "web",
    "api",
    "worker",
    "frontend",
    "backend",
    "cache",
    "db",
    "queue",
    "gateway",
    "auth",
    "billing",
    "scheduler",
    "metrics",
    "proxy",
    "batch",
    "cron",
];

/// What to write. Deterministic for a given seed: the same keys, overwrite
/// targets, deleted keys and values (only the completion order varies).
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// Distinct keys created.
    pub keys: usize,
    /// Value size distribution.
    pub value_size: ValueSizes,
    /// Extra puts to already existing keys, as a fraction of `keys` (0.5 means
    /// `keys / 2` overwrites, of random keys).
    pub overwrites: f64,
    /// Keys deleted after the overwrites, as a fraction of `keys` (each a
    /// distinct existing key, so each delete is one revision).
    pub deletes: f64,
    /// Key families and their shares.
    pub prefixes: Vec<KeyPrefix>,
    /// The seed.
    pub seed: u64,
    /// Requests in flight at once.
    pub concurrency: usize,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            keys: 1000,
            value_size: ValueSizes::Kubernetes,
            overwrites: 0.0,
            deletes: 0.0,
            prefixes: KeyPrefix::kubernetes(),
            seed: 1,
            concurrency: 256,
        }
    }
}

impl Workload {
    /// `keys` keys with the default Kubernetes-like mix, no overwrites or deletes.
    pub fn new(keys: usize) -> Self {
        Self {
            keys,
            ..Self::default()
        }
    }

    /// Number of overwriting puts.
    pub fn overwrite_count(&self) -> usize {
        fraction_of(self.keys, self.overwrites)
    }

    /// Number of deletes (at most `keys`).
    pub fn delete_count(&self) -> usize {
        fraction_of(self.keys, self.deletes).min(self.keys)
    }

    /// Keys left after the load.
    pub fn live_key_count(&self) -> usize {
        self.keys - self.delete_count()
    }

    /// Number of writes, each one revision: creates, overwrites and deletes.
    pub fn write_count(&self) -> usize {
        self.keys + self.overwrite_count() + self.delete_count()
    }

    /// Key number `index` (`0..keys`); distinct indexes give distinct keys.
    pub fn key(&self, index: usize) -> String {
        let mut rng = SplitMix64::for_item(self.seed, stream::KEY, index as u64);
        let total_weight: u64 = self.prefixes.iter().map(|p| u64::from(p.weight)).sum();
        let prefix = if total_weight == 0 {
            None
        } else {
            let mut pick = rng.below(total_weight);
            self.prefixes.iter().find(|prefix| {
                let weight = u64::from(prefix.weight);
                if pick < weight {
                    true
                } else {
                    pick -= weight;
                    false
                }
            })
        };
        let app = APPS[rng.below(APPS.len() as u64) as usize];
        // A bijection of the index: unique per key, random-looking.
        let unique = base36(mix64(
            index as u64 ^ mix64(self.seed ^ stream::NAME.wrapping_mul(SplitMix64::GOLDEN_GAMMA)),
        ));
        match prefix {
            Some(prefix) if prefix.namespaced => {
                let namespace = NAMESPACES[rng.below(NAMESPACES.len() as u64) as usize];
                format!("/registry/{}/{namespace}/{app}-{unique}", prefix.resource)
            }
            Some(prefix) => format!("/registry/{}/{app}-{unique}", prefix.resource),
            None => format!("/registry/keys/{app}-{unique}"),
        }
    }

    /// Index of the key that overwrite number `index` writes to.
    pub fn overwrite_target(&self, index: usize) -> usize {
        let mut rng = SplitMix64::for_item(self.seed, stream::OVERWRITE_TARGET, index as u64);
        rng.below(self.keys as u64) as usize
    }

    /// Indexes of the deleted keys, in delete order.
    pub fn deleted_keys(&self) -> Vec<usize> {
        let count = self.delete_count();
        let mut order: Vec<usize> = (0..self.keys).collect();
        let mut rng = SplitMix64::for_item(self.seed, stream::DELETE_ORDER, 0);
        // Partial Fisher-Yates: the first `count` slots are a uniform sample.
        for slot in 0..count {
            let pick = slot + rng.below((self.keys - slot) as u64) as usize;
            order.swap(slot, pick);
        }
        order.truncate(count);
        order
    }

    /// The value written by create number `index`.
    pub fn create_value(&self, index: usize) -> Vec<u8> {
        self.value(stream::CREATE_VALUE, index)
    }

    /// The value written by overwrite number `index`.
    pub fn overwrite_value(&self, index: usize) -> Vec<u8> {
        self.value(stream::OVERWRITE_VALUE, index)
    }

    /// A value shaped like a stored Kubernetes object: the `k8s\0` protobuf
    /// envelope magic, then pseudo-random printable bytes.
    fn value(&self, stream: u64, index: usize) -> Vec<u8> {
        let mut rng = SplitMix64::for_item(self.seed, stream, index as u64);
        let size = self.value_size.sample(&mut rng);
        let mut value = Vec::with_capacity(size);
        if size >= 4 {
            value.extend_from_slice(b"k8s\0");
        }
        while value.len() < size {
            let bits = rng.next_u64().to_le_bytes();
            let take = (size - value.len()).min(bits.len());
            value.extend(bits[..take].iter().map(|byte| b'a' + byte % 26));
        }
        value
    }
}

fn fraction_of(count: usize, fraction: f64) -> usize {
    if fraction.is_finite() && fraction > 0.0 {
        (count as f64 * fraction).round() as usize
    } else {
        0
    }
}

fn base36(mut value: u64) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut digits = Vec::with_capacity(13);
    loop {
        digits.push(DIGITS[(value % 36) as usize]);
        value /= 36;
        if value == 0 {
            break;
        }
    }
    digits.reverse();
    String::from_utf8_lossy(&digits).into_owned()
}

/// The phases of a load, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LoadPhase {
    /// Creating the keys.
    Create,
    /// Overwriting existing keys.
    Overwrite,
    /// Deleting keys.
    Delete,
}

/// Progress of a running load, reported about once a second and at the end of
/// each phase.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadProgress {
    /// The current phase.
    pub phase: LoadPhase,
    /// Operations of this phase done.
    pub done: u64,
    /// Operations of this phase in total.
    pub total: u64,
    /// Writes done in all phases so far.
    pub writes: u64,
    /// Time since the load started.
    pub elapsed: Duration,
}

impl LoadProgress {
    /// Average writes per second since the start.
    pub fn writes_per_second(&self) -> f64 {
        per_second(self.writes, self.elapsed)
    }
}

/// What a load wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LoadReport {
    /// Highest revision etcd reported for the load's writes.
    pub revision: i64,
    /// Puts (creates and overwrites).
    pub puts: u64,
    /// Keys deleted.
    pub deletes: u64,
    /// Key and value bytes put.
    pub bytes: u64,
    /// Wall time of the load.
    pub elapsed: Duration,
}

impl LoadReport {
    /// Writes, each one revision.
    pub fn writes(&self) -> u64 {
        self.puts + self.deletes
    }

    /// Average writes per second.
    pub fn writes_per_second(&self) -> f64 {
        per_second(self.writes(), self.elapsed)
    }
}

fn per_second(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

#[derive(Default)]
struct Counters {
    puts: AtomicU64,
    deletes: AtomicU64,
    bytes: AtomicU64,
    revision: AtomicI64,
    phase_done: AtomicU64,
}

impl Counters {
    fn record_revision(&self, header: Option<&etcd_rpc::proto::ResponseHeader>) {
        if let Some(header) = header {
            self.revision.fetch_max(header.revision, Ordering::Relaxed);
        }
    }

    fn writes(&self) -> u64 {
        self.puts.load(Ordering::Relaxed) + self.deletes.load(Ordering::Relaxed)
    }
}

/// Writes the workload, one revision per write, `concurrency` requests in flight.
pub async fn load(client: &Client, workload: &Workload) -> Result<LoadReport, Error> {
    load_with_progress(client, workload, |_| {}).await
}

/// Like [`load`], calling `progress` about once a second and after each phase.
pub async fn load_with_progress(
    client: &Client,
    workload: &Workload,
    mut progress: impl FnMut(&LoadProgress),
) -> Result<LoadReport, Error> {
    let started = Instant::now();
    let counters = Arc::new(Counters::default());
    let workload = Arc::new(workload.clone());
    let deleted = Arc::new(workload.deleted_keys());
    let phases = [
        (LoadPhase::Create, workload.keys),
        (LoadPhase::Overwrite, workload.overwrite_count()),
        (LoadPhase::Delete, deleted.len()),
    ];
    for (phase, total) in phases {
        if total == 0 {
            continue;
        }
        counters.phase_done.store(0, Ordering::Relaxed);
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = JoinSet::new();
        for _ in 0..workload.concurrency.clamp(1, total) {
            workers.spawn(run_worker(Worker {
                phase,
                total,
                next: next.clone(),
                client: client.clone(),
                workload: workload.clone(),
                deleted: deleted.clone(),
                counters: counters.clone(),
            }));
        }
        let report = |counters: &Counters| LoadProgress {
            phase,
            done: counters.phase_done.load(Ordering::Relaxed),
            total: total as u64,
            writes: counters.writes(),
            elapsed: started.elapsed(),
        };
        let mut ticker = tokio::time::interval_at(
            Instant::now() + Duration::from_secs(1),
            Duration::from_secs(1),
        );
        loop {
            tokio::select! {
                joined = workers.join_next() => match joined {
                    None => break,
                    Some(Ok(Ok(()))) => {}
                    Some(Ok(Err(error))) => {
                        workers.abort_all();
                        return Err(error);
                    }
                    Some(Err(join_error)) => match join_error.try_into_panic() {
                        Ok(panic) => std::panic::resume_unwind(panic),
                        Err(join_error) => unreachable!("load workers are not cancelled: {join_error}"),
                    },
                },
                _ = ticker.tick() => progress(&report(&counters)),
            }
        }
        progress(&report(&counters));
    }
    Ok(LoadReport {
        revision: counters.revision.load(Ordering::Relaxed),
        puts: counters.puts.load(Ordering::Relaxed),
        deletes: counters.deletes.load(Ordering::Relaxed),
        bytes: counters.bytes.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    })
}

struct Worker {
    phase: LoadPhase,
    total: usize,
    next: Arc<AtomicUsize>,
    client: Client,
    workload: Arc<Workload>,
    deleted: Arc<Vec<usize>>,
    counters: Arc<Counters>,
}

async fn run_worker(worker: Worker) -> Result<(), Error> {
    let Worker {
        phase,
        total,
        next,
        client,
        workload,
        deleted,
        counters,
    } = worker;
    loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        if index >= total {
            return Ok(());
        }
        match phase {
            LoadPhase::Create | LoadPhase::Overwrite => {
                let (key, value) = if phase == LoadPhase::Create {
                    (workload.key(index), workload.create_value(index))
                } else {
                    (
                        workload.key(workload.overwrite_target(index)),
                        workload.overwrite_value(index),
                    )
                };
                let bytes = (key.len() + value.len()) as u64;
                let response =
                    client
                        .put(key.as_bytes(), value)
                        .await
                        .map_err(|source| Error::Rpc {
                            during: format!("put {key}"),
                            source,
                        })?;
                counters.record_revision(response.header.as_ref());
                counters.puts.fetch_add(1, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes, Ordering::Relaxed);
            }
            LoadPhase::Delete => {
                let key = workload.key(deleted[index]);
                let response =
                    client
                        .delete(key.as_bytes())
                        .await
                        .map_err(|source| Error::Rpc {
                            during: format!("delete {key}"),
                            source,
                        })?;
                counters.record_revision(response.header.as_ref());
                counters
                    .deletes
                    .fetch_add(response.deleted.max(0) as u64, Ordering::Relaxed);
            }
        }
        counters.phase_done.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn splitmix64_reference_output() {
        // First outputs of SplitMix64 seeded with 0 (Vigna's reference).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(rng.next_u64(), 0x6e78_9e6a_a1b9_65f4);
    }

    #[test]
    fn keys_are_distinct_deterministic_and_kubernetes_like() {
        let workload = Workload {
            keys: 20_000,
            seed: 7,
            ..Workload::default()
        };
        let keys: Vec<String> = (0..workload.keys).map(|i| workload.key(i)).collect();
        let distinct: HashSet<&String> = keys.iter().collect();
        assert_eq!(distinct.len(), keys.len());
        assert_eq!(keys[123], workload.key(123));
        assert!(keys.iter().all(|key| key.starts_with("/registry/")));
        let pods = keys
            .iter()
            .filter(|k| k.starts_with("/registry/pods/"))
            .count();
        // 25 % of the weight.
        assert!((4_000..6_000).contains(&pods), "{pods} pods");
        assert!(keys.iter().any(|k| k.starts_with("/registry/minions/")));
        assert!(
            keys.iter()
                .any(|k| k.starts_with("/registry/services/specs/"))
        );

        let other_seed = Workload {
            seed: 8,
            ..workload.clone()
        };
        assert_ne!(other_seed.key(0), workload.key(0));
    }

    #[test]
    fn values_follow_the_size_distribution() {
        let workload = Workload {
            keys: 10_000,
            ..Workload::default()
        };
        let sizes: Vec<usize> = (0..workload.keys)
            .map(|i| workload.create_value(i).len())
            .collect();
        let small = sizes.iter().filter(|&&s| (512..=4096).contains(&s)).count();
        let large = sizes.iter().filter(|&&s| s > 16 * 1024).count();
        assert!((7_500..8_500).contains(&small), "{small} small values");
        assert!((150..500).contains(&large), "{large} large values");
        assert!(sizes.iter().all(|&s| s <= 64 * 1024));
        let value = workload.create_value(0);
        assert!(value.starts_with(b"k8s\0"));
        assert_eq!(value, workload.create_value(0));

        let fixed = Workload {
            value_size: ValueSizes::Fixed(100),
            ..Workload::default()
        };
        assert_eq!(fixed.overwrite_value(3).len(), 100);
    }

    #[test]
    fn counts_and_deleted_keys() {
        let workload = Workload {
            keys: 2_000,
            overwrites: 0.5,
            deletes: 0.1,
            ..Workload::default()
        };
        assert_eq!(workload.overwrite_count(), 1_000);
        assert_eq!(workload.delete_count(), 200);
        assert_eq!(workload.write_count(), 3_200);
        assert_eq!(workload.live_key_count(), 1_800);
        let deleted = workload.deleted_keys();
        assert_eq!(deleted.len(), 200);
        assert_eq!(deleted.iter().collect::<HashSet<_>>().len(), 200);
        assert!(deleted.iter().all(|&i| i < 2_000));
        assert_eq!(deleted, workload.deleted_keys());
        assert!((0..1_000).all(|i| workload.overwrite_target(i) < 2_000));
    }

    #[test]
    fn base36_encodes() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
        assert_eq!(base36(u64::MAX), "3w5e11264sgsf");
    }
}
