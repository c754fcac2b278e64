"""A real HTTP receiver for webhook tests: a server on a loopback port, in a thread."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """An HTTP server on a loopback port, in a thread, answering as told."""

    def __init__(self):
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict, bytes]] = []  # taken in order; then 200
        # A receiver that is slow on purpose: the body's bytes one at a time, this
        # many seconds apart (a slow network or a hostile receiver, not a wait
        # for the test's sake).
        self.drip_seconds: float | None = None
        # Set while a request is being answered; the answer waits for ``release``.
        self.holding = threading.Event()
        self.release: threading.Event | None = None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                receiver.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": self.rfile.read(length),
                    }
                )
                status, headers, body = (
                    receiver.answers.pop(0) if receiver.answers else (200, {}, b"ok")
                )
                if receiver.release is not None:
                    receiver.holding.set()
                    receiver.release.wait(timeout=60)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if receiver.drip_seconds is None:
                    self.wfile.write(body)
                    return
                try:
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        # a slow receiver on purpose: the attempt timeout's test
                        time.sleep(receiver.drip_seconds)
                except OSError:
                    pass  # the sender gave up on us

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()
