//! The system seam: what the engine needs from a system under test.
//!
//! The engine (plan -> run -> history -> judge -> report) is written once, against
//! [`System`] and [`Client`]. A system says how to start node i and know it is ready,
//! how to kill, pause, resume and restart it ([`nemesis::Nodes`]), how the network
//! between its nodes is arranged and cut ([`System::links`]), how a client turns a
//! workload op into a request and the reply into ok / fail / info ([`Client`]), and
//! how to fetch what each node learned at the end ([`System::dump`], optional).
//!
//! - [`node::NodeSystem`]: the bundled Paxos node (or any `--node-bin` speaking its
//!   protocols), as real processes behind a per-link proxy.
//! - [`maelstrom::MaelstromSystem`]: any node speaking Maelstrom's protocol over
//!   stdio (`--node-cmd`), with the harness as its network and its services.
//! - [`declared::DeclaredSystem`]: any system declared in a file (`--system FILE`,
//!   docs/systems.md), etcd among them (`--system etcd`, [`etcd`], docs/etcd.md).
//!
//! A new kind of system (nodes over stdio, a kernel-level network, a simulated
//! cluster) is one [`Launcher`] plus one [`System`] and [`Client`] implementation;
//! the workload, the nemesis, the history, the checks and the report stay as they are.
//! `tests/system_seam.rs` runs the engine on an in-memory toy system to keep the seam
//! honest.

pub mod declared;
pub mod etcd;
pub mod maelstrom;
pub mod node;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nemesis::net::LinkStats;
use results::Plan;

use crate::recorder::Recorder;

pub use crate::vocab::{
    CLIENT_TIMEOUT, CONNECTION_BROKEN, Completion, Failure, MALFORMED_REPLY, NodeId, UNAVAILABLE,
    WorkloadOp,
};

/// A client connection to one node, one op at a time.
pub trait Client: Send + 'static {
    /// Sends `op` and waits up to `timeout` for its reply.
    fn call(
        &mut self,
        op: &WorkloadOp,
        timeout: Duration,
    ) -> impl Future<Output = Completion> + Send;
}

/// A system under test. Methods that act on processes block (the engine calls them
/// off the async workers); the rest are cheap or async.
pub trait System: nemesis::Nodes + Send + Sync + 'static {
    type Client: Client;

    /// The number of nodes, with ids 1..=n.
    fn nodes(&self) -> usize;

    /// Starts node `id` on its own data and waits until it is ready. The error says
    /// whose failure it is: the harness's (it could not spawn the program) or the
    /// system's (the node exited or never became ready).
    fn start(&self, id: NodeId) -> Result<(), Failure>;

    /// Whether node `id` is alive (paused counts as alive).
    fn is_running(&self, id: NodeId) -> bool;

    fn is_paused(&self, id: NodeId) -> bool;

    /// Whether a clock fault left node `id`'s clock off real speed (the final heal
    /// then resets it through [`nemesis::Nodes::set_clock`]).
    fn clock_skewed(&self, _id: NodeId) -> bool {
        false
    }

    /// Where network faults are made.
    fn links(&self) -> &dyn nemesis::Links;

    /// A client connection to node `id`, or `None` when it cannot be reached now.
    fn connect(&self, id: NodeId) -> impl Future<Output = Option<Self::Client>> + Send;

    /// Writes what node `id` learned (its final dump, docs/protocol.md) to `path`.
    /// `Ok(false)`: this system has no dumps (log agreement is then skipped). A
    /// node that gives none is [`Blame::System`](crate::vocab::Blame); a dump that
    /// cannot be written is [`Blame::Harness`](crate::vocab::Blame) (the run then
    /// ends as a harness failure).
    fn dump(
        &self,
        _id: NodeId,
        _path: &Path,
        _timeout: Duration,
    ) -> impl Future<Output = Result<bool, Failure>> + Send {
        async { Ok(false) }
    }

    /// Who leads, by the running nodes' own account, for faults aimed by role.
    fn leader(&self) -> impl Future<Output = nemesis::LeaderView> + Send {
        async { nemesis::LeaderView::unknown("this system does not say who leads") }
    }

    /// Kills every node. Called on every exit path; safe to call twice.
    fn shutdown(&self);

    /// Message counts per directed link, when the network layer counts them.
    fn link_stats(&self) -> Vec<LinkStats> {
        Vec::new()
    }

    /// The system's name and version, when it is not the bundled node ("etcd
    /// 3.4.23"), for result.json and the report.
    fn version(&self) -> Option<String> {
        None
    }

    /// Makes the message trace durable, when there is one.
    fn flush_trace(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How clients reach nodes: directly, or from the hub of a namespace network (a node
/// in a namespace of its own is not reachable from the harness's).
#[derive(Clone)]
pub enum Dialer {
    Local,
    Netns(Arc<nemesis::netns::NetnsNetwork>),
}

impl Dialer {
    /// A TCP connection to `addr` within `timeout`, or `None`.
    pub async fn connect(
        &self,
        addr: std::net::SocketAddr,
        timeout: Duration,
    ) -> Option<tokio::net::TcpStream> {
        match self {
            Dialer::Local => tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr))
                .await
                .ok()?
                .ok(),
            Dialer::Netns(net) => {
                let net = net.clone();
                let s = tokio::task::spawn_blocking(move || net.connect(addr, timeout))
                    .await
                    .ok()?
                    .ok()?;
                s.set_nonblocking(true).ok()?;
                tokio::net::TcpStream::from_std(s).ok()
            }
        }
    }
}

/// Makes a namespace network for a run and records it in the run directory's
/// net.json (addresses, namespace inodes, set-up time).
pub fn netns_network(
    nodes: usize,
    run_dir: &Path,
) -> Result<Arc<nemesis::netns::NetnsNetwork>, String> {
    let net = nemesis::netns::NetnsNetwork::create(nodes).map_err(|e| e.to_string())?;
    let text = serde_json::to_string_pretty(&net.describe()).unwrap_or_default();
    results::store::write_whole(&run_dir.join("net.json"), text + "\n")
        .map_err(|e| format!("cannot write net.json: {e}"))?;
    Ok(Arc::new(net))
}

/// Makes a system for a plan: sets up its network and data, starts nothing yet.
pub trait Launcher {
    type System: System;

    fn launch(
        &self,
        plan: &Plan,
        run_dir: &Path,
        recorder: &Arc<Recorder>,
    ) -> impl Future<Output = Result<Self::System, Failure>> + Send;
}
