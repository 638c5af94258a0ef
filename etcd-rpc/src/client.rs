//! [`Client`]: connections, authentication, timeouts, failover.

use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::uri::PathAndQuery;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tonic::client::Grpc;
use tonic::metadata::AsciiMetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{ConnectError, Request, Status};
use tonic_prost::ProstCodec;
use tracing::debug;

use crate::error::Error;
use crate::proto::{AuthenticateRequest, AuthenticateResponse, method};

/// gRPC metadata key etcd reads the auth token from.
const TOKEN_METADATA_KEY: &str = "token";

/// How to reach and authenticate to an etcd cluster.
///
/// `Debug` never prints the password or the client key.
#[derive(Clone)]
pub struct ConnectOptions {
    /// Time allowed to establish a connection (TCP and TLS) to one endpoint.
    pub dial_timeout: Duration,
    /// Time allowed for one call, retries and re-authentication included; for
    /// streams, the time until the stream is open. `None` waits forever.
    pub request_timeout: Option<Duration>,
    /// HTTP/2 keep-alive ping interval while calls are in flight; `None` disables
    /// pings. etcd rejects pings more frequent than `--grpc-keepalive-min-time` (5 s).
    pub keep_alive_interval: Option<Duration>,
    /// Time to wait for a keep-alive ping answer before the connection is closed.
    pub keep_alive_timeout: Duration,
    /// Largest response message accepted, in bytes.
    pub max_response_bytes: usize,
    /// TLS settings; with `Some`, endpoints without a scheme use `https://`.
    pub tls: Option<TlsOptions>,
    /// User name for etcd authentication.
    pub user: Option<String>,
    /// Password for etcd authentication.
    pub password: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            dial_timeout: Duration::from_secs(5),
            request_timeout: Some(Duration::from_secs(30)),
            keep_alive_interval: Some(Duration::from_secs(30)),
            keep_alive_timeout: Duration::from_secs(10),
            max_response_bytes: i32::MAX as usize,
            tls: None,
            user: None,
            password: None,
        }
    }
}

impl fmt::Debug for ConnectOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectOptions")
            .field("dial_timeout", &self.dial_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("keep_alive_interval", &self.keep_alive_interval)
            .field("keep_alive_timeout", &self.keep_alive_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("tls", &self.tls)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| Redacted))
            .finish()
    }
}

/// TLS material, PEM-encoded.
///
/// `Debug` never prints the client key.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// CA certificates that sign the server certificates; `None` trusts the
    /// platform's roots.
    pub ca_cert_pem: Option<Vec<u8>>,
    /// Client certificate (chain), for servers started with `--client-cert-auth`.
    pub client_cert_pem: Option<Vec<u8>>,
    /// Private key of the client certificate.
    pub client_key_pem: Option<Vec<u8>>,
    /// Name to verify the server certificate against instead of the endpoint's host.
    pub domain_name: Option<String>,
}

impl TlsOptions {
    /// Reads the PEM files named like etcdctl's `--cacert`, `--cert` and `--key`.
    pub fn from_files(
        ca_cert: Option<&Path>,
        client_cert: Option<&Path>,
        client_key: Option<&Path>,
    ) -> Result<Self, Error> {
        let read = |path: Option<&Path>| -> Result<Option<Vec<u8>>, Error> {
            path.map(|path| {
                std::fs::read(path).map_err(|source| Error::TlsFile {
                    path: path.to_path_buf(),
                    source,
                })
            })
            .transpose()
        };
        Ok(Self {
            ca_cert_pem: read(ca_cert)?,
            client_cert_pem: read(client_cert)?,
            client_key_pem: read(client_key)?,
            domain_name: None,
        })
    }

