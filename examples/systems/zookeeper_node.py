#!/usr/bin/env python3
"""Starts one ZooKeeper server of an ensemble: ID ADDR DATA_DIR NODE_DIR then every
server's `server.J=ADDR:QUORUM:ELECTION` line. Writes NODE_DIR/zoo.cfg and
DATA_DIR/myid, then becomes the JVM (exec), so signals reach ZooKeeper itself."""
import os, sys

me, addr, data, node_dir, servers = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5:]
jar = "/usr/share/java/zookeeper.jar"
if not os.path.exists(jar):
    sys.exit("zookeeper is not installed (%s is missing): apt-get install zookeeper" % jar)
os.makedirs(data, exist_ok=True)
with open(os.path.join(data, "myid"), "w") as f:
    f.write(me + "\n")
cfg = os.path.join(node_dir, "zoo.cfg")
with open(cfg, "w") as f:
    f.write("\n".join([
        "tickTime=500", "initLimit=20", "syncLimit=5",   # short ticks: elections in seconds
        "dataDir=" + data, "clientPort=2181", "clientPortAddress=" + addr,
        "4lw.commands.whitelist=srvr", "admin.enableServer=false",
    ] + servers) + "\n")
os.execvp("java", [
    "java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
    "-Dzookeeper.log.dir=" + node_dir, "-cp", "/etc/zookeeper/conf:" + jar,
    "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg,
])
