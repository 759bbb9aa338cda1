//! The report's figures as inline SVG, drawn on the server so they read without
//! JavaScript: latency over time, throughput over time, the close-up of the ops
//! around the first anomaly, and the space-time diagram of the messages there.
//! Each element carries a `<title>`, which browsers show as a tooltip.

use std::collections::BTreeSet;

use checker::history::Outcome;
use maud::{Markup, html};

use crate::data::{Bar, TracedMessage, outcome_name};
use crate::faults::FaultPeriod;
use crate::sweep::one_line;

const W: f64 = 1000.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 10.0;

/// Maps a time (ns) to an x coordinate in a plot of width `W`.
#[derive(Clone, Copy)]
struct TimeAxis {
    a: u64,
    b: u64,
}

impl TimeAxis {
    fn x(&self, t: u64) -> f64 {
        let span = (self.b - self.a).max(1) as f64;
        LEFT + (t.clamp(self.a, self.b) - self.a) as f64 / span * (W - LEFT - RIGHT)
    }

    /// About `n` ticks at round seconds or milliseconds.
    fn ticks(&self, n: u64) -> Vec<(u64, String)> {
        let span = (self.b - self.a).max(1);
        let raw = span / n.max(1);
        let step = [
            1_000u64,
            10_000,
            100_000,
            1_000_000,
            2_000_000,
            5_000_000,
            10_000_000,
            20_000_000,
            50_000_000,
            100_000_000,
            200_000_000,
            500_000_000,
            1_000_000_000,
            2_000_000_000,
            5_000_000_000,
            10_000_000_000,
            30_000_000_000,
            60_000_000_000,
            300_000_000_000,
        ]
        .into_iter()
        .find(|s| *s >= raw)
        .unwrap_or(600_000_000_000);
        let first = self.a.div_ceil(step) * step;
        (0..)
            .map(|i| first + i * step)
            .take_while(|t| *t <= self.b)
            .map(|t| (t, time_label(t, step)))
            .collect()
    }
}

fn time_label(t: u64, step: u64) -> String {
    // As many decimals of a second as the step needs.
    let decimals = match step {
        s if s >= 1_000_000_000 => 0,
        s if s >= 100_000_000 => 1,
        s if s >= 10_000_000 => 2,
        s if s >= 1_000_000 => 3,
        _ => 6,
    };
    format!("{:.*} s", decimals, t as f64 / 1e9)
}

fn fmt_ms(ns: u64) -> String {
    let mut t = String::with_capacity(16);
    write_ms(&mut t, ns);
    t.push_str(" ms");
    t
}

/// `ns` in milliseconds with three decimals, exactly as `{:.3}` writes `ns as f64 /
/// 1e6`, without formatting a float: the report writes three for each op it draws.
/// Away from a tie (a whole number and a half of microseconds) the float is far
/// closer to `ns / 1e6` than the rounding step, up to 10^15 ns (eleven days), so
/// rounding the integer to the nearest microsecond gives the same digits; a tie, or
/// a larger time, is formatted as the float.
fn write_ms(out: &mut String, ns: u64) {
    use std::fmt::Write as _;
    let _ = if ns % 1_000 == 500 || ns >= 1_000_000_000_000_000 {
        write!(out, "{:.3}", ns as f64 / 1e6)
    } else {
        let us = (ns + 500) / 1_000;
        write!(out, "{}.{:03}", us / 1_000, us % 1_000)
    };
}

pub fn fault_colour(kind: &str) -> &'static str {
    match kind {
        "partition" => "#f4b400",
        "links" => "#4285f4",
        "kill" => "#db4437",
        "pause" => "#9c27b0",
        "clock" => "#00897b",
        "corrupt" => "#795548",
        _ => "#999999",
    }
}

/// Translucent bands for every fault period over the plot area.
fn shading(axis: TimeAxis, periods: &[FaultPeriod], top: f64, height: f64) -> Markup {
    html! {
        @for p in periods.iter().filter(|p| p.end_ns >= axis.a && p.start_ns <= axis.b) {
            @let x0 = axis.x(p.start_ns);
            @let x1 = axis.x(p.end_ns).max(x0 + 1.0);
            rect class="fault" x=(x0) y=(top) width=(x1 - x0) height=(height)
                fill=(fault_colour(&p.kind)) fill-opacity="0.13" {
                title { (p.kind) " " (format!("{:?}", p.nodes)) ": " (p.detail) ", "
                    (fmt_ms(p.start_ns)) " to " (fmt_ms(p.end_ns)) }
            }
        }
    }
}

