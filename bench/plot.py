"""latency.png: CDFs of added latency (gateway - direct, paired) for omnirouter and LiteLLM.

Drawn with matplotlib, the `bench` extra (`pip install -e '.[bench]'`). The x axis is logarithmic;
pairs where the gateway was not slower than direct sit at the floor.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from bench.stats import pct

FLOOR_MS = 0.01
PANELS = (("nonstream", "non-streaming"), ("ttfb", "time to first event (stream)"))
SERIES = (("omnirouter", "tab:blue"), ("litellm", "tab:orange"))
TARGET_LINES_MS = (0.5, 2.0)  # issue 3's p50 and p99 targets
MISSING = "matplotlib is not installed (`pip install -e '.[bench]'`)"


def missing() -> str | None:
    """Why the plot cannot be drawn here, or None."""
    return MISSING if importlib.util.find_spec("matplotlib") is None else None


def _series(results: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for gw, _ in SERIES:
        samples = (results["figures"].get("latency", {}).get(gw) or {}).get("samples_added_ms") or {}
        out[gw] = {k: sorted(max(v, FLOOR_MS) for v in samples.get(k, [])) for k, _ in PANELS}
    return out


def _label(gw: str, values: list[float]) -> str:
    return f"{gw}: p50 {pct(values, 50):.3g} ms, p99 {pct(values, 99):.3g} ms"


def latency_plot(results: dict[str, Any], path: Path) -> str:
    """Write the plot; return a sentence for results.md saying what it shows, or why it is missing."""
    if why := missing():
        path.unlink(missing_ok=True)  # never leave an earlier run's plot beside this run's figures
        return f"latency.png: not drawn: {why}."
    _matplotlib(_series(results), path)
    return "latency.png: CDFs of added latency, omnirouter against LiteLLM (gateway - direct, paired)."


def _matplotlib(data: dict[str, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(12, 4.8))
    for ax, (kind, title) in zip(axes, PANELS, strict=True):
        for gw, color in SERIES:
            values = data[gw][kind]
            if values:
                ys = [(i + 1) / len(values) for i in range(len(values))]
                ax.step(values, ys, where="post", color=color, label=_label(gw, values))
        for x in TARGET_LINES_MS:
            ax.axvline(x, color="grey", linestyle="--", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("added latency vs direct, ms (log; dashed: targets 0.5 and 2 ms)")
        ax.set_ylabel("fraction of requests")
        ax.set_ylim(0, 1.01)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
    fig.suptitle("Added latency, one request in flight (gateway - direct, paired)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
