//! A system declared in a file (`--system FILE`, docs/systems.md): its nodes started
//! as the file says, each in a network namespace of its own (so any TCP system can be
//! cut without knowing its protocol), ready when the file says, stopped with its
//! signal; its clients are a program of the file's, one process per connection,
//! speaking docs/clients.md on stdin and stdout.
//!
//! What a client does wrong (a line that is no reply, a reply to an op nobody asked,
//! an exit) is recorded as `node-misbehaved` and ends that client process; an op with
//! no answer within its timeout is `info` and its process is replaced, as a process
//! is retired after an indeterminate op.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nemesis::FaultError;
use nemesis::netns::{NetnsNetwork, node_addr};
use results::Plan;
use results::faults::MisbehaviourKind;
use results::system_file::{Declared, Place, Vars};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::{
    CLIENT_TIMEOUT, CONNECTION_BROKEN, Client, Completion, Failure, Launcher, MALFORMED_REPLY,
    NodeId, System, WorkloadOp,
};
use crate::recorder::Recorder;

/// The longest line a client may write.
const MAX_LINE: u64 = 1 << 20;
/// How long one readiness or leader command may run.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long the nemesis waits for a leader query.
const LEADER_TIMEOUT: Duration = Duration::from_millis(1_000);

/// Where Debian's faketime package puts libfaketime.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Why a declared system skips a clock fault.
const NO_FAKETIME: &str = "clock faults of a declared system are made with libfaketime, which is not installed (apt-get install faketime)";
const OWN_TIME: &str = "this system reads the time without libc (its file says time = \"own\": Go programs, statically linked binaries), so libfaketime cannot change its clock";

/// The node's clock for libfaketime: `FAKETIME`, a jump and a rate from the start of
/// the process (`+1.5 x2`).
fn faketime(rate: f64, jump_ms: u64) -> String {
    format!("+{} x{rate}", jump_ms as f64 / 1e3)
}

/// The program a system file's command names, found on PATH (or as given with a
/// slash), or why not, with the file's install hint.
fn find_program(word: &str, decl: &Declared) -> Result<PathBuf, String> {
    let hint = if decl.file.install_hint.is_empty() {
        String::new()
    } else {
        format!(": {}", decl.file.install_hint)
    };
    if word.contains('/') {
        let p = PathBuf::from(word);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("{word} does not exist{hint}"))
        };
    }
    crate::cluster::on_path(word).ok_or_else(|| format!("{word} is not on PATH{hint}"))
}

/// Whether each program a system file requires is installed: (program, found).
pub fn installed(decl: &Declared) -> Vec<(String, Result<PathBuf, String>)> {
    decl.file
        .requires
        .iter()
        .map(|p| (p.clone(), find_program(p, decl)))
        .collect()
}

/// Launches [`DeclaredSystem`]s.
pub struct DeclaredLauncher;

impl Launcher for DeclaredLauncher {
    type System = DeclaredSystem;

    /// What a launch sets up (the network, the programs found) is the harness's own,
    /// except a program the file requires that is not installed: the user's to fix.
    async fn launch(
        &self,
        plan: &Plan,
        run_dir: &Path,
        recorder: &Arc<Recorder>,
    ) -> Result<DeclaredSystem, Failure> {
        let decl = plan.declared.clone().ok_or_else(|| {
            Failure::input(if plan.system == results::plan::SystemKind::Etcd {
                "this plan was made for etcd's built-in client, which its system file (examples/systems/etcd.toml) replaced: make the plan again with --system etcd"
            } else {
                "the plan declares no system file"
            })
        })?;
        for (program, found) in installed(&decl) {
            found.map_err(|why| {
                Failure::input(format!("{} needs {program}: {why}", decl.path.display()))
            })?;
        }
        let net = super::netns_network(plan.nodes, run_dir).map_err(Failure::harness)?;
        let chaos = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("chaos"));
        std::fs::create_dir_all(run_dir.join("clients"))
            .map_err(|e| Failure::harness(format!("cannot make clients/: {e}")))?;
        let mut shared = Shared {
            version: decl.file.name.clone(),
            n: plan.nodes,
            decl,
            node_args: plan.node_args.clone(),
            run_dir: run_dir.to_path_buf(),
            chaos,
            net,
            spawner: crate::cluster::Spawner::new(),
            misbehaved: crate::recorder::Misbehaviour::new(recorder.clone()),
        };
        if let Some(version) = shared.version_line() {
            shared.version = version;
        }
        Ok(DeclaredSystem {
            shared: Arc::new(shared),
            procs: crate::cluster::Members::new(plan.nodes),
            clocks: Mutex::new(vec![None; plan.nodes + 1]),
        })
    }
}

