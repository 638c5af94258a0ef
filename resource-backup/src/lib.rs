//! The Kubernetes-API layer of Salvor: discovery, consistent listing, the backup
//! repository format on object storage, restore planning and applying.
//!
//! This crate holds no code yet: its parts arrive with `salvor backup` and
//! `salvor restore`. It exists now so the workspace has the shape described in
//! `docs/architecture.md` and the dependency direction
//! (`cmd -> etcd-tools, resource-backup -> snapshot-format`) is fixed from the start.
