"""Every word the key layout is built of (read off jobsvc/engine/keys.py) as a function namespace, a function name and a
schedule id, through the HTTP API. Issue 11: `POST /api/v1/functions {"namespace": "disabled", ...}` wrote its
index over the set of disabled functions; from then on no registry-function job was claimed, and every
function write answered 503."""
from __future__ import annotations

from jobsvc import State
from tests.keylayout import reserved_words, wrong_keys
from tests.test_admin_api.support import NOOP

WORDS = reserved_words()


def _created(resp, what):
    assert resp.status_code == 201, (what, resp.status_code, resp.get_json())
    return resp.get_json()


def test_reserved_words_as_names_over_http_keep_registry_jobs_running(api, client, r, run_worker):
    refs = [f"{w}/f" for w in WORDS] + [f"ns/{w}" for w in WORDS]
    # The reported request first, then every other word as namespace and as name.
    _created(api.post("/functions", json={"namespace": "disabled", "name": "x", "path": NOOP, "queue": "work"}),
             "disabled/x")
    for ref in refs:
        ns, name = ref.split("/")
        _created(api.post("/functions", json={"namespace": ns, "name": name, "path": NOOP, "queue": "work"}), ref)
    for w in WORDS:
        _created(api.post("/schedules", json={"id": w, "function": "disabled/x", "interval": 3600}), w)
    assert not wrong_keys(r)

    jobs = {ref: _created(api.post("/jobs", json={"function": ref}), ref)["id"] for ref in refs}
    jobs.update({f"schedule {w}": _created(api.post(f"/schedules/{w}/execute"), w)["job_id"] for w in WORDS})
    for ref in ("disabled/f", "ns/disabled"):
        assert api.patch(f"/functions/{ref}", json={"enabled": False}).status_code == 200
    assert not wrong_keys(r)

    run_worker(queues=("work",))
    held = {"disabled/f", "ns/disabled"}
    assert {k for k, job_id in jobs.items() if client.get(job_id).state != State.COMPLETED} == held
    for ref in held:  # every function write still works, and enabling releases the held jobs
        assert api.patch(f"/functions/{ref}", json={"enabled": True}).status_code == 200
    run_worker(queues=("work",))
    assert {client.get(job_id).state for job_id in jobs.values()} == {State.COMPLETED}

    listed = api.get("/functions?limit=500").get_json()
    assert sorted(f["ref"] for f in listed["functions"]) == sorted([*refs, "disabled/x"])
    spaces = {n["namespace"]: n["functions"] for n in api.get("/namespaces").get_json()["namespaces"]}
    assert spaces == {**dict.fromkeys(WORDS, 1), "disabled": 2, "ns": len(WORDS)}
    assert sorted(s["id"] for s in api.get("/schedules?limit=500").get_json()["schedules"]) == WORDS
    assert all(api.get(f"/schedules/{w}").get_json()["completed"] == 1 for w in WORDS)
    assert not wrong_keys(r)

    for ref in [*refs, "disabled/x"]:
        assert api.delete(f"/functions/{ref}").status_code == 204, ref
    for w in WORDS:
        assert api.delete(f"/schedules/{w}").status_code == 204, w
    assert api.get("/functions").get_json()["functions"] == [] and api.get("/namespaces").get_json()["namespaces"] == []
    assert not r.keys("jobsvc:function*") and not r.keys("jobsvc:schedule:*")
    assert not wrong_keys(r)
