"""The key endpoints as today's official SDKs read them: every field they require, with real values.

`GET /key` (and its legacy alias `GET /auth/key`) needs `allowed_data_regions`, `budgets`,
`effective_budget`, `free_model_daily_requests`, `organization_id`, `workspace_id`; key objects need
`external_user` and `last_used_at`. Responses go through the official Python SDK (its typed methods,
or its pydantic model for the legacy path) and through the OpenAPI snapshot's validation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from openrouter import OpenRouter, errors, operations
from openrouter.utils.unmarshal_json_response import unmarshal_json_response
from sqlalchemy import select

import tests.gateway as gateway_module
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.store import repo
from omnirouter.store.db import Database
from omnirouter.store.tables import api_keys
from omnirouter.testing import Reply
from tests.conftest import ALPHA_PRICES, standard_config
from tests.gateway import FreshDatabase, Gateway
from tests.spec_validation import spec_available, validate_response

HELLO = [{"role": "user", "content": "hello"}]
FREE = {"prompt": "0", "completion": "0"}


def check(operation: str, body: Any, status: int | str = "200") -> None:
    if spec_available():
        validate_response(operation, body, str(status))


def workspace(gw: Gateway, slug: str) -> str:
    """The id of the workspace `slug`, created if need be (keys name existing workspaces only)."""
    with gw.admin() as admin:
        r = admin.get(f"/workspaces/{slug}")
        if r.status_code == 404:
            r = admin.post("/workspaces", json={"name": slug, "slug": slug})
        assert r.status_code in (200, 201), r.text
        return r.json()["data"]["id"]


def sdk(gw: Gateway, key: str) -> OpenRouter:
    return OpenRouter(api_key=key, server_url=gw.api)


def chat(c: httpx.Client, model: str = "test/alpha") -> httpx.Response:
    r = c.post("/chat/completions", json={"model": model, "messages": HELLO, "max_tokens": 5})
    assert r.status_code == 200, r.text
    return r


def stored_key(gw: Gateway, hash_: str) -> Any:
    async def read() -> Any:
        async with gw.state.db.engine.connect() as conn:
            return (await conn.execute(select(api_keys).where(api_keys.c.hash == hash_))).one()._mapping

    return asyncio.run_coroutine_threadsafe(read(), gw.loop).result(timeout=10)


def free_config(a: str, b: str) -> dict[str, Any]:
    """The standard models, plus one served free by its standard endpoint and one with a `:free` variant."""
    cfg = standard_config(a, b)
    cfg["models"] += [
        {"id": "test/gratis", "name": "Gratis", "context_length": 8192,
         "endpoints": [{"provider": "fake-a", "upstream_model": "gratis-up", "pricing": FREE}]},
        {"id": "test/twin", "name": "Twin", "context_length": 8192,
         "endpoints": [{"provider": "fake-a", "upstream_model": "twin-paid", "pricing": ALPHA_PRICES},
                       {"provider": "fake-b", "upstream_model": "twin-free", "pricing": FREE, "variant": "free"}]},
    ]  # fmt: skip
    return cfg


def restarted(gw: Gateway, config: dict[str, Any]) -> Gateway:
    """Stop `gw` but keep its database, and start a new gateway (a new process's state) on it."""
    gw.server.should_exit = True
    gw.thread.join(timeout=30)
    gw.sock.close()
    shared = FreshDatabase.__new__(FreshDatabase)
    shared.name, shared.url = None, gw.database.url
    original = gateway_module.FreshDatabase
    gateway_module.FreshDatabase = lambda **_: shared  # type: ignore[assignment,misc]
    try:
        # The same directory: the same SQLite file (PostgreSQL: the same database, by URL).
        new = Gateway(gw.tmp, config)
    finally:
        gateway_module.FreshDatabase = original  # type: ignore[misc]
    new.database = gw.database  # dropped when the new one stops
    return new.start()


# -- GET /key and GET /auth/key


def test_current_key_parses_in_the_sdk_with_real_budgets(gateway: Gateway, fake_a: Any) -> None:
    team_a = workspace(gateway, "team-a")
    created = gateway.create_key(name="budgeted", limit=1, limit_reset="daily", workspace_id="team-a")
    secret = created["key"]
    fake_a.fake.script(Reply("four words of answer", prompt_tokens=100, completion_tokens=50))
    with gateway.client(secret) as c:
        cost = Decimal(str(chat(c).json()["usage"]["cost"]))
    assert 0 < cost < 1

    with sdk(gateway, secret) as client:
        data = client.api_keys.get_current_key_metadata().data  # raises if any required field is missing
    assert data.label == created["data"]["label"]
    assert data.workspace_id == team_a and data.organization_id is None
    assert data.allowed_data_regions == ["global"]
    assert data.free_model_daily_requests.used == 0
    assert len(data.budgets) == 1
    budget = data.budgets[0]
    assert budget.scope == "key_limit" and budget.budget_id is None and budget.guardrail_id is None
    assert budget.limit_usd == 1 and budget.reset_interval == "daily" and budget.include_byok is False
    assert Decimal(str(budget.spend_usd)) == cost
    assert Decimal(str(budget.remaining_usd)) == 1 - cost
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)
    assert budget.resets_at == datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=UTC)
    assert data.effective_budget == budget

    with gateway.client(secret) as c:
        body = c.get("/key").json()
    check("getCurrentKey", body)
    # Exact decimals on the wire, as in limit_remaining.
    assert Decimal(str(body["data"]["budgets"][0]["spend_usd"])) == cost
    assert body["data"]["limit_remaining"] == body["data"]["budgets"][0]["remaining_usd"]


