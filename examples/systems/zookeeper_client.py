#!/usr/bin/env python3
"""A client of ZooKeeper for chaos (docs/clients.md), through kazoo: ops on stdin,
replies on stdout. A key is the znode /chaos/KEY holding the integer's text; a
register is /chaos-r/KEY, created once. With --leader SERVER-LINES it prints the id of
the server whose `srvr` says it leads; with --version, "ZooKeeper 3.8.0"."""
import glob, json, re, socket, sys


def version():
    jars = glob.glob("/usr/share/java/zookeeper-[0-9]*.jar")
    m = re.search(r"zookeeper-([0-9.]+)\.jar", jars[0]) if jars else None
    print("ZooKeeper " + (m.group(1) if m else "(version unknown)"))


def leader(lines):
    for line in lines:  # server.J=ADDR:QUORUM:ELECTION
        sid, addr = line[len("server."):].split("=")
        try:
            with socket.create_connection((addr.split(":")[0], 2181), timeout=0.5) as s:
                s.sendall(b"srvr")
                if b"Mode: leader" in s.makefile("rb").read():
                    print(sid)
                    return
        except OSError:
            pass
    print("")


def serve(hosts):
    from kazoo.client import KazooClient
    from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError

    zk = KazooClient(hosts=hosts, timeout=4)
    started = False
    for line in sys.stdin:
        op = json.loads(line)
        f, key, value = op["f"], op["key"], op.get("value")
        path = ("/chaos-r/" if f == "propose" else "/chaos/") + key
        try:
            if not started:
                zk.start(timeout=2)
                started = True
        except Exception as e:  # no session: nothing was sent
            reply = {"type": "fail", "error": "connect: %s" % type(e).__name__}
        else:
            try:
                if f == "read":
                    try:
                        reply = {"type": "ok", "value": int(zk.get(path)[0])}
                    except NoNodeError:
                        reply = {"type": "ok", "value": None}
                elif f == "write":
                    data = str(value).encode()
                    try:
                        zk.set(path, data)
                    except NoNodeError:
                        try:
                            zk.create(path, data, makepath=True)
                        except NodeExistsError:
                            zk.set(path, data)
                    reply = {"type": "ok"}
                elif f == "cas":
                    try:
                        data, stat = zk.get(path)
                        if int(data) != value[0]:
                            raise BadVersionError()
                        zk.set(path, str(value[1]).encode(), version=stat.version)
                        reply = {"type": "ok"}
                    except (NoNodeError, BadVersionError):
                        reply = {"type": "fail", "error": "precondition-failed"}
                else:  # propose: the first create wins; later ones read it
                    try:
                        zk.create(path, str(value).encode(), makepath=True)
                        reply = {"type": "ok", "value": value}
                    except NodeExistsError:
                        reply = {"type": "ok", "value": int(zk.get(path)[0])}
            except Exception as e:  # sent, no certain answer: it may have happened
                reply = {"type": "info", "error": type(e).__name__}
        reply["id"] = op["id"]
        print(json.dumps(reply), flush=True)


if sys.argv[1] == "--version":
    version()
elif sys.argv[1] == "--leader":
    leader(sys.argv[2:])
else:
    serve(sys.argv[1])
