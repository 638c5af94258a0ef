//! Where Salvor keeps what it saves: a directory (the default for users without S3) or
//! an S3 bucket and prefix (AWS or any S3-compatible server: endpoint and path-style
//! options). Backup repositories and etcd snapshots both go through it.
//!
//! Everything goes through [`Storage`], which adds the retry policy, maps errors to
//! [`Error`] with the object's location, and keeps a count of the bytes uploaded.
//! Small objects are written whole ([`Storage::put`]); large ones are streamed
//! ([`Storage::upload`], [`Storage::download`]), so memory does not grow with them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::prefix::PrefixStore;
use object_store::{BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig};

pub mod error;
pub mod transfer;

pub use error::{Error, is_transient};
pub use transfer::{Download, Upload};

/// A parsed `--storage` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUrl {
    /// A directory: a plain path or `file:///path`.
    Dir(PathBuf),
    /// `s3://bucket/prefix`.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket (no leading or trailing slash; may be empty).
        prefix: String,
    },
}

impl StorageUrl {
    /// Splits the URL of one object (`s3://bucket/dir/snapshot.db`, `file:///dir/x.db`,
    /// `dir/x.db`) into the location of its directory and its name in it.
    pub fn parse_object(url: &str) -> Result<(StorageUrl, String), Error> {
        let trimmed = url.trim_end_matches('/');
        if trimmed.len() != url.len() || trimmed.is_empty() {
            return Err(Error::Invalid(format!(
                "{url}: names a directory, not an object (expected e.g. s3://bucket/etcd/snapshot.db)"
            )));
        }
        if let Some(rest) = trimmed.strip_prefix("s3://")
            && !rest.contains('/')
        {
            return Err(Error::Invalid(format!(
                "{url}: no object name after the bucket (expected s3://BUCKET/KEY)"
            )));
        }
        let (dir, name) = match trimmed.rsplit_once('/') {
            Some(("", name)) => ("/".to_string(), name),
            Some((dir, name)) if dir.ends_with("://") => (format!("{dir}/"), name),
            Some((dir, name)) => (dir.to_string(), name),
            None => (".".to_string(), trimmed),
        };
        if name.is_empty() || name == "." || name == ".." {
            return Err(Error::Invalid(format!(
                "{url}: {name:?} is not an object name"
            )));
        }
        Ok((StorageUrl::parse(&dir)?, name.to_string()))
    }

    /// Whether this is object storage rather than a local directory.
    pub fn is_remote(&self) -> bool {
        matches!(self, StorageUrl::S3 { .. })
    }

    /// Parses a directory path, `file://` URL or `s3://bucket/prefix`.
    pub fn parse(url: &str) -> Result<StorageUrl, Error> {
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(Error::Invalid(format!(
                    "{url}: no bucket name (expected s3://BUCKET/PREFIX)"
                )));
            }
            return Ok(StorageUrl::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.trim_matches('/').to_string(),
            });
        }
        if let Some(path) = url.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(Error::Invalid(format!(
                    "{url}: a file:// URL needs an absolute path (file:///var/backups)"
                )));
            }
            return Ok(StorageUrl::Dir(PathBuf::from(path)));
        }
        if url.contains("://") {
            return Err(Error::Invalid(format!(
                "{url}: unsupported storage URL (use a directory, file:///path or s3://bucket/prefix)"
            )));
        }
        if url.is_empty() {
            return Err(Error::Invalid("--storage is empty".to_string()));
        }
        Ok(StorageUrl::Dir(PathBuf::from(url)))
    }
}

impl std::fmt::Display for StorageUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageUrl::Dir(p) => write!(f, "{}", p.display()),
            StorageUrl::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            StorageUrl::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// S3 connection settings beyond the `AWS_*` environment variables.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Endpoint of an S3-compatible server (`http://127.0.0.1:3900`); `$AWS_ENDPOINT_URL`
    /// when absent.
    pub endpoint: Option<String>,
    /// Region; `$AWS_REGION` / `$AWS_DEFAULT_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Path-style requests (`endpoint/bucket/key`). Defaults to on when an endpoint is
    /// set (what S3-compatible servers expect) and off for AWS.
    pub path_style: Option<bool>,
    /// Access key id and secret, instead of `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` (never printed: `Debug` hides the secret).
    pub credentials: Option<S3Credentials>,
}

