//! The Kubernetes storage codec against kube-apiserver's own round-trip fixtures
//! (`testenv/fixtures/k8s-protobuf/<release>/`, from kubernetes/api `testdata/`): each `.pb`
//! is an object exactly as the API server writes it into etcd, its `.json` twin the same
//! object in the API's JSON.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use snapshot_format::k8s::{
    Codec, CodecError, DecodedObject, IssueKind, StorageFormat, StoredObject, decode_storage_value,
    encode_storage_value,
};

const RELEASES: &[&str] = &["v1.33.0", "v1.34.0", "v1.35.0"];

struct Fixture {
    name: String,
    pb: Vec<u8>,
    json: Value,
}

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testenv/fixtures/k8s-protobuf")
}

/// Every `.pb` with a `.json` twin (a few `after_roundtrip` files have only one of the two).
fn fixtures() -> Vec<Fixture> {
    let mut out = Vec::new();
    for release in RELEASES {
        let dir = fixture_dir().join(release);
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "pb"))
            .collect();
        names.sort();
        for pb_path in names {
            let json_path = pb_path.with_extension("json");
            if !json_path.exists() {
                continue;
            }
            let json = serde_json::from_slice(&std::fs::read(&json_path).unwrap()).unwrap();
            out.push(Fixture {
                name: format!(
                    "{release}/{}",
                    pb_path.file_stem().unwrap().to_string_lossy()
                ),
                pb: std::fs::read(&pb_path).unwrap(),
                json,
            });
        }
    }
    assert!(out.len() > 500, "only {} fixtures found", out.len());
    out
}

/// Drops what Go's `omitempty` drops (null, "", 0, false, [], {}), recursively, so absent
/// and zero values compare equal.
fn normalize(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Bool(false) => None,
        Value::String(s) if s.is_empty() => None,
        Value::Number(n) if n.as_f64() == Some(0.0) => None,
        Value::Array(items) => {
            // Elements keep their position: an empty element stays (as null).
            let items: Vec<Value> = items
                .iter()
                .map(|i| normalize(i).unwrap_or(Value::Null))
                .collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(map) => {
            let map: serde_json::Map<String, Value> = map
                .iter()
                .filter_map(|(k, v)| normalize(v).map(|v| (k.clone(), v)))
                .collect();
            (!map.is_empty()).then_some(Value::Object(map))
        }
        other => Some(other.clone()),
    }
}

/// The first JSON path where `a` and `b` differ, with both values.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    None => return Some(format!("{path}.{k}: decoded has it, json lacks it")),
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{path}.{k}: json has it, decoded lacks it ({})", y[k]))
        }
        (Value::Array(x), Value::Array(y)) => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                if let Some(d) = first_difference(v, w, &format!("{path}[{i}]")) {
                    return Some(d);
                }
            }
            (x.len() != y.len())
                .then(|| format!("{path}: {} elements decoded, {} in json", x.len(), y.len()))
        }
        _ if a == b => None,
        _ => Some(format!("{path}: decoded {a}, json {b}")),
    }
}

/// The message type of a fixture whose envelope has no kind (Go writes a `WatchEvent` with
/// an empty typeMeta; nothing like it is stored in etcd): known from the file name.
fn kindless_type(f: &Fixture) -> &'static str {
    assert!(
        f.name.ends_with("core.v1.WatchEvent"),
        "{} has no kind",
        f.name
    );
    "k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent"
}

fn decode_kindless(f: &Fixture, d: DecodedObject) -> DecodedObject {
    let [issue] = &d.issues[..] else {
        panic!("{}: {:?}", f.name, d.issues)
    };
    let IssueKind::UnknownType { raw } = &issue.kind else {
        panic!("{issue}")
    };
    let (object, issues) = Codec::kubernetes()
        .decode_message(kindless_type(f), raw)
        .unwrap();
    DecodedObject {
        object,
        issues,
        ..d
    }
}

fn encode_fixture(f: &Fixture) -> Result<Vec<u8>, CodecError> {
    if f.json.get("kind").is_none() {
        return Codec::kubernetes().encode_envelope(kindless_type(f), "", "", &f.json);
    }
    encode_storage_value(&f.json)
}

