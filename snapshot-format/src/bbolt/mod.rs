//! bbolt, the B+tree file format under etcd's backend.
//!
//! Pages come from a [`PageSource`]; [`Db`] selects the active meta page and reads pages
//! with bounds and identity checks; [`Bucket`], [`Cursor`] and [`Bucket::scan_parallel`]
//! traverse trees. Nothing here panics or loops on a damaged file: every failure is an
//! [`crate::Error`] naming the page and offset.

pub mod check;
mod db;
pub mod page;
pub mod source;
pub mod write;

pub use db::{Bucket, Cursor, Db, Entry, MAX_DEPTH, MetaSlot, PageBuf, ScanPart};
pub use page::{LeafElement, Meta, MetaProblem, NodePage, PageHeader, PageKind};
pub use source::{FileSource, MemorySource, MmapSource, PageSource, SourceKind};
pub use write::{BoltWriter, WriteSummary, WriterOptions};
