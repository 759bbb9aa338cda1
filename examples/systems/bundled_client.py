#!/usr/bin/env python3
"""A client of the bundled node for chaos (docs/clients.md): ops as JSON lines on
stdin, replies on stdout; the node's own JSON-lines protocol over TCP behind them."""
import json, socket, sys

host, port = sys.argv[1].rsplit(":", 1)
node = None
for line in sys.stdin:
    op = json.loads(line)
    if op["f"] == "txn":
        req = {"id": op["id"], "op": "txn", "txn": op["value"]}
    else:
        req = {"id": op["id"], "op": op["f"], "key": op["key"]}
    if op["f"] == "cas":
        req["from"], req["to"] = op["value"]
    elif op["f"] in ("write", "propose"):
        req["value"] = op["value"]
    try:
        if node is None:
            node = socket.create_connection((host, int(port)), timeout=2).makefile("rw")
    except OSError as e:  # nothing was sent: the op certainly did not happen
        reply = {"id": op["id"], "type": "fail", "error": "connect: %s" % e}
    else:
        try:
            node.write(json.dumps(req) + "\n")
            node.flush()
            got = json.loads(node.readline())
            kind = "ok" if got.get("ok") else "fail" if got.get("definite") else "info"
            value = got.get("txn") if op["f"] == "txn" else got.get("value")
            reply = {"id": op["id"], "type": kind, "value": value, "error": got.get("error")}
        except (OSError, ValueError) as e:  # sent, no answer: it may have happened
            node = None
            reply = {"id": op["id"], "type": "info", "error": "connection-broken: %s" % e}
    print(json.dumps(reply), flush=True)
