"""Off the request path: each worker's deliverer sends the outbox's events (observability/outbox.py)
to their destinations, a batch per destination at a time, and deletes them once delivered.

Every `observability_poll_interval` it looks for due events of each enabled destination that is not
already being delivered to by this worker, and claims a bounded batch of them with a conditional
UPDATE of their lease, so that across workers and instances each event is sent by one at a time (a
worker that dies leaves its lease to expire, and the events to the next claimant). A failed delivery
puts the batch back with an exponential backoff; a slow or dead destination holds only its own task,
never a request nor another destination. Delivery is at least once: a send whose answer is lost is
sent again, with the same ids, which Langfuse and LangSmith deduplicate.

Counts of this worker's deliveries are plain attributes (`delivered`, `failed`, by destination id) for
the Prometheus metrics; every worker's together are the destination's `delivery` in the API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import or_, select, update

from omnirouter.governance.byok_crypto import Keyring, Undecryptable, keyring_of
from omnirouter.observability.destinations import Row
from omnirouter.observability.events import Event, Target
from omnirouter.observability.send import Failed, senders
from omnirouter.store.db import Database
from omnirouter.store.outage import unreachable
from omnirouter.store.tables import api_keys, generation_content, generations
from omnirouter.store.tables import observability_destinations as destinations
from omnirouter.store.tables import observability_outbox as outbox

log = logging.getLogger("omnirouter.observability")

_d, _o = destinations.c, outbox.c


class Deliverer:
    def __init__(self, db: Database, settings: Any) -> None:
        self.db = db
        self.keyring: Keyring | None = keyring_of(settings)
        self.poll_interval: float = settings.observability_poll_interval
        self.batch_size: int = settings.observability_batch_size
        self.timeout: float = settings.observability_timeout
        self.retry_initial: float = settings.observability_retry_initial
        self.retry_max: float = settings.observability_retry_max
        self.retention = timedelta(hours=settings.observability_retention_hours)
        self.lease = timedelta(seconds=self.timeout + 60)  # longer than any send may take
        self.delivered: dict[str, int] = defaultdict(int)  # this worker's, by destination id
        self.failed: dict[str, int] = defaultdict(int)
        self.senders = senders()
        self._targets: dict[str, tuple[datetime, Target | None]] = {}  # id -> (updated_at, decrypted)
        self._busy: dict[str, asyncio.Task[None]] = {}
        self._tokens: set[str] = set()  # leases this worker holds
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # -- lifecycle
    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        self._task = asyncio.create_task(self._run(), name="omnirouter-observability")

    async def close(self) -> None:
        tasks = [t for t in (self._task, *self._busy.values()) if t is not None]
        held = set(self._tokens)  # taken before the cancelled sends forget theirs
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if held:  # what was in flight is due again at once, for whichever worker comes next
            with contextlib.suppress(Exception):
                async with self.db.engine.begin() as conn:
                    await conn.execute(
                        update(outbox)
                        .where(_o.lease_token.in_(held))
                        .values(lease_token=None, lease_until=None)
                    )
        if self._session is not None:
            await self._session.close()

    async def _run(self) -> None:
        while True:
            try:
                await self.round()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the next round retries
                if not unreachable(exc):
                    log.exception("observability delivery round failed; will retry")
            await asyncio.sleep(self.poll_interval)

    # -- work
    async def round(self) -> None:
        """Start a delivery task for each enabled destination not already being delivered to."""
        for target in await self.targets():
            if target.id not in self._busy:
                task = asyncio.create_task(self._drain(target), name=f"omnirouter-destination-{target.id}")
                self._busy[target.id] = task
                task.add_done_callback(lambda _, key=target.id: self._busy.pop(key, None))

    async def targets(self) -> list[Target]:
        async with self.db.engine.connect() as conn:
            rows = [
                Row.of(r)
                for r in await conn.execute(select(destinations).where(_d.enabled.is_(True), _d.deleted.is_(False)))
            ]
        fresh: dict[str, tuple[datetime, Target | None]] = {}
        for row in rows:
            known = self._targets.get(row.id)
            fresh[row.id] = known if known and known[0] == row.updated_at else (row.updated_at, self._target(row))
        self._targets = fresh
        return [t for _, t in fresh.values() if t is not None]

    def _target(self, row: Row) -> Target | None:
        if row.type not in self.senders:
            return None
        try:
            config = row.full_config(self.keyring)
        except Undecryptable:
            log.error(
                "observability destination %s: its credentials cannot be decrypted (OMNIROUTER_ENCRYPTION_KEY)", row.id
            )
            return None
        return Target(
            id=row.id,
            type=row.type,
            config=config,
            privacy_mode=row.privacy_mode,
            broadcast_generation_cost=row.broadcast_generation_cost,
            broadcast_generation_identity=row.broadcast_generation_identity,
            broadcast_generation_request_context=row.broadcast_generation_request_context,
        )

    async def _drain(self, target: Target) -> None:
        """Full batches back to back, until fewer are due or a delivery fails."""
        try:
            while await self.deliver(target) >= self.batch_size:
                pass
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if not unreachable(exc):
                log.exception("observability destination %s: delivery failed; will retry", target.id)

    async def _claim(self, target: Target) -> tuple[str, list[Any]]:
        token, now = str(uuid.uuid4()), datetime.now(UTC)
        free = or_(_o.lease_until.is_(None), _o.lease_until < now)
        due = (
            select(_o.id)
            .where(_o.destination_id == target.id, _o.next_attempt_at <= now, free)
            .order_by(_o.id)
            .limit(self.batch_size)
        )
        self._tokens.add(token)
        async with self.db.engine.begin() as conn:
            # Conditional: a row another worker leased meanwhile is not taken again.
            claimed = await conn.execute(
                update(outbox)
                .where(_o.id.in_(due.scalar_subquery()), free)
                .values(lease_token=token, lease_until=now + self.lease)
            )
            if claimed.rowcount == 0:
                self._tokens.discard(token)
                return token, []
            g, c, k = generations.c, generation_content.c, api_keys.c
            rows = (
                await conn.execute(
                    select(
                        _o.id.label("outbox_id"),
                        _o.attempts,
                        generations,
                        c.prompt,
                        c.completion,
                        k.name.label("key_name"),
                    )
                    .select_from(
                        outbox.join(generations, g.id == _o.generation_id)
                        .outerjoin(generation_content, c.id == _o.generation_id)
                        .outerjoin(api_keys, k.hash == g.key_hash)
                    )
                    .where(_o.lease_token == token)
                    .order_by(_o.id)
                )
            ).all()
            if len(rows) < claimed.rowcount:  # events of generations no longer there: nothing to send
                known = select(generations.c.id)
                await conn.execute(outbox.delete().where(_o.lease_token == token, _o.generation_id.not_in(known)))
        return token, rows

    async def deliver(self, target: Target) -> int:
        """Claim and send one batch of the destination's due events: how many there were."""
        token, rows = await self._claim(target)
        if not rows:
            return 0
        try:
            events = []
            for r in rows:
                m = r._mapping
                row = {col.name: m[col.name] for col in generations.columns}
                if row["created_at"].tzinfo is None:  # SQLite gives naive datetimes back
                    row["created_at"] = row["created_at"].replace(tzinfo=UTC)
                content = (m["prompt"], m["completion"]) if m["prompt"] is not None else None
                events.append(Event.of(row, m["key_name"], content, target))
            started = time.monotonic()
            try:
                await asyncio.wait_for(self.senders[target.type](self._session, target, events), self.timeout)  # type: ignore[arg-type]
            except (TimeoutError, Failed) as exc:
                reason = exc.reason if isinstance(exc, Failed) else f"timed out after {self.timeout:g} s"
                await self._failed(target, token, rows, reason)
                return 0
            log.debug(
                "observability destination %s: %d event(s) in %.3f s", target.id, len(rows), time.monotonic() - started
            )
            await self._delivered(target, token, rows)
            return len(rows)
        finally:
            self._tokens.discard(token)

    async def _delivered(self, target: Target, token: str, rows: list[Any]) -> None:
        n, now = len(rows), datetime.now(UTC)
        async with self.db.engine.begin() as conn:
            await conn.execute(outbox.delete().where(_o.lease_token == token))
            await conn.execute(
                update(destinations)
                .where(_d.id == target.id)
                .values(delivered_count=_d.delivered_count + n, last_delivered_at=now)
            )
        self.delivered[target.id] += n

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try after `attempts` failures: doubling, capped, with jitter."""
        return min(self.retry_max, self.retry_initial * 2 ** max(0, attempts - 1)) * random.uniform(0.8, 1.0)

    async def _failed(self, target: Target, token: str, rows: list[Any], reason: str) -> None:
        n, now = len(rows), datetime.now(UTC)
        attempts = max(r.attempts for r in rows) + 1
        async with self.db.engine.begin() as conn:
            # Retried until they are older than the retention: a destination dead for good must not
            # grow the outbox without bound.
            expired = _o.lease_token == token, _o.created_at < now - self.retention
            dropped = (await conn.execute(outbox.delete().where(*expired))).rowcount
            await conn.execute(
                update(outbox)
                .where(_o.lease_token == token)
                .values(
                    attempts=_o.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=self.backoff(attempts)),
                    lease_token=None,
                    lease_until=None,
                )
            )
            await conn.execute(
                update(destinations)
                .where(_d.id == target.id)
                .values(failed_count=_d.failed_count + n, last_error=reason)
            )
        self.failed[target.id] += n
        if n > dropped:
            log.warning("observability destination %s (%s): %d event(s) not delivered (%s); retrying in backoff",
                        target.id, target.type, n - dropped, reason)  # fmt: skip
        if dropped:
            log.error("observability destination %s (%s): %d event(s) dropped, undelivered for over %g hours",
                      target.id, target.type, dropped, self.retention.total_seconds() / 3600)  # fmt: skip