    fn client_tls_config(&self) -> Result<ClientTlsConfig, Error> {
        let mut config = ClientTlsConfig::new();
        config = match &self.ca_cert_pem {
            Some(ca) => config.ca_certificate(Certificate::from_pem(ca)),
            None => config.with_enabled_roots(),
        };
        match (&self.client_cert_pem, &self.client_key_pem) {
            (Some(cert), Some(key)) => config = config.identity(Identity::from_pem(cert, key)),
            (None, None) => {}
            (Some(_), None) => {
                return Err(Error::IncompleteTls(
                    "a client certificate was given without its key",
                ));
            }
            (None, Some(_)) => {
                return Err(Error::IncompleteTls(
                    "a client key was given without its certificate",
                ));
            }
        }
        if let Some(domain) = &self.domain_name {
            config = config.domain_name(domain.clone());
        }
        Ok(config)
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let size = |pem: &Option<Vec<u8>>| pem.as_ref().map(|pem| PemSize(pem.len()));
        f.debug_struct("TlsOptions")
            .field("ca_cert_pem", &size(&self.ca_cert_pem))
            .field("client_cert_pem", &size(&self.client_cert_pem))
            .field(
                "client_key_pem",
                &self.client_key_pem.as_ref().map(|_| Redacted),
            )
            .field("domain_name", &self.domain_name)
            .finish()
    }
}

/// Prints `<redacted>` in `Debug`.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Prints `<N bytes of PEM>` in `Debug`.
struct PemSize(usize);

impl fmt::Debug for PemSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes of PEM>", self.0)
    }
}

/// User name and password kept for re-authentication.
struct Credentials {
    user: String,
    password: String,
}

/// The current auth token and a counter of how often it was replaced, so that
/// concurrent calls that all saw it expire authenticate only once.
#[derive(Clone, Default)]
struct TokenState {
    generation: u64,
    token: Option<AsciiMetadataValue>,
}

/// Whether a call's deadline covers the whole call or only opening a stream.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum CallKind {
    /// The request timeout covers the whole call and is sent as `grpc-timeout`.
    Unary,
    /// The request timeout covers opening the stream only.
    Stream,
}

/// One attempt of a call on one channel: given the gRPC client, the token to
/// send and the `grpc-timeout` to announce.
pub(crate) type Attempt<T> = Pin<Box<dyn Future<Output = Result<T, Status>> + Send>>;

struct Inner {
    endpoints: Vec<String>,
    /// Balances calls over all endpoints (the only channel with one endpoint).
    balanced: Channel,
    /// One channel per endpoint, for failover and per-member clients.
    channels: Vec<Channel>,
    request_timeout: Option<Duration>,
    max_response_bytes: usize,
    credentials: Option<Arc<Credentials>>,
    token: RwLock<TokenState>,
    /// Serialises re-authentication.
    refresh: tokio::sync::Mutex<()>,
    /// Where the next failover starts, so failovers spread over the members.
    next_failover: AtomicUsize,
}

