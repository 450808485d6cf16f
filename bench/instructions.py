"""Instructions per request in the gateway: this tree against an earlier commit, or per format pair.

Seconds on a noisy 2-core machine move by 20% from run to run; instruction counts under
`valgrind --tool=callgrind` repeat to within half a percent. The gateway (`omnirouter serve`, one
worker, SQLite, the echo upstream) runs under callgrind with instrumentation off; after a warm-up a
window `callgrind_control -i on` ... `off` covers N sequential requests, is dumped, and its total is
divided by N.

    .venv/bin/python -m bench.instructions                    # chat: this tree against HEAD
    .venv/bin/python -m bench.instructions --baseline REV -n 1000
    .venv/bin/python -m bench.instructions --pairs chat:openai,messages:openai,responses:openai,chat:anthropic

`--baseline REV` (the default mode): non-streamed chat completions, the tree at REV (a temporary git
worktree) against this one. `--key-limit USD` gives the key a limit (one that never binds), so that its
budget is checked and counted on the path (issue 14: a worker's lease of it).

`--pairs FORMAT:API,...`: this tree only, one gateway, what each pair of client format (`chat`,
`messages`, `responses`) and upstream API (`openai`, `anthropic`) costs. bench.echo answers both
wires (`/chat/completions` as OpenAI, `/messages` as Anthropic), so the pairs differ only in the
gateway's translation. Every pair sends the same conversation in its format (BODY for chat, BODIES
for all). Three windows per pair:
- per request: the non-streamed BODY conversation;
- per streamed request: a stream of 1 content chunk (a longer user message, `max_tokens` 1);
- per chunk: the same request with `max_tokens` 1 + STREAM_CHUNKS, so the two streams differ only
  in their number of content chunks: (I(long) - I(short)) / STREAM_CHUNKS, and the per-request cost
  cancels out. Under callgrind the gateway is ~50x slower than the echo, so it reads several events
  per read and writes them in one write: this is the per-chunk cost of batched reads (as figure 1's).
Every window runs `--rounds` times (all windows once, then again) and the least total is kept: a
garbage collection of the old generations lands in one window of one round. Beside the counts, the
same windows run against the same gateway without valgrind, and its CPU time (all threads: /proc's
schedstat) gives CPU microseconds (user and kernel) per request and per chunk. The instructions over
all windows divided by their user CPU time (clock ticks) is this machine's rate, by which every count
is also given in microseconds of user CPU ("est. us"); kernel time (the socket calls) is not in the
counts, so the estimate is below the CPU time per request and near it per chunk (several chunks go in
one read and one write). The CPU times are as noisy as the machine; the counts are the figure.

By default the batched flush is moved out of the windows (`flush_interval` 3600 s): under callgrind a
request takes ~50x longer, so a flush would be shared by a handful of requests instead of hundreds and
would dominate the figure (at 100 s, the earlier default, flushes landed in the windows of a run of
pairs, which lasts ~10 minutes). `--flush-interval 0.25` counts it as a slow machine would.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.procs import CLK_TCK, clean_env, free_port
from bench.targets import MODEL, PRICING, UPSTREAM_MODEL, start_upstream

ROOT = Path(__file__).resolve().parent.parent
TEXT = "hello there, how are you today?"
BODY = {"model": MODEL, "messages": [{"role": "user", "content": TEXT}], "max_tokens": 16}
CLAUDE_MODEL = "bench/claude"  # served by an `api: anthropic` provider (the echo's Messages wire)
STREAM_TEXT = " ".join(["a"] * 80)  # the echo answers "Echo:" and one chunk per word
STREAM_CHUNKS = 64  # content chunks the long stream has beyond the short one's 1

PATHS = {"chat": "/chat/completions", "messages": "/messages", "responses": "/responses"}
MODELS = {"openai": MODEL, "anthropic": CLAUDE_MODEL}
ENDS = {"chat": b"data: [DONE]", "messages": b"event: message_stop", "responses": b"data: [DONE]"}
KINDS = ("request", "stream_1", "stream_n")
DEFAULT_PAIRS = "chat:openai,messages:openai,responses:openai,chat:anthropic"


def body_of(fmt: str, model: str, text: str, max_tokens: int, stream: bool = False) -> dict[str, Any]:
    """One user message in client format `fmt`."""
    if fmt == "chat":
        body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": text}]}
        body["max_tokens"] = max_tokens
    elif fmt == "messages":
        body = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": text}]}
    else:
        body = {"model": model, "input": [{"role": "user", "content": text}], "max_output_tokens": max_tokens}
    return {**body, "stream": True} if stream else body


def bodies(fmt: str, api: str) -> dict[str, dict[str, Any]]:
    """What each window of a pair sends."""
    model = MODELS[api]
    return {
        "request": body_of(fmt, model, TEXT, 16),
        "stream_1": body_of(fmt, model, STREAM_TEXT, 1, stream=True),
        "stream_n": body_of(fmt, model, STREAM_TEXT, 1 + STREAM_CHUNKS, stream=True),
    }


def _config(upstream: str, anthropic: bool) -> dict[str, Any]:
    providers = [{"slug": "bench", "name": "Bench", "api": "openai", "base_url": upstream}]
    models = [{"id": MODEL, "endpoints": [{"provider": "bench", "upstream_model": UPSTREAM_MODEL, "pricing": PRICING}]}]
    if anthropic:  # only trees that know `api: anthropic` get it (not a baseline from before issue 12)
        providers.append({"slug": "bench-anthropic", "name": "Bench Anthropic", "api": "anthropic",
                          "base_url": upstream, "api_key": "sk-ant-bench"})  # fmt: skip
        endpoint = {"provider": "bench-anthropic", "upstream_model": UPSTREAM_MODEL, "pricing": PRICING}
        models.append({"id": CLAUDE_MODEL, "endpoints": [endpoint]})
    return {"providers": providers, "models": models}


def _cpu_ns(pid: int) -> tuple[int, int]:
    """CPU time of every thread of `pid`, and the user-space part of it, in nanoseconds (schedstat's
    first field is exact; user time only comes in clock ticks)."""
    total = user = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
            user += int((task / "stat").read_text().rpartition(")")[2].split()[11]) * 1_000_000_000 // CLK_TCK
    return total, user


class Served:
    """`omnirouter serve` of source tree `src`, under callgrind (instrumentation off) or natively."""

    def __init__(self, src: Path, upstream: str, work: Path, flush_interval: float, *, anthropic: bool,
                 callgrind: bool, key_limit: float | None = None) -> None:  # fmt: skip
        work.mkdir(parents=True, exist_ok=True)
        config = work / "config.yaml"
        config.write_text(yaml.safe_dump(_config(upstream, anthropic)))
        self.work, self.callgrind, self.dumps = work, callgrind, 0
        management, port = "sk-or-v1-" + secrets.token_hex(32), free_port()
        env = clean_env(PYTHONPATH=str(src), OMNIROUTER_DATA_DIR=str(work / "data"),
                        OMNIROUTER_MANAGEMENT_KEY=management, OMNIROUTER_LOG_LEVEL="warning",
                        OMNIROUTER_FLUSH_INTERVAL=str(flush_interval))  # fmt: skip
        argv = [sys.executable, "-m", "omnirouter", "serve", "--config", str(config), "--port", str(port)]
        if callgrind:
            out = work / "callgrind.out"
            argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", *argv]
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            api = f"http://127.0.0.1:{port}/api/v1"
            self._wait_up(api)
            admin = {"Authorization": f"Bearer {management}"}
            fields = {"name": "bench"} if key_limit is None else {"name": "bench", "limit": key_limit}
            key = httpx.post(api + "/keys", json=fields, headers=admin, timeout=60).json()["key"]
            self.client = httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        except BaseException:
            self.close()
            raise

    def _wait_up(self, api: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(api + "/models", timeout=5)
                return
            except httpx.TransportError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the gateway did not start") from None
                time.sleep(0.5)

    def send(self, path: str, body: dict[str, Any], end: bytes, times: int) -> None:
        """`times` requests; a stream must hold `end`, its format's last event."""
        for _ in range(times):
            resp = self.client.post(path, json=body)
            if resp.status_code != 200 or (body.get("stream") and end not in resp.content):
                raise RuntimeError(f"{path}: HTTP {resp.status_code}: {resp.content[-300:]!r}")

    def _control(self, *args: str) -> None:
        subprocess.run(["callgrind_control", *args, str(self.proc.pid)], check=True, capture_output=True)

    def window(self, path: str, body: dict[str, Any], end: bytes, requests: int, label: str = "") -> dict[str, float]:
        """Instructions (under callgrind), or CPU and user CPU nanoseconds (natively), for `requests` requests."""
        if not self.callgrind:
            cpu, user = _cpu_ns(self.proc.pid)
            self.send(path, body, end, requests)
            cpu_after, user_after = _cpu_ns(self.proc.pid)
            return {"cpu": float(cpu_after - cpu), "user": float(user_after - user)}
        self._control("-i", "on")
        self.send(path, body, end, requests)
        self._control("-i", "off")
        # Synchronous: callgrind.out.N is written when it returns, and the counters are zeroed.
        self._control(f"--dump={label or path}")
        self.dumps += 1
        dump = self.work / f"callgrind.out.{self.dumps}"
        totals = [line for line in dump.read_text(errors="replace").splitlines() if line.startswith("totals:")]
        return {"instructions": float(totals[0].split()[1])}

    def close(self) -> None:
        if hasattr(self, "client"):
            self.client.close()
        self.proc.terminate()
        self.proc.wait(timeout=300)