fn x_axis(axis: TimeAxis, y: f64) -> Markup {
    html! {
        line x1=(LEFT) x2=(W - RIGHT) y1=(y) y2=(y) stroke="#888" {}
        @for (t, label) in axis.ticks(8) {
            @let x = axis.x(t);
            line x1=(x) x2=(x) y1=(y) y2=(y + 4.0) stroke="#888" {}
            text x=(x) y=(y + 15.0) text-anchor="middle" class="tick" { (label) }
        }
    }
}

fn outcome_colour(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "#2e7d32",
        Outcome::Fail => "#9e9e9e",
        Outcome::Info => "#ef6c00",
    }
}

fn op_title(bar: &Bar) -> String {
    // From the op itself where it is one (no witness of it made): the latency chart
    // titles every op it draws.
    match bar {
        Bar::Op(o) => {
            let result = o.result.map(|r| match r {
                Some(v) => v.to_string(),
                None => "null".into(),
            });
            let value = o.call.value_text();
            let f = o.f();
            title(Title {
                index: o.index,
                process: o.process,
                f: f.name(),
                key: &o.key,
                value: &value,
                result: result.as_deref(),
                outcome: o.outcome,
                error: bar.error(),
                node: o.node.map(u64::from),
                invoke_ns: o.invoke_ns,
                complete_ns: o.complete_ns,
            })
        }
        Bar::Txn(..) => {
            let op = bar.op_ref();
            title(Title {
                index: op.index,
                process: op.process,
                f: &op.f,
                key: &op.key,
                value: &op.value,
                result: op.result.as_deref(),
                outcome: op.outcome,
                error: bar.error(),
                node: op.node.map(u64::from),
                invoke_ns: op.invoke_ns,
                complete_ns: op.complete_ns,
            })
        }
    }
}

/// What an op's title says.
struct Title<'a> {
    index: u64,
    process: u64,
    f: &'a str,
    key: &'a str,
    value: &'a str,
    result: Option<&'a str>,
    outcome: Outcome,
    error: Option<&'a str>,
    node: Option<u64>,
    invoke_ns: u64,
    complete_ns: Option<u64>,
}

/// `#12 p3 write x 5: ok via n2; 1.000 ms to 2.500 ms (1.500 ms)`, written into one
/// string.
fn title(op: Title) -> String {
    use std::fmt::Write as _;
    let mut t = String::with_capacity(112);
    let _ = write!(
        t,
        "#{} p{} {} {} {}",
        op.index, op.process, op.f, op.key, op.value
    );
    if let Some(r) = op.result {
        let _ = write!(t, " -> {r}");
    }
    let _ = write!(t, ": {}", outcome_name(op.outcome));
    if let Some(e) = op.error {
        let _ = write!(t, " ({e})");
    }
    if let Some(n) = op.node {
        let _ = write!(t, " via n{n}");
    }
    t.push_str("; ");
    write_ms(&mut t, op.invoke_ns);
    t.push_str(" ms to ");
    match op.complete_ns {
        Some(c) => {
            write_ms(&mut t, c);
            t.push_str(" ms (");
            write_ms(&mut t, c - op.invoke_ns);
            t.push_str(" ms)");
        }
        None => t.push_str("never completed"),
    }
    t
}

