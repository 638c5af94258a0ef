//! testenv's Garage: a real S3 server, driven with the `object_store` crate as the backup
//! code drives it — round trips, extra buckets, a server that stops and comes back with
//! its data, and credentials that do not match.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use futures::TryStreamExt as _;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt as _, PutPayload, RetryConfig};
use testenv::Garage;

/// A client for `bucket` of `garage` with `secret`, without retries, so that failures
/// show at once.
fn store_with(garage: &Garage, bucket: &str, secret: &str) -> AmazonS3 {
    // reqwest is built without a rustls provider of its own (workspace manifest).
    let _ = rustls::crypto::ring::default_provider().install_default();
    AmazonS3Builder::new()
        // First: `with_client_options` replaces all client options, `allow_http` too.
        .with_client_options(
            ClientOptions::new()
                .with_connect_timeout(Duration::from_secs(5))
                .with_timeout(Duration::from_secs(20)),
        )
        .with_endpoint(garage.endpoint())
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_region(garage.region())
        .with_bucket_name(bucket)
        .with_access_key_id(garage.access_key_id())
        .with_secret_access_key(secret)
        .with_retry(RetryConfig {
            max_retries: 0,
            retry_timeout: Duration::from_secs(5),
            ..RetryConfig::default()
        })
        .build()
        .unwrap()
}

fn store(garage: &Garage) -> AmazonS3 {
    store_with(garage, garage.bucket(), garage.secret_access_key())
}

async fn bounded<F: std::future::Future<Output = ()>>(test: F) {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("the test finished within 120 s");
}

