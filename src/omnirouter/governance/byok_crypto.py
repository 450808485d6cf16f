"""Provider keys at rest: Fernet (AES-128-CBC with an HMAC-SHA256, `cryptography`'s) under the
operator's keys from OMNIROUTER_ENCRYPTION_KEY.

The setting holds one or more Fernet keys, comma-separated, newest first: a secret is encrypted with
the first and decrypted with whichever matches, so a key can be rotated without downtime (add the new
one in front, run `omnirouter byok rotate`, then drop the old one). Nothing here ever puts a secret or
an encryption key in an exception message or a log line.
"""

from __future__ import annotations

import weakref
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import Connection, Engine

from omnirouter.errors import GatewayError

SETTING = "OMNIROUTER_ENCRYPTION_KEY"
NOT_CONFIGURED = (
    f"BYOK needs {SETTING}: set it to a Fernet key (make one with `omnirouter byok new-encryption-key`) "
    "so that provider keys can be stored encrypted"
)


class Undecryptable(Exception):
    """A stored secret none of the configured keys opens (encrypted under a key since removed)."""


class Keyring:
    """The operator's encryption keys, newest first."""

    def __init__(self, keys: list[bytes]) -> None:
        self._fernet = MultiFernet([Fernet(k) for k in keys])
        self.count = len(keys)

    @classmethod
    def from_setting(cls, value: str | None) -> Keyring | None:
        """The keyring of the setting's value (None: not set). A malformed key is a ValueError that
        says which one (by position), never what it was."""
        if not value or not value.strip():
            return None
        keys = []
        for n, part in enumerate((p.strip() for p in value.split(",")), 1):
            if not part:
                continue
            try:
                Fernet(part.encode())
            except (ValueError, TypeError):
                raise ValueError(
                    f"{SETTING}: key #{n} is not a Fernet key (32 url-safe base64-encoded bytes, as "
                    "`omnirouter byok new-encryption-key` prints)"
                ) from None
            keys.append(part.encode())
        return cls(keys) if keys else None

    def encrypt(self, secret: str) -> str:
        return self._fernet.encrypt(secret.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, ValueError, UnicodeError):
            raise Undecryptable("no configured encryption key opens this secret") from None

    def rotate(self, token: str) -> str:
        """The same secret encrypted under the newest key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError):
            raise Undecryptable("no configured encryption key opens this secret") from None

    def __repr__(self) -> str:  # never the keys
        return f"Keyring({self.count} key(s))"


def keyring_of(settings: Any) -> Keyring | None:
    """The keyring of OMNIROUTER_ENCRYPTION_KEY (settings.py), None when it is not set."""
    value = settings.encryption_key
    return Keyring.from_setting(value.get_secret_value() if value is not None else None)


def new_key() -> str:
    return Fernet.generate_key().decode("ascii")


def required(keyring: Keyring | None) -> Keyring:
    """The keyring a BYOK write needs, or the 400 that says how to configure one."""
    if keyring is None:
        raise GatewayError(400, NOT_CONFIGURED)
    return keyring


def label(secret: str) -> str:
    """The masked snippet shown instead of the secret: its first 3 and last 4 characters, only when
    the secret is long enough that they leave most of it hidden."""
    if len(secret) >= 16:
        return f"{secret[:3]}...{secret[-4:]}"
    return "..." + secret[-2:] if len(secret) >= 10 else "***"


# The keyring of each database's engines, for the governance loader (governance/byok_store.py), which
# gets only a connection: several gateways may share one process (tests), each with its own keyring.
_BOUND: weakref.WeakKeyDictionary[Engine, Keyring | None] = weakref.WeakKeyDictionary()


def bind(db: Any, keyring: Keyring | None) -> None:
    """Make `keyring` the one used to load BYOK keys from `db` (store.db.Database)."""
    _BOUND[db.engine.sync_engine] = keyring
    if getattr(db, "sync_engine", None) is not None:
        _BOUND[db.sync_engine] = keyring


def bound(conn: Connection) -> Keyring | None:
    return _BOUND.get(conn.engine)