/// Latency of every op over time, log scale, coloured by outcome. At most `cap` ok ops
/// are drawn (an even sample); every fail, info and anomaly op is drawn.
pub fn latency(
    bars: &[Bar],
    end_ns: u64,
    periods: &[FaultPeriod],
    marked: &BTreeSet<u64>,
    cap: usize,
) -> Markup {
    let start = bars.iter().map(Bar::invoke_ns).min().unwrap_or(0);
    let axis = TimeAxis {
        a: start,
        b: end_ns.max(start + 1),
    };
    let (top, h) = (10.0, 260.0);
    let ok = bars.iter().filter(|o| o.outcome() == Outcome::Ok).count();
    let stride = ok.div_ceil(cap.max(1)).max(1);
    let lat = |o: &Bar| {
        o.complete_ns()
            .map(|c| c.saturating_sub(o.invoke_ns()).max(1_000))
    };
    let max_ns = bars.iter().filter_map(lat).max().unwrap_or(1_000_000);
    let (lo, hi) = (4.0f64, ((max_ns as f64).log10()).ceil().max(7.0));
    let y = |ns: u64| top + h - ((ns as f64).log10() - lo) / (hi - lo) * h;
    let mut seen_ok = 0usize;
    let points: Vec<&Bar> = bars
        .iter()
        .filter(|o| {
            if lat(o).is_none() {
                return false;
            }
            if o.outcome() == Outcome::Ok && !marked.contains(&o.index()) {
                seen_ok += 1;
                return seen_ok % stride == 0;
            }
            true
        })
        .collect();
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {}", top + h + 30.0)) role="img" aria-label="latency over time" {
            (shading(axis, periods, top, h))
            @for e in (lo as i32)..=(hi as i32) {
                @let yy = top + h - (f64::from(e) - lo) / (hi - lo) * h;
                line x1=(LEFT) x2=(W - RIGHT) y1=(yy) y2=(yy) stroke="#eee" {}
                text x=(LEFT - 6.0) y=(yy + 4.0) text-anchor="end" class="tick" { (latency_label(e)) }
            }
            @for o in &points {
                @let l = lat(o).unwrap_or(1_000);
                @if marked.contains(&o.index()) {
                    circle cx=(axis.x(o.invoke_ns())) cy=(y(l)) r="4" fill="none" stroke="#000" stroke-width="2" { title { (op_title(o)) } }
                } @else {
                    circle cx=(axis.x(o.invoke_ns())) cy=(y(l)) r="1.6" fill=(outcome_colour(o.outcome())) { title { (op_title(o)) } }
                }
            }
            (x_axis(axis, top + h))
        }
        p class="caption" {
            "Latency of each op against its start time, log scale. Green ok, orange info (timed out), grey fail; circled: ops of an anomaly. "
            @if stride > 1 { "Ok ops sampled 1 in " (stride) "; every fail, info and anomaly op is shown. " }
            "Shaded: faults in force (hover for details)."
        }
    }
}

fn latency_label(exp: i32) -> String {
    match exp {
        e if e < 6 => format!("{} us", 10u64.pow((e - 3).max(0) as u32)),
        e if e < 9 => format!("{} ms", 10u64.pow((e - 6) as u32)),
        e => format!("{} s", 10u64.pow((e - 9) as u32)),
    }
}

