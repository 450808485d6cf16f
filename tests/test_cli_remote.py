"""`omnirouter --base-url URL --key KEY ...`: the management commands administer a remote gateway
through its API. What a user checks: each change shows in the gateway's API, `--json` prints what the
API answers, the text is the same as the local command's on the gateway's own database, the server's
errors come back as the CLI's (never with the key), and commands with no API equivalent refuse."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner, Result

from omnirouter.cli import main
from omnirouter.governance.byok_crypto import new_key as new_encryption_key
from omnirouter.governance.keys import is_well_formed, new_key
from tests.gateway import Gateway
from tests.test_cli import CLEAN_ENV
from tests.test_guardrails_api import add_member
from tests.test_oauth import exchange, pkce

# A remote command never opens a database: were one to try, this one cannot be created.
NOWHERE = "sqlite+aiosqlite:////nonexistent-omnirouter-dir/remote.db"
ENV = {**CLEAN_ENV, "OMNIROUTER_DATABASE_URL": NOWHERE, "OMNIROUTER_KEY": None, "OMNIROUTER_ENCRYPTION_KEY": None,
       "OPENROUTER_API_KEY": None, "OPENROUTER_BASE_URL": None}  # fmt: skip


def remote(gw: Gateway, *args: str, key: str | None = None, **env: str | None) -> Result:
    result = CliRunner().invoke(main, ["--base-url", gw.api, "--key", key or gw.management_key, *args],
                                env={**ENV, **env})  # fmt: skip
    assert gw.management_key not in result.output
    return result


def ok(gw: Gateway, *args: str, **env: str | None) -> Any:
    result = remote(gw, *args, "--json", **env)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def local(gw: Gateway, *args: str, **env: str | None) -> Result:
    """The same command on the gateway's own database, as on its host."""
    where = {"OMNIROUTER_DATABASE_URL": gw.settings.db_url, "OMNIROUTER_CONFIG": gw.settings.config,
             "OMNIROUTER_DATA_DIR": str(gw.tmp / "data")}  # fmt: skip
    result = CliRunner().invoke(main, list(args), env={**ENV, **where, **env})
    assert result.exit_code == 0, result.output
    return result


def same_text(gw: Gateway, *args: str, **env: str | None) -> str:
    """The command's text output, which must be the same remotely and locally."""
    there = remote(gw, *args, **env)
    assert there.exit_code == 0, there.output
    assert there.output == local(gw, *args, **env).output
    return there.output


def api(gw: Gateway, path: str, **params: Any) -> Any:
    with gw.admin() as admin:
        r = admin.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def api_status(gw: Gateway, path: str) -> int:
    with gw.admin() as admin:
        return admin.get(path).status_code


def every_key(gw: Gateway, **params: Any) -> list[Any]:
    found: list[Any] = []
    while page := api(gw, "/keys", **params, offset=len(found))["data"]:
        found += page
    return found


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# -- keys


def test_keys(gateway: Gateway) -> None:
    name = unique("remote-key")
    created = ok(gateway, "keys", "create", name, "--limit", "2.5", "--limit-reset", "monthly", "--rpm-limit", "7")
    hash_ = created["data"]["hash"]
    assert api(gateway, f"/keys/{hash_}") == {"data": created["data"]}
    assert created["data"]["limit"] == 2.5 and created["data"]["rpm_limit"] == 7 and is_well_formed(created["key"])

    text = remote(gateway, "keys", "create", unique("remote-text"))
    assert text.exit_code == 0 and "Created key 'remote-text-" in text.output
    assert is_well_formed(text.output.splitlines()[-1].strip())  # the secret, shown once

    result = remote(gateway, "keys", "disable", hash_)
    assert result.exit_code == 0 and result.output == f"Disabled key {name!r} ({hash_}).\n"
    assert api(gateway, f"/keys/{hash_}")["data"]["disabled"] is True
    listed = ok(gateway, "keys", "list", "--include-disabled")
    assert listed == {"data": every_key(gateway, include_disabled="true")}
    assert hash_ in same_text(gateway, "keys", "list", "--include-disabled")
    assert hash_ not in same_text(gateway, "keys", "list")
    assert ok(gateway, "keys", "enable", hash_) == api(gateway, f"/keys/{hash_}")

    result = remote(gateway, "keys", "delete", hash_)
    assert result.exit_code == 0 and result.output == f"Deleted key {name!r} ({hash_}).\n"
    assert api_status(gateway, f"/keys/{hash_}") == 404


