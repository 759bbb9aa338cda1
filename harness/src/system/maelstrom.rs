//! Nodes that speak Maelstrom's protocol (JSON lines on stdin and stdout) as a system
//! under test: the harness is their network. Every node runs NODE_CMD, split into
//! words as a shell would ([`NodeCommand`]) and run without a shell, in its own process
//! group and with the parent-death signal (as the bundled node does,
//! [`crate::cluster`]), so it dies with the harness even when the harness is killed;
//! one thread per node reads its stdout and routes each message:
//! - to another node through the fault model of the TCP proxy: cut links drop it; a
//!   degraded link loses, duplicates or delays it, from the link's own seeded stream;
//! - to a client `cK`, as the reply to its request;
//! - to a service (`lin-kv`, `seq-kv`, `lww-kv`), which answers at once
//!   ([`crate::maelstrom::services`]).
//!
//! A node gets `init` when it starts (again after a restart: most Maelstrom nodes
//! keep their state in memory). Every node-to-node message is counted per link and
//! type (result.json `links`) and, unless `--no-trace-messages`, traced with its fate
//! in messages.jsonl, from which the report draws its space-time diagram.
//!
//! A node misbehaving is data: a line that is not a message, a line over 1 MiB (cut
//! off and skipped), a message to nobody, a reply nobody waits for, or an exit no
//! fault caused each become a `node-misbehaved` history event (at most
//! [`MISBEHAVED_EVENTS_MAX`] per node and kind, then a total) and a line in the
//! report, and a note in the node's stderr log.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use nemesis::net::{Counts, LinkStats, Tracer};
use nemesis::{FaultError, LinkFaults};
use rand_chacha::ChaCha8Rng;
use results::Plan;
use results::faults::MisbehaviourKind;
use tokio::sync::oneshot;

use super::{Completion, Failure, Launcher, NodeId, System, WorkloadOp};
use crate::maelstrom::proto::{self, Envelope};
use crate::maelstrom::services::Services;
use crate::recorder::Recorder;

/// How long a node has to answer `init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);
/// Message types per link counted by name; a node inventing more is counted as
/// `other`, so the counts stay bounded.
const MAX_TYPES_PER_LINK: usize = 64;
/// Requests a client gave up on whose late replies are still recognised, per client.
const MAX_ABANDONED: usize = 100_000;
/// How much of a bad line a note keeps.
const EXAMPLE_BYTES: usize = 200;

/// A node's command line as words: leading `NAME=VALUE` words set environment
/// variables, the next is the program (looked up on PATH), the rest its arguments.
/// Run without a shell: a `sh -c` in between would fork the node and keep the
/// parent-death signal for itself, and a killed harness would leave the node running.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeCommand {
    pub env: Vec<(String, String)>,
    pub program: String,
    pub args: Vec<String>,
}

impl NodeCommand {
    pub fn parse(line: &str) -> Result<NodeCommand, String> {
        let words = shlex::split(line).ok_or_else(|| {
            format!("--node-cmd {line:?}: unbalanced quotes or a trailing backslash")
        })?;
        let mut env = Vec::new();
        let mut words = words.into_iter();
        for word in words.by_ref() {
            match word.split_once('=') {
                Some((name, value))
                    if !name.is_empty()
                        && !name.starts_with(|c: char| c.is_ascii_digit())
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
                {
                    env.push((name.to_string(), value.to_string()));
                }
                _ => {
                    return Ok(NodeCommand {
                        env,
                        program: word,
                        args: words.collect(),
                    });
                }
            }
        }
        Err(format!("--node-cmd {line:?}: no program to run"))
    }
}

/// Launches [`MaelstromSystem`]s.
pub struct MaelstromLauncher;