fn decoded(bytes: &[u8]) -> snapshot_format::k8s::DecodedObject {
    match decode_storage_value(bytes).unwrap() {
        StoredObject::Decoded(d) => d,
        other => panic!("not decoded: {other:?}"),
    }
}

#[test]
fn every_protobuf_fixture_decodes_to_its_json() {
    let fixtures = fixtures();
    let mut failures = Vec::new();
    let mut with_issues = Vec::new();
    for f in &fixtures {
        let d = match decode_storage_value(&f.pb) {
            Ok(StoredObject::Decoded(d)) => d,
            Ok(other) => {
                failures.push(format!("{}: not decoded: {other:?}", f.name));
                continue;
            }
            Err(e) => {
                failures.push(format!("{}: error: {e}", f.name));
                continue;
            }
        };
        assert_eq!(d.format, StorageFormat::Protobuf);
        let d = if d.kind.is_empty() {
            decode_kindless(f, d)
        } else {
            d
        };
        if !d.issues.is_empty() {
            with_issues.push(format!(
                "{}: {}",
                f.name,
                d.issues
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        // kind and apiVersion come first, as the API server prints them.
        if d.kind.is_empty() {
            // (no kind to show)
        } else {
            let keys: Vec<&String> = d.object.as_object().unwrap().keys().take(2).collect();
            assert_eq!(keys, ["kind", "apiVersion"], "{}", f.name);
        }
        let (a, b) = (normalize(&d.object), normalize(&f.json));
        if a != b {
            let diff = first_difference(
                a.as_ref().unwrap_or(&Value::Null),
                b.as_ref().unwrap_or(&Value::Null),
                "",
            );
            failures.push(format!("{}: {}", f.name, diff.unwrap_or_default()));
        }
    }
    let passed = fixtures.len() - failures.len();
    println!(
        "decode: {passed}/{} fixtures equal their JSON ({:.1}%)",
        fixtures.len(),
        100.0 * passed as f64 / fixtures.len() as f64
    );
    for w in &with_issues {
        println!("issues: {w}");
    }
    for f in &failures {
        println!("MISMATCH {f}");
    }
    assert!(
        failures.is_empty(),
        "{} fixtures differ (listed above)",
        failures.len()
    );
}

#[test]
fn encoding_the_json_fixtures_gives_the_api_servers_bytes() {
    let fixtures = fixtures();
    let mut identical = 0;
    let mut mismatches = Vec::new();
    let mut roundtrip_failures = Vec::new();
    for f in &fixtures {
        let encoded = match encode_fixture(f) {
            Ok(b) => b,
            Err(e) => {
                mismatches.push(format!("{}: encode error: {e}", f.name));
                continue;
            }
        };
        if encoded == f.pb {
            identical += 1;
        } else {
            let at = encoded
                .iter()
                .zip(&f.pb)
                .position(|(a, b)| a != b)
                .unwrap_or(encoded.len().min(f.pb.len()));
            mismatches.push(format!(
                "{}: {} bytes encoded, {} expected, first difference at byte {at}",
                f.name,
                encoded.len(),
                f.pb.len()
            ));
        }
        // Whatever the bytes, they must decode back to the same object.
        let back = decoded(&encoded);
        let back = if back.kind.is_empty() {
            decode_kindless(f, back)
        } else {
            back
        };
        // Objects of a version the schema lacks are read with a sibling version's type and say
        // so; anything else reported would be data the encoder failed to place.
        let real_issues = back
            .issues
            .iter()
            .filter(|i| !matches!(i.kind, IssueKind::OtherVersionSchema { .. }))
            .count();
        if normalize(&back.object) != normalize(&f.json) || real_issues > 0 {
            let diff = first_difference(
                &normalize(&back.object).unwrap_or(Value::Null),
                &normalize(&f.json).unwrap_or(Value::Null),
                "",
            );
            roundtrip_failures.push(format!("{}: {diff:?} {:?}", f.name, back.issues));
        }
    }
    let pct = 100.0 * identical as f64 / fixtures.len() as f64;
    println!(
        "encode: {identical}/{} fixtures byte-identical to the API server's ({pct:.1}%)",
        fixtures.len()
    );
    for m in &mismatches {
        println!("NOT IDENTICAL {m}");
    }
    for m in &roundtrip_failures {
        println!("ROUND TRIP {m}");
    }
    assert!(
        roundtrip_failures.is_empty(),
        "{} round trips differ",
        roundtrip_failures.len()
    );
    assert!(pct >= 95.0, "only {pct:.1}% byte-identical");
}

#[test]
fn decoding_then_encoding_gives_the_same_bytes() {
    // The path salvage takes: read from etcd, write back.
    let mut same = 0;
    let fixtures = fixtures();
    let mut different = Vec::new();
    for f in &fixtures {
        let d = decoded(&f.pb);
        let again = if d.kind.is_empty() {
            let d = decode_kindless(f, d);
            Codec::kubernetes()
                .encode_envelope(kindless_type(f), "", "", &d.object)
                .unwrap()
        } else {
            match encode_storage_value(&d.object) {
                Ok(b) => b,
                Err(e) => {
                    different.push(format!("{}: {e}", f.name));
                    continue;
                }
            }
        };
        if again == f.pb {
            same += 1;
        } else {
            different.push(f.name.clone());
        }
    }
    println!(
        "decode+encode: {same}/{} byte-identical; differ: {different:?}",
        fixtures.len()
    );
    assert!(same * 100 >= fixtures.len() * 95);
}

/// Fails the test run (instead of hanging CI) if a damaged value makes the codec loop.
fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!("k8s codec robustness test exceeded {limit:?}: a damaged value made it loop");
        std::process::exit(101);
    });
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn damaged_values_give_errors_not_panics() {
    watchdog(Duration::from_secs(300));
    let fixtures = fixtures();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut cases = 0usize;
    let mut errors = 0usize;
    let mut panics = Vec::new();
    let mut check = |name: String, bytes: &[u8], cases: &mut usize, errors: &mut usize| {
        *cases += 1;
        match std::panic::catch_unwind(|| decode_storage_value(bytes)) {
            Ok(Err(e)) => {
                *errors += 1;
                assert!(!e.to_string().is_empty());
            }
            Ok(Ok(_)) => {}
            Err(_) => panics.push(name),
        }
    };
    for f in &fixtures {
        let n = f.pb.len();
        let mut lengths = vec![0, 1, 3, 4, 5, 6, n / 4, n / 2, n - n / 3, n - 2, n - 1];
        for _ in 0..6 {
            lengths.push(rng.below(n));
        }
        for len in lengths {
            let len = len.min(n);
            check(
                format!("{} truncated to {len}", f.name),
                &f.pb[..len],
                &mut cases,
                &mut errors,
            );
        }
        for round in 0..24 {
            let mut bytes = f.pb.clone();
            for _ in 0..1 + round % 4 {
                let at = 4 + rng.below(n - 4);
                bytes[at] ^= 1 << rng.below(8);
            }
            check(
                format!("{} flip round {round}", f.name),
                &bytes,
                &mut cases,
                &mut errors,
            );
        }
        for round in 0..4 {
            let mut bytes = f.pb.clone();
            let at = 4 + rng.below(n - 4);
            bytes[at] = [0x00, 0xff, 0x7f, 0x80][round];
            check(
                format!("{} byte set round {round}", f.name),
                &bytes,
                &mut cases,
                &mut errors,
            );
        }
    }
    println!(
        "{cases} damaged values, {errors} errors, {} panics",
        panics.len()
    );
    assert!(panics.is_empty(), "panics: {panics:#?}");
    assert!(
        errors > cases / 10,
        "suspiciously few errors: {errors} of {cases}"
    );
}

#[test]
fn truncation_names_the_type_field_and_offset() {
    let pod = std::fs::read(fixture_dir().join("v1.35.0/core.v1.Pod.pb")).unwrap();
    let cut = &pod[..pod.len() / 2];
    let e = decode_storage_value(cut).unwrap_err();
    let CodecError::Protobuf {
        type_name,
        offset,
        problem,
        ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert!(type_name.starts_with("k8s.io."), "{e}");
    assert!(*offset < cut.len(), "{e}");
    assert!(problem.contains("past the end"), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("byte ") && text.contains(type_name.as_str()),
        "{text}"
    );

    // A truncated value is caught by the envelope: its raw length runs past the end.
    assert!(
        text.contains("runtime.Unknown") && text.contains(".raw"),
        "{text}"
    );

    // Damage inside the typed object: the error names the field being read.
    let pod = serde_json::json!({
        "kind": "Pod", "apiVersion": "v1",
        "spec": {"containers": [{"name": "x", "image": "nginx"}]},
    });
    let mut bytes = encode_storage_value(&pod).unwrap();
    let at = bytes.windows(3).position(|w| w == b"\x0a\x01x").unwrap();
    bytes[at + 1] = 0x7f; // the name's length now runs past its container
    let e = decode_storage_value(&bytes).unwrap_err();
    let CodecError::Protobuf {
        type_name,
        path,
        offset,
        ..
    } = &e
    else {
        panic!("{e:?}");
    };
    assert_eq!(type_name, "k8s.io.api.core.v1.Container", "{e}");
    assert_eq!(path, ".spec.containers[0].name", "{e}");
    assert_eq!(*offset, at + 1, "{e}");
}

#[test]
fn wrong_envelopes_are_named() {
    // `k8s\0` followed by garbage.
    let e = decode_storage_value(b"k8s\0\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff").unwrap_err();
    assert!(e.to_string().contains("runtime.Unknown"), "{e}");
    // An envelope with no kind: nothing to decode it as, the raw bytes are kept.
    let d = decoded(b"k8s\0\x12\x02\x08\x01");
    assert!(d.kind.is_empty());
    assert!(matches!(&d.issues[..], [i] if i.kind == IssueKind::UnknownType { raw: vec![8, 1] }));
    // JSON that is not an object, or not JSON.
    assert!(matches!(
        decode_storage_value(b"{not json").unwrap_err(),
        CodecError::Json(_)
    ));
    // Not a Kubernetes value at all: kept as is.
    assert_eq!(
        decode_storage_value(b"\x01\x02plain").unwrap(),
        StoredObject::Unrecognized(b"\x01\x02plain".to_vec())
    );
    // The wrong wire type for a known field names the field.
    let bad = encode_storage_value(&serde_json::json!({
        "kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}
    }))
    .unwrap();
    let mut damaged = bad.clone();
    let name_key = damaged.windows(3).position(|w| w == b"\x0a\x01x").unwrap();
    damaged[name_key] = 0x08; // field 1 (name) as a varint
    let e = decode_storage_value(&damaged).unwrap_err();
    assert!(e.to_string().contains(".metadata.name"), "{e}");
    assert!(e.to_string().contains("ObjectMeta"), "{e}");
}

#[test]
fn unknown_types_and_fields_are_kept_as_issues() {
    // A kind the schema does not know: only kind and apiVersion, raw bytes kept.
    let mut unknown = b"k8s\0".to_vec();
    unknown.extend_from_slice(
        b"\x0a\x16\x0a\x0dexample.io/v1\x12\x05Thing\x12\x03\x08\x96\x01\x1a\x00\x22\x00",
    );
    let d = decoded(&unknown);
    assert_eq!(
        d.object,
        serde_json::json!({"kind": "Thing", "apiVersion": "example.io/v1"})
    );
    assert_eq!(d.issues.len(), 1);
    assert!(
        matches!(&d.issues[0].kind, IssueKind::UnknownType { raw } if raw == b"\x08\x96\x01"),
        "{:?}",
        d.issues
    );
    assert!(d.issues[0].to_string().contains("CJYB"), "{}", d.issues[0]);

    // An unknown field inside a known type: reported with its number and bytes.
    let cm =
        serde_json::json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "x"}});
    let mut bytes = encode_storage_value(&cm).unwrap();
    // Append field 99 (varint 7) to the ConfigMap: raw length and the envelope change.
    let raw_at = bytes.windows(2).position(|w| w == b"\x12\x05").unwrap();
    bytes[raw_at + 1] += 3;
    bytes.splice(raw_at + 7..raw_at + 7, [0x98, 0x06, 0x07]);
    let d = decoded(&bytes);
    assert_eq!(d.object, cm);
    match &d.issues[..] {
        [issue] => match &issue.kind {
            IssueKind::UnknownField {
                number: 99,
                bytes,
                message,
                ..
            } => {
                assert_eq!(bytes, &[0x98, 0x06, 0x07]);
                assert_eq!(message, "k8s.io.api.core.v1.ConfigMap");
            }
            other => panic!("{other:?}"),
        },
        other => panic!("{other:?}"),
    }
}

