//! The network layer: a forwarding proxy per directed link.
//!
//! Node i dials node j only through the proxy of link (i, j) (docs/protocol.md: a node
//! sends to j only on the connection it dialed to the address `--peer j=...` names),
//! so this layer sees every message of every link. It frames the JSON lines, so the
//! unit of a fault is one message: a cut link drops every message on it; a degraded
//! link drops, delays, duplicates and reorders single messages, each choice drawn from
//! the link's own seeded stream. The `hello` that opens a connection always passes.
//!
//! The proxy dials the destination's current address when a connection comes in, so
//! it follows a restarted node to its new port; when the destination goes away (a
//! write fails), it closes the incoming side and the sender's dialer reconnects.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::{LinkFaults, substream};

/// Where each node listens now, indexed by node id; `None` while it is down. The
/// cluster updates it on every (re)start, and the proxies read it per connection.
pub type Addresses = Arc<Mutex<Vec<Option<SocketAddr>>>>;

/// Peer messages can be large (phase-1 reports, catch-up batches).
const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Messages waiting for delivery on one connection, at most.
const DELIVERY_QUEUE: usize = 65_536;

/// Message counts of one type on one link.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub sent: u64,
    pub delivered: u64,
    pub dropped: u64,
    pub duplicated: u64,
}

/// The controllable state of one directed link.
pub struct Link {
    pub from: u32,
    pub to: u32,
    pub listen: SocketAddr,
    cut: AtomicBool,
    /// Whether `faults` is set: lets a healthy link skip the lock per message.
    degraded: AtomicBool,
    faults: Mutex<Option<LinkFaults>>,
    rng: Mutex<ChaCha8Rng>,
    counts: Mutex<BTreeMap<String, Counts>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LinkStats {
    pub from: u32,
    pub to: u32,
    /// Message type -> counts.
    pub types: BTreeMap<String, Counts>,
}

pub struct Network {
    links: BTreeMap<(u32, u32), Arc<Link>>,
    tracer: Option<Arc<Tracer>>,
}

/// The message types whose text the trace keeps, for the protocol's rules.
pub const WIRE_RULE_TYPES: [&str; 6] = [
    "promise",
    "accepted",
    "decided",
    "log-promise",
    "log-accepted",
    "chosen",
];

/// messages.jsonl: one line per peer message with its fate (`--trace-messages`).
pub struct Tracer {
    out: Mutex<std::io::BufWriter<std::fs::File>>,
    /// The run's time origin, shared with history.jsonl.
    start: std::time::Instant,
}

impl Tracer {
    pub fn create(path: &std::path::Path, start: std::time::Instant) -> std::io::Result<Tracer> {
        Ok(Tracer {
            out: Mutex::new(std::io::BufWriter::with_capacity(
                1 << 20,
                std::fs::File::create(path)?,
            )),
            start,
        })
    }

    /// One message: its link, type, fate and delays, and for the messages the
    /// protocol's rules read from the wire (an acceptor's promises and acceptances, a
    /// learner's announcements) the message itself, as `msg`.
    fn record(&self, from: u32, to: u32, kind: &str, fate: &str, delays: &[Duration], line: &[u8]) {
        let payload = WIRE_RULE_TYPES
            .contains(&kind)
            .then(|| String::from_utf8_lossy(line));
        self.write(from, to, kind, fate, delays, payload);
    }

    /// One message of a network whose messages the protocol's rules cannot read (a
    /// Maelstrom node's): its link, type, fate and delays, without its text.
    pub fn record_opaque(&self, from: u32, to: u32, kind: &str, fate: &str, delays: &[Duration]) {
        self.write(from, to, kind, fate, delays, None);
    }

