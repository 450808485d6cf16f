"""What an uploaded file is, from its bytes (as OpenRouter decides it: not from its name or the type the
client declared). Accepted: PDF; PNG, JPEG, GIF, WebP images; DOCX, XLSX, PPTX documents; MP3, WAV, FLAC,
OGG audio; UTF-8 text, reported by its structure as JSON, NDJSON, CSV, Markdown or plain text.

`Sniffer` is fed the upload as it streams to disk (it keeps only the head and whether every byte so far
is UTF-8 text); `Sniffer.kind(path)` names the type once the upload is complete, or None for anything
else. Office documents are ZIP archives: told apart by the part their format requires (read from the
archive's directory on disk, never the whole file).
"""

from __future__ import annotations

import codecs
import csv
import re
import zipfile
from pathlib import Path

import msgspec

HEAD = 64 * 1024  # what is kept of the upload for telling text formats apart

PDF, PNG, JPEG, GIF, WEBP = "application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp"
MP3, WAV, FLAC, OGG = "audio/mpeg", "audio/wav", "audio/flac", "audio/ogg"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
JSON, NDJSON, CSV, MARKDOWN, TEXT = (
    "application/json", "application/x-ndjson", "text/csv", "text/markdown", "text/plain"
)  # fmt: skip

TEXT_TYPES = frozenset({JSON, NDJSON, CSV, MARKDOWN, TEXT})
# The part each Office format cannot be without.
_OFFICE = (("word/document.xml", DOCX), ("xl/workbook.xml", XLSX), ("ppt/presentation.xml", PPTX))
_MARKDOWN = re.compile(r"^(#{1,6} \S|```|[-*+] \S|\d+\. \S|> \S)|\[[^\]\n]+\]\([^)\s]+\)|\*\*\S", re.M)


def _binary(head: bytes) -> str | None:
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return WAV
    if head.startswith(b"fLaC"):
        return FLAC
    if head.startswith(b"OggS"):
        return OGG
    if head.startswith(b"ID3") or _mpeg_frame(head):
        return MP3
    return None


def _mpeg_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, a version and a layer that exist, a valid bitrate."""
    if len(head) < 4 or head[0] != 0xFF or head[1] & 0xE0 != 0xE0:
        return False
    version, layer, bitrate = (head[1] >> 3) & 3, (head[1] >> 1) & 3, head[2] >> 4
    return version != 1 and layer != 0 and bitrate not in (0, 15)


def _office(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    return next((kind for part, kind in _OFFICE if part in names), None)


def _text_kind(text: str, complete: bool) -> str:
    """JSON, NDJSON, CSV, Markdown or plain text, from the first HEAD bytes (`complete`: all of it)."""
    stripped = text.strip()
    lines = [line for line in (text if complete else text.rsplit("\n", 1)[0]).splitlines() if line.strip()]
    if stripped[:1] in ("{", "["):
        if complete and _is_json(stripped):
            return JSON
        if len(lines) >= 2 and all(_is_json(line) for line in lines):
            return NDJSON
        if not complete:  # too long to read whole here: a document that opens as JSON does
            return JSON
    if len(lines) >= 2 and _is_csv(lines[:50]):
        return CSV
    if _MARKDOWN.search(text):
        return MARKDOWN
    return TEXT


def _is_json(text: str) -> bool:
    try:
        msgspec.json.decode(text)
    except msgspec.DecodeError:
        return False
    return True


def _is_csv(lines: list[str]) -> bool:
    for delimiter in (",", ";", "\t"):
        if delimiter not in lines[0]:
            continue
        widths = {len(row) for row in csv.reader(lines, delimiter=delimiter)}
        if len(widths) == 1 and widths.pop() >= 2:
            return True
    return False


class Sniffer:
    """Watches an upload go by; `kind` names it at the end."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.size = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text = True  # every byte so far is UTF-8 without NULs

    def feed(self, chunk: bytes) -> None:
        if len(self.head) < HEAD:
            self.head += chunk[: HEAD - len(self.head)]
        self.size += len(chunk)
        if self._text:
            try:
                self._utf8.decode(chunk)
            except UnicodeDecodeError:
                self._text = False
            else:
                self._text = b"\x00" not in chunk

    def kind(self, path: Path) -> str | None:
        head = bytes(self.head)
        if found := _binary(head):
            return found
        if head.startswith(b"PK\x03\x04"):
            return _office(path)
        if self._text:
            try:
                self._utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                return None
            text = head.decode("utf-8", errors="ignore").removeprefix("\ufeff")  # a cut character at the end
            return _text_kind(text, complete=self.size <= HEAD)
        return None


# What a client may declare for each detected type: the same family (an image for an image...). Within
# a family the bytes decide (a PNG sent as image/jpeg is stored as image/png); across families the
# upload is refused, since the client and the bytes disagree about what it is.
GENERIC = frozenset({"", "application/octet-stream", "binary/octet-stream"})


def family(mime: str) -> str:
    if mime in TEXT_TYPES or mime.startswith("text/") or mime.endswith(("+json", "/json", "/x-ndjson", "/jsonl")):
        return "text"
    if mime.startswith(("image/", "audio/")):
        return mime.split("/", 1)[0]
    if mime in (DOCX, XLSX, PPTX) or mime.startswith("application/vnd.openxmlformats-officedocument."):
        return "office"
    if mime in ("application/pdf", "application/x-pdf"):
        return "pdf"
    if mime in ("application/ogg",):
        return "audio"
    return "other:" + mime


def contradicts(declared: str | None, detected: str) -> bool:
    declared = (declared or "").split(";", 1)[0].strip().lower()
    return declared not in GENERIC and family(declared) != family(detected)
