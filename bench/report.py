"""results.json, results.md (figures side by side, ratios, targets from issue 3) and latency.png."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import plot

FIGURES = ("latency", "throughput", "memory", "streams", "open_streams", "workers")
TARGETS = ("direct", "omnirouter", "litellm")

Getter = Callable[[dict[str, Any]], Any]


def _get(results: dict[str, Any], figure: str, target: str, getter: Getter) -> float | None:
    data = results["figures"].get(figure, {}).get(target)
    if data is None:
        return None
    try:
        value = getter(data)
    except (KeyError, TypeError, IndexError, StopIteration):
        return None
    return value if isinstance(value, (int, float)) and not math.isnan(value) else None


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or (float(value).is_integer() and abs(value) >= 100):
        return f"{int(value):,}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:,.0f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.3g}x"


def _carried(streams: dict[str, Any]) -> dict[str, Any]:
    """The highest level that passed (KeyError when none did)."""
    return next(lv for lv in streams["levels"] if lv["streams"] == streams["max_passed"])


# (label, figure, getter for gateways, getter for direct or None when direct has no such number)
ROWS: list[tuple[str, str, Getter, Getter | None]] = [
    (
        "latency, non-streaming p50 (ms)",
        "latency",
        lambda d: d["gateway_ms"]["nonstream"]["p50"],
        lambda d: d["direct_ms"]["nonstream"]["p50"],
    ),
    (
        "latency, non-streaming p99 (ms)",
        "latency",
        lambda d: d["gateway_ms"]["nonstream"]["p99"],
        lambda d: d["direct_ms"]["nonstream"]["p99"],
    ),
    ("added latency, non-streaming p50 (ms)", "latency", lambda d: d["added_ms"]["nonstream"]["p50"], None),
    ("added latency, non-streaming p99 (ms)", "latency", lambda d: d["added_ms"]["nonstream"]["p99"], None),
    (
        "time to first event p50 (ms)",
        "latency",
        lambda d: d["gateway_ms"]["ttfb"]["p50"],
        lambda d: d["direct_ms"]["ttfb"]["p50"],
    ),
    ("added time to first event p50 (ms)", "latency", lambda d: d["added_ms"]["ttfb"]["p50"], None),
    ("added time to first event p99 (ms)", "latency", lambda d: d["added_ms"]["ttfb"]["p99"], None),
    ("added time per streamed chunk (us)", "latency", lambda d: d["per_chunk_added_us"], None),
    ("throughput (requests/s)", "throughput", lambda d: d["rps"], lambda d: d["rps"]),
    ("throughput latency p50 (ms)", "throughput", lambda d: d["p50_ms"], lambda d: d["p50_ms"]),
    ("throughput latency p99 (ms)", "throughput", lambda d: d["p99_ms"], lambda d: d["p99_ms"]),
    ("throughput errors", "throughput", lambda d: d["errors"], lambda d: d["errors"]),
    ("RSS idle (MB)", "memory", lambda d: d["idle_mb"], lambda d: d["idle_mb"]),
    ("RSS under load (MB)", "memory", lambda d: d["load_mb"], lambda d: d["load_mb"]),
    ("requests in the memory run", "memory", lambda d: d["requests_total"], lambda d: d["requests_total"]),
    ("RSS after the memory run (MB)", "memory", lambda d: d["rss_full_mb"], lambda d: d["rss_full_mb"]),
    ("RSS growth, second half (%)", "memory", lambda d: d["growth_pct"], lambda d: d["growth_pct"]),
    ("concurrent streams carried", "streams", lambda d: d["max_passed"], lambda d: d["max_passed"]),
    (
        "streams: chunk gap p99 at the level carried (ms)",
        "streams",
        lambda d: _carried(d)["plateau_gap_ms"]["p99"],
        lambda d: _carried(d)["plateau_gap_ms"]["p99"],
    ),
    (
        "streams: stream length p99 at the level carried (s)",
        "streams",
        lambda d: _carried(d)["duration_s"]["p99"],
        lambda d: _carried(d)["duration_s"]["p99"],
    ),
    (
        "streams: CPU per relayed chunk at the level carried (us)",
        "streams",
        lambda d: _carried(d)["plateau"]["cpu_us_per_chunk"],
        lambda d: _carried(d)["plateau"]["cpu_us_per_chunk"],
    ),
    ("open streams carried, slow pace (figure 4b)", "open_streams", lambda d: d["max_passed"], None),
    ("open streams: memory per open stream (KB)", "open_streams", lambda d: d["rss_per_stream_kb"], None),
    (
        "open streams: CPU per relayed chunk at the level carried (us)",
        "open_streams",
        lambda d: _carried(d)["plateau"]["cpu_us_per_chunk"],
        None,
    ),
    ("2 workers / 1 worker throughput", "workers", lambda d: d["ratio"], None),
]


# Counts, and numbers taken at different levels per column: their ratios say nothing.
NO_RATIO = {
    "throughput errors",
    "requests in the memory run",
    "RSS growth, second half (%)",
    "streams: chunk gap p99 at the level carried (ms)",
    "streams: stream length p99 at the level carried (s)",
    "streams: CPU per relayed chunk at the level carried (us)",
}


def _direct_latency(results: dict[str, Any], getter: Getter) -> float | None:
    """Direct's latency comes from the interleaved pairs (omnirouter's run, else LiteLLM's)."""
    for gw in ("omnirouter", "litellm"):
        if (v := _get(results, "latency", gw, getter)) is not None:
            return v
    return None


