"""What Python objects one open stream holds in the gateway: tracemalloc and gc counts, idle vs N open.

Not part of the full run. The gateway starts with tracemalloc on (bench/streammem_hook/sitecustomize.py,
on PYTHONPATH), the paced upstream sends long slow streams, and the stream client opens N of them. A
snapshot is taken idle (after a few streams have run, so that first-use imports and caches are in it)
and another with all N open; the difference, grouped by where it was allocated, divided by N, is what
one open stream holds, by allocation site and by object type.

    .venv/bin/python -m bench.streammem [--streams 500] [--frames 1] [--top 40] [--group lineno|traceback]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from bench import procs, streams, targets
from bench.procs import clean_env, spawn

HOOK = Path(__file__).resolve().parent / "streammem_hook"


def _snapshot(proc: procs.Proc, out: Path, n: int) -> tuple[tracemalloc.Snapshot, dict[str, list[int]], dict[str, int]]:
    os.kill(proc.pid, signal.SIGUSR1)
    done = out / f"{n}.done"
    deadline = time.monotonic() + 120
    while not done.exists():
        if time.monotonic() > deadline or not proc.alive():
            raise RuntimeError(f"no snapshot from the gateway: {proc.output()}")
        time.sleep(0.1)
    snapshot = tracemalloc.Snapshot.load(str(out / f"{n}.snapshot"))
    return (
        snapshot,
        json.loads((out / f"{n}.types.json").read_text()),
        json.loads((out / f"{n}.owners.json").read_text()),
    )


def _client(target: targets.Target, work: Path, n: int, ref: list[str], delay: float, tag: str) -> procs.Proc:
    ref_file, body_file = work / "ref.json", work / "body.json"
    ref_file.write_text(json.dumps(ref))
    body_file.write_text(json.dumps(streams.body(target.stream_model)))
    nominal = (len(ref) - 1) * delay
    argv = [sys.executable, "-m", "bench.streamclient", "--port", str(target.stream_port), "--path", target.path]
    argv += ["--body-file", str(body_file), "--ref-file", str(ref_file), "--streams", str(n), "--ramp", "2"]
    argv += ["--timeout", str(nominal * 3 + 30), "--nominal", str(nominal), "--delay", str(delay)]
    argv += [f"--header={k}: {v}" for k, v in target.headers.items()]
    return spawn(f"client-{tag}", argv, cores="0", env=clean_env(), log_dir=work, cwd=HOOK.parent.parent)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.streammem", description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--frames", type=int, default=1, help="traceback depth recorded by tracemalloc")
    parser.add_argument("--group", default="lineno", choices=("lineno", "traceback", "filename"))
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args(argv)
    procs.install_cleanup()
    procs.raise_nofile()
    work = Path(tempfile.mkdtemp(prefix="bench-streammem-"))
    snaps = work / "snaps"
    snaps.mkdir()
    delay, chunks = 1.0, 40
    old = {k: os.environ.get(k) for k in ("PYTHONPATH", "BENCH_TRACEMALLOC", "BENCH_TRACEMALLOC_DIR")}
    try:
        echo = targets.start_upstream("upstream", "0", work)
        paced = targets.start_upstream("upstream-paced", "0", work, chunks=chunks, delay=delay)
        ref = streams.fetch_reference(targets.direct(echo, paced))
        # start_omnirouter builds the child's environment from ours: set the hook's variables here.
        os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HOOK), old["PYTHONPATH"]]))
        os.environ["BENCH_TRACEMALLOC"] = str(args.frames)
        os.environ["BENCH_TRACEMALLOC_DIR"] = str(snaps)
        gw = targets.start_omnirouter("omnirouter", "1", 1, echo, paced, work)
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        warm = _client(gw, work, 20, ref[:3], delay, "warm")  # first use: imports, caches, pool
        while warm.alive():
            time.sleep(0.2)
        time.sleep(2)
        rss0 = gw.proc.rss_kb()
        idle, idle_types, idle_owners = _snapshot(gw.proc, snaps, 1)
        client = _client(gw, work, args.streams, ref, delay, "open")
        time.sleep(2 + 2 * delay + 3)  # the ramp, a couple of chunks, and slack under tracemalloc
        rss1 = gw.proc.rss_kb()
        full, full_types, full_owners = _snapshot(gw.proc, snaps, 2)
        alive = client.alive()
        client.stop()
    finally:
        procs.stop_all()
    n = args.streams
    print(f"{n} streams open (client still running: {alive}); RSS {rss0} -> {rss1} KB under tracemalloc, "
          f"{(rss1 - rss0) * 1024 / n:.0f} bytes per stream")  # fmt: skip
    flt = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = full.filter_traces(flt).compare_to(idle.filter_traces(flt), args.group)
    total = sum(d.size_diff for d in diff)
    print(f"traced memory: +{total / n:.0f} bytes per stream, in {sum(d.count_diff for d in diff) / n:.1f} blocks\n")
    print(f"{'bytes/stream':>12s} {'blocks/stream':>13s}  where")
    for d in diff[: args.top]:
        where = d.traceback.format()[-2:] if args.group == "traceback" else [str(d.traceback[0])]
        print(f"{d.size_diff / n:12.0f} {d.count_diff / n:13.2f}  {' <- '.join(x.strip() for x in where)}")
    print(f"\n{'objects/stream':>14s} {'bytes/stream':>12s}  gc-tracked type (sys.getsizeof, shallow)")
    rows = []
    for name, (count, size) in full_types.items():
        c0, s0 = idle_types.get(name, (0, 0))
        rows.append(((size - s0) / n, (count - c0) / n, name))
    for size, count, name in sorted(rows, reverse=True)[: args.top]:
        if count:
            print(f"{count:14.2f} {size:12.0f}  {name}")
    print(f"\n{'objects/stream':>14s}  held by (the first referrer gc finds)")
    held = sorted(((c - idle_owners.get(k, 0)) / n, k) for k, c in full_owners.items())
    for count, key in reversed(held[-args.top :]):
        if count >= 0.5:
            print(f"{count:14.2f}  {key}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
