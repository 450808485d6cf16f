"""Generation ids: `gen-<unix time>-<20 base62 characters>`, like OpenRouter's."""

from __future__ import annotations

import os
import random
import time

_ALPHABET = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Random bytes to base62 characters by one table lookup each. 256 is not a multiple of 62, so the
# first 8 characters come up 5/256 of the time instead of 4/256: 119 bits of randomness in 20
# characters rather than 119.1, and no per-character arithmetic on the request path.
_TO_BASE62 = bytes(_ALPHABET[i % 62] for i in range(256))

# Ids only need to be unique and hard to guess, and reading one needs the key that made it; a PRNG
# seeded from the OS costs far less per request than a system call for every id.
_rng = random.Random(os.urandom(32))


def generation_id() -> str:
    return f"gen-{int(time.time())}-{_rng.randbytes(20).translate(_TO_BASE62).decode()}"
