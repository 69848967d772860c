"""Dependencies as RQ defines them (rq/queue.py setup_dependencies, enqueue_dependents; rq/job.py
dependencies_are_met): depends_on a job, an id, a list or a Dependency (allow_failure, enqueue_at_front), run by
RQ's own worker and by jobsvc's; and jobsvc's own Client.enqueue(depends_on=...), stored in RQ's format."""
from __future__ import annotations

import json

import pytest
from rq import Retry
from rq.job import Dependency, Job
from rq.registry import DeferredJobRegistry

from jobsvc import State
from jobsvc.admin.listing import JobFilter, list_jobs
from jobsvc.engine.keys import Keys
from jobsvc.engine.stats import counts_by
from tests import rqfuncs
from tests.test_rq_compat import retryfuncs
from tests.test_rq_compat.gauge_check import assert_gauges_exact


def status(r, job):
    return Job.fetch(job if isinstance(job, str) else job.id, connection=r).get_status()


@pytest.mark.parametrize("form", ["job", "id", "list", "dependency"])
def test_depends_on_in_each_form_runs_the_dependent_after_its_dependency(queue, burst, r, form):
    first = queue.enqueue(rqfuncs.say, "first")
    depends_on = {"job": first, "id": first.id, "list": [first], "dependency": Dependency(jobs=[first.id])}[form]
    second = queue.enqueue(rqfuncs.say, "second", depends_on=depends_on)
    assert status(r, second) == "deferred"
    assert second.id in DeferredJobRegistry(queue=queue).get_job_ids()
    burst()
    assert rqfuncs.calls() == ["first", "second"]
    assert status(r, second) == "finished"
    assert DeferredJobRegistry(queue=queue).get_job_ids() == []
    assert_gauges_exact(r)


def test_a_dependent_of_several_jobs_waits_for_the_last(queue, burst, r):
    a, b = queue.enqueue(rqfuncs.say, "a"), queue.enqueue(rqfuncs.say, "b")
    both = queue.enqueue(rqfuncs.say, "both", depends_on=[a, b])
    queue.enqueue(rqfuncs.say, "c")
    burst()
    # released when b finished, behind c (already queued)
    assert rqfuncs.calls() == ["a", "b", "c", "both"]
    assert status(r, both) == "finished"
    assert_gauges_exact(r)


def test_a_failed_dependency_holds_its_dependents_unless_they_allow_failure(queue, burst, r):
    ok, bad = queue.enqueue(rqfuncs.say, "ok"), queue.enqueue(rqfuncs.boom, "bad")
    held = queue.enqueue(rqfuncs.say, "held", depends_on=[ok, bad])
    allowed = queue.enqueue(rqfuncs.say, "allowed", depends_on=Dependency(jobs=[ok, bad], allow_failure=True))
    burst()
    assert rqfuncs.calls() == ["ok", "bad", "allowed"]
    assert (status(r, held), status(r, allowed)) == ("deferred", "finished")
    assert DeferredJobRegistry(queue=queue).get_job_ids() == [held.id]
    assert_gauges_exact(r)


def test_a_dependency_being_retried_has_not_failed_yet(queue, burst, r):
    flaky = queue.enqueue(rqfuncs.boom, "flaky", retry=Retry(max=1))
    after = queue.enqueue(rqfuncs.say, "after", depends_on=Dependency(jobs=[flaky], allow_failure=True))
    burst()
    # released by the final failure only, not by the failed attempt that was retried
    assert rqfuncs.calls() == ["flaky", "flaky", "after"]
    assert status(r, after) == "finished"


def test_enqueue_at_front_puts_the_released_dependent_first(queue, burst, r):
    first = queue.enqueue(rqfuncs.say, "first")
    queue.enqueue(rqfuncs.say, "queued")
    queue.enqueue(rqfuncs.say, "front", depends_on=Dependency(jobs=[first], enqueue_at_front=True))
    queue.enqueue(rqfuncs.say, "back", depends_on=first)
    burst()
    assert rqfuncs.calls() == ["first", "front", "queued", "back"]


def test_a_dependency_already_finished_does_not_defer(queue, burst, r):
    first = queue.enqueue(rqfuncs.say, "first")
    burst()
    second = queue.enqueue(rqfuncs.say, "second", depends_on=first)
    assert status(r, second) == "queued"
    burst()
    assert rqfuncs.calls() == ["first", "second"]
    assert_gauges_exact(r)


def test_a_chain_runs_in_order(queue, burst, r):
    a = queue.enqueue(rqfuncs.say, "a")
    b = queue.enqueue(rqfuncs.say, "b", depends_on=a)
    c = queue.enqueue(rqfuncs.say, "c", depends_on=b)
    queue.enqueue(rqfuncs.say, "x")
    burst()
    assert rqfuncs.calls() == ["a", "x", "b", "c"]
    assert [status(r, j) for j in (a, b, c)] == ["finished"] * 3
    assert_gauges_exact(r)


