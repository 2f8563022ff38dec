"""Function budgets: init time, peak RSS and AWS calls of the release bins, on this machine.

    python scripts/bench_init.py --bin-dir target/release --zip-dir target/lambda [--starts 20]

Serves a fake Lambda Runtime API on 127.0.0.1 and a counting proxy in front of a moto server it
starts on 127.0.0.1 (moto's server from the .venv of scripts/venv.sh), both on free ports.

- init: process start (just before exec) to the first GET /2018-06-01/runtime/invocation/next,
  median of --starts starts; the process is killed on that request.
- RSS: VmHWM from /proc/PID/status once the bin has answered one invocation of its sample event
  and polls for the next (triage first, on an empty table: a new incident; the pipeline events
  then name that incident).
- calls: requests that reached the AWS endpoint during that invocation, by operation.
- zip: target/lambda/<fn>/bootstrap.zip (cargo lambda build --release --arm64 --output-format zip).

Prints a table and exits 1 when a budget is exceeded (init 10 ms, RSS 30 MB, zip 6 MB, triage of a
new incident 4 calls).
"""
import argparse
import http.client
import http.server
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import smoke_setup  # noqa: E402

FUNCTIONS = [
    ("triage", "events/sns-metric-alarm.json"),
    ("diagnose", "events/pipeline/incident-opened.json"),
    ("remediate", "events/pipeline/diagnosis-completed.json"),
    ("resolve", "events/pipeline/alarm-recovered.json"),
    ("sweeper", "events/pipeline/sweeper-schedule.json"),
    ("oncall", "events/pipeline/incident-opened.json"),
]
BUDGET_INIT_MS = 10.0
BUDGET_RSS_MB = 30.0
BUDGET_ZIP_MB = 6.0
BUDGET_TRIAGE_CALLS = 4
INVOKE_TIMEOUT_S = 120


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds, name):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: {name} exited before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"bench: {name} not listening on {port} after {seconds} s")


class RuntimeApi:
    """A fake Lambda Runtime API: one process at a time talks to it."""

    def __init__(self):
        self.lock = threading.Condition()
        self.first_next_at = None  # perf_counter of the first /next of the current process
        self.nexts = 0
        self.event = None  # bytes to hand out on the first /next, or None to hold it
        self.result = None  # ("response"|"error", body)
        api = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if not self.path.endswith("/runtime/invocation/next"):
                    self.send_error(404)
                    return
                now = time.perf_counter()
                with api.lock:
                    api.nexts += 1
                    if api.first_next_at is None:
                        api.first_next_at = now
                    event, api.event = api.event, None
                    api.lock.notify_all()
                if event is None:
                    # Hold the poll until the process is killed.
                    try:
                        self.rfile.read(1)
                    except OSError:
                        pass
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-request-1")
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 900_000))
                self.send_header(
                    "Lambda-Runtime-Invoked-Function-Arn",
                    "arn:aws:lambda:us-east-1:123456789012:function:bench",
                )
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-5e1b4151-5ac6c58f5b5daa6532e4b0c4;Sampled=0")
                self.send_header("Content-Length", str(len(event)))
                self.end_headers()
                self.wfile.write(event)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kind = "error" if "/error" in self.path else "response"
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with api.lock:
                    if "/invocation/" in self.path:
                        api.result = (kind, body.decode("utf-8", "replace"))
                    else:  # /runtime/init/error
                        api.result = ("init-error", body.decode("utf-8", "replace"))
                    api.lock.notify_all()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reset(self, event=None):
        with self.lock:
            self.first_next_at = None
            self.nexts = 0
            self.event = event
            self.result = None

    def wait(self, pred, timeout):
        with self.lock:
            return self.lock.wait_for(pred, timeout)


class CountingProxy:
    """Forwards every request to moto and counts them by operation."""

    def __init__(self, upstream_port):
        self.calls = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _forward(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                op = self.headers.get("X-Amz-Target")
                if not op:
                    form = urllib.parse.parse_qs(body.decode("utf-8", "replace")) if body else {}
                    op = (form.get("Action") or [None])[0] or f"{self.command} {self.path.split('?')[0]}"
                service = (self.headers.get("Authorization") or "").split("/")
                service = service[3] if len(service) > 3 else "?"
                with proxy.lock:
                    proxy.calls.append(f"{service}:{op.split('.')[-1]}")
                conn = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "transfer-encoding")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length", "server", "date"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def take(self):
        with self.lock:
            calls, self.calls = self.calls, []
        return calls


