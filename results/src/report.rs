//! report.html: one self-contained page per run. Inline CSS, inline SVG figures that
//! read without JavaScript, and one inline script for the zoomable timeline of every
//! op. Nothing is fetched from anywhere; links go only to files of the run directory.

use std::collections::BTreeMap;

use checker::AnomalyKind;
use checker::history::{History, Outcome};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::charts;
use crate::data;
use crate::schema::{ExitCode, RunResult};
use checker::report::count;

const CSS: &str = include_str!("report.css");
const JS: &str = include_str!("report.js");

/// At most this many ok ops are drawn in the latency scatter.
const SCATTER_OK_CAP: usize = 4_000;
/// At most this many ops in the static close-up.
const CLOSEUP_CAP: usize = 600;
/// At most this many traced messages in the space-time diagram.
pub const LAMPORT_CAP: usize = 80;

/// Everything the page is made from.
pub struct Inputs<'a> {
    pub result: &'a RunResult,
    /// `None` when history.jsonl is missing or unreadable (the reason is in `notes`).
    pub history: Option<&'a History>,
    /// Traced messages around the first anomaly (`None` without messages.jsonl).
    pub trace: Option<Vec<data::TracedMessage>>,
    /// Files present per node: (node, relative paths).
    pub node_files: Vec<(u32, Vec<String>)>,
    /// Problems met while reading the run's files.
    pub notes: Vec<String>,
}

/// What an anomaly kind means, for a reader who has not met it before.
pub fn explain(kind: AnomalyKind) -> &'static str {
    match kind {
        AnomalyKind::Agreement => {
            "Two different values were decided for the same write-once register. Paxos chooses at most one value per register: once a majority has accepted a value, every higher ballot must propose that same value. Two clients (or two nodes' final dumps) saw different values, so some node acted on an acceptance it should have carried forward, or a quorum that was not a majority."
        }
        AnomalyKind::Validity => {
            "A register was decided to a value that no client proposed for it. A value can only be chosen if some proposer put it forward; this one came from nowhere (or from another register)."
        }
        AnomalyKind::NonLinearizable => {
            "No order of these operations explains what the clients saw while respecting real time (an op that completed before another began must come first). The search below found the longest order that works; the op it could not place next is the one whose result contradicts every consistent order, typically a stale read or a write acknowledged before it was chosen."
        }
        AnomalyKind::LogDisagreement => {
            "Two nodes hold different commands in the same slot of the replicated log. Every node must apply the same command in each slot, or replicas diverge."
        }
        AnomalyKind::UnknownCommand => {
            "A node's log holds a command that no client issued in this history."
        }
        AnomalyKind::DuplicateCommand => {
            "The same client command was chosen in two slots, so it would be applied twice."
        }
        AnomalyKind::FailedCommandChosen => {
            "A node's chosen log holds a command whose client was told it definitely failed. A definite failure promises the command did not and will not take effect; the cluster applied it anyway, so the client was lied to."
        }
        AnomalyKind::PromiseRegressed => {
            "An acceptor promised a ballot below one it had already promised (or accepted in). A promise is a vow never to take part in a lower ballot; a proposer that counted the earlier promise may now be overtaken by one that counts this one, and two values can be chosen. Typically the acceptor lost its promise in a restart: it was not durable before the promise was sent."
        }
        AnomalyKind::AcceptedBelowPromise => {
            "An acceptor accepted a proposal in a ballot below the one it had promised. The proposer of the higher ballot relied on that promise when it chose what to propose; this acceptance can complete a quorum for a value the higher ballot does not carry forward."
        }
        AnomalyKind::WrongValueProposed => {
            "A proposer sent accept(b) with a value other than the one its promises for b required: the value accepted in the highest ballot among them, or a value reported as chosen (its own value is allowed only when none reported one). This is the rule that makes a chosen value survive a change of proposer."
        }
        AnomalyKind::ChosenWithoutQuorum => {
            "A node wrote a value down as chosen without having learned it: no majority of distinct acceptors had sent it acceptances of that value's ballot, and no peer had told it the value was chosen. A quorum that is not a majority can miss another quorum entirely, so two values can be chosen."
        }
        AnomalyKind::ElectionSafety => {
            "Two nodes were leaders of the same Raft term. Each term has at most one leader; with two, both can commit different entries at the same index."
        }
        AnomalyKind::LeaderAppendOnly => {
            "A Raft leader overwrote or deleted an entry of its own log during its term. A leader only appends; an entry it replaced may already have been committed."
        }
        AnomalyKind::LogMatching => {
            "Two nodes' logs hold an entry with the same index and term but different contents. One leader creates at most one entry per index in its term, so logs that agree on an entry's index and term agree on it and on everything before it."
        }
        AnomalyKind::LeaderCompleteness => {
            "A node became Raft leader without an entry that was already committed in an earlier term. A leader must hold every committed entry, or it will overwrite one."
        }
        AnomalyKind::StateMachineSafety => {
            "Two nodes applied different entries at the same log index. Every state machine applies the same entry at each index, or replicas diverge and clients see different histories."
        }
        AnomalyKind::RecoveryMismatch => {
            "A node's recovery after a restart returned other records than its disk held: it dropped a record that had reached the disk whole (synced, or written back before the crash), or brought back one the crash lost. A dropped promise or acceptance is a vow forgotten; clients rarely see it until it matters."
        }
        AnomalyKind::Isolation => {
            "Transactions were not isolated as the consistency model promises. A cycle (G0, G1c, G-single, G2-item, with -process or -realtime when a client's own order or real time closes it) is an order the transactions' reads force that goes round: each edge is given in words, and no serial order explains what clients read. The other classes need no cycle: a read of a failed transaction's write (G1a), of a value a transaction later overwrote itself (G1b), of a value no transaction wrote (garbage), or one a transaction's own earlier micro-ops contradict (internal)."
        }
        AnomalyKind::CoreAssertion => {
            "A node's core stopped on one of its own assertions: it met a state its protocol says cannot happen (for raft-rs, typically a follower that lost entries it had acknowledged). The core found the violation before the clients did."
        }
        AnomalyKind::ConflictingLearn => {
            "The same register or log slot was learned (written down as chosen, or announced as decided or chosen) as two different values. At most one value is ever chosen; two learned values mean some node declared a value chosen that was not."
        }
    }
}

