"""The parts of docs/ generated from the code, so they cannot drift from it: the edge table of docs/states.md,
from jobsvc/engine/states.py's EDGES.

    python -m jobsvc.docgen            # rewrite the generated section of docs/states.md
    python -m jobsvc.docgen --print    # print it
    python -m jobsvc.docgen --check    # exit 1 if docs/states.md is out of date

`tests/test_jobsvc/test_state_table.py` fails when the committed page differs from what this writes."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .engine.states import EDGES, PRUNABLE, RETRYABLE, RQ, TTL_STATES, Node, Outside, State

STATES_MD = Path(__file__).resolve().parents[1] / "docs" / "states.md"
BEGIN = "<!-- edges: generated from jobsvc/engine/states.py EDGES by `python -m jobsvc.docgen`; do not edit by hand -->"
END = "<!-- end of generated edges -->"


def _nodes(nodes: tuple[Node, ...]) -> str:
    if set(nodes) == set(State) - {State.RUNNING}:
        return "any but `running`"
    return " / ".join(n.value if isinstance(n, Outside) else f"`{n.value}`" for n in nodes)


def _names(states: tuple[State, ...]) -> str:
    return ", ".join(f"`{s.value}`" for s in states)


def states_markdown() -> str:
    """The generated section of docs/states.md, markers included: the edge table and the derived state lists."""
    lines = [BEGIN, "", "| from | to | script | when |", "|---|---|---|---|"]
    for row in EDGES:
        scripts = " + ".join(s if s == RQ else f"`{s}`" for s in row.scripts)
        lines.append(f"| {_nodes(row.sources)} | {_nodes(row.targets)} | {scripts} | {row.when} |")
    derived = (f"Derived from these edges (`jobsvc.engine.states`): an operator's retry (`RETRYABLE`) takes a job from "
               f"{_names(RETRYABLE)}; prune (`PRUNABLE`) deletes {_names(PRUNABLE)} jobs; the TTL sweep "
               f"(`TTL_STATES`) deletes {_names(TTL_STATES)} jobs.")
    lines += ["", derived, "", END]
    return "\n".join(lines)


def with_section(text: str, section: str) -> str:
    """`text` with the part from BEGIN to END replaced by `section` (which carries both markers)."""
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise ValueError(f"no generated section ({BEGIN!r} ... {END!r}) in the text")
    return head + section + tail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jobsvc.docgen", description="rewrite docs/states.md's edge table")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--print", action="store_true", help="print the generated section instead")
    mode.add_argument("--check", action="store_true", help="exit 1 if the page is out of date; write nothing")
    args = parser.parse_args(argv)
    section = states_markdown()
    if args.print:
        sys.stdout.write(section + "\n")
        return 0
    text = STATES_MD.read_text()
    new = with_section(text, section)
    if args.check:
        if new != text:
            sys.stderr.write(f"{STATES_MD} is out of date: run python -m jobsvc.docgen\n")
            return 1
        return 0
    STATES_MD.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
