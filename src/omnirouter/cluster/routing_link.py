"""The background tasks that share routing health between instances through Redis.

Nothing here runs on a request's path: requests change their process's circuits, statistics and
sticky sessions as without Redis (SharedHealth, SharedStats and SharedSticky announce the changes
into an outbox), and four tasks do the rest:

- publish: the outbox goes to Redis in one pipeline per wake-up. A circuit's state is kept in a hash
  and published on a channel by one Lua script, so the hash and the channel agree on the order; a
  sticky session is a key with its TTL plus a message.
- listen: one pub/sub connection applies the others' circuits and sessions (its own too: every
  instance then applies one sequence, Redis's). On each (re)subscription it loads what Redis holds
  and writes back what only this process knows (Redis restarted empty).
- stats: every `cluster_stats_interval` this instance's summaries go into a hash (a field per
  instance) and the other fields come back for the planner and the endpoints listing.
- probes: shortly before a circuit's cooling period ends, the instances race for its probe slot
  (SET NX with a short expiry); the others keep the endpoint at the end of their order while the
  winner may probe, and take their turn if it did not within the slot's life.

A Redis that is down costs no request: each process keeps its own state, one warning is logged per
outage, and everything reconnects and republishes by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import msgspec

from omnirouter.cluster.health import SharedHealth
from omnirouter.cluster.redis import Outage, key, retried, stop_tasks
from omnirouter.cluster.stats import SharedStats
from omnirouter.cluster.sticky import SharedSticky
from omnirouter.routing.health import PROBE_TIMEOUT_SECONDS, EndpointKey, _Circuit

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from omnirouter.routing.engine import Routing

log = logging.getLogger("omnirouter.cluster")

CIRCUITS = key("health", "circuits")  # field "model\tslug" -> [open until (wall clock), cooldown]
HEALTH_CHANNEL = key("health", "events")
STATS = key("stats", "instances")  # field instance -> {"at": wall clock, "eps": [summaries]}
STICKY_CHANNEL = key("sticky", "events")
STICKY_PREFIX = key("sticky", "s") + ":"

CLAIM_SECONDS = 1.0  # how long a won probe slot waits for its holder to probe before the next race
CLAIM_LEAD = 0.25  # race this long before the cooling period ends, so no one probes before knowing
CLAIM_TICK = 0.1
STATS_STALE_SECONDS = 10.0  # another instance's summary older than this is not read
STATS_FORGET_SECONDS = 60.0  # nor kept in Redis
OUTBOX_LIMIT = 10_000  # past this, announcements are dropped (the next resync carries the state)
HASH_LIFE_MS = 86_400_000
_BACKOFF_MAX = 2.0

# KEYS: circuits hash, probe slot. ARGV: field, state ("" when closed), channel, message, instance.
_CIRCUIT_SCRIPT = """
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], ARGV[1]) else redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('DEL', KEYS[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
"""
# KEYS: probe slot. ARGV: instance, ms, channel, message.
_PROBE_SCRIPT = """
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
"""

_encode = msgspec.json.encode
_decode = msgspec.json.decode


def _field(k: EndpointKey) -> str:
    return f"{k[0]}\t{k[1]}"


def _probe_key(k: EndpointKey) -> str:
    return key("health", "probe", k[0], k[1])


class RoutingLink:
    def __init__(self, redis: Redis, routing: Routing, *, stats_interval: float = 1.0) -> None:
        assert isinstance(routing.health, SharedHealth) and isinstance(routing.stats, SharedStats)
        assert isinstance(routing.sticky, SharedSticky)
        self.redis = redis
        self.routing = routing
        self.health: SharedHealth = routing.health
        self.stats: SharedStats = routing.stats
        self.stats_interval = stats_interval
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.outage = Outage(
            "Redis (routing health)",
            "circuit breakers, endpoint statistics and sticky sessions are this instance's own until it returns",
            ": routing health is shared again",
        )
        self.outbox: deque[tuple[str, Any]] = deque(maxlen=OUTBOX_LIMIT)
        self._wake = asyncio.Event()
        self._claims: dict[EndpointKey, tuple[_Circuit, float]] = {}  # circuit -> decided until (local clock)
        self._remote_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self.health.announce = lambda event: self._post("health", event)
        routing.sticky.announce = lambda event: self._post("sticky", event)  # type: ignore[attr-defined]

    @property
    def sticky(self) -> SharedSticky:
        return self.routing.sticky  # type: ignore[return-value]  # a test may swap in a fresh one

    def _post(self, kind: str, event: Any) -> None:
        self.outbox.append((kind, event))
        self._wake.set()

    async def start(self) -> None:
        for loop in (self._publish, self._listen, self._share_stats, self._claim_probes):
            self._tasks.append(asyncio.create_task(loop(), name=f"cluster-{loop.__name__.strip('_')}"))

    async def close(self) -> None:
        await stop_tasks(self._tasks, "routing health")
        with contextlib.suppress(Exception):  # our statistics leave with us; nothing else to do
            await asyncio.wait_for(self.redis.hdel(STATS, self.instance), 0.5)

    # -- publish
    async def _publish(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch = list(self.outbox)
            self.outbox.clear()
            if not batch:
                continue

            async def send(batch: list[tuple[str, Any]] = batch) -> None:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for kind, event in batch:
                        (self._queue_health if kind == "health" else self._queue_sticky)(pipe, event)
                    await pipe.execute()

            try:
                await retried(self.redis, send)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # dropped: the resync after reconnecting carries the state
                self.outage.failed(err)

    def _queue_health(self, pipe: Any, event: Any) -> None:
        kind, k, deadline, cooldown = event
        message = _encode([kind, k[0], k[1], deadline, cooldown]).decode()
        if kind == "probe":
            ms = int(PROBE_TIMEOUT_SECONDS * 1000)
            pipe.eval(_PROBE_SCRIPT, 1, _probe_key(k), self.instance, ms, HEALTH_CHANNEL, message)
        else:
            state = _encode([deadline, cooldown]).decode() if kind == "open" else ""
            args = (_field(k), state, HEALTH_CHANNEL, message, self.instance, HASH_LIFE_MS)
            pipe.eval(_CIRCUIT_SCRIPT, 2, CIRCUITS, _probe_key(k), *args)

    def _queue_sticky(self, pipe: Any, event: Any) -> None:
        kind, session, model_id, slug, ttl = event
        if kind == "set":
            pipe.set(STICKY_PREFIX + session, _encode([model_id, slug]).decode(), px=max(1, int(ttl * 1000)))
        else:
            pipe.delete(STICKY_PREFIX + session)
        pipe.publish(STICKY_CHANNEL, _encode([kind, session, model_id, slug, ttl]).decode())

    # -- listen
    async def _listen(self) -> None:
        backoff = 0.1
        while True:
            pubsub = self.redis.pubsub()
            try:
                await pubsub.subscribe(HEALTH_CHANNEL, STICKY_CHANNEL)
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is None:
                        continue
                    if message["type"] == "message":
                        self._dispatch(message["channel"], message["data"])
                    elif message["type"] == "subscribe" and message["channel"] == STICKY_CHANNEL:
                        await self._resync()  # subscribed (again): nothing published from now on is missed
                        backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.outage.failed(err)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def _dispatch(self, channel: str, data: str) -> None:
        try:
            event = _decode(data)
            if channel == HEALTH_CHANNEL:
                kind, model_id, slug, deadline, cooldown = event
                self.health.apply((kind, (model_id, slug), float(deadline), float(cooldown)))
            elif channel == STICKY_CHANNEL:
                kind, session, model_id, slug, ttl = event
                self.sticky.apply((kind, session, model_id, slug, float(ttl)))
        except (msgspec.DecodeError, ValueError, TypeError):
            log.warning("ignored a malformed message on %s", channel)

    async def _resync(self) -> None:
        """Take the cluster's circuits and sessions from Redis; write back what only this process knows."""
        stored = await self.redis.hgetall(CIRCUITS)
        known: set[EndpointKey] = set()
        for name, state in stored.items():
            model_id, _, slug = name.partition("\t")
            deadline, cooldown = _decode(state)
            known.add((model_id, slug))
            self.health.apply(("open", (model_id, slug), float(deadline), float(cooldown)))
        mine = [e for e in self.health.open_events() if e[1] not in known]
        sessions = await self._load_sessions()
        mine_sessions = [e for e in self.sticky.entries() if e[1] not in sessions]
        if mine or mine_sessions:  # published too: the others may have resynced already
            async with self.redis.pipeline(transaction=False) as pipe:
                for event in mine:
                    self._queue_health(pipe, event)
                for event in mine_sessions:
                    self._queue_sticky(pipe, event)
                await pipe.execute()
        self.outage.recovered()

    async def _load_sessions(self) -> set[str]:
        names = [name async for name in self.redis.scan_iter(match=STICKY_PREFIX + "*", count=1000)]
        found: set[str] = set()
        for i in range(0, len(names), 1000):
            chunk = names[i : i + 1000]
            async with self.redis.pipeline(transaction=False) as pipe:
                for name in chunk:
                    pipe.get(name)
                    pipe.pttl(name)
                replies = await pipe.execute()
            for name, value, ttl in zip(chunk, replies[::2], replies[1::2], strict=True):
                if value is None or ttl is None or ttl <= 0:
                    continue
                model_id, slug = _decode(value)
                session = name[len(STICKY_PREFIX) :]
                found.add(session)
                self.sticky.apply(("set", session, model_id, slug, ttl / 1000))
        return found

    # -- statistics
    async def _share_stats(self) -> None:
        while True:
            try:
                await retried(self.redis, self._exchange_stats)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                self.outage.failed(err)
                if self.stats.remote and time.monotonic() - self._remote_at > STATS_STALE_SECONDS:
                    self.stats.install({})  # too old to stand for the cluster: this process's own again
            await asyncio.sleep(self.stats_interval)

    async def _exchange_stats(self) -> None:
        mine = _encode({"at": time.time(), "eps": self.stats.summary()}).decode()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(STATS, self.instance, mine)
            pipe.pexpire(STATS, int(STATS_FORGET_SECONDS * 1000))
            pipe.hgetall(STATS)
            *_, everyone = await pipe.execute()
        now = time.time()
        remote: dict[EndpointKey, list[dict[str, Any]]] = {}
        gone = []
        for instance, blob in everyone.items():
            if instance == self.instance:
                continue
            theirs = _decode(blob)
            age = now - theirs["at"]
            if age > STATS_FORGET_SECONDS:
                gone.append(instance)
            if age > STATS_STALE_SECONDS:
                continue
            for summary in theirs["eps"]:
                remote.setdefault((summary["m"], summary["e"]), []).append(summary)
        if gone:
            await self.redis.hdel(STATS, *gone)
        self.stats.install(remote)
        self._remote_at = time.monotonic()
        self.outage.recovered()

    # -- the probe slot
    async def _claim_probes(self) -> None:
        while True:
            await asyncio.sleep(CLAIM_TICK)
            circuits = self.health.circuits()
            if not circuits and not self._claims:
                continue
            for k in [k for k, (c, _) in self._claims.items() if circuits.get(k) is not c]:
                del self._claims[k]  # closed or reopened since: a new race when its time comes
            for k, circuit in list(circuits.items()):
                try:
                    await retried(self.redis, lambda k=k, circuit=circuit: self._claim(k, circuit))
                except asyncio.CancelledError:
                    raise
                except Exception as err:  # probe as one process would
                    self.outage.failed(err)
                    self._claims[k] = (circuit, self.health.clock() + CLAIM_SECONDS)

    async def _claim(self, k: EndpointKey, circuit: _Circuit) -> None:
        now = self.health.clock()
        free_at = circuit.open_until
        if circuit.probe_started is not None:
            free_at = max(free_at, circuit.probe_started + PROBE_TIMEOUT_SECONDS)
        decided = self._claims.get(k)
        if free_at - now > CLAIM_LEAD or (decided is not None and decided[0] is circuit and now < decided[1]):
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(_probe_key(k), self.instance, nx=True, px=int(CLAIM_SECONDS * 1000))
            pipe.pttl(_probe_key(k))
            won, ttl = await pipe.execute()
        if self.health.circuits().get(k) is not circuit:
            return  # it changed while we asked
        if won:
            self._claims[k] = (circuit, now + CLAIM_SECONDS)  # ours: the next request here may probe
            return
        until = now + max(ttl or 0, 0) / 1000
        # Held elsewhere: keep it at the end here until a little past the slot's end, and race again then.
        self.health.hold_probe(k, circuit, until + CLAIM_LEAD)
        self._claims[k] = (circuit, until)
