//! Maelstrom's node protocol as types: one JSON object per line,
//! `{"src":"c1","dest":"n1","body":{"type":"read","msg_id":1,"key":0}}`, on a node's
//! stdin (in) and stdout (out). A body is kept open (a node may add any fields of its
//! own); the fields the harness reads are typed accessors.
//!
//! Parsing never panics: a line from a node that is too long, not JSON or not an
//! envelope is a [`LineError`], which the router records as the node misbehaving.

use serde_json::{Map, Value, json};

use crate::vocab::{Completion, WorkloadOp};

/// A line longer than this (newline excluded) is refused.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One message between two of: nodes `n1..nN`, clients `c1..cK`, services
/// (`lin-kv`, `seq-kv`, `lww-kv`).
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    pub src: String,
    pub dest: String,
    pub body: Map<String, Value>,
}

/// Why a line is not a message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineError {
    #[error("a line of {0} bytes (at most {MAX_LINE_BYTES})")]
    TooLong(usize),
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("not a message: {0}")]
    Shape(&'static str),
}

impl Envelope {
    pub fn new(src: &str, dest: &str, body: Map<String, Value>) -> Envelope {
        Envelope {
            src: src.to_string(),
            dest: dest.to_string(),
            body,
        }
    }

    /// One line (without its newline) as a message.
    pub fn parse(line: &[u8]) -> Result<Envelope, LineError> {
        if line.len() > MAX_LINE_BYTES {
            return Err(LineError::TooLong(line.len()));
        }
        let v: Value =
            serde_json::from_slice(line).map_err(|e| LineError::NotJson(e.to_string()))?;
        let Value::Object(mut m) = v else {
            return Err(LineError::Shape("not a JSON object"));
        };
        let text = |m: &mut Map<String, Value>, f: &str| match m.remove(f) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let src = text(&mut m, "src").ok_or(LineError::Shape("no \"src\" string"))?;
        let dest = text(&mut m, "dest").ok_or(LineError::Shape("no \"dest\" string"))?;
        let Some(Value::Object(body)) = m.remove("body") else {
            return Err(LineError::Shape("no \"body\" object"));
        };
        if !matches!(body.get("type"), Some(Value::String(_))) {
            return Err(LineError::Shape("no body \"type\" string"));
        }
        Ok(Envelope { src, dest, body })
    }

    /// The message as one line, without the newline.
    pub fn to_line(&self) -> String {
        json!({"src": self.src, "dest": self.dest, "body": self.body}).to_string()
    }

    pub fn kind(&self) -> &str {
        self.body.get("type").and_then(Value::as_str).unwrap_or("")
    }

    pub fn msg_id(&self) -> Option<u64> {
        self.body.get("msg_id").and_then(Value::as_u64)
    }

    pub fn in_reply_to(&self) -> Option<u64> {
        self.body.get("in_reply_to").and_then(Value::as_u64)
    }

    /// A reply to this message from its destination: `body` with `in_reply_to` set.
    pub fn reply(&self, mut body: Map<String, Value>) -> Envelope {
        if let Some(id) = self.msg_id() {
            body.insert("in_reply_to".into(), json!(id));
        }
        Envelope::new(&self.dest, &self.src, body)
    }
}

