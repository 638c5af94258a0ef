//! `salvor server`'s monitoring endpoint: re-runs the diagnosis on an interval
//! and serves it as Prometheus metrics, with probes for Kubernetes.
//!
//! - `GET /metrics`: the last diagnosis ([`crate::diagnose::exposition`]); 503
//!   until the first one has finished.
//! - `GET /healthz`: 200 while the server runs (liveness).
//! - `GET /readyz`: 200 once a diagnosis has finished, else 503 (readiness).
//!
//! [`serve`] stops accepting connections when its shutdown future completes,
//! lets requests in flight finish (up to [`SHUTDOWN_GRACE`]) and stops the
//! check loop.

use std::convert::Infallible;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::diagnose::exposition::{CONTENT_TYPE, ExporterCounters, render};
use crate::diagnose::{DiagnoseOptions, Severity, diagnose};

/// Longest time requests in flight get to finish after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What the exporter checks and how often.
#[derive(Debug, Clone)]
pub struct ExporterConfig {
    /// The diagnosis to run.
    pub diagnose: DiagnoseOptions,
    /// Pause between the end of one diagnosis and the start of the next.
    pub interval: Duration,
}

/// The last rendered diagnosis.
#[derive(Debug, Default)]
struct Latest {
    metrics: Option<String>,
    runs: u64,
}

/// Serves until `shutdown` completes, then shuts down gracefully.
pub async fn serve(
    listener: TcpListener,
    config: ExporterConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let latest = Arc::new(RwLock::new(Latest::default()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let checker = tokio::spawn(check_loop(config, Arc::clone(&latest), stop_rx));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        warn!(%error, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                debug!(%peer, "connection");
                let latest = Arc::clone(&latest);
                let service = service_fn(move |request| {
                    let latest = Arc::clone(&latest);
                    async move { Ok::<_, Infallible>(route(&request, &latest)) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(Duration::from_secs(10))
                    .serve_connection(TokioIo::new(stream), service);
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        debug!(%error, "connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    info!("shutting down: no new connections, finishing requests in flight");
    drop(listener);
    let _ = stop_tx.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        warn!("requests still in flight after {SHUTDOWN_GRACE:?}; closing them");
    }
    checker.abort();
    let _ = checker.await;
    Ok(())
}

/// Diagnoses, stores the rendering, waits `interval`; until told to stop.
async fn check_loop(
    config: ExporterConfig,
    latest: Arc<RwLock<Latest>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let report = tokio::select! {
            report = diagnose(&config.diagnose) => report,
            _ = stop.changed() => return,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        info!(
            reachable = report.reachable,
            errors = report.count(Severity::Error),
            warnings = report.count(Severity::Warning) - report.count(Severity::Error),
            elapsed_ms = report.elapsed_ms,
            "diagnosis finished"
        );
        {
            let mut latest = latest
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            latest.runs += 1;
            let counters = ExporterCounters {
                runs: latest.runs,
                last_run_unix_seconds: now,
            };
            latest.metrics = Some(render(&report, counters));
        }
        tokio::select! {
            () = tokio::time::sleep(config.interval) => {}
            _ = stop.changed() => return,
        }
    }
}

fn text(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str(content_type) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}

fn route(request: &Request<Incoming>, latest: &RwLock<Latest>) -> Response<Full<Bytes>> {
    const PLAIN: &str = "text/plain; charset=utf-8";
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, PLAIN, "only GET\n");
    }
    let metrics = || {
        latest
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .metrics
            .clone()
    };
    match request.uri().path() {
        "/metrics" => match metrics() {
            Some(body) => text(StatusCode::OK, CONTENT_TYPE, body),
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                "the first diagnosis is running\n",
            ),
        },
        "/healthz" | "/livez" => text(StatusCode::OK, PLAIN, "ok\n"),
        "/readyz" => match metrics() {
            Some(_) => text(StatusCode::OK, PLAIN, "ok\n"),
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                PLAIN,
                "the first diagnosis is running\n",
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            PLAIN,
            "not found: try /metrics, /healthz, /readyz\n",
        ),
    }
}
