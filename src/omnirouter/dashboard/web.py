"""The dashboard's plumbing: templates, who is viewing, and the headers every page carries."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from omnirouter.dashboard import secret, session
from omnirouter.errors import GatewayError
from omnirouter.governance.keys import KeyRecord
from omnirouter.jsonio import money
from omnirouter.state import AppState, state
from omnirouter.store import repo

# Everything from this origin, nothing inline that runs: the pages' scripts are files in static/.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}


def _usd(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return "$" + format(money(value), "f")


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _per_million(value: Decimal | None) -> str:
    if value is None:
        return "—"
    return "$" + format(money(value * 1_000_000), "f")


templates = Environment(
    loader=PackageLoader("omnirouter.dashboard", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters.update(usd=_usd, when=_when, per_million=_per_million)


@dataclass
class Viewer:
    """Who is signed in: their key, and the token their forms carry."""

    key: KeyRecord
    csrf: str

    @property
    def is_management(self) -> bool:
        return self.key.is_management

    @property
    def own_key(self) -> str | None:
        """The key hash every query is limited to: None for a management key, which sees all."""
        return None if self.key.is_management else self.key.hash


def render(request: Request, name: str, viewer: Viewer | None, status: int = 200, **context: Any) -> HTMLResponse:
    text = templates.get_template(name).render(request=request, viewer=viewer, path=request.url.path, **context)
    return HTMLResponse(text, status_code=status, headers=HEADERS)


async def signing_secret(st: AppState) -> bytes:
    return await secret.session_secret(st.settings, st.db)


async def viewer_of(request: Request) -> Viewer | None:
    """The signed-in viewer, or None. A session whose key has since been disabled, deleted or has
    expired is no session."""
    st = state(request)
    key_secret = await signing_secret(st)
    found = session.read(key_secret, request.cookies.get(session.COOKIE))
    if found is None:
        return None
    record = st.keys.by_hash.get(found.key_hash)
    if record is None:  # made on another worker since this one synced
        async with st.db.engine.connect() as conn:
            record = await repo.get_key(conn, found.key_hash)
    try:
        record = st.keys.admit(record)
    except GatewayError:
        return None
    return Viewer(record, session.csrf_token(key_secret, found))


Handler = Callable[[Request, Viewer], Awaitable[Response]]


def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A page for signed-in viewers: others are sent to the sign-in form, and back here after."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        viewer = await viewer_of(request)
        if viewer is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303, headers=HEADERS)
        try:
            return await handler(request, viewer)
        except GatewayError as exc:
            return render(request, "error.html", viewer, status=exc.status, message=exc.message)

    return wrapped


def action(handler: Callable[[Request, Viewer, Any], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """A form's POST: from this origin, by a signed-in viewer, with the session's CSRF token."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> Response:
        if not session.same_origin(request):
            return HTMLResponse("Cross-origin form submission refused", status_code=403, headers=HEADERS)
        viewer = await viewer_of(request)
        if viewer is None:
            return RedirectResponse("/login", status_code=303, headers=HEADERS)
        form = await request.form(max_files=0, max_fields=50)
        if not session.csrf_ok(await signing_secret(state(request)), _session(request), form.get("csrf")):
            return HTMLResponse("Invalid or missing CSRF token: reload the page and try again", 403, headers=HEADERS)
        return await handler(request, viewer, form)

    return wrapped


def _session(request: Request) -> session.Session:
    # viewer_of has just read it; reading the token again costs less than threading it through.
    token = request.cookies.get(session.COOKIE, "")
    parts = token.split(".")
    return session.Session(parts[1], int(parts[2]), token)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303, headers=HEADERS)
