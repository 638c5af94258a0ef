//! [`EtcdCluster`]: real etcd members on loopback, in a temporary directory.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use etcd_rpc::proto::RangeRequest;
use etcd_rpc::{Client, ConnectOptions};
use tempfile::TempDir;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::Error;
use crate::pki::TlsFiles;
use crate::process::{self, ProcessSpec};

/// Environment variable naming the etcd binary to run instead of `etcd` from `PATH`.
pub const ETCD_BINARY_ENV: &str = "TESTENV_ETCD";
/// Environment variable naming the etcdctl binary to run instead of `etcdctl` from `PATH`.
pub const ETCDCTL_BINARY_ENV: &str = "TESTENV_ETCDCTL";

/// How etcd compacts history by itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AutoCompaction {
    /// `--auto-compaction-mode periodic`: keep this much history.
    Periodic(Duration),
    /// `--auto-compaction-mode revision`: keep this many revisions.
    Revision(u64),
}

/// How to start a cluster.
#[derive(Clone, Debug)]
pub struct EtcdOptions {
    /// Number of members (1 or more).
    pub members: usize,
    /// `--quota-backend-bytes`; `None` keeps etcd's default (2 GiB).
    pub quota_backend_bytes: Option<u64>,
    /// `--snapshot-count`; `None` keeps etcd's default (100,000).
    pub snapshot_count: Option<u64>,
    /// Automatic compaction; `None` (the default) disables it.
    pub auto_compaction: Option<AutoCompaction>,
    /// Serve clients over TLS with a generated CA and require client
    /// certificates (`--client-cert-auth`). Peers talk plain HTTP.
    pub tls: bool,
    /// `--unsafe-no-fsync` (accepted by etcd 3.4.23): skip fsync, which makes
    /// loading much faster. Data survives killing etcd (it is in the page
    /// cache), not a machine crash.
    pub unsafe_no_fsync: bool,
    /// `--heartbeat-interval`.
    pub heartbeat_interval: Duration,
    /// `--election-timeout`.
    pub election_timeout: Duration,
    /// Further flags passed to every member as they are.
    pub extra_args: Vec<String>,
    /// The etcd binary (default: `$TESTENV_ETCD`, else `etcd` from `PATH`).
    pub etcd_binary: PathBuf,
    /// The etcdctl binary (default: `$TESTENV_ETCDCTL`, else `etcdctl` from `PATH`).
    pub etcdctl_binary: PathBuf,
    /// Time allowed for every member to become healthy.
    pub start_timeout: Duration,
    /// How often the whole start is tried with new ports when a port was taken
    /// between reserving it and etcd binding it.
    pub start_attempts: usize,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        Self {
            members: 1,
            quota_backend_bytes: None,
            snapshot_count: None,
            auto_compaction: None,
            tls: false,
            unsafe_no_fsync: true,
            heartbeat_interval: Duration::from_millis(100),
            election_timeout: Duration::from_millis(1000),
            extra_args: Vec::new(),
            etcd_binary: std::env::var_os(ETCD_BINARY_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("etcd")),
            etcdctl_binary: std::env::var_os(ETCDCTL_BINARY_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("etcdctl")),
            start_timeout: Duration::from_secs(30),
            start_attempts: 4,
        }
    }
}

impl EtcdOptions {
    /// Default options with `members` members.
    pub fn members(members: usize) -> Self {
        Self {
            members,
            ..Self::default()
        }
    }
}

/// One member of an [`EtcdCluster`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Member {
    /// `--name`, e.g. `m0`.
    pub name: String,
    /// Client URL, e.g. `http://127.0.0.1:40123` (`https://` with TLS).
    pub client_url: String,
    /// Peer URL, e.g. `http://127.0.0.1:40124`.
    pub peer_url: String,
    /// The member's own directory (holds the data dir and the log).
    pub dir: PathBuf,
    /// `--data-dir`: `member/snap/db` and `member/wal/` live under it.
    pub data_dir: PathBuf,
    /// File receiving the member's stdout and stderr (zap JSON logs).
    pub log: PathBuf,
}

