"""The first-hour path: every package the tests import is declared, and CI runs the README's test command
in a fresh virtualenv. These checks read files only; they fail even on a machine whose Python happens to
have an undeclared package (which is how a missing test dependency once slipped through CI)."""
from __future__ import annotations

import ast
import configparser
import re
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OWN = {"jobsvc", "workers", "admin_api", "jobsvc_cli", "tests", "bench"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(line: str) -> str:
    return _norm(re.split(r"[\s\[<>=!~;]", line.strip(), maxsplit=1)[0])


def declared(extra: str = "test") -> set[str]:
    """Distributions named in install_requires and one extra of setup.cfg."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines() + cfg["options.extras_require"][extra].splitlines()
    return {_requirement_name(line) for line in lines if line.strip() and not line.strip().startswith("#")}


def with_dependencies(names: set[str]) -> set[str]:
    """`names` and everything they require, as installed here."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_requirement_name(r) for r in requires if "extra ==" not in r]
    return seen


def third_party_imports(folder: str = "tests") -> dict[str, str]:
    """Top-level modules imported under `folder` (the test suite) that are neither stdlib nor this project:
    module -> a file."""
    found: dict[str, str] = {}
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in OWN and top != "__future__":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_module_the_tests_import_comes_from_a_declared_distribution():
    providers = metadata.packages_distributions()
    allowed = with_dependencies(declared())
    undeclared = {}
    for module, where in third_party_imports().items():
        dists = {_norm(d) for d in providers.get(module, [])}
        if not dists & allowed:
            undeclared[module] = (where, sorted(dists) or "not installed")
    assert not undeclared, f"imported by the tests but not declared in setup.cfg [test]: {undeclared}"


def test_every_module_the_benchmark_imports_comes_from_the_bench_extra_or_install_requires():
    # `pip install -e '.[bench]'` is what docs/benchmarks.md tells an operator to run before `python -m bench`.
    # The bench extra is not installed where the tests run (CI installs `[test]`): a module no installed
    # distribution provides must then be named by the extra itself (huey, dramatiq: module = distribution).
    providers = metadata.packages_distributions()
    allowed = with_dependencies(declared("bench"))
    undeclared = {module: where for module, where in third_party_imports("bench").items()
                  if not {_norm(d) for d in providers.get(module, [module])} & allowed}
    assert not undeclared, f"imported by bench/ but not declared in setup.cfg [bench]: {undeclared}"


def test_the_known_breaking_pytest_is_excluded():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    pytest_line = next(line for line in cfg["options.extras_require"]["test"].splitlines()
                       if _requirement_name(line) == "pytest")
    assert "<9.2" in pytest_line, "pytest 9.2 breaks schemathesis 4's plugin ('Function' has no '_nodeid')"


def readme_commands() -> list[str]:
    block = (ROOT / "README.md").read_text().split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.strip().splitlines()]


def test_ci_runs_the_readme_test_command_in_a_fresh_virtualenv():
    install_and_run, test_command = readme_commands()
    assert "jobsvc up" in install_and_run
    assert "pytest" in test_command
    ci = (ROOT / ".ci" / "run").read_text()
    assert test_command in ci, "CI must call the README's test command exactly as written"
    venv_at = ci.index("-m venv")
    assert ci.index("rm -rf", 0) < venv_at < ci.index("bin/activate") < ci.index(test_command)
