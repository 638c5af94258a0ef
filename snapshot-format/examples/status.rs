//! Prints a snapshot's status and `HashKV`, like `etcdctl snapshot status` and
//! `etcdctl endpoint hashkv`: `cargo run --example status -- FILE [REV]`.

use snapshot_format::etcd::{OpenOptions, Snapshot, StatusOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: status FILE [HASHKV_REV]")?;
    let rev: i64 = args.next().map(|r| r.parse()).transpose()?.unwrap_or(0);
    let snap = Snapshot::open(path.as_ref(), &OpenOptions::default())?;
    let s = snap.status(&StatusOptions::default())?;
    println!(
        "{{\"hash\":{},\"revision\":{},\"totalKey\":{},\"totalSize\":{}}}",
        s.hash, s.revision, s.total_key, s.total_size
    );
    let h = snap.hash_kv(rev)?;
    println!(
        "hashkv rev {}: {} (compact {})",
        h.hash_revision, h.hash, h.compact_revision
    );
    Ok(())
}
