//! The client protocol (docs/protocol.md): JSON lines over TCP, pipelined, matched by id.
//!
//! Requests are `{"id":<u64>,"op":<name>,...}`; replies `{"id":...,"ok":true,...}` or
//! `{"id":...,"ok":false,"error":<code>,"definite":<bool>,"message":<text>}`.
//!
//! Parsing takes arbitrary bytes and never panics: anything that is not a valid
//! request becomes a [`ParseError`] carrying the error code to answer with (and the
//! request id, when one could be read), so the connection stays usable.

use serde_json::{Map, Value, json};

use crate::core::Status;
use crate::types::{Batch, ClientOp, ErrorCode, KvOp, OpResult, Slot};

/// The longest request line a node accepts; a longer one closes the connection.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A request the shell answers itself or hands to the core.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    Op(ClientOp),
    Status,
    Dump,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedRequest {
    pub id: u64,
    pub request: Request,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    /// The request's id when it could be read, so the client can match the error.
    pub id: Option<u64>,
    pub code: ErrorCode,
    pub message: String,
}

/// Parses one request line (without its newline).
pub fn parse_request(line: &[u8]) -> Result<ParsedRequest, ParseError> {
    let malformed = |id, message: String| ParseError {
        id,
        code: ErrorCode::MalformedRequest,
        message,
    };
    let value: Value = serde_json::from_slice(line)
        .map_err(|e| malformed(None, format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(malformed(None, "a request is a JSON object".into()));
    };
    let id = match obj.get("id") {
        Some(v) => v.as_u64().ok_or_else(|| {
            malformed(None, "field 'id' must be an unsigned 64-bit integer".into())
        })?,
        None => return Err(malformed(None, "missing field 'id'".into())),
    };
    let op = match obj.get("op") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(malformed(Some(id), "field 'op' must be a string".into())),
        None => return Err(malformed(Some(id), "missing field 'op'".into())),
    };
    let field = |name: &str| Fields { obj: &obj, id }.get(name);
    let request = match op {
        "propose" => Request::Op(ClientOp::Propose {
            key: field("key")?.string()?.into(),
            value: field("value")?.int()?,
        }),
        "read" => Request::Op(ClientOp::Kv(KvOp::Read {
            key: field("key")?.string()?,
        })),
        "write" => Request::Op(ClientOp::Kv(KvOp::Write {
            key: field("key")?.string()?,
            value: field("value")?.int()?,
        })),
        "cas" => Request::Op(ClientOp::Kv(KvOp::Cas {
            key: field("key")?.string()?,
            from: field("from")?.int()?,
            to: field("to")?.int()?,
        })),
        "txn" => {
            let txn = field("txn")?;
            let mops: Vec<crate::types::MicroOp> = serde_json::from_value(txn.value.clone())
                .map_err(|e| txn.wrong(&format!("a list of [f, key, value] micro-ops ({e})")))?;
            if mops.is_empty() {
                return Err(txn.wrong("a non-empty list of micro-ops"));
            }
            Request::Op(ClientOp::Kv(KvOp::Txn { txn: mops }))
        }
        "status" => Request::Status,
        "dump" => Request::Dump,
        other => {
            return Err(ParseError {
                id: Some(id),
                code: ErrorCode::UnknownOp,
                message: format!(
                    "unknown op '{}'; expected propose, read, write, cas, txn, status or dump",
                    truncate(other, 64)
                ),
            });
        }
    };
    Ok(ParsedRequest { id, request })
}

struct Fields<'a> {
    obj: &'a Map<String, Value>,
    id: u64,
}

struct Field<'a> {
    name: String,
    value: &'a Value,
    id: u64,
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Result<Field<'a>, ParseError> {
        match self.obj.get(name) {
            Some(value) => Ok(Field {
                name: name.to_string(),
                value,
                id: self.id,
            }),
            None => Err(ParseError {
                id: Some(self.id),
                code: ErrorCode::MalformedRequest,
                message: format!("missing field '{name}'"),
            }),
        }
    }
}

impl Field<'_> {
    fn wrong(&self, what: &str) -> ParseError {
        ParseError {
            id: Some(self.id),
            code: ErrorCode::MalformedRequest,
            message: format!("field '{}' must be {what}", self.name),
        }
    }

    fn string(&self) -> Result<String, ParseError> {
        self.value
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| self.wrong("a string"))
    }

    fn int(&self) -> Result<i64, ParseError> {
        self.value
            .as_i64()
            .ok_or_else(|| self.wrong("a signed 64-bit integer"))
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}

