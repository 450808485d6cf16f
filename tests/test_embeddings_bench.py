"""bench.embeddings runs end to end: both targets answer every request with the right number of
vectors, and each figure is printed. No timing thresholds: benchmarks are not tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.sqlite_pass  # the harness, not the database: once per run

ROOT = Path(__file__).resolve().parent.parent


def test_the_embeddings_bench_measures_both_targets_without_errors() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bench.embeddings", "--quick", "--batches", "1,8", "--dims", "64", "--concurrency", "4"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.split()[:1] in (["1"], ["8"])]
    assert [row[0] for row in rows] == ["1", "8"], done.stdout
    for row in rows:
        direct, gateway, errors = (float(row[1].replace(",", "")), float(row[2].replace(",", "")), int(row[-1]))
        assert direct > 0 and gateway > 0 and errors == 0, row