    fn write(
        &self,
        from: u32,
        to: u32,
        kind: &str,
        fate: &str,
        delays: &[Duration],
        payload: Option<std::borrow::Cow<'_, str>>,
    ) {
        use std::fmt::Write as _;
        use std::io::Write;
        // The line is formatted directly, outside the lock: a JSON tree per message
        // cost the router a third of its throughput. Strings a node chose (the type,
        // the text) are escaped by serde_json.
        let quote = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
        let mut line = String::with_capacity(128);
        let _ = write!(
            line,
            "\"from\":{from},\"to\":{to},\"type\":{},\"fate\":\"{fate}\",\"delay_ms\":[",
            quote(kind)
        );
        for (i, d) in delays.iter().enumerate() {
            let sep = if i > 0 { "," } else { "" };
            let _ = write!(line, "{sep}{}", d.as_millis());
        }
        line.push(']');
        if let Some(msg) = payload {
            let _ = write!(line, ",\"msg\":{}", quote(&msg));
        }
        // Stamped under the lock, so the file is in time order.
        if let Ok(mut out) = self.out.lock() {
            let time_ns = self.start.elapsed().as_nanos() as u64;
            let _ = writeln!(out, "{{\"time_ns\":{time_ns},{line}}}");
        }
    }

    pub fn flush(&self) -> std::io::Result<()> {
        use std::io::Write;
        self.out
            .lock()
            .map_err(|_| std::io::Error::other("trace lock poisoned"))?
            .flush()
    }
}

/// The proxy backend makes every network fault, and none can fail half-way.
impl crate::Links for Network {
    fn cut(&self, links: &[(u32, u32)]) -> Result<(), crate::FaultError> {
        Network::cut(self, links);
        Ok(())
    }
    fn heal(&self) -> Result<(), crate::FaultError> {
        self.heal_partitions();
        Ok(())
    }
    fn degrade(&self, targets: &[u32], faults: &LinkFaults) -> Result<(), crate::FaultError> {
        Network::degrade(self, targets, faults);
        Ok(())
    }
    fn restore(&self) -> Result<(), crate::FaultError> {
        self.restore_links();
        Ok(())
    }
}

impl Network {
    /// Binds a proxy for every directed link between `n` nodes and starts forwarding.
    pub async fn start(
        n: usize,
        seed: u64,
        addrs: Addresses,
        tracer: Option<Arc<Tracer>>,
    ) -> std::io::Result<Network> {
        let mut links = BTreeMap::new();
        for from in 1..=n as u32 {
            for to in 1..=n as u32 {
                if from == to {
                    continue;
                }
                let listener = TcpListener::bind("127.0.0.1:0").await?;
                let link = Arc::new(Link {
                    from,
                    to,
                    listen: listener.local_addr()?,
                    cut: AtomicBool::new(false),
                    degraded: AtomicBool::new(false),
                    faults: Mutex::new(None),
                    rng: Mutex::new(substream(seed, &format!("link/{from}/{to}"))),
                    counts: Mutex::new(BTreeMap::new()),
                });
                tokio::spawn(accept_loop(
                    listener,
                    link.clone(),
                    addrs.clone(),
                    tracer.clone(),
                ));
                links.insert((from, to), link);
            }
        }
        Ok(Network { links, tracer })
    }

    /// Writes out the message trace, if there is one.
    pub fn flush_trace(&self) -> std::io::Result<()> {
        self.tracer.as_ref().map_or(Ok(()), |t| t.flush())
    }

    /// The address node `from` must dial to reach node `to`.
    pub fn proxy_addr(&self, from: u32, to: u32) -> SocketAddr {
        self.links[&(from, to)].listen
    }

    /// Cuts exactly the directed links in `cut` (a partition's grudge); others flow.
    pub fn cut(&self, cut: &[(u32, u32)]) {
        for (key, link) in &self.links {
            link.cut.store(cut.contains(key), Ordering::SeqCst);
        }
    }

    pub fn heal_partitions(&self) {
        self.cut(&[]);
    }

    /// Degrades every link from or to a node of `targets`.
    pub fn degrade(&self, targets: &[u32], faults: &LinkFaults) {
        for ((from, to), link) in &self.links {
            if targets.contains(from) || targets.contains(to) {
                if let Ok(mut f) = link.faults.lock() {
                    *f = Some(faults.clone());
                    link.degraded.store(true, Ordering::SeqCst);
                }
            }
        }
    }

