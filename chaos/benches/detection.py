#!/usr/bin/env python3
"""Time to first detection of each bug, four ways: plain seeds (chaos sim
--seeds), swarm seeds (--swarm), the coverage-guided search (chaos explore) and
the search over swarm plans (chaos explore --swarm),
each from several search seeds, with a wall-clock cap per search. Prints one
JSON line per search and a Markdown table of medians (BENCHMARKS.md).

    python3 chaos/benches/detection.py [--chaos target/release/chaos] [--cap 30]
    python3 chaos/benches/detection.py --workload list-append   # the transaction bugs
"""
import argparse, json, re, statistics, subprocess, sys, tempfile, time

BUGS = [("--bug=" + b) for b in [
    "forget-promises", "accept-lower-ballot", "ignore-accepted", "minority-quorum",
    "stale-read", "early-ack", "unsynced-reply", "unsynced-snapshot"]] + [
    ("--mistake=" + m) for m in [
    "lowest-promise-wins", "snapshot-skips-next", "restart-drops-promise"]]
# The bugs only a transaction workload shows (--workload list-append or rw-register).
TXN_BUGS = ["--bug=split-txn", "--bug=txn-local-read"]
MODES = ["plain", "swarm", "explore", "explore-swarm"]
PLAN = ["--nodes", "3", "--time-limit", "5", "--jobs", "2", "--no-progress"]


def search(chaos, mode, bug, start, cap, results, plan):
    """(found, wall seconds to the first failure or the cap, runs, faults/run)."""
    base = [chaos]
    if mode.startswith("explore"):
        cmd = base + ["explore", "--seed", str(start), "--time", str(cap)]
        if mode == "explore":
            # Fresh plans are swarm draws unless told otherwise.
            cmd.append("--no-swarm")
    else:
        # About 60 seeds/s on 2 jobs: enough seeds to outlast the cap.
        cmd = base + ["sim", "--seeds", f"{start}..{start + int(cap * 80)}"]
        if mode == "swarm":
            cmd.append("--swarm")
    cmd += plan + ["--node-arg=" + bug, "--results", results]
    t0 = time.time()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=cap * 3 + 60).stdout
    except subprocess.TimeoutExpired:
        return False, time.time() - t0, 0, 0.0
    wall = time.time() - t0
    if mode.startswith("explore"):
        m = re.search(r"^(\d+) runs in ([\d.]+) s .*?, ([\d.]+) faults per run", out, re.M)
        f = re.search(r"^failure: run (\d+) after ([\d.]+) s", out, re.M)
        runs, faults = int(m.group(1)), float(m.group(3))
        if f:
            return True, float(f.group(2)), int(f.group(1)), faults
        return False, float(m.group(2)), runs, faults
    m = re.search(r"^(\d+) of \d+ seeds run .*?, (\d+) failing, ([\d.]+) faults per seed, ([\d.]+) s", out, re.M)
    runs, failing, faults, secs = int(m.group(1)), int(m.group(2)), float(m.group(3)), float(m.group(4))
    return failing > 0, secs, runs, faults


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chaos", default="target/release/chaos")
    ap.add_argument("--cap", type=float, default=30.0)
    ap.add_argument("--searches", type=int, default=3)
    ap.add_argument("--bugs", default="")
    ap.add_argument("--workload", default="")
    args = ap.parse_args()
    txn = args.workload in ("list-append", "rw-register")
    plan = PLAN + (["--workload", args.workload] if args.workload else [])
    bugs = [b for b in (TXN_BUGS if txn else BUGS)
            if not args.bugs or any(x in b for x in args.bugs.split(","))]
    rows = []
    with tempfile.TemporaryDirectory() as results:
        for bug in bugs:
            row = {"bug": bug}
            for mode in MODES:
                found = []
                for k in range(args.searches):
                    start = k + 1 if mode.startswith("explore") else 1 + 100_000 * k
                    ok, secs, runs, faults = search(args.chaos, mode, bug, start, args.cap, results, plan)
                    rec = {"bug": bug, "mode": mode, "start": start, "found": ok,
                           "secs": round(secs, 2), "runs": runs, "faults_per_run": faults}
                    print(json.dumps(rec), flush=True)
                    found.append(rec)
                row[mode] = found
            rows.append(row)
    print()
    print(f"| bug | " + " | ".join(MODES) + f" |  (median s to first failure [runs]; {args.searches} searches; cap {args.cap:.0f} s)")
    print("|---|" + "---|" * len(MODES))
    for row in rows:
        cells = []
        for mode in MODES:
            rs = row[mode]
            hits = [r for r in rs if r["found"]]
            if 2 * len(hits) < len(rs):
                # Most searches hit the cap: there is no median time to report.
                cells.append(f"missed by {len(rs) - len(hits)} of {len(rs)}")
                continue
            # Misses count as the cap: the median of what the searches took.
            secs = statistics.median(r["secs"] if r["found"] else float("inf") for r in rs)
            runs = statistics.median(r["runs"] for r in rs)
            miss = len(rs) - len(hits)
            cells.append(f"{secs:.1f} s [{runs:.0f}]" + (f", {miss} of {len(rs)} missed" if miss else ""))
        print(f"| `{row['bug']}` | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    sys.exit(main())
