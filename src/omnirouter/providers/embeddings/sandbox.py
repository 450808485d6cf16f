"""The sandbox's embeddings (`sandbox/embed`, provider `sandbox`): a hashed bag of words
(testing/similarity.py), so the cosine similarity of two inputs grows with the words they share and
retrieval code can be tested offline. No network; `dimensions` as asked (256 by default).

Tokens are counted deterministically: one per word (at least one per input), one per token id of a
token array, and a fixed IMAGE_TOKENS per non-text content part. A token array embeds as the words
`t<id>`; a content part other than text as a word naming its data, so equal images embed alike."""

from __future__ import annotations

import hashlib
from typing import Any

from omnirouter.providers.embeddings.common import Embeddings
from omnirouter.providers.embeddings.request import items
from omnirouter.testing.similarity import vector, words

DEFAULT_DIMENSIONS = 256
IMAGE_TOKENS = 85  # a non-text part (image, audio, video, file)


def _part_word(part: dict[str, Any]) -> str:
    digest = hashlib.blake2b(repr(sorted(part.items())).encode(), digest_size=6).hexdigest()
    return f"{part['type']}{digest}"


def embed_one(kind: str, item: Any, dims: int) -> tuple[list[float], int]:
    """The vector of one input and the tokens it counts."""
    if kind == "tokens":
        return vector(" ".join(f"t{t}" for t in item), dims), max(1, len(item))
    if kind == "multimodal":
        texts = [p["text"] for p in item if p["type"] == "text"]
        others = [p for p in item if p["type"] != "text"]
        text = " ".join(texts + [_part_word(p) for p in others])
        return vector(text, dims), len(words(" ".join(texts))) + IMAGE_TOKENS * len(others) or 1
    return vector(item, dims), max(1, len(words(item)))


async def embed(upstream: Any, request: dict[str, Any]) -> Embeddings:
    dims = request.get("dimensions") or DEFAULT_DIMENSIONS
    kind = request["kind"]
    vectors, tokens = [], 0
    for item in items(request):
        v, n = embed_one(kind, item, dims)
        vectors.append(v)
        tokens += n
    return Embeddings(vectors, tokens)