def test_keys_list_every_page(gateway: Gateway) -> None:
    slug = ok(gateway, "workspaces", "create", unique("Many Keys"))["data"]["slug"]
    with gateway.admin() as admin:
        for i in range(101):  # one more than a page of /keys
            assert admin.post("/keys", json={"name": f"k{i}", "workspace_id": slug}).status_code == 201
    listed = ok(gateway, "keys", "list", "--workspace-id", slug)["data"]
    assert len(listed) == 101 and listed == every_key(gateway, workspace_id=slug)


# -- workspaces and members


def test_workspaces_budgets_and_members(gateway: Gateway) -> None:
    created = ok(gateway, "workspaces", "create", unique("Remote Lab"), "--default-provider-sort", "price")["data"]
    slug = created["slug"]
    assert api(gateway, f"/workspaces/{created['id']}") == {"data": created}
    assert ok(gateway, "workspaces", "get", slug) == {"data": created}
    total = api(gateway, "/workspaces", limit=1)["total_count"]
    listed = ok(gateway, "workspaces", "list")
    assert listed["total_count"] == total and len(listed["data"]) == total  # every page
    assert slug in same_text(gateway, "workspaces", "list")

    updated = ok(gateway, "workspaces", "update", slug, "--description", "remote", "--default-provider-sort", "")
    assert updated == api(gateway, f"/workspaces/{slug}")
    assert updated["data"]["description"] == "remote" and updated["data"]["default_provider_sort"] is None

    saved = ok(gateway, "workspaces", "budgets", "set", slug, "monthly", "500", "--include-byok")
    assert saved["data"]["limit_usd"] == 500 and saved["include_byok_in_budgets"] is True
    result = remote(gateway, "workspaces", "budgets", "set", slug, "daily", "20.5")
    assert result.output == f"The daily budget of {slug!r} is $20.5.\n"
    assert ok(gateway, "workspaces", "budgets", "list", slug) == api(gateway, f"/workspaces/{slug}/budgets")
    assert "monthly\t$500\ndaily\t$20.5\n" in same_text(gateway, "workspaces", "budgets", "list", slug)
    assert ok(gateway, "workspaces", "budgets", "delete", slug, "daily") == {"deleted": True}
    result = remote(gateway, "workspaces", "budgets", "set", slug, "weekly", "600")
    assert result.exit_code == 2 and "strictly decrease" in result.output  # the server's 400

    member = add_member(gateway)
    added = ok(gateway, "workspaces", "members", "add", slug, member)
    assert added["added_count"] == 1 and added["data"][0]["user_id"] == member
    assert ok(gateway, "workspaces", "members", "list", slug) == api(gateway, f"/workspaces/{slug}/members")
    assert same_text(gateway, "workspaces", "members", "list", slug) == f"{member}\tmember\n"
    assert ok(gateway, "workspaces", "members", "remove", slug, member) == {"removed_count": 1}
    org = ok(gateway, "members", "list")
    assert member in [m["id"] for m in org["data"]] and len(org["data"]) == org["total_count"]
    assert member in same_text(gateway, "members", "list")

    result = remote(gateway, "workspaces", "delete", slug)
    assert result.exit_code == 0 and result.output == f"Deleted workspace {slug!r}.\n"
    assert api_status(gateway, f"/workspaces/{slug}") == 404
    result = remote(gateway, "workspaces", "get", slug)
    assert result.exit_code == 1 and "not found" in result.output.lower()


# -- guardrails


