"""Issue 14's figures: budgets across workers and instances, and what the shared state costs a request.

Not part of the full run. Two parts, both against the echo upstream (bench.echo) on core 0:

1. **Overspend.** A budget of $0.01 (a key's `limit`, or the instance's credit from
   `omnirouter credits add`), 200 requests at once (every other one streamed) of a model whose endpoint
   caps the answer at 8 tokens (a request costs about half what it reserves, so a budget admits many
   side by side and 200 spend well past it if nothing holds it). For `serve --workers 1, 2, 4` on
   SQLite and on PostgreSQL without Redis, and 3 instances sharing PostgreSQL and Redis (a
   redis-server of the run's own), in the tree before issue 14 (`--before`, a temporary git worktree)
   and in this one. The figure is what the database holds as spent once every worker has flushed,
   over the limit.
2. **Throughput and added latency**: 1 instance on PostgreSQL, 1 on PostgreSQL and Redis, 3 sharing
   PostgreSQL and Redis, and 1 on PostgreSQL in the tree before issue 14; for a key without a limit
   and a key with one that never binds (so its budget's lease is on the path). Added latency: figure
   1's paired client (one request in flight, gateway against the upstream directly) on the first
   instance. Throughput: wrk at `--connections` spread over the instances, in alternating rounds;
   the gateways' CPU (every instance's process tree) per request, and redis-server's. Every gateway
   process runs on core 1 (one core for the gateway, as in figure 2, whether one instance or three
   share it), so requests/s compare the same CPU.
   PostgreSQL is the machine's server (unpinned, shared with whatever else runs).

    flock /work/notes/bench.lock .venv/bin/python -m bench.cluster [--parts overspend,throughput]
        [--before d4b6837] [--repeat 1] [--rounds 3] [--seconds 8] [--out cluster.json]
    .venv/bin/python -m bench.cluster --quick      # ~2 minutes: this tree only, small counts (smoke)

PostgreSQL: the server of `--postgres` (default postgresql+asyncpg://postgres@127.0.0.1:5432/postgres);
each deployment gets a database of its own, dropped after it. Without PostgreSQL (or redis-server)
the rows that need it are reported as skipped, with why.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench import latency, load, procs
from bench.procs import HOST, Proc, clean_env, free_port, http_json, spawn, start_redis, wait_http
from bench.targets import MODEL, PRICING, UPSTREAM_MODEL, Target, Upstream, direct, start_upstream

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
BEFORE = "d4b6837"  # the last commit before issue 14 (no leases)
LIMIT = Decimal("0.01")
BUDGET_MODEL = "bench/budget"
NEVER_BINDS = 1000.0  # a key limit, in USD, that the throughput runs cannot reach
GATEWAY_CORE, SIDE_CORE = "1", "0"


def config(upstream: str) -> dict[str, Any]:
    """bench/model as figure 2's; bench/budget answers at most 8 tokens at a price that makes a
    request cost about half of what it reserves (tests/test_shared_budgets.py's budget_config)."""
    budget_endpoint = {"provider": "bench", "upstream_model": UPSTREAM_MODEL, "max_completion_tokens": 8,
                       "pricing": {"prompt": "0.000001", "completion": "0.00002"}}  # fmt: skip
    return {
        "providers": [{"slug": "bench", "name": "Bench", "api": "openai", "base_url": upstream}],
        "models": [
            {"id": MODEL, "endpoints": [{"provider": "bench", "upstream_model": UPSTREAM_MODEL, "pricing": PRICING}]},
            {"id": BUDGET_MODEL, "name": "Budget", "context_length": 4000, "supported_parameters": ["max_tokens"],
             "endpoints": [budget_endpoint]},
        ],
    }  # fmt: skip


# -- how often a worker tops up its leases ---------------------------------------------------------------

# A sitecustomize.py on the throughput deployments' PYTHONPATH: every Leases.top_up (a round trip to
# Redis or a database transaction, which the request that asked waits for) counts, in a file per process.
TOP_UP_HOOK = """
import os

_dir = os.environ.get("BENCH_TOPUP_DIR")
if _dir:
    try:
        from omnirouter.cluster import budgets as _budgets
    except ImportError:  # a tree before issue 14
        _budgets = None
    if _budgets is not None:
        _plain, _count, _fd = _budgets.Leases.top_up, [0], []

        async def _counted(self, *args, **kwargs):
            _count[0] += 1
            if not _fd:
                _fd.append(os.open(os.path.join(_dir, f"topups-{os.getpid()}"), os.O_WRONLY | os.O_CREAT, 0o644))
            os.pwrite(_fd[0], b"%20d\\n" % _count[0], 0)
            return await _plain(self, *args, **kwargs)

        _budgets.Leases.top_up = _counted
"""


def top_ups(hook: Path | None) -> int:
    if hook is None:
        return 0
    return sum(int(f.read_text() or 0) for f in hook.glob("topups-*"))


# -- PostgreSQL and Redis of the run's own ------------------------------------------------------------


def _pg(url: str, statement: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=5)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(run())


def postgres_problem(url: str) -> str | None:
    try:
        _pg(url, "SELECT 1")
    except Exception as exc:
        return f"PostgreSQL at {url.rsplit('@', 1)[-1]} is not usable: {exc}"
    return None


# -- one deployment: `serve --workers N`, or several instances sharing a database ------------------


@dataclass
class Deployment:
    name: str
    src: Path  # the source tree served (PYTHONPATH)
    work: Path
    upstream: Upstream
    database: str  # "sqlite" or "postgres"
    pg_base: str
    workers: int = 1
    instances: int = 1
    redis: bool = False
    cores: str | None = None
    count_top_ups: bool = False
    hook: Path | None = None
    procs: list[Proc] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    redis_proc: Proc | None = None
    env: dict[str, str] = field(default_factory=dict)
    _dropped: str | None = None

    def start(self) -> Deployment:
        self.work.mkdir(parents=True, exist_ok=True)
        cfg = self.work / "config.yaml"
        cfg.write_text(yaml.safe_dump(config(self.upstream.base_url)))
        self.management = "sk-or-v1-" + secrets.token_hex(32)
        if self.database == "sqlite":
            url = f"sqlite+aiosqlite:///{self.work / 'shared.db'}"
        else:
            db = "omni_bench_" + secrets.token_hex(4)
            _pg(self.pg_base, f'CREATE DATABASE "{db}"')
            self._dropped = db
            url = self.pg_base.rsplit("/", 1)[0] + "/" + db
        self.env = {"PYTHONPATH": str(self.src), "OMNIROUTER_DATABASE_URL": url, "OMNIROUTER_CONFIG": str(cfg),
                    "OMNIROUTER_MANAGEMENT_KEY": self.management, "OMNIROUTER_LOG_LEVEL": "warning"}  # fmt: skip
        if self.count_top_ups:
            self.hook = self.work / "hook"
            self.hook.mkdir(parents=True, exist_ok=True)
            (self.hook / "sitecustomize.py").write_text(TOP_UP_HOOK)
            self.env["PYTHONPATH"] = f"{self.hook}{os.pathsep}{self.src}"
            self.env["BENCH_TOPUP_DIR"] = str(self.hook)
        if self.redis:
            self.redis_proc, self.env["OMNIROUTER_REDIS_URL"] = start_redis(self.work, cores=SIDE_CORE)
        for i in range(self.instances):  # one after another: a tree without the migration lock races
            port = free_port()
            env = clean_env(**self.env, OMNIROUTER_DATA_DIR=str(self.work / f"data{i}"))
            argv = [sys.executable, "-m", "omnirouter", "serve", "--host", HOST, "--port", str(port)]
            argv += ["--workers", str(self.workers)]
            proc = spawn(f"{self.name}-{i}", argv, cores=self.cores, env=env, log_dir=self.work, cwd=self.work)
            self.procs.append(proc)
            wait_http(proc, port, "/api/v1/models", timeout=90)
            self.ports.append(port)
        return self

    def admin(self, method: str, path: str, body: Any = None, i: int = 0) -> tuple[int, Any]:
        return http_json(self.ports[i], method, "/api/v1" + path, body, {"Authorization": f"Bearer {self.management}"})

    def create_key(self, **fields: Any) -> str:
        status, made = self.admin("POST", "/keys", {"name": "bench", **fields})
        if status != 201:
            raise RuntimeError(f"{self.name}: creating a key: HTTP {status} {made}")
        key = made["key"]
        # Every worker and instance knows it (the tree before issue 14 learns of it at its next sync).
        self._until(lambda i: http_json(self.ports[i], "GET", "/api/v1/key", None, _auth(key))[0] == 200)
        return key

    def add_credits(self, amount: Decimal) -> None:
        env = clean_env(**self.env, OMNIROUTER_DATA_DIR=str(self.work / "cli-data"))
        done = subprocess.run([sys.executable, "-m", "omnirouter", "credits", "add", str(amount)], env=env,
                              capture_output=True, text=True, timeout=120, cwd=self.work)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"credits add failed: {done.stderr[-1000:]}")

        def funded(i: int) -> bool:
            status, got = self.admin("GET", "/credits", i=i)
            return status == 200 and Decimal(str(got["data"]["total_credits"])) == amount

        self._until(funded)

    def _until(self, check: Any, timeout: float = 20.0) -> None:
        """`check(instance)` true 20 times in a row on every instance (each a new connection, so the
        workers behind one port all answer in turn)."""
        deadline = time.monotonic() + timeout
        for i in range(len(self.ports)):
            streak = 0
            while streak < 20:
                streak = streak + 1 if check(i) else 0
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: workers did not agree within {timeout} s")
                if streak == 0:
                    time.sleep(0.05)

    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds() for p in self.procs)

    def close(self) -> None:
        for p in self.procs:
            p.stop()
        if self.redis_proc is not None:
            self.redis_proc.stop()
        if self._dropped:
            try:
                _pg(self.pg_base, f'DROP DATABASE IF EXISTS "{self._dropped}" WITH (FORCE)')
            except Exception as exc:
                print(f"  (could not drop {self._dropped}: {exc})", file=sys.stderr)


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# -- part 1: overspend --------------------------------------------------------------------------------


