//! Encryption at rest against values encrypted by independent implementations
//! (`testenv/fixtures/encryption/`, written by `make.py` with Python `cryptography` and
//! PyNaCl/libsodium following kube-apiserver's layouts), plus round trips, key rotation,
//! resource matching, and damaged values and configurations.

#![allow(clippy::unwrap_used)] // test helpers: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::Value;
use snapshot_format::k8s::encryption::{
    Decrypted, EncryptionConfig, EncryptionError, GroupResource, KeyRef, KmsApiVersion, Provider,
    ProviderKind,
};
use snapshot_format::k8s::keys::RegistryKey;
use snapshot_format::k8s::{StoredObject, decode_storage_value, decode_storage_value_with};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../testenv/fixtures/encryption")
}

fn fixture_config() -> EncryptionConfig {
    EncryptionConfig::from_file(fixture_dir().join("config.yaml")).unwrap()
}

struct Case {
    name: String,
    storage_key: String,
    value: Vec<u8>,
    /// (plaintext, provider and key name; `None` for a plaintext value)
    expect: Option<(Vec<u8>, Option<KeyRef>)>,
    needs_kms: Option<Value>,
}

fn cases() -> Vec<Case> {
    let text = std::fs::read(fixture_dir().join("values.json")).unwrap();
    let cases: Vec<Value> = serde_json::from_slice(&text).unwrap();
    let provider = |name: &str| match name {
        "aescbc" => ProviderKind::AesCbc,
        "aesgcm" => ProviderKind::AesGcm,
        "secretbox" => ProviderKind::Secretbox,
        other => panic!("provider {other}"),
    };
    let out: Vec<Case> = cases
        .iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().to_string(),
            storage_key: c["storage_key"].as_str().unwrap().to_string(),
            value: B64.decode(c["value"].as_str().unwrap()).unwrap(),
            expect: c["plaintext"].as_str().map(|p| {
                let key = c["provider"].as_str().map(|name| KeyRef {
                    provider: provider(name),
                    key_name: c["key_name"].as_str().unwrap().to_string(),
                });
                (B64.decode(p).unwrap(), key)
            }),
            needs_kms: c.get("needs_kms").cloned(),
        })
        .collect();
    assert!(out.len() >= 30, "only {} cases", out.len());
    out
}

fn yaml(providers: &str) -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets]\n    providers:\n{providers}"
    )
}

fn key_b64(len: usize, seed: u8) -> String {
    let bytes: Vec<u8> = (0..len)
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect();
    B64.encode(bytes)
}

fn config(providers: &str) -> EncryptionConfig {
    EncryptionConfig::from_slice(yaml(providers).as_bytes()).unwrap()
}

