"""omnirouter.client's management and account methods against a running Omnirouter, through the sync
client and the async one alike: keys, credits, guardrails, workspaces, BYOK, presets, OAuth, observability
destinations, generations, activity, analytics, datasets and the probes. Each result is the server's
Struct with exact Decimal money, each change is seen through another call, and each refusal is its
exception class with the server's code and message."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from omnirouter.api import health
from omnirouter.api import schemas as s
from omnirouter.api.guardrails import (
    AssignedCount,
    GuardrailResponse,
    ListKeyAssignmentsResponse,
    ListMemberAssignmentsResponse,
)
from omnirouter.client import errors
from omnirouter.governance import byok_service as byok
from omnirouter.governance import preset_service as ps
from omnirouter.governance import workspace_service as ws
from omnirouter.governance.byok_crypto import new_key as new_encryption_key
from omnirouter.governance.keys import new_key
from omnirouter.governance.oauth import CodeResponse, ExchangeResponse
from omnirouter.observability import analytics
from omnirouter.observability import destinations as od
from omnirouter.observability import schemas as obs
from tests.client_both import KINDS, both
from tests.conftest import standard_config
from tests.gateway import Gateway
from tests.test_analytics import _row
from tests.test_presets_api import CHAT_BODY
from tests.test_workspaces import member

KEY_RE = re.compile(r"sk-or-v1-[0-9a-f]{64}")
MANAGEMENT_ONLY = "Only management keys can perform this operation"
HELLO = [{"role": "user", "content": "hello"}]
SECRET = "sk-proj-byok-secret-0123456789abcdefXYZ"
YESTERDAY = (datetime.now(UTC) - timedelta(days=1)).replace(hour=12, minute=0, second=0, microsecond=0)
# Two generations of yesterday (a completed day, as /activity reports), priced finer than a float keeps.
PAST_COSTS = ("0.000012345678901234", "0.000000000000000001")
# The client drops a keyword argument given as None unless its name is in _base._NULLABLE, so a null
# that clears a field reaches the server only in a body given whole (body=...).
@pytest.fixture(scope="module")
def gov(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    """A gateway with what some groups need: an encryption key (BYOK, destination secrets), prompt
    logging (/generation/content), and yesterday's traffic of one key of its own (`past_hash`)."""
    gw = Gateway(tmp_path_factory.mktemp("gov"), standard_config(fake_a.base_url, fake_b.base_url),
                 encryption_key=new_encryption_key(), log_prompts=True).start()  # fmt: skip
    gw.past_hash = hashlib.sha256(new_key().encode()).hexdigest()  # type: ignore[attr-defined]
    rows = [_row(f"gen-gov-{i}-{uuid.uuid4().hex[:8]}", gw.past_hash, YESTERDAY, cost)  # type: ignore[attr-defined]
            for i, cost in enumerate(PAST_COSTS)]  # fmt: skip

    async def record() -> None:
        for row in rows:
            gw.state.recorder.record(row)
        await gw.state.recorder.flush()

    assert gw.loop is not None
    asyncio.run_coroutine_threadsafe(record(), gw.loop).result(timeout=10)
    yield gw
    gw.stop()


@contextmanager
def opened(kind: str, gw: Gateway, key: str | None = None, **options: Any) -> Iterator[Any]:
    """The client of `kind` on `gw` with `key` (the management key by default), closed afterwards."""
    client = both(kind, api_key=gw.management_key if key is None else key, base_url=gw.api, max_retries=0, **options)
    try:
        yield client
    finally:
        client.close()


def chat(client: Any) -> s.ChatResult:
    return client.chat.completions.create(model="test/alpha", messages=HELLO, max_tokens=5)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# -- keys, the calling key, credits