#[test]
fn encrypted_values_say_which_key_they_need() {
    let StoredObject::Encrypted(e) =
        decode_storage_value(b"k8s:enc:aescbc:v1:key1:\x00\x01\x02").unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (e.provider.as_str(), e.version.as_str(), e.key_name.as_str()),
        ("aescbc", "v1", "key1")
    );
    assert_eq!(e.payload, [0, 1, 2]);
    assert!(e.to_string().contains("aescbc") && e.to_string().contains("key1"));
    let StoredObject::Encrypted(kms) =
        decode_storage_value(b"k8s:enc:kms:v2:vault-plugin:\x0a\x01x").unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (kms.provider.as_str(), kms.key_name.as_str()),
        ("kms", "vault-plugin")
    );
    assert!(decode_storage_value(b"k8s:enc:broken").is_err());
}

#[test]
fn custom_resources_are_stored_as_go_json() {
    let cr = serde_json::json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w", "namespace": "default"},
        "spec": {"size": 3, "html": "<b>&</b>", "ratio": 0.5},
    });
    let bytes = encode_storage_value(&cr).unwrap();
    assert_eq!(
        String::from_utf8(bytes.clone()).unwrap(),
        "{\"apiVersion\":\"example.com/v1\",\"kind\":\"Widget\",\"metadata\":{\"name\":\"w\",\
         \"namespace\":\"default\"},\"spec\":{\"size\":3,\"html\":\"\\u003cb\\u003e\\u0026\\u003c/b\\u003e\",\
         \"ratio\":0.5}}\n"
    );
    let d = decoded(&bytes);
    assert_eq!(d.format, StorageFormat::Json);
    assert_eq!(
        (d.api_version.as_str(), d.kind.as_str()),
        ("example.com/v1", "Widget")
    );
    assert_eq!(d.object, cr);
}

