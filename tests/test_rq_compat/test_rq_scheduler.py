"""A team on rq-scheduler switches to jobsvc (issue 17): jobs scheduled with rq-scheduler's own API, on the test
Redis; then `rqscheduler` stops and `jobsvc scheduler` (its passes in-process, or the real process) and
`jobsvc schedules import --from-rq-scheduler` take over. The promoter adopts each one-off job onto jobsvc's
timeline as soon as it sees it (counted as scheduled in its queue from then on); it fires at its instant (never
before its score: compared with Redis time), once, with its arguments. The passes are driven by calling
`run_once` against Redis' clock, never by sleeping."""
from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from rq_scheduler import Scheduler as RqScheduler

from admin_api import create_app
from jobsvc import Config
from jobsvc.admin import audit
from jobsvc.engine.keys import Keys
from jobsvc.engine.stats import read_counts
from jobsvc.maintenance.integrity import IntegrityPass
from jobsvc.scheduling.cron_firer import CronFirer
from jobsvc.scheduling.promotion import Promoter, RqPromoter
from jobsvc.scheduling.schedules import Schedules
from jobsvc_cli.main import main
from tests import rqfuncs
from tests.conftest import redis_ms, wait_for
from tests.test_rq_compat.gauge_check import assert_gauges_exact
from tests.test_rq_compat.surfaces import ADMIN_KEY

ZSET = "rq:scheduler:scheduled_jobs"
LOCK = "rq:scheduler_lock"
TIMELINE = "jobsvc:scheduled"


@pytest.fixture(name="rqs")
def rqs_fixture(r):
    return RqScheduler(queue_name="default", connection=r)


pytestmark = pytest.mark.usefixtures("redis_env")  # REDIS_URL for the CLI (the import command)


@pytest.fixture(name="promoters")
def promoters_fixture(r, redis_url):
    config = Config(redis_url=redis_url)
    return RqPromoter(r, config), Promoter(r, config)


