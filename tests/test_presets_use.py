"""Presets on the request path, as clients use them: `"model": "@preset/slug"`, a `"preset"` field
beside a model, and `"model": "author/model@preset/slug"`, through the real `openai` and `anthropic`
SDKs on /chat/completions, /responses, /messages and /completions. The fake upstream shows what the
preset put into the request (model, system prompt, parameters, merged tools); the generation records
the preset's id; an unknown preset is a 404 in the caller's own format."""

from __future__ import annotations

import uuid
from typing import Any

import anthropic
import httpx
import openai
import pytest

from omnirouter.governance.presets import tool_identity, union_tools
from tests.gateway import Gateway

SYSTEM = "You are a pirate."


def fn(name: str, description: str = "") -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": name, "description": description, "parameters": {"type": "object", "properties": {}}},
    }


def make_preset(gw: Gateway, body: dict[str, Any], fmt: str = "chat/completions") -> tuple[str, str]:
    """A new preset's slug and id."""
    slug = "use-" + uuid.uuid4().hex[:10]
    with gw.admin() as admin:
        r = admin.post(f"/presets/{slug}/{fmt}", json=body)
    assert r.status_code == 200, r.text
    return slug, r.json()["data"]["id"]


@pytest.fixture
def preset(gateway: Gateway) -> tuple[str, str]:
    return make_preset(
        gateway,
        {
            "model": "test/alpha",
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "ignored"}],
            "temperature": 0.25,
            "max_tokens": 77,
            "tools": [fn("first", "preset"), fn("second", "preset")],
        },
    )


def sent(fake: Any) -> dict[str, Any]:
    return fake.fake.last_request.json


def oai(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.api, api_key=key, max_retries=0)


def names(tools: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(t["function"]["name"], t["function"].get("description", "")) for t in tools]


# -- the three ways to name a preset