def test_a_dependent_on_another_queue_is_released_onto_its_own(r, burst):
    import rq

    first = rq.Queue("one", connection=r).enqueue(rqfuncs.say, "first")
    second = rq.Queue("two", connection=r).enqueue(rqfuncs.say, "second", depends_on=first)
    burst(queues=("one",))
    assert status(r, second) == "queued"
    assert rq.Queue("two", connection=r).job_ids == [second.id]
    burst(queues=("two",))
    assert rqfuncs.calls() == ["first", "second"]


def test_a_cancelled_dependent_is_not_released(queue, burst, r):
    first = queue.enqueue(rqfuncs.say, "first")
    second = queue.enqueue(rqfuncs.say, "second", depends_on=first)
    Job.fetch(second.id, connection=r).cancel()
    burst()
    assert rqfuncs.calls() == ["first"]
    assert status(r, second) == "canceled"


# -- jobsvc's own Client.enqueue(depends_on=...) -------------------------------------------------------------


def test_client_depends_on_writes_rqs_format(r, client, queue):
    first = client.enqueue(rqfuncs.say, "first")
    second = client.enqueue(rqfuncs.say, "second", depends_on=[first, "missing-but-done"], allow_failure=True)
    assert client.get(second.id).state == State.DEFERRED
    job = Job.fetch(second.id, connection=r)  # RQ reads it back as its own
    assert (job.get_status(), job.allow_dependency_failures) == ("deferred", True)
    assert job._dependency_ids == [first.id, "missing-but-done"]
    assert sorted(job.dependency_ids) == sorted([first.id, "missing-but-done"])
    assert second.id in DeferredJobRegistry(queue=queue).get_job_ids()
    assert r.smembers(f"rq:job:{first.id}:dependents") == {second.id.encode()}
    assert json.loads(r.hget(f"rq:job:{second.id}", "dependency_ids")) == [first.id, "missing-but-done"]


def test_client_depends_on_runs_after_its_dependencies(r, client, burst, worker_kind):
    a = client.enqueue(rqfuncs.say, "a")
    b = client.enqueue(rqfuncs.say, "b", depends_on=a.id)
    c = client.enqueue(rqfuncs.say, "c", depends_on=[a, b])
    burst()
    assert rqfuncs.calls() == ["a", "b", "c"]
    assert [status(r, j.id) for j in (a, b, c)] == ["finished"] * 3
    if worker_kind == "jobsvc":  # RQ's worker does not keep jobsvc's gauges
        assert_gauges_exact(r)


def test_client_deferred_jobs_show_in_listing_and_stats(r, client):
    first = client.enqueue(rqfuncs.say, "first", queue="q")
    second = client.enqueue(rqfuncs.say, "second", queue="q", depends_on=first)
    keys = Keys(client.config.key_prefix)
    assert counts_by(r, keys, "queue")["q"]["deferred"] == 1
    page, _ = list_jobs(r, client.config, JobFilter(queue="q", state="deferred"))
    assert [(j.id, j.state) for j in page] == [(second.id, State.DEFERRED)]
    assert_gauges_exact(r)


def test_client_dependency_already_done_queues_at_once(r, client, burst):
    done = client.enqueue(rqfuncs.say, "done")
    bad = client.enqueue(rqfuncs.boom, "bad", max_attempts=1)
    burst()
    assert client.get(client.enqueue(rqfuncs.say, "x", depends_on=done).id).state == State.QUEUED
    assert client.get(client.enqueue(rqfuncs.say, "y", depends_on=bad).id).state == State.DEFERRED
    allowed = client.enqueue(rqfuncs.say, "z", depends_on=bad, allow_failure=True)
    assert client.get(allowed.id).state == State.QUEUED
    assert_gauges_exact(r)


def test_client_dependent_of_a_plain_rq_job(r, client, queue, burst, worker_kind):
    first = queue.enqueue(rqfuncs.say, "rq-first")
    second = client.enqueue(rqfuncs.say, "jobsvc-second", depends_on=first.id)
    burst()
    assert rqfuncs.calls() == ["rq-first", "jobsvc-second"]
    if worker_kind == "jobsvc":
        assert client.get(second.id).state == State.COMPLETED
        assert_gauges_exact(r)


