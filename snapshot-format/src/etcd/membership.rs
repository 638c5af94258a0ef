//! Cluster membership as etcd computes and stores it: member and cluster ids, the
//! `--initial-cluster` syntax, member JSON (WAL conf-change context, `members` bucket)
//! and the v2 store that `etcdctl snapshot restore` puts in the `.snap` file.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use sha1::{Digest, Sha1};

use crate::error::{Error, Result};

/// One member of a cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterMember {
    /// Member id (`types.ID`).
    pub id: u64,
    /// Name (empty until the member publishes it).
    pub name: String,
    /// Peer URLs, sorted.
    pub peer_urls: Vec<String>,
    /// Client URLs (empty until the member publishes them).
    pub client_urls: Vec<String>,
    /// True for a learner.
    pub is_learner: bool,
}

impl ClusterMember {
    /// A member as `membership.NewMember(name, peerURLs, token, nil)` creates it: the id
    /// is the first 8 bytes (big-endian) of SHA-1 over the sorted peer URLs and the
    /// cluster token.
    pub fn new(name: &str, peer_urls: &[String], token: &str) -> ClusterMember {
        let mut urls = peer_urls.to_vec();
        urls.sort();
        let mut h = Sha1::new();
        for u in &urls {
            h.update(u.as_bytes());
        }
        h.update(token.as_bytes());
        let digest = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        ClusterMember {
            id: u64::from_be_bytes(id),
            name: name.to_string(),
            peer_urls: urls,
            client_urls: Vec::new(),
            is_learner: false,
        }
    }

    /// The member as Go's `json.Marshal(membership.Member)` writes it: `id`, `peerURLs`,
    /// `isLearner` (when true), `name` and `clientURLs` (when set).
    pub fn to_json(&self) -> String {
        let mut s = format!(
            "{{\"id\":{},\"peerURLs\":{}",
            self.id,
            go_json(&self.peer_urls)
        );
        if self.is_learner {
            s.push_str(",\"isLearner\":true");
        }
        if !self.name.is_empty() {
            let _ = write!(s, ",\"name\":{}", go_json(&self.name));
        }
        if !self.client_urls.is_empty() {
            let _ = write!(s, ",\"clientURLs\":{}", go_json(&self.client_urls));
        }
        s.push('}');
        s
    }

    /// The member's `raftAttributes` as stored in the v2 store: `{"peerURLs":[…]}` (and
    /// `isLearner` when true).
    pub fn raft_attributes_json(&self) -> String {
        let mut s = format!("{{\"peerURLs\":{}", go_json(&self.peer_urls));
        if self.is_learner {
            s.push_str(",\"isLearner\":true");
        }
        s.push('}');
        s
    }

    /// The key of this member in the `members` bucket: the id in hex, unpadded.
    pub fn bucket_key(&self) -> String {
        format!("{:x}", self.id)
    }
}

/// JSON as Go's encoder writes it: `<`, `>`, `&`, U+2028 and U+2029 escaped.
fn go_json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    let s = serde_json::to_string(v).unwrap_or_default();
    s.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// The cluster id etcd derives from its members: SHA-1 over the sorted member ids
/// (8 bytes big-endian each), first 8 bytes big-endian.
pub fn cluster_id(member_ids: &[u64]) -> u64 {
    let mut ids = member_ids.to_vec();
    ids.sort_unstable();
    let mut h = Sha1::new();
    for id in ids {
        h.update(id.to_be_bytes());
    }
    let digest = h.finalize();
    let mut out = [0u8; 8];
    out.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(out)
}

/// Checks a peer or client URL as etcd's `types.NewURLs` does: scheme http, https,
/// unix or unixs; a host with a port; no path.
pub fn check_url(url: &str) -> Result<()> {
    let bad = |why: &str| Error::Invalid(format!("URL {url:?} {why}"));
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("has no scheme (expected http://host:port)"))?;
    if !matches!(scheme, "http" | "https" | "unix" | "unixs") {
        return Err(bad("has a scheme other than http, https, unix or unixs"));
    }
    if rest.contains('/') || rest.contains('?') || rest.contains('#') {
        return Err(bad("must not contain a path"));
    }
    if scheme.starts_with("http") {
        let port = rest.rsplit_once(':').map(|(_, p)| p).unwrap_or("");
        if port.is_empty() || port.parse::<u16>().is_err() || rest.starts_with(':') {
            return Err(bad("must be host:port"));
        }
    }
    Ok(())
}

/// Parses `--initial-cluster`: `name=url,name=url,…` (a name may repeat, one URL each).
/// Returns the peer URLs per name, names in their order of first appearance.
pub fn parse_initial_cluster(spec: &str) -> Result<Vec<(String, Vec<String>)>> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, url) = part.split_once('=').ok_or_else(|| {
            Error::Invalid(format!(
                "--initial-cluster entry {part:?} is not name=url (example: m1=http://10.0.0.1:2380)"
            ))
        })?;
        if name.is_empty() {
            return Err(Error::Invalid(format!(
                "--initial-cluster entry {part:?} has an empty name"
            )));
        }
        check_url(url)?;
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, urls)) => {
                if urls.iter().any(|u| u == url) {
                    return Err(Error::Invalid(format!(
                        "--initial-cluster lists {url} twice for {name}"
                    )));
                }
                urls.push(url.to_string());
            }
            None => out.push((name.to_string(), vec![url.to_string()])),
        }
    }
    if out.is_empty() {
        return Err(Error::Invalid("--initial-cluster is empty".into()));
    }
    Ok(out)
}

