// The zoomable timeline of every op. The data is columnar (see timeline_json in
// report.rs); times are microseconds. Lanes never hold overlapping ops, so each
// lane's ops are sorted by start and by end, and a binary search finds the visible
// ones.
(function () {
  "use strict";
  document.documentElement.classList.add("has-js");
  var el = document.getElementById("tl-data");
  if (!el) { document.body.dataset.ready = "1"; return; }
  var d = JSON.parse(el.textContent);
  var n = d.t0.length;
  var canvas = document.getElementById("tl-canvas");
  var tip = document.getElementById("tl-tip");
  var range = document.getElementById("tl-range");
  var ctx = canvas.getContext("2d");
  var LANE = 12, TOP = 22, LEFT = 56, NODE_ROWS = d.nodes;
  var F = ["propose", "read", "write", "cas", "txn"], OUT = ["ok", "fail", "info"];
  var COL = ["#2e7d32", "#9e9e9e", "#ef6c00"];
  var FAULT = { partition: "rgba(244,180,0,0.16)", links: "rgba(66,133,244,0.14)", kill: "#db4437", pause: "#9c27b0", clock: "#00897b", corrupt: "#795548" };
  var marked = {};
  d.marked.forEach(function (i) { marked[i] = true; });
  var end = function (i) { return d.t1[i] < 0 ? d.end : d.t1[i]; };
  // Per lane, op positions in start order.
  var lanes = d.lanes.map(function () { return []; });
  for (var i = 0; i < n; i++) lanes[d.lane[i]].push(i);
  var byIndex = {};
  for (var j = 0; j < n; j++) byIndex[d.i[j]] = j;
  var t0 = n ? d.t0[0] : 0, view = [t0, Math.max(d.end, t0 + 1)];
  var rows = NODE_ROWS + lanes.length;
  var dpr = window.devicePixelRatio || 1;

  function size() {
    var w = canvas.parentNode.clientWidth || 1000;
    var h = TOP + rows * LANE + 8;
    canvas.style.height = h + "px";
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return w;
  }
  var width = size();
  function x(t) { return LEFT + (t - view[0]) / (view[1] - view[0]) * (width - LEFT - 4); }
  function tAt(px) { return view[0] + (px - LEFT) / (width - LEFT - 4) * (view[1] - view[0]); }
  function fmt(us) { return (us / 1000).toFixed(3) + " ms"; }
  function firstVisible(list, from) {
    var lo = 0, hi = list.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (end(list[mid]) < from) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function ticks() {
    var span = view[1] - view[0], raw = span / 8, steps = [1, 2, 5];
    var step = 1;
    for (var e = 0; e < 12 && step < raw; e++) {
      for (var s = 0; s < 3 && step < raw; s++) step = steps[s] * Math.pow(10, e);
    }
    var out = [];
    for (var t = Math.ceil(view[0] / step) * step; t <= view[1]; t += step) out.push(t);
    return out;
  }
  function draw() {
    var h = TOP + rows * LANE + 8;
    ctx.clearRect(0, 0, width, h);
    ctx.font = "10px sans-serif";
    ctx.fillStyle = "#555";
    ticks().forEach(function (t) {
      var px = x(t);
      ctx.fillRect(px, TOP - 4, 1, 4);
      ctx.fillText((t / 1e6).toFixed(t % 1e6 === 0 ? 0 : 3) + " s", px + 2, TOP - 8);
    });
    d.faults.forEach(function (f) {
      if (f[2] < view[0] || f[1] > view[1]) return;
      var a = Math.max(x(f[1]), LEFT), b = Math.max(x(f[2]), a + 1);
      if (f[0] === "partition" || f[0] === "links") {
        ctx.fillStyle = FAULT[f[0]];
        ctx.fillRect(a, TOP, b - a, rows * LANE);
      } else {
        ctx.fillStyle = FAULT[f[0]] || "#999";
        f[3].forEach(function (node) { ctx.fillRect(a, TOP + (node - 1) * LANE + 2, b - a, LANE - 4); });
      }
    });
    ctx.fillStyle = "#333";
    for (var nd = 1; nd <= NODE_ROWS; nd++) ctx.fillText("n" + nd, 4, TOP + (nd - 1) * LANE + 10);
    ctx.fillStyle = "#ccc";
    ctx.fillRect(LEFT, TOP + NODE_ROWS * LANE - 1, width - LEFT, 1);
    var outlined = [];
    for (var l = 0; l < lanes.length; l++) {
      var y = TOP + (NODE_ROWS + l) * LANE;
      if (lanes.length < 60 || l % 5 === 0) { ctx.fillStyle = "#777"; ctx.fillText("lane " + l, 4, y + 10); }
      var list = lanes[l];
      for (var k = firstVisible(list, view[0]); k < list.length; k++) {
        var o = list[k];
        if (d.t0[o] > view[1]) break;
        var a = Math.max(x(d.t0[o]), LEFT), b = Math.max(x(end(o)), a + 1);
        ctx.fillStyle = COL[d.c[o]];
        ctx.fillRect(a, y + 2, b - a, LANE - 4);
        if (marked[d.i[o]]) outlined.push([a, y, b]);
      }
    }
    ctx.strokeStyle = "#000";
    ctx.lineWidth = 2;
    outlined.forEach(function (m) { ctx.strokeRect(m[0] - 1, m[1] + 1, m[2] - m[0] + 2, LANE - 2); });
    range.textContent = fmt(view[0]) + " to " + fmt(view[1]);
  }
  var pending = false;
  function requestDraw() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () { pending = false; draw(); });
  }
  function zoom(factor, at) {
    var t = at === undefined ? (view[0] + view[1]) / 2 : at;
    var a = t - (t - view[0]) * factor, b = t + (view[1] - t) * factor;
    if (b - a < 10) return;
    view = [Math.max(a, t0 - (d.end - t0)), Math.min(b, d.end + (d.end - t0))];
    requestDraw();
  }
  function show(a, b) { view = [a, Math.max(b, a + 10)]; draw(); }
  document.getElementById("tl-controls").addEventListener("click", function (e) {
    var z = e.target.getAttribute("data-zoom");
    if (z === "all") show(t0, Math.max(d.end, t0 + 1));
    else if (z === "focus") show(d.focus[0], d.focus[1]);
    else if (z === "in") zoom(0.5);
    else if (z === "out") zoom(2);
  });
  canvas.addEventListener("wheel", function (e) {
    e.preventDefault();
    var r = canvas.getBoundingClientRect();
    zoom(e.deltaY > 0 ? 1.25 : 0.8, tAt(e.clientX - r.left));
  }, { passive: false });
  var drag = null;
  canvas.addEventListener("mousedown", function (e) { drag = [e.clientX, view[0], view[1]]; canvas.style.cursor = "grabbing"; });
  window.addEventListener("mouseup", function () { drag = null; canvas.style.cursor = "grab"; });
  function opAt(px, py) {
    var row = Math.floor((py - TOP) / LANE);
    var t = tAt(px), slack = (view[1] - view[0]) / width * 3;
    if (row < 0) return null;
    if (row < NODE_ROWS) {
      for (var q = 0; q < d.faults.length; q++) {
        var f = d.faults[q];
        if (f[3].indexOf(row + 1) >= 0 && t >= f[1] - slack && t <= f[2] + slack) {
          return f[0] + " " + JSON.stringify(f[3]) + "\n" + f[4] + "\n" + fmt(f[1]) + " to " + fmt(f[2]);
        }
      }
      return null;
    }
    var list = lanes[row - NODE_ROWS];
    if (!list) return null;
    for (var k = firstVisible(list, t - slack); k < list.length && d.t0[list[k]] <= t + slack; k++) {
      var o = list[k];
      var res = d.r[o] !== "" ? " -> " + d.r[o] : "";
      return "#" + d.i[o] + " p" + d.p[o] + (d.n[o] ? " via n" + d.n[o] : "") + "\n" +
        F[d.f[o]] + " " + d.keys[d.k[o]] + " " + d.v[o] + res + "\n" + OUT[d.c[o]] +
        (marked[d.i[o]] ? "  (in an anomaly)" : "") + "\n" + fmt(d.t0[o]) + " to " +
        (d.t1[o] < 0 ? "never" : fmt(d.t1[o]) + " (" + ((d.t1[o] - d.t0[o]) / 1000).toFixed(3) + " ms)");
    }
    return null;
  }
  canvas.addEventListener("mousemove", function (e) {
    var r = canvas.getBoundingClientRect(), px = e.clientX - r.left, py = e.clientY - r.top;
    if (drag) {
      var dt = (e.clientX - drag[0]) / (width - LEFT) * (drag[2] - drag[1]);
      view = [drag[1] - dt, drag[2] - dt];
      requestDraw();
      return;
    }
    var text = opAt(px, py);
    if (!text) { tip.hidden = true; return; }
    tip.textContent = text;
    tip.hidden = false;
    tip.style.left = Math.min(px + 14, width - 260) + "px";
    tip.style.top = (py + 14 + canvas.parentNode.scrollTop) + "px";
  });
  canvas.addEventListener("mouseleave", function () { tip.hidden = true; });
  // A witness op link zooms the timeline to that op as well as scrolling the close-up.
  document.addEventListener("click", function (e) {
    var a = e.target.closest ? e.target.closest("a[data-op]") : null;
    if (!a) return;
    var o = byIndex[a.getAttribute("data-op")];
    if (o === undefined) return;
    var span = Math.max(end(o) - d.t0[o], 1000);
    show(d.t0[o] - span * 3, end(o) + span * 3);
  });
  window.addEventListener("resize", function () { width = size(); requestDraw(); });
  // The whole run is the most expensive view: time one draw of it, for the benchmark.
  var started = performance.now();
  draw();
  document.body.dataset.drawMs = (performance.now() - started).toFixed(1);
  if (d.marked.length) show(d.focus[0], d.focus[1]);
  document.body.dataset.ready = "1";
})();