def test_lifetime_and_absent_limits(gateway: Gateway) -> None:
    lifetime = gateway.create_key(name="lifetime", limit=3)["key"]
    with sdk(gateway, lifetime) as client:
        data = client.api_keys.get_current_key_metadata().data
    assert [(b.reset_interval, b.resets_at, b.limit_usd, b.remaining_usd) for b in data.budgets] == [(None, None, 3, 3)]
    assert data.workspace_id == DEFAULT_WORKSPACE_ID

    unlimited = gateway.create_key(name="unlimited")["key"]
    with sdk(gateway, unlimited) as client:
        data = client.api_keys.get_current_key_metadata().data
    assert data.budgets == [] and data.effective_budget is None
    with sdk(gateway, gateway.management_key) as client:  # a management key may read /key too
        data = client.api_keys.get_current_key_metadata().data
    assert data.is_management_key is True and data.budgets == []


def test_auth_key_is_the_legacy_alias_of_key(gateway: Gateway) -> None:
    secret = gateway.create_key(name="legacy", limit=2, limit_reset="weekly")["key"]
    with gateway.client(secret) as c:
        current, legacy = c.get("/key"), c.get("/auth/key")
        assert c.get("/auth/key", headers={"Authorization": "Bearer sk-or-v1-" + "0" * 64}).status_code == 401
    assert legacy.status_code == 200
    assert legacy.json() == current.json()
    parsed = unmarshal_json_response(operations.GetCurrentKeyResponse, legacy)
    assert parsed.data.limit == 2 and parsed.data.budgets[0].reset_interval == "weekly"
    check("getCurrentKey", legacy.json())
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {secret}"}) as c:
        assert c.get("/v1/auth/key").json() == current.json()


