//! [`Garage`]: a real S3 server (Garage 2, crates.io `garage`) on loopback, in a
//! temporary directory.
//!
//! One node with `replication_factor = 1` and a SQLite metadata db, started with
//! `garage server --single-node --default-bucket`: Garage lays out the single-node
//! cluster itself and creates the access key and the bucket `salvor` from environment
//! variables before its APIs answer. The S3 API listens on `http://127.0.0.1:<port>`
//! (path-style requests), the admin API (for [`Garage::create_bucket`] and the
//! readiness check, `GET /health`) on another port.
//!
//! ```no_run
//! # async fn example() -> Result<(), testenv::Error> {
//! let mut garage = testenv::Garage::start().await?;
//! println!("{} {}", garage.endpoint(), garage.url("backups/")); // s3://salvor/backups/
//! garage.stop().await?; // killed: requests fail now
//! garage.start_again().await?; // same data, same ports
//! # Ok(())
//! # }
//! ```

use std::ffi::OsString;
use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::Error;
use crate::cluster::{log_tail, reserve_ports};
use crate::process::{self, ProcessSpec};

/// Environment variable naming the garage binary to run.
pub const GARAGE_BINARY_ENV: &str = "GARAGE";

/// The bucket every [`Garage`] has.
pub const DEFAULT_BUCKET: &str = "salvor";

/// The S3 region Garage is configured with (`s3_region`).
pub const REGION: &str = "garage";

/// Time allowed for Garage to answer after it was spawned.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Time allowed for Garage to exit after SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// Time allowed for one admin API request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Start attempts with new ports when a port was taken before Garage bound it.
const START_ATTEMPTS: usize = 4;

/// The garage binary to run: `$GARAGE` if set, else `garage` on `PATH`, else
/// `${SALVOR_CACHE:-~/.cache/salvor}/garage/bin/garage` (where `.ci/run` installs it).
pub fn binary() -> Result<PathBuf, Error> {
    if let Some(path) = std::env::var_os(GARAGE_BINARY_ENV).filter(|path| !path.is_empty()) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(Error::GarageMissing {
                problem: format!(
                    "${GARAGE_BINARY_ENV} is {}, which is not an executable file",
                    path.display()
                ),
            })
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("garage"))
                .find(|candidate| is_executable(candidate))
        })
        .unwrap_or_default();
    if let Some(path) = on_path {
        return Ok(path);
    }
    let cache = cache_binary();
    match &cache {
        Some(path) if is_executable(path) => Ok(path.clone()),
        _ => Err(Error::GarageMissing {
            problem: format!(
                "garage not found: ${GARAGE_BINARY_ENV} is not set, there is no garage on PATH, and no {}",
                cache.map_or_else(
                    || "$HOME to look in".to_string(),
                    |path| path.display().to_string()
                )
            ),
        }),
    }
}

/// `${SALVOR_CACHE:-$HOME/.cache/salvor}/garage/bin/garage`.
fn cache_binary() -> Option<PathBuf> {
    let cache = std::env::var_os("SALVOR_CACHE")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|home| !home.is_empty())
                .map(|home| PathBuf::from(home).join(".cache").join("salvor"))
        })?;
    Some(cache.join("garage").join("bin").join("garage"))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// Checks that `binary` runs and is Garage 2 or later (`--single-node` and the admin
