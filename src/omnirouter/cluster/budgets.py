"""Budgets shared by every worker and instance, through leases.

A budget (a key's limit in its current window, the instance's funded credit) is one bucket:
(scope, period, period_start), as the counters key on it. The store (Redis, or the database) knows
what the bucket has spent and what each holder (a worker process) holds of it, and grants a lease
only while spent + every lease stays within the limit, atomically. A worker admits requests against
its own lease with no I/O (accounting/meter.py). A lease running low is topped up in the background,
asking for a slice (several requests' worth, or a share of what the budget has left: meter.py's
`SLICE` and `SHARE`); only a request the lease cannot cover waits for a top-up. A flush moves what
the worker spent from its lease to the bucket's spend (in the database in the same transaction as the
counters; in Redis right after it commits), and a lease no request used since the last flush goes
back.

So the cluster's spend never passes a limit by more than each worker's overrun (meter.py: one request
whose upstream produced more than its reservation), whatever the number of workers and instances. A
lease lapses `LEASE_TTL_MS` after its holder last wrote it, so a worker that died without flushing
frees its share then; its journal's spend lands at its next start (store/journal.py).

With Redis the store is Redis, with the database as the fallback while Redis is unreachable: leases
held in Redis at the moment it went away are not seen by the database, so the bound loosens by what
was held then, for as long as it is away (docs/configuration.md, "Shared budgets"). Redis's spend
counters are seeded from the database when missing (at the first use of a window, after Redis lost
its data) and raised to the database's figure at every flush, since a spend reported to the database
but not to Redis (a worker killed between the two) must not be forgotten.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from omnirouter.accounting.ledger import ZERO, Counts, Ledger
from omnirouter.cluster.redis import Outage, retried
from omnirouter.cluster.redis import key as redis_key
from omnirouter.store.tables import budget_leases

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.engine import Connection

    from omnirouter.store.db import Database

log = logging.getLogger("omnirouter.cluster")

Bucket = tuple[str, str, str]  # (scope, period, period_start)
LEASE_TTL_MS = 30_000
NANO = Decimal("1e-9")  # Redis keeps money in integer nano-dollars (its Lua numbers are doubles)
SHORT_PAUSE_SECONDS = 0.25  # after the store gave less than asked, top-ups beyond a request's need wait this long
RECONCILE_SECONDS = 600.0  # a bucket's Redis figure is kept in step while it was topped up this recently


def holder_id() -> str:
    """This worker, as the stores name its leases: unique across the cluster's machines."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}"


def bucket_name(bucket: Bucket) -> str:
    return "|".join(bucket)


class Grant(NamedTuple):
    granted: Decimal  # added to the holder's lease; zero when the store could not give the minimum
    spent: Decimal  # the bucket's spend as the store knows it
    others: Decimal  # what the other holders hold


class StoreDown(Exception):
    """The store cannot be reached: use the fallback."""


# -- the database as the store
def _select_bucket(
    conn: Connection, name: str, bucket: Bucket, now_ms: int
) -> tuple[Decimal, list[tuple[str, Decimal]]]:
    """The bucket's spend and its live leases, read in one statement (one snapshot in PostgreSQL,
    where a flush may commit between two statements)."""
    rows = conn.execute(
        text(
            "SELECT c.usage, l.holder, l.amount FROM (SELECT 1 AS one) AS o "
            "LEFT JOIN usage_counters AS c ON c.scope = :scope AND c.period = :period AND c.period_start = :start "
            "LEFT JOIN budget_leases AS l ON l.bucket = :name AND l.expires_at > :now"
        ),
        {"scope": bucket[0], "period": bucket[1], "start": bucket[2], "name": name, "now": now_ms},
    ).all()
    spent = Decimal(str(rows[0][0])) if rows and rows[0][0] is not None else ZERO
    return spent, [(r[1], Decimal(str(r[2]))) for r in rows if r[1] is not None]


def _write_lease(conn: Connection, name: str, holder: str, amount: Decimal, now_ms: int) -> None:
    if amount <= 0:
        conn.execute(
            budget_leases.delete().where((budget_leases.c.bucket == name) & (budget_leases.c.holder == holder))
        )
        return
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(budget_leases).values(bucket=name, holder=holder, amount=amount, expires_at=now_ms + LEASE_TTL_MS)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[budget_leases.c.bucket, budget_leases.c.holder],
            set_={"amount": stmt.excluded.amount, "expires_at": stmt.excluded.expires_at},
        )
    )


