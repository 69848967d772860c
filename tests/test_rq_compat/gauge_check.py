"""The gauge invariant of tests/test_jobsvc/test_gauges.py, for stores that also hold RQ's own keys (dependency
sets under rq:job:*) and jobs enqueued with RQ's own API."""
from __future__ import annotations

from collections import Counter

import redis

from jobsvc.engine.job import decode_hash
from jobsvc.engine.keys import Keys
from jobsvc.engine.states import state_of
from jobsvc.engine.stats import group_counts


def assert_gauges_exact(r: redis.Redis, prefix: str = "jobsvc:") -> None:
    """Every job jobsvc counts (its hash has a group) is counted once, in its own group and state: the gauges
    equal a recount of the job hashes (a scan: tests only). A job enqueued with RQ's own API is counted from
    the first jobsvc script that moves it (adopt_rq_job), so one RQ queued or deferred and jobsvc never moved is
    in neither (issue 12, counts part)."""
    actual: Counter[tuple[str, str]] = Counter()
    for key in r.scan_iter("rq:job:*"):
        if r.type(key) != b"hash":  # rq:job:<id>:dependents, rq:job::<id>:dependencies
            continue
        fields = decode_hash(r.hgetall(key))
        if fields.get("js_group"):
            actual[(fields["js_group"], state_of(fields).value)] += 1
    gauges = {(f"{g.queue}|{g.namespace}|{g.function}", state): n
              for g, counts in group_counts(r, Keys(prefix)).items() for state, n in counts.items() if n}
    assert gauges == dict(actual)
