//! The node over Maelstrom's node protocol (`paxos-node --maelstrom`): JSON messages,
//! one per line, on stdin (in) and stdout (out), `{"src","dest","body"}`.
//!
//! The same [`Server`](crate::shell) as over TCP, with another transport:
//! - the first message is `init`; its `node_id` and `node_ids` give this node's id
//!   (its position in `node_ids`, from 1) and the cluster; it is answered `init_ok`
//!   once the WAL is recovered and the core started;
//! - a peer message goes out as a body that is the peer message itself (its `type`
//!   is the message's kind, `promise`, `log-accept`, ...), to the peer's name, so a
//!   router counts and traces it by kind; one from a peer's name is read back the same
//!   way;
//! - anything else is a client's lin-kv request: `read {key}`, `write {key,value}`,
//!   `cas {key,from,to}`, answered `read_ok {value}`, `write_ok`, `cas_ok` or an
//!   `error` with Maelstrom's codes (an absent key: 20; a cas whose `from` differs:
//!   22; no leader: 11, definite; no outcome in time: 0, indefinite).
//!
//! End of stdin ends the node. Logs go to stderr.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use crate::cli::NodeArgs;

use crate::msg::PeerMessage;
use crate::shell::{
    self, CLIENT_QUEUE, INPUT_QUEUE, Input, MAX_PEER_LINE_BYTES, PEER_QUEUE, ShellError,
};
use crate::types::{ClientOp, ErrorCode, KvOp, MicroOp, NodeId, OpResult};

/// Maelstrom's error codes: what this node answers with, and how the harness's
/// clients read them.
pub mod code {
    pub const TIMEOUT: i64 = 0;
    pub const NODE_NOT_FOUND: i64 = 1;
    pub const NOT_SUPPORTED: i64 = 10;
    pub const TEMPORARILY_UNAVAILABLE: i64 = 11;
    pub const MALFORMED_REQUEST: i64 = 12;
    pub const CRASH: i64 = 13;
    pub const ABORT: i64 = 14;
    pub const KEY_DOES_NOT_EXIST: i64 = 20;
    pub const KEY_ALREADY_EXISTS: i64 = 21;
    pub const PRECONDITION_FAILED: i64 = 22;
    pub const TXN_CONFLICT: i64 = 30;

    /// Whether an error with this code means the operation certainly did not happen.
    /// Timeouts, crashes and codes of 1000 or more (a node's own) leave it unknown.
    pub fn is_definite(code: i64) -> bool {
        matches!(code, 1 | 10 | 11 | 12 | 14 | 20 | 21 | 22 | 30)
    }