/// Completions per second over time, one line per outcome.
pub fn throughput(bars: &[Bar], end_ns: u64, periods: &[FaultPeriod]) -> Markup {
    let start = bars.iter().map(Bar::invoke_ns).min().unwrap_or(0);
    let axis = TimeAxis {
        a: start,
        b: end_ns.max(start + 1),
    };
    let span = axis.b - axis.a;
    let bin = [
        100_000_000u64,
        250_000_000,
        500_000_000,
        1_000_000_000,
        5_000_000_000,
    ]
    .into_iter()
    .find(|b| span / b <= 300)
    .unwrap_or(10_000_000_000);
    let bins = (span / bin + 1) as usize;
    let mut counts = [vec![0u64; bins], vec![0u64; bins], vec![0u64; bins]];
    for o in bars {
        if let Some(c) = o.complete_ns() {
            let i = ((c.saturating_sub(start)) / bin) as usize;
            let k = match o.outcome() {
                Outcome::Ok => 0,
                Outcome::Fail => 1,
                Outcome::Info => 2,
            };
            counts[k][i.min(bins - 1)] += 1;
        }
    }
    let per_s = |n: u64| n as f64 * 1e9 / bin as f64;
    let max = counts
        .iter()
        .flatten()
        .map(|n| per_s(*n))
        .fold(1.0, f64::max);
    let (top, h) = (10.0, 200.0);
    let y = |v: f64| top + h - v / max * h;
    let line = |k: usize| -> String {
        counts[k]
            .iter()
            .enumerate()
            .map(|(i, n)| {
                format!(
                    "{:.1},{:.1}",
                    axis.x(start + i as u64 * bin + bin / 2),
                    y(per_s(*n))
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {}", top + h + 30.0)) role="img" aria-label="throughput over time" {
            (shading(axis, periods, top, h))
            @for i in 0..=4 {
                @let v = max * f64::from(i) / 4.0;
                line x1=(LEFT) x2=(W - RIGHT) y1=(y(v)) y2=(y(v)) stroke="#eee" {}
                text x=(LEFT - 6.0) y=(y(v) + 4.0) text-anchor="end" class="tick" { (format!("{v:.0}")) }
            }
            polyline points=(line(0)) fill="none" stroke=(outcome_colour(Outcome::Ok)) stroke-width="1.5" {}
            polyline points=(line(1)) fill="none" stroke=(outcome_colour(Outcome::Fail)) stroke-width="1.2" {}
            polyline points=(line(2)) fill="none" stroke=(outcome_colour(Outcome::Info)) stroke-width="1.2" {}
            (x_axis(axis, top + h))
        }
        p class="caption" { "Completed ops per second (bins of " (bin / 1_000_000) " ms): green ok, grey fail, orange info. Shaded: faults in force." }
    }
}

/// The longest label the close-up writes beside a bar.
const LABEL_CHARS: usize = 60;
/// A close-up label's width per character, in the chart's units.
const CHAR_W: f64 = 6.0;

/// Where an outlined bar's label goes: after the bar where it fits, else before
/// it, else over the bar from its start, cut to what fits before the right edge. A
/// transaction's long label is cut short (its tooltip and the tables say it all).
/// (x, text-anchor, label).
fn mark_label(label: &str, x0: f64, x1: f64) -> (f64, &'static str, String) {
    let label = one_line(label, LABEL_CHARS);
    let width = label.chars().count() as f64 * CHAR_W;
    if x1 + 3.0 + width <= W - RIGHT {
        return (x1 + 3.0, "start", label);
    }
    if x0 - 3.0 - width >= LEFT {
        return (x0 - 3.0, "end", label);
    }
    let x = (x0 + 3.0).max(LEFT);
    let fits = ((W - RIGHT - x) / CHAR_W).max(1.0) as usize;
    (x, "start", one_line(&label, fits))
}

/// The ops overlapping a window as bars on their lanes, anomaly ops outlined; each bar
/// has an id (`op-<index>`) the anomaly tables link to.
pub fn closeup(
    ops: &[Bar],
    lanes: &[u32],
    index_to_pos: &dyn Fn(u64) -> usize,
    window: (u64, u64),
    periods: &[FaultPeriod],
    marked: &BTreeSet<u64>,
) -> Markup {
    let axis = TimeAxis {
        a: window.0,
        b: window.1.max(window.0 + 1),
    };
    let mut used: Vec<u32> = ops.iter().map(|o| lanes[index_to_pos(o.index())]).collect();
    used.sort_unstable();
    used.dedup();
    let row = |lane: u32| used.binary_search(&lane).unwrap_or(0) as f64;
    let (top, lane_h) = (10.0, 14.0);
    let h = used.len() as f64 * lane_h;
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {}", top + h + 30.0)) role="img" aria-label="ops around the first anomaly" {
            (shading(axis, periods, top, h))
            @for (i, lane) in used.iter().enumerate() {
                text x=(LEFT - 6.0) y=(top + i as f64 * lane_h + 10.0) text-anchor="end" class="tick" { "lane " (lane) }
            }
            @for o in ops {
                @let x0 = axis.x(o.invoke_ns());
                @let x1 = axis.x(o.complete_ns().unwrap_or(window.1)).max(x0 + 2.0);
                @let yy = top + row(lanes[index_to_pos(o.index())]) * lane_h + 2.0;
                @let hit = marked.contains(&o.index());
                rect id=(format!("op-{}", o.index())) x=(x0) y=(yy) width=(x1 - x0) height=(lane_h - 4.0)
                    fill=(outcome_colour(o.outcome())) stroke=(if hit { "#000" } else { "none" })
                    stroke-width=(if hit { "2.5" } else { "0" }) {
                    title { (op_title(o)) }
                }
                @if hit {
                    @let (x, anchor, label) = mark_label(&o.op_ref().label(), x0, x1);
                    text x=(x) y=(yy + 9.0) text-anchor=(anchor) class="tick mark" { (label) }
                }
            }
            (x_axis(axis, top + h))
        }
    }
}

