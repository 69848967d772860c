"""Job functions of test_start_latency.py, written as RQ's documentation writes them."""
from __future__ import annotations

import time


def started_at():
    """Return when the job's code started (epoch seconds)."""
    return time.time()
