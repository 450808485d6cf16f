"""The operations beyond chat, one module each. A module exports `routes` (mounted under every API
root; its POST uses pipeline/modality.py's ModalityEndpoint), `OPERATIONS` and `TAGS` (its part of the
OpenAPI document), and, when it has background work (video jobs), `start(state)` returning an async
`close()`."""

from __future__ import annotations

import importlib
from types import ModuleType

NAMES = ("embeddings", "rerank", "images", "speech", "transcriptions", "videos", "files")


def modules() -> list[ModuleType]:
    return [importlib.import_module(f"{__name__}.{name}") for name in NAMES]
