"""A webhook receiver for the smoke test: listens on 127.0.0.1:PORT, checks each POST as a
Standard Webhooks receiver would (webhook-id, webhook-timestamp within 5 minutes, the v1
HMAC-SHA256 signature over "id.timestamp.body" with the whsec_ secret), answers 202 when it
verifies and 401 when not, and appends one JSON line per request to OUT:
{"path", "verified", "type", "incident"}.
Usage: smoke_webhook.py PORT SECRET OUT"""
import base64, hashlib, hmac, json, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

port, secret, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
key = base64.b64decode(secret[len("whsec_"):]) if secret.startswith("whsec_") else secret.encode()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        wid, ts, sig = (self.headers.get(h, "") for h in ("webhook-id", "webhook-timestamp", "webhook-signature"))
        want = "v1," + base64.b64encode(hmac.new(key, f"{wid}.{ts}.".encode() + body, hashlib.sha256).digest()).decode()
        fresh = ts.isdigit() and abs(time.time() - int(ts)) <= 300
        ok = fresh and any(hmac.compare_digest(s, want) for s in sig.split())
        try:
            doc = json.loads(body)
        except ValueError:
            doc, ok = {}, False
        with open(out, "a") as f:
            f.write(json.dumps({"path": self.path, "verified": ok, "type": doc.get("type"),
                                "incident": (doc.get("incident") or {}).get("id")}) + "\n")
        self.send_response(202 if ok else 401)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", port), Handler).serve_forever()