class DatabaseStore:
    name = "database"

    def __init__(self, db: Database, holder: str) -> None:
        self.db = db
        self.holder = holder

    async def acquire(
        self, bucket: Bucket, limit: Decimal, held: Decimal, want: Decimal, minimum: Decimal, floor: Decimal = ZERO
    ) -> Grant:
        """`floor` is for RedisStore: here the counters are the database's own."""
        return await self.db.background(self._acquire, bucket, limit, held, want, minimum, write=True)

    def _acquire(
        self, conn: Connection, bucket: Bucket, limit: Decimal, held: Decimal, want: Decimal, minimum: Decimal
    ) -> Grant:
        name = bucket_name(bucket)
        if conn.dialect.name == "postgresql":  # top-ups of one bucket one at a time (SQLite: BEGIN IMMEDIATE)
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:name))"), {"name": name})
        now_ms = int(time.time() * 1000)
        spent, leases = _select_bucket(conn, name, bucket, now_ms)
        others = sum((amount for who, amount in leases if who != self.holder), ZERO)
        free = limit - spent - others - held
        granted = min(want, free) if free >= minimum else ZERO
        _write_lease(conn, name, self.holder, held + granted, now_ms)
        return Grant(granted, spent, others)

    def write_leases(self, conn: Connection, held: dict[Bucket, Decimal]) -> None:
        """In the flush's transaction: what this worker holds now that its spend is counted."""
        now_ms = int(time.time() * 1000)
        for bucket, amount in held.items():
            _write_lease(conn, bucket_name(bucket), self.holder, amount, now_ms)


# -- Redis as the store
# KEYS: the bucket's spend, its leases (a hash: holder -> "nanos:expires_ms"). Times are Redis's own
# clock, so the holders' clocks need not agree. ARGV[7] (and _SETTLE's ARGV[5], _FLOOR's ARGV[1]) is
# the spend the database counts, as this worker last read it: Redis's figure is raised to it.
_ACQUIRE = """
local spent = redis.call('GET', KEYS[1])
if not spent then return {-1, 0, 0} end
spent = tonumber(spent)
local floor = tonumber(ARGV[7])
if spent < floor then
  spent = floor
  redis.call('SET', KEYS[1], string.format('%d', floor), 'KEEPTTL')
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local holder, limit, held = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local want, minimum, ttl = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local others = 0
local all = redis.call('HGETALL', KEYS[2])
for i = 1, #all, 2 do
  local amount, expires = string.match(all[i + 1], '^(%d+):(%d+)$')
  if tonumber(expires) <= now then
    redis.call('HDEL', KEYS[2], all[i])
  elseif all[i] ~= holder then
    others = others + tonumber(amount)
  end
end
local free = limit - spent - others - held
local granted = 0
if free >= minimum then granted = math.min(want, free) end
if held + granted > 0 then
  redis.call('HSET', KEYS[2], holder, string.format('%d:%d', held + granted, now + ttl))
  redis.call('PEXPIRE', KEYS[2], ttl * 2)
end
return {granted, spent, others}
"""
# KEYS as above. ARGV: holder, nanos spent since the last report, nanos held now, ttl, spend per the
# database (0: unknown). Adds the spend, writes the lease, and raises the spend to the database's.
_SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local spent = tonumber(ARGV[2])
if spent > 0 then redis.call('INCRBY', KEYS[1], spent) end
local floor = tonumber(ARGV[5])
if floor > 0 then
  local current = tonumber(redis.call('GET', KEYS[1]) or '0')
  if current < floor then redis.call('SET', KEYS[1], string.format('%d', floor), 'KEEPTTL') end
end
local held, ttl = tonumber(ARGV[3]), tonumber(ARGV[4])
if held > 0 then
  redis.call('HSET', KEYS[2], ARGV[1], string.format('%d:%d', held, now + ttl))
  redis.call('PEXPIRE', KEYS[2], ttl * 2)
else
  redis.call('HDEL', KEYS[2], ARGV[1])
