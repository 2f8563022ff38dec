#!/usr/bin/env python3
"""Side by side on the same realistic mixed JSON-lines file: `firebreak query --threads N`
against DuckDB `read_json` + the same aggregation with N threads (N = 1, 2), best of 3 runs
each (the file in the page cache), then the ratio. Also the literal filters alone and the
peak RSS of `stats count() by @message` (`/usr/bin/time -v`).
Usage: side_by_side.py FIREBREAK_BINARY DATA_FILE
"""
import os
import re
import resource
import subprocess
import sys
import time

import duckdb

QUERY = "filter @message like /ERROR/ | stats count() by bin(5m)"
SQL = """
SELECT time_bucket(INTERVAL '5 minutes', make_timestamp(timestamp * 1000)) AS bin, count(*) AS n
FROM read_json('{path}', format = 'newline_delimited',
               columns = {{'group': 'VARCHAR', 'stream': 'VARCHAR', 'timestamp': 'BIGINT', 'message': 'VARCHAR'}})
WHERE regexp_matches(message, 'ERROR')
GROUP BY bin ORDER BY bin
"""


def cpu_seconds():
    """CPU time of this process (DuckDB's threads) plus finished children (firebreak)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def best(fn, runs=5):
    """Best wall time of `runs`, the CPU time of that run, and the output."""
    best_wall, best_cpu, out = None, None, None
    for _ in range(runs):
        c, t = cpu_seconds(), time.perf_counter()
        out = fn()
        wall, cpu = time.perf_counter() - t, cpu_seconds() - c
        if best_wall is None or wall < best_wall:
            best_wall, best_cpu = wall, cpu
    return best_wall, best_cpu, out


def firebreak(binary, path, query, threads, extra=()):
    r = subprocess.run([binary, "query", query, "--logs", path, "--threads", str(threads), "--json", *extra],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"firebreak query failed: {r.stderr}")
    return r.stdout


def main() -> None:
    binary, path = sys.argv[1], sys.argv[2]
    size = os.path.getsize(path)
    mb = size / 1e6
    print(f"data: {path}, {mb:.0f} MB; duckdb {duckdb.__version__}")
    print(f"query: {QUERY}")
    print(f"load average before: {os.getloadavg()[0]:.1f} (on {os.cpu_count()} cores)")
    print("wall: best of 5 runs; per CPU-s: MB per CPU-second of that run (fair when cores are shared)")
    print(f"{'threads':>7} | {'firebreak MB/s':>14} | {'duckdb MB/s':>11} | ratio | {'firebreak MB/CPU-s':>18} | {'duckdb MB/CPU-s':>15}")
    for threads in (1, 2):
        con = duckdb.connect()
        con.execute(f"SET threads = {threads}")
        dt, dc, rows = best(lambda: con.execute(SQL.format(path=path)).fetchall())
        ft, fc, out = best(lambda: firebreak(binary, path, QUERY, threads))
        fb_bins = out.count('"bin(5m)"')
        if fb_bins != len(rows):
            sys.exit(f"results differ: firebreak {fb_bins} bins, duckdb {len(rows)}")
        print(f"{threads:>7} | {mb / ft:>14.0f} | {mb / dt:>11.0f} | {dt / ft:.2f}x | {mb / fc:>18.0f} | {mb / dc:>15.0f}")
    for q in ['filter @message like /ERROR/ | stats count()', 'filter @message like "timeout" | stats count()']:
        t, c, _ = best(lambda: firebreak(binary, path, q, 1))
        print(f"literal filter, 1 thread: {q}: {mb / t / 1000:.2f} GB/s wall, {mb / c / 1000:.2f} GB/CPU-s")
    try:
        t, c, _ = best(lambda: subprocess.run(["rg", "-c", "ERROR", path], capture_output=True))
        print(f"rg -c ERROR (raw scan): {mb / t / 1000:.2f} GB/s wall, {mb / c / 1000:.2f} GB/CPU-s")
    except FileNotFoundError:
        print("rg -c ERROR: ripgrep not installed")
    r = subprocess.run(["/usr/bin/time", "-v", binary, "query", "stats count() by @message", "--logs", path,
                        "--threads", "2", "--json"], capture_output=True, text=True)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr)
    outcome = "ok" if r.returncode == 0 else r.stderr.strip().splitlines()[0][:160]
    print(f"stats count() by @message, default budget: peak RSS {int(rss.group(1)) / 1024:.0f} MiB"
          f" ({outcome})" if rss else "peak RSS: /usr/bin/time not available")


if __name__ == "__main__":
    main()
