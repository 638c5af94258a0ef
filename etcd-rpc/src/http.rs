//! Plain HTTP/1.1 GETs on a member's client URL, such as `/metrics`, over the
//! same TLS (CA, client certificate) as the gRPC calls.
//!
//! etcd serves gRPC and HTTP on the client port: over TLS it routes requests
//! that are not gRPC to its HTTP handlers, and without TLS it hands HTTP/1.1
//! connections to them. So `/metrics` is fetched with HTTP/1.1, not through a
//! gRPC channel.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::client::endpoint_url;
use crate::{ConnectOptions, Error, TlsOptions};

/// An HTTP answer: its status code and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// HTTP status code.
    pub status: u16,
    /// The body, at most the size asked for.
    pub body: Vec<u8>,
}

/// Largest `/metrics` body accepted by [`fetch_metrics`] (etcd's is about 100 kB).
pub const MAX_METRICS_BYTES: usize = 16 * 1024 * 1024;

/// `GET {endpoint}/metrics`: the member's Prometheus metrics as text.
///
/// Fails on a status other than 200 and on a body larger than
/// [`MAX_METRICS_BYTES`].
pub async fn fetch_metrics(endpoint: &str, opts: &ConnectOptions) -> Result<String, Error> {
    let response = http_get(endpoint, "/metrics", opts, MAX_METRICS_BYTES).await?;
    if response.status != 200 {
        return Err(Error::Http {
            url: format!("{}/metrics", endpoint_url(endpoint, opts)),
            what: format!("HTTP status {}", response.status),
            source: None,
        });
    }
    Ok(String::from_utf8_lossy(&response.body).into_owned())
}

/// `GET {endpoint}{path}` with HTTP/1.1.
///
/// Connecting (TCP and TLS) is bounded by `opts.dial_timeout`, the whole
/// request by `opts.request_timeout`; the body is cut off with an error past
/// `max_bytes`.
pub async fn http_get(
    endpoint: &str,
    path: &str,
    opts: &ConnectOptions,
    max_bytes: usize,
) -> Result<HttpResponse, Error> {
    let base = endpoint_url(endpoint, opts);
    let url = format!("{base}{path}");
    let fail = |what: &str, source: Option<Box<dyn std::error::Error + Send + Sync>>| Error::Http {
        url: url.clone(),
        what: what.to_string(),
        source,
    };
    let uri: http::Uri = base
        .parse()
        .map_err(|e| fail("invalid URL", Some(Box::new(e))))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(fail("the URL must start with http:// or https://", None)),
    };
    let host = uri
        .host()
        .ok_or_else(|| fail("the URL has no host", None))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .map_or_else(|| host.clone(), |a| a.as_str().to_string());

    let request = async {
        let tcp = bounded(opts.dial_timeout, TcpStream::connect((host.as_str(), port)))
            .await
            .map_err(|e| fail("cannot connect", Some(e)))?;
        // Small requests; do not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        if https {
            let tls = opts.tls.clone().unwrap_or_default();
            let config =
                rustls_client_config(&tls).map_err(|e| fail("invalid TLS options", Some(e)))?;
            let name = tls.domain_name.clone().unwrap_or_else(|| host.clone());
            let name = ServerName::try_from(name)
                .map_err(|e| fail("invalid TLS server name", Some(Box::new(e))))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
            let stream = bounded(opts.dial_timeout, connector.connect(name, tcp))
                .await
                .map_err(|e| fail("TLS handshake failed", Some(e)))?;
            get(stream, &authority, path, max_bytes)
                .await
                .map_err(|(what, e)| fail(&what, e))
        } else {
            get(tcp, &authority, path, max_bytes)
                .await
                .map_err(|(what, e)| fail(&what, e))
        }
    };
    match opts.request_timeout {
        Some(timeout) => tokio::time::timeout(timeout, request)
            .await
            .map_err(|_| fail(&format!("no answer within {timeout:?}"), None))?,
        None => request.await,
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Runs an I/O future with a timeout, flattening both errors.
async fn bounded<T, E>(
    timeout: Duration,
    future: impl Future<Output = Result<T, E>>,
) -> Result<T, BoxError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    match tokio::time::timeout(timeout, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Box::new(error)),
        Err(elapsed) => Err(Box::new(elapsed)),
    }
}

