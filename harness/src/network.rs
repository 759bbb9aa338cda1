//! The network layer: a forwarding proxy per directed link.
//!
//! Node i dials node j only through the proxy of link (i, j) (DESIGN.md §4: a node
//! sends to j only on the connection it dialed to the address `--peer j=...` names),
//! so this layer sees every message of every link. It frames the JSON lines, so the
//! unit of a fault is one message: a cut link drops every message on it (the `hello`
//! that opens a connection always passes). The proxy dials the destination's current
//! address when a connection comes in, so it follows a restarted node to its new port;
//! when the destination goes away, it closes the incoming side and the sender's dialer
//! reconnects.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::{TcpListener, TcpStream};

use crate::cluster::Addresses;

/// Peer messages can be large (phase-1 reports, catch-up batches).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// The controllable state of one directed link.
pub struct Link {
    pub from: u32,
    pub to: u32,
    pub listen: SocketAddr,
    cut: AtomicBool,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Clone, Debug, Serialize)]
pub struct LinkStats {
    pub from: u32,
    pub to: u32,
    pub delivered: u64,
    pub dropped: u64,
}

pub struct Network {
    links: BTreeMap<(u32, u32), Arc<Link>>,
}

impl Network {
    /// Binds a proxy for every directed link between `n` nodes and starts forwarding.
    pub async fn start(n: usize, addrs: Addresses) -> std::io::Result<Network> {
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
                    delivered: AtomicU64::new(0),
                    dropped: AtomicU64::new(0),
                });
                tokio::spawn(accept_loop(listener, link.clone(), addrs.clone()));
                links.insert((from, to), link);
            }
        }
        Ok(Network { links })
    }

    /// The address node `from` must dial to reach node `to`.
    pub fn proxy_addr(&self, from: u32, to: u32) -> SocketAddr {
        self.links[&(from, to)].listen
    }

    /// Cuts every link between a node of `group` and a node outside it, both ways.
    pub fn isolate(&self, group: &[u32]) {
        for ((from, to), link) in &self.links {
            if group.contains(from) != group.contains(to) {
                link.cut.store(true, Ordering::SeqCst);
            }
        }
    }

    /// Restores every link.
    pub fn heal(&self) {
        for link in self.links.values() {
            link.cut.store(false, Ordering::SeqCst);
        }
    }

    pub fn any_cut(&self) -> bool {
        self.links.values().any(|l| l.cut.load(Ordering::SeqCst))
    }

    pub fn stats(&self) -> Vec<LinkStats> {
        self.links
            .values()
            .map(|l| LinkStats {
                from: l.from,
                to: l.to,
                delivered: l.delivered.load(Ordering::Relaxed),
                dropped: l.dropped.load(Ordering::Relaxed),
            })
            .collect()
    }
}

async fn accept_loop(listener: TcpListener, link: Arc<Link>, addrs: Addresses) {
    loop {
        let Ok((incoming, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        let target = addrs.lock().ok().and_then(|a| a[link.to as usize]);
        let link = link.clone();
        tokio::spawn(async move {
            let Some(target) = target else {
                return; // destination down: drop; the sender's dialer retries
            };
            let connect = tokio::time::timeout(Duration::from_secs(1), TcpStream::connect(target));
            if let Ok(Ok(outgoing)) = connect.await {
                let _ = incoming.set_nodelay(true);
                let _ = outgoing.set_nodelay(true);
                forward(incoming, outgoing, &link).await;
            }
        });
    }
}

/// Copies messages from `incoming` to `outgoing` until either side closes.
///
/// A dead destination shows as a failing write (nodes may half-close the connections
/// they accept, since they never send on them, so an EOF from the destination means
/// nothing). The incoming side is then closed and the sender's dialer reconnects.
async fn forward(incoming: TcpStream, outgoing: TcpStream, link: &Link) {
    let mut reader = BufReader::with_capacity(256 << 10, incoming);
    let mut writer = BufWriter::with_capacity(256 << 10, outgoing);
    let mut line = Vec::new();
    let mut first = true;
    loop {
        line.clear();
        if !read_message(&mut reader, &mut line).await {
            let _ = writer.flush().await;
            return;
        }
        if !first && link.cut.load(Ordering::Relaxed) {
            link.dropped.fetch_add(1, Ordering::Relaxed);
        } else {
            if !first {
                link.delivered.fetch_add(1, Ordering::Relaxed);
            }
            if writer.write_all(&line).await.is_err() {
                return;
            }
        }
        first = false;
        if reader.buffer().is_empty() && writer.flush().await.is_err() {
            return;
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