/// API v2 are needed); returns its version line.
fn check_version(binary: &Path) -> Result<String, Error> {
    let output = Command::new(binary)
        .arg("--version")
        .output()
        .map_err(|error| Error::GarageMissing {
            problem: format!("cannot run {}: {error}", binary.display()),
        })?;
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if !output.status.success() {
        return Err(Error::GarageMissing {
            problem: format!(
                "`{} --version` failed ({}): {}",
                binary.display(),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    // `garage cargo:2.5.0 [features: …]` or `garage v2.1.0 …`.
    let major = text
        .split_whitespace()
        .nth(1)
        .map(|version| {
            version
                .trim_start_matches("cargo:")
                .trim_start_matches('v')
                .split('.')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .and_then(|major| major.parse::<u32>().ok());
    match major {
        Some(major) if major >= 2 => Ok(text),
        _ => Err(Error::GarageMissing {
            problem: format!(
                "{} is not Garage 2 or later (`--version` says {text:?})",
                binary.display()
            ),
        }),
    }
}

/// One request over plain HTTP/1.0 to 127.0.0.1:`port` (the server closes the
/// connection after answering), bounded in time: (status code, body).
async fn http_request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Result<(u16, String), String> {
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}"))?
        .map_err(|error| error.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP response: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("no status code in {head:?}"))?;
    Ok((status, body.to_string()))
}

/// `bytes` random bytes as lowercase hex.
fn random_hex(bytes: usize) -> Result<String, Error> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer)
        .map_err(|error| Error::Prepare(format!("no randomness: {error}")))?;
    Ok(buffer.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// A running Garage server on 127.0.0.1 with one access key and the bucket
/// [`DEFAULT_BUCKET`], which the key may read, write and own.
///
/// Dropping it kills the server (SIGKILL) and removes its directory; if the test
/// process dies without unwinding, the kernel kills the server (parent-death signal).
#[derive(Debug)]
pub struct Garage {
    binary: PathBuf,
    config: PathBuf,
    log: PathBuf,
    /// Length of the log when the server was last spawned: what it wrote since.
    log_offset: u64,
    s3_port: u16,
    admin_port: u16,
    access_key_id: String,
    secret_access_key: String,
    admin_token: String,
    process: Option<Child>,
    /// Declared last so that it is removed after the server is killed.
    dir: TempDir,
}

/// Why one start attempt failed.
enum StartFailure {
    /// A port was taken before Garage could bind it: try again with new ports.
    PortTaken(Error),
    /// Anything else.
    Fatal(Error),
}

impl From<Error> for StartFailure {
    fn from(error: Error) -> Self {
        StartFailure::Fatal(error)
    }
}

impl Garage {
    /// Starts Garage ([`binary`]) on free 127.0.0.1 ports in a temporary directory and
    /// waits (at most 30 s) until its S3 and admin APIs answer, with one access key
    /// and the bucket [`DEFAULT_BUCKET`].
    pub async fn start() -> Result<Self, Error> {
        let binary = binary()?;
        let version = check_version(&binary)?;
        debug!(binary = %binary.display(), %version, "starting garage");
        for attempt in 1..=START_ATTEMPTS {
            match Self::try_start(&binary).await {
                Ok(garage) => return Ok(garage),
                Err(StartFailure::PortTaken(error)) if attempt < START_ATTEMPTS => {
                    warn!(attempt, %error, "a port was taken while garage started; retrying with new ports");
                }
                Err(StartFailure::PortTaken(error) | StartFailure::Fatal(error)) => {
                    return Err(error);
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn try_start(binary: &Path) -> Result<Self, StartFailure> {
        let dir = tempfile::Builder::new()
            .prefix("testenv-garage-")
            .tempdir()
            .map_err(|source| {
                Error::io("create a temporary directory", std::env::temp_dir(), source)
            })?;
        let ports = reserve_ports(3)?;
        let (s3_port, rpc_port, admin_port) = (ports[0], ports[1], ports[2]);
        let config = dir.path().join("garage.toml");
        let admin_token = random_hex(32)?;
        // Garage's key ids are `GK` and 12 bytes in hex; secrets 32 bytes in hex.
        let access_key_id = format!("GK{}", random_hex(12)?);
        let secret_access_key = random_hex(32)?;
        let text = format!(
            r#"# Written by testenv: one Garage node on loopback.
metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:{rpc_port}"
rpc_public_addr = "127.0.0.1:{rpc_port}"
rpc_secret = "{rpc_secret}"

[s3_api]
api_bind_addr = "127.0.0.1:{s3_port}"
s3_region = "{REGION}"

[admin]
api_bind_addr = "127.0.0.1:{admin_port}"
admin_token = "{admin_token}"
"#,
            meta = dir.path().join("meta").display(),
            data = dir.path().join("data").display(),
            rpc_secret = random_hex(32)?,
        );
        // Garage refuses a config file holding secrets that others may read.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&config)
            .and_then(|mut file| file.write_all(text.as_bytes()))
            .map_err(|source| Error::io("write the garage config", &config, source))?;
        let mut garage = Garage {
            binary: binary.to_path_buf(),
            log: dir.path().join("garage.log"),
            config,
            log_offset: 0,
            s3_port,
            admin_port,
            access_key_id,
            secret_access_key,
            admin_token,
            process: None,
            dir,
        };
        garage.spawn()?;
        if let Err(error) = garage.wait_ready().await {
            return Err(match &error {
                Error::GarageExited { log_tail, .. }
                    if log_tail.contains("Address already in use")
                        || log_tail.contains("address already in use") =>
                {
                    StartFailure::PortTaken(error)
                }
                _ => StartFailure::Fatal(error),
            });
        }
        info!(
            endpoint = %garage.endpoint(),
            dir = %garage.dir.path().display(),
            "garage started"
        );
        Ok(garage)
    }

    fn spawn(&mut self) -> Result<(), Error> {
        let env = [
            ("GARAGE_DEFAULT_ACCESS_KEY", self.access_key_id.as_str()),
            ("GARAGE_DEFAULT_SECRET_KEY", self.secret_access_key.as_str()),
            ("GARAGE_DEFAULT_BUCKET", DEFAULT_BUCKET),
            ("NO_COLOR", "1"),
            ("RUST_LOG", "warn,garage=info"),
        ];
        let spec = ProcessSpec {
            program: self.binary.clone(),
            args: vec![
                "-c".into(),
                self.config.clone().into(),
                "server".into(),
                "--single-node".into(),
                "--default-bucket".into(),
            ],
            log: self.log.clone(),
            env: env
                .iter()
                .map(|(name, value)| (OsString::from(name), OsString::from(value)))
                .collect(),
        };
        self.log_offset = fs::metadata(&self.log).map_or(0, |meta| meta.len());
        debug!(?spec.args, "spawning garage");
        let child = process::spawn(spec).map_err(|source| Error::Process {
            action: "spawn",
            process: "garage server".to_string(),
            source,
        })?;
        self.process = Some(child);
        Ok(())
    }

    /// Waits until the admin API's `/health` says the cluster is operational and the
    /// S3 API refuses an anonymous request as Garage does (403 `AccessDenied`), or fails
    /// when Garage exits, logs that an API server failed, or 30 s pass.
    async fn wait_ready(&mut self) -> Result<(), Error> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.check_running()?;
            let last_error = match self.ready().await {
                Ok(()) => return Ok(()),
                Err(error) => error,
            };
            if Instant::now() >= deadline {
                return Err(Error::GarageStartTimeout {
                    timeout: START_TIMEOUT,
                    last_error,
                    log: self.log.clone(),
                    log_tail: log_tail(&self.log),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One readiness check.
    async fn ready(&self) -> Result<(), String> {
        let (status, body) = self
            .admin_request("GET", "/health", None)
            .await
            .map_err(|error| error.to_string())?;
        if status != 200 {
            return Err(format!("GET /health: {status} {}", body.trim()));
        }
        // Anonymous requests are refused, in S3's words.
        let (status, body) = http_request(self.s3_port, "GET", "/", &[], "")
            .await
            .map_err(|error| format!("S3 API: {error}"))?;
        if status != 403 || !body.contains("AccessDenied") {
            return Err(format!(
                "S3 API: an anonymous GET / answered {status} {}",
                body.trim()
            ));
        }
        Ok(())
    }

    /// Fails with the log's tail when the server has exited.
    fn check_running(&mut self) -> Result<(), Error> {
        let Some(child) = self.process.as_mut() else {
            return Err(Error::GarageExited {
                status: "stopped by testenv".to_string(),
                log: self.log.clone(),
                log_tail: log_tail(&self.log),
            });
        };
        let exited = child.try_wait().map_err(|source| Error::Process {
            action: "wait for",
            process: "garage server".to_string(),
            source,
        })?;
        if let Some(status) = exited {
            self.process = None;
            return Err(Error::GarageExited {
                status: status.to_string(),
                log: self.log.clone(),
                log_tail: log_tail(&self.log),
            });
        }
        // An API server that cannot bind its port ends, while the process runs on.
        if self
            .log_since_spawn()
            .contains("API server exited with error")
        {
            if let Some(mut child) = self.process.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
            return Err(Error::GarageExited {
                status: "killed by testenv: an API server of it failed".to_string(),
                log: self.log.clone(),
                log_tail: log_tail(&self.log),
            });
        }
        Ok(())
    }

    /// What the server logged since it was last spawned (at most the last 64 KiB).
    fn log_since_spawn(&self) -> String {
        use std::io::{Read as _, Seek as _, SeekFrom};
        const MAX_BYTES: u64 = 64 * 1024;
        let read = || -> std::io::Result<String> {
            let mut file = fs::File::open(&self.log)?;
            let len = file.metadata()?.len();
            file.seek(SeekFrom::Start(
                self.log_offset.max(len.saturating_sub(MAX_BYTES)),
            ))?;
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        };
        read().unwrap_or_default()
    }

    /// One request to the admin API: (status code, body).
    async fn admin_request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, String), Error> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let authorization = format!("Bearer {}", self.admin_token);
        http_request(
            self.admin_port,
            method,
            path,
            &[
                ("Authorization", authorization.as_str()),
                ("Content-Type", "application/json"),
            ],
            &body,
        )
        .await
        .map_err(|problem| Error::GarageAdmin {
            request: format!("{method} {path}"),
            problem,
        })
    }

    /// An admin API call that must answer 200 with JSON.
    async fn admin_call(&self, endpoint: &str, body: &Value) -> Result<Value, Error> {
        let path = format!("/v2/{endpoint}");
        let (status, text) = self.admin_request("POST", &path, Some(body)).await?;
        let failed = |problem: String| Error::GarageAdmin {
            request: format!("POST {path}"),
            problem,
        };
        if status != 200 {
            return Err(failed(format!("{status}: {}", text.trim())));
        }
        serde_json::from_str(&text).map_err(|error| failed(format!("{error} in {text:?}")))
    }

    /// Creates the bucket `name` and lets the access key read, write and own it.
    pub async fn create_bucket(&self, name: &str) -> Result<(), Error> {
        let bucket = self
            .admin_call("CreateBucket", &json!({"globalAlias": name}))
            .await?;
        let id = bucket["id"].as_str().ok_or_else(|| Error::GarageAdmin {
            request: "POST /v2/CreateBucket".to_string(),
            problem: format!("no bucket id in {bucket}"),
        })?;
        self.admin_call(
            "AllowBucketKey",
            &json!({
                "bucketId": id,
                "accessKeyId": self.access_key_id,
                "permissions": {"read": true, "write": true, "owner": true},
            }),
        )
        .await?;
        info!(bucket = name, "garage bucket created");
        Ok(())
    }

    /// The S3 endpoint, `http://127.0.0.1:<port>` (path-style requests).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    /// The admin API endpoint, `http://127.0.0.1:<port>` (bearer [`Garage::admin_token`]).
    pub fn admin_endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.admin_port)
    }

    /// The admin API's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The S3 region, [`REGION`].
    pub fn region(&self) -> &str {
        REGION
    }

    /// The bucket created at start, [`DEFAULT_BUCKET`].
    pub fn bucket(&self) -> &str {
        DEFAULT_BUCKET
    }

    /// The access key id (`GK…`).
    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    /// The secret access key.
    pub fn secret_access_key(&self) -> &str {
        &self.secret_access_key
    }

    /// `s3://salvor/<prefix>` (a leading `/` of `prefix` is dropped).
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{}", self.bucket(), prefix.trim_start_matches('/'))
    }

    /// The environment for an S3 client run as a subprocess: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`, and `AWS_ALLOW_HTTP`
    /// (`true`: the endpoint is plain HTTP; read by object_store's `from_env`).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key_id.clone()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.clone()),
            ("AWS_REGION", REGION.to_string()),
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    /// What a client needs, as JSON: endpoint, region, bucket, access key, secret,
    /// `s3://` URL of the bucket and the server's directory.
    pub fn description(&self) -> Value {
        json!({
            "endpoint": self.endpoint(),
            "region": self.region(),
            "bucket": self.bucket(),
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "url": self.url(""),
            "dir": self.dir.path(),
        })
    }

    /// The server's directory (config, log, metadata and data).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's log file (stdout and stderr).
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Whether the server process is running (false after [`Garage::stop`], or when it
    /// died).
    pub fn is_running(&mut self) -> bool {
        self.check_running().is_ok()
    }

    /// Kills the server (SIGKILL, like a crash) and reaps it. Its data, ports and
    /// credentials are kept for [`Garage::start_again`]; until then every S3 request
    /// fails to connect. What was acknowledged before survives (checked by the tests).
    ///
    /// Not SIGTERM: Garage's graceful shutdown waits for clients' idle keep-alive
    /// connections, which object_store keeps open.
    pub async fn stop(&mut self) -> Result<(), Error> {
        let Some(mut child) = self.process.take() else {
            return Ok(());
        };
        let failed = |action| {
            move |source| Error::Process {
                action,
                process: "garage server".to_string(),
                source,
            }
        };
        child.kill().map_err(failed("kill"))?;
        // SIGKILL cannot be ignored; the exit is immediate, but stay bounded anyway.
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Some(status) = child.try_wait().map_err(failed("wait for"))? {
                info!(%status, "garage stopped");
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Process {
                    action: "wait for",
                    process: "garage server".to_string(),
                    source: std::io::Error::other(format!(
                        "still running {STOP_TIMEOUT:?} after SIGKILL"
                    )),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Starts the server again (stopping it first if it runs) with the same directory,
    /// ports and credentials, and waits (at most 30 s) until it answers.
    pub async fn start_again(&mut self) -> Result<(), Error> {
        self.stop().await?;
        self.spawn()?;
        self.wait_ready().await?;
        info!(endpoint = %self.endpoint(), "garage started again");
        Ok(())
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if let Some(mut child) = self.process.take() {
            // Errors mean it is already gone; nothing else to do in a destructor.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
