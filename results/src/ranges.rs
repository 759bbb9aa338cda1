//! The documented range of every number a plan holds (docs/plans.md), defined once:
//! the flags that make a plan and a plan.json read back are both held to them, before
//! any work, so that a time limit of 10^12 s or a fault interval of a microsecond is a
//! one-line usage error and not gigabytes of schedule. Each range names its flag and
//! its plan.json field.

use crate::Plan;

/// One number's range: `lo` (excluded when `lo_open`) to `hi`, both included otherwise.
#[derive(Clone, Copy, Debug)]
pub struct Range {
    pub flag: &'static str,
    pub field: &'static str,
    pub lo: f64,
    pub lo_open: bool,
    pub hi: f64,
    pub unit: &'static str,
}

impl Range {
    const fn closed(
        flag: &'static str,
        field: &'static str,
        lo: f64,
        hi: f64,
        unit: &'static str,
    ) -> Range {
        Range {
            flag,
            field,
            lo,
            lo_open: false,
            hi,
            unit,
        }
    }

    const fn above(
        flag: &'static str,
        field: &'static str,
        lo: f64,
        hi: f64,
        unit: &'static str,
    ) -> Range {
        Range {
            lo_open: true,
            ..Range::closed(flag, field, lo, hi, unit)
        }
    }

    pub fn contains(&self, v: f64) -> bool {
        let low = if self.lo_open {
            v > self.lo
        } else {
            v >= self.lo
        };
        v.is_finite() && low && v <= self.hi
    }

    /// The range in words: `(0, 86400] s`.
    pub fn describe(&self) -> String {
        format!(
            "{}{}, {}]{}",
            if self.lo_open { "(" } else { "[" },
            self.lo,
            self.hi,
            if self.unit.is_empty() {
                String::new()
            } else {
                format!(" {}", self.unit)
            }
        )
    }

    /// `Err` naming the flag and the field unless `v` is inside.
    pub fn check(&self, v: f64) -> Result<(), String> {
        if self.contains(v) {
            return Ok(());
        }
        let field = if self.field.is_empty() {
            String::new()
        } else {
            format!(" (plan.json `{}`)", self.field)
        };
        Err(format!(
            "{}{field} must be in {} (got {v})",
            self.flag,
            self.describe()
        ))
    }
}

/// A day: the longest run, real or virtual.
pub const TIME_LIMIT: Range = Range::above("--time-limit", "time_limit_s", 0.0, 86_400.0, "s");
pub const GRACE: Range = Range::above("--grace", "grace_s", 0.0, 3_600.0, "s");
pub const NODES: Range = Range::closed("--nodes", "nodes", 1.0, 15.0, "");
pub const CONCURRENCY: Range = Range::closed("--concurrency", "concurrency", 1.0, 1_024.0, "");
/// 0: as fast as possible.
pub const RATE: Range = Range::closed("--rate", "rate", 0.0, 1_000_000.0, "ops/s");
pub const KEYS: Range = Range::closed("--keys", "keys", 1.0, 100_000.0, "");
pub const OP_TIMEOUT: Range =
    Range::closed("--op-timeout-ms", "op_timeout_ms", 1.0, 600_000.0, "ms");
pub const NEMESIS_INTERVAL: Range = Range::closed(
    "--nemesis-interval",
    "nemesis_interval_s",
    0.01,
    86_400.0,
    "s",
);
pub const TXN_LENGTH: Range =
    Range::closed("--txn-length", "txn_shape.max_len", 1.0, 64.0, "micro-ops");
pub const MAX_WRITES_PER_KEY: Range = Range::closed(
    "--max-writes-per-key",
    "txn_shape.max_writes_per_key",
    1.0,
    1_000_000.0,
    "",
);
pub const OPS_PER_CLIENT: Range =
    Range::closed("--ops-per-client", "ops_per_client", 1.0, 1e12, "");
