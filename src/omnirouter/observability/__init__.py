"""The operator's view: rollups and analytics, destinations, metrics, traces and logs."""

from __future__ import annotations

from omnirouter.store.derived import Derived


def derived() -> list[Derived]:
    """What every batch of generations also writes, in its transaction (store/derived.py)."""
    from omnirouter.observability import rollups
    from omnirouter.observability.outbox import enqueue

    return [rollups.write, enqueue]