/// A request line (without newline), as a client writes it: the other side of
/// [`parse_request`]. The harness talks to nodes through this, so the request format
/// is written in one place.
pub fn encode_request(id: u64, request: &Request) -> String {
    let key = |k: &str| serde_json::to_string(k).expect("a str always serialises");
    match request {
        Request::Op(ClientOp::Propose { key: k, value }) => format!(
            "{{\"id\":{id},\"op\":\"propose\",\"key\":{},\"value\":{value}}}",
            key(k)
        ),
        Request::Op(ClientOp::Kv(KvOp::Read { key: k })) => {
            format!("{{\"id\":{id},\"op\":\"read\",\"key\":{}}}", key(k))
        }
        Request::Op(ClientOp::Kv(KvOp::Write { key: k, value })) => format!(
            "{{\"id\":{id},\"op\":\"write\",\"key\":{},\"value\":{value}}}",
            key(k)
        ),
        Request::Op(ClientOp::Kv(KvOp::Cas { key: k, from, to })) => format!(
            "{{\"id\":{id},\"op\":\"cas\",\"key\":{},\"from\":{from},\"to\":{to}}}",
            key(k)
        ),
        Request::Op(ClientOp::Kv(KvOp::Txn { txn })) => format!(
            "{{\"id\":{id},\"op\":\"txn\",\"txn\":{}}}",
            serde_json::to_string(txn).expect("micro-ops serialise")
        ),
        Request::Status => format!("{{\"id\":{id},\"op\":\"status\"}}"),
        Request::Dump => format!("{{\"id\":{id},\"op\":\"dump\"}}"),
    }
}

/// An op's reply as a client reads it: the other side of [`encode_result`] and
/// [`encode_error`]. `value` is an ok read's value (`None`: absent) or an ok
/// propose's chosen value.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
pub struct Reply {
    pub id: Option<u64>,
    #[serde(default)]
    pub ok: bool,
    #[serde(default)]
    pub value: Option<i64>,
    /// An ok transaction's micro-operations, its reads filled in.
    #[serde(default)]
    pub txn: Option<Vec<crate::types::MicroOp>>,
    #[serde(default)]
    pub error: Option<String>,
    /// The error promises the op did not and will not take effect.
    #[serde(default)]
    pub definite: bool,
}

/// The reply line (without newline) for a core result.
pub fn encode_result(id: u64, result: &OpResult) -> String {
    match result {
        OpResult::Value(v) => json!({"id": id, "ok": true, "value": v}).to_string(),
        OpResult::Done => json!({"id": id, "ok": true}).to_string(),
        OpResult::Txn(txn) => json!({"id": id, "ok": true, "txn": txn}).to_string(),
        OpResult::Error(code) => encode_error(Some(id), *code, error_message(*code)),
    }
}

fn error_message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NotFound => "the key has no value",
        ErrorCode::PreconditionFailed => "the current value differs from 'from'",
        ErrorCode::Unavailable => "no leader could take the operation; it was not applied",
        ErrorCode::Timeout => "no outcome in time; the operation may still take effect",
        ErrorCode::MalformedRequest => "malformed request",
        ErrorCode::UnknownOp => "unknown op",
    }
}

/// An error reply line (without newline).
pub fn encode_error(id: Option<u64>, code: ErrorCode, message: &str) -> String {
    json!({
        "id": id,
        "ok": false,
        "error": code.as_str(),
        "definite": code.definite(),
        "message": message,
    })
    .to_string()
}

pub fn encode_status(id: u64, status: &Status) -> String {
    let mut v = serde_json::to_value(status).expect("status serializes");
    if let Value::Object(m) = &mut v {
        m.insert("id".into(), json!(id));
        m.insert("ok".into(), json!(true));
    }
    v.to_string()
}