fn ms(ns: u64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

fn op_rows(ops: &[checker::OpRef], link: bool) -> Markup {
    html! {
        table class="ops" {
            thead { tr { th { "index" } th { "process" } th { "node" } th { "op" } th { "key" } th { "value" } th { "outcome" } th { "result" } th { "start ms" } th { "end ms" } } }
            tbody {
                @for o in ops {
                    tr class=(format!("o-{}", data::outcome_name(o.outcome))) {
                        td { @if link { a href=(format!("#op-{}", o.index)) data-op=(o.index) { "#" (o.index) } } @else { "#" (o.index) } }
                        td { "p" (o.process) }
                        td { @if let Some(n) = o.node { "n" (n) } @else { "-" } }
                        td { (o.f) }
                        td { (o.key) }
                        td { code { (o.value) } }
                        td { (data::outcome_name(o.outcome)) }
                        td { code { (o.result.as_deref().unwrap_or("")) } }
                        td { (ms(o.invoke_ns)) }
                        td { @if let Some(c) = o.complete_ns { (ms(c)) } @else { "never" } }
                    }
                }
            }
        }
    }
}

/// The run's parameters, as the banner's table lists them.
fn params(r: &RunResult) -> Vec<(&'static str, String)> {
    let plan = &r.plan;
    let system = match (&plan.node_cmd, &plan.declared) {
        (Some(cmd), _) => ("node command (Maelstrom protocol)", cmd.clone()),
        (None, Some(d)) => (
            "system",
            format!(
                "{}, declared in {}",
                r.versions.system.clone().unwrap_or_default(),
                d.path.display()
            ),
        ),
        (None, None) if plan.system == crate::plan::SystemKind::Etcd => (
            "system",
            r.versions.system.clone().unwrap_or_else(|| "etcd".into()),
        ),
        (None, None) => (
            "node binary",
            plan.node_bin
                .as_ref()
                .map_or("bundled".into(), |b| b.display().to_string()),
        ),
    };
    vec![
        ("nodes", plan.nodes.to_string()),
        ("workload", plan.workload.name().to_string()),
        ("time limit", format!("{} s", plan.time_limit_s)),
        ("clients", plan.concurrency.to_string()),
        ("rate", plan.rate.to_string()),
        ("keys", plan.kv_keys.join(" ")),
        match plan.txn_shape {
            Some(shape) => ("transactions", shape.describe()),
            None => (
                "op mix",
                format!(
                    "read {} · write {} · cas {}",
                    plan.op_mix.read, plan.op_mix.write, plan.op_mix.cas
                ),
            ),
        },
        ("nemesis", plan.nemesis.describe()),
        ("network", plan.network_words().to_string()),
        ("nemesis interval", format!("{} s", plan.nemesis_interval_s)),
        system,
        (
            "node args",
            if plan.node_args.is_empty() {
                "-".into()
            } else {
                plan.node_args.join(" ")
            },
        ),
        ("grace", format!("{} s", plan.grace_s)),
        ("op timeout", format!("{} ms", plan.op_timeout_ms)),
        (
            "started",
            r.started_at.clone().unwrap_or_else(|| "-".into()),
        ),
        ("chaos", r.versions.chaos.clone()),
    ]
}

fn banner(r: &RunResult) -> Markup {
    let counts = r.outcome_counts();
    let get = |k: &str| counts.get(k).copied().unwrap_or(0);
    let params = params(r);
    html! {
        @let words = r.words();
        header class=(format!("banner {}", words.class)) {
            div class="verdict" { (words.label.to_uppercase()) }
            div class="headline" {
                h1 { @if r.simulation.is_some() { "Simulated run " } @else { "Run " } (r.name) ", seed " (r.seed) }
                @if let Some(sim) = &r.simulation {
                    p class="simulated" { "Deterministic simulation: every node's core in one process on virtual time ("
                        (format!("{:.1}", sim.virtual_s)) " virtual s in " (format!("{:.2}", sim.wall_s)) " s). The same plan gives the same history, SHA-256 "
                        code { (sim.history_sha256) } "." }
                }
                @if let Some(from) = &r.plan.shrunk_from {
                    p class="shrunk" { "Shrunk from " a href=(format!("{}/report.html", from.run_dir)) { (from.run_dir) } ": "
                        strong { (from.sizes(r.plan.scheduled_faults(), r.stats.as_ref().map_or(0, |s| s.ops), r.plan.nodes)) }
                        ". " (from.caveats(r.exit_code != ExitCode::Valid).join("; ")) "." }
                }
                p { "exit " (r.exit_code.code()) ": " (words.headline()) }
                p class="counts" { "ok " (get("ok")) " · fail " (get("fail")) " · info " (get("info"))
                    @if let Some(s) = &r.stats { " · " (format!("{:.0}", s.ok_per_second)) " ok/s over " (format!("{:.1}", s.duration_ms / 1e3)) " s" }
                    " · " (r.faults.faults()) " faults took effect" }
            }
        }
        section class="reproduce" {
            @if r.plan.made_by_flags() {
                p { "Reproduce from scratch:" }
            } @else {
                p { "Run this plan again (no flags make it: it runs from its plan.json):" }
            }
            pre id="reproduce" { (command(&r.reproduce)) }
            p { "Re-run the stored plan:" }
            pre { (command(&r.replay)) }
        }
        // A shrunk run is read for its anomaly: the parameters stay folded.
        details class="params" open[r.plan.shrunk_from.is_none()] {
            summary { "Parameters" }
            table class="kv" {
                @for (k, v) in &params { tr { th { (k) } td { (v) } } }
                tr { th { "durations" } td { (format!("start-up {:.1} s, workload {:.1} s, final phase {:.1} s, check {:.1} s", r.durations.startup_s, r.durations.workload_s, r.durations.final_s, r.durations.check_s)) } }
            }
        }
    }
}

fn problems(r: &RunResult, notes: &[String]) -> Markup {
    html! {
        @if r.harness_failure.is_some() || r.liveness.ok == Some(false) || r.interrupted || !r.notes.is_empty() || !notes.is_empty() || !r.faults.misbehaviour.is_empty() {
            section class="problems" {
                h2 { "What else happened" }
                ul {
                    @if let Some(h) = &r.harness_failure { li { strong { "Harness failure: " } (h) } }
                    @if r.liveness.ok == Some(false) { li { strong { "Liveness: " } (r.liveness.message.as_deref().unwrap_or("the cluster did not recover after the final heal")) } }
                    @if r.interrupted { li { "The run was interrupted before its time limit." } }
                    @for n in r.notes.iter().chain(notes) { li { (n) } }
                    @for m in &r.faults.misbehaviour { li class="misbehaved" { strong { "Node misbehaved: " } (m.describe()) } }
                }
            }
        }
    }
}

/// Why a run has no message trace to draw.
fn no_trace(r: &RunResult) -> Markup {
    html! {
        @if r.plan.mode == crate::Mode::Sim {
            "No message trace: chaos sim keeps the messages around the first anomaly of a failed run only."
        } @else if r.plan.trace_messages {
            "No message trace: messages.jsonl is missing or empty."
        } @else {
            "No message trace: the run was made with " code { "--no-trace-messages" } "."
        }
    }
}

/// A broken rule's witness messages (those between two nodes) as arrows for the
/// space-time diagram; records and proposals stay in the table.
fn witness_arrows(messages: &[checker::report::MessageRef]) -> Vec<data::TracedMessage> {
    messages
        .iter()
        .filter_map(|m| {
            Some(data::TracedMessage {
                time_ns: m.time_ns,
                from: m.from?,
                to: m.to?,
                kind: m
                    .text
                    .split_whitespace()
                    .next()
                    .unwrap_or("message")
                    .to_string(),
                fate: "delivered".into(),
                delay_ms: vec![0.0],
            })
        })
        .collect()
}

fn anomalies(r: &RunResult) -> Markup {
    let list: Vec<_> = r.anomalies().collect();
    html! {
        @if !list.is_empty() {
            section id="anomalies" {
                h2 { "Anomalies (" (list.len()) ")" }
                @for (i, (check, a)) in list.iter().enumerate() {
                    article class="anomaly" id=(format!("anomaly-{}", i + 1)) {
                        h3 { (i + 1) ". " (a.name()) " in " (check.name)
                            @if let Some(k) = &a.key { ", key " code { (k) } }
                            @if let Some(s) = a.slot { ", slot " (s) } }
                        p class="message" { (a.message) }
                        p class="explain" { (explain(a.kind)) }
                        @if !a.ops.is_empty() {
                            p { "Witness ops (click one to find it on the timeline):" }
                            (op_rows(&a.ops, true))
                        }
                        @if !a.messages.is_empty() {
                            @let arrows = witness_arrows(&a.messages);
                            @if !arrows.is_empty() {
                                p { "The messages between the nodes, as a space-time diagram:" }
                                (charts::lamport(&arrows, r.plan.nodes as u32, &[]))
                            }
                            p { "The messages and records that show it, in the order the nodes stepped them:" }
                            table class="ops" {
                                tr { th { "time (ms)" } th { "event" } th { "nodes" } th { "message" } }
                                @for m in &a.messages {
                                    tr { td { (ms(m.time_ns)) } td { (m.event) }
                                        td { @if let Some(f) = m.from { "n" (f) } @if let Some(t) = m.to { " → n" (t) } }
                                        td { code { (m.text) } } }
                                }
                            }
                        }
                        @if !a.cycle.is_empty() {
                            p { "The cycle: each arrow is an order the transactions' reads force (ww: write then write, wr: a read saw a write, rw: a read missed a later write, realtime, process):" }
                            (cycle_drawing(&a.cycle, &a.ops))
                            ol class="cycle" {
                                @for step in &a.cycle { li { code { (step.kind) } " " (step.why) } }
                            }
                        }
                        @if let Some(w) = &a.witness {
                            @let skip = w.prefix.len().saturating_sub(8);
                            p { "The longest linearizable order has " (w.prefix.len()) " ops"
                                @if skip > 0 { "; its last " (w.prefix.len() - skip) " are" } ":" }
                            (op_rows(&w.prefix[skip..], true))
                            p { "After it the register holds " code { (w.value.map_or("nothing (absent)".into(), |v| v.to_string())) }
                                ", and this op cannot be placed next:" }
                            (op_rows(std::slice::from_ref(&w.blocked), true))
                        }
                    }
                }
            }
        }
    }
}

/// An isolation anomaly's cycle as a drawing: its transactions on a circle, an
/// arrow for each edge, labelled with its kind.
fn cycle_drawing(cycle: &[checker::txn::CycleStep], witnesses: &[checker::OpRef]) -> Markup {
    // Each transaction links to its bar on the timeline, as the witness table does.
    let index_of = |t: u32| witnesses.iter().find(|o| o.txn == Some(t)).map(|o| o.index);
    let n = cycle.len().max(1) as f64;
    let (w, h, r) = (420.0, 260.0, 95.0);
    let at = |i: usize| {
        let a = std::f64::consts::PI * (2.0 * i as f64 / n - 0.5);
        (w / 2.0 + r * 1.5 * a.cos(), h / 2.0 + r * a.sin())
    };
    let colour = |kind: &str| match kind {
        "ww" => "#1f77b4",
        "wr" => "#2ca02c",
        "rw" => "#d62728",
        "realtime" => "#9467bd",
        _ => "#8c564b",
    };
    html! {
        svg class="cycle" width=(w) height=(h) viewBox=(format!("0 0 {w} {h}")) role="img" {
            defs {
                marker id="cycle-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" fill="#444" {}
                }
            }
            @for (i, step) in cycle.iter().enumerate() {
                @let (x1, y1) = at(i);
                @let (x2, y2) = at((i + 1) % cycle.len());
                @let (dx, dy) = (x2 - x1, y2 - y1);
                @let len = (dx * dx + dy * dy).sqrt().max(1.0);
                // Bent to the left so two opposite edges do not overlap.
                @let (mx, my) = ((x1 + x2) / 2.0 - dy / len * 24.0, (y1 + y2) / 2.0 + dx / len * 24.0);
                @let (sx, sy) = (x1 + dx / len * 22.0, y1 + dy / len * 22.0);
                @let (ex, ey) = (x2 - dx / len * 24.0, y2 - dy / len * 24.0);
                path d=(format!("M {sx:.1} {sy:.1} Q {mx:.1} {my:.1} {ex:.1} {ey:.1}")) fill="none"
                    stroke=(colour(&step.kind)) stroke-width="2" marker-end="url(#cycle-arrow)" {}
                text x=(format!("{mx:.1}")) y=(format!("{my:.1}")) font-size="12" text-anchor="middle"
                    fill=(colour(&step.kind)) { (step.kind) }
            }
            @for (i, step) in cycle.iter().enumerate() {
                @let (x, y) = at(i);
                @let node = html! {
                    circle cx=(format!("{x:.1}")) cy=(format!("{y:.1}")) r="20" fill="#fff" stroke="#333" {}
                    text x=(format!("{x:.1}")) y=(format!("{:.1}", y + 4.0)) font-size="12" text-anchor="middle" { "T" (step.from) }
                };
                @match index_of(step.from) {
                    Some(index) => a href=(format!("#op-{index}")) data-op=(index) { title { "T" (step.from) ": history index " (index) ", click to find it on the timeline" } (node) },
                    None => (node),
                }
            }
        }
    }
}

