"""The worker loop in-process (burst mode): outcomes of real job functions."""
from __future__ import annotations

from jobsvc import State
from jobsvc.config import Config
from workers.worker import LeasedWorker


def test_burst_worker_runs_every_job_and_stores_results(client, run_worker):
    ids = [client.enqueue("tests.jobfuncs.add", i, 1).id for i in range(20)]
    worker = run_worker()
    assert worker.processed == 20
    assert [client.result(i) for i in ids] == [i + 1 for i in range(20)]


def test_worker_runs_higher_priority_first(client, run_worker, tmp_path):
    log = tmp_path / "order"
    for p in (9, 1, 5):
        client.enqueue("tests.jobfuncs.record", str(log), f"p{p}", priority=p)
    run_worker()
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["p1", "p5", "p9"]


def test_failing_job_is_scheduled_for_retry(client, run_worker):
    e = client.enqueue("tests.jobfuncs.boom", max_attempts=2)
    run_worker()
    info = client.get(e.id)
    assert info.state == State.SCHEDULED
    run = client.runs(e.id)[0]
    assert (run["exc_type"], run["message"], run["outcome"]) == ("RuntimeError", "boom", "retrying")
    assert "Traceback" in run["traceback"] and "boom" in run["traceback"]


def test_non_retryable_error_fails_at_once(client, run_worker):
    e = client.enqueue("tests.jobfuncs.fatal", max_attempts=5)
    run_worker()
    assert client.get(e.id).state == State.FAILED


def test_unimportable_function_fails_at_once_with_clear_error(client, run_worker):
    e = client.enqueue("tests.jobfuncs.does_not_exist", max_attempts=5)
    run_worker()
    info = client.get(e.id)
    assert info.state == State.FAILED
    assert "cannot load job function" in client.runs(e.id)[0]["message"]


def test_job_past_its_timeout_fails_the_attempt(client, run_worker):
    e = client.enqueue("tests.jobfuncs.sleep_for", 5, timeout=1, max_attempts=1)
    run_worker()
    assert client.get(e.id).state == State.FAILED
    assert client.runs(e.id)[0]["exc_type"] == "JobTimeout"


def test_job_enqueued_by_plain_rq_runs(r, client, run_worker):
    from rq import Queue

    job = Queue("default", connection=r).enqueue("tests.jobfuncs.add", 2, 3)
    run_worker()
    job.refresh()
    assert (job.get_status(), job.return_value()) == ("finished", 5)


def test_paused_queue_is_not_claimed(client, run_worker):
    e = client.enqueue("tests.jobfuncs.noop", queue="held")
    client.pause("held")
    run_worker(queues=("held",))
    assert client.get(e.id).state == State.QUEUED


def test_worker_registers_with_rq_and_unregisters(r):
    from rq import Worker

    worker = LeasedWorker(["default"], r, Config())
    assert worker.name not in [w.name for w in Worker.all(connection=r)]
    worker.register_birth()
    seen = [w.name for w in Worker.all(connection=r)]
    worker.register_death()
    assert worker.name in seen
    assert worker.name not in [w.name for w in Worker.all(connection=r)]


def test_unexpected_error_around_a_job_does_not_stop_the_worker(client, run_worker, monkeypatch):
    from workers import worker as worker_module

    calls = {"n": 0}
    original = worker_module.LeasedWorker._run_and_finish

    def flaky(self, lease):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("bug")
        return original(self, lease)

    monkeypatch.setattr(worker_module.LeasedWorker, "_run_and_finish", flaky)
    monkeypatch.setattr(worker_module.LeasedWorker, "_pause", lambda self, seconds: None)
    client.enqueue("tests.jobfuncs.noop")
    later = client.enqueue("tests.jobfuncs.add", 1, 1)
    run_worker()
    assert client.state(later.id) == State.COMPLETED
