"""Per-key rate limits: `rpm_limit` requests and `tpm_limit` tokens per minute, exact across every
worker and instance.

The window slides in 60 slots (a second each by default): a request is admitted while the requests
counted in the current slot and the 59 before it are under `rpm_limit`, and the tokens likewise under
`tpm_limit`. So no 60 consecutive slots ever hold more than `rpm_limit` admissions, whatever the
concurrency. Tokens: the prompt, estimated from the body's length, counts when the request is admitted,
atomically with the check; at settle the count of that slot is corrected to the prompt + completion
tokens the upstream reported. A window can therefore exceed `tpm_limit` by the completion tokens of
requests in flight (and a prompt's underestimate), never by prompts admitted at the same moment.

Where the counts live: with Redis, one Lua script per admission (the script reads Redis's clock, so
instances agree on the slot); without Redis, or while it cannot be reached, one row per key in the
database (`rate_windows`), read and written under the row's lock (SQLite: the write lock) and judged
on PostgreSQL's clock, one transaction per key at a time deciding every admission that waits for it.
Either way only keys with a limit pay that round trip; every other key skips this module. A Redis
that is down is noted once, retried after a second, and meanwhile the database holds the counts; the
two are not merged, so just after a switch a key may be admitted up to its limit again for what the
other store did not see.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError
from sqlalchemy import func, select, update

from omnirouter.cluster.redis import Outage, retried
from omnirouter.cluster.redis import key as redis_key
from omnirouter.errors import GatewayError
from omnirouter.governance.keys import KeyRecord
from omnirouter.store.tables import rate_windows

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from sqlalchemy.engine import Connection

    from omnirouter.store.db import Database

log = logging.getLogger("omnirouter.ratelimit")

SLOTS = 60  # a window is this many slots


class Window:
    """One kind's counts (requests or tokens) by slot number, as every store keeps them."""

    __slots__ = ("counts",)

    def __init__(self, counts: dict[int, int] | None = None) -> None:
        self.counts = counts or {}

    @classmethod
    def decode(cls, text: str) -> Window:
        return cls({int(s): int(c) for s, _, c in (p.partition(":") for p in text.split(",") if p)})

    def encode(self) -> str:
        return ",".join(f"{s}:{c}" for s, c in self.counts.items())

    def prune(self, current: int) -> int:
        """Drop the slots that left the window ending at slot `current`; return what the rest hold."""
        oldest = current - SLOTS + 1
        for s in [s for s in self.counts if s < oldest]:
            del self.counts[s]
        return sum(self.counts.values())

    def wait_slots(self, limit: int, current: int) -> int:
        """The first slot from which the window (already pruned) holds less than `limit`."""
        total = sum(self.counts.values())
        for s in sorted(self.counts):
            total -= self.counts[s]
            if total < limit:
                return s + SLOTS
        return current + 1

    def add(self, slot: int, amount: int) -> None:
        if amount:
            self.counts[slot] = self.counts.get(slot, 0) + amount

    def correct(self, slot: int, current: int, delta: int) -> None:
        """Settle's correction: into the admission's slot while it is in the window, else (only an
        increase) into the current one; never a decrease of a slot no longer counted."""
        if slot > current - SLOTS and slot in self.counts:
            self.counts[slot] += delta
        elif delta > 0:
            self.add(current, delta)


@dataclass(slots=True)
class Verdict:
    """What one admission check found. `wait_ms` per kind is 0 where that limit did not refuse."""

    admitted: bool
    slot: int
    now_ms: int  # the store's clock at the check
    requests: int  # counted in the window, this admission included if admitted
    tokens: int
    rpm_wait_ms: int = 0
    tpm_wait_ms: int = 0