fn checks(r: &RunResult) -> Markup {
    html! {
        section id="checks" {
            h2 { "Checks" }
            @match &r.checks {
                Some(checks) => {
                    table class="checks" {
                        thead { tr { th { "check" } th { "verdict" } th { "what was checked, what was found" } } }
                        tbody {
                            @for c in checks {
                                tr class=(format!("v-{}", c.verdict.as_str())) {
                                    td { (c.name) } td { (c.verdict.as_str()) }
                                    td { (c.summary)
                                        @for u in &c.unknown { br; "? " (u) } }
                                }
                            }
                            tr class=(match r.liveness.ok { Some(true) => "v-valid", Some(false) => "v-invalid", None => "v-skipped" }) {
                                td { "liveness" }
                                td { (match r.liveness.ok { Some(true) => "valid", Some(false) => "invalid", None => "skipped" }) }
                                td { (match r.liveness.ok { Some(true) => "every node answered within the grace period after the final heal", Some(false) => "the cluster did not recover within the grace period", None => "the run did not reach the final phase" }) }
                            }
                        }
                    }
                }
                None => { p { "The history could not be checked." } }
            }
            @if let Some(s) = &r.stats {
                table class="stats" {
                    thead { tr { th { "op" } th { "ok" } th { "fail" } th { "info" } th { "p50 ms" } th { "p90 ms" } th { "p99 ms" } th { "max ms" } } }
                    tbody {
                        @for (f, by) in &s.counts {
                            @let l = s.latency.get(f).cloned().unwrap_or_default();
                            tr { td { (f) } td { (by.get("ok").copied().unwrap_or(0)) } td { (by.get("fail").copied().unwrap_or(0)) } td { (by.get("info").copied().unwrap_or(0)) }
                                td { (format!("{:.2}", l.p50_us as f64 / 1e3)) } td { (format!("{:.2}", l.p90_us as f64 / 1e3)) } td { (format!("{:.2}", l.p99_us as f64 / 1e3)) } td { (format!("{:.2}", l.max_us as f64 / 1e3)) } }
                        }
                    }
                }
            }
        }
    }
}

