"""`omnirouter guardrails`: the same service as the API, so what the CLI writes the API reads back
(and a running gateway enforces), `--json` prints what the API answers, and bad input is refused
with the API's message."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from tests.gateway import Gateway
from tests.test_cli import run
from tests.test_guardrails_api import add_member


def env_of(gw: Gateway) -> dict[str, str | None]:
    return {"OMNIROUTER_DATABASE_URL": gw.settings.db_url}


def cli(gw: Gateway, *args: str) -> Any:
    result = run("guardrails", *args, "--json", "--config", gw.settings.config, env=env_of(gw))
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_cli_and_api_alike(gateway: Gateway, tmp_path: Path) -> None:
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"description": "from a file", "enforce_zdr_google": True}))
    created = cli(
        gateway, "create", "cli-guard", "--body", str(body), "--limit-usd", "7.25", "--reset-interval", "weekly",
        "--allowed-model", "test/alpha", "--allowed-model", "test/gamma", "--builtin", "email:redact",
        "--filter", r"block:\bTOP-SECRET\b",
    )["data"]  # fmt: skip
    assert created["description"] == "from a file" and created["enforce_zdr_google"] is True
    assert created["limit_usd"] == 7.25 and created["allowed_models"] == ["test/alpha", "test/gamma"]
    assert created["content_filters"] == [{"pattern": r"\bTOP-SECRET\b", "action": "block", "label": None}]
    gid = created["id"]
    with gateway.admin() as admin:
        assert admin.get(f"/guardrails/{gid}").json()["data"] == created
    assert cli(gateway, "get", gid) == {"data": created}
    listed = cli(gateway, "list")
    assert gid in [g["id"] for g in listed["data"]] and listed["total_count"] >= 1

    updated = cli(gateway, "update", gid, "--clear", "allowed_models", "--ignored-provider", "fake-b")["data"]
    assert updated["allowed_models"] is None and updated["ignored_providers"] == ["fake-b"]
    assert updated["limit_usd"] == 7.25  # untouched

    key = gateway.create_key(name="cli-assigned")
    member = add_member(gateway)
    assert cli(gateway, "assign-keys", gid, key["data"]["hash"]) == {"assigned_count": 1}
    assert cli(gateway, "assign-members", gid, member) == {"assigned_count": 1}
    keys = cli(gateway, "assignments", gid)
    assert [a["key_hash"] for a in keys["data"]] == [key["data"]["hash"]]
    assert keys["data"][0]["assigned_by"] == "omnirouter-cli"
    assert [a["user_id"] for a in cli(gateway, "assignments", gid, "--members")["data"]] == [member]
    with gateway.admin() as admin:
        assert admin.get(f"/guardrails/{gid}/assignments/keys").json() == keys

    # The running gateway enforces what the CLI assigned (a change notice, or its next sync).
    deadline = time.monotonic() + 10
    with gateway.client(key["key"]) as c:
        body_ = {"model": "test/alpha", "messages": [{"role": "user", "content": "the TOP-SECRET plan"}]}
        while (r := c.post("/chat/completions", json=body_)).status_code != 403:
            assert time.monotonic() < deadline, r.text
            time.sleep(0.1)
        assert "Request blocked" in r.json()["error"]["message"]

    assert cli(gateway, "unassign-keys", gid, key["data"]["hash"]) == {"unassigned_count": 1}
    assert cli(gateway, "unassign-members", gid, member) == {"unassigned_count": 1}
    assert cli(gateway, "delete", gid) == {"deleted": True}
    with gateway.admin() as admin:
        assert admin.get(f"/guardrails/{gid}").status_code == 404


def test_cli_refuses_what_the_api_refuses(gateway: Gateway) -> None:
    env = env_of(gateway)
    for args, message in [
        (["create", "bad-regex", "--filter", "block:(a+)+"], "nested quantifiers"),
        (["create", "bad-builtin", "--builtin", "dna:block"], "slug"),
        (["create", "bad-limit", "--limit-usd", "-3"], "limit"),
        (["get", "00000000-0000-0000-0000-000000000000"], "Guardrail not found"),
        (["create", "bad-provider", "--allowed-provider", "nowhere"], "Unknown provider 'nowhere'"),
        (["create", "bad-model", "--ignored-model", "test/nothing"], "Unknown model 'test/nothing'"),
        (["assign-keys", "00000000-0000-0000-0000-000000000000", "f" * 64], "Guardrail not found"),
    ]:
        result = run("guardrails", *args, "--config", gateway.settings.config, env=env)
        assert result.exit_code != 0, args
        assert message in result.output, (args, result.output)
    human = run("guardrails", "list", "--config", gateway.settings.config, env=env)
    assert human.exit_code == 0 and human.output.startswith("id\tname")
