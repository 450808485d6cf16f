"""Writes the synchronous client from the asynchronous one (``python scripts/unasync_client.py``;
``--check`` fails if the committed file is not what it would write). Uses unasync, which rewrites
tokens: ``async``/``await`` dropped, async names mapped to their sync twins."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent / "src" / "omnirouter" / "client"
SOURCE = HERE / "_async" / "client.py"
TARGET = HERE / "_sync" / "client.py"
HEADER = "# Generated from _async/client.py by `python scripts/unasync_client.py`: edit that file, not this one.\n"
REPLACEMENTS = {
    "AsyncOpenRouter": "OpenRouter",
    "AsyncTransport": "Transport",
    "AsyncStream": "Stream",
    "AsyncClient": "Client",
    "aclose": "close",
    "aread": "read",
    "aiter_lines": "iter_lines",
    "asyncio": "time",  # asyncio.sleep -> time.sleep
}


def generated() -> str:
    import unasync

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "_async" / "client.py"
        source.parent.mkdir()
        source.write_text(SOURCE.read_text())
        unasync.unasync_files([str(source)], [unasync.Rule("/_async/", "/_sync/", REPLACEMENTS)])
        return HEADER + (Path(tmp) / "_sync" / "client.py").read_text()


def main(argv: list[str]) -> int:
    text = generated()
    if "--check" in argv:
        if not TARGET.is_file() or TARGET.read_text() != text:
            print(f"{TARGET} is not what {SOURCE} generates: run python scripts/unasync_client.py")
            return 1
        return 0
    TARGET.parent.mkdir(exist_ok=True)
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
