"""OAuth PKCE as an app and its user see it: the consent page at /auth, the redirect back with a code,
and the code exchanged once (POST /auth/keys) for a working key with the limits it was created with."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from openrouter import OpenRouter, errors
from sqlalchemy import func, select, update

from omnirouter.store.tables import api_keys, oauth_codes
from tests.gateway import Gateway
from tests.test_keys_api import check, on_gateway

KEY_RE = re.compile(r"sk-or-v1-[0-9a-f]{64}")


def pkce(method: str = "S256") -> tuple[str, str]:
    """A verifier and its challenge, as RFC 7636 (and OpenRouter's guide) make them. The Python SDK has
    no helper for this (only the two operations), so the test does what an app's code does."""
    verifier = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    if method == "plain":
        return verifier, verifier
    return verifier, base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class Callback:
    """The app's callback endpoint on loopback: records the query each redirect brings."""

    def __init__(self) -> None:
        self.hits: list[dict[str, list[str]]] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(parse_qs(urlsplit(self.path).query))
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.end_headers()
                self.wfile.write(b"signed in")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def callback() -> Iterator[Callback]:
    cb = Callback()
    yield cb
    cb.server.shutdown()


class Form(HTMLParser):
    """The consent page's form as a browser reads it: action, method and inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.method: str | None = None
        self.inputs: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action, self.method = a.get("action"), a.get("method")
        elif tag == "input":
            self.inputs[a["name"]] = a.get("value", "")
            self.types[a["name"]] = a.get("type", "text")
        elif tag == "script":
            self.scripts += 1


def read_form(page: str) -> Form:
    form = Form()
    form.feed(page)
    return form


def key_count(gw: Gateway) -> int:
    async def count(conn: Any) -> int:
        return (await conn.execute(select(func.count()).select_from(api_keys))).scalar_one()

    return on_gateway(gw, count)


def sdk(gw: Gateway, key: str | None = None) -> OpenRouter:
    return OpenRouter(api_key=key or gw.management_key, server_url=gw.api)


def create_code(gw: Gateway, **fields: Any) -> httpx.Response:
    with gw.admin() as admin:
        return admin.post("/auth/keys/code", json=fields)


def exchange(gw: Gateway, **fields: Any) -> httpx.Response:
    return httpx.post(gw.api + "/auth/keys", json=fields, timeout=30)


# -- the browser's way


@pytest.mark.parametrize("method", ["S256", "plain"])
def test_browser_flow_consent_redirect_exchange(gateway: Gateway, callback: Callback, method: str) -> None:
    verifier, challenge = pkce(method)
    app_url = callback.url + "?state=xyz"
    with httpx.Client(base_url=gateway.url, follow_redirects=True, timeout=30) as browser:
        link = {"callback_url": app_url, "code_challenge": challenge, "code_challenge_method": method, "limit": "5"}
        page = browser.get("/auth", params=link)
        assert page.status_code == 200, page.text
        assert page.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
        assert f"127.0.0.1:{urlsplit(callback.url).port}" in page.text  # the app, named by its callback host
        form = read_form(page.text)
        assert form.scripts == 0 and form.method == "post" and form.action == "auth"
        assert form.types["management_key"] == "password"
        assert form.inputs["code_challenge"] == challenge
        before = len(callback.hits)
        approval = {**form.inputs, "management_key": gateway.management_key}
        landed = browser.post(str(page.url.join(form.action)), data=approval)
    # The browser followed the 303 to the app's callback, with the code and the app's own state.
    assert landed.status_code == 200 and landed.text == "signed in"
    assert landed.history[0].status_code == 303
    assert gateway.management_key not in landed.history[0].headers["location"]
    query = callback.hits[before]
    assert query["state"] == ["xyz"]
    (code,) = query["code"]

    with sdk(gateway) as client:
        got = client.o_auth.exchange_auth_code_for_api_key(
            code=code, code_verifier=verifier, code_challenge_method=method
        )
    assert KEY_RE.fullmatch(got.key)
    check("exchangeAuthCodeForAPIKey", {"key": got.key, "user_id": got.user_id})
    # The key works, and carries the limit the app asked for.
    with gateway.client(got.key) as user:
        me = user.get("/key").json()["data"]
        assert me["limit"] == 5 and me["is_management_key"] is False
        assert user.get("/models/user").status_code == 200  # an inference key's operation
    # Once only.
    again = exchange(gateway, code=code, code_verifier=verifier, code_challenge_method=method)
    assert again.status_code == 403 and again.json()["error"]["message"] == "Invalid or expired code"


def test_consent_page_refuses_a_wrong_or_inference_key_and_never_echoes_it(
    gateway: Gateway, callback: Callback
) -> None:
    _, challenge = pkce()
    fields = {"callback_url": callback.url, "code_challenge": challenge, "code_challenge_method": "S256"}
    inference = gateway.create_key()["key"]
    before = len(callback.hits)
    with httpx.Client(base_url=gateway.url, follow_redirects=True, timeout=30) as browser:
        for secret, status in [("sk-or-v1-" + "1" * 64, 401), ("not-a-key", 401), ("", 401), (inference, 403)]:
            r = browser.post("/auth", data={**fields, "management_key": secret})
            assert r.status_code == status and not r.history
            if secret:
                assert secret not in r.text
            assert read_form(r.text).inputs["callback_url"] == callback.url  # the form again, to retry
    assert len(callback.hits) == before  # never redirected


def test_consent_page_escapes_what_the_link_carries(gateway: Gateway) -> None:
    evil = 'https://app.example/cb?x="><script>alert(1)</script>'
    r = httpx.get(gateway.url + "/auth", params={"callback_url": evil})
    assert r.status_code == 200
    assert "<script>" not in r.text and "&lt;script&gt;" in r.text
    assert read_form(r.text).inputs["callback_url"] == evil  # round-trips unchanged through the form


@pytest.mark.parametrize(
    "callback_url",
    [
        "ftp://app.example/cb",
        "javascript:alert(1)",
        "http://app.example/cb",  # http only back to this machine
        "https://user:pw@app.example/cb",
        "https://app.example/cb#frag",
        "/relative",
        "https://app.example:99999/cb",
    ],
)
def test_bad_callback_urls_are_refused_on_page_and_api(gateway: Gateway, callback_url: str) -> None:
    page = httpx.get(gateway.url + "/auth", params={"callback_url": callback_url})
    assert page.status_code == 400 and "Cannot authorize" in page.text and "<form" not in page.text
    posted = httpx.post(
        gateway.url + "/auth", data={"callback_url": callback_url, "management_key": gateway.management_key}
    )
    assert posted.status_code == 400 and "location" not in posted.headers
    r = create_code(gateway, callback_url=callback_url)
    assert r.status_code == 400 and "callback_url" in r.json()["error"]["message"]


def test_loopback_callbacks_may_use_http(gateway: Gateway) -> None:
    for url in ["http://localhost:3000/cb", "http://127.0.0.1/cb", "http://[::1]:8080/cb", "https://app.example/cb"]:
        assert create_code(gateway, callback_url=url).status_code == 200, url


def test_a_long_callback_host_names_the_key_within_its_column(gateway: Gateway) -> None:
    host = ".".join(["a" * 60] * 5) + ".example"  # 313 characters: longer than a key's name may be
    verifier, challenge = pkce()
    r = create_code(gateway, callback_url=f"https://{host}/cb", code_challenge=challenge, code_challenge_method="S256")
    assert r.status_code == 200, r.text
    r = exchange(gateway, code=r.json()["data"]["id"], code_verifier=verifier, code_challenge_method="S256")
    assert r.status_code == 200, r.text


# -- the API: POST /auth/keys/code and POST /auth/keys


def test_sdk_creates_and_exchanges_a_code(gateway: Gateway) -> None:
    verifier, challenge = pkce()
    expires = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    with sdk(gateway) as admin:
        created = admin.o_auth.create_auth_code(
            callback_url="https://app.example/cb",
            code_challenge=challenge,
            code_challenge_method="S256",
            limit=2.5,
            usage_limit_type="daily",
            expires_at=expires,
            key_label="My CLI",
        )
    check("createAuthKeysCode", created.model_dump(mode="json"))
    assert created.data.id.startswith("auth_code_")
    assert (
        created.data.app_id == create_code(gateway, callback_url="https://app.example/other").json()["data"]["app_id"]
    )
    with sdk(gateway, "sk-or-v1-" + "0" * 64) as anyone:  # the exchange needs no key; one sent is ignored
        got = anyone.o_auth.exchange_auth_code_for_api_key(code=created.data.id, code_verifier=verifier)
    with gateway.admin() as admin:
        listed = {k["name"]: k for k in admin.get("/keys").json()["data"]}
    key = listed["My CLI"]
    assert key["limit"] == 2.5 and key["limit_reset"] == "daily"
    assert key["expires_at"] == expires.isoformat().replace("+00:00", "Z")
    assert got.user_id is None  # no users here: the key belongs to the instance


def test_code_without_challenge_needs_no_verifier_and_default_name_is_the_app(gateway: Gateway) -> None:
    code = create_code(gateway, callback_url="https://named.example:8443/cb").json()["data"]["id"]
    r = exchange(gateway, code=code)
    assert r.status_code == 200, r.text
    with gateway.admin() as admin:
        names = [k["name"] for k in admin.get("/keys").json()["data"]]
    assert "named.example:8443" in names


def test_challenge_without_method_is_plain(gateway: Gateway) -> None:
    code = create_code(gateway, callback_url="https://app.example/cb", code_challenge="my-plain-verifier")
    assert exchange(gateway, code=code.json()["data"]["id"], code_verifier="my-plain-verifier").status_code == 200


def test_failures_issue_nothing(gateway: Gateway) -> None:
    verifier, challenge = pkce()
    code = create_code(
        gateway, callback_url="https://app.example/cb", code_challenge=challenge, code_challenge_method="S256"
    ).json()["data"]["id"]
    keys_before = key_count(gateway)
    cases = [
        ({"code": code, "code_verifier": verifier + "x"}, 403, "Invalid code_verifier"),
        ({"code": code, "code_verifier": challenge}, 403, "Invalid code_verifier"),  # the challenge is not the proof
        ({"code": code}, 400, "code_verifier is required"),
        ({"code": code, "code_verifier": verifier, "code_challenge_method": "plain"}, 400, "code_challenge_method"),
        ({"code": "auth_code_unknown", "code_verifier": verifier}, 403, "Invalid or expired code"),
        ({"code_verifier": verifier}, 400, "code"),
        ({"code": 5}, 400, "Invalid request"),
        ({"code": code, "code_challenge_method": "S512"}, 400, "Invalid request"),
    ]
    for body, status, message in cases:
        r = exchange(gateway, **body)
        assert r.status_code == status, (body, r.text)
        assert message in r.json()["error"]["message"]
    bad = httpx.post(gateway.api + "/auth/keys", content=b"{not json", timeout=30)
    assert bad.status_code == 400
    assert key_count(gateway) == keys_before
    # None of that spent the code: the right verifier still gets its key.
    assert exchange(gateway, code=code, code_verifier=verifier).status_code == 200
    assert key_count(gateway) == keys_before + 1


def test_expired_code_fails(gateway: Gateway) -> None:
    verifier, challenge = pkce()
    code = create_code(
        gateway, callback_url="https://app.example/cb", code_challenge=challenge, code_challenge_method="S256"
    ).json()["data"]["id"]
    digest = hashlib.sha256(code.encode()).hexdigest()

    async def age(conn: Any) -> None:
        when = datetime.now(UTC) - timedelta(seconds=1)
        await conn.execute(update(oauth_codes).where(oauth_codes.c.code_hash == digest).values(expires_at=when))

    on_gateway(gateway, age)
    before = key_count(gateway)
    r = exchange(gateway, code=code, code_verifier=verifier)
    assert r.status_code == 403 and r.json()["error"]["message"] == "Invalid or expired code"
    assert key_count(gateway) == before


def test_code_is_stored_hashed(gateway: Gateway) -> None:
    code = create_code(gateway, callback_url="https://app.example/cb").json()["data"]["id"]

    async def rows(conn: Any) -> list[Any]:
        return list((await conn.execute(select(oauth_codes))).all())

    stored = on_gateway(gateway, rows)
    assert all(code not in str(tuple(row)) for row in stored)
    assert hashlib.sha256(code.encode()).hexdigest() in {row.code_hash for row in stored}


def test_concurrent_exchanges_of_one_code_issue_one_key(gateway: Gateway) -> None:
    verifier, challenge = pkce()
    label = "race-" + secrets.token_hex(4)
    code = create_code(
        gateway,
        callback_url="https://app.example/cb",
        code_challenge=challenge,
        code_challenge_method="S256",
        key_label=label,
    ).json()["data"]["id"]

    async def race() -> list[int]:
        async with httpx.AsyncClient(base_url=gateway.api, timeout=30) as client:
            body = {"code": code, "code_verifier": verifier}
            answers = await asyncio.gather(*(client.post("/auth/keys", json=body) for _ in range(20)))
        return [a.status_code for a in answers]

    statuses = asyncio.run(race())
    assert sorted(statuses) == [200] + [403] * 19

    async def minted(conn: Any) -> int:
        return (await conn.execute(select(func.count()).where(api_keys.c.name == label))).scalar_one()

    assert on_gateway(gateway, minted) == 1


def test_create_code_bad_input(gateway: Gateway) -> None:
    cases = [
        {},
        {"callback_url": 5},
        {"callback_url": "https://a.example/cb", "code_challenge": "short", "code_challenge_method": "S256"},
        {"callback_url": "https://a.example/cb", "code_challenge_method": "S256"},
        {"callback_url": "https://a.example/cb", "code_challenge": "x", "code_challenge_method": "S512"},
        {"callback_url": "https://a.example/cb", "limit": -1},
        {"callback_url": "https://a.example/cb", "usage_limit_type": "hourly"},
        {"callback_url": "https://a.example/cb", "expires_at": "2020-01-01T00:00:00Z"},
        {"callback_url": "https://a.example/cb", "expires_at": "2030-01-01T00:00:00+02:00"},
        {"callback_url": "https://a.example/cb", "key_label": "x" * 101},
    ]
    for body in cases:
        r = create_code(gateway, **body)
        assert r.status_code == 400, (body, r.text)
        check("createAuthKeysCode", r.json(), 400)


def test_create_code_takes_a_management_key(gateway: Gateway) -> None:
    body = {"callback_url": "https://a.example/cb"}
    assert httpx.post(gateway.api + "/auth/keys/code", json=body).status_code == 401
    with gateway.client(gateway.create_key()["key"]) as user:
        r = user.post("/auth/keys/code", json=body)
    assert r.status_code == 403 and r.json()["error"]["message"] == "Only management keys can perform this operation"
    with sdk(gateway, gateway.create_key()["key"]) as user_sdk, pytest.raises(errors.ForbiddenResponseError):
        user_sdk.o_auth.create_auth_code(callback_url="https://a.example/cb")


def test_code_names_an_existing_workspace_and_its_key_lands_there(gateway: Gateway) -> None:
    missing = create_code(gateway, callback_url="https://a.example/cb", workspace_id="no-such-workspace")
    assert missing.status_code == 400 and "workspace_id" in missing.json()["error"]["message"]
    slug = "oauth-" + secrets.token_hex(4)
    with gateway.admin() as admin:
        made = admin.post("/workspaces", json={"name": slug, "slug": slug})
        assert made.status_code in (200, 201), made.text
        workspace = made.json()["data"]["id"]
        code = create_code(gateway, callback_url="https://a.example/cb", workspace_id=slug, key_label=slug)
        assert code.status_code == 200, code.text
        assert exchange(gateway, code=code.json()["data"]["id"]).status_code == 200
        listed = admin.get("/keys", params={"workspace_id": workspace}).json()["data"]
    assert [k["name"] for k in listed] == [slug] and listed[0]["workspace_id"] == workspace


def test_old_codes_are_pruned_when_a_new_one_is_made(gateway: Gateway) -> None:
    old = create_code(gateway, callback_url="https://a.example/cb").json()["data"]["id"]
    digest = hashlib.sha256(old.encode()).hexdigest()

    async def age(conn: Any) -> None:
        when = datetime.now(UTC) - timedelta(days=8)
        await conn.execute(update(oauth_codes).where(oauth_codes.c.code_hash == digest).values(expires_at=when))

    async def present(conn: Any) -> bool:
        found = await conn.execute(select(oauth_codes.c.code_hash).where(oauth_codes.c.code_hash == digest))
        return found.first() is not None

    on_gateway(gateway, age)
    assert on_gateway(gateway, present)
    create_code(gateway, callback_url="https://a.example/cb")
    assert not on_gateway(gateway, present)


def test_no_secret_reaches_the_logs(gateway: Gateway, caplog: pytest.LogCaptureFixture) -> None:
    verifier, challenge = pkce()
    fields = {"callback_url": "https://app.example/cb", "code_challenge": challenge, "code_challenge_method": "S256"}
    with caplog.at_level(logging.DEBUG):
        approved = httpx.post(gateway.url + "/auth", data={**fields, "management_key": gateway.management_key})
        code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
        httpx.post(gateway.url + "/auth", data={**fields, "management_key": "sk-or-v1-" + "2" * 64})
        key = exchange(gateway, code=code, code_verifier=verifier).json()["key"]
    client_side = ("httpx", "httpcore")  # this test's own HTTP client, which logs the answers it reads
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(client_side))
    for secret in (gateway.management_key, verifier, key, code):
        assert secret not in logged


def test_cli_makes_a_code_the_app_exchanges(gateway: Gateway) -> None:
    from click.testing import CliRunner

    from omnirouter.cli import main

    env = {
        "OMNIROUTER_DATABASE_URL": gateway.settings.db_url,
        "OMNIROUTER_CONFIG": gateway.settings.config,
        "OMNIROUTER_DATA_DIR": str(gateway.tmp / "data"),
        "OMNIROUTER_MANAGEMENT_KEY": None,
    }
    verifier, challenge = pkce()
    args = ["auth", "code", "--callback-url", "http://localhost:8765/cb", "--code-challenge", challenge]
    args += ["--code-challenge-method", "S256", "--limit", "0.25", "--key-label", "from the cli"]
    result = CliRunner().invoke(main, [*args, "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)["data"]
    check("createAuthKeysCode", {"data": data})
    got = exchange(gateway, code=data["id"], code_verifier=verifier)
    assert got.status_code == 200, got.text
    with gateway.client(got.json()["key"]) as user:
        assert user.get("/key").json()["data"]["limit"] == 0.25
    plain = CliRunner().invoke(main, ["auth", "code", "--callback-url", "https://app.example/cb?x=1"], env=env)
    assert plain.exit_code == 0 and "redirect\thttps://app.example/cb?x=1&code=auth_code_" in plain.output
    bad = CliRunner().invoke(main, ["auth", "code", "--callback-url", "http://app.example/cb"], env=env)
    assert bad.exit_code == 2 and "callback_url must use https" in bad.output
    nan = CliRunner().invoke(main, ["auth", "code", "--callback-url", "https://a.example", "--limit", "x"], env=env)
    assert nan.exit_code == 2 and "--limit" in nan.output