def test_model_at_preset_on_chat(gateway: Gateway, api_key: str, preset: tuple[str, str], fake_a: Any) -> None:
    slug, preset_id = preset
    answer = oai(gateway, api_key).chat.completions.create(
        model=f"@preset/{slug}", messages=[{"role": "user", "content": "ahoy"}]
    )
    assert answer.model == "test/alpha"
    up = sent(fake_a)
    assert up["model"] == "alpha-upstream"
    assert up["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "ahoy"}]
    assert up["temperature"] == 0.25 and up["max_tokens"] == 77
    assert names(up["tools"]) == [("first", "preset"), ("second", "preset")]
    assert "preset" not in up
    gateway.flush()
    with gateway.client(api_key) as c:
        record = c.get("/generation", params={"id": answer.id}).json()["data"]
    assert record["preset_id"] == preset_id


def test_preset_field_beside_a_model_request_fields_win(
    gateway: Gateway, api_key: str, preset: tuple[str, str], fake_b: Any
) -> None:
    slug, _ = preset
    answer = oai(gateway, api_key).chat.completions.create(
        model="test/beta",  # the request's model wins over the preset's
        messages=[{"role": "user", "content": "ahoy"}],
        temperature=1.5,  # and so do its parameters
        tools=[fn("second", "request"), fn("third", "request")],
        extra_body={"preset": slug},
    )
    assert answer.model == "test/beta"
    up = sent(fake_b)
    assert up["model"] == "beta-upstream" and up["temperature"] == 1.5 and up["max_tokens"] == 77
    # Preset tools keep their order, a request tool of the same name replaces the preset's, new ones follow.
    assert names(up["tools"]) == [("first", "preset"), ("second", "request"), ("third", "request")]
    assert up["messages"][0] == {"role": "system", "content": SYSTEM}


def test_model_then_preset_in_the_model_string(
    gateway: Gateway, api_key: str, preset: tuple[str, str], fake_b: Any
) -> None:
    slug, _ = preset
    answer = oai(gateway, api_key).chat.completions.create(
        model=f"test/beta@preset/{slug}",
        messages=[{"role": "system", "content": "You are a lawyer."}, {"role": "user", "content": "hi"}],
    )
    assert answer.model == "test/beta"
    up = sent(fake_b)
    assert up["model"] == "beta-upstream" and up["temperature"] == 0.25
    # The request has a system prompt of its own: it keeps it, and the preset's is not added.
    assert up["messages"] == [{"role": "system", "content": "You are a lawyer."}, {"role": "user", "content": "hi"}]


# -- every format: one merge


def test_messages_through_the_anthropic_sdk(
    gateway: Gateway, api_key: str, preset: tuple[str, str], fake_a: Any
) -> None:
    slug, preset_id = preset
    sdk = anthropic.Anthropic(base_url=gateway.url + "/api", api_key=api_key, max_retries=0)
    message = sdk.messages.create(
        model=f"@preset/{slug}",
        max_tokens=20,  # the request's, over the preset's 77
        messages=[{"role": "user", "content": "ahoy"}],
        tools=[{"name": "third", "description": "request", "input_schema": {"type": "object", "properties": {}}}],
    )
    assert message.type == "message" and message.model == "test/alpha"
    up = sent(fake_a)
    assert up["model"] == "alpha-upstream" and up["temperature"] == 0.25 and up["max_tokens"] == 20
    assert up["messages"][0] == {"role": "system", "content": SYSTEM}
    assert [t["function"]["name"] for t in up["tools"]] == ["first", "second", "third"]
    gateway.flush()
    with gateway.client(api_key) as c:
        assert c.get("/generation", params={"id": message.id}).json()["data"]["preset_id"] == preset_id
    # A preset field beside a model, and the streaming path.
    with sdk.messages.stream(
        model="test/alpha", max_tokens=10, messages=[{"role": "user", "content": "x"}], extra_body={"preset": slug}
    ) as stream:
        text = "".join(stream.text_stream)
    assert text
    assert sent(fake_a)["messages"][0] == {"role": "system", "content": SYSTEM}


def test_responses_through_the_openai_sdk(gateway: Gateway, api_key: str, preset: tuple[str, str], fake_a: Any) -> None:
    slug, _ = preset
    response = oai(gateway, api_key).responses.create(model=f"@preset/{slug}", input="ahoy", store=False)
    assert response.status == "completed" and response.model == "test/alpha"
    # The Response repeats what the request ran with, the preset's part included.
    assert (response.instructions, response.temperature, response.max_output_tokens) == (SYSTEM, 0.25, 77)
    up = sent(fake_a)
    assert up["model"] == "alpha-upstream" and up["temperature"] == 0.25
    assert up["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "ahoy"}]
    assert [t["function"]["name"] for t in up["tools"]] == ["first", "second"]


def test_completions_take_the_preset_but_not_its_tools(
    gateway: Gateway, api_key: str, preset: tuple[str, str], fake_a: Any
) -> None:
    slug, _ = preset
    answer = oai(gateway, api_key).completions.create(model=f"@preset/{slug}", prompt="Once upon a time")
    assert answer.model == "test/alpha"
    up = sent(fake_a)
    assert up["temperature"] == 0.25 and "tools" not in up
    assert up["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Once upon a time"}]


def test_a_preset_made_from_a_messages_body_serves_chat(gateway: Gateway, api_key: str, fake_b: Any) -> None:
    slug, _ = make_preset(
        gateway,
        {
            "model": "test/beta",
            "system": "Be formal.",
            "max_tokens": 33,
            "stop_sequences": ["END"],
            "tools": [{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}],
            "messages": [{"role": "user", "content": "ignored"}],
        },
        "messages",
    )
    oai(gateway, api_key).chat.completions.create(model=f"@preset/{slug}", messages=[{"role": "user", "content": "q"}])
    up = sent(fake_b)
    assert up["model"] == "beta-upstream" and up["max_tokens"] == 33 and up["stop"] == ["END"]
    assert up["messages"] == [{"role": "system", "content": "Be formal."}, {"role": "user", "content": "q"}]
    assert [t["function"]["name"] for t in up["tools"]] == ["lookup"]


def test_the_active_version_serves_at_once(gateway: Gateway, api_key: str, fake_a: Any, fake_b: Any) -> None:
    slug, _ = make_preset(gateway, {"model": "test/alpha"})
    client = oai(gateway, api_key)
    client.chat.completions.create(model=f"@preset/{slug}", messages=[{"role": "user", "content": "1"}])
    assert sent(fake_a)["model"] == "alpha-upstream"
    with gateway.admin() as admin:
        assert admin.post(f"/presets/{slug}/chat/completions", json={"model": "test/beta"}).status_code == 200
    answer = client.chat.completions.create(model=f"@preset/{slug}", messages=[{"role": "user", "content": "2"}])
    assert answer.model == "test/beta" and sent(fake_b)["model"] == "beta-upstream"


# -- unknown presets and bad names: 404/400 in the caller's format, nothing sent upstream


def test_unknown_preset_is_404_in_each_format(gateway: Gateway, api_key: str, fake_a: Any) -> None:
    missing = "nope-" + uuid.uuid4().hex[:8]
    client = oai(gateway, api_key)
    with pytest.raises(openai.NotFoundError) as chat_err:
        client.chat.completions.create(model=f"@preset/{missing}", messages=[{"role": "user", "content": "x"}])
    assert chat_err.value.body["message"] == f"Preset '{missing}' not found"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(
            model="test/alpha", messages=[{"role": "user", "content": "x"}], extra_body={"preset": missing}
        )
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=f"test/alpha@preset/{missing}", input="x", store=False)
    with pytest.raises(openai.NotFoundError):
        client.completions.create(model=f"@preset/{missing}", prompt="x")
    sdk = anthropic.Anthropic(base_url=gateway.url + "/api", api_key=api_key, max_retries=0)
    with pytest.raises(anthropic.NotFoundError) as messages_err:
        sdk.messages.create(model=f"@preset/{missing}", max_tokens=5, messages=[{"role": "user", "content": "x"}])
    assert messages_err.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert not fake_a.fake.requests  # nothing went upstream


