"""`python -m bench [--quick] [--only enqueue,throughput,peers,...] [--procs 1,2,4,8] [--jobs N] [--json FILE]`

Starts one private redis-server (jobsvc.embedded, no persistence, a free port: never 6379), measures
jobsvc and RQ in the same run against it (and Huey and Dramatiq in the `peers` section), prints one table
with ratios and the targets of shared/DESIGN.md, and kills every process it started."""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis
import rq

import jobsvc
from jobsvc.embedded import EmbeddedRedis, free_port

from . import measure, peers
from .harness import ROOT, Env, LoadMeter, cpu_busy, markdown_table, text_table
from .latency import latency
from .measure import FLOOR, FULL, JOBSVC, LEASE_TTL, QUICK, RQ_SIMPLE, RQ_WORKER, Results, Sizes
from .throughput import throughput

SECTIONS = {"enqueue": measure.enqueue, "throughput": throughput, "latency": latency,
            "delayed": measure.delayed, "kill": measure.kill_rerun, "memory": measure.memory, "peers": peers.peers}

# (figure key, label, format, better: "high" | "low", target or None)
ROWS: list[tuple[str, str, str, str, float | None]] = [
    ("enqueue_one", "enqueue, one by one (jobs/s)", "rate", "high", 5_000),
    ("enqueue_one_cpu", "  Redis CPU per job (µs)", "us", "low", None),
    ("enqueue_one_cmds", "  Redis commands per job", "cmds", "low", None),
    ("enqueue_batch", "enqueue, batches of 1000 (jobs/s)", "rate", "high", 50_000),
    ("enqueue_batch_cpu", "  Redis CPU per job (µs)", "us", "low", None),
    ("enqueue_batch_cmds", "  Redis commands per job", "cmds", "low", None),
    ("noop_1", "no-op jobs/s, 1 worker process", "rate", "high", 2_000),
    ("noop_cpu_1", "  Redis CPU per job (µs)", "us", "low", None),
    ("noop_cmds_1", "  Redis commands per job", "cmds", "low", None),
    ("noop_2", "no-op jobs/s, 2 worker processes", "rate", "high", 4_000),
    ("noop_cpu_2", "  Redis CPU per job (µs)", "us", "low", None),
    ("noop_cmds_2", "  Redis commands per job", "cmds", "low", None),
    ("latency_p50", "enqueue->start p50, idle worker (ms)", "ms", "low", None),
    ("latency_p99", "enqueue->start p99, idle worker (ms)", "ms", "low", 2),
    ("delayed_p50", "delayed-job lateness p50 (ms)", "ms", "low", None),
    ("delayed_p99", "delayed-job lateness p99 (ms)", "ms", "low", 10),
    ("delayed_early", "delayed jobs started early (count)", "int", "low", 0),
    ("kill_rerun_max", f"SIGKILL -> job runs again, worst (s; lease {LEASE_TTL:g} s)", "s", "low", LEASE_TTL + 1),
    ("mem_queued_hash", "bytes/job queued: job hash", "bytes", "low", None),
    ("mem_queued_total", "bytes/job queued: used_memory growth", "bytes", "low", None),
    ("mem_done_keys", "bytes/job completed: job's keys", "bytes", "low", None),
    ("mem_done_total", "bytes/job completed: used_memory growth", "bytes", "low", None),
]
HEADER = ["figure", "jobsvc", "RQ SimpleWorker", "RQ Worker", "x better vs RQ SW", "target", "met",
          "bare Redis floor"]


def fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if kind == "rate" or kind == "bytes":
        return f"{value:,.0f}"
    if kind == "ms":
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if kind == "s" or kind == "cmds":
        return f"{value:.2f}"
    if kind == "us":
        return f"{value:.1f}"
    return f"{value:g}"


def target_text(kind: str, better: str, target: float | None) -> str:
    if target is None:
        return ""
    if kind == "int" and target == 0:
        return "0"
    unit = {"rate": "", "ms": " ms", "s": " s", "bytes": " B"}.get(kind, "")
    return (">= " if better == "high" else "<= ") + (f"{target:,.0f}" if kind == "rate" else f"{target:g}") + unit


