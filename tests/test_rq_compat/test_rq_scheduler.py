"""A team on rq-scheduler switches to jobsvc (issue 17): jobs scheduled with rq-scheduler's own API, on the test
Redis; then `rqscheduler` stops and `jobsvc scheduler` (its passes in-process, or the real process) and
`jobsvc schedules import --from-rq-scheduler` take over. Every job fires at its instant (never before its score:
compared with Redis time), once, with its arguments."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from rq_scheduler import Scheduler as RqScheduler

from jobsvc import Config
from jobsvc.admin import audit
from jobsvc.scheduling.cron_firer import CronFirer
from jobsvc.scheduling.promotion import RqPromoter
from jobsvc.scheduling.schedules import Schedules
from jobsvc_cli.main import main
from tests import rqfuncs
from tests.conftest import redis_ms, wait_for

ZSET = "rq:scheduler:scheduled_jobs"
LOCK = "rq:scheduler_lock"


@pytest.fixture(name="rqs")
def rqs_fixture(r):
    return RqScheduler(queue_name="default", connection=r)


@pytest.fixture(name="cli_env", autouse=True)
def cli_env_fixture(monkeypatch, redis_url):
    monkeypatch.setenv("REDIS_URL", redis_url)


def at(r, seconds_from_now: int) -> datetime:
    """A naive UTC datetime (what rq-scheduler's enqueue_at expects) whole seconds after Redis' now."""
    return datetime.fromtimestamp(redis_ms(r) // 1000 + seconds_from_now, timezone.utc).replace(tzinfo=None)


def queued_ids(r, queue="default") -> list[str]:
    return [i.decode() for i in r.lrange(f"rq:queue:{queue}", 0, -1)]


def ready_ms(r, job_id) -> int:
    return int(r.hget(f"rq:job:{job_id}", "js_ready_ms"))


def test_one_off_jobs_survive_the_switch_from_rqscheduler(r, redis_url, rqs, burst_worker):
    promoter = RqPromoter(r, Config(redis_url=redis_url))
    past = rqs.enqueue_at(at(r, -5), rqfuncs.add, 1, 2)
    soon = rqs.enqueue_in(timedelta(seconds=2), rqfuncs.add, 3, 4)
    later = rqs.enqueue_at(at(r, 3), rqfuncs.say, "later", queue_name="other")
    soon_score, later_score = r.zscore(ZSET, soon.id), r.zscore(ZSET, later.id)

    # The old rqscheduler's last pass (its own code) moves the due job, then it is stopped.
    assert rqs.acquire_lock()
    rqs.enqueue_jobs()
    rqs.remove_lock()
    assert queued_ids(r) == [past.id]

    # jobsvc's scheduler takes over: nothing early, nothing twice.
    first = promoter.run_once()
    assert first.promoted == 0 and queued_ids(r) == [past.id]
    assert first.next_due_ms == soon_score * 1000
    wait_for(lambda: promoter.run_once() and r.zcard(ZSET) == 0, 10, "both future jobs to be promoted")
    assert queued_ids(r) == [past.id, soon.id] and queued_ids(r, "other") == [later.id]
    assert ready_ms(r, soon.id) >= soon_score * 1000
    assert ready_ms(r, later.id) >= later_score * 1000
    assert promoter.run_once().promoted == 0

    burst_worker("jobsvc", ("default", "other"))
    assert sorted(rqfuncs.calls()) == ["add:1+2", "add:3+4", "later"]


def test_the_promotion_is_never_early_to_the_millisecond(r, redis_url, rqs):
    promoter = RqPromoter(r, Config(redis_url=redis_url))
    job = rqs.enqueue_at(at(r, 1), rqfuncs.say, "edge")
    due_ms = int(r.zscore(ZSET, job.id) * 1000)
    while True:  # each pass either leaves it (Redis' clock before its score) or promotes it at or after
        before = redis_ms(r)
        n = promoter.run_once().promoted
        if n:
            break
        assert before < due_ms
    assert ready_ms(r, job.id) >= due_ms
    assert r.hget(f"rq:job:{job.id}", "status") == b"queued"


def test_recurring_entries_are_left_to_rq_scheduler_until_imported(r, redis_url, rqs):
    job = rqs.schedule(at(r, -1), rqfuncs.say, args=["tick"], interval=60)
    assert RqPromoter(r, Config(redis_url=redis_url)).run_once().promoted == 0
    assert r.zscore(ZSET, job.id) is not None and queued_ids(r) == []


def test_mixed_running_no_job_is_enqueued_twice(r, redis_url, rqs):
    """An rqscheduler and jobsvc's promoter race over the same due jobs: each job lands in its queue once."""
    jobs = [rqs.enqueue_at(at(r, -1), rqfuncs.add, i, i) for i in range(300)]
    promoter = RqPromoter(r, Config(redis_url=redis_url), batch=7)
    done = threading.Event()

    def old_scheduler():
        other = RqScheduler(queue_name="default", connection=r)
        while not done.is_set():
            if other.acquire_lock():
                for job in other.get_jobs_to_queue():  # rq-scheduler's pass, one job at a time
                    other.enqueue_job(job)
                    break
                other.remove_lock()

    thread = threading.Thread(target=old_scheduler, daemon=True)
    thread.start()
    try:
        wait_for(lambda: promoter.run_once() is not None and r.zcard(ZSET) == 0, 30, "every job to be moved")
    finally:
        done.set()
        thread.join(10)
    ids = queued_ids(r)
    assert sorted(ids) == sorted(j.id for j in jobs)


def test_a_held_rq_scheduler_lock_holds_the_promotion(r, redis_url, rqs):
    job = rqs.enqueue_at(at(r, -1), rqfuncs.add, 1, 1)
    r.set(LOCK, "123.0", ex=60)
    promoter = RqPromoter(r, Config(redis_url=redis_url))
    assert promoter.run_once().promoted == 0 and r.zscore(ZSET, job.id) is not None
    r.delete(LOCK)
    assert promoter.run_once().promoted == 1 and queued_ids(r) == [job.id]


def _import(*extra: str) -> int:
    return main(["schedules", "import", "--from-rq-scheduler", *extra])


def test_import_dry_run_prints_and_changes_nothing(r, rqs, client, capsys):
    job = rqs.schedule(at(r, 60), rqfuncs.say, args=["tick"], interval=30, repeat=3, queue_name="reports")
    assert _import("--dry-run") == 0
    out, err = capsys.readouterr()
    assert f"would create rq-{job.id}: tests.rqfuncs.say every 30s" in out and "queue reports" in out
    assert "this machine's" in err and "dry run" in err
    assert Schedules(client).list()[0] == [] and r.zcard(ZSET) == 1
    assert not any(e.action == "schedules.import" for e in _audit_entries(r))


def test_import_maps_interval_repeat_and_options(r, rqs, client, capsys):
    job = rqs.schedule(at(r, 60), rqfuncs.add, args=[1], kwargs={"b": 2}, interval=30, repeat=3,
                       queue_name="reports", timeout=90, meta={"team": "ops"})
    forever = rqs.schedule(at(r, 10), rqfuncs.say, args=["x"], interval=5, result_ttl=600)
    score, forever_score = int(r.zscore(ZSET, job.id)), int(r.zscore(ZSET, forever.id))
    assert _import("--timezone", "UTC", "--remove") == 0
    s = Schedules(client).get(f"rq-{job.id}")
    assert (s.function, s.args, s.kwargs, s.interval, s.queue, s.timeout, s.meta) == (
        "tests.rqfuncs.add", [1], {"b": 2}, 30.0, "reports", 90, {"team": "ops"})
    assert s.result_ttl is None  # rq-scheduler's -1 for periodic jobs
    assert (s.start_ms, s.end_ms, s.next_run_ms) == (score * 1000, (score + 60) * 1000, score * 1000)
    f = Schedules(client).get(f"rq-{forever.id}")
    assert (f.result_ttl, f.end_ms, f.next_run_ms) == (600, None, forever_score * 1000)
    assert r.zcard(ZSET) == 0
    assert "created: 2" in capsys.readouterr().out
    entry = next(e for e in _audit_entries(r) if e.action == "schedules.import")
    assert entry.key_id == "cli" and entry.counts["created"] == 2 and entry.counts["removed"] == 2


def _audit_entries(r):
    raw = r.xrevrange("jobsvc:audit", count=20)
    return [audit.Entry(id=i.decode(), time_ms=0, key_id=f[b"key_id"].decode(), action=f[b"action"].decode(),
                        counts=json.loads(f.get(b"counts", b"{}") or b"{}")) for i, f in raw]


def test_import_without_remove_leaves_rq_scheduler_alone_and_is_repeatable(r, rqs, client, capsys):
    job = rqs.schedule(at(r, 60), rqfuncs.say, args=["x"], interval=30)
    assert _import("--timezone", "UTC") == 0
    assert r.zscore(ZSET, job.id) is not None
    assert "--remove" in capsys.readouterr().err
    assert _import("--timezone", "UTC", "--remove") == 0
    assert "already imported: 1" in capsys.readouterr().out and r.zcard(ZSET) == 0


def test_import_reads_cron_in_the_old_hosts_zone(r, rqs, client, monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        job = rqs.cron("30 9 * * *", rqfuncs.say, args=["morning"], repeat=2, queue_name="cron")
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    score = int(r.zscore(ZSET, job.id))
    assert _import("--timezone", "Asia/Kolkata", "--remove") == 0
    s = Schedules(client).get(f"rq-{job.id}")
    assert (s.cron, s.timezone, s.queue) == ("30 9 * * *", "Asia/Kolkata", "cron")
    assert s.next_run_ms == score * 1000  # the instant rq-scheduler would have fired it
    assert s.end_ms == (score + 86400) * 1000  # repeat=2: this fire and the next day's


def test_imported_interval_fires_at_rq_schedulers_instants_once_each(r, rqs, client, config, burst_worker):
    job = rqs.schedule(at(r, 1), rqfuncs.add, args=[2, 3], interval=1, repeat=2)
    score = int(r.zscore(ZSET, job.id))
    assert _import("--timezone", "UTC", "--remove") == 0
    firer = CronFirer(r, config)
    sid = f"rq-{job.id}"
    expected = [f"{sid}:{score * 1000}", f"{sid}:{(score + 1) * 1000}"]
    wait_for(lambda: firer.run_once() and all(r.exists(f"rq:job:{i}") for i in expected), 10, "both fires")
    for job_id in expected:
        assert int(r.hget(f"rq:job:{job_id}", "js_created_ms")) >= int(job_id.rsplit(":", 1)[1])
    assert Schedules(client).get(sid).next_run_ms is None  # repeat spent
    burst_worker("jobsvc", ("default",))
    assert rqfuncs.calls() == ["add:2+3", "add:2+3"]


@pytest.mark.slow
def test_the_real_jobsvc_scheduler_takes_over_from_rqscheduler(r, rqs, procs):
    """`rqscheduler` stopped, `jobsvc scheduler` and `jobsvc worker` started: the one-off jobs run once each, the
    future one not before its score; the recurring entry waits for the import."""
    past = rqs.enqueue_at(at(r, -30), rqfuncs.add, 5, 6)
    soon = rqs.enqueue_in(timedelta(seconds=2), rqfuncs.say, "soon")
    recurring = rqs.schedule(at(r, -1), rqfuncs.say, args=["tick"], interval=60)
    soon_score = r.zscore(ZSET, soon.id)
    procs.scheduler()
    procs.worker("worker")
    for job in (past, soon):
        wait_for(lambda job=job: r.hget(f"rq:job:{job.id}", "status") == b"finished", 20, f"{job.id} to run")
    assert ready_ms(r, soon.id) >= soon_score * 1000
    assert sorted(rqfuncs.calls()) == ["add:5+6", "soon"]
    assert r.zrange(ZSET, 0, -1) == [recurring.id.encode()]