/// The `dump` reply: learned registers, and the chosen log with one entry per command
/// (`{"slot", "command"}`; a no-op slot has `"command": null`) above the snapshot,
/// plus the commit index and the snapshot (`{"index", "kv"}`) when there is one.
///
/// Written straight into the output text rather than through a `serde_json::Value`
/// tree: a dump after a long run holds hundreds of thousands of commands, and the
/// tree cost more time and memory than the text. `"id"` comes first so a client can
/// match the reply without parsing it all.
pub fn encode_dump<'a, K: serde::Serialize + Ord>(
    id: u64,
    node: u32,
    registers: &std::collections::BTreeMap<K, i64>,
    log: impl Iterator<Item = (&'a Slot, &'a Batch)>,
    commit_index: Slot,
    snapshot: Option<&crate::core::Snapshot>,
) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(256 + registers.len() * 24);
    let _ = write!(
        out,
        "{{\"id\":{id},\"ok\":true,\"node\":{node},\"commit_index\":{commit_index},\"registers\":"
    );
    out.push_str(&serde_json::to_string(registers).expect("a map of strings to integers"));
    if let Some(snap) = snapshot {
        let _ = write!(out, ",\"snapshot\":{{\"index\":{},\"kv\":", snap.index);
        out.push_str(&serde_json::to_string(&snap.kv).expect("a map of strings to integers"));
        out.push('}');
    }
    out.push(',');
    write_log(&mut out, log);
    out.push('}');
    out
}

/// `"log":[...]`: one `{"slot", "command"}` entry per command, a no-op slot as one
/// entry with `"command": null`.
fn write_log<'a>(out: &mut String, log: impl Iterator<Item = (&'a Slot, &'a Batch)>) {
    write_log_placed(out, log, &mut |_, _| {});
}

/// [`write_log`], telling `placed` each entry's slot and where its command's text
/// went in `out` (`None` for a no-op), in the order written.
fn write_log_placed<'a>(
    out: &mut String,
    log: impl Iterator<Item = (&'a Slot, &'a Batch)>,
    placed: &mut dyn FnMut(Slot, Option<std::ops::Range<usize>>),
) {
    out.push_str("\"log\":[");
    let mut first = true;
    // One buffer for every command's text.
    let mut text = Vec::with_capacity(96);
    let log = log.collect::<Vec<_>>();
    // Room for the whole log at once (a learned log is megabytes): each entry's
    // fixed words and slot, and its command's text (made already, mostly).
    out.reserve(
        log.iter()
            .map(|(_, b)| b.len().max(1) * 48 + b.json().len())
            .sum::<usize>(),
    );
    for (slot, batch) in log {
        write_entries(
            out,
            *slot,
            batch,
            &mut text,
            &mut |out| {
                if !first {
                    out.push(',');
                }
                first = false;
            },
            placed,
        );
    }
    out.push(']');
}

/// A slot's entries, each after `before(out)`; `text` is room for a command's.
fn write_entries(
    out: &mut String,
    slot: Slot,
    batch: &Batch,
    text: &mut Vec<u8>,
    before: &mut dyn FnMut(&mut String),
    placed: &mut dyn FnMut(Slot, Option<std::ops::Range<usize>>),
) {
    let mut digits = itoa::Buffer::new();
    let slot_text = digits.format(slot);
    let mut entry = |out: &mut String, command: Option<&str>| {
        before(out);
        out.push_str("{\"slot\":");
        out.push_str(slot_text);
        out.push_str(",\"command\":");
        match command {
            // As serde writes it (core::encode).
            Some(json) => {
                let start = out.len();
                out.push_str(json);
                placed(slot, Some(start..out.len()));
            }
            None => {
                out.push_str("null");
                placed(slot, None);
            }
        }
        out.push('}');
    };
    if batch.is_empty() {
        entry(out, None);
    }
    batch.each_json(text, &mut |json| entry(out, Some(json)));
}

/// A chosen slot as lines of a learned log (`learned.jsonl` beside the journal): its
/// dump entries, one per line.
pub fn learned_lines(out: &mut String, slot: Slot, batch: &Batch) {
    let mut first = true;
    let mut before = |out: &mut String| {
        if !first {
            out.push('\n');
        }
        first = false;
    };
    write_entries(
        out,
        slot,
        batch,
        &mut Vec::new(),
        &mut before,
        &mut |_, _| {},
    );
    out.push('\n');
}

/// What a node learned over the whole run, as its driver saw it write each chosen slot
/// down (compacted slots included): `{"node", "learned": true, "log": [...]}`, its
/// entries as a dump's. Log agreement reads it beside the dumps; it is no node state.
pub fn encode_learned<'a>(node: u32, log: impl Iterator<Item = (&'a Slot, &'a Batch)>) -> String {
    encode_learned_placed(node, log, &mut |_, _| {})
}

