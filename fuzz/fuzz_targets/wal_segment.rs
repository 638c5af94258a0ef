//! Any bytes as the first WAL segment of a data dir: reading (strict and --raw), the
//! filters and the payload decoding finish without panicking, with bounded output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use snapshot_format::wal::{EntryFilter, ReadOptions, Wal};

fuzz_target!(|data: &[u8]| {
    let Ok(dir) = tempfile::tempdir() else { return };
    let wal_dir = dir.path().join("member/wal");
    if std::fs::create_dir_all(&wal_dir).is_err() {
        return;
    }
    if std::fs::write(wal_dir.join("0000000000000000-0000000000000000.wal"), data).is_err() {
        return;
    }
    let Ok(wal) = Wal::open(dir.path()) else { return };
    for keep_going in [false, true] {
        let contents = wal.read_all(&ReadOptions { keep_going, ..Default::default() });
        assert!(contents.entries.len() <= data.len());
        for dump in EntryFilter::default().apply(&contents.entries) {
            let _ = dump.to_string();
        }
    }
});