impl MaelstromLauncher {
    /// Sets up the network and the data of a run; starts nothing.
    async fn set_up(
        &self,
        plan: &Plan,
        run_dir: &Path,
        recorder: &Arc<Recorder>,
    ) -> Result<MaelstromSystem, String> {
        let cmd = NodeCommand::parse(
            plan.node_cmd
                .as_deref()
                .ok_or("a maelstrom plan needs --node-cmd")?,
        )?;
        let n = plan.nodes;
        let tracer = if plan.trace_messages {
            let t = Tracer::create(&run_dir.join("messages.jsonl"), recorder.start())
                .map_err(|e| format!("cannot create messages.jsonl: {e}"))?;
            Some(t)
        } else {
            None
        };
        let router = Arc::new(Router {
            n,
            links: Mutex::new(LinkState::new(n, plan.seed)),
            writers: Mutex::new(vec![None; n + 1]),
            waiting: Mutex::new(BTreeMap::new()),
            abandoned: Mutex::new(BTreeMap::new()),
            services: Mutex::new(Services::new(nemesis::substream(
                plan.seed,
                "maelstrom/services",
            ))),
            runtime: tokio::runtime::Handle::current(),
            tracer,
            counts: Mutex::new(BTreeMap::new()),
            misbehaved: crate::recorder::Misbehaviour::new(recorder.clone()),
            stopping: Mutex::new(BTreeSet::new()),
        });
        let keys: BTreeMap<String, i64> = plan
            .kv_keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k.clone(), i as i64))
            .collect();
        Ok(MaelstromSystem {
            n,
            cmd,
            run_dir: run_dir.to_path_buf(),
            procs: crate::cluster::Members::new(n),
            spawner: crate::cluster::Spawner::new(),
            router,
            keys,
            next_client: AtomicU64::new(1),
            origin_ns: recorder.origin_ns(),
            generation: AtomicU64::new(0),
        })
    }
}

impl Launcher for MaelstromLauncher {
    type System = MaelstromSystem;

    /// What a launch sets up (a network, files, the node command) is the harness's
    /// own: its failures are the harness's.
    async fn launch(
        &self,
        plan: &Plan,
        run_dir: &Path,
        recorder: &Arc<Recorder>,
    ) -> Result<MaelstromSystem, Failure> {
        self.set_up(plan, run_dir, recorder)
            .await
            .map_err(Failure::harness)
    }
}

/// The network the harness is for Maelstrom nodes.
struct Router {
    n: usize,
    links: Mutex<LinkState>,
    /// Each running node's stdin, as a queue of lines.
    writers: Mutex<Vec<Option<mpsc::Sender<String>>>>,
    /// (client, msg_id) -> who waits for the reply.
    waiting: Mutex<BTreeMap<(String, u64), oneshot::Sender<Envelope>>>,
    /// Requests each client gave up waiting for: a late reply to one is no
    /// misbehaviour.
    abandoned: Mutex<BTreeMap<String, BTreeSet<u64>>>,
    services: Mutex<Services>,
    /// Delayed deliveries are timers on the run's runtime.
    runtime: tokio::runtime::Handle,
    tracer: Option<Tracer>,
    /// Per directed link, message type -> counts.
    counts: Mutex<BTreeMap<(NodeId, NodeId), BTreeMap<String, Counts>>>,
    /// How often each node misbehaved in each way.
    misbehaved: crate::recorder::Misbehaviour,
    /// (node, generation) the harness is stopping: their end is no misbehaviour.
    stopping: Mutex<BTreeSet<(NodeId, u64)>>,
}

struct LinkState {
    cut: BTreeSet<(NodeId, NodeId)>,
    degraded: BTreeMap<(NodeId, NodeId), LinkFaults>,
    /// Each link's own stream, so one link's traffic does not move another's fates.
    rng: BTreeMap<(NodeId, NodeId), ChaCha8Rng>,
}

impl LinkState {
    fn new(n: usize, seed: u64) -> LinkState {
        let ids = 1..=n as NodeId;
        let rng = ids
            .clone()
            .flat_map(|a| ids.clone().map(move |b| (a, b)))
            .map(|(a, b)| {
                (
                    (a, b),
                    nemesis::substream(seed, &format!("maelstrom/link/{a}-{b}")),
                )
            })
            .collect();
        LinkState {
            cut: BTreeSet::new(),
            degraded: BTreeMap::new(),
            rng,
        }
    }

