"""The reply contract of the Lua scripts, in one place: every status code a script answers with, what it means,
and the one exception it becomes.

A script that acts on one job, function, schedule or notification replies with a list whose first element is a
`Reply` code (its header's `Returns:` line says what follows). jobsvc/engine/scripts.py injects each code into every
script as a Lua constant of the same name (`return {NOT_FOUND}`, `return {WRONG_STATE, state}`), so no number
is written anywhere else, on either side; `check()` turns a reply into its exception. Scripts that reply with
counts or data (claim, enqueue, heartbeat, promote*, reap_expired, the bulk and sweep scripts, ...) have no code.

A script that is called wrongly, or finds a key of another type than jobsvc/engine/keys.py gives it, answers with an
error reply (`redis.error_reply`, or `wrong_type` in _lib.lua) and writes nothing: that is a bug or damaged data,
not an outcome a caller handles, so it surfaces as redis.ResponseError (the API: 500, logged)."""
from __future__ import annotations

from enum import IntEnum
from typing import Any

from ..errors import AlreadyExists, Conflict, JobsvcError, LeaseLost, NotFound, ScriptError, WrongState
from .connection import text


class Reply(IntEnum):
    OK = 0  # done; the script's header says what follows ({OK, 'scheduled', due_ms}, {OK, worker}, ...)
    NOT_FOUND = -1  # no such job, function or schedule: nothing written
    LEASE_LOST = -2  # {LEASE_LOST, state}: the caller's token no longer holds the job's lease (or the
    #                  notification's claim): its outcome is rejected, nothing written
    WRONG_STATE = -3  # {WRONG_STATE, state}: the job's state does not allow the operation: nothing written
    CONFLICT = -4  # what the caller read changed meanwhile (a stored version, a next fire time): nothing written
    EXISTS = -5  # {EXISTS, version}: a create of an id that is taken: nothing written


def lua_constants() -> str:
    """The codes as Lua locals, prepended to every script that uses _lib.lua (jobsvc/engine/scripts.py)."""
    return "".join(f"local {code.name} = {code.value}\n" for code in Reply)


def error(code: int, what: str, state: str | None = None) -> JobsvcError:
    """The exception a script's code stands for. `what` names the thing the script acted on ("job 42",
    "function billing/charge"); `state` is the job's state where the code carries one. An unknown code (or OK,
    which is no error) is a ScriptError: a script and its caller disagree, which is a bug."""
    if code == Reply.NOT_FOUND:
        return NotFound(f"no {what}")
    if code == Reply.LEASE_LOST:
        held = f" (state {state})" if state is not None else ""
        return LeaseLost(f"{what}: this token no longer holds its lease{held}", state)
    if code == Reply.WRONG_STATE:
        return WrongState(f"{what} is {state}", state)
    if code == Reply.CONFLICT:
        return Conflict(f"{what} was changed by someone else meanwhile; try again")
    if code == Reply.EXISTS:
        return AlreadyExists(f"{what} already exists")
    return ScriptError(f"{what}: unexpected script code {code}")


def check(reply: Any, job_id: str = "", what: str | None = None) -> list[Any]:
    """Return the reply of a script that answers with a code if the code is OK, else raise its exception.
    `what` names the thing it acted on (default "job <job_id>")."""
    what = what if what is not None else f"job {job_id}"
    if not isinstance(reply, list) or not reply:
        raise ScriptError(f"{what}: unexpected script reply {reply!r}")
    code = int(reply[0])
    if code == Reply.OK:
        return reply
    raise error(code, what, text(reply[1]) if code in _WITH_STATE and len(reply) > 1 and reply[1] else None)


_WITH_STATE = (Reply.LEASE_LOST, Reply.WRONG_STATE)

