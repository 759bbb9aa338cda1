//! The tokio shell: runs one [`Node`] core as a real TCP server.
//!
//! One task (the loop in [`Server::run`]) owns the core and the WAL. It takes a burst
//! of inputs (client requests, peer messages, due timers), steps the core for each,
//! appends every `Persist` of the burst to the WAL and syncs once (group commit), and
//! only then sends the burst's messages and replies ([`crate::commit`], shared with
//! the simulation). That keeps the core's contract
//! (no send or reply before the persist it depends on) at one fsync per burst.
//!
//! Around it:
//! - a listener accepting both clients and peers on `--listen`: a connection whose
//!   first line is `{"hello":i}` is peer i's, anything else is a client's;
//! - one dialer task per peer j, which connects to the address `--peer j=ADDR` names,
//!   says hello, and writes this node's messages for j. A node sends to j only on the
//!   connection it dialed and never on one it accepted (docs/protocol.md), so a proxy on
//!   each directed link sees every message of that link. Dialers reconnect with
//!   exponential backoff.
//!
//! Every queue is bounded: a full peer queue drops the message (the protocol treats
//! that as loss), a full input queue slows readers down, and a client that does not
//! read its replies is disconnected.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::client::{
    MAX_LINE_BYTES, Request, encode_dump, encode_error, encode_result, encode_status, parse_request,
};
use crate::commit::{self, Effect, Step};
use crate::core::{Config, Node, Record};
use crate::journal::Journal;
use crate::msg::PeerMessage;
use crate::rules;
use crate::seam::{Actions, Core, Event, EventOf, Wire};
use crate::types::{Batch, ErrorCode, NodeId, OpResult, Slot};
use crate::wal::{Wal, WalError};

/// Peer lines may carry catch-up batches and phase-1 reports: larger than client lines.
pub const MAX_PEER_LINE_BYTES: usize = 64 << 20;
pub(crate) const INPUT_QUEUE: usize = 65_536;
pub(crate) const PEER_QUEUE: usize = 16_384;
pub(crate) const CLIENT_QUEUE: usize = 65_536;
const MAX_BURST: usize = 4_096;

