"""What an observability destination costs the requests, and that a dead one costs them nothing more:
the gateway (`omnirouter serve --sandbox`, one worker, its own process) answering chat requests with
no destination, then with a blackholed one (a TCP server that accepts and never answers).

    .venv/bin/python -m bench.destinations [--requests N] [--rounds R]

Each round sends N sequential chat requests on one keep-alive connection and measures the gateway's
CPU time (its process, from /proc) and each request's latency; with the blackhole the deliverer keeps
a send hanging until observability_timeout and retries with backoff meanwhile. Prints per-request CPU
and latency (median of the rounds) and the ratios blackholed / none. Not a test: nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from omnirouter.governance.byok_crypto import new_key as new_encryption_key
from omnirouter.governance.keys import new_key

CHAT = {"model": "sandbox/chat", "messages": [{"role": "user", "content": "hello bench"}]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Blackhole:
    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return


def _serve(tmp: Path, port: int, management: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "OMNIROUTER_DATA_DIR": str(tmp),
        "OMNIROUTER_MANAGEMENT_KEY": management,
        "OMNIROUTER_ENCRYPTION_KEY": new_encryption_key(),
        "OMNIROUTER_OBSERVABILITY_TIMEOUT": "2",
        "OMNIROUTER_OBSERVABILITY_RETRY_INITIAL": "0.2",
        "OMNIROUTER_OBSERVABILITY_RETRY_MAX": "1",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "omnirouter", "serve", "--sandbox", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the gateway did not start: " + (proc.stderr.read().decode() if proc.stderr else ""))


def _round(client: httpx.Client, pid: int, requests: int) -> tuple[float, float, float]:
    """(CPU ms per request, median latency ms, p99 latency ms)."""
    latencies = []
    cpu = _cpu_seconds(pid)
    for _ in range(requests):
        start = time.perf_counter()
        r = client.post("/chat/completions", json=CHAT)
        latencies.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200, r.text
    used = (_cpu_seconds(pid) - cpu) * 1000 / requests
    latencies.sort()
    return used, statistics.median(latencies), latencies[int(len(latencies) * 0.99) - 1]


def measure(requests: int, rounds: int) -> dict[str, Any]:
    tmp, port, management = Path(tempfile.mkdtemp(prefix="omnirouter-destinations-bench-")), _free_port(), new_key()
    proc = _serve(tmp, port, management)
    hole = Blackhole()
    api = f"http://127.0.0.1:{port}/api/v1"
    out: dict[str, Any] = {"requests": requests, "rounds": rounds}
    try:
        with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {management}"}, timeout=30) as admin:
            key = admin.post("/keys", json={"name": "bench"}).json()["key"]
            with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
                _round(client, proc.pid, 200)  # warm up
                for label in ("none", "blackholed"):
                    if label == "blackholed":
                        made = admin.post("/observability/destinations", json={
                            "type": "webhook", "name": "blackhole", "config": {"url": f"http://127.0.0.1:{hole.port}/"},
                        })  # fmt: skip
                        assert made.status_code == 201, made.text
                    runs = [_round(client, proc.pid, requests) for _ in range(rounds)]
                    out[label] = {
                        "cpu_ms_per_request": statistics.median(r[0] for r in runs),
                        "latency_ms_median": statistics.median(r[1] for r in runs),
                        "latency_ms_p99": statistics.median(r[2] for r in runs),
                    }
                dest = admin.get("/observability/destinations").json()["data"][0]["delivery"]
                out["blackholed_delivery"] = dest
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        hole.sock.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    r = measure(args.requests, args.rounds)
    none, dead = r["none"], r["blackholed"]
    print(f"chat through the gateway, {r['rounds']} rounds of {r['requests']} sequential requests (median):")
    print(f"{'':24}{'none':>10}{'blackholed':>12}{'ratio':>8}")
    for name, unit in (("cpu_ms_per_request", "CPU ms/request"), ("latency_ms_median", "latency ms p50"),
                       ("latency_ms_p99", "latency ms p99")):  # fmt: skip
        print(f"{unit:24}{none[name]:10.3f}{dead[name]:12.3f}{dead[name] / none[name]:8.3f}")
    d = r["blackholed_delivery"]
    print(f"blackholed destination: delivered {d['delivered']}, failed {d['failed']}, pending {d['pending']} "
          f"({d['last_error']})")  # fmt: skip


if __name__ == "__main__":
    main()
