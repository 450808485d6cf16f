"""The benchmark harness runs end to end and writes its files. No timing thresholds: benchmarks are
not tests, so this checks only that every figure was measured and nothing failed."""

from __future__ import annotations

import importlib.util
import json
import math
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.sqlite_pass  # the harness, not the database: once per run

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("latency", "throughput", "memory", "streams", "workers")


def _numbers(value: Any) -> list[float]:
    """Every number in a nested JSON value."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("bench")
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--no-litellm", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out, done


def test_quick_run_writes_all_files(quick_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, done = quick_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in ("results.json", "results.md"):
        assert (out / name).stat().st_size > 0, name
    assert "| figure | direct | omnirouter | litellm |" in (out / "results.md").read_text()


def test_quick_run_measured_every_figure(quick_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = quick_run
    results = json.loads((out / "results.json").read_text())
    assert results["errors"] == {}
    assert results["meta"]["mode"] == "quick"
    assert results["targets"]["litellm"]["status"] == "skipped"
    figures = results["figures"]
    for figure in FIGURES:
        targets = ("omnirouter",) if figure in ("latency", "workers") else ("direct", "omnirouter")
        targets += ("byte-relay",) if figure == "streams" else ()
        for target in targets:
            data = figures[figure].get(target)
            assert data, f"{figure}/{target} missing"
            numbers = _numbers(data)
            assert numbers and all(math.isfinite(n) for n in numbers), f"{figure}/{target}: {data}"

    lat = figures["latency"]["omnirouter"]
    for kind in ("nonstream", "ttfb", "stream_short", "stream_long"):
        assert lat["added_ms"][kind]["n"] > 0
    assert lat["chunks"]["stream_long"] > lat["chunks"]["stream_short"]
    for target in ("direct", "omnirouter"):
        # Correctness under load, not speed: every request answered, every stream whole and in order.
        assert figures["throughput"][target]["requests"] > 0
        assert figures["throughput"][target]["errors"] == 0
        assert figures["memory"][target]["errors"] == 0
        assert figures["memory"][target]["rss_full_mb"] > 0
    for target in ("direct", "omnirouter", "byte-relay"):
        first_level = figures["streams"][target]["levels"][0]
        assert first_level["delivered"], first_level
    assert "Streams floor: a bare byte relay" in (out / "results.md").read_text()
    assert set(results["steal_pct"]) >= {"latency/omnirouter", "throughput/direct", "streams/byte-relay"}
    assert all(0 <= v <= 100 for v in results["steal_pct"].values())
    workers = figures["workers"]["omnirouter"]
    assert workers["rps_1"] > 0 and workers["rps_2"] > 0


def test_quick_run_draws_the_latency_plot(quick_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = quick_run
    notes = (out / "results.md").read_text()
    if importlib.util.find_spec("matplotlib") is None:  # the harness runs on this same interpreter
        assert "latency.png: not drawn: matplotlib is not installed" in notes
        assert not (out / "latency.png").exists()
        pytest.skip("matplotlib (the bench extra) is not installed: the quick run leaves the plot out, and says so")
    png = (out / "latency.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])  # the IHDR chunk
    assert (width, height) == (1200, 480)  # figsize 12 x 4.8 inches at 100 dpi
    assert "latency.png: CDFs of added latency" in notes


def test_a_full_run_without_matplotlib_refuses_to_start(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    if importlib.util.find_spec("matplotlib") is not None:
        pytest.skip("matplotlib is installed: a full run would start")
    from bench.run import main

    assert main(["--no-litellm", "--out", str(tmp_path)]) == 2  # before measuring anything
    err = capsys.readouterr().err
    assert "matplotlib is not installed" in err and "pip install -e '.[bench]'" in err
    assert list(tmp_path.iterdir()) == []


WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:9/v1/chat/completions
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.02ms    2.31ms  31.12ms   91.02%
    Req/Sec     8.24k   512.33     8.90k    70.00%
  Latency Distribution
     50%    3.42ms
     75%    4.10ms
     90%    5.00ms
     99%   11.45ms
  8196 requests in 1.00s, 5.36MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:   8196.30
Transfer/sec:      5.36MB
"""


def test_wrk_text_output_is_read() -> None:
    """The fallback reader for wrk's human output (the harness prefers its own done() line)."""
    from bench.load import parse_wrk_text

    r = parse_wrk_text(WRK_OUTPUT)
    assert r["requests"] == 8196
    assert r["duration_us"] == pytest.approx(1_000_000)
    assert r["p50_us"] == pytest.approx(3420)
    assert r["p99_us"] == pytest.approx(11450)
    assert (r["status"], r["socket"]) == (3, 3)