/// Static S3 credentials.
#[derive(Clone)]
pub struct S3Credentials {
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key.
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// How to reach and retry storage.
#[derive(Debug, Clone)]
pub struct StorageOptions {
    /// S3 settings.
    pub s3: S3Options,
    /// Give up on one request after retrying this long (connection refused, 5xx, 429).
    pub retry_timeout: Duration,
}

impl Default for StorageOptions {
    fn default() -> Self {
        StorageOptions {
            s3: S3Options::default(),
            retry_timeout: Duration::from_secs(60),
        }
    }
}

/// An open storage location.
#[derive(Debug, Clone)]
pub struct Storage {
    pub(crate) store: Arc<dyn ObjectStore>,
    url: StorageUrl,
    pub(crate) uploaded: Arc<AtomicU64>,
}

fn env_any(keys: &[&str]) -> Option<String> {
    keys.iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

impl Storage {
    /// Opens the location (creating a directory if needed; nothing is written to S3).
    pub fn open(url: &StorageUrl, options: &StorageOptions) -> Result<Storage, Error> {
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(5),
                base: 2.0,
            },
            max_retries: 10,
            retry_timeout: options.retry_timeout,
        };
        let store: Arc<dyn ObjectStore> = match url {
            StorageUrl::Dir(path) => {
                std::fs::create_dir_all(path).map_err(|source| Error::Io {
                    path: path.clone(),
                    source,
                })?;
                let fs = LocalFileSystem::new_with_prefix(path)
                    .map_err(|e| Error::store(url.to_string(), e))?;
                Arc::new(fs)
            }
            StorageUrl::S3 { bucket, prefix } => {
                install_crypto_provider();
                let endpoint = options
                    .s3
                    .endpoint
                    .clone()
                    .or_else(|| env_any(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]));
                let region = options
                    .s3
                    .region
                    .clone()
                    .or_else(|| env_any(&["AWS_REGION", "AWS_DEFAULT_REGION"]))
                    .unwrap_or_else(|| "us-east-1".to_string());
                let path_style = options.s3.path_style.unwrap_or(endpoint.is_some());
                let mut builder = AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .with_virtual_hosted_style_request(!path_style)
                    .with_retry(retry);
                if let Some(c) = &options.s3.credentials {
                    builder = builder
                        .with_access_key_id(&c.access_key_id)
                        .with_secret_access_key(&c.secret_access_key);
                }
                if let Some(endpoint) = endpoint {
                    builder = builder
                        .with_allow_http(endpoint.starts_with("http://"))
                        .with_endpoint(endpoint);
                }
                let s3 = builder
                    .build()
                    .map_err(|e| Error::store(url.to_string(), e))?;
                if prefix.is_empty() {
                    Arc::new(s3)
                } else {
                    Arc::new(PrefixStore::new(s3, prefix.as_str()))
                }
            }
        };
        Ok(Storage {
            store,
            url: url.clone(),
            uploaded: Arc::new(AtomicU64::new(0)),
        })
    }

    /// The URL, for messages.
    pub fn url(&self) -> &StorageUrl {
        &self.url
    }

    /// Bytes written by this handle (and its clones) so far.
    pub fn uploaded_bytes(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    /// Where an object is, for messages (`s3://bucket/prefix/key`, `/dir/key`).
    pub fn location(&self, key: &str) -> String {
        match &self.url {
            StorageUrl::Dir(p) => format!("{}/{key}", p.display()),
            other => format!("{other}/{key}"),
        }
    }

    /// Writes an object atomically (readers see all of it or nothing).
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<(), Error> {
        let len = bytes.len() as u64;
        self.store
            .put(&StorePath::from(key), PutPayload::from_bytes(bytes))
            .await
            .map_err(|e| Error::store(self.location(key), e))?;
        self.uploaded.fetch_add(len, Ordering::Relaxed);
        Ok(())
    }

    /// Reads a whole object, refusing more than `limit` bytes.
    pub async fn get(&self, key: &str, limit: u64) -> Result<Bytes, Error> {
        let result = self
            .store
            .get(&StorePath::from(key))
            .await
            .map_err(|e| self.not_found_or(key, e))?;
        if result.meta.size > limit {
            return Err(Error::TooLarge {
                location: self.location(key),
                size: result.meta.size,
                limit,
            });
        }
        result
            .bytes()
            .await
            .map_err(|e| Error::store(self.location(key), e))
    }

    /// Reads an object if it exists.
    pub async fn get_opt(&self, key: &str, limit: u64) -> Result<Option<Bytes>, Error> {
        match self.get(key, limit).await {
            Ok(b) => Ok(Some(b)),
            Err(Error::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn not_found_or(&self, key: &str, e: object_store::Error) -> Error {
        if matches!(e, object_store::Error::NotFound { .. }) {
            Error::NotFound(format!("{}: no such object", self.location(key)))
        } else {
            Error::store(self.location(key), e)
        }
    }

    /// Whether an object exists, and its size.
    pub async fn size(&self, key: &str) -> Result<Option<u64>, Error> {
        match self.store.head(&StorePath::from(key)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::store(self.location(key), e)),
        }
    }

    /// Deletes an object (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<(), Error> {
        match self.store.delete(&StorePath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::store(self.location(key), e)),
        }
    }

    /// Keys (and sizes) under a prefix (`packs/`), recursively.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, Error> {
        let prefix_path = StorePath::from(prefix.trim_end_matches('/'));
        let metas: Vec<_> = self
            .store
            .list(Some(&prefix_path))
            .try_collect()
            .await
            .map_err(|e| Error::store(self.location(prefix), e))?;
        let mut out: Vec<(String, u64)> = metas
            .into_iter()
            .map(|m| (m.location.to_string(), m.size))
            .collect();
        out.sort();
        Ok(out)
    }

    /// The "directories" directly under a prefix (`backups/` -> backup names).
    pub async fn list_dirs(&self, prefix: &str) -> Result<Vec<String>, Error> {
        let prefix_path = StorePath::from(prefix.trim_end_matches('/'));
        let result = self
            .store
            .list_with_delimiter(Some(&prefix_path))
            .await
            .map_err(|e| Error::store(self.location(prefix), e))?;
        let mut out: Vec<String> = result
            .common_prefixes
            .into_iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }
}

