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

from tests.cluster import Cluster, backends

LIMIT = Decimal("0.01")


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


@pytest.mark.parametrize("backend", backends())
def test_a_key_limit_holds_across_three_instances_under_200_concurrent_requests(cluster, backend, fake_a):
    c = cluster(3, backend=backend, config=budget_config(fake_a.base_url))
    key = c.create_key(limit=float(LIMIT))["key"]
    results = asyncio.run(_burst(c.apis, key, 200))
    statuses = sorted({s for s, _ in results})
    told = sum((cost for s, cost in results if s == 200), Decimal(0))
    served = sum(1 for s, _ in results if s == 200)
    assert served >= 5, statuses  # the limit was reachable, not refused outright
    assert set(statuses) <= {200, 402, 429}, statuses
    usage = _settled_usage(c, key, told)
    assert usage == told  # every cent spent was told to a client, and recorded
    assert usage <= LIMIT, f"spent {usage} of a {LIMIT} limit across 3 instances ({served} served)"
    # Spent close to the limit: refusals came from the limit, not from leases held back.
    assert usage > LIMIT / 2, usage


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
    results = asyncio.run(_burst(c.apis, key, 200))
    told = sum((cost for s, cost in results if s == 200), Decimal(0))
    usage = _settled_usage(c, key, told)
    assert usage == told
    assert LIMIT / 2 < usage <= LIMIT, usage