def test_free_model_requests_are_counted_per_day_and_survive_a_restart(
    tmp_path: Path, fake_a: Any, fake_b: Any
) -> None:
    config = free_config(fake_a.base_url, fake_b.base_url)
    gw = Gateway(tmp_path, config).start()
    try:
        secret = gw.create_key(name="free rider")["key"]
        other = gw.create_key(name="someone else")["key"]
        with gw.client(secret) as c:
            chat(c, "test/gratis")  # price zero
            chat(c, "test/twin:free")  # the :free variant
            chat(c, "test/twin")  # the paid endpoint: not counted
            chat(c, "test/alpha")
            counter = c.get("/key").json()["data"]["free_model_daily_requests"]
        with gw.client(other) as c:
            chat(c, "test/gratis")
        # Unfunded instance: OpenRouter's tier for accounts with under 10 credits bought.
        assert counter == {"limit": 50, "remaining": 48, "used": 2}
        gw.flush()
        gw = restarted(gw, config)
        with sdk(gw, secret) as client:
            counted = client.api_keys.get_current_key_metadata().data.free_model_daily_requests
        assert (counted.limit, counted.remaining, counted.used) == (50, 48, 2)

        async def fund(conn: Any) -> None:
            await repo.add_credits(conn, Decimal(10))

        asyncio.run_coroutine_threadsafe(_in_transaction(gw, fund), gw.loop).result(timeout=10)
        asyncio.run_coroutine_threadsafe(gw.state.recorder.sync(force=True), gw.loop).result(timeout=10)
        with gw.client(secret) as c:
            assert c.get("/key").json()["data"]["free_model_daily_requests"] == {
                "limit": 1000, "remaining": 998, "used": 2}  # fmt: skip
    finally:
        gw.stop()


async def _in_transaction(gw: Gateway, work: Callable[[Any], Any]) -> None:
    async with gw.state.db.engine.begin() as conn:
        await work(conn)


def test_free_counter_only_counts_today(gateway: Gateway) -> None:
    created = gateway.create_key(name="yesterday's free requests")
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    scope = "free:" + created["data"]["hash"]

    async def seed(conn: Any) -> None:
        await conn.run_sync(repo.add_counts, {(scope, "day", yesterday): [Decimal(0), Decimal(0), 40]})

    asyncio.run_coroutine_threadsafe(_in_transaction(gateway, seed), gateway.loop).result(timeout=10)
    asyncio.run_coroutine_threadsafe(gateway.state.recorder.sync(force=True), gateway.loop).result(timeout=10)
    with gateway.client(created["key"]) as c:
        assert c.get("/key").json()["data"]["free_model_daily_requests"]["used"] == 0


# -- key objects: external_user and last_used_at


def test_sdk_create_shows_the_secret_and_external_user(gateway: Gateway) -> None:
    with sdk(gateway, gateway.management_key) as client:
        res = client.api_keys.create(name="partner key", limit=5, external={"user": "end-user-17"})
        assert res.key.startswith("sk-or-v1-")
        data = res.data
        assert data.external_user == "end-user-17" and data.last_used_at is None
        assert data.workspace_id == DEFAULT_WORKSPACE_ID
        got = client.api_keys.get(hash=data.hash).data
        assert got.external_user == "end-user-17"
        listed = {k.hash: k for k in client.api_keys.list().data}
        assert listed[data.hash].external_user == "end-user-17"
        updated = client.api_keys.update(hash=data.hash, name="renamed").data
        assert updated.external_user == "end-user-17" and updated.name == "renamed"
        plain = client.api_keys.create(name="no partner").data
        assert plain.external_user is None
    assert stored_key(gateway, data.hash)["external_user"] == "end-user-17"
    with gateway.admin() as admin:
        r = admin.post("/keys", json={"name": "x", "external": {"user": "u", "api_key": "k" * 40}})
        assert r.status_code == 400 and "external.api_key" in r.json()["error"]["message"]
        check("createKeys", r.json(), 400)
        for external in ({}, {"user": ""}, {"user": "u" * 256}, "u"):
            assert admin.post("/keys", json={"name": "x", "external": external}).status_code == 400, external


