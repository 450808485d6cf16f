"""Presets as a user manages them: created or versioned from an inference body through
/presets/{slug}/chat/completions|messages|responses, read back through /presets*, by HTTP, the official
`openrouter` SDK and the `omnirouter presets` command; who may call what; bad input changes nothing."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from openrouter import OpenRouter, components, errors

from omnirouter.cli import main
from tests.gateway import Gateway
from tests.spec_validation import spec_available, validate_response

MANAGEMENT_ONLY = "Only management keys can perform this operation"
CHAT_BODY = {
    "model": "test/alpha",
    "messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Hello!"}],
    "temperature": 0.7,
    "max_tokens": 64,
    "stream": True,
    "user": "someone",
    "tools": [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
    "provider": {"order": ["fake-a"], "allow_fallbacks": False},
}


def check(operation: str, body: Any, status: int = 200) -> None:
    if spec_available():
        validate_response(operation, body, str(status))


def slug() -> str:
    return "p-" + uuid.uuid4().hex[:10]


def create(admin: httpx.Client, name: str, body: dict[str, Any], fmt: str = "chat/completions") -> httpx.Response:
    return admin.post(f"/presets/{name}/{fmt}", json=body)


# -- create, read back


def test_create_from_chat_body_keeps_only_the_config(gateway: Gateway, api_key: str) -> None:
    name = slug()
    with gateway.admin() as admin:
        r = create(admin, name, CHAT_BODY)
    assert r.status_code == 200, r.text
    check("createPresetsChatCompletions", r.json())
    data = r.json()["data"]
    assert data["slug"] == data["name"] == name and data["status"] == "active" and data["description"] is None
    version = data["designated_version"]
    assert version["version"] == 1 and version["id"] == data["designated_version_id"]
    assert version["preset_id"] == data["id"]
    assert version["system_prompt"] == "You are terse."
    # messages, stream and the per-request `user` are not part of a preset.
    assert version["config"] == {
        "model": "test/alpha",
        "provider": {"order": ["fake-a"], "allow_fallbacks": False},
        "tools": CHAT_BODY["tools"],
        "temperature": 0.7,
        "max_tokens": 64,
    }
    # An inference key of the same workspace reads it.
    with gateway.client(api_key) as c:
        got = c.get(f"/presets/{name}")
        assert got.status_code == 200
        check("getPreset", got.json())
        assert got.json() == r.json()
        listed = c.get("/presets", params={"limit": 100})
    assert listed.status_code == 200
    check("listPresets", listed.json())
    mine = [p for p in listed.json()["data"] if p["slug"] == name]
    assert mine == [{k: v for k, v in data.items() if k != "designated_version"}]


def test_create_from_messages_and_responses_bodies(gateway: Gateway) -> None:
    with gateway.admin() as admin:
        m = create(admin, slug(), {
            "model": "test/beta", "max_tokens": 1024, "system": "You are a poet.", "stop_sequences": ["END"],
            "messages": [{"role": "user", "content": "Hello!"}], "stream": True, "temperature": 0.2,
        }, "messages")  # fmt: skip
        r = create(admin, slug(), {
            "model": "test/gamma", "instructions": "Answer in French.", "input": "Hello!", "max_output_tokens": 99,
            "store": True, "prompt": {"id": "stored"},
        }, "responses")  # fmt: skip
    assert m.status_code == 200, m.text
    assert r.status_code == 200, r.text
    check("createPresetsMessages", m.json())
    check("createPresetsResponses", r.json())
    mv, rv = m.json()["data"]["designated_version"], r.json()["data"]["designated_version"]
    # Stored in the internal (chat) form, which every format's requests are merged with.
    assert mv["system_prompt"] == "You are a poet."
    assert mv["config"] == {"model": "test/beta", "max_tokens": 1024, "temperature": 0.2, "stop": ["END"]}
    assert rv["system_prompt"] == "Answer in French."
    assert rv["config"] == {"model": "test/gamma", "max_tokens": 99}


def test_a_new_version_becomes_active_and_older_ones_stay_readable(gateway: Gateway, api_key: str) -> None:
    name = slug()
    with gateway.admin() as admin:
        first = create(admin, name, {"model": "test/alpha", "temperature": 0.1}).json()["data"]
        second = create(admin, name, {"model": "test/beta", "messages": [{"role": "user", "content": "x"}]})
    assert second.status_code == 200
    second_data = second.json()["data"]
    assert second_data["id"] == first["id"]  # the same preset
    assert second_data["designated_version"]["version"] == 2
    assert second_data["designated_version_id"] != first["designated_version_id"]
    assert second_data["created_at"] == first["created_at"] and second_data["updated_at"] > first["updated_at"]
    with gateway.client(api_key) as c:
        assert c.get(f"/presets/{name}").json()["data"]["designated_version"]["config"] == {"model": "test/beta"}
        versions = c.get(f"/presets/{name}/versions")
        assert versions.status_code == 200
        check("listPresetVersions", versions.json())
        assert versions.json()["total_count"] == 2
        assert [(v["version"], v["config"]) for v in versions.json()["data"]] == [
            (1, {"model": "test/alpha", "temperature": 0.1}),
            (2, {"model": "test/beta"}),
        ]
        old = c.get(f"/presets/{name}/versions/1")
        assert old.status_code == 200
        check("getPresetVersion", old.json())
        assert old.json()["data"] == first["designated_version"]
        # Pages: oldest first.
        page = c.get(f"/presets/{name}/versions", params={"offset": 1, "limit": 1}).json()
        assert page["total_count"] == 2 and [v["version"] for v in page["data"]] == [2]
        # The list: most recently updated first.
        newer = slug()
        with gateway.admin() as admin:
            create(admin, newer, {"model": "test/alpha"})
        order = [p["slug"] for p in c.get("/presets", params={"limit": 100}).json()["data"]]
        assert order.index(newer) < order.index(name)


def test_concurrent_creations_of_one_slug_make_consecutive_versions(gateway: Gateway) -> None:
    name = slug()
    with gateway.admin() as admin, ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(lambda t: create(admin, name, {"model": "test/alpha", "temperature": t / 10}), range(8))
        )
        assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers]
        versions = admin.get(f"/presets/{name}/versions").json()
    assert versions["total_count"] == 8
    assert [v["version"] for v in versions["data"]] == list(range(1, 9))
    assert sorted(v["config"]["temperature"] for v in versions["data"]) == [t / 10 for t in range(8)]


# -- the official SDK


def test_the_official_sdk_creates_lists_and_reads_presets(gateway: Gateway, api_key: str) -> None:
    name = slug()
    with OpenRouter(api_key=gateway.management_key, server_url=gateway.api) as admin:
        created = admin.presets.create_presets_chat_completions(
            slug=name,
            model="test/alpha",
            temperature=0.3,
            messages=[{"role": "system", "content": "Be kind."}, {"role": "user", "content": "hi"}],
        )
        assert isinstance(created, components.CreatePresetFromInferenceResponse)
        assert created.data.designated_version.system_prompt == "Be kind."
        again = admin.presets.create_presets_messages(
            slug=name, model="test/beta", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert again.data.designated_version.version == 2
        third = admin.presets.create_presets_responses(slug=name, model="test/gamma", instructions="Be brief.")
        assert third.data.designated_version.version == 3
        assert third.data.designated_version.system_prompt == "Be brief."
    with OpenRouter(api_key=api_key, server_url=gateway.api) as sdk:
        got = sdk.presets.get(slug=name)
        assert got.data.designated_version.config["model"] == "test/gamma"  # (the SDK sends service_tier too)
        listed = sdk.presets.list(limit=100)
        assert name in [p.slug for p in listed.result.data]
        versions = sdk.presets.list_versions(slug=name)
        assert [v.version for v in versions.result.data] == [1, 2, 3]
        first = sdk.presets.get_version(slug=name, version="1")
        assert first.data.config == {"model": "test/alpha", "temperature": 0.3}
        with pytest.raises(errors.NotFoundResponseError):
            sdk.presets.get(slug=slug())
        with pytest.raises(errors.ForbiddenResponseError):  # creating takes a management key
            sdk.presets.create_presets_chat_completions(slug=slug(), model="test/alpha", messages=[])


# -- who may call what


def test_creation_takes_a_management_key_and_reading_any_key(gateway: Gateway, api_key: str) -> None:
    name = slug()
    with gateway.client(api_key) as c:
        r = create(c, name, {"model": "test/alpha"})
        assert r.status_code == 403 and r.json()["error"]["message"] == MANAGEMENT_ONLY
        assert c.get(f"/presets/{name}").status_code == 404  # nothing was written
    with httpx.Client(base_url=gateway.api) as anonymous:
        for path in ("/presets", f"/presets/{name}", f"/presets/{name}/versions", f"/presets/{name}/versions/1"):
            assert anonymous.get(path).status_code == 401
        assert anonymous.post(f"/presets/{name}/messages", json={}).status_code == 401
    with gateway.admin() as admin:
        assert create(admin, name, {"model": "test/alpha"}).status_code == 200
        assert admin.get(f"/presets/{name}").status_code == 200  # a management key reads them too


def test_a_key_sees_only_its_workspace_presets(gateway: Gateway) -> None:
    name = slug()
    with gateway.admin() as admin:
        assert create(admin, name, {"model": "test/alpha"}).status_code == 200
        workspace = admin.post("/workspaces", json={"name": "Other " + name, "slug": "ws-" + name})
    if workspace.status_code == 404:  # the workspaces API is not served by this build
        pytest.skip("no /workspaces to create a second workspace with")
    assert workspace.status_code in (200, 201), workspace.text
    other = gateway.create_key(name="other", workspace_id=workspace.json()["data"]["id"])["key"]
    with gateway.client(other) as c:
        assert c.get(f"/presets/{name}").status_code == 404
        assert name not in [p["slug"] for p in c.get("/presets", params={"limit": 100}).json()["data"]]
        r = c.post(
            "/chat/completions", json={"model": f"@preset/{name}", "messages": [{"role": "user", "content": "x"}]}
        )
        assert r.status_code == 404 and name in r.json()["error"]["message"]


# -- bad input: the error envelope, and nothing half-written


@pytest.mark.parametrize(
    ("path_slug", "body", "message"),
    [
        ("Upper", {"model": "test/alpha"}, "Invalid preset slug"),
        ("-dash", {"model": "test/alpha"}, "Invalid preset slug"),
        ("x" * 65, {"model": "test/alpha"}, "Invalid preset slug"),
        ("ok-slug", {"model": "test/alpha", "temperature": "hot"}, "temperature"),
        ("ok-slug", {"model": "test/alpha", "temperature": 9}, "temperature"),
        ("ok-slug", {"model": 7}, "model"),
        ("ok-slug", {"model": "test/alpha", "provider": {"sort": "vibes"}}, "sort"),
        ("ok-slug", {"model": "@preset/other"}, "cannot name another preset"),
        ("ok-slug", {"model": "test/alpha", "messages": "hello"}, "messages"),
        ("ok-slug", [1, 2], "JSON object"),
        # PostgreSQL's text holds no NUL: refused whole, not a 500 there
        ("ok-slug", {"model": "test/alpha", "messages": [{"role": "system", "content": "a\u0000b"}]}, "NUL"),
        ("ok-slug", {"model": "test/alpha", "stop": ["\u0000"]}, "NUL"),
    ],
)
def test_bad_bodies_are_400_and_write_nothing(gateway: Gateway, path_slug: str, body: Any, message: str) -> None:
    unique = path_slug if path_slug != "ok-slug" else slug()
    with gateway.admin() as admin:
        r = admin.post(f"/presets/{unique}/chat/completions", json=body)
        assert r.status_code == 400, r.text
        check("createPresetsChatCompletions", r.json(), 400)
        assert message in r.json()["error"]["message"]
        assert admin.get(f"/presets/{unique}").status_code == 404


def test_more_bad_input(gateway: Gateway) -> None:
    name = slug()
    with gateway.admin() as admin:
        bad_json = admin.post(f"/presets/{name}/chat/completions", content=b"{nope", headers={"content-type": "x"})
        assert bad_json.status_code == 400 and bad_json.json()["error"]["message"] == "Invalid JSON in request body"
        m = admin.post(f"/presets/{name}/messages", json={"model": "test/alpha", "max_tokens": 0})
        assert m.status_code == 400
        r = admin.post(f"/presets/{name}/responses", json={"model": "test/alpha", "tool_choice": 5})
        assert r.status_code == 400
        assert admin.get(f"/presets/{name}").status_code == 404
        assert create(admin, name, {"model": "test/alpha"}).status_code == 200
        for params in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "ten"}, {"offset": "x"}):
            for path in ("/presets", f"/presets/{name}/versions"):
                r = admin.get(path, params=params)
                assert r.status_code == 400, (path, params)
                check("listPresets", r.json(), 400)
        missing = admin.get(f"/presets/{slug()}")
        assert missing.status_code == 404
        check("getPreset", missing.json(), 404)
        for version in ("2", "0", "abc", "1.0", "-1", "9" * 30):
            r = admin.get(f"/presets/{name}/versions/{version}")
            assert r.status_code == 404, version
            check("getPresetVersion", r.json(), 404)
        assert admin.get(f"/presets/{slug()}/versions").status_code == 404
        # A failed version leaves the active one as it was.
        assert create(admin, name, {"model": "test/alpha", "top_p": 7}).status_code == 400
        assert admin.get(f"/presets/{name}/versions").json()["total_count"] == 1


# -- the command line


def test_the_cli_creates_and_shows_presets_as_the_api_does(gateway: Gateway, api_key: str, tmp_path: Path) -> None:
    name = slug()
    env = {"OMNIROUTER_DATABASE_URL": gateway.settings.db_url, "OMNIROUTER_CONFIG": None, "OMNIROUTER_DATA_DIR": None}
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"model": "test/beta", "system": "Rhyme.", "max_tokens": 10, "messages": []}))

    def run(*args: str) -> Any:
        result = CliRunner().invoke(main, ["presets", *args], env=env)
        assert result.exit_code == 0, result.output
        return result

    created = json.loads(run("create", name, "--from-file", str(body), "--format", "messages", "--json").output)
    assert created["data"]["designated_version"]["system_prompt"] == "Rhyme."
    assert created["data"]["designated_version"]["config"] == {"model": "test/beta", "max_tokens": 10}
    with gateway.client(api_key) as c:
        from_api = c.get(f"/presets/{name}").json()
    assert json.loads(run("get", name, "--json").output) == from_api
    assert from_api["data"]["designated_version"]["creator_id"] == "omnirouter-cli"
    # The running server takes it up (the CLI's change notice, or its next sync) and serves with it.
    deadline = time.monotonic() + 10
    with gateway.client(api_key) as c:
        while True:
            r = c.post(
                "/chat/completions", json={"model": f"@preset/{name}", "messages": [{"role": "user", "content": "x"}]}
            )
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert r.status_code == 200, r.text
    assert r.json()["model"] == "test/beta"

    body.write_text(json.dumps({"model": "test/alpha", "temperature": 1}))
    out = run("create", name, "--from-file", str(body)).output
    assert "version 2 is now active" in out
    versions = json.loads(run("versions", name, "--json").output)
    assert [v["version"] for v in versions["data"]] == [1, 2] and versions["total_count"] == 2
    assert json.loads(run("versions", name, "1", "--json").output)["data"] == created["data"]["designated_version"]
    listed = json.loads(run("list", "--limit", "100", "--json").output)
    assert name in [p["slug"] for p in listed["data"]]
    check("listPresets", listed)
    assert name in run("list", "--limit", "100").output
    assert "test/alpha" in run("versions", name).output

    bad = CliRunner().invoke(main, ["presets", "create", "Bad Slug", "--from-file", str(body)], env=env)
    assert bad.exit_code == 2 and "Invalid preset slug" in bad.output
    missing = CliRunner().invoke(main, ["presets", "get", slug()], env=env)
    assert missing.exit_code == 1 and "not found" in missing.output
