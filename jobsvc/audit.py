"""The audit log: who changed what, when. A capped Redis stream, `<prefix>audit`, newest read first.

Each entry: key id, action, parameters (JSON, truncated past PARAMS_MAX), counts (JSON), outcome
(HTTP status, when the caller has one), time in epoch ms. Never a secret: callers pass the
request's parameters, and API keys travel in headers, which are not recorded."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import redis

from .errors import ValidationError
from .keys import Keys

# Entries kept (approximately: MAXLEN ~ trims whole stream nodes, cheap). A year of a busy operator team.
MAXLEN = 100_000
# Characters of JSON parameters kept per entry: a 100-job batch would otherwise store its whole payload.
PARAMS_MAX = 8192
MAX_LIMIT = 500
_CURSOR = re.compile(r"^\d{1,20}-\d{1,20}$")


def stream_key(prefix: str) -> str:
    return Keys(prefix).prefix + "audit"


@dataclass(frozen=True)
class Entry:
    id: str  # the stream id: also the cursor
    time_ms: int
    key_id: str
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    status: int | None = None


def _params_json(params: dict[str, Any]) -> str:
    text = json.dumps(params, default=repr, separators=(",", ":"), sort_keys=True)
    if len(text) > PARAMS_MAX:
        text = json.dumps({"_truncated": text[:PARAMS_MAX]}, separators=(",", ":"))
    return text


def record(conn: redis.Redis, prefix: str, key_id: str, action: str, params: dict[str, Any] | None = None,
           counts: dict[str, Any] | None = None, status: int | None = None) -> str:
    """Append one entry; returns its id. Time is Redis' (the stream id), the same on every API process."""
    fields = {"key_id": key_id, "action": action, "params": _params_json(params or {}),
              "counts": json.dumps(counts or {}, default=repr, separators=(",", ":"))}
    if status is not None:
        fields["status"] = str(status)
    entry_id = conn.xadd(stream_key(prefix), fields, maxlen=MAXLEN, approximate=True)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def _entry(entry_id: bytes | str, raw: dict[bytes, bytes]) -> Entry:
    eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    f = {k.decode(): v.decode(errors="replace") for k, v in raw.items()}

    def loads(text: str | None) -> dict[str, Any]:
        try:
            value = json.loads(text) if text else {}
        except ValueError:
            return {"_unreadable": text}
        return value if isinstance(value, dict) else {"value": value}

    return Entry(id=eid, time_ms=int(eid.split("-")[0]), key_id=f.get("key_id", ""), action=f.get("action", ""),
                 params=loads(f.get("params")), counts=loads(f.get("counts")),
                 status=int(f["status"]) if f.get("status", "").isdigit() else None)


def list_entries(conn: redis.Redis, prefix: str, cursor: str | None = None,
                 limit: int = 50) -> tuple[list[Entry], str | None]:
    """One page, newest first, and the cursor of the next (older) page; None when there is no more."""
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationError(f"limit must be 1-{MAX_LIMIT}")
    if cursor is not None:
        if not _CURSOR.match(cursor) or any(int(p) >= 2**64 for p in cursor.split("-")):
            raise ValidationError("malformed cursor")
        if cursor == "0-0" or cursor.strip("0-") == "":
            return [], None  # nothing is older than the first possible id
    high = f"({cursor}" if cursor else "+"
    rows = conn.xrevrange(stream_key(prefix), high, "-", count=limit + 1)
    entries = [_entry(i, raw) for i, raw in rows[:limit]]
    return entries, (entries[-1].id if len(rows) > limit else None)
