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
import sys
import time
from pathlib import Path
from typing import Any

from bench.leanhttp import LeanConnection, build_request, sse_contents
from bench.procs import HOST, Proc, clean_env, spawn
from bench.targets import Target

PACE_SLACK = 1.5
ADMIT_SLACK = 1.0  # seconds a stream may take beyond nominal (p99), admission and set-up included
OPEN_RATE = 500.0  # streams opened per second


def body(model: str) -> dict[str, Any]:
    return {
        "model": model,
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def reference(upstream: Target) -> list[str]:
    """The content chunks the paced upstream sends: what every stream must deliver, in this order."""
    conn = LeanConnection(HOST, upstream.stream_port)
    try:
        raw = build_request(HOST, upstream.stream_port, upstream.path, body(upstream.stream_model), upstream.headers)
        t = await conn.request(raw)
    finally:
        await conn.close()
    ref = sse_contents(t.body)
    if t.status != 200 or not ref:
        raise RuntimeError(f"paced upstream: HTTP {t.status}: {t.body[:300]!r}")
    return ref


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
) -> dict[str, Any]:
    ramp = round(min(n / OPEN_RATE, nominal / 2), 3)
    timeout = nominal * 3 + 5 + n / 500  # generous: lateness is judged by PACE_SLACK, not here
    argv = [sys.executable, "-m", "bench.streamclient", "--port", str(target.stream_port), "--path", target.path]
    argv += ["--body-file", str(body_file), "--ref-file", str(ref_file), "--streams", str(n)]
    argv += ["--ramp", str(ramp), "--timeout", str(timeout), "--nominal", str(nominal), "--delay", str(delay)]
    argv += [f"--header={k}: {v}" for k, v in target.headers.items()]
    cpu0 = {p.name: p.cpu_seconds() for p in watch}
    peak = {p.name: p.rss_kb() for p in watch}
    t0 = time.monotonic()
    client = spawn(
        f"streams-{target.name}-{n}",
        argv,
        cores=cores,
        env=clean_env(),
        log_dir=work,
        cwd=Path(__file__).parent.parent,
    )
    client_cpu = 0.0
    deadline = t0 + ramp + timeout + 30
    while client.alive() and time.monotonic() < deadline:
        client_cpu = max(client_cpu, client.cpu_seconds())
        for p in watch:
            peak[p.name] = max(peak[p.name], p.rss_kb())
        time.sleep(0.2)
    wall = time.monotonic() - t0
    client.stop()
    line = next((x for x in client.output(1_000_000).splitlines() if x.startswith("BENCH_JSON ")), None)
    if line is None:
        raise RuntimeError(f"stream client failed: {client.output()}")
    result = json.loads(line[len("BENCH_JSON ") :])
    cpu = {p.name: p.cpu_seconds() - cpu0[p.name] for p in watch}
    cpu["client"] = client_cpu
    result["cpu_pct"] = {k: round(100 * v / wall, 1) for k, v in cpu.items()}
    result["peak_rss_mb"] = {k: round(v / 1024, 1) for k, v in peak.items()}
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
) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    ref_file = work / "stream-ref.json"
    ref_file.write_text(json.dumps(ref))
    body_file = work / f"stream-body-{target.name}.json"
    body_file.write_text(json.dumps(body(target.stream_model)))
    nominal = (len(ref) - 1) * delay  # the upstream waits `delay` between chunks, not before the first
    out: dict[str, Any] = {
        "chunks_per_stream": len(ref),
        "chunk_delay_s": delay,
        "nominal_s": nominal,
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
        )
        runs.append(r)
        if not r["passed"]:
            break
        best = n
        time.sleep(settle)
    out["levels"] = runs
    out["max_passed"] = best
    out["max_delivered"] = max((r["streams"] for r in runs if r["delivered"]), default=0)
    return out


def fetch_reference(upstream: Target) -> list[str]:
    return asyncio.run(reference(upstream))
