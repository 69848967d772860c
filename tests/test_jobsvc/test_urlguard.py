"""SSRF guard: every blocked URL form is refused when saved, and again at connect time (DNS rebinding)."""
from __future__ import annotations

import http.server
import re
import socket
import threading
from typing import ClassVar

import pytest
import requests

from jobsvc.errors import UnsafeURL, ValidationError
from jobsvc.http import urlguard
from jobsvc.http.urlguard import BlockedAddress, check_url, is_blocked, post, safe_session

PUBLIC_V4 = "93.184.216.34"
# A refusal to send, as raised or as requests / urllib3 may wrap it (is_blocked then finds it inside).
REFUSED = (BlockedAddress, requests.RequestException)

BLOCKED_LITERALS = [
    # plain IPv4 ranges
    "https://127.0.0.1/",
    "https://10.0.0.1/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://169.254.1.1/",
    "https://0.0.0.0/",
    "https://100.64.0.1/",
    "https://198.18.0.1/",
    "https://192.0.2.1/",
    "https://224.0.0.1/",
    "https://240.0.0.1/",
    "https://255.255.255.255/",
    # cloud metadata
    "https://169.254.169.254/latest/meta-data/",
    "https://169.254.170.2/v2/credentials",
    "https://100.100.100.200/",
    "https://[fd00:ec2::254]/",
    # IPv4 encodings that C resolvers and browsers accept
    "https://2130706433/",
    "https://0x7f000001/",
    "https://0x7f.0.0.1/",
    "https://0177.0.0.1/",
    "https://017700000001/",
    "https://127.1/",
    "https://127.0.1/",
    "https://0/",
    "https://0xA9FEA9FE/",
    # IPv6 literals and IPv4 embedded in IPv6
    "https://[::1]/",
    "https://[::]/",
    "https://[fc00::1]/",
    "https://[fe80::1]/",
    "https://[fec0::1]/",
    "https://[ff02::1]/",
    "https://[2001:db8::1]/",
    "https://[::ffff:127.0.0.1]/",
    "https://[::ffff:7f00:1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[::127.0.0.1]/",
    "https://[64:ff9b::10.0.0.1]/",
    "https://[64:ff9b::a9fe:a9fe]/",
    "https://[2002:7f00:1::]/",
    "https://[2002:a9fe:a9fe::1]/",
    "https://[2001:0:4136:e378:8000:63bf:80ff:fffe]/",  # Teredo, client 127.0.0.1
    "https://[fe80::1%25eth0]/",
    # names
    "https://localhost/",
    "https://localhost./",
    "https://LOCALHOST:8443/",
    "https://api.localhost/",
    "https://%6c%6f%63%61%6c%68%6f%73%74/",
    "https://%31%32%37.0.0.1/",
    "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/",  # fullwidth "localhost"
    "https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/",  # fullwidth 127.0.0.1
    "https://127\u30020\u30020\u30021/",  # ideographic full stops
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://printer.local/",
    "https://redis/",
]


@pytest.mark.parametrize("url", BLOCKED_LITERALS)
def test_blocked_host_forms_are_refused(url):
    with pytest.raises(UnsafeURL):
        check_url(url, resolve=False)


@pytest.mark.parametrize(("url", "why"), [
    ("http://example.com/", "https"),
    ("ftp://example.com/", "https"),
    ("file:///etc/passwd", "https"),
    ("gopher://example.com/", "https"),
    ("example.com/hook", "https"),
    ("https://user:pw@example.com/", "userinfo"),
    ("https://user@example.com/", "userinfo"),
    ("https://example.com@127.0.0.1/", "userinfo"),
    ("https:///path", "no host"),
    ("https://:443/", "no host"),
    ("https://example.com/" + "a" * 2048, "longer than 2048"),
    ("https://example.com/a b", "whitespace"),
    ("https://example.com/\r\nX-Injected: 1", "whitespace"),
    ("https://example.com\\@127.0.0.1/", "backslash"),
    ("https://example.com:0/", "port"),
    ("https://example.com:65536/", "port"),
    ("https://example.com:44x/", "port"),
    ("https://[::1/", "IPv6|unclosed"),  # urlsplit's own message on some Python versions
    ("https://[127.0.0.1]/", "IPv4|IPv6"),
    ("https://256.0.0.1/", "IPv4"),
    ("https://1.2.3.4.5/", "IPv4"),
    ("https://08.0.0.1/", "IPv4"),
    ("https://exa mple.com/", "whitespace"),
    ("https://exa_mple..com/", "domain name"),
    ("https://%ff.example/", "percent-encoding"),
])
def test_malformed_or_unsafe_urls_are_refused_with_reason(url, why):
    with pytest.raises(UnsafeURL, match=why):
        check_url(url, resolve=False)


