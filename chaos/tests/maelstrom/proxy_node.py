#!/usr/bin/env python3
"""A Maelstrom lin-kv node for the harness's tests: it keeps no state and proxies
every read, write and cas to a key-value service (the first argument: lin-kv,
seq-kv or lww-kv; default lin-kv), relaying the service's answer, errors included.
Over lin-kv it is linearizable; over seq-kv or lww-kv it serves stale reads.
Standard library only."""

import json
import sys

service = sys.argv[1] if len(sys.argv) > 1 else "lin-kv"
node_id = None
next_id = 0
# Our msg_id to the service -> (client, the client's msg_id).
waiting = {}


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    kind = body.get("type")
    if kind == "init":
        node_id = body["node_id"]
        send(msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
    elif kind in ("read", "write", "cas"):
        next_id += 1
        forward = {k: v for k, v in body.items() if k != "msg_id"}
        forward["msg_id"] = next_id
        waiting[next_id] = (msg["src"], body["msg_id"])
        send(service, forward)
    elif "in_reply_to" in body and body["in_reply_to"] in waiting:
        client, their_id = waiting.pop(body["in_reply_to"])
        answer = dict(body)
        answer["in_reply_to"] = their_id
        send(client, answer)
    else:
        print("ignoring %s" % line.strip(), file=sys.stderr)
