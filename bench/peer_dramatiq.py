"""The Dramatiq side of the peer comparison (bench/peers.py): one no-op actor on a RedisBroker with
Dramatiq's default middleware. Workers run as `python -m dramatiq bench.peer_dramatiq -p K` (8 threads per
process, Dramatiq's default); REDIS_URL names the benchmark's private Redis."""
from __future__ import annotations

import os

import dramatiq
from dramatiq.brokers.redis import RedisBroker

QUEUE = "peer"
broker = RedisBroker(url=os.environ["REDIS_URL"])
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE)
def noop() -> None:
    return None
