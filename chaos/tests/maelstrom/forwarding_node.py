#!/usr/bin/env python3
"""A Maelstrom lin-kv node for the harness's tests, written in the idiom of
Maelstrom's Raft tutorials: the first node in node_ids is the primary and keeps the
map; every other node forwards a client's request to it unchanged (src still the
client), and the primary answers the client directly. Linearizable while the
primary runs (no kills in its tests). Standard library only."""

import json
import sys

node_id = None
primary = None
kv = {}


def emit(src, dest, body):
    sys.stdout.write(json.dumps({"src": src, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    kind = body.get("type")
    if kind == "init":
        node_id = body["node_id"]
        primary = body["node_ids"][0]
        emit(node_id, msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
    elif kind in ("read", "write", "cas") and node_id != primary:
        # Forwarded as it came: the primary answers msg["src"], the client.
        emit(msg["src"], primary, body)
    elif kind in ("read", "write", "cas"):
        key = str(body["key"])
        reply = {"in_reply_to": body["msg_id"]}
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
        emit(node_id, msg["src"], reply)
