"""Figure 4: how many concurrently open streams one worker carries, ramping the count.

The paced upstream sends a chunk every `delay` seconds. The client opens the streams over a ramp of at
most half a stream's length (at OPEN_RATE a second: admitting streams is not what is measured), so all
of them are open together for a while: the plateau. A level passes when every stream delivered every
chunk in order with no error, the worker kept pace on the plateau (the 99th percentile of the gaps
between consecutive chunks was at most PACE_SLACK times `delay`), and it admitted the streams on time
(the 99th percentile of stream lengths, from the client's connect to `[DONE]`, was at most ADMIT_SLACK
over nominal). Without that last rule a worker that answers new streams late would pass levels it
never carried: the late streams open after the plateau, then keep pace. The ramp of levels stops at
the first level that fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench.leanhttp import LeanConnection, build_request, sse_contents
from bench.procs import HOST, Proc, clean_env, spawn, steal_seconds
from bench.targets import Target

PACE_SLACK = 1.5
ADMIT_SLACK = 1.0  # seconds a stream may take beyond nominal (p99), admission and set-up included
OPEN_RATE = 500.0  # streams opened per second
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
FD_SPARE = 80  # open files a gateway holds besides its streams' sockets (listener, database, log, loop)


def body(model: str, pace: tuple[int, float] | None = None) -> dict[str, Any]:
    """The streamed request; with `pace` (chunks, seconds between them) the paced upstream sends that
    instead of what it was started with (bench/paced.py)."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": f"pace {pace[0]} {pace[1]}" if pace else "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def reference(upstream: Target, pace: tuple[int, float] | None = None) -> list[str]:
    """The content chunks the paced upstream sends: what every stream must deliver, in this order."""
    conn = LeanConnection(HOST, upstream.stream_port)
    try:
        request = body(upstream.stream_model, pace)
        raw = build_request(HOST, upstream.stream_port, upstream.path, request, upstream.headers)
        t = await conn.request(raw)
    finally:
        await conn.close()
    ref = sse_contents(t.body)
    if t.status != 200 or not ref:
        raise RuntimeError(f"paced upstream: HTTP {t.status}: {t.body[:300]!r}")
    return ref


def tcp_mem_kb() -> int | None:
    """The kernel's memory for every TCP socket on the machine (/proc/net/sockstat, in pages): socket
    buffers are charged there, not to any process's RSS."""
    try:
        for line in Path("/proc/net/sockstat").read_text().splitlines():
            if line.startswith("TCP:"):
                fields = line.split()
                return int(fields[fields.index("mem") + 1]) * PAGE_KB
    except (OSError, ValueError, IndexError):
        pass
    return None


def _plateau(
    samples: list[tuple[float, float, int, int | None]], window: list[float] | None, n: int, delay: float
) -> dict[str, Any]:
    """The measured process on the plateau (every stream open, each sending a chunk every `delay`):
    its CPU per relayed chunk, its RSS and the kernel's TCP memory (medians of the samples in it)."""
    out: dict[str, Any] = {"samples": 0, "cpu_pct": None, "cpu_us_per_chunk": None, "rss_mb": None}
    out["tcp_mem_mb"] = None
    if not window:
        return out
    # Half a second off each end: the samples are 0.2 s apart and a process's CPU time moves in ticks.
    inside = [x for x in samples if window[0] + 0.5 <= x[0] <= window[1] - 0.5]
    out["samples"] = len(inside)
    if len(inside) < 3 or inside[-1][0] - inside[0][0] < 1.0:
        return out
    rate = (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])  # CPU seconds per second
    out["cpu_pct"] = round(100 * rate, 1)
    out["cpu_us_per_chunk"] = round(rate * 1e6 / (n / delay), 2)
    out["rss_mb"] = round(statistics.median(x[2] for x in inside) / 1024, 1)
    socket_kb = [x[3] for x in inside if x[3] is not None]
    out["tcp_mem_mb"] = round(statistics.median(socket_kb) / 1024, 1) if socket_kb else None
    return out