def compare_with(
    baseline_rev: str, requests: int, flush_interval: float, warmup: int, key_limit: float | None = None
) -> None:
    """Non-streamed chat: instructions per request at `baseline_rev` and in this tree (with `key_limit`,
    for a key with a limit in USD: its budget checked and counted on the path)."""
    figures = {}
    with tempfile.TemporaryDirectory(prefix="omnirouter-instr-") as tmp:
        work = Path(tmp)
        baseline = work / "baseline-tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(baseline), baseline_rev],
                       check=True)  # fmt: skip
        echo = start_upstream("echo", "0", work)
        try:
            for name, src in (("baseline", baseline / "src"), ("this tree", ROOT / "src")):
                served = Served(src, echo.base_url, work / name, flush_interval, anthropic=False, callgrind=True,
                                key_limit=key_limit)  # fmt: skip
                try:
                    served.send(PATHS["chat"], BODY, ENDS["chat"], warmup)  # imports, first connections, caches
                    figures[name] = served.window(PATHS["chat"], BODY, ENDS["chat"], requests)["instructions"]
                finally:
                    served.close()
        finally:
            echo.proc.stop()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)], check=False)
    label = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", baseline_rev],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    base = figures["baseline"] / requests
    for name, total in figures.items():
        title = f"baseline ({label})" if name == "baseline" else name
        print(f"{title:24} {total / requests:12,.0f} instructions per request")
    print(f"{'ratio':24} {figures['this tree'] / requests / base:12.3f}")


