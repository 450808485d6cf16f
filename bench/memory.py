"""Figure 3: RSS idle, under load, and after N requests, with the growth over the second half.

RSS is the sum of VmRSS over the server's process tree. "After" readings are taken a moment after the
load stops, once batched writes have flushed, so they show what stays rather than what is in flight.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.load import LoadSpec, run_count
from bench.procs import Proc

SETTLE_S = 1.0


def mb(kb: float) -> float:
    return round(kb / 1024, 1)


def measure(
    proc: Proc,
    spec: LoadSpec,
    *,
    count: int,
    time_cap: float,
    idle_kb: int,
    load_kb: int,
    tool: str,
    cores: str | None,
    work: Path,
    rps_hint: float,
) -> dict[str, Any]:
    half = count // 2
    n1, e1, peak1 = run_count(
        spec, half, time_cap / 2, tool=tool, cores=cores, watch=[proc], work=work, tag="mem1", rps_hint=rps_hint
    )
    time.sleep(SETTLE_S)
    rss_half = proc.rss_kb()
    n2, e2, peak2 = run_count(
        spec,
        count - n1,
        time_cap / 2,
        tool=tool,
        cores=cores,
        watch=[proc],
        work=work,
        tag="mem2",
        rps_hint=rps_hint,
    )
    time.sleep(SETTLE_S)
    rss_full = proc.rss_kb()
    peak = max(load_kb, peak1.get(proc.name, 0), peak2.get(proc.name, 0))
    return {
        "idle_mb": mb(idle_kb),
        "load_mb": mb(peak),
        "requests_half": n1,
        "requests_total": n1 + n2,
        "requests_target": count,
        "rss_half_mb": mb(rss_half),
        "rss_full_mb": mb(rss_full),
        "growth_pct": round(100 * (rss_full - rss_half) / rss_half, 2) if rss_half else 0.0,
        "errors": e1 + e2,
        "tool": tool,
    }
