"""Workspaces as a user drives them: CRUD, budgets and members through HTTP and the official Python
SDK, answers validated against the official document, bad input refused with nothing half-written,
keys that name workspaces, and a workspace's defaults applied to its keys' requests."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal
from typing import Any

import httpx
import pytest
from openrouter import OpenRouter, errors

from omnirouter.governance import workspace_service as ws
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID, Defaults, WorkspacesSnapshot
from omnirouter.testing import Reply
from tests.gateway import Gateway
from tests.spec_validation import spec_available, validate_response

HELLO = [{"role": "user", "content": "hello"}]


def check(operation: str, body: Any, status: int | str = "200") -> None:
    if spec_available():
        validate_response(operation, body, str(status))


def sdk(gw: Gateway) -> OpenRouter:
    return OpenRouter(api_key=gw.management_key, server_url=gw.api)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def on_loop(gw: Gateway, coro: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(coro, gw.loop).result(timeout=10)


def member(gw: Gateway, email: str | None = None, role: str = "member", first: str | None = "Jane") -> str:
    """An organisation member, as `omnirouter members add` creates one: their user id."""
    body = ws.CreateMember(email=email or f"{unique('m')}@example.com", first_name=first, last_name="Doe", role=role)  # type: ignore[arg-type]
    return on_loop(gw, ws.add_org_member(gw.state.db, body)).id


def create(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    slug = fields.pop("slug", None) or unique("ws")
    r = admin.post("/workspaces", json={"name": fields.pop("name", slug), "slug": slug, **fields})
    assert r.status_code == 201, r.text
    check("createWorkspace", r.json(), 201)
    return r.json()["data"]


def count(gw: Gateway, table: str) -> int:
    from sqlalchemy import text

    async def read() -> int:
        async with gw.state.db.engine.connect() as conn:
            return (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()

    return on_loop(gw, read())


# -- workspaces


def test_crud_through_the_sdk(gateway: Gateway) -> None:
    slug = unique("prod")
    with sdk(gateway) as client:
        created = client.workspaces.create(
            name="Production", slug=slug, description="Prod", default_text_model="test/alpha",
            default_provider_sort="price",
        ).data  # fmt: skip
        uuid.UUID(created.id)
        assert (created.name, created.slug, created.description) == ("Production", slug, "Prod")
        assert created.default_text_model == "test/alpha" and created.default_provider_sort == "price"
        assert created.include_byok_in_budgets is False and created.updated_at is None
        assert created.io_logging_sampling_rate == 1 and created.is_data_discount_logging_enabled is True
        assert client.workspaces.get(id=created.id).data == created
        assert client.workspaces.get(id=slug).data == created  # by slug too

        updated = client.workspaces.update(id=slug, name="Prod 2", default_text_model=None).data
        assert updated.name == "Prod 2" and updated.default_text_model is None and updated.updated_at is not None
        assert updated.default_provider_sort == "price"  # not sent: unchanged

        listed = client.workspaces.list(limit=100)
        assert listed is not None
        ids = [w.id for w in listed.result.data]
        assert ids[0] == DEFAULT_WORKSPACE_ID and created.id in ids

        assert client.workspaces.delete(id=slug).DELETED is True
        with pytest.raises(errors.NotFoundResponseError):
            client.workspaces.get(id=created.id)

    with gateway.admin() as admin:
        default = admin.get("/workspaces/default").json()
        check("getWorkspace", default)
        assert default["data"]["id"] == DEFAULT_WORKSPACE_ID and default["data"]["slug"] == "default"
        check("listWorkspaces", admin.get("/workspaces").json())


def test_list_pages(make_gateway: Any) -> None:
    gw = make_gateway()
    with gw.admin() as admin:
        made = [create(admin, slug=f"page-{i}")["id"] for i in range(5)]
        first = admin.get("/workspaces", params={"limit": 2}).json()
        assert first["total_count"] == 6 and [w["id"] for w in first["data"]] == [DEFAULT_WORKSPACE_ID, made[0]]
        rest = admin.get("/workspaces", params={"offset": 2, "limit": 100}).json()
        assert [w["id"] for w in rest["data"]] == made[1:]
        assert admin.get("/workspaces", params={"offset": 6}).json()["data"] == []


def test_delete_rules(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        r = admin.delete(f"/workspaces/{DEFAULT_WORKSPACE_ID}")
        assert r.status_code == 403 and "default workspace" in r.json()["error"]["message"]
        with_key = create(admin)
        key = gateway.create_key(name="in it", workspace_id=with_key["id"])
        r = admin.delete(f"/workspaces/{with_key['slug']}")
        assert r.status_code == 409 and "still has 1 API key" in r.json()["error"]["message"]
        assert admin.get(f"/workspaces/{with_key['id']}").status_code == 200  # nothing deleted
        # Moved out, the workspace goes, with its budgets.
        assert admin.patch(f"/keys/{key['data']['hash']}", json={"workspace_id": "default"}).status_code == 200
        assert admin.put(f"/workspaces/{with_key['id']}/budgets/daily", json={"limit_usd": 5}).status_code == 200
        r = admin.delete(f"/workspaces/{with_key['id']}")
        assert r.status_code == 200 and r.json() == {"deleted": True}
        check("deleteWorkspace", r.json())
        assert admin.get(f"/workspaces/{with_key['id']}/budgets").status_code == 404
        assert admin.delete(f"/workspaces/{with_key['id']}").status_code == 404


def test_bad_workspace_input_writes_nothing(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        taken = create(admin)
        before = count(gateway, "workspaces")
        for body in (
            {},
            {"name": "x"},
            {"slug": "x"},
            {"name": "", "slug": "ok"},
            {"name": "x" * 101, "slug": "ok"},
            {"name": "x", "slug": "Not A Slug"},
            {"name": "x", "slug": "-lead"},
            {"name": "x", "slug": "a" * 51},
            {"name": 5, "slug": "ok"},
            {"name": "x", "slug": "ok", "description": "d" * 501},
            {"name": "x", "slug": "ok", "default_provider_sort": "cheapest"},
            {"name": "x", "slug": "ok", "io_logging_sampling_rate": 0},
            {"name": "x", "slug": "ok", "io_logging_api_key_ids": ["a"]},
            {"name": "x", "slug": "ok", "is_observability_broadcast_enabled": "yes"},
            {"name": "x\x00", "slug": "ok"},
        ):
            r = admin.post("/workspaces", json=body)
            assert r.status_code == 400, (body, r.text)
            check("createWorkspace", r.json(), 400)
        r = admin.post("/workspaces", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400
        r = admin.post("/workspaces", json={"name": "again", "slug": taken["slug"]})
        assert r.status_code == 409 and taken["slug"] in r.json()["error"]["message"]
        assert count(gateway, "workspaces") == before

        other = create(admin)
        r = admin.patch(f"/workspaces/{other['id']}", json={"slug": taken["slug"]})
        assert r.status_code == 409
        r = admin.patch(f"/workspaces/{other['id']}", json={"name": "renamed", "slug": "BAD SLUG"})
        assert r.status_code == 400
        assert admin.get(f"/workspaces/{other['id']}").json()["data"] == other  # unchanged
        for ref in ("nope", "x" * 65, "a%00b"):
            for method in ("GET", "PATCH", "DELETE"):
                r = admin.request(method, f"/workspaces/{ref}", json={} if method == "PATCH" else None)
                assert r.status_code == 404, (method, ref, r.text)
        # An offset beyond what a database can skip (PostgreSQL's is int64) is a 400, not its error.
        for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "ten"}, {"offset": 2**64}):
            assert admin.get("/workspaces", params=params).status_code == 400, params
            assert admin.get("/organization/members", params=params).status_code == 400, params


def test_management_key_required(gateway: Gateway, api_key: str) -> None:
    with gateway.client(api_key) as c:
        r = c.get("/workspaces")
        assert (
            r.status_code == 403 and r.json()["error"]["message"] == "Only management keys can perform this operation"
        )
        assert c.get("/organization/members").status_code == 403
        assert c.put("/workspaces/default/budgets/daily", json={"limit_usd": 1}).status_code == 403
    assert httpx.get(gateway.api + "/workspaces").status_code == 401
    assert httpx.post(gateway.api + "/workspaces/default/members/add", json={"user_ids": ["u"]}).status_code == 401


# -- budgets


def test_budgets_through_the_sdk(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        w = create(admin)
    with sdk(gateway) as client:
        monthly = client.workspaces.set_budget(workspace_ref=w["slug"], interval="monthly", limit_usd=500)
        assert monthly.data.limit_usd == 500 and monthly.data.reset_interval == "monthly"
        assert monthly.data.workspace_id == w["id"] and monthly.include_byok_in_budgets is False
        client.workspaces.set_budget(workspace_ref=w["id"], interval="daily", limit_usd=10.5)
        client.workspaces.set_budget(workspace_ref=w["id"], interval="lifetime", limit_usd=1000)
        weekly = client.workspaces.set_budget(
            workspace_ref=w["id"], interval="weekly", limit_usd=100, include_byok_in_budgets=True
        )
        assert weekly.include_byok_in_budgets is True
        listed = client.workspaces.list_budgets(workspace_ref=w["id"])
        assert [(b.reset_interval, b.limit_usd) for b in listed.data] == [
            (None, 1000),
            ("monthly", 500),
            ("weekly", 100),
            ("daily", 10.5),
        ]
        assert listed.include_byok_in_budgets is True  # workspace-wide
        got = client.workspaces.get_budget(workspace_ref=w["id"], interval="daily")
        assert got.data.limit_usd == 10.5 and got.include_byok_in_budgets is True
        assert client.workspaces.get(id=w["id"]).data.include_byok_in_budgets is True

        # Updating one keeps its id and creation time.
        again = client.workspaces.set_budget(workspace_ref=w["id"], interval="monthly", limit_usd=400)
        assert (again.data.id, again.data.created_at) == (monthly.data.id, monthly.data.created_at)

        assert client.workspaces.delete_budget(workspace_ref=w["id"], interval="daily").DELETED is True
        with pytest.raises(errors.NotFoundResponseError):
            client.workspaces.get_budget(workspace_ref=w["id"], interval="daily")
        assert client.workspaces.delete_budget(workspace_ref=w["id"], interval="daily").DELETED is True

    with gateway.admin() as admin:
        check("listWorkspaceBudgets", admin.get(f"/workspaces/{w['id']}/budgets").json())
        check("getWorkspaceBudget", admin.get(f"/workspaces/{w['id']}/budgets/lifetime").json())
        r = admin.put(f"/workspaces/{w['id']}/budgets/daily", json={"limit_usd": 0.000000000000000001})
        assert r.status_code == 200 and Decimal(r.text.split('"limit_usd":')[1].split(",")[0]) == Decimal("1e-18")
        check("upsertWorkspaceBudget", r.json())
        check("deleteWorkspaceBudget", admin.delete(f"/workspaces/{w['id']}/budgets/daily").json())


def test_budget_limits_strictly_decrease_as_the_interval_narrows(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        w = create(admin)
        base = f"/workspaces/{w['id']}/budgets"
        assert admin.put(f"{base}/monthly", json={"limit_usd": 500}).status_code == 200
        assert admin.put(f"{base}/daily", json={"limit_usd": 20}).status_code == 200
        for interval, limit in (("weekly", 500), ("weekly", 600), ("weekly", 20), ("weekly", 10), ("daily", 500),
                                ("lifetime", 500), ("lifetime", 100), ("monthly", 20)):  # fmt: skip
            r = admin.put(f"{base}/{interval}", json={"limit_usd": limit, "include_byok_in_budgets": True})
            assert r.status_code == 400, (interval, limit, r.text)
            assert "strictly decrease" in r.json()["error"]["message"]
            check("upsertWorkspaceBudget", r.json(), 400)
        listed = admin.get(base).json()
        assert [(b["reset_interval"], b["limit_usd"]) for b in listed["data"]] == [("monthly", 500), ("daily", 20)]
        assert listed["include_byok_in_budgets"] is False  # the refused request changed nothing
        assert admin.put(f"{base}/weekly", json={"limit_usd": 100}).status_code == 200


def test_bad_budget_input(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        w = create(admin)
        base = f"/workspaces/{w['id']}/budgets"
        bad = [{}, {"limit_usd": 0}, {"limit_usd": -1}, {"limit_usd": "ten"}, {"limit_usd": 1e20}, {"limit_usd": 1e-19}]
        bad += [{"limit_usd": None}, {"limit_usd": 5, "include_byok_in_budgets": "no"}]
        for body in bad:
            r = admin.put(f"{base}/monthly", json=body)
            assert r.status_code == 400, (body, r.text)
        for method in ("GET", "PUT", "DELETE"):
            r = admin.request(method, f"{base}/hourly", json={"limit_usd": 1} if method == "PUT" else None)
            assert r.status_code == 400 and "interval" in r.json()["error"]["message"]
        assert admin.put("/workspaces/nope/budgets/daily", json={"limit_usd": 1}).status_code == 404
        assert admin.get("/workspaces/nope/budgets").status_code == 404
        assert admin.get(base).json()["data"] == []


def test_budgets_reach_the_request_path(make_gateway: Any) -> None:
    gw = make_gateway()
    assert gw.state.governance.get("workspaces") is None  # nothing set: one lookup per request
    with gw.admin() as admin:
        w = create(admin, name="Team A")
        admin.put(f"/workspaces/{w['id']}/budgets/monthly", json={"limit_usd": 500, "include_byok_in_budgets": True})
        admin.put(f"/workspaces/{w['id']}/budgets/lifetime", json={"limit_usd": 900})
    key = gw.create_key(workspace_id=w["slug"])["data"]
    from omnirouter.governance.budgets import for_key

    record = gw.state.keys.by_hash[key["hash"]]
    snapshot = gw.state.governance.get("workspaces")
    assert snapshot is not None
    budgets = snapshot.budgets[w["id"]]
    assert [(b.period, b.limit, b.include_byok) for b in budgets] == [
        ("total", Decimal(900), True),
        ("month", Decimal(500), True),
    ]
    assert budgets[1].exceeded == "Workspace monthly budget of $500.00 exceeded. Contact your org admin."
    assert budgets[0].scope == budgets[1].scope == f"ws:{w['id']}"
    assert for_key(gw.state.governance, record)[-2:] == budgets
    with gw.admin() as admin:
        admin.delete(f"/workspaces/{w['id']}/budgets/monthly")
        admin.delete(f"/workspaces/{w['id']}/budgets/lifetime")
    assert gw.state.governance.get("workspaces") is None


# -- members


def test_members_through_the_sdk(gateway: Gateway) -> None:
    admin_id = member(gateway, role="admin")
    plain_id = member(gateway, first=None)
    with gateway.admin() as admin:
        w = create(admin)
    with sdk(gateway) as client:
        org = client.organization.list_members(limit=100)
        assert org is not None
        by_id = {m.id: m for m in org.result.data}
        assert by_id[admin_id].role == "org:admin" and by_id[plain_id].role == "org:member"
        assert by_id[plain_id].first_name is None and by_id[plain_id].last_name == "Doe"

        added = client.workspaces.bulk_add_members(id=w["slug"], user_ids=[admin_id, plain_id])
        assert added.added_count == 2
        assert {(m.user_id, m.role, m.workspace_id) for m in added.data} == {
            (admin_id, "admin", w["id"]),
            (plain_id, "member", w["id"]),
        }
        assert client.workspaces.bulk_add_members(id=w["id"], user_ids=[admin_id]).added_count == 0  # already in
        listed = client.workspaces.list_members(id=w["id"])
        assert listed is not None and listed.result.total_count == 2
        assert {m.user_id for m in listed.result.data} == {admin_id, plain_id}

        assert client.workspaces.bulk_remove_members(id=w["id"], user_ids=[plain_id]).removed_count == 1
        assert client.workspaces.bulk_remove_members(id=w["id"], user_ids=[plain_id]).removed_count == 0
        listed = client.workspaces.list_members(id=w["id"])
        assert listed is not None and [m.user_id for m in listed.result.data] == [admin_id]

        # The default workspace: every organisation member, implicitly.
        default = client.workspaces.list_members(id="default", limit=100)
        assert default is not None and {admin_id, plain_id} <= {m.user_id for m in default.result.data}

    with gateway.admin() as admin:
        check("listOrganizationMembers", admin.get("/organization/members").json())
        check("listWorkspaceMembers", admin.get(f"/workspaces/{w['id']}/members").json())
        check("listWorkspaceMembers", admin.get("/workspaces/default/members").json())
        r = admin.post(f"/workspaces/{w['id']}/members/add", json={"user_ids": [plain_id]})
        check("bulkAddWorkspaceMembers", r.json())
        r = admin.post(f"/workspaces/{w['id']}/members/remove", json={"user_ids": [plain_id]})
        check("bulkRemoveWorkspaceMembers", r.json())


def test_member_changes_refused_write_nothing(gateway: Gateway) -> None:
    someone = member(gateway)
    with gateway.admin() as admin:
        w = create(admin)
        base = f"/workspaces/{w['id']}/members"
        r = admin.post(f"{base}/add", json={"user_ids": [someone, "user_unknown"]})
        assert r.status_code == 404 and "user_unknown" in r.json()["error"]["message"]
        assert admin.get(base).json()["total_count"] == 0  # not even the known one
        for body in ({}, {"user_ids": []}, {"user_ids": "u"}, {"user_ids": [1]}, {"user_ids": ["u"] * 101},
                     {"user_ids": [""]}):  # fmt: skip
            assert admin.post(f"{base}/add", json=body).status_code == 400, body
            assert admin.post(f"{base}/remove", json=body).status_code == 400, body
        assert admin.post("/workspaces/nope/members/add", json={"user_ids": [someone]}).status_code == 404
        assert admin.get("/workspaces/nope/members").status_code == 404

        r = admin.post("/workspaces/default/members/remove", json={"user_ids": [someone]})
        assert r.status_code == 400 and "default workspace" in r.json()["error"]["message"]

        # A member with an active key in the workspace stays.
        admin.post(f"{base}/add", json={"user_ids": [someone]})
        gateway.create_key(name="theirs", workspace_id=w["id"], creator_user_id=someone)
        r = admin.post(f"{base}/remove", json={"user_ids": [someone]})
        assert r.status_code == 400 and someone in r.json()["error"]["message"]
        assert admin.get(base).json()["total_count"] == 1


# -- keys in workspaces


def test_keys_name_existing_workspaces(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        w = create(admin)
        before = count(gateway, "api_keys")
        for ref in ("nope", "a\x00", "x" * 64):
            r = admin.post("/keys", json={"name": "k", "workspace_id": ref})
            assert r.status_code == 400 and "workspace" in r.json()["error"]["message"], r.text
        assert count(gateway, "api_keys") == before

        by_slug = gateway.create_key(name="by slug", workspace_id=w["slug"])["data"]
        assert by_slug["workspace_id"] == w["id"]  # stored and shown as the id
        plain = gateway.create_key(name="plain")["data"]
        assert plain["workspace_id"] == DEFAULT_WORKSPACE_ID
        r = admin.patch(f"/keys/{plain['hash']}", json={"workspace_id": "nope", "name": "renamed"})
        assert r.status_code == 400
        after = admin.get(f"/keys/{plain['hash']}").json()["data"]
        assert after["name"] == "plain" and after["workspace_id"] == DEFAULT_WORKSPACE_ID  # nothing written

        default_hashes = {k["hash"] for k in admin.get("/keys").json()["data"]}
        assert plain["hash"] in default_hashes and by_slug["hash"] not in default_hashes
        for ref in (w["id"], w["slug"]):
            assert [k["hash"] for k in admin.get("/keys", params={"workspace_id": ref}).json()["data"]] == [
                by_slug["hash"]
            ]
        assert admin.get("/keys", params={"workspace_id": "nope"}).json()["data"] == []


# -- workspace defaults on the request path


def test_workspace_defaults_apply_to_its_keys_requests(gateway: Gateway, fake_a: Any, fake_b: Any) -> None:
    with gateway.admin() as admin:
        w = create(admin, default_text_model="test/beta", default_provider_sort="price")
    secret = gateway.create_key(name="defaults", workspace_id=w["id"])["key"]
    plain = gateway.create_key(name="no defaults")["key"]
    with gateway.client(secret) as c:
        fake_b.fake.script(Reply("from beta"))
        r = c.post("/chat/completions", json={"messages": HELLO, "max_tokens": 5})
        assert r.status_code == 200, r.text
        assert r.json()["model"] == "test/beta" and fake_b.fake.last_request.model == "beta-upstream"
        gen_id = r.json()["id"]
        gateway.flush()
        generation = c.get("/generation", params={"id": gen_id}).json()["data"]
        assert generation["workspace_id"] == w["id"]  # attributed to the key's workspace

        # An explicit model wins; the default sort orders its providers by price (fake-a's are cheaper).
        fake_a.fake.reset()
        for _ in range(6):
            r = c.post("/chat/completions", json={"model": "test/gamma", "messages": HELLO, "max_tokens": 5})
            assert r.status_code == 200 and r.json()["provider"] == "Fake A", r.text
        assert [q.model for q in fake_a.fake.requests] == ["gamma-a"] * 6

        # The Responses API too (its body becomes the same internal request).
        fake_b.fake.script(Reply("from beta"))
        r = c.post("/responses", json={"input": "hi", "max_output_tokens": 16})
        assert r.status_code == 200, r.text
        assert fake_b.fake.last_request.model == "beta-upstream"
    with gateway.client(plain) as c:  # a key of the default workspace (no defaults): as before
        r = c.post("/chat/completions", json={"messages": HELLO})
        assert r.status_code == 400 and "No model specified" in r.json()["error"]["message"]

    # Cleared, the workspace's keys are back to the instance's behaviour.
    with gateway.admin() as admin:
        admin.patch(f"/workspaces/{w['id']}", json={"default_text_model": None, "default_provider_sort": None})
    with gateway.client(secret) as c:
        assert c.post("/chat/completions", json={"messages": HELLO}).status_code == 400


def _key(workspace: str | None) -> Any:
    from omnirouter.governance.keys import KeyRecord

    return KeyRecord(hash="h", name="k", label="l", created_at=None, workspace_id=workspace)  # type: ignore[arg-type]


def test_apply_defaults_fills_only_what_the_request_leaves_unset() -> None:
    snap = WorkspacesSnapshot({"w": Defaults("test/beta", "latency")}, {})
    cases = [
        ({}, {"model": "test/beta", "provider": {"sort": "latency"}}),
        ({"model": "x"}, {"model": "x", "provider": {"sort": "latency"}}),
        ({"models": ["a", "b"]}, {"models": ["a", "b"], "provider": {"sort": "latency"}}),
        ({"provider": {"order": ["p"]}}, {"model": "test/beta", "provider": {"order": ["p"], "sort": "latency"}}),
        ({"provider": {"sort": "price"}}, {"model": "test/beta", "provider": {"sort": "price"}}),
        ({"provider": {"sort": None}}, {"model": "test/beta", "provider": {"sort": "latency"}}),
    ]
    for body, expected in cases:
        snap.apply_defaults(_key("w"), body)
        assert body == expected
    untouched: dict[str, Any] = {}
    snap.apply_defaults(_key(None), untouched)  # the default workspace has none here
    snap.apply_defaults(_key("other"), untouched)
    assert untouched == {}


def test_deleting_a_workspace_deletes_its_guardrails(gateway: Gateway) -> None:
    someone = member(gateway)
    with gateway.admin() as admin:
        w = create(admin)
        r = admin.post("/guardrails", json={"name": unique("grd"), "workspace_id": w["id"]})
        assert r.status_code == 201, r.text
        rail = r.json()["data"]["id"]
        elsewhere = admin.post("/guardrails", json={"name": unique("grd")}).json()["data"]["id"]
        for gid in (rail, elsewhere):
            r = admin.post(f"/guardrails/{gid}/assignments/members", json={"member_user_ids": [someone]})
            assert r.status_code == 200, r.text
        assert admin.delete(f"/workspaces/{w['id']}").status_code == 200
        assert admin.get(f"/guardrails/{rail}").status_code == 404
        mine = admin.get("/guardrails/assignments/members", params={"limit": 100}).json()["data"]
        assert [a["guardrail_id"] for a in mine if a["user_id"] == someone] == [elsewhere]

    # Removing the member from the organisation drops the assignments they had left.
    on_loop(gateway, ws.remove_org_member(gateway.state.db, someone))
    with gateway.admin() as admin:
        assert admin.get(f"/guardrails/{elsewhere}/assignments/members").json()["total_count"] == 0


# -- concurrent changes take turns


def test_concurrent_changes_never_break_the_rules(gateway: Gateway) -> None:
    from concurrent.futures import ThreadPoolExecutor

    someone = member(gateway)
    with gateway.admin() as admin:
        w = create(admin)

    def put(args: tuple[str, int]) -> int:
        with gateway.admin() as c:
            return c.put(f"/workspaces/{w['id']}/budgets/{args[0]}", json={"limit_usd": args[1]}).status_code

    # Each alone would be accepted; together, some orders break "lifetime > monthly > weekly > daily".
    attempts = [(i, limit) for i in ("daily", "weekly", "monthly", "lifetime") for limit in (10, 20, 30, 40, 50)]
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(put, attempts * 2))
    assert set(statuses) <= {200, 400} and 200 in statuses
    with gateway.admin() as admin:
        listed = admin.get(f"/workspaces/{w['id']}/budgets").json()["data"]
    limits = [b["limit_usd"] for b in listed]  # broadest first
    assert limits == sorted(limits, reverse=True) and len(set(limits)) == len(limits), listed

    def add(_: int) -> int:
        with gateway.admin() as c:
            return c.post(f"/workspaces/{w['id']}/members/add", json={"user_ids": [someone]}).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(add, range(16))) == {200}
    with gateway.admin() as admin:
        assert admin.get(f"/workspaces/{w['id']}/members").json()["total_count"] == 1

    # A key joining a workspace while it is deleted: one of the two is refused, never a key left behind.
    for _ in range(5):
        with gateway.admin() as admin:
            doomed = create(admin)

        def join(workspace_id: str) -> int:
            with gateway.admin() as c:
                return c.post("/keys", json={"name": "joiner", "workspace_id": workspace_id}).status_code

        def drop(workspace_id: str) -> int:
            with gateway.admin() as c:
                return c.delete(f"/workspaces/{workspace_id}").status_code

        with ThreadPoolExecutor(2) as pool:
            joined, dropped = pool.submit(join, doomed["id"]), pool.submit(drop, doomed["id"])
            outcome = (joined.result(), dropped.result())
        assert outcome in ((201, 409), (400, 200)), outcome


def test_current_key_shows_its_workspace_budgets(gateway: Gateway, fake_a: Any) -> None:
    with gateway.admin() as admin:
        w = create(admin)
        monthly = admin.put(f"/workspaces/{w['id']}/budgets/monthly", json={"limit_usd": 500}).json()["data"]
        r = admin.put(f"/workspaces/{w['id']}/budgets/daily", json={"limit_usd": 2, "include_byok_in_budgets": True})
        daily = r.json()["data"]
    secret = gateway.create_key(name="budgeted", workspace_id=w["id"], limit=1)["key"]
    fake_a.fake.script(Reply("four words of answer", prompt_tokens=100, completion_tokens=50))
    with gateway.client(secret) as c:
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO, "max_tokens": 5})
        assert r.status_code == 200, r.text
        cost = Decimal(str(r.json()["usage"]["cost"]))
        body = c.get("/key").json()
    check("getCurrentKey", body)
    with OpenRouter(api_key=secret, server_url=gateway.api) as client:
        data = client.api_keys.get_current_key_metadata().data
    assert [(b.scope, b.budget_id, b.reset_interval, b.limit_usd) for b in data.budgets] == [
        ("workspace", monthly["id"], "monthly", 500),
        ("workspace", daily["id"], "daily", 2),
        ("key_limit", None, None, 1),
    ]
    assert all(Decimal(str(b.spend_usd)) == cost for b in data.budgets)
    assert data.budgets[1].include_byok is True and data.budgets[1].resets_at is not None
    assert data.effective_budget == data.budgets[2]  # the key's 1 USD has the least left