@pytest.mark.parametrize("kind", KINDS)
def test_keys_lifecycle(gateway: Gateway, kind: str) -> None:
    with opened(kind, gateway) as admin:
        created = admin.keys.create(name=f"client {kind}", limit=Decimal("12.5"), limit_reset="weekly")
        assert isinstance(created, s.CreateKeyResponse)
        secret, data = created.key, created.data
        assert KEY_RE.fullmatch(secret) and data.hash == hashlib.sha256(secret.encode()).hexdigest()
        assert data.name == f"client {kind}" and data.limit_reset == "weekly" and data.disabled is False
        assert data.limit == data.limit_remaining == Decimal("12.5") and isinstance(data.limit, Decimal)
        assert data.usage == Decimal(0) and isinstance(data.created_at, datetime)

        got = admin.keys.get(data.hash)
        assert isinstance(got, s.ApiKeyResponse) and got.data == data
        assert secret not in repr(got) and not hasattr(got, "key")  # the secret was shown once
        listed = admin.keys.list()
        assert isinstance(listed, s.ApiKeyListResponse) and data.hash in {k.hash for k in listed.data}

        with opened(kind, gateway, secret) as user:  # the new key works for inference and sees its spend
            cost = chat(user).usage.cost
            gateway.flush()
            me = user.key.get().data
            assert isinstance(cost, Decimal) and cost > 0 and me.usage == cost
            assert me.limit_remaining == Decimal("12.5") - cost

            updated = admin.keys.update(data.hash, limit=Decimal("0.5"), disabled=True).data
            assert updated.limit == Decimal("0.5") and updated.disabled is True and updated.updated_at is not None
            assert admin.keys.get(data.hash).data == updated
            with pytest.raises(errors.AuthenticationError) as refused:
                user.key.get()
            assert refused.value.status == refused.value.code == 401
            admin.keys.update(data.hash, disabled=False)
            assert user.key.get().data.limit == Decimal("0.5")
            assert admin.keys.update(data.hash, limit=None).data.limit is None  # an explicit null clears it

            deleted = admin.keys.delete(data.hash)
            assert isinstance(deleted, s.DeleteKeyResponse) and deleted.deleted is True
            with pytest.raises(errors.NotFoundError) as gone:
                admin.keys.get(data.hash)
            assert gone.value.status == gone.value.code == 404
            assert data.hash not in {k.hash for k in admin.keys.list(include_disabled=True).data}
            with pytest.raises(errors.AuthenticationError):
                chat(user)


@pytest.mark.parametrize("kind", KINDS)
def test_current_key_and_its_legacy_path(gateway: Gateway, kind: str) -> None:
    made = gateway.create_key(name="me", limit=2, limit_reset="monthly", expires_at="2031-01-01T00:00:00Z")
    with opened(kind, gateway, made["key"]) as user:
        current, legacy = user.key.get(), user.key.get(legacy=True)
    assert isinstance(current, s.CurrentKeyResponse) and isinstance(legacy, s.CurrentKeyResponse)
    for me in (current.data, legacy.data):
        assert me.label == made["data"]["label"] and me.is_management_key is False
        assert me.limit == Decimal(2) and me.limit_reset == "monthly" and me.usage == Decimal(0)
        assert me.expires_at == datetime(2031, 1, 1, tzinfo=UTC)
    with opened(kind, gateway) as admin:
        assert admin.key.get().data.is_management_key is True