def verdict(value: Any, better: str, target: float | None) -> str:
    if target is None or not isinstance(value, (int, float)):
        return ""
    if better == "high":
        return "yes" if value >= target else f"NO ({math.floor(value / target * 1000) / 10:g}% of target)"
    if value <= target:
        return "yes"
    return f"NO ({value / target:.2f}x target)" if target else "NO"


def ratio(j: Any, other: Any, better: str, kind: str) -> str:
    if kind == "int" or not isinstance(j, (int, float)) or not isinstance(other, (int, float)) or j <= 0 or other <= 0:
        return ""  # e.g. RQ's delayed jobs run early: a negative lateness has no ratio
    r = j / other if better == "high" else other / j
    return f"{r:.1f}x" if r < 100 else f"{r:,.0f}x"


def table_rows(out: Results) -> list[list[str]]:
    rows = []
    for key, label, kind, better, target in ROWS:
        vals = out.get(key, {})
        j, s, w, f = vals.get(JOBSVC), vals.get(RQ_SIMPLE), vals.get(RQ_WORKER), vals.get(FLOOR)
        rows.append([label, fmt(j, kind), fmt(s, kind), fmt(w, kind), ratio(j, s, better, kind),
                     target_text(kind, better, target), verdict(j, better, target), fmt(f, kind) if f else ""])
    return rows


def render_text(rows: list[list[str]]) -> str:
    return text_table(HEADER, rows)


def render_markdown(rows: list[list[str]]) -> str:
    return markdown_table(HEADER, rows)


def merge(runs: list[Results]) -> Results:
    """One Results from several repetitions: the median of each number, its min and max in '_spread';
    text values and details from the first run that has them."""
    out: Results = {}
    spread: dict[str, dict[str, tuple[float, float, int]]] = {}
    for run in runs:
        for key, vals in run.items():
            if key.startswith("_"):
                out.setdefault(key, vals)
                continue
            for system, v in vals.items():
                out.setdefault(key, {}).setdefault(system, [])
                out[key][system].append(v)
    for key, vals in out.items():
        if key.startswith("_"):
            continue
        for system, vs in list(vals.items()):
            nums = [v for v in vs if isinstance(v, (int, float))]
            if len(nums) == len(vs):
                vals[system] = statistics.median(nums)
                spread.setdefault(key, {})[system] = (min(nums), max(nums), len(nums))
            else:
                vals[system] = vs[0]
    out["_spread"] = spread
    return out


def machine(env: Env) -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True,
                                timeout=5, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(),
            "redis_server": env.r.info("server")["redis_version"], "redis_py": redis.__version__,
            "rq": rq.__version__, "jobsvc": jobsvc.__version__, "commit": commit, "platform": platform.platform()}


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        counts = ()
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers separated by commas, got {text!r}")
    return counts


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run well under a minute")
    parser.add_argument("--only", default="", help=f"comma-separated sections of: {', '.join(SECTIONS)}")
    parser.add_argument("--json", metavar="FILE", help="also write every figure and note as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--repeat", type=int, default=1, metavar="N",
                        help="run every section N times; the table shows medians, the spread is printed below")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (worker logs)")
    parser.add_argument("--procs", type=_counts, default=None, metavar="1,2,4,8",
                        help="worker process counts of the peers section (default 1,2)")
    parser.add_argument("--jobs", type=int, default=None, metavar="N",
                        help="no-op jobs per system and process count in the peers section "
                             f"(default {FULL.peer_jobs:,}; --quick {QUICK.peer_jobs:,})")
    return parser


def _parse(argv: list[str] | None) -> tuple[argparse.Namespace, Sizes, list[str]]:
    """The options, the sizes they select and the sections to run (an unknown section exits with usage)."""
    parser = _parser()
    args = parser.parse_args(argv)
    sizes = replace(QUICK if args.quick else FULL, **{k: v for k, v in (("peer_procs", args.procs),
                                                                        ("peer_jobs", args.jobs)) if v})
    names = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    return args, sizes, names


