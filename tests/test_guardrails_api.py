"""Guardrail management as a user sees it: the 13 /guardrails* operations over HTTP and through the
official `openrouter` SDK, validated against the official document; bad input answers 400/404/409 in
the error envelope and writes nothing."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx
import pytest
import sqlalchemy as sa
from openrouter import OpenRouter, errors

from omnirouter.governance.guardrails import DEFAULT_WORKSPACE_ID, default_guardrail_id
from omnirouter.store.tables import guardrail_key_assignments, guardrails
from tests.gateway import Gateway
from tests.spec_validation import spec_available, validate_response

T = TypeVar("T")
MANAGEMENT_ONLY = "Only management keys can perform this operation"
_members = sa.table(
    "members",
    sa.column("id", sa.String),
    sa.column("email", sa.String),
    sa.column("role", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)


def check(operation: str, body: Any, status: int | str = "200") -> None:
    if spec_available():
        validate_response(operation, body, str(status))


def on_gateway(gw: Gateway, make: Callable[[Any], Awaitable[T]]) -> T:
    async def run() -> T:
        async with gw.state.db.engine.begin() as conn:
            return await make(conn)

    return asyncio.run_coroutine_threadsafe(run(), gw.loop).result(timeout=10)


def add_member(gw: Gateway, user_id: str | None = None) -> str:
    """A member of the organisation, as `omnirouter members add` would store it."""
    uid = user_id or f"user_{uuid.uuid4().hex[:12]}"

    async def insert(conn: Any) -> None:
        await conn.execute(
            sa.insert(_members).values(id=uid, email=f"{uid}@example.com", role="member", created_at=datetime.now(UTC))
        )

    on_gateway(gw, insert)
    return uid


def unique(prefix: str = "grd") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create(admin: httpx.Client, **fields: Any) -> dict[str, Any]:
    r = admin.post("/guardrails", json={"name": unique(), **fields})
    assert r.status_code == 201, r.text
    check("createGuardrail", r.json(), 201)
    return r.json()["data"]


def count_rows(gw: Gateway, table: sa.Table) -> int:
    async def count(conn: Any) -> int:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())

    return on_gateway(gw, count)


# -- CRUD


def test_create_get_update_delete(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        body = {
            "name": unique("prod"),
            "description": "Production",
            "limit_usd": 50.5,
            "reset_interval": "monthly",
            "allowed_providers": ["fake-a", "fake-b"],
            "allowed_models": ["test/alpha"],
            "enforce_zdr": True,
            "enforce_zdr_openai": False,
            "content_filters": [{"pattern": r"\bsk-[a-zA-Z0-9]{48}\b", "action": "redact", "label": "[API_KEY]"}],
            "content_filter_builtins": [
                {"slug": "email", "action": "redact"},
                {"slug": "credit-card", "action": "block"},
            ],
        }
        r = admin.post("/guardrails", json=body)
        assert r.status_code == 201, r.text
        check("createGuardrail", r.json(), 201)
        g = r.json()["data"]
        assert uuid.UUID(g["id"]) and g["name"] == body["name"] and g["description"] == "Production"
        assert g["limit_usd"] == 50.5 and g["reset_interval"] == "monthly"
        assert g["workspace_id"] == DEFAULT_WORKSPACE_ID and g["include_byok_in_budgets"] is False
        # enforce_zdr fills the per-group flags not given explicitly.
        assert g["enforce_zdr_anthropic"] is g["enforce_zdr_google"] is g["enforce_zdr_xai"] is True
        assert g["enforce_zdr_other"] is True and g["enforce_zdr_openai"] is False
        assert g["content_filter_builtins"] == [
            {"slug": "email", "action": "redact", "label": "[EMAIL]"},
            {"slug": "credit-card", "action": "block", "label": "[CREDIT_CARD]"},
        ]
        assert g["content_filters"][0]["label"] == "[API_KEY]"
        assert g["updated_at"] is None and g["created_at"].endswith("Z")

        got = admin.get(f"/guardrails/{g['id']}")
        assert got.status_code == 200 and got.json()["data"] == g
        check("getGuardrail", got.json())

        # PATCH replaces collection fields whole and leaves the others alone.
        r = admin.patch(f"/guardrails/{g['id']}", json={"allowed_providers": ["fake-b"], "limit_usd": None})
        assert r.status_code == 200, r.text
        check("updateGuardrail", r.json())
        u = r.json()["data"]
        assert u["allowed_providers"] == ["fake-b"] and u["limit_usd"] is None
        assert u["allowed_models"] == ["test/alpha"] and u["description"] == "Production"
        assert u["updated_at"] is not None
        r = admin.patch(f"/guardrails/{g['id']}", json={"content_filters": None, "allowed_models": None})
        assert r.json()["data"]["content_filters"] is None and r.json()["data"]["allowed_models"] is None

        r = admin.delete(f"/guardrails/{g['id']}")
        assert r.status_code == 200 and r.json() == {"deleted": True}
        check("deleteGuardrail", r.json())
        for resp in (admin.get(f"/guardrails/{g['id']}"), admin.delete(f"/guardrails/{g['id']}"),
                     admin.patch(f"/guardrails/{g['id']}", json={"name": "x"})):  # fmt: skip
            assert resp.status_code == 404
            assert resp.json()["error"] == {"code": 404, "message": "Guardrail not found"}
        check("getGuardrail", admin.get(f"/guardrails/{g['id']}").json(), 404)
        assert admin.get("/guardrails/not-a-uuid").status_code == 404


def test_list_pagination(make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway()
    with gw.admin() as admin:
        empty = admin.get("/guardrails")
        assert empty.status_code == 200 and empty.json() == {"data": [], "total_count": 0}
        names = [create(admin, name=f"g{i:02d}")["name"] for i in range(7)]
        r = admin.get("/guardrails")
        check("listGuardrails", r.json())
        assert [g["name"] for g in r.json()["data"]] == names and r.json()["total_count"] == 7
        page = admin.get("/guardrails", params={"offset": 2, "limit": 3}).json()
        assert [g["name"] for g in page["data"]] == names[2:5] and page["total_count"] == 7
        other = admin.get("/guardrails", params={"workspace_id": str(uuid.uuid4())}).json()
        assert other == {"data": [], "total_count": 0}
        for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}):
            bad = admin.get("/guardrails", params=params)
            assert bad.status_code == 400, params
            check("listGuardrails", bad.json(), 400)
    with OpenRouter(api_key=gw.management_key, server_url=gw.api) as sdk:
        listed = sdk.guardrails.list(limit=5)
        assert listed is not None and [g.name for g in listed.result.data] == names[:5]
        assert listed.result.total_count == 7
        following = listed.next()
        assert following is not None and [g.name for g in following.result.data] == names[5:]


def test_names_are_unique_per_workspace(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        name = unique("dup")
        first = create(admin, name=name)
        again = admin.post("/guardrails", json={"name": name})
        assert again.status_code == 409
        assert again.json()["error"]["code"] == 409 and name in again.json()["error"]["message"]
        other = create(admin)
        renamed = admin.patch(f"/guardrails/{other['id']}", json={"name": name})
        assert renamed.status_code == 409
        assert admin.get(f"/guardrails/{other['id']}").json()["data"]["name"] == other["name"]
        assert admin.patch(f"/guardrails/{first['id']}", json={"name": name}).status_code == 200  # its own name


# -- bad input


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "ok", "limit_usd": "ten"}, "limit_usd"),
        ({"name": "ok", "limit_usd": -1}, "limit"),
        ({"name": "ok", "reset_interval": "hourly"}, "reset_interval"),
        ({"name": "ok", "allowed_models": []}, "allowed_models"),
        ({"name": "ok", "allowed_models": "test/alpha"}, "allowed_models"),
        ({"name": "ok", "enforce_zdr": "yes"}, "enforce_zdr"),
        ({"name": "ok", "include_byok_in_budgets": None}, "include_byok_in_budgets"),
        ({"name": "ok", "unknown_field": 1}, "unknown_field"),
        ({"name": "ok", "content_filters": [{"pattern": "x", "action": "delete"}]}, "action"),
        ({"name": "ok", "content_filters": [{"pattern": "", "action": "block"}]}, "pattern"),
        ({"name": "ok", "content_filter_builtins": [{"slug": "dna", "action": "block"}]}, "slug"),
        ({"name": "ok", "content_filter_builtins": [{"slug": "person-name", "action": "redact"}]}, "person-name"),
        ({"name": "ok", "workspace_id": str(uuid.uuid4())}, "does not exist"),
        ({"name": "ok", "allowed_providers": ["nowhere"]}, "Unknown provider 'nowhere' in allowed_providers"),
        ({"name": "ok", "ignored_providers": ["fake-a", "x"]}, "Unknown provider 'x'"),
        ({"name": "ok", "allowed_models": ["test/alpha", "test/nothing"]}, "Unknown model 'test/nothing'"),
    ],
)
def test_create_bad_input(gateway: Gateway, body: dict[str, Any], needle: str) -> None:
    before = count_rows(gateway, guardrails)
    with gateway.admin() as admin:
        r = admin.post("/guardrails", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == 400 and needle in r.json()["error"]["message"], r.text
        check("createGuardrail", r.json(), 400)
        assert admin.post("/guardrails", content=b"{not json").status_code == 400
    assert count_rows(gateway, guardrails) == before


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("(a+)+$", "nested quantifiers"),
        ("(?:x|y*)*", "nested quantifiers"),
        ("foo(?=bar)", "lookaround"),
        ("(?<!a)b", "lookaround"),
        (r"(a)\1", "backreferences"),
        (r"(?<w>a)\k<w>", "backreferences"),
        ("[a-", "unterminated"),
        ("(?i)secret", "not JavaScript"),
        ("a" * 100_001, "100,000"),
    ],
)
def test_invalid_regex_is_refused_at_write_time(gateway: Gateway, pattern: str, reason: str) -> None:
    with gateway.admin() as admin:
        r = admin.post(
            "/guardrails", json={"name": unique(), "content_filters": [{"pattern": pattern, "action": "block"}]}
        )
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert reason in error["message"] and pattern[:50] in error["message"]
        if len(pattern) <= 100_000:
            assert error["metadata"]["code"] == "invalid_regex_pattern"
        # The same on update: nothing changes.
        g = create(admin)
        r = admin.patch(f"/guardrails/{g['id']}", json={"content_filters": [{"pattern": pattern, "action": "redact"}]})
        assert r.status_code == 400
        assert admin.get(f"/guardrails/{g['id']}").json()["data"]["content_filters"] is None


def test_javascript_named_groups_are_accepted(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        g = create(admin, content_filters=[{"pattern": r"(?<year>\d{4})-(\d{2})", "action": "flag"}])
        assert g["content_filters"][0]["pattern"] == r"(?<year>\d{4})-(\d{2})"


def test_management_key_required(gateway: Gateway, api_key: str) -> None:
    gid = str(uuid.uuid4())
    calls = [
        ("GET", "/guardrails", None, "listGuardrails"),
        ("POST", "/guardrails", {"name": "x"}, "createGuardrail"),
        ("GET", f"/guardrails/{gid}", None, "getGuardrail"),
        ("PATCH", f"/guardrails/{gid}", {"name": "x"}, "updateGuardrail"),
        ("DELETE", f"/guardrails/{gid}", None, "deleteGuardrail"),
        ("GET", f"/guardrails/{gid}/assignments/keys", None, "listGuardrailKeyAssignments"),
        ("POST", f"/guardrails/{gid}/assignments/keys", {"key_hashes": ["a"]}, "bulkAssignKeysToGuardrail"),
        ("POST", f"/guardrails/{gid}/assignments/keys/remove", {"key_hashes": ["a"]}, "bulkUnassignKeysFromGuardrail"),
        ("GET", f"/guardrails/{gid}/assignments/members", None, "listGuardrailMemberAssignments"),
        ("POST", f"/guardrails/{gid}/assignments/members", {"member_user_ids": ["u"]}, "bulkAssignMembersToGuardrail"),
        ("POST", f"/guardrails/{gid}/assignments/members/remove", {"member_user_ids": ["u"]}, None),
        ("GET", "/guardrails/assignments/keys", None, "listKeyAssignments"),
        ("GET", "/guardrails/assignments/members", None, "listMemberAssignments"),
    ]
    with gateway.client(api_key) as c, httpx.Client(base_url=gateway.api, timeout=10) as anon:
        for method, path, body, op in calls:
            r = c.request(method, path, json=body)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json() == {"error": {"code": 403, "message": MANAGEMENT_ONLY}}
            r = anon.request(method, path, json=body)
            assert r.status_code == 401, (method, path)
            if op is not None:
                check(op, r.json(), 401)


# -- assignments


def test_key_assignments(gateway: Gateway) -> None:
    keys = [gateway.create_key(name=f"k{i}")["data"] for i in range(3)]
    hashes = [k["hash"] for k in keys]
    with gateway.admin() as admin:
        g1, g2 = create(admin), create(admin)
        r = admin.post(f"/guardrails/{g1['id']}/assignments/keys", json={"key_hashes": hashes})
        assert r.status_code == 200 and r.json() == {"assigned_count": 3}
        check("bulkAssignKeysToGuardrail", r.json())
        listed = admin.get(f"/guardrails/{g1['id']}/assignments/keys").json()
        check("listGuardrailKeyAssignments", listed)
        assert listed["total_count"] == 3
        assert {a["key_hash"] for a in listed["data"]} == set(hashes)
        first = next(a for a in listed["data"] if a["key_hash"] == hashes[0])
        assert (
            first["key_name"] == "k0" and first["key_label"] == keys[0]["label"] and first["guardrail_id"] == g1["id"]
        )

        # A key holds one direct guardrail: assigning it to g2 moves it.
        r = admin.post(f"/guardrails/{g2['id']}/assignments/keys", json={"key_hashes": [hashes[0]]})
        assert r.json() == {"assigned_count": 1}
        assert admin.get(f"/guardrails/{g1['id']}/assignments/keys").json()["total_count"] == 2
        every = admin.get("/guardrails/assignments/keys", params={"limit": 100}).json()
        check("listKeyAssignments", every)
        mine = {a["key_hash"]: a["guardrail_id"] for a in every["data"] if a["key_hash"] in hashes}
        assert mine == {hashes[0]: g2["id"], hashes[1]: g1["id"], hashes[2]: g1["id"]}

        # Unknown keys: 404 naming them, nothing assigned.
        before = count_rows(gateway, guardrail_key_assignments)
        missing = "f" * 64
        r = admin.post(f"/guardrails/{g2['id']}/assignments/keys", json={"key_hashes": [hashes[1], missing]})
        assert r.status_code == 404 and missing in r.json()["error"]["message"]
        check("bulkAssignKeysToGuardrail", r.json(), 404)
        assert count_rows(gateway, guardrail_key_assignments) == before
        assert admin.get(f"/guardrails/{g1['id']}/assignments/keys").json()["total_count"] == 2
        # The management key is no inference key to assign.
        mgmt = admin.get("/key").json()["data"]
        assert mgmt["is_management_key"] is True
        for bad in ({"key_hashes": []}, {"key_hashes": "abc"}, {"key_hashes": [""]}, {"hashes": [hashes[0]]}, {}):
            r = admin.post(f"/guardrails/{g2['id']}/assignments/keys", json=bad)
            assert r.status_code == 400, bad
        assert (
            admin.post(f"/guardrails/{uuid.uuid4()}/assignments/keys", json={"key_hashes": hashes}).status_code == 404
        )

        r = admin.post(f"/guardrails/{g1['id']}/assignments/keys/remove", json={"key_hashes": hashes})
        assert r.status_code == 200 and r.json() == {"unassigned_count": 2}  # hashes[0] is g2's
        check("bulkUnassignKeysFromGuardrail", r.json())
        assert admin.get(f"/guardrails/{g1['id']}/assignments/keys").json() == {"data": [], "total_count": 0}
        # A deleted key's assignment is not listed.
        admin.delete(f"/keys/{hashes[0]}")
        assert admin.get(f"/guardrails/{g2['id']}/assignments/keys").json()["total_count"] == 0
        # Deleting a guardrail drops its assignments.
        admin.post(f"/guardrails/{g1['id']}/assignments/keys", json={"key_hashes": hashes[1:]})
        admin.delete(f"/guardrails/{g1['id']}")
        every = admin.get("/guardrails/assignments/keys", params={"limit": 100}).json()
        assert not [a for a in every["data"] if a["guardrail_id"] == g1["id"]]


def test_member_assignments(gateway: Gateway) -> None:
    members = [add_member(gateway) for _ in range(2)]
    with gateway.admin() as admin:
        g1, g2 = create(admin), create(admin)
        r = admin.post(f"/guardrails/{g1['id']}/assignments/members", json={"member_user_ids": members})
        assert r.status_code == 200 and r.json() == {"assigned_count": 2}
        check("bulkAssignMembersToGuardrail", r.json())
        listed = admin.get(f"/guardrails/{g1['id']}/assignments/members").json()
        check("listGuardrailMemberAssignments", listed)
        assert {a["user_id"] for a in listed["data"]} == set(members) and listed["total_count"] == 2
        assert all(a["organization_id"] and a["guardrail_id"] == g1["id"] for a in listed["data"])
        every = admin.get("/guardrails/assignments/members", params={"limit": 100}).json()
        check("listMemberAssignments", every)
        assert {a["user_id"] for a in every["data"]} >= set(members)

        r = admin.post(f"/guardrails/{g2['id']}/assignments/members", json={"member_user_ids": ["user_nobody"]})
        assert r.status_code == 404 and "user_nobody" in r.json()["error"]["message"]
        check("bulkAssignMembersToGuardrail", r.json(), 404)
        assert admin.get(f"/guardrails/{g2['id']}/assignments/members").json()["total_count"] == 0

        r = admin.post(f"/guardrails/{g1['id']}/assignments/members/remove", json={"member_user_ids": members[:1]})
        assert r.status_code == 200 and r.json() == {"unassigned_count": 1}
        assert admin.get(f"/guardrails/{g1['id']}/assignments/members").json()["total_count"] == 1


def test_workspace_default_guardrail(gateway: Gateway) -> None:
    gid = default_guardrail_id(DEFAULT_WORKSPACE_ID)
    with gateway.admin() as admin:
        # Not configured yet: 404; configuring it (PATCH) materializes it under its derived name.
        if admin.get(f"/guardrails/{gid}").status_code == 200:
            admin.delete(f"/guardrails/{gid}")
        assert admin.get(f"/guardrails/{gid}").status_code == 404
        r = admin.patch(f"/guardrails/{gid}", json={"description": "everyone", "ignored_models": ["test/beta"]})
        assert r.status_code == 200, r.text
        check("updateGuardrail", r.json())
        g = r.json()["data"]
        assert g["id"] == gid and g["name"] == f"Workspace {DEFAULT_WORKSPACE_ID} Default"
        assert g["workspace_id"] == DEFAULT_WORKSPACE_ID
        assert admin.get(f"/guardrails/{gid}").status_code == 200
        r = admin.patch(f"/guardrails/{gid}", json={"name": "Renamed"})
        assert r.status_code == 400
        admin.delete(f"/guardrails/{gid}")
        assert admin.get(f"/guardrails/{gid}").status_code == 404


# -- the official SDK


def test_sdk_round_trip(gateway: Gateway) -> None:
    key = gateway.create_key(name="sdk")["data"]
    member = add_member(gateway)
    with OpenRouter(api_key=gateway.management_key, server_url=gateway.api) as sdk:
        created = sdk.guardrails.create(
            name=unique("sdk"),
            description="via the SDK",
            limit_usd=12.5,
            reset_interval="weekly",
            allowed_models=["test/alpha"],
            enforce_zdr_anthropic=True,
            content_filters=[{"pattern": "secret-[0-9]+", "action": "redact", "label": "[S]"}],
            content_filter_builtins=[{"slug": "regex-prompt-injection", "action": "block", "scan_scope": "user_only"}],
        )
        g = created.data
        assert g.limit_usd == 12.5 and g.reset_interval == "weekly" and g.enforce_zdr_anthropic is True
        assert g.content_filter_builtins is not None and g.content_filter_builtins[0].label == "[PROMPT_INJECTION]"
        assert sdk.guardrails.get(id=g.id).data.name == g.name
        updated = sdk.guardrails.update(id=g.id, description="changed", allowed_providers=["fake-a"])
        assert updated.data.description == "changed" and updated.data.allowed_providers == ["fake-a"]
        assert sdk.guardrails.bulk_assign_keys(id=g.id, key_hashes=[key["hash"]]).assigned_count == 1
        page = sdk.guardrails.list_guardrail_key_assignments(id=g.id)
        assert page is not None and page.result.data[0].key_hash == key["hash"]
        assert sdk.guardrails.list_key_assignments() is not None
        assert sdk.guardrails.bulk_assign_members(id=g.id, member_user_ids=[member]).assigned_count == 1
        members = sdk.guardrails.list_guardrail_member_assignments(id=g.id)
        assert members is not None and members.result.data[0].user_id == member
        assert sdk.guardrails.list_member_assignments() is not None
        assert sdk.guardrails.bulk_unassign_members(id=g.id, member_user_ids=[member]).unassigned_count == 1
        assert sdk.guardrails.bulk_unassign_keys(id=g.id, key_hashes=[key["hash"]]).unassigned_count == 1
        assert sdk.guardrails.delete(id=g.id) is not None  # DeleteGuardrailResponse(deleted=True)
        with pytest.raises(errors.NotFoundResponseError):
            sdk.guardrails.get(id=g.id)
        with pytest.raises(errors.BadRequestResponseError):
            sdk.guardrails.create(name=unique(), content_filters=[{"pattern": "(a+)+", "action": "block"}])


def test_concurrent_assignments_leave_one_guardrail_per_key(gateway: Gateway) -> None:
    from concurrent.futures import ThreadPoolExecutor

    key = gateway.create_key(name="contested")["data"]["hash"]
    with gateway.admin() as admin:
        rails = [create(admin)["id"] for _ in range(8)]

    def assign(gid: str) -> int:
        with gateway.admin() as admin:
            return admin.post(f"/guardrails/{gid}/assignments/keys", json={"key_hashes": [key]}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(assign, rails * 3))
    assert set(statuses) <= {200, 409} and 200 in statuses
    with gateway.admin() as admin:
        every = admin.get("/guardrails/assignments/keys", params={"limit": 100}).json()["data"]
    assert len([a for a in every if a["key_hash"] == key]) == 1