/// What the system and its clients share.
struct Shared {
    /// The system's name and version, by the file's `version` command.
    version: String,
    n: usize,
    decl: Declared,
    node_args: Vec<String>,
    run_dir: PathBuf,
    chaos: PathBuf,
    net: Arc<NetnsNetwork>,
    spawner: crate::cluster::Spawner,
    misbehaved: crate::recorder::Misbehaviour,
}

impl Shared {
    /// The placeholders' values for node `id` at `place`.
    fn vars(&self, id: NodeId, place: Place) -> Vars {
        let node = &self.decl.file.node;
        let mut v = Vars::default();
        v.set("id", id).set("n", self.n).set("addr", node_addr(id));
        v.set("run_dir", self.run_dir.display());
        v.set("system_dir", self.decl.dir().display());
        v.set("chaos", self.chaos.display());
        let node_dir = self.run_dir.join(format!("nodes/n{id}"));
        v.set("node_dir", node_dir.display());
        v.set("data_dir", node_dir.join("data").display());
        for (name, port) in &node.ports {
            v.set(&format!("port:{name}"), port);
        }
        if place == Place::Node {
            if let Some(format) = &node.peer {
                let one = |j: NodeId| {
                    let mut pv = self.vars(id, Place::Peer);
                    pv.set("peer_id", j).set("peer_addr", node_addr(j));
                    pv.fill(format)
                };
                let all: Vec<NodeId> = (1..=self.n as NodeId).collect();
                v.lists.insert(
                    "peers".into(),
                    all.iter().filter(|j| **j != id).map(|j| one(*j)).collect(),
                );
                v.lists
                    .insert("cluster".into(), all.iter().map(|j| one(*j)).collect());
                v.separator = node.peer_separator.clone();
            }
        }
        v
    }

    /// The first line the file's `version` command prints (with the placeholders a
    /// client has, for node 1), when it has one and it succeeds.
    fn version_line(&self) -> Option<String> {
        let words = self.decl.file.version.as_ref()?;
        let cmd = self.hub_command(1, words, Place::Client)?;
        let (status, out) = run_bounded(&self.spawner, cmd, PROBE_TIMEOUT);
        let first = out.lines().next().unwrap_or_default().trim().to_string();
        (status == Some(0) && !first.is_empty()).then_some(first)
    }

    /// A command of the file's for node `id`, in the hub's namespace (where the
    /// harness reaches every node from), in its own process group, dying with the
    /// harness.
    fn hub_command(&self, id: NodeId, words: &[String], place: Place) -> Option<Command> {
        let words = self.vars(id, place).fill_words(words);
        let (program, args) = words.split_first()?;
        let mut cmd = Command::new(program);
        cmd.args(args).stdin(Stdio::null()).process_group(0);
        crate::cluster::dies_with_harness(&mut cmd);
        nemesis::netns::enter(&mut cmd, self.net.hub());
        Some(cmd)
    }
}

