//! Hand-written histories on both sides of every anomaly kind: each valid one passes,
//! each invalid one fails with the right anomaly.

mod common;

use checker::finals::parse_final;
use checker::{FinalDump, Options, Verdict, check};
use common::H;
use serde_json::{Value, json};

fn verdict_of(h: &H, check_name: &str) -> (Verdict, Vec<String>) {
    verdict_with(h, &[], check_name)
}

fn verdict_with(h: &H, finals: &[FinalDump], check_name: &str) -> (Verdict, Vec<String>) {
    let result = check(&h.history(), finals, &Options::default());
    let c = result
        .checks
        .iter()
        .find(|c| c.name == check_name)
        .unwrap_or_else(|| panic!("no check {check_name}"));
    (
        c.verdict,
        c.anomalies.iter().map(|a| a.kind.to_string()).collect(),
    )
}

fn lin(h: &H) -> (Verdict, Vec<String>) {
    verdict_of(h, "linearizability")
}

fn nonlin() -> (Verdict, Vec<String>) {
    (Verdict::Invalid, vec!["non-linearizable".to_string()])
}

fn valid() -> (Verdict, Vec<String>) {
    (Verdict::Valid, vec![])
}

// ---- linearizability shapes ----

#[test]
fn stale_read() {
    // Invalid: the read starts after the write of 2 completed, yet returns 1.
    let mut bad = H::new();
    bad.write(1, "k", 1).write(1, "k", 2).read(2, "k", Some(1));
    assert_eq!(lin(&bad), nonlin());
    // Valid: the read overlaps the write of 2, so it may come first.
    let mut good = H::new();
    good.write(1, "k", 1)
        .invoke(1, "write", "k", json!(2))
        .read(2, "k", Some(1))
        .ok(1, "write", "k", json!(2));
    assert_eq!(lin(&good), valid());
}

#[test]
fn lost_write() {
    // Invalid: an acknowledged write is never seen; a later read sees the older value.
    let mut bad = H::new();
    bad.write(1, "k", 1)
        .write(2, "k", 2)
        .read(3, "k", Some(1))
        .read(3, "k", Some(1));
    assert_eq!(lin(&bad), nonlin());
    let mut good = H::new();
    good.write(1, "k", 1).write(2, "k", 2).read(3, "k", Some(2));
    assert_eq!(lin(&good), valid());
}

#[test]
fn cas_on_a_stale_value() {
    // Invalid: cas 1->3 succeeds after the value became 2.
    let mut bad = H::new();
    bad.write(1, "k", 1).write(1, "k", 2).cas(2, "k", 1, 3);
    assert_eq!(lin(&bad), nonlin());
    let mut good = H::new();
    good.write(1, "k", 1)
        .cas(2, "k", 1, 3)
        .read(1, "k", Some(3));
    assert_eq!(lin(&good), valid());
    // A failed cas did not happen: it constrains nothing.
    let mut failed = H::new();
    failed
        .write(1, "k", 1)
        .invoke(2, "cas", "k", json!([5, 6]))
        .fail(2, "cas", "k", json!([5, 6]))
        .read(1, "k", Some(1));
    assert_eq!(lin(&failed), valid());
}

#[test]
fn read_of_a_never_written_value() {
    let mut bad = H::new();
    bad.write(1, "k", 1).read(2, "k", Some(99));
    assert_eq!(lin(&bad), nonlin());
    // Reading absent before any write is fine; the initial value is null.
    let mut good = H::new();
    good.read(2, "k", None)
        .write(1, "k", 1)
        .read(2, "k", Some(1));
    assert_eq!(lin(&good), valid());
    let mut absent_after = H::new();
    absent_after.write(1, "k", 1).read(2, "k", None);
    assert_eq!(lin(&absent_after), nonlin());
}

#[test]
fn an_info_write_that_must_have_happened() {
    // The write of 2 timed out (info), yet a later read sees 2: it must have happened.
    let mut h = H::new();
    h.write(1, "k", 1)
        .invoke(2, "write", "k", json!(2))
        .info(2, "write", "k", json!(2))
        .read(3, "k", Some(2));
    assert_eq!(lin(&h), valid());
    // Even with no completion at all (the history ended while it was in flight).
    let mut open = H::new();
    open.write(1, "k", 1)
        .invoke(2, "write", "k", json!(2))
        .read(3, "k", Some(2));
    assert_eq!(lin(&open), valid());
    // But not before it was invoked.
    let mut early = H::new();
    early
        .write(1, "k", 1)
        .read(3, "k", Some(2))
        .invoke(2, "write", "k", json!(2))
        .info(2, "write", "k", json!(2));
    assert_eq!(lin(&early), nonlin());
}

