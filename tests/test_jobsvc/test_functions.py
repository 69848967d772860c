"""The functions registry (jobsvc/engine/functions/) on a real Redis: versions, listing, sync, jobs made from a
function reference, and what disabling a function does to new and queued jobs."""
from __future__ import annotations

import json

import pytest

from jobsvc import NotFound, State, ValidationError, WrongState
from jobsvc.engine.functions import DECLARED, Function, Registry, function, functions_file, load_file
from jobsvc.engine.leases import Leases
from jobsvc_cli.main import main as cli


@pytest.fixture
def reg(client):
    return Registry(client)


def test_register_get_and_version_goes_up_only_on_change(reg):
    fn = reg.register("billing", "charge", "tests.jobfuncs.add", queue="billing", max_attempts=5,
                      description="charge a card")
    assert (fn.ref, fn.path, fn.queue, fn.max_attempts, fn.version, fn.enabled) == (
        "billing/charge", "tests.jobfuncs.add", "billing", 5, 1, True)
    same = reg.register("billing", "charge", "tests.jobfuncs.add", queue="billing", max_attempts=5,
                        description="charge a card")
    assert same.version == 1 and same.updated_ms == fn.updated_ms
    changed = reg.patch("billing", "charge", timeout=30)
    assert (changed.version, changed.timeout, changed.queue) == (2, 30, "billing")
    assert reg.patch("billing", "charge", timeout=30).version == 2
    assert reg.disable("billing", "charge").version == 3
    assert reg.get("billing", "charge") == reg.resolve("billing/charge")
    with pytest.raises(WrongState):
        reg.register("billing", "charge", "tests.jobfuncs.add", replace_existing=False)


def test_registry_refuses_code_and_bad_input(reg):
    for bad in ("lambda: 1", "os.system('x')", "nomodule", ""):
        with pytest.raises(ValidationError):
            reg.register("ns", "f", bad)
    with pytest.raises(ValidationError):
        reg.register("bad ns", "f", "tests.jobfuncs.add")
    with pytest.raises(ValidationError):
        reg.register("ns", "f", "tests.jobfuncs.add", priority=11)
    with pytest.raises(ValidationError):
        reg.register("ns", "f", "tests.jobfuncs.add", code="print(1)")
    with pytest.raises(ValidationError):
        Function.from_dict({"name": "f", "path": "a.b", "source": "x"})
    with pytest.raises(NotFound):
        reg.get("ns", "missing")
    with pytest.raises(NotFound):
        reg.patch("ns", "missing", timeout=3)
    with pytest.raises(NotFound):
        reg.delete("ns", "missing")


def test_list_by_namespace_with_cursor_namespaces_and_delete(reg):
    for ns, name in [("a", "x"), ("a", "y"), ("a", "z"), ("b", "x")]:
        reg.register(ns, name, "tests.jobfuncs.noop")
    reg.disable("a", "y")
    page, cursor = reg.list(limit=2)
    assert [f.ref for f in page] == ["a/x", "a/y"] and cursor == "a/y"
    page, cursor = reg.list(cursor=cursor, limit=2)
    assert [f.ref for f in page] == ["a/z", "b/x"] and cursor is None
    assert [f.ref for f in reg.list("b")[0]] == ["b/x"]
    assert reg.namespaces() == [{"namespace": "a", "functions": 3, "disabled": 1},
                                {"namespace": "b", "functions": 1, "disabled": 0}]
    reg.delete("b", "x")
    assert [n["namespace"] for n in reg.namespaces()] == ["a"]
    with pytest.raises(NotFound):
        reg.get("b", "x")


def test_sync_dry_run_changes_nothing_and_the_real_run_matches_its_report(reg, r):
    reg.register("ops", "keep", "tests.jobfuncs.noop")
    reg.register("ops", "change", "tests.jobfuncs.noop", timeout=10)
    reg.register("ops", "drop", "tests.jobfuncs.noop")
    reg.register("other", "untouched", "tests.jobfuncs.noop")
    wanted = [{"name": "keep", "path": "tests.jobfuncs.noop"},
              {"name": "change", "path": "tests.jobfuncs.noop", "timeout": 20},
              {"name": "new", "path": "tests.jobfuncs.add", "queue": "ops", "backoff": "fixed"}]
    before = {k: r.dump(k) for k in r.keys("jobsvc:function*")}
    dry = reg.sync("ops", wanted, delete_missing=True, dry_run=True)
    assert {k: r.dump(k) for k in r.keys("jobsvc:function*")} == before
    assert (dry.created, dry.updated, dry.deleted, dry.unchanged) == (["new"], ["change"], ["drop"], ["keep"])
    real = reg.sync("ops", wanted, delete_missing=True)
    assert real.to_dict() == {**dry.to_dict(), "dry_run": False}
    assert sorted(f.name for f in reg.all("ops")) == ["change", "keep", "new"]
    assert reg.get("ops", "change").timeout == 20 and reg.get("ops", "change").version == 2
    assert reg.get("ops", "new").backoff["kind"] == "fixed"
    assert reg.get("other", "untouched").version == 1
    again = reg.sync("ops", wanted, delete_missing=True)
    assert again.unchanged == ["change", "keep", "new"] and not (again.created or again.updated or again.deleted)


def test_job_by_reference_takes_the_function_defaults(client, reg):
    reg.register("mail", "send", "tests.jobfuncs.echo", queue="mail", max_attempts=7, priority=2, timeout=40,
                 backoff={"kind": "linear", "base": 2, "cap": 10, "jitter": False})
    job = reg.enqueue("mail/send", "ada", kwargs={"x": 1})
    info = client.get(job.id)
    assert (info.queue, info.namespace, info.max_attempts, info.priority, info.timeout, info.func_name) == (
        "mail", "mail", 7, 2, 40, "tests.jobfuncs.echo")
    assert (info.args, info.kwargs) == (("ada",), {"x": 1})
    assert info.raw["js_fn"] == "mail/send" and info.raw["js_backoff"] == "linear"
    override = client.get(reg.enqueue("mail/send", queue="urgent", priority=1).id)
    assert (override.queue, override.priority, override.max_attempts) == ("urgent", 1, 7)
    with pytest.raises(NotFound):
        reg.enqueue("mail/nope")


