"""Job functions of test_lost_workers.py, written as RQ's documentation writes them (they know nothing of jobsvc)."""
from __future__ import annotations

import time

from rq import get_current_job

from tests import rqfuncs


def hang_first_run(tag):
    """Record `tag:<retries_left as the job sees it>`; the first run then hangs (its worker is killed meanwhile),
    a later one returns at once."""
    rqfuncs.record(f"{tag}:{get_current_job().retries_left}")
    if sum(1 for call in rqfuncs.calls() if call.startswith(f"{tag}:")) == 1:
        time.sleep(60)
    return tag