def test_refusal_is_a_validation_error_with_its_own_code():
    with pytest.raises(ValidationError) as info:
        check_url("https://127.0.0.1/", resolve=False)
    assert info.value.code == "unsafe_url"


@pytest.mark.parametrize(("url", "reason"), [
    ("https://127.0.0.1/", "127.0.0.1 is loopback"),
    ("https://2130706433/", "(127.0.0.1) is loopback"),
    ("https://[::ffff:7f00:1]/", "IPv6 form of 127.0.0.1, which is loopback"),
    ("https://169.254.169.254/", "cloud metadata"),
    ("https://10.1.2.3/", "private"),
    ("https://100.64.0.1/", "CGNAT"),
])
def test_refusal_message_names_the_address_and_range(url, reason):
    with pytest.raises(UnsafeURL, match=reason.replace("(", r"\(").replace(")", r"\)")):
        check_url(url, resolve=False)


@pytest.mark.parametrize(("url", "normalised"), [
    (f"https://{PUBLIC_V4}/", f"https://{PUBLIC_V4}/"),
    ("https://[2606:2800:220:1:248:1893:25c8:1946]/", "https://[2606:2800:220:1:248:1893:25c8:1946]/"),
    ("https://[64:ff9b::5db8:d822]/", "https://[64:ff9b::5db8:d822]/"),  # NAT64 of a public address
    ("https://[::ffff:93.184.216.34]/", "https://[::ffff:5db8:d822]/"),
    ("https://0x5db8d822/hook", f"https://{PUBLIC_V4}/hook"),
    ("HTTPS://Example.COM/Hook?x=1#frag", "https://example.com/Hook?x=1"),
    ("https://example.com:443/", "https://example.com/"),
    ("https://example.com:8443", "https://example.com:8443/"),
    ("https://example.com./", "https://example.com/"),
    ("https://b\u00fccher.example/", "https://xn--bcher-kva.example/"),
])
def test_public_urls_are_accepted_and_normalised(url, normalised):
    assert check_url(url, resolve=False) == normalised


def test_allow_private_accepts_loopback_http():
    assert check_url("http://127.0.0.1:8080/x", allow_private=True) == "http://127.0.0.1:8080/x"


@pytest.mark.parametrize("url", ["http://localhost:5000/", "https://10.0.0.5/", "http://[::1]:8000/"])
def test_allow_private_accepts_private_hosts(url):
    check_url(url, allow_private=True, resolve=False)


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://0xA9FEA9FE/",
    "http://169.254.170.2/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://metadata.google.internal/",
])
def test_allow_private_still_refuses_metadata(url):
    with pytest.raises(UnsafeURL, match="metadata"):
        check_url(url, allow_private=True, resolve=False)


# -- resolution: a public-looking name is judged by the addresses it resolves to ---------------------

def _answers(*addresses: str):
    """A fake getaddrinfo answering every name with `addresses` (so tests never use the real DNS)."""
    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        out = []
        for address in addresses:
            if ":" in address:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return out
    return getaddrinfo


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "::1", "fe80::1%eth0",
                                     "::ffff:192.168.0.1", "100.64.0.1"])
def test_name_resolving_to_blocked_address_is_refused(monkeypatch, address):
    monkeypatch.setattr(socket, "getaddrinfo", _answers(address))
    with pytest.raises(UnsafeURL, match="resolves to"):
        check_url("https://hooks.example.com/")


def test_name_with_any_blocked_answer_is_refused(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _answers(PUBLIC_V4, "10.0.0.1"))
    with pytest.raises(UnsafeURL, match=re.escape("resolves to 10.0.0.1, which is private")):
        check_url("https://hooks.example.com/")


