"""Rows of one table in the driver's own form, written with the driver's executemany.

Inserting a list of dicts through SQLAlchemy costs ~35 us of Python per generation row (parameter
dicts, bind processing, statement bookkeeping), and on SQLite that ran in the writer thread on the
event loop's core: with flushes on, the p99 of added latency was 5.7 ms against 1.05 ms with them
off. Here a row becomes a tuple when it is recorded (a few us on the event loop, where it stalls
nothing), through the bind processors SQLAlchemy would apply for the dialect (decimal strings and
datetime text on SQLite, JSON text), so it reads back as an ORM insert would; the one difference is
that a missing JSON value is SQL NULL rather than the text 'null'. A flush is then an executemany in
the driver's C code.

That C code still holds the core: sqlite3 lets go of the GIL while it steps, but a thread waiting
for the GIL on the same core only runs once the holder sleeps or is preempted, so one executemany of
125 rows stalled the loop for ~2.5 ms. A writer thread therefore writes in slices, with a sleep(0)
between them that hands the core over: the longest stall went to ~0.6 ms, for ~10% more CPU.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect


class BulkInsert:
    def __init__(self, table: Table, dialect: Dialect) -> None:
        columns = list(table.columns)
        self._names = [c.name for c in columns]
        self._get = operator.itemgetter(*self._names)
        self._bind: list[tuple[int, Callable[[Any], Any]]] = []
        for i, column in enumerate(columns):
            process = column.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                self._bind.append((i, process))
        quote = dialect.identifier_preparer.quote
        if dialect.paramstyle == "qmark":
            marks = ", ".join("?" * len(columns))
        elif dialect.paramstyle == "numeric_dollar":
            marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
        else:
            raise ValueError(f"no bulk insert for the {dialect.paramstyle} paramstyle")
        names = ", ".join(quote(name) for name in self._names)
        self.sql = f"INSERT INTO {quote(table.name)} ({names}) VALUES ({marks})"

    def encode(self, row: dict[str, Any]) -> tuple[Any, ...]:
        """The row's values in column order, as the driver takes them. Every column must be present."""
        values = list(self._get(row))
        for i, process in self._bind:
            value = values[i]
            if value is not None:
                values[i] = process(value)
        return tuple(values)

    def position(self, name: str) -> int:
        """Where a column's value is in an encoded row."""
        return self._names.index(name)

    def write(self, conn: Connection, rows: Sequence[tuple[Any, ...]], *, slices_of: int = 0) -> None:
        """Insert the rows; with `slices_of`, that many at a time, yielding the core in between."""
        step = slices_of or max(len(rows), 1)
        for start in range(0, len(rows), step):
            if start:
                time.sleep(0)
            conn.exec_driver_sql(self.sql, list(rows[start : start + step]))
