"""Budgets that hold across instances: three real instances share one database (and, in the
PostgreSQL pass, Redis), 200 concurrent requests spread over them, and a key's limit or the instance's
funded credit is not overspent (cluster/budgets.py). Before leases, 2 workers spent 1.6-1.7x a $0.01
limit and 4 workers 3.2-3.3x."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
import yaml

from omnirouter.governance.keys import key_hash, new_key
from tests.cluster import Cluster, backends

LIMIT = Decimal("0.01")
# The first 402 can come while other requests of the burst are still in flight, each holding its
# worst case (about twice what it then costs): with 200 at once on two busy cores, a tenth of the limit
# has been seen held that way (0.00899 spent of 0.01). Refusing early for any other reason would leave
# far more unspent.
SPENT_AT_LEAST = LIMIT * Decimal("0.8")


def budget_config(base_url: str) -> dict[str, Any]:
    """A model whose requests cost about half what they reserve (a short answer; at most 8 tokens):
    the limit admits many side by side, and 200 requests spend well past it if nothing holds it."""
    return {
        "providers": [{"slug": "fake", "name": "Fake", "api": "openai", "base_url": base_url}],
        "models": [{
            "id": "test/budget", "name": "Budget", "context_length": 4000, "supported_parameters": ["max_tokens"],
            "endpoints": [{"provider": "fake", "upstream_model": "m", "max_completion_tokens": 8,
                           "pricing": {"prompt": "0.000001", "completion": "0.00002"}}],
        }],
    }  # fmt: skip


def _body(i: int, stream: bool) -> dict[str, Any]:
    return {
        "model": "test/budget",
        "messages": [{"role": "user", "content": f"request {i}"}],
        "max_tokens": 8,
        "stream": stream,
        **({"stream_options": {"include_usage": True}} if stream else {}),
    }


async def _one(client: httpx.AsyncClient, api: str, key: str, i: int) -> tuple[int, Decimal]:
    """(status, cost the client was told) for one request; streamed every other time."""
    stream = i % 2 == 1
    headers = {"Authorization": f"Bearer {key}"}
    if not stream:
        r = await client.post(api + "/chat/completions", json=_body(i, False), headers=headers)
        cost = Decimal(str(r.json(parse_float=Decimal)["usage"]["cost"])) if r.status_code == 200 else Decimal(0)
        return r.status_code, cost
    cost = Decimal(0)
    async with client.stream("POST", api + "/chat/completions", json=_body(i, True), headers=headers) as r:
        if r.status_code != 200:
            await r.aread()
            return r.status_code, cost
        async for line in r.aiter_lines():
            if line.startswith("data: {") and '"usage"' in line:
                usage = json.loads(line[6:], parse_float=Decimal).get("usage")
                if usage and "cost" in usage:
                    cost = Decimal(str(usage["cost"]))
    return r.status_code, cost


async def _burst(apis: list[str], key: str, n: int) -> list[tuple[int, Decimal]]:
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=n)) as client:
        return await asyncio.gather(*(_one(client, apis[i % len(apis)], key, i) for i in range(n)))


def _until_spent(apis: list[str], key: str, n: int = 200) -> list[tuple[int, Decimal]]:
    """Bursts of `n` concurrent requests until the budget answers 402. A 429 says to retry: the rest
    of the budget was held by the other workers' leases, which go back once they are idle."""
    results: list[tuple[int, Decimal]] = []
    for _ in range(10):
        results += asyncio.run(_burst(apis, key, n))
        if any(status == 402 for status, _ in results):
            break
    return results


def _settled_usage(c: Cluster, key: str, told: Decimal) -> Decimal:
    """The key's usage once every instance's spend is in the database (what the clients were told,
    unless more was spent than they were told)."""
    deadline = time.monotonic() + 15
    while True:
        answers = [httpx.get(api + "/key", headers={"Authorization": f"Bearer {key}"}) for api in c.apis]
        usages = [Decimal(str(r.json(parse_float=Decimal)["data"]["usage"])) for r in answers]
        if all(u == told for u in usages) or time.monotonic() > deadline:
            return max(usages)
        time.sleep(0.05)


def key_scope(key: str) -> str:
    return "key:" + key_hash(key)