def table(results: dict[str, Any]) -> list[str]:
    head = "| figure | direct | omnirouter | litellm | omnirouter / direct | litellm / direct | omnirouter / litellm |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---:|"]
    for label, figure, gw_get, direct_get in ROWS:
        if direct_get is None:
            d = None
        elif figure == "latency":
            d = _direct_latency(results, direct_get)
        else:
            d = _get(results, figure, "direct", direct_get)
        o = _get(results, figure, "omnirouter", gw_get)
        llm = _get(results, figure, "litellm", gw_get)
        cells = [_fmt(d), _fmt(o), _fmt(llm)]
        # Ratios of counts (errors, requests done) say nothing.
        cells += ["-"] * 3 if label in NO_RATIO else [_ratio(o, d), _ratio(llm, d), _ratio(o, llm)]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def checks(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 3's targets for omnirouter (one worker, everything on). None: not measured."""

    def om(figure: str, getter: Getter) -> float | None:
        return _get(results, figure, "omnirouter", getter)

    def le(value: float | None, limit: float) -> bool | None:
        return None if value is None else value <= limit

    def both(*parts: bool | None) -> bool | None:
        """False if any part failed; None (not measured) if a part is unknown and none failed."""
        if any(p is False for p in parts):
            return False
        return None if any(p is None for p in parts) else True

    out = []
    for kind, label in (("nonstream", "added latency, non-streaming"), ("ttfb", "added time to first event")):
        p50 = om("latency", lambda d, k=kind: d["added_ms"][k]["p50"])
        p99 = om("latency", lambda d, k=kind: d["added_ms"][k]["p99"])
        out.append(
            {
                "figure": f"{label}, p50 / p99",
                "target": "<= 0.5 ms / <= 2 ms",
                "value": f"{_fmt(p50)} / {_fmt(p99)} ms",
                "pass": both(le(p50, 0.5), le(p99, 2.0)),
            }
        )
    chunk = om("latency", lambda d: d["per_chunk_added_us"])
    out.append(
        {
            "figure": "added time per streamed chunk",
            "target": "<= 50 us",
            "value": f"{_fmt(chunk)} us",
            "pass": le(chunk, 50),
        }
    )
    rps = om("throughput", lambda d: d["rps"])
    errors = om("throughput", lambda d: d["errors"])
    llm_rps = _get(results, "throughput", "litellm", lambda d: d["rps"])
    vs = rps / llm_rps if rps is not None and llm_rps else None
    out.append(
        {
            "figure": "throughput on one core",
            "target": ">= 3,000 requests/s, zero errors, >= 40x LiteLLM",
            "value": f"{_fmt(rps)} req/s, {_fmt(errors)} errors, {_fmt(vs)}x LiteLLM",
            "pass": both(
                None if rps is None else rps >= 3000,
                None if errors is None else errors == 0,
                None if vs is None else vs >= 40,
            ),
        }
    )
    rss = om("memory", lambda d: d["rss_full_mb"])
    growth = om("memory", lambda d: d["growth_pct"])
    n = om("memory", lambda d: d["requests_total"])
    out.append(
        {
            "figure": f"RSS after {_fmt(n)} requests",
            "target": "<= 150 MB, growth <= 5% over the 2nd half",
            "value": f"{_fmt(rss)} MB, {_fmt(growth)}%",
            "pass": both(le(rss, 150), le(growth, 5)),
        }
    )
    carried = om("streams", lambda d: d["max_passed"])
    floor = _get(results, "streams", "byte-relay", lambda d: d["max_passed"])
    out.append(
        {
            "figure": "concurrent streams on one worker",
            "target": ">= 5,000",
            "value": _fmt(carried) + (f" (a bare byte relay here: {_fmt(floor)})" if floor is not None else ""),
            "pass": None if carried is None else carried >= 5000,
        }
    )
    held = om("open_streams", lambda d: d["max_passed"])
    per_stream = om("open_streams", lambda d: d["rss_per_stream_kb"])
    slow_floor = _get(results, "open_streams", "byte-relay", lambda d: d["max_passed"])
    out.append(
        {
            "figure": "open streams on one worker, slow pace (issue 13), memory per open stream",
            "target": ">= 10,000, <= 10 KB beyond socket buffers",
            "value": f"{_fmt(held)}, {_fmt(per_stream)} KB"
            + (f" (a bare byte relay here: {_fmt(slow_floor)})" if slow_floor is not None else ""),
            "pass": both(None if held is None else held >= 10000, None if per_stream is None else per_stream <= 10),
        }
    )
    ratio = om("workers", lambda d: d["ratio"])
    out.append(
        {
            "figure": "2 workers vs 1",
            "target": ">= 1.7x",
            "value": f"{_fmt(ratio)}x",
            "pass": None if ratio is None else ratio >= 1.7,
        }
    )
    return out


def _load(values: list[float] | None) -> str:
    return "/".join(f"{v:.2f}" for v in values) if values else "-"


def _speed(values: dict[str, float | None] | None) -> str:
    return " / ".join(_fmt(v) for v in values.values()) if values else "-"


def _one_line(text: str) -> str:
    """A traceback's last line says what failed; the rest belongs in results.json and logs/."""
    lines = [x.strip() for x in text.splitlines() if x.strip()]
    return (lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}")[:400]


def markdown(results: dict[str, Any], plot_note: str) -> str:
    m = results["meta"]
    lines = [
        f"# Omnirouter benchmark ({m['mode']} run)",
        "",
        f"{m['date']} on {m['cpu_model']}, {m['cores']} cores, {m['memory_gb']} GB; Python {m['python']}; "
        f"omnirouter {m['omnirouter_version']} ({m['omnirouter_commit'] or 'no commit'}); "
        f"LiteLLM {m['litellm_version'] or 'not run'}; load generator {m['loadgen']}"
        + (f" ({m['wrk']})" if m["loadgen"] == "wrk" and m["wrk"] else "")
        + ".",
        f"Placement: {m['placement']}. Load average (1/5/15 min) at start {_load(m.get('loadavg_start'))}, "
        f"at end {_load(m.get('loadavg_end'))}. Speed probe, sum(range(10**6)) in ms per core (lower is faster): "
        f"at start {_speed(m.get('cpu_speed_ms_start'))}, at end {_speed(m.get('cpu_speed_ms_end'))}.",
        "",
        *table(results),
        "",
        "## Targets (issue 3; omnirouter, one worker, everything on)",
        "",
        "| figure | target | measured | pass |",
        "|---|---|---|---|",
    ]
    for c in results["targets_check"]:
        verdict = {True: "pass", False: "**FAIL**", None: "n/a"}[c["pass"]]
        lines.append(f"| {c['figure']} | {c['target']} | {c['value']} | {verdict} |")
    lines += ["", "## Notes", ""]
    if m["mode"] == "quick":
        lines.append("- Quick run: tiny counts, short durations. The numbers only show that the harness works.")
    for name, info in results["targets"].items():
        if info.get("status") != "ok":
            lines.append(f"- {name}: {info.get('status')}: {_one_line(info.get('reason', ''))}")
    workers = results["figures"].get("workers", {}).get("omnirouter")
    if workers:
        lines.append(
            f"- Workers: {workers['placement']}. With every process's CPU per request as measured with one "
            f"worker, two cores could give at most {workers['ceiling_ratio_this_machine']}x."
        )
    relay = results["figures"].get("streams", {}).get("byte-relay")
    if relay:
        levels = ", ".join(
            f"{lv['streams']} {'pass' if lv['passed'] else 'fail'} "
            f"(gap p99 {lv['plateau_gap_ms']['p99']} ms, cpu {lv['cpu_pct'].get('byte-relay')}%)"
            for lv in relay["levels"]
        )
        lines.append(
            f"- Streams floor: a bare byte relay (bench.relay: no HTTP parsing, no JSON, no accounting) on the "
            f"gateway's core carried {_fmt(relay['max_passed'])} streams; no gateway on this event loop and "
            f"kernel could carry many more here. Levels: {levels}."
        )
    slow = results["figures"].get("open_streams", {})
    if slow:
        any_run = next(iter(slow.values()))
        levels = "; ".join(
            f"{name}: "
            + ", ".join(
                f"{lv['streams']} {'pass' if lv['passed'] else 'fail'} ({lv['rss_per_stream_kb']} KB/stream, "
                f"{lv['plateau']['cpu_us_per_chunk']} us/chunk)"
                for lv in data["levels"]
            )
            for name, data in slow.items()
        )
        lines.append(
            f"- Open streams (figure 4b): {any_run['chunks_per_stream']} chunks {any_run['chunk_delay_s']} s apart, "
            f"opened at {_fmt(any_run['open_rate'])} a second; memory per open stream is the gateway's RSS on the "
            f"plateau less its RSS before the ladder, over the streams (the kernel's socket buffers are not in RSS). "
            f"Levels: {levels}."
        )
    if steal := results.get("steal_pct"):
        lines.append(
            "- CPU steal (the share of all cores' time the host gave to others) per figure: "
            + ", ".join(f"{k} {v}%" for k, v in steal.items())
            + ". A figure measured under more than a few % is the host's as much as the gateway's."
        )
    lines += [f"- {n}" for n in m["notes"]]
    lines.append(f"- {plot_note}")
    for key, err in results["errors"].items():
        lines.append(f"- ERROR {key}: {_one_line(err)} (details in results.json and logs/)")
    return "\n".join(lines) + "\n"


def write(results: dict[str, Any], out: Path) -> None:
    results["targets_check"] = checks(results)
    plot_note = plot.latency_plot(results, out / "latency.png")
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "results.md").write_text(markdown(results, plot_note))
