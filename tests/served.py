"""`omnirouter serve` as a real process, for the tests that start one (the `serve` fixture in conftest)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.gateway import FreshDatabase


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, tmp: Path, *args: str, database: FreshDatabase | None = None, **env: str) -> None:
        self.port = free_port()
        self.database = database or FreshDatabase()  # a database shared with others: FreshDatabase(create=False)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("OMNIROUTER_")},
            "OMNIROUTER_DATA_DIR": str(tmp / "data"),
            **({"OMNIROUTER_DATABASE_URL": self.database.url} if self.database.url else {}),
            **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "omnirouter", "serve", "--port", str(self.port), *args],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.api = f"http://127.0.0.1:{self.port}/api/v1"
        self.output: list[str] = []
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(self.api + "/models", timeout=1)
                break
            except httpx.TransportError as exc:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    if self.proc.poll() is None:  # still starting: stopped, so that its output ends
                        self.proc.kill()
                    out, _ = self.proc.communicate(timeout=10)
                    raise RuntimeError(f"serve did not start:\n{out}") from exc
                time.sleep(0.1)

    def stop(self, sig: int = signal.SIGTERM, *, drop: bool = True) -> str:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        out, _ = self.proc.communicate(timeout=60)
        if drop:
            self.database.drop()
        return out


def children(pid: int) -> list[int]:
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The parent pid is the second field after the parenthesised command name.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(stat.parent.name))
    return kids
