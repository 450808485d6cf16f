"""omnirouter.client's own machinery: one method per served operation reading the operation's own
Struct, OpenRouter's documented examples read by those Structs, the sync client generated from the
async one, retries against scripted faults, errors in every envelope, and what it sends."""

from __future__ import annotations

import base64
import hashlib
import inspect
import json
import subprocess
import sys
import threading
import typing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from msgspec import UNSET

from omnirouter import openapi_doc
from omnirouter.api import messages_schemas as ms
from omnirouter.api import schemas as s
from omnirouter.client import (
    APIConnectionError,
    APITimeoutError,
    AsyncOpenRouter,
    BadRequestError,
    OpenRouter,
    RateLimitError,
    ServiceUnavailableError,
    errors,
)
from omnirouter.client import _base as base
from omnirouter.client._sync import client as sync_client
from omnirouter.client.readable import read, readable
from omnirouter.testing.fakes.core import Delay, Reply, Reset, Status, Stream
from tests.spec_validation import SPEC_PATH, spec_available

ROOT = Path(__file__).resolve().parent.parent
HELLO = [{"role": "user", "content": "hello"}]


def test_sync_client_is_the_async_one_generated() -> None:
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "unasync_client.py"), "--check"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


# ------------------------------------------------------------------------------ one method per operation


def _served() -> tuple[list[Any], dict[tuple[str, str], openapi_doc.Operation]]:
    from omnirouter.app import api_routes

    routes = list(api_routes())
    operations, _ = openapi_doc._module_entries(routes)
    return routes, operations


STREAMING = {"chat.completions.create", "completions.create", "responses.create", "messages.create"}


def _dummy(param: inspect.Parameter) -> Any:
    if param.annotation in ("int", int) or param.name == "version":
        return 1
    if param.name in ("file", "image"):
        return b"bytes"
    return "author/slug" if param.name == "author" else "x"


def _every_method(group: Any, prefix: str = "") -> list[tuple[str, Any]]:
    found = []
    for name, value in vars(group).items():
        if name.startswith("_"):
            continue
        if isinstance(value, sync_client.Resource | sync_client.Chat | sync_client.Observability):
            found += _every_method(value, f"{prefix}{name}.")
    for name, _ in inspect.getmembers(type(group), inspect.isfunction):
        if not name.startswith("_") and group is not None and not isinstance(inspect.getattr_static(group, name),
                                                                              staticmethod):  # fmt: skip
            found.append((prefix + name, getattr(group, name)))
    return found


def test_every_served_operation_has_a_method_that_reads_its_own_struct(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, base.Call]] = []
    current = [""]
    monkeypatch.setattr(sync_client.Transport, "call", lambda self, call: calls.append((current[0], call)))
    client = OpenRouter(api_key="k", base_url="http://127.0.0.1:9/api/v1")
    for name, method in _every_method(client):
        current[0] = name
        params = inspect.signature(method).parameters.values()
        required = [p for p in params if p.default is inspect.Parameter.empty]
        args = [_dummy(p) for p in required if p.kind <= p.POSITIONAL_OR_KEYWORD]
        kwargs = {p.name: _dummy(p) for p in required if p.kind == p.KEYWORD_ONLY}
        method(*args, **kwargs)
        if name in STREAMING:
            method(*args, **kwargs, stream=True)
        if optional := [_dummy(p) for p in params if p.default is None and p.kind == p.POSITIONAL_OR_KEYWORD]:
            method(*args, *optional, **kwargs)  # e.g. guardrails.keys.list(id): one guardrail's, not all
        if name == "key.get":
            method(legacy=True)
    client.close()

    routes, operations = _served()
    reached: set[tuple[str, str]] = set()
    for name, call in calls:
        scope = {"type": "http", "method": call.method, "path": "/" + call.path.lstrip("/")}
        route = next((r for r in routes if r.matches(scope)[0].name == "FULL"), None)
        assert route is not None, f"{name} calls {call.method} {call.path}, which the server does not serve"
        key = (route.path_format, call.method.lower())
        reached.add(key)
        op = operations[key]
        if call.stream is not None:  # the event type is the one the documented stream carries
            documented = msgspec.structs.fields(op.stream)
            assert call.stream == next(f.type for f in documented if f.name == "data"), name
        elif op.response is not None and not isinstance(op.response, dict):
            assert call.cast == op.response, f"{name} reads {call.cast}, the server answers {op.response}"
    served = {(r.path_format, m.lower()) for r in routes for m in r.methods if m != "HEAD"}
    assert served - reached == set(), "served operations without a client method"


