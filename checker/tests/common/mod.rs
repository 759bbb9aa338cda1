//! A tiny builder for histories in the format of docs/history.md: events get increasing
//! indices and times in the order the test writes them.

#![allow(dead_code)]

use checker::history::{History, parse_history_str};
use serde_json::{Value, json};

#[derive(Default)]
pub struct H {
    lines: Vec<String>,
    index: u64,
}

impl H {
    pub fn new() -> H {
        H::default()
    }

    fn push(&mut self, process: Value, kind: &str, f: &str, key: &str, value: Value) -> &mut H {
        let mut e = json!({
            "index": self.index,
            "time_ns": self.index * 1_000,
            "process": process,
            "type": kind,
            "f": f,
            "key": key,
            "value": value,
            "node": 1,
        });
        if kind == "fail" {
            e["error"] = json!("precondition-failed");
        }
        self.lines.push(e.to_string());
        self.index += 1;
        self
    }

    pub fn invoke(&mut self, p: u64, f: &str, key: &str, value: Value) -> &mut H {
        self.push(json!(p), "invoke", f, key, value)
    }
    pub fn ok(&mut self, p: u64, f: &str, key: &str, value: Value) -> &mut H {
        self.push(json!(p), "ok", f, key, value)
    }
    pub fn fail(&mut self, p: u64, f: &str, key: &str, value: Value) -> &mut H {
        self.push(json!(p), "fail", f, key, value)
    }
    /// A `fail` completion with this error code.
    pub fn fail_with(&mut self, p: u64, f: &str, key: &str, value: Value, error: &str) -> &mut H {
        self.fail(p, f, key, value);
        let last = self.lines.pop().expect("just pushed");
        let mut e: Value = serde_json::from_str(&last).expect("json");
        e["error"] = json!(error);
        self.lines.push(e.to_string());
        self
    }
    pub fn info(&mut self, p: u64, f: &str, key: &str, value: Value) -> &mut H {
        self.push(json!(p), "info", f, key, value)
    }
    pub fn nemesis(&mut self, f: &str) -> &mut H {
        let e = json!({"index": self.index, "time_ns": self.index * 1_000, "process": "nemesis",
                       "type": "info", "f": f, "value": {"kind": "halves"}});
        self.lines.push(e.to_string());
        self.index += 1;
        self
    }

    /// A complete op: invoke then completion, nothing in between.
    pub fn write(&mut self, p: u64, key: &str, v: i64) -> &mut H {
        self.invoke(p, "write", key, json!(v))
            .ok(p, "write", key, json!(v))
    }
    pub fn read(&mut self, p: u64, key: &str, observed: Option<i64>) -> &mut H {
        self.invoke(p, "read", key, Value::Null)
            .ok(p, "read", key, json!(observed))
    }
    pub fn cas(&mut self, p: u64, key: &str, from: i64, to: i64) -> &mut H {
        self.invoke(p, "cas", key, json!([from, to]))
            .ok(p, "cas", key, json!([from, to]))
    }
    pub fn propose(&mut self, p: u64, key: &str, proposed: i64, chosen: i64) -> &mut H {
        self.invoke(p, "propose", key, json!(proposed))
            .ok(p, "propose", key, json!(chosen))
    }

    pub fn text(&self) -> String {
        self.lines.join("\n") + "\n"
    }

    pub fn history(&self) -> History {
        parse_history_str(&self.text()).expect("builder makes well-formed histories")
    }
}
