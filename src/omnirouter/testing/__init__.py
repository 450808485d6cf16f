"""Fake upstreams for tests and benchmarks: real HTTP servers on loopback with scripted faults.

    from omnirouter.testing import FakeOpenAI, Status, Stream

Names are imported lazily so that ``python -m omnirouter.testing.fake_openai`` does not import
the module twice (once as a package member, once as ``__main__``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omnirouter.testing.fake_openai import (
        BrokenJSON,
        Delay,
        FakeOpenAI,
        FakeOpenAIThread,
        RecordedRequest,
        Reply,
        Reset,
        Status,
        Step,
        Stream,
    )

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
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("omnirouter.testing.fake_openai"), name)
    raise AttributeError(f"module 'omnirouter.testing' has no attribute {name!r}")
