"""Load at fixed concurrency: wrk when installed (compiled, so rarely the limit), else bench.loadgen.

While the load runs, the watched servers are sampled for peak RSS, and every process's CPU time is
taken before and after, so a result says which process was saturated (a server at ~100% of its core
is the limit; a load generator near 100% means the number is the client's).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.procs import HOST, Proc, clean_env, spawn

JSON_PREFIX = "BENCH_JSON "


@dataclass
class LoadSpec:
    port: int
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    connections: int = 32
    duration: float = 10.0
    max_requests: int = 0  # fallback only; wrk runs for whole seconds


@dataclass
class LoadResult:
    tool: str
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p99_ms: float
    errors_status: int
    errors_socket: int
    peak_rss_kb: dict[str, int] = field(default_factory=dict)
    cpu_s: dict[str, float] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return self.errors_status + self.errors_socket

    def as_dict(self) -> dict[str, Any]:
        wall = self.duration_s or 1.0
        return {
            "tool": self.tool,
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 3),
            "p99_ms": round(self.p99_ms, 3),
            "errors": self.errors,
            "errors_status": self.errors_status,
            "errors_socket": self.errors_socket,
            "cpu_pct": {k: round(100 * v / wall, 1) for k, v in self.cpu_s.items()},
            "cpu_us_per_request": {k: round(1e6 * v / max(1, self.requests), 1) for k, v in self.cpu_s.items()},
        }


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _lua_string(value: str) -> str:
    return f"[==[{value}]==]"


def wrk_script(spec: LoadSpec) -> str:
    """POST body and headers, and a done() hook printing exact numbers (no unit parsing needed)."""
    lines = ['wrk.method = "POST"', f"wrk.body = {_lua_string(json.dumps(spec.body))}"]
    headers = {"Content-Type": "application/json", **spec.headers}
    # The spaces matter: "headers[[==[" would open a Lua long string.
    lines += [f"wrk.headers[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items()]
    lines.append(
        """function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "status": %d, "socket": %d, "p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end"""
    )
    return "\n".join(lines) + "\n"


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def parse_wrk_text(text: str) -> dict[str, float]:
    """wrk's human output, for when the done() line is missing (an older or patched wrk)."""
    out: dict[str, float] = {"status": 0, "socket": 0}
    if m := re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text):
        out["requests"] = int(m.group(1))
        out["duration_us"] = float(m.group(2)) * _UNITS[m.group(3)] * 1000
    for q in (50, 99):
        if m := re.search(rf"^\s+{q}(?:\.0+)?%\s+([\d.]+)(us|ms|s|m)", text, re.M):
            out[f"p{q}_us"] = float(m.group(1)) * _UNITS[m.group(2)] * 1000
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        out["status"] = int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        out["socket"] = sum(int(g) for g in m.groups())
    if "requests" not in out:
        raise RuntimeError(f"cannot read wrk's output:\n{text[-1500:]}")
    return out


def _parse(text: str) -> dict[str, float]:
    for line in text.splitlines():
        if line.startswith(JSON_PREFIX):
            return json.loads(line[len(JSON_PREFIX) :])
    return parse_wrk_text(text)


def run(spec: LoadSpec, *, tool: str, cores: str | None, watch: list[Proc], work: Path, tag: str) -> LoadResult:
    """One bounded load run. `tool` is "wrk" or "python" (the fallback)."""
    url = f"http://{HOST}:{spec.port}{spec.path}"
    work.mkdir(parents=True, exist_ok=True)
    if tool == "wrk":
        script = work / f"{tag}.lua"
        script.write_text(wrk_script(spec))
        seconds = max(1, int(spec.duration))
        argv = [wrk_path() or "wrk", "-t1", f"-c{spec.connections}", f"-d{seconds}s", "--timeout", "10s"]
        argv += ["--latency", "-s", str(script), url]
    else:
        body = work / f"{tag}.json"
        body.write_text(json.dumps(spec.body))
        argv = [sys.executable, "-m", "bench.loadgen", "--url", url, "--body-file", str(body)]
        argv += [f"--header={k}: {v}" for k, v in spec.headers.items()]
        argv += ["--connections", str(spec.connections), "--duration", str(spec.duration)]
        argv += ["--max-requests", str(spec.max_requests)]
    cpu0 = {p.name: p.cpu_seconds() for p in watch}
    peak = {p.name: p.rss_kb() for p in watch}
    gen = spawn(f"load-{tag}", argv, cores=cores, env=clean_env(), log_dir=work, cwd=Path(__file__).parent.parent)
    gen_cpu = 0.0
    deadline = time.monotonic() + spec.duration + 60  # wrk's own -d ends it; this is the backstop
    while gen.alive():
        if time.monotonic() > deadline:
            gen.stop()
            raise RuntimeError(f"load generator overran its time: {gen.output()}")
        gen_cpu = max(gen_cpu, gen.cpu_seconds())
        for p in watch:
            peak[p.name] = max(peak[p.name], p.rss_kb())
        time.sleep(0.1)
    gen.stop()
    cpu = {p.name: p.cpu_seconds() - cpu0[p.name] for p in watch}
    # The generator's last CPU reading may be up to one tick stale: a slight underestimate.
    cpu["loadgen"] = gen_cpu
    if gen.popen.returncode != 0:
        raise RuntimeError(f"load generator failed ({gen.popen.returncode}): {gen.output()}")
    data = _parse(gen.output(200_000))
    duration = data["duration_us"] / 1e6
    return LoadResult(
        tool=tool,
        requests=int(data["requests"]),
        duration_s=duration,
        rps=data["requests"] / duration if duration else 0.0,
        p50_ms=data.get("p50_us", 0) / 1000,
        p99_ms=data.get("p99_us", 0) / 1000,
        errors_status=int(data["status"]),
        errors_socket=int(data["socket"]),
        peak_rss_kb=peak,
        cpu_s=cpu,
    )


def run_count(
    spec: LoadSpec,
    count: int,
    time_cap: float,
    *,
    tool: str,
    cores: str | None,
    watch: list[Proc],
    work: Path,
    tag: str,
    rps_hint: float,
) -> tuple[int, int, dict[str, int]]:
    """About `count` requests (wrk runs whole seconds, so a little over), within `time_cap` seconds.

    Returns (requests done, errors, peak RSS per watched process)."""
    done = errors = 0
    peak: dict[str, int] = {}
    rps = max(rps_hint, 1.0)
    end = time.monotonic() + time_cap
    i = 0
    while done < count and (left := end - time.monotonic()) > 0.5:
        # Aim a little short and top up: a run that goes faster than the last one overshoots less.
        seconds = min(max(1.0, 0.9 * (count - done) / rps), left, 60.0)
        part = LoadSpec(spec.port, spec.path, spec.headers, spec.body, spec.connections, seconds, count - done)
        r = run(part, tool=tool, cores=cores, watch=watch, work=work, tag=f"{tag}-{i}")
        done, errors, i = done + r.requests, errors + r.errors, i + 1
        rps = max(r.rps, 1.0)
        for name, kb in r.peak_rss_kb.items():
            peak[name] = max(peak.get(name, 0), kb)
        if r.requests == 0:
            break
    return done, errors, peak
