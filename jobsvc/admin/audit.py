"""The audit log: who changed what, when. A capped Redis stream, `<prefix>audit`, newest read first.

Each entry: key id, action, parameters (JSON), counts (JSON), outcome (HTTP status, when the caller has
one), time in epoch ms. Never a secret: callers pass the request's parameters, API keys travel in headers
(not recorded), and values under secret-looking keys (`password`, `token`, `api_key`, ... at any depth:
jobsvc.admin.redact, the dashboard's rule) are masked.

Size. Parameters over PARAMS_MAX characters of JSON keep the fields that fit, the others replaced by their
size, marked `"_truncated": true` and `"_size"` (the full length). One key writes at most PARAMS_PER_MINUTE
entries a minute with that much; its further entries in the same minute keep PARAMS_MAX_FLOOD (the
entry itself is always written: who did what stays on record). The stream keeps about MAXLEN entries. So
the log stays under about MAXLEN x (PARAMS_MAX + 200) bytes, and a key that floods it adds about
PARAMS_MAX_FLOOD + 200 bytes per call: the counter is one INCR (and a PEXPIRE a minute) in the same script
and round trip as the XADD."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from .. import defaults
from ..engine import scripts
from ..engine.connection import is_cluster, text
from ..engine.keys import Keys, cluster_name
from ..errors import ValidationError
from .redact import redact

# Entries kept (approximately: MAXLEN ~ trims whole stream nodes, cheap). A year of a busy operator team.
MAXLEN = 100_000
# Characters of JSON parameters kept per entry: a 100-job batch would otherwise store its whole payload.
PARAMS_MAX = 2048
# Entries a minute one key writes with PARAMS_MAX of parameters; the rest of that minute get PARAMS_MAX_FLOOD.
PARAMS_PER_MINUTE = 60
PARAMS_MAX_FLOOD = 256
RATE_WINDOW_MS = 60_000
MAX_LIMIT = defaults.PAGE_LIMIT_MAX
_CURSOR = re.compile(r"^\d{1,20}-\d{1,20}$")


def stream_key(prefix: str, cluster: bool = False) -> str:
    """The stream; on a Redis Cluster in the admin slot (`{#admin}`, keys.OWN_SLOT), with every rate key."""
    return cluster_name(prefix, "audit") if cluster else Keys(prefix).audit


def rate_key(prefix: str, key_id: str, cluster: bool = False) -> str:
    """Entries the key wrote in the current minute (expires with the minute); in the stream's slot, so that
    audit_record's two keys are one slot on a cluster."""
    return cluster_name(prefix, "audit_rate", key_id) if cluster else Keys(prefix).audit_rate(key_id)


@dataclass(frozen=True)
class Entry:
    id: str  # the stream id: also the cursor
    time_ms: int
    key_id: str
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    status: int | None = None


def _dumps(value: Any) -> str:
    # ASCII JSON: its length is its size in bytes; default=repr for what a Python caller passes.
    return json.dumps(value, default=repr, separators=(",", ":"), sort_keys=True)


def params_json(params: dict[str, Any], limit: int = PARAMS_MAX) -> str:
    """The parameters as kept: redacted, at most `limit` characters of JSON."""
    clean = redact({str(k): v for k, v in params.items()})
    text = _dumps(clean)
    if len(text) <= limit:
        return text
    marks = {"_truncated": True, "_size": len(text)}
    return _dumps({**marks, **_fit(clean, limit - len(_dumps(marks)) + 1)})


def _fit(fields: dict[Any, Any], room: int) -> dict[Any, Any]:
    """The fields that fit in `room` characters of JSON: the smallest whole (ids, names, filters), a larger
    object cut the same way, any other value replaced by its size; a field whose name alone does not fit
    is left out."""
    out: dict[Any, Any] = {}
    used = 2  # the braces
    for value_size, key in sorted(((len(_dumps(v)), k) for k, v in fields.items()), key=lambda t: t[0]):
        budget = room - used - len(_dumps(key)) - 2  # the colon, and a comma
        value = fields[key]
        if value_size > budget:
            value = _fit(value, budget) if isinstance(value, dict) and budget > 16 else f"<{value_size:,} characters>"
            if len(_dumps(value)) > budget:
                continue
        out[key] = value
        used += len(_dumps(key)) + 2 + len(_dumps(value))
    return out


def record(conn: redis.Redis, prefix: str, key_id: str, action: str, params: dict[str, Any] | None = None,
           counts: dict[str, Any] | None = None, status: int | None = None) -> str:
    """Append one entry; returns its id. Time is Redis' (the stream id), the same on every API process."""
    full = params_json(params or {})
    short = full if len(full) <= PARAMS_MAX_FLOOD else params_json(params or {}, PARAMS_MAX_FLOOD)
    cluster = is_cluster(conn)
    entry_id = scripts.call(conn, "audit_record", (stream_key(prefix, cluster), rate_key(prefix, key_id, cluster)),
                            (MAXLEN, PARAMS_PER_MINUTE, RATE_WINDOW_MS, full, short, key_id, action,
                             _dumps(counts or {}), "" if status is None else str(status)))
    return text(entry_id)


def _entry(entry_id: bytes | str, raw: dict[bytes, bytes]) -> Entry:
    eid = text(entry_id)
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
    # XREVRANGE entries always have an id and fields; redis-py's type allows None for XCLAIM's deleted ones.
    key = stream_key(prefix, is_cluster(conn))
    rows = cast("list[tuple[bytes, dict[bytes, bytes]]]", conn.xrevrange(key, high, "-", count=limit + 1))
    entries = [_entry(i, raw) for i, raw in rows[:limit]]
    return entries, (entries[-1].id if len(rows) > limit else None)
