//! Each rule with a small hand-written trace that breaks it and one that keeps it.

use super::*;
use crate::Verdict;

fn kinds(events: &[Event]) -> Vec<AnomalyKind> {
    let mut inv = Invariants::new(3);
    for (t, e) in events.iter().enumerate() {
        inv.observe(t as u64, e);
    }
    let (report, _) = inv.finish();
    assert_eq!(
        report.verdict == Verdict::Invalid,
        !report.anomalies.is_empty()
    );
    report.anomalies.iter().map(|a| a.kind).collect()
}

fn send(from: NodeId, to: NodeId, msg: Msg) -> Event {
    Event::Send { from, to, msg }
}

/// A proposer deciding to send a phase-2 message.
fn propose(from: NodeId, msg: Msg) -> Event {
    Event::Propose { from, msg }
}

fn recv(from: NodeId, to: NodeId, msg: Msg) -> Event {
    Event::Receive { from, to, msg }
}

fn promise(key: &str, ballot: Ballot, accepted: Option<(Ballot, i64)>) -> Msg {
    Msg::Promise {
        key: key.into(),
        ballot,
        accepted,
    }
}

fn accept(key: &str, ballot: Ballot, value: i64) -> Msg {
    Msg::Accept {
        key: key.into(),
        ballot,
        value,
    }
}

#[test]
fn a_promise_below_an_earlier_one_is_a_regression_even_across_a_restart() {
    let keeps = [
        send(2, 1, promise("x", 4, None)),
        send(2, 1, promise("x", 4, None)), // a duplicated prepare, answered again
        send(2, 3, promise("x", 6, None)),
    ];
    assert_eq!(kinds(&keeps), vec![]);
    let breaks = [
        send(2, 3, promise("x", 6, None)),
        Event::Restart { node: 2 },
        send(2, 1, promise("x", 4, None)),
    ];
    assert_eq!(kinds(&breaks), vec![AnomalyKind::PromiseRegressed]);
    let log = [
        send(
            2,
            3,
            Msg::LogPromise {
                ballot: 9,
                entries: vec![],
            },
        ),
        send(
            2,
            1,
            Msg::LogPromise {
                ballot: 7,
                entries: vec![],
            },
        ),
    ];
    assert_eq!(kinds(&log), vec![AnomalyKind::PromiseRegressed]);
}

#[test]
fn an_acceptance_below_the_promise_is_caught() {
    let keeps = [
        send(2, 1, promise("x", 4, None)),
        send(
            2,
            1,
            Msg::Accepted {
                key: "x".into(),
                ballot: 4,
            },
        ),
        send(
            2,
            3,
            Msg::LogPromise {
                ballot: 5,
                entries: vec![],
            },
        ),
        send(2, 3, Msg::LogAccepted { ballot: 5, slot: 1 }),
    ];
    assert_eq!(kinds(&keeps), vec![]);
    let breaks = [
        send(2, 3, promise("x", 6, None)),
        send(
            2,
            1,
            Msg::Accepted {
                key: "x".into(),
                ballot: 4,
            },
        ),
        send(
            2,
            3,
            Msg::LogPromise {
                ballot: 8,
                entries: vec![],
            },
        ),
        send(2, 3, Msg::LogAccepted { ballot: 7, slot: 3 }),
    ];
    assert_eq!(
        kinds(&breaks),
        vec![
            AnomalyKind::AcceptedBelowPromise,
            AnomalyKind::AcceptedBelowPromise
        ]
    );
}

