//! The checker's result: verdicts, anomalies with their witness ops, and stats. This
//! is the structure `chaos check --json` prints and result.json embeds.

use paxos_trace::NodeId;
use serde::{Deserialize, Serialize};

use crate::history::{Op, Outcome};
use crate::stats::Stats;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Valid,
    /// A check could not decide (search budget spent, nothing exercised).
    Unknown,
    Invalid,
    /// The check had nothing to look at (e.g. log agreement without final dumps);
    /// it does not count towards the overall verdict.
    Skipped,
}

impl Verdict {
    /// Combines verdicts: invalid beats unknown beats valid; skipped counts for nothing.
    pub fn combine(verdicts: impl IntoIterator<Item = Verdict>) -> Verdict {
        let mut out = Verdict::Valid;
        for v in verdicts {
            out = match (out, v) {
                (_, Verdict::Invalid) | (Verdict::Invalid, _) => Verdict::Invalid,
                (_, Verdict::Unknown) | (Verdict::Unknown, _) => Verdict::Unknown,
                _ => Verdict::Valid,
            };
        }
        out
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Unknown => "unknown",
            Verdict::Invalid => "invalid",
            Verdict::Skipped => "skipped",
        }
    }
}

/// A witness op, with everything a reader needs to find it in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRef {
    pub index: u64,
    pub process: u64,
    pub node: Option<NodeId>,
    pub f: String,
    pub key: String,
    /// The invoke's value as the history writes it.
    pub value: String,
    pub outcome: Outcome,
    /// The returned value of an ok read or propose (`null` = absent).
    pub result: Option<String>,
    pub invoke_ns: u64,
    pub complete_ns: Option<u64>,
    /// A transaction's number in the isolation check's words (`T12`); absent for
    /// a single-key op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txn: Option<u32>,
}

/// `count` and `noun`, plural unless the count is one ("1 key", "5 keys"): every
/// output that counts in words (the checks, the terminal, the report) says it so.
pub fn count(count: usize, noun: &str) -> String {
    format!("{count} {noun}{}", if count == 1 { "" } else { "s" })
}

impl OpRef {
    /// The op in a few words for a drawing, with what it returned: "#1503 read k0 →
    /// 7", "#12 cas k1 [3,4] (fail)".
    pub fn label(&self) -> String {
        let mut s = format!("#{} {} {}", self.index, self.f, self.key);
        if self.value != "null" {
            s.push(' ');
            s.push_str(&self.value);
        }
        match &self.result {
            Some(r) => {
                s.push_str(" → ");
                s.push_str(r);
            }
            None => {
                s.push_str(&format!(" ({})", self.outcome.name()));
            }
        }
        s
    }

    pub fn of(op: &Op) -> OpRef {
        OpRef {
            index: op.index,
            process: op.process,
            node: op.node,
            f: op.f().name().to_string(),
            key: op.key.to_string(),
            value: op.call.value_text(),
            outcome: op.outcome,
            result: op
                .result
                .map(|r| r.map_or("null".into(), |v| v.to_string())),
            invoke_ns: op.invoke_ns,
            complete_ns: op.complete_ns,
            txn: None,
        }
    }

