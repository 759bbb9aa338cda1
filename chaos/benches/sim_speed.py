#!/usr/bin/env python3
"""Whole-process speed of the 5-node default simulation, seeds 1-5, best of 2:

    python3 chaos/benches/sim_speed.py target/release/chaos

With several builds, side by side: each seed run by each build in turn, best of 4,
so that the machine's drift over the minutes falls on every build alike:

    python3 chaos/benches/sim_speed.py OLD_BUILD NEW_BUILD
"""
import re, statistics, subprocess, sys, tempfile, time

BINS = sys.argv[1:] or ["target/release/chaos"]
TRIES = 2 if len(BINS) == 1 else 4
RESULTS = {b: tempfile.mkdtemp() for b in BINS}
best = {b: {} for b in BINS}
virtual, faults = {}, {}
for _ in range(TRIES):
    for s in range(1, 6):
        for b in BINS:
            t0 = time.time()
            out = subprocess.run([b, "sim", "--seed", str(s), "--nodes", "5",
                                  "--results", RESULTS[b]],
                                 capture_output=True, text=True).stdout
            dt = time.time() - t0
            best[b][s] = min(best[b].get(s, dt), dt)
            faults[s] = re.search(r"faults: (\d+) took effect", out).group(1)
            virtual[s] = float(re.search(r"simulated: ([\d.]+) virtual s", out).group(1))
for b in BINS:
    if len(BINS) > 1:
        print(b)
    for s in range(1, 6):
        print(f"seed {s}: {best[b][s]:.2f} s, {virtual[s] / best[b][s]:.0f}x, {faults[s]} faults")
    print("median", statistics.median(virtual[s] / best[b][s] for s in range(1, 6)))
