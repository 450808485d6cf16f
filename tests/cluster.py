"""Several `omnirouter serve` instances on loopback sharing one database (and a Redis of the test's own),
for the tests of what a cluster shares (issue 14).

Which shared backends a test can use depends on the pass the suite runs in: on SQLite, instances on
one machine share the database file (no Redis: Redis on SQLite is refused); on PostgreSQL, with and
without Redis. `backends()` names them, so a test parametrized over it runs in both passes and skips
in neither.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from omnirouter.governance.keys import new_key
from tests.gateway import FreshDatabase, postgres_url
from tests.served import Served, free_port

REDIS_SERVER = shutil.which("redis-server")


def backends() -> list[str]:
    """ "redis" (PostgreSQL + Redis) in the PostgreSQL pass, and "database" (no Redis) in both."""
    return ["redis", "database"] if postgres_url() else ["database"]


class RedisServer:
    """A redis-server of the test's own on a free port (no persistence), which a test may kill and
    start again on the same port, empty, as a Redis that restarted after a loss."""

    def __init__(self, tmp: Path) -> None:
        if REDIS_SERVER is None:
            if os.environ.get("CI") == "true":
                raise RuntimeError("redis-server is required in CI")
            pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
        self.dir = tmp / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.01)

    def ping(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    def command(self, *args: str) -> bytes:
        """One command in Redis's inline form (tests read keys with it without a client library)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
            s.sendall((" ".join(args) + "\r\n").encode())
            return s.recv(65536)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        self.kill()


class Cluster:
    """`n` instances sharing one database: a fresh PostgreSQL database for backend "redis" (with a
    Redis of its own) or in the PostgreSQL pass; otherwise one SQLite file. Each instance has its own
    data_dir (journal) and port; `config` is the YAML config file they all read (providers, models)."""

    def __init__(
        self,
        tmp: Path,
        n: int,
        *,
        backend: str = "database",
        config: dict[str, Any] | None = None,
        args: tuple[str, ...] = ("--sandbox",),
        **env: str,
    ) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.management_key = new_key()
        self.redis = RedisServer(tmp) if backend == "redis" else None
        self.database = FreshDatabase()
        if backend == "redis" and self.database.url is None:
            raise RuntimeError("backend 'redis' needs the PostgreSQL pass (Redis on SQLite is refused)")
        self.db_url = self.database.url or f"sqlite+aiosqlite:///{tmp / 'shared.db'}"
        config_path = tmp / "cluster.yaml"
        config_path.write_text(yaml.safe_dump(config or {}))
        self.env = {
            "OMNIROUTER_MANAGEMENT_KEY": self.management_key,
            "OMNIROUTER_DATABASE_URL": self.db_url,
            "OMNIROUTER_CONFIG": str(config_path),
            "OMNIROUTER_FLUSH_INTERVAL": "0.05",
            **({"OMNIROUTER_REDIS_URL": self.redis.url} if self.redis else {}),
            **env,
        }
        self.args = args
        self.instances: list[Served] = []
        try:
            for i in range(n):
                self.instances.append(self.start_instance(i))
        except BaseException:
            self.close()
            raise

    def start_instance(self, i: int, **env: str) -> Served:
        """Start instance `i` (again, after a stop: same data_dir, so its journal is replayed)."""
        data_dir = str(self.tmp / f"data{i}")
        # The database is the cluster's: stopping an instance does not drop it.
        shared = FreshDatabase(create=False)
        env = {**self.env, **env, "OMNIROUTER_DATA_DIR": data_dir}
        return Served(self.tmp / f"i{i}", *self.args, database=shared, **env)

    def restart(self, i: int, sig: int = signal.SIGTERM) -> str:
        out = self.instances[i].stop(sig, drop=False)
        self.instances[i] = self.start_instance(i)
        return out

    @property
    def apis(self) -> list[str]:
        return [s.api for s in self.instances]

    def admin(self, method: str, path: str, i: int = 0, **kw: Any) -> httpx.Response:
        return httpx.request(
            method, self.apis[i] + path, headers={"Authorization": f"Bearer {self.management_key}"}, timeout=10, **kw
        )

    def create_key(self, i: int = 0, **fields: Any) -> dict[str, Any]:
        r = self.admin("POST", "/keys", i, json={"name": "cluster", **fields})
        assert r.status_code == 201, r.text
        return r.json()

    def close(self) -> None:
        for s in self.instances:
            if s.proc.poll() is None:
                s.stop(signal.SIGKILL, drop=False)
        if self.redis is not None:
            self.redis.stop()
        self.database.drop()


@pytest.fixture
def cluster(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Start clusters (`cluster(n, backend=..., config=..., **env)`); all stopped after the test."""
    made: list[Cluster] = []

    def start(n: int, **kw: Any) -> Cluster:
        made.append(Cluster(tmp_path / f"c{len(made)}", n, **kw))
        return made[-1]

    yield start
    for c in made:
        c.close()
