//! The workload: client slots that each run one op at a time against one node.
//!
//! Register slots propose distinct values for the *same* key through different nodes
//! at once (the contended case Paxos exists for) and move to a new key once one of
//! them learns it is decided. KV slots issue a read/write/cas mix over `keys` keys
//! with values unique within the run. Each slot draws its ops from its own named
//! stream of the seed.
//!
//! Outcomes (DESIGN.md §9): an ok reply is `ok`; a definite error is `fail`; an
//! indefinite one (`timeout`), a client timeout or a broken connection is `info` for
//! propose, write and cas and `fail` for read (a read changes nothing). A process that
//! got `info` is retired and the slot continues as a fresh process.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use rand::RngExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::cluster::Addresses;
use crate::plan::{Workload, substream};
use crate::recorder::{ClientEvent, Recorder};

/// One client operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientOp {
    Propose { key: String, value: i64 },
    Read { key: String },
    Write { key: String, value: i64 },
    Cas { key: String, from: i64, to: i64 },
}

impl ClientOp {
    fn f(&self) -> &'static str {
        match self {
            ClientOp::Propose { .. } => "propose",
            ClientOp::Read { .. } => "read",
            ClientOp::Write { .. } => "write",
            ClientOp::Cas { .. } => "cas",
        }
    }

    fn key(&self) -> &str {
        match self {
            ClientOp::Propose { key, .. }
            | ClientOp::Read { key }
            | ClientOp::Write { key, .. }
            | ClientOp::Cas { key, .. } => key,
        }
    }

    /// The invoke's value in the history.
    fn value(&self) -> Value {
        match self {
            ClientOp::Propose { value, .. } | ClientOp::Write { value, .. } => json!(value),
            ClientOp::Read { .. } => Value::Null,
            ClientOp::Cas { from, to, .. } => json!([from, to]),
        }
    }

    /// The request's JSON members after `"id"`, e.g. `"op":"write","key":"k1","value":7`.
    fn request_members(&self) -> String {
        let key = |k: &str| serde_json::to_string(k).expect("a str always serialises");
        match self {
            ClientOp::Propose { key: k, value } => {
                format!("\"op\":\"propose\",\"key\":{},\"value\":{value}", key(k))
            }
            ClientOp::Read { key: k } => format!("\"op\":\"read\",\"key\":{}", key(k)),
            ClientOp::Write { key: k, value } => {
                format!("\"op\":\"write\",\"key\":{},\"value\":{value}", key(k))
            }
            ClientOp::Cas { key: k, from, to } => format!(
                "\"op\":\"cas\",\"key\":{},\"from\":{from},\"to\":{to}",
                key(k)
            ),
        }
    }
}

/// A client connection speaking the node's JSON-lines protocol, one request at a time.
pub struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
    line: String,
}

#[derive(Debug)]
pub enum CallError {
    Timeout,
    Broken,
}

