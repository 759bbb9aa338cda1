//! Property tests over arbitrary input: nothing a client or a peer sends can panic
//! the node. Covers the client parser, the peer-message parser, the WAL decoder and
//! the core itself under arbitrary peer messages and events.
//!
//! The case count follows PROPTEST_CASES (default 256 per property here); a longer
//! fuzzing session is `PROPTEST_CASES=200000 cargo test --release -p node --test fuzz`.

use proptest::prelude::*;

use paxos_node::client::parse_request;
use paxos_node::core::{Config, Event, Node, Record, TimerId};
use paxos_node::msg::{PeerMessage, ReportedEntry};
use paxos_node::types::{Bug, ClientOp, CmdId, Command, KvOp};
use paxos_node::wal::{decode_all, encode_into};

/// JSON-ish text built from request-like pieces, to reach deep parser paths.
fn requestish() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("\"id\"".to_string()),
        Just("\"op\"".to_string()),
        Just("\"key\"".to_string()),
        Just("\"value\"".to_string()),
        Just("\"from\"".to_string()),
        Just("\"to\"".to_string()),
        Just("\"hello\"".to_string()),
        "\"[a-z]{0,4}\"",
    ];
    let value = prop_oneof![
        Just("\"propose\"".to_string()),
        Just("\"read\"".to_string()),
        Just("\"write\"".to_string()),
        Just("\"cas\"".to_string()),
        Just("\"status\"".to_string()),
        Just("\"dump\"".to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| v.to_string()),
        Just("null".to_string()),
        Just("[1,{\"a\":[]}]".to_string()),
        Just("1e999".to_string()),
        "\"[^\"\\\\]{0,8}\"",
    ];
    prop::collection::vec((key, value), 0..7).prop_map(|fields| {
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", body.join(","))
    })
}

fn ballot() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![0..20u64, Just(u64::MAX), Just(u64::MAX - 1), any::<u64>()]
}

fn command() -> impl Strategy<Value = Command> + Clone {
    (0..6u32, 0..3u64, 0..5u64, 0..3u8, any::<i64>()).prop_map(|(node, inc, seq, kind, v)| {
        let key = "k".to_string();
        let op = match kind {
            0 => KvOp::Read { key },
            1 => KvOp::Write { key, value: v },
            _ => KvOp::Cas {
                key,
                from: v,
                to: v ^ 1,
            },
        };
        Command {
            id: CmdId {
                node,
                incarnation: inc,
                seq,
            },
            op,
        }
    })
}

