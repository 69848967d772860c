"""The send-time guard: requests sessions whose connections resolve the host themselves and connect only to
addresses that pass (pinned: the checked address is the one connected to, so DNS rebinding is refused), that
never follow redirects or use proxies; `post` through one, with a deadline for the whole exchange and a cap on
the answer read; `is_blocked` to tell a refusal from other errors."""
from __future__ import annotations

import contextlib
import ipaddress
import socket
import sys
import threading
from functools import cache
from typing import TYPE_CHECKING, Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from ... import defaults
from ...errors import UnsafeURL
from .addresses import blocked_answer, resolve_host
from .check import check_url

if TYPE_CHECKING:  # the mixin below only ever joins urllib3's HTTPConnection (and HTTPSConnection)
    _ConnectionBase = HTTPConnection
else:
    _ConnectionBase = object


class BlockedAddress(UnsafeURL):
    """A connection refused at send time: the host resolved to a blocked address, or the request bypasses the guard."""

    code = "blocked_address"


class _Deadline:
    """The sockets one post() call with a deadline uses (new, or reused from the pool), so its watchdog can
    shut them down when the deadline passes: requests' timeout bounds each socket read, not the whole answer.
    Sockets, not connections: http.client drops a connection's socket reference while a close-delimited
    answer is still being read through it."""

    def __init__(self) -> None:
        self.sockets: list[socket.socket] = []
        self.expired = False
        self.done = False
        self.lock = threading.Lock()

    def track(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self.lock:
            if self.expired:
                raise requests.Timeout("deadline passed")
            self.sockets.append(sock)

    def cut(self) -> None:
        with self.lock:
            if self.done:  # the call finished meanwhile: its pooled connection is someone else's now
                return
            self.expired = True
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def finish(self) -> None:
        with self.lock:
            self.done = True


_calls = threading.local()  # .deadline: the _Deadline of the post() running in this thread, if any


def _track(sock: socket.socket | None) -> None:
    deadline = getattr(_calls, "deadline", None)
    if deadline is not None:
        deadline.track(sock)


class _GuardedConnectionMixin(_ConnectionBase):
    """Resolves the host itself and connects only to addresses that pass, keeping the name for SNI and Host."""

    allow_private = False
    tls = True

    def request(self, *args: Any, **kwargs: Any) -> Any:
        _track(getattr(self, "sock", None))  # a connection reused from the pool
        return super().request(*args, **kwargs)

    def _new_conn(self) -> socket.socket:
        conn: Any = self
        host = getattr(conn, "_dns_host", conn.host).rstrip(".")
        if not self.tls and not self.allow_private:
            raise BlockedAddress(f"refusing plain http to {host}: https is required")
        infos = _literal_infos(host, conn.port)
        if infos is None:
            try:
                infos = resolve_host(host, conn.port)
            except (OSError, UnicodeError) as exc:
                raise _resolution_error(conn, host, exc) from exc
        blocked = blocked_answer(infos, self.allow_private)
        if blocked:
            raise BlockedAddress(f"host {host} resolves to {blocked[0]}, which is {blocked[1]}")
        sock = _connect_first(conn, infos)
        sys.audit("http.client.connect", conn, conn.host, conn.port)
        return sock


def _literal_infos(host: str, port: int) -> list[tuple[Any, ...]] | None:
    """getaddrinfo's answer for an IP literal, without asking the resolver; None for a name."""
    try:
        ip = ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None
    if ip.version == 6:
        return [(socket.AF_INET6, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(ip), port, 0, 0))]
    return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (str(ip), port))]


def _connect_first(conn: Any, infos: list[tuple[Any, ...]]) -> socket.socket:
    """Connect to the checked addresses in resolver order, like urllib3's create_connection."""
    error: OSError | None = None
    for family, socktype, proto, _, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        try:
            _track(sock)  # before connecting: a slow connect or TLS handshake is cut too
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            if conn.timeout is None or isinstance(conn.timeout, (int, float)):
                sock.settimeout(conn.timeout)  # else urllib3's "default" sentinel: keep the socket default
            if conn.source_address:
                sock.bind(conn.source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    if isinstance(error, socket.timeout):
        raise ConnectTimeoutError(conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})")
    raise NewConnectionError(conn, f"Failed to establish a new connection: {error}")


def _resolution_error(conn: Any, host: str, exc: Exception) -> Exception:
    """What urllib3 raises for a name that does not resolve: NameResolutionError from 2.x on; 1.26 has none and
    reports a NewConnectionError."""
    try:
        from urllib3.exceptions import NameResolutionError
    except ImportError:  # pragma: no cover
        return NewConnectionError(conn, f"Failed to resolve {host}: {exc}")
    # Its reason is typed socket.gaierror; it only formats it into the message, and ours may be any OSError.
    return NameResolutionError(conn.host, conn, exc)  # type: ignore[arg-type]


