"""Streams: keep-alive comments, errors before and after the first token, client disconnects."""

from __future__ import annotations

import contextlib
import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import openai
import pytest

from omnirouter.testing import Delay, Status, Stream
from tests.conftest import ALPHA_PRICES, BETA_PRICES
from tests.spec_validation import require_spec, validate

HELLO = [{"role": "user", "content": "hello there"}]


def stream_lines(gateway, key: str, body: dict) -> tuple[httpx.Response, list[str]]:
    with gateway.client(key) as c, c.stream("POST", "/chat/completions", json={**body, "stream": True}) as r:
        lines = [line for line in r.iter_lines() if line]
        return r, lines


def data_events(lines: list[str]) -> list[dict]:
    return [json.loads(x[6:], parse_float=Decimal) for x in lines if x.startswith("data: {")]


def leave_after_events(gateway, key: str, model: str, events: int) -> str:
    """Open a stream, read `events` data events, and close the connection: the generation's id."""
    with (
        gateway.client(key) as c,
        c.stream("POST", "/chat/completions", json={"model": model, "messages": HELLO, "stream": True}) as r,
    ):
        received = 0
        for line in r.iter_lines():
            if line.startswith("data: {"):
                received += 1
            if received >= events:
                return r.headers["x-generation-id"]
    raise AssertionError(f"the stream ended before {events} events")


def generation(gateway, key: str, gen_id: str, wait: float = 2.5) -> dict:
    """GET /generation, retrying briefly while the batched writer catches up (as clients do)."""
    with gateway.client(key) as c:
        for _ in range(int(wait / 0.05)):
            r = c.get("/generation", params={"id": gen_id})
            if r.status_code == 200:
                return json.loads(r.text, parse_float=Decimal)["data"]
            time.sleep(0.05)
    raise AssertionError(f"generation {gen_id} never appeared: {r.status_code} {r.text}")


def test_keepalive_comments_while_upstream_is_silent(make_gateway, fake_a):
    gw = make_gateway(stream_keepalive_seconds=0.1)
    key = gw.create_key()["key"]
    fake_a.fake.script(Delay(0.45, then=Stream(content="late answer")))
    r, lines = stream_lines(gw, key, {"model": "test/alpha", "messages": HELLO})
    assert r.status_code == 200
    first_data = next(i for i, x in enumerate(lines) if x.startswith("data:"))
    comments = [x for x in lines[:first_data] if x == ": OPENROUTER PROCESSING"]
    assert len(comments) >= 2, lines[:5]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in data_events(lines) if c["choices"])
    assert text == "late answer"
    assert lines[-1] == "data: [DONE]"


def test_upstream_error_before_first_token_is_a_plain_json_error(gateway, api_key, fake_a):
    fake_a.fake.script(
        Status(400, {"error": {"message": "bad 'messages'", "type": "invalid_request_error", "code": "invalid_value"}})
    )
    with (
        gateway.client(api_key) as c,
        c.stream("POST", "/chat/completions", json={"model": "test/alpha", "messages": HELLO, "stream": True}) as r,
    ):
        r.read()
    assert r.status_code == 400
    assert r.headers["content-type"].startswith("application/json")
    error = r.json()["error"]
    assert error["code"] == 400
    assert error["metadata"]["provider_name"] == "Fake A"
    assert "bad 'messages'" in error["metadata"]["raw"]


def test_error_after_keepalive_commit_goes_in_band(make_gateway, fake_a):
    gw = make_gateway(stream_keepalive_seconds=0.05)
    key = gw.create_key()["key"]
    fake_a.fake.script(Delay(0.3, then=Status(503)))
    r, lines = stream_lines(gw, key, {"model": "test/alpha", "messages": HELLO})
    assert r.status_code == 200  # committed by the keep-alive before the upstream answered
    errors = [e for e in data_events(lines) if "error" in e]
    assert len(errors) == 1
    assert errors[0]["choices"][0]["finish_reason"] == "error"
    assert errors[0]["error"]["code"] == 503


def test_mid_stream_failure_is_reported_in_band_and_not_billed(gateway, api_key, fake_a):
    require_spec()
    fake_a.fake.script(Stream(chunks=10, error_after=3, error={"message": "upstream exploded", "code": 500}))
    r, lines = stream_lines(gateway, api_key, {"model": "test/alpha", "messages": HELLO})
    assert r.status_code == 200
    events = data_events(lines)
    err = next(e for e in events if "error" in e)
    validate(err, "ChatStreamChunk")
    assert err["choices"][0]["finish_reason"] == "error"
    assert err["error"]["metadata"]["error_type"] in {"server", "provider_unavailable"}
    assert "exploded" not in err["error"]["message"]  # 5xx details are masked
    assert events[-1]["usage"]["cost"] == 0  # zero-completion insurance: an error finish is free
    assert lines[-1] == "data: [DONE]"
    gen = generation(gateway, api_key, r.headers["x-generation-id"])
    assert gen["finish_reason"] == "error" and gen["total_cost"] == 0


