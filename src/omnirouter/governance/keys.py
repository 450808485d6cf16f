"""API keys: minted here, stored only as their SHA-256, authenticated from memory."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from omnirouter.api.errors import ApiError

KEY_PREFIX = "sk-or-v1-"
LIMIT_RESETS = ("daily", "weekly", "monthly")


def new_key() -> str:
    return KEY_PREFIX + secrets.token_hex(32)


def is_well_formed(key: str) -> bool:
    body = key[len(KEY_PREFIX) :]
    return key.startswith(KEY_PREFIX) and len(body) == 64 and all(c in "0123456789abcdef" for c in body)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def mask(key: str) -> str:
    """The key's public label: prefix, first 3 and last 3 characters of its secret part."""
    body = key[len(KEY_PREFIX) :]
    return f"{KEY_PREFIX}{body[:3]}...{body[-3:]}"


@dataclass
class KeyRecord:
    hash: str
    name: str
    label: str
    created_at: datetime
    is_management: bool = False
    disabled: bool = False
    limit: Decimal | None = None
    limit_reset: str | None = None
    include_byok_in_limit: bool = False
    expires_at: datetime | None = None
    workspace_id: str | None = None
    creator_user_id: str | None = None
    updated_at: datetime | None = None

    @property
    def scope(self) -> str:
        """The ledger scope this key's spend is counted under."""
        return "key:" + self.hash

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


@dataclass
class KeyStore:
    """Every live key by hash. The request path reads only this dict; a background task refreshes it."""

    by_hash: dict[str, KeyRecord] = field(default_factory=dict)

    def replace_all(self, records: list[KeyRecord]) -> None:
        self.by_hash = {r.hash: r for r in records}

    def put(self, record: KeyRecord) -> None:
        self.by_hash[record.hash] = record

    def drop(self, hash_: str) -> None:
        self.by_hash.pop(hash_, None)

    @staticmethod
    def admit(record: KeyRecord | None) -> KeyRecord:
        """The caller's key if it may be used now, else a 401 saying why not."""
        if record is None:
            raise ApiError(401, "Invalid API key")
        if record.disabled:
            raise ApiError(401, "API key is disabled")
        if record.expires_at is not None and record.expired(datetime.now(UTC)):
            raise ApiError(401, "API key has expired")
        return record


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
