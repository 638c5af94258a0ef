//! The Kubernetes-API layer of Salvor: discovery, consistent listing, the backup
//! repository format on object storage, restore planning and applying.

pub mod cluster;
pub mod error;
pub mod model;
pub mod restore;

pub use cluster::{Cluster, ClusterArgs};
pub use error::Error;
pub use model::{BackupItem, Gvr, ObjectSource, ResourceType};
