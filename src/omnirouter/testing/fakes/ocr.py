"""A fake of Mistral's OCR API (`POST /v1/ocr`), on the fakes' core (real HTTP on loopback, scripted
faults, recording).

Unscripted, it reads the PDF of a `document_url` data URL (pypdf) and answers one page object per page
whose `markdown` is that page's text under a `# Page N` heading (so a test can tell OCR from local
extraction), with `usage_info.pages_processed`, as `mistral-ocr-latest` answers. The core's ``Status``,
``Delay``, ``Reset`` and ``BrokenJSON`` steps work as for chat.

    with FakeMistralOCR.run_in_thread(api_key="k") as ocr:
        ...  # setting file_parser_ocr: {base_url: ocr.base_url.removesuffix("/v1"), api_key_env: ...}
"""

from __future__ import annotations

import base64
import binascii
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

__all__ = ["FakeMistralOCR", "MistralOCRWire"]


class MistralOCRWire(Wire):
    name = "Mistral OCR"
    base_path = "/v1"

    def routes(self) -> list[Route]:
        return [Route("POST", "/ocr")]

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        if request.headers.get("Authorization") != f"Bearer {api_key}":
            return WireError(401, "Unauthorized")
        return None

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return {"object": "error", "message": message or f"HTTP {status}", "type": "invalid_request_error",
                "param": param, "code": None}  # fmt: skip

    @staticmethod
    def pdf_of(body: Any) -> bytes:
        doc = body.get("document") if isinstance(body, dict) else None
        url = doc.get("document_url") if isinstance(doc, dict) and doc.get("type") == "document_url" else None
        if not isinstance(url, str) or not url.startswith("data:application/pdf;base64,"):
            raise WireError(422, "document must be {type: document_url, document_url: a PDF data URL}", "document")
        try:
            return base64.b64decode(url.split(",", 1)[1], validate=True)
        except binascii.Error:
            raise WireError(422, "document_url: invalid base64", "document") from None

    def answer(self, model: str, pdf: bytes) -> dict[str, Any]:
        from omnirouter.files.pdf_text import pdf_pages

        pages = pdf_pages(pdf)
        return {
            "id": secrets.token_hex(16),
            "model": model,
            "pages": [
                {"index": i, "markdown": f"# Page {i + 1}\n\n{text}", "images": [],
                 "dimensions": {"dpi": 200, "height": 2200, "width": 1700}}
                for i, text in enumerate(pages)
            ],
            "usage_info": {"pages_processed": len(pages), "doc_size_bytes": len(pdf)},
        }  # fmt: skip


class FakeMistralOCR(FakeServer):
    """Mistral's OCR API at /v1/ocr."""

    wire = MistralOCRWire()

    async def _perform(self, step: Step | None, ex: _Exchange, route: Route) -> web.StreamResponse:
        if step is None or isinstance(step, Reply):
            try:
                pdf = MistralOCRWire.pdf_of(ex.json)
            except WireError as err:
                return self._error(err)
            return json_response(self.wire.answer(str(ex.json.get("model") or "mistral-ocr-latest"), pdf))
        return await super()._perform(step, ex, route)

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeThread[FakeMistralOCR]:
        return FakeThread(cls(**kwargs))
