"""Property-based tests of the whole API against its own OpenAPI document (schemathesis), on every CI run.

Stateless: every operation with valid and invalid inputs; no 5xx, and every response conforms to the
document (status code, content type, headers, body schema). A share of the JSON bodies get a lone
surrogate, which schemathesis never generates (it leaves out category Cs): those must be refused, never
a 2xx or a 5xx.
Stateful: call sequences that follow the document's links (POST /jobs 201 -> GET / PATCH / DELETE
/jobs/{id}, POST /schedules -> /schedules/{id}, POST /keys -> /keys/{id}, POST /functions -> ...).

Budget: about a minute on two cores (MAX_EXAMPLES per operation, STATEFUL_EXAMPLES scenarios)."""
from __future__ import annotations

import collections
import itertools
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ensure_resource_availability,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    use_after_free,
)

from admin_api.openapi import LINKS
from jobsvc.admin import apikeys
from jobsvc.engine import enqueueing
from jobsvc.engine.functions import Registry
from jobsvc.scheduling.schedules import Schedules
from tests.test_admin_api.support import ADMIN_KEY, NOOP, make_failed, make_running

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
# After a link: a resource just created is there, one just deleted is gone.
STATEFUL_CHECKS = [*CHECKS, use_after_free, ensure_resource_availability]
HEADERS = {"X-Admin-Key": ADMIN_KEY, "X-Confirm": "true"}
MAX_EXAMPLES = 60
STATEFUL_EXAMPLES = 100
STATEFUL_STEPS = 8
LONE = "\udc00"


def seed(client, leases, r, config) -> dict[str, Any]:
    """Jobs in several states, a queue, a key, schedules and registry functions, so that examples reach
    real records, not only 404s; their ids."""
    from workers.worker import LeasedWorker

    LeasedWorker(["default"], r, config, name="host.1.w").register_birth()
    ids = [make_running(client, leases), make_failed(client, leases, queue="other"),
           client.enqueue(NOOP, delay=600).id, client.enqueue("tests.jobfuncs.add", 1, 2, namespace="ns").id]
    key, _ = apikeys.create(r, config.key_prefix, "known", ["jobs:read"])
    Registry(client).register("ns", "fn", "tests.jobfuncs.add", queue="other")
    Registry(client).register("ns", "off", NOOP, enabled=False)
    sched = Schedules(client)
    sched.create(id="every-minute", interval=60, function=NOOP)
    sched.create(id="nightly", cron="0 3 * * *", timezone="Europe/Paris", function="ns/fn", args=[1, 2])
    sched.create(id="disabled-fn", cron="@hourly", function="ns/off")
    sched.execute("every-minute")
    return {"job_id": ids, "key_id": [key.id, "000000000000"]}


@pytest.fixture
def known(client, leases, r, config):
    ids = seed(client, leases, r, config)
    return {"job_id": itertools.cycle(ids["job_id"]), "name": itertools.cycle(["default", "other", "nope"]),
            "key_id": itertools.cycle(ids["key_id"]),
            "schedule_id": itertools.cycle(["every-minute", "nightly", "disabled-fn", "nope"]),
            "namespace": itertools.cycle(["ns", "ns", "nope"]), "function_name": itertools.cycle(["fn", "off"])}


@pytest.fixture
def api_schema(app, known):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")
_turn = itertools.count()


