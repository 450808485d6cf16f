"""A PDF's text from a Mistral-OCR-compatible API (`POST {base_url}/v1/ocr`): the file-parser's
mistral-ocr engine, configured by the operator (settings `file_parser_ocr`)."""

from __future__ import annotations

import base64
import os
from typing import TYPE_CHECKING, Any

import aiohttp

from omnirouter.errors import GatewayError

if TYPE_CHECKING:
    from omnirouter.settings import FileParserOCR


async def ocr_pdf(config: FileParserOCR, pdf: bytes, name: str) -> tuple[list[str], int]:
    """(each page's markdown, pages billed). Raises a 502 GatewayError when the API fails."""
    key = os.environ.get(config.api_key_env)
    if not key:  # the variable's name only: never its value
        raise GatewayError(502, f"file-parser: the OCR engine's key is not set (variable {config.api_key_env})")
    payload = {
        "model": config.model,
        "document": {
            "type": "document_url",
            "document_url": "data:application/pdf;base64," + base64.b64encode(pdf).decode(),
            "document_name": name,
        },
        "include_image_base64": False,
    }
    url = config.base_url.rstrip("/") + "/v1/ocr"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=config.timeout)) as session,
            session.post(url, json=payload, headers={"Authorization": f"Bearer {key}"}) as response,
        ):
            if response.status != 200:
                raise GatewayError(502, f"file-parser: the OCR API answered HTTP {response.status}")
            data: Any = await response.json(content_type=None)
    except TimeoutError:
        raise GatewayError(504, f"file-parser: the OCR API took longer than {config.timeout:g} s") from None
    except (aiohttp.ClientError, ValueError) as exc:
        raise GatewayError(502, f"file-parser: the OCR API failed ({type(exc).__name__})") from None
    pages = data.get("pages") if isinstance(data, dict) else None
    if not isinstance(pages, list):
        raise GatewayError(502, "file-parser: the OCR API's answer has no pages")
    ordered = sorted((p for p in pages if isinstance(p, dict)), key=lambda p: p.get("index") or 0)
    texts = [str(p.get("markdown") or "") for p in ordered]
    billed = (data.get("usage_info") or {}).get("pages_processed")
    return texts, billed if type(billed) is int and billed >= 0 else len(texts)
