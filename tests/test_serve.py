"""`omnirouter serve` as a user runs it: a real process, the sandbox quickstart, graceful restarts."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import sys
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from omnirouter.governance.keys import new_key
from tests.served import children

HELLO = [{"role": "user", "content": "hello sandbox"}]


def test_sandbox_quickstart_mints_a_management_key(serve):
    s = serve("--sandbox")
    out = s.stop(signal.SIGTERM, drop=False)
    assert "Omnirouter data:" in out
    minted = [w for w in out.split() if w.startswith("sk-or-v1-")]
    assert len(minted) == 1, out
    # uvicorn exits by re-raising the signal it handled, after its graceful shutdown.
    assert s.proc.returncode in (0, -signal.SIGTERM)
    # A second start on the same data does not mint another key.
    again = serve(
        "--sandbox",
        OMNIROUTER_DATA_DIR=s.env["OMNIROUTER_DATA_DIR"],
        **({"OMNIROUTER_DATABASE_URL": s.env["OMNIROUTER_DATABASE_URL"]} if s.database.url else {}),
    )
    assert not [w for w in again.stop().split() if w.startswith("sk-or-v1-")]
    s.database.drop()


def test_sandbox_answers_offline_through_a_fresh_key(serve):
    mgmt = new_key()
    s = serve("--sandbox", OMNIROUTER_MANAGEMENT_KEY=mgmt)
    try:
        created = httpx.post(s.api + "/keys", json={"name": "quickstart"}, headers={"Authorization": f"Bearer {mgmt}"})
        assert created.status_code == 201, created.text
        key = created.json()["key"]
        r = httpx.post(
            s.api + "/chat/completions",
            json={"model": "sandbox/chat", "messages": HELLO},
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["choices"][0]["message"]["content"]
        assert body["provider"].lower().startswith("sandbox")
        assert body["usage"]["cost"] > 0
    finally:
        s.stop()


def test_sigterm_flushes_every_generation(serve, tmp_path):
    """Generations are written in batches; a graceful stop must not lose the last batch."""
    mgmt = new_key()
    env = {"OMNIROUTER_MANAGEMENT_KEY": mgmt}
    s = serve("--sandbox", OMNIROUTER_FLUSH_INTERVAL="3600", OMNIROUTER_SYNC_INTERVAL="3600", **env)
    key = httpx.post(s.api + "/keys", json={"name": "k"}, headers={"Authorization": f"Bearer {mgmt}"}).json()["key"]
    ids, costs = [], []
    with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
        for i in range(5):
            body = {"model": "sandbox/echo", "messages": [{"role": "user", "content": f"message {i}"}]}
            r = c.post(s.api + "/chat/completions", json=body)
            ids.append(r.headers["x-generation-id"])
            costs.append(Decimal(str(r.json(parse_float=Decimal)["usage"]["cost"])))
    s.stop(signal.SIGTERM, drop=False)

    # Start again on the same database: every generation and its spend is there.
    same_db = {"OMNIROUTER_DATABASE_URL": s.database.url} if s.database.url else {}
    s2 = serve("--sandbox", OMNIROUTER_DATA_DIR=s.env["OMNIROUTER_DATA_DIR"], **env, **same_db)
    try:
        with httpx.Client(headers={"Authorization": f"Bearer {key}"}, timeout=10) as c:
            for gen_id in ids:
                assert c.get(s2.api + "/generation", params={"id": gen_id}).status_code == 200
            usage = c.get(s2.api + "/key").json(parse_float=Decimal)["data"]["usage"]
        assert usage == sum(costs)
    finally:
        s2.stop()
        s.database.drop()


def test_two_workers_agree_on_keys_and_spend(serve):
    """Two worker processes share one database: a key made on one works on both, a disabled key
    stops on both, and the spend both recorded adds up exactly."""
    mgmt = new_key()
    s = serve("--sandbox", "--workers", "2", OMNIROUTER_MANAGEMENT_KEY=mgmt, OMNIROUTER_SYNC_INTERVAL="0.2")
    try:
        admin = {"Authorization": f"Bearer {mgmt}"}
        created = httpx.post(s.api + "/keys", json={"name": "shared"}, headers=admin).json()
        auth = {"Authorization": f"Bearer {created['key']}"}
        costs = []
        for i in range(16):  # a new connection each time, so both workers take some
            r = httpx.post(
                s.api + "/chat/completions",
                headers=auth,
                timeout=10,
                json={"model": "sandbox/echo", "messages": [{"role": "user", "content": f"n{i}"}]},
            )
            assert r.status_code == 200, r.text
            costs.append(Decimal(str(r.json(parse_float=Decimal)["usage"]["cost"])))
        deadline = time.monotonic() + 10
        while True:
            usage = httpx.get(s.api + "/key", headers=auth).json(parse_float=Decimal)["data"]["usage"]
            if usage == sum(costs) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert usage == sum(costs)

        assert (
            httpx.patch(s.api + f"/keys/{created['data']['hash']}", json={"disabled": True}, headers=admin).status_code
            == 200
        )
        time.sleep(1.0)  # a few sync intervals
        statuses = {httpx.get(s.api + "/key", headers=auth).status_code for _ in range(12)}
        assert statuses == {401}
    finally:
        s.stop()


def _established(pid: int, port: int) -> int:
    """How many TCP connections to `port` the process holds open."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":  # 01: ESTABLISHED
                inodes.add(fields[9])
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            held += os.readlink(fd)[8:-1] in inodes
    return held


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; SO_REUSEPORT balances only on Linux")
def test_two_workers_share_a_pool_of_connections_opened_at_once(serve):
    """A client that opens its keep-alive pool at once (an SDK, a load balancer) gets both workers:
    with one shared listening socket, the first worker to wake would accept every connection."""
    s = serve("--sandbox", "--workers", "2")
    conns = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(16)]
    try:
        for c in conns:
            c.sendall(b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\n\r\n")
        for c in conns:
            assert c.recv(65536).startswith(b"HTTP/1.1 200")
        held = {pid: _established(pid, s.port) for pid in children(s.proc.pid)}
        assert sum(held.values()) == 16
        assert len([n for n in held.values() if n]) == 2, held  # other children: multiprocessing's helpers
    finally:
        for c in conns:
            c.close()
        s.stop()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/<pid>/limits")
def test_serve_raises_its_open_files_limit_to_the_hard_limit(serve):
    """Every open stream holds two sockets: a soft limit of 1,024 would cap a worker at ~500 streams."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"the hard open-files limit here is {hard}: nothing to raise to")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # the server inherits it
    try:
        s = serve("--sandbox")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        line = next(x for x in Path(f"/proc/{s.proc.pid}/limits").read_text().splitlines() if "open files" in x)
        served_soft, served_hard = line.split()[3:5]
        assert served_soft == served_hard != "256", line
    finally:
        s.stop()
