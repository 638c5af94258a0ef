//! Any bytes as a raft `.snap` file: reading it finishes and reports, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapshot_format::wal::read_snap_file;

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let path = dir.path().join("0000000000000002-0000000000000010.snap");
    if std::fs::write(&path, data).is_err() {
        return;
    }
    let _ = read_snap_file(&path);
});
