//! What the network layer costs: latency added per message, and messages/s carried.
//!
//! `cargo bench -p nemesis --bench proxy` runs, on loopback, in one process:
//!
//! 1. **Added latency.** A sender writes one peer-sized message, waits until the
//!    receiver has read it, and sends the next (no queueing), first straight to the
//!    receiver and then through the proxy of link (1, 2). It prints one-way latency
//!    percentiles of both and the difference of the medians.
//! 2. **One link.** A sender writes messages as fast as the link takes them; the
//!    receiver counts them; messages/s from the first write to the last read.
//! 3. **All links.** The same on every directed link of a 5-node network (20 links)
//!    at once.
//!
//! Knobs: BENCH_LATENCY_MESSAGES (20,000), BENCH_MESSAGES (1,000,000 on one link;
//! all links share the same total).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use nemesis::net::{Addresses, Network};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A phase-2 message of the size the node sends under load (one command).
fn message(i: u64) -> Vec<u8> {
    format!(
        "{{\"type\":\"accept\",\"from\":1,\"ballot\":11,\"slot\":{i},\"commit\":{i},\"command\":{{\"client\":\"c7\",\"id\":{i},\"op\":{{\"f\":\"write\",\"key\":\"k12\",\"value\":{i}}}}}}}\n"
    )
    .into_bytes()
}

/// Binds a receiver; every message read is reported with its arrival time.
async fn receiver() -> (SocketAddr, mpsc::UnboundedReceiver<Instant>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((s, _)) = listener.accept().await else {
                return;
            };
            s.set_nodelay(true).unwrap();
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut r = BufReader::with_capacity(256 << 10, s);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match r.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {
                            if tx.send(Instant::now()).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, rx)
}

async fn dial(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// One-way latency of `count` messages sent one at a time to `to`, in microseconds.
async fn latency(
    to: SocketAddr,
    rx: &mut mpsc::UnboundedReceiver<Instant>,
    count: u64,
) -> Histogram<u64> {
    let mut s = dial(to).await;
    s.write_all(b"{\"hello\":1}\n").await.unwrap();
    rx.recv().await.unwrap();
    let mut h = Histogram::<u64>::new_with_bounds(1, 10_000_000, 3).unwrap();
    for i in 0..count {
        let m = message(i);
        let sent = Instant::now();
        s.write_all(&m).await.unwrap();
        let arrived = rx.recv().await.unwrap();
        h.record(arrived.duration_since(sent).as_micros().max(1) as u64)
            .unwrap();
    }
    h
}

/// Messages/s over `senders` connections writing `per_sender` messages each.
async fn throughput(
    targets: Vec<SocketAddr>,
    rx: &mut mpsc::UnboundedReceiver<Instant>,
    per_sender: u64,
) -> f64 {
    let n = targets.len() as u64;
    let mut streams = Vec::new();
    for t in targets {
        let mut s = dial(t).await;
        s.write_all(b"{\"hello\":1}\n").await.unwrap();
        streams.push(s);
    }
    for _ in 0..n {
        rx.recv().await.unwrap();
    }
    let started = Instant::now();
    for s in streams {
        tokio::spawn(async move {
            let mut w = BufWriter::with_capacity(256 << 10, s);
            for i in 0..per_sender {
                w.write_all(&message(i)).await.unwrap();
            }
            w.flush().await.unwrap();
            // Keep the connection open until the receiver has everything.
            tokio::time::sleep(Duration::from_secs(120)).await;
        });
    }
    let mut last = started;
    for _ in 0..n * per_sender {
        last = tokio::time::timeout(Duration::from_secs(120), rx.recv())
            .await
            .expect("messages stopped arriving")
            .unwrap();
    }
    (n * per_sender) as f64 / last.duration_since(started).as_secs_f64()
}

fn print_latency(label: &str, h: &Histogram<u64>) {
    println!(
        "{label}: one-way latency us p50={} p90={} p99={} max={} ({} messages)",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.9),
        h.value_at_quantile(0.99),
        h.max(),
        h.len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let latency_messages = env_or("BENCH_LATENCY_MESSAGES", 20_000u64);
    let messages = env_or("BENCH_MESSAGES", 1_000_000u64);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        // 1. Added latency on link (1, 2).
        let (dest, mut rx) = receiver().await;
        let addrs: Addresses = Arc::new(Mutex::new(vec![None, Some(dest), Some(dest)]));
        let net = Network::start(2, 1, addrs, None).await.unwrap();
        let direct = latency(dest, &mut rx, latency_messages).await;
        let proxied = latency(net.proxy_addr(1, 2), &mut rx, latency_messages).await;
        print_latency("direct ", &direct);
        print_latency("proxied", &proxied);
        println!(
            "latency added by the proxy: p50 {} us, p99 {} us",
            proxied.value_at_quantile(0.5) as i64 - direct.value_at_quantile(0.5) as i64,
            proxied.value_at_quantile(0.99) as i64 - direct.value_at_quantile(0.99) as i64
        );

        // 2. One link, as fast as it goes.
        let direct = throughput(vec![dest], &mut rx, messages).await;
        let one = throughput(vec![net.proxy_addr(1, 2)], &mut rx, messages).await;
        println!("one link: {one:.0} messages/s through the proxy ({direct:.0} direct)");

        // 3. Every link of a 5-node network at once, all delivering to one receiver.
        let (dest, mut rx) = receiver().await;
        let addrs: Addresses = Arc::new(Mutex::new(vec![Some(dest); 6]));
        let net5 = Network::start(5, 1, addrs, None).await.unwrap();
        let mut links = Vec::new();
        for from in 1..=5 {
            for to in 1..=5 {
                if from != to {
                    links.push(net5.proxy_addr(from, to));
                }
            }
        }
        let count = links.len() as u64;
        let all = throughput(links, &mut rx, messages / count).await;
        println!("all {count} links of 5 nodes at once: {all:.0} messages/s in total");
    });
    rt.shutdown_timeout(Duration::from_secs(1));
}
