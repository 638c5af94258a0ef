//! Encryption of backup data to age recipients (X25519), and ed25519 signatures of
//! manifests (keys as PKCS#8 / SPKI PEM, as `openssl genpkey -algorithm ed25519` writes
//! them).

use std::io::{Read, Write};
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signer, Verifier};

use crate::Error;

/// Largest plaintext an encrypted object may expand to (packs are far smaller).
const MAX_PLAINTEXT: u64 = 1 << 30;

/// Age recipients to encrypt to.
#[derive(Clone, Default)]
pub struct Recipients {
    keys: Vec<age::x25519::Recipient>,
}

impl std::fmt::Debug for Recipients {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.public_keys()).finish()
    }
}

impl Recipients {
    /// Parses `age1…` public keys.
    pub fn parse<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<Recipients, Error> {
        let mut out = Vec::new();
        for key in keys {
            let key = key.trim();
            if key.is_empty() || key.starts_with('#') {
                continue;
            }
            out.push(age::x25519::Recipient::from_str(key).map_err(|e| {
                Error::Crypto(format!(
                    "{key:?} is not an age X25519 recipient (age1…): {e}"
                ))
            })?);
        }
        Ok(Recipients { keys: out })
    }

    /// Reads a recipients file (one `age1…` per line, `#` comments).
    pub fn read_file(path: &Path) -> Result<Recipients, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Recipients::parse(text.lines())
    }

    /// Adds more.
    pub fn extend(&mut self, other: Recipients) {
        self.keys.extend(other.keys);
    }

    /// Whether any.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The `age1…` strings.
    pub fn public_keys(&self) -> Vec<String> {
        self.keys.iter().map(ToString::to_string).collect()
    }

    /// Encrypts bytes to every recipient (age binary format).
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<Vec<u8>, Error> {
        let encryptor =
            age::Encryptor::with_recipients(self.keys.iter().map(|k| k as &dyn age::Recipient))
                .map_err(|e| Error::Crypto(format!("age: {e}")))?;
        let mut out = Vec::with_capacity(plaintext.len() + 256);
        let mut writer = encryptor
            .wrap_output(&mut out)
            .map_err(|e| Error::Crypto(format!("age: {e}")))?;
        writer
            .write_all(plaintext)
            .and_then(|()| writer.finish().map(|_| ()))
            .map_err(|e| Error::Crypto(format!("age: {e}")))?;
        Ok(out)
    }
}

/// Age identities to decrypt with.
#[derive(Default)]
pub struct Identities {
    keys: Vec<Box<dyn age::Identity + Send + Sync>>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Identities({} keys)", self.keys.len())
    }
}

/// Whether bytes are an age file.
pub fn is_age(bytes: &[u8]) -> bool {
    bytes.starts_with(b"age-encryption.org/v1\n")
}

impl Identities {
    /// Reads an identity file as `age-keygen` writes it.
    pub fn read_file(path: &Path) -> Result<Identities, Error> {
        let file = std::fs::File::open(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let parsed =
            age::IdentityFile::from_buffer(std::io::BufReader::new(file)).map_err(|e| {
                Error::Crypto(format!("{}: not an age identity file: {e}", path.display()))
            })?;
        let keys = parsed
            .into_identities()
            .map_err(|e| Error::Crypto(format!("{}: {e}", path.display())))?;
        if keys.is_empty() {
            return Err(Error::Crypto(format!(
                "{}: holds no age identity (AGE-SECRET-KEY-1…)",
                path.display()
            )));
        }
        Ok(Identities { keys })
    }

    /// From parsed X25519 identities.
    pub fn from_x25519(keys: Vec<age::x25519::Identity>) -> Identities {
        Identities {
            keys: keys
                .into_iter()
                .map(|k| Box::new(k) as Box<dyn age::Identity + Send + Sync>)
                .collect(),
        }
    }

    /// Whether any.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// These and `other`'s.
    pub fn with(mut self, other: Identities) -> Identities {
        self.keys.extend(other.keys);
        self
    }

    /// Decrypts an age file; `what` names it in errors.
    pub fn decrypt(&self, what: &str, ciphertext: &[u8]) -> Result<Vec<u8>, Error> {
        if self.keys.is_empty() {
            return Err(Error::Crypto(format!(
                "{what} is encrypted: pass --identity FILE with an age identity of one of the \
                 backup's recipients"
            )));
        }
        let decryptor = age::Decryptor::new_buffered(ciphertext)
            .map_err(|e| Error::corrupt(what, format!("not a valid age file: {e}")))?;
        let mut reader = decryptor
            .decrypt(self.keys.iter().map(|k| k.as_ref() as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => Error::Crypto(format!(
                    "{what}: none of the identities given can decrypt it (it was encrypted to \
                     other recipients)"
                )),
                other => Error::corrupt(what, format!("cannot decrypt: {other}")),
            })?;
        let mut out = Vec::new();
        (&mut reader)
            .take(MAX_PLAINTEXT)
            .read_to_end(&mut out)
            .map_err(|e| {
                Error::corrupt(
                    what,
                    format!("decryption failed (damaged or tampered): {e}"),
                )
            })?;
        Ok(out)
    }
}

/// An ed25519 key that signs manifests.
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey(public {})", self.public_key().to_base64())
    }
}