    /// The delays of the copies of one message on `link` (none: dropped), by the same
    /// rule as the TCP proxy's ([`LinkFaults::fate`]).
    fn fate(&mut self, link: (NodeId, NodeId)) -> Vec<Duration> {
        if self.cut.contains(&link) {
            return Vec::new();
        }
        let Some(f) = self.degraded.get(&link) else {
            return vec![Duration::ZERO];
        };
        let Some(rng) = self.rng.get_mut(&link) else {
            return vec![Duration::ZERO];
        };
        f.fate(rng)
    }
}

fn node_id(name: &str) -> Option<NodeId> {
    name.strip_prefix('n')?.parse().ok()
}

impl Router {
    fn write(&self, to: NodeId, line: String) {
        if let Ok(w) = self.writers.lock() {
            if let Some(Some(tx)) = w.get(to as usize) {
                let _ = tx.send(line);
            }
        }
    }

    /// Records that node `id` misbehaved, in the history (bounded per node and kind)
    /// and in its stderr log.
    fn misbehaved(&self, id: NodeId, kind: MisbehaviourKind, detail: &str, log: &Path) {
        self.misbehaved.record(id, kind, detail);
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(log) {
            let _ = writeln!(f, "[harness] n{id} {}: {detail}", kind.describe());
        }
    }

    /// Counts and traces one node-to-node message and its fate.
    fn account(&self, link: (NodeId, NodeId), kind: &str, delays: &[Duration]) {
        let fate = match delays.len() {
            0 => "dropped",
            1 => "delivered",
            _ => "duplicated",
        };
        if let Ok(mut counts) = self.counts.lock() {
            let types = counts.entry(link).or_default();
            let key = if types.contains_key(kind) || types.len() < MAX_TYPES_PER_LINK {
                kind
            } else {
                "other"
            };
            let c = match types.get_mut(key) {
                Some(c) => c,
                None => types.entry(key.to_string()).or_default(),
            };
            c.sent += 1;
            match delays.len() {
                0 => c.dropped += 1,
                1 => c.delivered += 1,
                _ => {
                    c.delivered += 1;
                    c.duplicated += 1;
                }
            }
        }
        if let Some(t) = &self.tracer {
            t.record_opaque(link.0, link.1, kind, fate, delays);
        }
    }

    /// Routes one message a node wrote; `Err` says how it misbehaved.
    fn route(
        self: &Arc<Self>,
        from: NodeId,
        msg: Envelope,
    ) -> Result<(), (MisbehaviourKind, String)> {
        if let Some(to) = node_id(&msg.dest).filter(|t| *t >= 1 && *t as usize <= self.n) {
            let delays = self
                .links
                .lock()
                .map(|mut l| l.fate((from, to)))
                .unwrap_or_default();
            // The type names the counts: at most 64 characters of it, borrowed.
            let kind = msg.kind();
            let kind = &kind[..kind.char_indices().nth(64).map_or(kind.len(), |(i, _)| i)];
            self.account((from, to), kind, &delays);
            let line = msg.to_line();
            for d in delays {
                if d.is_zero() {
                    self.write(to, line.clone());
                } else {
                    let (me, line) = (self.clone(), line.clone());
                    self.runtime.spawn(async move {
                        tokio::time::sleep(d).await;
                        me.write(to, line);
                    });
                }
            }
            return Ok(());
        }
        if msg.dest.starts_with('c') {
            let id = msg.in_reply_to().unwrap_or(u64::MAX);
            let key = (msg.dest.clone(), id);
            let waiter = self.waiting.lock().ok().and_then(|mut w| w.remove(&key));
            if let Some(tx) = waiter {
                let _ = tx.send(msg);
                return Ok(());
            }
            // A late reply to a request the client gave up on is the node being slow.
            let late = self
                .abandoned
                .lock()
                .ok()
                .and_then(|mut a| a.get_mut(&msg.dest).map(|ids| ids.remove(&id)))
                .unwrap_or(false);
            return if late {
                Ok(())
            } else {
                Err((MisbehaviourKind::UnexpectedReply, example(&msg.to_line())))
            };
        }
        let answer = self.services.lock().ok().and_then(|mut s| s.handle(&msg));
        match answer {
            Some(reply) => {
                // A service answers the `src` of the request, which names a node when
                // a node asked for itself; otherwise the node that wrote it.
                let to = node_id(&reply.dest)
                    .filter(|t| *t >= 1 && *t as usize <= self.n)
                    .unwrap_or(from);
                self.write(to, reply.to_line());
                Ok(())
            }
            None => Err((
                MisbehaviourKind::UnknownDestination,
                format!("{:?}: {}", msg.dest, example(&msg.to_line())),
            )),
        }
    }

