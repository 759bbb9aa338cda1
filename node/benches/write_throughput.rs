//! Write throughput of a 3-node cluster on loopback.
//!
//! `cargo bench -p node --bench write_throughput` starts three real `paxos-node`
//! processes, then 64 closed-loop clients (spread over the three nodes, so two thirds
//! of the writes are forwarded to the leader) write unique values for BENCH_SECS
//! seconds (default 20), first with fsync on, then with `--unsafe-no-fsync`. It prints
//! acknowledged writes/s, latency percentiles of acknowledged writes, error counts, and
//! each node's peak resident memory (VmHWM from /proc).
//!
//! A mode ending in `+proxy` puts the chaos harness's network layer (a healthy
//! `nemesis::net` proxy per directed link, on its own one-thread runtime) between the
//! nodes, so the figures show what the proxies cost the cluster.
//!
//! Knobs: BENCH_SECS, BENCH_CLIENTS, BENCH_MODES (default
//! `fsync,no-fsync,fsync+proxy,no-fsync+proxy`), BENCH_NODE_ARGS (more flags for
//! every node, split at spaces: `--snapshot-every 0`, `--no-pre-vote`, ...).

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_paxos-node");

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Nodes {
    children: Vec<Child>,
    ports: Vec<u16>,
    /// The proxies' runtime, when the peers talk through them.
    _network: Option<(tokio::runtime::Runtime, nemesis::net::Network)>,
}

impl Drop for Nodes {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn start_nodes(dir: &std::path::Path, fsync: bool, proxy: bool) -> Nodes {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    drop(listeners);
    let network = proxy.then(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut addrs = vec![None];
        addrs.extend(ports.iter().map(|p| Some(([127, 0, 0, 1], *p).into())));
        let addrs = Arc::new(std::sync::Mutex::new(addrs));
        let net = rt
            .block_on(nemesis::net::Network::start(3, 1, addrs, None))
            .unwrap();
        (rt, net)
    });
    let mut children = Vec::new();
    for id in 1..=3usize {
        let mut cmd = Command::new(BIN);
        cmd.args(["--id", &id.to_string()])
            .args(["--listen", &format!("127.0.0.1:{}", ports[id - 1])])
            .arg("--data-dir")
            .arg(dir.join(format!("n{id}")))
            .args(["--seed", "1"]);
        if !fsync {
            cmd.arg("--unsafe-no-fsync");
        }
        cmd.args(
            std::env::var("BENCH_NODE_ARGS")
                .unwrap_or_default()
                .split_whitespace(),
        );
        for (j, p) in ports.iter().enumerate() {
            let to = j + 1;
            if to == id {
                continue;
            }
            let addr = match &network {
                Some((_, net)) => net.proxy_addr(id as u32, to as u32).to_string(),
                None => format!("127.0.0.1:{p}"),
            };
            cmd.arg("--peer").arg(format!("{to}={addr}"));
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(line.contains("\"ready\":true"), "node {id}: {line}");
        children.push(child);
    }
    Nodes {
        children,
        ports,
        _network: network,
    }
}

fn peak_rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Totals {
    ok: AtomicU64,
    errors: std::sync::Mutex<BTreeMap<String, u64>>,
    hist: std::sync::Mutex<Histogram<u64>>,
}

async fn client(
    port: u16,
    index: u64,
    totals: Arc<Totals>,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (r, mut w) = stream.into_split();
    let mut r = BufReader::new(r);
    let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut line = String::new();
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        seq += 1;
        let value = (index << 40) | seq;
        let req = format!(
            "{{\"id\":{seq},\"op\":\"write\",\"key\":\"k{}\",\"value\":{value}}}\n",
            index % 64
        );
        let started = Instant::now();
        if w.write_all(req.as_bytes()).await.is_err() {
            break;
        }
        line.clear();
        match tokio::time::timeout(Duration::from_secs(10), r.read_line(&mut line)).await {
            Ok(Ok(n)) if n > 0 => {}
            _ => break,
        }
        let us = started.elapsed().as_micros() as u64;
        if !measuring.load(Ordering::Relaxed) {
            continue;
        }
        if line.contains("\"ok\":true") {
            totals.ok.fetch_add(1, Ordering::Relaxed);
            local.saturating_record(us);
        } else {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            let code = v["error"].as_str().unwrap_or("garbled").to_string();
            *totals.errors.lock().unwrap().entry(code).or_default() += 1;
            if code_needs_pause(&v) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    totals.hist.lock().unwrap().add(&local).unwrap();
}

fn code_needs_pause(v: &serde_json::Value) -> bool {
    v["error"] == "unavailable"
}

fn wait_for_leader(ports: &[u16]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for &p in ports {
            if let Ok(s) = std::net::TcpStream::connect(("127.0.0.1", p)) {
                let mut w = s.try_clone().unwrap();
                std::io::Write::write_all(&mut w, b"{\"id\":1,\"op\":\"status\"}\n").unwrap();
                let mut line = String::new();
                std::io::BufRead::read_line(&mut std::io::BufReader::new(s), &mut line).unwrap();
                if line.contains("\"role\":\"leader\"") {
                    return;
                }
            }
        }
        assert!(Instant::now() < deadline, "no leader elected");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(mode: &str, secs: u64, clients: u64) {
    let (base, proxy) = match mode.strip_suffix("+proxy") {
        Some(base) => (base, true),
        None => (mode, false),
    };
    let fsync = base == "fsync";
    let dir = tempfile::tempdir().unwrap();
    let nodes = start_nodes(dir.path(), fsync, proxy);
    wait_for_leader(&nodes.ports);
    let totals = Arc::new(Totals {
        ok: AtomicU64::new(0),
        errors: Default::default(),
        hist: std::sync::Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3).unwrap()),
    });
    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let port = nodes.ports[(i % 3) as usize];
            rt.spawn(client(
                port,
                i,
                totals.clone(),
                measuring.clone(),
                stop.clone(),
            ))
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1)); // warm-up, not measured
    measuring.store(true, Ordering::Relaxed);
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    measuring.store(false, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    rt.block_on(async {
        for h in handles {
            let _ = tokio::time::timeout(Duration::from_secs(15), h).await;
        }
    });
    let rss: Vec<String> = nodes
        .children
        .iter()
        .map(|c| format!("{:.0}", peak_rss_mb(c.id())))
        .collect();
    let h = totals.hist.lock().unwrap();
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "mode={mode} clients={clients} secs={secs}: {:.0} acknowledged writes/s; latency ms p50={:.2} p90={:.2} p99={:.2} max={:.2}; errors={:?}; peak RSS MB per node=[{}]",
        totals.ok.load(Ordering::Relaxed) as f64 / elapsed,
        ms(0.50),
        ms(0.90),
        ms(0.99),
        h.max() as f64 / 1000.0,
        totals.errors.lock().unwrap(),
        rss.join(", ")
    );
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` would pass nothing useful.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let secs = env_or("BENCH_SECS", 20u64);
    let clients = env_or("BENCH_CLIENTS", 64u64);
    let modes = std::env::var("BENCH_MODES")
        .unwrap_or_else(|_| "fsync,no-fsync,fsync+proxy,no-fsync+proxy".into());
    for mode in modes.split(',') {
        run(mode.trim(), secs, clients);
    }
}
