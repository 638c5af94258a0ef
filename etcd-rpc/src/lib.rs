//! etcd v3 gRPC client that builds without `protoc`.
//!
//! The API messages are declared by hand with `prost` derives in [`proto`]
//! (field numbers from etcd's `rpc.proto`, `auth.proto` and `kv.proto`), and
//! called with `tonic`'s generic gRPC client. [`Client`] adds what a tool needs
//! around the raw calls: several endpoints with balancing and failover, TLS
//! with client certificates, user/password authentication with token refresh,
//! request timeouts, and errors that keep etcd's status ([`Error`]).
//!
//! ```no_run
//! use etcd_rpc::{Client, ConnectOptions};
//!
//! # async fn example() -> Result<(), etcd_rpc::Error> {
//! let endpoints = vec!["http://127.0.0.1:2379".to_string()];
//! let client = Client::connect(&endpoints, ConnectOptions::default()).await?;
//! let put = client.put("/registry/configmaps/default/demo", "value").await?;
//! println!("written at revision {}", put.header.unwrap_or_default().revision);
//! if let Some(kv) = client.get("/registry/configmaps/default/demo").await? {
//!     println!("{}", String::from_utf8_lossy(&kv.value));
//! }
//! let status = client.status().await?;
//! println!("etcd {} db size {}", status.version, status.db_size);
//! # Ok(())
//! # }
//! ```

mod api;
mod client;
mod error;
pub mod http;
pub mod proto;
mod streams;

pub use client::{Client, ConnectOptions, TlsOptions};
pub use error::Error;
pub use proto::mvccpb::{Event, EventType, KeyValue};
pub use streams::{SnapshotStream, SnapshotSummary, Watcher};

/// The `range_end` that selects every key starting with `prefix`, as etcd's
/// `clientv3.GetPrefixRangeEnd` (shared with the offline readers).
pub use snapshot_format::etcd::prefix_end as prefix_range_end;

