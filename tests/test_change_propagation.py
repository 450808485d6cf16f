"""A key disabled, deleted or changed, or credit added, on one instance (or by the CLI) is applied by
every other instance and worker promptly: through Redis pub/sub, PostgreSQL LISTEN/NOTIFY or, on
SQLite, a local signal (cluster/changes.py). The database poll is turned off here
(OMNIROUTER_SYNC_INTERVAL=3600), so only the notices can bring the change within the deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnirouter.cluster.changes import APPLICATION_NAME, LocalSignals, signal_directory
from tests.cluster import Cluster, backends, cluster  # noqa: F401  (the fixture)

POLL_OFF = {"OMNIROUTER_SYNC_INTERVAL": "3600"}
PROMPTLY = 2.0  # seconds: a notice takes milliseconds (bench/propagation.py); the poll would take an hour
BODY = {"model": "sandbox/echo", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}


def chat(api: str, key: str) -> httpx.Response:
    """One request on a connection of its own (with several workers, each may land on either)."""
    return httpx.post(api + "/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def within(deadline: float, check: Callable[[], bool]) -> bool:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.01)
    return check()


def statuses(c: Cluster, key: str, which: list[int]) -> list[int]:
    return [chat(c.apis[i], key).status_code for i in which]


def served_everywhere(c: Cluster, key: str) -> None:
    """Every instance has used the key (and holds it in memory) before the change."""
    assert statuses(c, key, list(range(len(c.apis)))) == [200] * len(c.apis)


@pytest.mark.parametrize("backend", backends())
def test_a_key_disabled_on_one_instance_is_refused_on_the_others(cluster, backend: str) -> None:  # noqa: F811
    c = cluster(3, backend=backend, **POLL_OFF)
    made = c.create_key()
    key, hash_ = made["key"], made["data"]["hash"]
    served_everywhere(c, key)

    assert c.admin("PATCH", f"/keys/{hash_}", 0, json={"disabled": True}).status_code == 200
    assert within(PROMPTLY, lambda: statuses(c, key, [1, 2]) == [401, 401]), statuses(c, key, [1, 2])
    assert "disabled" in chat(c.apis[2], key).json()["error"]["message"]

    assert c.admin("PATCH", f"/keys/{hash_}", 1, json={"disabled": False}).status_code == 200
    assert within(PROMPTLY, lambda: statuses(c, key, [0, 2]) == [200, 200]), statuses(c, key, [0, 2])


@pytest.mark.parametrize("backend", backends())
def test_a_key_deleted_on_one_instance_is_refused_on_the_others(cluster, backend: str) -> None:  # noqa: F811
    c = cluster(3, backend=backend, **POLL_OFF)
    made = c.create_key()
    served_everywhere(c, made["key"])

    assert c.admin("DELETE", f"/keys/{made['data']['hash']}", 1).status_code == 200
    assert within(PROMPTLY, lambda: statuses(c, made["key"], [0, 2]) == [401, 401])


@pytest.mark.parametrize("backend", backends())
def test_a_limit_lowered_on_one_instance_applies_on_the_others(cluster, backend: str) -> None:  # noqa: F811
    c = cluster(3, backend=backend, **POLL_OFF)
    made = c.create_key()
    key = made["key"]
    served_everywhere(c, key)

    assert c.admin("PATCH", f"/keys/{made['data']['hash']}", 2, json={"limit": 0}).status_code == 200
    assert within(PROMPTLY, lambda: statuses(c, key, [0, 1]) == [402, 402]), statuses(c, key, [0, 1])
    assert "Key limit exceeded" in chat(c.apis[0], key).json()["error"]["message"]
    # And what the key reads back about itself, on an instance that did not make the change.
    own = httpx.get(c.apis[1] + "/key", headers={"Authorization": f"Bearer {key}"}, timeout=10)
    assert own.json()["data"]["limit"] == 0


def credits_add(c: Cluster, amount: str) -> None:
    """`omnirouter credits add` with the instances' settings (database, Redis)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMNIROUTER_")}
    out = subprocess.run(
        [sys.executable, "-m", "omnirouter", "credits", "add", amount],
        env={**env, **c.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr


@pytest.mark.parametrize("backend", backends())
def test_credits_added_through_the_cli_reach_every_instance(cluster, backend: str) -> None:  # noqa: F811
    c = cluster(3, backend=backend, **POLL_OFF)
    key = c.create_key()["key"]
    served_everywhere(c, key)  # unfunded: credit is not enforced

    # Funded with less than one request costs: from now on every instance enforces it.
    credits_add(c, "0.000000000001")

    def funded(i: int) -> bool:
        return c.admin("GET", "/credits", i).json()["data"]["total_credits"] == 0.000000000001

    assert within(PROMPTLY, lambda: all(funded(i) for i in range(3)))
    assert statuses(c, key, [0, 1, 2]) == [402, 402, 402]


@pytest.mark.parametrize("backend", backends())
def test_the_workers_of_one_server_hear_each_others_changes(cluster, backend: str) -> None:  # noqa: F811
    """`serve --workers 2`: a change made through one worker is applied by the other (on SQLite, the
    local signal between processes). Each request opens a connection of its own, which the kernel gives
    to either worker: 20 refusals in a row are all but impossible while one worker still serves the key."""
    c = cluster(1, backend=backend, args=("--sandbox", "--workers", "2"), **POLL_OFF)
    made = c.create_key()
    key = made["key"]
    assert statuses(c, key, [0] * 10) == [200] * 10

    assert c.admin("PATCH", f"/keys/{made['data']['hash']}", 0, json={"disabled": True}).status_code == 200
    assert within(PROMPTLY, lambda: statuses(c, key, [0] * 20) == [401] * 20)


@pytest.mark.postgres_pass  # Redis is refused beside SQLite
def test_notices_resume_after_redis_restarts_and_requests_are_served_meanwhile(cluster) -> None:  # noqa: F811
    c = cluster(3, backend="redis", **POLL_OFF)
    assert c.redis is not None
    made = c.create_key()
    key, hash_ = made["key"], made["data"]["hash"]
    served_everywhere(c, key)

    c.redis.kill()
    # Served meanwhile, from every instance, while the Redis that carried the notices is gone.
    for _ in range(3):
        served_everywhere(c, key)
    # Another instance's change meanwhile: no notice can carry it (the poll is off), but the full
    # sync each worker makes once its listener is back brings it.
    assert c.admin("PATCH", f"/keys/{hash_}", 0, json={"limit": 0}).status_code == 200

    failures: list[Any] = []
    load = threading.Thread(target=_keep_serving, args=(c, c.create_key()["key"], failures, 1.0))
    load.start()
    c.redis.start()  # empty, on the same port
    load.join()
    assert failures == []

    # Back: the change made during the outage is applied everywhere...
    assert within(5.0, lambda: statuses(c, key, [1, 2]) == [402, 402]), statuses(c, key, [1, 2])
    # ...and a new change goes through Redis again promptly.
    assert c.admin("PATCH", f"/keys/{hash_}", 1, json={"disabled": True}).status_code == 200
    assert within(PROMPTLY, lambda: statuses(c, key, [0, 2]) == [401, 401]), statuses(c, key, [0, 2])
    # The outage was logged once when it began and once when it ended, not at every attempt.
    out = c.instances[2].stop(drop=False)
    assert out.count("Redis (change notices) unreachable") == 1, out
    assert out.count("Redis (change notices) reachable again") == 1, out


def _keep_serving(c: Cluster, key: str, failures: list[Any], seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for api in c.apis:
            r = chat(api, key)
            if r.status_code != 200:
                failures.append((api, r.status_code, r.text))


@pytest.mark.postgres_pass  # LISTEN/NOTIFY is PostgreSQL's
def test_a_listener_cut_off_by_postgresql_reconnects_and_catches_up(cluster) -> None:  # noqa: F811
    c = cluster(3, backend="database", **POLL_OFF)
    made = c.create_key()
    key, hash_ = made["key"], made["data"]["hash"]
    served_everywhere(c, key)

    # Every worker's listening connection is closed by the server (a restart, a failover, an idle
    # timeout); a change made at once may find none listening.
    assert asyncio.run(_terminate_listeners(c.db_url)) == 3  # one worker per instance
    assert c.admin("PATCH", f"/keys/{hash_}", 0, json={"limit": 0}).status_code == 200
    served_everywhere(c, c.create_key()["key"])  # requests are served meanwhile

    # The listeners reconnect, and sync in full (what they missed): the change is applied everywhere...
    assert within(5.0, lambda: statuses(c, key, [1, 2]) == [402, 402]), statuses(c, key, [1, 2])
    # ...and the next change comes through the notices again.
    assert c.admin("PATCH", f"/keys/{hash_}", 0, json={"disabled": True}).status_code == 200
    assert within(PROMPTLY, lambda: statuses(c, key, [1, 2]) == [401, 401]), statuses(c, key, [1, 2])
    out = c.instances[2].stop(drop=False)
    assert out.count("PostgreSQL (change notices) unreachable") == 1, out
    assert out.count("PostgreSQL (change notices) reachable again") == 1, out


async def _terminate_listeners(url: str) -> int:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        return await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = $1",
            APPLICATION_NAME,
        )
    finally:
        await conn.close()


def test_a_dead_processs_socket_is_removed_by_the_next_sender(tmp_path: Path) -> None:
    """SQLite's local signal: a worker killed with -9 leaves its socket file; nobody reads it any more,
    and the next change removes it, while a live listener hears the change."""
    directory = signal_directory(tmp_path / "omnirouter.db")
    directory.mkdir(parents=True)
    dead = directory / "dead.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind(str(dead))  # closed without unlinking, as a killed process leaves it

    async def run() -> list[str | None]:
        heard: list[str | None] = []
        listener = asyncio.create_task(LocalSignals(directory).listen(heard.append))
        while not heard:  # bound (it says so with a first None)
            await asyncio.sleep(0.001)
        await LocalSignals(directory).publish("sender")
        while len(heard) < 2:
            await asyncio.sleep(0.001)
        listener.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await listener
        return heard

    assert asyncio.run(asyncio.wait_for(run(), 5)) == [None, "sender"]
    assert not dead.exists()
    assert list(directory.iterdir()) == []  # and the listener took its own socket away when it stopped