#[test]
fn the_highest_accepted_value_must_be_proposed_5_7_then_9_6_gives_7() {
    // Nodes 1 and 2 accepted (5, 7); node 3 wants 6 in ballot 9: it must propose 7.
    let promises = [
        recv(1, 3, promise("x", 9, Some((5, 7)))),
        recv(2, 3, promise("x", 9, Some((5, 7)))),
    ];
    let mut keeps = promises.to_vec();
    keeps.push(propose(3, accept("x", 9, 7)));
    keeps.push(propose(3, accept("x", 9, 7)));
    assert_eq!(kinds(&keeps), vec![]);
    let mut breaks = promises.to_vec();
    breaks.push(propose(3, accept("x", 9, 6)));
    assert_eq!(kinds(&breaks), vec![AnomalyKind::WrongValueProposed]);
    // Of two reported values, the one accepted in the higher ballot.
    let two = [
        recv(1, 3, promise("w", 12, Some((5, 7)))),
        recv(2, 3, promise("w", 12, Some((9, 6)))),
    ];
    let mut keeps = two.to_vec();
    keeps.push(propose(3, accept("w", 12, 6)));
    assert_eq!(kinds(&keeps), vec![]);
    let mut breaks = two.to_vec();
    breaks.push(propose(3, accept("w", 12, 7)));
    assert_eq!(kinds(&breaks), vec![AnomalyKind::WrongValueProposed]);
    // Its own value only when nobody reported one.
    let free = [
        recv(1, 3, promise("y", 12, None)),
        recv(2, 3, promise("y", 12, None)),
        propose(3, accept("y", 12, 42)),
    ];
    assert_eq!(kinds(&free), vec![]);
    // A promise taken in after the first accept does not count.
    let late = [
        recv(1, 3, promise("z", 12, None)),
        propose(3, accept("z", 12, 42)),
        recv(2, 3, promise("z", 12, Some((9, 6)))),
        propose(3, accept("z", 12, 42)),
    ];
    assert_eq!(kinds(&late), vec![]);
}

#[test]
fn the_proposers_own_acceptor_reports_through_its_records() {
    // Node 3's own acceptor accepted (11, 8): higher than anything reported.
    let own = [
        Event::Record {
            node: 3,
            record: Record::Accept {
                key: "x".into(),
                ballot: 11,
                value: 8,
            },
        },
        recv(1, 3, promise("x", 12, Some((9, 6)))),
        propose(3, accept("x", 12, 8)),
    ];
    assert_eq!(kinds(&own), vec![]);
}

#[test]
fn a_new_leader_must_propose_the_recovered_batches() {
    let promises = [
        recv(
            1,
            3,
            Msg::LogPromise {
                ballot: 12,
                entries: vec![(1, Some(5), 0xa), (2, None, 0xc)],
            },
        ),
        recv(
            2,
            3,
            Msg::LogPromise {
                ballot: 12,
                entries: vec![(1, Some(9), 0xb)],
            },
        ),
    ];
    let mut keeps = promises.to_vec();
    keeps.push(propose(
        3,
        Msg::LogAccept {
            ballot: 12,
            slot: 1,
            batch: 0xb,
        },
    ));
    keeps.push(propose(
        3,
        Msg::LogAccept {
            ballot: 12,
            slot: 2,
            batch: 0xc,
        },
    ));
    keeps.push(propose(
        3,
        Msg::LogAccept {
            ballot: 12,
            slot: 3,
            batch: 0xf,
        },
    )); // fresh
    assert_eq!(kinds(&keeps), vec![]);
    let mut breaks = promises.to_vec();
    breaks.push(propose(
        3,
        Msg::LogAccept {
            ballot: 12,
            slot: 1,
            batch: 0xa,
        },
    ));
    breaks.push(propose(
        3,
        Msg::LogAccept {
            ballot: 12,
            slot: 2,
            batch: 0xd,
        },
    ));
    assert_eq!(
        kinds(&breaks),
        vec![
            AnomalyKind::WrongValueProposed,
            AnomalyKind::WrongValueProposed
        ]
    );
    // A promise that arrives after the leader's first heartbeat does not count.
    let late = [
        recv(
            1,
            3,
            Msg::LogPromise {
                ballot: 12,
                entries: vec![],
            },
        ),
        propose(
            3,
            Msg::Commit {
                ballot: 12,
                commit: 0,
            },
        ),
        recv(
            2,
            3,
            Msg::LogPromise {
                ballot: 12,
                entries: vec![(4, Some(9), 0xb)],
            },
        ),
        propose(
            3,
            Msg::LogAccept {
                ballot: 12,
                slot: 4,
                batch: 0xe,
            },
        ),
    ];
    assert_eq!(kinds(&late), vec![]);
}

fn decided(key: &str, value: i64) -> Msg {
    Msg::Decided {
        key: key.into(),
        value,
    }
}