def test_every_operation_of_openrouters_api_listing_is_served_and_reached() -> None:
    """../shared/spec/001_*.txt lists OpenRouter's operations; each one the server serves has a method
    (the previous test), and those it does not serve are the SCIM ones a self-hosted gateway has no use for."""
    listing = next(SPEC_PATH.parent.glob("001_*.txt"), None) if spec_available() else None
    if listing is None:
        pytest.skip("../shared/spec is not beside the checkout")
    listed = {tuple(line.split()[1:3]) for line in listing.read_text().splitlines() if line.startswith("@endpoint ")}
    routes, _ = _served()
    served = {(m, r.path_format) for r in routes for m in r.methods}
    assert {(m, p) for m, p in listed if (m, p) not in served} <= {
        ("GET", "/scim/group-mappings"), ("POST", "/scim/group-mappings"), ("GET", "/scim/groups"),
    } | {(m, "/scim/group-mappings/{id}") for m in ("GET", "PATCH", "DELETE")}  # fmt: skip


# ------------------------------------------------------------------------------ OpenRouter's examples


def _examples() -> list[tuple[str, str, str, Any]]:
    if not spec_available():
        return []
    spec = json.loads(SPEC_PATH.read_text())
    found = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            for status, answer in (op.get("responses") or {}).items() if isinstance(op, dict) else ():
                for media, content in (answer.get("content") or {}).items():
                    if status.startswith("2") and "example" in content:
                        found.append((method, path, media, content["example"]))
    return found


@pytest.mark.skipif(not spec_available(), reason="../shared/spec/openrouter-openapi.json is not beside the checkout")
def test_every_documented_answer_of_openrouter_is_read_by_the_operations_struct() -> None:
    _, operations = _served()
    parsed = 0
    for method, path, media, example in _examples():
        op = operations.get((path, method))
        if op is None:
            continue
        if media == "application/json" and op.response is not None and not isinstance(op.response, dict):
            value = read(json.dumps(example), op.response)
            assert isinstance(value, typing.get_args(op.response) or op.response), (method, path)
            parsed += 1
        elif media == "text/event-stream" and op.stream is not None and isinstance(example, dict):
            item = next(f.type for f in msgspec.structs.fields(op.stream) if f.name == "data")
            reader = base.EventReader(item, {})
            value = reader.read(example.get("event"), json.dumps(example["data"]))
            assert value is not None and not isinstance(value, dict), (method, path)
            parsed += 1
    assert parsed >= 80  # every JSON and stream example of an operation the server serves


def test_a_reader_keeps_what_it_knows_and_leaves_out_what_is_missing() -> None:
    raw = {"data": {"total_credits": 10.5, "total_usage": "0.000001", "future_field": [1]}}
    credits = msgspec.json.decode(json.dumps(raw), type=readable(s.CreditsResponse), strict=False)
    assert isinstance(credits, s.CreditsResponse) and isinstance(credits.data, s.Credits)
    assert str(credits.data.total_usage) == "0.000001" and str(credits.data.total_credits) == "10.5"
    key = msgspec.convert({"data": {"label": "sk-or-v1-abc", "limit": None}}, readable(s.CurrentKeyResponse))
    assert key.data.label == "sk-or-v1-abc" and key.data.rpm_limit is UNSET  # not sent by OpenRouter


