"""Errors in the OpenRouter envelope with the right status, and fallback when an upstream fails."""

from __future__ import annotations

import json
from decimal import Decimal

import openai
import pytest

from omnirouter.api.auth import MANAGEMENT_ONLY
from omnirouter.testing import BrokenJSON, Delay, Reset, Status
from tests.conftest import BETA_PRICES
from tests.spec_validation import spec_available, validate_response

HELLO = [{"role": "user", "content": "hello there"}]


def post(gateway, key: str, body: object, **kw):
    with gateway.client(key) as c:
        if isinstance(body, (bytes, str)):
            return c.post("/chat/completions", content=body, headers={"content-type": "application/json"}, **kw)
        return c.post("/chat/completions", json=body, **kw)


def error_of(r, status: int) -> dict:
    """The error object of an answer in the OpenRouter envelope with ``status``."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"]["code"] == status
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    return body["error"]


def check_envelope(r, status: int) -> dict:
    """``error_of`` for chat completions, also checked against the official document."""
    error = error_of(r, status)
    if spec_available():
        validate_response("sendChatCompletionRequest", r.json(), status=str(status))
    return error


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "Invalid JSON"),
        ([1, 2], "JSON object"),
        ({"model": "test/alpha"}, "messages"),
        ({"model": "test/alpha", "messages": []}, "messages"),
        ({"model": "test/alpha", "messages": [{"content": "no role"}]}, "role"),
        ({"model": "test/alpha", "messages": HELLO, "max_tokens": 0}, "max_tokens"),
        ({"model": "test/alpha", "messages": HELLO, "temperature": 3}, "temperature"),
        ({"model": "test/alpha", "messages": HELLO, "stream": "yes"}, "stream"),
    ],
)
def test_malformed_requests_get_400(gateway, api_key, fake_a, body, fragment):
    error = check_envelope(post(gateway, api_key, body), 400)
    assert fragment.lower() in error["message"].lower()
    assert fake_a.fake.requests == []


def _user(*parts: object) -> list[dict]:
    return [{"role": "user", "content": list(parts)}]


TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        (_user({"type": "text", "text": None}), "$.messages[0].content[0].text"),
        (_user({"type": "text"}), "`text`"),
        (_user({"type": "text", "text": 42}), "$.messages[0].content[0].text"),
        (_user(7), "$.messages[0].content[0]"),
        (_user({"text": "no type"}), "`type`"),
        (_user({"type": "audio_blob", "data": "..."}), "content parts have type text, image_url"),
        (_user({"type": "image_url", "image_url": "https://example.com/a.png"}), "content[0].image_url"),
        (_user({"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "max"}}), "detail"),
        (_user({"type": "input_audio", "input_audio": {"data": "AAAA"}}), "`format`"),
        (_user({"type": "video_url", "video_url": {}}), "`url`"),
        (_user({"type": "file", "file": {"file_data": 1}}), "file_data"),
        ([{"role": "user", "content": 12}], "$.messages[0].content"),
        ([{"role": "user", "content": None}], "$.messages[0].content"),
        ([{"role": "user"}], "`content`"),
        ([{"role": "robot", "content": "hi"}], "role is one of system, developer, user, assistant, tool"),
        (
            [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}],
            "a system message's content parts have type text",
        ),
        ([*HELLO, {"role": "tool", "content": "sunny"}], "`tool_call_id`"),
        ([*HELLO, {"role": "tool", "tool_call_id": "call_1", "content": None}], "$.messages[1].content"),
        ([*HELLO, {"role": "assistant", "tool_calls": [{"id": "call_1"}]}], "tool_calls[0]"),
        (
            [*HELLO, {"role": "assistant", "tool_calls": [{**TOOL_CALL, "function": {"name": "f", "arguments": {}}}]}],
            "arguments",
        ),
        ([*HELLO, {"role": "assistant", "content": [{"type": "text", "text": None}]}], "$.messages[1].content"),
    ],
)
def test_malformed_messages_get_400_and_nothing_goes_upstream(gateway, fake_a, messages, fragment):
    key = gateway.create_key()["key"]
    error = check_envelope(post(gateway, key, {"model": "test/alpha", "messages": messages}), 400)
    assert fragment in error["message"]
    assert fake_a.fake.requests == []
    with gateway.client(key) as c:
        assert c.get("/key").json()["data"]["usage"] == 0  # nothing reserved or billed


def test_every_part_type_and_role_of_the_spec_passes_through(gateway, api_key, fake_a):
    messages = [
        {"role": "system", "content": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "developer", "content": "Answer in French."},
        {
            "role": "user",
            "name": "ann",
            "content": [
                {"type": "text", "text": "What is in these?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
                {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
                {"type": "video_url", "video_url": {"url": "https://example.com/v.mp4"}},
                {"type": "input_video", "video_url": {"url": "https://example.com/w.mp4"}},
                {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "sunny"}]},
        {"role": "assistant", "content": "Il fait beau.", "reasoning": None, "refusal": None},
        {"role": "user", "content": "Merci"},
    ]
    r = post(gateway, api_key, {"model": "test/alpha", "messages": messages})
    assert r.status_code == 200, r.text
    assert fake_a.fake.last_request.json["messages"] == messages  # forwarded exactly as sent


def test_the_sandbox_answers_bad_parts_with_400_and_serves_good_ones(make_gateway):
    gw = make_gateway(sandbox=True)
    key = gw.create_key()["key"]
    bad = {"model": "sandbox/echo", "messages": _user({"type": "text", "text": None})}
    assert "content[0].text" in check_envelope(post(gw, key, bad), 400)["message"]
    image = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    good = {"model": "sandbox/echo", "messages": _user({"type": "text", "text": "what is this?"}, image)}
    r = post(gw, key, good)
    assert r.status_code == 200, r.text
    assert "what is this?" in r.json()["choices"][0]["message"]["content"]  # echoed: the text part was read


def test_unknown_model_has_availability_object(gateway, api_key):
    error = check_envelope(post(gateway, api_key, {"model": "acme/fake-1.0", "messages": HELLO}), 400)
    availability = error["availability"]
    assert availability["code"] == "model_not_found"
    assert availability["retryable"] is False
    assert availability["requested_models"] == ["acme/fake-1.0"]
    assert availability["docs_url"].startswith("https://")


def test_catalog_model_without_configured_provider_is_404(gateway, api_key):
    # Bundled in the catalog, but no OPENAI_API_KEY in the test environment.
    error = check_envelope(post(gateway, api_key, {"model": "openai/gpt-4o-mini", "messages": HELLO}), 404)
    assert error["availability"]["code"] == "no_endpoints"


def test_oversize_body_is_413(make_gateway, fake_a):
    gw = make_gateway(max_body_bytes=2000)
    key = gw.create_key()["key"]
    big = [{"role": "user", "content": "x" * 5000}]
    error = check_envelope(post(gw, key, {"model": "test/alpha", "messages": big}), 413)
    assert "2000" in error["message"]
    assert fake_a.fake.requests == []


@pytest.mark.parametrize(
    ("header", "status", "message"),
    [
        (None, 401, "Missing Authentication header"),
        ("Bearer sk-or-v1-" + "0" * 64, 401, "Invalid API key"),
        ("Basic abc", 401, "Missing Authentication header"),
    ],
)
def test_authentication_errors(gateway, header, status, message):
    import httpx

    headers = {"Authorization": header} if header else {}
    r = httpx.post(gateway.api + "/chat/completions", json={"model": "test/alpha", "messages": HELLO}, headers=headers)
    assert check_envelope(r, status)["message"] == message


def test_management_key_cannot_make_inference_requests(gateway, fake_a):
    r = post(gateway, gateway.management_key, {"model": "test/alpha", "messages": HELLO})
    check_envelope(r, 403)
    assert fake_a.fake.requests == []


def test_upstream_500_is_masked(gateway, api_key, fake_a):
    fake_a.fake.script(Status(500, {"error": {"message": "db password is hunter2", "type": "server_error"}}))
    error = check_envelope(post(gateway, api_key, {"model": "test/alpha", "messages": HELLO}), 500)
    assert "hunter2" not in json.dumps(error)
    assert error["metadata"]["error_type"] == "server"


@pytest.mark.parametrize(
    ("step", "status"),
    [
        (Status(502), 502),
        (Status(503), 503),
        (Status(529), 503),
        (Reset(), 502),
        (BrokenJSON(), 502),
        (Status(401), 502),
    ],
)
def test_upstream_failures_carry_provider_name_and_raw(gateway, api_key, fake_a, step, status):
    fake_a.fake.script(step)
    error = check_envelope(post(gateway, api_key, {"model": "test/alpha", "messages": HELLO}), status)
    assert error["metadata"]["provider_name"] == "Fake A"
    assert "raw" in error["metadata"]
    assert len(fake_a.fake.requests) == 1


def test_upstream_429_keeps_status_and_retry_after(gateway, api_key, fake_a):
    fake_a.fake.script(Status(429, retry_after=7))
    r = post(gateway, api_key, {"model": "test/alpha", "messages": HELLO})
    error = check_envelope(r, 429)
    assert r.headers["retry-after"] == "7"
    assert error["metadata"]["error_type"] == "rate_limit_exceeded"


def test_first_byte_timeout_is_408(make_gateway, fake_a):
    gw = make_gateway(upstream_first_byte_timeout=0.3)
    key = gw.create_key()["key"]
    fake_a.fake.script(Delay(3))
    error = check_envelope(post(gw, key, {"model": "test/alpha", "messages": HELLO}), 408)
    assert error["metadata"]["error_type"] == "timeout"


def test_fallback_to_next_provider(gateway, api_key, fake_a, fake_b):
    fake_a.fake.script(Status(503))
    client = openai.OpenAI(base_url=gateway.api, api_key=api_key, max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="test/gamma", messages=HELLO, extra_body={"provider": {"order": ["fake-a", "fake-b"]}}
    )
    body = json.loads(raw.http_response.text, parse_float=Decimal)
    assert body["provider"] == "Fake B"
    assert len(fake_a.fake.requests) == 1 and len(fake_b.fake.requests) == 1
    assert fake_b.fake.last_request.json["model"] == "gamma-b"


def test_request_errors_do_not_fall_back(gateway, api_key, fake_a, fake_b):
    fake_a.fake.script(Status(400))
    r = post(gateway, api_key, {"model": "test/gamma", "messages": HELLO, "provider": {"order": ["fake-a"]}})
    check_envelope(r, 400)
    assert fake_b.fake.requests == []


def test_allow_fallbacks_false_returns_the_upstream_error(gateway, api_key, fake_a, fake_b):
    fake_a.fake.script(Status(502))
    body = {
        "model": "test/gamma",
        "messages": HELLO,
        "provider": {"order": ["fake-a"], "allow_fallbacks": False},
    }
    error = check_envelope(post(gateway, api_key, body), 502)
    assert error["metadata"]["provider_name"] == "Fake A"
    assert fake_b.fake.requests == []


def test_every_provider_failing_lists_the_attempts(gateway, api_key, fake_a, fake_b):
    fake_a.fake.script(Status(503))
    fake_b.fake.script(Status(500))
    body = {"model": "test/gamma", "messages": HELLO, "provider": {"order": ["fake-a", "fake-b"]}}
    error = check_envelope(post(gateway, api_key, body), 503)
    assert error["availability"]["code"] == "temporarily_unavailable"
    assert [e["provider"] for e in error["metadata"]["previous_errors"]] == ["Fake A", "Fake B"]


def test_model_fallback_bills_the_model_used(gateway, api_key, fake_a, fake_b):
    from omnirouter.testing import Reply

    fake_a.fake.script(Status(503))
    fake_b.fake.script(Reply("from beta", prompt_tokens=10, completion_tokens=2))
    r = post(gateway, api_key, {"model": "test/alpha", "models": ["test/beta"], "messages": HELLO})
    assert r.status_code == 200, r.text
    body = json.loads(r.text, parse_float=Decimal)
    assert body["model"] == "test/beta"
    p = {k: Decimal(v) for k, v in BETA_PRICES.items()}
    assert body["usage"]["cost"] == 10 * p["prompt"] + 2 * p["completion"] + p["request"]


def test_coinbase_authenticates_before_answering_gone(gateway, api_key):
    import httpx

    url = gateway.api + "/credits/coinbase"
    assert error_of(httpx.post(url), 401)["message"] == "Missing Authentication header"
    assert error_of(httpx.post(url, headers={"Authorization": "Bearer sk-or-v1-" + "0" * 64}), 401)
    with gateway.client(api_key) as c:
        assert error_of(c.post("/credits/coinbase"), 403)["message"] == MANAGEMENT_ONLY
    with gateway.admin() as admin:
        assert "credits add" in error_of(admin.post("/credits/coinbase"), 410)["message"]


def _served_methods() -> dict[str, set[str]]:
    """Each path the API serves (parameters filled in) and the methods it answers."""
    from omnirouter.app import api_routes

    served: dict[str, set[str]] = {}
    for route in api_routes():
        path = route.path_format.format(**{name: "x" for name in route.param_convertors})
        served.setdefault(path, set()).update(route.methods)
    return served


def test_a_wrong_method_is_405_with_allow_on_every_route(gateway):
    served = _served_methods()
    assert "/keys/x" in served and "/chat/completions" in served
    with gateway.admin() as admin:
        for path, methods in served.items():
            for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} - methods):
                for root in (gateway.api, gateway.url + "/v1"):
                    r = admin.request(method, root + path)
                    assert error_of(r, 405)["message"] == "Method Not Allowed", (method, path)
                    assert set(r.headers["allow"].split(", ")) == methods, (method, path)


def test_unknown_paths_use_the_envelope(gateway, api_key):
    with gateway.client(api_key) as c:
        r = c.get("/no/such/thing")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == 404


def test_errors_name_their_generation_and_hide_provider_secrets(make_gateway, fake_a, monkeypatch):
    secret = "sk-proj-ThisIsTheOperatorsSecretKey0123456789"
    monkeypatch.setenv("FAKE_A_KEY", secret)
    from tests.conftest import standard_config

    config = standard_config(fake_a.base_url, fake_a.base_url)
    config["providers"][0]["api_key_env"] = "FAKE_A_KEY"
    gw = make_gateway(config)
    key = gw.create_key()["key"]
    fake_a.fake.script(
        Status(401, {"error": {"message": f"Incorrect API key provided: {secret}.", "code": "invalid_api_key"}})
    )
    r = post(gw, key, {"model": "test/alpha", "messages": HELLO})
    error = check_envelope(r, 502)  # the operator's provider key failed, not the caller's key
    assert r.headers["x-generation-id"].startswith("gen-")
    assert secret not in r.text and "ThisIsTheOperators" not in r.text
    assert fake_a.fake.last_request.headers["Authorization"] == f"Bearer {secret}"
    assert error["metadata"]["provider_name"] == "Fake A"
