"""The whole benchmark in one run: start, measure, stop, write results. See bench/README.md."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import latency, load, memory, plot, procs, report, streams, targets
from bench.load import LoadSpec
from bench.targets import Target, Upstream

BENCH_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Plan:
    """How much of everything. The full plan takes 10-20 minutes; the quick one seconds."""

    warmup: int = 200  # latency pairs (of each kind) before measuring
    rounds: int = 10
    per_round: int = 100
    connections: int = 32
    throughput_warm_s: float = 3.0
    throughput_s: float = 15.0
    mem_requests: int = 200_000
    mem_cap_s: float = 400.0  # per target: LiteLLM cannot serve 200k requests in reasonable time
    # wrk runs whole seconds, too coarse for a few hundred requests: the quick run uses the fallback
    # generator here (exact counts), which also keeps that code path exercised where wrk is installed.
    mem_loadgen: str | None = None
    stream_levels: list[int] = field(
        default_factory=lambda: [100, 500, 1000, 2000, 3000, 4000, 5000, 6000, 8000, 10000]
    )
    stream_chunks: int = 100  # 10 s streams: long enough for a plateau with every stream open
    stream_delay: float = 0.1
    # Figure 4b: many streams open at a slow pace (a chunk a second: 10,000 streams are 10,000 chunks
    # a second, which one core relays, where 10,000 at figure 4's pace are 100,000), for how many a
    # worker holds open and the memory each takes. 40 s streams: the ramp (at 500 a second) of 10,000
    # is half of one, and the plateau the other half.
    open_levels: list[int] = field(default_factory=lambda: [1000, 5000, 10000])
    open_chunks: int = 41
    open_delay: float = 1.0
    settle_s: float = 1.0


QUICK = Plan(
    warmup=5,
    rounds=2,
    per_round=5,
    throughput_warm_s=0,
    throughput_s=1,
    mem_requests=1000,
    mem_cap_s=10,
    stream_levels=[10, 40],
    stream_chunks=10,
    stream_delay=0.05,
    open_levels=[20],
    open_chunks=31,
    open_delay=0.1,
    settle_s=0.2,
    mem_loadgen="python",
)


@dataclass(frozen=True)
class Placement:
    upstream: str  # the fake upstreams; also the load generator and clients when a gateway is measured
    gateway: str  # the gateway under test; also the load generator when the upstream itself is measured
    both: str


def placement() -> tuple[Placement, str]:
    if (os.cpu_count() or 1) >= 2 and procs.have_taskset():
        return Placement("0", "1", "0,1"), "upstream and load generator on core 0, gateway on core 1"
    return Placement("0", "0", "0"), "fewer than 2 cores or no taskset: everything shares core 0"


# A fixed pure-Python workload, timed on each core: machines (and one machine from hour to hour, when
# its host is shared) differ several-fold, and every figure moves with it.
SPEED_PROBE = """
import time
best = 1e9
for _ in range(7):
    t = time.perf_counter()
    sum(range(10**6))
    best = min(best, time.perf_counter() - t)
