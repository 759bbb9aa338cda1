//! Hand-written histories, one per anomaly, each beside a valid twin that differs in
//! one read; and properties over histories generated from serial executions.

use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

const X: u32 = 0;
const Y: u32 = 1;

/// A history built transaction by transaction; every transaction overlaps every
/// other in time unless given times (so real time orders nothing by default).
struct B(TxnHistory);

impl B {
    fn new() -> B {
        let mut h = TxnHistory::new();
        assert_eq!(h.key("x"), X);
        assert_eq!(h.key("y"), Y);
        B(h)
    }

    fn ok(&mut self, mops: &[Mop]) -> TxnId {
        let p = self.0.len() as u32;
        self.0.push(p, 0, Some(1_000), Status::Ok, mops)
    }

    fn failed(&mut self, mops: &[Mop]) -> TxnId {
        let p = self.0.len() as u32;
        self.0.push(p, 0, Some(1_000), Status::Fail, mops)
    }

    fn at(&mut self, process: u32, invoke: u64, complete: u64, mops: &[Mop]) -> TxnId {
        self.0
            .push(process, invoke, Some(complete), Status::Ok, mops)
    }

    fn check(&self, model: Model) -> TxnReport {
        check(
            &self.0,
            &TxnOptions {
                model,
                ..TxnOptions::default()
            },
        )
    }
}

fn a(k: u32, v: u64) -> Mop {
    Mop::Append(k, v)
}

fn r(k: u32, vs: &[u64]) -> Mop {
    Mop::Read(k, Some(vs.to_vec()))
}

fn w(k: u32, v: u64) -> Mop {
    Mop::Write(k, v)
}

fn rr(k: u32, v: Option<u64>) -> Mop {
    Mop::ReadRegister(k, Some(v))
}

fn kinds(report: &TxnReport) -> Vec<TxnAnomalyKind> {
    let mut k: Vec<_> = report.anomalies.iter().map(|a| a.kind).collect();
    k.sort();
    k.dedup();
    k
}

/// `bad` is invalid under `model` with exactly `expected` found, and `good` is
/// valid under every model.
fn pair(bad: &B, good: &B, model: Model, expected: &[TxnAnomalyKind]) -> TxnReport {
    let report = bad.check(model);
    assert_eq!(report.verdict, Verdict::Invalid, "{report:#?}");
    assert_eq!(kinds(&report), expected, "{report:#?}");
    for m in Model::ALL {
        let ok = good.check(m);
        assert_eq!(ok.verdict, Verdict::Valid, "{m}: {ok:#?}");
        assert!(ok.anomalies.is_empty(), "{m}: {ok:#?}");
    }
    report
}

fn cycle_of(report: &TxnReport, kind: TxnAnomalyKind) -> Vec<(TxnId, TxnId, String)> {
    report
        .anomalies
        .iter()
        .find(|a| a.kind == kind)
        .expect("the anomaly")
        .cycle
        .iter()
        .map(|s| (s.from, s.to, s.kind.clone()))
        .collect()
}

#[test]
fn g0_a_cycle_of_write_write_dependencies() {
    let history = |y_order: &[u64]| {
        let mut b = B::new();
        b.ok(&[a(X, 1), a(Y, 1)]);
        b.ok(&[a(X, 2), a(Y, 2)]);
        b.ok(&[r(X, &[1, 2]), r(Y, y_order)]);
        b
    };
    let report = pair(
        &history(&[2, 1]),
        &history(&[1, 2]),
        Model::ReadUncommitted,
        &[TxnAnomalyKind::G0],
    );
    let mut cycle = cycle_of(&report, TxnAnomalyKind::G0);
    cycle.sort();
    assert_eq!(
        cycle,
        vec![(0, 1, "ww".to_string()), (1, 0, "ww".to_string())]
    );
    let words = &report.anomalies[0].message;
    assert!(
        words.contains("T0 wrote 1 to x before T1 wrote 2 to it"),
        "{words}"
    );
}

