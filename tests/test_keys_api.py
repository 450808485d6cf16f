"""Key management as a user sees it: /keys, /keys/{hash}, /key, and who may call what."""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import select

from omnirouter.governance.keys import new_key
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.store import repo
from omnirouter.store.tables import api_keys
from tests.gateway import Gateway
from tests.spec_validation import spec_available, validate_response

T = TypeVar("T")
KEY_RE = re.compile(r"sk-or-v1-[0-9a-f]{64}")
MANAGEMENT_ONLY = "Only management keys can perform this operation"


def new_workspace(gw: Gateway, slug: str | None = None) -> str:
    """A workspace of the test's own (keys name existing workspaces only): its id."""
    with gw.admin() as admin:
        slug = slug or f"ws-{uuid.uuid4().hex[:12]}"
        r = admin.get(f"/workspaces/{slug}")
        if r.status_code == 404:
            r = admin.post("/workspaces", json={"name": slug, "slug": slug})
        assert r.status_code in (200, 201), r.text
        return r.json()["data"]["id"]


def check(operation: str, body: Any, status: int | str = "200") -> None:
    if spec_available():
        validate_response(operation, body, str(status))


def on_gateway(gw: Gateway, make: Callable[[Any], Awaitable[T]]) -> T:
    """Run `make(conn)` in a transaction on the gateway's own loop and database."""

    async def run() -> T:
        async with gw.state.db.engine.begin() as conn:
            return await make(conn)

    return asyncio.run_coroutine_threadsafe(run(), gw.loop).result(timeout=10)


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def chat(client: httpx.Client, **extra: Any) -> httpx.Response:
    body = {"model": "test/alpha", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, **extra}
    return client.post("/chat/completions", json=body)


# -- create: format, hash, label, what is stored


def test_create_key_format_hash_label(gateway: Gateway) -> None:
    created = gateway.create_key(name="format", limit=12.5, limit_reset="weekly")
    check("createKeys", created, 201)
    secret, data = created["key"], created["data"]
    assert KEY_RE.fullmatch(secret)
    assert data["hash"] == hashlib.sha256(secret.encode()).hexdigest()
    assert data["label"] == f"sk-or-v1-{secret[9:12]}...{secret[-3:]}"
    assert secret not in str(data)
    assert data["name"] == "format"
    assert data["limit"] == 12.5 and data["limit_remaining"] == 12.5 and data["limit_reset"] == "weekly"
    assert data["usage"] == data["usage_daily"] == data["byok_usage"] == 0
    assert data["disabled"] is False and data["updated_at"] is None and data["expires_at"] is None
    assert datetime.fromisoformat(data["created_at"]).tzinfo is not None
    # Two keys never share a secret.
    assert gateway.create_key()["key"] != secret


def test_plaintext_returned_only_on_create(gateway: Gateway) -> None:
    created = gateway.create_key(name="once")
    secret, hash_ = created["key"], created["data"]["hash"]
    with gateway.admin() as admin:
        for r in (admin.get(f"/keys/{hash_}"), admin.get("/keys"), admin.patch(f"/keys/{hash_}", json={})):
            assert r.status_code == 200
            assert secret not in r.text and '"key"' not in r.text
    with gateway.client(secret) as c:
        assert secret not in c.get("/key").text


def test_database_holds_no_plaintext(gateway: Gateway) -> None:
    created = gateway.create_key(name="stored")
    secret, hash_ = created["key"], created["data"]["hash"]

    async def rows(conn: Any) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in await conn.execute(select(api_keys))]

    stored = on_gateway(gateway, rows)
    mine = [r for r in stored if r["hash"] == hash_]
    assert len(mine) == 1 and mine[0]["label"] == created["data"]["label"]
    dump = repr(stored)
    assert secret not in dump and secret[9:] not in dump
    assert gateway.management_key not in dump and gateway.management_key[9:] not in dump


# -- who may call what


