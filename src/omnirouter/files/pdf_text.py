"""A PDF's text, extracted locally with pypdf (the file-parser's pdf-text engine, PDFs fetched as pages)."""

from __future__ import annotations

import io
import logging

from omnirouter.errors import GatewayError

# pypdf logs every oddity of a malformed file at WARNING: not the gateway's news.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def pdf_pages(data: bytes) -> list[str]:
    """The text of each page. CPU-bound: call it off the event loop (asyncio.to_thread)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise GatewayError(400, "The PDF is encrypted with a password")
        return [(page.extract_text() or "").strip() for page in reader.pages]
    except GatewayError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise GatewayError(400, f"The file is not a readable PDF ({type(exc).__name__})") from None


def pdf_text(data: bytes) -> str:
    return "\n\n".join(text for text in pdf_pages(data) if text)
