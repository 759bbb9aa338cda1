//! Nodes that speak Maelstrom's protocol (JSON lines on stdin and stdout) as a system
//! under test: the harness is their network. Every node runs `sh -c NODE_CMD` in its
//! own process group (as the bundled node does, [`crate::cluster`]); one thread per
//! node reads its stdout and routes each message:
//! - to another node through the fault model of the TCP proxy: cut links drop it; a
//!   degraded link loses, duplicates or delays it, from the link's own seeded stream;
//! - to a client `cK`, as the reply to its request;
//! - to a service (`lin-kv`, `seq-kv`, `lww-kv`), which answers at once
//!   ([`crate::maelstrom::services`]).
//!
//! A node gets `init` when it starts (again after a restart: most Maelstrom nodes
//! keep their state in memory). A line that is not a message is noted on the node's
//! stderr log and dropped; so is a message to nobody.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use nemesis::{LinkFaults, process};
use rand_chacha::ChaCha8Rng;
use results::Plan;
use tokio::sync::oneshot;

use super::{ClientOp, Completion, Launcher, NodeId, System};
use crate::maelstrom::proto::{self, Envelope};
use crate::maelstrom::services::Services;
use crate::recorder::Recorder;

/// How long a node has to answer `init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Launches [`MaelstromSystem`]s.
pub struct MaelstromLauncher;

impl Launcher for MaelstromLauncher {
    type System = MaelstromSystem;

    async fn launch(
        &self,
        plan: &Plan,
        run_dir: &Path,
        _recorder: &Recorder,
    ) -> Result<MaelstromSystem, String> {
        let cmd = plan
            .node_cmd
            .clone()
            .ok_or("a maelstrom plan needs --node-cmd")?;
        let n = plan.nodes;
        let router = Arc::new(Router {
            n,
            links: Mutex::new(LinkState::new(n, plan.seed)),
            writers: Mutex::new(vec![None; n + 1]),
            waiting: Mutex::new(BTreeMap::new()),
            services: Mutex::new(Services::new(nemesis::substream(
                plan.seed,
                "maelstrom/services",
            ))),
            runtime: tokio::runtime::Handle::current(),
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
            procs: Mutex::new((0..=n).map(|_| None).collect()),
            spawner: crate::cluster::Spawner::new(),
            router,
            keys,
            next_client: AtomicU64::new(1),
        })
    }
}

struct Proc {
    child: Child,
    pgid: i32,
    paused: bool,
}

/// The network the harness is for Maelstrom nodes.
struct Router {
    n: usize,
    links: Mutex<LinkState>,
    /// Each running node's stdin, as a queue of lines.
    writers: Mutex<Vec<Option<mpsc::Sender<String>>>>,
    /// (client, msg_id) -> who waits for the reply.
    waiting: Mutex<BTreeMap<(String, u64), oneshot::Sender<Envelope>>>,
    services: Mutex<Services>,
    /// Delayed deliveries are timers on the run's runtime.
    runtime: tokio::runtime::Handle,
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