def at(r, seconds_from_now: int) -> datetime:
    """A naive UTC datetime (what rq-scheduler's enqueue_at expects) whole seconds after Redis' now."""
    return datetime.fromtimestamp(redis_ms(r) // 1000 + seconds_from_now, timezone.utc).replace(tzinfo=None)


def queued_ids(r, queue="default") -> list[str]:
    return [i.decode() for i in r.lrange(f"rq:queue:{queue}", 0, -1)]


def ready_ms(r, job_id) -> int:
    return int(r.hget(f"rq:job:{job_id}", "js_ready_ms"))


def one_pass(promoters) -> int:
    """One scheduler pass over rq-scheduler's data and jobsvc's timeline: the jobs queued."""
    rq_promoter, promoter = promoters
    return rq_promoter.run_once().promoted + promoter.run_once().promoted


def pass_until_queued(r, promoters, due_ms: int) -> None:
    """Passes until a job is queued; each pass that queues none began before `due_ms` by Redis' clock."""
    while True:
        before = redis_ms(r)
        if one_pass(promoters):
            return
        assert before < due_ms


def test_one_off_jobs_survive_the_switch_from_rqscheduler(r, rqs, promoters, burst_worker):
    past = rqs.enqueue_at(at(r, -5), rqfuncs.add, 1, 2)
    soon = rqs.enqueue_in(timedelta(seconds=2), rqfuncs.add, 3, 4)  # its score: whole seconds, 1 to 2 s ahead
    later = rqs.enqueue_at(at(r, 3), rqfuncs.say, "later", queue_name="other")
    soon_ms, later_ms = int(r.zscore(ZSET, soon.id) * 1000), int(r.zscore(ZSET, later.id) * 1000)

    # The old rqscheduler's last pass (its own code) moves the due job, then it is stopped.
    assert rqs.acquire_lock()
    rqs.enqueue_jobs()
    rqs.remove_lock()
    assert queued_ids(r) == [past.id]

    # jobsvc's scheduler takes over: both future jobs adopted at once, nothing early, nothing twice.
    first = promoters[0].run_once()
    assert (first.promoted, first.adopted, first.next_due_ms) == (0, 2, soon_ms)
    assert r.zcard(ZSET) == 0 and r.zrange(TIMELINE, 0, -1, withscores=True) == [
        (soon.id.encode(), soon_ms), (later.id.encode(), later_ms)]
    assert promoters[1].run_once().next_due_ms == soon_ms
    pass_until_queued(r, promoters, soon_ms)
    pass_until_queued(r, promoters, later_ms)
    assert queued_ids(r) == [past.id, soon.id] and queued_ids(r, "other") == [later.id]
    assert ready_ms(r, soon.id) >= soon_ms and ready_ms(r, later.id) >= later_ms
    assert one_pass(promoters) == 0

    burst_worker("jobsvc", ("default", "other"))
    assert sorted(rqfuncs.calls()) == ["add:1+2", "add:3+4", "later"]


def test_a_far_future_one_off_is_counted_as_scheduled_in_its_queue_after_one_pass(r, config, rqs, promoters):
    job = rqs.enqueue_in(timedelta(days=30), rqfuncs.say, "next month", queue_name="reports")
    due_ms = int(r.zscore(ZSET, job.id) * 1000)
    assert promoters[0].run_once().adopted == 1
    counts = read_counts(r, Keys(config.key_prefix))
    assert counts.queues["reports"]["scheduled"] == 1 and counts.queues["reports"]["queued"] == 0
    assert_gauges_exact(r)  # counted in its group's gauge, once
    http = create_app(config, r, admin_key=ADMIN_KEY).test_client()
    stats = http.get("/api/v1/stats?by=queue", headers={"X-Admin-Key": ADMIN_KEY}).get_json()
    assert stats["queue"]["reports"]["scheduled"] == 1 and stats["total"]["scheduled"] == 1
    listed = http.get("/api/v1/jobs?queue=reports&state=scheduled", headers={"X-Admin-Key": ADMIN_KEY}).get_json()
    assert [j["id"] for j in listed["jobs"]] == [job.id]
    fields = r.hmget(f"rq:job:{job.id}", "status", "js_state", "js_due", "js_group")
    assert fields == [b"scheduled", b"scheduled", str(due_ms).encode(), b"reports|default|tests.rqfuncs.say"]
    # rq-scheduler no longer holds it: its process cannot fire it too, its API no longer lists it.
    assert job not in rqs and list(rqs.get_jobs()) == []
    # It is whole as jobsvc's own scheduled jobs are: the integrity walk finds nothing to repair.
    report = IntegrityPass(r, config).run_walk()
    assert report.clean, report.counts
    assert one_pass(promoters) == 0 and read_counts(r, Keys(config.key_prefix)).queues["reports"]["scheduled"] == 1


def test_a_one_off_fires_once_at_its_instant_to_the_millisecond(r, rqs, promoters, burst_worker):
    job = rqs.enqueue_at(at(r, 2), rqfuncs.say, "edge")  # due at least 1.25 s ahead: a loaded machine may stall
    r.zadd(ZSET, {job.id: r.zscore(ZSET, job.id) + 0.25})  # a fractional score is kept to the millisecond
    due_ms = int(r.zscore(ZSET, job.id) * 1000)
    assert promoters[0].run_once().next_due_ms == due_ms
    pass_until_queued(r, promoters, due_ms)
    assert ready_ms(r, job.id) >= due_ms and r.hget(f"rq:job:{job.id}", "status") == b"queued"
    assert one_pass(promoters) == 0 and queued_ids(r) == [job.id]
    burst_worker("jobsvc", ("default",))
    assert rqfuncs.calls() == ["edge"]


def test_recurring_entries_are_left_to_rq_scheduler_until_imported(r, rqs, promoters):
    jobs = [rqs.schedule(at(r, -1), rqfuncs.say, args=["tick"], interval=60),
            rqs.schedule(at(r, 60), rqfuncs.say, args=["tock"], interval=60, repeat=3),
            rqs.cron("*/5 * * * *", rqfuncs.say, args=["cron"])]
    before = r.zrange(ZSET, 0, -1, withscores=True)
    hashes = [r.hgetall(f"rq:job:{j.id}") for j in jobs]
    result = promoters[0].run_once()
    assert (result.promoted, result.adopted, result.next_due_ms) == (0, 0, None)
    assert r.zrange(ZSET, 0, -1, withscores=True) == before and r.zcard(TIMELINE) == 0
    assert [r.hgetall(f"rq:job:{j.id}") for j in jobs] == hashes and queued_ids(r) == []


def test_the_zset_is_walked_a_page_per_pass_past_any_number_of_recurring_entries(r, redis_url, rqs):
    """Seven recurring entries and a one-off all at one second (ties are ordered by id, so the one-off sits
    anywhere among them), pages of 3: the one-off is adopted within one walk; each pass reads one page."""
    when = at(r, 30)
    recurring = [rqs.schedule(when, rqfuncs.say, args=[str(i)], interval=60) for i in range(7)]
    one_off = rqs.enqueue_at(when, rqfuncs.say, "among them")
    rq_promoter = RqPromoter(r, Config(redis_url=redis_url), batch=3)
    results = [rq_promoter.run_once() for _ in range(3)]
    assert sum(res.adopted for res in results) == 1 and r.zscore(TIMELINE, one_off.id) is not None
    # Full pages ask for the next at once; the short last page ends the walk (the next starts at the first).
    assert [res.next_due_ms == res.now_ms for res in results[:2]] == [True, True]
    assert results[2].next_due_ms == (int(r.zscore(TIMELINE, one_off.id)) if results[2].adopted else None)
    assert sorted(m.decode() for m in r.zrange(ZSET, 0, -1)) == sorted(j.id for j in recurring)
    later = rqs.enqueue_at(at(r, 60), rqfuncs.say, "after the walk")
    assert sum(rq_promoter.run_once().adopted for _ in range(3)) == 1 and r.zscore(ZSET, later.id) is None


def test_an_entry_whose_job_is_gone_is_dropped(r, rqs, promoters):
    job = rqs.enqueue_at(at(r, 60), rqfuncs.say, "gone")
    r.delete(f"rq:job:{job.id}")
    assert promoters[0].run_once().adopted == 0
    assert r.zcard(ZSET) == 0 and r.zcard(TIMELINE) == 0  # as rq-scheduler's own get_jobs drops it


def test_mixed_running_no_job_is_enqueued_twice(r, redis_url, rqs):
    """An rqscheduler and jobsvc's promoter race over the same due jobs: each job lands in its queue once."""
    jobs = [rqs.enqueue_at(at(r, -1), rqfuncs.add, i, i) for i in range(300)]
    config = Config(redis_url=redis_url)
    promoters = RqPromoter(r, config, batch=7), Promoter(r, config)
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
        wait_for(lambda: one_pass(promoters) is not None and r.zcard(ZSET) == 0, 30, "every job to be moved")
    finally:
        done.set()
        thread.join(10)
    one_pass(promoters)  # what the promoter adopted last is due: queued now
    assert sorted(queued_ids(r)) == sorted(j.id for j in jobs) and r.zcard(TIMELINE) == 0


def test_a_held_rq_scheduler_lock_holds_the_promoter(r, rqs, promoters):
    """rqscheduler still running (its lock held): the promoter moves nothing of its zset, due or not."""
    due = rqs.enqueue_at(at(r, -1), rqfuncs.add, 1, 1)
    future = rqs.enqueue_at(at(r, 3600), rqfuncs.add, 2, 2)
    future_ms = int(r.zscore(ZSET, future.id) * 1000)
    r.set(LOCK, "123.0", ex=60)
    result = promoters[0].run_once()
    assert (result.promoted, result.adopted, result.next_due_ms) == (0, 0, None)
    assert r.zcard(ZSET) == 2 and r.zcard(TIMELINE) == 0 and queued_ids(r) == []
    r.delete(LOCK)
    assert promoters[0].run_once().adopted == 2 and r.zcard(ZSET) == 0
    assert promoters[1].run_once().promoted == 1 and queued_ids(r) == [due.id]
    assert r.zrange(TIMELINE, 0, -1, withscores=True) == [(future.id.encode(), future_ms)]


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
    # Its first fire at least 2 s ahead: an entry already overdue when imported is not caught up (docs), and at
    # 1 s (whole seconds: as little as 1 ms ahead) a slow import on a loaded machine found it overdue.
    job = rqs.schedule(at(r, 3), rqfuncs.add, args=[2, 3], interval=1, repeat=2)
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