def test_openai_sdk_raises_on_in_band_error(gateway, api_key, fake_a):
    fake_a.fake.script(Stream(chunks=5, error_after=2))
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key, max_retries=0)
    with pytest.raises(openai.APIError):
        for _ in client.chat.completions.create(model="test/alpha", messages=HELLO, stream=True):
            pass


@pytest.mark.parametrize("fault", [Stream(chunks=6, stop_after=2), Stream(chunks=6, broken_chunk_at=2)])
def test_truncated_or_broken_stream_ends_with_an_error_event(gateway, api_key, fake_a, fault):
    fake_a.fake.script(fault)
    _, lines = stream_lines(gateway, api_key, {"model": "test/alpha", "messages": HELLO})
    events = data_events(lines)
    assert any(e.get("error") for e in events)
    assert lines[-1] == "data: [DONE]"


@pytest.mark.parametrize("coalesce", [False, True], ids=["event-by-event", "one-read"])
def test_every_event_is_relayed_however_the_upstream_packs_them(gateway, api_key, fake_a, coalesce):
    """A fast upstream's events arrive together; each is relayed, in order, before the usage chunk."""
    content = " ".join(f"t{i}" for i in range(25))
    fake_a.fake.script(Stream(content=content, coalesce=coalesce))
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key, max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="test/alpha", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    text = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(text) >= 25 and "".join(text) == content
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


@pytest.mark.parametrize("coalesce", [False, True], ids=["event-by-event", "one-read"])
def test_error_after_events_in_the_same_read_still_follows_them(gateway, api_key, fake_a, coalesce):
    fake_a.fake.script(Stream(chunks=10, error_after=4, coalesce=coalesce))
    _, lines = stream_lines(gateway, api_key, {"model": "test/alpha", "messages": HELLO})
    events = data_events(lines)
    content = [e for e in events if e["choices"] and e["choices"][0]["delta"].get("content")]
    assert len(content) == 4
    assert events.index(content[-1]) < next(i for i, e in enumerate(events) if "error" in e)
    assert lines[-1] == "data: [DONE]"


def _dechunk(body: bytes) -> bytes:
    out = []
    while True:
        size, _, body = body.partition(b"\r\n")
        n = int(size, 16)
        if n == 0:
            return b"".join(out)
        out.append(body[:n])
        body = body[n + 2 :]


@contextlib.contextmanager
def _stalled_stream(gateway, key: str, model: str) -> Iterator[socket.socket]:
    """A stream request from a client with a small receive buffer that then reads nothing for 1.5 s:
    the gateway's buffers fill and its writes to the client pause."""
    body = json.dumps({"model": model, "messages": HELLO, "stream": True}).encode()
    request = (
        f"POST /api/v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # before connect: no autotuning
        sock.connect(("127.0.0.1", gateway.port))
        sock.sendall(request)
        time.sleep(1.5)
        yield sock


def test_a_client_that_reads_slowly_gets_every_event_in_order_and_holds_the_upstream_back(
    make_gateway, fake_a, monkeypatch
):
    """While the client does not read, the server's writes pause; relayed events then queue and go
    out in order once it reads again. The queue stays small: past it the gateway stops reading the
    upstream, so the upstream waits for the client instead of the gateway buffering its output; the
    time it waits is not upstream silence (the read-idle limit here is shorter than the client's stall)."""
    from omnirouter.pipeline.stream import InferenceStream as ChatStream

    gateway = make_gateway(upstream_first_byte_timeout=0.5)
    api_key = gateway.create_key()["key"]

    pumped = []
    queued = [0]
    pump, relay = ChatStream._pump, ChatStream._relay

    async def counting_pump(self):  # type: ignore[no-untyped-def]
        pumped.append(len(self.backlog))
        await pump(self)

    def measuring_relay(self, chunks):  # type: ignore[no-untyped-def]
        relay(self, chunks)
        queued[0] = max(queued[0], self.backlog_bytes)

    monkeypatch.setattr(ChatStream, "_pump", counting_pump)
    monkeypatch.setattr(ChatStream, "_relay", measuring_relay)
    content = " ".join(f"w{i:05d}" + "x" * 4000 for i in range(2000))  # ~8 MB: more than socket buffers hold
    fake_a.fake.script(Stream(content=content, chunk_delay=0.001))  # still sending while the client catches up
    with _stalled_stream(gateway, api_key, "test/alpha") as sock:
        # Not reading until the gateway's writes have paused (on a loaded machine 1.5 s may not be
        # enough for the buffers to fill): the path under test is then sure to be taken.
        filled = time.monotonic() + 30
        while not pumped and time.monotonic() < filled:
            time.sleep(0.01)
        raw = bytearray()
        sock.settimeout(30)
        deadline = time.monotonic() + 60  # keep-alive comments would keep a stalled stream open forever
        while not raw.endswith(b"0\r\n\r\n"):
            assert time.monotonic() < deadline, "the stream stalled"
            data = sock.recv(1 << 16)
            assert data, "connection closed before the stream ended"
            raw += data
            time.sleep(0.002)  # and reads slowly: the writes pause and resume again and again
    head, _, chunked = bytes(raw).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    lines = [x.decode() for x in _dechunk(chunked).split(b"\n") if x]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in data_events(lines) if c["choices"])
    assert text == content
    assert lines[-1] == "data: [DONE]"
    assert pumped, "the client's slowness never paused the gateway's writes: the test did not test that path"
    assert queued[0] < 1_000_000, f"{queued[0]} bytes queued for a stalled client: the upstream was not held back"