    /// Routes one message a node wrote; `Err` says why it went nowhere.
    fn route(self: &Arc<Self>, from: NodeId, msg: Envelope) -> Result<(), String> {
        if let Some(to) = node_id(&msg.dest).filter(|t| *t >= 1 && *t as usize <= self.n) {
            let delays = self
                .links
                .lock()
                .map(|mut l| l.fate((from, to)))
                .unwrap_or_default();
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
            let key = (msg.dest.clone(), msg.in_reply_to().unwrap_or(u64::MAX));
            let waiter = self.waiting.lock().ok().and_then(|mut w| w.remove(&key));
            return match waiter {
                Some(tx) => {
                    let _ = tx.send(msg);
                    Ok(())
                }
                None => Err(format!("a reply nobody waits for: {}", msg.to_line())),
            };
        }
        let answer = self.services.lock().ok().and_then(|mut s| s.handle(&msg));
        match answer {
            Some(reply) => {
                self.write(from, reply.to_line());
                Ok(())
            }
            None => Err(format!(
                "a message to an unknown destination {:?}",
                msg.dest
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
        }
        reply
    }
}

pub struct MaelstromSystem {
    n: usize,
    cmd: String,
    run_dir: PathBuf,
    procs: Mutex<Vec<Option<Proc>>>,
    spawner: crate::cluster::Spawner,
    router: Arc<Router>,
    /// KV key name -> lin-kv's integer key.
    keys: BTreeMap<String, i64>,
    next_client: AtomicU64,
}

impl MaelstromSystem {
    fn node_names(&self) -> Vec<String> {
        (1..=self.n).map(|i| format!("n{i}")).collect()
    }

    /// Spawns node `id` with its stdio wired to the router, then sends `init`.
    fn spawn(&self, id: NodeId) -> Result<(), String> {
        let dir = self.run_dir.join(format!("nodes/n{id}"));
        let _ = std::fs::create_dir_all(&dir);
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr.log"))
            .map_err(|e| format!("node {id}: {e}"))?;
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(&self.cmd)
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let mut child = self
            .spawner
            .spawn(cmd)
            .map_err(|e| format!("node {id}: cannot run {:?}: {e}", self.cmd))?;
        let pgid = child.id() as i32;
        crate::cluster::register(pgid);
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
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
        std::thread::spawn(move || route_stdout(id, stdout, router, &log));
        if let Ok(mut p) = self.procs.lock() {
            p[id as usize] = Some(Proc {
                child,
                pgid,
                paused: false,
            });
        }
        // init, answered within its deadline.
        let init = proto::init(&format!("n{id}"), &self.node_names(), 1);
        let router = self.router.clone();
        let answered = self
            .router
            .runtime
            .block_on(async move { router.ask("c0", id, init, INIT_TIMEOUT).await });
        match answered {
            Some(r) if r.kind() == "init_ok" => Ok(()),
            Some(r) => Err(format!("node {id} answered init with {}", r.to_line())),
            None => Err(format!(
                "node {id} did not answer init within {} s",
                INIT_TIMEOUT.as_secs()
            )),
        }
    }
}

/// Reads a node's stdout to its end, routing each message; what cannot be routed is
/// noted in the node's stderr log.
fn route_stdout(id: NodeId, stdout: std::process::ChildStdout, router: Arc<Router>, log: &Path) {
    let note = |why: String| {
        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(log) {
            let _ = writeln!(f, "[harness] n{id}: {why}");
        }
    };
    let mut reader = BufReader::with_capacity(64 << 10, stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader
            .by_ref()
            .take(proto::MAX_LINE_BYTES as u64 + 2)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if line.last() != Some(&b'\n') && line.len() > proto::MAX_LINE_BYTES {
            note(format!(
                "a line over {} bytes: dropped, and the node's output with it",
                proto::MAX_LINE_BYTES
            ));
            return;
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        match Envelope::parse(text) {
            Ok(mut msg) => {
                // A node speaks for itself.
                msg.src = format!("n{id}");
                if let Err(why) = router.route(id, msg) {
                    note(why);
                }
            }
            Err(e) => note(format!(
                "{e}: {}",
                String::from_utf8_lossy(&text[..text.len().min(200)])
            )),
        }
    }
}

impl nemesis::Nodes for MaelstromSystem {
    fn kill(&self, id: NodeId) -> Result<bool, String> {
        let p = self.procs.lock().map_err(|_| "poisoned")?[id as usize].take();
        let Some(mut p) = p else { return Ok(false) };
        let _ = process::kill(p.pgid);
        let _ = p.child.wait();
        crate::cluster::unregister(p.pgid);
        if let Ok(mut w) = self.router.writers.lock() {
            w[id as usize] = None;
        }
        Ok(true)
    }
    fn pause(&self, id: NodeId) -> Result<bool, String> {
        let mut procs = self.procs.lock().map_err(|_| "poisoned")?;
        match procs[id as usize].as_mut() {
            Some(p) if !p.paused => {
                p.paused = process::pause(p.pgid).is_ok();
                Ok(p.paused)
            }
            _ => Ok(false),
        }
    }
    fn resume(&self, id: NodeId) -> Result<bool, String> {
        let mut procs = self.procs.lock().map_err(|_| "poisoned")?;
        match procs[id as usize].as_mut() {
            Some(p) if p.paused => {
                let _ = process::resume(p.pgid);
                p.paused = false;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    /// Runs the command again and sends `init` again.
    fn restart(&self, id: NodeId) -> Result<bool, String> {
        if self.is_running(id) {
            return Ok(false);
        }
        self.spawn(id).map(|()| true)
    }
}

impl nemesis::Links for MaelstromSystem {
    fn cut(&self, links: &[(NodeId, NodeId)]) -> Result<(), String> {
        let mut l = self.router.links.lock().map_err(|_| "poisoned")?;
        l.cut = links.iter().copied().collect();
        Ok(())
    }
    fn heal(&self) -> Result<(), String> {
        self.router
            .links
            .lock()
            .map_err(|_| "poisoned")?
            .cut
            .clear();
        Ok(())
    }
    fn degrade(&self, targets: &[NodeId], faults: &LinkFaults) -> Result<(), String> {
        let mut l = self.router.links.lock().map_err(|_| "poisoned")?;
        for a in 1..=self.n as NodeId {
            for b in 1..=self.n as NodeId {
                if a != b && (targets.contains(&a) || targets.contains(&b)) {
                    l.degraded.insert((a, b), faults.clone());
                }
            }
        }
        Ok(())
    }
    fn restore(&self) -> Result<(), String> {
        self.router
            .links
            .lock()
            .map_err(|_| "poisoned")?
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
    async fn call(&mut self, op: &ClientOp, timeout: Duration) -> Completion {
        self.next_id += 1;
        let key = self.keys.get(op.key()).copied().unwrap_or(0);
        let Some(body) = proto::request(op, key, self.next_id) else {
            return Completion::fail("not-supported");
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

    fn start(&self, id: NodeId) -> Result<(), String> {
        self.spawn(id)
    }

    fn is_running(&self, id: NodeId) -> bool {
        let Ok(mut procs) = self.procs.lock() else {
            return false;
        };
        let exited = match procs[id as usize].as_mut() {
            Some(p) => matches!(p.child.try_wait(), Ok(Some(_))),
            None => return false,
        };
        if exited {
            if let Some(p) = procs[id as usize].take() {
                crate::cluster::unregister(p.pgid);
            }
        }
        !exited
    }

    fn is_paused(&self, id: NodeId) -> bool {
        self.procs
            .lock()
            .ok()
            .and_then(|p| p[id as usize].as_ref().map(|p| p.paused))
            .unwrap_or(false)
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
    }
}