@pytest.mark.parametrize("backend", backends())
def test_a_key_limit_holds_across_three_instances_under_200_concurrent_requests(cluster, backend, fake_a):
    c = cluster(3, backend=backend, config=budget_config(fake_a.base_url))
    key = c.create_key(limit=float(LIMIT))["key"]
    results = _until_spent(c.apis, key)
    statuses = sorted({s for s, _ in results})
    told = sum((cost for s, cost in results if s == 200), Decimal(0))
    served = sum(1 for s, _ in results if s == 200)
    assert served >= 5, statuses  # the limit was reachable, not refused outright
    assert set(statuses) <= {200, 402, 429}, statuses
    usage = _settled_usage(c, key, told)
    assert usage == told  # every cent spent was told to a client, and recorded
    assert usage <= LIMIT, f"spent {usage} of a {LIMIT} limit across 3 instances ({served} served)"
    assert usage > SPENT_AT_LEAST, usage  # the 402 came when the limit was spent


@pytest.mark.parametrize("backend", backends())
def test_instance_credit_holds_across_three_instances(cluster, backend, fake_a):
    c = cluster(3, backend=backend, config=budget_config(fake_a.base_url))
    added = subprocess.run(
        [sys.executable, "-m", "omnirouter", "credits", "add", str(LIMIT)],
        env={**os.environ, **c.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert added.returncode == 0, added.stderr
    key = c.create_key()["key"]  # no limit of its own: the credit is what binds
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # every instance has seen the credit (sync or notification)
        credits = [c.admin("GET", "/credits", i) for i in range(3)]
        if all(Decimal(str(r.json(parse_float=Decimal)["data"]["total_credits"])) == LIMIT for r in credits):
            break
        time.sleep(0.05)
    results = _until_spent(c.apis, key)
    told = sum((cost for s, cost in results if s == 200), Decimal(0))
    usage = _settled_usage(c, key, told)
    assert usage == told
    assert SPENT_AT_LEAST < usage <= LIMIT, usage


def test_four_workers_of_one_serve_hold_a_key_limit(serve, fake_a, tmp_path):
    """`serve --workers 4` on one database, without Redis: the workers' leases come from the database."""
    config = tmp_path / "budget.yaml"
    config.write_text(yaml.safe_dump(budget_config(fake_a.base_url)))
    mgmt = new_key()
    s = serve("--workers", "4", OMNIROUTER_MANAGEMENT_KEY=mgmt, OMNIROUTER_CONFIG=str(config),
              OMNIROUTER_FLUSH_INTERVAL="0.05")  # fmt: skip
    created = httpx.post(s.api + "/keys", json={"name": "w", "limit": float(LIMIT)},
                         headers={"Authorization": f"Bearer {mgmt}"})  # fmt: skip
    key = created.json()["key"]
    results = _until_spent([s.api], key)
    told = sum((cost for status, cost in results if status == 200), Decimal(0))
    deadline = time.monotonic() + 15
    while True:
        usage = Decimal(str(httpx.get(s.api + "/key", headers={"Authorization": f"Bearer {key}"})
                            .json(parse_float=Decimal)["data"]["usage"]))  # fmt: skip
        if usage == told or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert usage == told
    assert SPENT_AT_LEAST < usage <= LIMIT, usage


@pytest.mark.postgres_pass  # Redis is refused beside SQLite
def test_a_key_limit_through_a_redis_loss(cluster, fake_a):
    """Redis dies mid-load and comes back empty: requests go on being served, the database holds
    the budget meanwhile (docs/configuration.md says how loosely), and after Redis returns its
    counters are rebuilt from the database: nothing spent is lost or counted twice."""
    limit = Decimal("0.03")
    c = cluster(3, backend="redis", config=budget_config(fake_a.base_url))
    key = c.create_key(limit=float(limit))["key"]
    results = asyncio.run(_burst(c.apis, key, 60))
    c.redis.kill()
    results += asyncio.run(_burst(c.apis, key, 60))
    c.redis.start()
    results += _until_spent(c.apis, key, 100)
    statuses = {s for s, _ in results}
    assert statuses <= {200, 402, 429}, statuses
    told = sum((cost for s, cost in results if s == 200), Decimal(0))
    usage = _settled_usage(c, key, told)
    assert usage == told
    assert limit * Decimal("0.9") < usage <= limit * Decimal("1.1"), usage
    # The counter Redis rebuilt comes to agree with the database's, to the nano-dollar: what was
    # counted while Redis was away is added at the next sync, and nothing is counted twice.
    spent_key = "omnirouter:{budget:" + key_scope(key) + "|total|1970-01-01}:spent"
    deadline = time.monotonic() + 10
    while (spent := int(c.redis.command("GET", spent_key).split(b"\r\n")[1])) != int(usage * 10**9):
        assert time.monotonic() < deadline and spent < int(usage * 10**9), (spent, usage)
        time.sleep(0.05)
