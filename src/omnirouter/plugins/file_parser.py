"""The file-parser plugin: PDFs in `file` content parts read as text, for models that cannot read files.

`plugins: [{"id": "file-parser", "pdf": {"engine": "pdf-text" | "mistral-ocr" | "cloudflare-ai" | "native"}}]`
(behaviors §8.7). A PDF is a `{type: "file", file: {filename, file_data}}` part (the Responses API's
`input_file` and the Messages API's `document` blocks arrive as such parts), its `file_data` a data URL
or an http(s) URL, fetched under the page fetcher's SSRF rules and limits (web/fetch.py).

- `native`, or no engine while every planned model lists `file` among its input modalities: the files go
  as they are.
- `pdf-text` (and `cloudflare-ai`, which this server has no Cloudflare for): pypdf extracts the text
  locally, free. `mistral-ocr`: the operator's Mistral-OCR-compatible API (`file_parser_ocr`), charged
  `price_per_page` for each page it processed; without that setting, `pdf-text`. No engine: `mistral-ocr`
  when configured, else `pdf-text`.
- Each PDF part becomes a text part (its name, then its text), and the answer carries a `file`
  annotation `{hash, name, content: [{type: "text", text}]}`, `hash` being the SHA-256 of `file_data`.
  A request whose messages carry such an annotation (sent back with the assistant turn) reuses that text
  instead of parsing the file again, for free.
- A file part that is not a PDF (another media type, an uploaded file id) is left as it is.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

from omnirouter.errors import GatewayError
from omnirouter.files.ocr import ocr_pdf
from omnirouter.files.pdf_text import pdf_pages
from omnirouter.pipeline.call import estimate_tokens
from omnirouter.web.fetch import fetch_bytes

if TYPE_CHECKING:
    from omnirouter.pipeline.call import Call
    from omnirouter.plugins.run import PluginRun
    from omnirouter.settings import Settings

ID = "file-parser"
ENGINES = ("mistral-ocr", "pdf-text", "cloudflare-ai", "native")
FEE = "pdf_ocr"


def _engine(options: dict[str, Any]) -> str | None:
    pdf = options.get("pdf")
    if pdf is None:
        return None
    engine = pdf.get("engine") if isinstance(pdf, dict) else pdf
    if engine is not None and engine not in ENGINES:
        raise GatewayError(400, f"file-parser plugin: pdf.engine must be one of {', '.join(ENGINES)}")
    return engine


def _file_parts(messages: Any) -> list[dict[str, Any]]:
    """The `file` parts of the conversation (their dicts, rewritten in place)."""
    found: list[dict[str, Any]] = []
    for m in messages if isinstance(messages, list) else ():
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            found.extend(p for p in content if isinstance(p, dict) and p.get("type") == "file")
    return found


def _parsed_before(messages: list[Any]) -> dict[str, str]:
    """hash -> text of the `file` annotations the client sent back (skips parsing those files again)."""
    known: dict[str, str] = {}
    for m in messages:
        for a in (m.get("annotations") if isinstance(m, dict) else None) or ():
            file = a.get("file") if isinstance(a, dict) and a.get("type") == "file" else None
            if isinstance(file, dict) and isinstance(file.get("hash"), str) and isinstance(file.get("content"), list):
                texts = [c.get("text") for c in file["content"] if isinstance(c, dict) and c.get("type") == "text"]
                known[file["hash"]] = "\n\n".join(t for t in texts if isinstance(t, str))
    return known


def _all_native(call: Call) -> bool:
    return all("file" in c.model.architecture.input_modalities for c in call.plan.candidates)


async def _pdf_bytes(settings: Settings, data: str) -> bytes | None:
    """The PDF a `file_data` holds or points to, or None when it is not a PDF."""
    if data.startswith("data:"):
        header, sep, payload = data[5:].partition(",")
        if not sep:
            raise GatewayError(400, "file-parser: file_data is a malformed data URL")
        media = header.split(";", 1)[0].strip().lower()
        try:
            body = base64.b64decode(payload, validate=True) if header.endswith(";base64") else unquote_to_bytes(payload)
        except (binascii.Error, ValueError):
            raise GatewayError(400, "file-parser: file_data is a data URL with invalid base64") from None
    elif data[:8].lower().startswith(("http://", "https://")):
        _, media, body = await fetch_bytes(settings, data)
    else:
        return None
    return body if media == "application/pdf" or body[:5] == b"%PDF-" else None


async def _parse(settings: Settings, engine: str, data: str, name: str) -> tuple[str, int] | None:
    """(text, pages billed) of one file, or None when it is not a PDF."""
    pdf = await _pdf_bytes(settings, data)
    if pdf is None:
        return None
    if engine == "mistral-ocr" and settings.file_parser_ocr is not None:
        pages, billed = await ocr_pdf(settings.file_parser_ocr, pdf, name)
    else:
        pages, billed = await asyncio.to_thread(pdf_pages, pdf), 0
    return "\n\n".join(p for p in pages if p.strip()), billed


async def prepare(call: Call, options: dict[str, Any] | None, run: PluginRun) -> None:
    engine = _engine(options or {})
    if engine == "native":
        return
    parts = _file_parts(call.body.get("messages"))
    if not parts or (engine is None and _all_native(call)):
        return
    settings = call.st.settings
    if engine in (None, "mistral-ocr"):
        engine = "mistral-ocr" if settings.file_parser_ocr is not None else "pdf-text"
    elif engine == "cloudflare-ai":
        engine = "pdf-text"
    known = _parsed_before(call.body["messages"])
    jobs: list[tuple[dict[str, Any], str, str, str]] = []  # (part, file_data, name, hash)
    for part in parts:
        file = part.get("file")
        data = file.get("file_data") if isinstance(file, dict) else None
        if isinstance(data, str):
            name = file.get("filename") if isinstance(file.get("filename"), str) else "document.pdf"
            jobs.append((part, data, name, hashlib.sha256(data.encode()).hexdigest()))
    to_parse = list({j[3]: j for j in jobs if j[3] not in known}.values())  # each file once
    results = await asyncio.gather(*(_parse(settings, engine, data, name) for _, data, name, _ in to_parse))
    parsed = {j[3]: r for j, r in zip(to_parse, results, strict=True)}
    pages = 0
    for part, data, name, digest in jobs:
        if digest in known:
            text = known[digest]
        elif (result := parsed[digest]) is not None:
            text, billed = result
            pages += billed
            known[digest] = text  # the same file twice: parsed and billed once
        else:
            continue  # not a PDF: as it came
        part.clear()
        part.update({"type": "text", "text": f"File: {name}\n\n{text or '[no text could be extracted]'}"})
        call.needs.prompt_tokens += estimate_tokens(len(text)) - estimate_tokens(len(data))
        annotation = {"hash": digest, "name": name, "content": [{"type": "text", "text": text}]}
        run.annotations.append({"type": "file", "file": annotation})
        run.changed(call)
    call.needs.prompt_tokens = max(call.needs.prompt_tokens, 1)
    run.details["pdf_engine"] = engine
    if pages and settings.file_parser_ocr is not None and (price := settings.file_parser_ocr.price_per_page) > 0:
        run.charge(FEE, price * Decimal(pages))
