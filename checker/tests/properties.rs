//! Property tests of the linearizability search against the brute-force reference.
//!
//! 1. Random small histories (up to 8 ops, 3 client slots, crashes included; results
//!    drawn at random, so most are invalid) get the same verdict from both.
//! 2. Histories generated from a sequential execution, with each op's interval
//!    stretched around its linearization point so that ops overlap at random, are
//!    always linearizable, whatever ops crash (info) or fail.

use checker::brute;
use checker::history::{History, Op, parse_history_str};
use checker::linear::{Budget, KeyResult, check_key};
use proptest::prelude::*;
use serde_json::{Value, json};

fn ops_of(h: &History) -> Vec<&Op> {
    h.ops.iter().collect()
}

fn search_says(h: &History) -> bool {
    match check_key(&ops_of(h), &Budget::default()) {
        KeyResult::Linearizable => true,
        KeyResult::NotLinearizable { .. } => false,
        KeyResult::Unknown(why) => panic!("budget spent on a tiny history: {why}"),
    }
}

#[derive(Clone, Debug)]
enum Kind {
    Read(Option<i64>),
    Write(i64),
    Cas(i64, i64),
}

#[derive(Clone, Debug)]
enum End {
    Ok,
    Fail,
    Info,
    Open,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        prop::option::of(1..4i64).prop_map(Kind::Read),
        (1..4i64).prop_map(Kind::Write),
        (1..4i64, 1..4i64).prop_map(|(a, b)| Kind::Cas(a, b)),
    ]
}

/// Reads and cas expectations of the values 10..18, which op i writes as 10 + i (the
/// written value drawn here is replaced).
fn unique_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        prop::option::of(10..18i64).prop_map(Kind::Read),
        Just(Kind::Write(0)),
        (10..18i64).prop_map(|from| Kind::Cas(from, 0)),
    ]
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![6 => Just(End::Ok), 1 => Just(End::Fail), 2 => Just(End::Info)]
}

fn line(index: u64, process: u64, ty: &str, kind: &Kind, result: bool) -> String {
    let (f, value) = match kind {
        Kind::Read(observed) => ("read", if result { json!(observed) } else { Value::Null }),
        Kind::Write(v) => ("write", json!(v)),
        Kind::Cas(a, b) => ("cas", json!([a, b])),
    };
    json!({"index": index, "time_ns": index * 10, "process": process, "type": ty,
           "f": f, "key": "k", "value": value})
    .to_string()
}

/// Interleaves ops of 3 client slots as `schedule` says: each entry picks a slot,
/// which invokes its next op or completes the one in flight. A slot whose op ended
/// in info continues as a fresh process.
fn random_history(ops: Vec<(Kind, End)>, schedule: Vec<u8>) -> String {
    let mut lines = Vec::new();
    let mut next_op = 0;
    let mut in_flight: [Option<usize>; 3] = [None; 3];
    let mut process = [0u64, 1, 2];
    let mut index = 0;
    for s in schedule {
        let slot = (s % 3) as usize;
        match in_flight[slot] {
            None if next_op < ops.len() => {
                lines.push(line(index, process[slot], "invoke", &ops[next_op].0, false));
                in_flight[slot] = Some(next_op);
                next_op += 1;
            }
            None => continue,
            Some(i) => {
                let (kind, end) = &ops[i];
                let ty = match end {
                    End::Ok => "ok",
                    End::Fail => "fail",
                    End::Info => "info",
                    End::Open => continue,
                };
                lines.push(line(index, process[slot], ty, kind, matches!(end, End::Ok)));
                in_flight[slot] = None;
                if matches!(end, End::Info) {
                    process[slot] += 3;
                }
            }
        }
        index += 1;
    }
    lines.join("\n")
}

