//! The kernel backend of the network (`--net netns`): every node in a network
//! namespace of its own, with an address on a bridge, and partitions and link loss
//! made by nftables rules in the receiving node's namespace. For systems that
//! advertise one address to all their peers, where a per-link proxy cannot sit.
//!
//! Layout: a hub namespace holds a bridge `br0` (10.77.0.254/24); node `i`'s
//! namespace has `eth0` = 10.77.0.`i`/24, the other end of a veth pair whose hub end is
//! on the bridge. Clients (the harness) connect from the hub: sockets made by a thread
//! that entered the hub namespace stay in it ([`NetnsNetwork::connect`]). Every run
//! has namespaces of its own, so runs side by side never meet, and only loopback and
//! these addresses are ever used.
//!
//! The namespaces have no names: they are held by file descriptors of this process
//! and by the processes inside them. When the harness ends, on any path (SIGKILL
//! included: its descriptors close and its nodes get their parent-death signal), the
//! kernel removes each namespace with its interfaces, bridge and rules. Nothing is
//! created in the namespace the harness runs in.
//!
//! Rules: node `j`'s namespace has `table inet chaos` with an input chain; a cut link
//! `(i, j)` is `ip saddr 10.77.0.i drop`, a lossy one `ip saddr 10.77.0.i numgen
//! random mod 1000 < P drop`. Each change rewrites the chains that changed, each with
//! one `nft -f` (atomic per node). This kernel has no `sch_netem`, so delay,
//! duplication and reordering are the proxy backend's alone ([`OFFERS`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::{FaultError, LinkFaults, NodeId};

/// What this backend can do, for `--help`, the docs and plan checks.
pub const OFFERS: &str = "partitions of every shape (one-way included) and link loss";
/// What it cannot, and why.
pub const LACKS: &str =
    "delay, duplication and reordering (this kernel has no sch_netem; use --net proxy)";

/// The hub's address: where clients connect from.
pub const HUB_ADDR: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 254);

/// Node `id`'s address.
pub fn node_addr(id: NodeId) -> Ipv4Addr {
    Ipv4Addr::new(10, 77, 0, id as u8)
}

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error(
        "--net netns needs `{0}`, which is not installed: apt-get install {1} (Debian), or use --net proxy"
    )]
    Missing(&'static str, &'static str),
    #[error(
        "cannot make a network namespace ({0}); --net netns needs root, or an unprivileged user namespace (unshare -Urn)"
    )]
    Unshare(String),
    #[error("{what}: {why}")]
    Command { what: String, why: String },
    #[error("at most 250 nodes in a namespace network")]
    TooMany,
}

type DialRequest = (
    SocketAddr,
    Duration,
    mpsc::Sender<std::io::Result<TcpStream>>,
);

/// The namespaces, bridge and rules of one run.
pub struct NetnsNetwork {
    n: usize,
    hub: OwnedFd,
    /// Index 0 unused.
    nodes: Vec<Option<OwnedFd>>,
    dial: Mutex<mpsc::Sender<DialRequest>>,
    rules: Mutex<Rules>,
    /// How long setting up took.
    pub setup: Duration,
}

#[derive(Default, Clone, PartialEq)]
struct Rules {
    cut: BTreeSet<(NodeId, NodeId)>,
    /// Loss per directed link, in thousandths.
    loss: BTreeMap<(NodeId, NodeId), u32>,
    /// A rewrite failed, so what is in force is unknown: rewrite every chain next.
    stale: bool,
}

impl Rules {
    /// Node `to`'s input chain.
    fn chain_of(&self, to: NodeId) -> Vec<String> {
        let mut rules = Vec::new();
        for &(a, b) in &self.cut {
            if b == to {
                rules.push(format!("ip saddr {} drop", node_addr(a)));
            }
        }
        for (&(a, b), &p) in &self.loss {
            if b == to && !self.cut.contains(&(a, b)) {
                rules.push(format!(
                    "ip saddr {} numgen random mod 1000 < {p} drop",
                    node_addr(a)
                ));
            }
        }
        rules
    }
}

/// Checks that a program is on PATH.
fn require(program: &'static str, package: &'static str) -> Result<(), NetnsError> {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
        || ["/usr/sbin", "/sbin"]
            .iter()
            .any(|d| std::path::Path::new(d).join(program).is_file());
    if found {
        Ok(())
    } else {
        Err(NetnsError::Missing(program, package))
    }
}

/// Whether this machine can make a namespace network (the tools are installed and a
/// namespace can be made); `Err` says why not.
pub fn available() -> Result<(), NetnsError> {
    require("ip", "iproute2")?;
    require("nft", "nftables")?;
    new_namespace().map(drop)
}

