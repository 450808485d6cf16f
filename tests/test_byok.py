"""BYOK as a user sees it: /byok through HTTP and the official SDK, the provider key encrypted at rest
and never shown, requests served with the workspace's own keys first (fallback keys last), and how
they are billed (is_byok, the fee, byok_usage, include_byok_in_limit)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openrouter
import pytest
from sqlalchemy import select

from omnirouter.governance.byok_crypto import new_key
from omnirouter.store.tables import byok_keys
from omnirouter.testing import Status
from tests.conftest import standard_config
from tests.gateway import Gateway
from tests.spec_validation import spec_available, validate_response

SHARED_A = "sk-shared-instance-key-aaaaaaaa"
SECRET = "sk-proj-byok-secret-0123456789abcdefXYZ"
MODEL = "test/alpha"  # served by fake-a only


def check(operation: str, body: Any, status: int | str = "200") -> None:
    if spec_available():
        validate_response(operation, body, str(status))


def config(fake_a: Any, fake_b: Any) -> dict[str, Any]:
    conf = standard_config(fake_a.base_url, fake_b.base_url)
    conf["providers"][0]["api_key"] = SHARED_A
    return conf


@pytest.fixture(scope="module")
def byok_gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    gw = Gateway(tmp_path_factory.mktemp("byok"), config(fake_a, fake_b), encryption_key=new_key()).start()
    yield gw
    gw.stop()


@pytest.fixture
def clean(byok_gw: Gateway) -> Iterator[Gateway]:
    """The module's gateway, with no BYOK key left over by another test."""
    yield byok_gw
    with byok_gw.admin() as admin:
        for k in admin.get("/byok", params={"limit": 100}).json()["data"]:
            admin.delete(f"/byok/{k['id']}")


def on_gateway(gw: Gateway, work: Any) -> Any:
    async def run() -> Any:
        async with gw.state.db.engine.begin() as conn:
            return await work(conn)

    return asyncio.run_coroutine_threadsafe(run(), gw.loop).result(timeout=10)


def add(gw: Gateway, **fields: Any) -> dict[str, Any]:
    with gw.admin() as admin:
        r = admin.post("/byok", json={"provider": "fake-a", "key": SECRET, **fields})
    assert r.status_code == 201, r.text
    check("createBYOKKey", r.json(), 201)
    return r.json()["data"]


def chat(gw: Gateway, key: str, **extra: Any) -> httpx.Response:
    body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, **extra}
    with gw.client(key) as c:
        return c.post("/chat/completions", json=body)


def auths(fake: Any) -> list[str]:
    return [r.headers.get("Authorization", "") for r in fake.requests]


# -- the operations


def test_crud_over_http(clean: Gateway) -> None:
    gw = clean
    created = add(gw, name="Prod", allowed_models=[MODEL])
    assert created["label"] == "sk-...6XYZ"[:3] + "..." + SECRET[-4:]
    assert created["provider"] == "fake-a" and created["name"] == "Prod" and created["sort_order"] == 0
    assert created["disabled"] is False and created["is_fallback"] is False
    second = add(gw)
    assert second["sort_order"] == 1  # tried after the first
    with gw.admin() as admin:
        got = admin.get(f"/byok/{created['id']}")
        assert got.status_code == 200 and got.json()["data"] == created
        check("getBYOKKey", got.json())
        listed = admin.get("/byok").json()
        check("listBYOKKeys", listed)
        assert listed["total_count"] == 2 and [k["id"] for k in listed["data"]] == [created["id"], second["id"]]
        page = admin.get("/byok", params={"limit": 1, "offset": 1}).json()
        assert page["total_count"] == 2 and [k["id"] for k in page["data"]] == [second["id"]]
        assert admin.get("/byok", params={"provider": "fake-b"}).json() == {"data": [], "total_count": 0}
        patched = admin.patch(
            f"/byok/{created['id']}", json={"disabled": True, "name": None, "key": "sk-new-secret-key-9876"}
        )
        assert patched.status_code == 200, patched.text
        check("updateBYOKKey", patched.json())
        data = patched.json()["data"]
        assert data["disabled"] is True and data["name"] is None and data["label"] == "sk-...9876"
        assert data["updated_at"] is not None
        deleted = admin.delete(f"/byok/{created['id']}")
        assert deleted.status_code == 200 and deleted.json() == {"deleted": True}
        check("deleteBYOKKey", deleted.json())
        assert admin.get(f"/byok/{created['id']}").status_code == 404
        assert admin.delete(f"/byok/{created['id']}").status_code == 404
        for text_ in (got.text, admin.get("/byok").text):
            assert SECRET not in text_


