"""Instructions per relayed chunk when every chunk arrives on its own, as in figures 4 and 4b.

bench.instructions' per-chunk figure is for an unpaced stream, which the gateway (50x slower under
callgrind) reads several events at a time. Here the paced upstream spaces the chunks (`--gap`, 10 ms
by default, far more than a chunk takes the gateway even under callgrind), so each costs one read,
one relay and one write, as on the paced ladders. The gateway of each tree (this one, and with
`--baseline-src` another's `src`, e.g. a git worktree of HEAD) runs under callgrind; a window of
`--streams` sequential streams of 1 content chunk and one of streams of 1 + CHUNKS; per chunk is
(I(long) - I(short)) / CHUNKS / streams, the least of `--rounds` rounds. Not part of the full run.

    .venv/bin/python -m bench.chunkcost [--baseline-src /tmp/wt-base/src] [--streams 20] [--rounds 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from bench.instructions import ENDS, MODEL, PATHS, Served
from bench.targets import start_upstream

ROOT = Path(__file__).resolve().parent.parent
CHUNKS = 64


def body(chunks: int, gap: float) -> dict[str, object]:
    content = f"pace {chunks} {gap}"  # bench.paced: this stream's chunks and the seconds between them
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "stream": True}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chunkcost", description=__doc__.split("\n")[0])
    parser.add_argument("--baseline-src", type=Path, default=None)
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--gap", type=float, default=0.01, help="seconds between chunks")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--keep", type=Path, default=None, help="keep the callgrind dumps here")
    parser.add_argument("--no-native", action="store_true", help="counts only, no native CPU windows")
    args = parser.parse_args(argv)
    trees = [("this tree", ROOT / "src")]
    if args.baseline_src is not None:
        trees.insert(0, ("baseline", args.baseline_src.resolve()))
    path, end = PATHS["chat"], ENDS["chat"]
    short, long = body(1, args.gap), body(1 + CHUNKS, args.gap)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="omnirouter-chunkcost-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        paced = start_upstream("paced", "0", work, chunks=1, delay=args.gap)
        try:
            for name, src in trees:
                for mode in ("callgrind",) if args.no_native else ("callgrind", "native"):
                    served = Served(src, paced.base_url, work / f"{name}-{mode}".replace(" ", "-"), 3600.0,
                                    anthropic=False, callgrind=mode == "callgrind")  # fmt: skip
                    try:
                        served.send(path, short, end, args.warmup)
                        served.send(path, long, end, max(1, args.warmup // 10))
                        best: dict[str, float] = {}
                        for _ in range(args.rounds):
                            a = served.window(path, short, end, args.streams, "short")
                            b = served.window(path, long, end, args.streams, "long")
                            for metric in a:
                                per_chunk = (b[metric] - a[metric]) / CHUNKS / args.streams
                                best[metric] = min(best.get(metric, per_chunk), per_chunk)
                                key = f"{metric}_per_stream"
                                best[key] = min(best.get(key, a[metric] / args.streams), a[metric] / args.streams)
                        results.setdefault(name, {}).update(best)
                    finally:
                        served.close()
                r = results[name]
                native = (
                    ""
                    if args.no_native
                    else (
                        f"; natively {r['cpu'] / 1000:.1f} us CPU per chunk ({r['user'] / 1000:.1f} user), "
                        f"{r['cpu_per_stream'] / 1000:.0f} us per stream (one stream at a time: every chunk wakes "
                        f"an idle process, which costs more than under load)"
                    )
                )
                print(f"{name:10s} {r['instructions']:10,.0f} instructions per chunk, "
                      f"{r['instructions_per_stream']:12,.0f} per 1-chunk stream{native}", flush=True)  # fmt: skip
        finally:
            paced.proc.stop()
    if len(results) == 2:
        a, b = results["baseline"]["instructions"], results["this tree"]["instructions"]
        print(f"ratio (this tree / baseline) per chunk: {b / a:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