@pytest.mark.parametrize("kind", KINDS)
def test_credits_count_what_was_spent(gateway: Gateway, api_key: str, kind: str) -> None:
    with opened(kind, gateway) as admin, opened(kind, gateway, api_key) as user:
        before = admin.credits.get()
        assert isinstance(before, s.CreditsResponse) and isinstance(before.data.total_usage, Decimal)
        cost = chat(user).usage.cost
        gateway.flush()
        after = admin.credits.get().data
        assert after.total_usage - before.data.total_usage == cost
        assert after.total_credits == after.total_usage  # an unfunded instance
        with pytest.raises(errors.GoneError) as gone:
            admin.credits.coinbase()
    assert gone.value.status == gone.value.code == 410 and "omnirouter credits add" in gone.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_an_inference_key_cannot_manage(gateway: Gateway, api_key: str, kind: str) -> None:
    with opened(kind, gateway, api_key) as user:
        calls = [
            lambda: user.keys.list(),
            lambda: user.keys.create(name="x"),
            lambda: user.keys.delete("0" * 64),
            lambda: user.credits.get(),
            lambda: user.guardrails.list(),
            lambda: user.guardrails.keys.list(),
            lambda: user.workspaces.create(name="x", slug=unique("x")),
            lambda: user.organization.members(),
            lambda: user.byok.list(),
            lambda: user.observability.destinations.list(),
            lambda: user.auth.create_code(callback_url="https://app.example/cb"),
            lambda: user.activity.get(),
            lambda: user.analytics.meta(),
        ]
        for call in calls:
            with pytest.raises(errors.PermissionDeniedError) as denied:
                call()
            assert (denied.value.status, denied.value.code, denied.value.message) == (403, 403, MANAGEMENT_ONLY)
        assert user.key.get().data.is_management_key is False  # the key itself still works


@pytest.mark.parametrize("kind", KINDS)
def test_a_bad_key_is_refused_without_being_repeated(gateway: Gateway, kind: str) -> None:
    bad = new_key()
    with opened(kind, gateway, bad) as stranger:
        for call in (stranger.keys.list, stranger.key.get, stranger.credits.get):
            with pytest.raises(errors.AuthenticationError) as refused:
                call()
            e = refused.value
            assert e.status == e.code == 401 and e.message
            for shown in (str(e), repr(e), e.message, repr(e.body), repr(e.args)):
                assert bad not in shown and bad[9:] not in shown


# -- guardrails


@pytest.mark.parametrize("kind", KINDS)
def test_guardrails(gateway: Gateway, kind: str) -> None:
    keys = [gateway.create_key(name=f"guarded {i}")["data"] for i in range(2)]
    hashes = [k["hash"] for k in keys]
    people = [member(gateway), member(gateway)]
    with opened(kind, gateway) as admin:
        created = admin.guardrails.create(name=unique("grd"), description="Production", limit_usd=50.5,
                                          reset_interval="monthly", allowed_models=["test/alpha"])  # fmt: skip
        assert isinstance(created, GuardrailResponse)
        g = created.data
        assert (g.description, g.limit_usd, g.reset_interval, g.allowed_models) == (
            "Production", 50.5, "monthly", ["test/alpha"])  # fmt: skip
        assert admin.guardrails.get(g.id).data == g
        assert g.id in {x.id for x in admin.guardrails.list(limit=100).data}

        updated = admin.guardrails.update(g.id, allowed_providers=["fake-b"], description="changed").data
        assert updated.allowed_providers == ["fake-b"] and updated.description == "changed"
        assert updated.allowed_models == ["test/alpha"] and updated.updated_at is not None  # the rest stays
        assert admin.guardrails.get(g.id).data == updated

        assigned = admin.guardrails.keys.assign(g.id, key_hashes=hashes)
        assert isinstance(assigned, AssignedCount) and assigned.assigned_count == 2
        mine = admin.guardrails.keys.list(g.id)
        assert isinstance(mine, ListKeyAssignmentsResponse) and mine.total_count == 2
        assert {(a.key_hash, a.key_name) for a in mine.data} == {(k["hash"], k["name"]) for k in keys}
        every = admin.guardrails.keys.list(limit=100).data
        assert {a.key_hash for a in every if a.guardrail_id == g.id} == set(hashes)
        assert admin.guardrails.keys.unassign(g.id, key_hashes=hashes).unassigned_count == 2
        assert admin.guardrails.keys.list(g.id).total_count == 0

        assert admin.guardrails.members.assign(g.id, member_user_ids=people).assigned_count == 2
        listed = admin.guardrails.members.list(g.id)
        assert isinstance(listed, ListMemberAssignmentsResponse) and {a.user_id for a in listed.data} == set(people)
        assert set(people) <= {a.user_id for a in admin.guardrails.members.list(limit=100).data}
        assert admin.guardrails.members.unassign(g.id, member_user_ids=people[:1]).unassigned_count == 1
        assert [a.user_id for a in admin.guardrails.members.list(g.id).data] == people[1:]
        with pytest.raises(errors.NotFoundError) as nobody:
            admin.guardrails.members.assign(g.id, member_user_ids=["user_nobody"])
        assert "user_nobody" in nobody.value.message

        assert admin.guardrails.delete(g.id).deleted is True
        with pytest.raises(errors.NotFoundError) as gone:
            admin.guardrails.get(g.id)
        assert (gone.value.code, gone.value.message) == (404, "Guardrail not found")


