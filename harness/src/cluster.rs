//! The node processes of a run: start, kill, restart, pause, resume.
//!
//! Every node runs in its own process group (so SIGKILL, SIGSTOP and SIGCONT reach
//! everything it started) with a parent-death signal, so a SIGKILLed harness takes its
//! nodes with it. Linux delivers the parent-death signal when the *thread* that forked
//! the child exits, so all nodes are spawned from one thread that lives as long as the
//! run. Every live process group is also in a global registry, which the panic hook
//! and the signal handlers use to kill everything on any exit path.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nemesis::{FaultError, process};
use nix::sys::signal::Signal;

/// Process groups of live nodes, for cleanup from a panic hook or signal handler.
static LIVE_GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// Kills (SIGKILL; a stopped process dies too) every registered node process group.
/// The name the process table's lock goes by in a fault's error.
const PROCESS_TABLE: &str = "the process table";

pub fn kill_all_registered() {
    let groups: Vec<i32> = LIVE_GROUPS
        .lock()
        .map(|g| g.iter().copied().collect())
        .unwrap_or_default();
    for pgid in groups {
        let _ = process::kill(pgid);
    }
}

pub(crate) fn register(pgid: i32) {
    if let Ok(mut g) = LIVE_GROUPS.lock() {
        g.insert(pgid);
    }
}

pub(crate) fn unregister(pgid: i32) {
    if let Ok(mut g) = LIVE_GROUPS.lock() {
        g.remove(&pgid);
    }
}

/// `cmd`'s process gets SIGKILL when the thread that forked it dies: with every
/// process forked by the [`Spawner`]'s thread, when the harness dies, however.
pub(crate) fn dies_with_harness(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
        });
    }
}

/// The `program` on PATH, if there is one.
pub(crate) fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// The one thread that forks node processes (see the module comment).
pub(crate) struct Spawner {
    tx: mpsc::Sender<SpawnRequest>,
}

impl Spawner {
    pub(crate) fn new() -> Spawner {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("node-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the node-spawner thread");
        Spawner { tx }
    }

    pub(crate) fn spawn(&self, cmd: Command) -> std::io::Result<Child> {
        let (tx, rx) = mpsc::channel();
        self.tx
            .send((cmd, tx))
            .map_err(|_| std::io::Error::other("node-spawner thread is gone"))?;
        rx.recv()
            .map_err(|_| std::io::Error::other("node-spawner thread is gone"))?
    }
}

/// How to run a node.
#[derive(Clone, Debug)]
pub struct NodeCommand {
    pub program: PathBuf,
    /// Arguments before the node's own (`["node"]` for the bundled node).
    pub prefix: Vec<String>,
    /// Extra arguments passed to every node (`--node-arg`).
    pub extra: Vec<String>,
    /// The bundled node journals its steps to nodes/nI/journal.jsonl with this time
    /// origin (CLOCK_MONOTONIC ns of the run's start).
    pub journal_origin_ns: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("node {id}: cannot start {program}: {source}")]
    Spawn {
        id: u32,
        program: String,
        source: std::io::Error,
    },
    #[error("node {id} exited during start-up ({status}); last lines of its stderr:\n{tail}")]
    Exited {
        id: u32,
        status: String,
        tail: String,
    },
    #[error("node {id} printed no ready line within {secs} s; last lines of its stderr:\n{tail}")]
    Silent { id: u32, secs: u64, tail: String },
    #[error("node {id}: unreadable ready line {line:?}")]
    BadReady { id: u32, line: String },
}

impl StartError {
    /// Whose failure it is: a program the harness cannot spawn is the harness's; a
    /// node that exits, stays silent or prints nonsense misbehaved.
    pub fn into_failure(self) -> crate::vocab::Failure {
        use crate::vocab::Failure;
        match self {
            StartError::Spawn { .. } => Failure::harness(self.to_string()),
            _ => Failure::system(self.to_string()),
        }
    }
}

struct NodeProc {
    child: Child,
    pgid: i32,
    paused: bool,
}

/// The addresses clients reach each node at, by id (index 0 unused). Shared with the
/// network layer, which follows a restarted node to its new port through it.
pub use nemesis::net::Addresses;

