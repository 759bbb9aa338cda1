//! The stdio router's own figures: `cargo bench -p harness --bench maelstrom_router`.
//!
//! The nodes are this binary, re-run as a Maelstrom node that does no work of its own
//! (`ROUTER_BENCH_NODE=direct|relay`), so what is measured is the harness: pipes,
//! router threads, the fault model's per-link decision, the history and (unless
//! turned off) the message trace.
//! - `direct`: a node answers each request itself: 2 routed messages per op
//!   (client to node, node to client).
//! - `relay`: a node hands each request to the next node, which answers the client:
//!   3 routed messages per op, one of them node to node (counted, traced, through the
//!   link's fault model).
//!
//! Each case is one `chaos run --nodes 3 --workload kv --nemesis none --concurrency 16
//! --time-limit T` (T: ROUTER_BENCH_SECS, default 10). Reads fail (key-does-not-exist)
//! and cas fails (precondition-failed), writes succeed: the history stays
//! linearizable, and write latency is the latency of a whole op. The latency a
//! node-to-node hop adds is relay's median minus direct's.

use std::io::{BufRead, Write};
use std::process::Command;

use serde_json::{Value, json};

const CHAOS: &str = env!("CARGO_BIN_EXE_chaos");

/// This binary as a Maelstrom node.
fn node(relay: bool) {
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let (mut me, mut next) = (String::new(), String::new());
    let mut line = String::new();
    let mut input = stdin.lock();
    loop {
        line.clear();
        if input.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        let body = &msg["body"];
        let src = msg["src"].as_str().unwrap_or("").to_string();
        let out_msg = match body["type"].as_str().unwrap_or("") {
            "init" => {
                me = body["node_id"].as_str().unwrap_or("").to_string();
                let ids: Vec<&str> = body["node_ids"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let pos = ids.iter().position(|n| *n == me).unwrap_or(0);
                next = ids[(pos + 1) % ids.len()].to_string();
                json!({"src": me, "dest": src,
                    "body": {"type": "init_ok", "in_reply_to": body["msg_id"]}})
            }
            "relay" => answer(&me, body["client"].as_str().unwrap_or(""), &body["req"]),
            _ if relay => json!({"src": me, "dest": next,
                "body": {"type": "relay", "client": src, "req": body}}),
            _ => answer(&me, &src, body),
        };
        let _ = writeln!(out, "{out_msg}");
        let _ = out.flush();
    }
}

/// The reply to a lin-kv request of a node that keeps nothing.
fn answer(me: &str, client: &str, req: &Value) -> Value {
    let body = match req["type"].as_str().unwrap_or("") {
        "write" => json!({"type": "write_ok"}),
        "read" => json!({"type": "error", "code": 20, "text": "no such key"}),
        _ => json!({"type": "error", "code": 22, "text": "no"}),
    };
    let mut body = body;
    body["in_reply_to"] = req["msg_id"].clone();
    json!({"src": me, "dest": client, "body": body})
}

struct Figures {
    ops_per_s: f64,
    p50_us: u64,
    p99_us: u64,
    messages: u64,
    valid: bool,
}

fn run(mode: &str, secs: &str, trace: bool) -> Figures {
    let exe = std::env::current_exe().expect("the bench binary");
    let root = tempfile::tempdir().expect("a temporary directory");
    let mut cmd = Command::new(CHAOS);
    cmd.args(["run", "--no-progress", "--nodes", "3", "--workload", "kv"])
        .args(["--nemesis", "none", "--concurrency", "16", "--seed", "1"])
        .args(["--time-limit", secs])
        .arg("--node-cmd")
        .arg(format!("ROUTER_BENCH_NODE={mode} {}", exe.display()))
        .arg("--results")
        .arg(root.path());
    if !trace {
        cmd.arg("--no-trace-messages");
    }
    let out = cmd.output().expect("chaos runs");
    let dir = root.path().join("latest");
    let text = std::fs::read_to_string(dir.join("result.json")).unwrap_or_else(|_| {
        panic!(
            "no result.json: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let r: Value = serde_json::from_str(&text).expect("result.json is JSON");
    let stats = &r["stats"];
    let messages: u64 = r["links"]
        .as_array()
        .map(|links| {
            links
                .iter()
                .flat_map(|l| l["types"].as_object().into_iter().flatten())
                .filter_map(|(_, c)| c["sent"].as_u64())
                .sum()
        })
        .unwrap_or(0);
    Figures {
        ops_per_s: stats["ops"].as_f64().unwrap_or(0.0)
            / (stats["duration_ms"].as_f64().unwrap_or(1.0) / 1e3),
        p50_us: stats["latency"]["write"]["p50_us"].as_u64().unwrap_or(0),
        p99_us: stats["latency"]["write"]["p99_us"].as_u64().unwrap_or(0),
        messages,
        valid: r["verdict"] == "valid",
    }
}

fn main() {
    if let Ok(mode) = std::env::var("ROUTER_BENCH_NODE") {
        node(mode == "relay");
        return;
    }
    let secs = std::env::var("ROUTER_BENCH_SECS").unwrap_or_else(|_| "10".into());
    println!("stdio router, 3 nodes, 16 clients, {secs} s per case, nemesis none");
    println!(
        "{:<8} {:<6} {:>10} {:>16} {:>9} {:>9} {:>14} {:>6}",
        "mode", "trace", "ops/s", "routed msgs/s", "p50 ms", "p99 ms", "node-to-node", "valid"
    );
    let mut p50 = std::collections::BTreeMap::new();
    for trace in [true, false] {
        for (mode, hops) in [("direct", 2.0), ("relay", 3.0)] {
            let f = run(mode, &secs, trace);
            p50.insert((mode, trace), f.p50_us);
            println!(
                "{:<8} {:<6} {:>10.0} {:>16.0} {:>9.3} {:>9.3} {:>14} {:>6}",
                mode,
                if trace { "on" } else { "off" },
                f.ops_per_s,
                f.ops_per_s * hops,
                f.p50_us as f64 / 1e3,
                f.p99_us as f64 / 1e3,
                f.messages,
                f.valid
            );
        }
    }
    for trace in [true, false] {
        let added = p50[&("relay", trace)] as f64 - p50[&("direct", trace)] as f64;
        println!(
            "latency a node-to-node hop adds at the median (trace {}): {:.3} ms",
            if trace { "on" } else { "off" },
            added / 1e3
        );
    }
}
