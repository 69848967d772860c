"""SSRF guard for handler and callback URLs: https to public addresses only, checked when saved and when sent.

check_url() is the save-time check. safe_session() + post() are the send-time guard: the session's
connections resolve the host themselves and connect only to addresses that pass, so a DNS answer that
changed since the URL was saved (rebinding) is refused, and redirects are never followed.
"""
from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import sys
import threading
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

import idna
import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from . import defaults
from .errors import UnsafeURL

if TYPE_CHECKING:  # the mixin below only ever joins urllib3's HTTPConnection (and HTTPSConnection)
    _ConnectionBase = HTTPConnection
else:
    _ConnectionBase = object

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

__all__ = ["BlockedAddress", "check_url", "is_blocked", "post", "safe_session"]


class BlockedAddress(UnsafeURL):
    """A connection refused at send time: the host resolved to a blocked address, or the request bypasses the guard."""

    code = "blocked_address"


# Instance metadata services: refused even with allow_private, because they hand out cloud credentials.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254",  # AWS, GCP, Azure, OpenStack, Oracle instance metadata
    "169.254.170.2",  # AWS ECS task metadata and credentials
    "fd00:ec2::254",  # AWS instance metadata over IPv6
    "100.100.100.200",  # Alibaba Cloud metadata
    "168.63.129.16",  # Azure WireServer: a public-looking address that only the platform answers
))
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"})

# Ranges the running Python's ipaddress may still call global (its tables changed across 3.11-3.13).
_EXTRA_BLOCKED = tuple(ipaddress.ip_network(n) for n in (
    "100.64.0.0/10",  # shared address space (carrier-grade NAT)
    "198.18.0.0/15",  # benchmarking
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20",  # documentation
    "fec0::/10",  # deprecated site-local
    "64:ff9b:1::/48",  # local-use NAT64 (RFC 8215): translates into the operator's own network
    "5f00::/16",  # SRv6 segment ids
))
_LABELS = {
    "100.64.0.0/10": "shared address space (CGNAT)",
    "198.18.0.0/15": "reserved for benchmarking",
    "fec0::/10": "site-local",
    "64:ff9b:1::/48": "local-use NAT64",
    "5f00::/16": "reserved",
}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_COMPAT = ipaddress.ip_network("::/96")  # deprecated IPv4-compatible ::a.b.c.d
_TRANSLATED = ipaddress.ip_network("::ffff:0:0:0/96")  # SIIT IPv4-translated ::ffff:0:a.b.c.d

_SCHEMES = {"https": 443, "http": 80}
_CONTROL = re.compile(r"[\x00-\x20\x7f\\]")  # whitespace, controls, and "\" which browsers read as "/"
_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")


def check_url(url: str, *, allow_private: bool = False, resolve: bool = True) -> str:
    """Return `url` normalised (IDNA host, canonical IP, no fragment) or raise UnsafeURL saying why."""
    if not isinstance(url, str) or not url:
        raise UnsafeURL("URL must be a non-empty string")
    if len(url) > defaults.URL_MAX:
        raise UnsafeURL(f"URL is longer than {defaults.URL_MAX} characters")
    if _CONTROL.search(url):
        raise UnsafeURL("URL contains whitespace, control characters or a backslash")
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise UnsafeURL(f"URL is not valid: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise UnsafeURL(f"URL scheme must be https, not {parts.scheme or 'missing'!r}")
    if scheme == "http" and not allow_private:
        raise UnsafeURL("URL scheme must be https (http is allowed only for local development)")
    if "@" in parts.netloc:
        raise UnsafeURL("URL must not contain a user name or password (userinfo)")
    raw_host, bracketed, port = _split_netloc(parts.netloc)
    host, ip = _parse_host(raw_host, bracketed)
    if ip is not None:
        reason = blocked_reason(ip, allow_private=allow_private)
        if reason:
            shown = f"[{raw_host}]" if bracketed else raw_host
            written = shown if str(ip) == raw_host else f"{shown} ({ip})"
            raise UnsafeURL(f"host {written} is {reason}")
        netloc_host = f"[{ip.compressed}]" if ip.version == 6 else str(ip)
    else:
        _check_name(host, allow_private)
        if resolve:
            _check_resolved(host, port or _SCHEMES[scheme], allow_private)
        netloc_host = host
    netloc = netloc_host if port in (None, _SCHEMES[scheme]) else f"{netloc_host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))


def blocked_reason(ip: IPAddress, *, allow_private: bool = False) -> str | None:
    """Why `ip` must not be called ("loopback", "a cloud metadata address", ...), or None when it may be."""
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        inner = blocked_reason(embedded, allow_private=allow_private)
        if inner:
            return f"an IPv6 form of {embedded}, which is {inner}"
        if ip.version == 6 and (ip.ipv4_mapped is not None or ip in _NAT64 or ip in _TRANSLATED):
            # these reach exactly that IPv4 address; DNS64 networks answer every IPv4-only name with NAT64
            return None
    if allow_private:
        return None
    return _range_reason(ip)


def _range_reason(ip: IPAddress) -> str | None:
    for net in _EXTRA_BLOCKED:
        if ip.version == net.version and ip in net:
            return _LABELS.get(str(net), "reserved for documentation")
    if ip.is_loopback:
        return "loopback"
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally routable"
    return None


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4, Teredo client), if any."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client: where the relay delivers the traffic
    low32 = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _NAT64 or ip in _TRANSLATED:
        return low32
    if ip in _COMPAT and int(ip) > 1:  # :: and ::1 are themselves, not compatible forms
        return low32
    return None