    pub fn restore_links(&self) {
        for link in self.links.values() {
            if let Ok(mut f) = link.faults.lock() {
                *f = None;
                link.degraded.store(false, Ordering::SeqCst);
            }
        }
    }

    pub fn stats(&self) -> Vec<LinkStats> {
        self.links
            .values()
            .map(|l| LinkStats {
                from: l.from,
                to: l.to,
                types: l.counts.lock().map(|c| c.clone()).unwrap_or_default(),
            })
            .collect()
    }
}

impl Link {
    fn count(&self, kind: &str, f: impl FnOnce(&mut Counts)) {
        if let Ok(mut c) = self.counts.lock() {
            // A new key is allocated once per message type, not once per message.
            match c.get_mut(kind) {
                Some(counts) => f(counts),
                None => f(c.entry(kind.to_string()).or_default()),
            }
        }
    }

    /// Decides one message's fate: the delays (from now) of its deliveries; empty if
    /// it is dropped, two entries if it is duplicated.
    fn fate(&self) -> Vec<Duration> {
        if self.cut.load(Ordering::Relaxed) {
            return Vec::new();
        }
        if !self.degraded.load(Ordering::Relaxed) {
            return vec![Duration::ZERO];
        }
        let faults = self.faults.lock().ok().and_then(|f| f.clone());
        let Some(f) = faults else {
            return vec![Duration::ZERO];
        };
        let Ok(mut rng) = self.rng.lock() else {
            return vec![Duration::ZERO];
        };
        f.fate(&mut rng)
    }
}

async fn accept_loop(
    listener: TcpListener,
    link: Arc<Link>,
    addrs: Addresses,
    tracer: Option<Arc<Tracer>>,
) {
    loop {
        let Ok((incoming, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let target = addrs.lock().ok().and_then(|a| a[link.to as usize]);
        let link = link.clone();
        let tracer = tracer.clone();
        tokio::spawn(async move {
            let Some(target) = target else {
                return; // destination down: drop; the sender's dialer retries
            };
            let connect = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(target));
            if let Ok(Ok(outgoing)) = connect.await {
                let _ = incoming.set_nodelay(true);
                let _ = outgoing.set_nodelay(true);
                forward(incoming, outgoing, link, tracer).await;
            }
        });
    }
}

/// The `"type"` of a peer message line, without parsing the whole line.
fn message_type(line: &[u8]) -> &str {
    let needle = b"\"type\":\"";
    line.windows(needle.len())
        .position(|w| w == needle)
        .and_then(|at| {
            let rest = &line[at + needle.len()..];
            let end = rest.iter().position(|b| *b == b'"')?;
            std::str::from_utf8(&rest[..end]).ok()
        })
        .unwrap_or("unknown")
}

/// Copies messages from `incoming` to `outgoing` until either side closes: a reader
/// decides each message's fate, a writer delivers in order of delivery time.
///
/// A dead destination shows as a failing write (nodes may half-close the connections
/// they accept, since they never send on them, so an EOF from it means nothing).
async fn forward(
    incoming: TcpStream,
    outgoing: TcpStream,
    link: Arc<Link>,
    tracer: Option<Arc<Tracer>>,
) {
    let (tx, rx) = mpsc::channel::<(Instant, Arc<[u8]>)>(DELIVERY_QUEUE);
    let writer = tokio::spawn(deliver(outgoing, rx));
    let mut reader = BufReader::with_capacity(256 << 10, incoming);
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        if !read_message(&mut reader, &mut line).await {
            break;
        }
        let bytes: Arc<[u8]> = line.as_slice().into();
        let now = Instant::now();
        if first {
            first = false; // the hello always passes
            if tx.send((now, bytes)).await.is_err() {
                break;
            }
            continue;
        }
        let kind = message_type(&line);
        let deliveries = link.fate();
        if let Some(t) = &tracer {
            let fate = match deliveries.len() {
                0 => "dropped",
                1 => "delivered",
                _ => "duplicated",
            };
            t.record(link.from, link.to, kind, fate, &deliveries, &line);
        }
        link.count(kind, |c| {
            c.sent += 1;
            match deliveries.len() {
                0 => c.dropped += 1,
                1 => c.delivered += 1,
                _ => {
                    c.delivered += 1;
                    c.duplicated += 1;
                }
            }
        });
        let mut closed = false;
        for delay in deliveries {
            if tx.send((now + delay, bytes.clone())).await.is_err() {
                closed = true;
            }
        }
        if closed {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Writes queued messages when they are due, earliest first.
async fn deliver(outgoing: TcpStream, mut rx: mpsc::Receiver<(Instant, Arc<[u8]>)>) {
    let mut writer = BufWriter::with_capacity(256 << 10, outgoing);
    let mut pending: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut bodies: BTreeMap<u64, Arc<[u8]>> = BTreeMap::new();
    let mut seq = 0u64;
    let mut open = true;
    loop {
        // Write everything due, then flush once.
        let now = Instant::now();
        let mut wrote = false;
        while let Some(Reverse((at, id))) = pending.peek().copied() {
            if at > now {
                break;
            }
            pending.pop();
            if let Some(body) = bodies.remove(&id) {
                if writer.write_all(&body).await.is_err() {
                    return;
                }
                wrote = true;
            }
        }
        if wrote && writer.flush().await.is_err() {
            return;
        }
        if !open && pending.is_empty() {
            return;
        }
        let next_due = pending.peek().map(|Reverse((at, _))| *at);
        let received = match (open, next_due) {
            (true, Some(at)) => tokio::select! {
                r = rx.recv() => Some(r),
                _ = tokio::time::sleep_until(at) => None,
            },
            (true, None) => Some(rx.recv().await),
            (false, Some(at)) => {
                tokio::time::sleep_until(at).await;
                None
            }
            (false, None) => return,
        };
        match received {
            Some(Some((at, body))) => {
                seq += 1;
                pending.push(Reverse((at, seq)));
                bodies.insert(seq, body);
                // Take whatever else is already queued before writing.
                while let Ok((at, body)) = rx.try_recv() {
                    seq += 1;
                    pending.push(Reverse((at, seq)));
                    bodies.insert(seq, body);
                }
            }
            Some(None) => open = false,
            None => {}
        }
    }
}

/// Reads one newline-terminated message (newline included) into `line`; false at the
/// end of the stream or for an oversized message.
async fn read_message<R: AsyncBufReadExt + Unpin>(reader: &mut R, line: &mut Vec<u8>) -> bool {
    match reader.read_until(b'\n', line).await {
        Ok(0) | Err(_) => false,
        Ok(_) => line.len() <= MAX_MESSAGE_BYTES && line.ends_with(b"\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_lines_are_json_whatever_a_node_names_its_messages() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("messages.jsonl");
        let t = Tracer::create(&path, std::time::Instant::now()).unwrap();
        let delays = [Duration::from_millis(3), Duration::from_millis(40)];
        t.record(
            1,
            2,
            "promise",
            "duplicated",
            &delays,
            br#"{"type":"promise"}"#,
        );
        t.record_opaque(2, 1, "odd \"type\"\n\u{e9}", "dropped", &[]);
        t.flush().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect(l))
            .collect();
        assert_eq!(lines[0]["delay_ms"], serde_json::json!([3, 40]));
        assert_eq!(lines[0]["msg"], r#"{"type":"promise"}"#);
        assert_eq!(
            (lines[0]["from"].as_u64(), lines[0]["fate"].as_str()),
            (Some(1), Some("duplicated"))
        );
        assert_eq!(lines[1]["type"], "odd \"type\"\n\u{e9}");
        assert_eq!(lines[1]["delay_ms"], serde_json::json!([]));
        assert!(lines[1].get("msg").is_none());
        assert!(lines[1]["time_ns"].as_u64().unwrap() >= lines[0]["time_ns"].as_u64().unwrap());
    }

    fn link(faults: Option<LinkFaults>) -> Link {
        Link {
            from: 1,
            to: 2,
            listen: "127.0.0.1:1".parse().unwrap(),
            cut: AtomicBool::new(false),
            degraded: AtomicBool::new(faults.is_some()),
            faults: Mutex::new(faults),
            rng: Mutex::new(substream(7, "link/1/2")),
            counts: Mutex::new(BTreeMap::new()),
        }
    }

    fn faults(
        loss: f64,
        delay_ms: u64,
        jitter_ms: u64,
        duplicate: f64,
        reorder: f64,
    ) -> LinkFaults {
        LinkFaults {
            loss,
            delay_ms,
            jitter_ms,
            duplicate,
            reorder,
        }
    }

    const N: usize = 20_000;

    #[test]
    fn a_healthy_link_delivers_everything_at_once() {
        let l = link(None);
        assert!((0..N).all(|_| l.fate() == vec![Duration::ZERO]));
        l.cut.store(true, Ordering::SeqCst);
        assert!((0..N).all(|_| l.fate().is_empty()));
    }

    #[test]
    fn loss_and_duplication_happen_at_the_configured_rates() {
        let l = link(Some(faults(0.2, 0, 0, 0.1, 0.0)));
        let fates: Vec<usize> = (0..N).map(|_| l.fate().len()).collect();
        let dropped = fates.iter().filter(|c| **c == 0).count() as f64 / N as f64;
        let duplicated = fates.iter().filter(|c| **c == 2).count() as f64 / N as f64;
        assert!((dropped - 0.2).abs() < 0.02, "dropped {dropped}");
        // Duplication applies to the messages not dropped.
        assert!(
            (duplicated - 0.8 * 0.1).abs() < 0.015,
            "duplicated {duplicated}"
        );
    }

    #[test]
    fn delay_and_jitter_stay_in_range_and_average_to_the_mean() {
        let l = link(Some(faults(0.0, 30, 10, 0.0, 0.0)));
        let delays: Vec<u64> = (0..N).map(|_| l.fate()[0].as_millis() as u64).collect();
        assert!(delays.iter().all(|d| (20..=40).contains(d)));
        let mean = delays.iter().sum::<u64>() as f64 / N as f64;
        assert!((mean - 30.0).abs() < 0.5, "mean {mean}");
    }

    #[test]
    fn reordering_holds_messages_back_past_later_ones() {
        let l = link(Some(faults(0.0, 10, 0, 0.0, 0.25)));
        let delays: Vec<u64> = (0..N).map(|_| l.fate()[0].as_millis() as u64).collect();
        // A message sent 1 ms after another with a shorter delay overtakes it.
        let overtaken = delays.windows(2).filter(|w| w[0] > w[1] + 1).count() as f64 / N as f64;
        assert!(overtaken > 0.15 && overtaken < 0.3, "overtaken {overtaken}");
    }

    #[test]
    fn the_stream_is_seeded_per_link() {
        let a: Vec<Vec<Duration>> = {
            let l = link(Some(faults(0.3, 5, 5, 0.2, 0.2)));
            (0..100).map(|_| l.fate()).collect()
        };
        let b: Vec<Vec<Duration>> = {
            let l = link(Some(faults(0.3, 5, 5, 0.2, 0.2)));
            (0..100).map(|_| l.fate()).collect()
        };
        assert_eq!(a, b);
    }

    #[test]
    fn message_types_are_read_from_the_line() {
        assert_eq!(
            message_type(br#"{"type":"log-accept","ballot":3}"#),
            "log-accept"
        );
        assert_eq!(message_type(br#"{"ballot":3,"type":"commit"}"#), "commit");
        assert_eq!(message_type(b"garbage"), "unknown");
    }
}
