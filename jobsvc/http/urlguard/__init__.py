"""SSRF guard for handler and callback URLs: https to public addresses only, checked when saved and when sent.

check_url() is the save-time check. safe_session() + post() are the send-time guard: the session's
connections resolve the host themselves and connect only to addresses that pass, so a DNS answer that
changed since the URL was saved (rebinding) is refused, and redirects are never followed.

The code is split by concern: `addresses` (which IP addresses are blocked and why, what a name resolves to),
`check` (check_url: parsing and checking a URL when it is saved) and `connections` (the send-time guard:
connections pinned to checked addresses, safe_session, post, is_blocked). This package re-exports them.
"""
from __future__ import annotations

from .addresses import METADATA_ADDRESSES, METADATA_NAMES, IPAddress, blocked_reason
from .check import check_url
from .connections import (
           BlockedAddress,
           GuardedAdapter,
           GuardedSession,
           is_blocked,
           post,
           safe_session,
)

__all__ = ["METADATA_ADDRESSES", "METADATA_NAMES", "BlockedAddress", "GuardedAdapter", "GuardedSession", "IPAddress",
           "blocked_reason", "check_url", "is_blocked", "post", "safe_session"]
