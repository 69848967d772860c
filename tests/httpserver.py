"""A real local HTTP server standing in for a handler service and a callback receiver in tests.

The path picks the answer: /ok (200 JSON echo), /text, /accept (202), /reject (400), /busy (429 with
Retry-After), /request-timeout (408), /error (500), /slow?t=S (answers after S seconds), /hang-first
(the first call hangs, later ones answer 200), /redirect (302), /hook (200), /hook-fail (500).
Every request is recorded with its headers and body."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    server: HandlerServer

    def log_message(self, *args) -> None:  # quiet test output
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        self.server.record(Request(url.path, dict(self.headers.items()), body))
        route = url.path.rstrip("/")
        if route == "/ok":
            self._send(200, json.dumps({"echo": json.loads(body or b"null")}).encode(), "application/json")
        elif route == "/text":
            self._send(200, b"hello", "text/plain")
        elif route == "/big":
            self._send(200, b"x" * (70 * 1024), "text/plain")
        elif route == "/accept":
            self._send(202, b"")
        elif route == "/reject":
            self._send(400, b"bad payload", "text/plain")
        elif route == "/busy":
            self._send(429, b"slow down", "text/plain", {"Retry-After": parse_qs(url.query).get("after", ["2"])[0]})
        elif route == "/request-timeout":
            self._send(408, b"too slow", "text/plain")
        elif route in ("/error", "/hook-fail"):
            self._send(500, b"boom", "text/plain")
        elif route == "/slow":
            time.sleep(float(parse_qs(url.query).get("t", ["3"])[0]))
            self._send(200, b"late", "text/plain")
        elif route == "/hang-first":  # the first call hangs (its worker gets killed), later ones answer
            if len(self.server.to("/hang-first")) == 1:
                time.sleep(30)
            self._send(200, b'{"second": true}', "application/json")
        elif route == "/redirect":
            self._send(302, b"", headers={"Location": "/ok"})
        else:
            self._send(200, b"ok", "text/plain")

    def _send(self, status: int, body: bytes, ctype: str = "text/plain", headers: dict[str, str] | None = None):
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)


class HandlerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def record(self, req: Request) -> None:
        with self._arrived:
            self.requests.append(req)
            self._arrived.notify_all()

    def wait_for(self, path: str, n: int = 1, timeout: float = 10.0) -> list[Request]:
        """The first n requests to `path`, waiting up to `timeout` seconds for them."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while True:
                got = [r for r in self.requests if r.path == path]
                if len(got) >= n:
                    return got[:n]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(got)} of {n} request(s) to {path} within {timeout}s")
                self._arrived.wait(left)

    def to(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def start(self) -> HandlerServer:
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self
