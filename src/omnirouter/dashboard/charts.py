"""Charts drawn on the server as inline SVG: no script and no chart library in the browser.

A chart is stacked bars, one per UTC day, one colour per series (the biggest few; the rest are
"other"). Values are Decimal; drawing scales them to floats only for pixel positions.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from html import escape

TOP_SERIES = 6
OTHER = "other"
# Distinguishable in light and dark themes, and for the common colour-vision deficiencies.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#b07aa1", "#76b7b2", "#9c755f")
WIDTH, HEIGHT = 760, 220
LEFT, BOTTOM, TOP = 64, 24, 10
AXIS_CHAR = 7.5  # px per character of an axis label: the left margin grows with the longest one


@dataclass
class Chart:
    svg: str
    legend: list[tuple[str, str, Decimal]]  # (series, colour, total)


def top_series(points: dict[tuple[date, str], Decimal]) -> list[str]:
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for (_, name), value in points.items():
        totals[name] += value
    return [n for n, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))][:TOP_SERIES]


def stacked_bars(
    points: dict[tuple[date, str], Decimal], first: date, last: date, title: str, unit: str = "$"
) -> Chart:
    """One bar per day from `first` to `last`; `points` maps (day, series) to a value."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    keep = top_series(points)
    stacks: dict[date, dict[str, Decimal]] = {d: defaultdict(Decimal) for d in days}
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for (day, name), value in points.items():
        if day in stacks:
            series = name if name in keep else OTHER
            stacks[day][series] += value
            totals[series] += value
    order = keep + ([OTHER] if OTHER in totals and OTHER not in keep else [])
    colours = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(order)}
    peak = max((sum(s.values(), Decimal(0)) for s in stacks.values()), default=Decimal(0)) or Decimal(1)
    if unit != "$":  # counts: whole numbers on every gridline
        peak = (peak + 3) // 4 * 4
    ticks = [(TOP + (HEIGHT - BOTTOM - TOP) * i / 4, _label(peak * (4 - i) / 4, unit)) for i in range(5)]
    left = max(LEFT, round(12 + AXIS_CHAR * max(len(label) for _, label in ticks)))
    plot_w, plot_h = WIDTH - left - 8, HEIGHT - BOTTOM - TOP
    slot = plot_w / max(len(days), 1)
    bar = max(slot * 0.7, 1.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{escape(title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
    ]
    for y, label in ticks:  # gridlines with their values
        parts.append(f'<line class="grid" x1="{left}" x2="{WIDTH - 8}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{label}</text>')
    for i, day in enumerate(days):
        x = left + i * slot + (slot - bar) / 2
        y = float(TOP + plot_h)
        for name in order:
            value = stacks[day].get(name)
            if not value:
                continue
            h = float(value / peak) * plot_h
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(h, 0.5):.1f}" fill="{colours[name]}">'
                f"<title>{day.isoformat()} · {escape(name)}: {_label(value, unit, exact=True)}</title></rect>"
            )
        if len(days) <= 14 or i % max(len(days) // 10, 1) == 0:
            parts.append(
                f'<text class="axis" x="{x + bar / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle">{day:%m-%d}</text>'
            )
    parts.append("</svg>")
    legend = [(name, colours[name], totals[name]) for name in order]
    return Chart("".join(parts), legend)


def _label(value: Decimal, unit: str, exact: bool = False) -> str:
    if unit == "$":
        if exact:
            return "$" + format(value.normalize(), "f")
        if value == 0 or value >= 1:
            return f"${value:,.2f}"
        return "$" + format(value.quantize(Decimal(1).scaleb(value.adjusted() - 1)), "f")  # 2 significant digits
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.1f}"
