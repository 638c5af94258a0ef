//! The Kubernetes-API layer of Salvor: discovery, consistent listing, the backup
//! repository format on object storage, restore planning and applying.

pub mod backup;
pub mod canonical;
pub mod catalog;
pub mod cluster;
pub mod crypto;
pub mod error;
pub mod live;
pub mod model;
pub mod repo;
pub mod restore;

pub use cluster::{Cluster, ClusterArgs};
pub use error::Error;
pub use live::LiveSource;
pub use model::{BackupItem, Gvr, ObjectSource, ResourceType};
/// Where repositories live (the `object-storage` crate, shared with etcd snapshots).
pub use object_storage as storage;
pub use object_storage::{Storage, StorageOptions, StorageUrl};
pub use repo::Repository;
