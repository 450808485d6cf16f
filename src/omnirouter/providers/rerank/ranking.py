"""What every rerank upstream answers, in one shape: the documents' scores best first and what the
request consumed (search units and tokens), plus the pieces the handlers share to read the answer."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import msgspec

from omnirouter.accounting.units import Units
from omnirouter.providers.answers import body_of, retry_after
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.http1 import Response

# Cohere bills one search unit per query with up to 100 documents (its docs, "Search units").
DOCUMENTS_PER_SEARCH_UNIT = 100
CHARS_PER_TOKEN = 4  # the gateway's estimate where an upstream reports no tokens (pipeline/call.py)


@dataclass(frozen=True)
class Ranking:
    """Scores as (document index, relevance score), best first; what was consumed; the upstream's id."""

    results: list[tuple[int, float]]
    search_units: int
    total_tokens: int
    upstream_id: str | None = None

    @property
    def units(self) -> Units:
        # Both apply: an endpoint priced per search unit, per token, or both (catalog pricing).
        return Units(input_tokens=self.total_tokens, search_units=self.search_units)


def search_units(documents: int) -> int:
    """Search units as Cohere counts them for short documents: one per started hundred."""
    return max(1, math.ceil(documents / DOCUMENTS_PER_SEARCH_UNIT))


def text_of(document: str | dict[str, Any]) -> str:
    """A document's text: the string, or an object's `text` ("" for an image alone)."""
    return document if isinstance(document, str) else document.get("text") or ""


def estimated_tokens(query: str, documents: list[Any]) -> int:
    """Tokens of a rerank as a cross-encoder reads it, the query beside each document (4 characters a
    token), for upstreams that report none."""
    return sum(max(1, math.ceil((len(query) + len(text_of(d))) / CHARS_PER_TOKEN)) for d in documents)


def top_n_for(request: dict[str, Any]) -> int | None:
    """The client's top_n, no more than there are documents (some upstreams refuse more)."""
    top_n = request.get("top_n")
    return None if top_n is None else min(top_n, len(request["documents"]))


def _message(status: int, text: str) -> tuple[str, str | None]:
    """The message and code of an error body: OpenAI's `{"error": {...}}`, Cohere's `{"message"}`,
    FastAPI's `{"detail": ...}` (Jina, Infinity) or vLLM's `{"object": "error", "message"}`."""
    message, code = f"Upstream returned HTTP {status}", None
    with contextlib.suppress(Exception):
        body = msgspec.json.decode(text)
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or message), err.get("code") or err.get("type")
        if isinstance(err, str):
            return err, None
        detail = body.get("detail")
        if isinstance(detail, list):  # FastAPI's validation errors
            detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        if isinstance(detail, str | dict):
            return str(detail), None
        if isinstance(body.get("message"), str):
            return body["message"], body.get("type") or body.get("code")
    return message, code


def error_of(status: int, text: str, headers: Any = None) -> UpstreamError:
    message, code = _message(status, text)
    return UpstreamError(
        message,
        status=status,
        raw=text,
        provider_code=str(code) if code is not None else None,
        retry_after=retry_after(headers) if headers is not None else None,
    )


def _protocol(message: str, raw: Any) -> UpstreamError:
    text = raw if isinstance(raw, str) else msgspec.json.encode(raw).decode(errors="replace")
    return UpstreamError(message, status=502, raw=text[:2000], kind="protocol")


async def answer_of(resp: Response) -> dict[str, Any]:
    """The JSON object of a 200; the upstream's error otherwise."""
    raw = await body_of(resp, error_of)
    try:
        answer = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise _protocol("Upstream sent a rerank answer that is not valid JSON", raw.decode(errors="replace")) from None
    if not isinstance(answer, dict):
        raise _protocol("Upstream sent a rerank answer that is not a JSON object", answer)
    return answer


def ranked(answer: dict[str, Any], documents: int, top_n: int | None) -> list[tuple[int, float]]:
    """The answer's `results` as (index, score), best first (equal scores in input order), at most
    top_n; an index out of range or repeated, or a score that is not a number, is the upstream's fault."""
    results = answer.get("results")
    if not isinstance(results, list):
        raise _protocol("Upstream's rerank answer has no results", answer)
    seen: set[int] = set()
    pairs: list[tuple[int, float]] = []
    for item in results:
        index = item.get("index") if isinstance(item, dict) else None
        score = item.get("relevance_score") if isinstance(item, dict) else None
        if (
            not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < documents or index in seen
            or not isinstance(score, int | float) or isinstance(score, bool) or not math.isfinite(score)
        ):  # fmt: skip
            raise _protocol("Upstream's rerank answer has a result that names no document of the request", item)
        seen.add(index)
        pairs.append((index, float(score)))
    pairs.sort(key=lambda p: (-p[1], p[0]))
    return pairs if top_n is None else pairs[:top_n]


def count(value: Any) -> int | None:
    """A non-negative whole count from an upstream's usage, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)
