//! The `paxos-node` command line, shared by the `paxos-node` binary and `chaos node`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;

use crate::core::{Config, Timing};
use crate::raft::{Mistake, RaftConfig, ReadMode};
use crate::shell::{ShellConfig, ShellError};
use crate::types::{Bug, NodeId};

/// A Paxos node: Basic Paxos write-once registers (`propose`) and a Multi-Paxos
/// replicated log behind a linearizable key-value store (`read`, `write`, `cas`).
///
/// Once it serves, it prints exactly one line on stdout:
/// {"ready":true,"id":ID,"listen":"HOST:PORT"}. Logs go to stderr.
#[derive(Debug, Parser)]
#[command(name = "paxos-node", version)]
pub struct NodeArgs {
    /// This node's id, 1..=N where N = 1 + the number of --peer flags.
    #[arg(long, required_unless_present = "maelstrom")]
    pub id: Option<NodeId>,

    /// Speak Maelstrom's node protocol on stdin and stdout instead of serving TCP:
    /// the id and the cluster come from the first message (`init`), peers and clients
    /// are other processes' names (docs/maelstrom.md). The same core, WAL, bugs and
    /// journal; the WAL lives in DATA_DIR/NODE_ID (default DATA_DIR: the working
    /// directory), so a node started again in the same place recovers.
    #[arg(long, conflicts_with_all = ["id", "peers"])]
    pub maelstrom: bool,

    /// Address to listen on for clients and peers; port 0 picks a free port (the
    /// ready line tells which). Only this address is bound.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: String,

    /// A peer as ID=HOST:PORT (repeatable). This node sends to peer ID only over the
    /// connection it dials to this address.
    #[arg(long = "peer", value_name = "ID=ADDR", value_parser = parse_peer)]
    pub peers: Vec<(NodeId, String)>,

    /// Directory of the write-ahead log (created if missing). Restarting with the
    /// same directory recovers every promise, acceptance and chosen entry.
    #[arg(long, required_unless_present = "maelstrom")]
    pub data_dir: Option<PathBuf>,

    /// Seed for the node's randomness (election timeouts, proposer backoff).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// Switch on a deliberate bug (repeatable), so a harness can prove it notices:
    /// forget-promises (acceptor state in memory only), accept-lower-ballot (accept
    /// below the promise), ignore-accepted (propose our own value despite reported
    /// acceptances), minority-quorum (floor(N/2) nodes make a quorum), stale-read
    /// (answer reads locally without consensus), early-ack (acknowledge writes when
    /// proposed, before they are chosen), unsynced-reply (send messages and replies
    /// before the WAL's fsync completes; only a simulated disk shows it),
    /// unsynced-snapshot (replace the WAL before the snapshot is synced; only a
    /// simulated disk shows it).
    #[arg(long = "bug", value_name = "NAME", value_parser = parse_bug)]
    pub bugs: Vec<Bug>,

    /// Test-only mistakes in the core's rarest paths (lowest-promise-wins,
    /// snapshot-skips-next, restart-drops-promise), for measuring how soon a search
    /// finds a bug it was not tuned for; hidden, and no default plan uses them.
    #[arg(long = "mistake", value_name = "NAME", hide = true, value_parser = parse_mistake)]
    pub mistakes: Vec<crate::types::Mistake>,

    /// UNSAFE, for benchmarks only: do not fsync the write-ahead log. A crash of the
    /// machine (not just the process) can then lose promises and acceptances and
    /// break consensus.
    #[arg(long)]
    pub unsafe_no_fsync: bool,

    /// A client request not answered within this many milliseconds gets an
    /// indefinite `timeout` error.
    #[arg(long, default_value_t = Timing::default().request_timeout_ms)]
    pub request_timeout_ms: u64,

    /// Write a snapshot of the state machine and drop the log before it after this
    /// many applied commands (0: never).
    #[arg(long, value_name = "N", default_value_t = Timing::default().snapshot_every)]
    pub snapshot_every: u64,

    /// Or after about this many bytes of applied commands (each its key's length
    /// plus 64), whichever comes first (0: no byte bound).
    #[arg(long, value_name = "BYTES", default_value_t = Timing::default().snapshot_bytes)]
    pub snapshot_bytes: u64,

    /// A client request that arrives when no leader is known waits about this many
    /// milliseconds for one before it is refused with `unavailable` (definite); 0
    /// refuses it at once.
    #[arg(long, value_name = "MS", default_value_t = Timing::default().leader_wait_ms)]
    pub leader_wait_ms: u64,

    /// Campaign as soon as the election timer fires, without first asking the others
    /// whether they would join (a pre-vote). For measuring what pre-votes save: a
    /// node that rejoins after a partition may then depose a healthy leader.
    #[arg(long)]
    pub no_pre_vote: bool,

    /// Minimum and maximum election timeout in milliseconds, as MIN,MAX.
    #[arg(long, value_parser = parse_range, default_value = "300,600")]
    pub election_timeout_ms: (u64, u64),

