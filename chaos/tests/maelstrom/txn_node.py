#!/usr/bin/env python3
"""A Maelstrom node for the txn-list-append and txn-rw-register workloads, for the
harness's tests. The first node in node_ids is the primary and keeps the data;
every other node forwards a client's request to it unchanged (src still the
client), and the primary answers the client directly. Standard library only.

    txn_node.py serial       each transaction applied whole, one at a time:
                             strict serializable while the primary runs
    txn_node.py interleave   transactions applied one micro-op at a time, a step
                             of every transaction in progress per message the
                             primary takes in: no isolation
"""

import json
import sys

mode = sys.argv[1] if len(sys.argv) > 1 else "serial"
node_id = None
primary = None
data = {}
# Interleave mode: transactions in progress: [client, msg_id, micro-ops, done so far].
in_progress = []


def emit(src, dest, body):
    sys.stdout.write(json.dumps({"src": src, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def apply(mop):
    f, key, value = mop
    key = str(key)
    if f == "r":
        current = data.get(key)
        return [f, mop[1], list(current) if isinstance(current, list) else current]
    if f == "w":
        data[key] = value
    else:
        data.setdefault(key, [])
        data[key].append(value)
    return mop


def finish(client, msg_id, done):
    emit(node_id, client, {"type": "txn_ok", "in_reply_to": msg_id, "txn": done})


def step_all():
    """One micro-op of every transaction in progress; replies to those done."""
    for t in list(in_progress):
        client, msg_id, mops, done = t
        done.append(apply(mops[len(done)]))
        if len(done) == len(mops):
            in_progress.remove(t)
            finish(client, msg_id, done)


for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    kind = body.get("type")
    if kind == "init":
        node_id = body["node_id"]
        primary = body["node_ids"][0]
        emit(node_id, msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
    elif kind == "txn" and node_id != primary:
        # Forwarded as it came: the primary answers msg["src"], the client.
        emit(msg["src"], primary, body)
    elif kind == "txn" and mode == "serial":
        finish(msg["src"], body["msg_id"], [apply(m) for m in body["txn"]])
    elif kind == "txn":
        step_all()
        in_progress.append([msg["src"], body["msg_id"], body["txn"], []])
    else:
        emit(node_id, msg["src"], {
            "type": "error", "in_reply_to": body.get("msg_id"), "code": 10,
            "text": "this node serves txn only"})