def test_last_used_at_follows_inference_and_is_persisted(gateway: Gateway) -> None:
    created = gateway.create_key(name="used")
    secret, hash_ = created["key"], created["data"]["hash"]
    assert created["data"]["last_used_at"] is None
    with gateway.client(secret) as c:
        c.get("/key")  # not an inference request
        c.get("/models/user")
    with gateway.admin() as admin:
        assert admin.get(f"/keys/{hash_}").json()["data"]["last_used_at"] is None

        before = datetime.now(UTC)
        with gateway.client(secret) as c:
            chat(c)
        after = datetime.now(UTC)
        # At once on this worker, before any write.
        r = admin.get(f"/keys/{hash_}")
        check("getKey", r.json())
        first = datetime.fromisoformat(r.json()["data"]["last_used_at"])
        assert before <= first <= after
        gateway.flush()
        stored = stored_key(gateway, hash_)["last_used_at"]
        assert stored is not None and abs(stored.replace(tzinfo=UTC) - first) < timedelta(milliseconds=1)

        with gateway.client(secret) as c:  # a refused request authenticated the key too
            assert c.post("/chat/completions", json={"model": "no/such-model", "messages": HELLO}).status_code >= 400
        gateway.flush()
        later = datetime.fromisoformat(admin.get(f"/keys/{hash_}").json()["data"]["last_used_at"])
        assert later > first
        listed = admin.get("/keys").json()
        check("list", listed)
        assert {k["hash"]: k["last_used_at"] for k in listed["data"]}[hash_] == admin.get(
            f"/keys/{hash_}").json()["data"]["last_used_at"]  # fmt: skip
    with sdk(gateway, gateway.management_key) as client:
        assert client.api_keys.get(hash=hash_).data.last_used_at == later


def test_last_used_at_is_written_in_the_background_not_per_request(gateway: Gateway) -> None:
    created = gateway.create_key(name="no sql on the request path")
    secret, hash_ = created["key"], created["data"]["hash"]
    recorder = gateway.state.recorder

    async def hold_the_writer() -> asyncio.Event:
        release = asyncio.Event()

        async def held() -> None:
            async with recorder._lock:  # no flush can run meanwhile
                await release.wait()

        asyncio.get_running_loop().create_task(held())
        await asyncio.sleep(0)
        return release

    release = asyncio.run_coroutine_threadsafe(hold_the_writer(), gateway.loop).result(timeout=10)
    try:
        with gateway.client(secret) as c:
            chat(c)
        assert stored_key(gateway, hash_)["last_used_at"] is None  # answered, and nothing written yet
        assert gateway.state.keys.used[hash_] > 0
    finally:
        gateway.loop.call_soon_threadsafe(release.set)
    gateway.flush()
    assert stored_key(gateway, hash_)["last_used_at"] is not None


def test_last_used_at_survives_a_restart(tmp_path: Path, fake_a: Any, fake_b: Any) -> None:
    config = standard_config(fake_a.base_url, fake_b.base_url)
    gw = Gateway(tmp_path, config).start()
    try:
        created = gw.create_key(name="remembered")
        with gw.client(created["key"]) as c:
            chat(c)
        with gw.admin() as admin:
            seen = admin.get(f"/keys/{created['data']['hash']}").json()["data"]["last_used_at"]
        assert seen is not None
        gw.flush()
        gw = restarted(gw, config)
        with gw.admin() as admin:
            assert admin.get(f"/keys/{created['data']['hash']}").json()["data"]["last_used_at"] == seen
    finally:
        gw.stop()


# -- listing and moving, as the SDK's parameters describe


def test_list_excludes_expired_keys_unless_asked(gateway: Gateway) -> None:
    ws = "expiry-" + datetime.now(UTC).strftime("%H%M%S%f")
    workspace(gateway, ws)
    live = gateway.create_key(name="live", workspace_id=ws)["data"]["hash"]
    gone = gateway.create_key(name="gone", workspace_id=ws, expires_at="2099-01-01T00:00:00Z")["data"]["hash"]

    async def expire(conn: Any) -> None:
        await repo.update_key(conn, gone, {"expires_at": datetime.now(UTC) - timedelta(seconds=1)})

    asyncio.run_coroutine_threadsafe(_in_transaction(gateway, expire), gateway.loop).result(timeout=10)
    with sdk(gateway, gateway.management_key) as client:
        assert [k.hash for k in client.api_keys.list(workspace_id=ws).data] == [live]
        both = client.api_keys.list(workspace_id=ws, include_expired=True).data
        assert [k.hash for k in both] == [gone, live]