def test_inference_key_cannot_manage(gateway: Gateway, api_key: str) -> None:
    with gateway.client(api_key) as c:
        some_hash = hashlib.sha256(api_key.encode()).hexdigest()
        for method, path, body in [
            ("GET", "/keys", None),
            ("POST", "/keys", {"name": "x"}),
            ("GET", f"/keys/{some_hash}", None),
            ("PATCH", f"/keys/{some_hash}", {"disabled": True}),
            ("DELETE", f"/keys/{some_hash}", None),
            ("GET", "/credits", None),
        ]:
            r = c.request(method, path, json=body)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json() == {"error": {"code": 403, "message": MANAGEMENT_ONLY}}
        check("getCredits", c.get("/credits").json(), 403)
        check("createKeys", c.post("/keys", json={"name": "x"}).json(), 403)
        assert c.get("/key").status_code == 200  # the key itself still works


def test_management_key_cannot_do_inference(gateway: Gateway, fake_a: Any) -> None:
    with gateway.admin() as admin:
        r = chat(admin)
        assert r.status_code == 403
        assert r.json()["error"]["code"] == 403
        assert fake_a.fake.requests == []
        me = admin.get("/key")
        assert me.status_code == 200
        check("getCurrentKey", me.json())
        assert me.json()["data"]["is_management_key"] is True
        assert me.json()["data"]["is_provisioning_key"] is True


def test_missing_and_invalid_credentials(gateway: Gateway) -> None:
    with httpx.Client(base_url=gateway.api, timeout=10) as anon:
        for path in ("/key", "/keys", "/credits"):
            r = anon.get(path)
            assert r.status_code == 401
            assert r.json() == {"error": {"code": 401, "message": "Missing Authentication header"}}
        for op, path in (("getCurrentKey", "/key"), ("list", "/keys"), ("getCredits", "/credits")):
            check(op, anon.get(path).json(), 401)
        r = anon.post("/chat/completions", json={"model": "test/alpha", "messages": []})
        assert r.status_code == 401
        for header in (
            "Bearer " + new_key(),  # well-formed, unknown
            "Bearer sk-or-v1-nothex",
            "Bearer " + new_key().upper(),
            "Basic " + new_key(),
            "Bearer",
        ):
            r = anon.get("/key", headers={"Authorization": header})
            assert r.status_code == 401, header
            assert r.json()["error"]["code"] == 401


def test_disabled_key_is_rejected_then_reenabled(gateway: Gateway, fake_a: Any) -> None:
    created = gateway.create_key(name="toggle")
    secret, hash_ = created["key"], created["data"]["hash"]
    with gateway.admin() as admin, gateway.client(secret) as c:
        r = admin.patch(f"/keys/{hash_}", json={"disabled": True})
        assert r.status_code == 200 and r.json()["data"]["disabled"] is True
        check("updateKeys", r.json())
        for resp in (c.get("/key"), chat(c)):
            assert resp.status_code == 401
            assert resp.json()["error"]["code"] == 401
        assert fake_a.fake.requests == []
        assert admin.patch(f"/keys/{hash_}", json={"disabled": False}).status_code == 200
        assert c.get("/key").status_code == 200
        assert chat(c).status_code == 200


def test_expiring_key_stops_working(gateway: Gateway) -> None:
    expires = datetime.now(UTC) + timedelta(seconds=0.6)
    created = gateway.create_key(name="brief", expires_at=expires.isoformat().replace("+00:00", "Z"))
    check("createKeys", created, 201)
    assert created["data"]["expires_at"].endswith("Z")
    assert abs(datetime.fromisoformat(created["data"]["expires_at"]) - expires) < timedelta(milliseconds=1)
    with gateway.client(created["key"]) as c:
        r = c.get("/key")
        assert r.status_code == 200
        assert r.json()["data"]["expires_at"] == created["data"]["expires_at"]
        time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.05)
        r = c.get("/key")
        assert r.status_code == 401 and r.json()["error"]["code"] == 401


def test_key_expired_in_the_database_is_rejected(gateway: Gateway) -> None:
    # Another worker (or an operator) expires the key: this worker learns of it at its next sync.
    created = gateway.create_key(name="expired elsewhere")
    hash_ = created["data"]["hash"]
    past = datetime.now(UTC) - timedelta(minutes=1)
    on_gateway(gateway, lambda conn: repo.update_key(conn, hash_, {"expires_at": past}))
    with gateway.client(created["key"]) as c:
        wait_until(lambda: c.get("/key").status_code == 401)