/// A client for the etcd v3 gRPC API.
///
/// Cheap to clone: clones share the connections and the auth token, and any
/// number of calls may be in flight at once. With several endpoints, calls are
/// balanced over them; a call that could not be sent because its endpoint is
/// unreachable is retried on the other endpoints (it was never sent, so this is
/// safe for writes too). A call rejected for an expired or unknown auth token
/// authenticates again once and is retried.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.endpoints)
            .field("request_timeout", &self.inner.request_timeout)
            .field(
                "user",
                &self.inner.credentials.as_ref().map(|c| c.user.as_str()),
            )
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Connects to a cluster through the given endpoints.
    ///
    /// Endpoints are `http://host:port`, `https://host:port` or a bare `host:port`
    /// (`https` when `opts.tls` is set, else `http`). Every endpoint is dialled
    /// concurrently; this succeeds when at least one answers within the dial
    /// timeout (the others are retried lazily). With `user` and `password`, the
    /// client authenticates once here; a cluster without authentication enabled
    /// is accepted and used without a token, like etcdctl does.
    pub async fn connect(endpoints: &[String], opts: ConnectOptions) -> Result<Client, Error> {
        if endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let configured = endpoints
            .iter()
            .map(|endpoint| configure_endpoint(endpoint, &opts))
            .collect::<Result<Vec<_>, _>>()?;

        let dials = configured.iter().map(|(_, endpoint)| {
            let endpoint = endpoint.clone();
            let dial_timeout = opts.dial_timeout;
            async move {
                match tokio::time::timeout(dial_timeout, endpoint.connect()).await {
                    Ok(Ok(channel)) => Ok(channel),
                    Ok(Err(error)) => Err(Box::new(error) as BoxError),
                    Err(elapsed) => Err(Box::new(elapsed) as BoxError),
                }
            }
        });
        let dialled = join_all_in_order(dials).await;

        let mut channels = Vec::with_capacity(configured.len());
        let mut first_error = None;
        let mut connected = 0;
        for ((url, endpoint), result) in configured.iter().zip(dialled) {
            match result {
                Ok(channel) => {
                    connected += 1;
                    channels.push(channel);
                }
                Err(error) => {
                    debug!(endpoint = %url, %error, "etcd endpoint not reachable");
                    first_error.get_or_insert(error);
                    channels.push(endpoint.connect_lazy());
                }
            }
        }
        if connected == 0
            && let Some(source) = first_error
        {
            return Err(Error::Connect {
                endpoints: configured.into_iter().map(|(url, _)| url).collect(),
                source,
            });
        }

        let balanced = if channels.len() == 1 {
            channels[0].clone()
        } else {
            Channel::balance_list(configured.iter().map(|(_, endpoint)| endpoint.clone()))
        };

        let credentials = match (opts.user, opts.password) {
            (Some(user), password) => Some(Arc::new(Credentials {
                user,
                password: password.unwrap_or_default(),
            })),
            (None, _) => None,
        };
        let client = Client {
            inner: Arc::new(Inner {
                endpoints: configured.into_iter().map(|(url, _)| url).collect(),
                balanced,
                channels,
                request_timeout: opts.request_timeout,
                max_response_bytes: opts.max_response_bytes,
                credentials,
                token: RwLock::new(TokenState::default()),
                refresh: tokio::sync::Mutex::new(()),
                next_failover: AtomicUsize::new(0),
            }),
        };
        if client.inner.credentials.is_some() {
            client
                .with_timeout(method::AUTHENTICATE, client.refresh_token(0))
                .await?;
        }
        Ok(client)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs the futures concurrently as tasks and returns their outputs in order.
async fn join_all_in_order<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut tasks = JoinSet::new();
    for (index, future) in futures.enumerate() {
        tasks.spawn(async move { (index, future.await) });
    }
    let mut outputs = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(output) => outputs.push(output),
            Err(join_error) => match join_error.try_into_panic() {
                Ok(panic) => std::panic::resume_unwind(panic),
                // Tasks are only cancelled when the runtime shuts down, and then
                // this future is dropped too.
                Err(join_error) => unreachable!("task cancelled: {join_error}"),
            },
        }
    }
    outputs.sort_by_key(|(index, _)| *index);
    outputs.into_iter().map(|(_, output)| output).collect()
}

/// An endpoint as a URL: `host:port` gets `https://` when TLS is configured,
/// else `http://`; a trailing `/` is dropped.
pub(crate) fn endpoint_url(raw: &str, opts: &ConnectOptions) -> String {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.contains("://") {
        trimmed.to_string()
    } else if opts.tls.is_some() {
        format!("https://{trimmed}")
    } else {
        format!("http://{trimmed}")
    }
}