#[test]
fn bad_json_for_a_typed_object_is_refused_with_its_path() {
    let cases = [
        (
            serde_json::json!({"kind": "Pod", "apiVersion": "v1", "spec": {"containers": [{"name": 5}]}}),
            ".spec.containers[0].name",
        ),
        (
            serde_json::json!({"kind": "Pod", "apiVersion": "v1", "spec": {"bogus": true}}),
            "bogus",
        ),
        (
            serde_json::json!({"kind": "Pod", "apiVersion": "v1", "metadata": {"creationTimestamp": "yesterday"}}),
            ".metadata.creationTimestamp",
        ),
        (
            serde_json::json!({"kind": "Pod", "apiVersion": "v1", "spec": {"activeDeadlineSeconds": 1.5}}),
            ".spec.activeDeadlineSeconds",
        ),
        (
            serde_json::json!({"kind": "Pod", "apiVersion": "v1", "spec": {"priority": 4_294_967_296_i64}}),
            "out of range",
        ),
        (
            serde_json::json!({"kind": "Secret", "apiVersion": "v1", "data": {"k": "not base64!"}}),
            ".data[\"k\"]",
        ),
        (serde_json::json!({"apiVersion": "v1"}), "kind"),
    ];
    for (value, expected) in cases {
        let e = encode_storage_value(&value).unwrap_err();
        assert!(
            e.to_string().contains(expected),
            "{e} should mention {expected}"
        );
    }
}
