"""Rules the core enforces for Python callers too (jobsvc.validation): schedules hold only text UTF-8 can
encode (else they are stored and never fire), idempotency keys can travel as an HTTP header."""
from __future__ import annotations

import re

import pytest

from jobsvc import JobSpec, validation
from jobsvc.errors import ValidationError
from jobsvc.scheduling.schedules import Schedules, ScheduleSpec
from tests.redis_state import state

NOOP = "tests.jobfuncs.noop"
LONE = "\udc00"


@pytest.mark.parametrize(("value", "path"), [
    ("ok", None), ({"a": ["b", {"c": 1}]}, None), ("\U0001f600", None),
    (LONE, ([], False)), ({"a": [1, LONE]}, (["a", 1], False)), ({"a": {LONE: 1}}, (["a", LONE], True)),
    (("x", (LONE,)), ([1, 0], False)),
])
def test_unencodable_finds_the_path(value, path):
    assert validation.unencodable(value) == path


def test_unencodable_walks_deep_values_without_recursion():
    deep: list = [LONE]
    for _ in range(5000):
        deep = [deep]
    assert validation.unencodable(deep) == ([0] * 5000 + [0], False)


def test_dotted_paths_escape_what_they_cannot_show():
    assert validation.dotted(["jobs", 0, "kwargs", LONE]) == "jobs[0].kwargs.\\udc00"


@pytest.mark.parametrize(("field", "value"), [
    ("kwargs", {LONE: 1}), ("kwargs", {"a": LONE}), ("args", [LONE]), ("description", LONE),
    ("kwargs", {"a": {"b": [LONE]}}),
])
def test_a_schedule_with_text_utf8_cannot_encode_is_refused_and_not_stored(client, r, field, value):
    with pytest.raises(ValidationError, match=f"{field}.*not valid Unicode text"):
        Schedules(client).create(id="s", interval=60, function=NOOP, **{field: value})
    assert r.dbsize() == 0


def test_a_handler_schedule_payload_is_checked_too():
    with pytest.raises(ValidationError, match=re.escape("payload.a")):
        ScheduleSpec(id="s", interval=60, handler="https://example.com/x", payload={"a": LONE})


def test_a_patch_cannot_make_a_schedule_unfireable(client, r):
    schedules = Schedules(client)
    schedules.create(id="s", interval=60, function=NOOP, kwargs={"a": 1})
    before = state(r)
    with pytest.raises(ValidationError, match="kwargs"):
        schedules.patch("s", kwargs={LONE: 1})
    assert state(r) == before
    assert schedules.get("s").kwargs == {"a": 1}


def test_a_schedule_with_ordinary_non_ascii_text_fires(client):
    schedules = Schedules(client)
    schedules.create(id="s", interval=60, function=NOOP, kwargs={"été": "\U0001f600"}, description="café")
    job_id = schedules.execute("s")
    assert client.get(job_id).kwargs == {"été": "\U0001f600"}


# -- idempotency keys ------------------------------------------------------------------------------------


BAD_KEYS = ["a\r\nX-Evil: 1", "a\nb", "tab\t", "caf\u00e9", "\u043a\u043b\u044e\u0447", LONE, " lead", "trail ",
            "", "x" * 257, "nul\x00", 7]


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: ascii(k)[:20])
def test_enqueue_refuses_an_idempotency_key_that_cannot_be_a_header(client, r, key):
    with pytest.raises(ValidationError, match="idempotency_key must be 1-256 printable ASCII"):
        client.enqueue(NOOP, idempotency_key=key)
    with pytest.raises(ValidationError, match="idempotency_key"):
        client.enqueue_handler("https://example.com/hook", {"a": 1}, idempotency_key=key)
    assert r.dbsize() == 0


@pytest.mark.parametrize("key", ["order-7", "a b", "!~", "x" * 256])
def test_printable_ascii_keys_are_accepted(key):
    assert JobSpec(func=NOOP, idempotency_key=key).idempotency_key == key
