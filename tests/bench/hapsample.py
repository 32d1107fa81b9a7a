#!/usr/bin/python3
"""hapsample.py: how many of BACKEND's servers haproxy has in service, every 10 ms, on its own.

lbload.py samples haproxy after each of its requests, one after another: a request that hangs
(haproxy holding it for a server that refuses, until the client's 1 s timeout) leaves a second
without a sample, just when a server goes out. This samples apart from the requests, on
lbload's clock: it waits until LOAD_OUT (lbload.py's samples) has its first line and counts
time from lbload's start. OUT gets a first line "# t0 EPOCH" (lbload's start, wall clock),
"T IN_SERVICE SERVERS" lines (SERVERS: the names of those in service, comma separated, "-" for
none; in service as lbload.py counts them: UP, "UP 1/2" going down, or "no check") until
STOPFILE exists, and a last line "# samples N min_in_service K".

    hapsample.py API BACKEND LOAD_OUT OUT STOPFILE     (API as HOST:PORT)
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../fixtures"))
from lbload import hostport  # noqa: E402


def in_service(api, backend):
    s = socket.create_connection(api, timeout=1)
    s.sendall(b"show stat -1 4 -1\n")
    data = b""
    while True:
        got = s.recv(65536)
        if not got:
            break
        data += got
    s.close()
    lines = data.decode().splitlines()
    cols = lines[0].lstrip("# ").split(",")
    px, sv, st = cols.index("pxname"), cols.index("svname"), cols.index("status")
    names = []
    for line in lines[1:]:
        f = line.split(",")
        if len(f) > st and f[px] == backend and (f[st].startswith("UP") or f[st] == "no check"):
            names.append(f[sv])
    return names


def main(api, backend, load_out, out, stop):
    api = hostport(api)
    while not os.path.exists(stop):
        try:
            with open(load_out) as f:
                first = f.readline()
        except OSError:
            first = ""
        if first.endswith("\n"):
            break
        time.sleep(0.002)
    else:
        sys.exit("hapsample: %s never had a sample" % load_out)
    t0 = time.monotonic() - float(first.split()[0])
    samples = 0
    least = None
    with open(out, "w") as f:
        f.write("# t0 %.6f\n" % (time.time() - (time.monotonic() - t0)))
        tick = time.monotonic()
        while not os.path.exists(stop):
            try:
                names = in_service(api, backend)
            except (OSError, ValueError, IndexError):
                names = None  # no answer from haproxy: no sample
            if names is None:
                tick += 0.01
                time.sleep(max(0.0, tick - time.monotonic()))
                continue
            samples += 1
            least = len(names) if least is None else min(least, len(names))
            f.write("%.3f %d %s\n" % (time.monotonic() - t0, len(names), ",".join(names) or "-"))
            tick += 0.01
            time.sleep(max(0.0, tick - time.monotonic()))
        f.write("# samples %d min_in_service %d\n" % (samples, least or 0))


if __name__ == "__main__":
    if len(sys.argv) != 6:
        sys.exit(__doc__)
    main(*sys.argv[1:])
