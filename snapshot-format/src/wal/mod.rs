//! etcd's write-ahead log (`member/wal/*.wal`) and raft snapshot files
//! (`member/snap/*.snap`).
