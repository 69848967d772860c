"""How the Lua scripts name keys: never themselves. A script writes `K.<family>` (a fixed key: `K.leases`) or
`K.<family>(names)` (`K.job(id)`, `K.lane(queue, priority)`; `K['function'](ns, name)` for the family whose
name is a Lua keyword), for the families of keys.py's table (FAMILIES). The loader (scripts.py):

  * finds the families a script uses, in its own code and in every _lib.lua helper it calls (`families`), and
    refuses a script whose `-- KEYS:` header says otherwise;
  * passes them in KEYS, in that order (`keys_of`): a fixed key whole, any other family's name up to its first
    name slot (`rq:job:`, `jobsvc:lane:`), rendered with the prefix the caller sends as ARGV[1];
  * replaces each `K.<family>(names)` in the script's text, and in the library's, with the name built from that
    KEYS entry and the rest of the template (`expand`): `(KEYS[3] .. (id))`, `(KEYS[5] .. (q) .. ':' .. (p))`.

So the names come from one table, a script's keys are all in KEYS (what Redis Cluster routes by), and naming a
key costs a script what a hand-written concatenation costs: no table, no closure per call. The counter families
(MEMOIZED) go through name_of, which builds each of a batch's few names once."""
from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Iterator, Sequence

from .keys import CLUSTER_ONLY, FAMILIES, MEMOIZED, NAME, template

__all__ = ["GIVEN", "expand", "families", "keys_of", "lib_helpers", "pruned", "reachable"]

_HELPER = re.compile(r"^local function (\w+)\(", re.MULTILINE)
_FAMILY = re.compile(r"\bK(?:\.(\w+)|\['(\w+)'\])")
_BRACKETED = re.compile(r"\bK\['(\w+)'\]")
_WORD = re.compile(r"\b[A-Za-z_]\w*\b")
_HEADER = re.compile(r"^-- KEYS: (.*)$", re.MULTILINE)
# The key a script's caller names (`K.given`): a structure of the caller's choosing, in the call's slot, for a script
# that checks whichever structure it is given (sweep_index.lua). Passed first in KEYS, whatever the layout.
GIVEN = "given"


def _chunks(lib: str) -> list[tuple[str | None, str]]:
    """_lib.lua cut before each top-level `local`: (the helper's name, or None for any other text, its text)."""
    starts = [0, *(m.start() for m in re.finditer(r"^local ", lib, re.MULTILINE)), len(lib)]
    out: list[tuple[str | None, str]] = []
    for a, b in itertools.pairwise(starts):
        helper = _HELPER.match(lib, a)
        out.append((helper.group(1) if helper else None, lib[a:b]))
    return out


def lib_helpers(lib: str) -> dict[str, str]:
    """_lib.lua's helpers by name: each one's text up to the next top-level `local`."""
    return {name: text for name, text in _chunks(lib) if name}


def reachable(body: str, helpers: dict[str, str]) -> set[str]:
    """The library helpers a script can run: those its text names, and theirs, transitively (a name counts
    wherever it appears in code, called or not), flush_counters, which scripts.py calls after every script, and
    name_of where `expand` will write it."""
    seen: set[str] = set()
    todo = [body, "flush_counters()"]
    while todo:
        text = _code(todo.pop())
        names = set(_WORD.findall(text))
        if any((a or b) in MEMOIZED for a, b in _FAMILY.findall(text)):
            names.add("name_of")  # what expand writes for a counter family's name
        for name in names & helpers.keys() - seen:
            seen.add(name)
            todo.append(helpers[name])
    return seen


def pruned(lib: str, keep: set[str]) -> str:
    """The library without the helpers a script never runs: defining one costs every call of the script a
    closure (measured: the whole library added some 50 us to a call of the leader lock's script; pruning took
    10-20 us off a progress.lua call)."""
    return "".join(text for name, text in _chunks(lib) if name is None or name in keep)


def families(name: str, body: str, helpers: dict[str, str]) -> tuple[str, ...]:
    """The key families a script uses (its own `K.<family>` and that of every helper it runs, transitively),
    sorted, CLUSTER_ONLY's after the others: its KEYS, in that order. Its header must name them (a script that
    takes whole keys says `KEYS[n]`)."""
    used = {a or b for a, b in _FAMILY.findall(_code(body))}
    for helper in reachable(body, helpers):
        used |= {a or b for a, b in _FAMILY.findall(_code(helpers[helper]))}
    unknown = used - FAMILIES.keys() - {GIVEN}
    if unknown:
        raise ValueError(f"{name}.lua: no key family {sorted(unknown)} in jobsvc/engine/keys.py")
    # The caller's key first, a cluster's own families last, so that a single Redis's calls can leave those out
    # (scripts.keys_of) and the given key keeps its place.
    found = ((GIVEN,) if GIVEN in used else ()) + tuple(sorted(used - CLUSTER_ONLY - {GIVEN})) + tuple(
        sorted(used & CLUSTER_ONLY))
    header = _HEADER.search(body)
    declared = header.group(1) if header else ""
    declared = "" if declared == "none" else declared
    if "KEYS[" in _code(body):
        if found:
            raise ValueError(f"{name}.lua: takes whole keys (KEYS[n]) and key families {found}: one or the other")
    elif declared != ", ".join(found):
        raise ValueError(f"{name}.lua: its header says `-- KEYS: {declared}`, its code uses {', '.join(found)}")
    return found