fn config_error(text: &str) -> (String, String) {
    match EncryptionConfig::from_slice(text.as_bytes()) {
        Err(EncryptionError::Config { at, problem, .. }) => (at, problem),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

/// A small deterministic generator for damaged inputs.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

const KEY: &[u8] = b"/registry/secrets/default/db-password";

// --- values from independent implementations ---------------------------------------------

#[test]
fn decrypts_values_encrypted_by_python_cryptography_and_libsodium() {
    let config = fixture_config();
    let mut decrypted = 0;
    for case in cases() {
        let result = config.decrypt(case.storage_key.as_bytes(), &case.value);
        if let Some((plaintext, key)) = &case.expect {
            let got = result.unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(got.plaintext(), plaintext.as_slice(), "{}", case.name);
            assert_eq!(got.key(), key.as_ref(), "{}", case.name);
            if key.is_none() {
                assert!(matches!(got, Decrypted::Plain(_)), "{}", case.name);
            }
            decrypted += 1;
        }
    }
    // 3 providers × 8 keys × 4 plaintexts, the ConfigMap, the plaintext value.
    assert_eq!(decrypted, 34);
}

#[test]
fn every_key_of_a_multi_key_config_decrypts_including_old_keys_listed_later() {
    let config = fixture_config();
    let mut used: Vec<KeyRef> = Vec::new();
    for case in cases() {
        if let Some((_, Some(key))) = case.expect {
            let got = config
                .decrypt(case.storage_key.as_bytes(), &case.value)
                .unwrap();
            assert_eq!(got.key(), Some(&key));
            if !used.contains(&key) {
                used.push(key);
            }
        }
    }
    let names: Vec<&str> = used.iter().map(|k| k.key_name.as_str()).collect();
    for name in [
        "gcm-new", "gcm-mid", "gcm-old", "cbc-new", "cbc-mid", "cbc-old", "sb-new", "sb-old",
        "cbc-cm",
    ] {
        assert!(names.contains(&name), "{name} never used: {names:?}");
    }
}

#[test]
fn legacy_json_config_reads_the_same_values() {
    let config = EncryptionConfig::from_file(fixture_dir().join("config-legacy.json")).unwrap();
    assert_eq!(config.rules.len(), 1);
    let kinds: Vec<ProviderKind> = config.rules[0].providers.iter().map(|p| p.kind()).collect();
    assert_eq!(
        kinds,
        [
            ProviderKind::Secretbox,
            ProviderKind::AesCbc,
            ProviderKind::AesGcm,
            ProviderKind::Identity
        ]
    );
    for case in cases() {
        let Some((plaintext, Some(key))) = &case.expect else {
            continue;
        };
        if key.key_name == "cbc-cm" {
            continue; // not in the legacy file
        }
        let got = config
            .decrypt(case.storage_key.as_bytes(), &case.value)
            .unwrap();
        assert_eq!(got.plaintext(), plaintext.as_slice(), "{}", case.name);
    }
}

#[test]
fn kms_values_name_the_plugin_and_key_id() {
    let config = fixture_config();
    let mut seen = 0;
    for case in cases() {
        let Some(expected) = &case.needs_kms else {
            continue;
        };
        seen += 1;
        let err = config
            .decrypt(case.storage_key.as_bytes(), &case.value)
            .unwrap_err();
        let EncryptionError::NeedsKmsPlugin {
            api_version,
            plugin,
            key_id,
            configured,
            ..
        } = &err
        else {
            panic!("{}: {err}", case.name);
        };
        let version = match api_version {
            KmsApiVersion::V1 => "v1",
            KmsApiVersion::V2 => "v2",
        };
        assert_eq!(version, expected["api_version"], "{}", case.name);
        assert_eq!(plugin, expected["plugin"].as_str().unwrap());
        assert_eq!(key_id.as_deref(), expected["key_id"].as_str());
        assert_eq!(*configured, expected["configured"].as_bool().unwrap());
        let message = err.to_string();
        assert!(
            message.contains(&format!("needs KMS {version} plugin '{plugin}'")),
            "{message}"
        );
        assert!(message.contains(&case.storage_key), "{message}");
    }
    assert_eq!(seen, 2);
    // Without any configuration the prefix still says which plugin.
    let empty = config_with_identity_only();
    let kms = cases().into_iter().find(|c| c.name == "kms-v2").unwrap();
    let err = empty
        .decrypt(kms.storage_key.as_bytes(), &kms.value)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("which the encryption configuration does not name"),
        "{err}"
    );
}

fn config_with_identity_only() -> EncryptionConfig {
    config("      - identity: {}\n")
}

#[test]
fn decode_storage_value_with_decrypts_then_decodes() {
    let config = fixture_config();
    let pb =
        std::fs::read(fixture_dir().join("../k8s-protobuf/v1.35.0/core.v1.Secret.pb")).unwrap();
    let expected = decode_storage_value(&pb).unwrap();
    assert!(matches!(expected, StoredObject::Decoded(_)));
    let mut checked = 0;
    for case in cases() {
        let Some((plaintext, key)) = &case.expect else {
            continue;
        };
        if *plaintext != pb {
            continue;
        }
        let got =
            decode_storage_value_with(&case.value, case.storage_key.as_bytes(), Some(&config))
                .unwrap();
        assert_eq!(got.object, expected, "{}", case.name);
        assert_eq!(got.key.as_ref(), key.as_ref());
        // Without a configuration the codec reports the encryption, as before.
        let without =
            decode_storage_value_with(&case.value, case.storage_key.as_bytes(), None).unwrap();
        if let Some(key) = key {
            let StoredObject::Encrypted(envelope) = without.object else {
                panic!("{}: not reported as encrypted", case.name);
            };
            assert_eq!(envelope.provider, key.provider.name());
            assert_eq!(envelope.key_name, key.key_name);
        }
        checked += 1;
    }
    assert_eq!(checked, 9); // eight keys and the plaintext value
}

// --- round trips ---------------------------------------------------------------------------

#[test]
fn round_trip_for_each_provider_and_key_size() {
    let plaintexts: [&[u8]; 5] = [b"", b"x", b"0123456789abcdef", &[7u8; 17], &[0u8; 4096]];
    for (provider, sizes, overhead) in [
        ("aescbc", &[16usize, 24, 32][..], 16),
        ("aesgcm", &[16, 24, 32][..], 12 + 16),
        ("secretbox", &[32][..], 24 + 16),
    ] {
        for &size in sizes {
            let config = config(&format!(
                "      - {provider}:\n          keys:\n            - name: k{size}\n              secret: {}\n",
                key_b64(size, size as u8)
            ));
            for plaintext in plaintexts {
                let stored = config.encrypt("secrets", KEY, plaintext).unwrap();
                let prefix = format!("k8s:enc:{provider}:v1:k{size}:");
                assert!(stored.starts_with(prefix.as_bytes()));
                let body = stored.len() - prefix.len();
                let expected_body = if provider == "aescbc" {
                    overhead + (plaintext.len() / 16 + 1) * 16
                } else {
                    overhead + plaintext.len()
                };
                assert_eq!(body, expected_body, "{provider} {size} {}", plaintext.len());
                let back = config.decrypt(KEY, &stored).unwrap();
                assert_eq!(back.plaintext(), plaintext);
                assert_eq!(back.key().unwrap().key_name, format!("k{size}"));
                assert_eq!(back.key().unwrap().provider.name(), provider);
                // Fresh IV or nonce every time.
                assert_ne!(stored, config.encrypt("secrets", KEY, plaintext).unwrap());
            }
        }
    }
}

#[test]
fn identity_and_unconfigured_resources_are_written_in_plaintext() {
    let identity_first = config(&format!(
        "      - identity: {{}}\n      - aescbc:\n          keys:\n            - name: k\n              secret: {}\n",
        key_b64(32, 1)
    ));
    assert_eq!(
        identity_first.encrypt("secrets", KEY, b"plain").unwrap(),
        b"plain"
    );
    assert_eq!(
        identity_first.decrypt(KEY, b"plain").unwrap(),
        Decrypted::Plain(b"plain")
    );
    // The aescbc key still reads values written before identity was moved first.
    let encrypting = config(&format!(
        "      - aescbc:\n          keys:\n            - name: k\n              secret: {}\n",
        key_b64(32, 1)
    ));
    let stored = encrypting.encrypt("secrets", KEY, b"old").unwrap();
    assert_eq!(
        identity_first.decrypt(KEY, &stored).unwrap().plaintext(),
        b"old"
    );
    // No rule for pods: stored as is.
    assert_eq!(encrypting.encrypt("pods", KEY, b"pod").unwrap(), b"pod");
}

#[test]
fn key_rotation_new_key_first_old_key_still_reads() {
    let old = key_b64(32, 1);
    let new = key_b64(32, 2);
    let before = config(&format!(
        "      - aesgcm:\n          keys:\n            - name: old\n              secret: {old}\n"
    ));
    let after = config(&format!(
        "      - aesgcm:\n          keys:\n            - name: new\n              secret: {new}\n            - name: old\n              secret: {old}\n"
    ));
    let written_before = before.encrypt("secrets", KEY, b"v1").unwrap();
    let written_after = after.encrypt("secrets", KEY, b"v2").unwrap();
    assert!(written_after.starts_with(b"k8s:enc:aesgcm:v1:new:"));
    let read = after.decrypt(KEY, &written_before).unwrap();
    assert_eq!(read.plaintext(), b"v1");
    assert_eq!(read.key().unwrap().key_name, "old");
    assert_eq!(
        after.decrypt(KEY, &written_after).unwrap().plaintext(),
        b"v2"
    );
    // Provider rotation: secretbox first now, the aesgcm values still read.
    let provider_rotated = config(&format!(
        "      - secretbox:\n          keys:\n            - name: sb\n              secret: {}\n      - aesgcm:\n          keys:\n            - name: new\n              secret: {new}\n            - name: old\n              secret: {old}\n",
        key_b64(32, 3)
    ));
    assert!(
        provider_rotated
            .encrypt("secrets", KEY, b"v3")
            .unwrap()
            .starts_with(b"k8s:enc:secretbox:v1:sb:")
    );
    assert_eq!(
        provider_rotated
            .decrypt(KEY, &written_before)
            .unwrap()
            .plaintext(),
        b"v1"
    );
    // Two keys with the same name (one rotated out by hand): both are tried.
    let same_name = config(&format!(
        "      - aesgcm:\n          keys:\n            - name: old\n              secret: {new}\n            - name: old\n              secret: {old}\n"
    ));
    assert_eq!(
        same_name.decrypt(KEY, &written_before).unwrap().plaintext(),
        b"v1"
    );
}

#[test]
fn resources_match_exactly_then_group_wildcard_then_everything() {
    let rule = |resources: &str, name: &str, seed: u8| {
        format!(
            "  - resources: [{resources}]\n    providers:\n      - aescbc:\n          keys:\n            - name: {name}\n              secret: {}\n",
            key_b64(16, seed)
        )
    };
    let text = format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n{}{}{}{}{}",
        rule("secrets", "secrets-key", 1),
        rule("deployments.apps", "deployments-key", 2),
        rule("'*.apps'", "apps-key", 3),
        rule("'*.'", "core-key", 4),
        rule("'*.*'", "all-key", 5),
    );
    let config = EncryptionConfig::from_slice(text.as_bytes()).unwrap();
    for (resource, key) in [
        ("secrets", "secrets-key"),
        ("deployments.apps", "deployments-key"),
        ("statefulsets.apps", "apps-key"),
        ("configmaps", "core-key"),
        ("widgets.example.com", "all-key"),
        ("leases.coordination.k8s.io", "all-key"),
    ] {
        let stored = config.encrypt(resource, KEY, b"x").unwrap();
        let prefix = format!("k8s:enc:aescbc:v1:{key}:");
        assert!(
            stored.starts_with(prefix.as_bytes()),
            "{resource}: {}",
            String::from_utf8_lossy(&stored[..prefix.len().min(stored.len())])
        );
        assert_eq!(config.decrypt(KEY, &stored).unwrap().plaintext(), b"x");
    }
    assert_eq!(
        config
            .providers_for(&GroupResource::parse("daemonsets.apps"))
            .len(),
        1
    );
    assert_eq!(GroupResource::parse("deployments.apps").group, "apps");
    assert_eq!(GroupResource::parse("*.").to_string(), "*.");
    assert_eq!(GroupResource::parse("secrets").to_string(), "secrets");

    // encrypt_object takes the resource from the key.
    let key = RegistryKey::parse(b"/registry/deployments/default/web").unwrap();
    let stored = config.encrypt_object(&key, b"d").unwrap();
    assert!(stored.starts_with(b"k8s:enc:aescbc:v1:deployments-key:"));
}

