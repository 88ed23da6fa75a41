#!/usr/bin/env python3
# Listens on an AF_UNIX datagram socket as systemd would for sd_notify, and appends each
# datagram to a file, one line per message with newlines shown as '|'. Stops after a bound.
import socket, sys, time
path, out, secs = sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else 120
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
s.settimeout(0.5)
end = time.time() + secs
with open(out, "a", buffering=1) as f:
    while time.time() < end:
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        f.write(data.decode(errors="replace").replace("\n", "|") + "\n")