def test_client_disconnect_aborts_upstream_and_bills_what_was_generated(gateway, api_key, fake_a):
    fake_a.fake.script(Stream(chunks=200, chunk_delay=0.02, prompt_tokens=50))
    gen_id = leave_after_events(gateway, api_key, "test/alpha", 5)
    fake_a.wait_for_disconnect(timeout=5)  # the gateway dropped the upstream connection
    gen = generation(gateway, api_key, gen_id)
    assert gen["cancelled"] is True and gen["streamed"] is True
    assert 0 < gen["tokens_completion"] < 200
    assert gen["total_cost"] > 0
    # Billed for the (estimated) prompt and what was generated, at the endpoint's prices.
    prices = {k: Decimal(v) for k, v in ALPHA_PRICES.items()}
    assert (
        gen["total_cost"] == gen["tokens_prompt"] * prices["prompt"] + gen["tokens_completion"] * prices["completion"]
    )


def test_on_a_server_without_direct_writes_a_stream_is_relayed_and_a_disconnect_still_aborts_upstream(
    make_gateway, fake_a, monkeypatch
):
    """Under plain uvicorn (no `omnirouter.direct_body`: as under another ASGI server) events go out
    through send(), and a task waiting in receive() notices the client leaving."""
    import tests.gateway

    monkeypatch.setattr(tests.gateway, "connection_options", lambda settings: {"http": "httptools"})
    gateway = make_gateway()
    api_key = gateway.create_key()["key"]
    fake_a.fake.script(Stream(chunks=5))
    r, lines = stream_lines(gateway, api_key, {"model": "test/alpha", "messages": HELLO})
    assert r.status_code == 200 and lines[-1] == "data: [DONE]"
    assert len([e for e in data_events(lines) if e["choices"] and e["choices"][0]["delta"].get("content")]) == 5

    fake_a.fake.script(Stream(chunks=200, chunk_delay=0.02))
    gen_id = leave_after_events(gateway, api_key, "test/alpha", 1)
    fake_a.wait_for_disconnect(timeout=5)
    assert generation(gateway, api_key, gen_id)["cancelled"] is True


def test_non_abortable_provider_is_read_to_the_end_and_billed_in_full(gateway, api_key, fake_b):
    # fake-b is configured with can_abort: false, like providers that keep generating anyway.
    fake_b.fake.script(Stream(chunks=40, chunk_delay=0.01, prompt_tokens=10, completion_tokens=40))
    gen_id = leave_after_events(gateway, api_key, "test/beta", 1)
    gen = generation(gateway, api_key, gen_id)
    assert gen["cancelled"] is True
    assert gen["tokens_completion"] == 40
    p = {k: Decimal(v) for k, v in BETA_PRICES.items()}
    assert gen["total_cost"] == 10 * p["prompt"] + 40 * p["completion"] + p["request"]


def test_without_upstream_usage_every_generated_character_is_counted(gateway, api_key, fake_a):
    """An upstream that sends no usage is billed on an estimate of what it streamed: text and tool
    call arguments alike, at 4 characters a token."""
    text, args = "Checking the weather", '{"city": "Paris"}'
    call = {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": args}}
    fake_a.fake.script(Stream(content=text, tool_calls=[call], omit_usage=True))
    r, lines = stream_lines(gateway, api_key, {"model": "test/alpha", "messages": HELLO})
    assert r.status_code == 200
    usage = data_events(lines)[-1]["usage"]
    assert usage["completion_tokens"] == -(-(len(text) + len(args)) // 4)


def test_a_stalled_client_that_leaves_is_billed_in_full_by_a_provider_that_cannot_abort(gateway, api_key, fake_b):
    """The client stalls (the gateway stops reading the upstream to hold it back), then goes away: a
    provider that cannot abort goes on generating, so the gateway reads it to the end and bills it all."""
    content = " ".join("x" * 4000 for _ in range(1000))  # ~4 MB: more than socket buffers hold
    fake_b.fake.script(Stream(content=content, chunk_delay=0.001, prompt_tokens=10, completion_tokens=1000))
    with _stalled_stream(gateway, api_key, "test/beta") as sock:
        head = sock.recv(4096)
    gen_id = head.split(b"x-generation-id: ", 1)[1].split(b"\r\n", 1)[0].decode()
    gen = generation(gateway, api_key, gen_id, wait=20)  # once the rest of the upstream's answer was read
    assert gen["cancelled"] is True
    assert gen["tokens_completion"] == 1000  # the upstream's own usage, sent after its last chunk
