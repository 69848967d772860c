"""The scheduler on a single Redis and on the suite's Redis Cluster (issue 15), through test_core_both's
parametrized `backend` (six queues, on the cluster two per shard): a pass (`Scheduler.run_once`, called directly)
leads, promotes delayed jobs and retries after their backoff, reaps an expired lease, fires a cron schedule once
(also when a crash comes between the fire's two steps on a cluster) and records its outcome, sweeps jobs whose TTL
passed, repairs drift (its integrity pass), sleeps until a wake-up from any shard; the notifier sends a job's
outcome to its callback URL; and a `jobsvc scheduler` process started on a redis+cluster:// URL leads and promotes
a delayed job."""
from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import replace

import pytest

from jobsvc.engine.keys import template
from jobsvc.scheduling.leader import leader_key
from jobsvc.scheduling.schedules import Schedules, firing
from jobsvc.scheduling.schedules.store import SCHEDULES_SLOT
from tests.conftest import HANDLER_SECRET, ROOT, wait_for
from tests.test_cluster import test_core_both
from tests.test_cluster.test_core_both import PREFIX, WORKER, Backend
from workers.callbacks import Notifier
from workers.scheduler import Scheduler

ADD = "tests.jobfuncs.add"
backend = test_core_both.backend  # the parametrized fixture: single Redis, cluster


def leading(backend: Backend) -> Scheduler:
    """A scheduler whose passes lead: its first takes the free leader lock (asserted in the first test)."""
    return Scheduler(backend.conn, backend.config)


def test_a_pass_leads_promotes_delayed_jobs_and_retries_after_their_backoff(backend):
    client, leases, queues = backend.client(), backend.leases(), backend.queues
    delayed = {q: client.enqueue(ADD, 1, 2, queue=q, delay=3600).id for q in queues}
    retried = client.enqueue(ADD, 1, 2, queue=queues[-1], max_attempts=2).id
    lease = leases.claim([queues[-1]], WORKER)
    assert lease is not None and leases.fail(lease, RuntimeError("boom"), worker=WORKER) == "scheduled"
    for q, job_id in [*delayed.items(), (queues[-1], retried)]:
        backend.conn.zadd(backend.key("scheduled", q), {job_id: 0})  # due now: its delay, or its backoff, is over
    s = Scheduler(backend.conn, backend.config)
    s.run_once()
    assert s.leading and backend.conn.get(leader_key(backend.conn, PREFIX)) == s.lock.token.encode()
    for q, job_id in delayed.items():
        assert backend.conn.hget(backend.key("job", q, job_id), "js_state") == b"queued"
    got = leases.claim_many(queues, WORKER, count=10)
    assert sorted(g.job_id for g in got) == sorted([*delayed.values(), retried])
    assert next(g for g in got if g.job_id == retried).attempt == 2
    if backend.cluster:  # the lock in a slot of its own, on whichever master serves it
        assert leader_key(backend.conn, PREFIX) == "jobsvc:{#scheduler}:scheduler:leader"


def test_a_pass_reaps_an_expired_lease(backend):
    client, leases, q = backend.client(), backend.leases(), backend.queues[3]
    job_id = client.enqueue(ADD, 1, 2, queue=q, max_attempts=3).id
    assert leases.claim([q], WORKER) is not None
    backend.conn.zadd(backend.key("leases", q), {job_id: 0})  # its worker died long ago
    leading(backend).run_once()
    again = leases.claim([q], "host.2.w")
    assert again is not None and again.job_id == job_id and again.attempt == 2


def test_a_pass_sweeps_the_jobs_whose_ttl_passed(backend):
    client, leases, queues = backend.client(), backend.leases(), backend.queues
    ids = {q: client.enqueue(ADD, 1, 2, queue=q, result_ttl=3600).id for q in queues}
    for lease in leases.claim_many(queues, WORKER, count=10):
        leases.complete(lease, 3, WORKER, 1.0, 2.0)
    expired = queues[::2]
    for q in expired:
        backend.conn.zadd(backend.key("finished", q, q), {ids[q]: 1})  # its result TTL ended long ago
    leading(backend).run_once()
    for q, job_id in ids.items():
        assert backend.conn.exists(backend.key("job", q, job_id)) == (q not in expired)