/// The timeline's data for the script: columnar, times in microseconds, written
/// column by column to `out` (straight into the page for a large run: 589,000 ops
/// make about 50 MB of it, not worth holding in memory too).
fn write_timeline_json(
    out: &mut dyn std::io::Write,
    history: &History,
    bars: &[data::Bar],
    lanes: &[u32],
    lane_procs: &[Vec<u64>],
    r: &RunResult,
    marked: &std::collections::BTreeSet<u64>,
) -> std::io::Result<()> {
    // A transaction's keys, micro-ops and reads as text, made once for the columns
    // below, by bar (none at all for a history without transactions, which may
    // have hundreds of thousands of ops).
    let txn_text: Vec<Option<Box<checker::OpRef>>> = match history.txns.is_empty() {
        true => Vec::new(),
        false => bars
            .iter()
            .map(|b| matches!(b, data::Bar::Txn(..)).then(|| Box::new(b.op_ref())))
            .collect(),
    };
    let txn = |i: usize| txn_text[i].as_ref().expect("a transaction's text was made");
    let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, bar) in bars.iter().enumerate() {
        let key = match bar {
            data::Bar::Op(o) => &*o.key,
            data::Bar::Txn(..) => txn(i).key.as_str(),
        };
        let next = keys.len();
        keys.entry(key).or_insert(next);
    }
    let mut key_list = vec![""; keys.len()];
    for (k, i) in &keys {
        key_list[*i] = k;
    }
    let us = |ns: u64| ns / 1_000;
    type Cell<'a> =
        dyn FnMut(usize, &data::Bar, &mut dyn std::io::Write) -> std::io::Result<()> + 'a;
    let col = |out: &mut dyn std::io::Write, name: &str, f: &mut Cell| {
        write!(out, "\"{name}\":[")?;
        for (i, op) in bars.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            f(i, op, out)?;
        }
        out.write_all(b"],")
    };
    let text = |s: &str| script_safe(&serde_json::Value::from(s));
    out.write_all(b"{")?;
    col(out, "t0", &mut |_, o, out| {
        write!(out, "{}", us(o.invoke_ns()))
    })?;
    col(out, "t1", &mut |_, o, out| {
        write!(out, "{}", o.complete_ns().map_or(-1, |c| us(c) as i64))
    })?;
    col(out, "lane", &mut |i, _, out| write!(out, "{}", lanes[i]))?;
    col(out, "c", &mut |_, o, out| {
        let c = match o.outcome() {
            Outcome::Ok => 0,
            Outcome::Fail => 1,
            Outcome::Info => 2,
        };
        write!(out, "{c}")
    })?;
    col(out, "f", &mut |_, o, out| write!(out, "{}", o.f_code()))?;
    col(out, "p", &mut |_, o, out| write!(out, "{}", o.process()))?;
    col(out, "n", &mut |_, o, out| {
        write!(out, "{}", o.node().unwrap_or(0))
    })?;
    col(out, "i", &mut |_, o, out| write!(out, "{}", o.index()))?;
    col(out, "k", &mut |i, o, out| match o {
        data::Bar::Op(op) => write!(out, "{}", keys[&*op.key]),
        data::Bar::Txn(..) => write!(out, "{}", keys[txn(i).key.as_str()]),
    })?;
    col(out, "v", &mut |i, o, out| match o {
        data::Bar::Op(op) => write!(out, "\"{}\"", op.call.value_text().replace('"', "")),
        data::Bar::Txn(..) => out.write_all(text(&txn(i).value).as_bytes()),
    })?;
    col(out, "r", &mut |i, o, out| match o {
        data::Bar::Op(op) => match op.result {
            Some(Some(v)) => write!(out, "\"{v}\""),
            Some(None) => out.write_all(b"\"null\""),
            None => match &op.error {
                Some(e) => out.write_all(text(e).as_bytes()),
                None => out.write_all(b"\"\""),
            },
        },
        data::Bar::Txn(..) => {
            out.write_all(text(txn(i).result.as_deref().unwrap_or("")).as_bytes())
        }
    })?;
    write!(
        out,
        "\"keys\":{},",
        script_safe(&serde_json::to_value(&key_list).unwrap_or_default())
    )?;
    write!(
        out,
        "\"lanes\":{},",
        serde_json::to_string(lane_procs).unwrap_or_default()
    )?;
    let faults: Vec<serde_json::Value> = r
        .faults
        .periods
        .iter()
        .map(|p| serde_json::json!([p.kind, us(p.start_ns), us(p.end_ns), p.nodes, p.detail]))
        .collect();
    write!(
        out,
        "\"faults\":{},",
        script_safe(&serde_json::Value::from(faults))
    )?;
    write!(
        out,
        "\"marked\":{},",
        serde_json::to_string(&marked.iter().collect::<Vec<_>>()).unwrap_or_default()
    )?;
    let focus = data::focus_window(r, bars, history.end_ns);
    write!(out, "\"focus\":[{},{}],", us(focus.0), us(focus.1))?;
    write!(out, "\"nodes\":{},", r.plan.nodes)?;
    write!(out, "\"end\":{}", us(history.end_ns))?;
    out.write_all(b"}")
}