def _on_term(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # unwind through the `finally`s that kill the children


def _private_server(workdir: Path) -> EmbeddedRedis:
    server = EmbeddedRedis(workdir / "redis", persist=False)
    while server.port == 6379:  # never the default port: some other Redis may live there
        server.port = free_port()
    return server


def _describe(env: Env, server: EmbeddedRedis, quick: bool, notes: list[str]) -> dict[str, Any]:
    """The machine's details (printed, and kept for --json), and a warning when it is busy already."""
    info = machine(env)
    info["busy_before"] = cpu_busy(1.0)
    if info["busy_before"] is not None and info["busy_before"] > 0.10:
        notes.append(f"WARNING: the machine was {info['busy_before']:.0%} busy before the run (other processes): "
                     "figures are skewed; run again on an idle machine")
    print(f"jobsvc bench ({'quick' if quick else 'full'}): redis-server {info['redis_server']} on "
          f"{server.url}, {info['nproc']} CPU(s) {info['cpu']}, Python {info['python']}, rq {info['rq']}",
          file=sys.stderr, flush=True)
    return info


def _meter(server: EmbeddedRedis, notes: list[str]) -> LoadMeter | None:
    try:
        return LoadMeter(server.process.pid if server.process else None)
    except ImportError:
        notes.append("psutil is not installed: other load on the machine was not metered")
        return None


def _run_section(env: Env, sizes: Sizes, name: str, one: Results, notes: list[str]) -> None:
    try:
        SECTIONS[name](env, sizes, one, notes)
    except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
        notes.append(f"{name}: failed: {type(exc).__name__}: {exc}")
    finally:
        env.children.kill_all()


def _report_load(name: str, m: dict[str, float], notes: list[str]) -> None:
    print(f" {m['wall']:.1f}s (CPUs used by this benchmark {m['ours']:.0%}, by other processes "
          f"{m['other']:.0%}, stolen by the hypervisor {m['steal']:.0%})", file=sys.stderr, flush=True)
    if m["other"] > 0.05:
        notes.append(f"WARNING: during '{name}' other processes used {m['other']:.0%} of the CPUs: its "
                     f"figures are skewed; run it again on an idle machine (--only {name})")


def _run_all(env: Env, sizes: Sizes, names: list[str], repeat: int, meter: LoadMeter | None,
             notes: list[str]) -> tuple[list[Results], list[dict[str, dict[str, float]]]]:
    """Every section `repeat` times: one Results per repetition, and the CPU load metered during each section."""
    load: list[dict[str, dict[str, float]]] = []
    runs: list[Results] = []
    for rep in range(repeat):
        one: Results = {}
        runs.append(one)
        load.append({})
        for name in names:
            print(f"  {name}{f' (run {rep + 1}/{repeat})' if repeat > 1 else ''} ...", end="",
                  file=sys.stderr, flush=True)
            if meter:
                meter.start()
            _run_section(env, sizes, name, one, notes)
            if not meter:
                print(" done", file=sys.stderr, flush=True)
                continue
            m = load[-1][name] = meter.stop()
            _report_load(name, m, notes)
    return runs, load


def _print_tables(out: Results, sizes: Sizes, args: argparse.Namespace) -> None:
    rows = table_rows(out)
    if any(key in out for key, *_ in ROWS):
        print(render_markdown(rows) if args.markdown else render_text(rows))
        print()
        print("'x better vs RQ SW': jobsvc / RQ SimpleWorker for rates, RQ SimpleWorker / jobsvc for times, "
              "bytes and Redis costs (> 1 means jobsvc is better). RQ's enqueue figures are RQ's client, in the "
              "SimpleWorker column. Bare Redis floor: the same operation with plain Redis and no job system "
              "(enqueue = RPUSH of 400 bytes; no-op = one BLPOP per item in `python -m bench.bare`; latency = "
              "RPUSH -> BLPOP returning in that process). Redis CPU / commands per job: docs/benchmarks.md, "
              "'Redis cost per job'.")
    compared = peers.render(out, sizes.peer_procs, markdown=args.markdown)
    if compared:
        print(compared)
        print()
        print("peers: jobs/s and 'run' figures over the drain window (start-up excluded), Redis busy = Redis CPU "
              "seconds / wall seconds of that window; 'enqueue' = the bulk prefill (docs/benchmarks.md).")
    if args.repeat > 1:
        print(f"spread over {args.repeat} runs (min-max): " + "; ".join(
            f"{key} {system} {fmt(lo, kind)}-{fmt(hi, kind)}"
            for key, _, kind, _, _ in ROWS for system, (lo, hi, _n) in out["_spread"].get(key, {}).items()
            if lo != hi))


def _print_details(out: Results) -> None:
    """The figures behind the table's rows: throughput with start-up, latency spread, each SIGKILL trial."""
    tp = out.get("_throughput_detail", {})
    if tp:
        print("start-up excluded; with it (spawn -> last job done): " + ", ".join(
            f"{k} {v['wall_rate']:,.0f}/s (first job {v['startup']:.2f}s after spawn)" for k, v in tp.items()))
    for system, d in out.get("_latency_detail", {}).items():
        print(f"enqueue->start, {system}: max {d['max_ms']:.2f} ms; from the enqueue call's return p50 "
              f"{d['from_return_p50_ms']:.2f} / p99 {d['from_return_p99_ms']:.2f} ms; the enqueue call itself "
              f"p50 {d['enqueue_call_p50_ms']:.2f} / p99 {d['enqueue_call_p99_ms']:.2f} ms")
    kd = out.get("_kill_detail", {})
    if kd.get("jobsvc_trials_s"):
        print("SIGKILL -> re-run, jobsvc trials (s): " + ", ".join(f"{t:.2f}" for t in kd["jobsvc_trials_s"]))
    if "rq_simple" in kd:
        d = kd["rq_simple"]
        exp = d["started_registry_expiry_after_kill_s"]
        print(f"RQ SimpleWorker after SIGKILL: re-ran={d['reran']} within {d['watched_s']:.0f}s, status "
              f"{d['status']}, in StartedJobRegistry={d['in_started_registry']}"
              + (f" (entry expires {exp:.0f}s after the kill; then the next registry cleanup, every 10 min "
                 "by default, moves it to FailedJobRegistry)" if exp is not None else ""))


def _bench(env: Env, server: EmbeddedRedis, args: argparse.Namespace, sizes: Sizes, names: list[str],
           started: float) -> None:
    """Measure, print the report, and write --json."""
    notes: list[str] = []
    info = _describe(env, server, args.quick, notes)
    meter = _meter(server, notes)
    runs, load = _run_all(env, sizes, names, args.repeat, meter, notes)
    out = merge(runs)
    notes[:] = list(dict.fromkeys(notes))  # the same note from every repetition once
    info["load"] = load
    info["busy_after"] = cpu_busy(1.0)
    if info["busy_after"] is not None and info["busy_after"] > 0.10:
        notes.append(f"WARNING: the machine was {info['busy_after']:.0%} busy after the run (other processes)")
    _print_tables(out, sizes, args)
    _print_details(out)
    for n in notes:
        print(f"- {n}")
    print(f"(total {time.monotonic() - started:.0f}s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"machine": info, "sizes": sizes.__dict__, "figures": out,
                                               "notes": notes}, indent=2, default=str))


def main(argv: list[str] | None = None) -> int:
    args, sizes, names = _parse(argv)
    signal.signal(signal.SIGTERM, _on_term)
    workdir = Path(tempfile.mkdtemp(prefix="jobsvc-bench-"))
    server = _private_server(workdir)
    env: Env | None = None
    started = time.monotonic()
    try:
        server.start()
        env = Env(server.url, workdir)
        _bench(env, server, args, sizes, names, started)
        return 0
    except KeyboardInterrupt:
        print("interrupted: stopping every process this benchmark started", file=sys.stderr)
        return 130
    finally:
        if env is not None:
            env.children.kill_all()
        server.stop()
        if args.keep:
            print(f"work directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