fn chosen(entries: &[(Slot, BatchId)]) -> Msg {
    Msg::Chosen {
        entries: entries.to_vec(),
    }
}

fn wrote(node: NodeId, record: Record) -> Event {
    Event::Record { node, record }
}

fn register_chosen(key: &str, value: i64) -> Record {
    Record::Chosen {
        key: key.into(),
        value,
    }
}

#[test]
fn a_register_or_slot_is_learned_as_one_value() {
    let keeps = [
        send(1, 2, decided("x", 7)),
        recv(1, 2, decided("x", 7)),
        wrote(2, register_chosen("x", 7)),
        recv(3, 1, chosen(&[(3, 0xa)])),
        wrote(
            1,
            Record::LogChosen {
                slot: 3,
                batch: 0xa,
            },
        ),
        send(1, 2, chosen(&[(3, 0xa)])),
    ];
    assert_eq!(kinds(&keeps), vec![]);
    let breaks = [
        send(1, 2, decided("x", 7)),
        recv(2, 3, decided("x", 8)),
        wrote(3, register_chosen("x", 8)),
        recv(3, 1, chosen(&[(3, 0xa)])),
        wrote(
            1,
            Record::LogChosen {
                slot: 3,
                batch: 0xa,
            },
        ),
        send(2, 3, chosen(&[(3, 0xb)])),
    ];
    assert_eq!(
        kinds(&breaks),
        vec![AnomalyKind::ConflictingLearn, AnomalyKind::ConflictingLearn]
    );
}

#[test]
fn records_alone_never_count_against_an_acceptor() {
    // A promise appended but lost in a crash was never sent: a lower one after the
    // restart is no regression.
    let lost = [
        Event::Record {
            node: 2,
            record: Record::Promise {
                key: "x".into(),
                ballot: 9,
            },
        },
        Event::Restart { node: 2 },
        send(2, 1, promise("x", 4, None)),
    ];
    assert_eq!(kinds(&lost), vec![]);
}

#[test]
fn coverage_counts_the_situations_the_rules_exist_for() {
    let mut inv = Invariants::new(3);
    let events = [
        send(2, 3, promise("x", 6, None)),
        Event::Restart { node: 2 },
        send(
            2,
            3,
            Msg::Accepted {
                key: "x".into(),
                ballot: 6,
            },
        ),
        recv(1, 3, promise("y", 12, Some((5, 7)))),
        recv(2, 3, promise("y", 12, Some((9, 6)))),
        propose(3, accept("y", 12, 6)),
        recv(
            1,
            3,
            Msg::Accepted {
                key: "y".into(),
                ballot: 12,
            },
        ),
        recv(
            1,
            3,
            Msg::Accepted {
                key: "y".into(),
                ballot: 12,
            },
        ),
    ];
    for (t, e) in events.iter().enumerate() {
        inv.observe(t as u64, e);
    }
    let (report, coverage) = inv.finish();
    assert_eq!(report.verdict, Verdict::Valid, "{:?}", report.anomalies);
    assert_eq!(coverage.get("restart_between_promise_and_accept"), 1);
    assert_eq!(coverage.get("promises_disagreed"), 1);
    assert_eq!(coverage.get("duplicate_accepted_delivered"), 1);
    assert!(
        coverage
            .never_reached()
            .contains(&"minority-slot-recovered".to_string())
    );
}

