"""granian against omnirouter's server (uvicorn + httptools + uvloop + BatchingHttpToolsProtocol), side by side.

Not part of the full run: the record of issue 13's server comparison (findings in bench/notes-servers.md).
Servers on core 1, wrk (and the echo upstream) on core 0. Three parts, each its own run:

- `trivial`: one raw-ASGI app (reads the body, answers a ~300-byte JSON) under uvicorn as `omnirouter
  serve` configures it ("uvicorn-ours"), under plain uvicorn httptools, and under granian ASGI in
  several runtime settings; the same app as RSGI under granian. wrk at 32 connections, POST with a small
  JSON body, rounds alternating (each round rotates the order). Reported per server: CPU us per request
  (utime + stime of its whole process tree, from /proc), requests/s, and where granian spends its CPU
  (per thread name).
- `app`: the real app (`omnirouter.app:create_app`, configured as bench.targets.start_omnirouter does:
  same YAML config, env, a key created with POST /api/v1/keys) under `omnirouter serve`, under uvicorn
  with its own httptools protocol, and under granian ASGI (mt and st), chat completions against the echo
  upstream. Before timing, each server's answers are checked: a non-streamed one (200, the echo's
  text), a streamed one with curl (events, `[DONE]`), and a client that leaves mid-stream (paced
  upstream; the server's log stays clean and it answers the next request).
- `latency`: one request in flight, keep-alive, 2,000 sequential requests per server in alternating
  blocks, p50/p90/p99 of the round trip, for the trivial app's servers and the real app's.

    .venv/bin/python -m bench.servers --part trivial [--rounds 3] [--seconds 5] [--only NAME,...]
    .venv/bin/python -m bench.servers --part app [--rounds 3] [--seconds 5]
    .venv/bin/python -m bench.servers --part latency [--requests 2000]

Take the bench lock around each run (`flock /work/notes/bench.lock ...`). granian is not a dependency of
the project: `.venv/bin/pip install granian` first.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import load, procs
from bench.cpu import BODIES
from bench.leanhttp import LeanConnection, build_request
from bench.load import LoadSpec
from bench.procs import HOST, Proc, clean_env, free_port, http_json, spawn, wait_http
from bench.stats import pct
from bench.targets import PACED_MODEL, UPSTREAM_MODEL, Upstream, start_omnirouter, start_upstream

ROOT = Path(__file__).parent.parent
SERVER_CORE, CLIENT_CORE = "1", "0"

# -- the trivial app, as raw ASGI and as RSGI -----------------------------------------------------------

ANSWER = json.dumps(
    {
        "id": "gen-0123456789abcdef01234567",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "bench/model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Echo: hi"},
                "finish_reason": "stop",
                "native_finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4, "cost": 0.000007},
    },
    separators=(",", ":"),
).encode()
ASGI_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(ANSWER)).encode())]
RSGI_HEADERS = [("content-type", "application/json")]  # granian sets content-length for response_bytes
TRIVIAL_BODY: dict[str, Any] = {"model": "bench/model", "messages": [{"role": "user", "content": "hi"}]}


async def asgi_app(scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": ASGI_HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


async def rsgi_app(scope: Any, protocol: Any) -> None:
    await protocol()  # the whole body
    protocol.response_bytes(200, RSGI_HEADERS, ANSWER)


def serve_uvicorn(kind: str, port: int) -> None:
    """uvicorn as `omnirouter serve` runs it (cli.py), for the trivial app with omnirouter's protocol ("ours")
    or uvicorn's own httptools protocol ("plain"), or for the real app with uvicorn's own ("app-plain")."""
    import uvicorn

    from omnirouter.batched_writes import connection_options
    from omnirouter.settings import Settings

    settings = Settings()
    http: dict[str, Any] = connection_options(settings) if kind == "ours" else {"http": "httptools"}
    common: dict[str, Any] = dict(host=HOST, port=port, backlog=settings.backlog, loop="uvloop", **http,
                                  access_log=False, proxy_headers=False, server_header=False)  # fmt: skip
    if kind == "app-plain":
        uvicorn.run("omnirouter.app:create_app", factory=True, log_level=settings.log_level, **common)
    else:
        uvicorn.run(asgi_app, log_level="warning", lifespan="off", **common)


# -- starting servers ------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    proc: Proc
    port: int
    path: str
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


GRANIAN_COMMON = ["--workers", "1", "--loop", "uvloop", "--http", "1", "--no-ws", "--backlog", "4096"]
GRANIAN_COMMON += ["--log-level", "warning", "--no-access-log"]

# name -> (interface, extra granian options). ASGI's default runtime mode is mt, RSGI's st (1 thread).
GRANIAN_TRIVIAL: dict[str, tuple[str, list[str]]] = {
    "granian-asgi": ("asgi", []),
    "granian-asgi-st": ("asgi", ["--runtime-mode", "st"]),
    "granian-asgi-rt2": ("asgi", ["--runtime-threads", "2"]),
    "granian-asgi-st-rusttask": ("asgi", ["--runtime-mode", "st", "--task-impl", "rust"]),
    "granian-rsgi": ("rsgi", []),
    "granian-rsgi-mt": ("rsgi", ["--runtime-mode", "mt"]),
}
TRIVIAL = ["uvicorn-ours", "uvicorn-httptools", *GRANIAN_TRIVIAL]
GRANIAN_APP = {"omnirouter-granian": [], "omnirouter-granian-st": ["--runtime-mode", "st"]}


def granian_argv(interface: str, port: int, target: str, extra: list[str]) -> list[str]:
    argv = [sys.executable, "-m", "granian", "--interface", interface, "--host", HOST, "--port", str(port)]
    return [*argv, *GRANIAN_COMMON, *extra, target]


def start_trivial(name: str, work: Path) -> Server:
    port = free_port()
    if name.startswith("uvicorn-"):
        kind = "ours" if name == "uvicorn-ours" else "plain"
        argv = [sys.executable, "-m", "bench.servers", "--serve", kind, "--port", str(port)]
    else:
        interface, extra = GRANIAN_TRIVIAL[name]
        argv = granian_argv(interface, port, f"bench.servers:{interface}_app", extra)
    proc = spawn(name, argv, cores=SERVER_CORE, env=clean_env(), log_dir=work, cwd=ROOT)
    wait_http(proc, port, "/", timeout=30)
    return Server(name, proc, port, "/v1/chat/completions", TRIVIAL_BODY)


def start_app(name: str, config: Path, work: Path) -> Server:
    """create_app under another server, with the env and config start_omnirouter gives `omnirouter serve`."""
    data = work / f"{name}-data"
    data.mkdir(parents=True, exist_ok=True)
    management = "sk-or-v1-" + secrets.token_hex(32)
    env = clean_env(OMNIROUTER_CONFIG=str(config), OMNIROUTER_DATA_DIR=str(data),
                    OMNIROUTER_MANAGEMENT_KEY=management, OMNIROUTER_LOG_LEVEL="warning")  # fmt: skip
    port = free_port()
    if name in GRANIAN_APP:
        argv = granian_argv("asgi", port, "omnirouter.app:create_app", ["--factory", *GRANIAN_APP[name]])
    else:
        argv = [sys.executable, "-m", "bench.servers", "--serve", "app-plain", "--port", str(port)]
    proc = spawn(name, argv, cores=SERVER_CORE, env=env, log_dir=work, cwd=ROOT)
    wait_http(proc, port, "/api/v1/models", timeout=60)
    auth = {"Authorization": f"Bearer {management}"}
    status, created = http_json(port, "POST", "/api/v1/keys", {"name": "bench"}, auth)
    if status >= 300 or not isinstance(created, dict) or "key" not in created:
        raise RuntimeError(f"{name}: creating an inference key failed: HTTP {status} {created}")
    path, body = BODIES["chat"]
    return Server(name, proc, port, path, body, {"Authorization": f"Bearer {created['key']}"})


def start_apps(work: Path) -> tuple[list[Server], Upstream]:
    echo = start_upstream("echo", CLIENT_CORE, work)
    paced = start_upstream("paced", CLIENT_CORE, work, chunks=100, delay=0.1)  # 10 s streams, to leave early
    target = start_omnirouter("omnirouter-uvicorn", SERVER_CORE, 1, echo, paced, work)
    path, body = BODIES["chat"]
    servers = [Server(target.name, target.proc, target.port, path, body, target.headers)]
    config = work / "omnirouter-uvicorn.yaml"  # what start_omnirouter wrote: the same providers and models
    servers += [start_app(name, config, work) for name in ("omnirouter-uvicorn-httptools", *GRANIAN_APP)]
    return servers, echo


# -- checks ---------------------------------------------------------------------------------------------


def curl(server: Server, body: dict[str, Any], max_time: float) -> subprocess.CompletedProcess[str]:
    argv = ["curl", "-sN", "--max-time", str(max_time), "-X", "POST", f"http://{HOST}:{server.port}{server.path}"]
    for k, v in {"Content-Type": "application/json", **server.headers}.items():
        argv += ["-H", f"{k}: {v}"]
    return subprocess.run([*argv, "-d", json.dumps(body)], capture_output=True, text=True, timeout=max_time + 5)


def check_trivial(server: Server) -> None:
    status, answer = http_json(server.port, "POST", server.path, server.body)
    if status != 200 or answer != json.loads(ANSWER):
        raise RuntimeError(f"{server.name}: HTTP {status} {answer!r:.300}")


def check_app(server: Server) -> list[str]:
    """A non-streamed answer, a streamed one, and a client leaving mid-stream. Returns what it saw."""
    seen = []
    status, answer = http_json(server.port, "POST", server.path, server.body, server.headers)
    text = answer["choices"][0]["message"]["content"] if status == 200 and isinstance(answer, dict) else None
    if text != "Echo: hi":
        raise RuntimeError(f"{server.name}: non-streamed: HTTP {status} {answer!r:.300}")
    seen.append(f"non-streamed 200 {text!r}")
    stream = {**server.body, "stream": True, "stream_options": {"include_usage": True}}
    done = curl(server, stream, 10)
    events = [line[5:].strip() for line in done.stdout.splitlines() if line.startswith("data:")]
    words = "".join(
        c["delta"].get("content") or "" for e in events[:-1] for c in json.loads(e).get("choices", ()) if "delta" in c
    )
    if done.returncode != 0 or not events or events[-1] != "[DONE]" or words != "Echo: hi":
        raise RuntimeError(f"{server.name}: streamed: curl {done.returncode} {done.stdout[-500:]!r}")
    usage = json.loads(events[-2]).get("usage")
    seen.append(f"streamed (curl) {len(events)} events, text {words!r}, usage {bool(usage)}, [DONE]")
    before = server.proc.output(100_000)
    left = curl(server, {**stream, "model": PACED_MODEL}, 1.0)  # a 10 s stream, left after 1 s
    got = sum(line.startswith("data:") for line in left.stdout.splitlines())
    time.sleep(0.5)
    status, _ = http_json(server.port, "POST", server.path, server.body, server.headers)
    log = server.proc.output(100_000)[len(before) :]
    if status != 200 or "Traceback" in log or left.returncode != 28:  # 28: curl's own timeout
        raise RuntimeError(f"{server.name}: left mid-stream: curl {left.returncode}, next HTTP {status}, log {log!r}")
    seen.append(f"left a paced stream after {got} events: next request 200, log clean")
    return seen


# -- throughput -----------------------------------------------------------------------------------------


def thread_cpu(proc: Proc) -> dict[str, float]:
    """CPU seconds per thread over the process tree: a worker's main thread (the one running the event
    loop) as "main", a supervisor's threads (granian's parent process) as "supervisor", others by name
    (granian's Rust runtime: "tokio-rt-worker" in mt mode, "python" in st mode)."""
    out: dict[str, float] = {}
    tree = proc.tree()
    for pid in tree:
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                comm = Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
                raw = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2 :].split()
            name = "supervisor" if pid == proc.pid and len(tree) > 1 else "main" if tid == str(pid) else comm
            out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / procs.CLK_TCK
    return out


