//! Throughput of testenv's API server next to raw etcd, on the same machine and etcd:
//!
//! - create N ConfigMaps over HTTP (kube-rs client) with C requests in flight, and the
//!   same number of raw etcd puts of the stored bytes with C in flight;
//! - a paginated list (limit 500) over HTTP of M ConfigMaps, and the same paginated
//!   range read of the keys straight from etcd.
//!
//! ```text
//! cargo run --release -p testenv --example apiserver_bench -- [CREATES] [LISTED] [IN_FLIGHT]
//! ```
//!
//! Defaults: 10,000 creates, 100,000 listed objects, 32 in flight. Results go to
//! docs/benchmarks.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, DynamicObject, ListParams, PostParams};
use serde_json::json;
use testenv::apiserver::{KubeCluster, KubeClusterOptions};
use tokio::task::JoinSet;

fn configmap(namespace: &str, name: &str, index: usize) -> serde_json::Value {
    // About 1 KiB, a typical small object.
    json!({"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": name, "namespace": namespace, "labels": {"app": format!("app-{}", index % 50), "bench": "yes"}},
           "data": {"settings": "x".repeat(900), "index": index.to_string()}})
}

fn rate(count: usize, elapsed: Duration) -> String {
    format!(
        "{count} in {:.2} s = {:.0}/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("numbers"))
        .collect();
    let creates = args.first().copied().unwrap_or(10_000);
    let listed = args.get(1).copied().unwrap_or(100_000);
    let in_flight = args.get(2).copied().unwrap_or(32);

    let cluster = KubeCluster::start(KubeClusterOptions::default())
        .await
        .unwrap();
    let server = cluster.server();
    let etcd = cluster.etcd().client().await.unwrap();
    let client = kube::Client::try_from(kube::Config::new(server.url().parse().unwrap())).unwrap();
    let api = server.api().clone();
    let namespaces = api.discovery().get("", "v1", "namespaces").unwrap();
    for ns in ["bench", "listed"] {
        api.create(
            &namespaces,
            None,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .await
        .unwrap();
    }
    let ar = kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&());

    // 1. Creates over HTTP, `in_flight` at a time.
    let configmaps: Api<DynamicObject> = Api::namespaced_with(client.clone(), "bench", &ar);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..creates {
        while tasks.len() >= in_flight {
            tasks.join_next().await.unwrap().unwrap();
        }
        let configmaps = configmaps.clone();
        let object: DynamicObject =
            serde_json::from_value(configmap("bench", &format!("cm-{i:06}"), i)).unwrap();
        tasks.spawn(async move {
            configmaps
                .create(&PostParams::default(), &object)
                .await
                .unwrap();
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    let api_creates = started.elapsed();

    // 2. The same number of raw etcd puts of the same stored bytes.
    let stored = etcd
        .get("/registry/configmaps/bench/cm-000000")
        .await
        .unwrap()
        .unwrap()
        .value;
    let stored = Arc::new(stored);
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..creates {
        while tasks.len() >= in_flight {
            tasks.join_next().await.unwrap().unwrap();
        }
        let (etcd, stored) = (etcd.clone(), stored.clone());
        tasks.spawn(async move {
            etcd.put(
                format!("/bench-raw/configmaps/cm-{i:06}").into_bytes(),
                stored.to_vec(),
            )
            .await
            .unwrap();
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    let raw_puts = started.elapsed();

    // 3. `listed` ConfigMaps (written in-process, 64 in flight), listed over HTTP 500 at a time.
    let resource = api.discovery().get("", "v1", "configmaps").unwrap();
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..listed {
        while tasks.len() >= 64 {
            tasks.join_next().await.unwrap().unwrap();
        }
        let (api, resource) = (api.clone(), resource.clone());
        tasks.spawn(async move {
            api.create(
                &resource,
                Some("listed"),
                configmap("listed", &format!("cm-{i:06}"), i),
            )
            .await
            .unwrap();
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.unwrap();
    }
    let load = started.elapsed();
    let listed_api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "listed", &ar);
    let started = Instant::now();
    let mut seen = 0;
    let mut params = ListParams::default().limit(500);
    loop {
        let page = listed_api.list(&params).await.unwrap();
        seen += page.items.len();
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(seen, listed);
    let api_list = started.elapsed();

    // 4. The same paginated range read straight from etcd.
    let started = Instant::now();
    let prefix = b"/registry/configmaps/listed/".to_vec();
    let end = etcd_rpc::prefix_range_end(&prefix);
    let mut start = prefix.clone();
    let mut raw_seen = 0;
    let mut revision = 0;
    loop {
        let page = etcd
            .range(etcd_rpc::proto::RangeRequest {
                key: start.clone(),
                range_end: end.clone(),
                limit: 500,
                revision,
                ..Default::default()
            })
            .await
            .unwrap();
        revision = page.header.map_or(0, |h| h.revision);
        raw_seen += page.kvs.len();
        match (page.more, page.kvs.last()) {
            (true, Some(last)) => {
                start = last.key.clone();
                start.push(0);
            }
            _ => break,
        }
    }
    assert_eq!(raw_seen, listed);
    let raw_range = started.elapsed();

    println!("stored ConfigMap size: {} bytes", stored.len());
    println!(
        "API create over HTTP ({in_flight} in flight): {}",
        rate(creates, api_creates)
    );
    println!(
        "raw etcd put ({in_flight} in flight):          {}",
        rate(creates, raw_puts)
    );
    println!(
        "in-process API create (64 in flight):      {}",
        rate(listed, load)
    );
    println!(
        "API paginated list over HTTP (limit 500):   {}",
        rate(listed, api_list)
    );
    println!(
        "raw etcd paginated range (limit 500):       {}",
        rate(listed, raw_range)
    );
    cluster.stop().await.unwrap();
}
