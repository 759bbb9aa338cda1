#!/usr/bin/env python3
"""A client that misbehaves as its first argument says, once in a run (the first
process to create RUN_DIR/misbehaved, its second argument, does): `garbage`
(a line that is no reply), `hang` (never answers), `exit` (exits), `wrong-id` (a
reply to an op nobody asked, then the right one). Later ops: a read is ok and finds
nothing, a write or cas fails (definitely), so the history stays linearizable."""
import json, os, sys, time

how = sys.argv[1]
try:
    os.close(os.open(os.path.join(sys.argv[2], "misbehaved"), os.O_CREAT | os.O_EXCL))
    first = True
except FileExistsError:
    first = False
for line in sys.stdin:
    op = json.loads(line)
    if first:
        first = False
        if how == "garbage":
            print("\x00 not a reply", flush=True)
            continue
        if how == "hang":
            time.sleep(3600)
        if how == "exit":
            sys.exit(3)
        if how == "wrong-id":
            print(json.dumps({"id": op["id"] + 1000, "type": "ok"}), flush=True)
    if op["f"] == "read":
        print(json.dumps({"id": op["id"], "type": "ok", "value": None}), flush=True)
    else:
        print(json.dumps({"id": op["id"], "type": "fail", "error": "refused"}), flush=True)
