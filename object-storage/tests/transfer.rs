//! Streamed uploads and downloads on a directory and on a real S3 server (Garage):
//! nothing is visible under the name before `finish`, an aborted upload leaves nothing,
//! and what is read back is what was written, in parts larger and smaller than a part.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed unwrap is a failed test

use std::time::Duration;

use object_storage::transfer::PART_SIZE;
use object_storage::{S3Credentials, S3Options, Storage, StorageOptions, StorageUrl};
use sha2::{Digest, Sha256};
use testenv::Garage;

/// Deterministic bytes that do not repeat at part boundaries.
fn data(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

async fn round_trip(storage: &Storage) {
    // Two and a half parts, written in uneven pieces.
    let body = data(PART_SIZE * 5 / 2 + 12_345);
    let mut upload = storage.upload("snapshots/a.db").await.unwrap();
    for piece in body.chunks(1_000_003) {
        upload.write(piece).await.unwrap();
    }
    assert_eq!(upload.written(), body.len() as u64);
    assert_eq!(
        storage.size("snapshots/a.db").await.unwrap(),
        None,
        "visible before finish"
    );
    assert_eq!(upload.finish().await.unwrap(), body.len() as u64);
    assert_eq!(
        storage.size("snapshots/a.db").await.unwrap(),
        Some(body.len() as u64)
    );

    let mut download = storage.download("snapshots/a.db").await.unwrap();
    assert_eq!(download.size(), body.len() as u64);
    let mut hasher = Sha256::new();
    let mut read = 0;
    while let Some(chunk) = download.next_chunk().await.unwrap() {
        hasher.update(&chunk);
        read += chunk.len();
    }
    assert_eq!(read, body.len());
    assert_eq!(hasher.finalize(), Sha256::digest(&body));

    // Aborted after a part went out: nothing under the name.
    let mut upload = storage.upload("snapshots/b.db").await.unwrap();
    upload.write(&body[..PART_SIZE + 1]).await.unwrap();
    upload.abort().await;
    assert_eq!(storage.size("snapshots/b.db").await.unwrap(), None);

    // A missing object is named.
    let e = storage.download("snapshots/none.db").await.unwrap_err();
    assert!(
        matches!(e, object_storage::Error::NotFound(ref m) if m.contains("snapshots/none.db")),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_in_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let url = StorageUrl::Dir(dir.path().to_path_buf());
    let storage = Storage::open(&url, &StorageOptions::default()).unwrap();
    round_trip(&storage).await;
    // Only the finished object is left in the directory.
    let names: Vec<_> = std::fs::read_dir(dir.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["a.db".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_on_s3() {
    let garage = Garage::start().await.unwrap();
    let url = StorageUrl::parse(&garage.url("transfer")).unwrap();
    let options = StorageOptions {
        s3: S3Options {
            endpoint: Some(garage.endpoint()),
            region: Some(garage.region().to_string()),
            path_style: None,
            credentials: Some(S3Credentials {
                access_key_id: garage.access_key_id().to_string(),
                secret_access_key: garage.secret_access_key().to_string(),
            }),
        },
        retry_timeout: Duration::from_secs(5),
    };
    let storage = Storage::open(&url, &options).unwrap();
    round_trip(&storage).await;
    assert_eq!(
        storage.location("snapshots/a.db"),
        format!("{}/snapshots/a.db", garage.url("transfer"))
    );
}
