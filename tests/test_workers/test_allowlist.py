"""Workers run a job from the HTTP API only when its function lies in the allowed modules (jobsvc.allowlist):
checked before anything is imported and again on the object found. Jobs from Python run anything, as in RQ."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from jobsvc.allowlist import ORIGIN_API, ORIGIN_FIELD, ModuleAllowList
from jobsvc.engine.enqueueing import enqueue
from jobsvc.engine.functions import Registry
from jobsvc.engine.states import State
from jobsvc.errors import NotAllowed, ValidationError


def enqueue_as_api(client, func, *args, **options):
    """A job as the HTTP API makes it: marked js_origin=api."""
    spec = client.job(func, *args, **options)
    return enqueue(client.redis, client.config, [spec], [{ORIGIN_FIELD: ORIGIN_API}])[0].id


@pytest.fixture
def marker_module(tmp_path, monkeypatch):
    """A module outside the allow-list that leaves a file behind if it is ever imported."""
    marker = tmp_path / "imported"
    (tmp_path / "outside_mod.py").write_text(f"open({str(marker)!r}, 'w').close()\n\ndef run():\n    return 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield marker
    sys.modules.pop("outside_mod", None)


def refusal(client, job_id):
    info = client.get(job_id)
    run = client.runs(job_id)[0]
    return info.state, info.attempts, run["message"]


@pytest.mark.parametrize("path", ["subprocess.getoutput", "os.system", "builtins.eval", "builtins.exec",
                                  "pickle.loads"])
def test_an_api_job_outside_the_allow_list_fails_at_once(client, run_worker, path):
    job_id = enqueue_as_api(client, path, "touch /tmp/jobsvc-should-not-exist", max_attempts=5)
    run_worker()
    state, attempts, message = refusal(client, job_id)
    assert (state, attempts) == (State.FAILED, 1)
    assert "outside the allowed modules (tests)" in message and client.runs(job_id)[0]["exc_type"] == "NotAllowed"
    assert not Path("/tmp/jobsvc-should-not-exist").exists()


def test_an_api_job_outside_the_allow_list_is_never_imported(client, run_worker, marker_module):
    job_id = enqueue_as_api(client, "outside_mod.run")
    run_worker()
    assert client.get(job_id).state == State.FAILED
    assert not marker_module.exists()
    trusted = client.enqueue("outside_mod.run")  # from Python: trusted, as in RQ
    run_worker()
    assert client.result(trusted.id) == 1 and marker_module.exists()


@pytest.mark.parametrize("path", ["tests.jobfuncs.os.system", "tests.jobfuncs.time.sleep",
                                  "tests.jobfuncs.NonRetryableError", "tests.jobfuncs.__builtins__.exec"])
def test_walking_through_an_allowed_module_to_other_code_is_refused(client, run_worker, path):
    job_id = enqueue_as_api(client, path, "touch /tmp/jobsvc-should-not-exist")
    run_worker()
    state, _, message = refusal(client, job_id)
    assert state == State.FAILED and ("outside the allowed modules" in message or "dunder" in message)


def test_an_api_job_inside_the_allow_list_runs(client, run_worker):
    job_id = enqueue_as_api(client, "tests.jobfuncs.add", 2, 3)
    run_worker()
    assert client.result(job_id) == 5


def test_a_function_cached_for_a_python_job_is_still_refused_to_an_api_job(client, run_worker):
    trusted = client.enqueue("json.dumps", [1])
    from_api = enqueue_as_api(client, "json.dumps", [1])
    run_worker()
    assert client.result(trusted.id) == "[1]"
    assert client.get(from_api).state == State.FAILED


def test_a_registry_function_outside_the_allow_list_does_not_run_for_the_api(client, run_worker):
    registry = Registry(client)
    registry.register("ops", "shell", "subprocess.getoutput")  # Python code may register anything
    spec_job = registry.job("ops/shell", "id")
    extra = {**spec_job.fields, ORIGIN_FIELD: ORIGIN_API}
    job_id = enqueue(client.redis, client.config, [spec_job.spec], [extra])[0].id
    run_worker()
    assert client.get(job_id).state == State.FAILED
    trusted = registry.enqueue("ops/shell", "echo trusted")
    run_worker()
    assert client.result(trusted.id) == "trusted"


def test_the_worker_flag_overrides_the_environment_and_an_empty_list_allows_nothing(client, run_worker):
    job_id = enqueue_as_api(client, "tests.jobfuncs.add", 1, 1)
    run_worker(allowed_modules=" ")
    assert client.get(job_id).state == State.FAILED
    assert "outside the allowed modules (none)" in client.runs(job_id)[0]["message"]


def test_prefixes_match_whole_module_names_only():
    allow = ModuleAllowList.parse("app.tasks, billing")
    allow.check_path("app.tasks.send")
    allow.check_path("app.tasks.sub.send")
    allow.check_path("billing.charge")
    for path in ("app.tasksx.send", "app.send", "billingx.f", "app.tasks.__class__.x"):
        with pytest.raises(NotAllowed):
            allow.check_path(path)
    with pytest.raises(ValidationError):
        ModuleAllowList.parse("app.tasks; rm -rf")