/// A new, empty network namespace, held by the returned descriptor only.
fn new_namespace() -> Result<OwnedFd, NetnsError> {
    // A thread of its own enters it, so this thread keeps its namespace; when that
    // thread ends, the descriptor is what holds the namespace.
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetnsError::Unshare(e.to_string()))?;
        File::open("/proc/thread-self/ns/net")
            .map(OwnedFd::from)
            .map_err(|e| NetnsError::Unshare(e.to_string()))
    })
    .join()
    .unwrap_or_else(|_| Err(NetnsError::Unshare("the thread panicked".into())))
}

/// Makes `cmd` run inside the namespace `ns` (entered between fork and exec).
pub fn enter(cmd: &mut Command, ns: &OwnedFd) {
    let fd = ns.as_raw_fd();
    // SAFETY: setns is a plain system call, async-signal-safe; the descriptor stays
    // open in the parent for as long as the namespace is used.
    unsafe {
        cmd.pre_exec(move || {
            let ns = std::os::fd::BorrowedFd::borrow_raw(fd);
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)
        });
    }
}

/// Runs `program` inside `ns` with `input` on its stdin; `Err` names what failed.
fn run_in(ns: &OwnedFd, program: &str, args: &[&str], input: &str) -> Result<(), NetnsError> {
    start_in(ns, program, args, input)?.wait()
}

/// A command started in a namespace, to be waited for.
struct Started {
    child: std::process::Child,
    what: String,
}

impl Started {
    fn wait(self) -> Result<(), NetnsError> {
        let what = self.what;
        let out = self
            .child
            .wait_with_output()
            .map_err(|e| NetnsError::Command {
                what: what.clone(),
                why: e.to_string(),
            })?;
        if out.status.success() {
            Ok(())
        } else {
            Err(NetnsError::Command {
                what,
                why: format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            })
        }
    }
}

/// Starts `program` inside `ns` and writes `input` to its stdin.
fn start_in(
    ns: &OwnedFd,
    program: &str,
    args: &[&str],
    input: &str,
) -> Result<Started, NetnsError> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    enter(&mut cmd, ns);
    let what = format!("{program} {}", args.join(" "));
    let fail = |why: String| NetnsError::Command {
        what: what.clone(),
        why,
    };
    let mut child = cmd.spawn().map_err(|e| fail(e.to_string()))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(Started { child, what })
}

/// A path another process can open to reach `fd` of this one.
fn fd_path(fd: &OwnedFd) -> String {
    format!("/proc/{}/fd/{}", std::process::id(), fd.as_raw_fd())
}

impl NetnsNetwork {
    /// Makes the hub, a namespace per node, the bridge and the veths, with empty rule
    /// chains.
    pub fn create(n: usize) -> Result<NetnsNetwork, NetnsError> {
        if n > 250 {
            return Err(NetnsError::TooMany);
        }
        require("ip", "iproute2")?;
        require("nft", "nftables")?;
        let started = Instant::now();
        let hub = new_namespace()?;
        let mut nodes = vec![None];
        let mut hub_batch = format!(
            "link set lo up\nlink add br0 type bridge\naddr add {HUB_ADDR}/24 dev br0\nlink set br0 up\n"
        );
        for id in 1..=n as NodeId {
            let ns = new_namespace()?;
            hub_batch.push_str(&format!(
                "link add h{id} type veth peer name eth0 netns {}\nlink set h{id} master br0\nlink set h{id} up\n",
                fd_path(&ns)
            ));
            nodes.push(Some(ns));
        }
        run_in(&hub, "ip", &["-batch", "-"], &hub_batch)?;
        for (id, ns) in nodes.iter().enumerate().skip(1) {
            let ns = ns.as_ref().expect("made above");
            let batch = format!(
                "link set lo up\naddr add {}/24 dev eth0\nlink set eth0 up\n",
                node_addr(id as NodeId)
            );
            run_in(ns, "ip", &["-batch", "-"], &batch)?;
            run_in(
                ns,
                "nft",
                &["-f", "-"],
                "table inet chaos {\n chain input {\n  type filter hook input priority 0; policy accept;\n }\n}\n",
            )?;
        }
        let dial = dialer(&hub)?;
        Ok(NetnsNetwork {
            n,
            hub,
            nodes,
            dial: Mutex::new(dial),
            rules: Mutex::new(Rules::default()),
            setup: started.elapsed(),
        })
    }

    pub fn nodes(&self) -> usize {
        self.n
    }