/// One GET on an open connection.
async fn get<S>(
    stream: S,
    authority: &str,
    path: &str,
    max_bytes: usize,
) -> Result<HttpResponse, (String, Option<BoxError>)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let failed = |what: &str| {
        let what = what.to_string();
        move |e: hyper::Error| (what, Some(Box::new(e) as BoxError))
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(failed("HTTP handshake failed"))?;
    let driver = tokio::spawn(connection);
    let request = http::Request::get(path)
        .header(http::header::HOST, authority)
        .header(http::header::ACCEPT, "text/plain")
        .body(Empty::<Bytes>::new())
        .map_err(|e| ("invalid request".to_string(), Some(Box::new(e) as BoxError)))?;
    let result = async {
        let response = sender
            .send_request(request)
            .await
            .map_err(failed("request failed"))?;
        let status = response.status().as_u16();
        let body = Limited::new(response.into_body(), max_bytes)
            .collect()
            .await
            .map_err(|e| {
                (
                    format!("cannot read the body (limit {max_bytes} bytes)"),
                    Some(e),
                )
            })?
            .to_bytes();
        Ok(HttpResponse {
            status,
            body: body.to_vec(),
        })
    }
    .await;
    driver.abort();
    result
}

/// A rustls client configuration from the same TLS options the gRPC client uses.
fn rustls_client_config(tls: &TlsOptions) -> Result<rustls::ClientConfig, BoxError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &tls.ca_cert_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                roots.add(cert?)?;
            }
        }
        None => {
            // Unreadable platform certificates are skipped, as tonic does.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let mut config = match (&tls.client_cert_pem, &tls.client_key_pem) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(cert).collect::<Result<Vec<_>, _>>()?;
            let key = PrivateKeyDer::from_pem_slice(key)?;
            builder.with_client_auth_cert(chain, key)?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => return Err("a client certificate needs its key and the other way round".into()),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// Serves `response` (raw bytes) to every connection; returns the endpoint.
    async fn serve(response: Vec<u8>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 4096];
                    let _ = stream.read(&mut request).await;
                    let _ = stream.write_all(&response).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        format!("http://{address}")
    }

    fn options() -> ConnectOptions {
        ConnectOptions {
            dial_timeout: Duration::from_secs(2),
            request_timeout: Some(Duration::from_secs(5)),
            ..ConnectOptions::default()
        }
    }

    #[tokio::test]
    async fn reads_a_plain_page() {
        let endpoint = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nm 1\n\n".to_vec()).await;
        assert_eq!(
            fetch_metrics(&endpoint, &options()).await.unwrap(),
            "m 1\n\n"
        );
    }

    #[tokio::test]
    async fn hostile_answers_are_errors_not_panics() {
        let oversized = {
            let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
            let chunk = vec![b'x'; 1 << 20];
            for _ in 0..17 {
                r.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
                r.extend_from_slice(&chunk);
                r.extend_from_slice(b"\r\n");
            }
            r.extend_from_slice(b"0\r\n\r\n");
            r
        };
        let answers: Vec<Vec<u8>> = vec![
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n".to_vec(),
            b"garbage\r\n\r\n".to_vec(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort".to_vec(),
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
            Vec::new(),
            oversized,
        ];
        for answer in answers {
            let endpoint = serve(answer.clone()).await;
            let result = fetch_metrics(&endpoint, &options()).await;
            assert!(
                result.is_err(),
                "{:?} gave {result:?}",
                String::from_utf8_lossy(&answer[..answer.len().min(80)])
            );
        }
    }

    #[tokio::test]
    async fn silent_server_costs_the_request_timeout() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        // Accepts (kernel backlog) but never answers.
        let opts = ConnectOptions {
            request_timeout: Some(Duration::from_millis(300)),
            ..options()
        };
        let started = std::time::Instant::now();
        let error = fetch_metrics(&endpoint, &opts).await.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(3), "{error}");
        assert!(error.to_string().contains("no answer within"), "{error}");
        drop(listener);
    }
}