    /// Transaction `t` of `txns` as a witness: `f` is `txn`, the key every key it
    /// touches (`x.1,y.2`), the value its micro-ops as invoked (`append x.1 5; r
    /// y.2`) and, once ok, the result what its reads returned (`y.2 [1,2]`).
    pub fn of_txn(txns: &crate::txn::TxnHistory, t: crate::txn::TxnId) -> OpRef {
        use crate::txn::{MopView, Status};
        let (invoke_ns, complete_ns) = txns.times(t);
        let status = txns.status(t);
        let mut keys: Vec<String> = Vec::new();
        let mut asked: Vec<String> = Vec::new();
        let mut read: Vec<String> = Vec::new();
        for m in txns.mops(t) {
            let k = txns.key_name(m.key());
            match m {
                MopView::Append(_, v) => asked.push(format!("append {k} {v}")),
                MopView::Write(_, v) => asked.push(format!("w {k} {v}")),
                MopView::Read(_, vs) => {
                    asked.push(format!("r {k}"));
                    if let Some(vs) = vs {
                        let vs: Vec<String> = vs.iter().map(u64::to_string).collect();
                        read.push(format!("{k} [{}]", vs.join(",")));
                    }
                }
                MopView::ReadRegister(_, v) => {
                    asked.push(format!("r {k}"));
                    match v {
                        Some(Some(v)) => read.push(format!("{k} {v}")),
                        Some(None) => read.push(format!("{k} nil")),
                        None => {}
                    }
                }
            }
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        OpRef {
            index: txns.index(t).unwrap_or(u64::from(t)),
            process: u64::from(txns.process(t)),
            node: txns.node(t),
            f: "txn".into(),
            key: keys.join(","),
            value: asked.join("; "),
            outcome: match status {
                Status::Ok => Outcome::Ok,
                Status::Fail => Outcome::Fail,
                Status::Info => Outcome::Info,
            },
            result: (status == Status::Ok).then(|| read.join("; ")),
            invoke_ns,
            complete_ns,
            txn: Some(t),
        }
    }

    /// `p3 write k1 7 -> ok (index 12, node 2, 1.204-1.310 ms)`.
    pub fn describe(&self) -> String {
        let outcome = match self.outcome {
            Outcome::Ok => "ok",
            Outcome::Fail => "fail",
            Outcome::Info => "info",
        };
        let result = self
            .result
            .as_ref()
            .map(|r| format!(" {r}"))
            .unwrap_or_default();
        let node = self.node.map(|n| format!(", node {n}")).unwrap_or_default();
        let until = self.complete_ns.map_or("never completed".to_string(), |c| {
            format!("{:.3} ms", c as f64 / 1e6)
        });
        // A read asks for nothing: it is named by what it returned.
        let asked = if self.f == "read" {
            String::new()
        } else {
            format!(" {}", self.value)
        };
        format!(
            "p{} {} {}{asked} -> {outcome}{result} (index {}{node}, {:.3} ms to {until})",
            self.process,
            self.f,
            self.key,
            self.index,
            self.invoke_ns as f64 / 1e6
        )
    }
}

/// Why a key is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinearizabilityWitness {
    /// The longest linearization found, in order.
    pub prefix: Vec<OpRef>,
    /// The op that had to come next and could not.
    pub blocked: OpRef,
    /// The register's value after `prefix` (`null` = absent).
    pub value: Option<i64>,
}

/// Every kind of anomaly the checker reports. Its text form (kebab-case) is what
/// result.json, junit.xml and the report carry; the report's explanation of each kind
/// matches on this enum, so a new kind cannot go unexplained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AnomalyKind {
    /// Two values decided for one write-once register.
    Agreement,
    /// A register decided to a value nobody proposed for it.
    Validity,
    /// No order of a key's ops explains what the clients saw.
    NonLinearizable,
    /// Two nodes chose different commands for one log slot.
    LogDisagreement,
    /// A chosen command that no client invoked.
    UnknownCommand,
    /// A command chosen twice.
    DuplicateCommand,
    /// A command chosen although its client was told it definitely failed.
    FailedCommandChosen,
    /// An acceptor promised a ballot below one it had promised.
    PromiseRegressed,
    /// An acceptor accepted a proposal below its promise.
    AcceptedBelowPromise,
    /// A proposer did not propose the value its promises required.
    WrongValueProposed,
    /// A register or slot was learned as two different values.
    ConflictingLearn,
    /// A node wrote a value down as chosen without having learned it.
    ChosenWithoutQuorum,
    /// Raft: two leaders in one term.
    ElectionSafety,
    /// Raft: a leader overwrote or deleted an entry of its own log in its term.
    LeaderAppendOnly,
    /// Raft: two logs hold entries of the same index and term with different contents.
    LogMatching,
    /// Raft: a leader's log lacks an entry committed before its term.
    LeaderCompleteness,
    /// Raft: two nodes applied different entries at one index.
    StateMachineSafety,
    /// A node's core stopped on one of its own assertions.
    CoreAssertion,
    /// A restart's recovery returned other records than its disk held whole.
    RecoveryMismatch,
    /// Transactions showed an anomaly their consistency model forbids (its name,
    /// G0 to G2-item and their variants, leads the message: docs/transactions.md).
    Isolation,
}