impl Conn {
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> Option<Conn> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .ok()?
            .ok()?;
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        Some(Conn {
            reader: BufReader::new(r),
            writer: w,
            next_id: 1,
            line: String::new(),
        })
    }

    /// Sends `request` and streams its reply line into `path` (without the newline),
    /// holding at most one read buffer: after a long run a dump is tens of megabytes
    /// per node, and the dumps of all nodes are fetched at once. The reply is known by
    /// its leading `{"id":N,` (the bundled node writes the id first); other lines (late
    /// replies to earlier requests) are skipped. Returns the bytes written.
    pub async fn call_to_file(
        &mut self,
        mut request: Value,
        path: &std::path::Path,
        timeout: Duration,
    ) -> Result<u64, CallError> {
        let id = self.next_id;
        self.next_id += 1;
        request["id"] = json!(id);
        let bytes = format!("{request}\n");
        let prefix = format!("{{\"id\":{id},");
        let exchange = async {
            self.writer
                .write_all(bytes.as_bytes())
                .await
                .map_err(|_| CallError::Broken)?;
            loop {
                // The start of the next line, up to the length of the prefix.
                let mut head = Vec::with_capacity(prefix.len());
                let mut line_ended = false;
                while head.len() < prefix.len() && !line_ended {
                    let buf = more(&mut self.reader).await?;
                    let want = (prefix.len() - head.len()).min(buf.len());
                    let take = buf[..want]
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(want, |nl| {
                            line_ended = true;
                            nl + 1
                        });
                    head.extend_from_slice(&buf[..take]);
                    self.reader.consume(take);
                }
                let ours = head == prefix.as_bytes();
                if line_ended && !ours {
                    continue;
                }
                let mut out = if ours {
                    let file = std::fs::File::create(path).map_err(|_| CallError::Broken)?;
                    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
                    std::io::Write::write_all(&mut out, &head).map_err(|_| CallError::Broken)?;
                    Some(out)
                } else {
                    None
                };
                let mut written = head.len() as u64;
                // The rest of the line: into the file if it is ours, else skipped.
                loop {
                    let buf = more(&mut self.reader).await?;
                    let (take, done) = match buf.iter().position(|b| *b == b'\n') {
                        Some(nl) => (nl, true),
                        None => (buf.len(), false),
                    };
                    if let Some(out) = out.as_mut() {
                        std::io::Write::write_all(out, &buf[..take])
                            .map_err(|_| CallError::Broken)?;
                        written += take as u64;
                    }
                    self.reader.consume(if done { take + 1 } else { take });
                    if done {
                        break;
                    }
                }
                if let Some(mut out) = out {
                    std::io::Write::flush(&mut out).map_err(|_| CallError::Broken)?;
                    return Ok(written);
                }
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(CallError::Timeout))
    }

    /// Sends `request` with a fresh id and reads reply lines until `accept` (given the
    /// line and the id) returns the reply; lines it declines are late replies to
    /// earlier, timed-out requests. Each line is parsed once, by `accept`.
    async fn exchange<T>(
        &mut self,
        request: impl FnOnce(u64) -> String,
        timeout: Duration,
        accept: impl Fn(&str, u64) -> Result<Option<T>, CallError>,
    ) -> Result<T, CallError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut bytes = request(id).into_bytes();
        bytes.push(b'\n');
        let exchange = async {
            self.writer
                .write_all(&bytes)
                .await
                .map_err(|_| CallError::Broken)?;
            loop {
                self.line.clear();
                match self.reader.read_line(&mut self.line).await {
                    Ok(0) | Err(_) => return Err(CallError::Broken),
                    Ok(_) => {}
                }
                if let Some(reply) = accept(self.line.trim_end(), id)? {
                    return Ok(reply);
                }
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(CallError::Timeout))
    }
}

/// The reader's buffered bytes, refilled when empty; the peer closing is an error.
async fn more(reader: &mut BufReader<OwnedReadHalf>) -> Result<&[u8], CallError> {
    let buf = reader.fill_buf().await.map_err(|_| CallError::Broken)?;
    if buf.is_empty() {
        return Err(CallError::Broken);
    }
    Ok(buf)
}

/// The fields of an op's reply (DESIGN.md §4), parsed without building a map.
#[derive(serde::Deserialize)]
struct OpReply {
    id: Option<u64>,
    #[serde(default)]
    ok: bool,
    #[serde(default)]
    value: Option<Value>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    definite: bool,
}

impl Conn {
    /// Sends one client op and waits for its reply.
    async fn call_op(&mut self, op: &ClientOp, timeout: Duration) -> Result<OpReply, CallError> {
        let members = op.request_members();
        self.exchange(
            |id| format!("{{\"id\":{id},{members}}}"),
            timeout,
            |line, id| {
                let reply: OpReply = serde_json::from_str(line).map_err(|_| CallError::Broken)?;
                Ok((reply.id == Some(id)).then_some(reply))
            },
        )
        .await
    }
}

/// How one op ended, as recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Ok,
    Fail,
    Info,
}

/// How an op completed.
pub struct Completion {
    pub ended: Ended,
    /// The returned value of an ok op.
    pub value: Option<Value>,
    /// The error code of a failed or unknown op (`client-timeout` and
    /// `connection-broken` for failures on our side).
    pub error: Option<String>,
}

/// Runs one op: records the invoke, calls, records the completion.
pub async fn perform(
    conn: &mut Conn,
    op: &ClientOp,
    process: u64,
    node: u32,
    recorder: &Recorder,
    timeout: Duration,
) -> Completion {
    let (f, key) = (op.f(), op.key());
    recorder.client(ClientEvent {
        process,
        kind: "invoke",
        f,
        key,
        value: op.value(),
        node,
        error: None,
    });
    let reply = conn.call_op(op, timeout).await;
    let is_read = matches!(op, ClientOp::Read { .. });
    let (ended, value, error): (Ended, Value, Option<String>) = match reply {
        Ok(r) if r.ok => {
            let value = match op {
                ClientOp::Propose { .. } | ClientOp::Read { .. } => r.value.unwrap_or(Value::Null),
                _ => op.value(),
            };
            (Ended::Ok, value, None)
        }
        Ok(r) => {
            let code = r.error.unwrap_or_else(|| "unknown-error".to_string());
            let definite = r.definite;
            let ended = if definite || is_read {
                Ended::Fail
            } else {
                Ended::Info
            };
            (ended, op.value(), Some(code))
        }
        Err(e) => {
            let code = match e {
                CallError::Timeout => "client-timeout",
                CallError::Broken => "connection-broken",
            };
            let ended = if is_read { Ended::Fail } else { Ended::Info };
            (ended, op.value(), Some(code.to_string()))
        }
    };
    let kind = match ended {
        Ended::Ok => "ok",
        Ended::Fail => "fail",
        Ended::Info => "info",
    };
    recorder.client(ClientEvent {
        process,
        kind,
        f,
        key,
        value: value.clone(),
        node,
        error: error.as_deref(),
    });
    Completion {
        ended,
        value: (ended == Ended::Ok).then_some(value),
        error,
    }
}