/// Makes ring rustls's process-wide default. kube and tonic pick ring by themselves,
/// but object_store's HTTP client (reqwest built without a provider of its own, see
/// the workspace manifest) needs a process default. Harmless when one is installed.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse() {
        assert_eq!(
            StorageUrl::parse("s3://b/p/q/").unwrap(),
            StorageUrl::S3 {
                bucket: "b".into(),
                prefix: "p/q".into()
            }
        );
        assert_eq!(
            StorageUrl::parse("file:///x").unwrap(),
            StorageUrl::Dir("/x".into())
        );
        assert_eq!(
            StorageUrl::parse("rel/dir").unwrap(),
            StorageUrl::Dir("rel/dir".into())
        );
        assert!(StorageUrl::parse("s3:///p").is_err());
        assert!(StorageUrl::parse("gs://x").is_err());
        assert!(StorageUrl::parse("file://rel").is_err());
    }

    #[test]
    fn object_urls_parse() {
        let s3 = |bucket: &str, prefix: &str| StorageUrl::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
        };
        assert_eq!(
            StorageUrl::parse_object("s3://b/etcd/daily/snap.db").unwrap(),
            (s3("b", "etcd/daily"), "snap.db".to_string())
        );
        assert_eq!(
            StorageUrl::parse_object("s3://b/snap.db").unwrap(),
            (s3("b", ""), "snap.db".to_string())
        );
        assert_eq!(
            StorageUrl::parse_object("file:///var/x.db").unwrap(),
            (StorageUrl::Dir("/var".into()), "x.db".to_string())
        );
        assert_eq!(
            StorageUrl::parse_object("file:///x.db").unwrap(),
            (StorageUrl::Dir("/".into()), "x.db".to_string())
        );
        assert_eq!(
            StorageUrl::parse_object("x.db").unwrap(),
            (StorageUrl::Dir(".".into()), "x.db".to_string())
        );
        assert_eq!(
            StorageUrl::parse_object("a/x.db").unwrap(),
            (StorageUrl::Dir("a".into()), "x.db".to_string())
        );
        for bad in [
            "s3://b",
            "s3://b/",
            "s3://b/dir/",
            "s3:///x",
            "s3://b/..",
            "",
            "gs://b/x",
        ] {
            assert!(StorageUrl::parse_object(bad).is_err(), "{bad}");
        }
    }
}
