"""Who may call what: every route the server serves, called by every kind of caller.

The rows are the served routes themselves (``omnirouter.app.api_routes()`` under /api/v1, and the
routes at the root), each with the auth its OpenAPI ``Operation`` declares (none, any, inference,
management): a new endpoint gets a row by existing, and one without an Operation fails. The expected
status comes from the auth kind (behaviors §6.1, §6.2):

- no key, a malformed key, an unknown well-formed key, a disabled key, an expired key: 401, with the
  message saying which, on every authenticated route;
- an inference key on a management route: 403 "Only management keys can perform this operation";
  a management key on an inference route: 403;
- the right key (and anyone on a public route): what the route answers an empty or minimal request,
  which must be a status its Operation documents and never 401, 403 or a 5xx (path ids name objects
  that do not exist, so 404; an empty body, 400).

Exceptions are listed in EXCEPTIONS with the reason.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Mount, Route

from omnirouter import dashboard
from omnirouter.api.auth import INFERENCE_ONLY, MANAGEMENT_ONLY
from omnirouter.app import API_ROOTS, api_routes, create_app
from omnirouter.governance.keys import new_key
from omnirouter.openapi_doc import Operation, _module_entries
from omnirouter.settings import Settings
from tests.conftest import standard_config
from tests.gateway import Gateway

UNAUTHENTICATED = {
    "no key": "Missing Authentication header",
    "malformed key": "Invalid API key",
    "unknown key": "Invalid API key",
    "disabled key": "API key is disabled",
    "expired key": "API key has expired",
}
OTHER = "other workspace's key"  # an inference key of a workspace other than the default one
CALLERS = (*UNAUTHENTICATED, "inference key", "management key", OTHER)

# Path parameters, by name: each names nothing that exists (so the right key gets a 404).
NOTHING = "ffffffff-ffff-4fff-bfff-ffffffffffff"  # (all zeros is the default workspace)
PATH_VALUES = {"hash": "0" * 64, "author": "no-such-author", "slug": "no-such-slug", "version": "999"}
PATH_VALUES |= {"interval": "monthly"}
WITH_BODY = {"post", "put", "patch"}


def _operations() -> dict[tuple[str, str], Operation]:
    return _module_entries(api_routes())[0]


def _api_rows() -> list[tuple[str, str]]:
    return sorted(
        (route.path_format, method.lower())
        for route in api_routes()
        if isinstance(route, Route)
        for method in (route.methods or ())
        if method != "HEAD"
    )


# The root's own routes (outside /api/v1): their auth, and the statuses they may answer.
ROOT: dict[tuple[str, str], tuple[str, frozenset[int]]] = {
    ("/health/live", "get"): ("none", frozenset({200})),
    ("/health/ready", "get"): ("none", frozenset({200, 503})),
    ("/metrics", "get"): ("management", frozenset({200})),  # Prometheus scrapes it here (or with metrics_token)
    # The OAuth consent page: the approval takes the management key typed into its form, never a
    # header; without a callback_url (or with an empty form) every caller gets the 400 page.
    ("/auth", "get"): ("none", frozenset({400})),
    ("/auth", "post"): ("none", frozenset({400})),
}

# (path, method, caller) -> (status, why): where the rule derived from the auth kind does not apply.
EXCEPTIONS: dict[tuple[str, str, str], tuple[int, str]] = {}


@dataclass
class Callers:
    gw: Gateway
    http: httpx.Client  # one for every call: a client of its own per call loads the CA bundle each time
    keys: dict[str, str | None]
    skipped: dict[str, str]  # caller -> why its column is skipped


@pytest.fixture(scope="module")
def callers(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Callers]:
    gw = Gateway(tmp_path_factory.mktemp("matrix"), standard_config(fake_a.base_url, fake_b.base_url)).start()
    admin = gw.admin()
    expires = datetime.now(UTC) + timedelta(seconds=1.5)
    expired = gw.create_key(name="expiring", expires_at=expires.isoformat().replace("+00:00", "Z"))["key"]
    disabled = gw.create_key(name="disabled")
    r = admin.patch(f"/keys/{disabled['data']['hash']}", json={"disabled": True})
    assert r.status_code == 200, r.text
    keys: dict[str, str | None] = {
        "no key": None,
        "malformed key": "not-a-key",
        "unknown key": new_key(),
        "disabled key": disabled["key"],
        "expired key": expired,
        "inference key": gw.create_key(name="inference")["key"],
        "management key": gw.management_key,
    }
    skipped: dict[str, str] = {}
    made = admin.post("/workspaces", json={"name": "Matrix elsewhere", "slug": "matrix-elsewhere"})
    if made.status_code in (200, 201):
        keys[OTHER] = gw.create_key(name="elsewhere", workspace_id=made.json()["data"]["id"])["key"]
    else:
        skipped[OTHER] = f"POST /workspaces answered {made.status_code}: no workspaces to make one"
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds() + 0.1))
    with httpx.Client(base_url=gw.url, timeout=30) as http:
        yield Callers(gw, http, keys, skipped)
    admin.close()
    gw.stop()


def _url_path(path: str) -> str:
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: PATH_VALUES.get(m[1], NOTHING), path)


def _call(c: Callers, root: str, path: str, method: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    url = root + _url_path(path)
    if root == "" and path == "/auth" and method == "post":  # a browser's form, empty
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return c.http.request(method, url, headers=headers, content=b"")
    body = {"json": {}} if method in WITH_BODY else {}
    return c.http.request(method, url, headers=headers, **body)


ANTHROPIC_TYPES = {401: "authentication_error", 403: "permission_error"}


def _message(r: httpx.Response, path: str = "") -> str | None:
    """The error's message; on the Anthropic Messages routes, only if the envelope is Anthropic's
    (what the Anthropic SDKs and Claude Code parse) with the error type of its status."""
    try:
        body = r.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return None
    anthropic = path.startswith("/messages") and r.status_code in ANTHROPIC_TYPES
    if anthropic and (body.get("type") != "error" or error.get("type") != ANTHROPIC_TYPES[r.status_code]):
        return f"(not Anthropic's envelope) {error.get('message')}"
    return error.get("message")


def _expected(auth: str, caller: str) -> tuple[int, str | None] | None:
    """The exact (status, message) for this caller, or None for "what the right key gets"."""
    if auth == "none":
        return None
    if caller in UNAUTHENTICATED:
        return 401, UNAUTHENTICATED[caller]
    if auth == "management" and caller != "management key":
        return 403, MANAGEMENT_ONLY
    if auth == "inference" and caller == "management key":
        return 403, INFERENCE_ONLY
    return None


def _check_row(c: Callers, root: str, path: str, method: str, auth: str, documented: frozenset[int]) -> None:
    wrong: list[str] = []
    for caller in CALLERS:
        if caller in c.skipped:
            continue
        r = _call(c, root, path, method, c.keys[caller])
        message = _message(r, path)
        got = f"{r.status_code} {message!r}"
        if (path, method, caller) in EXCEPTIONS:
            status, _why = EXCEPTIONS[(path, method, caller)]
            if r.status_code != status:
                wrong.append(f"{caller}: {got}, expected {status} (exception)")
            continue
        expected = _expected(auth, caller)
        if expected is not None:
            if (r.status_code, message) != expected:
                wrong.append(f"{caller}: {got}, expected {expected[0]} {expected[1]!r}")
        elif r.status_code in (401, 403) or r.status_code >= 500 or r.status_code not in documented:
            wrong.append(f"{caller}: {got}, expected success or a documented refusal {sorted(documented)}")
    assert not wrong, f"{method.upper()} {root}{path} (auth {auth}):\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize(("path", "method"), _api_rows(), ids=lambda v: v)
def test_api_route(callers: Callers, path: str, method: str) -> None:
    op = _operations().get((path, method))
    assert op is not None, f"{method.upper()} {path} is served without an Operation (its auth) in OPERATIONS"
    documented = frozenset({op.status, *op.errors, *(op.other_errors or {})})
    _check_row(callers, "/api/v1", path, method, op.auth, documented)
    # The same routes under the other root (/v1): keys are checked there alike.
    for root in (r for r in API_ROOTS if r != "/api/v1"):
        r = _call(callers, root, path, method, None)
        if op.auth != "none":
            assert (r.status_code, _message(r, path)) == (401, UNAUTHENTICATED["no key"]), (root, r.text)
        else:
            assert r.status_code in documented and r.status_code not in (401, 403), (root, r.text)
    if callers.skipped:
        pytest.skip("; ".join(f"column {k!r} skipped: {v}" for k, v in callers.skipped.items()))


@pytest.mark.parametrize(("path", "method"), sorted(ROOT), ids=lambda v: v)
def test_root_route(callers: Callers, path: str, method: str) -> None:
    auth, documented = ROOT[(path, method)]
    _check_row(callers, "", path, method, auth, documented)


def test_every_root_route_has_a_row(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"))
    served = {
        (route.path_format, method.lower())
        for route in app.starlette.routes
        if isinstance(route, Route) and not isinstance(route, Mount)
        for method in (route.methods or ())
        if method != "HEAD"
    }
    # The dashboard's pages take a signed session cookie, never a key header: tests/test_dashboard.py.
    pages = {(r.path, m.lower()) for r in dashboard.routes() if isinstance(r, Route) for m in r.methods or ()}
    assert served - pages == set(ROOT), "a route at the root without a row in ROOT (or a row for none)"


def test_another_workspace_sees_none_of_this_ones_objects(callers: Callers) -> None:
    """The "other workspace's key" column above checks the kind of key; here what it may see: objects of
    the default workspace (a preset, a generation) are not found with a key of another workspace."""
    if reason := callers.skipped.get(OTHER):
        pytest.skip(reason)
    http, keys = callers.http, callers.keys
    mine = {"Authorization": f"Bearer {keys['inference key']}"}
    theirs = {"Authorization": f"Bearer {keys[OTHER]}"}
    body = {"model": "test/alpha", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    made = http.post(
        "/api/v1/presets/matrix-preset/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {keys['management key']}"},
    )
    assert made.status_code in (200, 201), made.text
    assert http.get("/api/v1/presets/matrix-preset", headers=mine).status_code == 200
    assert http.get("/api/v1/presets/matrix-preset", headers=theirs).status_code == 404
    assert http.get("/api/v1/presets/matrix-preset/versions", headers=theirs).status_code == 404
    listed = http.get("/api/v1/presets", headers=theirs)
    assert listed.status_code == 200 and "matrix-preset" not in listed.text
    chat = http.post("/api/v1/chat/completions", json=body, headers=mine)
    assert chat.status_code == 200, chat.text
    generation = chat.json()["id"]
    assert http.get("/api/v1/generation", params={"id": generation}, headers=mine).status_code == 200
    assert http.get("/api/v1/generation", params={"id": generation}, headers=theirs).status_code == 404