#[test]
fn g1a_a_read_of_an_aborted_append() {
    let history = |seen: &[u64]| {
        let mut b = B::new();
        b.failed(&[a(X, 1)]);
        b.ok(&[r(X, seen)]);
        b
    };
    let report = pair(
        &history(&[1]),
        &history(&[]),
        Model::ReadCommitted,
        &[TxnAnomalyKind::G1a],
    );
    assert_eq!(report.anomalies[0].txns, vec![1, 0]);
    // Read uncommitted allows it.
    assert_eq!(
        history(&[1]).check(Model::ReadUncommitted).verdict,
        Verdict::Valid
    );
}

#[test]
fn g1b_a_read_of_an_intermediate_state() {
    let history = |seen: &[u64]| {
        let mut b = B::new();
        b.ok(&[a(X, 1), a(X, 2)]);
        b.ok(&[r(X, seen)]);
        b
    };
    // T0's append of 2, seen by no read, still follows 1: T1, which saw the
    // whole known list, precedes it, and also read from T0, a G-single as well.
    let report = pair(
        &history(&[1]),
        &history(&[1, 2]),
        Model::ReadCommitted,
        &[TxnAnomalyKind::G1b, TxnAnomalyKind::GSingle],
    );
    assert!(!report.forbidden.contains(&TxnAnomalyKind::GSingle));
}

#[test]
fn g1c_circular_information_flow() {
    let history = |t0_saw: &[u64]| {
        let mut b = B::new();
        b.ok(&[a(X, 1), r(Y, t0_saw)]);
        b.ok(&[a(Y, 1), r(X, &[1])]);
        b
    };
    let report = pair(
        &history(&[1]),
        &history(&[]),
        Model::ReadCommitted,
        &[TxnAnomalyKind::G1c],
    );
    let mut cycle = cycle_of(&report, TxnAnomalyKind::G1c);
    cycle.sort();
    assert_eq!(
        cycle,
        vec![(0, 1, "wr".to_string()), (1, 0, "wr".to_string())]
    );
}

#[test]
fn g_single_read_skew() {
    let history = |x_seen: &[u64]| {
        let mut b = B::new();
        b.ok(&[a(X, 1), a(Y, 1)]);
        b.ok(&[r(X, x_seen), r(Y, &[1])]);
        b.ok(&[r(X, &[1])]);
        b
    };
    let report = pair(
        &history(&[]),
        &history(&[1]),
        Model::SnapshotIsolation,
        &[TxnAnomalyKind::GSingle],
    );
    let cycle = cycle_of(&report, TxnAnomalyKind::GSingle);
    assert_eq!(cycle.iter().filter(|s| s.2 == "rw").count(), 1);
    let words = &report.anomalies[0].message;
    assert!(
        words.contains("T1 read x nil/[] without 1, which T0 appended after that state"),
        "{words}"
    );
    // Read committed allows read skew.
    assert_eq!(
        history(&[]).check(Model::ReadCommitted).verdict,
        Verdict::Valid
    );
}

#[test]
fn g2_item_write_skew() {
    let history = |t0_saw: &[u64]| {
        let mut b = B::new();
        b.ok(&[r(X, t0_saw), a(Y, 1)]);
        b.ok(&[r(Y, &[]), a(X, 1)]);
        b.ok(&[r(X, &[1]), r(Y, &[1])]);
        b
    };
    let report = pair(
        &history(&[]),
        &history(&[1]),
        Model::Serializable,
        &[TxnAnomalyKind::G2Item],
    );
    let cycle = cycle_of(&report, TxnAnomalyKind::G2Item);
    assert_eq!(cycle.iter().filter(|s| s.2 == "rw").count(), 2);
    // Snapshot isolation allows write skew.
    assert_eq!(
        history(&[]).check(Model::SnapshotIsolation).verdict,
        Verdict::Valid
    );
}

#[test]
fn internal_a_transaction_that_misses_its_own_append() {
    let history = |seen: &[u64]| {
        let mut b = B::new();
        b.ok(&[a(X, 1), r(X, seen)]);
        b
    };
    pair(
        &history(&[]),
        &history(&[1]),
        Model::ReadUncommitted,
        &[TxnAnomalyKind::Internal],
    );
}