/// `(key, range_end)` selecting every key starting with `prefix`; the empty
/// prefix selects every key (`key = [0]`, since etcd rejects an empty key).
pub(crate) fn prefix_range(prefix: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let range_end = prefix_range_end(&prefix);
    let key = if prefix.is_empty() { vec![0] } else { prefix };
    (key, range_end)
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::proto::*;

    #[test]
    fn prefix_range_end_matches_clientv3() {
        assert_eq!(prefix_range_end(b"/registry/pods/"), b"/registry/pods0");
        assert_eq!(prefix_range_end(b"a\xff"), b"b");
        assert_eq!(prefix_range_end(b"a\xfe\xff\xff"), b"a\xff");
        assert_eq!(prefix_range_end(b"\xff\xff"), vec![0]);
        assert_eq!(prefix_range_end(b""), vec![0]);
        assert_eq!(prefix_range(Vec::new()), (vec![0], vec![0]));
    }

    /// PutRequest: key=1 and value=2 are length-delimited (wire type 2), lease=3
    /// and prev_kv=4 varints (wire type 0); false/zero fields are omitted.
    #[test]
    fn put_request_encoding() {
        let put = PutRequest {
            key: b"foo".to_vec(),
            value: b"bar".to_vec(),
            lease: 300,
            prev_kv: true,
            ignore_value: false,
            ignore_lease: false,
        };
        let expected = [
            0x0a, 3, b'f', b'o', b'o', // 1 << 3 | 2, len 3
            0x12, 3, b'b', b'a', b'r', // 2 << 3 | 2, len 3
            0x18, 0xac, 0x02, // 3 << 3 | 0, varint 300
            0x20, 1, // 4 << 3 | 0, true
        ];
        assert_eq!(put.encode_to_vec(), expected);
        assert_eq!(PutRequest::decode(&expected[..]).unwrap(), put);
    }

    /// Every RangeRequest field, tags 1 to 13, in order.
    #[test]
    fn range_request_encoding() {
        let range = RangeRequest {
            key: b"a".to_vec(),
            range_end: b"b".to_vec(),
            limit: 10,
            revision: 5,
            sort_order: SortOrder::Descend as i32,
            sort_target: SortTarget::Mod as i32,
            serializable: true,
            keys_only: true,
            count_only: true,
            min_mod_revision: 1,
            max_mod_revision: 2,
            min_create_revision: 3,
            max_create_revision: 4,
        };
        let expected = [
            0x0a, 1, b'a', 0x12, 1, b'b', 0x18, 10, 0x20, 5, 0x28, 2, 0x30, 3, 0x38, 1, 0x40, 1,
            0x48, 1, 0x50, 1, 0x58, 2, 0x60, 3, 0x68, 4,
        ];
        assert_eq!(range.encode_to_vec(), expected);
        assert_eq!(range.sort_order(), SortOrder::Descend);
        assert_eq!(range.sort_target(), SortTarget::Mod);
    }

    /// A negative int64 is a ten-byte two's complement varint.
    #[test]
    fn negative_revision_encoding() {
        let range = RangeRequest {
            revision: -1,
            ..Default::default()
        };
        let mut expected = vec![0x20];
        expected.extend_from_slice(&[0xff; 9]);
        expected.push(0x01);
        assert_eq!(range.encode_to_vec(), expected);
    }

    /// Compare: the oneof value (tag 7 for `value`) and `range_end` at tag 64,
    /// whose key is the two-byte varint 64 << 3 | 2 = 514 = 0x82 0x04.
    #[test]
    fn compare_encoding() {
        let compare = Compare::value("k", CompareResult::NotEqual, "v").with_range_end("l");
        let expected = [
            0x08, 3, // result NOT_EQUAL
            0x10, 3, // target VALUE
            0x1a, 1, b'k', // key
            0x3a, 1, b'v', // target_union.value
            0x82, 0x04, 1, b'l', // range_end
        ];
        assert_eq!(compare.encode_to_vec(), expected);
        assert_eq!(Compare::decode(&expected[..]).unwrap(), compare);
    }

    /// Txn success op: RequestOp.request_put (tag 2) nested in TxnRequest.success (tag 2).
    #[test]
    fn txn_request_encoding() {
        let txn = TxnRequest {
            compare: vec![],
            success: vec![RequestOp::put(PutRequest {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                ..Default::default()
            })],
            failure: vec![],
        };
        let put = [0x0a, 1, b'k', 0x12, 1, b'v'];
        let mut op = vec![0x12, put.len() as u8];
        op.extend_from_slice(&put);
        let mut expected = vec![0x12, op.len() as u8];
        expected.extend_from_slice(&op);
        assert_eq!(txn.encode_to_vec(), expected);
    }

    /// AuthUserAddRequest: the `string` fields (name 1, password 2, hashedPassword 4)
    /// are bytes in Rust and length-delimited on the wire, as a `string` is; options 3
    /// is a nested message.
    #[test]
    fn auth_user_add_request_encoding() {
        let add = AuthUserAddRequest {
            name: b"root".to_vec(),
            password: b"pw".to_vec(),
            options: Some(authpb::UserAddOptions { no_password: true }),
            hashed_password: b"h".to_vec(),
        };
        let expected = [
            0x0a, 4, b'r', b'o', b'o', b't', // name
            0x12, 2, b'p', b'w', // password
            0x1a, 2, 0x08, 1, // options.no_password
            0x22, 1, b'h', // hashed_password
        ];
        assert_eq!(add.encode_to_vec(), expected);
        assert_eq!(AuthUserAddRequest::decode(&expected[..]).unwrap(), add);
    }

    #[test]
    fn member_add_request_encoding() {
        let add = MemberAddRequest {
            peer_urls: vec!["http://a".to_string()],
            is_learner: true,
        };
        let mut expected = vec![0x0a, 8];
        expected.extend_from_slice(b"http://a");
        expected.extend_from_slice(&[0x10, 1]);
        assert_eq!(add.encode_to_vec(), expected);
    }

    /// StatusResponse decoding: header (1) with its four fields, version (2),
    /// dbSize (3), leader (4), dbSizeInUse (9), isLearner (10).
    #[test]
    fn status_response_decoding() {
        let header = [0x08, 1, 0x10, 2, 0x18, 3, 0x20, 4];
        let mut bytes = vec![0x0a, header.len() as u8];
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&[0x12, 6]);
        bytes.extend_from_slice(b"3.4.23");
        bytes.extend_from_slice(&[0x18, 0x80, 0x20]); // 4096
        bytes.extend_from_slice(&[0x20, 2]);
        bytes.extend_from_slice(&[0x48, 0x80, 0x10]); // 2048
        bytes.extend_from_slice(&[0x50, 1]);
        let status = StatusResponse::decode(&bytes[..]).unwrap();
        assert_eq!(
            status.header,
            Some(ResponseHeader {
                cluster_id: 1,
                member_id: 2,
                revision: 3,
                raft_term: 4
            })
        );
        assert_eq!(status.version, "3.4.23");
        assert_eq!(status.db_size, 4096);
        assert_eq!(status.leader, 2);
        assert_eq!(status.db_size_in_use, 2048);
        assert!(status.is_learner);
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let request = AuthenticateRequest {
            name: "root".to_string(),
            password: "hunter2".to_string(),
        };
        let printed = format!("{request:?}");
        assert!(printed.contains("root"));
        assert!(!printed.contains("hunter2"));

        let response = AuthenticateResponse {
            header: None,
            token: "secret-token.42".to_string(),
        };
        assert!(!format!("{response:?}").contains("secret-token"));

        let opts = ConnectOptions {
            user: Some("root".to_string()),
            password: Some("hunter2".to_string()),
            tls: Some(TlsOptions {
                client_key_pem: Some(b"-----BEGIN PRIVATE KEY-----".to_vec()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let printed = format!("{opts:?}");
        assert!(printed.contains("root"));
        assert!(!printed.contains("hunter2"));
        assert!(!printed.contains("PRIVATE KEY"));
    }
}
