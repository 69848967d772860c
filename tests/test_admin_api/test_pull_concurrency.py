"""10 concurrent HTTP claimers on 1,000 jobs against a real threaded HTTP server: no job is held by two
claimers at once, and every job is acked exactly once and ends completed."""
from __future__ import annotations

import logging
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from itertools import pairwise

import pytest
import requests
from werkzeug.serving import make_server

from jobsvc.engine.keys import Keys
from tests.test_admin_api.support import ADMIN_KEY, NOOP

JOBS = 1000
CLAIMERS = 10
DEADLINE = 90.0


@dataclass
class Held:
    job_id: str
    token: str
    claimer: int
    claimed: float  # monotonic, before the claim request went out: the earliest the lease could start
    acked: float = 0.0  # after the ack's answer came back: the latest it could end
    ack_status: int = 0


@pytest.fixture
def server(app):
    quiet = logging.getLogger("werkzeug")
    level = quiet.level
    quiet.setLevel(logging.WARNING)  # not a line per request
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_port}/api/v1"
    srv.shutdown()
    thread.join(10)
    quiet.setLevel(level)


def claimer(base: str, n: int, out: list[Held], errors: list[str]) -> None:
    rng = random.Random(n)
    deadline = time.monotonic() + DEADLINE
    with requests.Session() as http:
        http.headers["X-Admin-Key"] = ADMIN_KEY
        while time.monotonic() < deadline:
            started = time.monotonic()
            resp = http.post(f"{base}/jobs/claim", json={"queue": "pq", "count": rng.randint(1, 5),
                                                          "visibility_timeout": 60}, timeout=30)
            if resp.status_code != 200:
                errors.append(f"claim {resp.status_code} {resp.text[:200]}")
                return
            jobs = resp.json()["jobs"]
            if not jobs:
                return  # every job was enqueued up front and none can come back: the queue is drained
            for job in jobs:
                held = Held(job["id"], job["token"], n, started)
                out.append(held)
                if rng.random() < 0.1:
                    hb = http.post(f"{base}/jobs/{job['id']}/heartbeat", json={"token": job["token"]}, timeout=30)
                    if hb.status_code != 200:
                        errors.append(f"heartbeat {hb.status_code} {hb.text[:200]}")
                ack = http.post(f"{base}/jobs/{job['id']}/ack",
                                json={"token": job["token"], "status": "completed", "result": [n, job["id"]]},
                                timeout=30)
                held.acked, held.ack_status = time.monotonic(), ack.status_code
        errors.append(f"claimer {n} still busy after {DEADLINE}s")


def test_concurrent_claimers_never_share_a_job(server, client, r):
    ids = {e.id for e in client.enqueue_pull_many([client.job(NOOP, queue="pq") for _ in range(JOBS)])}
    per_claimer: list[list[Held]] = [[] for _ in range(CLAIMERS)]
    errors: list[str] = []
    threads = [threading.Thread(target=claimer, args=(server, n, per_claimer[n], errors)) for n in range(CLAIMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE + 30)
    assert not any(t.is_alive() for t in threads), "a claimer hung"
    assert errors == []

    held = [h for hs in per_claimer for h in hs]
    by_job: dict[str, list[Held]] = defaultdict(list)
    for h in held:
        by_job[h.job_id].append(h)
    assert set(by_job) == ids
    # No job was held by two claimers at once: a job's holding intervals never overlap (here, with leases
    # that cannot expire, each job is claimed exactly once).
    for job_id, holds in by_job.items():
        holds.sort(key=lambda h: h.claimed)
        for a, b in pairwise(holds):
            assert b.claimed >= a.acked, f"{job_id} held by claimers {a.claimer} and {b.claimer} at once"
    assert all(len(holds) == 1 for holds in by_job.values())
    assert all(h.ack_status == 200 for h in held)
    assert sum(1 for hs in per_claimer if hs) > 1, "only one claimer got work: no concurrency was tested"

    pipe = r.pipeline(transaction=False)
    for job_id in ids:
        pipe.hget(Keys.job(job_id), "js_state")
    assert set(pipe.execute()) == {b"completed"}
    assert r.zcard(Keys().leases) == 0
    assert client.stats("pq")["completed"] == JOBS
    sample = next(iter(held))
    assert client.result(sample.job_id) == [sample.claimer, sample.job_id]