def _add_lone_surrogate(body: dict[str, Any], turn: int) -> None:
    """Put a lone surrogate into the body: at the end of its first string value (depth first), or, on odd
    turns or when it has none, as a key of its first object."""
    stack: list[Any] = [body]
    while stack and turn % 2 == 0:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for k, v in items:
            if isinstance(v, str):
                node[k] = v + LONE
                return
            if isinstance(v, (dict, list)):
                stack.append(v)
    body[LONE] = 1


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          database=None)
def test_api_conforms_to_its_openapi_document(case, known):
    turn = next(_turn)
    # Every other example aims at a real job / queue / key instead of a random id.
    if case.path_parameters and turn % 2 == 0:
        for name in list(case.path_parameters):
            if name in known:
                case.path_parameters[name] = next(known[name])
    # Every third JSON body (not on probes with another method: HEAD /jobs answers 200 and reads no body).
    own_method = case.method.upper() == case.operation.method.upper()
    surrogate = isinstance(case.body, dict) and own_method and turn % 3 == 0
    if surrogate:
        _add_lone_surrogate(case.body, turn // 3)
    response = case.call_and_validate(headers=HEADERS, checks=CHECKS)
    if surrogate:  # refused: a 422, or earlier (a generated bad key, method or URL)
        assert 400 <= response.status_code < 500, (case.body, response.text)


# Bodies that create something, used for every other create call of a scenario (random ones almost never
# name an importable function: without these the links from POST /jobs, /schedules and /functions would
# hardly ever be followed).
CREATES = {
    ("POST", "/api/v1/jobs"): [{"function": NOOP}, {"function": NOOP, "delay": 600, "priority": 3},
                               {"function": "ns/fn", "args": [1, 2]}, {"function": NOOP, "trigger": "pull"}],
    ("POST", "/api/v1/jobs/batch"): [{"jobs": [{"function": NOOP, "delay": 60}, {"function": NOOP}]}],
    ("POST", "/api/v1/schedules"): [{"function": NOOP, "interval": 60},
                                    {"function": "ns/fn", "cron": "0 3 * * *", "timezone": "Europe/Paris"}],
    ("POST", "/api/v1/functions"): [{"namespace": "ns", "name": "made", "path": NOOP, "queue": "other"}],
}


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str, width: int) -> Callable[[], None]:
    """Make `module.name()` (a random id maker) return 1, 2, 3 ... zero-padded to `width`, restarting at each call
    of the returned function."""
    counter = itertools.count(1)

    def restart() -> None:
        nonlocal counter
        counter = itertools.count(1)
    monkeypatch.setattr(module, name, lambda: f"{next(counter):0{width}x}")
    return restart


@pytest.fixture
def state_machine(api_schema, client, leases, r, config, monkeypatch):
    # Ids in creation order, the same on every replay: listings order what was created in one millisecond by id,
    # and schemathesis follows a listing's first item; with random ids a replay of a scenario could take another
    # job than the run it replays (Hypothesis then stops with FlakyStrategyDefinition, hiding what it found).
    restarts = [_counting(monkeypatch, enqueueing, "new_job_id", 32), _counting(monkeypatch, apikeys, "new_key_id", 12)]

    class AdminApi(api_schema.as_state_machine()):  # type: ignore[misc]
        def setup(self):
            # Each scenario starts from the same data: what a call answers must not depend on the scenarios
            # before it (Hypothesis replays and shrinks them).
            r.flushdb()
            for restart in restarts:
                restart()
            seed(client, leases, r, config)
            self.creates = collections.Counter()

        def before_call(self, case):
            op = (case.method.upper(), case.operation.path)
            if op in CREATES and case.method.upper() == case.operation.method.upper():
                self.creates[op] += 1
                turn = self.creates[op]
                if turn % 2:
                    case.body = dict(CREATES[op][turn // 2 % len(CREATES[op])])

        def get_call_kwargs(self, case):
            return {"headers": HEADERS}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=STATEFUL_CHECKS, headers=HEADERS, recorder=self.recorder)

    return AdminApi


def test_call_sequences_along_the_links_conform(state_machine):
    state_machine.run(settings=settings(max_examples=STATEFUL_EXAMPLES, stateful_step_count=STATEFUL_STEPS,
                                        deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                                        database=None))


def test_links_name_real_operations_and_their_path_parameters(api):
    doc = api.as_key(None).http.get("/api/v1/openapi.json").get_json()
    operations = {op["operationId"]: (path, op) for path, ops in doc["paths"].items() for op in ops.values()}
    found = 0
    for source, statuses in LINKS.items():
        _, op = operations[source]
        for status, links in statuses.items():
            assert op["responses"][status]["links"] == links
            for link in links.values():
                target_path, _ = operations[link["operationId"]]
                assert all(f"{{{name}}}" in target_path for name in link["parameters"]), link
                found += 1
    assert found >= 20
