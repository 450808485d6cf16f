"""`omnirouter byok` as an operator uses it, against a running gateway: the provider key read from an
environment variable or stdin (never an argument), --json printing what the API answers, and the
rotation of OMNIROUTER_ENCRYPTION_KEY."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select

from omnirouter.cli import main
from omnirouter.governance.byok_crypto import Keyring, Undecryptable, new_key
from omnirouter.store.tables import byok_keys
from tests.gateway import Gateway
from tests.test_byok import SHARED_A, auths, chat, config

SECRET = "sk-cli-provided-byok-key-abcdefgh1234"
OLD, NEW = new_key(), new_key()


def run(gw: Gateway, *args: str, key: str | None = OLD, stdin: str | None = None, **env: str) -> Result:
    base = {
        "OMNIROUTER_DATABASE_URL": gw.settings.db_url,
        "OMNIROUTER_CONFIG": gw.settings.config,
        "OMNIROUTER_DATA_DIR": str(gw.tmp / "data"),
        "OMNIROUTER_MANAGEMENT_KEY": None,
        "OMNIROUTER_ENCRYPTION_KEY": key,
    }
    return CliRunner().invoke(main, ["byok", *args], env={**base, **env}, input=stdin)


@pytest.fixture
def gw(tmp_path: Path, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    # The server knows both keys, newest first, as during a rotation.
    gateway = Gateway(tmp_path, config(fake_a, fake_b), encryption_key=f"{NEW},{OLD}").start()
    yield gateway
    gateway.stop()


def sync(gw: Gateway) -> None:
    asyncio.run_coroutine_threadsafe(gw.state.recorder.sync(force=True), gw.loop).result(timeout=10)


def stored_secret(gw: Gateway, id_: str) -> str:
    async def read() -> str:
        async with gw.state.db.engine.connect() as conn:
            return (await conn.execute(select(byok_keys.c.secret).where(byok_keys.c.id == id_))).scalar_one()

    return asyncio.run_coroutine_threadsafe(read(), gw.loop).result(timeout=10)


def test_add_list_get_update_delete(gw: Gateway, fake_a: Any) -> None:
    result = run(
        gw, "add", "fake-a", "--secret-env", "MY_PROVIDER_KEY", "--name", "ci", "--json", MY_PROVIDER_KEY=SECRET
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)["data"]
    assert created["label"] == "sk-...1234" and created["name"] == "ci" and SECRET not in result.output
    sync(gw)
    assert chat(gw, gw.create_key()["key"]).json()["usage"]["is_byok"] is True
    assert auths(fake_a)[-1] == f"Bearer {SECRET}"

    # From stdin (a pipe), a second key, tried after the first.
    piped = run(gw, "add", "fake-a", "--fallback", "--json", stdin="sk-piped-in-key-000011112222\n")
    assert piped.exit_code == 0, piped.output
    assert json.loads(piped.output)["data"]["is_fallback"] is True

    listed = run(gw, "list", "--json")
    assert listed.exit_code == 0, listed.output
    with gw.admin() as admin:
        assert json.loads(listed.output) == admin.get("/byok").json()  # the same objects, the same code
    plain = run(gw, "list")
    assert created["id"] in plain.output and SECRET not in plain.output

    updated = run(gw, "update", created["id"], "--disabled", "--json")
    assert updated.exit_code == 0 and json.loads(updated.output)["data"]["disabled"] is True
    sync(gw)
    fake_a.fake.reset()
    assert chat(gw, gw.create_key()["key"]).status_code == 200
    assert auths(fake_a) == [f"Bearer {SHARED_A}"]  # the disabled key is not used; the fallback one not needed

    assert run(gw, "get", created["id"], "--json").exit_code == 0
    assert run(gw, "delete", created["id"]).exit_code == 0
    missing = run(gw, "get", created["id"])
    assert missing.exit_code != 0 and "not found" in missing.output


def test_bad_input(gw: Gateway) -> None:
    unset = run(gw, "add", "fake-a", "--secret-env", "NOPE_NOT_SET")
    assert unset.exit_code != 0 and "NOPE_NOT_SET" in unset.output
    unknown = run(gw, "add", "no-such-provider", "--secret-env", "K", K=SECRET)
    assert unknown.exit_code != 0 and "fake-a" in unknown.output and SECRET not in unknown.output
    no_key = run(gw, "add", "fake-a", "--secret-env", "K", key=None, K=SECRET)
    assert no_key.exit_code != 0 and "OMNIROUTER_ENCRYPTION_KEY" in no_key.output
    bad_key = run(gw, "add", "fake-a", "--secret-env", "K", key="not-a-fernet-key", K=SECRET)
    assert bad_key.exit_code != 0 and "not a Fernet key" in bad_key.output and "not-a-fernet-key" not in bad_key.output
    # The key is never an argument: there is no option that takes it.
    assert run(gw, "add", "fake-a", SECRET).exit_code != 0


def test_rotation(gw: Gateway, fake_a: Any) -> None:
    added = run(gw, "add", "fake-a", "--secret-env", "K", "--json", K=SECRET)  # under the old key
    id_ = json.loads(added.output)["data"]["id"]
    old_token = stored_secret(gw, id_)
    assert Keyring.from_setting(OLD).decrypt(old_token) == SECRET  # type: ignore[union-attr]

    # The new key goes first, the old one stays until every row is re-encrypted.
    rotated = run(gw, "rotate", "--json", key=f"{NEW},{OLD}")
    assert rotated.exit_code == 0, rotated.output
    assert json.loads(rotated.output) == {"rotated": 1, "undecryptable": []}
    token = stored_secret(gw, id_)
    assert token != old_token and SECRET not in token
    assert Keyring.from_setting(NEW).decrypt(token) == SECRET  # type: ignore[union-attr]
    with pytest.raises(Undecryptable):
        Keyring.from_setting(OLD).decrypt(token)  # type: ignore[union-attr]
    sync(gw)
    fake_a.fake.reset()
    assert chat(gw, gw.create_key()["key"]).json()["usage"]["is_byok"] is True
    assert auths(fake_a) == [f"Bearer {SECRET}"]

    # A keyring that opens nothing says which rows it could not re-encrypt, and changes none.
    stuck = run(gw, "rotate", key=new_key())
    assert stuck.exit_code != 0 and id_ in stuck.output
    assert stored_secret(gw, id_) == token


def test_new_encryption_key() -> None:
    result = CliRunner().invoke(main, ["byok", "new-encryption-key"])
    assert result.exit_code == 0
    assert Keyring.from_setting(result.output.strip()) is not None