def test_official_sdk(clean: Gateway) -> None:
    gw = clean
    with openrouter.OpenRouter(api_key=gw.management_key, server_url=gw.api) as sdk:
        created = sdk.byok.create(provider="fake-a", key=SECRET, name="via SDK", is_fallback=True)
        key = created.data
        assert key.label == "sk-..." + SECRET[-4:] and key.is_fallback is True and key.provider == "fake-a"
        assert sdk.byok.get(id=key.id).data.name == "via SDK"
        page = sdk.byok.list()
        assert page is not None and page.result.total_count == 1
        assert sdk.byok.update(id=key.id, disabled=True).data.disabled is True
        assert sdk.byok.delete(id=key.id).DELETED is True


def test_secret_never_stored_nor_shown(clean: Gateway, fake_a: Any, caplog: pytest.LogCaptureFixture) -> None:
    gw = clean
    with caplog.at_level(logging.DEBUG):
        created = add(gw)
        key = gw.create_key()["key"]
        assert chat(gw, key).status_code == 200
        fake_a.fake.script(Status(401), Status(503))  # the BYOK attempt and the shared one both fail
        assert chat(gw, key).status_code == 503
        gw.flush()

    async def rows(conn: Any) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in await conn.execute(select(byok_keys))]

    stored = on_gateway(gw, rows)
    mine = [r for r in stored if r["id"] == created["id"]]
    assert len(mine) == 1 and mine[0]["secret"].startswith("gAAAA")  # a Fernet token
    assert SECRET not in repr(stored) and SECRET[6:-4] not in repr(stored)
    assert SECRET not in caplog.text
    if gw.database.url is None:  # SQLite: the database file itself, WAL included
        gw.flush()
        for path in (gw.tmp / "data").glob("omnirouter.db*"):
            assert not path.is_file() or SECRET.encode() not in path.read_bytes()


# -- bad input


def test_bad_input(clean: Gateway) -> None:
    gw = clean
    with gw.admin() as admin:
        for body, needle in [
            ({"provider": "fake-a"}, "key"),
            ({"provider": "fake-a", "key": ""}, "key"),
            ({"provider": "no-such-provider", "key": SECRET}, "fake-a"),
            ({"provider": "fake-a", "key": 12}, "key"),
            ({"provider": "fake-a", "key": SECRET, "is_fallback": True, "is_byok_only": True}, "is_byok_only"),
            ({"provider": "fake-a", "key": SECRET, "allowed_api_key_hashes": ["nothex"]}, "allowed_api_key_hashes"),
            ({"provider": "fake-a", "key": SECRET, "allowed_api_key_hashes": ["a" * 64]}, "do not exist"),
            ({"provider": "fake-a", "key": SECRET, "allowed_models": "x"}, "allowed_models"),
        ]:
            r = admin.post("/byok", json=body)
            assert r.status_code == 400, (body, r.text)
            assert needle in r.json()["error"]["message"], (body, r.text)
            assert SECRET not in r.text
        assert admin.get("/byok", params={"limit": 0}).status_code == 400
        assert admin.get("/byok", params={"offset": "x"}).status_code == 400
        assert admin.get("/byok/not-a-uuid").status_code == 404
        assert admin.patch("/byok/00000000-0000-4000-8000-0000000000ff", json={}).status_code == 404
        created = add(gw)
        r = admin.patch(f"/byok/{created['id']}", json={"disabled": "yes"})
        assert r.status_code == 400
        assert admin.get("/byok").json()["total_count"] == 1  # nothing half-written
    with gw.client(gw.create_key()["key"]) as c:
        r = c.get("/byok")
        assert r.status_code == 403
        assert c.post("/byok", json={"provider": "fake-a", "key": SECRET}).status_code == 403