@pytest.mark.parametrize("kind", KINDS)
def test_guardrail_fields_are_cleared_by_a_null_body(gateway: Gateway, kind: str) -> None:
    with opened(kind, gateway) as admin:
        g = admin.guardrails.create(name=unique("grd"), limit_usd=5, allowed_models=["test/alpha"]).data
        cleared = admin.guardrails.update(g.id, body={"limit_usd": None, "allowed_models": None}).data
        assert cleared.limit_usd is None and cleared.allowed_models is None and cleared.name == g.name


@pytest.mark.parametrize("kind", KINDS)
def test_guardrail_fields_are_cleared_with_none(gateway: Gateway, kind: str) -> None:
    with opened(kind, gateway) as admin:
        g = admin.guardrails.create(name=unique("grd"), limit_usd=5, allowed_models=["test/alpha"]).data
        cleared = admin.guardrails.update(g.id, limit_usd=None, allowed_models=None).data
        assert cleared.limit_usd is None and cleared.allowed_models is None


# -- workspaces, their budgets and members, the organisation


@pytest.mark.parametrize("kind", KINDS)
def test_workspaces(gateway: Gateway, kind: str) -> None:
    slug = unique("ws")
    with opened(kind, gateway) as admin:
        created = admin.workspaces.create(name="Team", slug=slug, description="R&D", default_text_model="test/alpha")
        assert isinstance(created, ws.WorkspaceResponse)
        w = created.data
        assert (w.name, w.slug, w.description, w.default_text_model) == ("Team", slug, "R&D", "test/alpha")
        assert admin.workspaces.get(w.id).data == admin.workspaces.get(slug).data == w
        listed = admin.workspaces.list(limit=100)
        assert isinstance(listed, ws.WorkspaceList) and w.id in {x.id for x in listed.data}

        updated = admin.workspaces.update(slug, name="Team 2", default_text_model=None).data
        assert updated.name == "Team 2" and updated.default_text_model is None and updated.description == "R&D"
        assert admin.workspaces.get(w.id).data == updated

        monthly = admin.workspaces.budgets.set(w.id, "monthly", limit_usd=Decimal("500"))
        assert isinstance(monthly, ws.BudgetResponse) and monthly.data.limit_usd == Decimal(500)
        admin.workspaces.budgets.set(slug, "daily", limit_usd=Decimal("10.5"), include_byok_in_budgets=True)
        budgets = admin.workspaces.budgets.list(w.id)
        assert isinstance(budgets, ws.BudgetList) and budgets.include_byok_in_budgets is True
        assert [(b.reset_interval, b.limit_usd) for b in budgets.data] == [("monthly", Decimal(500)),
                                                                            ("daily", Decimal("10.5"))]  # fmt: skip
        tiny = admin.workspaces.budgets.set(w.id, "daily", limit_usd=Decimal("1e-18")).data
        assert tiny.limit_usd == Decimal("1e-18") and isinstance(tiny.limit_usd, Decimal)
        assert admin.workspaces.budgets.get(w.id, "daily").data.limit_usd == Decimal("0.000000000000000001")
        assert admin.workspaces.budgets.delete(w.id, "daily").deleted is True
        with pytest.raises(errors.NotFoundError):
            admin.workspaces.budgets.get(w.id, "daily")
        with pytest.raises(errors.BadRequestError) as narrow:
            admin.workspaces.budgets.set(w.id, "weekly", limit_usd=Decimal(600))
        assert narrow.value.code == 400 and "strictly decrease" in narrow.value.message

        boss, plain = member(gateway, role="admin"), member(gateway, first=None)
        org = admin.organization.members(limit=100)
        assert isinstance(org, ws.OrganizationMemberList)
        roles = {m.id: m.role for m in org.data}
        assert (roles[boss], roles[plain]) == ("org:admin", "org:member")
        added = admin.workspaces.members.add(slug, user_ids=[boss, plain])
        assert isinstance(added, ws.AddedMembers) and added.added_count == 2
        assert {(m.user_id, m.role) for m in added.data} == {(boss, "admin"), (plain, "member")}
        inside = admin.workspaces.members.list(w.id)
        assert isinstance(inside, ws.WorkspaceMemberList) and inside.total_count == 2
        assert admin.workspaces.members.remove(w.id, user_ids=[plain]).removed_count == 1
        assert [m.user_id for m in admin.workspaces.members.list(w.id).data] == [boss]

        assert admin.workspaces.delete(slug).deleted is True
        with pytest.raises(errors.NotFoundError):
            admin.workspaces.get(w.id)


