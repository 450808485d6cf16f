"""Per-key rpm_limit and tpm_limit (accounting/ratelimit.py): the window's rule, the 429 each client
format sees, and the limits held exactly by several instances and workers sharing a database or Redis."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import anthropic
import httpx
import openai
import pytest

from omnirouter.accounting.ratelimit import SLOTS, Window, decide
from omnirouter.testing import Status
from tests.cluster import Cluster, backends, cluster  # noqa: F401  (the fixture)
from tests.gateway import Gateway

SLOT_MS = 1000
HI = [{"role": "user", "content": "hi"}]


# -- the window's rule


def test_a_window_admits_exactly_the_limit_and_says_when_a_slot_frees() -> None:
    req, tok = Window(), Window()
    now = 1_000_000 * SLOT_MS + 300  # 300 ms into a slot
    verdicts = [decide(req, tok, 3, None, 0, now + i * 10, SLOT_MS) for i in range(5)]
    assert [v.admitted for v in verdicts] == [True, True, True, False, False]
    refused = verdicts[3]
    # The three sit in this slot, which leaves the window 60 slots on: 59.67 s from the refusal.
    assert refused.rpm_wait_ms == (1_000_000 + SLOTS) * SLOT_MS - (now + 30)
    assert refused.tpm_wait_ms == 0 and refused.requests == 3
    # Just before the slot leaves: still refused; once it has left: admitted again.
    assert not decide(req, tok, 3, None, 0, (1_000_000 + SLOTS) * SLOT_MS - 1, SLOT_MS).admitted
    assert decide(req, tok, 3, None, 0, (1_000_000 + SLOTS) * SLOT_MS, SLOT_MS).admitted


def test_the_window_slides_a_slot_at_a_time() -> None:
    req, tok = Window(), Window()
    base = 5_000 * SLOT_MS
    for i in range(4):  # one admission at 0, 10, 20 and 30 s
        assert decide(req, tok, 4, None, 0, base + i * 10_000, SLOT_MS).admitted
    v = decide(req, tok, 4, None, 0, base + 40_000, SLOT_MS)
    assert not v.admitted and v.rpm_wait_ms == 20_000  # the first leaves at 60 s
    assert decide(req, tok, 4, None, 0, base + 60_000, SLOT_MS).admitted
    assert not decide(req, tok, 4, None, 0, base + 65_000, SLOT_MS).admitted  # the 10 s one still counts


def test_tokens_count_the_estimate_at_admission_and_the_real_count_after() -> None:
    req, tok = Window(), Window()
    base = 9_000 * SLOT_MS
    first = decide(req, tok, None, 100, 30, base, SLOT_MS)
    assert first.admitted and first.tokens == 30
    tok.correct(first.slot, first.slot + 2, 45 - 30)  # it used 45, settled two slots later
    assert decide(req, tok, None, 100, 40, base + 2_000, SLOT_MS).tokens == 85
    tok.correct(first.slot + 2, first.slot + 3, -30)  # that one used 10
    assert tok.prune(first.slot + 3) == 55
    refused = decide(req, tok, None, 50, 5, base + 3_000, SLOT_MS)  # 55 >= 50: until the first slot leaves
    assert not refused.admitted and refused.tpm_wait_ms == (first.slot + SLOTS) * SLOT_MS - (base + 3_000)
    # A correction for a slot that left the window: an increase lands now, a decrease is dropped.
    tok.correct(first.slot, first.slot + SLOTS + 1, 7)
    tok.correct(first.slot + 1, first.slot + SLOTS + 1, -7)
    assert tok.counts[first.slot + SLOTS + 1] == 7
    assert Window.decode(tok.encode()).counts == tok.counts


# -- one gateway: what each client format sees


def _key(gateway: Gateway, **fields: Any) -> tuple[str, str]:
    created = gateway.create_key(**fields)
    return created["key"], created["data"]["hash"]


def _assert_rate_limited(headers: Any, metadata: dict[str, Any], limit: int, which: str = "rpm_limit") -> None:
    assert 1 <= int(headers["retry-after"]) <= 60
    assert headers["x-ratelimit-limit"] == str(limit) and headers["x-ratelimit-remaining"] == "0"
    reset_ms = int(headers["x-ratelimit-reset"])
    assert 0 < reset_ms - time.time() * 1000 <= 61_000
    assert metadata["error_type"] == "rate_limit_exceeded" and metadata["limit"] == which
    assert metadata["headers"] == {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(reset_ms),
    }


def test_the_key_objects_carry_the_limits_and_patch_changes_or_clears_them(gateway: Gateway) -> None:
    secret, hash_ = _key(gateway, rpm_limit=1, tpm_limit=5000)
    with gateway.admin() as admin:
        assert {k: admin.get(f"/keys/{hash_}").json()["data"][k] for k in ("rpm_limit", "tpm_limit")} == {
            "rpm_limit": 1,
            "tpm_limit": 5000,
        }
        listed = {k["hash"]: k for k in admin.get("/keys").json()["data"]}
        assert listed[hash_]["rpm_limit"] == 1
        for bad in (0, -1, 1.5, "10", 2**31):
            assert admin.post("/keys", json={"name": "x", "rpm_limit": bad}).status_code == 400
            assert admin.patch(f"/keys/{hash_}", json={"tpm_limit": bad}).status_code == 400
        client = openai.OpenAI(base_url=gateway.api, api_key=secret, max_retries=0)
        client.chat.completions.create(model="test/alpha", messages=HI)
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(model="test/alpha", messages=HI)
        patched = admin.patch(f"/keys/{hash_}", json={"rpm_limit": None}).json()["data"]
        assert patched["rpm_limit"] is None and patched["tpm_limit"] == 5000
    client.chat.completions.create(model="test/alpha", messages=HI)  # no request limit any more
    with gateway.client(secret) as c:
        current = c.get("/key").json()["data"]
    assert current["rpm_limit"] is None and current["tpm_limit"] == 5000


def test_chat_gets_rpm_limit_answers_then_429_with_retry_after(gateway: Gateway) -> None:
    secret, _ = _key(gateway, rpm_limit=3)
    client = openai.OpenAI(base_url=gateway.api, api_key=secret, max_retries=0)
    client.chat.completions.create(model="test/alpha", messages=HI)
    for _ in client.chat.completions.create(model="test/alpha", messages=HI, stream=True):  # a stream counts too
        pass
    client.chat.completions.create(model="test/alpha", messages=HI)
    for stream in (False, True):
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model="test/alpha", messages=HI, stream=stream)
        body = caught.value.body
        assert isinstance(body, dict) and caught.value.status_code == 429
        assert body["code"] == 429 and body["message"] == "Rate limit exceeded: key-requests-per-minute"
        _assert_rate_limited(caught.value.response.headers, body["metadata"], 3)
    assert caught.value.response.headers["x-generation-id"].startswith("gen-")


def test_responses_and_messages_get_the_429_in_their_own_envelopes(gateway: Gateway) -> None:
    secret, _ = _key(gateway, rpm_limit=2)
    client = openai.OpenAI(base_url=gateway.api, api_key=secret, max_retries=0)
    sdk = anthropic.Anthropic(base_url=gateway.url + "/api", auth_token=secret, max_retries=0)
    assert client.responses.create(model="test/alpha", input="hi").output_text
    assert sdk.messages.create(model="test/alpha", max_tokens=50, messages=HI).content  # type: ignore[arg-type]
    with pytest.raises(openai.RateLimitError) as caught:
        client.responses.create(model="test/alpha", input="hi")
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == 429
    _assert_rate_limited(caught.value.response.headers, body["metadata"], 2)

    with pytest.raises(anthropic.RateLimitError) as refused:
        sdk.messages.create(model="test/alpha", max_tokens=50, messages=HI)  # type: ignore[arg-type]
    envelope = refused.value.body
    assert isinstance(envelope, dict) and envelope["type"] == "error"
    assert envelope["error"]["type"] == "rate_limit_error"
    _assert_rate_limited(refused.value.response.headers, envelope["metadata"], 2)


def _wait_for_settled_tokens(gateway: Gateway) -> None:
    """Tokens are settled in the background, off the answer's path: wait until none is in flight."""
    deadline = time.monotonic() + 10
    while gateway.state.rate_limits.pending:
        assert time.monotonic() < deadline, "a settle's token correction never finished"
        time.sleep(0.01)


