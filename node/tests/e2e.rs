//! End-to-end: real `paxos-node` processes on loopback, driven through the client
//! protocol. Short and bounded: every wait polls with a deadline.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_paxos-node");
const DEADLINE: Duration = Duration::from_secs(15);

/// Free loopback ports (bound and released; a clash with another process is possible
/// but unlikely, and shows as a node failing to start).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

struct Cluster {
    ports: Vec<u16>,
    root: PathBuf,
    children: Vec<Option<Child>>,
    extra_args: Vec<String>,
}

impl Cluster {
    fn start(n: usize, root: &Path, extra_args: &[&str]) -> Cluster {
        let mut c = Cluster {
            ports: free_ports(n),
            root: root.to_path_buf(),
            children: (0..n).map(|_| None).collect(),
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        for id in 1..=n {
            c.spawn(id);
        }
        c
    }

    fn spawn(&mut self, id: usize) {
        let mut cmd = Command::new(BIN);
        cmd.arg("--id")
            .arg(id.to_string())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.ports[id - 1]))
            .arg("--data-dir")
            .arg(self.root.join(format!("n{id}")))
            .args(["--election-timeout-ms", "100,200"])
            .args(&self.extra_args);
        for (j, port) in self.ports.iter().enumerate() {
            if j + 1 != id {
                cmd.arg("--peer").arg(format!("{}=127.0.0.1:{port}", j + 1));
            }
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn paxos-node");
        // The ready line is the first line on stdout.
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(DEADLINE).expect("ready line in time");
        let ready: Value = serde_json::from_str(line.trim()).expect("ready line is JSON");
        assert_eq!(ready["ready"], true);
        assert_eq!(ready["id"], id as u64);
        assert_eq!(
            ready["listen"],
            format!("127.0.0.1:{}", self.ports[id - 1]).as_str()
        );
        self.children[id - 1] = Some(child);
    }

    fn kill(&mut self, id: usize) {
        if let Some(mut child) = self.children[id - 1].take() {
            child.kill().unwrap(); // SIGKILL
            child.wait().unwrap();
        }
    }

    fn client(&self, id: usize) -> Client {
        Client::connect(self.ports[id - 1])
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in 1..=self.children.len() {
            self.kill(id);
        }
    }
}

struct Client {
    stream: BufReader<TcpStream>,
    next_id: u64,
}

