//! etcd as a system under test (`--system etcd`, docs/etcd.md): N members of the
//! `etcd` on PATH, each in a network namespace of its own ([`NetnsNetwork`]; etcd
//! advertises one address to all its peers, so the kernel makes the faults), with
//! their data directories in the run directory, and a client for etcd's v3 JSON
//! gateway over HTTP/1.1.
//!
//! Requests: a write is `/v3/kv/put`; a read is `/v3/kv/range` (linearizable, etcd's
//! default); a cas is `/v3/kv/txn` comparing the value. Keys are the plan's key names,
//! values the decimal text of the integer, both base64 in the JSON as the gateway
//! wants.
//!
//! Outcomes, with care for what may have happened: a read that does not succeed is
//! `fail` (it changes nothing); a write or cas whose connection could not be made is
//! `fail` (nothing was sent); a cas whose compare failed is `fail`
//! (`precondition-failed`); a write or cas that timed out, lost its connection or got
//! any error back is `info`, since etcd may have applied it (a "request timed out" or
//! a "leader changed" can follow a commit), except an invalid argument, which is
//! definite.
//!
//! The HTTP client is written here: one request at a time on a kept-alive
//! connection made by the [`Dialer`] (from the namespace network's hub); httparse
//! reads the response head, and the body is read by Content-Length or chunks.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use nemesis::FaultError;
use nemesis::netns::{NetnsNetwork, node_addr};
use results::Plan;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{
    CLIENT_TIMEOUT, CONNECTION_BROKEN, Client, Completion, Dialer, Failure, Launcher, NodeId,
    System, WorkloadOp,
};
use crate::recorder::Recorder;

const CLIENT_PORT: u16 = 2379;
const PEER_PORT: u16 = 2380;
/// How long a member has to accept client connections after it starts.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// The longest response the client reads.
const MAX_RESPONSE_BYTES: usize = 4 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How to get etcd when it is missing.
pub const INSTALL_HINT: &str = "etcd is not installed: apt-get install etcd-server (Debian ships etcd 3.4), or put an etcd binary on PATH";

/// The `etcd` on PATH and its version ("etcd 3.4.23"), or why there is none.
pub fn find_etcd() -> Result<(PathBuf, String), String> {
    let path = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("etcd"))
                .find(|p| p.is_file())
        })
        .ok_or_else(|| INSTALL_HINT.to_string())?;
    let out = Command::new(&path)
        .arg("--version")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("etcd Version:"))
        .map(|v| format!("etcd {}", v.trim()))
        .unwrap_or_else(|| "etcd (version unknown)".into());
    Ok((path, version))
}

/// Launches [`EtcdSystem`]s.
pub struct EtcdLauncher;

impl EtcdLauncher {
    /// Sets up the network and the data of a run; starts nothing.
    async fn set_up(
        &self,
        plan: &Plan,
        run_dir: &Path,
        _recorder: &Arc<Recorder>,
    ) -> Result<EtcdSystem, String> {
        let (etcd, version) = find_etcd()?;
        let net = super::netns_network(plan.nodes, run_dir)?;
        Ok(EtcdSystem {
            n: plan.nodes,
            etcd,
            version,
            token: format!("chaos-{}", plan.seed),
            run_dir: run_dir.to_path_buf(),
            procs: crate::cluster::Members::new(plan.nodes),
            spawner: crate::cluster::Spawner::new(),
            net,
        })
    }
}

impl Launcher for EtcdLauncher {
    type System = EtcdSystem;

    /// What a launch sets up (a network, files, the node command) is the harness's
    /// own: its failures are the harness's.
    async fn launch(
        &self,
        plan: &Plan,
        run_dir: &Path,
        recorder: &Arc<Recorder>,
    ) -> Result<EtcdSystem, Failure> {
        self.set_up(plan, run_dir, recorder)
            .await
            .map_err(Failure::harness)
    }
}

pub struct EtcdSystem {
    n: usize,
    etcd: PathBuf,
    version: String,
    token: String,
    run_dir: PathBuf,
    procs: crate::cluster::Members,
    spawner: crate::cluster::Spawner,
    net: Arc<NetnsNetwork>,
}

fn client_addr(id: NodeId) -> std::net::SocketAddr {
    (node_addr(id), CLIENT_PORT).into()
}

