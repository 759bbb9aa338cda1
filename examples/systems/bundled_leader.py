#!/usr/bin/env python3
"""Prints the id of the node the bundled node at ADDR names as leader (empty: none)."""
import json, socket, sys

host, port = sys.argv[1].rsplit(":", 1)
with socket.create_connection((host, int(port)), timeout=1) as s:
    f = s.makefile("rw")
    f.write('{"id":1,"op":"status"}\n')
    f.flush()
    print(json.loads(f.readline()).get("leader") or "")
