from pathlib import Path

import pytest

from jobsvc.engine import states
from jobsvc.engine.states import State


def test_every_state_has_an_rq_status():
    assert set(states.RQ_STATUS) == set(State)


# The edges (states.EDGES) are checked against the scripts in test_state_table.py.


@pytest.mark.parametrize(("alias", "state"), [("waiting", State.QUEUED), ("active", State.RUNNING),
                                              ("delayed", State.SCHEDULED), ("failed", State.FAILED)])
def test_aliases_parse(alias, state):
    assert states.parse_state(alias) == state


def test_unknown_state_name_is_rejected():
    with pytest.raises(ValueError, match="exploded"):
        states.parse_state("exploded")


def test_plain_rq_hash_maps_to_state():
    assert states.state_of({"status": "started"}) == State.RUNNING
    assert states.state_of({"status": "failed", "js_state": "quarantined"}) == State.QUARANTINED


def test_states_doc_lists_every_state():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "states.md").read_text()
    for s in State:
        assert f"`{s.value}`" in doc