impl EtcdSystem {
    /// Starts member `id` and waits until it accepts client connections. The harness's
    /// part failing (a directory, a namespace, the program) is its failure; etcd
    /// exiting or never accepting is etcd's.
    fn spawn(&self, id: NodeId) -> Result<(), Failure> {
        let dir = self.run_dir.join(format!("nodes/n{id}"));
        let ours = |e: std::io::Error| Failure::harness(format!("node {id}: {e}"));
        std::fs::create_dir_all(&dir).map_err(ours)?;
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr.log"))
            .map_err(ours)?;
        let peer = |j: NodeId| format!("http://{}:{PEER_PORT}", node_addr(j));
        let cluster: Vec<String> = (1..=self.n as NodeId)
            .map(|j| format!("n{j}={}", peer(j)))
            .collect();
        let client = format!("http://{}", client_addr(id));
        let mut cmd = Command::new(&self.etcd);
        cmd.args(["--name", &format!("n{id}")])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--listen-peer-urls", &peer(id)])
            .args(["--initial-advertise-peer-urls", &peer(id)])
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--initial-cluster", &cluster.join(",")])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &self.token])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(stderr.try_clone().map_err(ours)?))
            .stderr(Stdio::from(stderr))
            .process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let ns = self
            .net
            .namespace(id)
            .ok_or_else(|| Failure::harness(format!("node {id} has no namespace")))?;
        nemesis::netns::enter(&mut cmd, ns);
        let child = self.spawner.spawn(cmd).map_err(|e| {
            Failure::harness(format!(
                "node {id}: cannot run {}: {e}",
                self.etcd.display()
            ))
        })?;
        self.procs.insert(id, child, 0);
        // Ready: it accepts client connections (it serves them once the cluster has
        // a leader, which needs a majority started: members start one at a time).
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if !self.is_running(id) {
                return Err(Failure::system(format!(
                    "node {id}: etcd exited during start-up; last lines of its log:\n{}",
                    crate::cluster::tail(&dir.join("stderr.log"), 15)
                )));
            }
            if self.net.connect(client_addr(id), CONNECT_TIMEOUT).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Failure::system(format!(
                    "node {id}: etcd did not accept client connections within {} s; last lines of its log:\n{}",
                    START_TIMEOUT.as_secs(),
                    crate::cluster::tail(&dir.join("stderr.log"), 15)
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl nemesis::Nodes for EtcdSystem {
    fn kill(&self, id: NodeId) -> nemesis::Acted {
        self.procs.kill(id, |_| {}).map(|k| k.is_some())
    }
    fn pause(&self, id: NodeId) -> nemesis::Acted {
        self.procs.pause(id)
    }
    fn resume(&self, id: NodeId) -> nemesis::Acted {
        self.procs.resume(id)
    }
    /// Starts the member again on its data directory: it rejoins the cluster.
    fn restart(&self, id: NodeId) -> nemesis::Acted {
        if self.is_running(id) {
            return Ok(false);
        }
        self.spawn(id)
            .map(|()| true)
            .map_err(|e| FaultError::Unknown(e.what))
    }
}

impl System for EtcdSystem {
    type Client = EtcdClient;

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
        self.net.as_ref()
    }

    async fn connect(&self, id: NodeId) -> Option<EtcdClient> {
        if !self.is_running(id) {
            return None;
        }
        Some(EtcdClient {
            node: id,
            dialer: Dialer::Netns(self.net.clone()),
            conn: None,
        })
    }

    fn shutdown(&self) {
        for id in 1..=self.n as NodeId {
            let _ = nemesis::Nodes::kill(self, id);
        }
    }

    fn version(&self) -> Option<String> {
        Some(self.version.clone())
    }

    /// Asks every running, unpaused member for its status at once (its own member id
    /// and the leader's), and takes the leader most of them name.
    async fn leader(&self) -> nemesis::LeaderView {
        let mut asks = tokio::task::JoinSet::new();
        for id in 1..=self.n as NodeId {
            if !self.is_running(id) || self.is_paused(id) {
                continue;
            }
            let mut client = EtcdClient {
                node: id,
                dialer: Dialer::Netns(self.net.clone()),
                conn: None,
            };
            asks.spawn(async move {
                let (status, body) = client
                    .post("/v3/maintenance/status", &json!({}), STATUS_TIMEOUT)
                    .await
                    .ok()?;
                (status == 200).then(|| {
                    (
                        id,
                        uint(&body["header"]["member_id"]),
                        uint(&body["leader"]),
                    )
                })
            });
        }
        let mut statuses = Vec::new();
        while let Some(asked) = asks.join_next().await {
            if let Ok(Some(s)) = asked {
                statuses.push(s);
            }
        }
        nemesis::LeaderView::by_vote(&leader_votes(statuses))
    }
}

/// How long the nemesis waits for a member's status when it aims a fault by role.
const STATUS_TIMEOUT: Duration = Duration::from_millis(500);

/// A uint64 of etcd's JSON: the gateway writes them as strings.
fn uint(v: &Value) -> Option<u64> {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .filter(|x| *x != 0)
}

/// Each answering node's vote for a leader, from (node, its member id, the leader's
/// member id): member ids are named by the node that answered with them.
fn leader_votes(
    statuses: Vec<(NodeId, Option<u64>, Option<u64>)>,
) -> Vec<(NodeId, Option<NodeId>)> {
    let node_of: std::collections::BTreeMap<u64, NodeId> = statuses
        .iter()
        .filter_map(|(id, member, _)| member.map(|m| (m, *id)))
        .collect();
    let mut votes: Vec<(NodeId, Option<NodeId>)> = statuses
        .iter()
        .map(|(id, _, leader)| (*id, leader.and_then(|l| node_of.get(&l).copied())))
        .collect();
    votes.sort_unstable();
    votes
}

/// A client of one member over its JSON gateway.
pub struct EtcdClient {
    node: NodeId,
    dialer: Dialer,
    conn: Option<TcpStream>,
}

/// Why an HTTP exchange did not give a response.
#[derive(Debug, PartialEq)]
enum HttpError {
    /// No connection could be made: nothing was sent.
    Connect,
    /// Sent (maybe), but no whole response within the timeout.
    Timeout,
    /// The connection broke or the response was malformed.
    Broken,
}

impl EtcdClient {
    /// One POST with a JSON body; the status and the parsed JSON body.
    async fn post(
        &mut self,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<(u16, Value), HttpError> {
        if self.conn.is_none() {
            self.conn = Some(
                self.dialer
                    .connect(client_addr(self.node), CONNECT_TIMEOUT.min(timeout))
                    .await
                    .ok_or(HttpError::Connect)?,
            );
        }
        let stream = self.conn.as_mut().ok_or(HttpError::Connect)?;
        let body = body.to_string();
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            client_addr(self.node),
            body.len()
        );
        let exchange = async {
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|_| HttpError::Broken)?;
            read_response(stream).await
        };
        let result = match tokio::time::timeout(timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(HttpError::Timeout),
        };
        match &result {
            // A connection that failed or may hold a late response is not reused.
            Err(_) => self.conn = None,
            Ok((_, _, close)) if *close => self.conn = None,
            Ok(_) => {}
        }
        let (status, body, _) = result?;
        let json = serde_json::from_slice(&body).map_err(|_| HttpError::Broken)?;
        Ok((status, json))
    }
}

/// Appends what the stream has next to `buf`; the end of the stream is an error.
async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), HttpError> {
    let mut chunk = [0u8; 8192];
    let n = stream
        .read(&mut chunk)
        .await
        .map_err(|_| HttpError::Broken)?;
    if n == 0 {
        return Err(HttpError::Broken);
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// Reads one HTTP/1.1 response: (status, body, whether the server closes).
async fn read_response(stream: &mut TcpStream) -> Result<(u16, Vec<u8>, bool), HttpError> {
    let mut buf = Vec::with_capacity(1024);
    // The head.
    let (status, head_len, length, chunked, close) = loop {
        read_more(stream, &mut buf).await?;
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let header = |name: &str| {
                    resp.headers
                        .iter()
                        .find(|h| h.name.eq_ignore_ascii_case(name))
                        .map(|h| String::from_utf8_lossy(h.value).to_ascii_lowercase())
                };
                let length = header("content-length").and_then(|v| v.trim().parse::<usize>().ok());
                let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
                let close = header("connection").is_some_and(|v| v.contains("close"));
                break (resp.code.unwrap_or(0), len, length, chunked, close);
            }
            Ok(httparse::Status::Partial) if buf.len() < 64 << 10 => {}
            _ => return Err(HttpError::Broken),
        }
    };
    let mut rest = buf.split_off(head_len);
    if let Some(len) = length.filter(|_| !chunked) {
        if len > MAX_RESPONSE_BYTES {
            return Err(HttpError::Broken);
        }
        while rest.len() < len {
            read_more(stream, &mut rest).await?;
        }
        // Bytes past the response would be out of step with the next request:
        // such a connection is not reused.
        let extra = rest.len() > len;
        rest.truncate(len);
        return Ok((status, rest, close || extra));
    }
    if !chunked {
        return Err(HttpError::Broken); // a body without framing: not what etcd sends
    }
    // Chunked: "<hex size>\r\n<data>\r\n" ... "0\r\n\r\n".
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(p) = rest.windows(2).position(|w| w == b"\r\n") {
                break p;
            }
            if rest.len() > 1024 {
                return Err(HttpError::Broken);
            }
            read_more(stream, &mut rest).await?;
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]).to_string();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| HttpError::Broken)?;
        if body.len() + size > MAX_RESPONSE_BYTES {
            return Err(HttpError::Broken);
        }
        let need = line_end + 2 + size + 2;
        while rest.len() < need {
            read_more(stream, &mut rest).await?;
        }
        body.extend_from_slice(&rest[line_end + 2..line_end + 2 + size]);
        rest.drain(..need);
        if size == 0 {
            return Ok((status, body, close || !rest.is_empty()));
        }
    }
}