# What follows "request N" in each request: with "full" the echo's answer runs into the endpoint's cap
# of 8 tokens, so a request costs what it reserved; with "short" it answers 3 tokens, about 40% of the
# reservation (tests/test_shared_budgets.py's requests), and 200 requests at once reserve the whole
# budget while spending well under it.
TAILS = {"full": " and then a few words more to fill the cap", "short": ""}


def _body(i: int, stream: bool, tail: str = TAILS["full"]) -> dict[str, Any]:
    body: dict[str, Any] = {"model": BUDGET_MODEL, "messages": [{"role": "user", "content": f"request {i}{tail}"}],
                            "max_tokens": 8}  # fmt: skip
    return {**body, "stream": True, "stream_options": {"include_usage": True}} if stream else body


async def _one(client: httpx.AsyncClient, port: int, key: str, i: int, tail: str) -> tuple[int, Decimal]:
    """(status, the cost the client was told) for one request; every other one streamed."""
    url, stream = f"http://{HOST}:{port}/api/v1/chat/completions", i % 2 == 1
    if not stream:
        r = await client.post(url, json=_body(i, False, tail), headers=_auth(key))
        cost = Decimal(str(r.json(parse_float=Decimal)["usage"]["cost"])) if r.status_code == 200 else Decimal(0)
        return r.status_code, cost
    cost = Decimal(0)
    async with client.stream("POST", url, json=_body(i, True, tail), headers=_auth(key)) as r:
        if r.status_code != 200:
            await r.aread()
            return r.status_code, cost
        async for line in r.aiter_lines():
            if line.startswith("data: {") and '"cost"' in line:
                usage = json.loads(line[6:], parse_float=Decimal).get("usage") or {}
                cost = Decimal(str(usage.get("cost", cost)))
    return r.status_code, cost