pub struct Cluster {
    n: usize,
    run_dir: PathBuf,
    command: NodeCommand,
    seed: u64,
    /// `peers[i]` = the `--peer j=ADDR` arguments of node i (proxy addresses).
    peers: Vec<Vec<String>>,
    procs: Vec<Option<NodeProc>>,
    /// Each node's clock rate (`--clock-rate`) for its next start; 1 is real time.
    clock_rate: Vec<f64>,
    addrs: Addresses,
    spawner: Spawner,
    pub startup_timeout: Duration,
    /// Where each node listens (`--listen`); index 0 unused.
    listen: Vec<String>,
    /// The network namespace each node runs in, if not the harness's own.
    netns: Vec<Option<std::os::fd::OwnedFd>>,
}

impl Cluster {
    pub fn new(
        n: usize,
        run_dir: &Path,
        command: NodeCommand,
        seed: u64,
        peers: Vec<Vec<String>>,
        addrs: Addresses,
    ) -> Cluster {
        Cluster {
            n,
            run_dir: run_dir.to_path_buf(),
            command,
            seed,
            peers,
            procs: (0..=n).map(|_| None).collect(),
            clock_rate: vec![1.0; n + 1],
            addrs,
            spawner: Spawner::new(),
            startup_timeout: Duration::from_secs(10),
            listen: vec!["127.0.0.1:0".to_string(); n + 1],
            netns: (0..=n).map(|_| None).collect(),
        }
    }

    /// Runs node `id` inside the network namespace `ns`, listening on `listen`.
    pub fn place(&mut self, id: u32, listen: String, ns: std::os::fd::OwnedFd) {
        self.listen[id as usize] = listen;
        self.netns[id as usize] = Some(ns);
    }

    fn node_dir(&self, id: u32) -> PathBuf {
        self.run_dir.join(format!("nodes/n{id}"))
    }

    /// Starts node `id` (on its existing data directory) and waits for its ready line.
    /// Node `id`'s command line: its id, address, data, seed, peers, the plan's node
    /// arguments, its clock rate and its journal.
    fn command_for(&self, id: u32, dir: &Path) -> Command {
        let mut cmd = Command::new(&self.command.program);
        cmd.args(&self.command.prefix)
            .args([
                "--id",
                &id.to_string(),
                "--listen",
                &self.listen[id as usize],
            ])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--seed", &(self.seed ^ u64::from(id)).to_string()])
            .args(&self.peers[id as usize])
            .args(&self.command.extra)
            .args(
                Some(self.clock_rate[id as usize])
                    .filter(|r| *r != 1.0)
                    .map(|r| format!("--clock-rate={r}")),
            )
            .args(self.command.journal_origin_ns.iter().flat_map(|origin| {
                [
                    "--journal".into(),
                    dir.join("journal.jsonl").into_os_string(),
                    "--journal-origin-ns".into(),
                    origin.to_string().into(),
                ]
            }))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(match append(&dir.join("stderr.log")) {
                Ok(f) => Stdio::from(f),
                Err(_) => Stdio::null(),
            })
            .process_group(0);
        cmd
    }