#[test]
fn duplicate_elements_incompatible_orders_and_garbage() {
    let mut good = B::new();
    good.ok(&[a(X, 1)]);
    good.ok(&[a(X, 2)]);
    good.ok(&[r(X, &[1, 2])]);
    good.ok(&[r(X, &[1])]);

    let mut dup = B::new();
    dup.ok(&[a(X, 1)]);
    dup.ok(&[r(X, &[1, 1])]);
    pair(
        &dup,
        &good,
        Model::ReadUncommitted,
        &[TxnAnomalyKind::DuplicateElements],
    );

    let mut orders = B::new();
    orders.ok(&[a(X, 1)]);
    orders.ok(&[a(X, 2)]);
    orders.ok(&[r(X, &[1, 2])]);
    orders.ok(&[r(X, &[2])]);
    let report = pair(
        &orders,
        &good,
        Model::ReadUncommitted,
        &[TxnAnomalyKind::IncompatibleOrder],
    );
    assert!(!report.not_inferred.is_empty(), "x gives no order");

    let mut garbage = B::new();
    garbage.ok(&[a(X, 1)]);
    garbage.ok(&[r(X, &[1, 9])]);
    pair(
        &garbage,
        &good,
        Model::ReadUncommitted,
        &[TxnAnomalyKind::GarbageRead],
    );
}

#[test]
fn a_stale_read_is_g_single_realtime_only_under_strict_serializability() {
    let history = |seen: &[u64]| {
        let mut b = B::new();
        b.at(0, 0, 1, &[a(X, 1)]);
        b.at(1, 2, 3, &[r(X, seen)]);
        b.at(2, 4, 5, &[r(X, &[1])]);
        b
    };
    let report = pair(
        &history(&[]),
        &history(&[1]),
        Model::StrictSerializable,
        &[TxnAnomalyKind::GSingleRealtime],
    );
    let cycle = cycle_of(&report, TxnAnomalyKind::GSingleRealtime);
    assert!(cycle.contains(&(0, 1, "realtime".to_string())), "{cycle:?}");
    assert!(cycle.contains(&(1, 0, "rw".to_string())), "{cycle:?}");
    for weaker in [Model::Serializable, Model::StrongSessionSerializable] {
        assert_eq!(
            history(&[]).check(weaker).verdict,
            Verdict::Valid,
            "{weaker}"
        );
    }
}

#[test]
fn a_process_that_misses_its_own_earlier_append_breaks_strong_session() {
    let history = |seen: &[u64]| {
        let mut b = B::new();
        // Overlapping times: only the process orders them.
        b.at(7, 0, 10, &[a(X, 1)]);
        b.at(7, 5, 15, &[r(X, seen)]);
        b.at(8, 0, 20, &[r(X, &[1])]);
        b
    };
    pair(
        &history(&[]),
        &history(&[1]),
        Model::StrongSessionSerializable,
        &[TxnAnomalyKind::GSingleProcess],
    );
    assert_eq!(
        history(&[]).check(Model::Serializable).verdict,
        Verdict::Valid
    );
}

#[test]
fn an_acknowledged_append_no_later_read_has_is_lost() {
    let history = |seen: &[u64]| {
        let mut b = B::new();
        b.at(0, 0, 1, &[a(X, 1)]);
        b.at(1, 2, 3, &[r(X, seen)]);
        b
    };
    // Also a cycle: the read precedes the append it missed, which real time put
    // before it.
    pair(
        &history(&[]),
        &history(&[1]),
        Model::StrictSerializable,
        &[TxnAnomalyKind::GSingleRealtime, TxnAnomalyKind::LostAppend],
    );
    assert_eq!(
        history(&[]).check(Model::Serializable).verdict,
        Verdict::Valid
    );
}