fn b64(s: &str) -> String {
    B64.encode(s.as_bytes())
}

/// The integer a value's bytes (base64 of its decimal text) stand for.
fn value_of(v: &Value) -> Option<i64> {
    let bytes = B64.decode(v.as_str()?).ok()?;
    std::str::from_utf8(&bytes).ok()?.parse().ok()
}

/// The request for a workload op: (path, body). Register proposals are not part of
/// the kv workload.
fn request(op: &WorkloadOp) -> Option<(&'static str, Value)> {
    Some(match op {
        WorkloadOp::Read { key } => ("/v3/kv/range", json!({"key": b64(key)})),
        WorkloadOp::Write { key, value } => (
            "/v3/kv/put",
            json!({"key": b64(key), "value": b64(&value.to_string())}),
        ),
        WorkloadOp::Cas { key, from, to } => (
            "/v3/kv/txn",
            json!({
                "compare": [{"key": b64(key), "result": "EQUAL", "target": "VALUE", "value": b64(&from.to_string())}],
                "success": [{"requestPut": {"key": b64(key), "value": b64(&to.to_string())}}],
            }),
        ),
        WorkloadOp::Propose { .. } => return None,
    })
}

/// How the client classifies an HTTP response to `op` (see the module comment).
fn completion(op: &WorkloadOp, status: u16, body: &Value) -> Completion {
    if status != 200 {
        let message = body["error"]
            .as_str()
            .or(body["message"].as_str())
            .unwrap_or("error")
            .to_string();
        // gRPC InvalidArgument: refused before anything happened.
        if body["code"].as_i64() == Some(3) {
            return Completion::fail(&message);
        }
        return Completion::unknown(op, &message, true);
    }
    match op {
        WorkloadOp::Read { .. } => match body["kvs"].as_array().and_then(|kvs| kvs.first()) {
            None => Completion::ok(None),
            Some(kv) => match value_of(&kv["value"]) {
                Some(v) => Completion::ok(Some(v)),
                None => Completion::unknown(op, "a value that is not an integer", false),
            },
        },
        WorkloadOp::Write { .. } => Completion::ok(None),
        WorkloadOp::Cas { .. } => {
            if body["succeeded"].as_bool() == Some(true) {
                Completion::ok(None)
            } else {
                Completion::fail("precondition-failed")
            }
        }
        WorkloadOp::Propose { .. } => Completion::fail("not-supported"),
    }
}