def test_writes_refused_without_encryption_key(make_gateway: Any, fake_a: Any, fake_b: Any) -> None:
    gw = make_gateway(config(fake_a, fake_b))
    with gw.admin() as admin:
        r = admin.post("/byok", json={"provider": "fake-a", "key": SECRET})
        assert r.status_code == 400
        assert "OMNIROUTER_ENCRYPTION_KEY" in r.json()["error"]["message"] and SECRET not in r.text
        assert admin.get("/byok").json() == {"data": [], "total_count": 0}  # reading works
    assert chat(gw, gw.create_key()["key"]).status_code == 200  # and so does everything else


# -- routing


def test_byok_first_then_shared(clean: Gateway, fake_a: Any) -> None:
    gw = clean
    add(gw)
    key = gw.create_key()["key"]
    r = chat(gw, key)
    assert r.status_code == 200, r.text
    assert auths(fake_a) == [f"Bearer {SECRET}"]
    usage = r.json()["usage"]
    assert usage["is_byok"] is True and usage["cost"] == 0
    assert usage["cost_details"]["upstream_inference_cost"] > 0

    # The BYOK key fails: the shared key is tried next.
    fake_a.fake.reset()
    fake_a.fake.script(Status(401))
    r = chat(gw, key)
    assert r.status_code == 200, r.text
    assert auths(fake_a) == [f"Bearer {SECRET}", f"Bearer {SHARED_A}"]
    assert r.json()["usage"]["is_byok"] is False and r.json()["usage"]["cost"] > 0


def test_fallback_keys_last_and_byok_only(clean: Gateway, fake_a: Any) -> None:
    gw = clean
    fb = add(gw, key="sk-fallback-key-000000000000", is_fallback=True)
    key = gw.create_key()["key"]
    fake_a.fake.script(Status(500))  # the shared key's attempt fails: the fallback key's answers
    r = chat(gw, key)
    assert r.status_code == 200, r.text
    assert auths(fake_a) == [f"Bearer {SHARED_A}", "Bearer sk-fallback-key-000000000000"]
    assert r.json()["usage"]["is_byok"] is True
    # Prioritized keys in sort order before the shared key, fallback keys after it.
    first = add(gw, key="sk-first-key-1111111111111")
    second = add(gw, key="sk-second-key-222222222222")
    assert first["sort_order"] < second["sort_order"]
    fake_a.fake.reset()
    fake_a.fake.script(Status(503), Status(503), Status(503), Status(503))
    assert chat(gw, key).status_code == 503
    assert auths(fake_a) == [
        "Bearer sk-first-key-1111111111111",
        "Bearer sk-second-key-222222222222",
        f"Bearer {SHARED_A}",
        "Bearer sk-fallback-key-000000000000",
    ]
    # is_byok_only: the shared key is never used for the provider.
    with gw.admin() as admin:
        admin.patch(f"/byok/{fb['id']}", json={"is_fallback": False, "is_byok_only": True})
    fake_a.fake.reset()
    fake_a.fake.script(Status(503), Status(503), Status(503))
    assert chat(gw, key).status_code == 503
    assert f"Bearer {SHARED_A}" not in auths(fake_a)