#[test]
fn rw_register_read_skew_and_the_non_cycle_anomalies() {
    let history = |x_seen: u64| {
        let mut b = B::new();
        b.ok(&[w(X, 1)]);
        b.ok(&[rr(X, Some(1)), w(X, 2), w(Y, 2)]);
        b.ok(&[rr(X, Some(x_seen)), rr(Y, Some(2))]);
        b
    };
    let report = pair(
        &history(1),
        &history(2),
        Model::SnapshotIsolation,
        &[TxnAnomalyKind::GSingle],
    );
    let cycle = cycle_of(&report, TxnAnomalyKind::GSingle);
    assert!(cycle.contains(&(2, 1, "rw".to_string())), "{cycle:?}");
    assert!(cycle.contains(&(1, 2, "wr".to_string())), "{cycle:?}");

    let mut g1a = B::new();
    g1a.failed(&[w(X, 1)]);
    g1a.ok(&[rr(X, Some(1))]);
    assert_eq!(
        kinds(&g1a.check(Model::ReadCommitted)),
        [TxnAnomalyKind::G1a]
    );

    let mut g1b = B::new();
    g1b.ok(&[w(X, 1), w(X, 2)]);
    g1b.ok(&[rr(X, Some(1))]);
    assert_eq!(
        kinds(&g1b.check(Model::ReadCommitted)),
        [TxnAnomalyKind::G1b]
    );

    let mut internal = B::new();
    internal.ok(&[w(X, 1), rr(X, Some(3))]);
    internal.ok(&[w(X, 3)]);
    assert_eq!(
        kinds(&internal.check(Model::ReadUncommitted)),
        [TxnAnomalyKind::Internal]
    );

    let mut garbage = B::new();
    garbage.ok(&[rr(X, Some(4))]);
    assert_eq!(
        kinds(&garbage.check(Model::ReadUncommitted)),
        [TxnAnomalyKind::GarbageRead]
    );

    // A read of the initial value precedes every write: a later read that saw
    // a write and then the initial value again is a cycle under real time.
    let mut nil = B::new();
    nil.at(0, 0, 1, &[w(X, 1)]);
    nil.at(1, 2, 3, &[rr(X, None)]);
    assert_eq!(
        kinds(&nil.check(Model::StrictSerializable)),
        [TxnAnomalyKind::GSingleRealtime]
    );
    // Blind writes cannot be ordered, and the report says so.
    let mut blind = B::new();
    blind.ok(&[w(X, 1)]);
    blind.ok(&[w(X, 2)]);
    assert!(!blind.check(Model::Serializable).not_inferred.is_empty());
}

#[test]
fn values_that_are_not_unique_make_the_verdict_unknown() {
    let mut b = B::new();
    b.ok(&[a(X, 1)]);
    b.ok(&[a(X, 1)]);
    let report = b.check(Model::Serializable);
    assert_eq!(report.verdict, Verdict::Unknown);
    assert!(report.unknown.unwrap().contains("unique"));
}

#[test]
fn a_spent_budget_is_unknown_never_valid() {
    let mut b = B::new();
    b.ok(&[r(X, &[]), a(Y, 1)]);
    b.ok(&[r(Y, &[]), a(X, 1)]);
    b.ok(&[r(X, &[1]), r(Y, &[1])]);
    let report = check(
        &b.0,
        &TxnOptions {
            model: Model::SnapshotIsolation,
            max_steps: 1,
            ..TxnOptions::default()
        },
    );
    assert_eq!(report.verdict, Verdict::Unknown, "{report:#?}");
    let report = check(
        &b.0,
        &TxnOptions {
            model: Model::Serializable,
            max_bytes: 0,
            ..TxnOptions::default()
        },
    );
    assert_eq!(report.verdict, Verdict::Unknown, "{report:#?}");
}