impl Client for EtcdClient {
    async fn call(&mut self, op: &WorkloadOp, timeout: Duration) -> Completion {
        let Some((path, body)) = request(op) else {
            return Completion::fail("not-supported");
        };
        match self.post(path, &body, timeout).await {
            Ok((status, json)) => completion(op, status, &json),
            Err(HttpError::Connect) => Completion::fail("connection-refused"),
            Err(HttpError::Timeout) => Completion::unknown(op, CLIENT_TIMEOUT, true),
            Err(HttpError::Broken) => Completion::unknown(op, CONNECTION_BROKEN, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::Outcome;

    #[test]
    fn the_leader_is_named_by_member_ids_the_members_answered_with() {
        let votes = leader_votes(vec![
            (2, Some(22), Some(11)),
            (1, Some(11), Some(11)),
            (3, Some(33), Some(44)), // a leader that did not answer: unknown
        ]);
        assert_eq!(votes, vec![(1, Some(1)), (2, Some(1)), (3, None)]);
        assert_eq!(nemesis::LeaderView::by_vote(&votes).leader, Some(1));
        assert_eq!(uint(&json!("123")), Some(123));
        assert_eq!(uint(&json!(0)), None);
    }

    #[test]
    fn requests_carry_base64_keys_and_decimal_values() {
        let (path, body) = request(&WorkloadOp::Cas {
            key: "k1".into(),
            from: 5,
            to: -6,
        })
        .unwrap();
        assert_eq!(path, "/v3/kv/txn");
        assert_eq!(body["compare"][0]["value"], b64("5"));
        assert_eq!(body["success"][0]["requestPut"]["value"], b64("-6"));
        assert_eq!(body["compare"][0]["key"], "azE=");
        assert!(
            request(&WorkloadOp::Propose {
                key: "r".into(),
                value: 1
            })
            .is_none()
        );
    }

    #[test]
    fn responses_map_to_outcomes_with_care_for_writes() {
        let read = WorkloadOp::Read { key: "k".into() };
        let write = WorkloadOp::Write {
            key: "k".into(),
            value: 3,
        };
        let cas = WorkloadOp::Cas {
            key: "k".into(),
            from: 1,
            to: 2,
        };
        let c = completion(
            &read,
            200,
            &json!({"kvs": [{"value": b64("42")}], "count": "1"}),
        );
        assert_eq!((c.outcome, c.value), (Outcome::Ok, Some(42)));
        let c = completion(&read, 200, &json!({"header": {}}));
        assert_eq!((c.outcome, c.value), (Outcome::Ok, None), "an absent key");
        assert_eq!(completion(&write, 200, &json!({})).outcome, Outcome::Ok);
        let c = completion(&cas, 200, &json!({"succeeded": false}));
        assert_eq!(
            (c.outcome, c.error.as_deref()),
            (Outcome::Fail, Some("precondition-failed"))
        );
        assert_eq!(
            completion(&cas, 200, &json!({"succeeded": true})).outcome,
            Outcome::Ok
        );
        // An error after the request was sent may follow a commit: info for writes.
        let timed_out = json!({"error": "etcdserver: request timed out", "code": 14});
        assert_eq!(completion(&write, 503, &timed_out).outcome, Outcome::Info);
        assert_eq!(completion(&cas, 503, &timed_out).outcome, Outcome::Info);
        assert_eq!(completion(&read, 503, &timed_out).outcome, Outcome::Fail);
        let invalid = json!({"error": "bad", "code": 3});
        assert_eq!(completion(&write, 400, &invalid).outcome, Outcome::Fail);
    }

    #[tokio::test]
    async fn responses_are_read_by_length_and_by_chunks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // One response per request, as etcd answers a kept-alive connection.
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut byte = [0u8; 1];
            s.read_exact(&mut byte).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\n{\"a\":1}")
                .await
                .unwrap();
            s.read_exact(&mut byte).await.unwrap();
            s.write_all(b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"b\"\r\n3;x=y\r\n:2}\r\n0\r\n\r\n")
                .await
                .unwrap();
        });
        let exchange = async {
            let mut c = TcpStream::connect(addr).await.unwrap();
            c.write_all(b"1").await.unwrap();
            let first = read_response(&mut c).await.unwrap();
            c.write_all(b"2").await.unwrap();
            let second = read_response(&mut c).await.unwrap();
            (first, second)
        };
        let ((s1, b1, _), (s2, b2, _)) = tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .expect("both responses within 5 s");
        assert_eq!((s1, b1.as_slice()), (200, &b"{\"a\":1}"[..]));
        assert_eq!((s2, b2.as_slice()), (503, &b"{\"b\":2}"[..]));
        server.await.unwrap();
    }
}
