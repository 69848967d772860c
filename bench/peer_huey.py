"""The Huey side of the peer comparison (bench/peers.py): one no-op task on a RedisHuey with Huey's defaults
(list storage, blocking BRPOP, results on but a None result not stored). The consumer runs as
`python -m huey.bin.huey_consumer bench.peer_huey.huey -w K -k process`; REDIS_URL names the benchmark's
private Redis (the benchmark sets it for itself and its children)."""
from __future__ import annotations

import os

from huey import RedisHuey

huey = RedisHuey("bench", url=os.environ["REDIS_URL"])


@huey.task()
def noop() -> None:
    return None
