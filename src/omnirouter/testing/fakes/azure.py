"""The Azure OpenAI wire, and FakeAzure: OpenAI's chat wire at a deployment's URL.

``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` with an ``api-key``
header; answers carry Azure's content-filter annotations and its error codes. The fake's
``base_url`` is the resource URL (``https://NAME.openai.azure.com`` in real life).
"""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from omnirouter.testing.fakes.core import Completion, FakeServer, Frames, NormalRequest, Route, Wire, WireError
from omnirouter.testing.fakes.openai import OpenAIWire, _Chunks, _sse, error_body

__all__ = ["AzureWire", "FakeAzure"]

_FILTERS = {name: {"filtered": False, "severity": "safe"} for name in ("hate", "self_harm", "sexual", "violence")}
_PROMPT_FILTERS = [{"prompt_index": 0, "content_filter_results": _FILTERS}]
_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)


class _AzureChunks(_Chunks):
    def head(self) -> bytes:
        # Azure opens a stream with the prompt's filter results, in a chunk without choices or id.
        prompt = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
        prompt["prompt_filter_results"] = _PROMPT_FILTERS
        return _sse(prompt) + super().head()


class AzureWire(OpenAIWire):
    name: ClassVar[str] = "FakeAzure"
    base_path: ClassVar[str] = ""

    def routes(self) -> list[Route]:
        return [Route("POST", "/openai/deployments/{deployment}/chat/completions")]

    def require_model(self, body: dict[str, Any], request: web.Request) -> str:
        # The deployment names the model; a body's ``model`` is ignored as Azure does.
        return request.match_info["deployment"]

    def parse(self, body: Any, request: web.Request) -> NormalRequest:
        if not request.query.get("api-version"):
            raise WireError(404, "Resource not found")
        return super().parse(body, request)

    def completion_json(self, c: Completion) -> dict[str, Any]:
        out = super().completion_json(c)
        out["choices"][0]["content_filter_results"] = _FILTERS
        out["prompt_filter_results"] = _PROMPT_FILTERS
        return out

    def frames(self, c: Completion) -> Frames:
        return _AzureChunks(c)

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        body = error_body(status, message, param=param)
        body["error"]["code"] = str(status) if status in (401, 404, 429) else body["error"]["code"]
        return body

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        return None if request.headers.get("api-key") == api_key else WireError(401, _DENIED)


class FakeAzure(FakeServer):
    """A fake Azure OpenAI resource: scripted steps apply to every deployment's chat completions."""

    wire: ClassVar[Wire] = AzureWire()