print(best * 1e3)
"""


def cpu_speed(cores: str) -> dict[str, float | None]:
    """Milliseconds for sum(range(10**6)) (best of 7) on each core: lower is faster."""
    out: dict[str, float | None] = {}
    for core in cores.split(","):
        argv = [sys.executable, "-c", SPEED_PROBE]
        if procs.have_taskset():
            argv = ["taskset", "-c", core, *argv]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=procs.clean_env())
            out[f"core{core}"] = round(float(done.stdout.strip()), 1)
        except (OSError, ValueError, subprocess.SubprocessError):
            out[f"core{core}"] = None
    return out


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
    commit = ""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        commit = subprocess.run(
            ["git", "-C", str(BENCH_DIR.parent), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip()
    wrk = load.wrk_path()
    wrk_version = ""
    if wrk:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    return {
        "cpu_model": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "omnirouter_version": metadata.version("omnirouter"),
        "omnirouter_commit": commit,
        "wrk": wrk_version,
        # Other work on the machine skews every figure: say how busy it was.
        "loadavg_start": list(os.getloadavg()),
    }


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.plan = QUICK if args.quick else Plan()
        self.place, where = placement()
        want_wrk = args.loadgen in ("auto", "wrk")
        self.tool = "wrk" if want_wrk and load.wrk_path() else "python"
        self.work = Path(tempfile.mkdtemp(prefix="omnirouter-bench-"))
        self.open_ref: list[str] = []  # figure 4b's reference stream, fetched when the upstreams are up
        self.results: dict[str, Any] = {
            "meta": {
                **machine(),
                "mode": "quick" if args.quick else "full",
                "plan": asdict(self.plan),
                "placement": where,
                "loadgen": self.tool,
                "litellm_version": None,
                "cpu_speed_ms_start": cpu_speed(self.place.both),
                "notes": [],
            },
            "targets": {},
            "figures": {name: {} for name in report.FIGURES},
            "steal_pct": {},  # per figure/target: % of all cores' time the host took (a noisy host)
            "errors": {},
        }
        if self.tool == "python":
            why = "wrk is not installed (apt-get install wrk)" if want_wrk else "--loadgen python"
            self.note(f"load generator: bench.loadgen (aiohttp) because {why}; it may be the limit")

    def note(self, text: str) -> None:
        self.results["meta"]["notes"].append(text)
        _log(text)

    def guard(self, figure: str, target: str, fn: Callable[[], Any]) -> Any:
        """Run one figure for one target; a failure is recorded and the run goes on."""
        steal, wall = procs.steal_seconds(), time.monotonic()
        try:
            value = fn()
        except Exception as exc:
            self.results["errors"][f"{figure}/{target}"] = f"{type(exc).__name__}: {exc}"[:2000]
            _log(f"{figure}/{target} FAILED: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            return None
        finally:
            took = (time.monotonic() - wall) * (os.cpu_count() or 1)
            stolen = procs.steal_seconds() - steal
            self.results["steal_pct"][f"{figure}/{target}"] = round(100 * stolen / took, 2) if took else 0.0
        self.results["figures"][figure][target] = value
        return value

    # -- figures ------------------------------------------------------------------------------------

    def _spec(self, t: Target, duration: float) -> LoadSpec:
        body = {"model": t.model, "messages": [{"role": "user", "content": "hi"}]}
        return LoadSpec(t.port, t.path, t.headers, body, self.plan.connections, duration)

    def throughput(self, t: Target, gen_cores: str, watch: list[procs.Proc], tag: str) -> dict[str, Any]:
        if self.plan.throughput_warm_s:
            load.run(
                self._spec(t, self.plan.throughput_warm_s),
                tool=self.tool,
                cores=gen_cores,
                watch=watch,
                work=self.work,
                tag=f"{tag}-warm",
            )
        r = load.run(
            self._spec(t, self.plan.throughput_s), tool=self.tool, cores=gen_cores, watch=watch, work=self.work, tag=tag
        )
        out = r.as_dict()
        out["peak_rss_mb"] = {k: memory.mb(v) for k, v in r.peak_rss_kb.items()}
        _log(
            f"{tag}: {out['rps']} req/s, p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms, errors {out['errors']}, "
            f"cpu% {out['cpu_pct']}"
        )
        return out

    def bench_target(self, t: Target, upstream: Target, echo: Upstream, paced: Upstream, ref: list[str]) -> None:
        plan = self.plan
        is_direct = t.name == "direct"
        # The generator and clients run on the core the measured process does not use.
        gen_cores = self.place.gateway if is_direct else self.place.upstream
        time.sleep(plan.settle_s)
        idle_kb = t.proc.rss_kb()
        if not is_direct:
            _log(f"{t.name}: latency")
            lat = self.guard(
                "latency",
                t.name,
                lambda: asyncio.run(
                    latency.measure(t, upstream, warmup=plan.warmup, rounds=plan.rounds, per_round=plan.per_round)
                ),
            )
            if lat:
                a = lat["added_ms"]
                _log(
                    f"{t.name}: added non-stream p50 {a['nonstream']['p50']} ms p99 {a['nonstream']['p99']} ms; "
                    f"ttfb p50 {a['ttfb']['p50']} p99 {a['ttfb']['p99']}; per chunk {lat['per_chunk_added_us']} us"
                )
        watch = [t.proc] if is_direct else [t.proc, echo.proc]
        _log(f"{t.name}: throughput ({self.tool}, {plan.connections} connections)")
        tp = self.guard("throughput", t.name, lambda: self.throughput(t, gen_cores, watch, f"throughput-{t.name}"))
        _log(f"{t.name}: memory over {plan.mem_requests} requests")
        load_kb = int(tp["peak_rss_mb"][t.proc.name] * 1024) if tp else 0
        mem = self.guard(
            "memory",
            t.name,
            lambda: memory.measure(
                t.proc,
                self._spec(t, 1),
                count=plan.mem_requests,
                time_cap=plan.mem_cap_s,
                idle_kb=idle_kb,
                load_kb=load_kb,
                tool=plan.mem_loadgen or self.tool,
                cores=gen_cores,
                work=self.work,
                rps_hint=tp["rps"] if tp else 100.0,
            ),
        )
        if mem:
            _log(
                f"{t.name}: rss idle {mem['idle_mb']} MB, load {mem['load_mb']} MB, after {mem['requests_half']} "
                f"{mem['rss_half_mb']} MB, after {mem['requests_total']} {mem['rss_full_mb']} MB"
            )
        stream_watch = [t.stream_proc or t.proc] if is_direct else [t.proc, paced.proc]
        self.bench_streams(t, gen_cores, stream_watch, ref)

    def bench_streams(
        self, t: Target, gen_cores: str, watch: list[procs.Proc], ref: list[str], figure: str = "streams"
    ) -> None:
        """Figure 4 (`streams`: the upstream's own pace), or 4b (`open_streams`: the plan's slow pace)."""
        plan = self.plan
        slow = figure == "open_streams"
        levels, capped = streams.fd_capped(plan.open_levels if slow else plan.stream_levels)
        if capped and capped not in self.results["meta"]["notes"]:
            self.note(capped)
        pace = (plan.open_chunks, plan.open_delay) if slow else None
        _log(f"{t.name}: {'open' if slow else 'concurrent'} streams {levels}")
        st = self.guard(
            figure,
            t.name,
            lambda: streams.measure(
                t,
                levels,
                ref=ref,
                delay=plan.open_delay if slow else plan.stream_delay,
                cores=gen_cores,
                watch=watch,
                work=self.work,
                settle=plan.settle_s,
                pace=pace,
            ),
        )
        if st:
            for lv in st["levels"]:
                _log(
                    f"{t.name}: {lv['streams']} streams: ok {lv['ok']}, passed {lv['passed']}, "
                    f"plateau gap p50/p99 {lv['plateau_gap_ms']['p50']}/{lv['plateau_gap_ms']['p99']} ms, "
                    f"stream p99 {lv['duration_s']['p99']} s, errors {lv['error_kinds']}, cpu% {lv['cpu_pct']}, "
                    f"plateau {lv['plateau']['cpu_us_per_chunk']} us/chunk, {lv['rss_per_stream_kb']} KB/stream"
                )

    def bench_open_streams(self, echo: Upstream, paced: Upstream) -> None:
        """Figure 4b on a fresh worker: one that has run figure 4 keeps much of what its streams
        took (the allocator holds on to it), which the ladder would reuse and not count."""
        _log("omnirouter: starting a fresh worker for figure 4b")
        try:
            gw = targets.start_omnirouter("omnirouter-open", self.place.gateway, 1, echo, paced, self.work)
        except Exception as exc:
            self.results["errors"]["start/omnirouter-open"] = f"{type(exc).__name__}: {exc}"[:2000]
            _log(f"omnirouter (figure 4b): failed to start: {exc}")
            return
        gw.name = "omnirouter"  # the figure's column
        try:
            time.sleep(self.plan.settle_s)
            self.bench_streams(gw, self.place.upstream, [gw.proc, paced.proc], self.open_ref, figure="open_streams")
        finally:
            gw.proc.stop()

    def bench_relay_floor(self, paced: Upstream, ref: list[str]) -> None:
        """Figures 4 and 4b's floor: the same ladders through a bare byte relay on the gateway's core
        (a fresh one for each, as for omnirouter)."""
        for figure, stream_ref in (("streams", ref), ("open_streams", self.open_ref)):
            relay = targets.start_relay(self.place.gateway, paced, self.work)
            try:
                self.bench_streams(relay, self.place.upstream, [relay.proc, paced.proc], stream_ref, figure=figure)
            finally:
                relay.proc.stop()

    def bench_workers(self, echo: Upstream, paced: Upstream) -> dict[str, Any]:
        """Figure 5. One worker has core 1 to itself (as in figure 2); two workers may use both cores,
        which they share with the upstream and the load generator (pinned to core 0 in both runs)."""
        out: dict[str, Any] = {}
        for workers, cores in ((1, self.place.gateway), (2, self.place.both)):
            name = f"omnirouter-{workers}w"
            gw = targets.start_omnirouter(name, cores, workers, echo, paced, self.work)
            try:
                time.sleep(self.plan.settle_s)
                before = {pid: procs.cpu_seconds(pid) for pid in gw.proc.tree()}
                out[f"workers_{workers}"] = self.throughput(gw, self.place.upstream, [gw.proc, echo.proc], name)
                # Per process: shows whether connections spread over the workers or one took them all.
                spent = sorted((procs.cpu_seconds(pid) - cpu for pid, cpu in before.items()), reverse=True)
                out[f"workers_{workers}"]["cpu_s_per_process"] = [round(s, 2) for s in spent]
            finally:
                gw.proc.stop()
        one, two = out["workers_1"], out["workers_2"]
        out["rps_1"], out["rps_2"] = one["rps"], two["rps"]
        out["ratio"] = round(two["rps"] / one["rps"], 3) if one["rps"] else 0.0
        # The most two cores could give if every process's CPU per request stayed as with one worker.
        per_req = sum(one["cpu_us_per_request"].values())
        ceiling = 2e6 / per_req if per_req else 0.0
        out["ceiling_rps_this_machine"] = round(ceiling, 1)
        out["ceiling_ratio_this_machine"] = round(ceiling / one["rps"], 3) if one["rps"] else 0.0
        out["placement"] = "1 worker: core 1; 2 workers: cores 0-1; upstream and wrk: core 0"
        _log(
            f"workers: 1 -> {out['rps_1']} req/s, 2 -> {out['rps_2']} req/s, ratio {out['ratio']} "
            f"(ceiling on this machine {out['ceiling_ratio_this_machine']})"
        )
        return out

    # -- the run ------------------------------------------------------------------------------------

    def litellm(self) -> Path | None:
        if self.args.no_litellm or self.args.quick:
            reason = "--no-litellm" if self.args.no_litellm else "--quick skips LiteLLM"
            self.results["targets"]["litellm"] = {"status": "skipped", "reason": reason}
            return None
        _log("LiteLLM: installing or reusing bench/.venv-litellm")
        try:
            exe, version = targets.ensure_litellm(BENCH_DIR / ".venv-litellm", self.work)
        except Exception as exc:
            self.results["targets"]["litellm"] = {"status": "skipped", "reason": f"install failed: {exc}"[:2000]}
            self.note(f"LiteLLM skipped: install failed: {str(exc)[:300]}")
            return None
        self.results["meta"]["litellm_version"] = version
        return exe

    def run(self) -> None:
        plan, place = self.plan, self.place
        litellm_exe = self.litellm()
        _log(f"mode {self.results['meta']['mode']}, load generator {self.tool}, {self.results['meta']['placement']}")
        echo = targets.start_upstream("upstream", place.upstream, self.work)
        paced = targets.start_upstream(
            "upstream-paced", place.upstream, self.work, chunks=plan.stream_chunks, delay=plan.stream_delay
        )
        upstream = targets.direct(echo, paced)
        ref = streams.fetch_reference(upstream)
        self.open_ref = streams.fetch_reference(upstream, (plan.open_chunks, plan.open_delay))
        self.results["targets"]["direct"] = {"status": "ok"}
        self.bench_target(upstream, upstream, echo, paced, ref)

        starters: list[tuple[str, Callable[[], Target]]] = [
            ("omnirouter", lambda: targets.start_omnirouter("omnirouter", place.gateway, 1, echo, paced, self.work))
        ]
        if litellm_exe is not None:
            exe = litellm_exe
            starters.append(("litellm", lambda: targets.start_litellm(exe, place.gateway, echo, paced, self.work)))
        for name, start in starters:
            _log(f"{name}: starting")
            try:
                gw = start()
            except Exception as exc:
                self.results["targets"][name] = {"status": "failed", "reason": str(exc)[:2000]}
                self.results["errors"][f"start/{name}"] = str(exc)[:2000]
                _log(f"{name}: failed to start: {exc}")
                continue
            self.results["targets"][name] = {"status": "ok"}
            try:
                self.bench_target(gw, upstream, echo, paced, ref)
            finally:
                gw.proc.stop()
            if name == "omnirouter":
                self.bench_open_streams(echo, paced)
        _log("byte relay: starting")
        try:
            self.bench_relay_floor(paced, ref)
        except Exception as exc:  # it failed to start: the run goes on
            self.results["errors"]["start/byte-relay"] = f"{type(exc).__name__}: {exc}"[:2000]
            _log(f"byte relay: failed to start: {exc}")
        _log("workers: omnirouter --workers 1 vs 2")
        self.guard("workers", "omnirouter", lambda: self.bench_workers(echo, paced))

    def finish(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        logs = out / "logs"
        shutil.rmtree(logs, ignore_errors=True)
        logs.mkdir()
        for f in self.work.glob("*.log"):
            if not f.name.startswith(("load-", "streams-")) or self.results["errors"]:
                shutil.copy(f, logs / f.name)
        shutil.rmtree(self.work, ignore_errors=True)
        self.results["meta"]["loadavg_end"] = list(os.getloadavg())
        self.results["meta"]["cpu_speed_ms_end"] = cpu_speed(self.place.both)
        report.write(self.results, out)
        written = [out / name for name in ("results.json", "results.md", "latency.png") if (out / name).exists()]
        _log(f"wrote {', '.join(map(str, written))}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description="Omnirouter vs direct vs LiteLLM.")
    parser.add_argument("--quick", action="store_true", help="seconds-long smoke run (no LiteLLM)")
    parser.add_argument("--no-litellm", action="store_true", help="skip LiteLLM")
    parser.add_argument("--out", default=str(BENCH_DIR / "results"), help="output directory [bench/results]")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="load generator: wrk when installed (auto), or the aiohttp fallback",
    )
    args = parser.parse_args(argv)
    if not args.quick and (why := plot.missing()):
        # Refuse at once rather than after 20 minutes: a full run's figures come with their plot.
        print(f"python -m bench: {why}; a full run draws latency.png with it.", file=sys.stderr)
        return 2
    procs.install_cleanup()
    procs.raise_nofile()
    if (os.cpu_count() or 1) >= 2:
        # The orchestrator (and the latency client inside it) stays off the gateway's core.
        os.sched_setaffinity(0, {0})
    run = Run(args)
    interrupted = False
    try:
        run.run()
    except KeyboardInterrupt:
        interrupted = True
        run.results["errors"]["run"] = "interrupted"
    except Exception as exc:
        run.results["errors"]["run"] = f"{type(exc).__name__}: {exc}"[:2000]
        traceback.print_exc()
    finally:
        procs.stop_all()
        run.finish(Path(args.out))
    if interrupted:
        return 130
    return 1 if run.results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