def test_the_integrity_pass_repairs_a_running_job_without_its_lease(backend):
    client, leases, q = backend.client(), backend.leases(), backend.queues[5]
    job_id = client.enqueue(ADD, 1, 2, queue=q).id
    assert leases.claim([q], WORKER) is not None
    backend.conn.zrem(backend.key("leases", q), job_id)
    report = leading(backend).integrity.run_walk()  # what the leader's passes run a bounded step at a time
    assert report.counts["unleased_running"] == 1
    assert backend.conn.zscore(backend.key("leases", q), job_id) is not None


def test_a_sleeping_scheduler_wakes_for_an_earlier_job_on_any_shard_and_for_a_new_schedule(backend):
    """On a cluster each queue's wake-up list is in its slot and the schedules' in theirs: the scheduler's wait
    (SlotWait) blocks on all of them at once."""
    client, queues = backend.client(), backend.queues
    for q in queues:
        client.enqueue(ADD, 1, 2, queue=q, delay=600)
    s = Scheduler(backend.conn, replace(backend.config, scheduler_max_sleep=60, leader_ttl=300))
    wait = s.run_once()
    assert wait > 30
    wakes = [backend.key("scheduler_wake", q) for q in queues]
    wakes.append(template("scheduler_wake", PREFIX, SCHEDULES_SLOT if backend.cluster else None))
    for wake_up in (lambda: client.enqueue(ADD, 1, 2, queue=queues[-1], delay=0.2),
                    lambda: Schedules(client).create(id="tick", interval=60, function=ADD, args=[1, 2])):
        for w in wakes:  # no wake-up pending: only one sent from here on ends the sleep
            backend.conn.delete(w)
        sleeper = threading.Thread(target=s.sleep, args=(wait,), daemon=True)
        sleeper.start()
        wake_up()
        sleeper.join(timeout=20)  # a deadline far under the wait: only a wake-up ends the sleep in time
        assert not sleeper.is_alive()


class Crash(BaseException):
    """A scheduler process dying at that point (no `except Exception` catches it)."""


def _due_schedule(backend: Backend, queue: str) -> tuple[Schedules, int]:
    """A schedule on `queue` every 60 s from its creation, whose next fire time is moved back to its creation,
    which has passed: a fire due now."""
    sched = Schedules(backend.client())
    sched.create(id="tick", interval=60, function=ADD, args=[1, 2], queue=queue)
    due = int(backend.conn.hget(sched.key("tick"), "created_ms"))
    backend.conn.hset(sched.key("tick"), "next_ms", due)
    backend.conn.zadd(sched.due_key, {"tick": due})
    return sched, due


def _lane(backend: Backend, queue: str) -> list[bytes]:
    return backend.conn.lrange(backend.key("rq_queue", queue, queue), 0, -1)


def test_a_due_schedule_fires_once(backend):
    q = backend.queues[4]
    sched, due = _due_schedule(backend, q)
    s = leading(backend)
    s.run_once()
    s.run_once()
    assert _lane(backend, q) == [f"tick:{due}".encode()]
    got = sched.get("tick")
    assert got.runs == 1 and got.next_run_ms == due + 60_000 and got.last_run["job_id"] == f"tick:{due}"
    assert [r["job_id"] for r in sched.runs("tick")[0]] == [f"tick:{due}"]


def test_a_fires_outcome_is_recorded_in_the_schedules_run_history(backend):
    """On a cluster the record pass reads the runs' jobs in their queue's slot, then records them in the
    schedules' (schedule_record.lua given the jobs)."""
    q = backend.queues[2]
    sched, due = _due_schedule(backend, q)
    leading(backend).run_once()
    leases = backend.leases()
    lease = leases.claim([q], WORKER)
    assert lease is not None and lease.job_id == f"tick:{due}"
    assert sched.record_runs() == (0, "-inf")  # not ended yet: still pending
    leases.complete(lease, 3, WORKER, 1.0, 2.0)
    assert sched.record_runs() == (1, "-inf")
    backend.conn.delete(backend.key("job", q, lease.job_id))  # its result TTL passed: the history keeps the outcome
    (run,), _ = sched.runs("tick")
    assert run["status"] == "completed" and run["duration_ms"] is not None
    got = sched.get("tick")
    assert (got.runs, got.completed) == (1, 1) and got.avg_runtime_ms is not None
    assert sched.record_runs() == (0, "-inf")


