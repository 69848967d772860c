"""Scoped keys: created with the secret shown once, stored hashed, listed, revoked; namespace and queue limits."""
import hashlib

import pytest

from jobsvc.admin import apikeys
from jobsvc.defaults import KEY_PREFIX
from tests.test_admin_api.support import NOOP, make_running

# A job a write key may create: a handler URL (a raw import path needs an admin key; test_allowlist.py).
HANDLER_JOB = {"handler": "https://8.8.8.8/hook"}


def test_create_key_returns_the_secret_once(api):
    resp = api.post("/keys", json={"name": "ci", "scopes": ["jobs:write"]})
    assert resp.status_code == 201
    key = resp.get_json()
    assert key["secret"].startswith(f"jsk_{key['id']}_")
    assert (key["name"], key["scopes"], key["namespaces"], key["queues"]) == ("ci", ["jobs:write"], None, None)
    listed = api.get("/keys").get_json()["keys"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert "secret" not in listed[0]
    assert "secret" not in api.get(f"/keys/{key['id']}").get_json()


def test_the_secret_is_stored_only_as_a_hash(api, r, config):
    secret = api.post("/keys", json={"name": "ci", "scopes": ["jobs:read"]}).get_json()["secret"]
    part = secret.split("_", 2)[2]
    dump = b"".join(k + b"".join(r.hgetall(k).values()) if r.type(k) == b"hash" else k for k in r.keys("*"))
    assert part.encode() not in dump
    assert hashlib.sha256(part.encode()).hexdigest().encode() in dump


def test_new_key_authenticates(api):
    secret = api.post("/keys", json={"name": "ci", "scopes": ["jobs:read"]}).get_json()["secret"]
    assert api.as_key(secret).get("/jobs").status_code == 200
    assert api.as_key(secret, bearer=True).get("/jobs").status_code == 200


def test_revoke_is_204_then_404(api):
    key_id = api.post("/keys", json={"name": "ci", "scopes": ["jobs:read"]}).get_json()["id"]
    assert api.delete(f"/keys/{key_id}").status_code == 204
    assert api.delete(f"/keys/{key_id}").status_code == 404
    assert api.get(f"/keys/{key_id}").status_code == 404


@pytest.mark.parametrize("body", [{"name": "x", "scopes": []}, {"name": "x", "scopes": ["jobs:root"]},
                                  {"name": "", "scopes": ["jobs:read"]}, {"scopes": ["jobs:read"]},
                                  {"name": "x", "scopes": ["jobs:read"], "namespaces": []},
                                  {"name": "x", "scopes": ["jobs:read"], "queues": ["bad queue"]},
                                  {"name": "x", "scopes": ["jobs:read"], "secret": "mine"}])
def test_bad_key_requests_are_422(api, body):
    assert api.post("/keys", json=body).status_code == 422


def test_write_includes_read(api, make_key):
    key = make_key("jobs:write")
    assert api.as_key(key).get("/jobs").status_code == 200
    assert api.as_key(key).post("/jobs", json=HANDLER_JOB).status_code == 201


def test_limited_key_cannot_manage_keys(api, make_key):
    key = make_key("jobs:admin", namespaces=["a"])
    assert api.as_key(key).post("/keys", json={"name": "wider", "scopes": ["jobs:admin"]}).status_code == 403
    assert api.as_key(key).get("/keys").status_code == 403
    assert api.as_key(key).get("/audit").status_code == 403


# -- namespace and queue limits ----------------------------------------------------------------------------


def test_namespace_key_sees_only_its_jobs(api, client, make_key):
    mine = client.enqueue(NOOP, namespace="a").id
    other = client.enqueue(NOOP, namespace="b").id
    key = api.as_key(make_key("jobs:write", namespaces=["a"]))
    assert [j["id"] for j in key.get("/jobs").get_json()["jobs"]] == [mine]
    assert key.get(f"/jobs/{mine}").status_code == 200
    assert key.get(f"/jobs/{other}").status_code == 404
    assert key.post(f"/jobs/{other}/cancel").status_code == 404
    assert key.delete(f"/jobs/{other}").status_code == 404
    assert client.get(other).state.value == "queued"


def test_namespace_key_filtering_another_namespace_is_403(api, make_key):
    key = api.as_key(make_key("jobs:read", namespaces=["a"]))
    assert key.get("/jobs?namespace=b").status_code == 403


def test_key_limited_to_several_namespaces_must_name_one_to_list(api, make_key):
    key = api.as_key(make_key("jobs:read", namespaces=["a", "b"]))
    assert key.get("/jobs").status_code == 403
    assert key.get("/jobs?namespace=b").status_code == 200


def test_namespace_key_creates_in_its_namespace(api, make_key):
    key = api.as_key(make_key("jobs:write", namespaces=["a"]))
    assert key.post("/jobs", json=HANDLER_JOB).get_json()["namespace"] == "a"
    assert key.post("/jobs", json={**HANDLER_JOB, "namespace": "b"}).status_code == 403
    batch = key.post("/jobs/batch", json={"jobs": [HANDLER_JOB, {**HANDLER_JOB, "namespace": "b"}]})
    assert batch.status_code == 403


def test_queue_key_sees_only_its_queues(api, client, make_key):
    client.enqueue(NOOP, queue="q1")
    client.enqueue(NOOP, queue="q2")
    key = api.as_key(make_key("jobs:admin", queues=["q1"]))
    assert [q["name"] for q in key.get("/queues").get_json()["queues"]] == ["q1"]
    assert key.get("/queues/q2").status_code == 404
    assert key.post("/queues/q2/pause").status_code == 404
    assert key.post("/queues/q1/pause").status_code == 200
    assert [j["queue"] for j in key.get("/jobs").get_json()["jobs"]] == ["q1"]


def test_namespace_key_may_not_pause_queues(api, client, make_key):
    client.enqueue(NOOP, queue="q1", namespace="a")
    key = api.as_key(make_key("jobs:admin", namespaces=["a"]))
    assert key.post("/queues/q1/pause").status_code == 403


def test_namespace_key_stats_count_only_its_namespace(api, client, make_key):
    client.enqueue(NOOP, namespace="a")
    client.enqueue(NOOP, namespace="b")
    client.enqueue(NOOP, namespace="b")
    out = api.as_key(make_key("jobs:read", namespaces=["a"])).get("/jobs/stats").get_json()
    assert out["total"]["queued"] == 1
    assert set(out["namespace"]) == {"a"}
    queues = api.as_key(make_key("jobs:read", namespaces=["a"])).get("/queues").get_json()["queues"]
    assert queues[0]["counts"]["queued"] == 1


def test_namespace_key_sees_workers_but_not_other_namespaces_jobs(api, client, r, config, leases, make_key):
    from workers.worker import LeasedWorker

    LeasedWorker(["default"], r, config, name="host.1.w").register_birth()
    make_running(client, leases, namespace="b")
    w = api.as_key(make_key("jobs:read", namespaces=["a"])).get("/workers").get_json()["workers"][0]
    assert w["current_jobs"] == []
    assert len(api.get("/workers").get_json()["workers"][0]["current_jobs"]) == 1


def test_idempotency_key_of_an_invisible_job_is_409(api, client, make_key):
    """Same namespace, another queue: the key is shared, the job is not the caller's to see."""
    client.enqueue(NOOP, queue="hidden", idempotency_key="shared")
    key = api.as_key(make_key("jobs:write", queues=["mine"]))
    resp = key.post("/jobs", json={**HANDLER_JOB, "queue": "mine", "idempotency_key": "shared"})
    assert resp.status_code == 409


def test_idempotency_keys_of_other_namespaces_are_neither_seen_nor_taken(api, client, make_key):
    theirs = client.enqueue(NOOP, namespace="b", idempotency_key="shared")
    key = api.as_key(make_key("jobs:write", namespaces=["a"]))
    resp = key.post("/jobs", json={**HANDLER_JOB, "idempotency_key": "shared"})
    assert resp.status_code == 201 and resp.get_json()["id"] != theirs.id
    again = client.enqueue(NOOP, namespace="b", idempotency_key="shared")
    assert (again.id, again.created) == (theirs.id, False)


# -- jobsvc.admin.apikeys ------------------------------------------------------------------------------------------


def test_verify_rejects_tampered_and_malformed_secrets(fake_r):
    # Plain hash and set commands only: fakeredis keeps this in the fast tier.
    key, secret = apikeys.create(fake_r, KEY_PREFIX, "k", ["jobs:read"])
    assert apikeys.verify(fake_r, KEY_PREFIX, secret) == key
    for bad in (secret + "x", secret[:-1], f"jsk_{key.id}_", f"jsk_{key.id}", "jsk__x", "", "x" * 500,
                secret.replace("jsk_", "jsx_"), f"jsk_{'0' * 12}_{secret.split('_', 2)[2]}"):
        assert apikeys.verify(fake_r, KEY_PREFIX, bad) is None


def test_scope_order():
    assert apikeys.grants(["jobs:admin"], "jobs:read")
    assert apikeys.grants(["jobs:write"], "jobs:write")
    assert not apikeys.grants(["jobs:write"], "jobs:admin")
    assert not apikeys.grants(["jobs:read"], "jobs:write")


def test_same_secret_compares_any_lengths():
    assert apikeys.same_secret("abc", "abc")
    assert not apikeys.same_secret("abc", "abcd")
    assert not apikeys.same_secret("", "abc")


def test_batch_with_an_invisible_idempotency_key_creates_nothing(api, client, make_key):
    client.enqueue(NOOP, queue="hidden", idempotency_key="shared")
    key = api.as_key(make_key("jobs:write", queues=["mine"]))
    body = {"jobs": [{**HANDLER_JOB, "queue": "mine"}, {**HANDLER_JOB, "queue": "mine", "idempotency_key": "shared"}]}
    assert key.post("/jobs/batch", json=body).status_code == 409
    assert key.get("/jobs").get_json()["jobs"] == []


def test_limited_keys_learn_no_other_namespaces_queue_or_namespace_names(api, client, make_key):
    from jobsvc.engine.functions import Registry

    client.enqueue(NOOP, queue="theirs", namespace="b")
    client.enqueue(NOOP, queue="ours", namespace="a")
    ns_key = api.as_key(make_key("jobs:read", namespaces=["a"]))
    assert [q["name"] for q in ns_key.get("/queues").get_json()["queues"]] == ["ours"]
    assert ns_key.get("/queues/theirs").status_code == 404
    assert ns_key.get("/queues/ours").status_code == 200
    Registry(client).register("billing", "charge", NOOP, queue="billing")
    Registry(client).register("ops", "run", NOOP, queue="mine")
    q_key = api.as_key(make_key("jobs:read", queues=["mine"]))
    assert q_key.get("/namespaces").get_json()["namespaces"] == [{"namespace": "ops", "functions": 1, "disabled": 0}]