/// Colours for message types, told apart from one another on a white page: a
/// diagram gives each of its types the next one, in the order of its legend.
const PALETTE: [&str; 12] = [
    "#3949ab", "#00897b", "#6d4c41", "#7cb342", "#8e24aa", "#e53935", "#f9a825", "#1e88e5",
    "#d81b60", "#546e7a", "#fb8c00", "#00acc1",
];

/// The dash patterns that tell apart types sharing a colour, once a diagram has
/// more types than [`PALETTE`] has colours.
const DASHES: [&str; 3] = ["", "6 3", "2 2"];

/// How the `i`-th message type of a diagram is drawn: its colour and dash pattern.
fn message_style(i: usize) -> (&'static str, &'static str) {
    (
        PALETTE[i % PALETTE.len()],
        DASHES[(i / PALETTE.len()) % DASHES.len()],
    )
}

/// The width a legend entry takes: its swatch, its name and a gap.
fn legend_width(kind: &str) -> f64 {
    30.0 + kind.chars().count() as f64 * 6.5
}

/// The legend's entries laid out in rows that fit `width`: (x, row) per entry, and
/// the number of rows.
fn legend_layout(kinds: &[&str], width: f64) -> (Vec<(f64, usize)>, usize) {
    let (mut x, mut row) = (10.0, 0);
    let mut at = Vec::with_capacity(kinds.len());
    for k in kinds {
        let w = legend_width(k);
        if x + w > width - 10.0 && x > 10.0 {
            x = 10.0;
            row += 1;
        }
        at.push((x, row));
        x += w;
    }
    (at, if kinds.is_empty() { 0 } else { row + 1 })
}

/// A row of the message diagram.
#[derive(Clone, Copy)]
enum Ev {
    Send(usize),
    Deliver(usize),
    Drop(usize),
    OpStart(usize),
    OpEnd(usize),
}

/// The diagram's rows in the order they happened, as (time, order of insertion,
/// event): a delivery is after its send, by the delay the proxy added plus a token
/// transit time; and the first anomaly's ops that fall in the window.
fn lamport_events<'a>(
    messages: &[TracedMessage],
    anomaly: &'a [checker::OpRef],
    t0: u64,
    t1: u64,
) -> (Vec<(u64, usize, Ev)>, Vec<&'a checker::OpRef>) {
    let mut events: Vec<(u64, usize, Ev)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        events.push((m.time_ns, events.len(), Ev::Send(i)));
        if m.fate == "dropped" || m.delay_ms.is_empty() {
            events.push((m.time_ns + 1, events.len(), Ev::Drop(i)));
        }
        for d in &m.delay_ms {
            events.push((
                m.time_ns + (d * 1e6) as u64 + 20_000,
                events.len(),
                Ev::Deliver(i),
            ));
        }
    }
    let ops: Vec<&checker::OpRef> = anomaly
        .iter()
        .filter(|o| {
            // The trace starts a little before the first anomaly's ops, which may all
            // end before the next message (a node that decides alone sends none).
            o.node.is_some()
                && o.invoke_ns <= t1
                && o.complete_ns.unwrap_or(u64::MAX).saturating_add(5_000_000) >= t0
        })
        .collect();
    for (i, o) in ops.iter().enumerate() {
        events.push((o.invoke_ns, events.len(), Ev::OpStart(i)));
        events.push((
            o.complete_ns.unwrap_or(t1).min(t1),
            events.len(),
            Ev::OpEnd(i),
        ));
    }
    events.sort_by_key(|(t, order, _)| (*t, *order));
    (events, ops)
}