/// Normalises an endpoint to a URL and applies the connection options to it.
fn configure_endpoint(raw: &str, opts: &ConnectOptions) -> Result<(String, Endpoint), Error> {
    let url = endpoint_url(raw, opts);
    let invalid = |source| Error::InvalidEndpoint {
        endpoint: raw.to_string(),
        source,
    };
    let mut endpoint = Endpoint::from_shared(url.clone())
        .map_err(invalid)?
        .connect_timeout(opts.dial_timeout)
        .tcp_nodelay(true)
        .keep_alive_timeout(opts.keep_alive_timeout);
    if let Some(interval) = opts.keep_alive_interval {
        endpoint = endpoint.http2_keep_alive_interval(interval);
    }
    if url.starts_with("https://") {
        let tls = opts.tls.clone().unwrap_or_default();
        endpoint = endpoint
            .tls_config(tls.client_tls_config()?.timeout(opts.dial_timeout))
            .map_err(|source| Error::Tls {
                endpoint: url.clone(),
                source,
            })?;
    }
    Ok((url, endpoint))
}

/// Whether a failed call never reached the server (connection refused, dial or
/// TLS failure), so that it can be sent elsewhere without risk of applying twice.
fn never_sent(status: &Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(error) = source {
        if error.is::<ConnectError>() {
            return true;
        }
        source = error.source();
    }
    false
}

/// Whether the status was made up locally from a transport failure (broken
/// connection, reset stream) rather than sent by the server: the call may or
/// may not have reached etcd.
pub(crate) fn local_transport_failure(status: &Status) -> bool {
    std::error::Error::source(status).is_some()
}

/// Methods that may run twice without harm, so they are retried on another
/// endpoint when the connection breaks mid-call.
fn is_idempotent(path: &str) -> bool {
    matches!(
        path,
        method::RANGE
            | method::WATCH
            | method::LEASE_KEEP_ALIVE
            | method::LEASE_TIME_TO_LIVE
            | method::LEASE_LEASES
            | method::MEMBER_LIST
            | method::ALARM
            | method::STATUS
            | method::HASH
            | method::HASH_KV
            | method::SNAPSHOT
            | method::AUTH_STATUS
            | method::AUTHENTICATE
            | method::USER_GET
            | method::USER_LIST
            | method::ROLE_GET
            | method::ROLE_LIST
    )
}

/// Whether the server rejected the call's token in a way a fresh token fixes.
fn needs_new_token(status: &Status) -> bool {
    matches!(
        status.message(),
        "etcdserver: invalid auth token" | "etcdserver: user name is empty"
    )
}

/// Maps a failure to get the channel ready to a status marked as never sent.
pub(crate) fn not_ready(error: tonic::transport::Error) -> Status {
    let mut status = Status::unavailable(format!("etcd connection not ready: {error}"));
    status.set_source(Arc::new(ConnectError(Box::new(error))));
    status
}

/// Builds a request carrying the auth token and the `grpc-timeout` header.
pub(crate) fn request<T>(
    message: T,
    token: Option<AsciiMetadataValue>,
    timeout: Option<Duration>,
) -> Request<T> {
    let mut request = Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(TOKEN_METADATA_KEY, token);
    }
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    request
}

impl Client {
    /// Connects to each endpoint separately, concurrently, and returns one
    /// client per endpoint in the same order: calls on each go to that member
    /// only (diagnosis needs per-member answers). An unreachable member gives
    /// an error in its slot instead of failing the whole call.
    pub async fn connect_each(
        endpoints: &[String],
        opts: ConnectOptions,
    ) -> Vec<Result<Client, Error>> {
        let connects = endpoints.iter().map(|endpoint| {
            let endpoint = vec![endpoint.clone()];
            let opts = opts.clone();
            async move { Client::connect(&endpoint, opts).await }
        });
        join_all_in_order(connects).await
    }

