//! The Kubernetes-API layer of Salvor: discovery, consistent listing, the backup
//! repository format on object storage, restore planning and applying.

pub mod backup;
pub mod canonical;
pub mod catalog;
pub mod cluster;
pub mod crypto;
pub mod error;
pub mod model;
pub mod repo;
pub mod restore;
pub mod storage;

pub use cluster::{Cluster, ClusterArgs};
pub use error::Error;
pub use model::{BackupItem, Gvr, ObjectSource, ResourceType};
pub use repo::Repository;
pub use storage::{Storage, StorageOptions, StorageUrl};
