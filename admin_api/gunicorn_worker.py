"""The gunicorn worker of the admin API (admin_api/gunicorn_conf.py names it): gunicorn's gevent worker, plus
a deadline on reading a request body.

Why gevent: a sync worker serves one connection at a time, so two clients that send half a request stopped
every answer until gunicorn's timeout killed the worker; a gthread worker only moves the limit to its thread
count (a thread blocks on a slow client's headers or body just the same). Under gevent a waiting connection
costs a greenlet, not a worker, and up to `worker_connections` of them wait side by side.

Why a body deadline: gunicorn bounds a request's line and headers (the gevent worker reads them under
gevent.Timeout(keepalive)), but not its body, which the app reads. A client trickling a byte a second
would hold its greenlet and socket for as long as it liked. Each read of the body here runs under the time
left until BODY_TIMEOUT after the headers; past it the app sees a 408, and the connection is closed.

Why a write deadline: a client that asks for a large answer (the 1 MB Swagger bundle, the OpenAPI document,
a page of jobs) and then never reads it keeps its greenlet blocked in a send for ever; a thousand of them
per worker fill `worker_connections` and the API stops answering. Every answer must be written within
RESPONSE_WRITE_TIMEOUT seconds of its first byte; past it the connection is closed (and logged)."""
from __future__ import annotations

import errno
import logging
import os
import time
from typing import Any

import gevent
from gunicorn.workers.ggevent import GeventWorker
from werkzeug.exceptions import RequestTimeout

# Seconds a client has to send a whole request body once its headers are in: 256 KB (MAX_BODY) in 10 s is
# 25 KB/s, far below any real client of this API; only a stalled or hostile one takes longer.
BODY_TIMEOUT = 10.0


# Seconds a client has to take a whole answer once its first byte is sent: the largest (about 1 MB) takes
# well under a second on any working link. JOBSVC_RESPONSE_WRITE_TIMEOUT changes it (the tests shorten it).
RESPONSE_WRITE_TIMEOUT = float(os.environ.get("JOBSVC_RESPONSE_WRITE_TIMEOUT", "30"))

log = logging.getLogger("jobsvc.web")


class BodyTimeout(RequestTimeout):
    description = f"the request body did not arrive within {BODY_TIMEOUT:g} seconds"


class DeadlineBody:
    """gunicorn's request body (wsgi.input) with every read bounded by one deadline for the whole body."""

    def __init__(self, req: Any, body: Any, deadline: float):
        self.req, self.body, self.deadline = req, body, deadline

    def _bounded(self, read: Any, *args: Any) -> Any:
        left = self.deadline - time.monotonic()
        if left <= 0:
            return self._expired()
        timer = gevent.Timeout(left)
        timer.start()
        try:
            return read(*args)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            return self._expired()
        finally:
            timer.close()

    def _expired(self) -> Any:
        # Part of the body may still be on the wire: this connection cannot carry another request.
        self.req.must_close = True
        raise BodyTimeout()

    def read(self, size: Any = None) -> bytes:
        return self._bounded(self.body.read, size)

    def readline(self, size: Any = None) -> bytes:
        return self._bounded(self.body.readline, size)

    def readlines(self, size: Any = None) -> list[bytes]:
        return self._bounded(self.body.readlines, size)

    def __iter__(self) -> DeadlineBody:
        return self

    def __next__(self) -> bytes:
        line = self.readline()
        if not line:
            raise StopIteration
        return line


class DeadlineSocket:
    """The client socket as the response writer sees it: every send bounded by one deadline, counted from the
    answer's first byte. gunicorn writes answers with sendall only (sendfile is off in gunicorn_conf)."""

    def __init__(self, sock: Any, addr: Any):
        self.sock, self.addr = sock, addr
        self.deadline: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)

    def sendall(self, data: Any, *args: Any) -> None:
        now = time.monotonic()
        if self.deadline is None:
            self.deadline = now + RESPONSE_WRITE_TIMEOUT
        left = self.deadline - now
        timer = gevent.Timeout(max(left, 0.0))
        timer.start()
        try:
            self.sock.sendall(data, *args)
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            log.warning("closing the connection of %s: it took no answer for %gs (write deadline)", self.addr,
                        RESPONSE_WRITE_TIMEOUT)
            # EPIPE: gunicorn then closes the connection quietly, as for a client that went away.
            raise OSError(errno.EPIPE, "client did not read its answer in time") from None
        finally:
            timer.close()

    def send(self, data: Any, *args: Any) -> int:
        self.sendall(data, *args)
        return len(data)


class AdminApiWorker(GeventWorker):
    """gunicorn's gevent worker, with a deadline on each request body and on writing each answer."""

    def handle_request(self, listener_name: Any, req: Any, sock: Any, addr: Any) -> Any:
        sock = DeadlineSocket(sock, addr)
        body = getattr(req, "body", None)
        if body is None:
            return super().handle_request(listener_name, req, sock, addr)
        req.body = DeadlineBody(req, body, time.monotonic() + BODY_TIMEOUT)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            # What the app left unread is drained by gunicorn before the next request, under its own
            # deadline (gevent.Timeout(keepalive) around reading the next request): not ours.
            req.body = body

    def handle_quit(self, sig: int, frame: Any) -> None:
        """SIGQUIT, and SIGINT (a terminal's Ctrl+C reaches every process of `jobsvc up`): stop serving. gunicorn's
        gevent worker calls sys.exit from a spawned greenlet instead, which gevent prints as a failed greenlet
        with a traceback, once per signal. Ending the serve loop exits the usual way: open connections get
        graceful_timeout at most (slow ones are cut sooner, on their own deadlines)."""
        self.alive = False