def test_tpm_counts_the_tokens_answers_report_and_refuses_once_the_window_holds_the_limit(gateway: Gateway) -> None:
    probe, _ = _key(gateway)
    one = openai.OpenAI(base_url=gateway.api, api_key=probe, max_retries=0).chat.completions.create(
        model="test/alpha", messages=HI
    )
    assert one.usage is not None
    per_request = one.usage.total_tokens
    # Two such requests fill the window exactly: the third is refused, whatever the estimates were.
    secret, _ = _key(gateway, tpm_limit=2 * per_request)
    client = openai.OpenAI(base_url=gateway.api, api_key=secret, max_retries=0)
    answer = client.chat.completions.create(model="test/alpha", messages=HI)
    assert answer.usage is not None and answer.usage.total_tokens == per_request
    _wait_for_settled_tokens(gateway)
    *_, last = client.chat.completions.create(model="test/alpha", messages=HI, stream=True)  # settled alike
    assert last.usage is not None and last.usage.total_tokens == per_request
    _wait_for_settled_tokens(gateway)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="test/alpha", messages=HI)
    body = caught.value.body
    assert isinstance(body, dict) and body["message"] == "Rate limit exceeded: key-tokens-per-minute"
    _assert_rate_limited(caught.value.response.headers, body["metadata"], 2 * per_request, "tpm_limit")
    # One token less would have let the second through but not a third either; one more, a third.
    roomy, _ = _key(gateway, tpm_limit=2 * per_request + 1)
    client = openai.OpenAI(base_url=gateway.api, api_key=roomy, max_retries=0)
    for stream in (True, False, True):
        if stream:
            for _ in client.chat.completions.create(model="test/alpha", messages=HI, stream=True):
                pass
        else:
            client.chat.completions.create(model="test/alpha", messages=HI)
        _wait_for_settled_tokens(gateway)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="test/alpha", messages=HI)