def _level(
    target: Target,
    n: int,
    *,
    ref_file: Path,
    body_file: Path,
    nominal: float,
    delay: float,
    cores: str | None,
    watch: list[Proc],
    work: Path,
    open_rate: float,
    baseline_kb: int,
    tag: str,
) -> dict[str, Any]:
    ramp = round(min(n / open_rate, nominal / 2), 3)
    timeout = nominal * 3 + 5 + n / 500  # generous: lateness is judged by PACE_SLACK, not here
    argv = [sys.executable, "-m", "bench.streamclient", "--port", str(target.stream_port), "--path", target.path]
    argv += ["--body-file", str(body_file), "--ref-file", str(ref_file), "--streams", str(n)]
    argv += ["--ramp", str(ramp), "--timeout", str(timeout), "--nominal", str(nominal), "--delay", str(delay)]
    argv += [f"--header={k}: {v}" for k, v in target.headers.items()]
    measured = watch[0]  # the gateway (or the relay, or the upstream when measuring direct)
    cpu0 = {p.name: p.cpu_seconds() for p in watch}
    peak = {p.name: p.rss_kb() for p in watch}
    before_kb = peak[measured.name]
    steal0 = steal_seconds()
    t0 = time.monotonic()
    client = spawn(
        f"streams-{tag}-{n}",
        argv,
        cores=cores,
        env=clean_env(),
        log_dir=work,
        cwd=Path(__file__).parent.parent,
    )
    client_cpu = 0.0
    samples: list[tuple[float, float, int, int | None]] = []  # (monotonic, CPU s, RSS KB, TCP memory KB)
    deadline = t0 + ramp + timeout + 30
    while client.alive() and time.monotonic() < deadline:
        client_cpu = max(client_cpu, client.cpu_seconds())
        for p in watch:
            peak[p.name] = max(peak[p.name], p.rss_kb())
        samples.append((time.monotonic(), measured.cpu_seconds(), measured.rss_kb(), tcp_mem_kb()))
        time.sleep(0.2)
    wall = time.monotonic() - t0
    stolen = steal_seconds() - steal0
    load = os.getloadavg()[0]
    client.stop()
    line = next((x for x in client.output(1_000_000).splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"stream client failed: {client.output()}")
    result = json.loads(line[len("BENCH_JSON ") :])
    cpu = {p.name: p.cpu_seconds() - cpu0[p.name] for p in watch}
    cpu["client"] = client_cpu
    result["cpu_pct"] = {k: round(100 * v / wall, 1) for k, v in cpu.items()}
    # The host's share of the machine's time meanwhile, and the load: a noisy level says so.
    result["steal_pct"] = round(100 * stolen / (wall * (os.cpu_count() or 1)), 2)
    result["loadavg_end"] = round(load, 2)
    result["peak_rss_mb"] = {k: round(v / 1024, 1) for k, v in peak.items()}
    plateau = _plateau(samples, result.get("plateau_monotonic"), n, delay)
    result["plateau"] = plateau
    result["rss_before_mb"] = round(before_kb / 1024, 1)
    # What one open stream holds in the measured process, over its RSS before the ladder (the kernel's
    # socket buffers are not in RSS: tcp_mem_mb, machine-wide, says what they were meanwhile).
    rss = plateau["rss_mb"]
    result["rss_per_stream_kb"] = round((rss * 1024 - baseline_kb) / n, 2) if rss is not None else None
    # Opening, answering, settling and closing a stream: the level's CPU less its chunks at the
    # plateau's cost per chunk.
    per_chunk = plateau["cpu_us_per_chunk"]
    result["setup_cpu_us_per_stream"] = (
        round((cpu[measured.name] * 1e6 - per_chunk * result["chunks_received"]) / n, 1)
        if per_chunk is not None
        else None
    )
    result["delivered"] = result["ok"] == n
    result["ramp_s"] = ramp
    p99 = result["plateau_gap_ms"]["p99"]
    result["kept_pace"] = bool(result["delivered"] and p99 is not None and p99 <= delay * 1000 * PACE_SLACK)
    length = result["duration_s"]["p99"]
    result["on_time"] = bool(result["delivered"] and length is not None and length <= nominal + ADMIT_SLACK)
    result["passed"] = result["kept_pace"] and result["on_time"]
    return result


def measure(
    target: Target,
    levels: list[int],
    *,
    ref: list[str],
    delay: float,
    cores: str | None,
    watch: list[Proc],
    work: Path,
    settle: float = 1.0,
    open_rate: float = OPEN_RATE,
    keep_going: bool = False,
    pace: tuple[int, float] | None = None,
) -> dict[str, Any]:
    """The ladder of `levels`, stopping at the first that fails (unless `keep_going`). With `pace`,
    streams of that many chunks `delay` apart (`ref` must be that stream's), else the upstream's own."""
    work.mkdir(parents=True, exist_ok=True)
    tag = f"{target.name}-{pace[0]}x{pace[1]}" if pace else target.name
    ref_file = work / f"stream-ref-{tag}.json"
    ref_file.write_text(json.dumps(ref))
    body_file = work / f"stream-body-{tag}.json"
    body_file.write_text(json.dumps(body(target.stream_model, pace)))
    nominal = (len(ref) - 1) * delay  # the upstream waits `delay` between chunks, not before the first
    baseline_kb = watch[0].rss_kb()
    out: dict[str, Any] = {
        "chunks_per_stream": len(ref),
        "chunk_delay_s": delay,
        "nominal_s": nominal,
        "open_rate": open_rate,
        "rss_baseline_mb": round(baseline_kb / 1024, 1),
        "pass_rule": f"all chunks in order, no errors, plateau gap p99 <= {PACE_SLACK * delay * 1000:.0f} ms, "
        f"stream length p99 <= {nominal + ADMIT_SLACK:.1f} s",
    }
    runs = []
    best = 0
    for n in levels:
        r = _level(
            target,
            n,
            ref_file=ref_file,
            body_file=body_file,
            nominal=nominal,
            delay=delay,
            cores=cores,
            watch=watch,
            work=work,
            open_rate=open_rate,
            baseline_kb=baseline_kb,
            tag=tag,
        )
        runs.append(r)
        if r["passed"]:
            best = max(best, n)
        elif not keep_going:
            break
        time.sleep(settle)
    out["levels"] = runs
    out["max_passed"] = best
    out["max_delivered"] = max((r["streams"] for r in runs if r["delivered"]), default=0)
    # Memory per open stream at the highest level that was delivered (the most streams to divide by).
    delivered = [r for r in runs if r["delivered"] and r["rss_per_stream_kb"] is not None]
    out["rss_per_stream_kb"] = delivered[-1]["rss_per_stream_kb"] if delivered else None
    return out


def fetch_reference(upstream: Target, pace: tuple[int, float] | None = None) -> list[str]:
    return asyncio.run(reference(upstream, pace))


def fd_capped(levels: list[int]) -> tuple[list[int], str | None]:
    """The levels, those above what the limit on open files allows a gateway (two sockets a stream,
    and some to spare) replaced by that most (where root could not raise the hard limit, as in a
    container without CAP_SYS_RESOURCE), and a note saying so."""
    limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    most = (limit - FD_SPARE) // 2 // 50 * 50
    if limit == resource.RLIM_INFINITY or max(levels, default=0) <= most:
        return levels, None
    capped = sorted({min(n, most) for n in levels})
    return capped, (
        f"open files are limited to {limit:,} here, two sockets a stream in the gateway: levels above "
        f"{most:,} run at {most:,} ({levels} -> {capped})"
    )


def _row(name: str, lv: dict[str, Any]) -> str:
    pl = lv["plateau"]
    return (
        f"{name:12s} {lv['streams']:6d} {'pass' if lv['passed'] else 'FAIL':4s} ok {lv['ok']:6d} "
        f"gap p99 {lv['plateau_gap_ms']['p99']} ms, stream p99 {lv['duration_s']['p99']} s, "
        f"plateau cpu {pl['cpu_pct']}% = {pl['cpu_us_per_chunk']} us/chunk, setup {lv['setup_cpu_us_per_stream']} "
        f"us/stream, rss {lv['rss_before_mb']} -> {pl['rss_mb']} MB ({lv['rss_per_stream_kb']} KB/stream), "
        f"tcp mem {pl['tcp_mem_mb']} MB, cpu% {lv['cpu_pct']}, steal {lv['steal_pct']}%, load {lv['loadavg_end']}, "
        f"errors {lv['error_kinds']}"
    )


def main(argv: list[str] | None = None) -> int:
    """Figure 4 on its own: the ladder against omnirouter, the byte relay and/or the upstream alone."""
    import argparse
    import tempfile

    from bench import procs, targets

    parser = argparse.ArgumentParser(prog="python -m bench.streams", description=main.__doc__)
    parser.add_argument(
        "--targets", default="omnirouter,byte-relay", help="omnirouter, byte-relay, direct, baseline (--baseline-src)"
    )
    parser.add_argument("--baseline-src", help="the `src` directory of another tree (a git worktree) for `baseline`")
    parser.add_argument("--levels", default="1000,2000,4000,6000,8000,10000")
    parser.add_argument("--chunks", type=int, default=100, help="content chunks per stream")
    parser.add_argument("--delay", type=float, default=0.1, help="seconds between chunks")
    parser.add_argument("--open-rate", type=float, default=OPEN_RATE, help="streams opened per second")
    parser.add_argument("--keep-going", action="store_true", help="run every level, past a failure")
    parser.add_argument("--out", help="write the results here (JSON)")
    args = parser.parse_args(argv)
    procs.install_cleanup()
    procs.raise_nofile()
    levels, note = fd_capped([int(x) for x in args.levels.split(",")])
    if note:
        print(note, flush=True)
    os.sched_setaffinity(0, {0})
    work = Path(tempfile.mkdtemp(prefix="bench-streams-"))
    results: dict[str, Any] = {"args": vars(args), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        echo = targets.start_upstream("upstream", "0", work)
        paced = targets.start_upstream("upstream-paced", "0", work, chunks=args.chunks, delay=args.delay)
        direct = targets.direct(echo, paced)
        ref = fetch_reference(direct)
        for run, name in enumerate(args.targets.split(",")):  # a name may come again: A/B rounds
            if name == "direct":
                target, watch, cores = direct, [paced.proc], "1"
            elif name == "byte-relay":
                target = targets.start_relay("1", paced, work)
                watch, cores = [target.proc, paced.proc], "0"
            else:
                saved = os.environ.get("PYTHONPATH")
                if name == "baseline":  # start_omnirouter passes our environment on
                    os.environ["PYTHONPATH"] = str(Path(args.baseline_src).resolve())
                try:
                    target = targets.start_omnirouter(name, "1", 1, echo, paced, work)
                finally:
                    if saved is None:
                        os.environ.pop("PYTHONPATH", None)
                    else:
                        os.environ["PYTHONPATH"] = saved
                watch, cores = [target.proc, paced.proc], "0"
            try:
                time.sleep(1.0)
                out = measure(
                    target,
                    levels,
                    ref=ref,
                    delay=args.delay,
                    cores=cores,
                    watch=watch,
                    work=work,
                    open_rate=args.open_rate,
                    keep_going=args.keep_going,
                )
            finally:
                if target is not direct:
                    target.proc.stop()
            results[f"{name}#{run}"] = out
            print(f"{name}: baseline rss {out['rss_baseline_mb']} MB", flush=True)
            for lv in out["levels"]:
                print(_row(name, lv), flush=True)
    finally:
        procs.stop_all()
        if args.out:
            Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
