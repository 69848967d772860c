"""Every key of the test Redis with its value, to assert that a refused call wrote nothing.

Values are read by type, not by DUMP: DUMP of a hash in hashtable encoding follows the table's order, which
an incremental rehash (any read may step it) changes without changing the hash."""
from __future__ import annotations

from typing import Any

import redis

READ = {
    b"string": lambda r, k: r.get(k),
    b"hash": lambda r, k: r.hgetall(k),
    b"list": lambda r, k: r.lrange(k, 0, -1),
    b"set": lambda r, k: r.smembers(k),
    b"zset": lambda r, k: r.zrange(k, 0, -1, withscores=True),
    b"stream": lambda r, k: r.xrange(k),
}


def state(r: redis.Redis, skip: tuple[str, ...] = ()) -> dict[bytes, Any]:
    """{key: (type, value)} of every key whose name does not start with one of `skip`."""
    out = {}
    for key in r.scan_iter(count=1000):
        if skip and key.decode(errors="replace").startswith(skip):
            continue
        kind = r.type(key)
        out[key] = (kind, READ[kind](r, key))
    return out
