"""Rollouts: an instance stopped with SIGTERM refuses new connections at once, finishes what is in
flight (streams included) within `shutdown_timeout`, ends the streams still open then cleanly and
bills them, flushes, and exits; three instances restarted one by one under load lose no request,
generation or cent."""

from __future__ import annotations

import itertools
import json
import random
import signal
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from omnirouter.testing import Delay, FakeOpenAI, FakeOpenAIThread, Stream
from tests.cluster import backends, cluster  # noqa: F401  (fixture)

PRICES = {"prompt": "0.0000013", "completion": "0.0000071"}


def _config(base_url: str) -> dict[str, Any]:
    return {
        "providers": [{"slug": "slow", "name": "Slow", "api": "openai", "base_url": base_url}],
        "models": [
            {
                "id": "test/slow",
                "name": "Slow",
                "context_length": 32768,
                "endpoints": [{"provider": "slow", "upstream_model": "slow-up", "pricing": PRICES}],
            }
        ],
    }


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIThread]:
    """An upstream whose streams take a while: a pause between events, and before each answer."""
    handle = FakeOpenAI.run_in_thread(pace=0.04)
    handle.always(Delay(0.1))
    yield handle
    handle.stop()


def _events(lines: Iterator[str]) -> Iterator[Any]:
    for line in lines:
        if line.startswith("data: "):
            data = line[6:]
            yield data if data == "[DONE]" else json.loads(data, parse_float=Decimal)


BODY = {"model": "test/slow", "messages": [{"role": "user", "content": "tell me about rolling restarts please"}]}


@pytest.mark.parametrize("workers", ["1", "2"])  # 2: the signal reaches the workers through their supervisor
def test_a_stream_past_shutdown_timeout_ends_cleanly_and_is_billed(cluster, upstream, workers):  # noqa: F811
    c = cluster(2, config=_config(upstream.base_url), OMNIROUTER_SHUTDOWN_TIMEOUT="4", OMNIROUTER_WORKERS=workers)
    key = c.create_key()
    upstream.script(Stream(chunks=2000, chunk_delay=0.02))  # 40 s: far past the bound
    stopping = c.instances[0]
    root = stopping.api.removesuffix("/api/v1")
    headers = {"Authorization": f"Bearer {key['key']}"}
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", stopping.api + "/chat/completions", headers=headers, json={**BODY, "stream": True}) as r,
    ):
        assert r.status_code == 200
        events = _events(r.iter_lines())
        first = next(events)
        assert first["choices"][0]["delta"]
        stopping.proc.send_signal(signal.SIGTERM)
        # New connections are refused (a load balancer moves on) while the stream goes on; and no
        # probe that gets through calls the instance ready.
        deadline = time.monotonic() + 10
        while True:
            try:
                ready = httpx.get(root + "/health/ready", timeout=2)
            # Refused; or queued as the listening socket closed, and then dropped or reset by the kernel.
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError):
                break
            assert ready.status_code == 503 and ready.json()["reason"] == "draining", ready.text
            assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
            time.sleep(0.02)
        rest = list(events)
    assert stopping.proc.wait(timeout=30) is not None
    output = stopping.stop(drop=False)
    assert "Traceback" not in output, output

    # The stream's end: the in-band error saying why, the usage and cost of what was relayed, [DONE].
    assert rest[-1] == "[DONE]"
    error_chunk, final = rest[-3], rest[-2]
    assert error_chunk["error"]["code"] == 503
    assert error_chunk["error"]["metadata"] == {"error_type": "server_shutdown"}
    assert "shutdown_timeout (4 s)" in error_chunk["error"]["message"]
    assert error_chunk["choices"][0]["finish_reason"] == "error"
    cost = final["usage"]["cost"]
    assert cost > 0 and final["usage"]["completion_tokens"] > 0

    # Recorded and billed as the client was told, read through the instance that stayed.
    gen = c.admin("GET", f"/generation?id={first['id']}", 1)
    assert gen.status_code == 200, gen.text
    row = json.loads(gen.text, parse_float=Decimal)["data"]
    assert (row["total_cost"], row["cancelled"], row["streamed"]) == (cost, True, True)
    _wait_for_usage(c, key["data"]["hash"], cost, instance=1)


def test_a_stream_still_waiting_for_its_upstream_at_the_bound_ends_cleanly_unbilled(cluster, upstream):  # noqa: F811
    c = cluster(2, config=_config(upstream.base_url), OMNIROUTER_SHUTDOWN_TIMEOUT="3")
    key = c.create_key()
    upstream.script(Delay(60))  # no first byte before the bound; keep-alive comments commit the answer
    stopping = c.instances[0]
    headers = {"Authorization": f"Bearer {key['key']}"}
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", stopping.api + "/chat/completions", headers=headers, json={**BODY, "stream": True}) as r,
    ):
        gen_id = r.headers["x-generation-id"]
        lines = r.iter_lines()
        assert next(lines) == ": OPENROUTER PROCESSING"
        stopping.proc.send_signal(signal.SIGTERM)
        events = list(_events(lines))
    assert stopping.proc.wait(timeout=30) is not None
    assert "Traceback" not in stopping.stop(drop=False)
    assert events[-1] == "[DONE]" and len(events) == 2
    assert events[0]["error"]["metadata"] == {"error_type": "server_shutdown"}
    # Nothing was generated: no generation, and so no spend (each lands with its generation), in the
    # database the stopped instance flushed before it exited.
    assert c.admin("GET", f"/generation?id={gen_id}", 1).status_code == 404


