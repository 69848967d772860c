"""Job functions of test_retries.py and test_dependencies.py, written as RQ's documentation writes them (they know
nothing of jobsvc); importable by RQ's own worker and by jobsvc workers alike."""
from __future__ import annotations

from rq import get_current_job

from tests import rqfuncs


def flaky(tag, failures):
    """Record `tag:<retries_left as the job sees it>`; fail the first `failures` times it runs, then return the
    number of runs."""
    rqfuncs.record(f"{tag}:{get_current_job().retries_left}")
    runs = sum(1 for call in rqfuncs.calls() if call.startswith(f"{tag}:"))
    if runs <= failures:
        raise ValueError(f"{tag} run {runs} failed")
    return runs
