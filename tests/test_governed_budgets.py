"""Every kind of budget under load: a key's limit, the instance's credit, a guardrail's `limit_usd` and
a workspace's budget each hold under 200 concurrent requests, streamed or not, against an upstream
that ignores max_tokens; a met budget refuses with its own answer, and the counters equal what the
responses cost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest

from omnirouter.testing import Delay
from tests.gateway import Gateway
from tests.test_limits_and_credits import (
    GREEDY,
    GREEDY_COST,
    assert_overrun_refusal,
    body_bytes,
    exact,
    fund,
    in_flight_is_empty,
)

D = Decimal
LIMIT = D("0.02")  # five requests' worth at what the greedy upstream bills


@dataclass
class Budgeted:
    secret: str
    scope: str  # the ledger scope whose spend the budget counts
    period: str
    held: str  # how a 429 for this budget starts
    spent_status: int
    spent_message: str  # what a refusal once it is met says


def _key_limit(gw: Gateway) -> Budgeted:
    created = gw.create_key(name="limited", limit=float(LIMIT))
    return Budgeted(created["key"], "key:" + created["data"]["hash"], "total", "This key's remaining limit is",
                    gw.settings.key_limit_status, "Key limit exceeded (total limit)")  # fmt: skip


def _credit(gw: Gateway) -> Budgeted:
    fund(gw, str(LIMIT))
    return Budgeted(gw.create_key(name="unlimited")["key"], "instance", "total", "The instance's remaining credits are",
                    402, "Insufficient credits")  # fmt: skip


def _guardrail(gw: Gateway) -> Budgeted:
    created = gw.create_key(name="guarded")
    with gw.admin() as admin:
        r = admin.post(
            "/guardrails", json={"name": "Team budget", "limit_usd": float(LIMIT), "reset_interval": "daily"}
        )
        assert r.status_code in (200, 201), r.text
        guardrail = r.json()["data"]
        r = admin.post(
            f"/guardrails/{guardrail['id']}/assignments/keys", json={"key_hashes": [created["data"]["hash"]]}
        )
        assert r.status_code == 200, r.text
    scope = _governed_scope(gw, created["key"])
    return Budgeted(created["key"], scope, "day", "What is left of the budget of guardrail 'Team budget' is", 403,
                    "Team budget")  # fmt: skip


def _workspace(gw: Gateway) -> Budgeted:
    with gw.admin() as admin:
        r = admin.post("/workspaces", json={"name": "Budgeted", "slug": "budgeted"})
        assert r.status_code in (200, 201), r.text
        workspace = r.json()["data"]
        r = admin.put(f"/workspaces/{workspace['id']}/budgets/monthly", json={"limit_usd": float(LIMIT)})
        assert r.status_code == 200, r.text
    created = gw.create_key(name="in a workspace", workspace_id=workspace["id"])
    scope = _governed_scope(gw, created["key"])
    held = "What is left of the monthly budget of workspace 'Budgeted' is"
    return Budgeted(created["key"], scope, "month", held, 403, "Workspace monthly budget of $0.02 exceeded")


def _governed_scope(gw: Gateway, secret: str) -> str:
    """The one governed budget's scope on this key, as the meter sees it."""
    from omnirouter.governance import budgets

    st = gw.state
    key = next(k for k in st.keys.by_hash.values() if k.hash == _hash(secret))
    governed = budgets.for_key(st.governance, key)
    assert len(governed) == 1, governed
    return governed[0].scope


def _hash(secret: str) -> str:
    from omnirouter.governance.keys import key_hash

    return key_hash(secret)


KINDS: dict[str, Callable[[Gateway], Budgeted]] = {
    "key limit": _key_limit,
    "instance credit": _credit,
    "guardrail limit_usd": _guardrail,
    "workspace budget": _workspace,
}


async def _one(c: httpx.AsyncClient, stream: bool) -> tuple[int, Any]:
    """(status, the cost the client was told) of one `max_tokens: 1` request."""
    raw = body_bytes(max_tokens=1, stream=stream)
    if not stream:
        r = await c.post("/chat/completions", content=raw)
        return r.status_code, r
    async with c.stream("POST", "/chat/completions", content=raw) as r:
        if r.status_code != 200:
            await r.aread()
            return r.status_code, r
        cost = None
        async for line in r.aiter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:], parse_float=D)
                cost = (chunk.get("usage") or {}).get("cost", cost)
        return 200, cost


async def _wave(gw: Gateway, secret: str, n: int, stream: bool) -> list[tuple[int, Any]]:
    limits = httpx.Limits(max_connections=n, max_keepalive_connections=n)
    headers = {"Authorization": f"Bearer {secret}", "content-type": "application/json"}
    async with httpx.AsyncClient(base_url=gw.api, headers=headers, timeout=30, limits=limits) as c:
        return await asyncio.gather(*(_one(c, stream) for _ in range(n)))


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_budget_holds_under_200_concurrent_requests(
    make_gateway: Callable[..., Gateway], fake_a: Any, kind: str, stream: bool
) -> None:
    gw = make_gateway()
    b = KINDS[kind](gw)
    fake_a.fake.always(Delay(0.2, then=GREEDY))  # slow enough for a wave to be in flight at once
    answers: list[tuple[int, Any]] = []
    for n in (200, *[50] * 10):  # 200 at once, then waves until one is refused entirely
        wave = asyncio.run(_wave(gw, b.secret, n, stream))
        answers += wave
        if not any(status == 200 for status, _ in wave):
            break
    fake_a.fake.always(None)

    costs = []
    for status, answer in answers:
        if status == 200:
            cost = answer if stream else exact(answer)["usage"]["cost"]
            assert cost == GREEDY_COST  # billed what the upstream reported
            costs.append(cost)
        elif status == 429:
            assert_overrun_refusal(answer, b.held)
        else:
            assert status in (402, b.spent_status), answer.text
    assert len(costs) >= 2
    assert len([q for q in fake_a.fake.requests if q.method == "POST"]) == len(costs)  # refusals cost nothing
    last = answers[-50:]  # the wave that found the budget met
    for status, answer in last:
        assert status == b.spent_status and b.spent_message in answer.json()["error"]["message"], answer.text

    spent = sum(costs, D(0))
    assert spent <= LIMIT + GREEDY_COST  # over by one request's overrun at most
    assert in_flight_is_empty(gw, b.scope, "instance")
    gw.flush()
    ledger = gw.state.ledger
    assert ledger.spent(b.scope, b.period)[0] == spent  # the counters equal what the responses said
    assert (
        sum(ledger.base.get((b.scope, b.period, start), [D(0)])[0] for start in _starts()) == spent
    )  # in the database


def _starts() -> set[str]:
    from datetime import UTC, datetime

    from omnirouter.accounting.periods import window_starts

    return set(window_starts(datetime.now(UTC)).values())