def test_filters(clean: Gateway, fake_a: Any) -> None:
    gw = clean
    plain = gw.create_key()
    add(gw, allowed_models=["test/beta"])  # not this model
    assert chat(gw, plain["key"]).json()["usage"]["is_byok"] is False
    add(gw, allowed_user_ids=["alice"])
    assert chat(gw, plain["key"]).json()["usage"]["is_byok"] is False
    assert chat(gw, plain["key"], user="bob").json()["usage"]["is_byok"] is False
    assert chat(gw, plain["key"], user="alice").json()["usage"]["is_byok"] is True
    other = gw.create_key()
    add(gw, allowed_api_key_hashes=[other["data"]["hash"]], key="sk-only-for-other-key-0000")
    fake_a.fake.reset()
    assert chat(gw, other["key"]).json()["usage"]["is_byok"] is True
    assert auths(fake_a) == ["Bearer sk-only-for-other-key-0000"]


def test_streamed_usage_and_generation(clean: Gateway, fake_a: Any) -> None:
    gw = clean
    add(gw)
    key = gw.create_key()
    with gw.client(key["key"]) as c:
        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": True}
        with c.stream("POST", "/chat/completions", json=body) as r:
            lines = [ln for ln in r.iter_lines() if ln.startswith("data: {")]
        final = json.loads(lines[-1][6:])
        assert final["usage"]["is_byok"] is True and final["usage"]["cost"] == 0
        gen_id = final["id"]
        gw.flush()
        gen = c.get("/generation", params={"id": gen_id}).json()["data"]
        assert gen["is_byok"] is True and gen["total_cost"] == 0 and gen["upstream_inference_cost"] > 0
        assert gen["provider_responses"][-1]["is_byok"] is True
        me = c.get("/key").json()["data"]
        assert me["usage"] == 0 and me["byok_usage"] > 0 and me["byok_usage_daily"] == me["byok_usage"]


# -- billing


def test_fee_and_limits(make_gateway: Any, fake_a: Any, fake_b: Any) -> None:
    gw = make_gateway(config(fake_a, fake_b), encryption_key=new_key(), byok_fee_percent=Decimal(5))
    add(gw)
    key = gw.create_key(limit=1)
    usage = chat(gw, key["key"]).json()["usage"]
    assert usage["is_byok"] is True
    with gw.client(key["key"]) as c:
        me = c.get("/key").json()["data"]
    # The fee is 5% of what the request would have cost, which is its BYOK usage.
    fee, would = Decimal(str(usage["cost"])), Decimal(str(me["byok_usage"]))
    assert would > 0 and fee == (would * Decimal("0.05")).quantize(fee)
    assert Decimal(str(me["usage"])) == fee
    # Without include_byok_in_limit only the fee counts toward the limit.
    assert Decimal(str(me["limit_remaining"])) == 1 - fee


def test_limits_with_and_without_byok(make_gateway: Any, fake_a: Any, fake_b: Any) -> None:
    """A key whose limit is spent is refused on the shared endpoints, but its workspace's own keys still
    serve it (fee 0, BYOK not counted); with include_byok_in_limit, BYOK usage counts toward the limit."""
    gw = make_gateway(config(fake_a, fake_b), encryption_key=new_key())
    spent = gw.create_key(limit=0)
    counted = gw.create_key(limit=0, include_byok_in_limit=True)
    assert chat(gw, spent["key"]).status_code == 402
    add(gw)
    r = chat(gw, spent["key"])
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["is_byok"] is True and r.json()["usage"]["cost"] == 0
    assert chat(gw, counted["key"]).status_code == 402

    limited = gw.create_key(limit=1, include_byok_in_limit=True)
    assert chat(gw, limited["key"]).json()["usage"]["is_byok"] is True
    with gw.client(limited["key"]) as c:
        me = c.get("/key").json()["data"]
    assert me["usage"] == 0 and me["byok_usage"] > 0
    assert Decimal(str(me["limit_remaining"])) == 1 - Decimal(str(me["byok_usage"]))


