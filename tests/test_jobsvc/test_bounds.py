"""One set of input rules (jobsvc.validation) for the HTTP schemas, the CLI and the core: the schemas hold no
numbers of their own, the CLI refuses what the API refuses, and a queue name is checked in one place."""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest
from marshmallow import ValidationError as SchemaInvalid
from marshmallow import validate

from admin_api import schemas as s
from jobsvc import validation
from jobsvc.engine.job import JobSpec
from jobsvc.errors import ValidationError
from jobsvc_cli.args import integer, number
from jobsvc_cli.main import main

ROOT = Path(__file__).resolve().parents[2]
NOOP = "tests.jobfuncs.noop"


def test_the_schemas_take_every_range_and_length_from_jobsvc_validation():
    literal = re.compile(r"(Range|Length)\([^)]*\d|(max|min)=\d")
    found = [f"{path.name}:{n}: {line.strip()}" for path in sorted((ROOT / "admin_api" / "schemas").glob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1) if literal.search(line)]
    assert found == []


@pytest.mark.parametrize(("schema", "field", "bounds"), [
    (s.JobCreateSchema, "priority", validation.PRIORITY), (s.JobCreateSchema, "timeout", validation.JOB_TIMEOUT),
    (s.ScheduleCreateSchema, "interval", validation.INTERVAL), (s.ClaimSchema, "count", validation.PULL_COUNT),
    (s.FunctionCreateSchema, "max_attempts", validation.MAX_ATTEMPTS), (s.JobListQuery, "limit", validation.PAGE_LIMIT),
])
def test_a_schema_range_is_the_bounds_of_the_rule(schema, field, bounds):
    (rng,) = [x for x in schema().fields[field].validators if isinstance(x, validate.Range)]
    assert (rng.min, rng.max) == (bounds.low, bounds.high)


@pytest.mark.parametrize("queue", ["default\n", "de fault", ""])
def test_a_bad_queue_name_is_refused_by_the_schemas_and_the_core_alike(queue):
    with pytest.raises(SchemaInvalid):
        s.JobCreateSchema().load({"function": NOOP, "queue": queue})
    with pytest.raises(SchemaInvalid):
        s.BulkRetrySchema().load({"queue": queue})
    with pytest.raises(ValidationError):
        JobSpec(func=NOOP, queue=queue)


def test_one_queue_name_pattern_in_the_code():
    pattern = r"[A-Za-z0-9_.:\-]{1,128}"
    holders = [str(p.relative_to(ROOT)) for d in ("jobsvc", "workers", "admin_api", "jobsvc_cli")
               for p in sorted((ROOT / d).rglob("*.py")) if pattern in p.read_text()]
    assert holders == ["jobsvc/validation.py"]


@pytest.mark.parametrize(("parse", "good", "bad"), [
    (integer(validation.PRIORITY), "10", ["0", "11", "5.5", "x", "9" * 400]),
    (number(validation.DELAY), "0.5", ["-1", "nan", "inf", "x"]),
    (integer(validation.PAGE_LIMIT), "500", ["0", "501"]),
])
def test_cli_argument_types_use_the_rules(parse, good, bad):
    assert parse(good) == float(good)
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


@pytest.mark.parametrize("argv", [
    ["enqueue", NOOP, "--priority", "11"],
    ["enqueue", NOOP, "--max-attempts", "0"],
    ["schedules", "create", "--function", NOOP, "--interval", "0.5"],
    ["functions", "register", "ns/f", NOOP, "--timeout", "0"],
    ["keys", "create", "k", "--scope", "jobs:everything"],
])
def test_the_cli_refuses_what_the_api_refuses_before_reaching_redis(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert "error: argument" in capsys.readouterr().err