    pub fn start(&mut self, id: u32) -> Result<SocketAddr, StartError> {
        let dir = self.node_dir(id);
        let mut cmd = self.command_for(id, &dir);
        dies_with_harness(&mut cmd);
        if let Some(ns) = &self.netns[id as usize] {
            nemesis::netns::enter(&mut cmd, ns);
        }
        let mut child = self
            .spawner
            .spawn(cmd)
            .map_err(|source| StartError::Spawn {
                id,
                program: self.command.program.display().to_string(),
                source,
            })?;
        let pgid = child.id() as i32;
        register(pgid);
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        let log = append(&dir.join("stdout.log")).ok();
        std::thread::spawn(move || copy_stdout(stdout, log, tx));
        let deadline = Instant::now() + self.startup_timeout;
        let line = loop {
            match rx.recv_timeout(Duration::from_millis(20)) {
                Ok(line) => break line,
                Err(mpsc::RecvTimeoutError::Disconnected)
                | Err(mpsc::RecvTimeoutError::Timeout)
                    if matches!(child.try_wait(), Ok(Some(_))) =>
                {
                    let status = child
                        .try_wait()
                        .ok()
                        .flatten()
                        .map_or("unknown status".into(), |s| s.to_string());
                    unregister(pgid);
                    return Err(StartError::Exited {
                        id,
                        status,
                        tail: tail(&dir.join("stderr.log"), 15),
                    });
                }
                Err(_) if Instant::now() >= deadline => {
                    let _ = process::kill(pgid);
                    let _ = child.wait();
                    unregister(pgid);
                    return Err(StartError::Silent {
                        id,
                        secs: self.startup_timeout.as_secs(),
                        tail: tail(&dir.join("stderr.log"), 15),
                    });
                }
                Err(_) => {}
            }
        };
        let addr = parse_ready(&line).ok_or_else(|| {
            let _ = process::kill(pgid);
            StartError::BadReady {
                id,
                line: line.clone(),
            }
        });
        let addr = match addr {
            Ok(a) => a,
            Err(e) => {
                let _ = child.wait();
                unregister(pgid);
                return Err(e);
            }
        };
        self.procs[id as usize] = Some(NodeProc {
            child,
            pgid,
            paused: false,
        });
        if let Ok(mut a) = self.addrs.lock() {
            a[id as usize] = Some(addr);
        }
        Ok(addr)
    }

    /// SIGKILLs node `id`'s process group and reaps it. False if it was not running.
    /// The clock rate node `id` starts with from now on (a skewed clock).
    /// Node `id`'s clock rate for its next start.
    pub fn clock_rate(&self, id: u32) -> f64 {
        self.clock_rate[id as usize]
    }

    pub fn set_clock_rate(&mut self, id: u32, rate: f64) {
        self.clock_rate[id as usize] = rate;
    }

    pub fn kill(&mut self, id: u32) -> bool {
        let Some(mut p) = self.procs[id as usize].take() else {
            return false;
        };
        let _ = process::kill(p.pgid);
        let _ = p.child.wait();
        unregister(p.pgid);
        if let Ok(mut a) = self.addrs.lock() {
            a[id as usize] = None;
        }
        true
    }

    /// SIGSTOPs node `id`. False if it is not running or already paused.
    pub fn pause(&mut self, id: u32) -> bool {
        match self.procs[id as usize].as_mut() {
            Some(p) if !p.paused => {
                p.paused = process::pause(p.pgid).is_ok();
                p.paused
            }
            _ => false,
        }
    }

    /// SIGCONTs node `id`. False if it is not running or not paused.
    pub fn resume(&mut self, id: u32) -> bool {
        match self.procs[id as usize].as_mut() {
            Some(p) if p.paused => {
                let _ = process::resume(p.pgid);
                p.paused = false;
                true
            }
            _ => false,
        }
    }

    /// Whether node `id`'s process is alive (reaps it if it exited by itself).
    pub fn is_running(&mut self, id: u32) -> bool {
        let exited = match self.procs[id as usize].as_mut() {
            Some(p) => matches!(p.child.try_wait(), Ok(Some(_))),
            None => return false,
        };
        if exited {
            if let Some(p) = self.procs[id as usize].take() {
                unregister(p.pgid);
            }
            if let Ok(mut a) = self.addrs.lock() {
                a[id as usize] = None;
            }
        }
        !exited
    }

    pub fn is_paused(&self, id: u32) -> bool {
        self.procs[id as usize].as_ref().is_some_and(|p| p.paused)
    }

    /// Kills every node. Safe to call twice.
    pub fn shutdown(&mut self) {
        for id in 1..=self.n as u32 {
            self.kill(id);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn append(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Sends the first stdout line on `ready`, then copies everything to the log.
fn copy_stdout(
    stdout: std::process::ChildStdout,
    mut log: Option<File>,
    ready: mpsc::Sender<String>,
) {
    let mut reader = BufReader::new(stdout);
    let mut first = true;
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if let Some(f) = log.as_mut() {
                    let _ = f.write_all(line.as_bytes());
                }
                if first {
                    first = false;
                    let _ = ready.send(line.trim().to_string());
                }
            }
        }
    }
}

fn parse_ready(line: &str) -> Option<SocketAddr> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    if v.get("ready")? != true {
        return None;
    }
    v.get("listen")?.as_str()?.parse().ok()
}

