"""The dashboard's forms (POST): signing in and out, keys, and the playground's key."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from omnirouter.dashboard import session
from omnirouter.dashboard.pages import keys_page, playground_page
from omnirouter.dashboard.web import HEADERS, Viewer, action, redirect, render, signing_secret, viewer_of
from omnirouter.errors import GatewayError
from omnirouter.governance import key_service as ks
from omnirouter.governance.keys import key_hash
from omnirouter.state import state
from omnirouter.store import repo

LOGIN_FORM_MAX_FIELDS = 5
PLAYGROUND_KEY_NAME = "Playground"


def _next(value: str | None) -> str:
    """Where to go after signing in: a path on this server only (never another site)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


async def login_form(request: Request) -> Response:
    if await viewer_of(request) is not None:
        return redirect(_next(request.query_params.get("next")))
    return render(request, "login.html", None, next=_next(request.query_params.get("next")))


async def login(request: Request) -> Response:
    if not session.same_origin(request):
        return render(request, "login.html", None, status=403, error="Cross-origin sign-in refused", next="/")
    form = await request.form(max_files=0, max_fields=LOGIN_FORM_MAX_FIELDS)
    target = _next(str(form.get("next") or ""))
    token = str(form.get("key") or "").strip()
    st = state(request)
    record = st.keys.by_hash.get(key_hash(token)) if token else None
    if record is None and token:
        async with st.db.engine.connect() as conn:
            record = await repo.get_key(conn, key_hash(token))
    try:
        record = st.keys.admit(record)
    except GatewayError as exc:
        message = "Enter an API key" if not token else f"Cannot sign in: {exc.message}"
        return render(request, "login.html", None, status=401, error=message, next=target)
    lifetime = st.settings.dashboard_session_hours * 3600
    signed = session.issue(await signing_secret(st), record, lifetime)
    response = redirect(target)
    session.set_cookie(response, request, signed)
    return response


async def logout(request: Request) -> Response:
    if not session.same_origin(request):
        return Response("Cross-origin form submission refused", status_code=403, headers=HEADERS)
    response = redirect("/login")
    session.clear_cookie(response)
    return response


def _limit(form: Any) -> Decimal | None:
    raw = str(form.get("limit") or "").strip()
    if not raw:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise GatewayError(400, f"limit must be a number of USD, got {raw!r}") from None


def _struct(kind: type[msgspec.Struct], fields: dict[str, Any]) -> Any:
    try:
        return msgspec.convert(fields, kind)
    except msgspec.ValidationError as exc:
        raise GatewayError(400, f"Invalid request: {exc}") from None


async def _key_change(request: Request, viewer: Viewer, work: Any) -> Response:
    """Run a management change; a refusal is shown on the keys page rather than as JSON."""
    if not viewer.is_management:
        return await keys_page(request, viewer, status=403, error="Only a management key can manage keys")
    try:
        return await work()
    except GatewayError as exc:
        return await keys_page(request, viewer, status=exc.status, error=exc.message)


@action
async def create_key(request: Request, viewer: Viewer, form: Any) -> Response:
    async def work() -> Response:
        st = state(request)
        body = _struct(
            ks.CreateKey,
            {
                "name": str(form.get("name") or "").strip(),
                "limit": _limit(form),
                "limit_reset": str(form.get("limit_reset") or "") or None,
            },
        )
        record, secret = await ks.create(st.db, body, creator_user_id=viewer.key.creator_user_id, keys=st.keys)
        return await keys_page(request, viewer, status=201, new_secret=secret, new_name=record.name)

    return await _key_change(request, viewer, work)


@action
async def update_key(request: Request, viewer: Viewer, form: Any) -> Response:
    async def work() -> Response:
        st = state(request)
        record = await ks.get(st.db, request.path_params["hash"])
        change: dict[str, Any] = {}
        match form.get("op"):
            case "disable":
                change["disabled"] = True
            case "enable":
                change["disabled"] = False
            case "limit":
                change["limit"] = _limit(form)
                change["limit_reset"] = str(form.get("limit_reset") or "") or None
            case other:
                raise GatewayError(400, f"Unknown change {other!r}")
        await ks.update(st.db, record, _struct(ks.UpdateKey, change), keys=st.keys)
        return redirect("/keys")

    return await _key_change(request, viewer, work)


@action
async def rotate_key(request: Request, viewer: Viewer, form: Any) -> Response:
    """A new secret for the same key settings: a new key is made with them and the old one disabled
    (kept, so that its generations and spend still show under its name)."""

    async def work() -> Response:
        st = state(request)
        old = await ks.get(st.db, request.path_params["hash"])
        body = ks.CreateKey(
            name=old.name,
            limit=old.limit,
            limit_reset=old.limit_reset,  # type: ignore[arg-type]
            include_byok_in_limit=old.include_byok_in_limit,
            expires_at=old.expires_at if old.expires_at and not old.expired(datetime.now(UTC)) else None,
            workspace_id=old.workspace_id,
            rpm_limit=old.rpm_limit,
            tpm_limit=old.tpm_limit,
            response_cache_ttl_seconds=old.response_cache_ttl_seconds,
        )
        record, secret = await ks.create(st.db, body, creator_user_id=old.creator_user_id, keys=st.keys)
        await ks.update(st.db, old, ks.UpdateKey(disabled=True), keys=st.keys)
        return await keys_page(request, viewer, status=201, new_secret=secret, new_name=record.name, rotated=old.label)

    return await _key_change(request, viewer, work)


@action
async def playground_key(request: Request, viewer: Viewer, form: Any) -> Response:
    """A management viewer asks, explicitly, for an inference key to chat with in the playground."""
    if not viewer.is_management:
        return playground_page(request, viewer, status=403)
    st = state(request)
    _, secret = await ks.create(
        st.db, ks.CreateKey(name=PLAYGROUND_KEY_NAME), creator_user_id=viewer.key.creator_user_id, keys=st.keys
    )
    return playground_page(request, viewer, status=201, new_secret=secret)