def test_key_unknown_to_this_worker_authenticates(gateway: Gateway) -> None:
    # A key created by another worker a moment ago is not in this worker's memory yet.
    secret = new_key()
    created = gateway.create_key(name="template")
    record = gateway.state.keys.by_hash[created["data"]["hash"]]
    other = replace(record, hash=hashlib.sha256(secret.encode()).hexdigest(), name="other worker")

    async def insert(conn: Any) -> None:
        await repo.insert_key(conn, other)

    on_gateway(gateway, insert)
    with gateway.client(secret) as c:
        assert c.get("/key").status_code == 200


@pytest.mark.parametrize(
    "expires_at",
    [
        "2030-01-01T00:00:00+02:00",
        "2030-01-01T00:00:00-05:00",
        "2030-01-01T00:00:00",  # no timezone at all
        "2020-01-01T00:00:00Z",  # in the past
        "next tuesday",
    ],
)
def test_create_rejects_bad_expires_at(gateway: Gateway, expires_at: str) -> None:
    with gateway.admin() as admin:
        r = admin.post("/keys", json={"name": "bad expiry", "expires_at": expires_at})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == 400
        check("createKeys", r.json(), 400)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": 5},
        {"name": "x", "limit": -1},
        {"name": "x", "limit": "lots"},
        {"name": "x", "limit_reset": "yearly"},
        {"name": "x", "include_byok_in_limit": "yes"},
    ],
)
def test_create_rejects_bad_bodies(gateway: Gateway, body: dict[str, Any]) -> None:
    with gateway.admin() as admin:
        r = admin.post("/keys", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == 400
        r = admin.post("/keys", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400


@pytest.mark.parametrize(
    "body",
    [
        {"name": "n" * 256},
        {"name": "x", "workspace_id": "w" * 65},  # longer than the column: a 500 on PostgreSQL
        {"name": "x", "creator_user_id": "u" * 65},
        {"name": "x", "creator_user_id": ""},
        b'{"name": "x", "limit": 0.1234567890123456789}',  # finer than the money columns keep
        b'{"name": "x", "limit": 1e-19}',
        b'{"name": "x", "limit": 1e30}',  # more than NUMERIC(38, 18) holds
        b'{"name": "x", "limit": 100000000000000000000}',
    ],
)
def test_create_rejects_what_cannot_be_stored(gateway: Gateway, body: dict[str, Any] | bytes) -> None:
    with gateway.admin() as admin:
        if isinstance(body, bytes):
            r = admin.post("/keys", content=body, headers={"content-type": "application/json"})
        else:
            r = admin.post("/keys", json=body)
        assert r.status_code == 400, r.text
        check("createKeys", r.json(), 400)


def test_create_accepts_utc_offset_and_exact_limit(gateway: Gateway) -> None:
    created = gateway.create_key(name="utc offset", expires_at="2035-06-01T12:00:00+00:00", limit=0.1)
    assert created["data"]["expires_at"] == "2035-06-01T12:00:00Z"
    with gateway.admin() as admin:
        raw = admin.get(f"/keys/{created['data']['hash']}").text
        assert '"limit":0.1,' in raw.replace(" ", "")  # the exact decimal, not 0.1000000000000000055...
        new_workspace(gateway, "w" * 50)  # the longest slug
        fine = b'{"name": "fine", "limit": 0.123456789012345678, "workspace_id": "%s"}' % (b"w" * 50)
        r = admin.post("/keys", content=fine, headers={"content-type": "application/json"})
        assert r.status_code == 201, r.text
        assert '"limit":0.123456789012345678,' in admin.get(f"/keys/{r.json()['data']['hash']}").text


# -- list


def test_list_pagination_and_order(gateway: Gateway) -> None:
    ws = new_workspace(gateway)
    hashes = [gateway.create_key(name=f"page {i}", workspace_id=ws)["data"]["hash"] for i in range(103)]
    with gateway.admin() as admin:
        first = admin.get("/keys", params={"workspace_id": ws})
        assert first.status_code == 200
        check("list", first.json())
        page1 = [k["hash"] for k in first.json()["data"]]
        assert len(page1) == 100
        assert page1 == hashes[::-1][:100]  # most recent first
        second = admin.get("/keys", params={"workspace_id": ws, "offset": 100}).json()["data"]
        assert [k["hash"] for k in second] == hashes[::-1][100:]
        assert all(k["workspace_id"] == ws for k in second)
        assert admin.get("/keys", params={"workspace_id": ws, "offset": 103}).json() == {"data": []}
        for bad in ("-1", "two"):
            r = admin.get("/keys", params={"offset": bad})
            assert r.status_code == 400
            check("list", r.json(), 400)


def test_list_defaults_to_the_default_workspace(gateway: Gateway) -> None:
    ws = new_workspace(gateway)
    elsewhere = gateway.create_key(name="elsewhere", workspace_id=ws)["data"]
    here = gateway.create_key(name="here")["data"]
    assert here["workspace_id"] == DEFAULT_WORKSPACE_ID
    with gateway.admin() as admin:
        listed = {k["hash"] for k in admin.get("/keys").json()["data"]}
        assert here["hash"] in listed and elsewhere["hash"] not in listed
        listed = {k["hash"] for k in admin.get("/keys", params={"workspace_id": "default"}).json()["data"]}
        assert here["hash"] in listed and elsewhere["hash"] not in listed
        listed = [k["hash"] for k in admin.get("/keys", params={"workspace_id": ws}).json()["data"]]
        assert listed == [elsewhere["hash"]]
        # Keys of every workspace are still reachable by hash.
        assert admin.get(f"/keys/{elsewhere['hash']}").json()["data"]["workspace_id"] == ws


def test_list_include_disabled(gateway: Gateway) -> None:
    ws = new_workspace(gateway)
    on = gateway.create_key(name="on", workspace_id=ws)["data"]["hash"]
    off = gateway.create_key(name="off", workspace_id=ws)["data"]["hash"]
    with gateway.admin() as admin:
        assert admin.patch(f"/keys/{off}", json={"disabled": True}).status_code == 200
        listed = admin.get("/keys", params={"workspace_id": ws}).json()["data"]
        assert [k["hash"] for k in listed] == [on]
        listed = admin.get("/keys", params={"workspace_id": ws, "include_disabled": "true"}).json()
        check("list", listed)
        assert {k["hash"]: k["disabled"] for k in listed["data"]} == {on: False, off: True}


def test_list_never_shows_management_keys(gateway: Gateway) -> None:
    mgmt_hash = hashlib.sha256(gateway.management_key.encode()).hexdigest()
    with gateway.admin() as admin:
        listed = admin.get("/keys", params={"include_disabled": "true"}).json()["data"]
        assert mgmt_hash not in {k["hash"] for k in listed}
        assert admin.get(f"/keys/{mgmt_hash}").status_code == 404
        assert admin.delete(f"/keys/{mgmt_hash}").status_code == 404
        assert admin.get("/key").status_code == 200  # and it still works


# -- get, update, delete


def test_get_and_patch_fields(gateway: Gateway) -> None:
    created = gateway.create_key(name="before", creator_user_id="user_1")["data"]
    hash_ = created["hash"]
    with gateway.admin() as admin:
        got = admin.get(f"/keys/{hash_}")
        assert got.status_code == 200
        check("getKey", got.json())
        assert got.json()["data"] == created

        r = admin.patch(f"/keys/{hash_}", json={"name": "after", "limit": 7.25, "limit_reset": "daily",
                                                 "include_byok_in_limit": True})  # fmt: skip
        assert r.status_code == 200
        check("updateKeys", r.json())
        data = r.json()["data"]
        assert data["name"] == "after" and data["limit"] == 7.25 and data["limit_reset"] == "daily"
        assert data["limit_remaining"] == 7.25 and data["include_byok_in_limit"] is True
        assert data["label"] == created["label"] and data["created_at"] == created["created_at"]
        assert data["creator_user_id"] == "user_1"
        assert data["updated_at"] is not None and data["updated_at"] >= created["created_at"]
        assert admin.get(f"/keys/{hash_}").json()["data"] == data  # persisted and served alike

        # Omitted fields stay; explicit nulls clear.
        data = admin.patch(f"/keys/{hash_}", json={"limit": None, "limit_reset": None}).json()["data"]
        assert data["name"] == "after" and data["include_byok_in_limit"] is True
        assert data["limit"] is None and data["limit_remaining"] is None and data["limit_reset"] is None

        for bad in ({"limit": -0.01}, {"limit_reset": "hourly"}, {"name": ""}, {"disabled": "no"},
                    {"name": "n" * 256}, {"limit": 1e-19}):  # fmt: skip
            r = admin.patch(f"/keys/{hash_}", json=bad)
            assert r.status_code == 400, bad
            check("updateKeys", r.json(), 400)
        assert admin.get(f"/keys/{hash_}").json()["data"] == data


def test_patch_survives_a_reload(gateway: Gateway) -> None:
    hash_ = gateway.create_key(name="reload")["data"]["hash"]
    with gateway.admin() as admin:
        admin.patch(f"/keys/{hash_}", json={"name": "renamed", "limit": 3})

    async def load(conn: Any) -> Any:
        return await repo.get_key(conn, hash_)

    stored = on_gateway(gateway, load)
    assert stored.name == "renamed" and str(stored.limit).rstrip("0").rstrip(".") == "3"


def test_unknown_hash_is_404(gateway: Gateway) -> None:
    missing = "0" * 64
    with gateway.admin() as admin:
        for method, op, body in (("GET", "getKey", None), ("PATCH", "updateKeys", {"name": "x"}),
                                 ("DELETE", "deleteKeys", None)):  # fmt: skip
            r = admin.request(method, f"/keys/{missing}", json=body)
            assert r.status_code == 404
            assert r.json()["error"]["code"] == 404
            check(op, r.json(), 404)


def test_delete_key(gateway: Gateway, fake_a: Any) -> None:
    created = gateway.create_key(name="doomed")
    secret, hash_ = created["key"], created["data"]["hash"]
    with gateway.admin() as admin, gateway.client(secret) as c:
        assert chat(c).status_code == 200
        r = admin.delete(f"/keys/{hash_}")
        assert r.status_code == 200 and r.json() == {"deleted": True}
        check("deleteKeys", r.json())
        assert admin.get(f"/keys/{hash_}").status_code == 404
        assert admin.patch(f"/keys/{hash_}", json={"name": "zombie"}).status_code == 404
        assert admin.delete(f"/keys/{hash_}").status_code == 404
        assert hash_ not in {k["hash"] for k in admin.get("/keys", params={"include_disabled": "true"}).json()["data"]}
        before = len(fake_a.fake.requests)
        assert c.get("/key").status_code == 401
        assert chat(c).status_code == 401
        assert len(fake_a.fake.requests) == before
        time.sleep(3 * gateway.settings.sync_interval)  # a background reload does not resurrect it
        assert c.get("/key").status_code == 401


# -- GET /key


def test_current_key(gateway: Gateway) -> None:
    created = gateway.create_key(name="me", limit=2, limit_reset="monthly", expires_at="2031-01-01T00:00:00Z")
    with gateway.client(created["key"]) as c:
        r = c.get("/key")
    assert r.status_code == 200
    check("getCurrentKey", r.json())
    data = r.json()["data"]
    assert data["label"] == created["data"]["label"]
    assert data["limit"] == 2 and data["limit_remaining"] == 2 and data["limit_reset"] == "monthly"
    assert data["usage"] == data["usage_daily"] == data["usage_weekly"] == data["usage_monthly"] == 0
    assert data["is_management_key"] is False and data["is_provisioning_key"] is False
    assert data["expires_at"] == "2031-01-01T00:00:00Z"
    assert set(data["rate_limit"]) == {"requests", "interval", "note"}


def test_v1_prefix_serves_the_same_api(gateway: Gateway) -> None:
    with httpx.Client(base_url=gateway.url + "/v1", timeout=10,
                      headers={"Authorization": f"Bearer {gateway.management_key}"}) as admin:  # fmt: skip
        assert admin.get("/keys").status_code == 200