    /// Node `id`'s namespace, to start its processes in ([`enter`]).
    pub fn namespace(&self, id: NodeId) -> Option<&OwnedFd> {
        self.nodes.get(id as usize)?.as_ref()
    }

    /// The hub's namespace.
    pub fn hub(&self) -> &OwnedFd {
        &self.hub
    }

    /// The namespaces' inode numbers (what `/proc/PID/ns/net` of a process inside
    /// names as `net:[INODE]`): the hub's, then node 1's, 2's, ...
    pub fn inodes(&self) -> Vec<u64> {
        use std::os::unix::fs::MetadataExt;
        std::iter::once(&self.hub)
            .chain(self.nodes.iter().flatten())
            .map(|fd| {
                std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                    .map(|m| m.ino())
                    .unwrap_or(0)
            })
            .collect()
    }

    /// What a run directory records of this network (net.json, docs/netns.md).
    pub fn describe(&self) -> serde_json::Value {
        let inodes = self.inodes();
        serde_json::json!({
            "backend": "netns",
            "hub": {"address": HUB_ADDR.to_string(), "namespace": inodes.first()},
            "nodes": (1..=self.n as NodeId).map(|id| serde_json::json!({
                "id": id,
                "address": node_addr(id).to_string(),
                "namespace": inodes.get(id as usize),
            })).collect::<Vec<_>>(),
            "setup_ms": self.setup.as_secs_f64() * 1e3,
        })
    }

    /// A TCP connection from the hub to `addr` (a node's address), made within
    /// `timeout`.
    pub fn connect(&self, addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
        let (tx, rx) = mpsc::channel();
        self.dial
            .lock()
            .map_err(|_| std::io::Error::other("dialer lock poisoned"))?
            .send((addr, timeout, tx))
            .map_err(|_| std::io::Error::other("the dialer thread is gone"))?;
        rx.recv_timeout(timeout + Duration::from_secs(1))
            .map_err(|_| std::io::Error::other("the dialer did not answer"))?
    }

    /// Rewrites the input chains that `change` alters, all nodes at once (a chain's
    /// rewrite waits for the kernel to retire the old rules: in parallel those waits
    /// overlap); how long the rule change took.
    fn change(&self, change: impl FnOnce(&mut Rules)) -> Result<Duration, String> {
        let started = Instant::now();
        let mut rules = self.rules.lock().map_err(|_| "rules lock poisoned")?;
        let before = rules.clone();
        change(&mut rules);
        let mut running = Vec::new();
        let mut failed = None;
        for id in 1..=self.n as NodeId {
            let chain = rules.chain_of(id);
            if chain == before.chain_of(id) && !before.stale {
                continue;
            }
            let mut script = String::from("flush chain inet chaos input\n");
            for r in chain {
                script.push_str(&format!("add rule inet chaos input {r}\n"));
            }
            let ns = self.namespace(id).ok_or("no such node")?;
            match start_in(ns, "nft", &["-f", "-"], &script) {
                Ok(s) => running.push(s),
                Err(e) => {
                    failed = Some(e.to_string());
                    break;
                }
            }
        }
        for s in running {
            if let Err(e) = s.wait() {
                failed.get_or_insert(e.to_string());
            }
        }
        rules.stale = failed.is_some();
        match failed {
            Some(e) => Err(e),
            None => Ok(started.elapsed()),
        }
    }

