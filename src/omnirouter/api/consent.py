"""The OAuth consent page, GET/POST /auth at the root (where OpenRouter's is: an app built for
https://openrouter.ai/auth?callback_url=... works with this server's origin instead).

Server-rendered HTML, no script. The operator approves by typing the management key into the form:
the POST itself carries that key, so there is no session or cookie for another site to ride on (no
CSRF), and a page that frames or forges the form learns nothing without the key. The key goes
nowhere else: not in a URL, not in a log, not back into the page. The redirect carries only the code.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.errors import GatewayError
from omnirouter.governance import oauth
from omnirouter.state import state

FORM_MAX_BYTES = 16_384
# What the page carries from the app's link to the form, and into the code.
FIELDS = ("callback_url", "code_challenge", "code_challenge_method", "limit", "usage_limit_type", "expires_at")
FIELDS += ("key_label", "workspace_id")
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:32rem;margin:3rem auto;padding:0 1rem;color:#222}"
    "code{background:#f3f3f3;padding:0 .2rem}.error{color:#a00}input[type=password]{width:100%;padding:.4rem}"
    "button{margin-top:1rem;padding:.5rem 1.2rem}dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem 1rem}"
)


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>"
    )
    return HTMLResponse(text, status_code=status, headers=HEADERS)


def _problem(message: str, status: int = 400) -> HTMLResponse:
    return _page("Cannot authorize", f"<h1>Cannot authorize</h1><p class=error>{html.escape(message)}</p>", status)


def _request_of(fields: dict[str, str]) -> oauth.CreateCode:
    """The code request the link asks for (strings from a query or a form), validated as the API's."""
    values: dict[str, Any] = {k: v for k, v in fields.items() if k in FIELDS and v != ""}
    try:
        return msgspec.convert(values, oauth.CreateCode, strict=False)
    except msgspec.ValidationError as exc:
        if "regex" in str(exc) and "$.callback_url" in str(exc):  # a person reads this: no regex
            raise GatewayError(400, "callback_url must be an absolute http(s) URL without a fragment") from None
        raise GatewayError(400, f"Invalid authorization request: {exc}") from None


def _consent(
    request_: oauth.CreateCode, fields: dict[str, str], error: str | None = None, status: int = 200
) -> Response:
    e = html.escape
    details = [("Application", f"<b>{e(oauth.app_name(request_.callback_url))}</b>")]
    details.append(("Returns to", f"<code>{e(request_.callback_url)}</code>"))
    if request_.limit is not None:
        reset = f" ({e(request_.usage_limit_type)})" if request_.usage_limit_type else ""
        details.append(("Credit limit", f"${e(str(request_.limit))}{reset}"))
    if request_.expires_at is not None:
        details.append(("Key expires", e(request_.expires_at.isoformat())))
    hidden = "".join(
        f'<input type=hidden name="{name}" value="{e(fields[name])}">' for name in FIELDS if fields.get(name)
    )
    body = (
        f"<h1>Authorize {e(oauth.app_name(request_.callback_url))}</h1>"
        "<p>This application asks for an API key of this gateway, to make requests on your behalf.</p>"
        "<dl>"
        + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in details)
        + "</dl>"
        + (f"<p class=error>{e(error)}</p>" if error else "")
        + '<form method=post action="auth" autocomplete=off>'  # relative: works under a path prefix
        + hidden
        + "<label for=mk>Management key, to approve</label>"
        "<input id=mk type=password name=management_key required autocomplete=off>"
        "<button type=submit>Authorize</button></form>"
        "<p>Close this page to deny.</p>"
    )
    return _page("Authorize application", body, status)


async def show(request: Request) -> Response:
    fields = dict(request.query_params)
    try:
        request_ = _request_of(fields)
    except GatewayError as exc:
        return _problem(exc.message)
    return _consent(request_, fields)


async def approve(request: Request) -> Response:
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > FORM_MAX_BYTES:
            return _problem("Form too large", 413)
    fields = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    secret = fields.pop("management_key", "").strip()
    try:
        request_ = _request_of(fields)
    except GatewayError as exc:
        return _problem(exc.message)
    st = state(request)
    try:
        key = await auth.key_of(st, {"authorization": f"Bearer {secret}"} if secret else {})
    except GatewayError:
        return _consent(request_, fields, "That is not a valid management key.", 401)
    if not key.is_management:
        return _consent(request_, fields, "That is an API key: approving takes a management key.", 403)
    try:
        issued = await oauth.create_code(st.db, request_, creator_user_id=key.creator_user_id)
    except GatewayError as exc:
        return _problem(exc.message, exc.status)
    # 303: the browser follows with a GET, whatever the form's method.
    return RedirectResponse(oauth.redirect_url(issued.callback_url, issued.code), status_code=303, headers=HEADERS)


routes = [
    Route("/auth", show, methods=["GET"]),
    Route("/auth", approve, methods=["POST"]),
]