/// Runs `cmd` to its end within `limit`, killing its group past it: its exit status
/// (`None` when it could not run or was killed) and its stdout.
fn run_bounded(
    spawner: &crate::cluster::Spawner,
    mut cmd: Command,
    limit: Duration,
) -> (Option<i32>, String) {
    cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    let Ok(mut child) = spawner.spawn(cmd) else {
        return (None, String::new());
    };
    let pgid = child.id() as i32;
    crate::cluster::register(pgid);
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s.code(),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = nemesis::process::kill(pgid);
                let _ = child.wait();
                break None;
            }
        }
    };
    let _ = nemesis::process::kill(pgid);
    crate::cluster::unregister(pgid);
    let mut out = String::new();
    if let Some(mut o) = child.stdout.take() {
        let _ = std::io::Read::read_to_string(&mut std::io::Read::take(&mut o, 64 << 10), &mut out);
    }
    (status, out)
}

pub struct DeclaredSystem {
    shared: Arc<Shared>,
    procs: crate::cluster::Members,
    /// Each node's clock while a fault skews it (rate, jump), index 0 unused: its
    /// next start runs under libfaketime.
    clocks: Mutex<Vec<Option<(f64, u64)>>>,
}

impl DeclaredSystem {
    fn node_dir(&self, id: NodeId) -> PathBuf {
        self.shared.run_dir.join(format!("nodes/n{id}"))
    }