def _wait_for_usage(c: Any, key_hash: str, expected: Decimal, instance: int = 0) -> None:
    """The key's usage as an instance reports it equals `expected`, within a few sync intervals."""
    deadline = time.monotonic() + 15
    while True:
        r = c.admin("GET", f"/keys/{key_hash}", instance)
        usage = json.loads(r.text, parse_float=Decimal)["data"]["usage"]
        if usage == expected:
            return
        assert time.monotonic() < deadline, f"usage {usage} != {expected} (the sum of what clients were told)"
        time.sleep(0.1)


class LoadBalancer:
    """Clients as a load balancer sends them: each request on a new connection to one instance, and
    retried on another when the instance refused the connection or closed it without answering (a
    stopping server answers every request it read). Anything else is a failed request."""

    def __init__(self, c: Any, key: str) -> None:
        self.c = c
        self.headers = {"Authorization": f"Bearer {key}"}
        self.turn = itertools.count()
        self.seen: list[tuple[str, Decimal]] = []  # (generation id, the cost the client was told)
        self.failures: list[str] = []
        self.retries = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def _api(self) -> str:
        apis = self.c.apis
        return apis[next(self.turn) % len(apis)]

    def one(self, client: httpx.Client, stream: bool) -> None:
        body = {**BODY, "stream": stream}
        for _ in range(20):
            url = self._api() + "/chat/completions"
            try:
                with client.stream("POST", url, headers=self.headers, json=body) as r:
                    answered = True
                    if r.status_code != 200:
                        r.read()
                        raise AssertionError(f"{r.status_code} {r.text}")
                    if stream:
                        events = list(_events(r.iter_lines()))
                        assert events[-1] == "[DONE]", events[-3:]
                        final = events[-2]
                        assert not any("error" in e for e in events[:-1] if isinstance(e, dict)), events[-3:]
                        gen_id, cost = final["id"], final["usage"]["cost"]
                    else:
                        answer = json.loads(r.read(), parse_float=Decimal)
                        gen_id, cost = answer["id"], answer["usage"]["cost"]
                with self.lock:
                    self.seen.append((gen_id, cost))
                return
            except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                if "answered" in locals():  # the answer had begun: not a request to send again
                    with self.lock:
                        self.failures.append(f"{url}: {exc!r}")
                    return
                with self.lock:
                    self.retries += 1
            except Exception as exc:
                with self.lock:
                    self.failures.append(f"{url}: {exc!r}")
                return
        with self.lock:
            self.failures.append("no instance took the request in 20 tries")

    def client_loop(self, seed: int) -> None:
        rng = random.Random(seed)
        # A new connection per request (keep-alive off), as nginx talks to its upstreams by default.
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=60, limits=limits) as client:
            while not self.stop.is_set():
                self.one(client, stream=rng.random() < 0.5)


@pytest.mark.parametrize("backend", backends())
def test_rolling_restart_under_load_loses_no_request_generation_or_cent(cluster, upstream, backend):  # noqa: F811
    c = cluster(3, backend=backend, config=_config(upstream.base_url))
    key = c.create_key(limit=1000)
    lb = LoadBalancer(c, key["key"])
    clients = [threading.Thread(target=lb.client_loop, args=(i,), daemon=True) for i in range(6)]
    for t in clients:
        t.start()
    outputs = []
    try:
        for i in range(3):
            before = len(lb.seen)
            deadline = time.monotonic() + 30  # some answers on the current set of instances first
            while len(lb.seen) < before + 10 and not lb.failures:
                assert time.monotonic() < deadline, "no progress under load"
                time.sleep(0.05)
            outputs.append(c.restart(i))  # SIGTERM, wait for the exit, start it again
        before = len(lb.seen)
        deadline = time.monotonic() + 30
        while len(lb.seen) < before + 10 and not lb.failures:
            assert time.monotonic() < deadline, "no progress after the roll"
            time.sleep(0.05)
    finally:
        lb.stop.set()
        for t in clients:
            t.join(timeout=60)
    assert lb.failures == []
    assert all("Traceback" not in out for out in outputs), outputs
    assert len(lb.seen) >= 40
    assert len({gen_id for gen_id, _ in lb.seen}) == len(lb.seen)

    # Every generation a client was told about is in the database, with the cost it was told.
    for n, (gen_id, cost) in enumerate(lb.seen):
        r = c.admin("GET", f"/generation?id={gen_id}", n % 3)
        assert r.status_code == 200, (gen_id, r.text)
        assert json.loads(r.text, parse_float=Decimal)["data"]["total_cost"] == cost, gen_id
    # And the key's usage is the sum of those costs, to the digit.
    _wait_for_usage(c, key["data"]["hash"], sum((cost for _, cost in lb.seen), Decimal(0)))
