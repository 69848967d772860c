"""Which IP addresses a handler or callback URL may reach, and why not (`blocked_reason`); the IPv4 forms C
resolvers accept (`parse_ipv4`); what a name resolves to and whether any answer is blocked. No URL parsing
(check.py) and no connections (connections.py)."""
from __future__ import annotations

import ipaddress
import socket
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


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
    return range_reason(ip)


def range_reason(ip: IPAddress) -> str | None:
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


def parse_ipv4(labels: list[str]) -> ipaddress.IPv4Address | None:
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


def resolve_host(host: str, port: int) -> list[tuple[Any, ...]]:
    """getaddrinfo for TCP; socket.gaierror when the name does not resolve (or resolves to nothing)."""
    infos = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    if not infos:
        raise socket.gaierror(socket.EAI_NONAME, "no addresses")
    return infos


def address_of(sockaddr: tuple[Any, ...]) -> IPAddress:
    return ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])


def blocked_answer(infos: list[tuple[Any, ...]], allow_private: bool) -> tuple[IPAddress, str] | None:
    """The first blocked address among getaddrinfo's answers, with why; None when every one may be reached.
    Every answer is checked before any is tried: one blocked answer means the name is not safe."""
    for info in infos:
        ip = address_of(info[4])
        reason = blocked_reason(ip, allow_private=allow_private)
        if reason:
            return ip, reason
    return None