    /// Run this node's timers F times as fast as real time (0.5: half as fast, 2:
    /// twice as fast), as a skewed clock would: election timeouts, heartbeats and
    /// request timeouts all scale. Safety must hold with any rate.
    #[arg(long, value_name = "F", default_value_t = 1.0, value_parser = parse_rate)]
    pub clock_rate: f64,

    /// Append every step the protocol's rules read (promises, acceptances, proposals,
    /// records, announcements) to FILE as JSON lines, for `chaos` to judge
    /// (docs/run-directory.md). Costs one extra write per burst.
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,

    /// The journal's time origin: CLOCK_MONOTONIC nanoseconds subtracted from every
    /// time it records. The harness passes the run's start, as this flag or (to
    /// nodes it runs from a command line, as Maelstrom nodes) as the environment
    /// variable.
    #[arg(
        long,
        value_name = "NS",
        default_value_t = 0,
        env = "CHAOS_JOURNAL_ORIGIN_NS"
    )]
    pub journal_origin_ns: u64,

    /// The consensus core: `paxos` (the bundled one) or `raft-rs` (TiKV's Raft behind
    /// the same KV store; docs/cores.md). The `--raft-*` flags apply to raft-rs only.
    #[arg(long, value_name = "NAME", default_value = "paxos", value_parser = ["paxos", "raft-rs"])]
    pub core: String,

    /// raft-rs: milliseconds per tick.
    #[arg(long, value_name = "MS", default_value_t = RaftConfig::default().tick_ms, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub raft_tick_ms: u64,

    /// raft-rs: ticks without a leader before a campaign (plus a seeded hold of up to
    /// as many again).
    #[arg(long, value_name = "TICKS", default_value_t = RaftConfig::default().election_tick as u64, value_parser = clap::value_parser!(u64).range(2..=10_000))]
    pub raft_election_tick: u64,

    /// raft-rs: ticks between heartbeats (below the election tick).
    #[arg(long, value_name = "TICKS", default_value_t = RaftConfig::default().heartbeat_tick as u64, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub raft_heartbeat_tick: u64,

    /// raft-rs: whether a leader steps down without a quorum's contact.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub raft_check_quorum: bool,

    /// raft-rs: whether a node runs a pre-vote before it campaigns.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub raft_pre_vote: bool,

    /// raft-rs: how reads are confirmed: `safe` (a heartbeat round per ReadIndex) or
    /// `lease-based` (the leader's lease; needs check-quorum, trusts clocks).
    #[arg(long, value_name = "MODE", default_value = "safe", value_parser = ["safe", "lease-based"])]
    pub raft_read_only: String,

    /// raft-rs: append messages in flight per follower.
    #[arg(long, value_name = "N", default_value_t = RaftConfig::default().max_inflight as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub raft_max_inflight: u64,

    /// raft-rs, tests only: an adapter mistake the harness must catch:
    /// `apply-before-commit` or `send-before-persist`.
    #[arg(long, value_name = "NAME", value_parser = ["apply-before-commit", "send-before-persist"])]
    pub raft_mistake: Option<String>,
}

fn parse_peer(s: &str) -> Result<(NodeId, String), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=HOST:PORT, got '{s}'"))?;
    let id: NodeId = id
        .parse()
        .map_err(|_| format!("peer id '{id}' is not a positive integer"))?;
    if addr.is_empty() {
        return Err(format!("peer {id} has an empty address"));
    }
    Ok((id, addr.to_string()))
}

fn parse_bug(s: &str) -> Result<Bug, String> {
    s.parse()
}

fn parse_mistake(s: &str) -> Result<crate::types::Mistake, String> {
    s.parse()
}

fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(f) if f.is_finite() && (0.01..=100.0).contains(&f) => Ok(f),
        _ => Err(format!("'{s}' is not a clock rate in 0.01..=100")),
    }
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("expected MIN,MAX, got '{s}'"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("'{a}' is not a number"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("'{b}' is not a number"))?;
    if a == 0 || b <= a {
        return Err(format!("need 0 < MIN < MAX, got {a},{b}"));
    }
    Ok((a, b))
}

#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error("--id {id} is outside 1..={n} (N = 1 + the number of --peer flags)")]
    IdOutOfRange { id: NodeId, n: usize },
    #[error("--peer {peer}: ids must be 1..=N, distinct, and not this node's own")]
    BadPeer { peer: NodeId },
    #[error("{0}")]
    Raft(String),
}

impl NodeArgs {
    /// The node's flags from a command line (`argv[0]` first); the error is clap's
    /// message, for a harness that checks a plan's node arguments.
    pub fn parse_argv(argv: impl IntoIterator<Item = String>) -> Result<NodeArgs, String> {
        <NodeArgs as clap::Parser>::try_parse_from(argv).map_err(|e| e.to_string())
    }

