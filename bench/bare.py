"""A bare Redis consumer, the floor under any job system on this machine: one BLPOP per item and
nothing else (no job hash, no registry, no result). Run by the benchmark as a child process:

    python -m bench.bare URL KEY drain   # pop until the list stays empty 1 s; store first/last pop times
    python -m bench.bare URL KEY echo    # pop forever; push '<item> <pop time>' to KEY:out; 'stop' ends
"""
from __future__ import annotations

import sys
import time

import redis


def main(argv: list[str]) -> int:
    url, key, mode = argv
    r = redis.Redis.from_url(url)
    r.sadd(f"{key}:consumers", f"{time.time()}")  # tells the benchmark this consumer is up
    if mode == "drain":
        n, first, last = 0, 0.0, 0.0
        while True:
            item = r.blpop([key], timeout=1)
            if item is None:
                break
            last = time.time()
            first = first or last
            n += 1
        r.rpush(f"{key}:done", f"{n} {first!r} {last!r}")
        return 0
    if mode == "echo":
        while True:
            _, value = r.blpop([key])
            now = time.time()
            if value == b"stop":
                return 0
            r.rpush(f"{key}:out", f"{value.decode()} {now!r}")
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