fn peer_message() -> impl Strategy<Value = PeerMessage> {
    let key = prop_oneof![Just("r".to_string()), Just(String::new())];
    let batch = prop::collection::vec(command(), 0..3);
    let slot = prop_oneof![0..6u64, Just(u64::MAX), any::<u64>()];
    prop_oneof![
        (key.clone(), ballot()).prop_map(|(key, ballot)| PeerMessage::Prepare {
            key: key.into(),
            ballot
        }),
        (
            key.clone(),
            ballot(),
            prop::option::of((ballot(), any::<i64>()))
        )
            .prop_map(|(key, ballot, accepted)| PeerMessage::Promise {
                key: key.into(),
                ballot,
                accepted
            }),
        (key.clone(), ballot(), any::<i64>()).prop_map(|(key, ballot, value)| {
            PeerMessage::Accept {
                key: key.into(),
                ballot,
                value,
            }
        }),
        (key.clone(), ballot()).prop_map(|(key, ballot)| PeerMessage::Accepted {
            key: key.into(),
            ballot
        }),
        (key.clone(), ballot(), ballot()).prop_map(|(key, ballot, promised)| {
            PeerMessage::RegisterNack {
                key: key.into(),
                ballot,
                promised,
            }
        }),
        (key, any::<i64>()).prop_map(|(key, value)| PeerMessage::Decided {
            key: key.into(),
            value
        }),
        (ballot(), slot.clone())
            .prop_map(|(ballot, from_slot)| PeerMessage::LogPrepare { ballot, from_slot }),
        (
            ballot(),
            prop::collection::vec(
                (slot.clone(), prop::option::of(ballot()), batch.clone()),
                0..4
            )
        )
            .prop_map(|(ballot, entries)| PeerMessage::LogPromise {
                ballot,
                entries: entries
                    .into_iter()
                    .map(|(slot, ballot, batch)| ReportedEntry {
                        slot,
                        ballot,
                        batch: batch.into(),
                    })
                    .collect()
            }),
        (ballot(), slot.clone(), batch.clone()).prop_map(|(ballot, slot, batch)| {
            PeerMessage::LogAccept {
                ballot,
                slot,
                batch: batch.into(),
            }
        }),
        (ballot(), slot.clone())
            .prop_map(|(ballot, slot)| PeerMessage::LogAccepted { ballot, slot }),
        (ballot(), ballot())
            .prop_map(|(ballot, promised)| PeerMessage::LogNack { ballot, promised }),
        (ballot(), slot.clone())
            .prop_map(|(ballot, commit)| PeerMessage::Commit { ballot, commit }),
        slot.clone()
            .prop_map(|from_slot| PeerMessage::CatchUp { from_slot }),
        prop::collection::vec((slot, batch.clone()), 0..3).prop_map(|entries| {
            PeerMessage::Chosen {
                entries: entries.into_iter().map(|(s, b)| (s, b.into())).collect(),
            }
        }),
        batch
            .clone()
            .prop_map(|commands| PeerMessage::Forward { commands }),
        batch.clone().prop_map(|b| PeerMessage::Reject {
            ids: b.iter().map(|c| c.id).collect()
        }),
        batch.prop_map(|b| PeerMessage::EarlyAck {
            ids: b.iter().map(|c| c.id).collect()
        }),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (0..7u32, peer_message()).prop_map(|(from, msg)| Event::Peer { from, msg }),
        1 => (0..4u64, any::<i64>()).prop_map(|(token, value)| Event::Client {
            token,
            op: ClientOp::Propose { key: "r".into(), value },
        }),
        1 => (0..4u64, any::<i64>()).prop_map(|(token, value)| Event::Client {
            token,
            op: ClientOp::Kv(KvOp::Write { key: "k".into(), value }),
        }),
        1 => prop_oneof![
            Just(TimerId::Election),
            Just(TimerId::Heartbeat),
            Just(TimerId::Register("r".into())),
            (0..4u64).prop_map(TimerId::Request),
        ]
        .prop_map(Event::Timer),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
    ))]

    #[test]
    fn client_parser_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_request(&bytes);
    }

    #[test]
    fn client_parser_never_panics_on_requestish_json(line in requestish()) {
        if let Err(e) = parse_request(line.as_bytes()) {
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn peer_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256), line in requestish()) {
        let _ = serde_json::from_slice::<PeerMessage>(&bytes);
        let _ = serde_json::from_str::<PeerMessage>(&line);
    }

    #[test]
    fn peer_messages_round_trip(msg in peer_message()) {
        let line = serde_json::to_string(&msg).unwrap();
        prop_assert!(!line.contains('\n'));
        prop_assert_eq!(serde_json::from_str::<PeerMessage>(&line).unwrap(), msg);
    }

    #[test]
    fn wal_decoder_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512), flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4)) {
        let path = std::path::Path::new("fuzz.wal");
        let _ = decode_all::<paxos_node::core::Record>(path, &bytes);
        // Valid records with a few bytes changed: decoded, cut as a torn tail, or
        // refused as corrupt, never a panic.
        let mut valid = Vec::new();
        encode_into(&Record::LogPromise { ballot: 3 }, &mut valid);
        encode_into(&Record::RegisterChosen { key: "r".into(), value: 9 }, &mut valid);
        for (at, b) in flips {
            let i = at.index(valid.len());
            valid[i] ^= b;
        }
        let _ = decode_all::<paxos_node::core::Record>(path, &valid);
    }

    #[test]
    fn the_core_survives_any_sequence_of_events(
        events in prop::collection::vec(event(), 0..40),
        bug in prop::option::of(prop::sample::select(Bug::ALL.to_vec())),
        n in 1..6usize,
    ) {
        let mut cfg = Config::new(1, n, 3);
        cfg.bugs.extend(bug);
        let (mut node, _) = Node::start(cfg, vec![]);
        for event in events {
            let _ = node.step(event);
        }
        let _ = node.status();
    }
}
