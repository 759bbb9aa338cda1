#!/usr/bin/env python3
"""A node that says it is ready at an address where nothing listens, then waits: every
client's connection is refused."""
import socket
import time

s = socket.socket()
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()  # the port is free again: connections to it are refused
print('{"ready":true,"listen":"127.0.0.1:%d"}' % port, flush=True)
while True:
    time.sleep(60)