Totals = dict[str, dict[str, dict[str, float]]]  # pair -> window kind -> metric -> total over the window


def measure_pairs(pairs: list[tuple[str, str]], served: Served, requests: int, warmup: int, rounds: int) -> Totals:
    """Each metric's total per window, the least over `rounds` rounds of every window (a window that a
    garbage collection or the host's noise landed in is not the figure)."""
    plans = {f"{fmt}:{api}": (PATHS[fmt], ENDS[fmt], bodies(fmt, api)) for fmt, api in pairs}
    for path, end, sent in plans.values():  # every pair warmed before any window: imports, caches
        for body in sent.values():
            served.send(path, body, end, warmup)
    out: Totals = {}
    for _ in range(rounds):
        for name, (path, end, sent) in plans.items():
            for kind in KINDS:
                got = served.window(path, sent[kind], end, requests, f"{name}/{kind}")
                seen = out.setdefault(name, {}).setdefault(kind, got)
                for metric, value in got.items():
                    seen[metric] = min(seen[metric], value)
    return out


def per(totals: Totals, name: str, metric: str, requests: int) -> tuple[float, float, float]:
    """Per non-streamed request, per streamed request (1 content chunk), per content chunk."""
    request, short, long = (totals[name][kind][metric] / requests for kind in KINDS)
    return request, short, (long - short) / STREAM_CHUNKS