    /// Checks the flags against each other and builds the shell's configuration.
    pub fn into_config(self) -> Result<ShellConfig, ArgsError> {
        let n = self.peers.len() + 1;
        let id = self.id.unwrap_or(0);
        if id == 0 || id as usize > n {
            return Err(ArgsError::IdOutOfRange { id, n });
        }
        let mut peers = BTreeMap::new();
        for (peer, addr) in &self.peers {
            let valid = *peer >= 1 && *peer as usize <= n && *peer != id;
            if !valid || peers.insert(*peer, addr.clone()).is_some() {
                return Err(ArgsError::BadPeer { peer: *peer });
            }
        }
        let data_dir = self.data_dir.clone().unwrap_or_else(|| PathBuf::from("."));
        Ok(self.config(id, n, peers, data_dir))
    }

    /// The shell's configuration for node `id` of `n`, once both are known (from the
    /// flags, or in Maelstrom mode from `init`).
    pub fn config(
        &self,
        id: NodeId,
        n: usize,
        peers: BTreeMap<NodeId, String>,
        data_dir: PathBuf,
    ) -> ShellConfig {
        let mut core = Config::new(id, n, self.seed);
        core.bugs = self.bugs.iter().copied().collect();
        core.mistakes = self.mistakes.iter().copied().collect();
        core.timing.request_timeout_ms = self.request_timeout_ms;
        core.timing.election_timeout_ms = self.election_timeout_ms;
        core.timing.leader_wait_ms = self.leader_wait_ms;
        core.timing.snapshot_every = self.snapshot_every;
        core.timing.snapshot_bytes = self.snapshot_bytes;
        core.timing.pre_vote = !self.no_pre_vote;
        ShellConfig {
            core,
            listen: self.listen.clone(),
            peers,
            data_dir,
            fsync: !self.unsafe_no_fsync,
            journal: self
                .journal
                .clone()
                .map(|path| (path, self.journal_origin_ns)),
            clock_rate: self.clock_rate,
        }
    }
}

impl NodeArgs {
    /// The raft-rs core's configuration for node `id` of `n` from these flags.
    pub fn raft_config(&self, id: NodeId, n: usize) -> Result<RaftConfig, ArgsError> {
        let cfg = RaftConfig {
            id,
            n,
            seed: self.seed,
            tick_ms: self.raft_tick_ms,
            election_tick: self.raft_election_tick as usize,
            heartbeat_tick: self.raft_heartbeat_tick as usize,
            check_quorum: self.raft_check_quorum,
            pre_vote: self.raft_pre_vote,
            read_only: if self.raft_read_only == "lease-based" {
                ReadMode::LeaseBased
            } else {
                ReadMode::Safe
            },
            max_inflight: self.raft_max_inflight as usize,
            max_size_per_msg: RaftConfig::default().max_size_per_msg,
            request_timeout_ms: self.request_timeout_ms,
            snapshot_every: self.snapshot_every,
            mistake: match self.raft_mistake.as_deref() {
                Some("apply-before-commit") => Some(Mistake::ApplyBeforeCommit),
                Some("send-before-persist") => Some(Mistake::SendBeforePersist),
                _ => None,
            },
        };
        if cfg.heartbeat_tick >= cfg.election_tick {
            return Err(ArgsError::Raft(format!(
                "--raft-heartbeat-tick {} must be below --raft-election-tick {}",
                cfg.heartbeat_tick, cfg.election_tick
            )));
        }
        if cfg.read_only == ReadMode::LeaseBased && !cfg.check_quorum {
            return Err(ArgsError::Raft(
                "--raft-read-only lease-based needs --raft-check-quorum true".into(),
            ));
        }
        Ok(cfg)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Args(#[from] ArgsError),
    #[error(transparent)]
    Shell(#[from] ShellError),
    #[error(transparent)]
    Maelstrom(#[from] crate::stdio::StdioError),
}

impl NodeError {
    /// 2 for usage errors, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            NodeError::Args(_) => 2,
            NodeError::Shell(_) | NodeError::Maelstrom(_) => 1,
        }
    }
}

/// Runs a node from parsed arguments until it is killed or fails.
pub fn run(args: NodeArgs) -> Result<(), NodeError> {
    if args.maelstrom {
        if args.core != "paxos" {
            return Err(
                ArgsError::Raft("--maelstrom runs the bundled Paxos core only".into()).into(),
            );
        }
        crate::stdio::run(args)?;
        return Ok(());
    }
    if args.core == "raft-rs" {
        let n = args.peers.len() + 1;
        let raft = args.raft_config(args.id.unwrap_or(0), n)?;
        let cfg = args.into_config()?;
        let cfg = crate::shell::ShellConfig {
            core: raft,
            listen: cfg.listen,
            peers: cfg.peers,
            data_dir: cfg.data_dir,
            fsync: cfg.fsync,
            // The journal speaks the bundled node's rules: raft-rs keeps none.
            journal: None,
            clock_rate: cfg.clock_rate,
        };
        crate::shell::run::<crate::raft::RaftCore>(cfg)?;
        return Ok(());
    }
    let cfg = args.into_config()?;
    crate::shell::run::<crate::core::Node>(cfg)?;
    Ok(())
}