impl Client {
    fn connect(port: u16) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Client {
            stream: BufReader::new(stream),
            next_id: 1,
        }
    }

    fn send_line(&mut self, line: &str) {
        let s = self.stream.get_mut();
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
    }

    fn read_reply(&mut self) -> Value {
        let mut line = String::new();
        self.stream.read_line(&mut line).expect("reply in time");
        serde_json::from_str(line.trim()).unwrap_or_else(|_| panic!("not JSON: {line:?}"))
    }

    fn call(&mut self, mut request: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        request["id"] = json!(id);
        self.send_line(&request.to_string());
        let reply = self.read_reply();
        assert_eq!(reply["id"], id, "{reply}");
        reply
    }

    /// Retries an op until it succeeds (leader elections make early ops `unavailable`).
    fn call_ok(&mut self, request: Value) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let reply = self.call(request.clone());
            if reply["ok"] == true {
                return reply;
            }
            assert!(
                reply["error"] == "unavailable" || reply["error"] == "timeout",
                "{reply}"
            );
            assert!(Instant::now() < deadline, "no success in time: {reply}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Polls node `id`'s dump until `pred` holds.
fn wait_dump(cluster: &Cluster, id: usize, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + DEADLINE;
    let mut c = cluster.client(id);
    loop {
        let dump = c.call(json!({"op": "dump"}));
        if pred(&dump) {
            return dump;
        }
        assert!(
            Instant::now() < deadline,
            "node {id} never got there: {dump}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn log_values(dump: &Value) -> Vec<i64> {
    dump["log"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| {
            let c = &e["command"];
            c["value"].as_i64().or_else(|| c["to"].as_i64())
        })
        .collect()
}

#[test]
fn three_nodes_decide_and_a_killed_node_remembers_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(3, dir.path(), &[]);

    // Contended proposals through two nodes: both clients learn the same value.
    let mut c1 = cluster.client(1);
    let mut c2 = cluster.client(2);
    let a = c1.call_ok(json!({"op": "propose", "key": "r1", "value": 11}));
    let b = c2.call_ok(json!({"op": "propose", "key": "r1", "value": 22}));
    assert_eq!(a["value"], b["value"]);
    let decided = a["value"].as_i64().unwrap();
    assert!(decided == 11 || decided == 22);

    // KV through a follower and the leader alike.
    c2.call_ok(json!({"op": "write", "key": "k", "value": 100}));
    c1.call_ok(json!({"op": "cas", "key": "k", "from": 100, "to": 101}));
    let read = c2.call_ok(json!({"op": "read", "key": "k"}));
    assert_eq!(read["value"], 101);

    // Node 3 has learned all of it.
    let before = wait_dump(&cluster, 3, |d| {
        d["registers"]["r1"] == decided && log_values(d).contains(&101)
    });
    let status_before = cluster.client(3).call(json!({"op": "status"}));

    // SIGKILL everything, then restart node 3 alone: no peer can teach it anything,
    // so what it shows comes from its own write-ahead log.
    for id in 1..=3 {
        cluster.kill(id);
    }
    cluster.spawn(3);
    let after = cluster.client(3).call(json!({"op": "dump"}));
    assert_eq!(after["registers"], before["registers"]);
    assert_eq!(after["log"], before["log"]);
    let status_after = cluster.client(3).call(json!({"op": "status"}));
    assert!(
        status_after["ballot"].as_u64() >= status_before["ballot"].as_u64(),
        "promise forgotten: {status_before} then {status_after}"
    );
    assert!(status_after["incarnation"].as_u64() > status_before["incarnation"].as_u64());
    // A decided register answers with its value even without a quorum.
    let again = cluster
        .client(3)
        .call(json!({"op": "propose", "key": "r1", "value": 33}));
    assert_eq!(again["value"], decided);

    // The whole cluster comes back and keeps going where it left off.
    cluster.spawn(1);
    cluster.spawn(2);
    let mut c = cluster.client(1);
    let read = c.call_ok(json!({"op": "read", "key": "k"}));
    assert_eq!(read["value"], 101);
    c.call_ok(json!({"op": "write", "key": "k", "value": 102}));
    let read = cluster.client(3).call_ok(json!({"op": "read", "key": "k"}));
    assert_eq!(read["value"], 102);
}

#[test]
fn bad_input_gets_errors_and_never_kills_the_node() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(1, dir.path(), &["--unsafe-no-fsync"]);
    let mut c = cluster.client(1);
    for (line, code) in [
        ("{not json", "malformed-request"),
        (r#"{"id":1,"op":"teleport"}"#, "unknown-op"),
        (
            r#"{"id":2,"op":"write","key":"k","value":"7"}"#,
            "malformed-request",
        ),
        (
            r#"{"id":3,"op":"write","key":"k","value":1e400}"#,
            "malformed-request",
        ),
        (
            r#"{"id":4,"op":"cas","key":"k","from":1}"#,
            "malformed-request",
        ),
        ("\u{0}\u{1}\u{2}", "malformed-request"),
    ] {
        c.send_line(line);
        let reply = c.read_reply();
        assert_eq!(reply["error"], code, "{line}: {reply}");
        assert_eq!(reply["definite"], true);
    }
    // Still usable after all that.
    let reply = c.call_ok(json!({"op": "write", "key": "k", "value": 1}));
    assert_eq!(reply["ok"], true);

    // A line over 1 MiB gets an error, then the connection closes.
    let mut big = cluster.client(1);
    let line = format!(
        r#"{{"id":9,"op":"write","key":"{}","value":1}}"#,
        "x".repeat(1 << 20)
    );
    big.send_line(&line);
    let reply = big.read_reply();
    assert_eq!(reply["error"], "malformed-request");
    let mut rest = String::new();
    let n = big.stream.read_to_string(&mut rest).unwrap_or(0);
    assert_eq!(n, 0, "connection should be closed");

    // A peer claiming an id outside 1..=N is dropped.
    let mut liar = TcpStream::connect(("127.0.0.1", cluster.ports[0])).unwrap();
    liar.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    liar.write_all(b"{\"hello\":9}\n{\"type\":\"decided\",\"key\":\"r\",\"value\":1}\n")
        .unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(liar.read(&mut buf).unwrap_or(0), 0, "closed by the node");

    // A peer speaking garbage after a valid hello changes nothing.
    let mut garbage = TcpStream::connect(("127.0.0.1", cluster.ports[0])).unwrap();
    garbage.write_all(b"{\"hello\":1}\n").unwrap(); // its own id: dropped too
    let mut c = cluster.client(1);
    let reply = c.call(json!({"op": "dump"}));
    assert_eq!(reply["registers"], json!({}));
    let read = c.call_ok(json!({"op": "read", "key": "k"}));
    assert_eq!(read["value"], 1);
}

/// Starts a lone node on `data`, which must refuse to start: its stderr.
fn refused_start(data: &Path) -> String {
    let out = Command::new(BIN)
        .args(["--id", "1", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no ready line");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_corrupt_wal_stops_the_node_with_the_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("n1");
    {
        let cluster = Cluster::start(1, dir.path(), &[]);
        let mut c = cluster.client(1);
        c.call_ok(json!({"op": "write", "key": "k", "value": 1}));
        c.call_ok(json!({"op": "write", "key": "k", "value": 2}));
    }
    let wal = data.join("wal.log");
    let mut bytes = std::fs::read(&wal).unwrap();
    bytes[12] ^= 0x20; // inside the first record's payload
    std::fs::write(&wal, &bytes).unwrap();
    let stderr = refused_start(&data);
    assert!(stderr.contains("wal.log"), "{stderr}");
    assert!(stderr.contains("byte offset 0"), "{stderr}");
}

#[test]
fn a_node_restarts_from_its_snapshot_and_refuses_a_damaged_one_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("n1");
    {
        let cluster = Cluster::start(1, dir.path(), &["--snapshot-every", "3"]);
        let mut c = cluster.client(1);
        for v in 1..=7 {
            c.call_ok(json!({"op": "write", "key": "k", "value": v}));
        }
    }
    assert!(
        data.join("snapshot.bin").exists(),
        "a snapshot every 3 commands"
    );
    {
        // Snapshot plus the log after it: the last write is still there.
        let cluster = Cluster::start(1, dir.path(), &["--snapshot-every", "3"]);
        let mut c = cluster.client(1);
        let read = c.call_ok(json!({"op": "read", "key": "k"}));
        assert_eq!(read["value"], 7, "{read}");
    }
    let snap = data.join("snapshot.bin");
    let mut bytes = std::fs::read(&snap).unwrap();
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    std::fs::write(&snap, &bytes).unwrap();
    let stderr = refused_start(&data);
    assert!(stderr.contains("snapshot.bin"), "{stderr}");
}

#[test]
fn flag_errors_exit_with_2_and_help_lists_every_bug() {
    let out = Command::new(BIN)
        .args([
            "--id",
            "4",
            "--data-dir",
            "/tmp/x",
            "--peer",
            "2=127.0.0.1:1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside 1..=2"));
    let out = Command::new(BIN)
        .args(["--id", "1", "--data-dir", "/tmp/x", "--bug", "nope"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for bug in [
        "forget-promises",
        "accept-lower-ballot",
        "ignore-accepted",
        "minority-quorum",
        "stale-read",
        "early-ack",
        "unsynced-snapshot",
    ] {
        assert!(help.contains(bug), "--help lacks {bug}");
    }
    assert!(help.contains("UNSAFE, for benchmarks only"));
}

/// `paxos-node --maelstrom` driven over its stdin and stdout, one node alone.
struct StdioNode {
    child: Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl StdioNode {
    fn start(dir: &Path) -> StdioNode {
        let mut child = Command::new(BIN)
            .args([
                "--maelstrom",
                "--election-timeout-ms",
                "50,100",
                "--data-dir",
            ])
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        StdioNode {
            child,
            stdin,
            lines,
        }
    }

    /// Sends `body` from `src` and returns the reply's body.
    fn ask(&mut self, src: &str, body: Value) -> Value {
        let line = json!({"src": src, "dest": "n1", "body": body});
        writeln!(self.stdin, "{line}").unwrap();
        let reply = self
            .lines
            .recv_timeout(DEADLINE)
            .expect("a reply within the deadline");
        let v: Value = serde_json::from_str(&reply).expect("a JSON line");
        assert_eq!(
            (v["src"].as_str(), v["dest"].as_str()),
            (Some("n1"), Some(src))
        );
        assert_eq!(v["body"]["in_reply_to"], body["msg_id"], "{v}");
        v["body"].clone()
    }

    /// Asks until the answer is not "temporarily unavailable" (no leader yet).
    fn ask_served(&mut self, body: Value) -> Value {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let r = self.ask("c1", body.clone());
            if r["code"] != 11 {
                return r;
            }
            assert!(Instant::now() < deadline, "never served: {r}");
        }
    }
}

#[test]
fn over_stdio_the_node_serves_lin_kv_and_recovers_from_its_wal() {
    let root = tempfile::tempdir().unwrap();
    let mut node = StdioNode::start(root.path());
    let ok = node.ask(
        "c0",
        json!({"type": "init", "msg_id": 1, "node_id": "n1", "node_ids": ["n1"]}),
    );
    assert_eq!(ok["type"], "init_ok");
    let r = node.ask_served(json!({"type": "read", "msg_id": 2, "key": 0}));
    assert_eq!(r["code"], 20, "an absent key: {r}");
    let r = node.ask_served(json!({"type": "write", "msg_id": 3, "key": 0, "value": 7}));
    assert_eq!(r["type"], "write_ok");
    let r = node.ask_served(json!({"type": "cas", "msg_id": 4, "key": 0, "from": 1, "to": 2}));
    assert_eq!(r["code"], 22, "{r}");
    let r = node.ask_served(json!({"type": "cas", "msg_id": 5, "key": 0, "from": 7, "to": 8}));
    assert_eq!(r["type"], "cas_ok");
    let r = node.ask("c1", json!({"type": "txn", "msg_id": 6}));
    assert_eq!(r["code"], 12, "no micro-ops: malformed");
    let r = node.ask("c1", json!({"type": "broadcast", "msg_id": 7, "key": 0}));
    assert_eq!(r["code"], 10, "not supported");
    // Maelstrom's transactions: one command, its reads filled in, keys as given.
    let txn = json!([
        ["append", 5, 1],
        ["r", 5, null],
        ["w", 6, 2],
        ["r", 6, null]
    ]);
    let r = node.ask_served(json!({"type": "txn", "msg_id": 8, "txn": txn}));
    assert_eq!(r["type"], "txn_ok", "{r}");
    assert_eq!(
        r["txn"],
        json!([["append", 5, 1], ["r", 5, [1]], ["w", 6, 2], ["r", 6, 2]])
    );
    // The end of stdin ends the node.
    drop(node.stdin);
    let deadline = Instant::now() + DEADLINE;
    while node.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running after stdin ended");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        root.path().join("n1").is_dir(),
        "the WAL is in DATA_DIR/NODE_ID"
    );
    // Started again in the same place, it has the value.
    let mut node = StdioNode::start(root.path());
    node.ask(
        "c0",
        json!({"type": "init", "msg_id": 1, "node_id": "n1", "node_ids": ["n1"]}),
    );
    let r = node.ask_served(json!({"type": "read", "msg_id": 2, "key": 0}));
    assert_eq!(r, json!({"type": "read_ok", "value": 8, "in_reply_to": 2}));
    let _ = node.child.kill();
    let _ = node.child.wait();
}

#[test]
fn maelstrom_mode_takes_its_id_from_init_only() {
    for args in [
        vec!["--maelstrom", "--id", "1"],
        vec!["--maelstrom", "--peer", "2=127.0.0.1:1"],
        vec!["--data-dir", "/tmp/x"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}
