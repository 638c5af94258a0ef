//! Helpers shared by the API server tests: raw HTTP requests through kube-rs's client
//! (so status codes and `Status` bodies can be checked), and polling.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::Value;
use testenv::apiserver::ApiServer;

/// A kube-rs client for `server` (with `token`, if given).
pub fn client(server: &ApiServer, token: Option<&str>) -> kube::Client {
    install_crypto_provider();
    let mut config = kube::Config::new(server.url().parse().unwrap());
    if let Some(token) = token {
        config.auth_info.token = Some(token.to_string().into());
    }
    config.read_timeout = Some(Duration::from_secs(30));
    kube::Client::try_from(config).unwrap()
}

/// Makes ring rustls's process-wide default: object_store's HTTP client (reqwest built
/// with `rustls-no-provider`, see the workspace manifest) refuses to start without one.
pub fn install_crypto_provider() {
    // Err: already installed (by another test of this process); fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// One raw request: (status code, body as JSON or as a string).
pub async fn call_raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", content_type)
        .body(kube::client::Body::from(body))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), client.send(request))
        .await
        .unwrap_or_else(|_| panic!("{method} {path} did not finish within 30 s"))
        .unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect_bytes().await.unwrap();
    let value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, value)
}

/// A JSON request.
pub async fn call(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let content_type = if method == "PATCH" {
        "application/merge-patch+json"
    } else {
        "application/json"
    };
    let bytes = body
        .map(|b| serde_json::to_vec(&b).unwrap())
        .unwrap_or_default();
    call_raw(client, method, path, content_type, bytes).await
}

/// A request that must succeed with `expected`.
pub async fn expect(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<Value>,
    expected: u16,
) -> Value {
    let (status, value) = call(client, method, path, body).await;
    assert_eq!(status, expected, "{method} {path}: {value}");
    value
}

/// Asserts a failure `Status` with `code` and `reason`; returns it.
pub async fn expect_status(
    client: &kube::Client,
    method: &str,
    path: &str,
    body: Option<Value>,
    code: u16,
    reason: &str,
) -> Value {
    let (status, value) = call(client, method, path, body).await;
    assert_eq!(status, code, "{method} {path}: {value}");
    assert_eq!(value["kind"], "Status", "{value}");
    assert_eq!(value["status"], "Failure", "{value}");
    assert_eq!(value["reason"], reason, "{value}");
    assert_eq!(value["code"], code, "{value}");
    value
}

/// Polls `check` every 50 ms for up to 10 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: not within 10 s");
}

/// The resourceVersion of an object or list, as a number.
pub fn rv(value: &Value) -> i64 {
    value["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// `metadata.name` of each item of a list.
pub fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// A GET over a plain TCP connection, for answers kube-rs's client would retry (504):
/// (status code, body).
pub async fn plain_get(server: &ApiServer, path: &str) -> (u16, Value) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(server.address())
            .await
            .unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            server.address()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await.unwrap();
        response
    };
    let response = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .expect("answered within 30 s");
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(body.to_string())),
    )
}