/// The most fault slots a run may have (time limit over fault interval): a schedule
/// is made whole before the run starts.
pub const MAX_FAULT_SLOTS: f64 = 100_000.0;
/// Seeds run at once (`--jobs`).
pub const JOBS: Range = Range::closed("--jobs", "", 1.0, 256.0, "");
/// Re-runs of a stored plan (`chaos replay --times`).
pub const TIMES: Range = Range::closed("--times", "", 1.0, 10_000.0, "");
/// Seeds in one `--seeds A..B` (B - A): a hundred million.
pub const SEEDS: Range = Range::closed("--seeds", "", 1.0, 1e8, "seeds");
/// Runs of one `chaos explore --runs`.
pub const EXPLORE_RUNS: Range = Range::closed("--runs", "", 1.0, 1e8, "runs");
/// Wall-clock seconds of one `chaos explore --time`: a week.
pub const EXPLORE_TIME: Range = Range::above("--time", "", 0.0, 604_800.0, "s");
/// Seeds per bug of `chaos matrix --seeds`.
pub const MATRIX_SEEDS: Range = Range::closed("--seeds", "", 1.0, 100_000.0, "");
/// Busy threads beside `chaos matrix` (`--hog`).
pub const HOG: Range = Range::closed("--hog", "", 0.0, 256.0, "threads");
/// A budget of wall-clock time for a sweep or a shrink (`--max-time`): a week.
pub const MAX_TIME: Range = Range::closed("--max-time", "", 0.0, 604_800.0, "s");
/// Re-runs of a failing seed or a shrunk plan (`--confirm`).
pub const CONFIRM: Range = Range::closed("--confirm", "", 0.0, 1_000.0, "");
/// Tries per shrink candidate (`--trials`).
pub const TRIALS: Range = Range::closed("--trials", "", 1.0, 1_000.0, "");
/// The linearizability search's time for `chaos check --time-limit`: a day.
pub const CHECK_TIME: Range = Range::above("--time-limit", "", 0.0, 86_400.0, "s");

/// Every number of `plan` inside its range, and at most [`MAX_FAULT_SLOTS`] slots.
pub fn check_plan(plan: &Plan) -> Result<(), String> {
    TIME_LIMIT.check(plan.time_limit_s)?;
    GRACE.check(plan.grace_s)?;
    NODES.check(plan.nodes as f64)?;
    CONCURRENCY.check(plan.concurrency as f64)?;
    RATE.check(plan.rate)?;
    KEYS.check(plan.keys as f64)?;
    OP_TIMEOUT.check(plan.op_timeout_ms as f64)?;
    NEMESIS_INTERVAL.check(plan.nemesis_interval_s)?;
    slots(plan.time_limit_s, plan.nemesis_interval_s)?;
    if let Some(n) = plan.ops_per_client {
        OPS_PER_CLIENT.check(n as f64)?;
    }
    if let Some(shape) = plan.txn_shape {
        txn_length(shape.min_len, shape.max_len)?;
        MAX_WRITES_PER_KEY.check(f64::from(shape.max_writes_per_key))?;
    }
    Ok(())
}

/// `Err` unless `1 <= min <= max <= 64`.
pub fn txn_length(min: u32, max: u32) -> Result<(), String> {
    TXN_LENGTH.check(f64::from(min))?;
    TXN_LENGTH.check(f64::from(max))?;
    if min > max {
        return Err(format!(
            "--txn-length (plan.json `txn_shape`): {min}..{max} is empty: the first bound is above the second"
        ));
    }
    Ok(())
}

/// `Err` when a run of `time_limit_s` in slots of `interval_s` has too many slots.
pub fn slots(time_limit_s: f64, interval_s: f64) -> Result<(), String> {
    let slots = time_limit_s / interval_s;
    if slots > MAX_FAULT_SLOTS {
        return Err(format!(
            "--nemesis-interval (plan.json `nemesis_interval_s`): a {time_limit_s} s run in {interval_s} s slots has {slots:.0} fault slots; at most {MAX_FAULT_SLOTS}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_says_its_flag_its_field_and_its_bounds() {
        assert!(TIME_LIMIT.contains(86_400.0) && !TIME_LIMIT.contains(0.0));
        assert!(!TIME_LIMIT.contains(f64::INFINITY) && !TIME_LIMIT.contains(f64::NAN));
        assert!(RATE.contains(0.0));
        let why = TIME_LIMIT.check(1e12).unwrap_err();
        assert_eq!(
            why,
            "--time-limit (plan.json `time_limit_s`) must be in (0, 86400] s (got 1000000000000)"
        );
        assert!(
            slots(86_400.0, 0.01)
                .unwrap_err()
                .contains("8640000 fault slots")
        );
        assert!(slots(30.0, 0.01).is_ok());
    }

    #[test]
    fn a_plan_out_of_range_is_refused_naming_its_field() {
        let mut plan = crate::plan::tests::sample();
        assert!(check_plan(&plan).is_ok());
        plan.time_limit_s = 1e7;
        assert!(check_plan(&plan).unwrap_err().contains("`time_limit_s`"));
        let mut plan = crate::plan::tests::sample();
        plan.concurrency = 100_000;
        assert!(check_plan(&plan).unwrap_err().contains("`concurrency`"));
    }
}
