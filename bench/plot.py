"""latency.png: CDFs of added latency (gateway - direct, paired) for omnirouter and LiteLLM.

Drawn with matplotlib when it is installed (`pip install -e '.[bench]'`), else with bench.pngdraw.
The x axis is logarithmic; pairs where the gateway was not slower than direct sit at the floor.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from bench.pngdraw import GLYPH_H, Canvas
from bench.stats import pct

FLOOR_MS = 0.01
PANELS = (("nonstream", "non-streaming"), ("ttfb", "time to first event (stream)"))
SERIES = (("omnirouter", (31, 119, 180)), ("litellm", (255, 127, 14)))
TARGET_LINES_MS = (0.5, 2.0)  # issue 3's p50 and p99 targets


def _series(results: dict[str, Any]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for gw, _ in SERIES:
        samples = (results["figures"].get("latency", {}).get(gw) or {}).get("samples_added_ms") or {}
        out[gw] = {k: sorted(max(v, FLOOR_MS) for v in samples.get(k, [])) for k, _ in PANELS}
    return out


def _label(gw: str, values: list[float]) -> str:
    return f"{gw}: p50 {pct(values, 50):.3g} ms, p99 {pct(values, 99):.3g} ms"


def latency_plot(results: dict[str, Any], path: Path) -> str:
    """Write the plot; return a sentence for results.md saying how it was drawn."""
    data = _series(results)
    try:
        _matplotlib(data, path)
        return "latency.png: CDFs of added latency, drawn with matplotlib."
    except ImportError:
        _fallback(data, path)
        return (
            "latency.png: drawn by bench's built-in renderer (matplotlib is not installed: "
            "`pip install -e '.[bench]'` for the full plot)."
        )


def _matplotlib(data: dict[str, dict[str, list[float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(PANELS), figsize=(12, 4.8))
    for ax, (kind, title) in zip(axes, PANELS, strict=True):
        for gw, rgb in SERIES:
            values = data[gw][kind]
            if values:
                ys = [(i + 1) / len(values) for i in range(len(values))]
                color = tuple(c / 255 for c in rgb)
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
            ax.legend(loc="upper left", fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center")
    fig.suptitle("Added latency, one request in flight (gateway - direct, paired)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _fallback(data: dict[str, dict[str, list[float]]], path: Path) -> None:
    width, height, panel_w, top, plot_h = 1200, 460, 500, 60, 300
    c = Canvas(width, height)
    title = "ADDED LATENCY, ONE REQUEST IN FLIGHT (GATEWAY - DIRECT, PAIRED)"
    c.text((width - c.text_width(title, 2)) // 2, 14, title, scale=2)
    every = [v for series in data.values() for values in series.values() for v in values]
    lo = 10 ** math.floor(math.log10(min(every, default=FLOOR_MS)))
    hi = 10 ** math.ceil(math.log10(max(max(every, default=1.0), lo * 10)))
    span = math.log10(hi) - math.log10(lo)
    for n, (kind, label) in enumerate(PANELS):
        x0 = 70 + n * (panel_w + 60)
        x1, y0, y1 = x0 + panel_w, top + 20, top + 20 + plot_h
        grey = (200, 200, 200)

        def sx(v: float, x0: int = x0) -> int:
            return x0 + round((math.log10(max(v, lo)) - math.log10(lo)) / span * panel_w)

        def sy(f: float, y1: int = y1) -> int:
            return y1 - round(f * plot_h)

        c.text(x0 + (panel_w - c.text_width(label)) // 2, top, label)
        for f in (0.25, 0.5, 0.75, 1.0):
            c.line(x0, sy(f), x1, sy(f), grey)
            c.text(x0 - 34, sy(f) - 3, f"{f:.2f}")
        decade = lo
        while decade <= hi * 1.0001:
            c.line(sx(decade), y0, sx(decade), y1, grey)
            tick = f"{decade:g}"
            c.text(sx(decade) - c.text_width(tick) // 2, y1 + 6, tick)
            decade *= 10
        for t in TARGET_LINES_MS:
            if lo <= t <= hi:
                c.line(sx(t), y0, sx(t), y1, (120, 120, 120), dash=4)
        c.rect(x0, y0, x1, y1, (0, 0, 0))
        axis = "ADDED LATENCY, MS (LOG). DASHED: TARGETS 0.5, 2 MS"
        c.text(x0 + (panel_w - c.text_width(axis)) // 2, y1 + 20, axis)
        legend_y = y1 + 36
        drawn = False
        for gw, rgb in SERIES:
            values = data[gw][kind]
            if not values:
                continue
            drawn = True
            px, py = sx(values[0]), sy(0)
            for i, v in enumerate(values):
                x, y = sx(v), sy((i + 1) / len(values))
                c.line(px, py, x, py, rgb, width=2)  # a step: across, then up
                c.line(x, py, x, y, rgb, width=2)
                px, py = x, y
            c.line(x0 + 4, legend_y + 3, x0 + 24, legend_y + 3, rgb, width=3)
            c.text(x0 + 30, legend_y, _label(gw, values), rgb)
            legend_y += GLYPH_H + 6
        if not drawn:
            c.text(x0 + panel_w // 2 - 20, (y0 + y1) // 2, "NO DATA")
    c.save(path)