def _split_netloc(netloc: str) -> tuple[str, bool, int | None]:
    """(host as written, whether it was in brackets, port or None)."""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise UnsafeURL("URL host has an unclosed [")
        host, rest, bracketed = netloc[1:end], netloc[end + 1:], True
        if rest and not rest.startswith(":"):
            raise UnsafeURL("URL has text after the ] of its IPv6 host")
        port_text = rest[1:] if rest else ""
    else:
        host, _, port_text = netloc.partition(":")
        bracketed = False
    if not host:
        raise UnsafeURL("URL has no host")
    if not port_text:
        return host, bracketed, None
    if not port_text.isascii() or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise UnsafeURL(f"URL port {port_text!r} is not a number from 1 to 65535")
    return host, bracketed, int(port_text)


def _parse_host(raw: str, bracketed: bool) -> tuple[str, IPAddress | None]:
    """Decode the host (percent-encoding, IDNA, trailing dot): (ASCII name, None) or (text, IP literal)."""
    try:
        host = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise UnsafeURL(f"URL host {raw!r} has invalid percent-encoding") from None
    if bracketed:
        address, _, zone = host.partition("%")
        try:
            ip = ipaddress.IPv6Address(address)
        except ValueError:
            raise UnsafeURL(f"URL host [{raw}] is not a valid IPv6 address") from None
        if zone:
            # a zone picks a local interface: it only means something for non-public addresses
            reason = _range_reason(ip) or "not allowed with a zone id"
            raise UnsafeURL(f"URL host [{raw}] has an IPv6 zone id and is {reason}")
        return host, ip
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise UnsafeURL(f"URL host {raw!r} is not a valid domain name: {exc}") from None
    host = host.lower()
    host = host.removesuffix(".")  # "localhost." is localhost
    if not host:
        raise UnsafeURL("URL has no host")
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        # C resolvers and browsers read a host ending in a number as an IPv4 address in any of
        # inet_aton's forms; parse it the same way so that no encoding slips past as a "name"
        ip4 = _parse_ipv4(labels)
        if ip4 is None:
            raise UnsafeURL(f"URL host {raw!r} is not a valid IPv4 address")
        return host, ip4
    return host, None


def _parse_ipv4(labels: list[str]) -> ipaddress.IPv4Address | None:
    """inet_aton: 1-4 parts, each decimal, 0x hex or 0-prefixed octal; the last part fills the remaining bytes."""
    if not 1 <= len(labels) <= 4:
        return None
    numbers = []
    for label in labels:
        try:
            if label.startswith("0x"):
                numbers.append(int(label[2:] or "0", 16))
            elif len(label) > 1 and label.startswith("0"):
                numbers.append(int(label, 8))
            else:
                numbers.append(int(label, 10))
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def _check_name(host: str, allow_private: bool) -> None:
    if len(host) > 253 or not all(_LABEL.match(label) for label in host.split(".")):
        raise UnsafeURL(f"URL host {host!r} is not a valid domain name")
    if host in METADATA_NAMES:
        raise UnsafeURL(f"host {host} is a cloud metadata service")
    if allow_private:
        return
    if host == "localhost" or host.endswith(".localhost"):
        raise UnsafeURL(f"host {host} is loopback")
    if host.rsplit(".", 1)[-1] in ("local", "internal") or host.endswith(".home.arpa"):
        raise UnsafeURL(f"host {host} is a private-use name, not a public one")
    if "." not in host:
        # resolvers append their search domains to a single label: it names an internal host
        raise UnsafeURL(f"host {host} is not a fully qualified domain name")


def _resolve(host: str, port: int) -> list[tuple[Any, ...]]:
    """getaddrinfo for TCP; socket.gaierror when the name does not resolve (or resolves to nothing)."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, "no addresses")
    return infos


def _address_of(sockaddr: tuple[Any, ...]) -> IPAddress:
    return ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])


def _check_resolved(host: str, port: int, allow_private: bool) -> None:
    try:
        infos = _resolve(host, port)
    except (OSError, UnicodeError):
        raise UnsafeURL(f"host {host} does not resolve") from None
    for info in infos:
        ip = _address_of(info[4])
        reason = blocked_reason(ip, allow_private=allow_private)
        if reason:
            raise UnsafeURL(f"host {host} resolves to {ip}, which is {reason}")


# -- send time: connections that check the address they connect to ----------------------------------

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
                infos = _resolve(host, conn.port)
            except (OSError, UnicodeError) as exc:
                raise _resolution_error(conn, host, exc) from exc
        # every answer is checked before any is tried: one blocked answer means the name is not safe
        for info in infos:
            ip = _address_of(info[4])
            reason = blocked_reason(ip, allow_private=self.allow_private)
            if reason:
                raise BlockedAddress(f"host {host} resolves to {ip}, which is {reason}")
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
