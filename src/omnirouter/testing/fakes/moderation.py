"""A fake of OpenAI's moderation API (`POST /v1/moderations`), on the fakes' core (real HTTP on
loopback, scripted faults, recording).

Unscripted, it flags each input that contains one of its words (case-insensitive), under that word's
category, the way `omni-moderation-latest` answers: one result per input, in input order. The core's
``Status``, ``Delay``, ``Reset`` and ``BrokenJSON`` steps work as for chat.

    with FakeOpenAIModeration.run_in_thread(flag={"forbidden": "violence"}) as mod:
        ...  # setting moderation: {base_url: mod.base_url, ...}
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from omnirouter.testing.fakes.core import (
    FakeServer,
    FakeThread,
    Reply,
    Route,
    Step,
    Wire,
    WireError,
    _Exchange,
    json_response,
)

__all__ = ["CATEGORIES", "FakeOpenAIModeration", "ModerationWire"]

# omni-moderation-latest's categories.
CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent",
    "self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence",
    "violence/graphic",
)  # fmt: skip


class ModerationWire(Wire):
    name = "OpenAI moderation"
    base_path = "/v1"

    def routes(self) -> list[Route]:
        return [Route("POST", "/moderations")]

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        if request.headers.get("Authorization") != f"Bearer {api_key}":
            return WireError(401, "Incorrect API key provided.")
        return None

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return {"error": {"message": message or f"HTTP {status}", "type": "invalid_request_error", "param": param,
                          "code": None}}  # fmt: skip

    @staticmethod
    def texts(body: Any) -> list[str]:
        """The inputs of a valid request: a string, strings, or text/image parts (images judged clean)."""
        raw = body.get("input") if isinstance(body, dict) else None
        if isinstance(raw, str):
            return [raw]
        if isinstance(raw, list) and raw and all(isinstance(x, str) for x in raw):
            return list(raw)
        if isinstance(raw, list) and raw and all(isinstance(x, dict) for x in raw):
            return [x.get("text") or "" for x in raw]
        raise WireError(400, "'input' must be a string, an array of strings, or an array of content parts", "input")

    def answer(self, model: str, texts: list[str], flag: dict[str, str]) -> dict[str, Any]:
        results = []
        for text in texts:
            lowered = text.lower()
            hit = {category for word, category in flag.items() if word.lower() in lowered}
            results.append({
                "flagged": bool(hit),
                "categories": {c: c in hit for c in CATEGORIES},
                "category_scores": {c: 0.97 if c in hit else 0.0001 for c in CATEGORIES},
                "category_applied_input_types": {c: ["text"] for c in CATEGORIES},
            })  # fmt: skip
        return {"id": "modr-" + secrets.token_hex(12), "model": model, "results": results}


class FakeOpenAIModeration(FakeServer):
    """OpenAI's moderation API at /v1/moderations; `flag` maps words to the category they flag."""

    wire = ModerationWire()

    def __init__(self, *, flag: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flag = dict(flag if flag is not None else {"forbidden": "violence"})

    async def _perform(self, step: Step | None, ex: _Exchange, route: Route) -> web.StreamResponse:
        if step is None or isinstance(step, Reply):
            try:
                texts = ModerationWire.texts(ex.json)
            except WireError as err:
                return self._error(err)
            model = str(ex.json.get("model") or "omni-moderation-latest")
            return json_response(self.wire.answer(model, texts, self.flag))
        return await super()._perform(step, ex, route)

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeThread[FakeOpenAIModeration]:
        return FakeThread(cls(**kwargs))
