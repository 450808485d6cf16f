"""A deterministic text embedding for offline tests: a hashed bag of words, scaled to unit length, so
the cosine similarity of two texts (their vectors' dot product) grows with the words they share. The
sandbox's embeddings and rerank both use it, so retrieval code can be tested without a model."""

from __future__ import annotations

import hashlib
import math
import re

_WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def vector(text: str, dims: int = 256) -> list[float]:
    """Each word adds ±1 to two of `dims` coordinates chosen by its hash; unit length (all zeros for a
    text without words)."""
    v = [0.0] * dims
    for word in words(text):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        for i in (0, 4):
            slot = int.from_bytes(digest[i : i + 3], "little")
            v[slot % dims] += 1.0 if digest[i + 3] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in v))
    return [x / norm for x in v] if norm else v


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))
