"""Scoped API keys for the admin API: created with their secret shown once, stored hashed, revoked.

A key reads `jsk_<id>_<secret>`: the id finds the record, the secret is checked against its hash.
The secret is 256 random bits, so one SHA-256 is enough (no password stretching: nothing to guess);
the comparison is constant-time. Records live in one Redis hash, `<prefix>apikeys` (on a Redis Cluster
`<prefix>{#admin}:apikeys`), field = key id, value = JSON {id, name, scopes, namespaces, queues, hash, created_ms}.
The secret itself is never stored and never logged; `ApiKey` carries no secret.

Scopes are ordered: jobs:read < jobs:write < jobs:admin (each includes the ones below).
A key may be limited to namespaces and/or queues: it sees and acts on those jobs only."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import redis

from ..engine.connection import is_cluster
from ..engine.keys import Keys, cluster_name
from ..errors import NotFound, ValidationError
from ..validation import KEY_LIMITS, KEY_NAME, NAMESPACE_NAME, QUEUE_NAME, is_name

PREFIX = "jsk"
READ, WRITE, ADMIN = "jobs:read", "jobs:write", "jobs:admin"
SCOPES: tuple[str, ...] = (READ, WRITE, ADMIN)  # in increasing order of power
_LEVEL = {s: i for i, s in enumerate(SCOPES)}
_ID = re.compile(r"^[0-9a-f]{12}$")
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


def records_key(prefix: str, cluster: bool = False) -> str:
    """The hash of every key's record; on a Redis Cluster in the admin slot (`{#admin}`, keys.OWN_SLOT)."""
    return cluster_name(prefix, "apikeys") if cluster else Keys(prefix).apikeys


def _records(conn: redis.Redis, prefix: str) -> str:
    return records_key(prefix, is_cluster(conn))


def scope_level(scope: str) -> int:
    try:
        return _LEVEL[scope]
    except KeyError:
        raise ValidationError(f"unknown scope {scope!r}: one of {', '.join(SCOPES)}") from None


def grants(scopes: Iterable[str], needed: str) -> bool:
    """True when any of `scopes` is `needed` or above it."""
    want = scope_level(needed)
    return any(_LEVEL.get(s, -1) >= want for s in scopes)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class ApiKey:
    """A stored key without its secret. namespaces / queues None = not limited."""

    id: str
    name: str
    scopes: tuple[str, ...]
    namespaces: tuple[str, ...] | None = None
    queues: tuple[str, ...] | None = None
    created_ms: int = 0
    hash: str = field(default="", repr=False)

    def grants(self, needed: str) -> bool:
        return grants(self.scopes, needed)

    def public(self) -> dict[str, object]:
        """The record as shown to operators: everything but the hash."""
        out = asdict(self)
        out.pop("hash")
        return out

    def _json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def _from_json(cls, raw: bytes | str) -> ApiKey:
        d = json.loads(raw)
        return cls(id=d["id"], name=d["name"], scopes=tuple(d["scopes"]),
                   namespaces=tuple(d["namespaces"]) if d.get("namespaces") is not None else None,
                   queues=tuple(d["queues"]) if d.get("queues") is not None else None,
                   created_ms=int(d.get("created_ms", 0)), hash=d.get("hash", ""))


def _limits(values: Iterable[str] | None, pattern: re.Pattern[str], what: str) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise ValidationError(f"{what} must be a list of names")
    out = tuple(sorted(set(values)))
    if not out:
        raise ValidationError(f"{what}: give at least one, or leave it out for no limit")
    if len(out) > KEY_LIMITS.high:
        raise ValidationError(f"{what}: at most {KEY_LIMITS.high}")
    for v in out:
        if not is_name(v, pattern):
            raise ValidationError(f"bad name in {what}: {v!r}")
    return out


def new_key_id() -> str:
    """A key's public id (a module function so that a test can make ids predictable: listings order keys created in
    the same millisecond by id)."""
    return secrets.token_hex(6)


def create(conn: redis.Redis, prefix: str, name: str, scopes: Iterable[str],
           namespaces: Iterable[str] | None = None, queues: Iterable[str] | None = None) -> tuple[ApiKey, str]:
    """Store a new key; returns it and its secret `jsk_<id>_<secret>` (shown once, never stored)."""
    if not isinstance(name, str) or not KEY_NAME.holds(len(name.strip())):
        raise ValidationError(f"key name must be {KEY_NAME} characters")
    if isinstance(scopes, str):
        scopes = [scopes]
    wanted = sorted(set(scopes), key=scope_level)  # raises on an unknown scope
    if not wanted:
        raise ValidationError(f"give at least one scope: {', '.join(SCOPES)}")
    key_id = new_key_id()
    secret = secrets.token_urlsafe(32)
    key = ApiKey(id=key_id, name=name.strip(), scopes=tuple(wanted),
                 namespaces=_limits(namespaces, NAMESPACE_NAME, "namespaces"),
                 queues=_limits(queues, QUEUE_NAME, "queues"), created_ms=int(time.time() * 1000),
                 hash=_hash(secret))
    if not conn.hsetnx(_records(conn, prefix), key_id, key._json()):
        raise ValidationError("key id collision; try again")  # 48 random bits: practically never
    return key, f"{PREFIX}_{key_id}_{secret}"


def verify(conn: redis.Redis, prefix: str, presented: str) -> ApiKey | None:
    """The key a presented secret belongs to, or None. Constant-time in the secret."""
    parts = presented.split("_", 2) if isinstance(presented, str) else []
    key_id, secret = (parts[1], parts[2]) if len(parts) == 3 and parts[0] == PREFIX else ("", "")
    raw = conn.hget(_records(conn, prefix), key_id) if _ID.match(key_id) else None
    key = ApiKey._from_json(raw) if raw else None
    expected = key.hash if key is not None else _DUMMY_HASH
    ok = hmac.compare_digest(_hash(secret).encode(), expected.encode())
    return key if (key is not None and ok and secret) else None


def get(conn: redis.Redis, prefix: str, key_id: str) -> ApiKey:
    raw = conn.hget(_records(conn, prefix), key_id) if isinstance(key_id, str) and _ID.match(key_id) else None
    if not raw:
        raise NotFound(f"no API key {key_id}")
    return ApiKey._from_json(raw)


def list_keys(conn: redis.Redis, prefix: str) -> list[ApiKey]:
    """Every key, oldest first."""
    keys = [ApiKey._from_json(v) for v in conn.hvals(_records(conn, prefix))]
    return sorted(keys, key=lambda k: (k.created_ms, k.id))


def revoke(conn: redis.Redis, prefix: str, key_id: str) -> None:
    """Delete a key: it stops working on the next request."""
    if not (isinstance(key_id, str) and _ID.match(key_id)) or not conn.hdel(_records(conn, prefix), key_id):
        raise NotFound(f"no API key {key_id}")


def same_secret(presented: str, expected: str) -> bool:
    """Constant-time comparison of two secrets of any length (used for ADMIN_API_KEY)."""
    return hmac.compare_digest(_hash(presented).encode(), _hash(expected).encode())