# -- BYOK


@pytest.mark.parametrize("kind", KINDS)
def test_byok(gov: Gateway, fake_a: Any, kind: str) -> None:
    with opened(kind, gov) as admin:
        team = admin.workspaces.create(name="BYOK", slug=unique("byok")).data.id
        created = admin.byok.create(provider="fake-a", key=SECRET, name="Prod", workspace_id=team)
        assert isinstance(created, byok.BYOKKeyResponse)
        k = created.data
        assert (k.provider, k.name, k.label, k.disabled) == ("fake-a", "Prod", "sk-..." + SECRET[-4:], False)
        got = admin.byok.get(k.id)
        listed = admin.byok.list(workspace_id=team)
        assert got.data == k and isinstance(listed, byok.BYOKKeyListResponse) and [x.id for x in listed.data] == [k.id]
        assert SECRET not in repr(created) + repr(got) + repr(listed)  # the provider secret never comes back

        user = gov.create_key(name="byok user", workspace_id=team)["key"]
        with opened(kind, gov, user) as c:  # the workspace's requests go out with its own provider key
            assert chat(c).usage.is_byok is True
        assert fake_a.fake.requests[-1].headers["Authorization"] == f"Bearer {SECRET}"

        updated = admin.byok.update(k.id, disabled=True, key="sk-new-secret-key-9876").data
        assert updated.disabled is True and updated.label == "sk-...9876" and updated.updated_at is not None
        assert admin.byok.get(k.id).data == updated
        assert admin.byok.delete(k.id).deleted is True
        with pytest.raises(errors.NotFoundError):
            admin.byok.get(k.id)
        assert admin.byok.list(workspace_id=team).total_count == 0


@pytest.mark.parametrize("kind", KINDS)
def test_byok_name_is_cleared_with_none(gov: Gateway, kind: str) -> None:
    with opened(kind, gov) as admin:
        team = admin.workspaces.create(name="BYOK", slug=unique("byok")).data.id
        k = admin.byok.create(provider="fake-b", key=SECRET, name="named", disabled=True, workspace_id=team).data
        try:
            assert admin.byok.update(k.id, name=None).data.name is None
        finally:
            admin.byok.delete(k.id)


# -- presets


