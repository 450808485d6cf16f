"""What a batch of generations writes beside itself, in the transaction that writes it.

Daily rollups and the observability outbox are derived from the generations they follow; written in
the same transaction (by the recorder's flush and by a journal's replay alike), they can be neither
ahead of the generations nor behind them, whatever crashes in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from sqlalchemy.engine import Connection


class Derived(Protocol):
    def __call__(self, conn: Connection, rows: Sequence[dict[str, Any]], contents: dict[str, dict[str, Any]]) -> None:
        """`rows`: the generations being written, as recorded; `contents`: their logged content by
        generation id (only those whose content is logged)."""


def write(
    derived: Sequence[Derived], conn: Connection, rows: Sequence[dict[str, Any]], contents: dict[str, dict[str, Any]]
) -> None:
    for each in derived:
        each(conn, rows, contents)