/// JSON text that cannot end the `<script>` element it sits in: only `</` can, and
/// only inside a string (the other columns are numbers and fixed text).
fn script_safe(v: &serde_json::Value) -> String {
    v.to_string().replace("</", "<\\/")
}

fn timeline(
    history: &History,
    bars: &[data::Bar],
    (lanes, lane_procs): &(Vec<u32>, Vec<Vec<u64>>),
    r: &RunResult,
) -> Markup {
    let marked = data::anomaly_ops(r);
    let window = data::focus_window(r, bars, history.end_ns);
    let close = data::ops_in_window(bars, history.end_ns, window, CLOSEUP_CAP);
    // Bars are in invoke order with strictly increasing indexes, so one is found
    // by binary search, not through a map of every op.
    let pos = |index: u64| {
        bars.binary_search_by_key(&index, |o| o.index())
            .unwrap_or(0)
    };
    let txns = bars
        .iter()
        .filter(|b| matches!(b, data::Bar::Txn(..)))
        .count();
    let has_anomaly = r.anomalies().next().is_some();
    html! {
        section id="timeline" {
            h2 { "Timeline" }
            p { @match (history.ops.len(), txns) {
                    (ops, 0) => { (count(ops, "op")) }
                    (0, txns) => { (count(txns, "transaction")) }
                    (ops, txns) => { (count(ops, "op")) " and " (count(txns, "transaction")) }
                }
                " on " (lane_procs.len()) " client lanes (a lane is a client slot: a process that timed out is replaced by a new one on the same lane). "
                "Bars run from invoke to completion: " span class="key ok" { "ok" } " " span class="key fail" { "fail" } " " span class="key info" { "info" }
                "; outlined: ops of an anomaly. Shaded: " span class="key partition" { "partition" } " " span class="key links" { "link faults" }
                "; per-node rows: " span class="key kill" { "killed" } " " span class="key pause" { "paused" } " " span class="key clock" { "clock skewed" } " " span class="key corrupt" { "data corrupted" } "." }
            div id="tl-controls" class="js-only" {
                button type="button" data-zoom="all" { "Whole run" }
                button type="button" data-zoom="focus" { (if has_anomaly { "First anomaly" } else { "First 200 ms" }) }
                button type="button" data-zoom="in" { "Zoom in" }
                button type="button" data-zoom="out" { "Zoom out" }
                span id="tl-range" {}
                span class="hint" { " Scroll to zoom, drag to pan, hover for an op's fields." }
            }
            div id="tl-wrap" class="js-only" { canvas id="tl-canvas" width="1000" height="200" {} div id="tl-tip" hidden {} }
            noscript { p { "The zoomable timeline of every op needs JavaScript; the close-up below does not." } }
            h3 { (if bars.len() <= data::SMALL_RUN_OPS { "Every op" } else if has_anomaly { "Close-up around the first anomaly" } else { "Close-up of the first 200 ms" }) }
            p class="caption" { (close.len()) " ops from " (ms(window.0)) " ms to " (ms(window.1)) " ms. Hover a bar for its fields." }
            (charts::closeup(&close, lanes, &pos, window, &r.faults.periods, &marked))
            script type="application/json" id="tl-data" { (PreEscaped(DATA_SLOT)) }
        }
    }
}

