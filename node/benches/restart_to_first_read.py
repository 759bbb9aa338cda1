"""Restart to first served read (BENCHMARKS.md, "Clients served through elections").

Starts three paxos-node processes on loopback, writes through node 1, SIGKILLs node 3,
starts it again on its data directory and sends reads to it in a loop until one is
served; prints, per trial, the time from the restart to that read and how many
`unavailable` answers came before it. Extra arguments go to every node, e.g.
`--leader-wait-ms 0`.

    cargo build --release --bin paxos-node
    python3 node/benches/restart_to_first_read.py [NODE ARGS]
"""
import subprocess, socket, json, time, sys, os, shutil, signal, tempfile
BIN=os.environ.get("PAXOS_NODE", os.path.join(os.path.dirname(__file__), "../../target/release/paxos-node"))
extra=sys.argv[1:]
base=7400
DATA=tempfile.mkdtemp(prefix="restart-read-")
def start(i):
    peers=[f"--peer={j}=127.0.0.1:{base+j}" for j in (1,2,3) if j!=i]
    p=subprocess.Popen([BIN,"--id",str(i),"--listen",f"127.0.0.1:{base+i}","--data-dir",f"{DATA}/n{i}",*peers,*extra],stdout=subprocess.PIPE,stderr=subprocess.DEVNULL)
    p.stdout.readline()  # ready
    return p
def ask(i, op, timeout=5):
    s=socket.create_connection(("127.0.0.1",base+i),timeout=timeout)
    s.sendall((json.dumps(op)+"\n").encode())
    f=s.makefile()
    r=json.loads(f.readline()); s.close(); return r
results=[]
for trial in range(5):
    for i in (1,2,3): shutil.rmtree(f"{DATA}/n{i}",ignore_errors=True)
    ps={i:start(i) for i in (1,2,3)}
    # wait for a leader: a write through node 1 succeeds
    t=time.time()
    while True:
        r=ask(1,{"id":1,"op":"write","key":"k","value":trial})
        if "error" not in r: break
        time.sleep(0.01)
    time.sleep(0.3)
    ps[3].send_signal(signal.SIGKILL); ps[3].wait()
    t0=time.monotonic()
    ps[3]=start(3)
    fails=0
    while True:
        r=ask(3,{"id":2,"op":"read","key":"k"})
        if "error" not in r: break
        fails+=1
    dt=time.monotonic()-t0
    results.append((dt,fails))
    for p in ps.values(): p.kill(); p.wait()
print(" ".join(f"{d*1e3:.0f}ms/{f}fails" for d,f in results))
shutil.rmtree(DATA, ignore_errors=True)