/// A body from a JSON object literal (`json!({...})`).
pub fn body(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// The error codes of the protocol, defined once with the bundled node's stdio
/// transport, which answers with them.
pub use paxos_node::stdio::code;

/// An error body.
pub fn error(code: i64, text: &str) -> Map<String, Value> {
    body(json!({"type": "error", "code": code, "text": text}))
}

/// The `init` a node gets first.
pub fn init(node: &str, nodes: &[String], msg_id: u64) -> Map<String, Value> {
    body(json!({"type": "init", "msg_id": msg_id, "node_id": node, "node_ids": nodes}))
}

/// A transaction key's integer for Maelstrom's txn workloads: `kI.G` (key `kI` of
/// the plan, generation `G`) is `G * 100000 + I`, where `I` is the plan key's
/// lin-kv integer (`keys`); unknown names map to their position in no plan, 0.
pub fn txn_key(name: &str, keys: &std::collections::BTreeMap<String, i64>) -> i64 {
    let (base, generation) = match name.rsplit_once('.') {
        Some((base, g)) => (base, g.parse::<i64>().unwrap_or(0)),
        None => (name, 0),
    };
    generation * 100_000 + keys.get(base).copied().unwrap_or(0)
}

/// The Maelstrom `txn` request of a transaction (txn-list-append and
/// txn-rw-register: `[f, key, value]` with integer keys).
pub fn txn_request(
    txn: &[checker::history::TxnMop],
    keys: &std::collections::BTreeMap<String, i64>,
    msg_id: u64,
) -> Map<String, Value> {
    use checker::history::TxnMop;
    let mops: Vec<Value> = txn
        .iter()
        .map(|m| {
            let k = txn_key(m.key(), keys);
            match m {
                TxnMop::Read { .. } => json!(["r", k, null]),
                TxnMop::Write { value, .. } => json!(["w", k, value]),
                TxnMop::Append { value, .. } => json!(["append", k, value]),
            }
        })
        .collect();
    body(json!({"type": "txn", "msg_id": msg_id, "txn": mops}))
}

/// A `txn_ok`'s micro-ops under the request's key names (matched by position: a
/// reply of another length or kinds is not this transaction's).
fn txn_reply(txn: &[checker::history::TxnMop], reply: &Envelope) -> Option<Completion> {
    use checker::history::TxnMop;
    let got = reply.body.get("txn")?.as_array()?;
    if got.len() != txn.len() {
        return None;
    }
    let mut out = Vec::with_capacity(txn.len());
    for (asked, answer) in txn.iter().zip(got) {
        let [f, _, value] = answer.as_array()?.as_slice() else {
            return None;
        };
        out.push(match (asked, f.as_str()?) {
            (TxnMop::Read { key, .. }, "r") => TxnMop::Read {
                key: key.clone(),
                value: value.clone(),
            },
            (TxnMop::Write { .. }, "w") | (TxnMop::Append { .. }, "append") => asked.clone(),
            _ => return None,
        });
    }
    Some(Completion::ok_txn(out))
}

/// The lin-kv request for a workload op, with lin-kv's integer key (`None`: the op is
/// not part of the lin-kv workload, as register proposals are not).
pub fn request(op: &WorkloadOp, key: i64, msg_id: u64) -> Option<Map<String, Value>> {
    Some(body(match op {
        WorkloadOp::Read { .. } => json!({"type": "read", "msg_id": msg_id, "key": key}),
        WorkloadOp::Write { value, .. } => {
            json!({"type": "write", "msg_id": msg_id, "key": key, "value": value})
        }
        WorkloadOp::Cas { from, to, .. } => {
            json!({"type": "cas", "msg_id": msg_id, "key": key, "from": from, "to": to})
        }
        // Plans refuse both for Maelstrom nodes (results::Plan::check).
        WorkloadOp::Propose { .. } | WorkloadOp::Txn { .. } => return None,
    }))
}

/// How a client classifies a node's reply to `op`: `read_ok`, `write_ok` and `cas_ok`
/// of the right kind are ok; an error with a definite code, or any error on a read, is
/// a fail; any other error is unknown (`info`). A reply of the wrong kind is unknown
/// too, with the reply's type in the error, since the client cannot tell what
/// happened.
pub fn completion(op: &WorkloadOp, reply: &Envelope) -> Completion {
    match (op, reply.kind()) {
        (WorkloadOp::Read { .. }, "read_ok") => match reply.body.get("value") {
            Some(Value::Null) | None => Completion::ok(None),
            Some(v) => match v.as_i64() {
                Some(x) => Completion::ok(Some(x)),
                None => {
                    Completion::unknown(op, "read_ok with a value that is not an integer", false)
                }
            },
        },
        (WorkloadOp::Write { .. }, "write_ok") | (WorkloadOp::Cas { .. }, "cas_ok") => {
            Completion::ok(None)
        }
        (WorkloadOp::Txn { txn }, "txn_ok") => txn_reply(txn, reply).unwrap_or_else(|| {
            Completion::unknown(op, "txn_ok whose micro-ops are not the request's", false)
        }),
        (_, "error") => {
            let c = reply.body.get("code").and_then(Value::as_i64).unwrap_or(-1);
            let name = code::name(c);
            if code::is_definite(c) || op.reads_only() {
                Completion::fail(&name)
            } else {
                Completion::unknown(op, &name, false)
            }
        }
        (_, other) => Completion::unknown(op, &format!("unexpected reply {other:?}"), false),
    }
}

#[cfg(test)]
mod tests {
    use checker::history::Outcome;

    use super::*;

    fn reply(kind: &str, extra: Value) -> Envelope {
        let mut b = body(extra);
        b.insert("type".into(), json!(kind));
        Envelope::new("n1", "c1", b)
    }

    #[test]
    fn a_line_parses_or_says_why_not() {
        let e = Envelope::parse(
            br#"{"src":"c1","dest":"n1","body":{"type":"read","msg_id":4,"key":0,"x":[1]}}"#,
        )
        .unwrap();
        assert_eq!(
            (e.src.as_str(), e.dest.as_str(), e.kind()),
            ("c1", "n1", "read")
        );
        assert_eq!(e.msg_id(), Some(4));
        assert_eq!(
            Envelope::parse(e.to_line().as_bytes()).unwrap(),
            e,
            "round trip"
        );
        let r = e.reply(body(json!({"type": "read_ok", "value": 3})));
        assert_eq!(
            (r.src.as_str(), r.dest.as_str(), r.in_reply_to()),
            ("n1", "c1", Some(4))
        );
        for (bad, why) in [
            (&b"{nope"[..], "not JSON"),
            (b"[1,2]", "not a JSON object"),
            (br#"{"dest":"n1","body":{"type":"x"}}"#, "src"),
            (br#"{"src":"c1","dest":"n1","body":{}}"#, "type"),
            (br#"{"src":"c1","dest":"n1","body":3}"#, "body"),
        ] {
            let e = Envelope::parse(bad).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
        let long = vec![b' '; MAX_LINE_BYTES + 1];
        assert_eq!(
            Envelope::parse(&long),
            Err(LineError::TooLong(MAX_LINE_BYTES + 1))
        );
    }

    #[test]
    fn replies_map_to_outcomes_as_the_protocol_defines() {
        let read = WorkloadOp::Read { key: "k0".into() };
        let write = WorkloadOp::Write {
            key: "k0".into(),
            value: 7,
        };
        let cas = WorkloadOp::Cas {
            key: "k0".into(),
            from: 1,
            to: 2,
        };
        assert_eq!(
            completion(&read, &reply("read_ok", json!({"value": 5}))).value,
            Some(5)
        );
        assert_eq!(
            completion(&read, &reply("read_ok", json!({"value": null}))).value,
            None
        );
        assert_eq!(
            completion(&write, &reply("write_ok", json!({}))).outcome,
            Outcome::Ok
        );
        assert_eq!(
            completion(&cas, &reply("cas_ok", json!({}))).outcome,
            Outcome::Ok
        );
        let err = |c: i64| reply("error", json!({"code": c, "text": "t"}));
        // Definite codes fail; indefinite ones leave a write unknown.
        assert_eq!(completion(&cas, &err(22)).outcome, Outcome::Fail);
        assert_eq!(completion(&write, &err(11)).outcome, Outcome::Fail);
        assert_eq!(completion(&write, &err(0)).outcome, Outcome::Info);
        assert_eq!(completion(&write, &err(13)).outcome, Outcome::Info);
        assert_eq!(completion(&write, &err(1000)).outcome, Outcome::Info);
        // Any error on a read is a fail: a read changes nothing.
        assert_eq!(completion(&read, &err(0)).outcome, Outcome::Fail);
        assert_eq!(
            completion(&cas, &err(20)).error.as_deref(),
            Some("key-does-not-exist")
        );
        // A reply of the wrong kind tells the client nothing.
        assert_eq!(
            completion(&write, &reply("read_ok", json!({}))).outcome,
            Outcome::Info
        );
        assert!(
            request(
                &WorkloadOp::Propose {
                    key: "r0".into(),
                    value: 1
                },
                0,
                1
            )
            .is_none()
        );
        assert_eq!(request(&cas, 3, 9).unwrap()["key"], json!(3));
    }
}