def decide(
    req: Window, tok: Window, rpm: int | None, tpm: int | None, estimate: int, now_ms: int, slot_ms: int
) -> Verdict:
    """The admission rule for the stores that run Python (memory, the database's row); the Lua
    script below is the same rule for Redis."""
    current = now_ms // slot_ms
    requests, tokens = req.prune(current), tok.prune(current)
    v = Verdict(False, current, now_ms, requests, tokens)
    if rpm is not None and requests >= rpm:
        v.rpm_wait_ms = req.wait_slots(rpm, current) * slot_ms - now_ms
    if tpm is not None and tokens >= tpm:
        v.tpm_wait_ms = tok.wait_slots(tpm, current) * slot_ms - now_ms
    if v.rpm_wait_ms or v.tpm_wait_ms:
        return v
    v.admitted = True
    if rpm is not None:
        req.add(current, 1)
        v.requests += 1
    if tpm is not None:
        tok.add(current, estimate)
        v.tokens += estimate
    return v


# KEYS: requests, tokens. ARGV: slot_ms, SLOTS, rpm (0: none), tpm (0: none), estimate.
# Returns {admitted, slot, now_ms, requests, tokens, rpm_wait_ms, tpm_wait_ms}.
ADMIT_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local slot_ms, n = tonumber(ARGV[1]), tonumber(ARGV[2])
local rpm, tpm, est = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local cur = math.floor(now / slot_ms)
local function load(k)
  local flat, slots, sum = redis.call('HGETALL', k), {}, 0
  for i = 1, #flat, 2 do
    local s, c = tonumber(flat[i]), tonumber(flat[i + 1])
    if s <= cur - n then redis.call('HDEL', k, flat[i]) else sum = sum + c; slots[#slots + 1] = {s, c} end
  end
  return sum, slots
end
local function wait(slots, sum, limit)
  table.sort(slots, function(a, b) return a[1] < b[1] end)
  for _, e in ipairs(slots) do
    sum = sum - e[2]
    if sum < limit then return (e[1] + n) * slot_ms - now end
  end
  return (cur + 1) * slot_ms - now
end
local rsum, rslots = load(KEYS[1])
local tsum, tslots = load(KEYS[2])
local rwait, twait = 0, 0
if rpm > 0 and rsum >= rpm then rwait = wait(rslots, rsum, rpm) end
if tpm > 0 and tsum >= tpm then twait = wait(tslots, tsum, tpm) end
if rwait > 0 or twait > 0 then return {0, cur, now, rsum, tsum, rwait, twait} end
local ttl = (n + 1) * slot_ms
if rpm > 0 then
  redis.call('HINCRBY', KEYS[1], cur, 1); redis.call('PEXPIRE', KEYS[1], ttl); rsum = rsum + 1
end
if tpm > 0 and est > 0 then
  redis.call('HINCRBY', KEYS[2], cur, est); redis.call('PEXPIRE', KEYS[2], ttl); tsum = tsum + est
end
return {1, cur, now, rsum, tsum, 0, 0}
"""

# KEYS: tokens. ARGV: the admission's slot, the current slot, delta, SLOTS, ttl_ms. Window.correct in Lua.
CORRECT_LUA = """
local slot, cur, delta, n = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if slot > cur - n and redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBY', KEYS[1], ARGV[1], delta)
elseif delta > 0 then
  redis.call('HINCRBY', KEYS[1], ARGV[2], delta); redis.call('PEXPIRE', KEYS[1], ARGV[5])
end
return 0
"""


@dataclass(slots=True)
class Ticket:
    """An admitted request, for settle to correct its tokens."""

    key_hash: str
    slot: int
    clock_ms: int  # the store's clock at admission
    at: float  # time.monotonic() at admission: clock_ms + what has elapsed is the store's clock now
    estimate: int  # tokens counted at admission; None of them without a tpm_limit
    tpm: bool
    redis: bool  # which store counted it


def _refusal(key: KeyRecord, v: Verdict) -> GatewayError:
    """429 naming the limit that refused (the one that frees last, when both did), OpenRouter's way."""
    if v.tpm_wait_ms > v.rpm_wait_ms:
        name, limit, wait_ms, what = "key-tokens-per-minute", key.tpm_limit, v.tpm_wait_ms, "tpm_limit"
    else:
        name, limit, wait_ms, what = "key-requests-per-minute", key.rpm_limit, v.rpm_wait_ms, "rpm_limit"
    values = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": str(v.now_ms + wait_ms),  # epoch milliseconds, as OpenRouter's
    }
    return GatewayError(
        429,
        f"Rate limit exceeded: {name}",
        {"error_type": "rate_limit_exceeded", "limit": what, "headers": values},
        headers={"Retry-After": str(max(1, math.ceil(wait_ms / 1000))), **values},
    )