def test_conflicting_or_malformed_preset_names(gateway: Gateway, api_key: str, preset: tuple[str, str]) -> None:
    slug, _ = preset
    with gateway.client(api_key) as c:
        for body in (
            {"model": f"@preset/{slug}", "preset": "other"},
            {"model": "test/alpha", "preset": 5},
        ):
            r = c.post("/chat/completions", json={**body, "messages": [{"role": "user", "content": "x"}]})
            assert r.status_code == 400, r.text
        # An "@" that names no preset leaves the model as it is (and this one is not a model); a null preset is none.
        r = c.post("/chat/completions", json={"model": "test/alpha@v2", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 400 and "test/alpha@v2" in r.json()["error"]["message"]
        r = c.post(
            "/chat/completions",
            json={"model": "test/alpha", "preset": None, "messages": [{"role": "user", "content": "x"}]},
        )
        assert r.status_code == 200, r.text
        # The same preset named twice is fine.
        r = c.post(
            "/chat/completions",
            json={"model": f"@preset/{slug}", "preset": slug, "messages": [{"role": "user", "content": "x"}]},
        )
        assert r.status_code == 200, r.text


def test_no_preset_no_preset_id(gateway: Gateway, api_key: str) -> None:
    with gateway.client(api_key) as c:
        r = c.post("/chat/completions", json={"model": "test/alpha", "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code == 200
        gateway.flush()
        assert c.get("/generation", params={"id": r.json()["id"]}).json()["data"]["preset_id"] is None


# -- the merge's rules, unit by unit


def test_tool_identities_and_union() -> None:
    web = {"type": "openrouter:web_search", "parameters": {"max_results": 3}}
    web2 = {"type": "openrouter:web_search", "parameters": {"max_results": 9}}
    adv_a = {"type": "openrouter:advisor", "parameters": {"name": "a", "v": 1}}
    adv_a2 = {"type": "openrouter:advisor", "parameters": {"name": "a", "v": 2}}
    adv_b = {"type": "openrouter:subagent", "parameters": {"name": "b"}}
    assert tool_identity(fn("x")) == ("function", "x")
    assert tool_identity(web) == tool_identity(web2) == ("openrouter:web_search",)
    assert tool_identity(adv_a) == tool_identity(adv_a2) != tool_identity(adv_b)
    preset_tools = [fn("x", "p"), web, adv_a, fn("y", "p")]
    request_tools = [fn("z", "r"), web2, adv_a2, adv_b, fn("x", "r")]
    assert union_tools(preset_tools, request_tools) == [fn("x", "r"), web2, adv_a2, fn("y", "p"), fn("z", "r"), adv_b]
    assert union_tools(preset_tools, []) == preset_tools


def test_no_presets_no_snapshot(make_gateway: Any) -> None:
    gw = make_gateway()
    assert gw.state.governance.get("presets") is None  # the request path then costs one dict lookup
    slug, _ = make_preset(gw, {"model": "test/alpha"})
    assert gw.state.governance.get("presets").get("00000000-0000-4000-8000-000000000000", slug) is not None
    with httpx.Client(base_url=gw.api, headers={"Authorization": f"Bearer {gw.create_key()['key']}"}) as c:
        r = c.post(
            "/chat/completions", json={"model": f"@preset/{slug}", "messages": [{"role": "user", "content": "x"}]}
        )
    assert r.status_code == 200 and r.json()["model"] == "test/alpha"


def test_a_preset_on_messages_to_an_anthropic_upstream_is_translated_not_passed_through(tmp_path: Any) -> None:
    """/messages to an Anthropic upstream is passed through as the client's own body; with a preset the
    merged request goes instead, so the upstream sees the preset's system prompt and parameters."""
    from omnirouter.testing import FakeAnthropic
    from tests.test_anthropic_upstream import KEY
    from tests.test_anthropic_upstream import config as anthropic_config

    fake = FakeAnthropic.run_in_thread(api_key=KEY)
    gw = Gateway(tmp_path, anthropic_config(fake.base_url)).start()
    try:
        slug, _ = make_preset(gw, {"model": "test/claude", "system": SYSTEM, "temperature": 0.5}, "messages")
        sdk = anthropic.Anthropic(base_url=gw.url + "/api", api_key=gw.create_key()["key"], max_retries=0)
        message = sdk.messages.create(
            model=f"@preset/{slug}", max_tokens=30, messages=[{"role": "user", "content": "ahoy"}]
        )
        assert message.model == "test/claude"
        up = fake.fake.last_request.json
        assert up["model"] == "claude-sonnet-4-5" and up["temperature"] == 0.5 and up["max_tokens"] == 30
        system = up["system"] if isinstance(up["system"], str) else "".join(b["text"] for b in up["system"])
        assert system == SYSTEM
        assert up["messages"][-1]["role"] == "user"
    finally:
        gw.stop()
        fake.stop()


def test_count_tokens_counts_the_preset_system_prompt(gateway: Gateway, api_key: str) -> None:
    """Claude Code counts before it sends: with a preset model the count includes the preset's system prompt."""
    long_prompt = "Arr, matey. " * 200
    slug, _ = make_preset(gateway, {"model": "test/alpha", "system": long_prompt}, "messages")
    sdk = anthropic.Anthropic(base_url=gateway.url + "/api", api_key=api_key, max_retries=0)
    messages = [{"role": "user", "content": "ahoy"}]
    plain = sdk.messages.count_tokens(model="test/alpha", messages=messages).input_tokens  # type: ignore[arg-type]
    with_preset = sdk.messages.count_tokens(model=f"@preset/{slug}", messages=messages).input_tokens  # type: ignore[arg-type]
    assert with_preset > plain + 400
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.count_tokens(model="@preset/no-such-preset", messages=messages)  # type: ignore[arg-type]


def test_a_key_limit_counts_the_preset_prompt_before_the_request_goes(gateway: Gateway) -> None:
    """The reservation's prompt estimate is the merged request's: a preset's long system prompt can make a
    request too expensive for the key's limit, which is refused (402) before anything goes upstream."""
    slug, _ = make_preset(gateway, {"model": "test/beta", "system": "x" * 200_000}, "messages")  # ~50k tokens, $0.15
    key = gateway.create_key(name="small limit", limit=0.1)["key"]
    with gateway.client(key) as c:
        plain = c.post(
            "/chat/completions",
            json={"model": "test/beta", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        )
        assert plain.status_code == 200, plain.text
        r = c.post(
            "/chat/completions",
            json={"model": f"@preset/{slug}", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
        )
    assert r.status_code == 402, r.text