end
return 1
"""
_FLOOR = """
local current = redis.call('GET', KEYS[1])
if current and tonumber(current) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
end
return 1
"""


def to_nanos(amount: Decimal, rounding: str = ROUND_CEILING) -> int:
    return int((amount / NANO).to_integral_value(rounding))


def from_nanos(nanos: Any) -> Decimal:
    return Decimal(int(nanos)) * NANO


class RedisStore:
    name = "redis"

    def __init__(self, redis: Redis, db: Database, holder: str) -> None:
        self.redis = redis
        self.db = db
        self.holder = holder
        self._acquire = redis.register_script(_ACQUIRE)
        self._settle = redis.register_script(_SETTLE)
        self._floor = redis.register_script(_FLOOR)

    @staticmethod
    def keys(bucket: Bucket) -> list[str]:
        tag = "budget:" + bucket_name(bucket)
        return [redis_key(tag, "spent"), redis_key(tag, "leases")]

    async def acquire(
        self, bucket: Bucket, limit: Decimal, held: Decimal, want: Decimal, minimum: Decimal, floor: Decimal = ZERO
    ) -> Grant:
        from redis.exceptions import RedisError

        keys = self.keys(bucket)
        args = [
            self.holder,
            to_nanos(limit, ROUND_FLOOR),
            to_nanos(held),
            to_nanos(want),
            to_nanos(minimum),
            LEASE_TTL_MS,
            to_nanos(floor, ROUND_FLOOR),
        ]
        try:
            for _ in range(2):
                granted, spent, others = await retried(self.redis, lambda: self._acquire(keys=keys, args=args))
                if granted >= 0:
                    return Grant(from_nanos(granted), from_nanos(spent), from_nanos(others))
                await self._seed(bucket, keys[0])
        except (RedisError, OSError) as exc:
            raise StoreDown(str(exc)) from exc
        raise StoreDown("the bucket's spend could not be seeded")

    async def _seed(self, bucket: Bucket, spent_key: str) -> None:
        """The window's first use, or Redis lost its data: start from the database's figure."""
        spent = await self.db.background(_read_usage, bucket)
        await self.redis.set(spent_key, to_nanos(spent), nx=True)
        if bucket[1] != "total":  # a window's spend is not needed past its end (a day's grace for clocks)
            await self.redis.expire(spent_key, 40 * 86400)

    async def settle(
        self, spent: dict[Bucket, Decimal], held: dict[Bucket, Decimal], floors: dict[Bucket, Decimal]
    ) -> None:
        """After the database committed a flush: report its spend, write the leases, and raise each
        bucket's spend to the database's figure where Redis's is below it."""
        from redis.exceptions import RedisError

        async def send() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                for bucket in held.keys() | spent.keys():
                    args = [self.holder, to_nanos(spent.get(bucket, ZERO)), to_nanos(held.get(bucket, ZERO)),
                            LEASE_TTL_MS, to_nanos(floors.get(bucket, ZERO), ROUND_FLOOR)]  # fmt: skip
                    await self._settle(keys=self.keys(bucket), args=args, client=pipe)
                await pipe.execute()

        try:
            await retried(self.redis, send)
        except (RedisError, OSError) as exc:
            raise StoreDown(str(exc)) from exc

    async def raise_to(self, floors: dict[Bucket, Decimal]) -> None:
        """Raise each bucket's spend to the database's figure where Redis's is below it: a spend the
        database counted while Redis was away, or that a worker killed before reporting it never told."""
        from redis.exceptions import RedisError

        async def send() -> None:
            async with self.redis.pipeline(transaction=False) as pipe:
                for bucket, floor in floors.items():
                    await self._floor(keys=self.keys(bucket)[:1], args=[to_nanos(floor, ROUND_FLOOR)], client=pipe)
                await pipe.execute()

        try:
            await retried(self.redis, send)
        except (RedisError, OSError) as exc:
            raise StoreDown(str(exc)) from exc


def _read_usage(conn: Connection, bucket: Bucket) -> Decimal:
    spent, _ = _select_bucket(conn, bucket_name(bucket), bucket, 0)
    return spent