@dataclass
class RateLimits:
    """This worker's way to the shared counts: Redis when configured and reachable, else the database."""

    db: Database
    redis: Redis | None = None
    window_seconds: int = 60
    clock: Callable[[], float] = time.time  # SQLite's clock (Redis and PostgreSQL use their own)
    _outage: Outage = field(
        default_factory=lambda: Outage(
            "Redis (rate limits)", "rate limits are held through the database until it returns",
            ": rate limits are held there again",
        )
    )  # fmt: skip
    _admit_script: Any = None
    _correct_script: Any = None
    _pending: set[asyncio.Task[None]] = field(default_factory=set)
    # Per key, the admissions waiting for the next database transaction while one is under way.
    _queued: dict[str, list[tuple[KeyRecord, int, asyncio.Future[Verdict]]]] = field(default_factory=dict)
    _drains: set[asyncio.Task[None]] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.slot_ms = max(1, self.window_seconds * 1000 // SLOTS)
        if self.redis is not None:
            self._admit_script = self.redis.register_script(ADMIT_LUA)
            self._correct_script = self.redis.register_script(CORRECT_LUA)

    async def admit(self, key: KeyRecord, prompt_tokens: int) -> Ticket:
        """Count the request against its key's limits, or raise the 429 (nothing counted then)."""
        estimate = prompt_tokens if key.tpm_limit is not None else 0
        v: Verdict | None = None
        on_redis = self._redis_usable()
        if on_redis:
            try:
                v = await self._admit_redis(key, estimate)
                self._outage.recovered()
            except (RedisError, OSError) as exc:  # down, restarting, timing out: the database holds them meanwhile
                self._outage.failed(exc)
                on_redis = False
        if v is None:
            v = await self._admit_db(key, estimate)
        if not v.admitted:
            raise _refusal(key, v)
        return Ticket(key.hash, v.slot, v.now_ms, time.monotonic(), estimate, key.tpm_limit is not None, on_redis)

    def settle(self, ticket: Ticket, tokens: int) -> None:
        """The request's real tokens replace the estimate; written in the background, off the answer's path."""
        delta = tokens - ticket.estimate
        if not ticket.tpm or not delta:
            return
        task = asyncio.get_running_loop().create_task(self._correct(ticket, delta))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _correct(self, ticket: Ticket, delta: int) -> None:
        current = (ticket.clock_ms + int((time.monotonic() - ticket.at) * 1000)) // self.slot_ms
        try:
            if ticket.redis and self._redis_usable():
                try:
                    tokens = redis_key("rl:" + ticket.key_hash, "tokens")
                    ttl = (SLOTS + 1) * self.slot_ms
                    await self._correct_script(keys=[tokens], args=[ticket.slot, current, delta, SLOTS, ttl])
                    return
                except (RedisError, OSError) as exc:
                    self._outage.failed(exc)
            await self.db.background(self._correct_row, ticket.key_hash, ticket.slot, current, delta, write=True)
        except Exception:  # a lost correction only misstates one request's tokens for a minute
            log.warning("could not settle a request's tokens against its key's tpm_limit", exc_info=True)

    @property
    def pending(self) -> int:
        """Token corrections not written yet."""
        return len(self._pending)

    async def close(self) -> None:
        """Let the corrections in flight finish (the lifespan's end)."""
        if self._pending:
            await asyncio.wait(self._pending, timeout=5)

    # -- Redis
    def _redis_usable(self) -> bool:
        return self.redis is not None and self._outage.usable()

    async def _admit_redis(self, key: KeyRecord, estimate: int) -> Verdict:
        tag = "rl:" + key.hash
        keys = [redis_key(tag, "requests"), redis_key(tag, "tokens")]
        args = [self.slot_ms, SLOTS, key.rpm_limit or 0, key.tpm_limit or 0, estimate]
        assert self.redis is not None
        reply = await retried(self.redis, lambda: self._admit_script(keys=keys, args=args))
        admitted, slot, now_ms, requests, tokens, rpm_wait, tpm_wait = reply
        return Verdict(bool(admitted), slot, now_ms, requests, tokens, rpm_wait, tpm_wait)

    # -- the database (each runs in one write transaction: db.background(..., write=True))
    async def _admit_db(self, key: KeyRecord, estimate: int) -> Verdict:
        """One transaction at a time per key and worker: the admissions that arrive meanwhile are
        decided together in the next one. So a burst on one key holds one pooled connection, not
        one each queued on the row's lock, and one transaction decides many."""
        done: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        queue = self._queued.get(key.hash)
        if queue is None:
            self._queued[key.hash] = queue = []
            task = asyncio.get_running_loop().create_task(self._drain(key.hash))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)
        queue.append((key, estimate, done))
        return await done

    async def _drain(self, key_hash: str) -> None:
        queue = self._queued[key_hash]
        try:
            while queue:
                batch = queue[:]
                queue.clear()
                items = [(k, e) for k, e, _ in batch]
                try:
                    verdicts = await self.db.background(self._admit_rows, key_hash, items, write=True)
                except Exception as exc:
                    for _, _, f in batch:
                        if not f.done():
                            f.set_exception(exc)
                    continue
                for (_, _, f), v in zip(batch, verdicts, strict=True):
                    if not f.done():  # its request may have gone (cancelled): it counted all the same
                        f.set_result(v)
        finally:
            del self._queued[key_hash]

    def _admit_rows(self, conn: Connection, key_hash: str, items: list[tuple[KeyRecord, int]]) -> list[Verdict]:
        req, tok, now_ms = self._locked_row(conn, key_hash)
        verdicts = [decide(req, tok, k.rpm_limit, k.tpm_limit, e, now_ms, self.slot_ms) for k, e in items]
        if any(v.admitted for v in verdicts):
            _write(conn, key_hash, req, tok)
        return verdicts

    def _locked_row(self, conn: Connection, key_hash: str) -> tuple[Window, Window, int]:
        """The key's counts, locked for this transaction, and the time to judge them at: PostgreSQL's
        clock, which every instance shares; SQLite's users share a machine, and its clock."""
        c = rate_windows.c
        pg = conn.dialect.name == "postgresql"
        cols = [c.requests, c.tokens]
        if pg:
            cols.append(func.floor(func.extract("epoch", func.clock_timestamp()) * 1000))
        q = select(*cols).where(c.key_hash == key_hash)
        if pg:
            q = q.with_for_update()  # SQLite: the transaction already holds the write lock (BEGIN IMMEDIATE)
        row = conn.execute(q).first()
        if row is None:
            conn.execute(_insert_absent(conn, key_hash))
            row = conn.execute(q).one()
        now_ms = int(row[2]) if pg else int(self.clock() * 1000)
        return Window.decode(row[0]), Window.decode(row[1]), now_ms

    def _correct_row(self, conn: Connection, key_hash: str, slot: int, current: int, delta: int) -> None:
        req, tok, _ = self._locked_row(conn, key_hash)
        tok.prune(current)
        tok.correct(slot, current, delta)
        _write(conn, key_hash, req, tok)


def _insert_absent(conn: Connection, key_hash: str) -> Any:
    """The key's row, unless another transaction made it first (then this waits for it, and locks it next)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert(rate_windows).values(key_hash=key_hash, requests="", tokens="").on_conflict_do_nothing()


def _write(conn: Connection, key_hash: str, req: Window, tok: Window) -> None:
    conn.execute(
        update(rate_windows)
        .where(rate_windows.c.key_hash == key_hash)
        .values(requests=req.encode(), tokens=tok.encode())
    )