#[test]
fn a_value_is_written_down_as_chosen_only_once_learned() {
    let chosen = |node, key: &str, value| Event::Record {
        node,
        record: Record::Chosen {
            key: key.into(),
            value,
        },
    };
    let own_accept = |node, key: &str, ballot, value| Event::Record {
        node,
        record: Record::Accept {
            key: key.into(),
            ballot,
            value,
        },
    };
    // Node 1 proposed 7 in ballot 1, accepted it itself and heard node 2: a majority.
    let keeps = [
        propose(1, accept("x", 1, 7)),
        own_accept(1, "x", 1, 7),
        recv(
            2,
            1,
            Msg::Accepted {
                key: "x".into(),
                ballot: 1,
            },
        ),
        chosen(1, "x", 7),
        // Node 3 was told.
        recv(
            1,
            3,
            Msg::Decided {
                key: "x".into(),
                value: 7,
            },
        ),
        chosen(3, "x", 7),
    ];
    assert_eq!(kinds(&keeps), vec![]);
    // Its own acceptance alone is no majority of three.
    let breaks = [
        propose(1, accept("y", 1, 7)),
        own_accept(1, "y", 1, 7),
        chosen(1, "y", 7),
    ];
    assert_eq!(kinds(&breaks), vec![AnomalyKind::ChosenWithoutQuorum]);
    // The log: a majority of acceptances, or a commit of the ballot it accepted in.
    let log_chosen = |node, slot, batch| Event::Record {
        node,
        record: Record::LogChosen { slot, batch },
    };
    let keeps = [
        propose(
            1,
            Msg::LogAccept {
                ballot: 1,
                slot: 1,
                batch: 0xa,
            },
        ),
        Event::Record {
            node: 1,
            record: Record::LogAccept {
                slot: 1,
                ballot: 1,
                batch: 0xa,
            },
        },
        recv(3, 1, Msg::LogAccepted { ballot: 1, slot: 1 }),
        log_chosen(1, 1, 0xa),
        Event::Record {
            node: 2,
            record: Record::LogAccept {
                slot: 1,
                ballot: 1,
                batch: 0xa,
            },
        },
        recv(
            1,
            2,
            Msg::Commit {
                ballot: 1,
                commit: 1,
            },
        ),
        log_chosen(2, 1, 0xa),
    ];
    assert_eq!(kinds(&keeps), vec![]);
    let breaks = [
        propose(
            1,
            Msg::LogAccept {
                ballot: 1,
                slot: 1,
                batch: 0xa,
            },
        ),
        Event::Record {
            node: 1,
            record: Record::LogAccept {
                slot: 1,
                ballot: 1,
                batch: 0xa,
            },
        },
        log_chosen(1, 1, 0xa),
    ];
    assert_eq!(kinds(&breaks), vec![AnomalyKind::ChosenWithoutQuorum]);
}

