"""GET /generation and /generation/content: the record of every finished request."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from decimal import Decimal

import openai

from omnirouter.store.db import WRITER_NICE
from omnirouter.testing import Reply, Status, Stream
from tests.spec_validation import spec_available, validate_response

HELLO = [{"role": "user", "content": "hello there"}]


def fetch(gateway, key: str, path: str, gen_id: str):
    with gateway.client(key) as c:
        for _ in range(50):
            r = c.get(path, params={"id": gen_id})
            if r.status_code != 404:
                return r
            time.sleep(0.05)
    return r


def test_generation_record_matches_the_response(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("hi!", prompt_tokens=30, completion_tokens=5, cached_tokens=10))
    client = openai.OpenAI(
        base_url=gateway.api,
        api_key=api_key,
        default_headers={"HTTP-Referer": "https://myapp.example", "X-Title": "My App"},
    )
    raw = client.chat.completions.with_raw_response.create(model="test/alpha", messages=HELLO, user="u-42")
    body = json.loads(raw.http_response.text, parse_float=Decimal)
    r = fetch(gateway, api_key, "/generation", body["id"])
    assert r.status_code == 200, r.text
    if spec_available():
        validate_response("getGeneration", r.json())
    gen = json.loads(r.text, parse_float=Decimal)["data"]
    assert gen["id"] == body["id"]
    assert gen["model"] == "test/alpha"
    assert gen["provider_name"] == "Fake A"
    assert gen["total_cost"] == body["usage"]["cost"] == gen["usage"]
    assert (gen["native_tokens_prompt"], gen["native_tokens_completion"], gen["native_tokens_cached"]) == (
        30,
        5,
        10,
    )
    assert gen["streamed"] is False and gen["cancelled"] is False
    assert gen["finish_reason"] == "stop"
    assert gen["http_referer"] == "https://myapp.example" and gen["origin"] == "https://myapp.example"
    assert gen["external_user"] == "u-42"
    assert gen["latency"] >= 0
    assert gen["upstream_id"] and gen["upstream_id"].startswith("chatcmpl-")
    assert [p["provider_name"] for p in gen["provider_responses"]] == ["Fake A"]
    assert gen["provider_responses"][0]["status"] == 200


def test_generation_lists_failed_attempts(gateway, api_key, fake_a, fake_b):
    fake_a.fake.script(Status(503))
    with gateway.client(api_key) as c:
        r = c.post(
            "/chat/completions",
            json={"model": "test/gamma", "messages": HELLO, "provider": {"order": ["fake-a", "fake-b"]}},
        )
    gen = fetch(gateway, api_key, "/generation", r.json()["id"]).json()["data"]
    assert [(p["provider_name"], p["status"]) for p in gen["provider_responses"]] == [
        ("Fake A", 503),
        ("Fake B", 200),
    ]
    assert gen["provider_name"] == "Fake B"


def test_streamed_generation(gateway, api_key, fake_a):
    fake_a.fake.script(Stream(content="a b c d", prompt_tokens=7))
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key, default_headers={"X-OpenRouter-Title": "T"})
    chunks = list(client.chat.completions.create(model="test/alpha", messages=HELLO, stream=True))
    gen = fetch(gateway, api_key, "/generation", chunks[0].id).json()["data"]
    assert gen["streamed"] is True
    assert gen["tokens_prompt"] == 7 and gen["tokens_completion"] == chunks[-1].usage.completion_tokens
    assert gen["generation_time"] is not None


def test_generation_is_private_to_its_key(gateway, api_key):
    with gateway.client(api_key) as c:
        gen_id = c.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO}).json()["id"]
    other = gateway.create_key()["key"]
    with gateway.client(other) as c:
        assert c.get("/generation", params={"id": gen_id}).status_code == 404
    # The operator's management key sees every generation.
    assert fetch(gateway, gateway.management_key, "/generation", gen_id).status_code == 200


def test_unknown_generation_is_404_and_missing_id_400(gateway, api_key):
    with gateway.client(api_key) as c:
        assert c.get("/generation", params={"id": "gen-nope"}).status_code == 404
        assert c.get("/generation").status_code == 400


def test_content_needs_prompt_logging(gateway, api_key):
    with gateway.client(api_key) as c:
        gen_id = c.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO}).json()["id"]
    r = fetch(gateway, api_key, "/generation/content", gen_id)
    assert r.status_code == 403
    assert "logging" in r.json()["error"]["message"]


def test_content_with_prompt_logging(make_gateway, fake_a):
    gw = make_gateway(log_prompts=True)
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("the answer"))
    with gw.client(key) as c:
        gen_id = c.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO}).json()["id"]
    gw.flush()
    r = fetch(gw, key, "/generation/content", gen_id)
    assert r.status_code == 200, r.text
    if spec_available():
        validate_response("listGenerationContent", r.json())
    data = r.json()["data"]
    assert data["input"]["messages"] == HELLO
    assert data["output"]["completion"] == "the answer"


def test_a_generation_reads_the_same_before_and_after_it_is_written(make_gateway, fake_a, fake_b):
    """Until a flush, /generation answers from memory; after it, from the database. Every field
    (exact costs, timestamps, JSON columns, flags, missing values) must come back the same."""
    gw = make_gateway(flush_interval=3600, log_prompts=True)
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("hi!", prompt_tokens=30, completion_tokens=5, cached_tokens=10))
    fake_b.fake.script(Status(503))
    headers = {"HTTP-Referer": "https://myapp.example", "X-Title": "My App"}
    with gw.client(key) as c:
        ok = c.post("/chat/completions", headers=headers, json={"model": "test/alpha", "messages": HELLO, "user": "u"})
        only_b = {"order": ["fake-b"], "allow_fallbacks": False}
        failed = c.post("/chat/completions", json={"model": "test/gamma", "messages": HELLO, "provider": only_b})
    assert ok.status_code == 200 and failed.status_code == 503, (ok.text, failed.text)
    ids = [ok.json()["id"], failed.headers["x-generation-id"]]

    def read() -> list[str]:
        return [fetch(gw, key, path, i).text for i in ids for path in ("/generation", "/generation/content")]

    before = read()
    assert set(gw.state.recorder.unflushed) == set(ids)
    gw.flush()
    assert not gw.state.recorder.unflushed
    after = read()
    assert after == before
    gens = [json.loads(text, parse_float=Decimal)["data"] for text in after[::2]]
    assert gens[0]["total_cost"] == json.loads(ok.text, parse_float=Decimal)["usage"]["cost"] > 0
    assert gens[0]["http_referer"] == "https://myapp.example" and gens[0]["native_tokens_cached"] == 10
    assert gens[1]["finish_reason"] == "error" and gens[1]["provider_responses"][0]["status"] == 503


def test_a_flush_of_many_generations_lands_every_one(make_gateway, fake_a, fake_b):
    """More rows than one slice of the writer's executemany: all land, each once."""
    gw = make_gateway(flush_interval=3600)
    key = gw.create_key()["key"]
    with gw.client(key) as c:
        answers = [c.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO}) for _ in range(40)]
    assert all(a.status_code == 200 for a in answers)
    gw.flush()
    assert not gw.state.recorder.unflushed
    for a in answers:
        gen = fetch(gw, key, "/generation", a.json()["id"]).json()["data"]
        assert gen["total_cost"] == a.json()["usage"]["cost"]


def test_the_sqlite_writer_gives_way_to_requests(gateway):
    """On SQLite the writes run in a thread beside the event loop, at a lower priority."""
    db = gateway.state.db

    def priority(_conn):
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    if not db.writes_in_thread:
        assert db.url.startswith("postgresql")
        return
    got = asyncio.run_coroutine_threadsafe(db.background(priority, write=True), gateway.loop).result(timeout=10)
    assert got == (WRITER_NICE if sys.platform == "linux" else 0)
