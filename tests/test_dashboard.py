"""The web dashboard over plain HTTP (tests/test_dashboard_browser.py drives it in Chromium): signing
in, what a session cookie holds, CSRF, what an inference key may see, the key forms, and that no page
or asset refers to anything outside this server."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnirouter.dashboard import STATIC
from tests.conftest import standard_config
from tests.gateway import Gateway

PAGES = ("/", "/?by=provider&days=7", "/generations", "/keys", "/providers", "/models", "/credits", "/playground")


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    g = Gateway(tmp_path_factory.mktemp("dash"), standard_config(fake_a.base_url, fake_b.base_url), log_prompts=True)
    g.start()
    yield g
    g.stop()


def browser(gw: Gateway) -> httpx.Client:
    """A client that sends what a browser's same-origin form sends."""
    return httpx.Client(base_url=gw.url, headers={"Origin": gw.url, "Sec-Fetch-Site": "same-origin"}, timeout=30)


@contextlib.contextmanager
def signed_in(gw: Gateway, key: str) -> Iterator[httpx.Client]:
    with browser(gw) as client:
        r = client.post("/login", data={"key": key, "next": "/"})
        assert r.status_code == 303, r.text
        yield client


def csrf(client: httpx.Client, page: str = "/keys") -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get(page).text)[1]  # type: ignore[index]


def chat(gw: Gateway, key: str, text: str) -> str:
    with gw.client(key) as c:
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": [{"role": "user", "content": text}]})
    assert r.status_code == 200, r.text
    return r.json()["id"]


@pytest.fixture(scope="module")
def admin(gw: Gateway) -> Iterator[httpx.Client]:
    with signed_in(gw, gw.management_key) as client:
        yield client


def test_pages_need_a_session(gw: Gateway) -> None:
    with browser(gw) as c:
        for page in (*PAGES, "/generations/gen-1"):
            r = c.get(page)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next=%2F"), page
        assert c.get("/login").status_code == 200
        assert c.get("/static/dashboard.css").status_code == 200


def test_sign_in_sets_a_signed_http_only_cookie_without_the_key(gw: Gateway) -> None:
    with browser(gw) as c:
        r = c.post("/login", data={"key": gw.management_key, "next": "/keys"})
        assert r.status_code == 303 and r.headers["location"] == "/keys"
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower() and "Path=/" in cookie
        assert gw.management_key not in cookie and gw.management_key.removeprefix("sk-or-v1-") not in cookie
        assert c.get("/keys").status_code == 200
        token = c.cookies["omnirouter_session"]
        # A forged signature, or a longer expiry under the same signature, is no session.
        for forged in (token[:-4] + "0000", re.sub(r"\.(\d+)\.", lambda m: f".{int(m[1]) + 1}.", token)):
            c.cookies.set("omnirouter_session", forged)
            assert c.get("/keys").status_code == 303
        r = c.post("/logout")
        assert r.status_code == 303 and 'omnirouter_session=""' in r.headers["set-cookie"]


def test_a_wrong_key_and_an_offsite_redirect_are_refused(gw: Gateway) -> None:
    with browser(gw) as c:
        r = c.post("/login", data={"key": "sk-or-v1-" + "0" * 64})
        assert r.status_code == 401 and "Invalid API key" in r.text and "set-cookie" not in r.headers
        r = c.post("/login", data={"key": gw.management_key, "next": "//evil.example/x"})
        assert r.headers["location"] == "/"


