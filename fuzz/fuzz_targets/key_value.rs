//! The in-place `KeyValue` parser agrees with prost on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost_compat::decode;
use snapshot_format::mvcc::KeyValueRef;

mod prost_compat {
    use prost::Message;
    use snapshot_format::mvcc::KeyValue;
    pub fn decode(data: &[u8]) -> Option<KeyValue> {
        KeyValue::decode(data).ok()
    }
}

fuzz_target!(|data: &[u8]| {
    let ours = KeyValueRef::parse(data);
    let theirs = decode(data);
    match (ours, theirs) {
        (Ok(r), Some(kv)) => {
            assert_eq!(r.key, &kv.key[..]);
            assert_eq!(r.value, &kv.value[..]);
            assert_eq!(
                (r.create_revision, r.mod_revision, r.version, r.lease),
                (kv.create_revision, kv.mod_revision, kv.version, kv.lease)
            );
        }
        (Err(_), None) => {}
        (ours, theirs) => panic!("parsers disagree: ours {ours:?}, prost {theirs:?}"),
    }
});