/// What the client tasks share.
pub struct Shared {
    pub stop: AtomicBool,
    /// The register key the register slots contend on now.
    pub register_key: AtomicU64,
}

#[derive(Clone, Debug)]
pub struct WorkloadConfig {
    pub seed: u64,
    pub nodes: usize,
    pub concurrency: usize,
    pub workload: Workload,
    pub keys: usize,
    /// Total ops/s; 0 = as fast as possible.
    pub rate: f64,
    pub op_timeout: Duration,
}

/// Starts every client slot; they run until `shared.stop` is set.
pub fn start(
    cfg: &WorkloadConfig,
    recorder: Arc<Recorder>,
    addrs: Addresses,
    shared: Arc<Shared>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..cfg.concurrency)
        .map(|slot| {
            let register = match cfg.workload {
                Workload::Register => true,
                Workload::Kv => false,
                Workload::Both => slot % 2 == 0,
            };
            tokio::spawn(client_slot(
                cfg.clone(),
                slot,
                register,
                recorder.clone(),
                addrs.clone(),
                shared.clone(),
            ))
        })
        .collect()
}

async fn client_slot(
    cfg: WorkloadConfig,
    slot: usize,
    register: bool,
    recorder: Arc<Recorder>,
    addrs: Addresses,
    shared: Arc<Shared>,
) {
    let node = (slot % cfg.nodes) as u32 + 1;
    let mut rng = substream(cfg.seed, &format!("workload/{slot}"));
    let mut process = slot as u64;
    let mut conn: Option<Conn> = None;
    let mut seq: i64 = 0;
    // Per key: the last value this client saw, for cas.
    let mut seen: BTreeMap<String, i64> = BTreeMap::new();
    let interval =
        (cfg.rate > 0.0).then(|| Duration::from_secs_f64(cfg.concurrency as f64 / cfg.rate));
    let mut next_at = tokio::time::Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        if let Some(every) = interval {
            tokio::time::sleep_until(next_at).await;
            next_at += every;
        }
        if conn.is_none() {
            let addr = addrs.lock().ok().and_then(|a| a[node as usize]);
            conn = match addr {
                Some(addr) => Conn::connect(addr, Duration::from_secs(1)).await,
                None => None,
            };
            if conn.is_none() {
                // The node is down: nothing was invoked, so nothing is recorded.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        }
        seq += 1;
        // Unique within the run: slots never share a value.
        let value = (slot as i64 + 1) * 1_000_000_000 + seq;
        let op = if register {
            let k = shared.register_key.load(Ordering::Relaxed);
            ClientOp::Propose {
                key: format!("r{k}"),
                value,
            }
        } else {
            let key = format!("k{}", rng.random_range(0..cfg.keys.max(1)));
            match rng.random_range(0..10) {
                0..=3 => ClientOp::Read { key },
                4..=7 => ClientOp::Write { key, value },
                _ => {
                    let from = seen.get(&key).copied().unwrap_or(0);
                    ClientOp::Cas {
                        key,
                        from,
                        to: value,
                    }
                }
            }
        };
        let c = conn.as_mut().expect("connected above");
        let done = perform(c, &op, process, node, &recorder, cfg.op_timeout).await;
        let (ended, result) = (done.ended, done.value);
        match (ended, &op) {
            (Ended::Ok, ClientOp::Propose { key, .. }) => {
                let k: u64 = key[1..].parse().unwrap_or(0);
                shared.register_key.fetch_max(k + 1, Ordering::Relaxed);
            }
            (Ended::Ok, ClientOp::Read { key }) => {
                if let Some(v) = result.and_then(|r| r.as_i64()) {
                    seen.insert(key.clone(), v);
                }
            }
            (Ended::Ok, ClientOp::Write { key, value } | ClientOp::Cas { key, to: value, .. }) => {
                seen.insert(key.clone(), *value);
            }
            _ => {}
        }
        let ours = matches!(
            done.error.as_deref(),
            Some("client-timeout" | "connection-broken")
        );
        if ended == Ended::Info {
            process = recorder.new_process();
            conn = None;
        } else if ours {
            // A read that failed on our side: the connection is unusable.
            conn = None;
        }
        if done.error.as_deref() == Some("unavailable") {
            // No leader yet (an election is on): do not spin.
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
