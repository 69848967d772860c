"""A Redis restart under a running worker: the worker waits it out and the job's outcome lands."""
from __future__ import annotations

from jobsvc import Client, Config, State
from jobsvc.embedded import EmbeddedRedis
from tests.conftest import read_pid, wait_for


def test_worker_survives_a_redis_restart_and_records_the_outcome(procs, tmp_path):
    server = EmbeddedRedis(tmp_path / "redis", persist=True).start()
    try:
        client = Client(server.url, Config(redis_url=server.url))
        marker = tmp_path / "started"
        e = client.enqueue("tests.jobfuncs.touch_then_sleep", str(marker), 0.5, "after-outage")
        worker = procs.worker("worker", "--url", server.url, "--lease-ttl", "30")
        wait_for(lambda: read_pid(marker), 15, "job start")
        server.stop()  # SIGTERM: Redis writes its append-only file and exits mid-job
        wait_for(lambda: "retrying the outcome" in procs.log(worker), 15, "the worker to hold its outcome")
        server.start()  # same port, same data directory
        wait_for(lambda: client.state(e.id) == State.COMPLETED, 30, "job completed after the outage")
        assert client.result(e.id) == "after-outage"
        assert worker.poll() is None, procs.log(worker)
    finally:
        server.stop()