@pytest.mark.parametrize("kind", KINDS)
def test_presets(gateway: Gateway, api_key: str, kind: str) -> None:
    slug = unique("p")
    with opened(kind, gateway) as admin:
        first = admin.presets.create_from_chat(slug, body=CHAT_BODY)
        assert isinstance(first, ps.CreatePresetFromInferenceResponse)
        p = first.data
        assert p.slug == slug and p.status == "active" and p.designated_version.version == 1
        assert p.designated_version.system_prompt == "You are terse."
        assert p.designated_version.config["temperature"] == 0.7 and "messages" not in p.designated_version.config
        second = admin.presets.create_from_messages(slug, model="test/beta", max_tokens=1024, system="A poet.",
                                                    messages=HELLO, stop_sequences=["END"]).data  # fmt: skip
        assert second.id == p.id and second.designated_version.version == 2
        assert second.designated_version.config == {"model": "test/beta", "max_tokens": 1024, "stop": ["END"]}
        third = admin.presets.create_from_responses(slug, model="test/gamma", instructions="In French.",
                                                    input="Hello!", max_output_tokens=99).data  # fmt: skip
        assert third.designated_version.version == 3 and third.designated_version.system_prompt == "In French."
        assert third.designated_version.config == {"model": "test/gamma", "max_tokens": 99}

    with opened(kind, gateway, api_key) as user:  # an inference key of the workspace reads them
        got = user.presets.get(slug)
        assert isinstance(got, ps.GetPresetResponse) and got.data == third
        assert slug in {x.slug for x in user.presets.list(limit=100).data}
        versions = user.presets.versions(slug)
        assert isinstance(versions, ps.ListPresetVersionsResponse) and versions.total_count == 3
        assert [v.version for v in versions.data] == [1, 2, 3]
        old = user.presets.version(slug, 1)
        assert isinstance(old, ps.GetPresetVersionResponse) and old.data == p.designated_version
        with pytest.raises(errors.NotFoundError):
            user.presets.version(slug, 4)
        with pytest.raises(errors.PermissionDeniedError):
            user.presets.create_from_chat(slug, model="test/alpha")


# -- OAuth with PKCE


def test_pkce_is_rfc_7636_s256() -> None:
    clients = [both(kind, api_key="", base_url="http://127.0.0.1:9") for kind in KINDS]
    made = [c.auth.pkce() for c in clients]  # no request: no key, no server needed
    for c in clients:
        c.close()
    for p in made:
        assert 43 <= len(p.verifier) <= 128 and re.fullmatch(r"[A-Za-z0-9._~-]+", p.verifier)
        digest = hashlib.sha256(p.verifier.encode("ascii")).digest()
        assert p.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode() and "=" not in p.challenge
        assert p.method == "S256"
    assert made[0].verifier != made[1].verifier


@pytest.mark.parametrize("kind", KINDS)
def test_oauth_code_exchanged_for_a_working_key(gateway: Gateway, kind: str) -> None:
    with opened(kind, gateway) as admin, opened(kind, gateway, "") as app:  # an app holds no key yet
        pkce = admin.auth.pkce()
        code = admin.auth.create_code(callback_url="https://app.example/cb", code_challenge=pkce.challenge,
                                      code_challenge_method=pkce.method, limit=Decimal("5"))  # fmt: skip
        assert isinstance(code, CodeResponse) and code.data.id
        with pytest.raises(errors.PermissionDeniedError) as wrong:
            app.auth.exchange_code(code=code.data.id, code_verifier=pkce.verifier + "x")
        assert wrong.value.code == 403 and "Invalid code_verifier" in wrong.value.message
        got = app.auth.exchange_code(code=code.data.id, code_verifier=pkce.verifier)
        assert isinstance(got, ExchangeResponse) and KEY_RE.fullmatch(got.key)
        with pytest.raises(errors.PermissionDeniedError) as spent:
            app.auth.exchange_code(code=code.data.id, code_verifier=pkce.verifier)
        assert spent.value.message == "Invalid or expired code"
    with opened(kind, gateway, got.key) as user:
        assert user.key.get().data.limit == Decimal(5)
        assert chat(user).usage.cost > 0


# -- observability destinations