    /// One client per endpoint of this client, sharing its connections,
    /// credentials and current token: calls on each go to that member only.
    pub fn endpoint_clients(&self) -> Vec<Client> {
        let token = self.token_state();
        self.inner
            .endpoints
            .iter()
            .zip(&self.inner.channels)
            .map(|(endpoint, channel)| Client {
                inner: Arc::new(Inner {
                    endpoints: vec![endpoint.clone()],
                    balanced: channel.clone(),
                    channels: vec![channel.clone()],
                    request_timeout: self.inner.request_timeout,
                    max_response_bytes: self.inner.max_response_bytes,
                    credentials: self.inner.credentials.clone(),
                    token: RwLock::new(token.clone()),
                    refresh: tokio::sync::Mutex::new(()),
                    next_failover: AtomicUsize::new(0),
                }),
            })
            .collect()
    }

    /// The endpoints as URLs (`http://127.0.0.1:2379`), in the order given.
    pub fn endpoints(&self) -> &[String] {
        &self.inner.endpoints
    }

    /// The request timeout in force.
    pub fn request_timeout(&self) -> Option<Duration> {
        self.inner.request_timeout
    }

    /// Calls any unary etcd method by its full path (see [`crate::proto::method`]),
    /// with the client's token, timeout, failover and re-authentication.
    pub async fn unary<Req, Resp>(&self, method: &'static str, message: Req) -> Result<Resp, Error>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.call(method, CallKind::Unary, |mut grpc, token, timeout| {
            let message = message.clone();
            Box::pin(async move {
                grpc.ready().await.map_err(not_ready)?;
                let codec = ProstCodec::<Req, Resp>::default();
                grpc.unary(
                    request(message, token, timeout),
                    PathAndQuery::from_static(method),
                    codec,
                )
                .await
                .map(tonic::Response::into_inner)
            })
        })
        .await
    }

    /// Calls a server-streaming etcd method by its full path and returns the open
    /// stream; the request timeout covers opening it only.
    pub async fn server_streaming<Req, Resp>(
        &self,
        method: &'static str,
        message: Req,
    ) -> Result<tonic::Streaming<Resp>, Error>
    where
        Req: prost::Message + Clone + Send + Sync + 'static,
        Resp: prost::Message + Default + Send + Sync + 'static,
    {
        self.call(method, CallKind::Stream, |mut grpc, token, timeout| {
            let message = message.clone();
            Box::pin(async move {
                grpc.ready().await.map_err(not_ready)?;
                let codec = ProstCodec::<Req, Resp>::default();
                grpc.server_streaming(
                    request(message, token, timeout),
                    PathAndQuery::from_static(method),
                    codec,
                )
                .await
                .map(tonic::Response::into_inner)
            })
        })
        .await
    }

    /// Runs `attempt` with the request timeout, re-authentication and failover.
    pub(crate) async fn call<T, F>(
        &self,
        method: &'static str,
        kind: CallKind,
        attempt: F,
    ) -> Result<T, Error>
    where
        F: Fn(Grpc<Channel>, Option<AsciiMetadataValue>, Option<Duration>) -> Attempt<T> + Sync,
        T: Send,
    {
        self.with_timeout(method, self.call_with_reauth(method, kind, &attempt))
            .await
    }

    /// Applies the request timeout to `call`.
    async fn with_timeout<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match self.inner.request_timeout {
            Some(timeout) => tokio::time::timeout(timeout, call)
                .await
                .map_err(|_| Error::Timeout { method, timeout })?,
            None => call.await,
        }
    }

    async fn call_with_reauth<T, F>(
        &self,
        method: &'static str,
        kind: CallKind,
        attempt: &F,
    ) -> Result<T, Error>
    where
        F: Fn(Grpc<Channel>, Option<AsciiMetadataValue>, Option<Duration>) -> Attempt<T> + Sync,
        T: Send,
    {
        let deadline = self
            .inner
            .request_timeout
            .map(|timeout| Instant::now() + timeout);
        let mut reauthenticated = false;
        loop {
            let token = self.token_state();
            match self
                .call_with_failover(method, kind, deadline, token.token, attempt)
                .await
            {
                Err(status)
                    if !reauthenticated
                        && self.inner.credentials.is_some()
                        && needs_new_token(&status) =>
                {
                    debug!(method, "etcd rejected the auth token; authenticating again");
                    self.refresh_token(token.generation).await?;
                    reauthenticated = true;
                }
                result => return result.map_err(|status| Error::from_status(method, status)),
            }
        }
    }

    async fn call_with_failover<T, F>(
        &self,
        method: &'static str,
        kind: CallKind,
        deadline: Option<Instant>,
        token: Option<AsciiMetadataValue>,
        attempt: &F,
    ) -> Result<T, Status>
    where
        F: Fn(Grpc<Channel>, Option<AsciiMetadataValue>, Option<Duration>) -> Attempt<T> + Sync,
        T: Send,
    {
        let grpc = |channel: &Channel| {
            Grpc::new(channel.clone()).max_decoding_message_size(self.inner.max_response_bytes)
        };
        let announced_timeout = || match kind {
            CallKind::Unary => {
                deadline.map(|deadline| deadline.saturating_duration_since(Instant::now()))
            }
            CallKind::Stream => None,
        };
        let idempotent = is_idempotent(method);
        let retryable =
            |status: &Status| never_sent(status) || (idempotent && local_transport_failure(status));
        let status = match attempt(
            grpc(&self.inner.balanced),
            token.clone(),
            announced_timeout(),
        )
        .await
        {
            Err(status) if retryable(&status) => status,
            result => return result,
        };
        // Try every endpoint once, starting at a different one each time. With a
        // single endpoint this retries it once, on a fresh connection.
        debug!(method, error = %status, "etcd call failed before reaching etcd; retrying");
        let count = self.inner.channels.len();
        let start = self.inner.next_failover.fetch_add(1, Ordering::Relaxed);
        let mut last = status;
        for offset in 0..count {
            let channel = &self.inner.channels[(start + offset) % count];
            match attempt(grpc(channel), token.clone(), announced_timeout()).await {
                Err(status) if retryable(&status) => last = status,
                result => return result,
            }
        }
        Err(last)
    }

    fn token_state(&self) -> TokenState {
        match self.inner.token.read() {
            Ok(state) => state.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Authenticates again unless another call already did since `seen_generation`.
    async fn refresh_token(&self, seen_generation: u64) -> Result<(), Error> {
        let Some(credentials) = self.inner.credentials.clone() else {
            return Ok(());
        };
        let _serialised = self.inner.refresh.lock().await;
        if self.token_state().generation != seen_generation {
            return Ok(());
        }
        let authenticate = AuthenticateRequest {
            name: credentials.user.clone(),
            password: credentials.password.clone(),
        };
        let attempt = |mut grpc: Grpc<Channel>, _token, timeout| -> Attempt<AuthenticateResponse> {
            let message = authenticate.clone();
            Box::pin(async move {
                grpc.ready().await.map_err(not_ready)?;
                grpc.unary(
                    request(message, None, timeout),
                    PathAndQuery::from_static(method::AUTHENTICATE),
                    ProstCodec::default(),
                )
                .await
                .map(tonic::Response::into_inner)
            })
        };
        let deadline = self
            .inner
            .request_timeout
            .map(|timeout| Instant::now() + timeout);
        let token = match self
            .call_with_failover(
                method::AUTHENTICATE,
                CallKind::Unary,
                deadline,
                None,
                &attempt,
            )
            .await
            .map_err(|status| Error::from_status(method::AUTHENTICATE, status))
        {
            Ok(response) => Some(
                AsciiMetadataValue::try_from(response.token.as_str())
                    .map_err(Error::InvalidTokenMetadata)?,
            ),
            Err(Error::AuthNotEnabled { .. }) => {
                debug!("etcd authentication is not enabled; calling without a token");
                None
            }
            Err(error) => return Err(error),
        };
        let mut state = match self.inner.token.write() {
            Ok(state) => state,
            Err(poisoned) => poisoned.into_inner(),
        };
        state.generation += 1;
        state.token = token;
        Ok(())
    }
}