class Leases:
    """What this worker holds of each shared budget, and how it tops up and hands back."""

    def __init__(self, ledger: Ledger, db: Database, redis: Redis | None = None, holder: str | None = None) -> None:
        self.ledger = ledger
        self.holder = holder or holder_id()
        self.database = DatabaseStore(db, self.holder)
        self.redis = RedisStore(redis, db, self.holder) if redis is not None else None
        self.held: dict[Bucket, Decimal] = {}
        self.source: str = self.database.name if self.redis is None else self.redis.name
        self.refused: dict[Bucket, Grant] = {}  # the store's answer to the last top-up it could not give
        self.lock = asyncio.Lock()  # a holder's writes to the store one at a time (absolute amounts)
        self.outage = Outage("Redis (budgets)", "budgets are held through the database until it returns")
        self._refilling: dict[Bucket, asyncio.Task[None]] = {}
        self.recent: dict[Bucket, float] = {}  # bucket -> when this worker last topped it up (monotonic)
        self._short_until: dict[Bucket, float] = {}  # the store gave less than asked: ask only for needs till then

    # -- request path
    def room(self, bucket: Bucket) -> Decimal:
        """What this worker may still commit in the bucket: its lease less what it spent and has not
        yet reported (settled requests; those in flight are the ledger's `reserved`)."""
        return self.held.get(bucket, ZERO) - self.unreported(bucket)

    def unreported(self, bucket: Bucket) -> Decimal:
        """What this worker spent in the bucket that the store does not count yet."""
        unreported = ZERO
        for layer in (self.ledger.pending, self.ledger.flushing):
            if row := layer.get(bucket):
                unreported += row[0]
        return unreported

    def may_ask(self, bucket: Bucket) -> bool:
        """Whether asking for more than a request needs is worth a top-up: not soon after the store
        gave less than it was asked."""
        return time.monotonic() >= self._short_until.get(bucket, 0.0)

    def refill(self, bucket: Bucket, limit: Decimal, want: Decimal) -> None:
        """Top the lease up in the background (one at a time per bucket; not soon after the store gave
        less than it was asked), so that requests seldom wait for the store."""
        if bucket in self._refilling or not self.may_ask(bucket):
            return
        task = asyncio.get_running_loop().create_task(self._refill(bucket, limit, want))
        self._refilling[bucket] = task

    async def _refill(self, bucket: Bucket, limit: Decimal, want: Decimal) -> None:
        try:
            await self.top_up(bucket, limit, ZERO, want)
        except Exception as exc:  # the store is unreachable: the next request that needs more will say so
            log.debug("background top-up of %s failed: %s", bucket_name(bucket), exc)
        finally:
            self._refilling.pop(bucket, None)

    async def top_up(self, bucket: Bucket, limit: Decimal, minimum: Decimal, want: Decimal) -> Grant:
        """Ask the store for at least `minimum` more, `want` if it can. Zero granted: it cannot."""
        async with self.lock:
            store = self._store()
            self._switch_to(store.name)
            self.recent[bucket] = time.monotonic()
            floor = row[0] if (row := self.ledger.base.get(bucket)) else ZERO
            try:
                grant = await store.acquire(bucket, limit, self.held.get(bucket, ZERO), want, minimum, floor)
            except StoreDown as exc:
                self.outage.failed(exc)
                self._switch_to(self.database.name)
                grant = await self.database.acquire(bucket, limit, self.held.get(bucket, ZERO), want, minimum)
            if grant.granted:
                self.held[bucket] = self.held.get(bucket, ZERO) + grant.granted
                self.refused.pop(bucket, None)
            else:
                self.refused[bucket] = grant
            if grant.granted < want:
                self._short_until[bucket] = time.monotonic() + SHORT_PAUSE_SECONDS
            return grant

    # -- flush (store/writer.py)
    def spend_of(self, deltas: Counts) -> dict[Bucket, Decimal]:
        """The part of a flush's deltas spent under leases."""
        return {b: row[0] for b, row in deltas.items() if b in self.held}

    def after_flush(self, spent: dict[Bucket, Decimal], *, closing: bool = False) -> dict[Bucket, Decimal]:
        """The flush's spend is counted now: take it off the leases. A lease no request used since
        the last flush goes back whole (all of them when closing). Returns the new amounts for the
        caller to write to the store (zero: given back)."""
        new: dict[Bucket, Decimal] = {}
        for bucket, amount in list(self.held.items()):
            this = spent.get(bucket, ZERO)
            busy = this or self.ledger.in_flight(bucket[0]) or bucket in self.ledger.pending
            new[bucket] = left = max(ZERO, amount - this) if busy and not closing else ZERO
            if left > 0:
                self.held[bucket] = left
            else:
                del self.held[bucket]
        return new

    async def report(
        self, spent: dict[Bucket, Decimal], held: dict[Bucket, Decimal], floors: dict[Bucket, Decimal]
    ) -> None:
        """With Redis as the store: the flush committed; tell Redis (the database store wrote its
        leases in the flush's own transaction)."""
        if self.redis is None or self.source != self.redis.name:
            return
        try:
            await self.redis.settle(spent, held, floors)
        except StoreDown as exc:
            self.outage.failed(exc)

    async def reconcile(self) -> None:
        """After a sync read the database's counters: raise Redis's figure for the buckets this worker
        used lately to the database's, where it is below (store/writer.py calls this every sync)."""
        if self.redis is None or self.source != self.redis.name:
            return
        now = time.monotonic()
        for bucket in [b for b, at in self.recent.items() if now - at > RECONCILE_SECONDS]:
            del self.recent[bucket]
        floors = {b: row[0] for b in self.recent if (row := self.ledger.base.get(b))}
        if floors:
            try:
                await self.redis.raise_to(floors)
            except StoreDown as exc:
                self.outage.failed(exc)

    # -- which store
    def uses_database_in_flush(self) -> bool:
        return self.source == self.database.name

    def _store(self) -> DatabaseStore | RedisStore:
        return self.redis if self.redis is not None and self.outage.usable() else self.database

    def _switch_to(self, source: str) -> None:
        """Leases belong to the store that gave them: after a switch this worker holds nothing, and
        tops up from the new store for what it has in flight (the old store's leases lapse)."""
        if source != self.source:
            if source == "redis":
                self.outage.recovered()
            self.held.clear()
            self.source = source
