//! Learned logs: every slot a node wrote down as chosen over a run, compacted ones
//! included, as one dump (`final/n<i>.learned.json`, `{"node", "learned": true,
//! "log"}`) that log agreement reads beside the node's own dump.
//!
//! The bundled node appends one `{"slot", "command"}` line per command to
//! `nodes/n<i>/learned.jsonl` (beside its journal) once the fsync that made the slot
//! durable returned; [`gather`] turns those lines into the dump. The simulation writes
//! the dump itself, from what it saw each node sync.

use std::path::Path;

use crate::plan::Plan;

pub use paxos_trace::LEARNED_FILE;

/// A learned log's lines as one learned dump: a line that does not parse (a kill tore
/// the node's last write) is left out.
pub fn from_lines(node: paxos_trace::NodeId, text: &str) -> String {
    let mut out = format!("{{\"node\":{node},\"learned\":true,\"log\":[");
    let mut first = true;
    for line in text.lines() {
        if serde_json::from_str::<serde::de::IgnoredAny>(line).is_err() {
            continue;
        }
        if !first {
            out.push(',');
        }
        first = false;
        out.push_str(line);
    }
    out.push_str("]}");
    out
}

/// Writes `final/n<i>.learned.json` for each node of `plan` that left a learned log
/// under `dir`. Over Maelstrom's protocol a node sees lin-kv's integer keys, not the
/// history's names, and gives no dump, so its log is not comparable: nothing is
/// written. Returns a note per learned log that could not be written.
pub fn gather(dir: &Path, plan: &Plan) -> Vec<String> {
    let mut notes = Vec::new();
    if !plan.system.keeps_learned_logs() {
        return notes;
    }
    for id in 1..=plan.nodes as paxos_trace::NodeId {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("nodes/n{id}/{LEARNED_FILE}")))
        else {
            continue;
        };
        let to = dir.join(format!("final/n{id}.learned.json"));
        let written = std::fs::create_dir_all(dir.join("final"))
            .and_then(|()| crate::store::write_whole(&to, from_lines(id, &text)));
        if let Err(e) = written {
            notes.push(format!("cannot write {}: {e}", to.display()));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_torn_last_line_is_left_out() {
        let text = "{\"slot\":1,\"command\":null}\n{\"slot\":2,\"command\":{\"op\":\"re";
        assert_eq!(
            from_lines(3, text),
            r#"{"node":3,"learned":true,"log":[{"slot":1,"command":null}]}"#
        );
        let dump = checker::finals::parse_final(&from_lines(3, text), None).unwrap();
        assert!(dump.learned);
        assert_eq!((dump.node, dump.log.len()), (3, 1));
    }
}