def test_forms_from_another_origin_or_without_the_csrf_token_are_refused(gw: Gateway, admin: httpx.Client) -> None:
    token = csrf(admin)
    cookies = {"omnirouter_session": admin.cookies["omnirouter_session"]}
    with httpx.Client(base_url=gw.url, cookies=cookies) as other:
        # Another site's page: its Origin, or the browser saying it is cross-site; and no browser at all.
        for headers in ({"Origin": "http://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {}):
            r = other.post("/keys", data={"csrf": token, "name": "sneaky"}, headers=headers)
            assert r.status_code == 403, headers
        r = other.post("/login", data={"key": gw.management_key}, headers={"Origin": "http://evil.example"})
        assert r.status_code == 403
    for sent in ({}, {"csrf": "0" * 64}):
        assert admin.post("/keys", data={"name": "sneaky", **sent}).status_code == 403
    with gw.admin() as api:
        assert "sneaky" not in {k["name"] for k in api.get("/keys").json()["data"]}


def test_keys_are_created_limited_disabled_and_rotated(gw: Gateway, admin: httpx.Client) -> None:
    r = admin.post("/keys", data={"csrf": csrf(admin), "name": "team-x", "limit": "2.5", "limit_reset": "weekly"})
    assert r.status_code == 201
    secret = re.search(r'id="new-secret">([^<]+)<', r.text)[1]  # type: ignore[index]
    with gw.client(secret) as c:
        info = c.get("/key").json()["data"]
    assert info["limit"] == 2.5 and info["limit_reset"] == "weekly"
    with gw.admin() as api:
        [made] = [k for k in api.get("/keys").json()["data"] if k["name"] == "team-x"]
        digest = made["hash"]
        r = admin.post(f"/keys/{digest}", data={"csrf": csrf(admin), "op": "limit", "limit": "7", "limit_reset": ""})
        assert r.status_code == 303
        got = api.get(f"/keys/{digest}").json()["data"]
        assert got["limit"] == 7 and got["limit_reset"] is None
        r = admin.post(f"/keys/{digest}", data={"csrf": csrf(admin), "op": "limit", "limit": "-1"})
        assert r.status_code == 400 and "limit must be" in r.text
        r = admin.post(f"/keys/{digest}/rotate", data={"csrf": csrf(admin)})
        assert r.status_code == 201
        rotated = re.search(r'id="new-secret">([^<]+)<', r.text)[1]  # type: ignore[index]
        assert api.get(f"/keys/{digest}").json()["data"]["disabled"] is True
    with gw.client(secret) as c:
        assert c.get("/key").status_code == 401
    with gw.client(rotated) as c:
        current = c.get("/key").json()["data"]
    assert current["limit"] == 7
    with gw.admin() as api:
        new_hash = next(k["hash"] for k in api.get("/keys").json()["data"] if k["label"] == current["label"])
    r = admin.post(f"/keys/{new_hash}", data={"csrf": csrf(admin), "op": "disable"})
    assert r.status_code == 303
    with gw.client(rotated) as c:
        assert c.get("/key").status_code == 401


def test_an_inference_key_sees_only_its_own_generations(gw: Gateway, admin: httpx.Client) -> None:
    mine, theirs = gw.create_key(name="mine"), gw.create_key(name="theirs")
    my_id, their_id = chat(gw, mine["key"], "my question"), chat(gw, theirs["key"], "their secret")
    gw.flush()
    with signed_in(gw, mine["key"]) as me:
        log = me.get("/generations").text
        assert my_id in log and their_id not in log
        # Naming the other key in the filter changes nothing: the session's key bounds every query.
        assert their_id not in me.get("/generations", params={"key": theirs["data"]["hash"]}).text
        assert me.get(f"/generations/{their_id}").status_code == 404
        detail = me.get(f"/generations/{my_id}")
        assert detail.status_code == 200 and "my question" in detail.text and "Fake A" in detail.text
        keys = me.get("/keys").text
        assert "mine" in keys and "theirs" not in keys and 'action="/keys"' not in keys
        assert me.post("/keys", data={"csrf": csrf(me), "name": "escalate"}).status_code == 403
        assert me.post("/playground/key", data={"csrf": csrf(me, "/playground")}).status_code == 403
        overview = me.get("/", params={"by": "key"}).text
        assert "theirs" not in overview and "By model" in overview
    both = admin.get("/generations").text
    assert my_id in both and their_id in both
    assert their_id in admin.get(f"/generations/{their_id}").text


def test_a_disabled_key_loses_its_session(gw: Gateway) -> None:
    made = gw.create_key(name="short-lived")
    with signed_in(gw, made["key"]) as c:
        assert c.get("/").status_code == 200
        with gw.admin() as api:
            assert api.patch(f"/keys/{made['data']['hash']}", json={"disabled": True}).status_code == 200
        assert c.get("/").status_code == 303


def test_usage_and_the_generation_detail_show_what_was_spent(gw: Gateway, admin: httpx.Client) -> None:
    made = gw.create_key(name="spender")
    gen_id = chat(gw, made["key"], "how much?")
    gw.flush()
    with gw.client(made["key"]) as c:
        cost = c.get("/generation", params={"id": gen_id}).json()["data"]["total_cost"]
    detail = admin.get(f"/generations/{gen_id}").text
    assert f'id="total-cost">${cost:f}'.rstrip("0") in detail or f"${cost}" in detail
    assert "test/alpha@fake-a" in detail and "Prompt tokens" in detail
    overview = admin.get("/", params={"by": "key"}).text
    assert "spender" in overview and "<svg" in overview and "<rect" in overview
    filtered = admin.get("/generations", params={"model": "test/beta"}).text
    assert gen_id not in filtered
    assert gen_id in admin.get("/generations", params={"model": "test/alpha", "status": "ok"}).text
    assert gen_id not in admin.get("/generations", params={"status": "error"}).text


EXTERNAL = re.compile(r"""(?:https?:)?//[a-z0-9-]+\.[a-z0-9.-]+[^\s"'<>)]*""", re.I)
NAMESPACES = {"http://www.w3.org/2000/svg"}


def test_no_page_or_asset_refers_outside_this_server(gw: Gateway, admin: httpx.Client) -> None:
    gen_id = chat(gw, gw.create_key(name="linkless")["key"], "hello")
    gw.flush()
    served = {page: admin.get(page) for page in (*PAGES, f"/generations/{gen_id}", "/?by=key")}
    with browser(gw) as anonymous:
        served["/login"] = anonymous.get("/login")
        for path in sorted(p.name for p in Path(STATIC).iterdir()):
            served[f"/static/{path}"] = anonymous.get(f"/static/{path}")
    for page, r in served.items():
        assert r.status_code == 200, page
        found = {m.group(0) for m in EXTERNAL.finditer(r.text)} - NAMESPACES
        # The gateway's own origin appears nowhere either; every reference is a path on it.
        assert found == set(), (page, found)
        if r.headers["content-type"].startswith("text/html"):
            policy = r.headers["content-security-policy"]
            assert "default-src 'self'" in policy and "script-src 'self'" in policy
            assert "frame-ancestors 'none'" in policy