#[test]
fn kms_first_cannot_encrypt_offline() {
    let config = config(
        "      - kms:\n          apiVersion: v2\n          name: vault\n          endpoint: unix:///kms.sock\n",
    );
    let err = config.encrypt("secrets", KEY, b"x").unwrap_err();
    assert!(
        matches!(err, EncryptionError::KmsCannotEncrypt { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("KMS v2 plugin 'vault'"), "{err}");
    let Provider::Kms(kms) = &config.rules[0].providers[0] else {
        panic!()
    };
    assert_eq!(kms.prefix(), "k8s:enc:kms:v2:vault:");
}

// --- wrong keys and damaged values ---------------------------------------------------------

fn fixture_case(name: &str) -> Case {
    cases().into_iter().find(|c| c.name == name).unwrap()
}

#[test]
fn wrong_key_with_the_right_name_is_a_clear_error() {
    for (provider, name, case) in [
        ("aesgcm", "gcm-new", "aesgcm/gcm-new/secret-pb"),
        ("aescbc", "cbc-new", "aescbc/cbc-new/secret-pb"),
        ("secretbox", "sb-new", "secretbox/sb-new/secret-pb"),
    ] {
        let wrong = config(&format!(
            "      - {provider}:\n          keys:\n            - name: {name}\n              secret: {}\n",
            key_b64(32, 99)
        ));
        let case = fixture_case(case);
        let err = wrong
            .decrypt(case.storage_key.as_bytes(), &case.value)
            .unwrap_err();
        assert!(
            matches!(err, EncryptionError::DecryptFailed { .. }),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            message.contains(&format!("does not decrypt with {provider} key '{name}'")),
            "{message}"
        );
        assert!(message.contains(&case.storage_key), "{message}");
    }
}

#[test]
fn missing_key_names_provider_and_key() {
    let config = config_with_identity_only();
    let case = fixture_case("aescbc/cbc-old/json");
    let err = config
        .decrypt(case.storage_key.as_bytes(), &case.value)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("needs aescbc key 'cbc-old', not in the encryption configuration"),
        "{err}"
    );
    let EncryptionError::MissingKey {
        provider, key_name, ..
    } = err
    else {
        panic!()
    };
    assert_eq!(
        (provider, key_name.as_str()),
        (ProviderKind::AesCbc, "cbc-old")
    );
}

#[test]
fn aes_gcm_authenticates_the_etcd_key_secretbox_and_cbc_do_not() {
    let config = fixture_config();
    let gcm = fixture_case("aesgcm/gcm-mid/json");
    let err = config
        .decrypt(b"/registry/secrets/default/elsewhere", &gcm.value)
        .unwrap_err();
    assert!(err.to_string().contains("authentication failed"), "{err}");
    for name in ["secretbox/sb-old/json", "aescbc/cbc-mid/json"] {
        let case = fixture_case(name);
        let got = config
            .decrypt(b"/registry/secrets/default/elsewhere", &case.value)
            .unwrap();
        assert_eq!(got.plaintext(), case.expect.unwrap().0.as_slice(), "{name}");
    }
}

#[test]
fn truncated_values_are_errors_never_panics() {
    let config = fixture_config();
    for name in [
        "aesgcm/gcm-new/json",
        "aescbc/cbc-new/json",
        "secretbox/sb-new/json",
        "kms-v2",
        "kms-v1",
    ] {
        let case = fixture_case(name);
        let plaintext = case.expect.as_ref().map(|e| e.0.clone());
        for len in 0..case.value.len() {
            let value = &case.value[..len];
            match config.decrypt(case.storage_key.as_bytes(), value) {
                // A CBC value cut at a block boundary can, rarely, still end in valid
                // padding; it then never yields the original plaintext.
                Ok(got) if name.starts_with("aescbc") && len > 8 => {
                    assert_ne!(Some(got.plaintext().to_vec()), plaintext, "{name} at {len}");
                }
                // Shorter than `k8s:enc:`: not an encrypted value at all.
                Ok(got) => assert!(len < 8, "{name} at {len}: {got:?}"),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
}

#[test]
fn flipped_bits_in_authenticated_values_are_errors() {
    let config = fixture_config();
    for name in [
        "aesgcm/gcm-new/json",
        "aesgcm/gcm-old/empty",
        "secretbox/sb-old/json",
    ] {
        let case = fixture_case(name);
        let prefix_len = case
            .value
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b':')
            .nth(4)
            .unwrap()
            .0
            + 1;
        for i in prefix_len..case.value.len() {
            for bit in [0x01u8, 0x80] {
                let mut value = case.value.clone();
                value[i] ^= bit;
                let err = config
                    .decrypt(case.storage_key.as_bytes(), &value)
                    .unwrap_err();
                assert!(
                    matches!(err, EncryptionError::DecryptFailed { .. }),
                    "{name} byte {i}: {err}"
                );
            }
        }
    }
    // AES-CBC is not authenticated (as in kube-apiserver): a flipped bit either breaks the
    // padding or changes the plaintext, never silently returns the original.
    let case = fixture_case("aescbc/cbc-new/json");
    let plaintext = case.expect.unwrap().0;
    for i in 30..case.value.len() {
        let mut value = case.value.clone();
        value[i] ^= 0x04;
        if let Ok(got) = config.decrypt(case.storage_key.as_bytes(), &value) {
            assert_ne!(got.plaintext(), plaintext.as_slice(), "byte {i}");
        }
    }
}

#[test]
fn random_garbage_after_every_prefix_never_panics() {
    let config = fixture_config();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let prefixes = [
        "k8s:enc:aescbc:v1:cbc-new:",
        "k8s:enc:aescbc:v1:cbc-old:",
        "k8s:enc:aesgcm:v1:gcm-mid:",
        "k8s:enc:secretbox:v1:sb-new:",
        "k8s:enc:kms:v2:vault:",
        "k8s:enc:kms:v1:vault:",
        "k8s:enc:aescbc:v2:cbc-new:",
        "k8s:enc:rot13:v1:k:",
        "k8s:enc:aescbc",
        "k8s:enc:",
    ];
    for prefix in prefixes {
        for _ in 0..200 {
            let len = (rng.next() % 100) as usize;
            let mut value = prefix.as_bytes().to_vec();
            value.extend(rng.bytes(len));
            match config.decrypt(KEY, &value) {
                Ok(got) => {
                    // Only CBC can accept garbage (valid-looking padding); never the others.
                    assert!(
                        prefix.starts_with("k8s:enc:aescbc:v1:"),
                        "{prefix}: {got:?}"
                    );
                }
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
    let err = config.decrypt(KEY, b"k8s:enc:rot13:v1:k:abc").unwrap_err();
    assert!(
        matches!(err, EncryptionError::UnknownProvider { .. }),
        "{err}"
    );
    let err = config.decrypt(KEY, b"k8s:enc:aescbc").unwrap_err();
    assert!(matches!(err, EncryptionError::Malformed { .. }), "{err}");
    let err = config
        .decrypt(KEY, b"k8s:enc:kms:v2:vault:\xff\xff")
        .unwrap_err();
    assert!(matches!(err, EncryptionError::Malformed { .. }), "{err}");
}

// --- configurations ------------------------------------------------------------------------

#[test]
fn bad_base64_names_the_field_and_not_the_secret() {
    let (at, problem) = config_error(&yaml(
        "      - aescbc:\n          keys:\n            - name: k1\n              secret: not*base64!!\n",
    ));
    assert_eq!(at, "resources[0].providers[0].aescbc.keys[0].secret");
    assert!(
        problem.contains("key 'k1'") && problem.contains("not base64"),
        "{problem}"
    );
    assert!(!problem.contains("not*base64"), "{problem}");
    // Unpadded base64 is refused, as Go's StdEncoding refuses it.
    let unpadded = key_b64(16, 1).trim_end_matches('=').to_string();
    let (at, _) = config_error(&yaml(&format!(
        "      - aescbc:\n          keys:\n            - name: k1\n              secret: {unpadded}\n"
    )));
    assert!(at.ends_with(".secret"), "{at}");
}

#[test]
fn wrong_key_sizes_are_refused() {
    for (provider, size) in [("aescbc", 20), ("aesgcm", 8), ("secretbox", 16)] {
        let (at, problem) = config_error(&yaml(&format!(
            "      - {provider}:\n          keys:\n            - name: k\n              secret: {}\n",
            key_b64(size, 1)
        )));
        assert_eq!(
            at,
            format!("resources[0].providers[0].{provider}.keys[0].secret")
        );
        assert!(
            problem.contains(&format!("key is {size} bytes")),
            "{problem}"
        );
    }
}

#[test]
fn secrets_never_appear_in_debug_or_errors() {
    let secret = key_b64(32, 42);
    let config = config(&format!(
        "      - secretbox:\n          keys:\n            - name: k\n              secret: {secret}\n"
    ));
    let debug = format!("{config:?}");
    assert!(!debug.contains(&secret), "{debug}");
    assert!(debug.contains("redacted"), "{debug}");
    let raw = B64.decode(&secret).unwrap();
    assert!(!debug.contains(&format!("{raw:?}")[1..20]), "{debug}");
    // A secret put where a list belongs, or given as a number.
    for text in [
        yaml(&format!("      - secretbox:\n          keys: {secret}\n")),
        yaml(&format!(
            "      - secretbox:\n          keys:\n            - name: k\n              secret: [{secret}]\n"
        )),
        yaml(
            "      - secretbox:\n          keys:\n            - name: k\n              secret: 123456789\n",
        ),
    ] {
        let (at, problem) = config_error(&text);
        assert!(!problem.contains(&secret), "{problem}");
        assert!(!problem.contains("123456789"), "{problem}");
        assert!(!at.is_empty());
    }
}

#[test]
fn structural_mistakes_are_explained() {
    let one_key = |provider: &str| {
        format!(
            "      - {provider}:\n          keys:\n            - name: k\n              secret: {}\n",
            key_b64(32, 1)
        )
    };
    // Two providers in one element.
    let (at, problem) = config_error(&yaml(&format!(
        "{}        identity: {{}}\n",
        one_key("aescbc")
    )));
    assert_eq!(at, "resources[0].providers[0]");
    assert!(problem.contains("aescbc, identity"), "{problem}");
    // A typo.
    let (_, problem) = config_error(&yaml(
        "      - aescbc:\n          keys:\n            - name: k\n              secert: abc=\n",
    ));
    assert!(problem.contains("secert"), "{problem}");
    // Wrong kind.
    let (at, problem) = config_error(
        "apiVersion: v1\nkind: ConfigMap\nresources:\n  - resources: [secrets]\n    providers:\n      - identity: {}\n",
    );
    assert_eq!(at, "apiVersion/kind");
    assert!(problem.contains("ConfigMap"), "{problem}");
    // Empty.
    assert!(matches!(
        EncryptionConfig::from_slice(b"  \n"),
        Err(EncryptionError::Config { .. })
    ));
    // No keys.
    let (at, _) = config_error(&yaml("      - aesgcm:\n          keys: []\n"));
    assert_eq!(at, "resources[0].providers[0].aesgcm.keys");
    // A rule masked by an earlier wildcard.
    let (at, problem) = config_error(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: ['*.*']\n    providers:\n      - identity: {}\n  - resources: [secrets]\n    providers:\n      - identity: {}\n",
    );
    assert_eq!(at, "resources[1].resources[0]");
    assert!(
        problem.contains("masked by earlier rule '*.*'"),
        "{problem}"
    );
    // Overlap in one list.
    let (_, problem) = config_error(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n  - resources: [secrets, '*.']\n    providers:\n      - identity: {}\n",
    );
    assert!(problem.contains("overlaps"), "{problem}");
    // KMS v2 without endpoint.
    let (at, _) = config_error(&yaml(
        "      - kms:\n          apiVersion: v2\n          name: vault\n",
    ));
    assert_eq!(at, "resources[0].providers[0].kms.endpoint");
    // Unknown KMS version.
    let (at, _) = config_error(&yaml(
        "      - kms:\n          apiVersion: v3\n          name: vault\n          endpoint: unix:///s\n",
    ));
    assert_eq!(at, "resources[0].providers[0].kms.apiVersion");
}

#[test]
fn from_file_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let err = EncryptionConfig::from_file(&missing).unwrap_err();
    assert!(matches!(err, EncryptionError::ReadConfig { .. }), "{err}");
    assert!(err.to_string().contains("missing.yaml"), "{err}");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: EncryptionConfig\nresources: []\n",
    )
    .unwrap();
    let err = EncryptionConfig::from_file(&bad).unwrap_err();
    assert!(err.to_string().contains("bad.yaml"), "{err}");
    assert!(err.to_string().contains("at least one"), "{err}");
}
