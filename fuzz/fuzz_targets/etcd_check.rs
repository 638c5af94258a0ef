//! Any bytes with a usable meta page: the full check (bbolt + etcd layers) must finish
//! and report, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapshot_format::bbolt::{Db, MemorySource};
use snapshot_format::etcd::Snapshot;

fuzz_target!(|data: &[u8]| {
    let Ok(db) = Db::open_unchecked(Box::new(MemorySource::from_bytes(data.to_vec()))) else {
        return;
    };
    let snap = Snapshot::from_db(db);
    let result = snap.check();
    assert!(result.bbolt.stats.entries <= data.len() as u64);
});