def core_busy(core: str) -> float:
    """Seconds core `core` has spent busy (anything but idle and iowait), from /proc/stat."""
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(f"cpu{core} "):
            ticks = [int(v) for v in line.split()[1:]]
            return (sum(ticks[:8]) - ticks[3] - ticks[4]) / procs.CLK_TCK
    return 0.0


@dataclass
class Round:
    us: float
    rps: float
    p50_ms: float
    busy_pct: float  # of the server's core: under ~90%, the load generator (or the host) set the pace
    wrk_pct: float
    others_pct: float  # of the server's core taken by other processes (the host is shared)
    threads: dict[str, float]  # us per request per thread name
    steal_pct: float


def throughput(
    servers: list[Server], rounds: int, seconds: int, connections: int, work: Path
) -> dict[str, list[Round]]:
    def one(server: Server, secs: float, tag: str) -> Round:
        spec = LoadSpec(server.port, server.path, server.headers, server.body, connections, secs)
        t0, s0, c0, w0 = thread_cpu(server.proc), procs.steal_seconds(), core_busy(SERVER_CORE), time.monotonic()
        res = load.run(spec, tool="wrk", cores=CLIENT_CORE, watch=[server.proc], work=work, tag=tag)
        t1, s1, wall = thread_cpu(server.proc), procs.steal_seconds(), time.monotonic() - w0
        others = 100 * (core_busy(SERVER_CORE) - c0 - (sum(t1.values()) - sum(t0.values()))) / wall
        if res.errors:
            raise RuntimeError(f"{server.name}: {res.errors} errors ({res.errors_status} non-2xx)")
        n = max(1, res.requests)
        threads = {k: 1e6 * (v - t0.get(k, 0.0)) / n for k, v in t1.items() if v - t0.get(k, 0.0) > 0}
        steal = 100 * (s1 - s0) / (wall * (os.cpu_count() or 1))
        cpu = res.cpu_s[server.proc.name]
        busy, wrk = 100 * cpu / res.duration_s, 100 * res.cpu_s["loadgen"] / res.duration_s
        return Round(1e6 * cpu / n, res.rps, res.p50_ms, busy, wrk, max(0.0, others), threads, steal)

    for s in servers:  # warm-up: the first requests import and compile what they use
        one(s, 2, f"warm-{s.name}")
    out: dict[str, list[Round]] = {s.name: [] for s in servers}
    for r in range(rounds):
        for s in servers[r % len(servers) :] + servers[: r % len(servers)]:
            got = one(s, seconds, f"{s.name}-{r}")
            out[s.name].append(got)
            top = sorted(got.threads.items(), key=lambda kv: -kv[1])[:3]
            split = " ".join(f"{k}={v:.0f}" for k, v in top)
            print(f"round {r} {s.name:26s} {got.us:6.1f} us/req {got.rps:7.0f} req/s  p50 {got.p50_ms:.2f} ms  "
                  f"busy {got.busy_pct:3.0f}% others {got.others_pct:3.0f}% wrk {got.wrk_pct:3.0f}% "
                  f"steal {got.steal_pct:4.1f}%  [{split}]",
                  flush=True)  # fmt: skip
    return out