# ------------------------------------------------------------------------------ retries and faults


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "BACKOFF_BASE", 0.001)


def _client(fake: Any, **options: Any) -> OpenRouter:
    return OpenRouter(api_key="sk-test", base_url=fake.base_url, **options)


def test_a_429_is_retried_after_its_retry_after(fake_a: Any) -> None:
    fake_a.script(Status(429, retry_after=0.05))
    with _client(fake_a) as client:
        answer = client.chat.completions.create(model="m", messages=HELLO)
    assert answer.choices[0].message.content == "Echo: hello"
    assert len(fake_a.requests) == 2


def test_5xx_is_retried_max_retries_times_then_raised(fake_a: Any, fast_backoff: None) -> None:
    fake_a.script(Status(503), Status(503), Status(503), Status(503))
    with _client(fake_a, max_retries=2) as client, pytest.raises(ServiceUnavailableError) as raised:
        client.chat.completions.create(model="m", messages=HELLO)
    assert raised.value.status == 503 and len(fake_a.requests) == 3


def test_a_client_error_is_not_retried(fake_a: Any) -> None:
    fake_a.script(Status(400, {"error": {"code": 400, "message": "bad field", "metadata": {"param": "x"}}}))
    with _client(fake_a) as client, pytest.raises(BadRequestError) as raised:
        client.chat.completions.create(model="m", messages=HELLO)
    assert (raised.value.code, raised.value.message, raised.value.metadata) == (400, "bad field", {"param": "x"})
    assert len(fake_a.requests) == 1


def test_a_lost_connection_is_retried(fake_a: Any, fast_backoff: None) -> None:
    fake_a.script(Reset())
    with _client(fake_a) as client:
        assert client.chat.completions.create(model="m", messages=HELLO).choices[0].message.content
    assert len(fake_a.requests) == 2


def test_a_retry_after_beyond_the_deadline_is_not_waited_for(fake_a: Any) -> None:
    fake_a.script(Status(429, retry_after=120))
    with _client(fake_a, retry_deadline=5) as client, pytest.raises(RateLimitError) as raised:
        client.chat.completions.create(model="m", messages=HELLO)
    assert raised.value.retry_after == 120 and len(fake_a.requests) == 1


def test_no_answer_in_time_is_a_timeout(fake_a: Any) -> None:
    fake_a.script(Delay(5))
    with _client(fake_a, timeout=0.2, max_retries=0) as client, pytest.raises(APITimeoutError):
        client.chat.completions.create(model="m", messages=HELLO)