/// Everything the shell needs to run a node; `K` is its core's configuration.
#[derive(Clone, Debug)]
pub struct ShellConfig<K = Config> {
    pub core: K,
    pub listen: String,
    /// Peer id -> the address to dial for it.
    pub peers: BTreeMap<NodeId, String>,
    pub data_dir: PathBuf,
    /// `false` only with `--unsafe-no-fsync`.
    pub fsync: bool,
    /// Where to journal the steps the protocol's rules read, and the time origin.
    pub journal: Option<(PathBuf, u64)>,
    /// How fast this node's timers run against real time (`--clock-rate`).
    pub clock_rate: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum ShellError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: io::Error,
    },
    #[error("cannot write to stdout: {0}")]
    Stdout(#[source] io::Error),
    #[error("cannot start the runtime: {0}")]
    Runtime(#[source] io::Error),
    #[error("cannot write the journal {path}: {source}")]
    Journal {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

pub(crate) enum Input<M = PeerMessage> {
    Peer {
        from: NodeId,
        msg: M,
    },
    Client {
        out: mpsc::Sender<String>,
        id: u64,
        request: Request,
    },
    /// An op whose result is wanted as it is, not as a line of the client protocol
    /// (the stdio transport writes its own replies).
    Op {
        out: mpsc::Sender<(u64, OpResult)>,
        id: u64,
        op: crate::types::ClientOp,
    },
}

/// Where a pending op's result goes.
enum ReplyTo {
    /// A line of the client protocol, with the request's id.
    Line(mpsc::Sender<String>, u64),
    /// The result itself, with the caller's id.
    Result(mpsc::Sender<(u64, OpResult)>, u64),
}

/// What the shell needs of a core beyond the seam: its answers to `status` and
/// `dump`, and (the bundled node's) the steps its journal records for the protocol's
/// rules.
pub trait ShellCore: Core<Msg: PartialEq + Send + Sync + 'static> {
    fn node_id(cfg: &Self::Config) -> NodeId;
    fn cluster_size(cfg: &Self::Config) -> usize;
    /// The `status` reply to request `id`.
    fn status_line(&self, id: u64) -> String;
    /// The `dump` reply to request `id`.
    fn dump_line(&self, id: u64) -> String;
    /// What a restart recovered, for the log.
    fn recovered(&self) -> String;
    /// The steps of `actions` the journal records (none for a core whose rules the
    /// journal does not speak).
    fn journal_step(
        _id: NodeId,
        _actions: &Actions<Self>,
        _note: &mut dyn FnMut(paxos_trace::Event),
    ) {
    }
    fn journal_received(
        _id: NodeId,
        _from: NodeId,
        _msg: &Self::Msg,
    ) -> Option<paxos_trace::Event> {
        None
    }
    fn journal_sent(_id: NodeId, _to: NodeId, _msg: &Self::Msg) -> Option<paxos_trace::Event> {
        None
    }
    fn journal_chosen(_record: &Self::Record) -> Option<(Slot, &Batch)> {
        None
    }
}

impl ShellCore for Node {
    fn node_id(cfg: &Config) -> NodeId {
        cfg.id
    }

    fn cluster_size(cfg: &Config) -> usize {
        cfg.n
    }

    fn status_line(&self, id: u64) -> String {
        encode_status(id, &self.status())
    }

    fn dump_line(&self, id: u64) -> String {
        encode_dump(
            id,
            self.id(),
            self.registers(),
            self.chosen_log().iter(),
            self.commit_index(),
            self.snapshot(),
        )
    }

    fn recovered(&self) -> String {
        format!(
            "incarnation {}, commit index {}, {} registers",
            self.incarnation(),
            self.commit_index(),
            self.registers().len()
        )
    }

    fn journal_step(id: NodeId, actions: &Actions<Node>, note: &mut dyn FnMut(paxos_trace::Event)) {
        rules::step_events(id, actions, note);
    }

    fn journal_received(id: NodeId, from: NodeId, msg: &PeerMessage) -> Option<paxos_trace::Event> {
        rules::received(from, id, msg)
    }

    fn journal_sent(id: NodeId, to: NodeId, msg: &PeerMessage) -> Option<paxos_trace::Event> {
        rules::sent(id, to, msg)
    }

    fn journal_chosen(record: &Record) -> Option<(Slot, &Batch)> {
        match record {
            Record::LogChosen { slot, batch } => Some((*slot, batch)),
            _ => None,
        }
    }
}

/// Runs the node until the process is killed or a fatal error (WAL I/O) occurs.
pub fn run<C: ShellCore>(cfg: ShellConfig<C::Config>) -> Result<(), ShellError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(ShellError::Runtime)?;
    runtime.block_on(serve::<C>(cfg))
}

/// Opens a node's WAL and journal and starts its core: everything a transport needs
/// before it serves. `peers` carries each peer's serialized messages to the
/// transport (TCP dialers, or stdout in Maelstrom mode); the returned actions are the
/// core's first, for [`Server::execute`].
pub(crate) fn open_server<C: ShellCore>(
    cfg: &ShellConfig<C::Config>,
    peers: BTreeMap<NodeId, mpsc::Sender<Arc<str>>>,
) -> Result<(Server<C>, Actions<C>), ShellError> {
    let id = C::node_id(&cfg.core);
    let (wal, recovery) = Wal::open(&cfg.data_dir, cfg.fsync)?;
    if let Some((offset, bytes)) = recovery.torn_tail {
        log(
            id,
            &format!(
                "discarded a torn final record of {bytes} bytes at offset {offset} of {}",
                recovery
                    .torn_file
                    .as_deref()
                    .unwrap_or(wal.path())
                    .display()
            ),
        );
    }
    let n_records = recovery.records.len();
    let mut journal = match &cfg.journal {
        Some((path, origin)) => {
            Some(
                Journal::open(path, *origin).map_err(|source| ShellError::Journal {
                    path: path.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    let snapshot = crate::wal::read_snapshot(&cfg.data_dir)?;
    let (node, start_actions) = C::start(cfg.core.clone(), snapshot, recovery.records);
    if let Some(j) = &mut journal {
        j.note(paxos_trace::Event::Restart { node: id });
        C::journal_step(id, &start_actions, &mut |e| j.note(e));
    }
    log(
        id,
        &format!("recovered {n_records} records; {}", node.recovered()),
    );
    let server = Server {
        node,
        wal,
        timers: Timers::default(),
        peers,
        pending: BTreeMap::new(),
        next_token: 0,
        deferred: Vec::new(),
        effects_first: C::effects_before_sync(&cfg.core),
        unsynced_snapshot: C::unsynced_snapshot(&cfg.core),
        id,
        journal,
        clock_rate: cfg.clock_rate,
    };
    Ok((server, start_actions))
}

async fn serve<C: ShellCore>(cfg: ShellConfig<C::Config>) -> Result<(), ShellError> {
    let id = C::node_id(&cfg.core);
    let listener = TcpListener::bind(&cfg.listen)
        .await
        .map_err(|source| ShellError::Bind {
            addr: cfg.listen.clone(),
            source,
        })?;
    let local = listener.local_addr().map_err(|source| ShellError::Bind {
        addr: cfg.listen.clone(),
        source,
    })?;

    let (tx, rx) = mpsc::channel(INPUT_QUEUE);
    let mut peers = BTreeMap::new();
    for (&peer, addr) in &cfg.peers {
        let (ptx, prx) = mpsc::channel(PEER_QUEUE);
        tokio::spawn(dial_peer(id, peer, addr.clone(), prx));
        peers.insert(peer, ptx);
    }
    let (mut server, start_actions) = open_server::<C>(&cfg, peers)?;
    let n = C::cluster_size(&cfg.core);
    tokio::spawn(accept_loop::<C::Msg>(listener, id, n, tx.clone()));
    server.execute(start_actions)?;

    // The ready line: exactly one line on stdout, once the node serves.
    let ready = format!(r#"{{"ready":true,"id":{id},"listen":"{local}"}}"#);
    {
        use std::io::Write;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{ready}").map_err(ShellError::Stdout)?;
        stdout.flush().map_err(ShellError::Stdout)?;
    }
    server.run(rx, tx).await
}

pub(crate) struct Server<C: ShellCore> {
    node: C,
    wal: Wal,
    timers: Timers<C::Timer>,
    peers: BTreeMap<NodeId, mpsc::Sender<Arc<str>>>,
    /// Core token -> where and under which request id to answer.
    pending: BTreeMap<u64, ReplyTo>,
    next_token: u64,
    /// Replies produced outside the core (status, dump), sent after the burst's sync.
    deferred: Vec<(mpsc::Sender<String>, String)>,
    /// The core's test-only mistakes of order ([`Core::effects_before_sync`]).
    effects_first: bool,
    unsynced_snapshot: bool,
    id: NodeId,
    journal: Option<Journal>,
    clock_rate: f64,
}

impl<C: ShellCore> Server<C> {
    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<Input<C::Msg>>,
        // Held so that `rx` never reports closed.
        _tx: mpsc::Sender<Input<C::Msg>>,
    ) -> Result<(), ShellError> {
        loop {
            let first = match self.timers.next_deadline() {
                Some(at) => tokio::select! {
                    input = rx.recv() => input,
                    _ = tokio::time::sleep_until(at) => None,
                },
                None => rx.recv().await,
            };
            let mut actions = Vec::new();
            if let Some(input) = first {
                self.handle(input, &mut actions);
                for _ in 0..MAX_BURST {
                    match rx.try_recv() {
                        Ok(input) => self.handle(input, &mut actions),
                        Err(_) => break,
                    }
                }
            }
            for timer in self.timers.pop_due(Instant::now()) {
                self.step(Event::Timer(timer), &mut actions);
            }
            self.execute(actions)?;
        }
    }

    /// Steps the core with one event, journaling what the rules read of it.
    fn step(&mut self, event: EventOf<C>, actions: &mut Actions<C>) {
        let Some(journal) = &mut self.journal else {
            actions.extend(self.node.step(event));
            return;
        };
        if let Event::Peer { from, msg } = &event {
            if let Some(e) = C::journal_received(self.id, *from, msg) {
                journal.note(e);
            }
        }
        let stepped = self.node.step(event);
        C::journal_step(self.id, &stepped, &mut |e| journal.note(e));
        actions.extend(stepped);
    }

    /// Hands a client op to the core; its result goes to `to`.
    fn op(&mut self, to: ReplyTo, op: crate::types::ClientOp, actions: &mut Actions<C>) {
        let token = self.next_token;
        self.next_token += 1;
        self.pending.insert(token, to);
        self.step(Event::Client { token, op }, actions);
    }

    fn handle(&mut self, input: Input<C::Msg>, actions: &mut Actions<C>) {
        match input {
            Input::Peer { from, msg } => self.step(Event::Peer { from, msg }, actions),
            Input::Op { out, id, op } => self.op(ReplyTo::Result(out, id), op, actions),
            Input::Client { out, id, request } => match request {
                Request::Op(op) => self.op(ReplyTo::Line(out, id), op, actions),
                Request::Status => {
                    let line = self.node.status_line(id);
                    self.deferred.push((out, line));
                }
                Request::Dump => {
                    let line = self.node.dump_line(id);
                    self.deferred.push((out, line));
                }
            },
        }
    }

    /// Carries out a burst's actions in the order [`commit::order`] gives (records,
    /// one sync, then sends, replies and timers): the same code the simulation runs.
    pub(crate) fn execute(&mut self, actions: Actions<C>) -> Result<(), ShellError> {
        // A broadcast yields the same message for every peer: serialize it once.
        let mut last: Option<(C::Msg, Arc<str>)> = None;
        let mut journaled = false;
        for step in commit::order(actions, self.effects_first) {
            // The burst's journal lines are written before its records reach the WAL
            // file and before its first effect: a kill can then cost the journal a
            // line whose record never became durable (the rules never judge an
            // acceptor by a record alone), never a record a restarted node goes on
            // with, nor a step another node saw.
            if matches!(step, Step::Sync | Step::Effect(_)) && !journaled {
                journaled = true;
                self.flush_journal()?;
            }
            match step {
                Step::Append(record) => {
                    if let (Some(j), Some((slot, batch))) =
                        (&mut self.journal, C::journal_chosen(&record))
                    {
                        j.chosen(slot, batch);
                    }
                    self.wal.append(&record);
                }
                Step::Snapshot { snapshot, keep } => {
                    let sync = !self.unsynced_snapshot;
                    let wal = &mut self.wal;
                    // Waits only if the previous snapshot is still being written.
                    tokio::task::block_in_place(|| wal.begin_snapshot(&snapshot, &keep, sync))?;
                }
                Step::Sync => {
                    let wal = &mut self.wal;
                    tokio::task::block_in_place(|| wal.sync())?;
                    if let Some(j) = &mut self.journal {
                        j.synced().map_err(|source| ShellError::Journal {
                            path: j.path().to_path_buf(),
                            source,
                        })?;
                    }
                }
                Step::Effect(Effect::Send { to, msg }) => {
                    if let Some(j) = &mut self.journal {
                        if let Some(e) = C::journal_sent(self.id, to, &msg) {
                            j.note(e);
                        }
                    }
                    let line = match &last {
                        Some((m, line)) if *m == msg => line.clone(),
                        _ => {
                            let line: Arc<str> = msg.to_line().into();
                            last = Some((msg, line.clone()));
                            line
                        }
                    };
                    if let Some(peer) = self.peers.get(&to) {
                        // A full queue drops the message: loss, which Paxos tolerates.
                        let _ = peer.try_send(line);
                    }
                }
                Step::Effect(Effect::Reply { token, result }) => {
                    match self.pending.remove(&token) {
                        Some(ReplyTo::Line(out, id)) => {
                            let _ = out.try_send(encode_result(id, &result));
                        }
                        Some(ReplyTo::Result(out, id)) => {
                            let _ = out.try_send((id, result));
                        }
                        None => {}
                    }
                }
                Step::Effect(Effect::SetTimer { timer, after_ms }) => {
                    // A skewed clock: the core asked for after_ms of its own time.
                    let real = Duration::from_secs_f64(after_ms as f64 / 1e3 / self.clock_rate);
                    let at = Instant::now() + real;
                    self.timers.set(timer, at);
                }
            }
        }
        for (out, line) in self.deferred.drain(..) {
            let _ = out.try_send(line);
        }
        self.wal.poll_snapshot()?;
        self.flush_journal()
    }

    fn flush_journal(&mut self) -> Result<(), ShellError> {
        match &mut self.journal {
            Some(j) => j.flush().map_err(|source| ShellError::Journal {
                path: j.path().to_path_buf(),
                source,
            }),
            None => Ok(()),
        }
    }
}

/// The core's timers: one deadline per timer id; setting one again replaces it.
struct Timers<T> {
    deadline_of: BTreeMap<T, Instant>,
    queue: BTreeSet<(Instant, T)>,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            deadline_of: BTreeMap::new(),
            queue: BTreeSet::new(),
        }
    }
}

impl<T: Ord + Clone> Timers<T> {
    fn set(&mut self, timer: T, at: Instant) {
        if let Some(old) = self.deadline_of.insert(timer.clone(), at) {
            self.queue.remove(&(old, timer.clone()));
        }
        self.queue.insert((at, timer));
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    fn pop_due(&mut self, now: Instant) -> Vec<T> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.queue.first() {
            if *at > now {
                break;
            }
            let (_, timer) = self.queue.pop_first().expect("non-empty");
            self.deadline_of.remove(&timer);
            due.push(timer);
        }
        due
    }
}

pub(crate) fn log(id: NodeId, text: &str) {
    eprintln!("[n{id}] {text}");
}

/// Keeps a connection to peer `peer` and writes this node's messages for it.
async fn dial_peer(id: NodeId, peer: NodeId, addr: String, mut rx: mpsc::Receiver<Arc<str>>) {
    let min_backoff = Duration::from_millis(20);
    let mut backoff = min_backoff;
    let mut connected_once = false;
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(&addr)).await;
        let stream = match attempt {
            Ok(Ok(stream)) => stream,
            _ => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        if !connected_once {
            log(id, &format!("connected to peer n{peer} at {addr}"));
            connected_once = true;
        }
        backoff = min_backoff;
        let mut writer = BufWriter::with_capacity(256 << 10, stream);
        let hello = format!("{{\"hello\":{id}}}\n");
        if writer.write_all(hello.as_bytes()).await.is_err() || writer.flush().await.is_err() {
            continue;
        }
        // Write messages as they come, flushing whenever the queue runs dry.
        loop {
            let Some(line) = rx.recv().await else {
                return; // the server is gone
            };
            let mut ok = write_line(&mut writer, &line).await;
            while ok {
                match rx.try_recv() {
                    Ok(line) => ok = write_line(&mut writer, &line).await,
                    Err(_) => break,
                }
            }
            if !ok || writer.flush().await.is_err() {
                break; // reconnect; the messages in the failed write are lost
            }
        }
    }
}

async fn write_line<W: AsyncWriteExt + Unpin>(w: &mut W, line: &str) -> bool {
    w.write_all(line.as_bytes()).await.is_ok() && w.write_all(b"\n").await.is_ok()
}

async fn accept_loop<M: Wire + Send + 'static>(
    listener: TcpListener,
    id: NodeId,
    n: usize,
    tx: mpsc::Sender<Input<M>>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                let _ = stream.set_nodelay(true);
                tokio::spawn(handle_connection(stream, from, id, n, tx.clone()));
            }
            Err(e) => {
                log(id, &format!("accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

enum Line {
    Data,
    TooLong,
    Eof,
}

/// Reads one line into `buf` (without the newline), refusing lines over `max` bytes
/// before buffering more than `max` plus one read's worth.
async fn read_line_limited<R: AsyncBufRead + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Line> {
    buf.clear();
    loop {
        let available = r.fill_buf().await?;
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                Line::Eof
            } else {
                Line::Data
            });
        }
        if let Some(pos) = available.iter().position(|b| *b == b'\n') {
            buf.extend_from_slice(&available[..pos]);
            r.consume(pos + 1);
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(if buf.len() > max {
                Line::TooLong
            } else {
                Line::Data
            });
        }
        let len = available.len();
        buf.extend_from_slice(available);
        r.consume(len);
        if buf.len() > max {
            return Ok(Line::TooLong);
        }
    }
}

/// The peer id in a hello line, or why the line is not a valid hello.
fn parse_hello(line: &[u8]) -> Option<Result<u64, String>> {
    let value: serde_json::Value = serde_json::from_slice(line).ok()?;
    let hello = value.as_object()?.get("hello")?;
    Some(
        hello
            .as_u64()
            .ok_or_else(|| format!("hello with a non-integer id {hello}")),
    )
}

async fn handle_connection<M: Wire + Send + 'static>(
    stream: TcpStream,
    from: SocketAddr,
    id: NodeId,
    n: usize,
    tx: mpsc::Sender<Input<M>>,
) {
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(64 << 10, read);
    let mut line = Vec::new();
    match read_line_limited(&mut reader, &mut line, MAX_LINE_BYTES).await {
        Ok(Line::Data) => {}
        Ok(Line::TooLong) => {
            let mut w = write;
            let msg = encode_error(None, ErrorCode::MalformedRequest, "line exceeds 1 MiB");
            let _ = w.write_all(format!("{msg}\n").as_bytes()).await;
            return;
        }
        _ => return,
    }
    match parse_hello(&line) {
        Some(Ok(peer)) if peer >= 1 && peer <= n as u64 && peer != u64::from(id) => {
            drop(write); // never send on an accepted connection
            serve_peer(reader, peer as NodeId, id, tx).await;
        }
        Some(Ok(peer)) => log(
            id,
            &format!(
                "dropped a connection from {from} claiming peer id {peer}, outside 1..={n} or our own"
            ),
        ),
        Some(Err(why)) => log(id, &format!("dropped a connection from {from}: {why}")),
        None => serve_client(reader, write, line, tx).await,
    }
}

async fn serve_peer<M: Wire>(
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    peer: NodeId,
    id: NodeId,
    tx: mpsc::Sender<Input<M>>,
) {
    let mut line = Vec::new();
    let mut bad_lines = 0u64;
    loop {
        match read_line_limited(&mut reader, &mut line, MAX_PEER_LINE_BYTES).await {
            Ok(Line::Data) => match M::from_line(&line) {
                Ok(msg) => {
                    if tx.send(Input::Peer { from: peer, msg }).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    bad_lines += 1;
                    if bad_lines <= 10 {
                        log(
                            id,
                            &format!("ignored an unreadable message from n{peer}: {e}"),
                        );
                    }
                }
            },
            Ok(Line::TooLong) => {
                log(
                    id,
                    &format!("closed the link from n{peer}: message over the size limit"),
                );
                return;
            }
            Ok(Line::Eof) | Err(_) => return,
        }
    }
}

async fn serve_client<M>(
    mut reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: tokio::net::tcp::OwnedWriteHalf,
    first: Vec<u8>,
    tx: mpsc::Sender<Input<M>>,
) {
    let (out, mut out_rx) = mpsc::channel::<String>(CLIENT_QUEUE);
    let writer = tokio::spawn(async move {
        // An empty line is the reader's request to close the connection.
        let mut w = BufWriter::new(write);
        while let Some(mut line) = out_rx.recv().await {
            loop {
                if line.is_empty() {
                    let _ = w.flush().await;
                    return;
                }
                if !write_line(&mut w, &line).await {
                    return;
                }
                match out_rx.try_recv() {
                    Ok(next) => line = next,
                    Err(_) => break,
                }
            }
            if w.flush().await.is_err() {
                return;
            }
        }
        let _ = w.flush().await;
    });
    let mut line = first;
    loop {
        let reply = match parse_request(&line) {
            Ok(req) => {
                let input = Input::Client {
                    out: out.clone(),
                    id: req.id,
                    request: req.request,
                };
                if tx.send(input).await.is_err() {
                    break;
                }
                None
            }
            Err(e) => Some(encode_error(e.id, e.code, &e.message)),
        };
        if let Some(reply) = reply {
            if out.try_send(reply).is_err() {
                break; // the client does not read its replies
            }
        }
        match read_line_limited(&mut reader, &mut line, MAX_LINE_BYTES).await {
            Ok(Line::Data) => {}
            Ok(Line::TooLong) => {
                let msg = encode_error(None, ErrorCode::MalformedRequest, "line exceeds 1 MiB");
                let _ = out.send(msg).await;
                let _ = out.send(String::new()).await;
                break;
            }
            Ok(Line::Eof) | Err(_) => break,
        }
    }
    drop(out);
    let _ = writer.await;
}