#[test]
fn an_info_write_that_must_not_have_happened() {
    // The write of 2 is info; reads after it see 1 then 1 again: it never happened
    // (or has not yet), which is allowed.
    let mut h = H::new();
    h.write(1, "k", 1)
        .invoke(2, "write", "k", json!(2))
        .info(2, "write", "k", json!(2))
        .read(3, "k", Some(1))
        .read(3, "k", Some(1));
    assert_eq!(lin(&h), valid());
    // It may not happen twice: 1, then 2, then 1 again needs a second write of 1.
    let mut flip = H::new();
    flip.write(1, "k", 1)
        .invoke(2, "write", "k", json!(2))
        .info(2, "write", "k", json!(2))
        .read(3, "k", Some(2))
        .read(3, "k", Some(1));
    assert_eq!(lin(&flip), nonlin());
}

#[test]
fn an_info_cas_can_explain_a_value() {
    let mut h = H::new();
    h.write(1, "k", 1)
        .invoke(2, "cas", "k", json!([1, 5]))
        .info(2, "cas", "k", json!([1, 5]))
        .read(3, "k", Some(5));
    assert_eq!(lin(&h), valid());
    // ...but only if its precondition could hold.
    let mut h = H::new();
    h.write(1, "k", 2)
        .invoke(2, "cas", "k", json!([1, 5]))
        .info(2, "cas", "k", json!([1, 5]))
        .read(3, "k", Some(5));
    assert_eq!(lin(&h), nonlin());
}

#[test]
fn keys_are_independent_and_every_bad_key_is_reported() {
    let mut h = H::new();
    h.write(1, "a", 1)
        .read(2, "a", Some(7))
        .write(1, "b", 1)
        .read(2, "b", Some(1))
        .write(1, "c", 1)
        .read(2, "c", Some(8));
    let result = check(&h.history(), &[], &Options::default());
    let lin = &result.checks[2];
    let keys: Vec<_> = lin
        .anomalies
        .iter()
        .map(|a| a.key.clone().unwrap())
        .collect();
    assert_eq!(keys, vec!["a", "c"]);
    assert_eq!(result.verdict, Verdict::Invalid);
}

#[test]
fn the_explanation_names_the_prefix_the_blocked_op_and_the_value() {
    let mut bad = H::new();
    bad.write(1, "k", 1).write(1, "k", 2).read(2, "k", Some(1));
    let result = check(&bad.history(), &[], &Options::default());
    let a = &result.checks[2].anomalies[0];
    let w = a.witness.as_ref().unwrap();
    assert_eq!(
        w.prefix.iter().map(|o| o.index).collect::<Vec<_>>(),
        vec![0, 2]
    );
    assert_eq!(w.blocked.index, 4);
    assert_eq!(w.blocked.f, "read");
    assert_eq!(w.value, Some(2));
    assert!(
        a.message
            .contains("the read that returned 1 by process 2 (index 4) cannot take effect there: the value there is 2"),
        "{}",
        a.message
    );
    let text = result.render_text();
    assert!(
        text.contains("cannot place next: p2 read k -> ok 1"),
        "{text}"
    );
}

#[test]
fn no_completed_kv_op_is_unknown_not_valid() {
    let mut h = H::new();
    h.invoke(1, "write", "k", json!(1))
        .info(1, "write", "k", json!(1));
    assert_eq!(lin(&h).0, Verdict::Unknown);
}

