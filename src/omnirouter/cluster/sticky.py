"""Sticky sessions shared by every instance (routing/sticky.py keeps one process's).

Every instance holds the whole cluster's sessions in memory, so `get()` on the request path stays a
dict lookup, a miss included: a new or changed route, a forgotten one, and a renewal at most every
RENEW_FRACTION of the TTL are announced (the link publishes them and keeps them in Redis with the
TTL, cluster/routing_link.py), and the other instances apply them. An instance that starts, or finds
Redis again, loads what Redis holds. Renewals between announcements stay local: another instance's
copy lives at least TTL * (1 - RENEW_FRACTION) past the last use anywhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from omnirouter.routing.sticky import MAX_SESSIONS, TTL_SECONDS, Sticky

RENEW_FRACTION = 0.25
MAX_SHARED_KEY = 256  # longer session ids stay on the instance that saw them

# ("set", session, model id, endpoint slug, seconds to live) or ("forget", session, "", "", 0)
Event = tuple[str, str, str, str, float]


class SharedSticky(Sticky):
    def __init__(self, announce: Callable[[Event], None] | None = None, ttl: float = TTL_SECONDS) -> None:
        super().__init__(ttl)
        self.announce: Callable[[Event], None] = announce or (lambda event: None)
        # session -> when its next renewal is worth announcing (monotonic)
        self._announced: dict[str, float] = {}

    def remember(self, key: str, model_id: str, slug: str) -> None:
        old = self._routes.get(key)
        Sticky.remember(self, key, model_id, slug)
        if len(key) > MAX_SHARED_KEY:
            return
        now = time.monotonic()
        if old is not None and old[0] == model_id and old[1] == slug and now < self._announced.get(key, 0.0):
            return  # a renewal the others do not need yet
        if len(self._announced) >= MAX_SESSIONS:
            self._announced = {k: v for k, v in self._announced.items() if k in self._routes}
        self._announced[key] = now + self.ttl * RENEW_FRACTION
        self.announce(("set", key, model_id, slug, self.ttl))

    def forget(self, key: str | None) -> None:
        if key is not None and self._routes.pop(key, None) is not None:
            self._announced.pop(key, None)
            if len(key) <= MAX_SHARED_KEY:
                self.announce(("forget", key, "", "", 0.0))

    # -- what other instances said
    def apply(self, event: Event) -> None:
        kind, key, model_id, slug, ttl = event
        if kind == "forget":
            self._routes.pop(key, None)
            self._announced.pop(key, None)
            return
        now = time.monotonic()
        if len(self._routes) >= MAX_SESSIONS:
            for old in list(self._routes)[: MAX_SESSIONS // 10]:
                del self._routes[old]
        self._routes.pop(key, None)
        self._routes[key] = (model_id, slug, now + ttl)
        self._announced[key] = now + self.ttl * RENEW_FRACTION  # the announcer renewed it just now

    def entries(self) -> list[Event]:
        """The live sessions, as announcements (written back after Redis comes back empty)."""
        now = time.monotonic()
        return [
            ("set", k, m, s, until - now)
            for k, (m, s, until) in self._routes.items()
            if until > now and len(k) <= MAX_SHARED_KEY
        ]
