"""check_url(): the save-time check of a handler or callback URL (scheme, no userinfo, a valid host that is a
public name or address, resolving only to public addresses), returning it normalised."""
from __future__ import annotations

import ipaddress
import re
from urllib.parse import unquote, urlsplit, urlunsplit

import idna

from ... import defaults
from ...errors import UnsafeURL
from .addresses import (
    METADATA_NAMES,
    IPAddress,
    blocked_answer,
    blocked_reason,
    parse_ipv4,
    range_reason,
    resolve_host,
)

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
            reason = range_reason(ip) or "not allowed with a zone id"
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
        ip4 = parse_ipv4(labels)
        if ip4 is None:
            raise UnsafeURL(f"URL host {raw!r} is not a valid IPv4 address")
        return host, ip4
    return host, None



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



def _check_resolved(host: str, port: int, allow_private: bool) -> None:
    try:
        infos = resolve_host(host, port)
    except (OSError, UnicodeError):
        raise UnsafeURL(f"host {host} does not resolve") from None
    blocked = blocked_answer(infos, allow_private)
    if blocked:
        raise UnsafeURL(f"host {host} resolves to {blocked[0]}, which is {blocked[1]}")
