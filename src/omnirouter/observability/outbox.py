"""The outbox: one row per (destination, generation) to deliver, written by the recorder's flush in the
generation's own transaction (store/derived.py), so that an event is neither lost by a crash nor
sent for a generation that was never written. The deliverer (observability/deliverer.py) sends and
deletes them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.observability.filters import matches, names_needed, sampled
from omnirouter.store.tables import api_keys
from omnirouter.store.tables import observability_destinations as destinations
from omnirouter.store.tables import observability_outbox as outbox

_c = destinations.c
_ACTIVE = (
    select(_c.id, _c.workspace_id, _c.sampling_rate, _c.api_key_hashes, _c.filter_rules)
    .where(_c.enabled.is_(True), _c.deleted.is_(False))
)  # fmt: skip


def enqueue(conn: Connection, rows: Sequence[dict[str, Any]], contents: dict[str, dict[str, Any]]) -> None:
    """A derived write (store/derived.py): the events of this batch of generations, for every enabled
    destination of their workspace that their key, the filter rules and the sampling let through."""
    active = conn.execute(_ACTIVE).all()
    if not active:
        return
    key_names: dict[str, str] = {}
    if any(names_needed(d.filter_rules) for d in active):
        hashes = {r["key_hash"] for r in rows}
        key_names = dict(
            conn.execute(select(api_keys.c.hash, api_keys.c.name).where(api_keys.c.hash.in_(hashes))).all()
        )
    now = datetime.now(UTC)
    events = []
    for row in rows:
        workspace = row.get("workspace_id") or DEFAULT_WORKSPACE_ID
        for d in active:
            if d.workspace_id != workspace or (d.api_key_hashes and row["key_hash"] not in d.api_key_hashes):
                continue
            if not sampled(d.sampling_rate, d.id, row["id"]):
                continue
            if d.filter_rules and not matches(d.filter_rules, row, contents.get(row["id"]), key_names):
                continue
            events.append(
                {"destination_id": d.id, "generation_id": row["id"], "created_at": now, "attempts": 0,
                 "next_attempt_at": now, "lease_token": None, "lease_until": None}
            )  # fmt: skip
    if events:
        conn.execute(outbox.insert(), events)
