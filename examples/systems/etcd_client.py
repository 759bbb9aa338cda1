#!/usr/bin/env python3
"""A client of etcd's v3 JSON gateway for chaos (docs/clients.md): ops on stdin,
replies on stdout. With --leader ADDR it prints the leader's node id instead (members
are named n<id>); with --version, "etcd 3.4.23". Keys are the op's key; values the integer's decimal text; both are
base64 in the gateway's JSON. A write or cas that got no answer, or any error but an
invalid argument, is info: etcd may have applied it."""
import base64, http.client, json, subprocess, sys

b64 = lambda s: base64.b64encode(str(s).encode()).decode()
unb64 = lambda s: base64.b64decode(s).decode()


def post(conn, path, body):
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = conn.getresponse()
    return r.status, json.loads(r.read() or b"{}")


def leader(addr):
    conn = http.client.HTTPConnection(addr, timeout=1)
    _, status = post(conn, "/v3/maintenance/status", {})
    _, members = post(conn, "/v3/cluster/member/list", {})
    names = {m.get("ID"): m.get("name", "") for m in members.get("members", [])}
    name = names.get(status.get("leader"), "")
    print(name[1:] if name.startswith("n") else "")


def request(op):
    key = b64(op["key"])
    if op["f"] == "read":
        return "/v3/kv/range", {"key": key}
    if op["f"] == "write":
        return "/v3/kv/put", {"key": key, "value": b64(op["value"])}
    frm, to = op["value"]
    return "/v3/kv/txn", {
        "compare": [{"key": key, "result": "EQUAL", "target": "VALUE", "value": b64(frm)}],
        "success": [{"requestPut": {"key": key, "value": b64(to)}}],
    }


def answer(op, status, body):
    if status != 200:
        error = body.get("error") or body.get("message") or "error"
        return {"type": "fail" if body.get("code") == 3 else "info", "error": error}
    if op["f"] == "read":
        kvs = body.get("kvs") or []
        return {"type": "ok", "value": int(unb64(kvs[0]["value"])) if kvs else None}
    if op["f"] == "cas" and not body.get("succeeded"):
        return {"type": "fail", "error": "precondition-failed"}
    return {"type": "ok"}


def serve(addr):
    conn = None
    for line in sys.stdin:
        op = json.loads(line)
        if op["f"] == "propose":
            reply = {"type": "fail", "error": "not-supported"}
        else:
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(addr, timeout=10)
                    conn.connect()
            except OSError as e:  # nothing was sent
                conn, reply = None, {"type": "fail", "error": "connection-refused: %s" % e}
            else:
                try:
                    reply = answer(op, *post(conn, *request(op)))
                except (OSError, ValueError, http.client.HTTPException) as e:
                    conn, reply = None, {"type": "info", "error": "connection-broken: %s" % e}
        reply["id"] = op["id"]
        print(json.dumps(reply), flush=True)


if sys.argv[1] == "--version":
    out = subprocess.run(["etcd", "--version"], capture_output=True, text=True).stdout
    print("etcd " + out.split("etcd Version:")[1].split()[0])
elif sys.argv[1] == "--leader":
    leader(sys.argv[2])
else:
    serve(sys.argv[1])
