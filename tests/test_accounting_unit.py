"""Unit tests of the money path: cost formula, insurance, spend windows, the ledger, pre-flight checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import msgspec
import pytest

from omnirouter.accounting import meter
from omnirouter.accounting.byok import Charges
from omnirouter.accounting.cost import Usage, compute, insured, worst_case
from omnirouter.accounting.ledger import INSTANCE, Ledger, Reservation
from omnirouter.accounting.periods import EPOCH, window_starts
from omnirouter.api.errors import ApiError
from omnirouter.catalog.types import Pricing
from omnirouter.governance.keys import KeyRecord, key_hash, new_key

D = Decimal
ALPHA = Pricing(prompt=D("0.000001"), completion=D("0.000002"))
BETA = Pricing(
    prompt=D("0.000003"),
    completion=D("0.000015"),
    input_cache_read=D("0.0000003"),
    input_cache_write=D("0.00000375"),
    request=D("0.0001"),
)
REASONER = Pricing(prompt=D("0.0000011"), completion=D("0.0000044"), internal_reasoning=D("0.000005"))


# -- cost.compute


def test_plain_prompt_and_completion() -> None:
    cost = compute(ALPHA, Usage(prompt_tokens=100, completion_tokens=50), "stop")
    assert cost.total == D("0.0002")
    assert (cost.prompt, cost.completion) == (D("0.0001"), D("0.0001"))
    assert cost.cache_discount == 0 and not cost.insured


def test_decimal_exactness() -> None:
    # 3 tokens at 0.1 is 0.3 exactly, which float arithmetic cannot say.
    tenth = Pricing(prompt=D("0.1"), completion=D("0.1"))
    assert compute(tenth, Usage(prompt_tokens=3, completion_tokens=0), "stop").total == D("0.3")
    assert compute(tenth, Usage(prompt_tokens=1, completion_tokens=2), "stop").total == D("0.3")
    total = sum((compute(ALPHA, Usage(1, 1), "stop").total for _ in range(10)), D(0))
    assert total == D("0.00003")
    cost = compute(BETA, Usage(7, 3), "stop")
    parts = (cost.total, cost.prompt, cost.completion, cost.cache_discount)
    assert all(isinstance(v, Decimal) for v in parts)
    assert cost.total == D("0.000021") + D("0.000045") + D("0.0001")


def test_cache_read_and_write_prices() -> None:
    # 1000 prompt tokens: 600 read from cache, 100 written to it, 300 uncached.
    usage = Usage(prompt_tokens=1000, completion_tokens=10, cached_tokens=600, cache_write_tokens=100)
    cost = compute(BETA, usage, "stop")
    prompt = 300 * D("0.000003") + 600 * D("0.0000003") + 100 * D("0.00000375")
    assert cost.prompt == prompt == D("0.001455")
    assert cost.completion == D("0.00015")
    assert cost.total == prompt + D("0.00015") + D("0.0001")
    # Saved against the list prompt price (reads save, writes cost extra).
    assert cost.cache_discount == 1000 * D("0.000003") - prompt


def test_cache_prices_default_to_prompt_price() -> None:
    usage = Usage(prompt_tokens=100, completion_tokens=0, cached_tokens=40, cache_write_tokens=10)
    assert compute(ALPHA, usage, "stop").total == D("0.0001")


def test_cached_tokens_are_capped_by_prompt_tokens() -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=1, cached_tokens=50, cache_write_tokens=50)
    cost = compute(BETA, usage, "stop")
    assert cost.prompt == 10 * D("0.0000003")


def test_reasoning_price() -> None:
    usage = Usage(prompt_tokens=10, completion_tokens=30, reasoning_tokens=20)
    cost = compute(REASONER, usage, "stop")
    assert cost.completion == 10 * D("0.0000044") + 20 * D("0.000005")
    assert cost.total == 10 * D("0.0000011") + cost.completion
    # Without a reasoning price, reasoning tokens are billed as completion tokens.
    assert compute(ALPHA, usage, "stop").completion == 30 * D("0.000002")


def test_request_price_once_per_request() -> None:
    assert compute(BETA, Usage(prompt_tokens=0, completion_tokens=1), "stop").total == D("0.000115")


def test_zero_completion_insurance_empty_answer() -> None:
    cost = compute(BETA, Usage(prompt_tokens=500, completion_tokens=0), None)
    assert cost.insured and cost.total == 0
    assert cost.prompt == 500 * D("0.000003")  # the list-price part is kept for the record
    assert compute(BETA, Usage(prompt_tokens=500, completion_tokens=0), "").total == 0


def test_zero_completion_insurance_error_finish() -> None:
    cost = compute(ALPHA, Usage(prompt_tokens=100, completion_tokens=40), "error")
    assert cost.insured and cost.total == 0


def test_insurance_does_not_cover_real_answers() -> None:
    assert not insured(Usage(prompt_tokens=5, completion_tokens=0), "stop")  # empty, but finished
    assert not insured(Usage(prompt_tokens=5, completion_tokens=3), None)  # tokens, no reason
    assert compute(ALPHA, Usage(prompt_tokens=5, completion_tokens=0), "stop").total == D("0.000005")
    assert compute(ALPHA, Usage(prompt_tokens=5, completion_tokens=3), None).total == D("0.000011")
    assert compute(ALPHA, Usage(prompt_tokens=5, completion_tokens=3), "length").total == D("0.000011")


def test_worst_case_covers_every_real_cost() -> None:
    assert worst_case(ALPHA, 100, 50) == D("0.0002")
    assert worst_case(REASONER, 10, 100) == 10 * D("0.0000011") + 100 * D("0.000005")
    assert worst_case(BETA, 0, 0) == D("0.0001")
    # A prompt written to cache in full costs more than one at the prompt price: still covered.
    written = Usage(prompt_tokens=1000, completion_tokens=10, cache_write_tokens=1000)
    full_write = compute(BETA, written, "stop")
    assert full_write.total <= worst_case(BETA, 1000, 10)
    thought = Usage(prompt_tokens=10, completion_tokens=100, reasoning_tokens=100)
    all_reasoning = compute(REASONER, thought, "stop")
    assert all_reasoning.total <= worst_case(REASONER, 10, 100)


# -- periods


@pytest.mark.parametrize(
    ("now", "day", "week", "month"),
    [
        (datetime(2026, 3, 9, 0, 0, tzinfo=UTC), "2026-03-09", "2026-03-09", "2026-03-01"),  # a Monday
        (datetime(2026, 3, 15, 23, 59, 59, tzinfo=UTC), "2026-03-15", "2026-03-09", "2026-03-01"),  # Sunday
        (datetime(2026, 3, 16, 0, 0, tzinfo=UTC), "2026-03-16", "2026-03-16", "2026-03-01"),  # next Monday
        (datetime(2026, 3, 1, 12, 0, tzinfo=UTC), "2026-03-01", "2026-02-23", "2026-03-01"),  # spans months
        (datetime(2025, 1, 1, 0, 0, tzinfo=UTC), "2025-01-01", "2024-12-30", "2025-01-01"),  # and years
        (datetime(2024, 2, 29, 23, 0, tzinfo=UTC), "2024-02-29", "2024-02-26", "2024-02-01"),  # leap day
    ],
)
def test_window_starts(now: datetime, day: str, week: str, month: str) -> None:
    assert window_starts(now) == {"total": EPOCH, "day": day, "week": week, "month": month}


def test_window_starts_at_midnight_utc_whatever_the_timezone() -> None:
    # 01:30 on a Monday in UTC+2 is still Sunday in UTC.
    local = datetime(2026, 3, 16, 1, 30, tzinfo=timezone(timedelta(hours=2)))
    assert window_starts(local)["day"] == "2026-03-15"
    assert window_starts(local)["week"] == "2026-03-09"


# -- ledger


def _key(limit: str | None = None, reset: str | None = None, byok: bool = False) -> KeyRecord:
    secret = new_key()
    return KeyRecord(hash=key_hash(secret), name="k", label="l", created_at=datetime.now(UTC),
                     limit=D(limit) if limit is not None else None, limit_reset=reset,
                     include_byok_in_limit=byok)  # fmt: skip


def test_reserve_settle_release_arithmetic() -> None:
    ledger = Ledger()
    scopes = ("key:a", INSTANCE)
    r1 = ledger.reserve(scopes, D("0.5"))
    r2 = ledger.reserve(scopes, D("0.25"))
    assert ledger.in_flight("key:a") == ledger.in_flight(INSTANCE) == D("0.75")
    ledger.settle(r1, D("0.1"))
    assert ledger.in_flight("key:a") == D("0.25")
    for period in ("total", "day", "week", "month"):
        assert ledger.spent("key:a", period) == (D("0.1"), D(0))
        assert ledger.spent(INSTANCE, period) == (D("0.1"), D(0))
    ledger.release(r2)
    assert ledger.in_flight("key:a") == 0 and "key:a" not in ledger.reserved
    ledger.release(r2)  # releasing twice is harmless
    assert ledger.in_flight("key:a") == 0
    r3 = ledger.reserve(scopes, D("0.3"))
    ledger.settle(r3, D("0.2"), byok_cost=D("0.05"))
    assert ledger.spent("key:a", "total") == (D("0.3"), D("0.05"))
    assert ledger.spent("key:b", "total") == (D(0), D(0))
    assert not ledger.reserved


def test_spent_reads_only_the_current_window() -> None:
    ledger = Ledger()
    now = datetime(2026, 3, 11, 12, tzinfo=UTC)  # a Wednesday
    ledger.base = {
        ("key:a", "day", "2026-03-10"): [D("5"), D(0), 1],  # yesterday
        ("key:a", "day", "2026-03-11"): [D("1"), D(0), 1],
        ("key:a", "week", "2026-03-09"): [D("6"), D(0), 2],
        ("key:a", "week", "2026-03-02"): [D("9"), D(0), 2],
        ("key:a", "total", EPOCH): [D("15"), D(0), 4],
    }
    assert ledger.spent("key:a", "day", now)[0] == D("1")
    assert ledger.spent("key:a", "week", now)[0] == D("6")
    assert ledger.spent("key:a", "month", now)[0] == D(0)
    assert ledger.spent("key:a", "total", now)[0] == D("15")


def test_take_pending_flushed_and_flush_failed() -> None:
    ledger = Ledger()
    scopes = ("key:a", INSTANCE)
    today = window_starts(datetime.now(UTC))["day"]
    ledger.settle(ledger.reserve(scopes, D(1)), D("0.1"))
    taken = ledger.take_pending()
    assert taken[("key:a", "day", today)] == [D("0.1"), D(0), 1]
    assert not ledger.pending and ledger.flushing
    ledger.settle(ledger.reserve(scopes, D(1)), D("0.2"))  # settled while the write is in flight
    assert ledger.spent("key:a", "total")[0] == D("0.3")

    ledger.flush_failed(taken)  # the write failed: nothing is lost or doubled
    assert not ledger.flushing
    assert ledger.spent("key:a", "total")[0] == D("0.3")
    assert ledger.pending[("key:a", "day", today)] == [D("0.3"), D(0), 2]

    taken = ledger.take_pending()
    ledger.flushed()  # committed: what was written joins the base
    assert not ledger.flushing and not ledger.pending
    assert ledger.spent("key:a", "total")[0] == D("0.3")
    assert ledger.base[("key:a", "total", EPOCH)] == [D("0.3"), D(0), 2]


def test_flush_failed_keeps_taken_deltas_independent() -> None:
    # take_pending must not share row lists between `flushing` and what it hands out.
    ledger = Ledger()
    ledger.settle(ledger.reserve(("key:a",), D(1)), D("0.1"))
    taken = ledger.take_pending()
    ledger.flush_failed(taken)
    ledger.settle(ledger.reserve(("key:a",), D(1)), D("0.1"))
    assert ledger.spent("key:a", "total")[0] == D("0.2")
    assert taken[("key:a", "total", EPOCH)][0] == D("0.1")


def test_credit_remaining() -> None:
    ledger = Ledger()
    assert ledger.credit_remaining() is None
    ledger.credits = D("1")
    r = ledger.reserve((INSTANCE,), D("0.3"))
    assert ledger.credit_remaining() == D("0.7")
    ledger.settle(r, D("0.1"))
    assert ledger.credit_remaining() == D("0.9")


# -- meter (pre-flight checks)


def test_key_remaining_by_window() -> None:
    ledger = Ledger()
    key = _key("1", "daily")
    ledger.base[(key.scope, "day", window_starts(datetime.now(UTC))["day"])] = [D("0.25"), D("0.5"), 1]
    ledger.base[(key.scope, "total", EPOCH)] = [D("10"), D("0.5"), 5]
    assert meter.key_remaining(ledger, key) == D("0.75")
    assert meter.key_remaining(ledger, _key(None)) is None
    key.include_byok_in_limit = True
    assert meter.key_remaining(ledger, key) == D("0.25")
    key.limit_reset = None  # a total limit counts everything ever spent
    assert meter.key_remaining(ledger, key) == D("1") - D("10.5")


def test_reserve_unlimited_only_tracks() -> None:
    ledger = Ledger()
    r = meter.reserve(ledger, _key(None), ALPHA, 10, 10**6, key_limit_status=402)
    assert r.amount == 0


def test_reserve_holds_worst_case_and_rejects_what_does_not_fit() -> None:
    ledger = Ledger()
    key = _key("0.001")
    r = meter.reserve(ledger, key, ALPHA, 100, 100, key_limit_status=402)
    assert r.amount == D("0.0003")
    assert meter.key_remaining(ledger, key) == D("0.0007")
    with pytest.raises(ApiError) as exc:
        meter.reserve(ledger, key, ALPHA, 100, 1000, key_limit_status=402)  # needs 0.0021
    assert exc.value.status == 402
    assert "requires more credits, or fewer max_tokens" in exc.value.message
    assert "requested up to 1000 tokens, but can only afford 300" in exc.value.message


@pytest.mark.parametrize("status", [402, 403])
def test_exhausted_key_limit_status(status: int) -> None:
    ledger = Ledger()
    key = _key("0.001", "monthly")
    ledger.settle(ledger.reserve((key.scope,), D(0)), D("0.001"))
    with pytest.raises(ApiError) as exc:
        meter.reserve(ledger, key, ALPHA, 1, 1, key_limit_status=status)
    assert exc.value.status == status
    assert "Key limit exceeded (monthly limit)" in exc.value.message


def test_instance_credit_checks() -> None:
    ledger = Ledger()
    ledger.credits = D("0.001")
    key = _key(None)
    with pytest.raises(ApiError) as exc:
        meter.reserve(ledger, key, ALPHA, 100, 1000, key_limit_status=403)
    assert exc.value.status == 402 and "fewer max_tokens" in exc.value.message
    meter.reserve(ledger, key, ALPHA, 100, 400, key_limit_status=403)  # exactly 0.0009
    ledger.settle(ledger.reserve((INSTANCE,), D(0)), D("0.001"))
    with pytest.raises(ApiError) as exc:
        meter.reserve(ledger, key, ALPHA, 1, 1, key_limit_status=403)
    assert exc.value.status == 402 and "Insufficient credits" in exc.value.message


# -- meter: the overrun bound (upstreams that ignore max_tokens)


def _admit(ledger: Ledger, key: KeyRecord) -> Reservation:
    """max_tokens 1 (0.000012 at ALPHA with 10 prompt tokens); the endpoint can produce 4000 (0.00801)."""
    return meter.reserve(ledger, key, ALPHA, 10, 1, key_limit_status=402, exposure=worst_case(ALPHA, 10, 4000))


def test_requests_overrun_one_at_a_time_once_their_exposure_does_not_fit() -> None:
    ledger = Ledger()
    key = _key("0.01")
    a = _admit(ledger, key)
    assert (a.amount, a.exposure, a.overrun) == (D("0.000012"), D("0.00801"), ())  # covered
    b = _admit(ledger, key)
    assert b.overrun == (key.scope,) and ledger.overrun_holder(key.scope) is b
    with pytest.raises(ApiError) as exc:
        _admit(ledger, key)
    assert exc.value.status == 429 and exc.value.headers == {"Retry-After": "1"}
    assert exc.value.message.startswith("This key's remaining limit is held by requests in flight")

    ledger.settle(b, D("0.008"))  # b's upstream ignored max_tokens
    assert ledger.overrun_holder(key.scope) is None
    # The slot is free, but a's exposure leaves nothing: admitting now could overrun twice.
    with pytest.raises(ApiError) as exc:
        _admit(ledger, key)
    assert exc.value.status == 429
    ledger.settle(a, D("0.00801"))
    over = ledger.spent(key.scope, "total")[0] - key.limit  # type: ignore[operator]
    assert over == D("0.008") - (D("0.01") - D("0.00801"))  # b's cost beyond what was left for it
    with pytest.raises(ApiError) as exc:
        _admit(ledger, key)
    assert exc.value.status == 402 and "Key limit exceeded" in exc.value.message
    assert not ledger.reserved and not ledger.exposed and not ledger.overrun


def test_release_frees_the_overrun_slot_and_the_instance_has_its_own() -> None:
    ledger = Ledger()
    ledger.credits = D("0.01")
    key, other = _key("1"), _key(None)
    a = _admit(ledger, other)  # covered by the credit
    b = _admit(ledger, key)  # covered by its key, not by the credit
    assert b.overrun == (INSTANCE,)
    with pytest.raises(ApiError) as exc:
        _admit(ledger, other)
    assert exc.value.status == 429 and exc.value.message.startswith("The instance's remaining credits are")
    ledger.release(b)
    ledger.release(b)  # twice is harmless
    assert ledger.overrun_holder(INSTANCE) is None and ledger.exposure(INSTANCE) == a.exposure
    assert _admit(ledger, other).overrun == (INSTANCE,)


def test_unlimited_requests_hold_no_exposure() -> None:
    ledger = Ledger()
    r = _admit(ledger, _key(None))
    assert (r.amount, r.exposure, r.overrun) == (0, 0, ())
    assert not ledger.exposed and not ledger.overrun


def test_windows_roll_over_at_midnight_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    import omnirouter.accounting.periods as periods_module

    clock = [datetime(2026, 3, 15, 23, 59, 59, tzinfo=UTC)]  # Sunday night, end of a week
    monkeypatch.setattr(periods_module, "time", types.SimpleNamespace(time=lambda: clock[0].timestamp()))
    ledger = Ledger()
    daily, weekly, monthly = _key("1", "daily"), _key("1", "weekly"), _key("1", "monthly")
    for key in (daily, weekly, monthly):
        ledger.settle(ledger.reserve((key.scope,), D(0)), D("0.75"))
        assert meter.key_remaining(ledger, key) == D("0.25")

    clock[0] = datetime(2026, 3, 16, 0, 0, 1, tzinfo=UTC)  # Monday: a new day and a new week
    assert meter.key_remaining(ledger, daily) == D(1)
    assert meter.key_remaining(ledger, weekly) == D(1)
    assert meter.key_remaining(ledger, monthly) == D("0.25")  # still March
    assert ledger.spent(daily.scope, "total")[0] == D("0.75")  # lifetime usage keeps counting
    clock[0] = datetime(2026, 4, 1, 0, 0, tzinfo=UTC)
    assert meter.key_remaining(ledger, monthly) == D(1)


def test_a_byok_charge_scales_every_price_a_request_can_be_billed_at():
    """What a BYOK candidate reserves is its list price times the fee (and the whole price where BYOK
    counts): every per-unit price, those of images, speech, audio, video and rerank included."""
    prices = {f.name: Decimal("0.5") for f in msgspec.structs.fields(Pricing) if f.name != "discount"}
    scaled = Charges(Decimal("0.05")).pricing(Pricing(**prices))
    assert {name: getattr(scaled, name) for name in prices} == dict.fromkeys(prices, Decimal("0.025"))