def test_client_depends_on_with_an_allowed_failure_and_a_held_one(r, client, burst, worker_kind):
    bad = client.enqueue(rqfuncs.boom, "bad", max_attempts=1)
    held = client.enqueue(rqfuncs.say, "held", depends_on=bad)
    allowed = client.enqueue(rqfuncs.say, "allowed", depends_on=bad, allow_failure=True)
    burst()
    assert rqfuncs.calls() == ["bad", "allowed"]
    assert (status(r, held.id), status(r, allowed.id)) == ("deferred", "finished")
    if worker_kind == "jobsvc":
        assert (client.get(held.id).state, client.get(allowed.id).state) == (State.DEFERRED, State.COMPLETED)
        client.cancel(held.id)
        assert client.get(held.id).state == State.CANCELLED
        assert r.zscore("rq:deferred:default", held.id) is None
        assert_gauges_exact(r)


def test_an_operator_requeue_of_a_failed_dependency_releases_its_held_dependents(r, client, burst, worker_kind):
    if worker_kind == "rq":
        pytest.skip("Client.requeue is jobsvc's operator retry")
    flaky = client.enqueue(retryfuncs.flaky, "f", 1, max_attempts=1)  # fails once, then succeeds
    held = client.enqueue(rqfuncs.say, "held", depends_on=flaky)
    burst()
    assert client.get(held.id).state == State.DEFERRED
    dependents = f"rq:job:{flaky.id}:dependents"
    r.expire(dependents, 600)  # the lifetime RQ's own worker gives the sets of a job that ended
    client.requeue(flaky.id)
    assert r.ttl(dependents) == -1  # and is kept while the job runs again
    burst()
    assert rqfuncs.calls() == ["f:None", "f:None", "held"]
    assert client.get(held.id).state == State.COMPLETED
    assert_gauges_exact(r)


@pytest.mark.parametrize(("options", "message"), [
    ({"depends_on": "x", "delay": 5}, "no delay or at"),
    ({"depends_on": ["a b"]}, "job ids"),
    ({"depends_on": [str(i) for i in range(101)]}, "at most 100"),
    ({"allow_failure": True}, "depends_on only"),
    ({"depends_on": "me", "job_id": "me"}, "itself"),
])
def test_client_depends_on_is_validated(client, options, message):
    from jobsvc.errors import ValidationError

    with pytest.raises(ValidationError, match=message):
        client.enqueue(rqfuncs.say, "x", **options)


def test_a_dependency_key_of_the_wrong_type_refuses_the_whole_batch_before_any_write(r, client):
    from redis.exceptions import ResponseError

    from tests.redis_state import state

    r.set("rq:job:x:dependents", "not a set")
    before = state(r)
    batch = [client.job(rqfuncs.say, "fine"), client.job(rqfuncs.say, "waits", depends_on="x")]
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        client.enqueue_many(batch)
    assert state(r) == before


def test_deleting_jobs_takes_their_dependency_keys_with_them(r, client, burst, worker_kind):
    if worker_kind == "rq":
        pytest.skip("jobsvc's delete; RQ's worker keeps a dependents set naming a deleted job")
    first = client.enqueue(rqfuncs.say, "first")
    gone = client.enqueue(rqfuncs.say, "gone", depends_on=first)
    kept = client.enqueue(rqfuncs.say, "kept", depends_on=first)
    client.delete(gone.id)
    assert r.zscore("rq:deferred:default", gone.id) is None
    assert not r.exists(f"rq:job::{gone.id}:dependencies")
    burst()  # the dependents set of `first` still names the deleted job: passed over
    assert rqfuncs.calls() == ["first", "kept"]
    assert not r.exists(f"rq:job:{first.id}:dependents")  # all its dependents left
    client.delete(kept.id)
    assert not r.exists(f"rq:job::{kept.id}:dependencies")
    assert_gauges_exact(r)


def test_the_completion_releases_its_dependents_in_the_same_script_call(r, client):
    from jobsvc.engine.leases import Leases

    parent = client.enqueue(rqfuncs.say, "parent")
    waiting = client.enqueue_many([client.job(rqfuncs.say, str(i), depends_on=parent) for i in range(3)])
    keys = Keys(client.config.key_prefix)
    assert counts_by(r, keys, "queue")["default"]["deferred"] == 3
    leases = Leases(r, client.config)
    lease = leases.claim(["default"], "w")
    calls_before = r.info("commandstats")["cmdstat_evalsha"]["calls"]
    leases.complete(lease, None, "w", 1.0, 2.0)
    assert r.info("commandstats")["cmdstat_evalsha"]["calls"] == calls_before + 1
    assert [client.get(j.id).state for j in waiting] == [State.QUEUED] * 3
    # in no particular order: RQ releases from a set too
    assert sorted(r.lrange("rq:queue:default", 0, -1)) == sorted(j.id.encode() for j in waiting)
    row = counts_by(r, keys, "queue")["default"]
    assert (row["deferred"], row["queued"], row["completed"]) == (0, 3, 1)
    assert_gauges_exact(r)