/// A list-append history from a serial execution: transactions one after another
/// in real time, each of 1-4 micro-ops over `keys` keys, on one of 4 processes.
pub fn serial_history(seed: u64, n: usize, keys: u32) -> TxnHistory {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut h = TxnHistory::new();
    let mut state: Vec<Vec<u64>> = vec![Vec::new(); keys as usize];
    let mut next = 1u64;
    for i in 0..n as u64 {
        let mut mops = Vec::new();
        for _ in 0..rng.random_range(1..=4) {
            let k = rng.random_range(0..keys);
            if rng.random_bool(0.5) {
                state[k as usize].push(next);
                mops.push(Mop::Append(k, next));
                next += 1;
            } else {
                mops.push(Mop::Read(k, Some(state[k as usize].clone())));
            }
        }
        let process = rng.random_range(0..4);
        h.push(process, 2 * i, Some(2 * i + 1), Status::Ok, &mops);
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_serial_execution_is_valid_under_every_model(seed in any::<u64>(), n in 1usize..60) {
        let h = serial_history(seed, n, 3);
        for model in Model::ALL {
            let report = check(&h, &TxnOptions { model, ..TxnOptions::default() });
            prop_assert_eq!(report.verdict, Verdict::Valid, "{}: {:#?}", model, report);
        }
    }

    /// A read moved one version into the past (its last element dropped) orders its
    /// transaction before the append it no longer saw, which real time put before
    /// it: a cycle (or, if no read has the element any more, a lost append).
    #[test]
    fn a_read_moved_into_the_past_is_found(seed in any::<u64>(), n in 2usize..60, pick in any::<u64>()) {
        let h = serial_history(seed, n, 3);
        // Rebuild with one non-empty read that follows its element's append in
        // another transaction shortened by one.
        let candidates: Vec<(TxnId, usize)> = (0..h.len() as TxnId)
            .flat_map(|t| {
                let mops: Vec<_> = h.mops(t).collect();
                (0..mops.len()).filter_map(move |i| match mops[i] {
                    MopView::Read(k, Some(vs)) if !vs.is_empty()
                        && !mops[..i].iter().any(|m| m.key() == k)
                        && !mops.iter().any(|m| matches!(m, MopView::Append(k2, v) if *k2 == k && Some(v) == vs.last())) =>
                        Some((t, i)),
                    _ => None,
                }).collect::<Vec<_>>()
            })
            .collect();
        prop_assume!(!candidates.is_empty());
        let (target, at) = candidates[(pick % candidates.len() as u64) as usize];
        let mut moved = TxnHistory::new();
        for t in 0..h.len() as TxnId {
            let mops: Vec<Mop> = h.mops(t).enumerate().map(|(i, m)| match m {
                MopView::Append(k, v) => Mop::Append(k, v),
                MopView::Read(k, Some(vs)) if t == target && i == at => {
                    Mop::Read(k, Some(vs[..vs.len() - 1].to_vec()))
                }
                MopView::Read(k, vs) => Mop::Read(k, vs.map(|v| v.to_vec())),
                _ => unreachable!("list-append only"),
            }).collect();
            moved.push(h.process(t), 2 * t as u64, Some(2 * t as u64 + 1), Status::Ok, &mops);
        }
        let report = check(&moved, &TxnOptions::default());
        prop_assert_eq!(report.verdict, Verdict::Invalid, "{:#?}", report);
        prop_assert!(report.forbidden.iter().any(|k| matches!(k,
            TxnAnomalyKind::GSingleRealtime | TxnAnomalyKind::G2ItemRealtime
            | TxnAnomalyKind::GSingleProcess | TxnAnomalyKind::G2ItemProcess
            | TxnAnomalyKind::GSingle | TxnAnomalyKind::G2Item
            | TxnAnomalyKind::LostAppend)), "{:#?}", report);
    }
}

#[test]
fn a_transaction_keeps_its_invoke_and_node_in_forty_bytes() {
    assert_eq!(std::mem::size_of::<TxnRec>(), 40);
    let mut h = TxnHistory::new();
    let t = h.push(3, 10, Some(20), Status::Ok, &[Mop::Append(X, 1)]);
    assert_eq!((h.index(t), h.node(t)), (None, None));
    h.set_index(t, 41, Some(2));
    assert_eq!((h.index(t), h.node(t)), (Some(41), Some(2)));
    // A node number too large to keep is kept as none, never as another node.
    h.set_index(t, 41, Some(70_000));
    assert_eq!(h.node(t), None);
}