    /// The rules in force on node `id` (`nft list chain`), for tests and debugging.
    pub fn list(&self, id: NodeId) -> Result<String, String> {
        let ns = self.namespace(id).ok_or("no such node")?;
        let mut cmd = Command::new("nft");
        cmd.args(["list", "chain", "inet", "chaos", "input"]);
        enter(&mut cmd, ns);
        let out = cmd.output().map_err(|e| e.to_string())?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

/// A thread in the hub namespace that makes client connections there.
fn dialer(hub: &OwnedFd) -> Result<mpsc::Sender<DialRequest>, NetnsError> {
    let hub = hub
        .try_clone()
        .map_err(|e| NetnsError::Unshare(e.to_string()))?;
    let (tx, rx) = mpsc::channel::<DialRequest>();
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("netns-dialer".into())
        .spawn(move || {
            let entered = nix::sched::setns(&hub, nix::sched::CloneFlags::CLONE_NEWNET);
            drop(hub);
            let _ = ready_tx.send(entered.map_err(|e| e.to_string()));
            for (addr, timeout, reply) in rx {
                let _ = reply.send(TcpStream::connect_timeout(&addr, timeout));
            }
        })
        .map_err(|e| NetnsError::Unshare(e.to_string()))?;
    ready_rx
        .recv()
        .map_err(|_| NetnsError::Unshare("the dialer thread died".into()))?
        .map_err(NetnsError::Unshare)?;
    Ok(tx)
}

/// The kernel backend makes partitions and loss; it refuses what it cannot make.
impl crate::Links for NetnsNetwork {
    fn cut(&self, links: &[(NodeId, NodeId)]) -> Result<(), FaultError> {
        self.change(|r| r.cut = links.iter().copied().collect())
            .map(drop)
            .map_err(FaultError::Unknown)
    }
    fn heal(&self) -> Result<(), FaultError> {
        self.change(|r| r.cut.clear())
            .map(drop)
            .map_err(FaultError::Unknown)
    }
    fn degrade(&self, targets: &[NodeId], faults: &LinkFaults) -> Result<(), FaultError> {
        if faults.delay_ms > 0
            || faults.jitter_ms > 0
            || faults.duplicate > 0.0
            || faults.reorder > 0.0
        {
            return Err(FaultError::Cannot(format!(
                "the netns backend cannot make {LACKS}"
            )));
        }
        let per_mille = (faults.loss * 1000.0).round().clamp(0.0, 1000.0) as u32;
        let n = self.n as NodeId;
        self.change(|r| {
            for a in 1..=n {
                for b in 1..=n {
                    if a != b && (targets.contains(&a) || targets.contains(&b)) {
                        r.loss.insert((a, b), per_mille);
                    }
                }
            }
        })
        .map(drop)
        .map_err(FaultError::Unknown)
    }
    fn restore(&self) -> Result<(), FaultError> {
        self.change(|r| r.loss.clear())
            .map(drop)
            .map_err(FaultError::Unknown)
    }
}

/// Whether a link fault can be made by the kernel backend (loss only).
pub fn can_make(faults: &LinkFaults) -> bool {
    faults.delay_ms == 0
        && faults.jitter_ms == 0
        && faults.duplicate == 0.0
        && faults.reorder == 0.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Links;

    #[test]
    fn chains_hold_cuts_and_loss_of_the_links_into_a_node() {
        let mut r = Rules::default();
        r.cut.insert((1, 2));
        r.cut.insert((2, 1));
        r.loss.insert((3, 2), 250);
        r.loss.insert((1, 2), 500);
        assert_eq!(
            r.chain_of(2),
            vec![
                "ip saddr 10.77.0.1 drop".to_string(),
                "ip saddr 10.77.0.3 numgen random mod 1000 < 250 drop".to_string(),
            ]
        );
        assert_eq!(r.chain_of(3), Vec::<String>::new());
    }

    /// Real namespaces, when this machine can make them (root, ip and nft).
    #[test]
    fn a_namespace_network_connects_cuts_and_heals() {
        if let Err(e) = available() {
            println!("skipped: {e}");
            return;
        }
        let net = NetnsNetwork::create(2).unwrap();
        // A listener in node 1's namespace, reached from the hub.
        let listener = std::thread::spawn({
            let ns = net.namespace(1).unwrap().try_clone().unwrap();
            move || {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
                let l = std::net::TcpListener::bind((node_addr(1), 7000)).unwrap();
                let (mut s, _) = l.accept().unwrap();
                s.write_all(b"hello").unwrap();
            }
        });
        let addr = SocketAddr::from((node_addr(1), 7000));
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut s = loop {
            match net.connect(addr, Duration::from_millis(500)) {
                Ok(s) => break s,
                Err(e) => assert!(Instant::now() < deadline, "{e}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut got = String::new();
        std::io::Read::read_to_string(&mut s, &mut got).unwrap();
        assert_eq!(got, "hello");
        listener.join().unwrap();
        // Rules go in and out.
        net.cut(&[(1, 2)]).unwrap();
        assert!(net.list(2).unwrap().contains("ip saddr 10.77.0.1 drop"));
        assert!(!net.list(1).unwrap().contains("drop"));
        net.degrade(
            &[1],
            &LinkFaults {
                loss: 0.2,
                ..LinkFaults::default()
            },
        )
        .unwrap();
        assert!(
            net.list(1)
                .unwrap()
                .contains("numgen random mod 1000 < 200 drop")
        );
        let refused = net.degrade(
            &[1],
            &LinkFaults {
                duplicate: 0.1,
                ..LinkFaults::default()
            },
        );
        assert!(
            matches!(&refused, Err(FaultError::Cannot(why)) if why.contains("sch_netem")),
            "{refused:?}"
        );
        net.heal().unwrap();
        net.restore().unwrap();
        assert!(!net.list(1).unwrap().contains("drop"));
        assert!(!net.list(2).unwrap().contains("drop"));
    }
}