def test_a_fires_outcome_is_recorded_after_the_schedule_moved_to_another_queue(backend):
    """A run is read in the queue its job went to (the id directory on a cluster), not the one the schedule fires
    into now."""
    q, q2 = backend.queues[2], backend.queues[4]
    sched, due = _due_schedule(backend, q)
    leading(backend).run_once()
    leases = backend.leases()
    lease = leases.claim([q], WORKER)
    assert lease is not None and lease.job_id == f"tick:{due}"
    sched.patch("tick", queue=q2)  # moved to another queue while its run is still pending
    assert sched.runs("tick")[0][0]["status"] == "running"  # read off its job, in q
    assert sched.get("tick").last_run["status"] == "running"
    leases.complete(lease, 3, WORKER, 1.0, 2.0)
    assert sched.record_runs() == (1, "-inf")
    (run,), _ = sched.runs("tick")
    assert run["status"] == "completed", run


def test_a_registry_functions_schedule_without_a_queue_records_and_counts_its_runs(backend):
    """A registry function's schedule without a queue of its own fires into the function's queue: its runs, its
    outcome counters, its overlap and its delete are read there."""
    from jobsvc.engine.functions import Registry

    q = backend.queues[3]
    Registry(backend.client()).register("media", "resize", ADD, queue=q)
    sched = Schedules(backend.client())
    sched.create(id="tick", interval=60, function="media/resize", args=[1, 2], overlap="skip")
    job_id = sched.execute("tick")
    leases = backend.leases()
    lease = leases.claim([q], WORKER)
    assert lease is not None and lease.job_id == job_id
    assert sched.get("tick").last_run["status"] == "running"
    due = int(backend.conn.hget(sched.key("tick"), "created_ms"))
    backend.conn.hset(sched.key("tick"), "next_ms", due)
    backend.conn.zadd(sched.due_key, {"tick": due})
    leading(backend).run_once()  # the last run is still running: overlap skip holds this fire back
    assert _lane(backend, q) == [] and sched.get("tick").skipped == 1
    leases.complete(lease, 3, WORKER, 1.0, 2.0)
    sched.record_runs()
    run = next(r for r in sched.runs("tick")[0] if r["job_id"] == job_id)
    assert (run["status"], sched.get("tick").completed) == ("completed", 1), run
    sched.delete("tick")
    assert backend.conn.exists(backend.key("schedule_stats", q, "tick")) == 0  # the outcome counters too


def test_run_now_enqueues_and_records_and_delete_removes_the_counters(backend):
    q = backend.queues[0]
    sched, _ = _due_schedule(backend, q)
    job_id = sched.execute("tick")
    assert _lane(backend, q) == [job_id.encode()] and sched.runs("tick")[0][0]["job_id"] == job_id
    leases = backend.leases()
    lease = leases.claim([q], WORKER)
    assert lease is not None
    leases.complete(lease, 3, WORKER, 1.0, 2.0)
    assert sched.get("tick").completed == 1
    sched.delete("tick")
    assert backend.conn.exists(backend.key("schedule_stats", q, "tick")) == 0  # the outcome counters too
    sched.create(id="tick", interval=60, function=ADD, args=[1, 2], queue=q)
    assert (sched.get("tick").runs, sched.get("tick").completed) == (0, 0)


def test_a_crash_between_a_fires_two_steps_fires_it_once(backend, monkeypatch):
    """On a cluster a fire enqueues its job (the queue's slot), then moves the schedule on (the schedules' slot):
    a crash in between leaves the schedule as it was, and the next pass's enqueue of the same job id creates
    nothing. On a single Redis both are one MULTI: the crash leaves nothing, and the next pass fires."""
    q = backend.queues[1]
    sched, due = _due_schedule(backend, q)
    real = firing.enqueue

    def crash_after(*args, **kwargs):
        real(*args, **kwargs)
        raise Crash

    monkeypatch.setattr(firing, "enqueue", crash_after)
    with pytest.raises(Crash):
        leading(backend).run_once()
    assert _lane(backend, q) == ([f"tick:{due}".encode()] if backend.cluster else [])
    assert sched.get("tick").next_run_ms == due  # not moved on
    monkeypatch.setattr(firing, "enqueue", real)
    backend.conn.delete(leader_key(backend.conn, PREFIX))  # the dead scheduler's lock ran out
    leading(backend).run_once()
    assert _lane(backend, q) == [f"tick:{due}".encode()]
    got = sched.get("tick")
    assert got.runs == 1 and got.next_run_ms == due + 60_000