    /// Starts node `id` and waits until it is ready. The harness's part failing (a
    /// directory, a namespace, the program) is its failure; the node exiting or never
    /// becoming ready is the system's.
    fn spawn(&self, id: NodeId) -> Result<(), Failure> {
        let s = &self.shared;
        let node = &s.decl.file.node;
        let dir = self.node_dir(id);
        let ours = |e: std::io::Error| Failure::harness(format!("node {id}: {e}"));
        std::fs::create_dir_all(dir.join("data")).map_err(ours)?;
        let log = |name: &str| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join(name))
        };
        let (stdout, stderr) = (
            log("stdout.log").map_err(ours)?,
            log("stderr.log").map_err(ours)?,
        );
        let seen = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
        let offsets = (seen("stdout.log"), seen("stderr.log"));
        let vars = s.vars(id, Place::Node);
        let mut words = vars.fill_words(&node.command);
        words.extend(s.node_args.iter().cloned());
        let mut cmd = Command::new(&words[0]);
        let clock = self.clocks.lock().ok().and_then(|c| c[id as usize]);
        if let Some((rate, jump_ms)) = clock {
            cmd.env("LD_PRELOAD", LIBFAKETIME)
                .env("FAKETIME", faketime(rate, jump_ms))
                .env("FAKETIME_NO_CACHE", "1");
        }
        cmd.args(&words[1..])
            .envs(node.env.iter().map(|(k, v)| (k, vars.fill(v))))
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .process_group(0);
        crate::cluster::dies_with_harness(&mut cmd);
        let ns = s
            .net
            .namespace(id)
            .ok_or_else(|| Failure::harness(format!("node {id} has no namespace")))?;
        nemesis::netns::enter(&mut cmd, ns);
        let child = s.spawner.spawn(cmd).map_err(|e| {
            Failure::input(format!(
                "node {id}: cannot run {} ({}): {e}",
                words[0],
                s.decl.path.display()
            ))
        })?;
        self.procs.insert(id, child, 0);
        self.await_ready(id, offsets)
    }

    /// Waits for node `id` to be ready the file's way, within its timeout.
    fn await_ready(&self, id: NodeId, offsets: (u64, u64)) -> Result<(), Failure> {
        let s = &self.shared;
        let ready = &s.decl.file.node.ready;
        let dir = self.node_dir(id);
        let pattern = ready
            .line
            .as_deref()
            .map(|l| regex::Regex::new(l).expect("checked when read"));
        let deadline = Instant::now() + Duration::from_secs_f64(ready.timeout_s);
        let tail = || {
            format!(
                "last lines of its stderr:\n{}",
                crate::cluster::tail(&dir.join("stderr.log"), 15)
            )
        };
        loop {
            if !self.is_running(id) {
                return Err(Failure::system(format!(
                    "node {id} exited during start-up; {}",
                    tail()
                )));
            }
            let is_ready = if let Some(port) = &ready.tcp {
                let port = s.decl.file.node.ports[port];
                s.net
                    .connect((node_addr(id), port).into(), Duration::from_millis(500))
                    .is_ok()
            } else if let Some(words) = &ready.command {
                s.hub_command(id, words, Place::Node)
                    .map(|cmd| run_bounded(&s.spawner, cmd, PROBE_TIMEOUT).0 == Some(0))
                    .unwrap_or(false)
            } else if let Some(re) = &pattern {
                ["stdout.log", "stderr.log"]
                    .iter()
                    .zip([offsets.0, offsets.1])
                    .any(|(name, from)| {
                        new_text(&dir.join(name), from)
                            .lines()
                            .any(|l| re.is_match(l))
                    })
            } else {
                true
            };
            if is_ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure::system(format!(
                    "node {id} was not ready within {} s (node.ready in {}); {}",
                    ready.timeout_s,
                    s.decl.path.display(),
                    tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// What a log file holds past byte `from` (at most 1 MiB of it).
fn new_text(path: &Path, from: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let mut out = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        if f.seek(SeekFrom::Start(from)).is_ok() {
            let _ = f.take(1 << 20).read_to_string(&mut out);
        }
    }
    out
}

impl nemesis::Nodes for DeclaredSystem {
    fn kill(&self, id: NodeId) -> nemesis::Acted {
        self.procs.kill(id, |_| {}).map(|k| k.is_some())
    }
    fn pause(&self, id: NodeId) -> nemesis::Acted {
        self.procs.pause(id)
    }
    fn resume(&self, id: NodeId) -> nemesis::Acted {
        self.procs.resume(id)
    }
    /// Starts the node again, the same command on its own data directory.
    fn restart(&self, id: NodeId) -> nemesis::Acted {
        if self.is_running(id) {
            return Ok(false);
        }
        self.spawn(id)
            .map(|()| true)
            .map_err(|e| FaultError::Unknown(e.what))
    }
    /// Clock faults are libfaketime's (a restart under it), where it can reach the
    /// node's clock; disk corruption is the simulation's.
    fn cannot(&self, fault: &nemesis::Fault) -> Option<&'static str> {
        use results::system_file::TimeSource;
        match fault {
            nemesis::Fault::Clock { .. } | nemesis::Fault::ClockReset => {
                if self.shared.decl.file.node.time == TimeSource::Own {
                    Some(OWN_TIME)
                } else if !Path::new(LIBFAKETIME).is_file() {
                    Some(NO_FAKETIME)
                } else {
                    None
                }
            }
            nemesis::Fault::Corrupt { .. } => Some(nemesis::NO_CORRUPT),
            _ => None,
        }
    }
    /// Restarts a running node under libfaketime with its clock `jump_ms` ahead and
    /// running at `rate` (rate 1 and no jump: without it). A node that is down gets
    /// that clock when it next starts; `Ok(false)` then.
    fn set_clock(&self, id: NodeId, rate: f64, jump_ms: u64) -> nemesis::Acted {
        let skewed = (rate != 1.0 || jump_ms != 0).then_some((rate, jump_ms));
        self.clocks
            .lock()
            .map_err(|_| FaultError::poisoned("the clocks"))?[id as usize] = skewed;
        if !self.is_running(id) {
            return Ok(false);
        }
        self.procs.kill(id, |_| {})?;
        self.spawn(id)
            .map(|()| true)
            .map_err(|e| FaultError::Unknown(e.what))
    }
}

impl System for DeclaredSystem {
    type Client = DeclaredClient;

    fn nodes(&self) -> usize {
        self.shared.n
    }

    fn start(&self, id: NodeId) -> Result<(), Failure> {
        self.spawn(id)
    }

    fn is_running(&self, id: NodeId) -> bool {
        self.procs.is_running(id)
    }

    fn is_paused(&self, id: NodeId) -> bool {
        self.procs.is_paused(id)
    }

    fn clock_skewed(&self, id: NodeId) -> bool {
        self.clocks.lock().is_ok_and(|c| c[id as usize].is_some())
    }

    fn links(&self) -> &dyn nemesis::Links {
        self.shared.net.as_ref()
    }

    async fn connect(&self, id: NodeId) -> Option<DeclaredClient> {
        if !self.is_running(id) {
            return None;
        }
        DeclaredClient::spawn(self.shared.clone(), id)
    }

    /// Every node gets the file's stop signal at once; those still running after
    /// its grace are killed.
    fn shutdown(&self) {
        let stop = &self.shared.decl.file.node.stop;
        let signal = results::system_file::signal_number(&stop.signal)
            .and_then(|n| nix::sys::signal::Signal::try_from(n).ok())
            .unwrap_or(nix::sys::signal::Signal::SIGKILL);
        let ids: Vec<NodeId> = (1..=self.shared.n as NodeId).collect();
        for id in &ids {
            self.procs.signal(*id, signal);
        }
        let deadline = Instant::now() + Duration::from_secs_f64(stop.grace_s);
        while Instant::now() < deadline && ids.iter().any(|id| self.is_running(*id)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        for id in ids {
            let _ = nemesis::Nodes::kill(self, id);
        }
        self.shared.misbehaved.totals();
    }

    fn version(&self) -> Option<String> {
        Some(self.shared.version.clone())
    }

    /// Asks every running, unpaused node the file's way, and takes the leader most
    /// of them name; without a way, who leads is unknown (role faults fall back).
    async fn leader(&self) -> nemesis::LeaderView {
        let Some(how) = self.shared.decl.file.leader.clone() else {
            return nemesis::LeaderView::unknown("the system file says not how to ask who leads");
        };
        let mut asks = tokio::task::JoinSet::new();
        for id in 1..=self.shared.n as NodeId {
            if !self.is_running(id) || self.is_paused(id) {
                continue;
            }
            let (shared, how) = (self.shared.clone(), how.clone());
            asks.spawn_blocking(move || (id, ask_leader(&shared, id, &how)));
        }
        let mut answers = Vec::new();
        while let Some(asked) = asks.join_next().await {
            if let Ok((id, Some(leader))) = asked {
                answers.push((id, leader));
            }
        }
        answers.sort_unstable();
        nemesis::LeaderView::by_vote(&answers)
    }
}

/// Node `id`'s answer to who leads: `Some(None)` it knows none, `None` no answer.
fn ask_leader(
    s: &Shared,
    id: NodeId,
    how: &results::system_file::LeaderDecl,
) -> Option<Option<NodeId>> {
    let text = match (&how.command, &how.http, &how.pointer) {
        (Some(words), _, _) => {
            let (status, out) = run_bounded(
                &s.spawner,
                s.hub_command(id, words, Place::Node)?,
                LEADER_TIMEOUT,
            );
            (status == Some(0)).then_some(out)?
        }
        (None, Some(url), Some(pointer)) => {
            let body = http_get(&s.net, &s.vars(id, Place::Node).fill(url))?;
            let v: Value = serde_json::from_str(&body).ok()?;
            let at = v.pointer(pointer)?;
            at.as_u64()
                .map(|n| n.to_string())
                .or_else(|| at.as_str().map(str::to_string))?
        }
        _ => return None,
    };
    let text = text.trim();
    if text.is_empty() || text == "none" || text == "null" || text == "0" {
        return Some(None);
    }
    let leader: NodeId = text.parse().ok()?;
    Some((1..=s.n as NodeId).contains(&leader).then_some(leader))
}

/// The body of an HTTP/1.0 GET of `url` (`http://ADDR:PORT/PATH`) from the hub,
/// bounded in time and size.
fn http_get(net: &NetnsNetwork, url: &str) -> Option<String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(h, p)| (h, format!("/{p}")));
    let addr: std::net::SocketAddr = host.parse().ok()?;
    let mut conn = net.connect(addr, LEADER_TIMEOUT).ok()?;
    conn.set_read_timeout(Some(LEADER_TIMEOUT)).ok()?;
    conn.set_write_timeout(Some(LEADER_TIMEOUT)).ok()?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").ok()?;
    let mut raw = Vec::new();
    conn.take(1 << 20).read_to_end(&mut raw).ok()?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

/// One client process of the file's, talking to one node.
pub struct DeclaredClient {
    shared: Arc<Shared>,
    node: NodeId,
    proc: ClientProc,
    next_id: u64,
    line: String,
}

struct ClientProc {
    child: std::process::Child,
    pgid: i32,
    stdin: tokio::process::ChildStdin,
    stdout: BufReader<tokio::process::ChildStdout>,
}

impl Drop for ClientProc {
    /// No client process outlives its connection.
    fn drop(&mut self) {
        let _ = nemesis::process::kill(self.pgid);
        let _ = self.child.wait();
        crate::cluster::unregister(self.pgid);
    }
}

impl DeclaredClient {
    fn spawn(shared: Arc<Shared>, node: NodeId) -> Option<DeclaredClient> {
        let client = &shared.decl.file.client;
        let vars = shared.vars(node, Place::Client);
        let mut cmd = shared.hub_command(node, &client.command, Place::Client)?;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(shared.run_dir.join("clients/stderr.log"))
            .ok()?;
        cmd.envs(client.env.iter().map(|(k, v)| (k, vars.fill(v))))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr));
        let mut child = shared.spawner.spawn(cmd).ok()?;
        let pgid = child.id() as i32;
        crate::cluster::register(pgid);
        let stdin = child
            .stdin
            .take()
            .and_then(|s| tokio::process::ChildStdin::from_std(s).ok());
        let stdout = child
            .stdout
            .take()
            .and_then(|s| tokio::process::ChildStdout::from_std(s).ok());
        let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
            let _ = nemesis::process::kill(pgid);
            let _ = child.wait();
            crate::cluster::unregister(pgid);
            return None;
        };
        Some(DeclaredClient {
            shared,
            node,
            proc: ClientProc {
                child,
                pgid,
                stdin,
                stdout: BufReader::new(stdout),
            },
            next_id: 1,
            line: String::new(),
        })
    }

    /// The op as docs/clients.md writes it.
    fn request(id: u64, op: &WorkloadOp) -> Value {
        match op {
            WorkloadOp::Read { key } => json!({"id": id, "f": "read", "key": key}),
            WorkloadOp::Write { key, value } => {
                json!({"id": id, "f": "write", "key": key, "value": value})
            }
            WorkloadOp::Cas { key, from, to } => {
                json!({"id": id, "f": "cas", "key": key, "value": [from, to]})
            }
            WorkloadOp::Propose { key, value } => {
                json!({"id": id, "f": "propose", "key": key, "value": value})
            }
            // Plans refuse transactions for declared systems (results::Plan::check).
            WorkloadOp::Txn { txn } => json!({"id": id, "f": "txn", "value": txn}),
        }
    }

    /// A reply as docs/clients.md defines it, or why the line is none.
    fn completion(op: &WorkloadOp, reply: &Value) -> Result<Completion, String> {
        let error = reply["error"].as_str().map(str::to_string);
        match reply["type"].as_str() {
            Some("ok") if matches!(op, WorkloadOp::Txn { .. }) => {
                let txn = checker::history::txn_of(&reply["value"])
                    .map_err(|e| format!("an ok txn whose value is not its micro-ops: {e}"))?;
                let WorkloadOp::Txn { txn: asked } = op else {
                    unreachable!("matched above")
                };
                if txn.len() != asked.len()
                    || txn.iter().zip(asked).any(|(a, b)| a.key() != b.key())
                {
                    return Err("an ok txn whose micro-ops are not the request's".into());
                }
                Ok(Completion::ok_txn(txn))
            }
            Some("ok") => {
                let value = match op {
                    WorkloadOp::Read { .. } | WorkloadOp::Propose { .. } => match &reply["value"] {
                        Value::Null => None,
                        v => Some(v.as_i64().ok_or_else(|| {
                            format!("an ok {} whose value is not an integer or null", op.name())
                        })?),
                    },
                    _ => None,
                };
                Ok(Completion::ok(value))
            }
            Some("fail") => Ok(Completion::fail(error.as_deref().unwrap_or("fail"))),
            Some("info") => Ok(Completion::unknown(
                op,
                error.as_deref().unwrap_or("info"),
                false,
            )),
            _ => Err("a reply whose type is not ok, fail or info".into()),
        }
    }

    /// The client misbehaved: said, and its process replaced.
    fn broke(&self, op: &WorkloadOp, kind: MisbehaviourKind, detail: &str) -> Completion {
        self.shared.misbehaved.record(
            self.node,
            kind,
            &format!("client of n{}: {detail}", self.node),
        );
        let code = match kind {
            MisbehaviourKind::UnexpectedExit => CONNECTION_BROKEN,
            _ => MALFORMED_REPLY,
        };
        Completion::unknown(op, code, true)
    }
}