def test_provider_the_instance_has_no_key_for(make_gateway: Any, fake_a: Any, fake_b: Any, monkeypatch: Any) -> None:
    """A provider configured without a key of the instance's (disabled) serves the workspaces that
    bring one, with their keys alone."""
    monkeypatch.delenv("OMNI_TEST_FAKE_C_KEY", raising=False)
    conf = config(fake_a, fake_b)
    conf["providers"].append(
        {"slug": "fake-c", "name": "Fake C", "api": "openai", "base_url": fake_b.base_url,
         "api_key_env": "OMNI_TEST_FAKE_C_KEY"}
    )  # fmt: skip
    conf["models"].append(
        {"id": "test/delta", "name": "Delta", "context_length": 8192,
         "endpoints": [{"provider": "fake-c", "upstream_model": "delta-up", "pricing": {"prompt": "0.000001"}}]}
    )  # fmt: skip
    gw = make_gateway(conf, encryption_key=new_key())
    key = gw.create_key()["key"]
    assert chat(gw, key, model="test/delta").status_code == 404  # nobody has a key for fake-c
    add(gw, provider="fake-c", key="sk-brought-for-fake-c-0000")
    fake_b.fake.reset()
    r = chat(gw, key, model="test/delta")
    assert r.status_code == 200, r.text
    assert r.json()["usage"]["is_byok"] is True
    assert auths(fake_b) == ["Bearer sk-brought-for-fake-c-0000"]
    # The key fails: there is no shared key to fall back on.
    fake_b.fake.reset()
    fake_b.fake.script(Status(401))
    assert chat(gw, key, model="test/delta").status_code == 502  # the provider refused the key
    assert auths(fake_b) == ["Bearer sk-brought-for-fake-c-0000"]
    # Other models are routed as before.
    assert chat(gw, key).json()["usage"]["is_byok"] is False


def test_workspaces(clean: Gateway, fake_a: Any) -> None:
    """A workspace's keys serve its own API keys' requests only."""
    gw = clean
    with gw.admin() as admin:
        r = admin.post("/workspaces", json={"name": "BYOK team", "slug": "byok-team"})
        assert r.status_code == 201, r.text
        team = r.json()["data"]["id"]
        missing = admin.post("/byok", json={"provider": "fake-a", "key": SECRET, "workspace_id": "no-such-ws"})
        assert missing.status_code == 400 and "workspace" in missing.json()["error"]["message"]
    created = add(gw, workspace_id="byok-team")  # by slug, as /keys takes it
    assert created["workspace_id"] == team
    with gw.admin() as admin:
        assert admin.get("/byok").json()["total_count"] == 0  # the default workspace has none
        assert admin.get("/byok", params={"workspace_id": team}).json()["total_count"] == 1
        assert admin.get("/byok", params={"workspace_id": "byok-team"}).json()["total_count"] == 1
    fake_a.fake.reset()
    assert chat(gw, gw.create_key()["key"]).json()["usage"]["is_byok"] is False
    assert chat(gw, gw.create_key(workspace_id=team)["key"]).json()["usage"]["is_byok"] is True
    assert auths(fake_a) == [f"Bearer {SHARED_A}", f"Bearer {SECRET}"]
    with gw.admin() as admin:
        admin.delete(f"/byok/{created['id']}")