/// A space-time (Lamport) diagram: one vertical line per node, events downwards in the
/// order they happened (one row per event, so near-simultaneous messages stay
/// readable), an arrow per message from its send to its delivery (a dropped message
/// ends in a cross), and the first anomaly's ops as boxes on the node that served them.
pub fn lamport(messages: &[TracedMessage], nodes: u32, anomaly: &[checker::OpRef]) -> Markup {
    let Some(first) = messages.first() else {
        return html! { p { "No traced messages in this window." } };
    };
    let t0 = first.time_ns;
    let t1 = messages.last().map_or(t0 + 1, |m| m.time_ns).max(t0 + 1);
    let (events, ops) = lamport_events(messages, anomaly, t0, t1);
    const ROW: f64 = 13.0;
    let top = 30.0;
    let mut send_y = vec![0.0; messages.len()];
    let mut op_y = vec![(0.0, 0.0); ops.len()];
    let mut arrows: Vec<(usize, f64, Option<f64>)> = Vec::new();
    let mut times: Vec<(f64, u64)> = Vec::new();
    for (row, (t, _, ev)) in events.iter().enumerate() {
        let y = top + row as f64 * ROW;
        if row % 10 == 0 {
            times.push((y, *t));
        }
        match *ev {
            Ev::Send(i) => send_y[i] = y,
            Ev::Deliver(i) => arrows.push((i, send_y[i], Some(y))),
            Ev::Drop(i) => arrows.push((i, send_y[i], None)),
            Ev::OpStart(i) => op_y[i].0 = y,
            Ev::OpEnd(i) => op_y[i].1 = y,
        }
    }
    let h = events.len() as f64 * ROW;
    let col = |n: u32| 140.0 + (f64::from(n) - 1.0) * (W - 220.0) / f64::from(nodes.max(2) - 1);
    let mut kinds: Vec<&str> = messages.iter().map(|m| m.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let style = |kind: &str| message_style(kinds.binary_search(&kind).unwrap_or(0));
    let (legend, legend_rows) = legend_layout(&kinds, W);
    let legend_top = top + h + 16.0;
    html! {
        svg class="chart lamport" viewBox=(format!("0 0 {W} {}", legend_top + legend_rows as f64 * 16.0 + 8.0)) role="img" aria-label="message diagram" {
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" fill="#555" {}
                }
            }
            @for (y, t) in &times {
                text x="4" y=(y + 4.0) class="tick" { (fmt_ms(*t)) }
            }
            @for n in 1..=nodes {
                line x1=(col(n)) x2=(col(n)) y1=(top - 10.0) y2=(top + h + 5.0) stroke="#333" stroke-width="1.5" {}
                text x=(col(n)) y=(top - 14.0) text-anchor="middle" class="node-label" { "n" (n) }
            }
            @for (o, (y0, y1)) in ops.iter().zip(&op_y) {
                @let cx = col(o.node.unwrap_or(1));
                rect x=(cx - 6.0) y=(y0 - 4.0) width="12" height=((y1 - y0).max(8.0)) fill="#000" fill-opacity="0.2" stroke="#000" {
                    title { (o.describe()) }
                }
                @let right = cx > W - 250.0;
                text x=(if right { cx - 9.0 } else { cx + 9.0 }) y=(y0 + 4.0) text-anchor=(if right { "end" } else { "start" }) class="tick mark" { (o.label()) }
            }
            @for (i, y0, end) in &arrows {
                @let m = &messages[*i];
                @let x0 = col(m.from);
                @let (x1, y1) = match end { Some(y) => (col(m.to), *y), None => ((x0 + col(m.to)) / 2.0, y0 + ROW / 2.0) };
                @let (colour, dash) = style(&m.kind);
                line x1=(x0) y1=(y0) x2=(x1) y2=(y1) stroke=(colour) stroke-width="1.2" stroke-dasharray=(dash)
                    marker-end=(if end.is_some() { "url(#arrow)" } else { "" }) {
                    title { (m.kind) " n" (m.from) " → n" (m.to) " sent at " (fmt_ms(m.time_ns)) ": " (m.fate) }
                }
                @if end.is_none() {
                    text x=(x1) y=(y1 + 4.0) text-anchor="middle" class="drop" { "×" }
                } @else {
                    text x=(x0 + (x1 - x0) * 0.12) y=(y0 + (y1 - y0) * 0.12 - 2.0) class="tick msg" { (m.kind) }
                }
            }
            g class="legend" {
                @for (i, (k, (x, row))) in kinds.iter().zip(&legend).enumerate() {
                    @let (colour, dash) = message_style(i);
                    @let y = legend_top + *row as f64 * 16.0;
                    line x1=(x) x2=(x + 16.0) y1=(y + 6.0) y2=(y + 6.0) stroke=(colour) stroke-width="3" stroke-dasharray=(dash) {}
                    text x=(x + 20.0) y=(y + 10.0) class="tick" { (k) }
                }
            }
        }
        p class="caption" {
            (messages.len()) " messages sent from " (fmt_ms(t0)) " to " (fmt_ms(t1)) ". One row per event, in the order they happened (times at the left). "
            "An arrow runs from send to delivery; a cross marks a dropped message. Grey boxes: the first anomaly's ops on the node that served them."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The integer path writes what formatting the float writes, ties and
    /// boundaries included.
    #[test]
    fn milliseconds_are_written_as_the_float_would_be() {
        let float = |ns: u64| format!("{:.3}", ns as f64 / 1e6);
        // splitmix64: spread-out values without a random crate.
        let mut state = 7u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut cases: Vec<u64> = vec![0, 1, 499, 500, 501, 999, 1_000, 1_499, 1_500, 1_501];
        for base in [999_000, 1_234_000, 30_000_000_000, 999_999_999_999_999_000] {
            cases.extend((0..1_000).map(|d| base + d));
        }
        cases.extend((0..200_000).map(|_| next() % 2_000_000_000_000));
        cases.extend((0..20_000).map(|_| next() >> 4));
        for ns in cases {
            let mut ours = String::new();
            write_ms(&mut ours, ns);
            assert_eq!(ours, float(ns), "{ns} ns");
        }
    }

    #[test]
    fn a_close_up_label_is_cut_to_its_length_on_a_character_boundary() {
        assert_eq!(one_line("#12 read k0 → 4", 60), "#12 read k0 → 4");
        let long = "#7 txn k0.1 append k0.1 1000000001; r k2.1 → ".repeat(4);
        let short = one_line(&long, LABEL_CHARS);
        assert_eq!(short.chars().count(), LABEL_CHARS);
        assert!(short.ends_with('…') && long.starts_with(short.trim_end_matches('…')));
        assert_eq!(one_line("→→→→", 3), "→→…");
    }

    #[test]
    fn an_outlined_bars_label_stays_inside_the_chart() {
        let label = "#7 txn k0.1 append k0.1 1000000001; r k2.1 → k2.1 [1,2,3]";
        for (x0, x1) in [
            (100.0, 200.0),
            (700.0, 980.0),
            (80.0, 985.0),
            (990.0, 990.0),
        ] {
            let (x, anchor, text) = mark_label(label, x0, x1);
            let width = text.chars().count() as f64 * CHAR_W;
            let (from, to) = match anchor {
                "end" => (x - width, x),
                _ => (x, x + width),
            };
            assert!(
                from >= LEFT && to <= W - RIGHT,
                "{x0}-{x1}: {from}-{to} {text}"
            );
            assert!(!text.is_empty());
        }
        // A short bar far from the edges has its whole label after it.
        assert_eq!(
            mark_label(label, 100.0, 200.0),
            (203.0, "start", label.to_string())
        );
    }

    #[test]
    fn the_legend_wraps_inside_the_chart_and_every_type_has_its_own_style() {
        let kinds: Vec<String> = (0..30).map(|i| format!("message-type-{i}")).collect();
        let kinds: Vec<&str> = kinds.iter().map(String::as_str).collect();
        let (at, rows) = legend_layout(&kinds, W);
        assert!(rows > 1);
        for (k, (x, _)) in kinds.iter().zip(&at) {
            assert!(*x >= 10.0 && x + legend_width(k) <= W, "{k} at {x}");
        }
        let styles: std::collections::BTreeSet<_> = (0..30).map(message_style).collect();
        assert_eq!(
            styles.len(),
            30,
            "a style repeats only beyond the palette times the dashes"
        );
    }
}
