#!/usr/bin/env python3
"""load.py: a bounded client load on every node's service for the availability benchmark.

Every 10 ms it sends one GET /players to each node the load balancer has in service and
records, per sample, which nodes answered. The "load balancer" is the drain hook's log in the
node (/run/baton-hooks.log, tests/fixtures/knobs/hook): a node whose last line is "drain ..." is
out of service until an "undrain ..." line. Without hooks every node is always in service.

usage: load.py OUT STOPFILE NAME=HOST:PORT:ROOT...   (ROOT: /proc/PID/root of the node)
OUT gets one line per sample: "T SERVING DRAINED FAILED" (T in seconds since the start), and a
last line "# requests N failed M".
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../fixtures"))
from lbload import ask  # noqa: E402


def drained(root):
    try:
        with open(os.path.join(root, "run/baton-hooks.log"), "rb") as f:
            lines = f.read().split(b"\n")
    except OSError:
        return False
    lines = [l for l in lines if l]
    return bool(lines) and lines[-1].startswith(b"drain ")


def main():
    out, stop, nodes = sys.argv[1], sys.argv[2], []
    for spec in sys.argv[3:]:
        name, rest = spec.split("=", 1)
        host, port, root = rest.split(":", 2)
        nodes.append((name, host, int(port), root))
    t0 = time.monotonic()
    requests = failed = 0
    with open(out, "w") as f:
        tick = t0
        while not os.path.exists(stop):
            serving = out_of_service = bad = 0
            for _, host, port, root in nodes:
                if drained(root):
                    out_of_service += 1
                    continue
                requests += 1
                if ask((host, port), timeout=0.5):
                    serving += 1
                else:
                    failed += 1
                    bad += 1
            f.write("%.3f %d %d %d\n" % (time.monotonic() - t0, serving, out_of_service, bad))
            tick += 0.010
            time.sleep(max(0.0, tick - time.monotonic()))
        f.write("# requests %d failed %d\n" % (requests, failed))


if __name__ == "__main__":
    main()
