"""FakeOpenAI's historical home, and the benchmark upstream's command line:

    python -m omnirouter.testing.fake_openai --port 9000 [--chunks N] [--workers N]

The fake lives in ``omnirouter.testing.fakes`` (``core`` + the ``openai`` wire); this module
re-exports it so existing imports keep working.
"""

from __future__ import annotations

import sys

from omnirouter.testing.fakes.core import (
    BrokenJSON,
    Delay,
    RecordedRequest,
    Reply,
    Reset,
    Status,
    Step,
    Stream,
)
from omnirouter.testing.fakes.core import main as _main
from omnirouter.testing.fakes.openai import FakeOpenAI, FakeOpenAIThread, error_body

__all__ = [
    "BrokenJSON",
    "Delay",
    "FakeOpenAI",
    "FakeOpenAIThread",
    "RecordedRequest",
    "Reply",
    "Reset",
    "Status",
    "Step",
    "Stream",
    "error_body",
]


def main(argv: list[str] | None = None) -> None:
    _main(FakeOpenAI, "python -m omnirouter.testing.fake_openai", argv)


if __name__ == "__main__":
    sys.exit(main())
