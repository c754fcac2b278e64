"""A Humanline webhook receiver: verify the signature, then act once per event id.

WEBHOOK_SECRET=whsec_... python examples/webhook_receiver.py 8080
"""

import hashlib
import hmac
import json
import os
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

SECRET, SEEN = os.environ["WEBHOOK_SECRET"].encode(), set()


def signed(header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t = parts.get("t", "0")
    expected = hmac.new(SECRET, f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    fresh = t.isdigit() and abs(time.time() - int(t)) <= 300  # refuse replays
    return fresh and hmac.compare_digest(expected, parts.get("v1", ""))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not signed(self.headers.get("Humanline-Signature", ""), body):
            return self.send_error(400, "bad signature")
        event = json.loads(body)
        if event["id"] not in SEEN:  # deliveries may repeat: act once
            SEEN.add(event["id"])
            print(event["created"], event["type"], event["data"]["ticket"]["id"])
        self.send_response(204)
        self.end_headers()


HTTPServer(("", int(sys.argv[1])), Receiver).serve_forever()