impl Client for DeclaredClient {
    async fn call(&mut self, op: &WorkloadOp, timeout: Duration) -> Completion {
        let id = self.next_id;
        self.next_id += 1;
        let mut bytes = Self::request(id, op).to_string().into_bytes();
        bytes.push(b'\n');
        let deadline = tokio::time::Instant::now() + timeout;
        // Bounded too: a client that stops reading its stdin cannot hold the slot.
        match tokio::time::timeout_at(deadline, self.proc.stdin.write_all(&bytes)).await {
            Err(_) => return Completion::unknown(op, CLIENT_TIMEOUT, true),
            Ok(Err(_)) => {
                return self.broke(
                    op,
                    MisbehaviourKind::UnexpectedExit,
                    "its stdin closed (the process exited)",
                );
            }
            Ok(Ok(())) => {}
        }
        loop {
            self.line.clear();
            let mut bounded = (&mut self.proc.stdout).take(MAX_LINE + 1);
            let read = bounded.read_line(&mut self.line);
            let n = match tokio::time::timeout_at(deadline, read).await {
                Err(_) => return Completion::unknown(op, CLIENT_TIMEOUT, true),
                Ok(Err(e)) => {
                    return self.broke(
                        op,
                        MisbehaviourKind::Garbage,
                        &format!("unreadable output: {e}"),
                    );
                }
                Ok(Ok(n)) => n,
            };
            if n == 0 {
                return self.broke(
                    op,
                    MisbehaviourKind::UnexpectedExit,
                    "it exited (its stdout closed)",
                );
            }
            if n as u64 > MAX_LINE {
                return self.broke(op, MisbehaviourKind::LineTooLong, "a line over 1 MiB");
            }
            let text = self.line.trim_end();
            let reply: Value = match serde_json::from_str(text) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    let start: String = text.chars().take(200).collect();
                    return self.broke(
                        op,
                        MisbehaviourKind::Garbage,
                        &format!("a line that is not a reply: {start:?}"),
                    );
                }
            };
            match reply["id"].as_u64() {
                Some(got) if got == id => {
                    return match Self::completion(op, &reply) {
                        Ok(done) => done,
                        Err(why) => {
                            self.broke(op, MisbehaviourKind::Garbage, &format!("{why}: {text}"))
                        }
                    };
                }
                _ => {
                    // A reply to another op (an earlier one that timed out cannot be
                    // here: its process was replaced): said, and waited past.
                    let start: String = text.chars().take(200).collect();
                    self.shared.misbehaved.record(
                        self.node,
                        MisbehaviourKind::UnexpectedReply,
                        &format!(
                            "client of n{}: a reply to no op in flight: {start}",
                            self.node
                        ),
                    );
                }
            }
        }
    }
}