#[test]
fn a_real_runs_trace_is_judged_on_what_the_wire_shows() {
    let line = |t: u64, from: u64, to: u64, msg: &str| {
        let entry = serde_json::json!({"time_ns": t, "from": from, "to": to,
            "type": "x", "fate": "delivered", "delay_ms": [0], "msg": msg});
        format!("{entry}\n")
    };
    let keeps = [
        line(
            1,
            2,
            1,
            r#"{"type":"promise","key":"x","ballot":4,"accepted":null}"#,
        ),
        line(
            2,
            2,
            3,
            r#"{"type":"promise","key":"x","ballot":6,"accepted":[4,7]}"#,
        ),
        line(3, 1, 2, r#"{"type":"chosen","entries":[[1,[{"id":1}]]]}"#),
        r#"{"time_ns":4,"from":1,"to":2,"type":"commit","fate":"dropped","delay_ms":[]}"#
            .to_string()
            + "\n",
    ]
    .concat();
    let report = check_wire(keeps.as_bytes(), &[])
        .unwrap()
        .expect("messages to judge");
    assert_eq!(report.verdict, Verdict::Valid, "{:?}", report.anomalies);
    assert!(
        report.summary.contains("from the wire"),
        "{}",
        report.summary
    );
    let breaks = [
        line(
            1,
            2,
            3,
            r#"{"type":"promise","key":"x","ballot":6,"accepted":null}"#,
        ),
        line(
            2,
            2,
            1,
            r#"{"type":"promise","key":"x","ballot":4,"accepted":null}"#,
        ),
        line(3, 1, 2, r#"{"type":"chosen","entries":[[1,[{"id":1}]]]}"#),
        line(4, 3, 2, r#"{"type":"chosen","entries":[[1,[{"id":2}]]]}"#),
    ]
    .concat();
    // Across links the proxies' stamps may disorder sends: only a restart in between
    // makes the order certain.
    let report = check_wire(breaks.as_bytes(), &[]).unwrap().unwrap();
    let kinds: Vec<AnomalyKind> = report.anomalies.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AnomalyKind::ConflictingLearn]);
    let report = check_wire(breaks.as_bytes(), &[(1, 9), (2, 2)])
        .unwrap()
        .unwrap();
    let kinds: Vec<AnomalyKind> = report.anomalies.iter().map(|a| a.kind).collect();
    assert_eq!(
        kinds,
        vec![AnomalyKind::PromiseRegressed, AnomalyKind::ConflictingLearn]
    );
    // A trace without messages judges nothing; a broken one names its line.
    let bare = r#"{"time_ns":1,"from":1,"to":2,"type":"commit","fate":"delivered","delay_ms":[0]}"#;
    assert!(check_wire(bare.as_bytes(), &[]).unwrap().is_none());
    let err = check_wire("{\"time_ns\":1}\nnot json\n".as_bytes(), &[]).unwrap_err();
    assert_eq!(err.line, 2);
}

fn journal(lines: &[(u64, Event)]) -> String {
    lines
        .iter()
        .map(|(t, e)| {
            serde_json::to_string(&JournalLine {
                t: *t,
                event: e.clone(),
            })
            .unwrap()
                + "\n"
        })
        .collect()
}

fn judge_journals(journals: &[String]) -> Result<Option<(CheckReport, Coverage)>, TraceError> {
    check_journals(
        journals
            .iter()
            .enumerate()
            .map(|(i, j)| (format!("n{}", i + 1), std::io::Cursor::new(j.clone())))
            .collect(),
        3,
    )
}

#[test]
fn the_nodes_journals_are_merged_by_time_and_judged_with_every_rule() {
    // Node 1 proposes x=5 in ballot 9 after node 2 reported 7 accepted in ballot 5
    // (wrong-value-proposed: a rule the wire alone cannot judge). Node 2's journal
    // holds its send, node 1's the receipt, later on the shared clock.
    let n1 = journal(&[
        (1, Event::Restart { node: 1 }),
        (
            30,
            wrote(
                1,
                Record::Promise {
                    key: "x".into(),
                    ballot: 9,
                },
            ),
        ),
        (40, recv(2, 1, promise("x", 9, Some((5, 7))))),
        (50, propose(1, accept("x", 9, 5))),
    ]);
    let n2 = journal(&[
        (2, Event::Restart { node: 2 }),
        (20, send(2, 1, promise("x", 9, Some((5, 7))))),
    ]);
    let (report, _) = judge_journals(&[n1.clone(), n2.clone()]).unwrap().unwrap();
    let kinds: Vec<_> = report.anomalies.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AnomalyKind::WrongValueProposed]);
    // The same steps with the right value keep every rule.
    let right = n1.replace(r#""value":5"#, r#""value":7"#);
    let (report, _) = judge_journals(&[right, n2]).unwrap().unwrap();
    assert_eq!(report.verdict, Verdict::Valid, "{:?}", report.anomalies);
    // Journals with no events judge nothing.
    assert!(judge_journals(&[String::new()]).unwrap().is_none());
}

#[test]
fn a_line_torn_by_a_kill_is_skipped_and_any_other_bad_line_is_an_error() {
    let before = journal(&[
        (1, Event::Restart { node: 2 }),
        (5, send(2, 1, promise("x", 6, None))),
    ]);
    let after = journal(&[
        (9, Event::Restart { node: 2 }),
        (10, send(2, 1, promise("x", 4, None))),
    ]);
    // Torn before the next start: skipped, and the regression across it is caught.
    let torn = format!("{before}{{\"t\":7,\"send\":{{\"fr\n{after}");
    let (report, _) = judge_journals(&[String::new(), torn]).unwrap().unwrap();
    let kinds: Vec<_> = report.anomalies.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AnomalyKind::PromiseRegressed]);
    // Torn at the end: skipped.
    let at_end = format!("{before}{{\"t\":7,\"se");
    assert!(judge_journals(&[at_end]).unwrap().is_some());
    // Anywhere else: an error naming the journal and the line.
    let middle = format!("{before}{{\"t\":6,\"bogus\":1}}\n{before}")
        .replace("{\"t\":1,\"restart\":{\"node\":2}}\n{\"t\":5", "{\"t\":8");
    let err = judge_journals(&[String::new(), middle]).unwrap_err();
    assert_eq!((err.file.as_str(), err.line), ("n2", 2), "{err}");
}