def test_name_resolving_to_public_address_is_accepted(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _answers(PUBLIC_V4, "2606:2800:220:1:248:1893:25c8:1946"))
    assert check_url("https://hooks.example.com/x") == "https://hooks.example.com/x"


def test_name_that_does_not_resolve_is_refused(monkeypatch):
    def nxdomain(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    monkeypatch.setattr(socket, "getaddrinfo", nxdomain)
    with pytest.raises(UnsafeURL, match="does not resolve"):
        check_url("https://nowhere.example.com/")


def test_resolve_false_does_not_look_names_up(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("resolved")
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    assert check_url("https://hooks.example.com/", resolve=False) == "https://hooks.example.com/"


def test_allow_private_accepts_name_resolving_to_loopback_but_not_metadata(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _answers("127.0.0.1"))
    check_url("http://dev.example:8080/", allow_private=True)
    monkeypatch.setattr(socket, "getaddrinfo", _answers("169.254.169.254"))
    with pytest.raises(UnsafeURL, match="metadata"):
        check_url("http://dev.example:8080/", allow_private=True)


# -- send time ---------------------------------------------------------------------------------------

@pytest.fixture
def listener():
    """A listening socket on 127.0.0.1 that nothing should ever reach."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def _assert_nothing_connected(sock: socket.socket) -> None:
    with pytest.raises(BlockingIOError):
        sock.accept()


def test_rebinding_to_loopback_is_refused_at_send_time(monkeypatch, listener):
    port = listener.getsockname()[1]
    url = f"https://rebind.example:{port}/hook"
    monkeypatch.setattr(socket, "getaddrinfo", _answers(PUBLIC_V4))
    check_url(url)  # saved while the name pointed at a public address
    monkeypatch.setattr(socket, "getaddrinfo", _answers("127.0.0.1"))
    with safe_session() as session, pytest.raises(REFUSED) as info:
        post(session, url, body=b"{}", headers={}, timeout=2)
    assert is_blocked(info.value)
    _assert_nothing_connected(listener)


def test_send_time_refuses_if_any_answer_is_blocked(monkeypatch, listener):
    port = listener.getsockname()[1]
    monkeypatch.setattr(socket, "getaddrinfo", _answers(PUBLIC_V4, "127.0.0.1"))
    with safe_session() as session, pytest.raises(BlockedAddress, match=re.escape("127.0.0.1")):
        session.post(f"https://rebind.example:{port}/", data=b"{}", timeout=2)
    _assert_nothing_connected(listener)


def test_send_time_refuses_metadata_even_with_allow_private(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _answers("169.254.169.254"))
    with safe_session(allow_private=True) as session, pytest.raises(REFUSED) as info:
        post(session, "http://dev.example/latest/meta-data/", body=b"", headers={}, timeout=2)
    assert is_blocked(info.value)


def test_send_time_refuses_plain_http_without_allow_private(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _answers(PUBLIC_V4))
    with safe_session() as session, pytest.raises(BlockedAddress, match="https is required"):
        session.post("http://hooks.example.com/", timeout=2)


def test_session_refuses_proxies(monkeypatch):
    monkeypatch.setattr(socket, "getaddrinfo", _answers(PUBLIC_V4))
    with safe_session() as session, pytest.raises(REFUSED) as info:
        session.post("https://hooks.example.com/", proxies={"https": "http://proxy.example:3128"}, timeout=2)
    assert is_blocked(info.value)


def test_session_ignores_environment_proxies(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    assert safe_session().trust_env is False


def test_post_checks_url_before_sending(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("connected")
    monkeypatch.setattr(socket, "getaddrinfo", fail)
    with safe_session() as session, pytest.raises(UnsafeURL, match="https"):
        post(session, "http://hooks.example.com/", body=b"", headers={}, timeout=2)


def _raise_wrapped_refusal() -> None:
    try:
        raise BlockedAddress("host x resolves to 127.0.0.1")
    except BlockedAddress as inner:
        raise ConnectionError(inner) from None


def test_is_blocked_finds_a_wrapped_cause():
    with pytest.raises(ConnectionError) as info:
        _raise_wrapped_refusal()
    assert is_blocked(info.value)
    assert not is_blocked(ConnectionError("refused"))


class _Handler(http.server.BaseHTTPRequestHandler):
    hits: ClassVar[list[tuple[str, bytes]]] = []  # shared by the handler instances, one per request

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.hits.append((self.path, body))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "11")
        self.end_headers()
        self.wfile.write(b'{"ok":true}')

    def log_message(self, *args):
        pass


@pytest.fixture
def local_server():
    _Handler.hits = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Handler.hits
    server.shutdown()
    server.server_close()


def test_allow_private_posts_to_local_http_server(local_server):
    base, hits = local_server
    with safe_session(allow_private=True) as session:
        resp = post(session, f"{base}/ok", body=b'{"a":1}', headers={"Content-Type": "application/json"}, timeout=5)
    assert resp.status_code == 200 and resp.json() == {"ok": True}
    assert hits == [("/ok", b'{"a":1}')]


def test_redirect_is_returned_not_followed(local_server):
    base, hits = local_server
    with safe_session(allow_private=True) as session:
        resp = post(session, f"{base}/redirect", body=b"{}", headers={}, timeout=5)
    assert resp.status_code == 302
    assert [path for path, _ in hits] == ["/redirect"]


def test_session_never_follows_redirects_even_when_asked(local_server):
    base, hits = local_server
    with safe_session(allow_private=True) as session:
        resp = session.post(f"{base}/redirect", data=b"{}", timeout=5, allow_redirects=True)
    assert resp.status_code == 302
    assert [path for path, _ in hits] == ["/redirect"]


def test_strict_session_refuses_local_server(local_server):
    base, hits = local_server
    https_url = base.replace("http://", "https://")
    with safe_session() as session, pytest.raises(BlockedAddress, match="loopback"):
        session.post(https_url, data=b"{}", timeout=5)
    assert hits == []


def test_blocked_reason_is_public():
    import ipaddress
    assert urlguard.blocked_reason(ipaddress.ip_address("127.0.0.1")) == "loopback"
    assert urlguard.blocked_reason(ipaddress.ip_address(PUBLIC_V4)) is None


# -- the whole matrix again at send time --------------------------------------------------------------

@pytest.mark.parametrize("url", BLOCKED_LITERALS)
def test_blocked_host_forms_are_refused_at_send_time(url):
    with safe_session() as session, pytest.raises(UnsafeURL):
        post(session, url, body=b"{}", headers={}, timeout=2)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "::1", "fc00::1", "fe80::1", "::ffff:127.0.0.1",
                                     "fd00:ec2::254", "64:ff9b::a00:1", "2002:a00:1::1"])
def test_name_resolving_to_blocked_address_is_refused_at_send_time(monkeypatch, listener, address):
    monkeypatch.setattr(socket, "getaddrinfo", _answers(address))
    with safe_session() as session, pytest.raises(REFUSED) as info:
        post(session, f"https://hooks.example.com:{listener.getsockname()[1]}/x", body=b"{}", headers={}, timeout=2)
    assert is_blocked(info.value)
    _assert_nothing_connected(listener)


# -- the deadline bounds the whole answer, however it is framed ----------------------------------------

@pytest.mark.parametrize("head", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 100000\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n",  # headers never finish
])
def test_a_trickled_answer_is_cut_off_at_the_deadline(head):
    import requests

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    stop = threading.Event()
    chunked = b"chunked" in head

    def trickle():
        conn, _ = listener.accept()
        conn.recv(65536)
        try:
            conn.sendall(head)
            while not stop.is_set():
                conn.sendall(b"1\r\nx\r\n" if chunked else b"x" if head.endswith(b"\r\n\r\n") else b"X-A: b\r\n")
                stop.wait(0.2)
        except OSError:
            pass
        conn.close()

    threading.Thread(target=trickle, daemon=True).start()
    try:
        with safe_session(allow_private=True) as session, pytest.raises(requests.Timeout):
            # Each read gets a byte within 0.2 s: only the 1 s deadline can end this.
            post(session, f"http://127.0.0.1:{listener.getsockname()[1]}/", body=b"{}", headers={}, timeout=5,
                 max_body=1024, deadline=1.0)
    finally:
        stop.set()
        listener.close()
