"""What a client sends into a generation's record cannot make the record unwritable.

PostgreSQL refuses a NUL in text and a string longer than its column, and a refused row fails the
whole batch written with it (other clients' generations and spend included). Run this module with
OMNIROUTER_DATABASE_URL set to see it on PostgreSQL; on SQLite it checks the same fitted values.
"""

from __future__ import annotations

import httpx

from omnirouter.store.fit import fit, text_columns
from omnirouter.store.tables import generations

HELLO = [{"role": "user", "content": "hello there"}]


def test_oversized_and_nul_fields_are_recorded_fitted(make_gateway, fake_a):
    gw = make_gateway(flush_interval=3600)  # one batch, written by the flush below
    key = gw.create_key()["key"]
    sent = [
        ({"session_id": "s\x00id"}, {}),
        ({"user": "u" * 300}, {}),
        ({"prompt_cache_key": "p" * 300}, {}),
        ({"prompt_cache_key": 5}, {}),
        ({}, {"x-title": "t" * 300, "user-agent": "a" * 600, "http-referer": "https://example.com/" + "r" * 1100}),
        ({"user": "ordinary", "session_id": "ordinary"}, {}),
    ]
    with gw.client(key) as c:
        ids = []
        for extra, headers in sent:
            r = c.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO, **extra}, headers=headers)
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])
        gw.flush()  # raises if the database refused the batch
        assert not gw.state.recorder.unflushed
        got = [c.get("/generation", params={"id": gen_id}).json()["data"] for gen_id in ids]
    assert got[0]["session_id"] == "sid"
    assert got[1]["external_user"] == "u" * 255
    assert got[2]["session_id"] == "p" * 256
    assert got[3]["session_id"] is None  # a cache key that is not a string names no session
    assert (got[4]["app_name"], got[4]["user_agent"]) == ("t" * 255, "a" * 512)
    assert len(got[4]["http_referer"]) == 1024
    assert (got[5]["external_user"], got[5]["session_id"]) == ("ordinary", "ordinary")


def test_a_generation_id_with_a_nul_is_not_found(gateway, api_key):
    with httpx.Client(base_url=gateway.api, headers={"Authorization": f"Bearer {api_key}"}) as c:
        for path in ("/generation", "/generation/content"):
            r = c.get(path, params={"id": "gen-\x00x"})
            assert r.status_code in (403, 404), r.text  # content without prompt logging is 403 first
            assert r.json()["error"]["code"] == r.status_code


def test_fit_cuts_drops_nuls_and_writes_numbers_as_text():
    row = {"upstream_id": 12345, "finish_reason": "x" * 40, "native_finish_reason": "a\x00b", "model": "m"}
    fit(row, text_columns(generations))
    assert row == {"upstream_id": "12345", "finish_reason": "x" * 32, "native_finish_reason": "ab", "model": "m"}
