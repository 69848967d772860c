"""Property-based test of the whole API against its own OpenAPI document (schemathesis): for valid and
invalid inputs alike, no 5xx, and every response conforms to the document (status code, content type,
headers, body schema). Examples are bounded so the run stays well under a minute."""
from __future__ import annotations

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_headers_conformance,
                                               response_schema_conformance, status_code_conformance)

from jobsvc import apikeys
from jobsvc.functions import Registry
from jobsvc.schedules import Schedules
from tests.test_admin_api.support import ADMIN_KEY, NOOP, make_failed, make_running

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
MAX_EXAMPLES = 25


@pytest.fixture
def known(client, leases, r, config):
    """Jobs in several states, a queue, a key, schedules and registry functions, so that examples reach real records, not only 404s."""
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
    return {"job_id": itertools.cycle(ids), "name": itertools.cycle(["default", "other", "nope"]),
            "key_id": itertools.cycle([key.id, "000000000000"]),
            "schedule_id": itertools.cycle(["every-minute", "nightly", "disabled-fn", "nope"]),
            "namespace": itertools.cycle(["ns", "ns", "nope"]), "function_name": itertools.cycle(["fn", "off"])}


@pytest.fixture
def api_schema(app, known):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")
_turn = itertools.count()


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
          database=None)
def test_api_conforms_to_its_openapi_document(case, known):
    # Every other example aims at a real job / queue / key instead of a random id.
    if case.path_parameters and next(_turn) % 2 == 0:
        for name in list(case.path_parameters):
            if name in known:
                case.path_parameters[name] = next(known[name])
    case.call_and_validate(headers={"X-Admin-Key": ADMIN_KEY, "X-Confirm": "true"}, checks=CHECKS)
