"""Generation ids: `gen-<unix time>-<20 base62 characters>`, like OpenRouter's."""

from __future__ import annotations

import os
import random
import time

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


# Ids only need to be unique and hard to guess, and reading one needs the key that made it; a PRNG
# seeded from the OS costs far less per request than a system call for every id.
_rng = random.Random(os.urandom(32))


def generation_id() -> str:
    n = _rng.getrandbits(119)
    out = []
    for _ in range(20):
        n, r = divmod(n, 62)
        out.append(_ALPHABET[r])
    return f"gen-{int(time.time())}-{''.join(out)}"