def throughput_table(results: dict[str, list[Round]]) -> str:
    lines = [
        "| server | CPU us/request, median | min-max | CPU ratio to first, median (min-max) | req/s, median | "
        "min-max | server core busy (others) | us/request by thread (median) |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    base = next(iter(results.values()))  # the first server: each round's ratio to it cancels the host's drift
    for name, rows in results.items():
        us, rps = [r.us for r in rows], [r.rps for r in rows]
        ratio = [r.us / b.us for r, b in zip(rows, base, strict=True)]
        names = {k for r in rows for k in r.threads}
        by_thread = {k: statistics.median(r.threads.get(k, 0.0) for r in rows) for k in names}
        split = ", ".join(f"{k} {v:.0f}" for k, v in sorted(by_thread.items(), key=lambda kv: -kv[1]) if v >= 0.5)
        lines.append(f"| {name} | {statistics.median(us):.1f} | {min(us):.1f}-{max(us):.1f} | "
                     f"{statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f}) | "
                     f"{statistics.median(rps):,.0f} | {min(rps):,.0f}-{max(rps):,.0f} | "
                     f"{statistics.median(r.busy_pct for r in rows):.0f}% "
                     f"({statistics.median(r.others_pct for r in rows):.0f}%) | {split} |")  # fmt: skip
    return "\n".join(lines)


# -- latency, one request in flight ---------------------------------------------------------------------


async def latency(servers: list[Server], requests: int, blocks: int, warmup: int) -> dict[str, list[float]]:
    conns = {s.name: LeanConnection(HOST, s.port) for s in servers}
    raw = {s.name: build_request(HOST, s.port, s.path, s.body, s.headers) for s in servers}
    times: dict[str, list[float]] = {s.name: [] for s in servers}

    async def run(s: Server, n: int, keep: bool) -> None:
        conn, req = conns[s.name], raw[s.name]
        for _ in range(n):
            t = await conn.request(req)
            if t.status != 200 or not t.body:
                raise RuntimeError(f"{s.name}: HTTP {t.status} {t.body[:300]!r}")
            if keep:
                times[s.name].append(t.total_ns / 1e6)

    try:
        for s in servers:
            await run(s, warmup, False)
        gc.collect()
        gc.disable()  # a collection in the client would land on one server's figures
        per_block = requests // blocks
        for b in range(blocks):
            for s in servers[b % len(servers) :] + servers[: b % len(servers)]:
                await run(s, per_block, True)
            gc.collect()
    finally:
        gc.enable()
        for conn in conns.values():
            await conn.close()
    return times


def latency_table(times: dict[str, list[float]]) -> str:
    """p50/p90/p99 per server; for the real app's servers also p50 minus the echo upstream's own p50 (what
    the gateway adds, unpaired: bench.latency pairs them)."""
    direct = pct(times["direct-echo"], 50) if "direct-echo" in times else None
    lines = ["| server | n | p50 ms | p90 ms | p99 ms | p50 - direct ms |", "|---|---:|---:|---:|---:|---:|"]
    for name, ms in times.items():
        added = f"{pct(ms, 50) - direct:.3f}" if direct is not None and name.startswith("omnirouter") else ""
        lines.append(f"| {name} | {len(ms)} | {pct(ms, 50):.3f} | {pct(ms, 90):.3f} | {pct(ms, 99):.3f} | {added} |")
    return "\n".join(lines)


# -- main -----------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    out = {p: version(p) for p in ("granian", "uvicorn", "httptools", "uvloop", "starlette")}
    return {**out, "python": sys.version.split()[0], "wrk": wrk.strip()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.servers", description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("trivial", "app", "latency"), default="trivial")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--requests", type=int, default=2000, help="latency: sequential requests per server")
    parser.add_argument("--only", default="", help="trivial/latency: these servers (comma-separated)")
    parser.add_argument("--serve", choices=("ours", "plain", "app-plain"), help=argparse.SUPPRESS)  # a uvicorn child
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve_uvicorn(args.serve, args.port)
        return 0
    if not load.wrk_path() or importlib.util.find_spec("granian") is None:
        print("bench.servers needs wrk (apt-get install -y wrk) and granian (pip install granian)", file=sys.stderr)
        return 2
    procs.install_cleanup()
    os.sched_setaffinity(0, {int(CLIENT_CORE)})
    work = Path(tempfile.mkdtemp(prefix="bench-servers-"))
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}  {' '.join(sys.argv)}\n{versions()}\nlogs: {work}", flush=True)
    default = {"trivial": TRIVIAL, "latency": ["uvicorn-ours", "uvicorn-httptools", "granian-asgi",
                                                "granian-asgi-st", "granian-rsgi"]}  # fmt: skip
    try:
        if args.part in ("trivial", "latency"):
            names = args.only.split(",") if args.only else default[args.part]
            servers = [start_trivial(name, work) for name in names]
            for s in servers:
                check_trivial(s)
        if args.part == "app" or (args.part == "latency" and not args.only):
            apps, echo = start_apps(work)
            for s in apps:
                for line in check_app(s):
                    print(f"check {s.name}: {line}", flush=True)
            direct = Server(
                "direct-echo",
                echo.proc,
                echo.port,
                "/v1/chat/completions",
                {**BODIES["chat"][1], "model": UPSTREAM_MODEL},
            )
            servers = apps if args.part == "app" else [*servers, direct, *apps]
        if args.part == "latency":
            factory = __import__("uvloop").new_event_loop
            with asyncio.Runner(loop_factory=factory) as runner:
                times = runner.run(latency(servers, args.requests, blocks=10, warmup=200))
            print(f"\none request in flight, keep-alive, {args.requests} per server in 10 alternating blocks\n")
            print(latency_table(times))
        else:
            results = throughput(servers, args.rounds, args.seconds, args.connections, work)
            print(f"\n{args.rounds} rounds x {args.seconds} s, wrk -c{args.connections}, medians\n")
            print(throughput_table(results))
            (work / "results.json").write_text(json.dumps({k: [r.__dict__ for r in v] for k, v in results.items()}))
    finally:
        procs.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