impl AnomalyKind {
    pub const ALL: [AnomalyKind; 20] = [
        AnomalyKind::Agreement,
        AnomalyKind::Validity,
        AnomalyKind::NonLinearizable,
        AnomalyKind::LogDisagreement,
        AnomalyKind::UnknownCommand,
        AnomalyKind::DuplicateCommand,
        AnomalyKind::FailedCommandChosen,
        AnomalyKind::PromiseRegressed,
        AnomalyKind::AcceptedBelowPromise,
        AnomalyKind::WrongValueProposed,
        AnomalyKind::ConflictingLearn,
        AnomalyKind::ChosenWithoutQuorum,
        AnomalyKind::ElectionSafety,
        AnomalyKind::LeaderAppendOnly,
        AnomalyKind::LogMatching,
        AnomalyKind::LeaderCompleteness,
        AnomalyKind::StateMachineSafety,
        AnomalyKind::CoreAssertion,
        AnomalyKind::RecoveryMismatch,
        AnomalyKind::Isolation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AnomalyKind::Agreement => "agreement",
            AnomalyKind::Validity => "validity",
            AnomalyKind::NonLinearizable => "non-linearizable",
            AnomalyKind::LogDisagreement => "log-disagreement",
            AnomalyKind::UnknownCommand => "unknown-command",
            AnomalyKind::DuplicateCommand => "duplicate-command",
            AnomalyKind::FailedCommandChosen => "failed-command-chosen",
            AnomalyKind::PromiseRegressed => "promise-regressed",
            AnomalyKind::AcceptedBelowPromise => "accepted-below-promise",
            AnomalyKind::WrongValueProposed => "wrong-value-proposed",
            AnomalyKind::ConflictingLearn => "conflicting-learn",
            AnomalyKind::ChosenWithoutQuorum => "chosen-without-quorum",
            AnomalyKind::ElectionSafety => "election-safety",
            AnomalyKind::LeaderAppendOnly => "leader-append-only",
            AnomalyKind::LogMatching => "log-matching",
            AnomalyKind::LeaderCompleteness => "leader-completeness",
            AnomalyKind::StateMachineSafety => "state-machine-safety",
            AnomalyKind::CoreAssertion => "core-assertion",
            AnomalyKind::RecoveryMismatch => "recovery-mismatch",
            AnomalyKind::Isolation => "isolation",
        }
    }
}

impl std::fmt::Display for AnomalyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: AnomalyKind,
    pub key: Option<String>,
    pub slot: Option<u64>,
    /// What is wrong, in words.
    pub message: String,
    pub ops: Vec<OpRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub witness: Option<LinearizabilityWitness>,
    /// For a broken protocol rule: the messages and records that show it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<MessageRef>,
    /// For an isolation anomaly: its cycle, edge by edge (docs/transactions.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cycle: Vec<crate::txn::CycleStep>,
}

/// A message or record a protocol anomaly points at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageRef {
    pub time_ns: u64,
    /// `send`, `receive` or `record`.
    pub event: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<NodeId>,
    /// The message in a line.
    pub text: String,
}

impl MessageRef {
    pub fn describe(&self) -> String {
        let who = match (self.from, self.to) {
            (Some(f), Some(t)) => format!("n{f} -> n{t}"),
            (Some(f), None) => format!("n{f}"),
            _ => "-".into(),
        };
        format!(
            "{:>10.3} ms {:<7} {who}: {}",
            self.time_ns as f64 / 1e6,
            self.event,
            self.text
        )
    }
}

impl Anomaly {
    /// The anomaly's name for a heading: its kind, or for an isolation anomaly the
    /// class its message is led by (`G-single-realtime: ...`, as `checker::txn`
    /// words every anomaly it finds).
    pub fn name(&self) -> &str {
        match self.kind {
            AnomalyKind::Isolation => self
                .message
                .split_once(':')
                .map_or(self.kind.as_str(), |(class, _)| class),
            kind => kind.as_str(),
        }
    }

