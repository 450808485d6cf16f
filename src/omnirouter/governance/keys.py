"""API keys: minted here, stored only as their SHA-256, authenticated from memory."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from omnirouter.errors import GatewayError

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
    external_user: str | None = None  # a partner's end-user id, set on create (`external.user`)
    last_used_at: datetime | None = None  # as last written by the recorder; see KeyStore.used
    rpm_limit: int | None = None  # requests per minute (accounting/ratelimit.py); None: unlimited
    tpm_limit: int | None = None  # prompt + completion tokens per minute; None: unlimited
    response_cache_ttl_seconds: int | None = None  # every request cached this long (cache/); None: when asked

    @property
    def scope(self) -> str:
        """The ledger scope this key's spend is counted under."""
        return "key:" + self.hash

    @property
    def free_scope(self) -> str:
        """The ledger scope counting this key's requests served by free endpoints (no spend)."""
        return "free:" + self.hash

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


class UnknownKeys:
    """A bounded LRU of hashes the database did not have, each for `ttl` seconds: brute force with one
    key, or a client retrying a revoked one, costs one lookup per ttl instead of one per request. A key
    created on this worker leaves it at once (KeyStore.put); one created on another worker reaches this
    one through the key sync within sync_interval, the ttl's default."""

    def __init__(self, ttl: float = 1.0, size: int = 4096) -> None:
        self.ttl = ttl
        self.size = size
        self._until: OrderedDict[str, float] = OrderedDict()

    def __contains__(self, hash_: str) -> bool:
        until = self._until.get(hash_)
        if until is None:
            return False
        if until > time.monotonic():
            return True
        del self._until[hash_]
        return False

    def add(self, hash_: str) -> None:
        self._until[hash_] = time.monotonic() + self.ttl
        self._until.move_to_end(hash_)
        if len(self._until) > self.size:
            self._until.popitem(last=False)

    def forget(self, hash_: str) -> None:
        self._until.pop(hash_, None)

    def __len__(self) -> int:
        return len(self._until)


@dataclass
class KeyStore:
    """Every live key by hash. The request path reads only this dict; a background task refreshes it."""

    by_hash: dict[str, KeyRecord] = field(default_factory=dict)
    # hash -> epoch seconds of its last inference request, not yet written (the recorder takes them),
    # and those being written right now.
    used: dict[str, float] = field(default_factory=dict)
    writing: dict[str, float] = field(default_factory=dict)

    def touch(self, record: KeyRecord) -> None:
        """The key authenticated an inference request: no I/O here, the recorder persists it."""
        self.used[record.hash] = time.time()

    def last_used_at(self, record: KeyRecord) -> datetime | None:
        """The latest of what the database held when read and what this worker has not written yet."""
        pending = max(self.used.get(record.hash, 0.0), self.writing.get(record.hash, 0.0))
        if not pending:
            return record.last_used_at
        at = datetime.fromtimestamp(pending, UTC)
        return at if record.last_used_at is None or at > record.last_used_at else record.last_used_at

    def take_used(self) -> dict[str, datetime]:
        """Hand the unwritten uses to the recorder; they count as `writing` until it reports back."""
        self.writing, self.used = self.used, {}
        return {h: datetime.fromtimestamp(t, UTC) for h, t in self.writing.items()}

    def used_written(self) -> None:
        for hash_, at in self.writing.items():
            record = self.by_hash.get(hash_)
            when = datetime.fromtimestamp(at, UTC)
            if record is not None and (record.last_used_at is None or when > record.last_used_at):
                record.last_used_at = when
        self.writing = {}

    def used_failed(self) -> None:
        """The write failed: keep the times for the next flush, unless a later use replaced them."""
        for hash_, at in self.writing.items():
            self.used.setdefault(hash_, at)
        self.writing = {}

    # Well-formed keys the database did not have, so that repeating one costs no query.
    unknown: UnknownKeys = field(default_factory=lambda: UnknownKeys())

    # Keys this worker put (None: dropped) while a sync read every key (store/writer.py): the read may
    # predate them, so they are laid over it.
    _edited: dict[str, KeyRecord | None] | None = None

    def reading(self) -> None:
        """A read of every key begins: note this worker's own puts and drops until `replace_all`."""
        self._edited = {}

    def replace_all(self, records: list[KeyRecord]) -> None:
        by_hash = {r.hash: r for r in records}
        for hash_, record in (self._edited or {}).items():
            if record is None:
                by_hash.pop(hash_, None)
            else:
                by_hash[hash_] = record
        self.by_hash = by_hash
        self._edited = None

    def put(self, record: KeyRecord) -> None:
        self.by_hash[record.hash] = record
        self.unknown.forget(record.hash)
        if self._edited is not None:
            self._edited[record.hash] = record

    def drop(self, hash_: str) -> None:
        self.by_hash.pop(hash_, None)
        if self._edited is not None:
            self._edited[hash_] = None

    @staticmethod
    def admit(record: KeyRecord | None) -> KeyRecord:
        """The caller's key if it may be used now, else a 401 saying why not."""
        if record is None:
            raise GatewayError(401, "Invalid API key")
        if record.disabled:
            raise GatewayError(401, "API key is disabled")
        if record.expires_at is not None and record.expired(datetime.now(UTC)):
            raise GatewayError(401, "API key has expired")
        return record


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