/// The fault kinds that took effect, with how many faults each: "kill ×2, power ×1".
fn used_faults(r: &RunResult) -> String {
    let mut used: std::collections::BTreeMap<String, usize> = Default::default();
    for f in r.faults.grouped(r.plan.nodes) {
        *used.entry(f.label).or_default() += 1;
    }
    if used.is_empty() {
        return "none".into();
    }
    used.iter()
        .map(|(k, n)| format!("{k} \u{d7}{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn faults(r: &RunResult) -> Markup {
    html! {
        section id="faults" {
            h2 { "Faults" }
            p class="used" { "Fault kinds the plan allowed: " strong { (r.plan.nemesis.describe()) }
                @if r.plan.explicit_schedule { " (an explicit schedule)" }
                ". Used in this run: " strong { (used_faults(r)) } "." }
            @if r.faults.periods.is_empty() && r.faults.counts.is_empty() {
                p { "No faults were injected." }
            } @else {
                p { (format!("{:.1}", r.faults.total_ms / 1e3)) " s with at least one fault in force"
                    @for (k, v) in &r.faults.ms_per_kind { "; " (k) " " (format!("{:.1}", v / 1e3)) " s" } ". Events: "
                    @for (i, (k, n)) in r.faults.counts.iter().enumerate() { @if i > 0 { ", " } (k) " " (n) }
                    @for (k, n) in &r.faults.not_installed { "; " (n) " " (k) } "." }
                table class="faults" {
                    thead { tr { th { "fault" } th { "nodes" } th { "from s" } th { "to s" } th { "lasted ms" } th { "detail" } } }
                    tbody {
                        @for p in &r.faults.grouped(r.plan.nodes) {
                            tr { td { span class=(format!("key {}", p.kind)) { (p.label) } } td { (format!("{:?}", p.nodes)) }
                                td { (format!("{:.3}", p.start_ns as f64 / 1e9)) } td { (format!("{:.3}", p.end_ns as f64 / 1e9)) }
                                td { (format!("{:.0}", (p.end_ns - p.start_ns) as f64 / 1e6)) } td { (p.detail) } }
                        }
                    }
                }
            }
        }
    }
}

fn node_panels(r: &RunResult, bars: &[data::Bar], files: &[(u32, Vec<String>)]) -> Markup {
    html! {
        section id="nodes" {
            h2 { "Nodes" }
            div class="panels" {
                @for (id, paths) in files {
                    @let mine: Vec<_> = r.faults.periods.iter().filter(|p| p.nodes.contains(id)).collect();
                    @let kills = mine.iter().filter(|p| p.kind == "kill").count();
                    @let pauses = mine.iter().filter(|p| p.kind == "pause").count();
                    @let served: BTreeMap<&str, u64> = {
                        let mut m = BTreeMap::new();
                        for o in bars.iter().filter(|o| o.node() == Some(*id)) { *m.entry(data::outcome_name(o.outcome())).or_default() += 1; }
                        m
                    };
                    div class="panel" id=(format!("node-{id}")) {
                        h3 { "n" (id) }
                        p { (count(kills, "kill")) " (each followed by a restart on the same data), " (count(pauses, "pause")) ", in " (count(mine.len(), "fault period")) "." }
                        p { "Ops it served: " @for (k, n) in &served { (k) " " (n) " " } @if served.is_empty() { "none recorded" } }
                        @if !mine.is_empty() {
                            ul class="node-faults" {
                                @for p in &mine { li { span class=(format!("key {}", p.kind)) { (p.kind) } " " (format!("{:.3}-{:.3} s", p.start_ns as f64 / 1e9, p.end_ns as f64 / 1e9)) " " (p.detail) } }
                            }
                        }
                        p { "Files: " @for f in paths { a href=(f) { (f) } " " } @if paths.is_empty() { "none left" } }
                    }
                }
            }
        }
    }
}

fn links(r: &RunResult) -> Markup {
    html! {
        section id="messages" {
            h2 { "Messages per link" }
            @if r.links.is_empty() {
                @if r.plan.net == crate::plan::Net::Netns && r.plan.mode == crate::plan::Mode::Real {
                    p { "No message counts were recorded: with --net netns the kernel carries the messages, and it counts none per link." }
                } @else {
                    p { "No message counts were recorded." }
                }
            } @else {
                table class="links" {
                    thead { tr { th { "link" } th { "sent" } th { "delivered" } th { "dropped" } th { "duplicated" } th { "by type" } } }
                    tbody {
                        @for l in &r.links {
                            @let t = l.types.values().fold([0u64; 4], |a, c| [a[0] + c.sent, a[1] + c.delivered, a[2] + c.dropped, a[3] + c.duplicated]);
                            tr { td { "n" (l.from) " → n" (l.to) } td { (t[0]) } td { (t[1]) } td { (t[2]) } td { (t[3]) }
                                td { details { summary { (l.types.len()) " types" }
                                    @for (k, c) in &l.types { (k) ": " (c.sent) " sent, " (c.dropped) " dropped, " (c.duplicated) " duplicated" br; } } } }
                        }
                    }
                }
            }
        }
    }
}

/// A command line for a page: each word kept whole on its line (a flag is never cut
/// in two), the line broken only between words.
pub fn command(cmd: &str) -> Markup {
    html! {
        code class="cmd" data-cmd=(cmd) {
            @for (i, word) in cmd.split(' ').enumerate() {
                @if i > 0 { " " }
                span class="w" { (word) }
            }
        }
    }
}

/// Where the timeline's data goes in the page. The data is most of a large report
/// (about 85 bytes an op), so it is written straight to the output between the two
/// halves of the page rather than copied into the page's string.
const DATA_SLOT: &str = "<!--chaos:timeline-data-->";

/// The most ops whose timeline data is made in memory beside the page (about 8 MB).
const PARALLEL_DATA_MAX_BARS: usize = 100_000;

/// The report as one string (tests, benches); [`render_to`] writes it out.
pub fn render(inputs: &Inputs) -> String {
    let mut out = Vec::new();
    render_to(inputs, &mut out).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("the report is UTF-8")
}

/// Writes the report to `out`.
pub fn render_to(inputs: &Inputs, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    // The history's bars and their lanes, made once for the page and its data.
    let drawn = inputs.history.map(|h| {
        let bars = data::bars(h);
        let lanes = data::assign_lanes(&bars, h.end_ns);
        (h, bars, lanes)
    });
    let marked = data::anomaly_ops(inputs.result);
    let timeline = |out: &mut dyn std::io::Write| match &drawn {
        Some((h, bars, (lanes, lane_procs))) => {
            write_timeline_json(out, h, bars, lanes, lane_procs, inputs.result, &marked)
        }
        None => Ok(()),
    };
    // Up to PARALLEL_DATA_MAX_BARS ops, the timeline's data is written to memory on a
    // second thread while the page is drawn (they take about as long as each
    // other); beyond, straight to the output after the page, not held in memory.
    let small = drawn
        .as_ref()
        .is_none_or(|(_, bars, _)| bars.len() <= PARALLEL_DATA_MAX_BARS);
    let (page, data) = match small {
        false => (page(inputs, drawn.as_ref()), None),
        true => std::thread::scope(|s| {
            let data = s.spawn(|| {
                let mut data = Vec::new();
                timeline(&mut data).expect("writing to memory cannot fail");
                data
            });
            let page = page(inputs, drawn.as_ref());
            let data = data
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (page, Some(data))
        }),
    };
    let Some((head, tail)) = page.split_once(DATA_SLOT) else {
        return out.write_all(page.as_bytes());
    };
    out.write_all(head.as_bytes())?;
    match data {
        Some(data) => out.write_all(&data)?,
        None => timeline(out)?,
    }
    out.write_all(tail.as_bytes())
}

/// A history as the page draws it: its bars, and each bar's lane with the
/// processes of every lane.
type Drawn<'a> = (&'a History, Vec<data::Bar<'a>>, (Vec<u32>, Vec<Vec<u64>>));

fn page(inputs: &Inputs, drawn: Option<&Drawn>) -> String {
    let r = inputs.result;
    let marked = data::anomaly_ops(r);
    let page: Markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (r.verdict.as_str().to_uppercase()) " · " (r.name) " seed " (r.seed) " · chaos report" }
                style { (PreEscaped(CSS)) }
            }
            body {
                (banner(r))
                (problems(r, &inputs.notes))
                (anomalies(r))
                (checks(r))
                @if let Some((h, bars, lanes)) = drawn {
                    @if !bars.is_empty() {
                        (timeline(h, bars, lanes, r))
                        section id="latency" { h2 { "Latency" } (charts::latency(bars, h.end_ns, &r.faults.periods, &marked, SCATTER_OK_CAP)) }
                        section id="throughput" { h2 { "Throughput" } (charts::throughput(bars, h.end_ns, &r.faults.periods)) }
                    }
                } @else {
                    section { h2 { "Timeline" } p { "No readable history: nothing to draw." } }
                }
                (faults(r))
                (node_panels(r, drawn.map_or(&[][..], |d| &d.1[..]), &inputs.node_files))
                (links(r))
                section id="lamport" {
                    h2 { "Messages around " (if r.anomalies().next().is_none() { "the start of the run" } else { "the first anomaly" }) }
                    @match &inputs.trace {
                        Some(t) => { (charts::lamport(t, r.plan.nodes as u32, &data::first_anomaly_ops(r))) }
                        None => { p { (no_trace(r)) } }
                    }
                }
                footer { "chaos " (r.versions.chaos) " · result.json schema " (r.schema_version) " · " a href="result.json" { "result.json" } " · " a href="history.jsonl" { "history.jsonl" } " · " a href="plan.json" { "plan.json" } }
                script { (PreEscaped(JS)) }
            }
        }
    };
    page.into_string()
}

