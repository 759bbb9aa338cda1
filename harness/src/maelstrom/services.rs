//! The key-value services a Maelstrom node may message by name, emulated inside the
//! harness: `lin-kv` (linearizable), `seq-kv` (sequentially consistent) and `lww-kv`
//! (last write wins). All three take the same bodies: `read {key}` -> `read_ok
//! {value}`, `write {key, value}` -> `write_ok`, `cas {key, from, to,
//! create_if_not_exists}` -> `cas_ok`; a missing key is error 20, a cas whose `from`
//! does not match is error 22.
//!
//! Each key keeps its recent versions in one total order, and every write and cas
//! takes effect at its end. The services differ only in what a read returns:
//! - `lin-kv`: the latest version;
//! - `seq-kv`: any version from the last one this client saw (its own writes
//!   included) to the latest, so a client's reads never go back, but may be stale;
//! - `lww-kv`: any of the last few versions, stale and not even monotonic.
//!
//! So a node that proxies every request to `lin-kv` is linearizable, and one that
//! proxies to `seq-kv` or `lww-kv` is caught serving stale reads. Which version a
//! weak read returns comes from the run's seeded stream.

use std::collections::{BTreeMap, VecDeque};

use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::proto::{Envelope, body, code, error};

/// Versions kept per key (older ones can no longer be read).
const KEPT: usize = 64;
/// How far back an `lww-kv` read may go.
const LWW_WINDOW: u64 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Lin,
    Seq,
    Lww,
}

impl Kind {
    /// The service a destination names, if it names one.
    pub fn of(dest: &str) -> Option<Kind> {
        match dest {
            "lin-kv" => Some(Kind::Lin),
            "seq-kv" => Some(Kind::Seq),
            "lww-kv" => Some(Kind::Lww),
            _ => None,
        }
    }
}

/// One key's versions: position `p` (1-based, absolute) is the `p`th value written;
/// position 0 is "no value yet".
#[derive(Default)]
struct Key {
    /// Positions below `base + 1` are forgotten.
    base: u64,
    versions: VecDeque<Value>,
}

impl Key {
    fn latest(&self) -> u64 {
        self.base + self.versions.len() as u64
    }

    fn at(&self, p: u64) -> Option<&Value> {
        p.checked_sub(self.base + 1)
            .and_then(|i| self.versions.get(usize::try_from(i).ok()?))
    }

    fn push(&mut self, v: Value) -> u64 {
        self.versions.push_back(v);
        if self.versions.len() > KEPT {
            self.versions.pop_front();
            self.base += 1;
        }
        self.latest()
    }
}

pub struct Services {
    rng: ChaCha8Rng,
    /// (service, key as JSON text) -> versions.
    keys: BTreeMap<(Kind, String), Key>,
    /// (service, client node, key as JSON text) -> the last position it saw (read
    /// only for `seq-kv`).
    seen: BTreeMap<(Kind, String, String), u64>,
}

impl Services {
    pub fn new(rng: ChaCha8Rng) -> Services {
        Services {
            rng,
            keys: BTreeMap::new(),
            seen: BTreeMap::new(),
        }
    }