async def _burst(ports: list[int], key: str, n: int, tail: str) -> list[tuple[int, Decimal]]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    async with httpx.AsyncClient(timeout=60, limits=limits, trust_env=False) as client:
        return await asyncio.gather(*(_one(client, ports[i % len(ports)], key, i, tail) for i in range(n)))


def _settled(read: Any, told: Decimal, timeout: float = 30.0) -> Decimal:
    """What the database holds as spent once every worker has flushed: `read()` (the highest any
    worker reports) until it equals what clients were told, or has not moved for 3 s."""
    deadline = time.monotonic() + timeout
    last, since = read(), time.monotonic()
    while last != told and time.monotonic() - since < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
        now = read()
        if now != last:
            last, since = now, time.monotonic()
    return last


def overspend_once(dep: Deployment, budget: str, n: int, tail: str) -> dict[str, Any]:
    if budget == "key":
        key = dep.create_key(limit=float(LIMIT))

        def read() -> Decimal:
            got = [http_json(p, "GET", "/api/v1/key", None, _auth(key))[1] for p in dep.ports for _ in range(3)]
            return max(Decimal(str(g["data"]["usage"])) for g in got)
    else:
        dep.add_credits(LIMIT)
        key = dep.create_key()  # no limit of its own: the credit binds

        def read() -> Decimal:
            got = [dep.admin("GET", "/credits", i=i)[1] for i in range(len(dep.ports)) for _ in range(3)]
            return max(Decimal(str(g["data"]["total_usage"])) for g in got)

    started = time.perf_counter()
    results = asyncio.run(_burst(dep.ports, key, n, tail))
    seconds = time.perf_counter() - started
    told = sum((c for s, c in results if s == 200), Decimal(0))
    spent = _settled(read, told)
    statuses: dict[str, int] = {}
    for s, _ in results:
        statuses[str(s)] = statuses.get(str(s), 0) + 1
    return {"spent": str(spent), "told": str(told), "ratio": float(spent / LIMIT), "statuses": statuses,
            "burst_s": round(seconds, 3)}  # fmt: skip