@cache
def _pool_classes(allow_private: bool) -> dict[str, type]:
    """urllib3 pool classes whose ConnectionCls is guarded with this allow_private."""
    attrs = {"allow_private": allow_private}
    http_conn = type("GuardedHTTPConnection", (_GuardedConnectionMixin, HTTPConnection), {**attrs, "tls": False})
    https_conn = type("GuardedHTTPSConnection", (_GuardedConnectionMixin, HTTPSConnection), {**attrs, "tls": True})
    return {
        "http": type("GuardedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": http_conn}),
        "https": type("GuardedHTTPSConnectionPool", (HTTPSConnectionPool,), {"ConnectionCls": https_conn}),
    }


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections refuse blocked addresses, and which refuses proxies (they resolve for us)."""

    def __init__(self, *, allow_private: bool = False, pool_maxsize: int = defaults.HTTP_POOL_SIZE):
        self.allow_private = allow_private
        super().__init__(pool_connections=pool_maxsize, pool_maxsize=pool_maxsize, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_pool_classes(self.allow_private))

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        raise BlockedAddress("refusing to send through a proxy: the proxy would resolve the host unchecked")


class GuardedSession(requests.Session):
    """A Session that never follows redirects, ignores environment proxies and .netrc, and guards every connection."""

    def __init__(self, *, allow_private: bool = False, pool_maxsize: int = defaults.HTTP_POOL_SIZE):
        super().__init__()
        self.allow_private = allow_private
        self.trust_env = False  # no env proxies (they resolve unchecked) and no .netrc credentials
        adapter = GuardedAdapter(allow_private=allow_private, pool_maxsize=pool_maxsize)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        return None  # a 3xx is returned as is: a redirect could point anywhere, checked or not


def safe_session(*, allow_private: bool = False, pool_maxsize: int = defaults.HTTP_POOL_SIZE) -> requests.Session:
    """A pooled Session whose connections are checked at connect time (DNS rebinding) and never redirected."""
    return GuardedSession(allow_private=allow_private, pool_maxsize=pool_maxsize)


def post(session: requests.Session, url: str, *, body: bytes, headers: dict[str, str], timeout: float,
         max_body: int | None = None, deadline: float | None = None) -> requests.Response:
    """POST `body` to `url` through a safe_session(); a 3xx comes back as is (callers treat it as a failure).

    `timeout` bounds each socket read. `deadline` (seconds) bounds the whole exchange: a server trickling its
    answer a byte at a time is cut off then (requests.Timeout). `max_body`: at most this many bytes of the
    answer are read (plus one, so a caller can tell it was cut); the rest is never downloaded."""
    allow_private = bool(getattr(session, "allow_private", False))
    check_url(url, allow_private=allow_private, resolve=False)
    if max_body is None and deadline is None:
        return session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False)
    watch = _Deadline()
    timer = threading.Timer(deadline, watch.cut) if deadline else None
    _calls.deadline = watch
    try:
        if timer is not None:
            timer.daemon = True
            timer.start()
        resp = session.post(url, data=body, headers=headers, timeout=timeout, allow_redirects=False, stream=True)
        try:
            content = _read_capped(resp, max_body)
        finally:
            resp.close()
        watch.finish()  # from here the watchdog leaves this call (and its pooled connection) alone
        if watch.expired:  # a close-delimited body cut short reads as a clean end: not an answer
            raise requests.Timeout(f"no complete answer within {deadline:g}s")
    except Exception as exc:
        if watch.expired and not isinstance(exc, requests.Timeout):
            raise requests.Timeout(f"no complete answer within {deadline:g}s") from exc
        raise
    finally:
        watch.finish()
        if timer is not None:
            timer.cancel()
        _calls.deadline = None
    resp._content = content
    # requests reads this private flag (Response.content); types-requests does not declare it.
    resp._content_consumed = True  # type: ignore[attr-defined]
    return resp


def _read_capped(resp: requests.Response, max_body: int | None) -> bytes:
    buf = bytearray()
    for chunk in resp.iter_content(chunk_size=16384):
        buf += chunk
        if max_body is not None and len(buf) > max_body:
            return bytes(buf[:max_body + 1])
    return bytes(buf)


def is_blocked(exc: BaseException) -> bool:
    """Whether `exc` is, wraps or was caused by a refusal to send: a BlockedAddress at connect time, or the
    UnsafeURL post() raises before connecting (requests and urllib3 may wrap either)."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, UnsafeURL):
            return True
        stack.extend((current.__cause__, current.__context__, getattr(current, "reason", None)))
        stack.extend(current.args)
    return False
