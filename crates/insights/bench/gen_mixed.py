#!/usr/bin/env python3
"""Deterministic realistic mixed log lines for the side-by-side benchmark.

Drill JSON lines {"group","stream","timestamp","message"}; messages average about 120 bytes:
plain access/app text, JSON messages with nested fields (escaped inside the string, as
CloudWatch stores them), Java-style WARN/ERROR lines, a few timeouts and Lambda REPORTs.
Usage: gen_mixed.py OUT BYTES
"""
import json
import sys


def main() -> None:
    out, target = sys.argv[1], int(sys.argv[2])
    x = 0x9E3779B97F4A7C15
    mask = (1 << 64) - 1

    def rnd() -> int:
        nonlocal x
        x ^= (x << 13) & mask
        x ^= x >> 7
        x ^= (x << 17) & mask
        return x

    routes = ["/articles", "/users", "/cart", "/checkout", "/search", "/health"]
    services = ["articles-api", "users-api", "payments"]
    ts = 1_773_446_400_000
    written = 0
    with open(out, "w", buffering=1 << 20) as f:
        while written < target:
            r = rnd()
            ts += r % 40
            kind = (r >> 8) % 100
            rid = "%016x" % rnd()
            route = routes[(r >> 16) % len(routes)]
            lat = (r >> 24) % 400 + 1
            status = [200, 200, 200, 200, 201, 204, 304, 400, 404, 500][(r >> 32) % 10]
            if kind < 38:
                msg = "%s GET %s/%d %d %dms rid=%s" % (
                    "INFO", route, (r >> 40) % 10000, status, lat, rid)
            elif kind < 70:
                msg = json.dumps({"level": "info", "msg": "request done", "route": route,
                                  "status": status, "latency_ms": lat,
                                  "ctx": {"user": "u%d" % ((r >> 40) % 5000), "rid": rid}},
                                 separators=(",", ":"))
            elif kind < 82:
                msg = "WARN [pool-%d] slow query on %s took %dms (threshold 200ms)" % (
                    (r >> 40) % 16, route.strip("/"), lat + 200)
            elif kind < 88:
                msg = json.dumps({"level": "warn", "msg": "retrying upstream", "attempt": (r >> 40) % 3 + 1,
                                  "upstream": services[(r >> 44) % 3], "rid": rid}, separators=(",", ":"))
            elif kind < 93:
                msg = "ERROR DatabaseError: connection pool exhausted (max=10) route=%s rid=%s" % (route, rid)
            elif kind < 96:
                msg = json.dumps({"level": "error", "msg": "upstream timeout", "upstream": services[(r >> 44) % 3],
                                  "timeout_ms": 5000, "rid": rid}, separators=(",", ":"))
            elif kind < 98:
                msg = "REPORT RequestId: %s Duration: %d.%02d ms Billed Duration: %d ms Memory Size: 128 MB" % (
                    rid, lat, r % 100, lat + 1)
            else:
                msg = "\tat com.example.%s.Handler.handle(Handler.java:%d)" % (
                    services[(r >> 44) % 3].replace("-", ""), (r >> 48) % 400)
            line = json.dumps({"group": "/ecs/" + services[(r >> 50) % 3], "stream": "web/%d" % ((r >> 54) % 8),
                               "timestamp": ts, "message": msg}, separators=(",", ":"))
            f.write(line + "\n")
            written += len(line) + 1


if __name__ == "__main__":
    main()