/// A sequential execution: op i takes effect at time 100 * (i + 1); its interval is
/// stretched by up to `spread` on each side, and clients are assigned greedily so that
/// each runs one op at a time.
fn sequential_history(ops: Vec<(Kind, End, u64, u64, bool)>) -> String {
    let mut state: Option<i64> = None;
    // (invoke, complete, process, kind, end, observed)
    let mut planned = Vec::new();
    for (i, (kind, end, before, after, takes_effect)) in ops.into_iter().enumerate() {
        let at = 100 * (i as u64 + 1);
        // Fail: did not happen. Info: took effect or not, as drawn. Ok: took effect.
        let happens = match end {
            End::Ok => true,
            End::Fail => false,
            End::Info | End::Open => takes_effect,
        };
        let (kind, end) = match kind {
            Kind::Read(_) => (Kind::Read(state), end),
            Kind::Write(v) => {
                if happens {
                    state = Some(v);
                }
                (Kind::Write(v), end)
            }
            Kind::Cas(_, to) => {
                // An ok cas must find its precondition; make `from` the current value.
                match (state, happens) {
                    (Some(cur), true) => {
                        state = Some(to);
                        (Kind::Cas(cur, to), end)
                    }
                    (Some(cur), false) => (Kind::Cas(cur + 100, to), End::Fail),
                    (None, _) => (Kind::Cas(0, to), End::Fail),
                }
            }
        };
        planned.push((at - before, at + after, kind, end));
    }
    // Assign processes: a process is free once its previous op completed (ok/fail);
    // info and open ops retire their process.
    let mut free_at: Vec<Option<u64>> = Vec::new();
    let mut events = Vec::new();
    for (invoke, complete, kind, end) in planned {
        let p = match free_at.iter().position(|f| f.is_some_and(|t| t < invoke)) {
            Some(p) => p,
            None => {
                free_at.push(None);
                free_at.len() - 1
            }
        };
        free_at[p] = match end {
            End::Ok | End::Fail => Some(complete),
            End::Info | End::Open => None,
        };
        events.push((invoke, 0, p, "invoke", kind.clone()));
        let ty = match end {
            End::Ok => "ok",
            End::Fail => "fail",
            End::Info => "info",
            End::Open => continue,
        };
        events.push((complete, 1, p, ty, kind));
    }
    events.sort_by_key(|e| (e.0, e.1));
    events
        .iter()
        .enumerate()
        .map(|(i, (t, _, p, ty, kind))| {
            let l = line(i as u64, *p as u64, ty, kind, *ty == "ok");
            // Keep real times so overlaps are what the plan says.
            l.replace(
                &format!("\"time_ns\":{}", i * 10),
                &format!("\"time_ns\":{t}"),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2_000)
    ))]

    #[test]
    fn search_agrees_with_brute_force(
        ops in prop::collection::vec((kind(), prop_oneof![9 => end(), 1 => Just(End::Open)]), 1..9),
        schedule in prop::collection::vec(0..3u8, 1..24),
    ) {
        let text = random_history(ops, schedule);
        let h = parse_history_str(&text).expect("generated histories are well-formed");
        let expected = brute::linearizable(&ops_of(&h));
        prop_assert_eq!(search_says(&h), expected, "history:\n{}", text);
    }

    /// The whole check, which first sets aside `info` writes nobody observed, says
    /// what the brute force says of every op.
    #[test]
    fn setting_aside_unobserved_info_ops_changes_no_verdict(
        ops in prop::collection::vec((kind(), prop_oneof![6 => end(), 3 => Just(End::Info), 1 => Just(End::Open)]), 1..9),
        schedule in prop::collection::vec(0..3u8, 1..24),
    ) {
        let text = random_history(ops, schedule);
        let h = parse_history_str(&text).expect("generated histories are well-formed");
        let expected = brute::linearizable(&ops_of(&h));
        let report = checker::linearizability(&h, &checker::Options::default());
        let valid = match report.verdict {
            checker::Verdict::Valid => true,
            checker::Verdict::Invalid => false,
            // Nothing ok to check: the brute force finds some order.
            checker::Verdict::Unknown if h.ops.iter().all(|o| o.outcome != checker::history::Outcome::Ok) => true,
            v => panic!("{v:?} on a tiny history"),
        };
        prop_assert_eq!(valid, expected, "history:\n{}", text);
    }

    /// With every write and cas writing a value of its own, as the harness's workload
    /// does, the search bounds an observed `info` write by its first observer: the
    /// verdict stays the brute force's.
    #[test]
    fn bounding_observed_info_writes_changes_no_verdict(
        ops in prop::collection::vec((unique_kind(), prop_oneof![5 => end(), 4 => Just(End::Info), 1 => Just(End::Open)]), 1..9),
        schedule in prop::collection::vec(0..3u8, 1..24),
    ) {
        let ops = ops
            .into_iter()
            .enumerate()
            .map(|(i, (kind, end))| {
                let own = 10 + i as i64;
                let kind = match kind {
                    Kind::Write(_) => Kind::Write(own),
                    Kind::Cas(from, _) => Kind::Cas(from, own),
                    read => read,
                };
                (kind, end)
            })
            .collect();
        let text = random_history(ops, schedule);
        let h = parse_history_str(&text).expect("generated histories are well-formed");
        prop_assert_eq!(search_says(&h), brute::linearizable(&ops_of(&h)), "history:\n{}", text);
    }

    #[test]
    fn sequential_executions_with_overlap_are_linearizable(
        ops in prop::collection::vec(
            (kind(), prop_oneof![9 => end(), 1 => Just(End::Open)], 0..99u64, 0..250u64, any::<bool>()),
            1..40,
        ),
    ) {
        let text = sequential_history(ops);
        let h = parse_history_str(&text).expect("generated histories are well-formed");
        prop_assert!(search_says(&h), "history:\n{}", text);
        if h.ops.len() <= 9 {
            prop_assert!(brute::linearizable(&ops_of(&h)), "brute force disagrees:\n{}", text);
        }
    }
}