/// The last `lines` lines of a file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    let start = all.len().saturating_sub(lines);
    let shown = all[start..].join("\n");
    if shown.is_empty() {
        "(stderr is empty)".into()
    } else {
        shown
    }
}

/// The processes of a system that spawns its own (Maelstrom nodes, etcd members): per
/// node id, the child, its process group, whether it is paused, and which start of
/// the node it is. Process faults are signals to the group; every group is in the
/// registry while it lives.
pub(crate) struct Members {
    procs: Mutex<Vec<Option<Member>>>,
}

struct Member {
    child: Child,
    pgid: i32,
    paused: bool,
    generation: u64,
}

impl Members {
    pub(crate) fn new(n: usize) -> Members {
        Members {
            procs: Mutex::new((0..=n).map(|_| None).collect()),
        }
    }

    /// Records a freshly spawned node (its group is registered).
    pub(crate) fn insert(&self, id: u32, child: Child, generation: u64) {
        let pgid = child.id() as i32;
        register(pgid);
        if let Ok(mut p) = self.procs.lock() {
            p[id as usize] = Some(Member {
                child,
                pgid,
                paused: false,
                generation,
            });
        }
    }

    /// SIGKILLs node `id`'s group and reaps it; `Some(generation)` of what was
    /// killed, `None` if it was not running. `before` runs first, with the generation.
    pub(crate) fn kill(
        &self,
        id: u32,
        before: impl FnOnce(u64),
    ) -> Result<Option<u64>, FaultError> {
        let p = self
            .procs
            .lock()
            .map_err(|_| FaultError::poisoned(PROCESS_TABLE))?[id as usize]
            .take();
        let Some(mut p) = p else { return Ok(None) };
        before(p.generation);
        let _ = process::kill(p.pgid);
        let _ = p.child.wait();
        unregister(p.pgid);
        Ok(Some(p.generation))
    }

    /// Sends `signal` to node `id`'s group (resumed first if paused, so it can act
    /// on it): a graceful stop's first step. `false` if it is not running.
    pub(crate) fn signal(&self, id: u32, signal: Signal) -> bool {
        let Ok(mut procs) = self.procs.lock() else {
            return false;
        };
        let Some(p) = procs[id as usize].as_mut() else {
            return false;
        };
        if p.paused {
            let _ = process::resume(p.pgid);
            p.paused = false;
        }
        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(p.pgid), signal).is_ok()
    }

    pub(crate) fn pause(&self, id: u32) -> nemesis::Acted {
        let mut procs = self
            .procs
            .lock()
            .map_err(|_| FaultError::poisoned(PROCESS_TABLE))?;
        match procs[id as usize].as_mut() {
            Some(p) if !p.paused => {
                p.paused = process::pause(p.pgid).is_ok();
                Ok(p.paused)
            }
            _ => Ok(false),
        }
    }

    pub(crate) fn resume(&self, id: u32) -> nemesis::Acted {
        let mut procs = self
            .procs
            .lock()
            .map_err(|_| FaultError::poisoned(PROCESS_TABLE))?;
        match procs[id as usize].as_mut() {
            Some(p) if p.paused => {
                let _ = process::resume(p.pgid);
                p.paused = false;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Whether node `id` is alive (paused counts); one that exited is forgotten.
    pub(crate) fn is_running(&self, id: u32) -> bool {
        let Ok(mut procs) = self.procs.lock() else {
            return false;
        };
        let exited = match procs[id as usize].as_mut() {
            Some(p) => matches!(p.child.try_wait(), Ok(Some(_))),
            None => return false,
        };
        if exited {
            if let Some(p) = procs[id as usize].take() {
                unregister(p.pgid);
            }
        }
        !exited
    }

    pub(crate) fn is_paused(&self, id: u32) -> bool {
        self.procs
            .lock()
            .ok()
            .and_then(|p| p[id as usize].as_ref().map(|p| p.paused))
            .unwrap_or(false)
    }
}