def test_disabled_function_refuses_new_jobs_and_holds_queued_ones(client, reg, r):
    reg.register("media", "resize", "tests.jobfuncs.add", queue="media")
    held = [reg.enqueue("media/resize", i, 1).id for i in range(3)]
    reg.disable("media", "resize")
    with pytest.raises(WrongState) as err:
        reg.enqueue("media/resize", 1, 2)
    assert err.value.code == "disabled" and err.value.state is None
    other = client.enqueue("tests.jobfuncs.noop", queue="media").id  # not from the registry: runs

    leases = Leases(r, client.config)
    lease = leases.claim(["media"], "w1")
    assert lease.job_id == other
    assert leases.claim(["media"], "w1") is None  # only held jobs left
    assert all(client.state(j) == State.QUEUED for j in held)
    assert r.lrange("rq:queue:media", 0, -1) == [j.encode() for j in held]  # still in their lane, in order

    reg.enable("media", "resize")
    assert r.llen("jobsvc:wake:media") >= 1  # idle workers are woken
    claimed = [leases.claim(["media"], "w1").job_id for _ in held]
    assert claimed == held


def test_held_jobs_do_not_hide_ready_ones_behind_them(client, reg, r):
    reg.register("media", "thumb", "tests.jobfuncs.noop", queue="media")
    for _ in range(5):
        reg.enqueue("media/thumb")
    reg.disable("media", "thumb")
    ready = client.enqueue("tests.jobfuncs.noop", queue="media").id
    assert Leases(r, client.config).claim(["media"], "w1").job_id == ready


def test_unimportable_function_fails_at_once_without_retry(client, reg, run_worker):
    reg.register("broken", "gone", "tests.no_such_module.func", max_attempts=5)
    job = reg.enqueue("broken/gone").id
    run_worker()
    info = client.get(job)
    assert info.state == State.FAILED
    assert info.attempts == 1
    assert "cannot load job function" in info.error and "no_such_module" in info.error


def test_decorator_declares_and_sync_declared_stores(reg):
    def hello():
        """Say hello."""

    with pytest.raises(ValidationError, match="not importable"):
        function(namespace="deco")(hello)  # a local function: workers could not import it
    hello.__module__, hello.__qualname__ = "tests.jobfuncs", "noop"  # as if defined there
    saved = dict(DECLARED)
    DECLARED.clear()
    try:
        assert function("hello", namespace="deco", queue="q", max_attempts=2)(hello) is hello
        assert hello.jobsvc_ref == "deco/hello"
        [report] = reg.sync_declared()
        assert report.created == ["hello"]
        fn = reg.get("deco", "hello")
        assert (fn.path, fn.queue, fn.max_attempts, fn.description) == ("tests.jobfuncs.noop", "q", 2, "Say hello.")
    finally:
        DECLARED.clear()
        DECLARED.update(saved)


def test_functions_file_formats(tmp_path):
    doc = {"namespace": "ops", "functions": [{"name": "f", "path": "tests.jobfuncs.noop", "queue": "q"}]}
    (tmp_path / "f.json").write_text(json.dumps(doc))
    (tmp_path / "f.yaml").write_text("namespace: ops\nfunctions:\n  - name: f\n    path: tests.jobfuncs.noop\n"
                                     "    queue: q\n")
    (tmp_path / "f.toml").write_text('namespace = "ops"\n[[functions]]\nname = "f"\npath = "tests.jobfuncs.noop"\n'
                                     'queue = "q"\n')
    for name in ("f.json", "f.yaml", "f.toml"):
        assert functions_file(load_file(str(tmp_path / name))) == ("ops", doc["functions"])
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ValidationError):
        load_file(str(tmp_path / "bad.json"))
    with pytest.raises(ValidationError):
        functions_file({"functions": [], "extra": 1})


def test_cli_functions_sync_dry_run_then_real(reg, redis_env, tmp_path, capsys):
    path = tmp_path / "functions.json"
    path.write_text(json.dumps({"namespace": "cli", "functions": [{"name": "f", "path": "tests.jobfuncs.noop"}]}))
    assert cli(["functions", "sync", str(path), "--dry-run"]) == 0
    assert "would be created: 1" in capsys.readouterr().out
    assert reg.all("cli") == []
    assert cli(["functions", "sync", str(path)]) == 0
    assert "created: 1" in capsys.readouterr().out
    assert [f.ref for f in reg.all("cli")] == ["cli/f"]
    assert cli(["functions", "disable", "cli/f"]) == 0
    assert reg.get("cli", "f").enabled is False
    assert cli(["functions", "get", "cli/nope"]) == 2


def test_saving_a_function_again_repairs_its_listing(reg, r):
    """Functions stored under the old index name (`functions:<ns>`, issue 11) do not list; saving them again, even
    unchanged (same version), puts them back in the listing indexes."""
    reg.register("billing", "charge", "tests.jobfuncs.add")
    r.delete("jobsvc:function_names:billing", "jobsvc:function_namespaces")
    assert reg.all() == [] and reg.namespaces() == []
    assert reg.register("billing", "charge", "tests.jobfuncs.add").version == 1
    assert [f.ref for f in reg.all()] == ["billing/charge"]
    assert reg.namespaces() == [{"namespace": "billing", "functions": 1, "disabled": 0}]