def test_patch_moves_a_key_to_another_workspace(gateway: Gateway) -> None:
    created = gateway.create_key(name="mover")
    hash_ = created["data"]["hash"]
    team_b = workspace(gateway, "team-b")
    with sdk(gateway, gateway.management_key) as client:
        same = client.api_keys.update(hash=hash_, workspace_id="default").data  # the default's slug
        assert same.updated_at is None  # its own workspace: nothing changed
        moved = client.api_keys.update(hash=hash_, workspace_id="team-b").data
        assert moved.workspace_id == team_b
        assert hash_ in {k.hash for k in client.api_keys.list(workspace_id="team-b").data}
        assert hash_ not in {k.hash for k in client.api_keys.list().data}
    with gateway.client(created["key"]) as c:  # the key keeps its value
        assert c.get("/key").json()["data"]["workspace_id"] == team_b


# -- what PostgreSQL cannot store: 400 in a body, 404 in the path


@pytest.mark.parametrize(
    "body",
    [
        {"name": "a\x00b"},
        {"name": "x", "workspace_id": "w\x00"},
        {"name": "x", "creator_user_id": "\x00"},
        {"name": "x", "external": {"user": "u\x00"}},
    ],
)
def test_nul_in_a_created_key_is_400(gateway: Gateway, body: dict[str, Any]) -> None:
    with gateway.admin() as admin:
        r = admin.post("/keys", json=body)
    assert r.status_code == 400, r.text
    check("createKeys", r.json(), 400)


def test_nul_in_an_update_is_400(gateway: Gateway) -> None:
    hash_ = gateway.create_key(name="clean")["data"]["hash"]
    with gateway.admin() as admin:
        for body in ({"name": "a\x00"}, {"workspace_id": "\x00w"}):
            r = admin.patch(f"/keys/{hash_}", json=body)
            assert r.status_code == 400, r.text
            check("updateKeys", r.json(), 400)
        assert admin.get(f"/keys/{hash_}").json()["data"]["name"] == "clean"


@pytest.mark.parametrize("path", ["%00", "a%00b", "0" * 63 + "%00", "%C0%80", "%FF", "0" * 65, "Z" * 64])
def test_unstorable_or_malformed_hash_is_404(gateway: Gateway, path: str) -> None:
    with gateway.admin() as admin:
        for method, op in (("GET", "getKey"), ("PATCH", "updateKeys"), ("DELETE", "deleteKeys")):
            r = admin.request(method, f"/keys/{path}", json={"name": "x"} if method == "PATCH" else None)
            assert r.status_code == 404, (method, path, r.text)
            check(op, r.json(), 404)


def test_nul_in_list_filters_is_harmless(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        r = admin.get("/keys", params={"workspace_id": "a\x00b"})
    assert r.status_code == 200 and r.json() == {"data": []}


# -- the migration


def test_migration_adds_the_columns_to_an_existing_database(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    from omnirouter.store.db import MIGRATIONS

    fresh = FreshDatabase()
    url = fresh.url or f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"

    async def run() -> Any:
        db = Database(url)
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        try:
            async with db.engine.begin() as conn:

                def to_0001(sync_conn: Any) -> None:
                    cfg.attributes["connection"] = sync_conn
                    command.upgrade(cfg, "0001")

                await conn.run_sync(to_0001)
                await conn.exec_driver_sql(
                    "INSERT INTO api_keys (hash, name, label, is_management, disabled, include_byok_in_limit, "
                    "created_at, deleted) VALUES ('" + "a" * 64 + "', 'old', 'sk-or-v1-aaa...aaa', false, false, "
                    "false, '2026-01-01 00:00:00', false)"
                )
            await db.migrate()
            async with db.engine.connect() as conn:
                return await repo.get_key(conn, "a" * 64)
        finally:
            await db.close()

    try:
        record = asyncio.run(run())
    finally:
        fresh.drop()
    assert record.name == "old" and record.external_user is None and record.last_used_at is None
    assert record.created_at.date() == date(2026, 1, 1)


def test_sdk_errors_stay_typed(gateway: Gateway) -> None:
    with sdk(gateway, gateway.management_key) as client, pytest.raises(errors.NotFoundResponseError):
        client.api_keys.get(hash="0" * 64)