impl Member {
    /// The member's bbolt backend file, `<data_dir>/member/snap/db`.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("member").join("snap").join("db")
    }

    /// The member's WAL directory, `<data_dir>/member/wal`.
    pub fn wal_dir(&self) -> PathBuf {
        self.data_dir.join("member").join("wal")
    }
}

/// A running etcd cluster on 127.0.0.1.
///
/// Dropping it kills every member (SIGKILL) and removes its directory, also
/// when a test panics; if the test process dies without unwinding, the kernel
/// kills the members (they are spawned with a parent-death signal).
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
    processes: Vec<Option<Child>>,
    tls: Option<TlsFiles>,
    options: EtcdOptions,
    token: String,
    /// Declared last so that it is removed after the members are killed.
    dir: TempDir,
}

/// Ports handed out by this process, never handed out twice, so that clusters
/// started concurrently by parallel tests do not collide with each other.
static RESERVED_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// Distinguishes the `--initial-cluster-token` of clusters in this process.
static CLUSTER_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Fills the members' data dirs before a start (see [`EtcdCluster::start_prepared`]).
type Prepare<'a> = dyn FnMut(&[Member], &str) -> Result<(), Error> + 'a;

/// Why one start attempt failed.
enum StartFailure {
    /// A port was taken before etcd could bind it: try again with new ports.
    PortTaken(Error),
    /// Anything else.
    Fatal(Error),
}

impl From<Error> for StartFailure {
    fn from(error: Error) -> Self {
        StartFailure::Fatal(error)
    }
}

impl EtcdCluster {
    /// Starts `members` members with default options and waits until all are healthy.
    pub async fn start(members: usize) -> Result<Self, Error> {
        Self::start_with(EtcdOptions::members(members)).await
    }

    /// Starts a cluster and waits until every member answers a Status call and
    /// a linearizable Range.
    pub async fn start_with(options: EtcdOptions) -> Result<Self, Error> {
        Self::start_prepared(options, |_, _| Ok(())).await
    }

