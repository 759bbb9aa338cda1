#!/usr/bin/env python3
"""chaos shrink on the first failing seed of each built-in bug, on the
`chaos matrix --sim` plan (3 nodes, 3 s, default sim nemesis in 0.3 s slots):
faults and ops before and after, what kept failing, candidates, wall time.
Prints a Markdown table (BENCHMARKS.md).

    python3 chaos/benches/shrinking.py [--chaos target/release/chaos] [--max-time 300]
"""
import argparse, glob, os, re, subprocess, sys, tempfile, time

BUGS = ["forget-promises", "accept-lower-ballot", "ignore-accepted", "minority-quorum",
        "stale-read", "early-ack", "unsynced-reply", "unsynced-snapshot"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chaos", default="target/release/chaos")
    ap.add_argument("--max-time", type=float, default=300.0)
    ap.add_argument("--bugs", default=",".join(BUGS))
    args = ap.parse_args()
    print("| `--bug` | seed | kept failing | faults | ops | candidates | wall |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as results:
        for bug in args.bugs.split(","):
            out = subprocess.run(
                [args.chaos, "sim", "--seeds", "1..2001", "--nodes", "3", "--time-limit", "3",
                 "--nemesis-interval", "0.3", "--workload", "both", "--jobs", "2",
                 f"--node-arg=--bug={bug}", "--results", results, "--name", bug],
                capture_output=True, text=True).stdout
            m = re.search(r"^seed (\d+): run directory (\S+)", out, re.M)
            if not m:
                print(f"| {bug} | none failed in 2,000 | | | | | |", flush=True)
                continue
            seed, run_dir = m.group(1), m.group(2)
            t0 = time.time()
            out = subprocess.run(
                [args.chaos, "shrink", run_dir, "--max-time", str(args.max_time),
                 "--results", results, "--no-progress"],
                capture_output=True, text=True).stdout
            wall = time.time() - t0
            s = re.search(r"faults (\d+) -> (\d+), ops ([\d,]+) -> ([\d,]+)", out)
            k = re.search(r"kept failing: (.*?); ([\d,]+) candidate plans tried(.*)$", out, re.M)
            if not s or not k:
                print(f"| {bug} | {seed} | shrink failed: {out.strip().splitlines()[-1:]} | | | | |", flush=True)
                continue
            ops0, ops1 = int(s.group(3).replace(",", "")), int(s.group(4).replace(",", ""))
            print(f"| {bug} | {seed} | {k.group(1)}{k.group(3)} | {s.group(1)} -> {s.group(2)} | "
                  f"{ops0:,} -> {ops1:,} ({100.0 * ops1 / ops0:.1f}%) | {k.group(2)} | {wall:.1f} s |",
                  flush=True)


if __name__ == "__main__":
    sys.exit(main())