async fn listed(store: &AmazonS3, prefix: &str) -> Vec<(String, u64)> {
    let mut objects: Vec<(String, u64)> = store
        .list(Some(&Path::from(prefix)))
        .map_ok(|meta| (meta.location.to_string(), meta.size))
        .try_collect()
        .await
        .unwrap();
    objects.sort();
    objects
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn objects_round_trip_through_the_salvor_bucket() {
    let garage = Garage::start().await.unwrap();
    bounded(async {
        assert!(garage.endpoint().starts_with("http://127.0.0.1:"));
        assert_eq!(garage.bucket(), "salvor");
        assert_eq!(garage.url("backups/one"), "s3://salvor/backups/one");
        assert_eq!(garage.url("/x"), "s3://salvor/x");
        let env = garage.env();
        let var = |name: &str| {
            env.iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .unwrap()
        };
        assert_eq!(var("AWS_ENDPOINT_URL"), garage.endpoint());
        assert_eq!(var("AWS_ACCESS_KEY_ID"), garage.access_key_id());
        assert_eq!(var("AWS_SECRET_ACCESS_KEY"), garage.secret_access_key());
        assert_eq!(var("AWS_REGION"), garage.region());

        let s3 = store(&garage);
        // Larger than Garage's 1 MiB blocks, so the object spans several.
        let big: Vec<u8> = (0..3 * 1024 * 1024 + 17).map(|i| (i % 251) as u8).collect();
        let small = b"{\"kind\":\"ConfigMap\"}".to_vec();
        s3.put(
            &Path::from("backups/b1/manifest.json"),
            PutPayload::from(small.clone()),
        )
        .await
        .unwrap();
        s3.put(
            &Path::from("backups/b1/data.zst"),
            PutPayload::from(big.clone()),
        )
        .await
        .unwrap();
        s3.put(&Path::from("other/file"), PutPayload::from_static(b"x"))
            .await
            .unwrap();

        let got = s3.get(&Path::from("backups/b1/data.zst")).await.unwrap();
        assert_eq!(got.meta.size, big.len() as u64);
        assert_eq!(got.bytes().await.unwrap().as_ref(), big.as_slice());
        let got = s3
            .get(&Path::from("backups/b1/manifest.json"))
            .await
            .unwrap();
        assert_eq!(got.bytes().await.unwrap().as_ref(), small.as_slice());
        let range = s3
            .get_range(&Path::from("backups/b1/data.zst"), 1_048_570..1_048_590)
            .await
            .unwrap();
        assert_eq!(range.as_ref(), &big[1_048_570..1_048_590]);

        assert_eq!(
            listed(&s3, "backups").await,
            vec![
                ("backups/b1/data.zst".to_string(), big.len() as u64),
                ("backups/b1/manifest.json".to_string(), small.len() as u64),
            ]
        );
        assert_eq!(listed(&s3, "").await.len(), 3);

        s3.delete(&Path::from("backups/b1/manifest.json"))
            .await
            .unwrap();
        let gone = s3.get(&Path::from("backups/b1/manifest.json")).await;
        assert!(
            matches!(gone, Err(object_store::Error::NotFound { .. })),
            "{gone:?}"
        );
        assert_eq!(
            listed(&s3, "backups").await,
            vec![("backups/b1/data.zst".to_string(), big.len() as u64)]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn more_buckets_can_be_created() {
    let garage = Garage::start().await.unwrap();
    bounded(async {
        garage.create_bucket("second").await.unwrap();
        let second = store_with(&garage, "second", garage.secret_access_key());
        second
            .put(
                &Path::from("a/b"),
                PutPayload::from_static(b"in the second bucket"),
            )
            .await
            .unwrap();
        let bytes = second
            .get(&Path::from("a/b"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.as_ref(), b"in the second bucket");
        // Buckets are separate.
        assert!(listed(&store(&garage), "").await.is_empty());

        // A bucket that does not exist is an error, not an empty listing.
        let missing = store_with(&garage, "missing", garage.secret_access_key());
        let result = missing.get(&Path::from("a/b")).await;
        assert!(result.is_err(), "{result:?}");
        // Creating an existing bucket again fails and says so.
        let error = garage
            .create_bucket("second")
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("409"), "{error}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_survives_a_stop_and_requests_fail_while_stopped() {
    let mut garage = Garage::start().await.unwrap();
    bounded(async {
        let s3 = store(&garage);
        let payload: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
        s3.put(&Path::from("keep/me"), PutPayload::from(payload.clone()))
            .await
            .unwrap();
        let endpoint = garage.endpoint();

        garage.stop().await.unwrap();
        assert!(!garage.is_running());
        let put = s3
            .put(&Path::from("keep/lost"), PutPayload::from_static(b"no"))
            .await;
        assert!(put.is_err(), "a put while stopped: {put:?}");
        let get = s3.get(&Path::from("keep/me")).await;
        assert!(get.is_err(), "a get while stopped: {get:?}");
        assert!(
            !matches!(get, Err(object_store::Error::NotFound { .. })),
            "a stopped server is not a missing object: {get:?}"
        );

        garage.start_again().await.unwrap();
        assert!(garage.is_running());
        assert_eq!(garage.endpoint(), endpoint);
        // The same client, credentials and bucket work again, with the data.
        let bytes = s3
            .get(&Path::from("keep/me"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.as_ref(), payload.as_slice());
        assert_eq!(
            listed(&s3, "keep").await,
            vec![("keep/me".to_string(), payload.len() as u64)]
        );
        s3.put(&Path::from("keep/after"), PutPayload::from_static(b"yes"))
            .await
            .unwrap();

        // Again, at once after a write.
        garage.stop().await.unwrap();
        garage.start_again().await.unwrap();
        let bytes = s3
            .get(&Path::from("keep/after"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(bytes.as_ref(), b"yes");
        // start_again on a running server restarts it.
        garage.start_again().await.unwrap();
        assert_eq!(listed(&s3, "keep").await.len(), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_secret_is_an_authentication_error() {
    let garage = Garage::start().await.unwrap();
    bounded(async {
        let wrong = store_with(&garage, garage.bucket(), &"0".repeat(64));
        // Garage answers 403 AccessDenied "Invalid signature"; object_store makes that
        // PermissionDenied.
        let put = wrong
            .put(&Path::from("x"), PutPayload::from_static(b"x"))
            .await;
        assert!(
            matches!(&put, Err(object_store::Error::PermissionDenied { .. })),
            "{put:?}"
        );
        assert!(format!("{put:?}").contains("Invalid signature"), "{put:?}");
        let get = wrong.get(&Path::from("x")).await;
        assert!(
            matches!(&get, Err(object_store::Error::PermissionDenied { .. })),
            "{get:?}"
        );
        // Nothing was written.
        assert!(listed(&store(&garage), "").await.is_empty());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_garage_is_gone() {
    let garage = Garage::start().await.unwrap();
    let dir = garage.dir().to_path_buf();
    let endpoint = garage.endpoint();
    assert!(dir.join("garage.toml").is_file());
    assert!(garage.log().is_file());
    drop(garage);
    assert!(!dir.exists(), "{} was removed", dir.display());
    let address = endpoint.trim_start_matches("http://");
    assert!(
        tokio::net::TcpStream::connect(address).await.is_err(),
        "nothing listens on {address} any more"
    );
}

#[test]
fn a_missing_garage_says_how_to_install_it() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_testenv"))
        .args(["s3", "up"])
        .env("GARAGE", "/nonexistent/garage")
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/garage"), "{stderr}");
    assert!(
        stderr.contains(
            "cargo install garage --locked --version 2.5.0 --root ~/.cache/salvor/garage"
        ),
        "{stderr}"
    );
    assert!(stderr.contains(".ci/run"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn testenv_s3_up_prints_a_working_server_and_stops_on_sigterm() {
    use tokio::io::AsyncBufReadExt as _;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_testenv"))
        .args(["s3", "up"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("a line within 60 s")
        .unwrap()
        .expect("a JSON line");
    let description: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(description["bucket"], "salvor");
    assert_eq!(description["url"], "s3://salvor/");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let s3 = AmazonS3Builder::new()
        .with_endpoint(description["endpoint"].as_str().unwrap())
        .with_allow_http(true)
        .with_region(description["region"].as_str().unwrap())
        .with_bucket_name(description["bucket"].as_str().unwrap())
        .with_access_key_id(description["access_key_id"].as_str().unwrap())
        .with_secret_access_key(description["secret_access_key"].as_str().unwrap())
        .build()
        .unwrap();
    s3.put(&Path::from("hello"), PutPayload::from_static(b"world"))
        .await
        .unwrap();
    let dir = std::path::PathBuf::from(description["dir"].as_str().unwrap());
    assert!(dir.is_dir());

    let pid = i32::try_from(child.id().unwrap()).unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("testenv exits within 30 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(!dir.exists(), "{} was removed", dir.display());
}
