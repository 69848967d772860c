"""jobsvc.http.pull.ack_many: completed acks share complete.lua calls, and each ack still gets its own answer."""
from __future__ import annotations

import pytest

from jobsvc.engine import scripts
from jobsvc.engine.backoff import Backoff
from jobsvc.engine.layout import Layout
from jobsvc.engine.leases import Leases
from jobsvc.errors import LeaseLost, NotFound
from jobsvc.http import pull

NOOP = "tests.jobfuncs.noop"
STALE = "f" * 32


@pytest.fixture
def script_calls(monkeypatch):
    """The script names of every call_many round trip, one list per round trip."""
    seen: list[list[str]] = []
    real = scripts.call_many

    def recording(conn, calls, wait=None):
        calls = list(calls)
        seen.append([name for name, _, _ in calls])
        return real(conn, calls, wait)

    monkeypatch.setattr(scripts, "call_many", recording)
    return seen


def test_a_batch_of_completed_acks_costs_one_complete_call(r, client, config, script_calls):
    ids = [client.enqueue_pull(NOOP, queue="pq").id for _ in range(20)]
    leases = pull.claim(r, config, "pq", count=20)
    r.config_resetstat()
    out = pull.ack_many(r, config, [pull.Ack(lease.job_id, lease.token, "completed") for lease in leases])
    assert out == [pull.AckResult(job_id, "completed") for job_id in ids]
    assert r.info("commandstats")["cmdstat_evalsha"]["calls"] == 1
    assert script_calls[-1] == ["complete"]


def test_one_complete_call_per_worker_name(r, client, config, script_calls):
    ids = [client.enqueue_pull(NOOP, queue="pq").id for _ in range(4)]
    leases = pull.claim(r, config, "pq", count=2, worker="w1") + pull.claim(r, config, "pq", count=2, worker="w2")
    acks = [pull.Ack(lease.job_id, lease.token, "completed") for lease in (leases[0], leases[2], leases[1], leases[3])]
    assert [res.job_id for res in pull.ack_many(r, config, acks)] == [ids[0], ids[2], ids[1], ids[3]]
    assert script_calls[-1] == ["complete", "complete"]
    assert [client.runs(job_id)[-1]["worker"] for job_id in ids] == ["w1", "w1", "w2", "w2"]


def _scenario(r, client, config) -> list[pull.Ack]:
    """Every kind of ack, interleaved: completed, retried, failed, stale token, unknown job, replayed, and the
    same job acked twice in one request (as the same outcome, as the other, and completed after a refused fail:
    the order matters for the refusal's state)."""
    ids = [client.enqueue_pull(NOOP, queue="pq", max_attempts=3, backoff=Backoff("fixed", 10, 60, jitter=False)).id
           for _ in range(8)]
    tokens = {lease.job_id: lease.token for lease in pull.claim(r, config, "pq", count=8)}
    pull.ack(r, config, ids[5], tokens[ids[5]], "completed", result=5)
    return [pull.Ack(ids[0], tokens[ids[0]], "completed", result={"n": 0}),
            pull.Ack(ids[1], tokens[ids[1]], "failed", error={"type": "Timeout", "message": "slow"}),
            pull.Ack(ids[2], STALE, "completed"),
            pull.Ack("no-such-job", STALE, "completed"),
            pull.Ack(ids[3], tokens[ids[3]], "failed", error="bad", retryable=False),
            pull.Ack(ids[5], tokens[ids[5]], "completed", result=5),
            pull.Ack(ids[5], tokens[ids[5]], "failed", error="late"),
            pull.Ack(ids[4], tokens[ids[4]], "completed"),
            pull.Ack(ids[4], tokens[ids[4]], "completed"),
            pull.Ack(ids[6], tokens[ids[6]], "completed"),
            pull.Ack(ids[6], tokens[ids[6]], "failed", error="after"),
            pull.Ack(ids[7], STALE, "failed", error="stale"),
            pull.Ack(ids[7], tokens[ids[7]], "completed"),
            pull.Ack(ids[2], tokens[ids[2]], "completed", result=2)]


def _shape(acks: list[pull.Ack], out: list) -> list[tuple]:
    """Each outcome with the job named by its place in the batch, so two runs on different jobs compare."""
    place = {ack.job_id: f"#{i}" for i, ack in reversed(list(enumerate(acks)))}

    def named(text: str) -> str:
        for job_id, name in place.items():
            text = text.replace(job_id, name)
        return text

    shaped: list[tuple] = []
    for res in out:
        if isinstance(res, pull.AckResult):
            shaped.append(("ok", named(res.job_id), res.state, res.due_ms is not None))
        else:
            shaped.append((type(res).__name__, named(str(res)), getattr(res, "state", None)))
    return shaped


def test_mixed_outcomes_come_back_in_order_as_with_one_call_per_ack(r, client, config, script_calls):
    acks = _scenario(r, client, config)
    del script_calls[:]
    batched = pull.ack_many(r, config, acks)
    fenced = [call for call in script_calls if "fail" in call or "complete" in call]
    assert len(fenced) == 1
    # 9 completions in 2 complete.lua calls (the completion of a job after its fail.lua call starts a second
    # one, so it runs after it), and 5 fail.lua calls.
    assert fenced[0] == ["complete", "fail", "fail", "fail", "fail", "fail", "complete"]
    assert [type(res) for res in batched] == [pull.AckResult, pull.AckResult, LeaseLost, NotFound, pull.AckResult,
                                              pull.AckResult, LeaseLost, pull.AckResult, pull.AckResult,
                                              pull.AckResult, LeaseLost, LeaseLost, pull.AckResult,
                                              pull.AckResult]
    states = [getattr(res, "state", None) for res in batched]
    assert states == ["completed", "scheduled", "running", None, "failed", "completed", "completed", "completed",
                      "completed", "completed", "completed", "running", "completed", "completed"]
    assert all(res.job_id == ack.job_id for ack, res in zip(acks, batched, strict=True)
               if isinstance(res, pull.AckResult))
    assert client.result(acks[0].job_id) == {"n": 0} and client.result(acks[-1].job_id) == 2
    # The same acks on fresh jobs, one ack (one script call) at a time: the same answers.
    r.flushdb()
    again = _scenario(r, client, config)
    one_by_one = [pull.ack_many(r, config, [ack])[0] for ack in again]
    assert _shape(acks, batched) == _shape(again, one_by_one)


def test_on_a_cluster_completions_are_grouped_per_queue(r, config):
    leases = Leases(r, config)
    leases.layout = Layout(leases.prefix, cluster=True)  # only the plan is checked: nothing is sent
    acks = [pull.Ack(f"j{i}", STALE, "completed") for i in range(4)] + [pull.Ack("j4", STALE, "failed", error="x")]
    found = [{"origin": queue} for queue in ("q1", "q2", "q1", "q2", "q1")]
    calls, where = pull._ack_calls(leases, acks, found, "w")
    assert [name for name, _, _ in calls] == ["complete", "complete", "fail"]
    assert where == [(0, 0), (1, 0), (0, 1), (1, 1), (2, None)]
    assert calls[0][1] != calls[1][1]  # each call scoped to its own queue's slot