    /// Sends `body` from client `client` to node `to` and waits for the reply.
    async fn ask(
        &self,
        client: &str,
        to: NodeId,
        body: serde_json::Map<String, serde_json::Value>,
        timeout: Duration,
    ) -> Option<Envelope> {
        let msg = Envelope::new(client, &format!("n{to}"), body);
        let id = msg.msg_id()?;
        let (tx, rx) = oneshot::channel();
        self.waiting
            .lock()
            .ok()?
            .insert((client.to_string(), id), tx);
        self.write(to, msg.to_line());
        let reply = tokio::time::timeout(timeout, rx)
            .await
            .ok()
            .and_then(Result::ok);
        if reply.is_none() {
            if let Ok(mut w) = self.waiting.lock() {
                w.remove(&(client.to_string(), id));
            }
            if let Ok(mut a) = self.abandoned.lock() {
                let ids = a.entry(client.to_string()).or_default();
                if ids.len() < MAX_ABANDONED {
                    ids.insert(id);
                }
            }
        }
        reply
    }

    /// Message counts per directed link, in link order.
    fn stats(&self) -> Vec<LinkStats> {
        self.counts
            .lock()
            .map(|c| {
                c.iter()
                    .map(|(&(from, to), types)| LinkStats {
                        from,
                        to,
                        types: types.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The start of a line, for a note.
fn example(text: &str) -> String {
    let mut end = text.len().min(EXAMPLE_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    if end < text.len() {
        format!("{}...", &text[..end])
    } else {
        text.to_string()
    }
}

pub struct MaelstromSystem {
    n: usize,
    cmd: NodeCommand,
    run_dir: PathBuf,
    procs: crate::cluster::Members,
    spawner: crate::cluster::Spawner,
    router: Arc<Router>,
    /// KV key name -> lin-kv's integer key.
    keys: BTreeMap<String, i64>,
    next_client: AtomicU64,
    /// The run's origin on CLOCK_MONOTONIC, for nodes that keep a journal.
    origin_ns: u64,
    /// Starts of nodes so far.
    generation: AtomicU64,
}

impl MaelstromSystem {
    fn node_names(&self) -> Vec<String> {
        (1..=self.n).map(|i| format!("n{i}")).collect()
    }

    /// Spawns node `id` with its stdio wired to the router, then sends `init`. The
    /// harness's part failing (its log, the program) is its failure; a node that
    /// answers `init` wrongly or not at all misbehaved.
    fn spawn(&self, id: NodeId) -> Result<(), Failure> {
        let dir = self.run_dir.join(format!("nodes/n{id}"));
        let _ = std::fs::create_dir_all(&dir);
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr.log"))
            .map_err(|e| Failure::harness(format!("node {id}: {e}")))?;
        let mut cmd = Command::new(&self.cmd.program);
        cmd.args(&self.cmd.args)
            .envs(self.cmd.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .env("CHAOS_JOURNAL_ORIGIN_NS", self.origin_ns.to_string())
            .process_group(0);
        crate::cluster::dies_with_harness(&mut cmd);
        let mut child = self.spawner.spawn(cmd).map_err(|e| {
            Failure::harness(format!("node {id}: cannot run {:?}: {e}", self.cmd.program))
        })?;
        let piped = || Failure::harness(format!("node {id}: its stdio is not piped"));
        let mut stdin = child.stdin.take().ok_or_else(piped)?;
        let stdout = child.stdout.take().ok_or_else(piped)?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in rx {
                if writeln!(stdin, "{line}")
                    .and_then(|()| stdin.flush())
                    .is_err()
                {
                    break;
                }
            }
        });
        if let Ok(mut w) = self.router.writers.lock() {
            w[id as usize] = Some(tx);
        }
        let router = self.router.clone();
        let log = dir.join("stderr.log");
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        std::thread::spawn(move || route_stdout(id, generation, stdout, router, &log));
        self.procs.insert(id, child, generation);
        // init, answered within its deadline.
        let init = proto::init(&format!("n{id}"), &self.node_names(), 1);
        let router = self.router.clone();
        let answered = self
            .router
            .runtime
            .block_on(async move { router.ask("c0", id, init, INIT_TIMEOUT).await });
        match answered {
            Some(r) if r.kind() == "init_ok" => Ok(()),
            Some(r) => Err(Failure::system(format!(
                "node {id} answered init with {}",
                r.to_line()
            ))),
            None => Err(Failure::system(format!(
                "node {id} did not answer init within {} s",
                INIT_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// Reads a node's stdout to its end, routing each message; what cannot be routed is
/// recorded as the node misbehaving, and so is the end of its output when the harness
/// did not stop it.
fn route_stdout(
    id: NodeId,
    generation: u64,
    stdout: std::process::ChildStdout,
    router: Arc<Router>,
    log: &Path,
) {
    let bad = |kind, detail: &str| router.misbehaved(id, kind, detail, log);
    let mut reader = BufReader::with_capacity(64 << 10, stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .by_ref()
            .take(proto::MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line);
        match read {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && line.len() > proto::MAX_LINE_BYTES {
            // Skip the rest of the line, a buffer at a time.
            let mut skipped = line.len() as u64;
            let ended = loop {
                let Ok(buf) = reader.fill_buf() else {
                    break false;
                };
                if buf.is_empty() {
                    break false;
                }
                match buf.iter().position(|b| *b == b'\n') {
                    Some(p) => {
                        skipped += p as u64;
                        reader.consume(p + 1);
                        break true;
                    }
                    None => {
                        let n = buf.len();
                        skipped += n as u64;
                        reader.consume(n);
                    }
                }
            };
            let text = String::from_utf8_lossy(&line[..EXAMPLE_BYTES]);
            bad(
                MisbehaviourKind::LineTooLong,
                &format!(
                    "a line of {skipped}{} bytes (at most {}), skipped: {text}...",
                    if ended { "" } else { "+" },
                    proto::MAX_LINE_BYTES
                ),
            );
            if !ended {
                break;
            }
            continue;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        if text.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match Envelope::parse(text) {
            Ok(msg) => {
                // `src` and `dest` stay as the node wrote them (Maelstrom's rule: a
                // follower may forward a client's request with `src` still the
                // client); the message travels the link from this node, which wrote
                // it, to `dest`.
                if let Err((kind, detail)) = router.route(id, msg) {
                    bad(kind, &detail);
                }
            }
            Err(e) => bad(
                MisbehaviourKind::Garbage,
                &format!("{e}: {}", example(&String::from_utf8_lossy(text))),
            ),
        }
    }
    let expected = router
        .stopping
        .lock()
        .map(|mut s| s.remove(&(id, generation)))
        .unwrap_or(true);
    if !expected {
        bad(
            MisbehaviourKind::UnexpectedExit,
            "its stdout closed while no fault or shutdown was stopping it",
        );
    }
}

impl nemesis::Nodes for MaelstromSystem {
    fn kill(&self, id: NodeId) -> nemesis::Acted {
        let killed = self.procs.kill(id, |generation| {
            if let Ok(mut s) = self.router.stopping.lock() {
                s.insert((id, generation));
            }
        })?;
        if let Ok(mut w) = self.router.writers.lock() {
            w[id as usize] = None;
        }
        Ok(killed.is_some())
    }
    fn pause(&self, id: NodeId) -> nemesis::Acted {
        self.procs.pause(id)
    }
    fn resume(&self, id: NodeId) -> nemesis::Acted {
        self.procs.resume(id)
    }
    /// Runs the command again and sends `init` again.
    fn restart(&self, id: NodeId) -> nemesis::Acted {
        if self.is_running(id) {
            return Ok(false);
        }
        self.spawn(id)
            .map(|()| true)
            .map_err(|e| FaultError::Unknown(e.what))
    }
}

/// The name the router's link table goes by in a fault's error.
const LINKS: &str = "the router's link table";

impl nemesis::Links for MaelstromSystem {
    fn cut(&self, links: &[(NodeId, NodeId)]) -> Result<(), nemesis::FaultError> {
        let mut l = self
            .router
            .links
            .lock()
            .map_err(|_| FaultError::poisoned(LINKS))?;
        l.cut = links.iter().copied().collect();
        Ok(())
    }
    fn heal(&self) -> Result<(), nemesis::FaultError> {
        self.router
            .links
            .lock()
            .map_err(|_| FaultError::poisoned(LINKS))?
            .cut
            .clear();
        Ok(())
    }
    fn degrade(&self, targets: &[NodeId], faults: &LinkFaults) -> Result<(), nemesis::FaultError> {
        let mut l = self
            .router
            .links
            .lock()
            .map_err(|_| FaultError::poisoned(LINKS))?;
        for a in 1..=self.n as NodeId {
            for b in 1..=self.n as NodeId {
                if a != b && (targets.contains(&a) || targets.contains(&b)) {
                    l.degraded.insert((a, b), faults.clone());
                }
            }
        }
        Ok(())
    }
    fn restore(&self) -> Result<(), nemesis::FaultError> {
        self.router
            .links
            .lock()
            .map_err(|_| FaultError::poisoned(LINKS))?
            .degraded
            .clear();
        Ok(())
    }
}

/// A client `cK`, sending lin-kv requests to one node.
pub struct MaelstromClient {
    name: String,
    node: NodeId,
    router: Arc<Router>,
    keys: BTreeMap<String, i64>,
    next_id: u64,
}

impl super::Client for MaelstromClient {
    async fn call(&mut self, op: &WorkloadOp, timeout: Duration) -> Completion {
        self.next_id += 1;
        let key = self.keys.get(op.key()).copied().unwrap_or(0);
        let body = match op {
            WorkloadOp::Txn { txn } => proto::txn_request(txn, &self.keys, self.next_id),
            _ => match proto::request(op, key, self.next_id) {
                Some(body) => body,
                None => return Completion::fail("not-supported"),
            },
        };
        match self.router.ask(&self.name, self.node, body, timeout).await {
            Some(reply) => proto::completion(op, &reply),
            None => Completion::unknown(op, super::CLIENT_TIMEOUT, false),
        }
    }
}

impl System for MaelstromSystem {
    type Client = MaelstromClient;

    fn nodes(&self) -> usize {
        self.n
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

    fn links(&self) -> &dyn nemesis::Links {
        self
    }

    async fn connect(&self, id: NodeId) -> Option<MaelstromClient> {
        if !self.is_running(id) {
            return None;
        }
        let k = self.next_client.fetch_add(1, Ordering::Relaxed);
        Some(MaelstromClient {
            name: format!("c{k}"),
            node: id,
            router: self.router.clone(),
            keys: self.keys.clone(),
            next_id: 0,
        })
    }

    fn shutdown(&self) {
        for id in 1..=self.n as NodeId {
            let _ = nemesis::Nodes::kill(self, id);
        }
        self.router.misbehaved.totals();
    }

    fn link_stats(&self) -> Vec<LinkStats> {
        self.router.stats()
    }

    fn flush_trace(&self) -> std::io::Result<()> {
        match &self.router.tracer {
            Some(t) => t.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NodeCommand;

    #[test]
    fn a_node_command_splits_like_a_shell_with_leading_assignments() {
        let c = NodeCommand::parse("A=1 B_2='x y' python3 'my node.py' --flag \"q\"").unwrap();
        assert_eq!(
            c.env,
            vec![("A".into(), "1".into()), ("B_2".into(), "x y".into())]
        );
        assert_eq!(c.program, "python3");
        assert_eq!(c.args, vec!["my node.py", "--flag", "q"]);
        // An = after the program is an argument; a word that is no name is the program.
        let c = NodeCommand::parse("./node --x=1").unwrap();
        assert_eq!((c.program.as_str(), c.args.len()), ("./node", 1));
        assert_eq!(NodeCommand::parse("1X=2 run").unwrap().program, "1X=2");
        assert!(
            NodeCommand::parse("A=1")
                .unwrap_err()
                .contains("no program")
        );
        assert!(
            NodeCommand::parse("node 'open")
                .unwrap_err()
                .contains("quotes")
        );
        assert!(NodeCommand::parse("").is_err());
    }
}