def test_guardrails(gateway: Gateway) -> None:
    options = ["--limit-usd", "7.25", "--allowed-model", "test/alpha", "--filter", r"block:\bSECRET\b",
               "--builtin", "email:redact"]  # fmt: skip
    created = ok(gateway, "guardrails", "create", unique("remote-guard"), *options)["data"]
    gid = created["id"]
    assert api(gateway, f"/guardrails/{gid}") == {"data": created}
    assert ok(gateway, "guardrails", "get", gid) == {"data": created}
    shown = same_text(gateway, "guardrails", "get", gid)
    assert "limit_usd: 7.25\n" in shown and '"pattern": "\\\\bSECRET\\\\b"' in shown
    assert ok(gateway, "guardrails", "list", "--limit", "100") == api(gateway, "/guardrails", limit=100)
    assert gid in same_text(gateway, "guardrails", "list", "--limit", "100")
    updated = ok(gateway, "guardrails", "update", gid, "--clear", "allowed_models", "--limit-usd", "5")["data"]
    assert updated == api(gateway, f"/guardrails/{gid}")["data"]
    assert updated["allowed_models"] is None and updated["limit_usd"] == 5

    key = gateway.create_key(name=unique("guarded"))["data"]["hash"]
    assert ok(gateway, "guardrails", "assign-keys", gid, key) == {"assigned_count": 1}
    assignments = ok(gateway, "guardrails", "assignments", gid)
    assert assignments == api(gateway, f"/guardrails/{gid}/assignments/keys")
    assert [a["key_hash"] for a in assignments["data"]] == [key]
    assert same_text(gateway, "guardrails", "assignments", gid).splitlines()[1].startswith(f"{gid}\t{key}\t")
    assert remote(gateway, "guardrails", "unassign-keys", gid, key).output == "unassigned count: 1\n"
    member = add_member(gateway)
    assert ok(gateway, "guardrails", "assign-members", gid, member) == {"assigned_count": 1}
    assert ok(gateway, "guardrails", "assignments", gid, "--members") == api(
        gateway, f"/guardrails/{gid}/assignments/members"
    )
    assert ok(gateway, "guardrails", "delete", gid) == {"deleted": True}
    assert api_status(gateway, f"/guardrails/{gid}") == 404
    result = remote(gateway, "guardrails", "create", "bad", "--ignored-model", "test/nothing")
    assert result.exit_code == 2 and "Unknown model 'test/nothing'" in result.output  # the gateway's catalog


# -- BYOK


def test_byok(make_gateway: Any) -> None:
    gw = make_gateway(encryption_key=new_encryption_key())
    secret = "sk-remote-byok-key-abcdefgh1234"
    result = remote(gw, "byok", "add", "fake-a", "--secret-env", "PROVIDER_KEY", "--name", "remote", "--json",
                    PROVIDER_KEY=secret)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    created = json.loads(result.output)["data"]
    assert api(gw, f"/byok/{created['id']}") == {"data": created}
    assert ok(gw, "byok", "list") == api(gw, "/byok")
    assert created["id"] in same_text(gw, "byok", "list")
    assert ok(gw, "byok", "update", created["id"], "--name", "renamed", "--disabled") == api(
        gw, f"/byok/{created['id']}"
    )
    assert same_text(gw, "byok", "get", created["id"]).endswith("\trenamed\t#0\tdisabled\n")
    assert remote(gw, "byok", "delete", created["id"]).output == f"Deleted {created['id']}\n"
    assert api_status(gw, f"/byok/{created['id']}") == 404
    result = remote(gw, "byok", "add", "nowhere", "--secret-env", "PROVIDER_KEY", PROVIDER_KEY=secret)
    assert result.exit_code != 0 and "nowhere" in result.output and secret not in result.output


# -- presets and OAuth codes


def test_presets(gateway: Gateway, api_key: str, tmp_path: Path) -> None:
    name = unique("remote-preset")
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"model": "test/beta", "system": "Rhyme.", "max_tokens": 10, "messages": []}))
    created = ok(gateway, "presets", "create", name, "--from-file", str(body), "--format", "messages")["data"]
    assert created["designated_version"]["config"] == {"model": "test/beta", "max_tokens": 10}
    with gateway.client(api_key) as c:  # any key of the workspace reads it
        assert c.get(f"/presets/{name}").json() == {"data": created}
    body.write_text(json.dumps({"model": "test/alpha", "temperature": 0.5}))
    result = remote(gateway, "presets", "create", name, "--from-file", str(body))
    assert result.exit_code == 0 and f"Preset {name!r}: version 2 is now active" in result.output
    versions = ok(gateway, "presets", "versions", name)
    assert versions == api(gateway, f"/presets/{name}/versions") and versions["total_count"] == 2
    assert ok(gateway, "presets", "versions", name, "1") == {"data": created["designated_version"]}
    assert "test/alpha" in same_text(gateway, "presets", "versions", name)
    assert "version: 2" in same_text(gateway, "presets", "get", name)
    assert ok(gateway, "presets", "list", "--limit", "100") == api(gateway, "/presets", limit=100)
    result = remote(gateway, "presets", "create", "Bad Slug", "--from-file", str(body))
    assert result.exit_code == 2 and "Invalid preset slug" in result.output
    result = remote(gateway, "presets", "list", "--workspace-id", "default")
    assert result.exit_code == 2 and "key's workspace" in result.output