#[test]
fn a_spent_budget_is_unknown_never_valid() {
    // Many concurrent writes, each read by a concurrent read, and no way to decide
    // quickly under a tiny budget.
    let mut h = H::new();
    for p in 0..12 {
        h.invoke(p, "write", "k", json!(p));
        h.invoke(100 + p, "read", "k", json!(null));
    }
    for p in 0..12 {
        h.ok(p, "write", "k", json!(p));
        h.ok(100 + p, "read", "k", json!(p));
    }
    h.read(20, "k", Some(99));
    let opts = Options {
        time_limit: None,
        max_states: 50,
        ..Options::default()
    };
    let result = check(&h.history(), &[], &opts);
    assert_eq!(result.checks[2].verdict, Verdict::Unknown);
    assert_eq!(result.verdict, Verdict::Unknown);
    assert!(result.checks[2].unknown[0].contains("memory budget"));
}

// ---- registers ----

fn dump(node: u64, registers: Value, log: Value) -> FinalDump {
    parse_final(
        &json!({"node": node, "registers": registers, "log": log}).to_string(),
        None,
    )
    .unwrap()
}

#[test]
fn register_agreement_both_sides() {
    let mut good = H::new();
    good.invoke(1, "propose", "r", json!(5))
        .invoke(2, "propose", "r", json!(6))
        .ok(1, "propose", "r", json!(6))
        .ok(2, "propose", "r", json!(6));
    let finals = [
        dump(1, json!({"r": 6}), json!([])),
        dump(2, json!({"r": 6}), json!([])),
    ];
    assert_eq!(verdict_with(&good, &finals, "register-agreement"), valid());
    assert_eq!(verdict_with(&good, &finals, "register-validity"), valid());

    let mut bad = H::new();
    bad.propose(1, "r", 5, 5).propose(2, "r", 6, 6);
    assert_eq!(
        verdict_of(&bad, "register-agreement"),
        (Verdict::Invalid, vec!["agreement".into()])
    );
    // A node learning a different value than the clients were told also breaks it.
    let mut replies = H::new();
    replies.propose(1, "r", 5, 5);
    let finals = [dump(3, json!({"r": 7}), json!([]))];
    let (v, kinds) = verdict_with(&replies, &finals, "register-agreement");
    assert_eq!(
        (v, kinds),
        (Verdict::Invalid, vec!["agreement".to_string()])
    );
}

#[test]
fn register_validity_both_sides() {
    // Chosen value nobody proposed.
    let mut bad = H::new();
    bad.propose(1, "r", 5, 9);
    assert_eq!(
        verdict_of(&bad, "register-validity"),
        (Verdict::Invalid, vec!["validity".into()])
    );
    // Chosen value proposed only after the decision was reported.
    let mut late = H::new();
    late.propose(1, "r", 5, 6).propose(2, "r", 6, 6);
    assert_eq!(verdict_of(&late, "register-validity").0, Verdict::Invalid);
    // An info propose counts as proposed.
    let mut info = H::new();
    info.invoke(1, "propose", "r", json!(6))
        .info(1, "propose", "r", json!(6))
        .propose(2, "r", 5, 6);
    assert_eq!(verdict_of(&info, "register-validity"), valid());
    // A failed propose does not.
    let mut failed = H::new();
    failed
        .invoke(1, "propose", "r", json!(6))
        .fail(1, "propose", "r", json!(6))
        .propose(2, "r", 5, 6);
    assert_eq!(verdict_of(&failed, "register-validity").0, Verdict::Invalid);
}

#[test]
fn proposes_that_decide_nothing_are_unknown() {
    let mut h = H::new();
    h.invoke(1, "propose", "r", json!(5))
        .info(1, "propose", "r", json!(5));
    assert_eq!(verdict_of(&h, "register-agreement").0, Verdict::Unknown);
    let result = check(&h.history(), &[], &Options::default());
    assert_eq!(result.verdict, Verdict::Unknown);
    // A KV-only history skips the register checks instead.
    let mut kv = H::new();
    kv.write(1, "k", 1).read(1, "k", Some(1));
    assert_eq!(verdict_of(&kv, "register-agreement").0, Verdict::Skipped);
    assert_eq!(
        check(&kv.history(), &[], &Options::default()).verdict,
        Verdict::Valid
    );
}

// ---- log agreement ----

