"""The operator's side: `omnirouter members` creates the organisation's members (no API does), and
`omnirouter workspaces` manages what /workspaces does, through the same code: `--json` prints what the
API answers, and a running server sees the change."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from click.testing import CliRunner, Result
from openrouter import components

from omnirouter.cli import main
from tests.gateway import Gateway
from tests.spec_validation import spec_available, validate_response

CLEAN_ENV = {"OMNIROUTER_DATABASE_URL": None, "OMNIROUTER_MANAGEMENT_KEY": None, "OMNIROUTER_CONFIG": None,
             "OMNIROUTER_DATA_DIR": None}  # fmt: skip
HELLO = [{"role": "user", "content": "hello"}]


def cli(gw: Gateway, *args: str) -> Result:
    env = {**CLEAN_ENV, "OMNIROUTER_DATABASE_URL": gw.settings.db_url}
    return CliRunner().invoke(main, list(args), env=env)


def ok(gw: Gateway, *args: str) -> Any:
    result = cli(gw, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def synced(gw: Gateway) -> None:
    """What a running server does at its next sync (or at once, on the change notice)."""
    asyncio.run_coroutine_threadsafe(gw.state.recorder.sync(force=True), gw.loop).result(timeout=10)


def check(operation: str, body: Any) -> None:
    if spec_available():
        validate_response(operation, body, "200")


def test_members_are_added_listed_and_removed_by_the_operator(make_gateway: Any) -> None:
    gw = make_gateway()
    jane = ok(gw, "members", "add", "Jane.Doe@Example.com", "--name", "Jane Doe", "--role", "admin")["data"]
    assert jane["id"].startswith("user_") and jane["email"] == "jane.doe@example.com"
    assert (jane["first_name"], jane["last_name"], jane["role"]) == ("Jane", "Doe", "org:admin")
    bob = ok(gw, "members", "add", "bob@example.com")["data"]
    assert bob["role"] == "org:member" and bob["first_name"] is None

    result = cli(gw, "members", "add", "JANE.DOE@example.com")
    assert result.exit_code == 1 and "already exists" in result.output
    result = cli(gw, "members", "add", "not-an-email")
    assert result.exit_code == 2 and "email" in result.output

    listed = ok(gw, "members", "list")
    with gw.admin() as admin:
        from_api = admin.get("/organization/members").json()
    assert listed == from_api and [m["id"] for m in listed["data"]] == [jane["id"], bob["id"]]
    check("listOrganizationMembers", listed)
    text = cli(gw, "members", "list")
    assert text.exit_code == 0 and "jane.doe@example.com\tJane Doe\torg:admin" in text.output

    # Removed (by email or id): out of the organisation and its workspaces.
    ok(gw, "workspaces", "create", "Team", "--slug", "team")
    ok(gw, "workspaces", "members", "add", "team", bob["id"])
    assert ok(gw, "members", "remove", "bob@example.com")["data"]["id"] == bob["id"]
    assert ok(gw, "workspaces", "members", "list", "team")["data"] == []
    result = cli(gw, "members", "remove", bob["id"])
    assert result.exit_code == 1 and "not found" in result.output.lower()
    with gw.admin() as admin:
        assert [m["id"] for m in admin.get("/organization/members").json()["data"]] == [jane["id"]]


def test_workspaces_through_the_cli_and_the_api_alike(make_gateway: Any, fake_b: Any) -> None:
    gw = make_gateway()
    created = ok(gw, "workspaces", "create", "Research Lab", "--default-text-model", "test/beta",
                 "--default-provider-sort", "price", "--description", "R&D")  # fmt: skip
    w = components.CreateWorkspaceResponse.model_validate(created).data  # the API's shape
    assert w.slug == "research-lab" and w.default_text_model == "test/beta" and w.description == "R&D"
    with gw.admin() as admin:
        assert admin.get(f"/workspaces/{w.id}").json() == ok(gw, "workspaces", "get", "research-lab")
        assert ok(gw, "workspaces", "list") == admin.get("/workspaces").json()

    # The running server applies the new workspace's defaults to its keys.
    synced(gw)
    secret = gw.create_key(name="lab", workspace_id="research-lab")["key"]
    with gw.client(secret) as c:
        r = c.post("/chat/completions", json={"messages": HELLO, "max_tokens": 5})
        assert r.status_code == 200 and r.json()["model"] == "test/beta", r.text

    updated = ok(gw, "workspaces", "update", "research-lab", "--name", "Lab", "--default-text-model", "")
    assert updated["data"]["name"] == "Lab" and updated["data"]["default_text_model"] is None
    assert updated["data"]["default_provider_sort"] == "price"
    result = cli(gw, "workspaces", "update", "research-lab", "--slug", "Bad Slug")
    assert result.exit_code == 2 and "slug" in result.output
    result = cli(gw, "workspaces", "create", "Other", "--slug", "research-lab")
    assert result.exit_code == 1 and "already exists" in result.output
    result = cli(gw, "workspaces", "get", "nope")
    assert result.exit_code == 1 and "not found" in result.output.lower()

    # Budgets.
    saved = ok(gw, "workspaces", "budgets", "set", "research-lab", "monthly", "500", "--include-byok")
    assert saved["data"]["limit_usd"] == 500 and saved["include_byok_in_budgets"] is True
    check("upsertWorkspaceBudget", saved)
    ok(gw, "workspaces", "budgets", "set", "research-lab", "daily", "20.5")
    result = cli(gw, "workspaces", "budgets", "set", "research-lab", "weekly", "600")
    assert result.exit_code == 2 and "strictly decrease" in result.output
    result = cli(gw, "workspaces", "budgets", "set", "research-lab", "weekly", "ten")
    assert result.exit_code == 2
    listed = ok(gw, "workspaces", "budgets", "list", "research-lab")
    with gw.admin() as admin:
        assert listed == admin.get("/workspaces/research-lab/budgets").json()
    assert [(b["reset_interval"], b["limit_usd"]) for b in listed["data"]] == [("monthly", 500), ("daily", 20.5)]
    synced(gw)
    snapshot = gw.state.governance.get("workspaces")
    assert [b.exceeded for b in snapshot.budgets[w.id]] == [
        "Workspace monthly budget of $500.00 exceeded. Contact your org admin.",
        "Workspace daily budget of $20.50 exceeded. Contact your org admin.",
    ]
    assert ok(gw, "workspaces", "budgets", "delete", "research-lab", "daily") == {"deleted": True}

    # Members.
    member = ok(gw, "members", "add", "ann@example.com")["data"]["id"]
    added = ok(gw, "workspaces", "members", "add", "research-lab", member)
    assert added["added_count"] == 1 and added["data"][0]["user_id"] == member
    check("bulkAddWorkspaceMembers", added)
    result = cli(gw, "workspaces", "members", "add", "research-lab", "user_nobody")
    assert result.exit_code == 1 and "user_nobody" in result.output
    assert [m["user_id"] for m in ok(gw, "workspaces", "members", "list", "research-lab")["data"]] == [member]
    assert ok(gw, "workspaces", "members", "remove", "research-lab", member) == {"removed_count": 1}

    # Deleting: refused while the key is there, then done.
    result = cli(gw, "workspaces", "delete", "research-lab")
    assert result.exit_code == 1 and "API key" in result.output
    result = cli(gw, "workspaces", "delete", "default")
    assert result.exit_code == 1 and "default workspace" in result.output
    with gw.admin() as admin:
        hash_ = admin.get("/keys", params={"workspace_id": "research-lab"}).json()["data"][0]["hash"]
        assert admin.delete(f"/keys/{hash_}").status_code == 200
    result = cli(gw, "workspaces", "delete", "research-lab")
    assert result.exit_code == 0 and "Deleted workspace" in result.output
    with gw.admin() as admin:
        assert admin.get("/workspaces/research-lab").status_code == 404


def test_help_names_every_command() -> None:
    result = CliRunner().invoke(main, ["workspaces", "--help"], env=CLEAN_ENV)
    for command in ("create", "list", "get", "update", "delete", "budgets", "members"):
        assert command in result.output
    for group, commands in ((["workspaces", "budgets"], ("set", "delete", "list")),
                            (["workspaces", "members"], ("add", "remove", "list")),
                            (["members"], ("add", "list", "remove"))):  # fmt: skip
        result = CliRunner().invoke(main, [*group, "--help"], env=CLEAN_ENV)
        assert result.exit_code == 0 and all(c in result.output for c in commands), result.output