def spawn(binary, env):
    return subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def vm_hwm_kb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def with_incident(event_path, incident):
    ev = json.loads((ROOT / event_path).read_text())
    if incident and isinstance(ev.get("detail"), dict) and "incident_id" in ev["detail"]:
        ev["detail"]["incident_id"] = incident
    return json.dumps(ev).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", default="target/release")
    ap.add_argument("--zip-dir", default="target/lambda")
    ap.add_argument("--starts", type=int, default=20)
    ap.add_argument("--moto", default=str(ROOT / ".venv" / "bin" / "moto_server"))
    args = ap.parse_args()

    moto_port = free_port()
    moto = subprocess.Popen(
        [args.moto, "-H", "127.0.0.1", "-p", str(moto_port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_port(moto_port, moto, 30, "moto_server")
        proxy = CountingProxy(moto_port)
        endpoint = f"http://127.0.0.1:{proxy.port}"
        env_file = Path(os.environ.get("TMPDIR", "/tmp")) / f"firebreak-bench-{os.getpid()}.env"
        smoke_setup.setup(f"http://127.0.0.1:{moto_port}", env_file)
        fn_env = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
        env_file.unlink()
        table = fn_env["TABLE_NAME"]
        runtime = RuntimeApi()
        base_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **fn_env,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime.port}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_LAMBDA_LOG_LEVEL": "WARN",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/bench",
            "AWS_LAMBDA_LOG_STREAM_NAME": "bench",
        }

        rows = []
        over = []
        missing = []
        incident = None
        for fn, event_path in FUNCTIONS:
            binary = ROOT / args.bin_dir / fn
            if not binary.is_file():
                print(f"bench: {binary} missing: {fn} not measured", file=sys.stderr)
                missing.append(fn)
                continue
            env = dict(base_env, AWS_LAMBDA_FUNCTION_NAME=f"firebreak-{fn}")

            # init: median of N starts
            inits = []
            for _ in range(args.starts):
                runtime.reset()
                t0 = time.perf_counter()
                proc = spawn(binary, env)
                ok = runtime.wait(lambda: runtime.first_next_at is not None or runtime.result is not None, 30)
                t1 = runtime.first_next_at
                stop(proc)
                if not ok or t1 is None:
                    err = proc.stderr.read().decode("utf-8", "replace")[-800:] if proc.stderr else ""
                    sys.exit(f"bench: {fn} never polled the runtime API: {runtime.result} {err}")
                inits.append((t1 - t0) * 1000)
            init_ms = statistics.median(inits)

            # one invocation: RSS and calls
            proxy.take()
            runtime.reset(event=with_incident(event_path, incident))
            proc = spawn(binary, env)
            ok = runtime.wait(lambda: runtime.result is not None and runtime.nexts >= 2, INVOKE_TIMEOUT_S)
            rss_mb = vm_hwm_kb(proc.pid) / 1024 if proc.poll() is None else float("nan")
            stop(proc)
            calls = proxy.take()
            result = runtime.result
            if not ok or result is None or result[0] != "response":
                err = proc.stderr.read().decode("utf-8", "replace")[-800:] if proc.stderr else ""
                print(f"bench: {fn} invocation did not answer cleanly: {result} {err}", file=sys.stderr)
                over.append(f"{fn}: invocation failed")
            if fn == "triage":
                ids = smoke_setup_ids(f"http://127.0.0.1:{moto_port}", table)
                incident = ids[0] if ids else None

            z = ROOT / args.zip_dir / fn / "bootstrap.zip"
            zip_mb = z.stat().st_size / 1e6 if z.is_file() else None
            rows.append((fn, init_ms, min(inits), max(inits), rss_mb, zip_mb, calls))
            if init_ms > BUDGET_INIT_MS:
                over.append(f"{fn}: init {init_ms:.1f} ms > {BUDGET_INIT_MS}")
            if rss_mb > BUDGET_RSS_MB:
                over.append(f"{fn}: RSS {rss_mb:.1f} MB > {BUDGET_RSS_MB}")
            if zip_mb is not None and zip_mb > BUDGET_ZIP_MB:
                over.append(f"{fn}: zip {zip_mb:.2f} MB > {BUDGET_ZIP_MB}")
            if fn == "triage" and len(calls) > BUDGET_TRIAGE_CALLS:
                over.append(f"triage: {len(calls)} AWS calls > {BUDGET_TRIAGE_CALLS}")

        print(f"{'function':<10} {'init ms (median, min-max)':<26} {'peak RSS MB':>11} {'zip MB':>7} {'AWS calls':>9}  operations")
        for fn, med, lo, hi, rss, zmb, calls in rows:
            z = f"{zmb:.2f}" if zmb is not None else "-"
            init = f"{med:.2f} ({lo:.2f}-{hi:.2f})"
            print(f"{fn:<10} {init:<26} {rss:11.1f} {z:>7} {len(calls):>9}  {', '.join(calls)}")
        print(f"budgets: init <= {BUDGET_INIT_MS} ms, RSS <= {BUDGET_RSS_MB} MB, zip <= {BUDGET_ZIP_MB} MB, "
              f"triage of a new incident <= {BUDGET_TRIAGE_CALLS} calls; {args.starts} starts per function")
        if any(r[5] is None for r in rows):
            print("zip: not measured (no target/lambda/<fn>/bootstrap.zip; run make build)")
        if missing:
            print("not measured (no bin): " + ", ".join(missing))
        if over:
            print("OVER BUDGET: " + "; ".join(over))
            return 1
        print("all within budget")
        return 0
    finally:
        if moto.poll() is None:
            os.killpg(moto.pid, signal.SIGTERM)
            try:
                moto.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(moto.pid, signal.SIGKILL)


def smoke_setup_ids(endpoint, table):
    ddb = smoke_setup.client("dynamodb", endpoint)
    ids = set()
    for page in ddb.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            pk = item.get("pk", {}).get("S", "")
            if pk.startswith("INC#"):
                ids.add(pk[len("INC#"):])
    return sorted(ids)


if __name__ == "__main__":
    sys.exit(main())
