//! Test environment: real etcd 3.4 on loopback, a real S3 server (Garage),
//! Kubernetes-like workloads, snapshots.
//!
//! [`EtcdCluster`] starts one or more real `etcd` members (Debian's
//! `etcd-server` package) on free 127.0.0.1 ports in a temporary directory,
//! optionally with TLS and client certificates, and kills them when dropped.
//! [`load`] writes a deterministic [`Workload`] through [`etcd_rpc::Client`];
//! [`snapshot`] saves a snapshot over gRPC, [`EtcdCluster::etcdctl_snapshot_save`]
//! with the real etcdctl. [`Garage`] starts a real S3 server (see [`garage`]).
//!
//! ```no_run
//! use testenv::{EtcdCluster, Workload};
//!
//! # async fn example() -> Result<(), testenv::Error> {
//! let cluster = EtcdCluster::start(1).await?;
//! let client = cluster.client().await?;
//! let report = testenv::load(&client, &Workload::new(10_000)).await?;
//! assert_eq!(report.revision, 1 + report.writes() as i64);
//! let bytes = testenv::snapshot(&client, &cluster.dir().join("snap.db")).await?;
//! assert_eq!(bytes % 512, 32);
//! # Ok(())
//! # }
//! ```

pub mod apiserver;
mod cluster;
pub mod damage;
mod error;
pub mod garage;
mod pki;
mod process;
mod snapshot;
mod workload;

pub use cluster::{
    AutoCompaction, ETCD_BINARY_ENV, ETCDCTL_BINARY_ENV, EtcdCluster, EtcdOptions, Member,
    initial_cluster,
};
pub use error::Error;
pub use garage::Garage;
pub use pki::{CLIENT_COMMON_NAME, TlsFiles};
pub use snapshot::snapshot;
pub use workload::{
    KeyPrefix, LoadPhase, LoadProgress, LoadReport, SplitMix64, ValueSizes, Workload, load,
    load_with_progress,
};
