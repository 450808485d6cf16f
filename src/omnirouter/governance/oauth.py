"""OAuth PKCE: an app gets an inference key for its user without ever seeing a management key.

The app sends the browser to the consent page (/auth, api/consent.py) with its callback URL and a code
challenge; the operator approves with the management key; the browser goes back to
`callback_url?code=...`; the app exchanges the code and its code verifier (POST /auth/keys) for a new
key, once. POST /auth/keys/code creates a code directly (management key). The code is stored only as
its SHA-256, lives CODE_TTL, and is claimed by a conditional UPDATE (used_at IS NULL), so two
concurrent exchanges of one code mint at most one key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
from msgspec import Meta
from sqlalchemy import select, update

from omnirouter.errors import GatewayError
from omnirouter.governance import key_service as ks
from omnirouter.governance.keys import KeyRecord, KeyStore
from omnirouter.store.db import Database
from omnirouter.store.tables import oauth_codes

CODE_TTL = timedelta(minutes=5)  # from approval to exchange: a redirect and one request
CODE_KEPT = timedelta(days=7)  # then a code's row (which key it gave) is deleted, when a new code is made
CODE_PREFIX = "auth_code_"
ChallengeMethod = Literal["S256", "plain"]
LOOPBACK_NAMES = ("localhost",)
S256_CHALLENGE = re.compile("[A-Za-z0-9_-]{43}")  # base64url of a SHA-256, unpadded (RFC 7636 §4.2)
PLAIN_CHALLENGE = re.compile("[A-Za-z0-9._~-]{1,128}")  # RFC 7636's unreserved characters

CallbackUrl = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=2048,
        pattern="^[hH][tT][tT][pP][sS]?://[^#\\x00-\\x20\\x7f]+$",  # absolute http(s), no fragment or spaces
        extra_json_schema={"format": "uri"},
        description="Where the browser returns with ?code=...: https, or http on localhost/127.0.0.1/[::1]",
    ),
]
# RFC 7636's characters; an S256 challenge is moreover 43 of them (checked in CreateCode).
Challenge = Annotated[str, Meta(pattern="^[A-Za-z0-9._~-]{1,128}$", description="PKCE code challenge")]
KeyLabel = Annotated[str, Meta(min_length=1, max_length=100, pattern=ks.NO_NUL)]


class CreateCode(msgspec.Struct, kw_only=True):
    """POST /auth/keys/code, and what the consent page's form carries. OpenRouter's spawn_agent and
    spawn_cloud (telemetry) are accepted and ignored, as any unknown field."""

    callback_url: CallbackUrl
    code_challenge: Challenge | None = None
    code_challenge_method: ChallengeMethod | None = None
    limit: ks.Limit | None = None
    usage_limit_type: ks.LimitReset | None = None
    expires_at: ks.UtcTimestamp | None = None
    key_label: Annotated[KeyLabel, Meta(description="The key's name; defaults to the app (callback host)")] | None = (
        None
    )
    workspace_id: ks.ColumnId | None = None

    def __post_init__(self) -> None:
        ks._check_limit(self.limit)
        check_callback_url(self.callback_url)
        if self.code_challenge is None:
            if self.code_challenge_method is not None:
                raise ValueError("code_challenge_method was given without a code_challenge")
            return
        if self.code_challenge_method is None:
            self.code_challenge_method = "plain"  # RFC 7636 §4.3's default
        if self.code_challenge_method == "S256" and not S256_CHALLENGE.fullmatch(self.code_challenge):
            raise ValueError(
                "code_challenge for S256 must be the unpadded base64url SHA-256 of the verifier (43 characters)"
            )
        if self.code_challenge_method == "plain" and not PLAIN_CHALLENGE.fullmatch(self.code_challenge):
            raise ValueError("code_challenge for plain must be 1-128 characters of A-Z a-z 0-9 - . _ ~")


class Exchange(msgspec.Struct, kw_only=True):
    """POST /auth/keys."""

    code: Annotated[str, Meta(min_length=1, max_length=256, description="The code from the redirect")]
    code_verifier: Annotated[str, Meta(min_length=1, max_length=256)] | None = None
    code_challenge_method: ChallengeMethod | None = None


class CodeData(msgspec.Struct):
    id: Annotated[str, Meta(description="The authorization code, for POST /auth/keys")]
    app_id: Annotated[int, Meta(description="The app: a stable number derived from the callback URL's origin")]
    created_at: str


class CodeResponse(msgspec.Struct):
    data: CodeData


class ExchangeResponse(msgspec.Struct):
    key: Annotated[str, Meta(description="The new inference key (shown only this once)")]
    user_id: str | None


def check_callback_url(url: str) -> None:
    """https anywhere; http only back to this machine (local CLI tools), as OpenRouter allows. No
    credentials in the URL (they would make the consent page show a host that is not the real one)
    and no fragment (the code goes in the query)."""
    if any(c <= " " or c == "\x7f" for c in url):  # urlsplit would silently drop some of them
        raise ValueError("callback_url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValueError("callback_url must be a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ValueError("callback_url must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("callback_url must not contain credentials")
    if parts.fragment:
        raise ValueError("callback_url must not contain a fragment")
    if parts.scheme == "http" and not _loopback(host):
        raise ValueError("callback_url must use https (http only for localhost, 127.0.0.1 or [::1])")


def _loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def app_name(callback_url: str) -> str:
    """The app as the consent page names it: its callback's host (and port, when not the default)."""
    return urlsplit(callback_url).netloc


