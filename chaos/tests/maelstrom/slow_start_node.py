#!/usr/bin/env python3
"""A Maelstrom lin-kv node for the harness's tests that answers every client request
with temporarily-unavailable (code 11, definite) for its first second, as a node
still electing a leader does, then serves a map of its own. Linearizable as a single
node. Standard library only."""

import json
import sys
import time

started = time.monotonic()
node_id = None
kv = {}


def emit(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    kind = body.get("type")
    reply = {"in_reply_to": body.get("msg_id")}
    if kind == "init":
        node_id = body["node_id"]
        reply.update(type="init_ok")
    elif kind not in ("read", "write", "cas"):
        continue
    elif time.monotonic() - started < 1.0:
        reply.update(type="error", code=11, text="no leader yet")
    else:
        key = str(body["key"])
        if kind == "read":
            if key in kv:
                reply.update(type="read_ok", value=kv[key])
            else:
                reply.update(type="error", code=20, text="not found")
        elif kind == "write":
            kv[key] = body["value"]
            reply.update(type="write_ok")
        elif key not in kv:
            reply.update(type="error", code=20, text="not found")
        elif kv[key] != body["from"]:
            reply.update(type="error", code=22, text="mismatch")
        else:
            kv[key] = body["to"]
            reply.update(type="cas_ok")
    emit(msg["src"], reply)
