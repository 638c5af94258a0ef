//! Errors of the Kubernetes-API layer.

use std::path::PathBuf;

/// What went wrong, with where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig: {0}")]
    Kubeconfig(String),
    /// A request to the Kubernetes API failed.
    #[error("{what}: {source}")]
    Kube {
        /// The request (verb and resource).
        what: String,
        /// The client's error.
        #[source]
        source: Box<kube::Error>,
    },
    /// The API answered with an error status.
    #[error("{what}: the API server answered {code} {reason}: {message}")]
    Api {
        /// The request.
        what: String,
        /// HTTP status code.
        code: u16,
        /// `Status.reason`.
        reason: String,
        /// `Status.message`.
        message: String,
    },
    /// The object store failed.
    #[error("storage {location}: {source}")]
    Storage {
        /// The object's key or the repository URL.
        location: String,
        /// The store's error.
        #[source]
        source: Box<object_store::Error>,
    },
    /// A local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Data in the repository is not what the format says (damaged, tampered, foreign).
    #[error("{location}: {message}")]
    Corrupt {
        /// Object key in the repository (and offset or blob id when known).
        location: String,
        /// What is wrong.
        message: String,
    },
    /// A named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Bad input from the user (flags, files, URLs).
    #[error("{0}")]
    Invalid(String),
    /// Encryption or signature keys are missing or wrong.
    #[error("{0}")]
    Crypto(String),
}

impl Error {
    /// A kube error with what was being done.
    pub fn kube(what: impl Into<String>, source: kube::Error) -> Error {
        let what = what.into();
        if let kube::Error::Api(status) = &source {
            return Error::Api {
                what,
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            };
        }
        Error::Kube {
            what,
            source: Box::new(source),
        }
    }

    /// A corrupt repository object.
    pub fn corrupt(location: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Corrupt {
            location: location.into(),
            message: message.into(),
        }
    }

    /// HTTP status of an API error, if it was one.
    pub fn api_code(&self) -> Option<u16> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether retrying may help: connection failures, timeouts, 429 and 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Api { code, .. } => *code == 429 || *code >= 500,
            Error::Kube { source, .. } => matches!(
                **source,
                kube::Error::HyperError(_) | kube::Error::Service(_)
            ),
            Error::Storage { source, .. } => object_storage::error::is_transient(source),
            _ => false,
        }
    }
}

impl From<object_storage::Error> for Error {
    fn from(e: object_storage::Error) -> Error {
        match e {
            object_storage::Error::Invalid(m) => Error::Invalid(m),
            object_storage::Error::NotFound(m) => Error::NotFound(m),
            object_storage::Error::TooLarge {
                location,
                size,
                limit,
            } => Error::corrupt(
                location,
                format!("{size} bytes, more than the {limit} this kind of object may have"),
            ),
            object_storage::Error::Store { location, source } => {
                Error::Storage { location, source }
            }
            object_storage::Error::Io { path, source } => Error::Io { path, source },
        }
    }
}

impl From<snapshot_format::k8s::selector::SelectorError> for Error {
    /// A label selector that does not parse is bad input.
    fn from(error: snapshot_format::k8s::selector::SelectorError) -> Self {
        Error::Invalid(error.to_string())
    }
}
