"""The dashboard's sign-in: a signed session cookie and the CSRF token of its forms.

The key itself never leaves the sign-in form: the cookie holds the key's hash and an expiry, signed
with HMAC-SHA256 under a secret every worker and instance shares (dashboard/secret.py). It is
HttpOnly (no script reads it) and SameSite=Strict (no other site's page sends it). Every request
re-checks the key, so disabling, deleting or expiring it ends its sessions at once.

Forms carry a token derived from the session (HMAC of the session token), and POSTs from another
origin are refused outright (Origin / Sec-Fetch-Site), which also covers the sign-in form itself.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from omnirouter.governance.keys import KeyRecord

COOKIE = "omnirouter_session"
VERSION = "v1"


@dataclass(frozen=True)
class Session:
    key_hash: str
    expires: int  # epoch seconds
    token: str


def _sign(secret: bytes, message: str) -> str:
    return hmac.new(secret, message.encode(), hashlib.sha256).hexdigest()


def issue(secret: bytes, key: KeyRecord, lifetime: float, now: float | None = None) -> Session:
    expires = int((time.time() if now is None else now) + lifetime)
    body = f"{VERSION}.{key.hash}.{expires}"
    return Session(key.hash, expires, f"{body}.{_sign(secret, body)}")


def read(secret: bytes, token: str | None, now: float | None = None) -> Session | None:
    """The session a cookie's token proves, or None (absent, forged, malformed or expired)."""
    if not token or len(token) > 256:
        return None
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != VERSION or not parts[2].isdigit():
        return None
    body = ".".join(parts[:3])
    if not hmac.compare_digest(parts[3], _sign(secret, body)):
        return None
    expires = int(parts[2])
    if expires <= (time.time() if now is None else now):
        return None
    return Session(parts[1], expires, token)


def csrf_token(secret: bytes, session: Session) -> str:
    return _sign(secret, "csrf." + session.token)


def csrf_ok(secret: bytes, session: Session, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(str(sent), csrf_token(secret, session))


def same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from one of this server's own pages. Browsers send
    Sec-Fetch-Site and Origin with every POST; a request with neither is not a browser's form."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        return origin.split("://", 1)[-1] == request.headers.get("host", "")
    return site is not None


def set_cookie(response: Response, request: Request, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        session.token,
        max_age=max(0, session.expires - int(time.time())),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