/// The members of `--initial-cluster` with `--initial-cluster-token`, sorted by id as
/// etcd orders them; an error when two members share a peer URL or an id.
pub fn initial_members(spec: &str, token: &str) -> Result<Vec<ClusterMember>> {
    let mut members: Vec<ClusterMember> = parse_initial_cluster(spec)?
        .iter()
        .map(|(name, urls)| ClusterMember::new(name, urls, token))
        .collect();
    members.sort_by_key(|m| m.id);
    let mut seen = BTreeMap::new();
    for m in &members {
        for u in &m.peer_urls {
            if let Some(other) = seen.insert(u.clone(), m.name.clone()) {
                return Err(Error::Invalid(format!(
                    "--initial-cluster gives peer URL {u} to both {other} and {}",
                    m.name
                )));
            }
        }
    }
    if members.windows(2).any(|w| w[0].id == w[1].id) {
        return Err(Error::Invalid(
            "two members of --initial-cluster have the same id".into(),
        ));
    }
    Ok(members)
}

/// The v2 store (etcd's `store.Save()` JSON) holding only the members' raft attributes,
/// created one after the other in id order: what `etcdctl snapshot restore` puts into the
/// `.snap` file. Byte for byte as etcd 3.4 writes it.
pub fn restore_v2_store(members: &[ClusterMember]) -> String {
    const EPOCH: &str = "\"ExpireTime\":\"0001-01-01T00:00:00Z\"";
    const CAPACITY: usize = 1000;
    let node = |path: &str, index: usize, value: &str, children: &str| {
        format!(
            "{{\"Path\":{},\"CreatedIndex\":{index},\"ModifiedIndex\":{index},{EPOCH},\"Value\":{},\"Children\":{children}}}",
            go_json(path),
            go_json(value)
        )
    };
    let mut sorted: Vec<&ClusterMember> = members.iter().collect();
    sorted.sort_by_key(|m| m.id);
    let n = sorted.len();
    // Children maps are JSON objects with sorted keys (Go sorts map keys).
    let mut by_key: Vec<(String, usize, &ClusterMember)> = sorted
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("{:x}", m.id), i + 1, *m))
        .collect();
    by_key.sort_by(|a, b| a.0.cmp(&b.0));
    let mut member_nodes = Vec::new();
    for (key, index, m) in &by_key {
        let dir = format!("/0/members/{key}");
        let attrs = node(
            &format!("{dir}/raftAttributes"),
            *index,
            &m.raft_attributes_json(),
            "null",
        );
        let children = format!("{{\"raftAttributes\":{attrs}}}");
        member_nodes.push(format!(
            "{}:{}",
            go_json(key),
            node(&dir, *index, "", &children)
        ));
    }
    let members_index = if n == 0 { 0 } else { 1 };
    let members_dir = node(
        "/0/members",
        members_index,
        "",
        &format!("{{{}}}", member_nodes.join(",")),
    );
    let zero = node("/0", 0, "", &format!("{{\"members\":{members_dir}}}"));
    let one = node("/1", 0, "", "{}");
    let root = node("/", 0, "", &format!("{{\"0\":{zero},\"1\":{one}}}"));
    let mut events: Vec<String> = sorted
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                "{{\"action\":\"create\",\"node\":{{\"key\":{},\"value\":{},\"modifiedIndex\":{},\"createdIndex\":{}}}}}",
                go_json(&format!("/0/members/{:x}/raftAttributes", m.id)),
                go_json(&m.raft_attributes_json()),
                i + 1,
                i + 1
            )
        })
        .collect();
    events.resize(CAPACITY.max(n), "null".to_string());
    format!(
        "{{\"Root\":{root},\"WatcherHub\":{{\"EventHistory\":{{\"Queue\":{{\"Events\":[{}],\"Size\":{n},\"Front\":0,\"Back\":{n},\"Capacity\":{CAPACITY}}},\"StartIndex\":{},\"LastIndex\":{n}}}}},\"CurrentIndex\":{n},\"Stats\":{{\"getsSuccess\":0,\"getsFail\":0,\"setsSuccess\":0,\"setsFail\":0,\"deleteSuccess\":0,\"deleteFail\":0,\"updateSuccess\":0,\"updateFail\":0,\"createSuccess\":{n},\"createFail\":0,\"compareAndSwapSuccess\":0,\"compareAndSwapFail\":0,\"compareAndDeleteSuccess\":0,\"compareAndDeleteFail\":0,\"expireCount\":0,\"watchers\":0}},\"CurrentVersion\":2}}",
        events.join(","),
        members_index,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_match_etcd() {
        // From `etcdctl snapshot restore --initial-cluster-token tok` (etcd 3.4.23).
        let members = initial_members(
            "m1=http://127.0.0.1:2380,m2=http://127.0.0.1:2381,m3=http://127.0.0.1:2382",
            "tok",
        )
        .unwrap();
        let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
        assert_eq!(
            ids,
            [0x321b4ccd5c32edea, 0x71405583d3e2d5ce, 0xbf923f8405cbb3bc]
        );
        assert_eq!(members[0].name, "m2");
        assert_eq!(cluster_id(&ids), 0x62e51227d18cf864);
        assert_eq!(
            members[0].to_json(),
            r#"{"id":3610563971166432746,"peerURLs":["http://127.0.0.1:2381"],"name":"m2"}"#
        );
    }

    #[test]
    fn initial_cluster_errors() {
        assert!(parse_initial_cluster("m1").is_err());
        assert!(parse_initial_cluster("m1=127.0.0.1:2380").is_err());
        assert!(parse_initial_cluster("m1=http://127.0.0.1:2380/x").is_err());
        assert!(initial_members("a=http://h:1,b=http://h:1", "t").is_err());
        let two = parse_initial_cluster("a=http://h:1,a=http://h:2").unwrap();
        assert_eq!(two[0].1.len(), 2);
    }
}
