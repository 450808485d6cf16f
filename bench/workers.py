"""One worker against two, rounds alternating, with where the CPU goes (not part of the full run).

Figure 5's placement: the echo upstream and wrk on core 0; one worker on core 1, or two workers
allowed on cores 0-1. Each round starts a fresh gateway for each count (order alternating between
rounds), warms it up, runs wrk at 32 connections, and reports per run: requests/s, the gateway's CPU
per request (its whole process tree: supervisor and workers), the upstream's and wrk's, each core's
busy share, each worker's share of CPU and connections, and CPU per thread (event loop, database
writer thread, others). With `--database-url` the gateways use that PostgreSQL server (a fresh
database for each start) and its backends' CPU per request is reported too.

The ceiling is figure 5's: with one worker, every process's CPU per request (gateway + upstream +
wrk) sets how many requests two whole cores could serve, 2e6 / sum(us per request); the ratio is that
over one worker's requests/s (with --database-url, postgres's CPU is in the sum). Runs where other
processes took more than --max-others % of a core are repeated (--retries). Findings and figures:
bench/notes-workers.md.

    .venv/bin/python -m bench.workers [--rounds 4] [--seconds 8] [--counts 1,2,2pin]
    .venv/bin/python -m bench.workers --database-url postgresql+asyncpg://postgres@127.0.0.1:5432/bench_workers
    .venv/bin/python -m bench.workers --perf   # also the workers' sleeps (SQLite busy waits)
    PYTHONPATH=<src> .venv/bin/python -m bench.workers --alt-src <other src> --counts 1,2,2old  # A/B two trees
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import load, procs
from bench.load import LoadSpec
from bench.targets import Target, start_omnirouter, start_upstream

CLK_TCK = procs.CLK_TCK


def _task_stats(pid: int) -> dict[int, tuple[float, int]]:
    """tid -> (CPU seconds, nice) for every thread of `pid`."""
    out: dict[int, tuple[float, int]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        f = raw[raw.rindex(")") + 2 :].split()
        out[int(tid)] = ((int(f[11]) + int(f[12])) / CLK_TCK, int(f[16]))
    return out


def _sched(pid: int, tid: int) -> dict[str, float]:
    """A thread's migrations, switches and run-queue wait (ms) so far."""
    out: dict[str, float] = {}
    try:
        for line in Path(f"/proc/{pid}/task/{tid}/sched").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip().removeprefix("se.")
            if key in ("nr_migrations", "nr_voluntary_switches", "nr_involuntary_switches"):
                out[key] = float(value)
        out["runq_wait_ms"] = float(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[1]) / 1e6
    except (OSError, ValueError, IndexError):
        pass
    return out


def _core_busy() -> dict[str, tuple[float, float]]:
    """cpuN -> (busy seconds, steal seconds) from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *vals = line.split()
        if name.startswith("cpu") and name != "cpu":
            v = [int(x) for x in vals]
            # user nice system idle iowait irq softirq steal
            out[name] = ((v[0] + v[1] + v[2] + v[5] + v[6]) / CLK_TCK, v[7] / CLK_TCK)
    return out


def _connections(port: int, pids: list[int]) -> dict[int, int]:
    """Established server-side connections on `port`, per process."""
    inodes: set[str] = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(name).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    out = {}
    for pid in pids:
        n = 0
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    n += 1
        except OSError:
            continue
        out[pid] = n
    return out


def _postgres_pids(database: str) -> list[int]:
    """The server's processes that work for `database`: its backends (named by it) and the shared ones
    (checkpointer, WAL writer...), not other databases' backends (the test suite's, say)."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() != "postgres":
                    continue
                args = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            words = args.split()
            # "postgres: 15/main: postgres bench_workers 127.0.0.1(5555) idle" is a backend of bench_workers;
            # "postgres: 15/main: walwriter" is shared; the postmaster itself has a path.
            if len(words) >= 4 and words[0] == "postgres:" and "(" in args:
                if words[3] == database:
                    out.append(int(entry))
            else:
                out.append(int(entry))
    return out


def _cpu_of(pids: list[int]) -> dict[int, float]:
    return {p: procs.cpu_seconds(p) for p in pids}