def test_a_job_that_ended_notifies_its_callback_url(backend, handler_server):
    config = replace(backend.config, handler_secret=HANDLER_SECRET, allow_private_urls=True)
    from jobsvc import Client
    from jobsvc.engine.leases import Leases

    client, leases, queues = Client(backend.conn, config), Leases(backend.conn, config), backend.queues
    ids = {client.enqueue(ADD, 2, 3, queue=q, callback_url=handler_server.url("/hook")).id for q in queues[:3]}
    for lease in leases.claim_many(queues, WORKER, count=10):
        leases.complete(lease, 5, WORKER, 1.0, 2.0)
    notifier = Notifier(backend.conn, config, retry_base=0.0, attempts=3)
    assert notifier.run_once().delivered == 3
    assert notifier.run_once().total == 0
    bodies = [req.json() for req in handler_server.to("/hook")]
    assert {b["job_id"] for b in bodies} == ids and {b["result"] for b in bodies} == {5}


def test_a_shard_away_does_not_stop_the_other_queues_notifications(backend, handler_server, monkeypatch):
    """The notifier's claim walks the queues; a queue whose shard is away (a failover) is skipped, as the worker's
    claim walk does, and its notification is sent once the shard is back."""
    if not backend.cluster:
        pytest.skip("a single Redis has one outbox: while it is away nothing can be sent")
    import redis

    from jobsvc import Client
    from jobsvc.engine import scripts
    from jobsvc.engine.leases import Leases

    config = replace(backend.config, handler_secret=HANDLER_SECRET, allow_private_urls=True)
    client, leases = Client(backend.conn, config), Leases(backend.conn, config)
    down, up = "q0", "q2"  # on two shards; q0 comes first in the walk (the registry's queues in name order)
    assert {down, up} <= set(backend.queues)
    ids = {q: client.enqueue(ADD, 2, 3, queue=q, callback_url=handler_server.url("/hook")).id for q in (down, up)}
    for lease in leases.claim_many([down, up], WORKER, count=10):
        leases.complete(lease, 5, WORKER, 1.0, 2.0)
    real = scripts.call

    def away(conn, name, keys, *args, **kwargs):
        if name == "notify_claim" and keys == scripts.scope_of(down):
            raise redis.ConnectionError("master away (simulated failover)")
        return real(conn, name, keys, *args, **kwargs)

    monkeypatch.setattr(scripts, "call", away)
    notifier = Notifier(backend.conn, config, retry_base=0.0, attempts=3)
    assert notifier.run_once().delivered == 1
    assert [req.json()["job_id"] for req in handler_server.to("/hook")] == [ids[up]]
    monkeypatch.setattr(scripts, "call", real)
    assert notifier.run_once().delivered == 1
    assert {req.json()["job_id"] for req in handler_server.to("/hook")} == set(ids.values())

    def all_away(conn, name, *args, **kwargs):
        raise redis.ConnectionError("cluster away (simulated)")

    monkeypatch.setattr(scripts, "call", all_away)
    with pytest.raises(redis.ConnectionError):  # no queue could be asked: the caller's retry, as on a single Redis
        notifier.outbox.claim(1000)


@pytest.mark.slow
@pytest.mark.cluster
def test_a_scheduler_process_on_a_cluster_url_leads_and_promotes_a_delayed_job(redis_cluster, subprocess_env,
                                                                                 tmp_path):
    url = redis_cluster.url.replace("redis://", "redis+cluster://")
    rc = redis_cluster.client()
    log = tmp_path / "scheduler.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "jobsvc_cli", "scheduler"], cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT, env={**subprocess_env, "REDIS_URL": url})
    try:
        from jobsvc import Client, Config
        from tests.conftest import ALLOWED_MODULES

        token = wait_for(lambda: rc.get(leader_key(rc, PREFIX)), 20, "the scheduler to lead")
        client = Client(url, Config(redis_url=url, allowed_modules=ALLOWED_MODULES))
        job_id = client.enqueue(ADD, 1, 2, queue="mail", delay=0.3).id  # its enqueue wakes the scheduler
        job_key = template("job", PREFIX, "mail") % job_id
        wait_for(lambda: rc.hget(job_key, "js_state") == b"queued", 20, "the delayed job to be promoted")
        assert f"scheduler {token.decode()[:8]}: leading" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        rc.close()
    assert proc.returncode == 0, log.read_text()
    assert "stopped" in log.read_text()