OVERSPEND_ROWS = [  # (label, database, workers, instances, redis)
    ("SQLite, 1 worker", "sqlite", 1, 1, False),
    ("SQLite, 2 workers", "sqlite", 2, 1, False),
    ("SQLite, 4 workers", "sqlite", 4, 1, False),
    ("PostgreSQL, 1 worker", "postgres", 1, 1, False),
    ("PostgreSQL, 2 workers", "postgres", 2, 1, False),
    ("PostgreSQL, 4 workers", "postgres", 4, 1, False),
    ("3 instances, PostgreSQL + Redis", "postgres", 1, 3, True),
]
QUICK_ROWS = ("SQLite, 2 workers", "3 instances, PostgreSQL + Redis")


def run_overspend(
    trees: dict[str, Path],
    rows: list[tuple[str, str, int, int, bool]],
    n: int,
    repeat: int,
    echo: Upstream,
    work: Path,
    pg: str,
    pg_problem: str | None,
    tail: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, database, workers, instances, redis in rows:
        for tree, src in trees.items():
            for budget in ("key", "credit"):
                cell = out.setdefault(label, {}).setdefault(f"{tree}/{budget}", [])
                if database == "postgres" and pg_problem:
                    cell.append({"skipped": pg_problem})
                    continue
                for r in range(repeat):
                    name = f"os-{tree}-{database}-w{workers}-i{instances}-{budget}-{r}"
                    dep = Deployment(name, src, work / name, echo, database, pg, workers, instances, redis)
                    try:
                        dep.start()
                        got = overspend_once(dep, budget, n, tail)
                    except Exception as exc:
                        got = {"error": f"{type(exc).__name__}: {exc}"[:500]}
                    finally:
                        dep.close()
                    cell.append(got)
                    shown = f"{Decimal(got['spent']):.5f} ({got['ratio']:.2f}x) {got['statuses']}" if "spent" in got \
                        else got["error"]  # fmt: skip
                    print(f"  {label:34} {tree:6} {budget:6} {shown}", flush=True)
    return out


def overspend_table(out: dict[str, Any], trees: list[str]) -> str:
    cols = [f"{t}/{b}" for b in ("key", "credit") for t in trees]
    lines = ["| deployment | " + " | ".join(f"{c.replace('/', ', ')} limit" for c in cols) + " |",
             "|---|" + "---:|" * len(cols)]  # fmt: skip
    for label, cells in out.items():
        shown = []
        for c in cols:
            runs = cells.get(c, [])
            spent = [r for r in runs if "spent" in r]
            if not spent:
                shown.append("skipped" if runs and "skipped" in runs[0] else "error")
                continue
            values = " / ".join(f"${Decimal(r['spent']):.4f} ({100 * (r['ratio'] - 1):+.0f}%)" for r in spent)
            shown.append(values)
        lines.append(f"| {label} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


# -- part 2: throughput and added latency ---------------------------------------------------------------


THROUGHPUT_ROWS = [  # (label, tree, instances, redis): all on PostgreSQL
    ("before: 1 instance, PostgreSQL", "before", 1, False),
    ("1 instance, PostgreSQL", "after", 1, False),
    ("1 instance, PostgreSQL + Redis", "after", 1, True),
    ("3 instances, PostgreSQL", "after", 3, False),  # what three processes on one core cost, without Redis
    ("3 instances, PostgreSQL + Redis", "after", 3, True),
]


def _postgres_cpu() -> float:
    """CPU seconds of every postgres process on the machine (its backends serve everyone)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == "postgres":
                    total += procs.cpu_seconds(int(entry))
            except OSError:
                continue
    return total


def _wrk(dep: Deployment, key: str, connections: int, seconds: int, work: Path, tag: str) -> dict[str, Any]:
    """wrk against every instance at once (the connections split between them); CPU over the run."""
    per = max(1, connections // len(dep.ports))
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
    gens = []
    cpu0, redis0, pg0, steal0 = dep.cpu_seconds(), _redis_cpu(dep), _postgres_cpu(), procs.steal_seconds()
    topped0 = top_ups(dep.hook)
    wall = time.monotonic()
    for i, port in enumerate(dep.ports):
        spec = load.LoadSpec(port, "/api/v1/chat/completions", _auth(key), body, per, seconds)
        script = work / f"{tag}-{i}.lua"
        script.write_text(load.wrk_script(spec))
        argv = [load.wrk_path() or "wrk", "-t1", f"-c{per}", f"-d{seconds}s", "--timeout", "10s", "--latency"]
        argv += ["-s", str(script), f"http://{HOST}:{port}/api/v1/chat/completions"]
        gens.append(spawn(f"wrk-{tag}-{i}", argv, cores=SIDE_CORE, env=clean_env(), log_dir=work))
    for g in gens:
        g.popen.wait(seconds + 60)
    wall = time.monotonic() - wall
    cpu, redis, pg = dep.cpu_seconds() - cpu0, _redis_cpu(dep) - redis0, _postgres_cpu() - pg0
    steal = procs.steal_seconds() - steal0
    parsed = [load._parse(g.output(200_000)) for g in gens]
    for g in gens:
        g.stop()
    requests = sum(int(p["requests"]) for p in parsed)
    topped = top_ups(dep.hook) - topped0
    duration = max(p["duration_us"] for p in parsed) / 1e6
    return {
        "requests": requests,
        "rps": requests / duration,
        "errors": sum(int(p["status"]) + int(p["socket"]) for p in parsed),
        "p50_ms": statistics.median(p.get("p50_us", 0) / 1000 for p in parsed),
        "gateway_us": 1e6 * cpu / max(1, requests),
        "gateway_cpu_pct": 100 * cpu / wall,
        "redis_us": 1e6 * redis / max(1, requests),
        "postgres_us": 1e6 * pg / max(1, requests),
        "steal_pct": 100 * steal / (wall * (os.cpu_count() or 1)),
        "top_ups_per_1000": 1000 * topped / max(1, requests),
    }


def _redis_cpu(dep: Deployment) -> float:
    return dep.redis_proc.cpu_seconds() if dep.redis_proc is not None else 0.0


def run_throughput(trees: dict[str, Path], echo: Upstream, work: Path, pg: str, *, rounds: int, seconds: int,
                   connections: int, lat_plan: tuple[int, int, int]) -> dict[str, Any]:  # fmt: skip
    deps: list[tuple[str, Deployment, dict[str, str]]] = []
    out: dict[str, Any] = {}
    try:
        for label, tree, instances, redis in THROUGHPUT_ROWS:
            if tree not in trees:
                continue
            name = f"tp-{tree}-i{instances}-{'redis' if redis else 'pg'}"
            dep = Deployment(name, trees[tree], work / name, echo, "postgres", pg, 1, instances, redis,
                             cores=GATEWAY_CORE, count_top_ups=True)  # fmt: skip
            dep.start()
            keys = {"no limit": dep.create_key(), "limit": dep.create_key(limit=NEVER_BINDS)}
            deps.append((label, dep, keys))
        plain = direct(echo, echo)
        warm, lat_rounds, per_round = lat_plan
        for label, dep, keys in deps:
            for kind, key in keys.items():
                target = Target(label, dep.ports[0], "/api/v1/chat/completions", _auth(key), MODEL, dep.procs[0])
                topped = top_ups(dep.hook)
                lat = asyncio.run(latency.measure(target, plain, warmup=warm, rounds=lat_rounds, per_round=per_round))
                sent = len(latency.KINDS) * (warm + lat_rounds * per_round)
                row = out.setdefault(label, {}).setdefault(kind, {"rounds": []})
                row["added_ms"] = {k: lat["added_ms"][k] for k in ("nonstream", "ttfb")}
                row["latency_top_ups_per_1000"] = 1000 * (top_ups(dep.hook) - topped) / sent
                a = row["added_ms"]["nonstream"]
                print(f"  {label:32} {kind:8} added p50 {a['p50']:.3f} ms  p99 {a['p99']:.3f} ms", flush=True)
                _wrk(dep, key, connections, 2, work, f"warm-{dep.name}-{kind.replace(' ', '')}")
        for r in range(rounds):  # alternating: a slow spell of the host shows in every row's spread
            for label, dep, keys in deps:
                for kind, key in keys.items():
                    got = _wrk(dep, key, connections, seconds, work, f"{dep.name}-{kind.replace(' ', '')}-{r}")
                    out[label][kind]["rounds"].append(got)
                    print(f"  round {r} {label:32} {kind:8} {got['rps']:7.0f} req/s  gateway {got['gateway_us']:6.1f}"
                          f" us/req ({got['gateway_cpu_pct']:.0f}% cpu)  redis {got['redis_us']:5.1f} us  "
                          f"top-ups {got['top_ups_per_1000']:.1f}/1000  errors {got['errors']}  "
                          f"steal {got['steal_pct']:.1f}%", flush=True)  # fmt: skip
    finally:
        for _, dep, _ in deps:
            dep.close()
    return out


def throughput_table(out: dict[str, Any]) -> str:
    lines = ["| deployment | key | added p50 (ms) | added p99 (ms) | first event p50 (ms) | req/s | gateway CPU us/req "
             "| redis-server us/req | top-ups per 1,000 (one in flight / load) | errors |",
             "|---|---|" + "---:|" * 8]  # fmt: skip
    for label, kinds in out.items():
        for kind, row in kinds.items():
            rounds = row["rounds"]
            a, t = row["added_ms"]["nonstream"], row["added_ms"]["ttfb"]

            def med(field: str, rounds: list[dict[str, Any]] = rounds) -> float:
                return statistics.median(x[field] for x in rounds) if rounds else float("nan")

            errors = sum(x["errors"] for x in rounds)
            lines.append(f"| {label} | {kind} | {a['p50']:.3f} | {a['p99']:.3f} | {t['p50']:.3f} | {med('rps'):,.0f} "
                         f"| {med('gateway_us'):.0f} | {med('redis_us'):.1f} "
                         f"| {row.get('latency_top_ups_per_1000', 0):.1f} / {med('top_ups_per_1000'):.1f} "
                         f"| {errors} |")  # fmt: skip
    return "\n".join(lines)


# -- the run ---------------------------------------------------------------------------------------------


def _worktree(rev: str, path: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(path), rev], check=True)
    return path / "src"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="~2 minutes: this tree only, small counts (smoke)")
    parser.add_argument("--parts", default="overspend,throughput")
    parser.add_argument("--before", default=BEFORE, help=f"the tree before issue 14 [{BEFORE}]; '' for none")
    parser.add_argument("--postgres", default=os.environ.get("OMNIROUTER_DATABASE_URL") or DEFAULT_PG)
    parser.add_argument("--requests", type=int, default=200, help="overspend: requests at once [200]")
    parser.add_argument("--repeat", type=int, default=1, help="overspend: runs per cell [1]")
    parser.add_argument(
        "--answers",
        choices=sorted(TAILS),
        default="full",
        help="overspend: answers that fill the 8-token cap, or short ones (3 tokens) [full]",
    )
    parser.add_argument("--rounds", type=int, default=3, help="throughput: rounds of every row [3]")
    parser.add_argument("--seconds", type=int, default=8, help="throughput: seconds per wrk run [8]")
    parser.add_argument("--connections", type=int, default=30, help="throughput: connections in all [30]")
    parser.add_argument("--out", type=Path, default=None, help="write every figure here as JSON")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    if "throughput" in parts and not load.wrk_path():
        print("the throughput part needs wrk (apt-get install -y wrk)", file=sys.stderr)
        return 2
    if args.quick:
        args.before, args.requests, args.rounds, args.seconds = "", 60, 1, 1
    lat_plan = (20, 1, 30) if args.quick else (100, 5, 100)
    rows = [r for r in OVERSPEND_ROWS if not args.quick or r[0] in QUICK_ROWS]
    procs.install_cleanup()
    os.sched_setaffinity(0, {int(SIDE_CORE)})
    pg_problem = postgres_problem(args.postgres)
    results: dict[str, Any] = {"mode": "quick" if args.quick else "full", "errors": {},
                               "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                               "loadavg_start": os.getloadavg()}  # fmt: skip
    work = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    trees: dict[str, Path] = {}
    try:
        if args.before:
            trees["before"] = _worktree(args.before, work / "before-tree")
        trees["after"] = ROOT / "src"
        echo = start_upstream("echo", SIDE_CORE, work)
        if "overspend" in parts:
            print(
                f"overspend: ${LIMIT} budget, {args.requests} requests at once, half streamed, {args.answers} answers",
                flush=True,
            )
            got = run_overspend(trees, rows, args.requests, args.repeat, echo, work, args.postgres, pg_problem,
                                TAILS[args.answers])  # fmt: skip
            results["overspend"] = got
            for label, cells in got.items():
                for cell, runs in cells.items():
                    for r in runs:
                        if "error" in r:
                            results["errors"][f"overspend {label} {cell}"] = r["error"]
        if "throughput" in parts:
            if pg_problem:
                results["errors"]["throughput"] = pg_problem
            else:
                print("throughput and added latency", flush=True)
                results["throughput"] = run_throughput(trees, echo, work, args.postgres, rounds=args.rounds,
                                                       seconds=args.seconds, connections=args.connections,
                                                       lat_plan=lat_plan)  # fmt: skip
    finally:
        procs.stop_all()
        if "before" in trees:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(work / "before-tree")],
                           check=False, capture_output=True)  # fmt: skip
        shutil.rmtree(work, ignore_errors=True)
    results["loadavg_end"] = os.getloadavg()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"], capture_output=True, text=True
    )
    results["commit"] = head.stdout.strip() + (" + uncommitted src" if dirty.stdout.strip() else "")
    print(f"\n# {results['started']}, this tree at {results['commit']}, before {args.before or '-'}; load average "
          f"{results['loadavg_start'][0]:.1f} at the start, {results['loadavg_end'][0]:.1f} at the end")  # fmt: skip
    if "overspend" in results:
        print(f"\nSpent of a ${LIMIT} budget, {args.requests} requests at once (half streamed):\n")
        print(overspend_table(results["overspend"], list(trees)))
    if "throughput" in results:
        print(f"\nThroughput ({args.connections} connections, median of {args.rounds} rounds of {args.seconds} s) "
              "and added latency (one request in flight, first instance):\n")  # fmt: skip
        print(throughput_table(results["throughput"]))
    for what, why in results["errors"].items():
        print(f"error: {what}: {why}")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=str))
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
