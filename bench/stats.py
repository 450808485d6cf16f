"""Percentiles and summaries, nearest-rank, over plain lists."""

from __future__ import annotations

import math
from collections.abc import Sequence


def pct(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by nearest rank: a value that was observed, never interpolated."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summary(values: Sequence[float], digits: int = 4) -> dict[str, float | None]:
    if not values:  # None, not NaN: results.json stays strict JSON
        return {"n": 0, "p50": None, "p99": None, "mean": None}
    return {
        "n": len(values),
        "p50": round(pct(values, 50), digits),
        "p99": round(pct(values, 99), digits),
        "mean": round(sum(values) / len(values), digits),
    }