    /// The name of a code, for the history's error field.
    pub fn name(code: i64) -> String {
        match code {
            TIMEOUT => "timeout".into(),
            NODE_NOT_FOUND => "node-not-found".into(),
            NOT_SUPPORTED => "not-supported".into(),
            TEMPORARILY_UNAVAILABLE => "temporarily-unavailable".into(),
            MALFORMED_REQUEST => "malformed-request".into(),
            CRASH => "crash".into(),
            ABORT => "abort".into(),
            KEY_DOES_NOT_EXIST => "key-does-not-exist".into(),
            KEY_ALREADY_EXISTS => "key-already-exists".into(),
            PRECONDITION_FAILED => "precondition-failed".into(),
            TXN_CONFLICT => "txn-conflict".into(),
            other => format!("error-{other}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StdioError {
    #[error("stdin ended before an init message")]
    NoInit,
    #[error("init: {0}")]
    BadInit(String),
    #[error(transparent)]
    Shell(#[from] ShellError),
}

/// What the node knows after `init`.
struct Cluster {
    /// Names by id; index 0 unused.
    names: Vec<String>,
    id: NodeId,
}

impl Cluster {
    fn from_init(body: &Map<String, Value>) -> Result<Cluster, String> {
        let me = body
            .get("node_id")
            .and_then(Value::as_str)
            .ok_or("no node_id string")?;
        let ids: Vec<String> = body
            .get("node_ids")
            .and_then(Value::as_array)
            .ok_or("no node_ids list")?
            .iter()
            .map(|v| v.as_str().map(str::to_string))
            .collect::<Option<_>>()
            .ok_or("node_ids holds a value that is not a string")?;
        let mut sorted = ids.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != ids.len() {
            return Err(format!("node_ids {ids:?} repeats a name"));
        }
        let pos = ids
            .iter()
            .position(|n| n == me)
            .ok_or_else(|| format!("node_id {me:?} is not in node_ids {ids:?}"))?;
        let mut names = vec![String::new()];
        names.extend(ids);
        Ok(Cluster {
            names,
            id: pos as NodeId + 1,
        })
    }

    fn n(&self) -> usize {
        self.names.len() - 1
    }

    fn id_of(&self, name: &str) -> Option<NodeId> {
        self.names
            .iter()
            .skip(1)
            .position(|n| n == name)
            .map(|p| p as NodeId + 1)
    }
}

/// One line (without newline) of Maelstrom's protocol.
fn envelope(src: &str, dest: &str, body: &Value) -> String {
    json!({"src": src, "dest": dest, "body": body}).to_string()
}

/// A reply to `msg` (which carried `msg_id`) with `body`.
fn reply_line(me: &str, to: &str, in_reply_to: Option<u64>, mut body: Value) -> String {
    if let (Some(id), Value::Object(m)) = (in_reply_to, &mut body) {
        m.insert("in_reply_to".into(), json!(id));
    }
    envelope(me, to, &body)
}

fn error_body(code: i64, text: &str) -> Value {
    json!({"type": "error", "code": code, "text": text})
}

/// A client request as the core's op, or the error to answer it with.
fn client_op(body: &Map<String, Value>) -> Result<ClientOp, (i64, String)> {
    let kind = body.get("type").and_then(Value::as_str).unwrap_or("");
    if kind == "txn" {
        return txn_op(body).map(|txn| ClientOp::Kv(KvOp::Txn { txn }));
    }
    // lin-kv keys are integers; any JSON value is accepted and named by its text.
    let key = match body.get("key") {
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => return Err((code::MALFORMED_REQUEST, "missing field 'key'".into())),
    };
    let int = |f: &str| {
        body.get(f).and_then(Value::as_i64).ok_or_else(|| {
            (
                code::MALFORMED_REQUEST,
                format!("field '{f}' must be a signed 64-bit integer"),
            )
        })
    };
    Ok(ClientOp::Kv(match kind {
        "read" => KvOp::Read { key },
        "write" => KvOp::Write {
            key,
            value: int("value")?,
        },
        "cas" => KvOp::Cas {
            key,
            from: int("from")?,
            to: int("to")?,
        },
        other => {
            return Err((
                code::NOT_SUPPORTED,
                format!(
                    "unknown message type {other:?}; this node serves read, write, cas and txn"
                ),
            ));
        }
    }))
}

/// A `txn` request's micro-operations (Maelstrom's txn-list-append and
/// txn-rw-register: `[f, key, value]` with integer keys, named by their text here).
fn txn_op(body: &Map<String, Value>) -> Result<Vec<MicroOp>, (i64, String)> {
    let bad = |why: String| (code::MALFORMED_REQUEST, why);
    let Some(Value::Array(mops)) = body.get("txn") else {
        return Err(bad("field 'txn' must be a list of micro-ops".into()));
    };
    if mops.is_empty() {
        return Err(bad("field 'txn' must not be empty".into()));
    }
    mops.iter()
        .map(|m| {
            let Some([f, k, v]) = m.as_array().map(Vec::as_slice) else {
                return Err(bad(format!("micro-op {m} is not [f, key, value]")));
            };
            let key = match k {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let int = || {
                v.as_i64()
                    .ok_or_else(|| bad(format!("micro-op {m} needs an integer value")))
            };
            match f.as_str() {
                Some("r") => Ok(MicroOp::Read { key, value: None }),
                Some("w") => Ok(MicroOp::Write { key, value: int()? }),
                Some("append") => Ok(MicroOp::Append { key, value: int()? }),
                _ => Err(bad(format!("micro-op {m}: f must be r, w or append"))),
            }
        })
        .collect()
}

/// A key as Maelstrom gave it: an integer when its text is one.
fn key_json(key: &str) -> Value {
    match key.parse::<i64>() {
        Ok(i) if i.to_string() == key => json!(i),
        _ => json!(key),
    }
}

/// The Maelstrom body for the core's answer to a request of kind `kind`.
fn answer(kind: &str, result: &OpResult) -> Value {
    let (c, text) = match result {
        OpResult::Txn(mops) => {
            let txn: Vec<Value> = mops
                .iter()
                .map(|m| match m {
                    MicroOp::Read { key, value } => json!(["r", key_json(key), value]),
                    MicroOp::Write { key, value } => json!(["w", key_json(key), value]),
                    MicroOp::Append { key, value } => json!(["append", key_json(key), value]),
                })
                .collect();
            return json!({"type": "txn_ok", "txn": txn});
        }
        OpResult::Value(Some(v)) if kind == "read" => {
            return json!({"type": "read_ok", "value": v});
        }
        OpResult::Value(None) if kind == "read" => {
            (code::KEY_DOES_NOT_EXIST, "the key has no value")
        }
        OpResult::Value(_) | OpResult::Done => return json!({"type": format!("{kind}_ok")}),
        OpResult::Error(ErrorCode::NotFound) => (code::KEY_DOES_NOT_EXIST, "the key has no value"),
        OpResult::Error(ErrorCode::PreconditionFailed) => (
            code::PRECONDITION_FAILED,
            "the current value differs from 'from'",
        ),
        OpResult::Error(ErrorCode::Unavailable) => (
            code::TEMPORARILY_UNAVAILABLE,
            "no leader could take the operation; it was not applied",
        ),
        OpResult::Error(ErrorCode::MalformedRequest) => {
            (code::MALFORMED_REQUEST, "malformed request")
        }
        OpResult::Error(ErrorCode::UnknownOp) => (code::NOT_SUPPORTED, "unknown op"),
        OpResult::Error(ErrorCode::Timeout) => (
            code::TIMEOUT,
            "no outcome in time; the operation may still take effect",
        ),
    };
    error_body(c, text)
}

/// A request waiting for the core: who asked, under which `msg_id`, for what.
struct Asked {
    client: String,
    msg_id: Option<u64>,
    kind: String,
}

/// Runs the node over stdin and stdout until stdin ends.
pub fn run(args: NodeArgs) -> Result<(), StdioError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| StdioError::Shell(ShellError::Runtime(e)))?;
    runtime.block_on(serve(args))
}

/// Reads stdin on a thread of its own (a blocking read), one line at a time, lines
/// over the peer limit cut off and skipped.
fn read_stdin(tx: mpsc::Sender<Vec<u8>>) {
    let stdin = std::io::stdin();
    let mut reader = stdin.lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut too_long = false;
        loop {
            let buf = match reader.fill_buf() {
                Ok(b) => b,
                Err(_) => return,
            };
            if buf.is_empty() {
                if !line.is_empty() && !too_long {
                    let _ = tx.blocking_send(std::mem::take(&mut line));
                }
                return;
            }
            let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
                Some(p) => (&buf[..p], Some(p + 1)),
                None => (buf, None),
            };
            if !too_long {
                line.extend_from_slice(chunk);
                if line.len() > MAX_PEER_LINE_BYTES {
                    too_long = true;
                    line.clear();
                }
            }
            let used = done.unwrap_or(buf.len());
            reader.consume(used);
            if done.is_some() {
                break;
            }
        }
        if too_long {
            eprintln!("[maelstrom] skipped an input line over {MAX_PEER_LINE_BYTES} bytes");
            continue;
        }
        if tx.blocking_send(std::mem::take(&mut line)).is_err() {
            return;
        }
    }
}

/// Writes lines to stdout, flushing whenever the queue runs dry.
async fn write_stdout(mut rx: mpsc::Receiver<String>) {
    let mut out = tokio::io::BufWriter::with_capacity(256 << 10, tokio::io::stdout());
    while let Some(line) = rx.recv().await {
        let mut ok =
            out.write_all(line.as_bytes()).await.is_ok() && out.write_all(b"\n").await.is_ok();
        while ok {
            match rx.try_recv() {
                Ok(line) => {
                    ok = out.write_all(line.as_bytes()).await.is_ok()
                        && out.write_all(b"\n").await.is_ok();
                }
                Err(_) => break,
            }
        }
        if !ok || out.flush().await.is_err() {
            return;
        }
    }
}

/// Waits for `init` (nothing else is served before it): the cluster, and who sent
/// it with its msg_id.
async fn await_init(
    in_rx: &mut mpsc::Receiver<Vec<u8>>,
) -> Result<(Cluster, String, Option<u64>), StdioError> {
    loop {
        let Some(line) = in_rx.recv().await else {
            return Err(StdioError::NoInit);
        };
        let Some((src, body)) = parse(&line) else {
            eprintln!("[maelstrom] ignored a line that is not a message before init");
            continue;
        };
        if body.get("type").and_then(Value::as_str) != Some("init") {
            eprintln!("[maelstrom] ignored a message from {src} before init");
            continue;
        }
        let cluster = Cluster::from_init(&body).map_err(StdioError::BadInit)?;
        return Ok((cluster, src, body.get("msg_id").and_then(Value::as_u64)));
    }
}

/// Each peer's messages leave as envelopes on stdout, through a task per peer.
fn peer_senders(
    cluster: &Cluster,
    me: &str,
    out_tx: &mpsc::Sender<String>,
) -> BTreeMap<NodeId, mpsc::Sender<Arc<str>>> {
    let mut peers = BTreeMap::new();
    for (peer, name) in cluster.names.iter().enumerate().skip(1) {
        if peer as NodeId == cluster.id {
            continue;
        }
        let (ptx, mut prx) = mpsc::channel::<Arc<str>>(PEER_QUEUE);
        let (out, src, dest) = (
            out_tx.clone(),
            json!(me).to_string(),
            json!(name).to_string(),
        );
        tokio::spawn(async move {
            while let Some(msg) = prx.recv().await {
                let line = format!("{{\"src\":{src},\"dest\":{dest},\"body\":{msg}}}");
                if out.send(line).await.is_err() {
                    return;
                }
            }
        });
        peers.insert(peer as NodeId, ptx);
    }
    peers
}

/// The core's results come back as they are; a task turns each into the Maelstrom
/// reply to the request it answers.
fn spawn_replier(
    asked: Arc<Mutex<BTreeMap<u64, Asked>>>,
    out: mpsc::Sender<String>,
    me: String,
) -> mpsc::Sender<(u64, OpResult)> {
    let (reply_tx, mut reply_rx) = mpsc::channel::<(u64, OpResult)>(CLIENT_QUEUE);
    tokio::spawn(async move {
        while let Some((id, result)) = reply_rx.recv().await {
            let Some(a) = asked.lock().ok().and_then(|mut m| m.remove(&id)) else {
                continue;
            };
            let body = answer(&a.kind, &result);
            if out
                .send(reply_line(&me, &a.client, a.msg_id, body))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    reply_tx
}

/// Where the lines after init go: a peer's message to the core, a client's request
/// to the core (remembered in `asked` for its reply), a bad request answered at once.
struct Dispatch {
    cluster: Cluster,
    me: String,
    tx: mpsc::Sender<Input>,
    out: mpsc::Sender<String>,
    reply_tx: mpsc::Sender<(u64, OpResult)>,
    asked: Arc<Mutex<BTreeMap<u64, Asked>>>,
}

impl Dispatch {
    /// Until stdin ends or the core is gone.
    async fn run(self, mut in_rx: mpsc::Receiver<Vec<u8>>) {
        let mut next = 0u64;
        while let Some(line) = in_rx.recv().await {
            let Some((src, body)) = parse(&line) else {
                eprintln!(
                    "[maelstrom] ignored a line that is not a message: {}",
                    String::from_utf8_lossy(&line[..line.len().min(200)])
                );
                continue;
            };
            if !self.line(src, body, &mut next).await {
                return;
            }
        }
    }

    /// One message; `false` when the core or stdout is gone.
    async fn line(&self, src: String, body: Map<String, Value>, next: &mut u64) -> bool {
        if let Some(from) = self.cluster.id_of(&src) {
            match serde_json::from_value::<PeerMessage>(Value::Object(body)) {
                Ok(msg) => return self.tx.send(Input::Peer { from, msg }).await.is_ok(),
                Err(e) => eprintln!("[maelstrom] ignored a message from {src}: {e}"),
            }
            return true;
        }
        let msg_id = body.get("msg_id").and_then(Value::as_u64);
        match client_op(&body) {
            Ok(op) => {
                *next += 1;
                let kind = body
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                if let Ok(mut m) = self.asked.lock() {
                    m.insert(
                        *next,
                        Asked {
                            client: src,
                            msg_id,
                            kind,
                        },
                    );
                }
                let input = Input::Op {
                    out: self.reply_tx.clone(),
                    id: *next,
                    op,
                };
                self.tx.send(input).await.is_ok()
            }
            Err((c, text)) => {
                let line = reply_line(&self.me, &src, msg_id, error_body(c, &text));
                self.out.send(line).await.is_ok()
            }
        }
    }
}

async fn serve(args: NodeArgs) -> Result<(), StdioError> {
    let (in_tx, mut in_rx) = mpsc::channel::<Vec<u8>>(INPUT_QUEUE);
    std::thread::spawn(move || read_stdin(in_tx));
    let (out_tx, out_rx) = mpsc::channel::<String>(CLIENT_QUEUE);
    let writer = tokio::spawn(write_stdout(out_rx));
    let (cluster, init_from, init_id) = await_init(&mut in_rx).await?;
    let me = cluster.names[cluster.id as usize].clone();
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."))
        .join(&me);
    let cfg = args.config(cluster.id, cluster.n(), BTreeMap::new(), data_dir);
    let peers = peer_senders(&cluster, &me, &out_tx);
    let (mut server, start_actions) = shell::open_server::<crate::core::Node>(&cfg, peers)?;
    server.execute(start_actions)?;
    let _ = out_tx
        .send(reply_line(
            &me,
            &init_from,
            init_id,
            json!({"type": "init_ok"}),
        ))
        .await;
    let asked: Arc<Mutex<BTreeMap<u64, Asked>>> = Arc::default();
    let reply_tx = spawn_replier(asked.clone(), out_tx.clone(), me.clone());
    let (tx, rx) = mpsc::channel::<Input>(INPUT_QUEUE);
    let dispatch = Dispatch {
        cluster,
        me,
        tx: tx.clone(),
        out: out_tx,
        reply_tx,
        asked,
    };
    let result = tokio::select! {
        r = server.run(rx, tx) => r.map_err(StdioError::Shell),
        () = dispatch.run(in_rx) => Ok(()),
    };
    // End of stdin: what was written reaches stdout before the node exits.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), writer).await;
    result
}

/// A line as (src, body), if it is a message.
fn parse(line: &[u8]) -> Option<(String, Map<String, Value>)> {
    let Value::Object(mut m) = serde_json::from_slice(line).ok()? else {
        return None;
    };
    let Some(Value::String(src)) = m.remove("src") else {
        return None;
    };
    let Some(Value::Object(body)) = m.remove("body") else {
        return None;
    };
    body.get("type")?.as_str()?;
    Some((src, body))
}

#[cfg(test)]
mod tests {

    #[test]
    fn maelstrom_txn_requests_keep_integer_keys() {
        let body = json!({"type": "txn", "txn": [["r", 1, null], ["append", 1, 3], ["w", "k", 2]]});
        let Value::Object(body) = body else {
            unreachable!()
        };
        let op = super::client_op(&body).unwrap();
        let ClientOp::Kv(KvOp::Txn { txn }) = op else {
            panic!("a txn")
        };
        assert_eq!(txn[0].key(), "1");
        let done = vec![
            MicroOp::Read {
                key: "1".into(),
                value: Some(crate::types::MopValue::List(vec![3])),
            },
            txn[1].clone(),
            txn[2].clone(),
        ];
        assert_eq!(
            super::answer("txn", &OpResult::Txn(done)),
            json!({"type": "txn_ok", "txn": [["r", 1, [3]], ["append", 1, 3], ["w", "k", 2]]})
        );
        let bad = json!({"type": "txn", "txn": [["r", 1]]});
        let Value::Object(bad) = bad else {
            unreachable!()
        };
        assert!(super::client_op(&bad).is_err());
    }
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn init_names_the_cluster_in_order() {
        let c = Cluster::from_init(&obj(
            json!({"type": "init", "node_id": "n2", "node_ids": ["n1", "n2", "n3"]}),
        ))
        .unwrap();
        assert_eq!((c.id, c.n()), (2, 3));
        assert_eq!(c.id_of("n3"), Some(3));
        assert_eq!(c.id_of("c1"), None);
        // Maelstrom itself names nodes from n0.
        let c =
            Cluster::from_init(&obj(json!({"node_id": "n0", "node_ids": ["n0", "n1"]}))).unwrap();
        assert_eq!(c.id, 1);
        for bad in [
            json!({"node_id": "n4", "node_ids": ["n1", "n2"]}),
            json!({"node_id": "n1", "node_ids": ["n1", "n1"]}),
            json!({"node_ids": ["n1"]}),
            json!({"node_id": "n1", "node_ids": [1]}),
        ] {
            assert!(Cluster::from_init(&obj(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn requests_become_ops_or_errors() {
        let op = |v: Value| client_op(&obj(v));
        assert_eq!(
            op(json!({"type": "cas", "key": 3, "from": 1, "to": 2})),
            Ok(ClientOp::Kv(KvOp::Cas {
                key: "3".into(),
                from: 1,
                to: 2
            }))
        );
        assert_eq!(
            op(json!({"type": "read", "key": "k"})),
            Ok(ClientOp::Kv(KvOp::Read { key: "k".into() }))
        );
        assert_eq!(
            op(json!({"type": "write", "key": 1})).unwrap_err().0,
            code::MALFORMED_REQUEST
        );
        assert_eq!(
            op(json!({"type": "txn", "key": 1})).unwrap_err().0,
            code::MALFORMED_REQUEST
        );
        assert_eq!(
            op(json!({"type": "broadcast", "key": 1})).unwrap_err().0,
            code::NOT_SUPPORTED
        );
    }

    #[test]
    fn answers_use_maelstrom_codes_and_definiteness() {
        let err = OpResult::Error;
        assert_eq!(
            answer("read", &OpResult::Value(Some(5))),
            json!({"type": "read_ok", "value": 5})
        );
        assert_eq!(
            answer("read", &OpResult::Value(None))["code"],
            json!(code::KEY_DOES_NOT_EXIST)
        );
        assert_eq!(answer("cas", &OpResult::Done), json!({"type": "cas_ok"}));
        assert_eq!(
            answer("cas", &err(ErrorCode::PreconditionFailed))["code"],
            json!(code::PRECONDITION_FAILED)
        );
        assert_eq!(
            answer("write", &err(ErrorCode::Unavailable))["code"],
            json!(code::TEMPORARILY_UNAVAILABLE)
        );
        assert_eq!(
            answer("write", &err(ErrorCode::Timeout))["code"],
            json!(code::TIMEOUT)
        );
    }

    #[test]
    fn peer_messages_travel_as_their_own_bodies() {
        let msg = PeerMessage::Decided {
            key: "r".into(),
            value: 4,
        };
        let text = serde_json::to_string(&msg).unwrap();
        let line = format!("{{\"src\":\"n1\",\"dest\":\"n2\",\"body\":{text}}}");
        let (src, body) = parse(line.as_bytes()).unwrap();
        assert_eq!(src, "n1");
        assert_eq!(body["type"], json!("decided"));
        let back: PeerMessage = serde_json::from_value(Value::Object(body)).unwrap();
        assert_eq!(back, msg);
    }
}