#[cfg(test)]
mod command_tests {
    #[test]
    fn a_command_breaks_only_between_words() {
        let html =
            super::command("chaos sim --time-limit 3 --node-arg=--bug=stale-read").into_string();
        assert!(
            html.contains("<span class=\"w\">--time-limit</span>"),
            "{html}"
        );
        assert!(
            html.contains("<span class=\"w\">--node-arg=--bug=stale-read</span>"),
            "{html}"
        );
        assert!(html.contains("data-cmd=\"chaos sim --time-limit 3 --node-arg=--bug=stale-read\""));
        assert!(super::CSS.contains("code.cmd .w { white-space: nowrap; }"));
    }
}

#[cfg(test)]
mod cycle_tests {
    use checker::txn::CycleStep;

    #[test]
    fn a_cycle_is_drawn_with_every_transaction_and_edge() {
        let step = |from, to, kind: &str| CycleStep {
            from,
            to,
            kind: kind.into(),
            why: format!("T{from} before T{to}"),
        };
        let cycle = [step(3, 8, "wr"), step(8, 12, "realtime"), step(12, 3, "rw")];
        // T8's witness: its bar on the timeline is the history's op 41.
        let witness = checker::OpRef {
            index: 41,
            process: 2,
            node: None,
            f: "txn".into(),
            key: "x".into(),
            value: "r x".into(),
            outcome: checker::history::Outcome::Ok,
            result: Some("x [1]".into()),
            invoke_ns: 0,
            complete_ns: Some(1),
            txn: Some(8),
        };
        let svg = super::cycle_drawing(&cycle, &[witness]).into_string();
        assert!(
            svg.contains("<a href=\"#op-41\" data-op=\"41\">"),
            "T8 links to its bar: {svg}"
        );
        assert_eq!(svg.matches("<a ").count(), 1, "only T8 has a witness");
        assert!(svg.starts_with("<svg class=\"cycle\""), "{svg}");
        for t in ["T3", "T8", "T12"] {
            assert!(svg.contains(&format!(">{t}</text>")), "{t}: {svg}");
        }
        for kind in ["wr", "realtime", "rw"] {
            assert!(svg.contains(&format!(">{kind}</text>")), "{kind}: {svg}");
        }
        assert_eq!(svg.matches("marker-end").count(), 3);
    }
}