def run_pairs(
    pairs: list[tuple[str, str]],
    requests: int,
    native_requests: int,
    flush_interval: float,
    warmup: int,
    rounds: int,
    keep: Path | None,
) -> None:
    with tempfile.TemporaryDirectory(prefix="omnirouter-pairs-") as tmp:
        work = keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        echo = start_upstream("echo", "0", work)
        try:
            figures: dict[str, Totals] = {}
            for mode, n, first in (("callgrind", requests, warmup // 3), ("native", native_requests, warmup)):
                served = Served(ROOT / "src", echo.base_url, work / mode, flush_interval, anthropic=True,
                                callgrind=mode == "callgrind")  # fmt: skip
                try:
                    figures[mode] = measure_pairs(pairs, served, n, first, rounds)
                finally:
                    served.close()
        finally:
            echo.proc.stop()
    report_pairs(figures["callgrind"], figures["native"], requests, native_requests, rounds)


def report_pairs(instr: Totals, native: Totals, requests: int, native_requests: int, rounds: int) -> None:
    names = list(instr)
    ref = "chat:openai" if "chat:openai" in instr else names[0]
    # This machine's instructions per microsecond of user CPU time, over every native window.
    counted = sum(instr[name][kind]["instructions"] / requests for name in names for kind in KINDS)
    user_us = sum(native[name][kind]["user"] / native_requests / 1000 for name in names for kind in KINDS)
    rate = counted / user_us
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# {when}, commit {commit}{' + uncommitted src' if dirty else ''}; per window the least of {rounds} "
          f"rounds of {requests} requests under callgrind and of {native_requests} natively; "
          f"{STREAM_CHUNKS} chunks between the two streams")  # fmt: skip
    print(f"# rate: {rate:,.0f} instructions per us of user CPU time (all windows)\n")
    print(
        "| pair | per request | x | est. us | CPU us | per streamed request | x | est. us | CPU us "
        "| per chunk | x | est. us | CPU us |"
    )
    print("|---|" + "---:|" * 12)
    base = per(instr, ref, "instructions", requests)
    for name in names:
        counts = per(instr, name, "instructions", requests)
        cpu = per(native, name, "cpu", native_requests)
        cells = []
        for mine, theirs, ns in zip(counts, base, cpu, strict=True):
            cells += [f"{mine:,.0f}", f"{mine / theirs:.2f}", f"{mine / rate:.1f}", f"{ns / 1000:.1f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


def parse_pairs(text: str) -> list[tuple[str, str]]:
    pairs = []
    for item in text.split(","):
        fmt, _, api = item.strip().partition(":")
        if fmt not in PATHS or api not in MODELS:
            raise argparse.ArgumentTypeError(f"{item!r}: a pair is FORMAT:API, FORMAT in {sorted(PATHS)}, "
                                             f"API in {sorted(MODELS)}")  # fmt: skip
        pairs.append((fmt, api))
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default=None, help="the commit to compare chat with [HEAD without --pairs]")
    parser.add_argument("--pairs", type=parse_pairs, default=None, help=f"FORMAT:API,... (e.g. {DEFAULT_PAIRS})")
    parser.add_argument("-n", "--requests", type=int, default=1000, help="requests counted per window [1000]")
    parser.add_argument("--native-requests", type=int, default=2000, help="requests per native CPU window [2000]")
    parser.add_argument("--warmup", type=int, default=300, help="requests before counting [300]")
    parser.add_argument("--rounds", type=int, default=2, help="--pairs: rounds of every window, the least kept [2]")
    keep = "--pairs: keep the callgrind dumps here (one per window, named on its `desc: Trigger` line)"
    parser.add_argument("--keep", type=Path, default=None, help=keep)
    parser.add_argument("--flush-interval", type=float, default=3600.0, help="seconds between flushes [3600]")
    limit = "--baseline: the key has this limit in USD (large enough never to bind: its budget on the path)"
    parser.add_argument("--key-limit", type=float, default=None, help=limit)
    args = parser.parse_args()
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        sys.exit("valgrind is needed: apt-get install -y valgrind")
    if args.baseline is not None or args.pairs is None:
        compare_with(args.baseline or "HEAD", args.requests, args.flush_interval, args.warmup, args.key_limit)
    if args.pairs is not None:
        if not os.path.isdir(f"/proc/{os.getpid()}/task"):
            sys.exit("--pairs reads CPU times from /proc (Linux)")
        run_pairs(
            args.pairs, args.requests, args.native_requests, args.flush_interval, args.warmup, args.rounds, args.keep
        )


if __name__ == "__main__":
    main()
