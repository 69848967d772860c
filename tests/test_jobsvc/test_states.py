from pathlib import Path

import pytest

from jobsvc import states
from jobsvc.scripts import LUA_DIR
from jobsvc.states import State


def test_every_state_has_an_rq_status():
    assert set(states.RQ_STATUS) == set(State)


def test_every_transition_names_an_existing_script():
    for script in states.TRANSITIONS.values():
        assert (LUA_DIR / script).exists(), script


def test_terminal_states_have_no_edge_out_but_requeue():
    for (src, dst), script in states.TRANSITIONS.items():
        if src in states.TERMINAL:
            assert (dst, script) == (State.QUEUED, "requeue.lua")


def test_completed_is_final():
    assert not any(src == State.COMPLETED for src, _ in states.TRANSITIONS)


@pytest.mark.parametrize("alias,state", [("waiting", State.QUEUED), ("active", State.RUNNING),
                                         ("delayed", State.SCHEDULED), ("failed", State.FAILED)])
def test_aliases_parse(alias, state):
    assert states.parse_state(alias) == state


def test_unknown_state_name_is_rejected():
    with pytest.raises(ValueError):
        states.parse_state("exploded")


def test_plain_rq_hash_maps_to_state():
    assert states.state_of({"status": "started"}) == State.RUNNING
    assert states.state_of({"status": "failed", "js_state": "quarantined"}) == State.QUARANTINED


def test_states_doc_lists_every_state():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "states.md").read_text()
    for s in State:
        assert f"`{s.value}`" in doc
