//! The error type of testenv.

use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong setting up or driving the test environment.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The etcd or etcdctl binary is missing.
    #[error(
        "{binary} not found ({source}); install etcd 3.4 with `apt-get install etcd-server etcd-client`"
    )]
    BinaryMissing {
        /// The binary looked for.
        binary: PathBuf,
        /// Why it could not be run.
        #[source]
        source: std::io::Error,
    },

    /// A damage could not be applied to the given file.
    #[error("cannot damage the file: {0}")]
    Damage(String),

    /// A file system operation failed.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// A process could not be spawned, signalled or waited for.
    #[error("cannot {action} {process}")]
    Process {
        /// What was being done.
        action: &'static str,
        /// Which process.
        process: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// No free loopback port could be found.
    #[error("cannot reserve a free port on 127.0.0.1")]
    Port(#[source] std::io::Error),

    /// Certificate generation failed.
    #[error("cannot generate test certificates")]
    Certificates(#[from] rcgen::Error),

    /// Invalid options.
    #[error("invalid options: {0}")]
    InvalidOptions(String),

    /// Preparing the members' data dirs before the start failed.
    #[error("preparing the data dirs failed: {0}")]
    Prepare(String),

    /// A member exited while it was expected to run.
    #[error("etcd member {member} exited ({status}); last lines of {}:\n{log_tail}", log.display())]
    MemberExited {
        /// The member's name.
        member: String,
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        log_tail: String,
    },

    /// A member did not become healthy in time.
    #[error(
        "etcd member {member} not healthy after {timeout:?} (last error: {last_error}); last lines of {}:\n{log_tail}",
        log.display()
    )]
    StartTimeout {
        /// The member's name.
        member: String,
        /// The timeout.
        timeout: Duration,
        /// The last health check error.
        last_error: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        log_tail: String,
    },

    /// No member index `index`, or it is not running when it must be.
    #[error("no etcd member {index} (the cluster has {members})")]
    NoSuchMember {
        /// The index asked for.
        index: usize,
        /// Number of members.
        members: usize,
    },

    /// Every member is stopped or killed.
    #[error("no etcd member is running")]
    NoRunningMember,

    /// An etcd call failed.
    #[error("etcd call failed during {during}")]
    Rpc {
        /// What testenv was doing.
        during: String,
        /// The error.
        #[source]
        source: etcd_rpc::Error,
    },

    /// etcdctl exited with an error.
    #[error("etcdctl {args} failed ({status}): {stderr}")]
    Etcdctl {
        /// The arguments.
        args: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },

    /// The Garage binary is missing or unusable.
    #[error(
        "{problem}; install Garage 2.5.0 with `cargo install garage --locked --version 2.5.0 --root ~/.cache/salvor/garage` (or run .ci/run), or set GARAGE to its path"
    )]
    GarageMissing {
        /// What was looked for and why it did not do.
        problem: String,
    },

    /// The Garage server exited while it was expected to run.
    #[error("garage server exited ({status}); last lines of {}:\n{log_tail}", log.display())]
    GarageExited {
        /// Its exit status.
        status: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        log_tail: String,
    },

    /// The Garage server did not become ready in time.
    #[error(
        "garage server not ready after {timeout:?} (last check: {last_error}); last lines of {}:\n{log_tail}",
        log.display()
    )]
    GarageStartTimeout {
        /// The timeout.
        timeout: Duration,
        /// What the last readiness check saw.
        last_error: String,
        /// Its log file.
        log: PathBuf,
        /// The end of its log.
        log_tail: String,
    },

    /// A request to Garage's admin API failed.
    #[error("garage admin API {request}: {problem}")]
    GarageAdmin {
        /// The request (`POST /v2/CreateBucket`).
        request: String,
        /// What went wrong (status and body, or the I/O error).
        problem: String,
    },

    /// The Kubernetes API server failed (to start, or a request it made of itself).
    #[error("API server: {during}: {source}")]
    Api {
        /// What testenv was doing.
        during: String,
        /// The API error.
        #[source]
        source: Box<crate::apiserver::ApiError>,
    },
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Wraps an etcd call error with what testenv was doing.
    pub(crate) fn rpc(during: impl Into<String>) -> impl FnOnce(etcd_rpc::Error) -> Self {
        let during = during.into();
        move |source| Error::Rpc { during, source }
    }
}
