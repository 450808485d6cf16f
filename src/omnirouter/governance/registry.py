"""What governance keeps in memory for the request path: workspaces, members, guardrails and their
assignments, BYOK keys, presets. Each is a section, read from the database with the keys whenever the
shared state's version changes (store/writer.py sync); the request path reads only these snapshots.

A section's loader takes a synchronous connection and returns an immutable snapshot of what the
request path needs (and may precompute per-key lookups lazily on it: a snapshot is replaced, never
changed, so such caches die with it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from omnirouter.state import AppState

Loader = Callable[[Connection], Any]


def _loaders() -> dict[str, Loader]:
    """Every section's loader, by name (imported here, not at module level: the sections import the store)."""
    from omnirouter.governance import byok_store, guardrails, presets, workspaces

    return {
        "presets": presets.load,
        "byok": byok_store.load,
        "workspaces": workspaces.load,
        "guardrails": guardrails.load,
    }


class Governance:
    """The snapshots, by section name. A section not loaded yet (or with nothing configured) is None."""

    def __init__(self) -> None:
        self.sections: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        return self.sections.get(name)

    def replace_all(self, sections: dict[str, Any]) -> None:
        self.sections = sections


def load_all(conn: Connection) -> dict[str, Any]:
    return {name: load(conn) for name, load in _loaders().items()}


async def refresh(st: AppState) -> None:
    """After a management change on this worker: reload at once (the others hear of it through the change
    notice, cluster/changes.py). Management writes are rare; a full reload keeps one way to load."""
    await st.recorder.sync(force=True)