    /// The service's reply to `msg`, if it is addressed to a service.
    pub fn handle(&mut self, msg: &Envelope) -> Option<Envelope> {
        let kind = Kind::of(&msg.dest)?;
        let Some(key) = msg.body.get("key") else {
            return Some(msg.reply(error(code::MALFORMED_REQUEST, "no key")));
        };
        let name = key.to_string();
        let seen_key = (kind, msg.src.clone(), name.clone());
        let k = self.keys.entry((kind, name)).or_default();
        let latest = k.latest();
        let reply = match msg.kind() {
            "read" => {
                let first = k.base + 1;
                let p = match kind {
                    Kind::Lin => latest,
                    Kind::Seq => {
                        let seen = self.seen.get(&seen_key).copied().unwrap_or(0);
                        let from = seen.max(first.min(latest)).min(latest);
                        self.rng.random_range(from..=latest)
                    }
                    Kind::Lww => {
                        let from = latest.saturating_sub(LWW_WINDOW).max(first.min(latest));
                        self.rng.random_range(from..=latest)
                    }
                };
                if kind == Kind::Seq {
                    self.seen.insert(seen_key, p);
                }
                match k.at(p) {
                    Some(v) => body(json!({"type": "read_ok", "value": v})),
                    None => error(code::KEY_DOES_NOT_EXIST, "no such key"),
                }
            }
            "write" => match msg.body.get("value") {
                Some(v) => {
                    let p = k.push(v.clone());
                    self.seen.insert(seen_key, p);
                    body(json!({"type": "write_ok"}))
                }
                None => error(code::MALFORMED_REQUEST, "write without a value"),
            },
            "cas" => {
                let (Some(from), Some(to)) = (msg.body.get("from"), msg.body.get("to")) else {
                    return Some(
                        msg.reply(error(code::MALFORMED_REQUEST, "cas needs from and to")),
                    );
                };
                let create = msg.body.get("create_if_not_exists") == Some(&Value::Bool(true));
                match k.at(latest) {
                    None if !create => error(code::KEY_DOES_NOT_EXIST, "no such key"),
                    Some(current) if current != from => error(
                        code::PRECONDITION_FAILED,
                        &format!("expected {from}, had {current}"),
                    ),
                    _ => {
                        let p = k.push(to.clone());
                        self.seen.insert(seen_key, p);
                        body(json!({"type": "cas_ok"}))
                    }
                }
            }
            other => error(
                code::NOT_SUPPORTED,
                &format!("{other} is not a kv operation"),
            ),
        };
        Some(msg.reply(reply))
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn ask(s: &mut Services, from: &str, to: &str, b: Value) -> Envelope {
        let mut b = super::body(b);
        b.insert("msg_id".into(), json!(1));
        s.handle(&Envelope::new(from, to, b)).expect("a service")
    }

    fn read(s: &mut Services, from: &str, svc: &str) -> Option<i64> {
        let r = ask(s, from, svc, json!({"type": "read", "key": 0}));
        r.body.get("value").and_then(Value::as_i64)
    }

    #[test]
    fn lin_kv_reads_the_latest_and_cas_is_atomic() {
        let mut s = Services::new(ChaCha8Rng::seed_from_u64(1));
        let r = ask(&mut s, "n1", "lin-kv", json!({"type": "read", "key": 0}));
        assert_eq!(r.body["code"], json!(code::KEY_DOES_NOT_EXIST));
        assert_eq!(
            (r.src.as_str(), r.dest.as_str(), r.in_reply_to()),
            ("lin-kv", "n1", Some(1))
        );
        let c = ask(
            &mut s,
            "n1",
            "lin-kv",
            json!({"type": "cas", "key": 0, "from": 0, "to": 1}),
        );
        assert_eq!(c.body["code"], json!(code::KEY_DOES_NOT_EXIST));
        let c = ask(
            &mut s,
            "n1",
            "lin-kv",
            json!({"type": "cas", "key": 0, "from": 0, "to": 1, "create_if_not_exists": true}),
        );
        assert_eq!(c.kind(), "cas_ok");
        for v in 2..100 {
            ask(
                &mut s,
                "n2",
                "lin-kv",
                json!({"type": "write", "key": 0, "value": v}),
            );
            assert_eq!(read(&mut s, "n3", "lin-kv"), Some(v), "always the latest");
        }
        let c = ask(
            &mut s,
            "n1",
            "lin-kv",
            json!({"type": "cas", "key": 0, "from": 5, "to": 6}),
        );
        assert_eq!(c.body["code"], json!(code::PRECONDITION_FAILED));
        assert_eq!(
            ask(
                &mut s,
                "n1",
                "lin-kv",
                json!({"type": "cas", "key": 0, "from": 99, "to": 7})
            )
            .kind(),
            "cas_ok"
        );
        // The services are separate stores.
        assert_eq!(read(&mut s, "n1", "seq-kv"), None);
    }

    #[test]
    fn seq_kv_reads_may_be_stale_but_never_go_back() {
        let mut s = Services::new(ChaCha8Rng::seed_from_u64(2));
        let mut stale = 0;
        for v in 1..200 {
            ask(
                &mut s,
                "n1",
                "seq-kv",
                json!({"type": "write", "key": 0, "value": v}),
            );
            // The writer sees its own write.
            assert_eq!(read(&mut s, "n1", "seq-kv"), Some(v));
            let mut last = 0;
            for _ in 0..3 {
                let got = read(&mut s, "n2", "seq-kv").unwrap_or(0);
                assert!(got >= last, "n2 went back from {last} to {got}");
                last = got;
                if got < v {
                    stale += 1;
                }
            }
        }
        assert!(
            stale > 50,
            "{stale} stale reads: seq-kv must be weaker than lin-kv"
        );
    }

    #[test]
    fn lww_kv_reads_may_go_back() {
        let mut s = Services::new(ChaCha8Rng::seed_from_u64(3));
        for v in 1..=10 {
            ask(
                &mut s,
                "n1",
                "lww-kv",
                json!({"type": "write", "key": 0, "value": v}),
            );
        }
        let reads: Vec<i64> = (0..50)
            .map(|_| read(&mut s, "n2", "lww-kv").unwrap())
            .collect();
        assert!(reads.iter().all(|r| (7..=10).contains(r)), "{reads:?}");
        assert!(
            reads.windows(2).any(|w| w[1] < w[0]),
            "not monotonic: {reads:?}"
        );
    }

    #[test]
    fn bad_requests_are_errors_and_other_destinations_are_not_services() {
        let mut s = Services::new(ChaCha8Rng::seed_from_u64(4));
        let r = ask(&mut s, "n1", "lin-kv", json!({"type": "write", "key": 0}));
        assert_eq!(r.body["code"], json!(code::MALFORMED_REQUEST));
        let r = ask(&mut s, "n1", "lin-kv", json!({"type": "delete", "key": 0}));
        assert_eq!(r.body["code"], json!(code::NOT_SUPPORTED));
        assert!(
            s.handle(&Envelope::new(
                "n1",
                "n2",
                super::body(json!({"type": "x"}))
            ))
            .is_none()
        );
        // Old versions are forgotten beyond a bound, and reads still work.
        for v in 0..1_000 {
            ask(
                &mut s,
                "n1",
                "lww-kv",
                json!({"type": "write", "key": 0, "value": v}),
            );
        }
        assert!(read(&mut s, "n2", "lww-kv").unwrap() >= 996);
    }
}
