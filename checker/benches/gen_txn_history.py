#!/usr/bin/env python3
"""A list-append history of a strict serializable store as history.jsonl (10
processes, 10 keys in use, a key retired after 32 appends, 1-4 micro-ops), for
timing `chaos check` on a file:

    python3 checker/benches/gen_txn_history.py 1000000 /tmp/h1m.jsonl
    /usr/bin/time -f "%e s, %M KB" chaos check /tmp/h1m.jsonl
"""
import json, random, sys
n = int(sys.argv[1]); out = open(sys.argv[2], "w")
random.seed(1)
C, K, MAXA = 10, 10, 32
keys = [[f"k{i}.0", []] for i in range(K)]
gen = [0]*K
free = [0]*C
clock = 0; idx = 0; val = 1
events = []
def w(ev):
    global idx
    ev["index"] = idx; idx += 1
    events.append(ev)
for t in range(n):
    p = min(range(C), key=lambda q: free[q])
    clock = max(clock + 1, free[p])
    inv = free[p]; comp = clock + random.randint(1, 3 * C); free[p] = comp + 1
    mops_i, mops_o = [], []
    for _ in range(random.randint(1, 4)):
        s = random.randrange(K); k, lst = keys[s]
        if random.random() < 0.5:
            lst.append(val); mops_i.append(["append", k, val]); mops_o.append(["append", k, val]); val += 1
        else:
            mops_i.append(["r", k, None]); mops_o.append(["r", k, list(lst)])
    events.append((inv, 0, p, mops_i)); events.append((comp, 1, p, mops_o))
    for s in range(K):
        if len(keys[s][1]) >= MAXA:
            gen[s] += 1; keys[s] = [f"k{s}.{gen[s]}", []]
    if len(events) > 200000 or t == n - 1:
        pass
events.sort(key=lambda e: (e[0], e[1]))
for i, (tm, kind, p, mops) in enumerate(events):
    out.write(json.dumps({"index": i, "time_ns": tm * 1000, "process": p, "type": "invoke" if kind == 0 else "ok", "f": "txn", "value": mops, "node": 1}, separators=(",", ":")) + "\n")