    /// Starts a cluster whose data dirs are filled by `prepare` before etcd starts
    /// (for example with a snapshot restored into each). `prepare` gets the members
    /// (names, peer URLs, data dirs, which do not exist yet) and the
    /// `--initial-cluster-token`; it runs again, with new ports, when a start attempt
    /// lost a port.
    pub async fn start_prepared<F>(options: EtcdOptions, mut prepare: F) -> Result<Self, Error>
    where
        F: FnMut(&[Member], &str) -> Result<(), Error>,
    {
        if options.members == 0 {
            return Err(Error::InvalidOptions(
                "a cluster needs at least one member".to_string(),
            ));
        }
        check_binary(&options.etcd_binary)?;
        let attempts = options.start_attempts.max(1);
        for attempt in 1..=attempts {
            match Self::try_start(&options, &mut prepare).await {
                Ok(cluster) => return Ok(cluster),
                Err(StartFailure::PortTaken(error)) if attempt < attempts => {
                    warn!(attempt, %error, "a port was taken while etcd started; retrying with new ports");
                }
                Err(StartFailure::PortTaken(error) | StartFailure::Fatal(error)) => {
                    return Err(error);
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn try_start(
        options: &EtcdOptions,
        prepare: &mut Prepare<'_>,
    ) -> Result<Self, StartFailure> {
        let dir = tempfile::Builder::new()
            .prefix("testenv-etcd-")
            .tempdir()
            .map_err(|source| {
                Error::io("create a temporary directory", std::env::temp_dir(), source)
            })?;
        let tls = if options.tls {
            Some(TlsFiles::generate(&dir.path().join("pki"))?)
        } else {
            None
        };
        let scheme = if options.tls { "https" } else { "http" };
        let ports = reserve_ports(options.members * 2)?;
        let members = (0..options.members)
            .map(|index| {
                let name = format!("m{index}");
                let member_dir = dir.path().join(&name);
                Member {
                    client_url: format!("{scheme}://127.0.0.1:{}", ports[index * 2]),
                    peer_url: format!("http://127.0.0.1:{}", ports[index * 2 + 1]),
                    data_dir: member_dir.join("data"),
                    log: member_dir.join("etcd.log"),
                    dir: member_dir,
                    name,
                }
            })
            .collect::<Vec<_>>();
        for member in &members {
            fs::create_dir_all(&member.dir)
                .map_err(|source| Error::io("create the member directory", &member.dir, source))?;
        }
        let mut cluster = EtcdCluster {
            processes: members.iter().map(|_| None).collect(),
            members,
            tls,
            options: options.clone(),
            token: format!(
                "testenv-{}-{}",
                std::process::id(),
                CLUSTER_COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
            dir,
        };
        prepare(&cluster.members, &cluster.token)?;
        for index in 0..cluster.members.len() {
            cluster.spawn_member(index, "new")?;
        }
        let deadline = Instant::now() + options.start_timeout;
        for index in 0..cluster.members.len() {
            if let Err(error) = cluster.wait_healthy(index, deadline).await {
                return Err(match &error {
                    Error::MemberExited { log_tail, .. }
                        if log_tail.contains("address already in use") =>
                    {
                        StartFailure::PortTaken(error)
                    }
                    _ => StartFailure::Fatal(error),
                });
            }
        }
        info!(
            members = cluster.members.len(),
            endpoints = %cluster.endpoints().join(","),
            dir = %cluster.dir.path().display(),
            "etcd cluster started"
        );
        Ok(cluster)
    }

    /// The command line of member `index`.
    fn member_args(&self, index: usize, cluster_state: &str) -> Vec<OsString> {
        let initial = initial_cluster(&self.members);
        let data_dir = self.members[index].data_dir.clone();
        self.member_args_with(index, &data_dir, &initial, cluster_state)
    }

    /// The command line of member `index` with another data dir and membership.
    fn member_args_with(
        &self,
        index: usize,
        data_dir: &Path,
        initial_cluster: &str,
        cluster_state: &str,
    ) -> Vec<OsString> {
        let member = &self.members[index];
        let options = &self.options;
        let mut args: Vec<OsString> = vec![
            "--name".into(),
            member.name.clone().into(),
            "--data-dir".into(),
            data_dir.into(),
            "--listen-client-urls".into(),
            member.client_url.clone().into(),
            "--advertise-client-urls".into(),
            member.client_url.clone().into(),
            "--listen-peer-urls".into(),
            member.peer_url.clone().into(),
            "--initial-advertise-peer-urls".into(),
            member.peer_url.clone().into(),
            "--initial-cluster".into(),
            initial_cluster.into(),
            "--initial-cluster-state".into(),
            cluster_state.into(),
            "--initial-cluster-token".into(),
            self.token.clone().into(),
            "--logger".into(),
            "zap".into(),
            "--log-outputs".into(),
            "stderr".into(),
            "--heartbeat-interval".into(),
            options.heartbeat_interval.as_millis().to_string().into(),
            "--election-timeout".into(),
            options.election_timeout.as_millis().to_string().into(),
        ];
        if let Some(quota) = options.quota_backend_bytes {
            args.extend(["--quota-backend-bytes".into(), quota.to_string().into()]);
        }
        if let Some(count) = options.snapshot_count {
            args.extend(["--snapshot-count".into(), count.to_string().into()]);
        }
        match &options.auto_compaction {
            Some(AutoCompaction::Periodic(retention)) => args.extend([
                "--auto-compaction-mode".into(),
                "periodic".into(),
                "--auto-compaction-retention".into(),
                format!("{}s", retention.as_secs().max(1)).into(),
            ]),
            Some(AutoCompaction::Revision(revisions)) => args.extend([
                "--auto-compaction-mode".into(),
                "revision".into(),
                "--auto-compaction-retention".into(),
                revisions.to_string().into(),
            ]),
            None => {}
        }
        if options.unsafe_no_fsync {
            args.push("--unsafe-no-fsync".into());
        }
        if let Some(tls) = &self.tls {
            args.extend([
                "--cert-file".into(),
                tls.server_cert.clone().into(),
                "--key-file".into(),
                tls.server_key.clone().into(),
                "--client-cert-auth".into(),
                "--trusted-ca-file".into(),
                tls.ca_cert.clone().into(),
            ]);
        }
        args.extend(options.extra_args.iter().map(OsString::from));
        args
    }

    fn spawn_member(&mut self, index: usize, cluster_state: &str) -> Result<(), Error> {
        let args = self.member_args(index, cluster_state);
        self.spawn_member_args(index, args)
    }

    fn spawn_member_args(&mut self, index: usize, args: Vec<OsString>) -> Result<(), Error> {
        let spec = ProcessSpec {
            program: self.options.etcd_binary.clone(),
            args,
            log: self.members[index].log.clone(),
            env: Vec::new(),
        };
        debug!(member = %self.members[index].name, ?spec, "spawning etcd");
        let child = process::spawn(spec).map_err(|source| Error::Process {
            action: "spawn",
            process: format!("etcd member {}", self.members[index].name),
            source,
        })?;
        self.processes[index] = Some(child);
        Ok(())
    }

    /// Starts member `index` (stopped or killed before) on `data_dir` with the given
    /// `--initial-cluster` and `--initial-cluster-state`, as an operator does during a
    /// recovery, and waits until it answers: a Status call, and for voters
    /// (`learner == false`) also a linearizable Range. Later restarts use these settings'
    /// data dir.
    pub async fn start_member_with(
        &mut self,
        index: usize,
        data_dir: &Path,
        initial_cluster: &str,
        cluster_state: &str,
        learner: bool,
    ) -> Result<(), Error> {
        self.member(index)?;
        if self.processes[index].is_some() {
            self.stop(index).await?;
        }
        let args = self.member_args_with(index, data_dir, initial_cluster, cluster_state);
        self.members[index].data_dir = data_dir.to_path_buf();
        self.spawn_member_args(index, args)?;
        let deadline = Instant::now() + self.options.start_timeout;
        self.wait_ready(index, deadline, !learner).await
    }

    /// Waits until member `index` answers Status and a linearizable Range.
    async fn wait_healthy(&mut self, index: usize, deadline: Instant) -> Result<(), Error> {
        self.wait_ready(index, deadline, true).await
    }

    /// Waits until member `index` answers Status (and a linearizable Range when
    /// `linearizable`: learners do not serve those).
    async fn wait_ready(
        &mut self,
        index: usize,
        deadline: Instant,
        linearizable: bool,
    ) -> Result<(), Error> {
        let endpoint = vec![self.members[index].client_url.clone()];
        let probe_options = ConnectOptions {
            dial_timeout: Duration::from_millis(500),
            request_timeout: Some(Duration::from_secs(2)),
            ..self.connect_options()?
        };
        loop {
            self.check_running(index)?;
            let last_error = match probe(&endpoint, probe_options.clone(), linearizable).await {
                Ok(()) => return Ok(()),
                Err(error) => error_chain(&error),
            };
            if Instant::now() >= deadline {
                let member = &self.members[index];
                return Err(Error::StartTimeout {
                    member: member.name.clone(),
                    timeout: self.options.start_timeout,
                    last_error,
                    log: member.log.clone(),
                    log_tail: log_tail(&member.log),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Fails with the member's log tail if it is not running.
    fn check_running(&mut self, index: usize) -> Result<(), Error> {
        let member = &self.members[index];
        let Some(child) = self.processes[index].as_mut() else {
            return Err(Error::NoSuchMember {
                index,
                members: self.members.len(),
            });
        };
        let exited = child.try_wait().map_err(|source| Error::Process {
            action: "check",
            process: format!("etcd member {}", member.name),
            source,
        })?;
        match exited {
            None => Ok(()),
            Some(status) => {
                self.processes[index] = None;
                Err(Error::MemberExited {
                    member: member.name.clone(),
                    status: status.to_string(),
                    log: member.log.clone(),
                    log_tail: log_tail(&member.log),
                })
            }
        }
    }

    /// The `--initial-cluster-token` the members were started with.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The `--initial-cluster` value: `name=peer-url,…`.
    pub fn initial_cluster(&self) -> String {
        initial_cluster(&self.members)
    }

    /// Client URLs of every member, in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|member| member.client_url.clone())
            .collect()
    }

    /// The members.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Member `index`.
    pub fn member(&self, index: usize) -> Result<&Member, Error> {
        self.members.get(index).ok_or(Error::NoSuchMember {
            index,
            members: self.members.len(),
        })
    }

    /// Whether member `index` is running (it may still be starting).
    pub fn is_running(&mut self, index: usize) -> bool {
        self.check_running(index).is_ok()
    }

    /// The temporary directory holding every member (and `pki/` with TLS).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The generated TLS files, when started with `tls`.
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// The options the cluster was started with.
    pub fn options(&self) -> &EtcdOptions {
        &self.options
    }

    /// Options for [`etcd_rpc::Client::connect`], with the CA and client
    /// certificate when the cluster uses TLS.
    pub fn connect_options(&self) -> Result<ConnectOptions, Error> {
        Ok(ConnectOptions {
            tls: self.tls.as_ref().map(TlsFiles::client_tls).transpose()?,
            ..ConnectOptions::default()
        })
    }

    /// A client connected to every member.
    pub async fn client(&self) -> Result<Client, Error> {
        Client::connect(&self.endpoints(), self.connect_options()?)
            .await
            .map_err(Error::rpc("connecting to the cluster"))
    }

    /// A client connected to member `index` only.
    pub async fn member_client(&self, index: usize) -> Result<Client, Error> {
        let endpoint = vec![self.member(index)?.client_url.clone()];
        Client::connect(&endpoint, self.connect_options()?)
            .await
            .map_err(Error::rpc(format!("connecting to member {index}")))
    }

    /// `etcdctl` with `ETCDCTL_API=3`, `--endpoints` of every member and, with
    /// TLS, `--cacert`, `--cert` and `--key`; add the command and run it.
    pub fn etcdctl(&self) -> Command {
        self.etcdctl_for(&self.endpoints())
    }

    /// Like [`EtcdCluster::etcdctl`], talking to member `index` only.
    pub fn member_etcdctl(&self, index: usize) -> Result<Command, Error> {
        Ok(self.etcdctl_for(&[self.member(index)?.client_url.clone()]))
    }

    fn etcdctl_for(&self, endpoints: &[String]) -> Command {
        let mut command = Command::new(&self.options.etcdctl_binary);
        command
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", endpoints.join(",")));
        if let Some(tls) = &self.tls {
            command.args(tls.etcdctl_flags());
        }
        command
    }

    /// Runs etcdctl with `args` against every member and returns its stdout.
    pub fn run_etcdctl<I, S>(&self, args: I) -> Result<String, Error>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        run_command(self.etcdctl().args(args))
    }

    /// `etcdctl snapshot save PATH` against the first running member; returns
    /// the file's size (the db plus etcd's 32-byte SHA-256 trailer).
    ///
    /// Takes `&mut self` because finding a running member reaps exited ones.
    pub fn etcdctl_snapshot_save(&mut self, path: &Path) -> Result<u64, Error> {
        let index = (0..self.members.len())
            .find(|&index| self.is_running(index))
            .ok_or(Error::NoRunningMember)?;
        run_command(
            self.member_etcdctl(index)?
                .arg("snapshot")
                .arg("save")
                .arg(path),
        )?;
        fs::metadata(path)
            .map(|metadata| metadata.len())
            .map_err(|source| Error::io("stat the snapshot", path, source))
    }

    /// Kills member `index` with SIGKILL and reaps it.
    pub fn kill(&mut self, index: usize) -> Result<(), Error> {
        let name = self.member(index)?.name.clone();
        if let Some(mut child) = self.processes[index].take() {
            let process = format!("etcd member {name}");
            child.kill().map_err(|source| Error::Process {
                action: "kill",
                process: process.clone(),
                source,
            })?;
            child.wait().map_err(|source| Error::Process {
                action: "wait for",
                process,
                source,
            })?;
            info!(member = %name, "etcd member killed");
        }
        Ok(())
    }

    /// Stops member `index` with SIGTERM and waits for it to exit (SIGKILL after 10 s).
    pub async fn stop(&mut self, index: usize) -> Result<(), Error> {
        let name = self.member(index)?.name.clone();
        let Some(mut child) = self.processes[index].take() else {
            return Ok(());
        };
        let process = format!("etcd member {name}");
        let failed = |action| {
            let process = process.clone();
            move |source| Error::Process {
                action,
                process,
                source,
            }
        };
        process::signal(&mut child, libc::SIGTERM).map_err(failed("stop"))?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = child.try_wait().map_err(failed("wait for"))? {
                info!(member = %name, %status, "etcd member stopped");
                return Ok(());
            }
            if Instant::now() >= deadline {
                warn!(member = %name, "etcd member ignored SIGTERM for 10 s; killing it");
                child.kill().map_err(failed("kill"))?;
                child.wait().map_err(failed("wait for"))?;
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts member `index` again with the same flags and data dir and
    /// `--initial-cluster-state existing` (stopping it first if it runs), and
    /// waits until it is healthy.
    pub async fn restart(&mut self, index: usize) -> Result<(), Error> {
        self.member(index)?;
        if self.processes[index].is_some() {
            self.stop(index).await?;
        }
        self.spawn_member(index, "existing")?;
        let deadline = Instant::now() + self.options.start_timeout;
        self.wait_healthy(index, deadline).await?;
        info!(member = %self.members[index].name, "etcd member restarted");
        Ok(())
    }
}

impl EtcdCluster {
    /// Freezes member `index` with SIGSTOP: its sockets stay open and accept
    /// connections, but nothing answers (a hung process, a stalled VM).
    /// [`EtcdCluster::resume`] undoes it.
    pub fn pause(&mut self, index: usize) -> Result<(), Error> {
        self.send_signal(index, libc::SIGSTOP, "pause")
    }

    /// Lets a member frozen by [`EtcdCluster::pause`] run again (SIGCONT).
    pub fn resume(&mut self, index: usize) -> Result<(), Error> {
        self.send_signal(index, libc::SIGCONT, "resume")
    }

    fn send_signal(
        &mut self,
        index: usize,
        signal: libc::c_int,
        action: &'static str,
    ) -> Result<(), Error> {
        let name = self.member(index)?.name.clone();
        let child = self.processes[index].as_mut().ok_or(Error::NoSuchMember {
            index,
            members: self.members.len(),
        })?;
        process::signal(child, signal).map_err(|source| Error::Process {
            action,
            process: format!("etcd member {name}"),
            source,
        })
    }

    /// Replaces member `index`'s data with `snapshot` restored by the real
    /// `etcdctl snapshot restore` (same name, peer URL, cluster and token, so
    /// the member keeps its ID), the way an operator would: every member is
    /// stopped, the one data dir replaced, and every member started again
    /// (waiting until all are healthy).
    ///
    /// With an older snapshot of this cluster this is the classic mistake: the
    /// restored member re-applies the leader's raft log on top of the old data
    /// (its consistent index is reset by the restore) and its key space
    /// silently diverges from the others' (other revisions, other HashKV).
    /// With the rest of the cluster running instead, etcd 3.4 panics
    /// ("tocommit is out of range"): the leader remembers the old progress.
    pub async fn restore_member_from_snapshot(
        &mut self,
        index: usize,
        snapshot: &Path,
    ) -> Result<(), Error> {
        let member = self.member(index)?.clone();
        for other in 0..self.members.len() {
            self.stop(other).await?;
        }
        fs::remove_dir_all(&member.data_dir)
            .map_err(|source| Error::io("remove the data dir", &member.data_dir, source))?;
        let mut command = Command::new(&self.options.etcdctl_binary);
        command
            .env("ETCDCTL_API", "3")
            .arg("snapshot")
            .arg("restore")
            .arg(snapshot)
            .arg("--name")
            .arg(&member.name)
            .arg("--data-dir")
            .arg(&member.data_dir)
            .arg("--initial-cluster")
            .arg(self.initial_cluster())
            .arg("--initial-cluster-token")
            .arg(&self.token)
            .arg("--initial-advertise-peer-urls")
            .arg(&member.peer_url);
        run_command(&mut command)?;
        for other in 0..self.members.len() {
            self.spawn_member(other, "existing")?;
        }
        let deadline = Instant::now() + self.options.start_timeout;
        for other in 0..self.members.len() {
            self.wait_healthy(other, deadline).await?;
        }
        info!(member = %member.name, snapshot = %snapshot.display(), "etcd member restored from a snapshot");
        Ok(())
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for child in self.processes.iter_mut().filter_map(Option::take) {
            let mut child = child;
            // Errors mean it is already gone; nothing else to do in a destructor.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `name=peer-url,…` for `members`.
pub fn initial_cluster(members: &[Member]) -> String {
    members
        .iter()
        .map(|member| format!("{}={}", member.name, member.peer_url))
        .collect::<Vec<_>>()
        .join(",")
}

/// One health probe: a Status call, then (for voters) a linearizable Range.
async fn probe(
    endpoint: &[String],
    options: ConnectOptions,
    linearizable: bool,
) -> Result<(), etcd_rpc::Error> {
    let client = Client::connect(endpoint, options).await?;
    client.status().await?;
    if !linearizable {
        return Ok(());
    }
    client
        .range(RangeRequest {
            key: b"health".to_vec(),
            ..Default::default()
        })
        .await?;
    Ok(())
}

/// Fails with an install hint when the binary cannot be run.
pub(crate) fn check_binary(binary: &Path) -> Result<(), Error> {
    match Command::new(binary).arg("--version").output() {
        Ok(output) if output.status.success() => Ok(()),
        Ok(output) => Err(Error::BinaryMissing {
            binary: binary.to_path_buf(),
            source: std::io::Error::other(format!(
                "`{} --version` failed: {}",
                binary.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            )),
        }),
        Err(source) => Err(Error::BinaryMissing {
            binary: binary.to_path_buf(),
            source,
        }),
    }
}

/// Runs a command to completion; its stdout, or an error with its stderr.
pub(crate) fn run_command(command: &mut Command) -> Result<String, Error> {
    let args = std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let output = command.output().map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::BinaryMissing {
                binary: PathBuf::from(command.get_program()),
                source,
            }
        } else {
            Error::Process {
                action: "run",
                process: args.clone(),
                source,
            }
        }
    })?;
    if !output.status.success() {
        return Err(Error::Etcdctl {
            args,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Reserves `count` distinct free ports on 127.0.0.1 that this process has
/// not handed out before.
pub(crate) fn reserve_ports(count: usize) -> Result<Vec<u16>, Error> {
    let mut reserved = RESERVED_PORTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let reserved = reserved.get_or_insert_with(HashSet::new);
    // Keep the listeners open until all ports are chosen so the kernel hands
    // out distinct ones.
    let mut listeners = Vec::with_capacity(count);
    let mut ports = Vec::with_capacity(count);
    while ports.len() < count {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(Error::Port)?;
        let port = listener.local_addr().map_err(Error::Port)?.port();
        if reserved.insert(port) {
            ports.push(port);
        }
        listeners.push(listener);
    }
    Ok(ports)
}

/// The last lines of a log file (at most 40 lines or 16 KiB), for error messages.
pub(crate) fn log_tail(path: &Path) -> String {
    const MAX_BYTES: u64 = 16 * 1024;
    const MAX_LINES: usize = 40;
    let read = || -> std::io::Result<String> {
        let mut file = fs::File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read() {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(MAX_LINES)..].join("\n")
        }
        Err(error) => format!("<cannot read {}: {error}>", path.display()),
    }
}

/// An error and its sources, `outer: inner: innermost`.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
