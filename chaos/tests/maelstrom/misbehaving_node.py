#!/usr/bin/env python3
"""A Maelstrom node for the harness's tests that breaks the protocol on purpose while
it proxies reads, writes and cas to lin-kv (so its answers stay linearizable):
- n1, at its first client request: writes a line that is not JSON, a line over 1 MiB,
  a message to a destination that does not exist, and a reply nobody asked for;
- n2: exits (status 3) at its 20th client request.
With the argument `linger`, it does none of that, and when its stdin ends it goes on
running for a minute instead of exiting (only a signal stops it).
Standard library only."""

import json
import sys
import time

linger = sys.argv[1:] == ["linger"]

node_id = None
next_id = 0
requests = 0
waiting = {}


def send(dest, body):
    sys.stdout.write(json.dumps({"src": node_id, "dest": dest, "body": body}) + "\n")
    sys.stdout.flush()


def misbehave():
    sys.stdout.write("hello, this is not JSON\n")
    sys.stdout.write('{"src":"n1","dest":"n2","body":{"type":"big","pad":"' + "x" * (1 << 20) + '"}}\n')
    send("x9", {"type": "lost"})
    send("c1", {"type": "read_ok", "value": 1, "in_reply_to": 987654321})


for line in sys.stdin:
    msg = json.loads(line)
    body = msg["body"]
    kind = body.get("type")
    if kind == "init":
        node_id = body["node_id"]
        send(msg["src"], {"type": "init_ok", "in_reply_to": body["msg_id"]})
    elif kind in ("read", "write", "cas"):
        requests += 1
        if node_id == "n1" and requests == 1 and not linger:
            misbehave()
        if node_id == "n2" and requests == 20 and not linger:
            sys.exit(3)
        next_id += 1
        forward = {k: v for k, v in body.items() if k != "msg_id"}
        forward["msg_id"] = next_id
        waiting[next_id] = (msg["src"], body["msg_id"])
        send("lin-kv", forward)
    elif "in_reply_to" in body and body["in_reply_to"] in waiting:
        client, their_id = waiting.pop(body["in_reply_to"])
        answer = dict(body)
        answer["in_reply_to"] = their_id
        send(client, answer)

if linger:
    time.sleep(60)
