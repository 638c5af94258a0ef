//! Child processes that never outlive the test process.
//!
//! Every child is spawned with `PR_SET_PDEATHSIG = SIGKILL`, so the kernel kills
//! it when its parent goes away, even when the test process aborts or is killed
//! and no destructor runs. The signal fires when the *thread* that forked the
//! child exits, not the process, so all children are forked by one spawner
//! thread that lives as long as the process; test threads come and go.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::thread;

/// What to run: a program, its arguments, and a file for its stdout and stderr.
#[derive(Clone, Debug)]
pub(crate) struct ProcessSpec {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// File that receives stdout and stderr (appended to).
    pub log: PathBuf,
    /// Environment variables set in addition to the inherited ones.
    pub env: Vec<(OsString, OsString)>,
}

struct SpawnRequest {
    spec: ProcessSpec,
    reply: mpsc::Sender<io::Result<Child>>,
}

/// The spawner thread's queue; the thread lives as long as this sender, which
/// is never dropped.
static SPAWNER: OnceLock<io::Result<mpsc::Sender<SpawnRequest>>> = OnceLock::new();

fn spawner() -> io::Result<&'static mpsc::Sender<SpawnRequest>> {
    SPAWNER
        .get_or_init(|| {
            let (requests, queue) = mpsc::channel::<SpawnRequest>();
            thread::Builder::new()
                .name("testenv-spawner".to_string())
                .spawn(move || {
                    for request in queue {
                        // The requester may have given up waiting; nothing to do then.
                        let _ = request.reply.send(spawn_here(&request.spec));
                    }
                })?;
            Ok(requests)
        })
        .as_ref()
        .map_err(|error| io::Error::new(error.kind(), error.to_string()))
}

/// Spawns the process from the spawner thread.
pub(crate) fn spawn(spec: ProcessSpec) -> io::Result<Child> {
    let (reply, answer) = mpsc::channel();
    spawner()?
        .send(SpawnRequest { spec, reply })
        .map_err(|_| io::Error::other("testenv spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("testenv spawner thread did not answer"))?
}

/// Spawns on the current thread with the parent-death signal set.
fn spawn_here(spec: &ProcessSpec) -> io::Result<Child> {
    let log = File::options().create(true).append(true).open(&spec.log)?;
    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .envs(spec.env.iter().map(|(name, value)| (name, value)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Own process group: a Ctrl-C on the terminal reaches testenv, which
        // then stops its children in order, instead of reaching them directly.
        .process_group(0);
    let parent = std::process::id();
    set_parent_death_signal(&mut command, parent);
    command.spawn()
}

#[allow(unsafe_code)]
fn set_parent_death_signal(command: &mut Command, parent: u32) {
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe functions may be called: prctl(2) and getppid(2) are
    // plain system calls, and the error path builds an io::Error from a raw
    // errno without allocating.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl; then nobody
            // would ever send the signal.
            if libc::getppid() as u32 != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// Sends a signal to a child (SIGTERM for an orderly stop); does nothing if it
/// has already exited.
#[allow(unsafe_code)]
pub(crate) fn signal(child: &mut Child, signal: libc::c_int) -> io::Result<()> {
    if child.try_wait()?.is_some() {
        return Ok(());
    }
    let pid = libc::pid_t::try_from(child.id())
        .map_err(|_| io::Error::other("child pid out of range"))?;
    // SAFETY: kill(2) has no memory-safety preconditions. The pid is our own
    // child and `try_wait` just found it not yet reaped (reaping needs this
    // `&mut Child`), so the pid cannot have been recycled for another process.
    if unsafe { libc::kill(pid, signal) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
