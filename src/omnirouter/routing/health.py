"""Which endpoints failed recently. Recently failing endpoints are tried last (behaviors §3.1)."""

from __future__ import annotations

import time

RECENT_SECONDS = 30.0


class Health:
    def __init__(self) -> None:
        self._failed_at: dict[tuple[str, str], float] = {}

    def failed(self, model_id: str, endpoint_slug: str) -> None:
        self._failed_at[(model_id, endpoint_slug)] = time.monotonic()

    def succeeded(self, model_id: str, endpoint_slug: str) -> None:
        self._failed_at.pop((model_id, endpoint_slug), None)

    def recently_failed(self, model_id: str, endpoint_slug: str) -> bool:
        at = self._failed_at.get((model_id, endpoint_slug))
        return at is not None and time.monotonic() - at < RECENT_SECONDS