/// An ed25519 public key that verifies manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl SigningKey {
    /// A new random key.
    pub fn generate() -> Result<SigningKey, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| Error::Crypto(format!("no randomness: {e}")))?;
        Ok(SigningKey(ed25519_dalek::SigningKey::from_bytes(&seed)))
    }

    /// Reads a PKCS#8 PEM private key.
    pub fn read_file(path: &Path) -> Result<SigningKey, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        ed25519_dalek::SigningKey::from_pkcs8_pem(&text)
            .map(SigningKey)
            .map_err(|e| {
                Error::Crypto(format!(
                    "{}: not an ed25519 private key in PKCS#8 PEM: {e}",
                    path.display()
                ))
            })
    }

    /// The key as PKCS#8 PEM.
    pub fn to_pem(&self) -> Result<String, Error> {
        self.0
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map(|s| s.to_string())
            .map_err(|e| Error::Crypto(e.to_string()))
    }

    /// Its public half.
    pub fn public_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    /// Signs bytes; the signature in base64.
    pub fn sign(&self, message: &[u8]) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0.sign(message).to_bytes())
    }
}

impl VerifyingKey {
    /// Reads an SPKI PEM public key (or the base64 raw key manifests carry).
    pub fn read_file(path: &Path) -> Result<VerifyingKey, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        VerifyingKey::parse(&text).map_err(|e| Error::Crypto(format!("{}: {e}", path.display())))
    }

    /// Parses SPKI PEM or base64 of the 32 raw bytes.
    pub fn parse(text: &str) -> Result<VerifyingKey, String> {
        if text.contains("-----BEGIN") {
            return ed25519_dalek::VerifyingKey::from_public_key_pem(text)
                .map(VerifyingKey)
                .map_err(|e| format!("not an ed25519 public key in PEM: {e}"));
        }
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|e| format!("not base64: {e}"))?;
        let raw: [u8; 32] = raw
            .try_into()
            .map_err(|_| "an ed25519 public key is 32 bytes".to_string())?;
        ed25519_dalek::VerifyingKey::from_bytes(&raw)
            .map(VerifyingKey)
            .map_err(|e| format!("not an ed25519 public key: {e}"))
    }

    /// SPKI PEM.
    pub fn to_pem(&self) -> Result<String, Error> {
        self.0
            .to_public_key_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .map_err(|e| Error::Crypto(e.to_string()))
    }

    /// Base64 of the raw 32 bytes (what manifests record).
    pub fn to_base64(&self) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(self.0.as_bytes())
    }

    /// Checks a base64 signature of `message`.
    pub fn verify(&self, message: &[u8], signature: &str) -> bool {
        use base64::Engine as _;
        let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(signature) else {
            return false;
        };
        let Ok(raw): Result<[u8; 64], _> = raw.try_into() else {
            return false;
        };
        self.0
            .verify(message, &ed25519_dalek::Signature::from_bytes(&raw))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_round_trip_and_wrong_key() {
        let id = age::x25519::Identity::generate();
        let other = age::x25519::Identity::generate();
        let r = Recipients::parse([id.to_public().to_string().as_str()]).unwrap();
        let ct = r.encrypt(b"secret data").unwrap();
        assert!(is_age(&ct));
        let ids = Identities::from_x25519(vec![id]);
        assert_eq!(ids.decrypt("x", &ct).unwrap(), b"secret data");
        let wrong = Identities::from_x25519(vec![other]);
        assert!(matches!(wrong.decrypt("x", &ct), Err(Error::Crypto(_))));
        let mut bad = ct.clone();
        let n = bad.len() - 3;
        bad[n] ^= 1;
        assert!(ids.decrypt("x", &bad).is_err());
    }

    #[test]
    fn signatures_verify_and_pem_round_trips() {
        let key = SigningKey::generate().unwrap();
        let sig = key.sign(b"manifest");
        let public = key.public_key();
        assert!(public.verify(b"manifest", &sig));
        assert!(!public.verify(b"manifest!", &sig));
        let pem = key.to_pem().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k"), pem).unwrap();
        let again = SigningKey::read_file(&dir.path().join("k")).unwrap();
        assert_eq!(again.public_key(), public);
        let pub_pem = public.to_pem().unwrap();
        assert_eq!(VerifyingKey::parse(&pub_pem).unwrap(), public);
        assert_eq!(VerifyingKey::parse(&public.to_base64()).unwrap(), public);
    }
}