def fresh_database(url: str) -> None:
    """Drop and create the database `url` names (PostgreSQL), through psql on the same server."""
    parts = urlsplit(url.replace("+asyncpg", "", 1))
    name = parts.path.lstrip("/")
    base = ["psql", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    base += ["-U", parts.username or "postgres", "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1"]
    for sql in (f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"'):
        subprocess.run([*base, "-c", sql], check=True, capture_output=True, timeout=60)


class PerfTrace:
    """`perf trace -s` on the workers while the load runs: per thread, the calls and time of the
    syscalls that show SQLite waiting (its busy handler sleeps in clock_nanosleep, 1 ms and up;
    time.sleep(0) between write slices is a few us) and the disk (fdatasync). Tracing futex too (the
    GIL) doubled the writer threads' CPU: left out."""

    EVENTS = "clock_nanosleep,nanosleep,fdatasync,fsync"

    def __init__(self, pids: list[int], seconds: int, out: Path) -> None:
        self.out = out
        argv = ["timeout", "-s", "INT", str(seconds), "perf", "trace", "-s", "-e", self.EVENTS]
        argv += ["-p", ",".join(map(str, pids)), "-o", str(out)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def result(self) -> dict[str, dict[str, list[float]]]:
        """thread -> syscall -> [calls, total ms, max ms]"""
        self.proc.wait(60)
        out: dict[str, dict[str, list[float]]] = {}
        thread = ""
        for line in self.out.read_text(errors="replace").splitlines():
            f = line.split()
            if len(f) >= 2 and f[1].startswith("(") and f[1].endswith("),"):
                thread = f"{f[0]}{f[1][:-1]}"
            elif len(f) >= 8 and f[1].isdigit() and thread:
                out.setdefault(thread, {})[f[0]] = [int(f[1]), float(f[3]), float(f[6])]
        return out


def measure(
    gw: Target, echo_proc: procs.Proc, seconds: int, connections: int, work: Path, tag: str, perf: bool, pg: str
) -> dict[str, Any]:
    body = {"model": gw.model, "messages": [{"role": "user", "content": "hi"}]}
    spec = LoadSpec(gw.port, gw.path, gw.headers, body, connections, seconds)
    tree = gw.proc.tree()
    workers = [p for p in tree if p != gw.proc.pid] or [gw.proc.pid]
    tasks0 = {p: _task_stats(p) for p in tree}
    sched0 = {(p, t): _sched(p, t) for p in workers for t in tasks0[p]}
    pg_pids = _postgres_pids(pg) if pg else []
    pg0 = _cpu_of(pg_pids)
    cores0 = _core_busy()
    conns: dict[int, int] = {}

    def sample() -> None:
        time.sleep(seconds / 2)
        conns.update(_connections(gw.port, workers))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    counter = PerfTrace(workers, max(1, seconds - 1), work / f"{tag}.perf") if perf else None
    t0 = time.monotonic()
    res = load.run(spec, tool="wrk", cores="0", watch=[gw.proc, echo_proc], work=work, tag=tag)
    wall = time.monotonic() - t0
    cores1 = _core_busy()
    tasks1 = {p: _task_stats(p) for p in tree}
    sched1 = {k: _sched(*k) for k in sched0}
    pg1 = _cpu_of(pg_pids)
    sampler.join()
    if res.errors:
        raise RuntimeError(f"{tag}: {res.errors} errors")
    n = max(1, res.requests)
    per_thread: dict[str, float] = {"loop": 0.0, "db-writer": 0.0, "other": 0.0, "supervisor": 0.0}
    per_worker = []
    sched: dict[str, dict[str, float]] = {"loop": {}, "db-writer": {}}
    for (p, t), before in sched0.items():
        kind = "loop" if t == p else "db-writer" if tasks0[p][t][1] > 0 else None
        if kind is None:
            continue
        for key, value in sched1[(p, t)].items():
            sched[kind][key] = sched[kind].get(key, 0.0) + value - before.get(key, 0.0)
    for p in tree:
        spent = 0.0
        for tid, (cpu, nice) in tasks1[p].items():
            d = cpu - tasks0[p].get(tid, (0.0, 0))[0]
            spent += d
            if p == gw.proc.pid and len(tree) > 1:
                kind = "supervisor"
            elif tid == p:
                kind = "loop"
            elif nice > 0:
                kind = "db-writer"
            else:
                kind = "other"
            per_thread[kind] += d
        if p in workers:
            per_worker.append(spent)
    out = {
        "rps": round(res.rps, 1),
        "p50_ms": round(res.p50_ms, 3),
        "requests": res.requests,
        "us_per_request": {
            ("gateway" if k == gw.proc.name else k): round(1e6 * v / n, 1) for k, v in res.cpu_s.items()
        },
        "gateway_us_per_thread": {k: round(1e6 * v / n, 1) for k, v in per_thread.items()},
        # Per second of the run, all workers together: migrations, switches, ms waited in the run queue.
        "sched_per_s": {kind: {k: round(v / wall, 1) for k, v in d.items()} for kind, d in sched.items()},
        "worker_cpu_pct": [round(100 * s / wall, 1) for s in per_worker],
        "worker_connections": [conns.get(p, 0) for p in workers],
        "core_busy_pct": {c: round(100 * (cores1[c][0] - cores0[c][0]) / wall, 1) for c in cores1},
        # What other processes on this machine took meanwhile (outside gateway, upstream and wrk).
        "others_pct": round(
            sum(100 * (cores1[c][0] - cores0[c][0]) / wall for c in cores1)
            - sum(100 * v / wall for v in res.cpu_s.values())
            - (100 * sum(pg1.get(p, 0) - pg0[p] for p in pg0) / wall),
            1,
        ),
        "steal_pct": round(100 * sum(cores1[c][1] - cores0[c][1] for c in cores1) / wall / len(cores1), 1),
    }
    if pg:
        out["us_per_request"]["postgres"] = round(1e6 * sum(pg1.get(p, 0) - pg0[p] for p in pg0) / n, 1)
    if counter is not None:
        kinds = {
            t: ("loop" if t == p else "db-writer" if nice > 0 else "other")
            for p in workers
            for t, (_, nice) in tasks0[p].items()
        }
        traced: dict[str, dict[str, list[float]]] = {}
        for thread, calls in counter.result().items():
            tid = int(thread[thread.rindex("(") + 1 : -1]) if "(" in thread else 0
            traced[f"{kinds.get(tid, 'other')}-{tid}"] = calls
        out["perf"] = traced
    return out


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} [{min(values):.2f}-{max(values):.2f}]"


@dataclass
class Variant:
    workers: int
    connections: int
    cores: str
    pin: str = ""  # "bench": pinned by this harness once started; "serve": serve --pin-workers
    src: Path | None = None  # another tree's src/ (PYTHONPATH), e.g. a worktree of the commit before


def parse_variant(text: str, connections: int, alt_src: Path | None) -> Variant:
    """ "2" two workers on cores 0-1 at --connections; "1@16" one worker (on core 1) at 16 connections;
    "2pin" two workers started with serve --pin-workers; "2bpin" pinned by this harness instead (a
    tree without the option); "1on0" one worker on core 0, beside the upstream and wrk; a trailing
    "old" (before any "@"): the gateway runs from --alt-src."""
    text, _, conns = text.partition("@")
    old = text.endswith("old")
    text = text.removesuffix("old")
    text, _, cores = text.partition("on")
    pin = "bench" if text.endswith("bpin") else "serve" if text.endswith("pin") else ""
    count = int(text.removesuffix("pin").removesuffix("b"))
    if old and alt_src is None:
        raise SystemExit(f"variant {text}old needs --alt-src")
    cores = cores or ("1" if count == 1 else "0,1")
    return Variant(count, int(conns or connections), cores, pin, alt_src if old else None)


def pin_workers(gw: Target) -> None:
    workers = sorted(p for p in gw.proc.tree() if p != gw.proc.pid and _task_stats(p))
    # The multiprocessing helpers (resource tracker) use no CPU; uvicorn's workers are the ones with threads.
    workers = [p for p in workers if len(_task_stats(p)) > 1]
    for core, pid in enumerate(workers[:2]):
        for tid in _task_stats(pid):
            os.sched_setaffinity(tid, {core})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.workers", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--warm", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--counts", default="1,2", help="1, 2, 1@16, 2pin, 2bpin, 1on0, 2old, ...: see parse_variant")
    parser.add_argument("--alt-src", type=Path, default=None, help="src/ of another tree, for variants ending in old")
    parser.add_argument("--database-url", default=None, help="postgresql+asyncpg://...: a database to recreate")
    parser.add_argument("--perf", action="store_true", help="the workers' sleeps and waits, through perf trace")
    parser.add_argument("--max-others", type=float, default=15.0, help="%% of a core other processes may take")
    parser.add_argument("--retries", type=int, default=3, help="runs again while others took more than that")
    parser.add_argument("--json", type=Path, default=None, help="write every run's figures here")
    args = parser.parse_args(argv)
    if not load.wrk_path():
        print("bench.workers needs wrk (apt-get install -y wrk)", file=sys.stderr)
        return 2
    if args.perf and not shutil.which("perf"):
        print("--perf needs perf", file=sys.stderr)
        return 2
    procs.install_cleanup()
    os.sched_setaffinity(0, {0})
    variants = args.counts.split(",")
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    # The database's name: its backends' CPU counts as the gateway's database's.
    pg = urlsplit(args.database_url).path.lstrip("/") if args.database_url else ""
    try:
        echo = start_upstream("echo", "0", work)
        for r in range(args.rounds):
            order = variants if r % 2 == 0 else list(reversed(variants))
            for v in order:
                var = parse_variant(v, args.connections, args.alt_src)
                conns = var.connections
                if pg:
                    fresh_database(args.database_url)
                name = f"omnirouter-{v.replace('@', 'c')}-r{r}"
                extra = ["--pin-workers"] if var.pin == "serve" else []
                saved = os.environ.get("PYTHONPATH")
                if var.src is not None:  # clean_env copies it to the gateway
                    os.environ["PYTHONPATH"] = str(var.src)
                try:
                    gw = start_omnirouter(name, var.cores, var.workers, echo, echo, work, args.database_url, extra)
                finally:
                    if saved is None:
                        os.environ.pop("PYTHONPATH", None)
                    else:
                        os.environ["PYTHONPATH"] = saved
                try:
                    if var.pin == "bench":
                        pin_workers(gw)
                    body = {"model": gw.model, "messages": [{"role": "user", "content": "hi"}]}
                    warm = LoadSpec(gw.port, gw.path, gw.headers, body, conns, args.warm)
                    load.run(warm, tool="wrk", cores="0", watch=[gw.proc], work=work, tag=f"{name}-warm")
                    for attempt in range(args.retries + 1):
                        time.sleep(0.5)
                        m = measure(gw, echo.proc, args.seconds, conns, work, f"{name}-{attempt}", args.perf, pg)
                        m["attempt"] = attempt
                        if m["others_pct"] <= args.max_others:
                            break
                        print(f"round {r} {v}: others took {m['others_pct']}% of a core; again", flush=True)
                finally:
                    gw.proc.stop()
                runs[v].append(m)
                print(f"round {r} {v}: {json.dumps(m)}", flush=True)
    finally:
        procs.stop_all()
    print("\nmedian [min-max] over rounds")
    for v, rows in runs.items():
        if not rows:
            continue
        print(f"{v}: req/s {spread([m['rps'] for m in rows])}")
        for who in rows[0]["us_per_request"]:
            print(f"  {who:22s} us/request {spread([m['us_per_request'][who] for m in rows])}")
        for kind in rows[0]["gateway_us_per_thread"]:
            print(f"  gateway {kind:14s} us/request {spread([m['gateway_us_per_thread'][kind] for m in rows])}")
        for core in rows[0]["core_busy_pct"]:
            print(f"  {core} busy %          {spread([m['core_busy_pct'][core] for m in rows])}")
        print(f"  others' busy %         {spread([m['others_pct'] for m in rows])}")
    one, two = runs.get("1"), runs.get("2")
    if one:
        ceilings = [(2e6 / sum(m["us_per_request"].values())) / m["rps"] for m in one]
        print(f"ceiling ratio (figure 5's formula, per 1-worker run): {spread(ceilings)}")
        if two:
            pairs = [b["rps"] / a["rps"] for a, b in zip(one, two, strict=False)]
            print(f"2 workers / 1 worker, per round: {spread(pairs)}")
    if args.json:
        args.json.write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
