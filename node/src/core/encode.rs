//! The WAL record's JSON text (docs/protocol.md), written by hand.
//!
//! Every node writes each log slot's batch twice (accepted, then chosen), and the
//! simulation runs every node of a cluster in one process: serde's generic
//! serializer, with its flattened command map, was the largest single cost of
//! writing the log. This writer produces the bytes `serde_json::to_vec` produces
//! from the same record's `Serialize` (field order, tags, escapes, numbers); the
//! tests below hold the two equal, and the derived `Serialize` stays the
//! definition of the format.

use super::Record;
use crate::types::{CmdId, Command, KvOp, MicroOp, MopValue};

/// Appends `record`'s JSON text to `out`.
pub fn record(record: &Record, out: &mut Vec<u8>) {
    match record {
        Record::Incarnation { incarnation } => {
            out.extend_from_slice(br#"{"r":"incarnation","incarnation":"#);
            int(out, *incarnation);
        }
        Record::RegisterPromise { key, ballot } => {
            out.extend_from_slice(br#"{"r":"register-promise","key":"#);
            string(out, key);
            out.extend_from_slice(br#","ballot":"#);
            int(out, *ballot);
        }
        Record::RegisterAccept { key, ballot, value } => {
            out.extend_from_slice(br#"{"r":"register-accept","key":"#);
            string(out, key);
            out.extend_from_slice(br#","ballot":"#);
            int(out, *ballot);
            out.extend_from_slice(br#","value":"#);
            int(out, *value);
        }
        Record::RegisterChosen { key, value } => {
            out.extend_from_slice(br#"{"r":"register-chosen","key":"#);
            string(out, key);
            out.extend_from_slice(br#","value":"#);
            int(out, *value);
        }
        Record::LogPromise { ballot } => {
            out.extend_from_slice(br#"{"r":"log-promise","ballot":"#);
            int(out, *ballot);
        }
        Record::LogAccept {
            slot,
            ballot,
            batch,
        } => {
            out.extend_from_slice(br#"{"r":"log-accept","slot":"#);
            int(out, *slot);
            out.extend_from_slice(br#","ballot":"#);
            int(out, *ballot);
            out.extend_from_slice(br#","batch":"#);
            out.extend_from_slice(batch.json().as_bytes());
        }
        Record::LogChosen { slot, batch } => {
            out.extend_from_slice(br#"{"r":"log-chosen","slot":"#);
            int(out, *slot);
            out.extend_from_slice(br#","batch":"#);
            out.extend_from_slice(batch.json().as_bytes());
        }
    }
    out.push(b'}');
}

pub(crate) fn commands(out: &mut Vec<u8>, batch: &[Command]) {
    out.push(b'[');
    for (i, c) in batch.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        command(out, c);
    }
    out.push(b']');
}

/// A command: its id, then its op's fields behind the op's tag (the op is flattened
/// into the command).
pub(crate) fn command(out: &mut Vec<u8>, c: &Command) {
    let CmdId {
        node,
        incarnation,
        seq,
    } = c.id;
    out.extend_from_slice(br#"{"id":{"node":"#);
    int(out, node);
    out.extend_from_slice(br#","incarnation":"#);
    int(out, incarnation);
    out.extend_from_slice(br#","seq":"#);
    int(out, seq);
    match &c.op {
        KvOp::Read { key } => {
            out.extend_from_slice(br#"},"op":"read","key":"#);
            string(out, key);
        }
        KvOp::Write { key, value } => {
            out.extend_from_slice(br#"},"op":"write","key":"#);
            string(out, key);
            out.extend_from_slice(br#","value":"#);
            int(out, *value);
        }
        KvOp::Cas { key, from, to } => {
            out.extend_from_slice(br#"},"op":"cas","key":"#);
            string(out, key);
            out.extend_from_slice(br#","from":"#);
            int(out, *from);
            out.extend_from_slice(br#","to":"#);
            int(out, *to);
        }
        KvOp::Txn { txn } => {
            out.extend_from_slice(br#"},"op":"txn","txn":["#);
            for (i, m) in txn.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                micro_op(out, m);
            }
            out.push(b']');
        }
    }
    out.push(b'}');
}

fn micro_op(out: &mut Vec<u8>, m: &MicroOp) {
    let (f, key): (&[u8], &str) = match m {
        MicroOp::Read { key, .. } => (br#"["r","#, key),
        MicroOp::Write { key, .. } => (br#"["w","#, key),
        MicroOp::Append { key, .. } => (br#"["append","#, key),
    };
    out.extend_from_slice(f);
    string(out, key);
    out.push(b',');
    match m {
        MicroOp::Read { value: None, .. } => out.extend_from_slice(b"null"),
        MicroOp::Read {
            value: Some(MopValue::Int(v)),
            ..
        }
        | MicroOp::Write { value: v, .. }
        | MicroOp::Append { value: v, .. } => int(out, *v),
        MicroOp::Read {
            value: Some(MopValue::List(list)),
            ..
        } => {
            out.push(b'[');
            for (i, v) in list.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                int(out, *v);
            }
            out.push(b']');
        }
    }
    out.push(b']');
}

fn int(out: &mut Vec<u8>, n: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A JSON string as serde_json writes it: a string with nothing to escape is copied
/// as it is, any other goes through serde_json itself.
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    } else {
        serde_json::to_writer(out, s).expect("a string always serializes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{CmdId, Command};
    use proptest::prelude::*;

    fn cmd(op: KvOp) -> Command {
        Command {
            id: CmdId {
                node: 3,
                incarnation: 17,
                seq: u64::MAX,
            },
            op,
        }
    }

    fn by_hand(r: &Record) -> String {
        let mut out = Vec::new();
        record(r, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn key_strategy() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-z0-9]{0,6}",
            any::<String>(),
            Just("k\"\\\n\t\u{1}\u{7f}é/𝄞".to_string()),
        ]
    }

    fn micro_op_strategy() -> impl Strategy<Value = MicroOp> {
        prop_oneof![
            (key_strategy(), any::<i64>()).prop_map(|(key, value)| MicroOp::Write { key, value }),
            (key_strategy(), any::<i64>()).prop_map(|(key, value)| MicroOp::Append { key, value }),
            key_strategy().prop_map(|key| MicroOp::Read { key, value: None }),
            (key_strategy(), any::<i64>()).prop_map(|(key, v)| MicroOp::Read {
                key,
                value: Some(MopValue::Int(v))
            }),
            (
                key_strategy(),
                proptest::collection::vec(any::<i64>(), 0..4)
            )
                .prop_map(|(key, l)| MicroOp::Read {
                    key,
                    value: Some(MopValue::List(l))
                }),
        ]
    }

    fn op_strategy() -> impl Strategy<Value = KvOp> {
        prop_oneof![
            key_strategy().prop_map(|key| KvOp::Read { key }),
            (key_strategy(), any::<i64>()).prop_map(|(key, value)| KvOp::Write { key, value }),
            (key_strategy(), any::<i64>(), any::<i64>()).prop_map(|(key, from, to)| KvOp::Cas {
                key,
                from,
                to
            }),
            proptest::collection::vec(micro_op_strategy(), 0..4).prop_map(|txn| KvOp::Txn { txn }),
        ]
    }

    fn batch_strategy() -> impl Strategy<Value = Vec<Command>> {
        proptest::collection::vec(
            (any::<u32>(), any::<u64>(), any::<u64>(), op_strategy()).prop_map(
                |(node, incarnation, seq, op)| Command {
                    id: CmdId {
                        node,
                        incarnation,
                        seq,
                    },
                    op,
                },
            ),
            0..4,
        )
    }

    fn record_strategy() -> impl Strategy<Value = Record> {
        prop_oneof![
            any::<u64>().prop_map(|incarnation| Record::Incarnation { incarnation }),
            (key_strategy(), any::<u64>()).prop_map(|(key, ballot)| Record::RegisterPromise {
                key: key.into(),
                ballot
            }),
            (key_strategy(), any::<u64>(), any::<i64>()).prop_map(|(key, ballot, value)| {
                Record::RegisterAccept {
                    key: key.into(),
                    ballot,
                    value,
                }
            }),
            (key_strategy(), any::<i64>()).prop_map(|(key, value)| Record::RegisterChosen {
                key: key.into(),
                value
            }),
            any::<u64>().prop_map(|ballot| Record::LogPromise { ballot }),
            (any::<u64>(), any::<u64>(), batch_strategy()).prop_map(|(slot, ballot, batch)| {
                Record::LogAccept {
                    slot,
                    ballot,
                    batch: batch.into(),
                }
            }),
            (any::<u64>(), batch_strategy()).prop_map(|(slot, batch)| Record::LogChosen {
                slot,
                batch: batch.into()
            }),
        ]
    }

    #[test]
    fn every_kind_of_record_is_written_as_serde_writes_it() {
        let records = [
            Record::Incarnation { incarnation: 0 },
            Record::RegisterPromise {
                key: "r1".into(),
                ballot: 7,
            },
            Record::RegisterAccept {
                key: "a\"b\\c\n\u{1f}é".into(),
                ballot: 8,
                value: -5,
            },
            Record::RegisterChosen {
                key: String::new().into(),
                value: i64::MIN,
            },
            Record::LogPromise { ballot: u64::MAX },
            Record::LogAccept {
                slot: 1,
                ballot: 2,
                batch: vec![
                    cmd(KvOp::Read { key: "k".into() }),
                    cmd(KvOp::Write {
                        key: "k".into(),
                        value: 3,
                    }),
                    cmd(KvOp::Cas {
                        key: "k".into(),
                        from: 3,
                        to: -4,
                    }),
                ]
                .into(),
            },
            Record::LogChosen {
                slot: 9,
                batch: vec![cmd(KvOp::Txn {
                    txn: vec![
                        MicroOp::Append {
                            key: "x".into(),
                            value: 1,
                        },
                        MicroOp::Read {
                            key: "x".into(),
                            value: None,
                        },
                        MicroOp::Read {
                            key: "y".into(),
                            value: Some(MopValue::List(vec![1, 2])),
                        },
                        MicroOp::Read {
                            key: "z".into(),
                            value: Some(MopValue::Int(4)),
                        },
                        MicroOp::Write {
                            key: "z".into(),
                            value: 5,
                        },
                    ],
                })]
                .into(),
            },
            Record::LogChosen {
                slot: 10,
                batch: Vec::new().into(),
            },
        ];
        for r in &records {
            let serde = serde_json::to_string(r).unwrap();
            assert_eq!(by_hand(r), serde);
            // And it reads back as the record.
            assert_eq!(&serde_json::from_str::<Record>(&by_hand(r)).unwrap(), r);
        }
    }

    proptest! {
        #[test]
        fn any_record_is_written_as_serde_writes_it(r in record_strategy()) {
            prop_assert_eq!(by_hand(&r), serde_json::to_string(&r).unwrap());
        }
    }
}
