"""How a worker finds job functions: the working directory and --path on the import path, and an error per
cause (missing module, missing attribute, an import that raised) instead of RQ's one 'Invalid attribute name'."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jobsvc.engine.states import State
from workers.imports import FunctionImportError, add_import_paths, import_function


@pytest.fixture
def modules(tmp_path, monkeypatch):
    """A directory of throwaway modules on sys.path, forgotten again afterwards."""
    (tmp_path / "fi_good.py").write_text("def add(a, b):\n    return a + b\n\nclass Tasks:\n"
                                         "    @staticmethod\n    def twice(x):\n        return 2 * x\n\nNUMBER = 7\n")
    (tmp_path / "fi_raises.py").write_text("x = 1\nraise ValueError('bad config at import')\n")
    (tmp_path / "fi_needs.py").write_text("import fi_absent_dependency\n")
    (tmp_path / "fi_pkg").mkdir()
    (tmp_path / "fi_pkg" / "__init__.py").write_text("")
    (tmp_path / "fi_pkg" / "jobs.py").write_text("def run():\n    return 'ran'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("fi_")]:
        del sys.modules[name]


def test_functions_methods_and_packages_are_found(modules):
    assert import_function("fi_good.add")(2, 3) == 5
    assert import_function("fi_good.Tasks.twice")(4) == 8
    assert import_function("fi_pkg.jobs.run")() == "ran"


@pytest.mark.parametrize(("path", "says"), [
    ("fi_nowhere.add", "no module named 'fi_nowhere' on the worker's import path"),
    ("fi_pkg.nowhere.run", "module 'fi_pkg' has no attribute 'nowhere'"),
    ("fi_good.subtract", "module 'fi_good' has no attribute 'subtract'"),
    ("fi_good.Tasks.thrice", "type 'fi_good.Tasks' has no attribute 'thrice'"),
    ("fi_good.NUMBER", "'fi_good.NUMBER' is a int, not a function"),
    ("fi_good", "is not an import path"),
    ("fi_good.add; rm", "is not an import path"),
])
def test_each_cause_has_its_own_message(modules, path, says):
    with pytest.raises(FunctionImportError) as caught:
        import_function(path)
    assert says in str(caught.value)


def test_an_import_that_raised_is_reported_as_that_exception_with_its_traceback(modules):
    with pytest.raises(FunctionImportError) as caught:
        import_function("fi_raises.anything")
    assert str(caught.value) == "importing module 'fi_raises' raised ValueError: bad config at import"
    assert isinstance(caught.value.__cause__, ValueError)
    with pytest.raises(FunctionImportError, match="importing module 'fi_needs' raised ModuleNotFoundError"):
        import_function("fi_needs.run")


def test_add_import_paths_puts_directories_first_once(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "path", ["/somewhere", str(tmp_path / "b")])
    added = add_import_paths([str(tmp_path / "a"), str(tmp_path / "b")])
    assert added == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert sys.path == [str(tmp_path / "a"), str(tmp_path / "b"), "/somewhere"]


def test_a_failed_import_fails_the_job_at_once_and_the_run_says_why(client, run_worker, modules):
    job = client.enqueue("fi_raises.anything", max_attempts=5)
    run_worker()
    assert client.get(job.id).state == State.FAILED
    run = client.runs(job.id)[0]
    assert run["message"] == ("cannot load job function fi_raises.anything: importing module 'fi_raises' "
                              "raised ValueError: bad config at import")
    assert "bad config at import" in run["traceback"] and "fi_raises.py" in run["traceback"]


def console_script() -> Path:
    script = Path(sys.executable).with_name("jobsvc")
    if not script.exists():
        pytest.skip(f"the jobsvc console script is not installed beside {sys.executable} (pip install -e .)")
    return script


def test_the_console_script_worker_imports_from_its_directory_and_from_path(client, redis_url, tmp_path):
    """The Procfile's `jobsvc worker` (a console script, whose sys.path[0] is the bin directory) finds
    user modules in its working directory, as `rq worker` does, and in every --path directory."""
    app, lib = tmp_path / "app", tmp_path / "lib"
    app.mkdir(), lib.mkdir()
    (app / "myjobs.py").write_text("def add(a, b):\n    return a + b\n")
    (lib / "libjobs.py").write_text("def mul(a, b):\n    return a * b\n")
    here = client.enqueue("myjobs.add", 2, 3)
    there = client.enqueue("libjobs.mul", 4, 5)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JOBSVC_PATH")}
    env["REDIS_URL"] = redis_url
    out = subprocess.run([str(console_script()), "worker", "--burst", "--path", str(lib)], cwd=app, env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert f"import from {lib}, {app}" in out.stderr
    assert client.result(here.id) == 5 and client.result(there.id) == 20


def test_jobsvc_path_adds_directories_too(client, redis_url, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "envjobs.py").write_text(textwrap.dedent("""
        def hello(name):
            return f"hello {name}"
    """))
    job = client.enqueue("envjobs.hello", "ada")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(REDIS_URL=redis_url, JOBSVC_PATH=str(lib))
    out = subprocess.run([str(console_script()), "worker", "--burst"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert client.result(job.id) == "hello ada"