def _code(text: str) -> str:
    """Lua without its comments and string literals (headers describe keys in words; a message may say K.x)."""
    out = []
    for line in text.splitlines():
        code = _BRACKETED.sub(r"K.\1", line[:_comment_start(line)])  # K['function']: a name, not a string
        out.append("".join(ch for _, ch, inside in _scan(code) if not inside))
    return "\n".join(out)


def expand(text: str, used: Sequence[str]) -> str:
    """`text` (Lua) with every `K.<family>` in its code (not its comments) replaced by the name it stands for,
    read from KEYS as `keys_of` passes them for a script of families `used`. A family the script does not use
    (in a library helper it never calls) becomes an error raised if that code ever ran."""
    index = {family: i for i, family in enumerate(used, start=1)}
    return "\n".join(_expand_line(line, index) for line in text.split("\n"))


def _expand_line(line: str, index: dict[str, int]) -> str:
    code_end = _comment_start(line)
    literals = _literal_spans(line[:code_end])
    out, pos = [], 0
    for m in _FAMILY.finditer(line, 0, code_end):
        if m.start() < pos or any(a <= m.start() < b for a, b in literals):
            continue  # inside an argument already expanded, or inside a string
        family = m.group(1) or m.group(2)
        out.append(line[pos:m.start()])
        pos = m.end()
        between = [] if family == GIVEN else FAMILIES[family].split(NAME)[1:]
        args: list[str] = []
        if between:
            end = _closing(line, pos)
            # An argument may name a key itself (K.job(redis.call('GET', K.idempotency(x)))): expanded too.
            args = [_expand_line(arg, index) for arg in _split_args(line[pos + 1:end])]
            pos = end + 1
            if len(args) != len(between):
                raise ValueError(f"K.{family} takes {len(between)} name(s): {line.strip()!r}")
        out.append(_name_expr(family, index.get(family), args, between))
    return "".join(out) + line[pos:]


def _name_expr(family: str, i: int | None, args: list[str], between: list[str]) -> str:
    if i is None:
        return f"error('key family {family} was not passed to this script')"
    if not args:
        return f"KEYS[{i}]"
    if family in MEMOIZED:
        return f"name_of(KEYS[{i}], ({args[0]}), {_lua(between[0])})"
    parts = [f"KEYS[{i}]"]
    for arg, text in zip(args, between, strict=True):
        parts.append(f"({arg})")
        if text:
            parts.append(_lua(text))
    return "(" + " .. ".join(parts) + ")"


def _scan(text: str) -> Iterator[tuple[int, str, bool]]:
    """(index, character, inside a string literal) for each character of a line of Lua; a backslash escapes the
    next character within a literal."""
    quote, escaped = None, False
    for i, ch in enumerate(text):
        if quote:
            yield i, ch, True
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = None
        else:
            if ch in "'\"":
                quote = ch
            yield i, ch, quote is not None


def _comment_start(line: str) -> int:
    """Where the line's `--` comment starts (its length if none); a `--` inside a string literal is code."""
    for i, _, inside in _scan(line):
        if not inside and line.startswith("--", i):
            return i
    return len(line)


def _literal_spans(code: str) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, _, inside in _scan(code):
        if inside and start is None:
            start = i
        elif not inside and start is not None:
            spans.append((start, i))
            start = None
    if start is not None:
        spans.append((start, len(code)))
    return spans


def _closing(line: str, start: int) -> int:
    """The index of the ')' that closes the '(' at `start` (a family's names are on the line of its K)."""
    if start >= len(line) or line[start] != "(":
        raise ValueError(f"a key family named after something is called with its names: {line.strip()!r}")
    depth = 0
    for i, ch, inside in _scan(line):
        if i < start or inside:
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth == 0:
            return i
    raise ValueError(f"unbalanced parentheses: {line.strip()!r}")


def _split_args(text: str) -> list[str]:
    """Arguments at the top level of a call's parentheses (a name may itself be a call, an index or a string)."""
    args, depth, start = [], 0, 0
    for i, ch, inside in _scan(text):
        if inside:
            continue
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            args.append(text[start:i].strip())
            start = i + 1
    args.append(text[start:].strip())
    return [a for a in args if a]


def _lua(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def keys_of(used: tuple[str, ...], prefix: str, queue: str | None = None) -> tuple[str, ...]:
    """What a script of families `used` receives in KEYS: each family's name up to its first name slot (a fixed
    key whole), rendered with `prefix`; with `queue`, in the cluster layout (that queue's slot)."""
    return _rendered(used, prefix, queue)


@functools.lru_cache(maxsize=1024)
def _rendered(used: tuple[str, ...], prefix: str, queue: str | None) -> tuple[str, ...]:
    return tuple(template(f, prefix, queue).split(NAME)[0] for f in used)
