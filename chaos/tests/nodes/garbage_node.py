#!/usr/bin/env python3
"""A node that starts as the bundled node's protocol asks (a ready line naming where
it listens) and then answers every request with bytes that are not JSON."""
import socket
import sys
import threading

srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0))
srv.listen(64)
print('{"ready":true,"listen":"127.0.0.1:%d"}' % srv.getsockname()[1], flush=True)


def serve(conn):
    with conn, conn.makefile("rb") as lines:
        for _ in lines:
            conn.sendall(b"\x00\x01 this is not json\n")


while True:
    conn, _ = srv.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