def app_id(callback_url: str) -> int:
    """A stable number for the app (OpenRouter registers apps; here an app is its callback origin)."""
    parts = urlsplit(callback_url)
    origin = f"{parts.scheme}://{parts.netloc}".lower()
    return int.from_bytes(hashlib.sha256(origin.encode()).digest()[:6], "big")  # 48 bits: exact in JSON


def redirect_url(callback_url: str, code: str) -> str:
    """callback_url with ?code=... added to whatever query it already has."""
    parts = urlsplit(callback_url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), ("code", code)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def challenge_of(verifier: str, method: str) -> str:
    if method == "plain":
        return verifier
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)  # SQLite gives naive UTC


@dataclass(frozen=True)
class IssuedCode:
    code: str
    created_at: datetime
    callback_url: str

    def answer(self) -> CodeResponse:
        return CodeResponse(
            CodeData(id=self.code, app_id=app_id(self.callback_url), created_at=ks.iso(self.created_at))
        )


async def create_code(db: Database, body: CreateCode, *, creator_user_id: str | None = None) -> IssuedCode:
    now = datetime.now(UTC)
    if body.expires_at is not None:  # what ks.create would refuse at exchange: refused now, not then
        if body.expires_at.tzinfo is None or body.expires_at.utcoffset() != timedelta(0):
            raise GatewayError(400, "expires_at must be an ISO 8601 timestamp in UTC (ending in Z or +00:00)")
        if body.expires_at <= now:
            raise GatewayError(400, "expires_at must be in the future")
    code = CODE_PREFIX + secrets.token_urlsafe(32)
    async with db.engine.begin() as conn:
        # A workspace that does not exist is refused now, not when the app comes back with the code.
        workspace = await ks._workspace(conn, body.workspace_id) if body.workspace_id is not None else None
        # Codes are made by people approving apps, so few: pruning here keeps the table small.
        await conn.execute(oauth_codes.delete().where(oauth_codes.c.expires_at < now - CODE_KEPT))
        await conn.execute(
            oauth_codes.insert().values(
                code_hash=_code_hash(code),
                callback_url=body.callback_url,
                code_challenge=body.code_challenge,
                code_challenge_method=body.code_challenge_method,
                key_name=body.key_label or app_name(body.callback_url)[:255],  # a key's name fits 255
                key_limit=body.limit,
                key_limit_reset=body.usage_limit_type,
                key_expires_at=body.expires_at,
                workspace_id=workspace,
                creator_user_id=creator_user_id,
                created_at=now,
                expires_at=now + CODE_TTL,
            )
        )
    return IssuedCode(code, now, body.callback_url)


INVALID_CODE = "Invalid or expired code"


def _check_verifier(row: Any, body: Exchange) -> None:
    method, challenge = row.code_challenge_method, row.code_challenge
    if challenge is None:
        return  # created without a challenge: the code alone is the proof, as OpenRouter allows
    if body.code_challenge_method is not None and body.code_challenge_method != method:
        raise GatewayError(400, "Invalid code_challenge_method: the code was created with another one")
    if body.code_verifier is None:
        raise GatewayError(400, "code_verifier is required: the code was created with a code_challenge")
    if not hmac.compare_digest(challenge_of(body.code_verifier, method).encode(), challenge.encode()):
        raise GatewayError(403, "Invalid code_verifier")


async def exchange(db: Database, body: Exchange, *, keys: KeyStore | None = None) -> tuple[KeyRecord, str]:
    """A new inference key for a valid code and verifier; the code is spent. Whatever fails (an unknown,
    used or expired code, a wrong verifier) issues nothing and leaves the code as it was."""
    digest = _code_hash(body.code)
    c = oauth_codes.c
    async with db.engine.connect() as conn:
        row = (await conn.execute(select(oauth_codes).where(c.code_hash == digest))).first()
    now = datetime.now(UTC)
    if row is None or row.used_at is not None or _aware(row.expires_at) <= now:
        raise GatewayError(403, INVALID_CODE)
    _check_verifier(row, body)
    # Claim the code: of two exchanges at once, only one finds it unused.
    async with db.engine.begin() as conn:
        claimed = await conn.execute(
            update(oauth_codes)
            .where(c.code_hash == digest, c.used_at.is_(None), c.expires_at > now)
            .values(used_at=now)
        )
    if claimed.rowcount != 1:
        raise GatewayError(403, INVALID_CODE)
    expires_at = _aware(row.key_expires_at) if row.key_expires_at is not None else None
    request = ks.CreateKey(
        name=row.key_name,
        limit=Decimal(row.key_limit) if row.key_limit is not None else None,
        limit_reset=row.key_limit_reset,
        expires_at=expires_at,
        workspace_id=row.workspace_id,
    )
    try:
        record, secret = await ks.create(db, request, creator_user_id=row.creator_user_id, keys=keys)
    except BaseException:
        # No key: the code is not spent either (the app may try again while it lives).
        async with db.engine.begin() as conn:
            await conn.execute(update(oauth_codes).where(c.code_hash == digest).values(used_at=None))
        raise
    async with db.engine.begin() as conn:
        await conn.execute(update(oauth_codes).where(c.code_hash == digest).values(key_hash=record.hash))
    return record, secret
