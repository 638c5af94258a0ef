//! Any bytes as a bbolt file: open, status, ranges, history, stats, HashKV must return
//! (Ok or Err) without panicking, hanging or allocating without bound.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapshot_format::bbolt::{Db, MemorySource};
use snapshot_format::etcd::{RangeQuery, Snapshot, StatusOptions};

fuzz_target!(|data: &[u8]| {
    let Ok(db) = Db::open(Box::new(MemorySource::from_bytes(data.to_vec()))) else {
        return;
    };
    let _ = db.bucket_names();
    let snap = Snapshot::from_db(db);
    let _ = snap.status(&StatusOptions::default());
    let _ = snap.range(&RangeQuery::prefix(b""));
    let _ = snap.history(b"/registry/pods/default/a");
    let _ = snap.key_stats(3, 2);
    let _ = snap.hash_kv(0);
});