@pytest.mark.parametrize("kind", KINDS)
def test_destinations(gov: Gateway, kind: str) -> None:
    hook_secret = "whsec_client_secret_0123456789"
    with opened(kind, gov) as admin:
        team = admin.workspaces.create(name="Obs", slug=unique("obs")).data.id
        created = admin.observability.destinations.create(
            type="webhook", name="hook", enabled=False, workspace_id=team,
            config={"url": "http://127.0.0.1:9/hook", "secret": hook_secret},
        )  # fmt: skip
        assert isinstance(created, od.DestinationResponse)
        d = created.data
        assert (d.type, d.name, d.enabled, d.workspace_id) == ("webhook", "hook", False, team)
        assert d.config["url"] == "http://127.0.0.1:9/hook" and hook_secret not in repr(d)  # masked
        assert admin.observability.destinations.get(d.id).data.config == d.config
        listed = admin.observability.destinations.list(workspace_id=team)
        assert isinstance(listed, od.DestinationListResponse) and [x.id for x in listed.data] == [d.id]

        updated = admin.observability.destinations.update(d.id, name="renamed", sampling_rate=0.25).data
        assert (updated.name, updated.sampling_rate, updated.config) == ("renamed", 0.25, d.config)
        assert admin.observability.destinations.get(d.id).data.name == "renamed"
        with pytest.raises(errors.BadRequestError):
            admin.observability.destinations.update(d.id, config={"bogus": 1})
        assert admin.observability.destinations.delete(d.id).deleted is True
        with pytest.raises(errors.NotFoundError):
            admin.observability.destinations.get(d.id)


# -- generations, activity, analytics, datasets


@pytest.mark.parametrize("kind", KINDS)
def test_generation_record_content_and_feedback(gov: Gateway, kind: str) -> None:
    key = gov.create_key(name="generations")["key"]
    app = unique("app")
    with opened(kind, gov, key, app_title=app) as user, opened(kind, gov) as admin:
        result = chat(user)
        gov.flush()
        record = user.generations.get(result.id)
        assert isinstance(record, s.GenerationResponse)
        gen = record.data
        assert (gen.id, gen.model, gen.provider_name, gen.app_name) == (result.id, "test/alpha", "Fake A", app)
        assert gen.total_cost == gen.usage == result.usage.cost and isinstance(gen.total_cost, Decimal)
        assert admin.generations.get(result.id).data == gen  # the operator sees every generation

        content = user.generations.content(result.id)
        assert isinstance(content, s.GenerationContentResponse)
        assert content.data.input.messages == HELLO
        assert content.data.output.completion == result.choices[0].message.content
        with pytest.raises(errors.NotFoundError):
            user.generations.get("gen-nope")

        query = {"metrics": ["feedback_count"], "dimensions": ["app"], "filters": [
            {"field": "app", "operator": "eq", "value": app}]}  # fmt: skip
        before = admin.analytics.query(**query).data.data
        sent = admin.generations.feedback(generation_id=result.id, category="latency", comment="slow")
        assert isinstance(sent, obs.SubmitGenerationFeedbackResponse) and sent.data.success is True
        after = admin.analytics.query(**query)
        assert isinstance(after, obs.AnalyticsQueryResponse)
        assert [r["feedback_count"] for r in after.data.data] == [1] and [r["feedback_count"] for r in before] == [0]

        today = datetime.now(UTC).date().isoformat()
        ranked = user.datasets.app_rankings(start_date=today, end_date=today, limit=100)
        assert isinstance(ranked, obs.AppRankingsResponse)
        (mine,) = [a for a in ranked.data if a.app_name == app]
        assert mine.total_requests == 1 and mine.total_tokens == str(result.usage.total_tokens)
        with pytest.raises(errors.BadRequestError) as bad:
            admin.generations.feedback(generation_id=result.id, category="mood")
        assert bad.value.code == 400