def test_a_request_that_failed_everywhere_gives_its_tokens_back(gateway: Gateway, fake_a: Any) -> None:
    """Its prompt's estimate counted at admission; no token went anywhere, so none stays counted."""
    probe, _ = _key(gateway)
    one = openai.OpenAI(base_url=gateway.api, api_key=probe, max_retries=0).chat.completions.create(
        model="test/alpha", messages=HI
    )
    assert one.usage is not None
    secret, _ = _key(gateway, tpm_limit=one.usage.total_tokens)  # room for one answer, once
    client = openai.OpenAI(base_url=gateway.api, api_key=secret, max_retries=0)
    for _ in range(3):
        fake_a.fake.script(Status(500))
        with pytest.raises(openai.APIStatusError) as failed:
            client.chat.completions.create(model="test/alpha", messages=HI)
        assert failed.value.status_code != 429
        _wait_for_settled_tokens(gateway)
    assert client.chat.completions.create(model="test/alpha", messages=HI).usage is not None


def test_a_request_refused_for_money_gives_its_tokens_back(gateway: Gateway) -> None:
    """Counted against the key's TPM when admitted, then refused by its limit (402): nothing went upstream."""
    probe, _ = _key(gateway)
    one = openai.OpenAI(base_url=gateway.api, api_key=probe, max_retries=0).chat.completions.create(
        model="test/alpha", messages=HI
    )
    assert one.usage is not None
    poor, _ = _key(gateway, tpm_limit=one.usage.total_tokens, limit=0.000001)  # a fraction of one request
    client = openai.OpenAI(base_url=gateway.api, api_key=poor, max_retries=0)
    for _ in range(3):
        with pytest.raises(openai.APIStatusError) as refused:
            client.chat.completions.create(model="test/alpha", messages=HI)
        assert refused.value.status_code == 402, refused.value
        _wait_for_settled_tokens(gateway)
    # Were the three prompts still counted, the window would be full: a fourth would get 429, not 402.
    with pytest.raises(openai.APIStatusError) as again:
        client.chat.completions.create(model="test/alpha", messages=HI)
    assert again.value.status_code == 402


def test_a_refused_slot_frees_when_the_window_moves_on(make_gateway: Any) -> None:
    gw = make_gateway(rate_limit_window_seconds=2)  # the window a test can wait out: 2 s of 60 slots
    secret, _ = _key(gw, rpm_limit=2)
    client = openai.OpenAI(base_url=gw.api, api_key=secret, max_retries=0)
    for _ in range(2):
        client.chat.completions.create(model="test/alpha", messages=HI)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="test/alpha", messages=HI)
    assert caught.value.response.headers["retry-after"] in ("1", "2")
    deadline = time.monotonic() + 10
    while True:  # admitted again once the first slot has left the window, within the 2 s
        try:
            client.chat.completions.create(model="test/alpha", messages=HI)
            break
        except openai.RateLimitError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


