//! etcd operations built on [`snapshot_format`]: the data views the `salvor etcd …`
//! commands print. Findings and plans are data; printing is the CLI's job.
//!
//! ```
//! use etcd_tools::view::Bytes;
//! let b = Bytes::from(&b"/registry/pods/default/web"[..]);
//! assert_eq!(serde_json::to_string(&b).unwrap(), "\"/registry/pods/default/web\"");
//! ```

pub mod check;
pub mod dbedit;
pub mod defrag;
pub mod diagnose;
pub mod exporter;
pub mod fsutil;
pub mod objects;
pub mod prom;
pub mod recover;
pub mod remote;
pub mod restore;
pub mod salvage;
pub mod save;
pub mod view;
