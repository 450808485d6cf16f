"""Generation ids: `gen-<unix time>-<20 base62 characters>`, like OpenRouter's."""

from __future__ import annotations

import secrets
import time

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def generation_id() -> str:
    n = secrets.randbits(119)
    out = []
    for _ in range(20):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return f"gen-{int(time.time())}-{''.join(out)}"