def test_auth_code(gateway: Gateway) -> None:
    verifier, challenge = pkce()
    data = ok(gateway, "auth", "code", "--callback-url", "http://localhost:8765/cb", "--code-challenge", challenge,
              "--code-challenge-method", "S256", "--limit", "0.25")["data"]  # fmt: skip
    got = exchange(gateway, code=data["id"], code_verifier=verifier)
    assert got.status_code == 200, got.text
    with gateway.client(got.json()["key"]) as user:
        assert user.get("/key").json()["data"]["limit"] == 0.25
    text = remote(gateway, "auth", "code", "--callback-url", "https://app.example/cb?x=1")
    assert text.exit_code == 0 and "redirect\thttps://app.example/cb?x=1&code=auth_code_" in text.output


# -- errors and refusals


def test_the_servers_errors_become_the_clis(gateway: Gateway) -> None:
    wrong = new_key()
    answer = httpx.get(gateway.api + "/keys", headers={"Authorization": f"Bearer {wrong}"}, timeout=30)
    message = answer.json()["error"]["message"]
    result = remote(gateway, "keys", "list", key=wrong)
    assert result.exit_code == 1 and message in result.output and wrong not in result.output

    with gateway.admin() as admin:
        not_found = admin.get(f"/keys/{'f' * 64}").json()["error"]["message"]
    result = remote(gateway, "keys", "disable", "f" * 64)
    assert result.exit_code == 1 and not_found in result.output
    result = remote(gateway, "keys", "create", "x", "--limit", "-1")  # refused by the server: a usage error
    assert result.exit_code == 2 and "limit" in result.output


def test_commands_without_an_api_refuse(gateway: Gateway, tmp_path: Path) -> None:
    dump = tmp_path / "models.json"
    dump.write_text('{"data": []}')
    for args in (["serve"], ["migrate"], ["credits", "add", "5"], ["catalog", "import", str(dump)],
                 ["catalog", "list"], ["byok", "rotate"], ["members", "add", "a@example.com"],
                 ["members", "remove", "a@example.com"]):  # fmt: skip
        result = remote(gateway, *args)
        assert result.exit_code == 2, (args, result.output)
        assert "no API equivalent" in result.output and "without --base-url" in result.output, result.output


def test_remote_options(gateway: Gateway) -> None:
    result = CliRunner().invoke(main, ["--base-url", gateway.api, "keys", "list"], env=ENV)
    assert result.exit_code == 2 and "--key" in result.output
    from_env = CliRunner().invoke(main, ["--base-url", gateway.api, "keys", "list", "--json"],
                                  env={**ENV, "OMNIROUTER_KEY": gateway.management_key})  # fmt: skip
    assert from_env.exit_code == 0 and json.loads(from_env.output) == {"data": every_key(gateway)}
    bare = CliRunner().invoke(main, ["--base-url", gateway.url, "--key", gateway.management_key, "workspaces", "get",
                                     "default", "--json"], env=ENV)  # fmt: skip
    assert bare.exit_code == 0 and json.loads(bare.output) == api(gateway, "/workspaces/default")  # /api/v1 added
    result = CliRunner().invoke(main, ["--key", gateway.management_key, "keys", "list"], env=ENV)
    assert result.exit_code == 2 and "--base-url" in result.output
    result = CliRunner().invoke(main, ["--base-url", "ftp://example.com", "--key", "k", "keys", "list"], env=ENV)
    assert result.exit_code == 2 and "not an http(s) URL" in result.output


def test_local_mode_ignores_the_sdk_variables(gateway: Gateway, tmp_path: Path) -> None:
    """OPENROUTER_BASE_URL / OPENROUTER_API_KEY (set for SDKs) and OMNIROUTER_KEY alone never make the
    CLI go remote: it works on the local database, here a fresh one with no keys."""
    env = {**ENV, "OMNIROUTER_DATABASE_URL": None, "OMNIROUTER_DATA_DIR": str(tmp_path),
           "OPENROUTER_BASE_URL": gateway.api, "OPENROUTER_API_KEY": gateway.management_key,
           "OMNIROUTER_KEY": gateway.management_key}  # fmt: skip
    gateway.create_key(name=unique("remote-only"))  # the gateway has keys; the local database has none
    result = CliRunner().invoke(main, ["keys", "list", "--json"], env=env)
    assert result.exit_code == 0 and json.loads(result.output) == {"data": []}
    created = CliRunner().invoke(main, ["keys", "create", "local-only", "--json"], env=env)
    hash_ = json.loads(created.output)["data"]["hash"]
    assert api_status(gateway, f"/keys/{hash_}") == 404
    listed = CliRunner().invoke(main, ["keys", "list", "--json"], env=env)
    assert [k["hash"] for k in json.loads(listed.output)["data"]] == [hash_]
