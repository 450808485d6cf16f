"""The `omnirouter` command as an operator uses it: help, first start, credits, catalog import."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from click.testing import CliRunner, Result

from omnirouter.cli import _prepare, main
from omnirouter.governance.keys import is_well_formed, key_hash, new_key
from omnirouter.settings import Settings
from omnirouter.store import repo
from omnirouter.store.db import Database
from tests.conftest import standard_config
from tests.gateway import Gateway

# Every OMNIROUTER_* variable a test run might carry, unset so each invocation sees only its own.
# Port 0: `serve` checks that its address is free, and 8000 may be taken on a developer's machine.
CLEAN_ENV = {"OMNIROUTER_DATABASE_URL": None, "OMNIROUTER_MANAGEMENT_KEY": None, "OMNIROUTER_CONFIG": None,
             "OMNIROUTER_DATA_DIR": None, "OMNIROUTER_PORT": "0"}  # fmt: skip


def run(*args: str, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env={**CLEAN_ENV, **(env or {})})


@pytest.fixture
def gateway_unstarted(tmp_path: Path, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    """A gateway whose database exists (a fresh PostgreSQL one when configured) but not started yet."""
    gw = Gateway(tmp_path, standard_config(fake_a.base_url, fake_b.base_url))
    yield gw
    if gw.thread.is_alive():
        gw.stop()
    else:
        gw.sock.close()
        gw.database.drop()


async def _stored_key(db_url: str, secret: str) -> Any:
    db = Database(db_url)
    try:
        async with db.engine.connect() as conn:
            return await repo.get_key(conn, key_hash(secret))
    finally:
        await db.close()


# -- help


def test_help() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("serve", "keys", "credits", "catalog"):
        assert command in result.output
    result = run("keys", "--help")
    for command in ("create", "list", "disable", "delete"):
        assert command in result.output
    result = run("serve", "--help")
    assert result.exit_code == 0
    for option in ("--config", "--host", "--port", "--workers", "--sandbox"):
        assert option in result.output
    assert run("credits", "add", "--help").exit_code == 0
    assert run("catalog", "import", "--help").exit_code == 0


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0 and "version" in result.output


# -- first start and the management key


def test_prepare_mints_a_management_key_once(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=None, management_key=None)
    minted = asyncio.run(_prepare(settings))
    assert minted is not None and is_well_formed(minted)
    assert asyncio.run(_prepare(settings)) is None
    assert asyncio.run(_prepare(settings)) is None
    stored = asyncio.run(_stored_key(settings.db_url, minted))
    assert stored is not None and stored.is_management
    # Only the hash is stored.
    assert minted not in (tmp_path / "omnirouter.db").read_bytes().decode("latin-1")


def test_minted_key_manages_a_running_gateway(gateway_unstarted: Gateway) -> None:
    gw = gateway_unstarted
    settings = Settings(data_dir=gw.settings.data_dir, database_url=gw.settings.database_url, management_key=None)
    minted = asyncio.run(_prepare(settings))
    assert minted is not None
    assert asyncio.run(_prepare(settings)) is None
    gw.start()
    with gw.client(minted) as c:
        r = c.post("/keys", json={"name": "made with the minted key"})
        assert r.status_code == 201, r.text
        inference = r.json()["key"]
        assert c.get("/credits").status_code == 200
        me = c.get("/key").json()["data"]
        assert me["is_management_key"] is True
    with gw.client(inference) as c:
        assert c.get("/keys").status_code == 403


def test_configured_management_key(gateway_unstarted: Gateway) -> None:
    gw = gateway_unstarted
    chosen = new_key()
    settings = Settings(data_dir=gw.settings.data_dir, database_url=gw.settings.database_url, management_key=chosen)
    assert asyncio.run(_prepare(settings)) is None  # nothing to show: the operator chose it
    assert asyncio.run(_prepare(settings)) is None
    stored = asyncio.run(_stored_key(settings.db_url, chosen))
    assert stored is not None and stored.is_management
    gw.start()
    with gw.client(chosen) as c:
        assert c.get("/keys").status_code == 200
        assert c.post("/keys", json={"name": "by the configured key"}).status_code == 201


@pytest.mark.parametrize(
    "bad",
    ["not-a-key", "sk-or-v1-" + "A" * 64, "sk-or-v1-" + "0" * 63, "sk-or-v2-" + "0" * 64, "sk-or-v1-" + "g" * 64],
)
def test_malformed_configured_key_is_rejected(tmp_path: Path, bad: str) -> None:
    settings = Settings(data_dir=tmp_path, database_url=None, management_key=bad)
    with pytest.raises(ValueError, match="OMNIROUTER_MANAGEMENT_KEY must be 'sk-or-v1-'"):
        asyncio.run(_prepare(settings))


@pytest.fixture
def no_uvicorn(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """`serve` up to the point where it would start the server."""
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: calls.append(kw))
    return calls


def test_serve_prints_the_minted_key_once(tmp_path: Path, no_uvicorn: list[dict[str, Any]]) -> None:
    env = {"OMNIROUTER_DATA_DIR": str(tmp_path)}
    first = run("serve", env=env)
    assert first.exit_code == 0, first.output
    minted = [w for w in first.output.split() if w.startswith("sk-or-v1-")]
    assert len(minted) == 1 and is_well_formed(minted[0])
    assert "shown only this once" in first.output
    second = run("serve", env=env)
    assert second.exit_code == 0, second.output
    assert not [w for w in second.output.split() if is_well_formed(w)]
    assert len(no_uvicorn) == 2 and no_uvicorn[0]["factory"] is True


def test_serve_rejects_a_malformed_key_clearly(tmp_path: Path, no_uvicorn: list[dict[str, Any]]) -> None:
    result = run("serve", env={"OMNIROUTER_DATA_DIR": str(tmp_path), "OMNIROUTER_MANAGEMENT_KEY": "sk-or-v1-oops"})
    assert result.exit_code != 0
    assert "OMNIROUTER_MANAGEMENT_KEY must be 'sk-or-v1-' followed by 64 lowercase hex characters" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, ValueError)
    assert no_uvicorn == []


def test_empty_management_key_variable_means_unset(tmp_path: Path, no_uvicorn: list[dict[str, Any]]) -> None:
    # Compose files often pass `OMNIROUTER_MANAGEMENT_KEY=${KEY:-}`: empty is "not configured".
    result = run("serve", env={"OMNIROUTER_DATA_DIR": str(tmp_path), "OMNIROUTER_MANAGEMENT_KEY": ""})
    assert result.exit_code == 0, result.output
    assert "shown only this once" in result.output


def test_serve_rejects_a_missing_config_file(tmp_path: Path, no_uvicorn: list[dict[str, Any]]) -> None:
    result = run("serve", "--config", str(tmp_path / "nope.yaml"), env={"OMNIROUTER_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2 and "no such file" in result.output
    assert no_uvicorn == []


# -- credits


def _credits(db_url: str) -> Decimal | None:
    async def read() -> Decimal | None:
        db = Database(db_url)
        try:
            async with db.engine.connect() as conn:
                return await conn.run_sync(repo.total_credits)
        finally:
            await db.close()

    return asyncio.run(read())


def test_credits_add(tmp_path: Path) -> None:
    env = {"OMNIROUTER_DATA_DIR": str(tmp_path)}
    result = run("credits", "add", "0.00001", env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "Added 0.00001 USD. Total credits: 0.00001 USD."
    result = run("credits", "add", "2.5", "--note", "top-up", env=env)
    assert result.exit_code == 0, result.output
    assert "Total credits: 2.50001 USD." in result.output
    result = run("credits", "add", "100", env=env)
    assert "Added 100 USD. Total credits: 102.50001 USD." in result.output
    result = run("credits", "add", "1.500000000000000000000", env=env)  # trailing zeros are not precision
    assert "Added 1.5 USD. Total credits: 104.00001 USD." in result.output, result.output
    assert _credits(f"sqlite+aiosqlite:///{tmp_path / 'omnirouter.db'}") == Decimal("104.00001")


def test_credits_add_to_a_gateway_database(gateway_unstarted: Gateway) -> None:
    url = gateway_unstarted.settings.db_url
    result = run("credits", "add", "0.1", env={"OMNIROUTER_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    result = run("credits", "add", "0.2", env={"OMNIROUTER_DATABASE_URL": url})
    assert result.output.strip() == "Added 0.2 USD. Total credits: 0.3 USD."  # exact, in any database
    assert _credits(url) == Decimal("0.3")


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("abc", "is not a number"),
        ("", "is not a number"),
        ("1,5", "is not a number"),
        ("0", "must be a positive amount"),
        ("-1", "must be a positive amount"),
        ("-0.5", "must be a positive amount"),
        ("NaN", "must be a positive amount"),
        ("Infinity", "must be a positive amount"),
        ("0.0000000000000000001", "decimal places"),
        ("1e20", "less than 1e20"),
    ],
)
def test_credits_add_rejects_bad_amounts(tmp_path: Path, amount: str, message: str) -> None:
    result = run("credits", "add", amount, env={"OMNIROUTER_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "omnirouter.db").exists()  # nothing was written


def test_credits_add_negative_after_double_dash(tmp_path: Path) -> None:
    result = run("credits", "add", "--", "-3", env={"OMNIROUTER_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 2 and "must be a positive amount" in result.output


# -- keys


def test_keys_through_the_cli_and_the_api_alike(gateway_unstarted: Gateway) -> None:
    from openrouter import operations

    gw = gateway_unstarted.start()
    env = {"OMNIROUTER_DATABASE_URL": gw.settings.db_url}
    result = run("keys", "create", "ci bot", "--limit", "0.1", "--limit-reset", "monthly",
                 "--external-user", "u-7", "--rpm-limit", "30", "--json", env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["data"]["rpm_limit"] == 30  # Omnirouter's own field, beside the API's
    created = operations.CreateKeysResponse.model_validate_json(result.output)  # the API's shape
    assert created.data.name == "ci bot" and created.data.limit == 0.1 and created.data.external_user == "u-7"
    secret, hash_ = created.key, created.data.hash
    with gw.client(secret) as c:  # the running server accepts it at once
        assert c.get("/key").status_code == 200
    with gw.admin() as admin:
        from_api = admin.get(f"/keys/{hash_}").json()["data"]
    listed = run("keys", "list", "--json", env=env)
    assert listed.exit_code == 0, listed.output
    assert json.loads(listed.output)["data"] == [from_api]  # the same object, the same code

    result = run("keys", "disable", hash_, env=env)
    assert result.exit_code == 0 and "Disabled key 'ci bot'" in result.output
    # The server reloads changed keys every sync_interval: here, now.
    asyncio.run_coroutine_threadsafe(gw.state.recorder.sync(), gw.loop).result(timeout=10)
    with gw.client(secret) as c:
        assert c.get("/key").status_code == 401
    assert run("keys", "list", "--json", env=env).output.strip() == '{"data":[]}'
    disabled = json.loads(run("keys", "list", "--include-disabled", "--json", env=env).output)["data"]
    assert [(k["hash"], k["disabled"]) for k in disabled] == [(hash_, True)]

    result = run("keys", "delete", hash_, "--json", env=env)
    assert result.exit_code == 0 and json.loads(result.output) == {"deleted": True}
    with gw.admin() as admin:
        assert admin.get(f"/keys/{hash_}").status_code == 404
    result = run("keys", "delete", hash_, env=env)
    assert result.exit_code == 1 and "Key not found" in result.output


def test_keys_create_prints_the_secret_once(tmp_path: Path) -> None:
    env = {"OMNIROUTER_DATA_DIR": str(tmp_path)}
    result = run("keys", "create", "human", env=env)
    assert result.exit_code == 0, result.output
    secrets = [w for w in result.output.split() if w.startswith("sk-or-v1-")]
    assert len(secrets) == 1 and is_well_formed(secrets[0]) and "shown only this once" in result.output
    listing = run("keys", "list", env=env)
    assert listing.exit_code == 0
    header, row = listing.output.strip().splitlines()
    assert header.split("\t")[:2] == ["hash", "name"]
    assert row.split("\t")[:2] == [key_hash(secrets[0]), "human"] and "never" in row
    assert secrets[0] not in listing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "lots"], "'lots' is not a number"),
        (["--limit", "NaN"], "must be a number >= 0"),
        (["--limit", "-1"], "limit must be a number >= 0"),
        (["--limit", "0.0000000000000000001"], "decimal places"),
        (["--expires-at", "2020-01-01T00:00:00Z"], "expires_at must be in the future"),
        (["--expires-at", "2030-01-01T00:00:00+02:00"], "in UTC"),
        (["--workspace-id", "w" * 65], "Invalid request"),
        (["--rpm-limit", "0"], "0 is not in the range x>=1"),
    ],
)
def test_keys_create_refuses_what_the_api_refuses(tmp_path: Path, args: list[str], message: str) -> None:
    env = {"OMNIROUTER_DATA_DIR": str(tmp_path)}
    result = run("keys", "create", "x", *args, env=env)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert run("keys", "list", "--include-disabled", "--include-expired", "--json", env=env).output.strip() == (
        '{"data":[]}'
    )


def test_keys_unknown_or_malformed_hash(tmp_path: Path) -> None:
    env = {"OMNIROUTER_DATA_DIR": str(tmp_path)}
    for command in ("disable", "enable", "delete"):
        for hash_ in ("0" * 64, "not-a-hash"):
            result = run("keys", command, hash_, env=env)
            assert result.exit_code == 1 and "Key not found" in result.output, (command, hash_)
    assert run("keys", "create", "a\x00b", env=env).exit_code == 2


# -- catalog import


def test_catalog_import(tmp_path: Path) -> None:
    entry = {
        "id": "someone/new-model",
        "name": "New",
        "context_length": 8192,
        "architecture": {"modality": "text->text", "input_modalities": ["text"], "output_modalities": ["text"]},
        "pricing": {"prompt": "0.000001", "completion": "0.000002"},
        "top_provider": {"context_length": 8192, "max_completion_tokens": 1024},
    }
    dump = tmp_path / "models.json"
    dump.write_text(json.dumps({"data": [entry]}))
    env = {"OMNIROUTER_DATA_DIR": str(tmp_path / "data")}
    result = run("catalog", "import", str(dump), env=env)
    assert result.exit_code == 0, result.output
    assert "1 models added" in result.output
    assert (tmp_path / "data" / "catalog.json").is_file()

    dump.write_text("this is not json")
    result = run("catalog", "import", str(dump), env=env)
    assert result.exit_code == 1 and "Error:" in result.output and "Traceback" not in result.output
    result = run("catalog", "import", str(tmp_path / "missing.json"), env=env)
    assert result.exit_code == 2
