//! Paginated lists pinned to one resourceVersion, with retries on transient errors.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::Error;
use crate::model::ResourceType;

/// How lists are pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pin {
    /// `resourceVersion=RV&resourceVersionMatch=Exact` on every first page.
    Exact(String),
    /// The server cannot: plain lists (not point-in-time).
    Unpinned,
}

#[derive(Debug, Deserialize)]
struct ListMeta {
    #[serde(rename = "resourceVersion", default)]
    resource_version: String,
    #[serde(rename = "continue", default)]
    continue_token: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Page {
    #[serde(default)]
    metadata: Option<ListMeta>,
    #[serde(default)]
    items: Vec<Value>,
}

/// One request's parameters.
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    /// `limit`.
    pub limit: u32,
    /// `continue`.
    pub continue_token: Option<String>,
    /// `resourceVersion` (first page only).
    pub resource_version: Option<String>,
    /// `resourceVersionMatch=Exact` with it.
    pub exact: bool,
    /// `labelSelector`.
    pub selector: Option<String>,
}

fn url(t: &ResourceType, req: &PageRequest) -> String {
    let mut query = form_urlencoded_pairs(req);
    if !query.is_empty() {
        query.insert(0, '?');
    }
    format!("{}{query}", t.gvr.collection_path(None))
}

fn form_urlencoded_pairs(req: &PageRequest) -> String {
    let mut pairs: Vec<(&str, String)> = vec![("limit", req.limit.to_string())];
    if let Some(c) = &req.continue_token {
        pairs.push(("continue", c.clone()));
    }
    if let Some(rv) = &req.resource_version {
        pairs.push(("resourceVersion", rv.clone()));
        if req.exact {
            pairs.push(("resourceVersionMatch", "Exact".to_string()));
        }
    }
    if let Some(s) = &req.selector {
        pairs.push(("labelSelector", s.clone()));
    }
    pairs
        .into_iter()
        .map(|(k, v)| format!("{k}={}", percent_encode(&v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One page of a list.
#[derive(Debug)]
pub struct ListPage {
    /// The items, with `apiVersion` and `kind` filled in (list items may omit them).
    pub items: Vec<Value>,
    /// The list's resourceVersion.
    pub resource_version: String,
    /// Token of the next page.
    pub continue_token: Option<String>,
}

/// GETs one page, retrying transient failures (429, 5xx, connection errors) with
/// exponential backoff for up to about 30 seconds.
pub async fn get_page(
    client: &kube::Client,
    t: &ResourceType,
    req: &PageRequest,
) -> Result<ListPage, Error> {
    let url = url(t, req);
    let mut delay = Duration::from_millis(200);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = request(client, &url).await;
        match result {
            Ok(text) => return parse_page(t, &url, &text),
            Err(e) if e.is_transient() && attempt < 8 => {
                tracing::debug!(url, attempt, error = %e, "retrying a list");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
            Err(e) => return Err(e),
        }
    }
}

async fn request(client: &kube::Client, url: &str) -> Result<String, Error> {
    let req = http::Request::get(url)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| Error::Invalid(format!("GET {url}: {e}")))?;
    client
        .request_text(req)
        .await
        .map_err(|e| Error::kube(format!("GET {url}"), e))
}

fn parse_page(t: &ResourceType, url: &str, text: &str) -> Result<ListPage, Error> {
    let page: Page = serde_json::from_str(text).map_err(|e| Error::Api {
        what: format!("GET {url}"),
        code: 200,
        reason: "BadResponse".to_string(),
        message: format!("the list is not valid JSON: {e}"),
    })?;
    let api_version = t.gvr.api_version();
    let mut items = page.items;
    for item in &mut items {
        if let Value::Object(map) = item {
            if !map.contains_key("apiVersion") {
                map.insert("apiVersion".into(), Value::String(api_version.clone()));
            }
            if !map.contains_key("kind") {
                map.insert("kind".into(), Value::String(t.kind.clone()));
            }
        }
    }
    let meta = page.metadata.unwrap_or(ListMeta {
        resource_version: String::new(),
        continue_token: None,
    });
    Ok(ListPage {
        items,
        resource_version: meta.resource_version,
        continue_token: meta.continue_token.filter(|c| !c.is_empty()),
    })
}