def test_responses_and_messages_report_byok(clean: Gateway, fake_a: Any) -> None:
    gw = clean
    add(gw)
    key = gw.create_key()["key"]
    with gw.client(key) as c:
        r = c.post("/responses", json={"model": MODEL, "input": "hi", "max_output_tokens": 16})
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["is_byok"] is True and r.json()["usage"]["cost"] == 0
        m = c.post("/messages", json={"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]})
        assert m.status_code == 200, m.text
        assert m.json()["usage"]["is_byok"] is True
    assert auths(fake_a) == [f"Bearer {SECRET}"] * 2


def test_upstream_error_quoting_the_key_is_scrubbed(clean: Gateway, fake_a: Any) -> None:
    gw = clean
    add(gw)
    quoted = {"error": {"message": f"Incorrect API key provided: {SECRET}", "type": "invalid_request_error"}}
    fake_a.fake.script(Status(400, quoted))  # a request error: answered to the client as it is
    r = chat(gw, gw.create_key()["key"])
    assert r.status_code == 400
    assert SECRET not in r.text and SECRET[8:-4] not in r.text
    gw.flush()
    gen_id = r.headers["x-generation-id"]
    with gw.admin() as admin:
        assert SECRET not in admin.get("/generation", params={"id": gen_id}).text


def test_deleting_a_workspace_deletes_its_keys(clean: Gateway) -> None:
    gw = clean
    with gw.admin() as admin:
        team = admin.post("/workspaces", json={"name": "Short-lived", "slug": "short-lived"}).json()["data"]["id"]
    created = add(gw, workspace_id=team)
    with gw.admin() as admin:
        assert admin.delete(f"/workspaces/{team}").status_code == 200
        assert admin.get(f"/byok/{created['id']}").status_code == 404

    async def secret(conn: Any) -> str:
        return (await conn.execute(select(byok_keys.c.secret).where(byok_keys.c.id == created["id"]))).scalar_one()

    assert on_gateway(gw, secret) == ""  # wiped


@pytest.mark.parametrize("include", [False, True])
def test_workspace_budget_counts_byok_only_when_it_says_so(clean: Gateway, include: bool) -> None:
    """A workspace budget too small for the shared endpoint: its BYOK key still serves the request
    (fee 0) unless the budget counts BYOK usage (include_byok_in_budgets), which then refuses it."""
    gw = clean
    slug = f"budget-{str(include).lower()}"
    with gw.admin() as admin:
        team = admin.post("/workspaces", json={"name": slug, "slug": slug}).json()["data"]["id"]
        r = admin.put(
            f"/workspaces/{team}/budgets/daily", json={"limit_usd": 0.000001, "include_byok_in_budgets": include}
        )
        assert r.status_code == 200, r.text
    key = gw.create_key(workspace_id=team)["key"]
    assert chat(gw, key).status_code in (402, 403)  # no BYOK key yet: the shared endpoint is too dear
    created = add(gw, workspace_id=team)
    r = chat(gw, key)
    if include:
        assert r.status_code in (402, 403), r.text
    else:
        assert r.status_code == 200, r.text
        assert r.json()["usage"]["is_byok"] is True
    with gw.admin() as admin:
        admin.delete(f"/byok/{created['id']}")


def test_declared_zdr(clean: Gateway, fake_a: Any) -> None:
    """A request asking for ZDR reaches a provider without a ZDR policy only through a key declared ZDR,
    never through the instance's key or an undeclared one."""
    gw = clean
    key = gw.create_key()["key"]
    zdr = {"provider": {"zdr": True}}
    assert chat(gw, key, **zdr).status_code == 404  # fake-a's policy is not ZDR
    undeclared = add(gw, key="sk-undeclared-key-00000000")
    assert chat(gw, key, **zdr).status_code == 404
    add(gw, key="sk-declared-zdr-key-1111111", declared_zdr=True)
    fake_a.fake.reset()
    fake_a.fake.script(Status(503))  # the declared key fails: nothing else may serve it
    assert chat(gw, key, **zdr).status_code == 503
    assert auths(fake_a) == ["Bearer sk-declared-zdr-key-1111111"]
    fake_a.fake.reset()
    r = chat(gw, key, **zdr)
    assert r.status_code == 200 and r.json()["usage"]["is_byok"] is True
    assert auths(fake_a) == ["Bearer sk-declared-zdr-key-1111111"]
    # Without ZDR asked, every key and the shared endpoint are used as usual.
    fake_a.fake.reset()
    fake_a.fake.script(Status(503), Status(503))
    assert chat(gw, key).status_code == 200
    assert auths(fake_a) == [
        "Bearer sk-undeclared-key-00000000",
        "Bearer sk-declared-zdr-key-1111111",
        f"Bearer {SHARED_A}",
    ]
    assert undeclared["declared_zdr"] is None
