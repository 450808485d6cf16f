"""Instructions per non-streamed chat request in the gateway, this tree against an earlier commit.

Seconds on a noisy 2-core machine move by 20% from run to run; instruction counts under
`valgrind --tool=callgrind` repeat to the digit. Each tree serves `omnirouter serve` (one worker,
SQLite, the echo upstream) under callgrind with instrumentation off; after a warm-up the window
`callgrind_control -i on` ... `off` covers N sequential requests, and the total is divided by N.

    .venv/bin/python -m bench.instructions                    # against the last commit (HEAD)
    .venv/bin/python -m bench.instructions --baseline REV -n 1000

By default the batched flush is moved out of the window (`flush_interval` 100 s): under callgrind a
request takes ~50x longer, so a flush would be shared by a handful of requests instead of hundreds and
would dominate the figure. `--flush-interval 0.25` counts it as a slow machine would.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

from bench.procs import clean_env, free_port
from bench.targets import MODEL, PRICING, UPSTREAM_MODEL, start_upstream

ROOT = Path(__file__).resolve().parent.parent
BODY = {"model": MODEL, "messages": [{"role": "user", "content": "hello there, how are you today?"}], "max_tokens": 16}


def _wait_up(api: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(api + "/models", timeout=5)
            return
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start under valgrind") from None
            time.sleep(0.5)


def count(src: Path, upstream: str, work: Path, requests: int, flush_interval: float) -> int:
    """Instructions the gateway of source tree `src` executes for `requests` requests."""
    config = work / "config.yaml"
    config.write_text(yaml.safe_dump({
        "providers": [{"slug": "bench", "name": "Bench", "api": "openai", "base_url": upstream}],
        "models": [{"id": MODEL, "endpoints": [{"provider": "bench", "upstream_model": UPSTREAM_MODEL,
                                                 "pricing": PRICING}]}],
    }))  # fmt: skip
    management, port, out = "sk-or-v1-" + secrets.token_hex(32), free_port(), work / "callgrind.out"
    env = clean_env(PYTHONPATH=str(src), OMNIROUTER_DATA_DIR=str(work / "data"), OMNIROUTER_MANAGEMENT_KEY=management,
                    OMNIROUTER_LOG_LEVEL="warning", OMNIROUTER_FLUSH_INTERVAL=str(flush_interval))  # fmt: skip
    argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}", sys.executable,
            "-m", "omnirouter", "serve", "--config", str(config), "--port", str(port)]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        api = f"http://127.0.0.1:{port}/api/v1"
        _wait_up(api, proc)
        admin = {"Authorization": f"Bearer {management}"}
        key = httpx.post(api + "/keys", json={"name": "bench"}, headers=admin, timeout=60).json()["key"]
        with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
            for _ in range(300):  # warm-up: imports, first connections, caches
                client.post("/chat/completions", json=BODY).raise_for_status()
            subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
            for _ in range(requests):
                client.post("/chat/completions", json=BODY).raise_for_status()
            subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
            subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
    finally:
        proc.terminate()
        proc.wait(timeout=300)
    total = 0
    for dump in work.glob("callgrind.out*"):
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("totals:"):
                total += int(line.split()[1])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="HEAD", help="the commit to compare with [HEAD]")
    parser.add_argument("-n", "--requests", type=int, default=1000, help="requests counted per tree [1000]")
    parser.add_argument("--flush-interval", type=float, default=100.0, help="seconds between flushes [100]")
    args = parser.parse_args()
    if not (shutil.which("valgrind") and shutil.which("callgrind_control")):
        sys.exit("valgrind is needed: apt-get install -y valgrind")
    with tempfile.TemporaryDirectory(prefix="omnirouter-instr-") as tmp:
        work = Path(tmp)
        baseline = work / "baseline-tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(baseline), args.baseline],
                       check=True)  # fmt: skip
        echo = start_upstream("echo", "0", work)
        try:
            figures = {}
            for name, src in (("baseline", baseline / "src"), ("this tree", ROOT / "src")):
                (work / name).mkdir()
                figures[name] = count(src, echo.base_url, work / name, args.requests, args.flush_interval)
        finally:
            echo.proc.stop()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)], check=False)
    label = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", args.baseline],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    base = figures["baseline"] / args.requests
    for name, total in figures.items():
        title = f"baseline ({label})" if name == "baseline" else name
        print(f"{title:24} {total / args.requests:12,.0f} instructions per request")
    print(f"{'ratio':24} {figures['this tree'] / args.requests / base:12.3f}")


if __name__ == "__main__":
    main()
