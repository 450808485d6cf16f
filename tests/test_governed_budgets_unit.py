"""The meter with the budgets governance puts on a key (guardrails, workspaces): checked beside the
key's limit and the instance's credit, the lowest wins, windows reset at midnight UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from omnirouter.accounting import meter
from omnirouter.accounting.cost import worst_case
from omnirouter.accounting.ledger import Ledger
from omnirouter.accounting.periods import window_starts
from omnirouter.catalog.types import Pricing
from omnirouter.errors import GatewayError
from omnirouter.governance.budgets import GovernedBudget
from omnirouter.governance.keys import KeyRecord, key_hash, new_key

D = Decimal
ALPHA = Pricing(prompt=D("0.000001"), completion=D("0.000002"))


def _key(limit: str | None = None) -> KeyRecord:
    secret = new_key()
    return KeyRecord(key_hash(secret), "k", "l", datetime.now(UTC), limit=D(limit) if limit else None)


def _budget(scope: str, limit: str, period: str = "day", *, byok: bool = False) -> GovernedBudget:
    owner = f"the budget of guardrail '{scope}'"
    return GovernedBudget(scope, period, D(limit), byok, f"Budget {scope}/{period} exceeded.", owner)


def _spend(ledger: Ledger, scopes: tuple[str, ...], cost: str, byok: str = "0") -> None:
    ledger.settle(ledger.reserve(scopes, D(0)), D(cost), byok_cost=D(byok))


def test_a_met_budget_refuses_with_its_own_403_and_others_are_untouched() -> None:
    ledger, key = Ledger(), _key()
    team = _budget("grd:team", "0.001")
    meter.reserve(ledger, key, ALPHA, 100, 100, key_limit_status=402, governed=[team])  # 0.0003 fits
    _spend(ledger, ("grd:team",), "0.001")
    with pytest.raises(GatewayError) as exc:
        meter.reserve(ledger, key, ALPHA, 1, 1, key_limit_status=402, governed=[team])
    assert (exc.value.status, exc.value.message) == (403, "Budget grd:team/day exceeded.")
    # Another key, or the same key without the guardrail, is not limited by it.
    meter.reserve(ledger, _key(), ALPHA, 1, 1, key_limit_status=402)
    meter.reserve(ledger, key, ALPHA, 1, 1, key_limit_status=402, governed=[_budget("grd:other", "1")])


def test_the_lowest_budget_wins_and_the_402_names_it() -> None:
    ledger, key = Ledger(), _key("10")
    ledger.credits = D("5")
    small = _budget("ws:a", "0.0009", "month")
    with pytest.raises(GatewayError) as exc:
        meter.reserve(ledger, key, ALPHA, 100, 1000, key_limit_status=402, governed=[_budget("grd:g", "1"), small])
    assert exc.value.status == 402
    assert "can only afford 400 with the budget of guardrail 'ws:a'" in exc.value.message
    r = meter.reserve(ledger, key, ALPHA, 100, 400, key_limit_status=402, governed=[_budget("grd:g", "1"), small])
    assert set(r.scopes) == {key.scope, "instance", "grd:g", "ws:a"}
    assert ledger.in_flight("ws:a") == D("0.0009")


def test_spend_counts_under_every_budget_in_every_window() -> None:
    ledger, key = Ledger(), _key()
    budgets = [_budget("ws:a", "1", "day"), _budget("ws:a", "5", "month"), _budget("grd:g", "2", "total")]
    r = meter.reserve(ledger, key, ALPHA, 100, 100, key_limit_status=402, governed=budgets)
    assert r.scopes.count("ws:a") == 1  # one scope, however many of its windows are budgeted
    ledger.settle(r, D("0.25"))
    for scope, period in (("ws:a", "day"), ("ws:a", "month"), ("grd:g", "total"), (key.scope, "total")):
        assert ledger.spent(scope, period)[0] == D("0.25")


def test_each_window_of_one_scope_is_checked() -> None:
    ledger, key = Ledger(), _key()
    daily, monthly = _budget("ws:a", "1", "day"), _budget("ws:a", "0.5", "month")
    _spend(ledger, ("ws:a",), "0.5")  # the monthly one is met, the daily one is not
    with pytest.raises(GatewayError) as exc:
        meter.reserve(ledger, key, ALPHA, 1, 1, key_limit_status=402, governed=[daily, monthly])
    assert exc.value.message == "Budget ws:a/month exceeded."


def test_byok_spend_counts_only_where_the_budget_includes_it() -> None:
    ledger, key = Ledger(), _key()
    _spend(ledger, ("grd:a", "grd:b"), "0", byok="1")
    meter.reserve(ledger, key, ALPHA, 1, 1, key_limit_status=402, governed=[_budget("grd:a", "1")])
    with pytest.raises(GatewayError) as exc:
        meter.reserve(ledger, key, ALPHA, 1, 1, key_limit_status=402, governed=[_budget("grd:b", "1", byok=True)])
    assert exc.value.status == 403


def test_a_daily_budget_resets_at_midnight_utc_once() -> None:
    ledger, key = Ledger(), _key()
    daily = _budget("grd:g", "1")
    yesterday = window_starts(datetime.now(UTC) - timedelta(days=1))
    ledger.base[("grd:g", "day", yesterday["day"])] = [D("1"), D("0"), 3]  # met yesterday
    meter.reserve(ledger, key, ALPHA, 1, 1, key_limit_status=402, governed=[daily])  # a new day, a new window
    _spend(ledger, ("grd:g",), "1")  # met today: stays met all day
    with pytest.raises(GatewayError):
        meter.reserve(ledger, key, ALPHA, 1, 1, key_limit_status=402, governed=[daily])


def test_one_overrun_slot_per_scope_even_with_several_windows() -> None:
    """Upstreams that may ignore max_tokens: past what the exposure covers, one request at a time."""
    ledger, key = Ledger(), _key()
    budgets = [_budget("ws:a", "0.01", "day"), _budget("ws:a", "0.01", "month")]
    exposure = worst_case(ALPHA, 10, 4000)  # 0.00801
    admit = [meter.reserve(ledger, key, ALPHA, 10, 1, key_limit_status=402, exposure=exposure, governed=budgets)]
    admit.append(meter.reserve(ledger, key, ALPHA, 10, 1, key_limit_status=402, exposure=exposure, governed=budgets))
    assert admit[1].overrun == ("ws:a",)
    with pytest.raises(GatewayError) as exc:
        meter.reserve(ledger, key, ALPHA, 10, 1, key_limit_status=402, exposure=exposure, governed=budgets)
    assert exc.value.status == 429 and "guardrail 'ws:a'" in exc.value.message