    /// The anomaly for a person, one line each: `kind: message`, then its witness ops
    /// (indented), then for a linearizability witness the end of the longest order
    /// found and the op that cannot come next.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("{}: {}", self.kind, self.message)];
        out.extend(self.ops.iter().map(|op| format!("  {}", op.describe())));
        out.extend(self.messages.iter().map(|m| format!("  {}", m.describe())));
        if let Some(w) = &self.witness {
            out.push(format!(
                "  longest linearizable prefix ({} ops), then the value is {}:",
                w.prefix.len(),
                w.value.map_or("absent".into(), |v| v.to_string())
            ));
            let skip = w.prefix.len().saturating_sub(5);
            if skip > 0 {
                out.push(format!("    ... {skip} earlier ops"));
            }
            out.extend(
                w.prefix[skip..]
                    .iter()
                    .map(|op| format!("    {}", op.describe())),
            );
            out.push(format!("  cannot place next: {}", w.blocked.describe()));
        }
        out
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    /// `register-agreement`, `register-validity`, `linearizability`, `log-agreement`.
    pub name: String,
    pub verdict: Verdict,
    /// One line: what was checked and what was found.
    pub summary: String,
    pub anomalies: Vec<Anomaly>,
    /// Why parts of the check are unknown (e.g. keys whose search ran out of budget).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unknown: Vec<String>,
}

impl CheckReport {
    /// A check that decides from its anomalies alone: invalid with any, valid without.
    pub fn decided(name: &str, summary: String, anomalies: Vec<Anomaly>) -> CheckReport {
        CheckReport {
            name: name.into(),
            verdict: if anomalies.is_empty() {
                Verdict::Valid
            } else {
                Verdict::Invalid
            },
            summary,
            anomalies,
            unknown: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub verdict: Verdict,
    pub checks: Vec<CheckReport>,
    pub stats: Stats,
}

impl CheckResult {
    /// Adds `report`, replacing a check of the same name (each check appears once per
    /// run), and combines the verdict again: the one way a check joins a result.
    pub fn put(&mut self, report: CheckReport) {
        self.checks.retain(|c| c.name != report.name);
        self.checks.push(report);
        self.verdict = Verdict::combine(self.checks.iter().map(|c| c.verdict));
    }

    /// A terminal rendering: one line per check, then its anomalies.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        out.push_str(&format!(
            "verdict: {}\n",
            self.verdict.as_str().to_uppercase()
        ));
        for c in &self.checks {
            out.push_str(&format!(
                "  {:<20} {:<8} {}\n",
                c.name,
                c.verdict.as_str(),
                c.summary
            ));
            for a in &c.anomalies {
                for (n, line) in a.lines().iter().enumerate() {
                    let lead = if n == 0 { "    ! " } else { "      " };
                    out.push_str(&format!("{lead}{line}\n"));
                }
            }
            for u in &c.unknown {
                out.push_str(&format!("    ? {u}\n"));
            }
        }
        out.push_str(&self.stats.render_text());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    #[test]
    fn an_op_is_labelled_with_what_it_returned() {
        let op = |f: &str, value: &str, outcome, result: Option<&str>| OpRef {
            index: 1503,
            process: 1,
            node: Some(2),
            f: f.into(),
            key: "k0".into(),
            value: value.into(),
            outcome,
            result: result.map(str::to_string),
            invoke_ns: 0,
            complete_ns: Some(1),
            txn: None,
        };
        assert_eq!(
            op("read", "null", Outcome::Ok, Some("4000000013")).label(),
            "#1503 read k0 → 4000000013"
        );
        assert_eq!(
            op("read", "null", Outcome::Ok, Some("null")).label(),
            "#1503 read k0 → null"
        );
        assert_eq!(
            op("cas", "[3,4]", Outcome::Fail, None).label(),
            "#1503 cas k0 [3,4] (fail)"
        );
        assert_eq!(count(1, "key"), "1 key");
        assert_eq!(count(2, "key"), "2 keys");
    }

    #[test]
    fn a_check_put_twice_is_listed_once_and_the_verdict_follows() {
        let report = |name: &str, verdict| CheckReport {
            name: name.into(),
            verdict,
            summary: String::new(),
            anomalies: Vec::new(),
            unknown: Vec::new(),
        };
        let mut r = CheckResult {
            verdict: Verdict::Valid,
            checks: vec![report("linearizability", Verdict::Valid)],
            stats: Stats::default(),
        };
        r.put(report("protocol", Verdict::Skipped));
        r.put(report("protocol", Verdict::Invalid));
        assert_eq!(r.checks.len(), 2, "{:?}", r.checks);
        assert_eq!(r.verdict, Verdict::Invalid);
    }
}