def test_a_stream_is_retried_before_its_first_byte_and_never_after(fake_a: Any, fast_backoff: None) -> None:
    fake_a.script(Status(502), Stream(content="one two three"))
    with _client(fake_a) as client:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="m", messages=HELLO, stream=True) if c.choices)  # fmt: skip
    assert text == "one two three" and len(fake_a.requests) == 2

    fake_a.reset()
    fake_a.script(Stream(content="one two three", reset_after=1))
    with _client(fake_a) as client, pytest.raises(APIConnectionError):
        list(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    assert len(fake_a.requests) == 1


def test_a_stream_that_stops_short_is_an_error_not_an_end(fake_a: Any) -> None:
    fake_a.script(Stream(content="one two three", stop_after=1))
    with _client(fake_a) as client, pytest.raises(APIConnectionError, match="before it was complete"):
        list(client.chat.completions.create(model="m", messages=HELLO, stream=True))


def test_an_error_inside_a_stream_is_raised_as_its_status(fake_a: Any) -> None:
    error = {"code": 429, "message": "slow down", "metadata": {"error_type": "rate_limit_exceeded"}}
    fake_a.script(Stream(content="one two three", error_after=1, error_style="openrouter", error=error))
    received = []
    with _client(fake_a) as client, pytest.raises(RateLimitError) as raised:
        for chunk in client.chat.completions.create(model="m", messages=HELLO, stream=True):
            received.append(chunk)
    assert raised.value.in_stream and raised.value.message == "slow down"
    assert raised.value.error_type == "rate_limit_exceeded" and received  # what came before was delivered
    assert len(fake_a.requests) == 1


async def test_the_async_client_retries_and_streams_the_same(fake_a: Any, fast_backoff: None) -> None:
    fake_a.script(Status(500), Stream(content="a b"))
    async with AsyncOpenRouter(api_key="sk-test", base_url=fake_a.base_url) as client:
        stream = await client.chat.completions.create(model="m", messages=HELLO, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "a b" and len(fake_a.requests) == 2


# ------------------------------------------------------------------------------ what it sends


def test_it_sends_the_key_and_openrouters_app_headers(fake_a: Any) -> None:
    app = {"app_url": "https://app.example", "app_title": "My App", "app_categories": ["cli-agent", "coding"]}
    with _client(fake_a, **app) as client:
        client.chat.completions.create(model="m", messages=HELLO, extra_headers={"X-Extra": "1"})
    sent = fake_a.requests[0].headers
    assert sent["Authorization"] == "Bearer sk-test"
    assert (sent["HTTP-Referer"], sent["X-OpenRouter-Title"], sent["X-Title"]) == ("https://app.example",) + (
        "My App",
    ) * 2
    assert (sent["X-OpenRouter-Categories"], sent["X-Extra"]) == ("cli-agent,coding", "1")
    assert sent["Accept"] == "application/json" and "sk-test" not in repr(client._transport.config)
    with _client(fake_a) as client:
        list(client.chat.completions.create(model="m", messages=HELLO, stream=True))
    assert fake_a.requests[1].headers["Accept"] == "text/event-stream"
    assert sent["User-Agent"].startswith("omnirouter-python/")


def test_with_raw_response_answers_the_result_with_its_status_and_headers(fake_a: Any) -> None:
    fake_a.script(Reply("hi there", headers={"X-Generation-Id": "gen-42"}))
    with _client(fake_a) as client:
        raw = client.with_raw_response.chat.completions.create(model="m", messages=HELLO)
        assert raw.status_code == 200 and raw.generation_id == "gen-42"
        assert isinstance(raw.data, s.ChatResult) and raw.data.choices[0].message.content == "hi there"
        assert client.chat.completions.create(model="m", messages=HELLO).choices  # the client itself unchanged


def test_the_key_and_base_url_come_from_the_environment(fake_a: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-from-env")
    monkeypatch.setenv("OPENROUTER_BASE_URL", fake_a.base_url)
    with OpenRouter() as client:
        client.chat.completions.create(model="m", messages=HELLO)
    assert fake_a.requests[0].headers["Authorization"] == "Bearer sk-from-env"
    monkeypatch.delenv("OPENROUTER_BASE_URL")
    assert OpenRouter().base_url == "https://openrouter.ai/api/v1"


def test_calls_share_one_keep_alive_connection() -> None:
    opened: list[Any] = []

    class Answer(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive

        def setup(self) -> None:
            super().setup()
            opened.append(self.client_address)

        def do_GET(self) -> None:
            body = b'{"data": {"total_credits": 1, "total_usage": 0}}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with OpenRouter(api_key="k", base_url=f"http://127.0.0.1:{server.server_port}/api/v1") as client:
            assert [client.credits.get().data.total_credits for _ in range(5)] == [1] * 5
        assert len(opened) == 1
    finally:
        server.shutdown()
        server.server_close()


def test_path_parameters_cannot_reach_another_route() -> None:
    seen: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer k"
        seen.append(request.url.raw_path.decode())
        return httpx.Response(404, json={"error": {"code": 404, "message": "no such key"}})

    http = httpx.Client(transport=httpx.MockTransport(answer))  # the client's own URL and key still apply
    with OpenRouter(api_key="k", base_url="http://gw/api/v1", http_client=http) as client:
        with pytest.raises(errors.NotFoundError):
            client.keys.get("../credits")
        with pytest.raises(ValueError):
            client.keys.get("")
    assert seen == ["/api/v1/keys/..%2Fcredits"]


def test_pkce_challenge_is_the_s256_of_the_verifier() -> None:
    pair = sync_client.Auth.pkce()
    assert 43 <= len(pair.verifier) <= 128 and pair.method == "S256"
    digest = base64.urlsafe_b64encode(hashlib.sha256(pair.verifier.encode()).digest()).rstrip(b"=").decode()
    assert pair.challenge == digest and sync_client.Auth.pkce().verifier != pair.verifier


# ------------------------------------------------------------------------------ the three envelopes


def test_errors_are_read_from_each_envelope() -> None:
    headers = httpx.Headers({"Retry-After": "Wed, 21 Oct 2037 07:28:00 GMT", "X-Generation-Id": "gen-1"})
    body = b'{"error":{"code":429,"message":"busy","metadata":{"error_type":"rate_limit_exceeded"}}}'
    limited = errors.from_response(429, body, headers)
    assert isinstance(limited, RateLimitError) and limited.retry_after > 1e8 and limited.generation_id == "gen-1"
    anthropic = errors.from_response(
        529, b'{"type":"error","error":{"type":"overloaded_error","message":"later"},"request_id":null}', {}
    )
    assert isinstance(anthropic, errors.ProviderOverloadedError) and anthropic.error_type == "overloaded_error"
    beside = b'{"type":"error","error":{"type":"not_found_error","message":"no"},"metadata":{"availability":{"a":1}}}'
    assert errors.from_response(404, beside, {}).metadata["availability"] == {"a": 1}  # OpenRouter's, beside
    proxy = errors.from_response(502, b"<html>Bad gateway</html>", {})
    assert isinstance(proxy, errors.BadGatewayError) and "Bad gateway" in proxy.message
    availability = errors.from_response(
        503, b'{"error":{"code":503,"message":"none","availability":{"code":"x","retry_after":7}}}', {}
    )
    assert availability.status == 503 and errors.retry_after({}, availability.body) == 7
    response = {"error": {"code": "server_error", "message": "upstream died"}, "error_type": "timeout"}
    failed = {"type": "response.failed", "sequence_number": 3, "response": response}
    with pytest.raises(errors.RequestTimeoutError) as raised:
        base.EventReader(Any, {}).read("response.failed", json.dumps(failed))
    assert raised.value.in_stream and raised.value.code == "server_error"
    messages = base.EventReader(ms.MessagesStreamEvent, {})
    assert messages.read("ping", '{"type": "ping"}') is None  # Anthropic's keep-alive, not an event to read
    assert isinstance(messages.read("message_stop", '{"type": "message_stop"}'), ms.MessagesStopEvent)
    with pytest.raises(errors.BadGatewayError, match="not JSON"):
        messages.read(None, "{broken")
    event = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow"}}
    with pytest.raises(RateLimitError):
        base.EventReader(Any, {}).read("error", json.dumps(event))


def test_through_a_gateway_a_failed_upstream_is_retried_by_the_client(
    gateway: Any, api_key: str, fake_a: Any, fast_backoff: None
) -> None:
    """The gateway answers the upstream's failure (no other endpoint to fall back to); the client's
    retry is a new request, which the upstream now serves: one answer, billed once."""
    fake_a.script(Status(500))
    with OpenRouter(api_key=api_key, base_url=gateway.api) as client:
        answer = client.chat.completions.create(model="test/alpha", messages=HELLO)
        assert answer.choices[0].message.content == "Echo: hello" and len(fake_a.requests) == 2
        assert client.key.get().data.usage == answer.usage.cost
