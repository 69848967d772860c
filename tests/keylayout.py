"""The Redis key layout read off jobsvc/engine/keys.py, for tests: every key shape `Keys` can produce, the words
those shapes are made of (names a user must be able to choose without harm), and a check that every key in
Redis has the type `keys.TYPES` gives it."""
from __future__ import annotations

import inspect
import re
from dataclasses import dataclass

import redis

from jobsvc.engine.keys import TYPES, Keys

NAME = "\x00"  # stands for a chosen name in a shape: never valid in one
# Keys the RQ library itself writes (a LeasedWorker registers with RQ's worker registry); jobsvc never names them.
RQ_OWNED = {"rq:workers": "set", "rq:worker:": "hash"}


@dataclass(frozen=True)
class Shape:
    member: str  # the Keys member that names it
    text: str  # the key, with NAME where a chosen name goes
    type: str

    @property
    def fixed(self) -> bool:
        return NAME not in self.text

    @property
    def family(self) -> str:
        """A named shape's text up to its first name: `<prefix>schedule:` for `<prefix>schedule:<id>:stats`."""
        return self.text.partition(NAME)[0]

    @property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("(?s)" + "(.+)".join(re.escape(part) for part in self.text.split(NAME)))

    @property
    def literal(self) -> int:
        """How much of the shape is fixed text: the most specific shape that matches a key names it."""
        return len(self.text.replace(NAME, ""))


def members() -> list[str]:
    """Every public member of Keys that names a key (`registry` only picks one of the others)."""
    return [m for m in dir(Keys) if not m.startswith("_") and m not in ("prefix", "registry")]


def shapes(prefix: str = "jobsvc:") -> list[Shape]:
    keys = Keys(prefix)
    out = []
    for member in members():
        value = getattr(keys, member)
        if callable(value):
            value = value(*[NAME] * len(inspect.signature(value).parameters))
        out.append(Shape(member, value, TYPES[member]))
    return out


def reserved_words(prefix: str = "jobsvc:") -> list[str]:
    """Every word the key shapes are built of ('disabled', 'due', 'leader', 'functions', 'stats', ...): each is a
    valid namespace, function name, schedule id and queue name, and must stay harmless as any of them."""
    words = set()
    for shape in shapes(prefix):
        words.update(w for w in re.split(r"[^A-Za-z0-9_.\-]+", shape.text) if w)
    return sorted(words)


def reserved_queue_names(prefix: str = "jobsvc:") -> list[str]:
    """The words, plus whole fixed keys with and without the prefix (queue names may contain ':')."""
    fixed = {s.text for s in shapes(prefix) if s.fixed}
    return sorted(set(reserved_words(prefix)) | fixed | {k[len(prefix):] for k in fixed if k.startswith(prefix)})


def expected_type(key: str, prefix: str = "jobsvc:") -> str | None:
    """The type the layout gives `key` (the most specific matching shape); None for a key it does not name."""
    matches = [s for s in shapes(prefix) if s.pattern.fullmatch(key)]
    if matches:
        return max(matches, key=lambda s: (s.fixed, s.literal)).type
    for start, kind in RQ_OWNED.items():
        if key == start or (start.endswith(":") and key.startswith(start)):
            return kind
    return None


def wrong_keys(conn: redis.Redis, prefix: str = "jobsvc:") -> dict[str, tuple[str, str | None]]:
    """Every key in Redis whose type is not the one the layout gives it: {key: (type, expected)}."""
    out = {}
    for raw in conn.scan_iter(count=1000):
        key = raw.decode()
        kind = conn.type(raw).decode()
        want = expected_type(key, prefix)
        if kind != want:
            out[key] = (kind, want)
    return out


def snapshot(conn: redis.Redis) -> dict[bytes, tuple[bytes, object]]:
    """Every key with its type and content: equal snapshots mean nothing was written. (Not DUMP: a hash read
    during Redis' incremental rehash may dump its fields in another order.)"""
    read = {b"string": conn.get, b"hash": conn.hgetall, b"set": conn.smembers, b"stream": conn.xrange,
            b"list": lambda k: conn.lrange(k, 0, -1), b"zset": lambda k: conn.zrange(k, 0, -1, withscores=True)}
    out = {}
    for key in conn.scan_iter(count=1000):
        kind = conn.type(key)
        out[key] = (kind, read[kind](key), conn.ttl(key) > 0)
    return out