def test_a_key_without_limits_never_touches_the_shared_counts(gateway: Gateway, api_key: str) -> None:
    with gateway.client(api_key) as c:
        for _ in range(3):
            assert c.post("/chat/completions", json={"model": "test/alpha", "messages": HI}).status_code == 200

    async def rows() -> int:
        from sqlalchemy import func, select

        from omnirouter.store.tables import rate_windows

        async with gateway.state.db.engine.connect() as conn:
            q = select(func.count()).select_from(rate_windows).where(rate_windows.c.key_hash == _hash(api_key))
            return int((await conn.execute(q)).scalar() or 0)

    import asyncio

    assert asyncio.run_coroutine_threadsafe(rows(), gateway.loop).result(timeout=10) == 0  # type: ignore[arg-type]


def _hash(secret: str) -> str:
    from omnirouter.governance.keys import key_hash

    return key_hash(secret)


# -- several instances and workers


def _burst(urls: list[str], secret: str, n: int) -> list[httpx.Response]:
    """`n` chat requests at once, spread round-robin over `urls`."""

    def one(i: int) -> httpx.Response:
        return httpx.post(
            urls[i % len(urls)] + "/chat/completions",
            headers={"Authorization": f"Bearer {secret}"},
            json={"model": "sandbox/echo", "messages": HI},
            timeout=30,
        )

    with concurrent.futures.ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def _statuses(answers: list[httpx.Response]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for r in answers:
        counts[r.status_code] = counts.get(r.status_code, 0) + 1
    return counts


@pytest.mark.parametrize("backend", backends())
def test_three_instances_admit_exactly_rpm_limit_and_outlive_a_redis_outage(cluster: Any, backend: str) -> None:  # noqa: F811
    c: Cluster = cluster(3, backend=backend)
    secret = c.create_key(rpm_limit=7)["key"]
    answers = _burst(c.apis, secret, 21)
    assert _statuses(answers) == {200: 7, 429: 14}
    refused = next(r for r in answers if r.status_code == 429)
    assert refused.json()["error"]["metadata"]["limit"] == "rpm_limit"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    if c.redis is None:
        return
    # Redis lost: every instance holds the counts through the database meanwhile, still exactly.
    c.redis.kill()
    answers = _burst(c.apis, c.create_key(rpm_limit=4)["key"], 12)
    assert _statuses(answers) == {200: 4, 429: 8}
    c.redis.start()  # empty, as after a loss
    for i in range(3):  # each instance tries Redis again within a second, and counts there again
        probe = c.create_key(rpm_limit=1000)
        counted = f"omnirouter:{{rl:{probe['data']['hash']}}}:requests"
        deadline = time.monotonic() + 15
        while c.redis.command("EXISTS", counted) != b":1\r\n":
            assert time.monotonic() < deadline, f"instance {i} never went back to Redis"
            assert _burst([c.apis[i]], probe["key"], 1)[0].status_code == 200
            time.sleep(0.1)
    answers = _burst(c.apis, c.create_key(rpm_limit=5)["key"], 15)
    assert _statuses(answers) == {200: 5, 429: 10}
    outputs = [c.instances[i].stop(drop=False) for i in range(3)]
    # Logged once per outage (not per request), and once when it returned.
    assert all(o.count("rate limits are held through the database") == 1 for o in outputs)
    assert all(o.count("rate limits are held there again") == 1 for o in outputs)


def test_two_workers_on_sqlite_admit_exactly_rpm_limit(serve: Any) -> None:
    from omnirouter.governance.keys import new_key

    management = new_key()
    served = serve("--workers", "2", "--sandbox", OMNIROUTER_MANAGEMENT_KEY=management)
    created = httpx.post(
        served.api + "/keys",
        headers={"Authorization": f"Bearer {management}"},
        json={"name": "burst", "rpm_limit": 6},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    # A worker that does not hold the key yet looks it up in the database: both know it at once.
    answers = _burst([served.api], created.json()["key"], 24)
    assert _statuses(answers) == {200: 6, 429: 18}
