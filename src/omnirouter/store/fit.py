"""Text values fitted to the columns that hold them.

PostgreSQL refuses a NUL in text and a string longer than its VARCHAR, and one refused row fails the
whole batch written with it: other clients' generations and spend included. Values that come from a
client or an upstream (session and end-user ids, titles, user agents, upstream ids, finish reasons)
are fitted before they are recorded: NULs dropped, the rest cut at the column's length. SQLite would
keep either; fitting on both keeps the two stores alike.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, Table

TextColumns = tuple[tuple[str, int | None], ...]


def text_columns(table: Table, only: tuple[str, ...] | None = None) -> TextColumns:
    """The table's text columns (those named in `only`, if given) and their lengths (None: unbounded)."""
    return tuple(
        (c.name, c.type.length)
        for c in table.columns
        if isinstance(c.type, String) and (only is None or c.name in only)
    )


def fit(row: dict[str, Any], columns: TextColumns) -> dict[str, Any]:
    """``row`` with its text values fitted, in place (a number where text belongs, as an upstream may
    send for an id, is written as text)."""
    for name, length in columns:
        value = row.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            value = row[name] = str(value)
        if "\x00" in value or (length is not None and len(value) > length):
            row[name] = value.replace("\x00", "")[:length]
    return row