/// [`encode_learned`], telling `placed` each entry's slot and the byte range of its
/// command's JSON in the text (`None` for a no-op slot), in the text's order: what a
/// reader of the text would find, without reading it.
pub fn encode_learned_placed<'a>(
    node: u32,
    log: impl Iterator<Item = (&'a Slot, &'a Batch)>,
    placed: &mut dyn FnMut(Slot, Option<std::ops::Range<usize>>),
) -> String {
    let mut out = format!("{{\"node\":{node},\"learned\":true,");
    write_log_placed(&mut out, log, placed);
    out.push('}');
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_transaction_request_and_its_reply_round_trip() {
        use crate::types::{MicroOp, MopValue};
        let line = br#"{"id":4,"op":"txn","txn":[["append","x",1],["r","x",null],["w","y",2]]}"#;
        let parsed = super::parse_request(line).unwrap();
        let Request::Op(op) = &parsed.request else {
            panic!("an op")
        };
        let text = super::encode_request(4, &parsed.request);
        assert_eq!(
            super::parse_request(text.as_bytes()).unwrap().request,
            parsed.request
        );
        assert!(matches!(op, ClientOp::Kv(KvOp::Txn { txn }) if txn.len() == 3));
        let done = vec![MicroOp::Read {
            key: "x".into(),
            value: Some(MopValue::List(vec![1, 2])),
        }];
        let reply: super::Reply =
            serde_json::from_str(&super::encode_result(4, &OpResult::Txn(done.clone()))).unwrap();
        assert_eq!(reply.txn, Some(done));
        for bad in [
            r#"{"id":1,"op":"txn","txn":[]}"#,
            r#"{"id":1,"op":"txn","txn":[["x","k",1]]}"#,
            r#"{"id":1,"op":"txn","txn":[["append","k",null]]}"#,
            r#"{"id":1,"op":"txn"}"#,
        ] {
            let err = super::parse_request(bad.as_bytes()).unwrap_err();
            assert_eq!(err.code, ErrorCode::MalformedRequest, "{bad}");
            assert_eq!(err.id, Some(1));
        }
    }
    use super::*;
    use crate::types::Command;

    fn err(line: &str) -> ParseError {
        parse_request(line.as_bytes()).expect_err(line)
    }

    #[test]
    fn parses_every_op() {
        let ok = |line: &str| parse_request(line.as_bytes()).unwrap();
        assert_eq!(
            ok(r#"{"id":1,"op":"propose","key":"r","value":-3}"#).request,
            Request::Op(ClientOp::Propose {
                key: "r".into(),
                value: -3
            })
        );
        assert_eq!(
            ok(r#"{"id":2,"op":"cas","key":"k","from":1,"to":2,"extra":[1]}"#).request,
            Request::Op(ClientOp::Kv(KvOp::Cas {
                key: "k".into(),
                from: 1,
                to: 2
            }))
        );
        assert_eq!(ok(r#"{"id":3,"op":"dump"}"#).request, Request::Dump);
        assert_eq!(
            ok(r#"{"op":"status","id":18446744073709551615}"#).id,
            u64::MAX
        );
    }

    #[test]
    fn bad_input_gets_the_right_error_and_id() {
        let e = err("not json");
        assert_eq!((e.id, e.code), (None, ErrorCode::MalformedRequest));
        let e = err(r#"{"id":"7","op":"read","key":"k"}"#);
        assert_eq!((e.id, e.code), (None, ErrorCode::MalformedRequest));
        let e = err(r#"{"id":7,"op":"frobnicate"}"#);
        assert_eq!((e.id, e.code), (Some(7), ErrorCode::UnknownOp));
        let e = err(r#"{"id":7,"op":"write","key":"k","value":1.5}"#);
        assert_eq!((e.id, e.code), (Some(7), ErrorCode::MalformedRequest));
        assert!(e.message.contains("'value'"), "{}", e.message);
        let e = err(r#"{"id":7,"op":"write","key":"k","value":9223372036854775808}"#);
        assert_eq!(e.code, ErrorCode::MalformedRequest);
        let e = err(r#"{"id":7,"op":"write","key":3,"value":1}"#);
        assert!(e.message.contains("'key'"));
        let e = err(r#"{"id":7,"op":"cas","key":"k","from":1}"#);
        assert!(e.message.contains("missing field 'to'"));
        assert_eq!(err("[1,2]").code, ErrorCode::MalformedRequest);
        assert_eq!(err(r#"{"id":-1,"op":"read"}"#).id, None);
    }

    #[test]
    fn replies_carry_definiteness() {
        let v: Value =
            serde_json::from_str(&encode_result(4, &OpResult::Error(ErrorCode::Timeout))).unwrap();
        assert_eq!(v["definite"], false);
        assert_eq!(v["error"], "timeout");
        let v: Value = serde_json::from_str(&encode_result(4, &OpResult::Value(None))).unwrap();
        assert_eq!(v, json!({"id": 4, "ok": true, "value": null}));
    }

    #[test]
    fn a_dump_is_one_json_object_with_the_id_first_and_one_entry_per_command() {
        use crate::types::CmdId;
        let cmd = |seq, value| Command {
            id: CmdId {
                node: 1,
                incarnation: 2,
                seq,
            },
            op: KvOp::Write {
                key: "k\"1".into(),
                value,
            },
        };
        let log: Vec<(Slot, Batch)> = vec![
            (0, vec![cmd(1, 5), cmd(2, 6)].into()),
            (1, vec![].into()),
            (2, vec![cmd(3, 7)].into()),
        ];
        let registers = std::collections::BTreeMap::from([("r1".to_string(), 9)]);
        let text = encode_dump(42, 3, &registers, log.iter().map(|(s, b)| (s, b)), 3, None);
        assert!(text.starts_with("{\"id\":42,"), "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["ok"], true);
        assert_eq!(v["node"], 3);
        assert_eq!(v["commit_index"], 3);
        assert_eq!(v["registers"], json!({"r1": 9}));
        let slots: Vec<u64> = v["log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["slot"].as_u64().unwrap())
            .collect();
        assert_eq!(slots, vec![0, 0, 1, 2]);
        assert_eq!(v["log"][2]["command"], Value::Null, "a no-op slot");
        let back: Command = serde_json::from_value(v["log"][1]["command"].clone()).unwrap();
        assert_eq!(back, cmd(2, 6), "commands round-trip, escapes included");
        let empty = encode_dump(
            1,
            1,
            &std::collections::BTreeMap::<String, i64>::new(),
            std::iter::empty(),
            0,
            None,
        );
        let v: Value = serde_json::from_str(&empty).unwrap();
        assert_eq!(v["log"], json!([]));
    }
}

#[cfg(test)]
mod encode_tests {
    use super::*;

    #[test]
    fn every_request_the_client_encodes_parses_back() {
        let requests = [
            Request::Op(ClientOp::Propose {
                key: "r\"1".into(),
                value: -3,
            }),
            Request::Op(ClientOp::Kv(KvOp::Read { key: "k0".into() })),
            Request::Op(ClientOp::Kv(KvOp::Write {
                key: "k0".into(),
                value: 7,
            })),
            Request::Op(ClientOp::Kv(KvOp::Cas {
                key: "k0".into(),
                from: 7,
                to: 8,
            })),
            Request::Status,
            Request::Dump,
        ];
        for (id, request) in requests.into_iter().enumerate() {
            let line = encode_request(id as u64, &request);
            let parsed = parse_request(line.as_bytes()).expect(&line);
            assert_eq!(parsed.id, id as u64);
            assert_eq!(parsed.request, request, "{line}");
        }
    }

    #[test]
    fn replies_read_back_as_the_node_wrote_them() {
        let ok: Reply = serde_json::from_str(&encode_result(4, &OpResult::Value(Some(9)))).unwrap();
        assert_eq!((ok.id, ok.ok, ok.value), (Some(4), true, Some(9)));
        let absent: Reply =
            serde_json::from_str(&encode_result(5, &OpResult::Value(None))).unwrap();
        assert_eq!((absent.ok, absent.value), (true, None));
        let err: Reply =
            serde_json::from_str(&encode_result(6, &OpResult::Error(ErrorCode::Timeout))).unwrap();
        assert_eq!((err.ok, err.definite), (false, false));
        assert_eq!(err.error.as_deref(), Some("timeout"));
    }
}
