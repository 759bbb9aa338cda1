#!/usr/bin/env python3
"""Whole-process speed of the 5-node default simulation, seeds 1-5, best of 2:

    python3 chaos/benches/sim_speed.py target/release/chaos
"""
import subprocess, time, re, statistics, sys, tempfile
BIN=sys.argv[1] if len(sys.argv) > 1 else "target/release/chaos"
RESULTS=tempfile.mkdtemp()
res=[]
for s in range(1,6):
    best=None
    for k in range(2):
        t0=time.time()
        out=subprocess.run([BIN,"sim","--seed",str(s),"--nodes","5","--results",RESULTS],capture_output=True,text=True).stdout
        dt=time.time()-t0
        best=dt if best is None else min(best,dt)
    faults=re.search(r"faults: (\d+) took effect",out).group(1)
    virt=float(re.search(r"simulated: ([\d.]+) virtual s",out).group(1))
    res.append(virt/best)
    print(f"seed {s}: {best:.2f} s, {virt/best:.0f}x, {faults} faults")
print("median", statistics.median(res))
