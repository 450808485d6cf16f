"""Who may call every inference operation, whatever its format: a request without a key is 401, one
with a management key 403, in that format's own envelope, and no upstream hears of either."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.gateway import Gateway

HELLO = [{"role": "user", "content": "hello"}]
# (path, a valid body, how the format's error envelope names the status)
OPERATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("/chat/completions", {"model": "test/alpha", "messages": HELLO}, "openrouter"),
    ("/completions", {"model": "test/alpha", "prompt": "hello"}, "openrouter"),
    ("/responses", {"model": "test/alpha", "input": "hello"}, "openrouter"),
    ("/messages", {"model": "test/alpha", "max_tokens": 16, "messages": HELLO}, "anthropic"),
    ("/messages/count_tokens", {"model": "test/alpha", "messages": HELLO}, "anthropic"),
]
ANTHROPIC_TYPE = {401: "authentication_error", 403: "permission_error"}
CASES = [(path, {**body, "stream": True}, envelope) for path, body, envelope in OPERATIONS if "count" not in path]


def refused(r: httpx.Response, status: int, envelope: str) -> None:
    assert r.status_code == status
    body = r.json()
    if envelope == "anthropic":
        assert body["type"] == "error" and body["error"]["type"] == ANTHROPIC_TYPE[status]
    else:
        assert body["error"]["code"] == status
    assert body["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "envelope"),
    OPERATIONS + CASES,
    ids=[op[0] for op in OPERATIONS] + [f"{op[0]} streamed" for op in CASES],
)
def test_only_an_api_key_may_call_an_inference_operation(
    gateway: Gateway, fake_a: Any, path: str, body: dict[str, Any], envelope: str
) -> None:
    url = gateway.api + path
    refused(httpx.post(url, json=body), 401, envelope)
    refused(httpx.post(url, json=body, headers={"Authorization": f"Bearer {gateway.management_key}"}), 403, envelope)
    refused(httpx.post(url, json=body, headers={"x-api-key": gateway.management_key}), 403, envelope)
    assert fake_a.fake.requests == []
