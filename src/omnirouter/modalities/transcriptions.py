"""Placeholder until the transcriptions operations land (issue 16)."""

from typing import Any

routes: list[Any] = []
OPERATIONS: dict[Any, Any] = {}
TAGS: dict[str, str] = {}