/// "Sometimes": the random generator above produces both verdicts in good numbers, so
/// agreement with the brute-force checker is tested on both sides.
#[test]
fn random_histories_cover_both_verdicts() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let strategy = (
        prop::collection::vec((kind(), end()), 1..9),
        prop::collection::vec(0..3u8, 1..24),
    );
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let (mut valid, mut invalid) = (0, 0);
    for _ in 0..1_000 {
        let (ops, schedule) = strategy.new_tree(&mut runner).unwrap().current();
        let h = parse_history_str(&random_history(ops, schedule)).unwrap();
        if h.ops.is_empty() {
            continue;
        }
        if search_says(&h) {
            valid += 1;
        } else {
            invalid += 1;
        }
    }
    eprintln!("random histories: {valid} linearizable, {invalid} not");
    assert!(
        valid > 150 && invalid > 150,
        "valid {valid}, invalid {invalid}"
    );
}

/// A second model through the same generic search: a counter with `add` and `read`.
/// Each op is (kind, start, length, has a return); times are small so ops overlap.
fn counter_ops() -> impl Strategy<Value = Vec<checker::linear::Timed<checker::model::CounterOp>>> {
    use checker::model::CounterOp;
    let op = (
        prop_oneof![
            (1..3i64).prop_map(CounterOp::Add),
            (0..5i64).prop_map(CounterOp::Read),
        ],
        0..20u64,
        1..8u64,
        prop::bool::weighted(0.8),
    );
    prop::collection::vec(op, 0..8).prop_map(|ops| {
        ops.into_iter()
            .enumerate()
            .map(|(i, (op, start, len, returned))| {
                // An op without a return is an info op; an info read says nothing,
                // so every read here returned.
                checker::linear::Timed {
                    op,
                    call: (start, 2 * i as u64),
                    ret: (returned || matches!(op, CounterOp::Read(_)))
                        .then_some((start + len, 2 * i as u64 + 1)),
                    lazy: false,
                }
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_generic_search_agrees_with_brute_force_on_a_counter(ops in counter_ops()) {
        use checker::linear::{Found, search};
        let model = checker::model::Counter;
        let fast = match search(&model, &ops, &Budget::default()) {
            Found::Linearizable => true,
            Found::NotLinearizable { .. } => false,
            Found::Unknown(why) => panic!("budget spent on a tiny history: {why}"),
        };
        prop_assert_eq!(fast, brute::linearizable_model(&model, &ops), "{:?}", ops);
    }
}

#[test]
fn the_counter_search_finds_both_verdicts() {
    use checker::linear::{Found, Timed, search};
    use checker::model::{Counter, CounterOp};
    let t = |op, call: u64, ret: Option<u64>| Timed {
        op,
        call: (call, call),
        ret: ret.map(|r| (r, r)),
        lazy: false,
    };
    // add 1 and add 2 overlap; a read of 3 after both is fine, a read of 2 is not.
    let mut ops = vec![
        t(CounterOp::Add(1), 0, Some(10)),
        t(CounterOp::Add(2), 1, Some(11)),
        t(CounterOp::Read(3), 12, Some(13)),
    ];
    assert_eq!(
        search(&Counter, &ops, &Budget::default()),
        Found::Linearizable
    );
    ops[2].op = CounterOp::Read(2);
    match search(&Counter, &ops, &Budget::default()) {
        Found::NotLinearizable { blocked, state, .. } => {
            assert_eq!(blocked, 2, "the read is the op that cannot be placed");
            assert_eq!(state, 3, "both adds precede it");
        }
        other => panic!("expected a violation, got {other:?}"),
    }
    // An info add (no return) may take effect or not: a read of 1 or 3 is fine.
    ops[1].ret = None;
    ops[2].op = CounterOp::Read(1);
    assert_eq!(
        search(&Counter, &ops, &Budget::default()),
        Found::Linearizable
    );
}