fn cmd(node: u64, seq: u64, op: &str, key: &str, extra: Value) -> Value {
    let mut c = json!({"id": {"node": node, "incarnation": 1, "seq": seq}, "op": op, "key": key});
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

#[test]
fn what_precedes_a_snapshot_is_compared_by_state() {
    let mut h = H::new();
    h.write(1, "k", 1).write(2, "k", 2).write(3, "j", 3);
    let w2 = cmd(2, 0, "write", "k", json!({"value": 2}));
    let w3 = cmd(3, 0, "write", "j", json!({"value": 3}));
    let with_snapshot = |node: u64, index: u64, kv: Value, log: Value| {
        parse_final(
            &json!({"node": node, "registers": {}, "snapshot": {"index": index, "kv": kv}, "log": log})
                .to_string(),
            None,
        )
        .unwrap()
    };
    // Node 1 snapshotted at slot 1 and holds slots 2-3; node 2 snapshotted at slot 3.
    let tail = json!([{"slot": 2, "command": w2}, {"slot": 3, "command": w3}]);
    let agree = [
        with_snapshot(1, 1, json!({"k": 1}), tail.clone()),
        with_snapshot(2, 3, json!({"k": 2, "j": 3}), json!([])),
    ];
    assert_eq!(verdict_with(&h, &agree, "log-agreement"), valid());
    // Node 2's state at slot 3 is not what slot 1's state and slots 2-3 give.
    let disagree = [
        with_snapshot(1, 1, json!({"k": 1}), tail),
        with_snapshot(2, 3, json!({"k": 1, "j": 3}), json!([])),
    ];
    let (v, kinds) = verdict_with(&h, &disagree, "log-agreement");
    assert_eq!(v, Verdict::Invalid);
    assert_eq!(kinds, vec!["log-disagreement"]);
    // Without the slots between them, the two snapshots are not compared.
    let gap = [
        with_snapshot(1, 1, json!({"k": 1}), json!([{"slot": 3, "command": w3}])),
        with_snapshot(2, 3, json!({"k": 9}), json!([])),
    ];
    assert_eq!(verdict_with(&h, &gap, "log-agreement"), valid());
}

#[test]
fn log_agreement_both_sides() {
    let mut h = H::new();
    h.write(1, "k", 1).write(2, "k", 2);
    let w1 = cmd(1, 0, "write", "k", json!({"value": 1}));
    let w2 = cmd(2, 0, "write", "k", json!({"value": 2}));
    let same = json!([{"slot": 1, "command": w1}, {"slot": 2, "command": w2}, {"slot": 3, "command": null}]);
    let finals = [dump(1, json!({}), same.clone()), dump(2, json!({}), same)];
    assert_eq!(verdict_with(&h, &finals, "log-agreement"), valid());

    let other = json!([{"slot": 1, "command": w2}, {"slot": 2, "command": w1}]);
    let finals = [
        dump(
            1,
            json!({}),
            json!([{"slot": 1, "command": w1}, {"slot": 2, "command": w2}]),
        ),
        dump(2, json!({}), other),
    ];
    let (v, kinds) = verdict_with(&h, &finals, "log-agreement");
    assert_eq!(v, Verdict::Invalid);
    assert_eq!(kinds, vec!["log-disagreement", "log-disagreement"]);
    // A node that lags (reports fewer slots) is not a disagreement.
    let finals = [
        dump(
            1,
            json!({}),
            json!([{"slot": 1, "command": w1}, {"slot": 2, "command": w2}]),
        ),
        dump(2, json!({}), json!([{"slot": 1, "command": w1}])),
    ];
    assert_eq!(verdict_with(&h, &finals, "log-agreement"), valid());
}

#[test]
fn duplicated_and_unknown_commands() {
    let mut h = H::new();
    h.write(1, "k", 1);
    let w1 = cmd(1, 0, "write", "k", json!({"value": 1}));
    let twice = json!([{"slot": 1, "command": w1}, {"slot": 2, "command": w1}]);
    let (v, kinds) = verdict_with(&h, &[dump(1, json!({}), twice.clone())], "log-agreement");
    assert_eq!(v, Verdict::Invalid);
    assert!(kinds.iter().all(|k| k == "duplicate-command"), "{kinds:?}");
    // The id repeated in slot 2 names its key and that slot.
    let result = check(
        &h.history(),
        &[dump(1, json!({}), twice)],
        &Options::default(),
    );
    let log = result
        .checks
        .iter()
        .find(|c| c.name == "log-agreement")
        .unwrap();
    let by_id = log
        .anomalies
        .iter()
        .find(|a| a.message.contains("chosen in slot 1 and again in slot 2"))
        .expect("the repeated id is reported");
    assert_eq!((by_id.key.as_deref(), by_id.slot), (Some("k"), Some(2)));
    // The same write under a new id: a duplicate unless the client invoked it twice.
    let w1_again = cmd(1, 1, "write", "k", json!({"value": 1}));
    let retry = json!([{"slot": 1, "command": w1}, {"slot": 2, "command": w1_again}]);
    let (v, kinds) = verdict_with(&h, &[dump(1, json!({}), retry.clone())], "log-agreement");
    assert_eq!(
        (v, kinds),
        (Verdict::Invalid, vec!["duplicate-command".to_string()])
    );
    let mut retried = H::new();
    retried.write(1, "k", 1).write(2, "k", 1);
    assert_eq!(
        verdict_with(&retried, &[dump(1, json!({}), retry)], "log-agreement"),
        valid()
    );
    // A command nobody invoked.
    let ghost = json!([{"slot": 1, "command": cmd(3, 0, "write", "k", json!({"value": 42}))}]);
    let (v, kinds) = verdict_with(&h, &[dump(1, json!({}), ghost)], "log-agreement");
    assert_eq!(
        (v, kinds),
        (Verdict::Invalid, vec!["unknown-command".to_string()])
    );
    // Without dumps the check is skipped, not passed.
    assert_eq!(verdict_of(&h, "log-agreement").0, Verdict::Skipped);
}

/// A slot of several commands is read command by command, and over-chosen commands
/// are reported in the commands' order (key, then value), each at its first slot.
#[test]
fn commands_chosen_too_often_in_a_slot_of_several() {
    let mut h = H::new();
    h.write(1, "a", 1).write(2, "b", 2).read(3, "a", Some(1));
    let (wa, wb) = (
        cmd(1, 0, "write", "a", json!({"value": 1})),
        cmd(2, 0, "write", "b", json!({"value": 2})),
    );
    let read = cmd(3, 0, "read", "a", json!({}));
    let (wa_again, wb_again) = (
        cmd(1, 1, "write", "a", json!({"value": 1})),
        cmd(2, 1, "write", "b", json!({"value": 2})),
    );
    let log = json!([
        {"slot": 1, "command": wb}, {"slot": 1, "command": wa},
        {"slot": 2, "command": null},
        {"slot": 3, "command": read}, {"slot": 3, "command": wb_again},
        {"slot": 4, "command": wa_again},
    ]);
    let (_, kinds) = verdict_with(&h, &[dump(1, json!({}), log.clone())], "log-agreement");
    let result = check(
        &h.history(),
        &[dump(1, json!({}), log)],
        &Options::default(),
    );
    let c = &result.checks[3];
    assert_eq!((c.name.as_str(), kinds.len()), ("log-agreement", 2));
    let said: Vec<(&str, Option<u64>, &str)> = c
        .anomalies
        .iter()
        .map(|a| (a.kind.as_str(), a.slot, a.key.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(
        said,
        [
            ("duplicate-command", Some(1), "a"),
            ("duplicate-command", Some(1), "b")
        ],
        "{:?}",
        c.anomalies
    );
    assert!(
        c.summary.starts_with("4 slots, 5 commands"),
        "{}",
        c.summary
    );
}

#[test]
fn a_chosen_command_whose_client_was_told_it_failed() {
    // p1's write of 5 failed definitely (unavailable), yet slot 1 holds it.
    let mut h = H::new();
    h.invoke(1, "write", "k", json!(5));
    h.fail_with(1, "write", "k", json!(5), "unavailable");
    let w5 = cmd(1, 0, "write", "k", json!({"value": 5}));
    let log = json!([{"slot": 1, "command": w5}]);
    let result = check(
        &h.history(),
        &[dump(1, json!({}), log.clone())],
        &Options::default(),
    );
    let c = result
        .checks
        .iter()
        .find(|c| c.name == "log-agreement")
        .unwrap();
    assert_eq!(c.verdict, Verdict::Invalid);
    let a = &c.anomalies[0];
    assert_eq!(a.kind, checker::AnomalyKind::FailedCommandChosen);
    assert_eq!((a.slot, a.key.as_deref()), (Some(1), Some("k")));
    assert_eq!(a.ops.len(), 1, "the failed op is the witness");
    assert_eq!(a.ops[0].index, 0);
    // The same write acknowledged: valid.
    let mut ok = H::new();
    ok.write(1, "k", 5);
    assert_eq!(
        verdict_with(&ok, &[dump(1, json!({}), log)], "log-agreement"),
        valid()
    );
    // A cas refused when applied is chosen and fails legitimately.
    let mut refused = H::new();
    refused.invoke(1, "cas", "k", json!([1, 2]));
    refused.fail_with(1, "cas", "k", json!([1, 2]), "precondition-failed");
    let c12 = cmd(1, 0, "cas", "k", json!({"from": 1, "to": 2}));
    let log = json!([{"slot": 1, "command": c12}]);
    assert_eq!(
        verdict_with(&refused, &[dump(1, json!({}), log)], "log-agreement"),
        valid()
    );
}

#[test]
fn an_empty_history_and_one_with_nothing_ok_are_both_unknown() {
    let empty = H::new();
    let r = check(&empty.history(), &[], &Options::default());
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.render_text());
    let mut failed = H::new();
    failed
        .invoke(1, "read", "k", Value::Null)
        .fail(1, "read", "k", Value::Null);
    let r = check(&failed.history(), &[], &Options::default());
    assert_eq!(r.verdict, Verdict::Unknown, "{}", r.render_text());
}

#[test]
fn a_blocked_read_is_named_by_what_it_returned() {
    let mut bad = H::new();
    bad.write(1, "k", 1).write(1, "k", 2).read(2, "k", Some(1));
    let r = check(&bad.history(), &[], &Options::default());
    let a = r.checks.iter().flat_map(|c| &c.anomalies).next().unwrap();
    assert!(
        a.message.contains("the read that returned 1 by process 2"),
        "{}",
        a.message
    );
    assert!(!a.message.contains("read null"), "{}", a.message);
}

#[test]
fn an_unreadable_dump_makes_log_agreement_unknown() {
    let mut h = H::new();
    h.write(1, "k", 1).read(2, "k", Some(1));
    let dumps = vec![Err::<FinalDump, _>("final/n2.json: not JSON".to_string())];
    let r = checker::check_streaming(&h.history(), dumps, &Options::default());
    let c = r.checks.iter().find(|c| c.name == "log-agreement").unwrap();
    assert_eq!(c.verdict, Verdict::Unknown);
    assert!(c.unknown[0].contains("final/n2.json"), "{:?}", c.unknown);
    assert_eq!(r.verdict, Verdict::Unknown);
}

#[test]
fn nemesis_events_are_kept_and_do_not_disturb() {
    let mut h = H::new();
    h.write(1, "k", 1)
        .nemesis("partition")
        .read(2, "k", Some(1));
    let history = h.history();
    assert_eq!(history.nemesis.len(), 1);
    assert_eq!(lin(&h), valid());
}

#[test]
fn stats_count_per_f_and_outcome() {
    let mut h = H::new();
    h.write(1, "k", 1)
        .read(1, "k", Some(1))
        .invoke(2, "write", "k", json!(2))
        .info(2, "write", "k", json!(2));
    let result = check(&h.history(), &[], &Options::default());
    assert_eq!(result.stats.counts["write"]["ok"], 1);
    assert_eq!(result.stats.counts["write"]["info"], 1);
    assert_eq!(result.stats.latency["read"].count, 1);
    assert_eq!(result.stats.latency["write"].p50_us, 1);
}

// ---- synthetic histories (used by the benchmarks) are valid by construction ----

#[test]
fn synthetic_histories_pass_every_check() {
    use checker::synth::{SynthConfig, history_text};
    for seed in 0..20 {
        let mut cfg = SynthConfig::kv(seed, 10, 3, 300, 0.15);
        cfg.register_keys = 4;
        cfg.propose_share = 0.3;
        let h = checker::history::parse_history_str(&history_text(&cfg)).unwrap();
        let result = check(&h, &[], &Options::default());
        assert_eq!(
            result.verdict,
            Verdict::Valid,
            "seed {seed}: {}",
            result.render_text()
        );
        assert!(result.stats.counts["read"]["ok"] > 10);
    }
}
