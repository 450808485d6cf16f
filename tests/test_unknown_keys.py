"""A well-formed key the database does not have costs one lookup, not one per request: brute force
with it cannot drive the database's load. A key created afterwards works at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import event

from omnirouter.governance.keys import KeyRecord, KeyStore, UnknownKeys, key_hash, mask, new_key
from omnirouter.store import repo
from omnirouter.store.db import Database
from tests.gateway import Gateway

CHAT = {"model": "test/alpha", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def key_lookups(gateway: Gateway) -> Iterator[list[str]]:
    """Every statement that looks one key up by its hash, as the database receives it."""
    seen: list[str] = []
    engine = gateway.state.db.engine.sync_engine

    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM api_keys" in statement and "api_keys.hash =" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


def test_repeating_an_unknown_key_costs_one_lookup(gateway: Gateway, key_lookups: list[str]):
    stranger = new_key()
    with gateway.client(stranger) as c:
        statuses = [c.post("/chat/completions", json=CHAT).status_code for _ in range(25)]
        statuses += [c.get("/key").status_code for _ in range(5)]
    assert statuses == [401] * 30
    assert len(key_lookups) == 1


def test_a_key_created_after_unknown_keys_were_tried_works_at_once(gateway: Gateway, key_lookups: list[str]):
    with gateway.client(new_key()) as c:
        assert c.post("/chat/completions", json=CHAT).status_code == 401
    created = gateway.create_key()["key"]
    with gateway.client(created) as c:
        assert c.post("/chat/completions", json=CHAT).status_code == 200


def test_a_key_another_worker_created_works_within_the_sync_interval(gateway: Gateway):
    """Another worker (or `omnirouter keys create`) writes the key to the database only; this worker
    had just refused it, so it is remembered as unknown, for one sync interval at most."""
    secret = new_key()
    with gateway.client(secret) as c:
        assert c.post("/chat/completions", json=CHAT).status_code == 401

        async def insert_elsewhere() -> None:
            db = Database(gateway.settings.db_url)
            try:
                async with db.engine.begin() as conn:
                    record = KeyRecord(hash=key_hash(secret), name="elsewhere", label=mask(secret),
                                       created_at=datetime.now(UTC))  # fmt: skip
                    await repo.insert_key(conn, record)
            finally:
                await db.close()

        asyncio.run(insert_elsewhere())
        deadline = time.monotonic() + 5 * gateway.settings.sync_interval + 2
        while (status := c.post("/chat/completions", json=CHAT).status_code) == 401:
            assert time.monotonic() < deadline, "the key never became usable"
            time.sleep(0.05)
        assert status == 200


def test_the_unknown_key_cache_is_bounded_expires_and_forgets_a_created_key():
    unknown = UnknownKeys(ttl=60, size=3)
    for h in "abcde":
        unknown.add(h)
    assert len(unknown) == 3
    assert "a" not in unknown and "b" not in unknown and "e" in unknown  # the oldest went first

    store = KeyStore(unknown=unknown)
    store.put(KeyRecord(hash="e", name="made here", label="x", created_at=datetime.now(UTC)))
    assert "e" not in unknown

    brief = UnknownKeys(ttl=0)
    brief.add("x")
    assert "x" not in brief


def test_keys_looked_up_or_dropped_while_a_sync_reads_are_laid_over_what_it_read():
    """A sync's read of every key may predate a key this worker looked up or deleted meanwhile: the read
    is applied (its changes made elsewhere must not wait for the next poll) with those edits on top."""
    now = datetime.now(UTC)
    store = KeyStore()
    store.replace_all([KeyRecord(hash=h, name=h, label="x", created_at=now) for h in ("old", "gone")])
    store.reading()
    store.put(KeyRecord(hash="new", name="looked up here", label="x", created_at=now))
    store.drop("gone")
    changed = KeyRecord(hash="old", name="renamed elsewhere", label="x", created_at=now)
    store.replace_all([changed, KeyRecord(hash="gone", name="gone", label="x", created_at=now)])  # read before
    assert store.by_hash == {"old": changed, "new": store.by_hash["new"]}
    store.put(KeyRecord(hash="later", name="after the sync", label="x", created_at=now))
    store.replace_all([changed])  # no read under way: what is read is all there is
    assert set(store.by_hash) == {"old"}