@pytest.mark.parametrize("kind", KINDS)
def test_content_needs_prompt_logging(gateway: Gateway, api_key: str, kind: str) -> None:
    with opened(kind, gateway, api_key) as user:
        gen_id = chat(user).id
        gateway.flush()
        assert user.generations.get(gen_id).data.id == gen_id
        with pytest.raises(errors.PermissionDeniedError) as denied:
            user.generations.content(gen_id)
    assert denied.value.code == 403 and "logging" in denied.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_activity_analytics_and_datasets(gov: Gateway, kind: str) -> None:
    day = YESTERDAY.date().isoformat()
    with opened(kind, gov) as admin:
        activity = admin.activity.get(api_key_hash=gov.past_hash)  # type: ignore[attr-defined]
        assert isinstance(activity, obs.ActivityResponse)
        assert {(i.date, i.model) for i in activity.data} == {(day, "test/alpha")}
        assert sum(i.usage for i in activity.data) == sum(Decimal(c) for c in PAST_COSTS)  # to the last digit
        assert sum(i.requests for i in activity.data) == 2 and isinstance(activity.data[0].usage, Decimal)
        assert admin.activity.get(api_key_hash="0" * 64).data == []

        meta = admin.analytics.meta()
        assert isinstance(meta, obs.AnalyticsMetaResponse)
        assert {m.name for m in meta.data.metrics} == set(analytics.METRICS)
        assert {d.name for d in meta.data.dimensions} == set(analytics.DIMENSIONS)
        rows = admin.analytics.query(
            metrics=["usage", "request_count"], dimensions=["model"], granularity="day",
            filters=[{"field": "api_key_id", "operator": "eq", "value": gov.past_hash}],  # type: ignore[attr-defined]
            time_range={"start": f"{day}T00:00:00Z", "end": f"{day}T23:59:59Z"},
        ).data.data  # fmt: skip
        assert [(r["model"], r["request_count"]) for r in rows] == [("test/alpha", 2)]
        with pytest.raises(errors.BadRequestError) as unknown:
            admin.analytics.query(metrics=["spend_in_yen"])
        assert "spend_in_yen" in unknown.value.message

    with opened(kind, gov, gov.create_key()["key"]) as user:  # the datasets answer any key
        daily = user.datasets.rankings_daily(start_date=day, end_date=day)
        assert isinstance(daily, obs.RankingsDailyResponse) and daily.meta.scope == "this instance's own traffic"
        # Only the two past rows fall on that day: 10 + 5 tokens each.
        assert [(d.date, d.model_permaslug, d.total_tokens) for d in daily.data] == [(day, "test/alpha", "30")]
        with pytest.raises(errors.BadRequestError) as bad:
            user.datasets.rankings_daily(period="year")
        assert "period" in bad.value.message
        cost = user.datasets.session_cost()
        assert isinstance(cost, obs.SessionCostResponse) and cost.data == [] and cost.meta.version == "v1"
        bench = user.benchmarks.get(task_type="coding")
        assert isinstance(bench, obs.UnifiedBenchmarksResponse) and bench.data == []
        assert bench.meta.model_count == 0 and bench.meta.task_type == "coding"
        tasks = user.classifications.task()
        assert isinstance(tasks, obs.TaskClassificationResponse) and tasks.data.classifications == []
        assert tasks.data.window_days == 7


# -- probes, the document, metrics


@pytest.mark.parametrize("kind", KINDS)
def test_health_openapi_and_metrics(gateway: Gateway, api_key: str, kind: str) -> None:
    with opened(kind, gateway) as admin:
        live, ready = admin.health.live(), admin.health.ready()
        assert isinstance(live, health.Live) and live.status == "ok"
        assert isinstance(ready, health.Ready) and ready.status == "ok" and ready.checks.database == "ok"
        doc = admin.openapi()
        assert doc["openapi"].startswith("3.") and {"/keys", "/guardrails", "/workspaces"} <= set(doc["paths"])
        text = admin.metrics()
        assert isinstance(text, str) and "# TYPE omnirouter_requests_total counter" in text
    with opened(kind, gateway, api_key) as user:
        with pytest.raises(errors.PermissionDeniedError):
            user.metrics()
        assert user.health.live().status == "ok"
