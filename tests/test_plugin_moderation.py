"""The moderation plugin: a moderation pass through the operator's OpenAI-compatible moderation API
(a loopback fake), asked for or forced by is_moderated endpoints; flagged input answers 403 with
ModerationErrorMetadata in each format's envelope and costs nothing; a failing moderation API fails
closed (503)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from openrouter import OpenRouter, errors

from omnirouter.plugins.moderation import shorten
from omnirouter.testing import Reply, Status, Stream
from omnirouter.testing.fakes.core import FakeThread
from omnirouter.testing.fakes.moderation import FakeOpenAIModeration
from tests.conftest import ALPHA_PRICES, standard_config
from tests.gateway import Gateway, generation, key_usage
from tests.sdk_ts_run import run_steps

MOD_KEY = "sk-mod-test-0123456789"
KEY_ENV = "OMNIROUTER_TEST_MODERATION_KEY"
CLEAN = [{"role": "user", "content": "tell me about gardens"}]
FLAGGED = [{"role": "system", "content": "be kind"}, {"role": "user", "content": "how to do something forbidden"}]
MODERATE = {"plugins": [{"id": "moderation"}]}


def catalog(a: str, b: str) -> dict[str, Any]:
    config = standard_config(a, b)
    config["models"] += [
        {"id": "test/moderated", "name": "Moderated", "context_length": 32768, "endpoints": [
            {"provider": "fake-a", "upstream_model": "moderated-up", "pricing": ALPHA_PRICES, "is_moderated": True}]},
        {"id": "test/mixed", "name": "Mixed", "context_length": 32768, "provider": None, "endpoints": [
            {"provider": "fake-a", "upstream_model": "mixed-a", "pricing": ALPHA_PRICES, "is_moderated": True},
            {"provider": "fake-b", "upstream_model": "mixed-b", "pricing": ALPHA_PRICES}]},
    ]  # fmt: skip
    for model in config["models"]:
        model.pop("provider", None)
    return config


@pytest.fixture(scope="module")
def moderation() -> Iterator[FakeThread[FakeOpenAIModeration]]:
    os.environ[KEY_ENV] = MOD_KEY
    handle = FakeOpenAIModeration.run_in_thread(api_key=MOD_KEY, flag={"forbidden": "violence", "hateful": "hate"})
    yield handle
    handle.stop()
    os.environ.pop(KEY_ENV, None)


@pytest.fixture(autouse=True)
def _fresh_moderation(moderation: FakeThread[FakeOpenAIModeration]) -> None:
    moderation.reset()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any, moderation: Any) -> Iterator[Gateway]:
    setting = {"base_url": moderation.base_url, "api_key_env": KEY_ENV, "model": "omni-moderation-latest"}
    gateway = Gateway(tmp_path_factory.mktemp("moderation"), catalog(fake_a.base_url, fake_b.base_url),
                      moderation=setting).start()  # fmt: skip
    yield gateway
    gateway.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return str(gw.create_key(name="moderation")["key"])


def oai(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=gw.api, max_retries=0)


def test_a_moderated_endpoint_is_always_moderated_and_reports_its_latency(gw, key, fake_a, moderation):
    fake_a.fake.script(Reply("gardens are nice"))
    raw = oai(gw, key).chat.completions.with_raw_response.create(model="test/moderated", messages=CLEAN)
    assert raw.parse().choices[0].message.content == "gardens are nice"
    checked = moderation.requests[-1]
    assert checked.path == "/v1/moderations" and checked.headers["Authorization"] == f"Bearer {MOD_KEY}"
    assert checked.json == {"model": "omni-moderation-latest", "input": ["tell me about gardens"]}
    latency = generation(gw, key, raw.headers["x-generation-id"])["moderation_latency"]
    assert isinstance(latency, int) and latency >= 0


def test_flagged_input_is_403_with_moderation_metadata_and_costs_nothing(gw, key, fake_a, moderation):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        oai(gw, key).chat.completions.create(model="test/moderated", messages=FLAGGED)
    assert caught.value.status_code == 403
    error = caught.value.body
    assert error["code"] == 403
    assert error["metadata"] == {
        "reasons": ["violence"],
        "flagged_input": "how to do something forbidden",
        "provider_name": "Fake A",
        "model_slug": "test/moderated",
    }
    assert moderation.requests[-1].json["input"] == ["be kind", "how to do something forbidden"]
    assert not fake_a.fake.requests
    assert key_usage(gw, key) == Decimal(0)


def test_flagged_input_is_cut_in_its_middle_to_100_characters(gw, key, moderation):
    text = "a" * 150 + " something hateful " + "z" * 150
    with OpenRouter(api_key=key, server_url=gw.api) as client, pytest.raises(errors.ForbiddenResponseError) as caught:
        client.chat.send(
            model="test/alpha", messages=[{"role": "user", "content": text}], plugins=[{"id": "moderation"}]
        )
    metadata = caught.value.data.error.metadata
    assert metadata["reasons"] == ["hate"] and metadata["model_slug"] == "test/alpha"
    flagged = metadata["flagged_input"]
    assert len(flagged) == 100 and flagged == text[:49] + "..." + text[-48:]
    assert shorten("short") == "short"


def test_unmoderated_endpoints_are_moderated_only_when_asked(gw, key, fake_a, moderation):
    fake_a.fake.script(Reply("unchecked"))
    answer = oai(gw, key).chat.completions.create(model="test/alpha", messages=FLAGGED)
    assert answer.choices[0].message.content == "unchecked"
    assert not moderation.requests
    with pytest.raises(openai.PermissionDeniedError) as caught:
        oai(gw, key).chat.completions.create(model="test/alpha", messages=FLAGGED, extra_body=MODERATE)
    assert "flagged" in caught.value.body["message"]
    assert len(fake_a.fake.requests) == 1


def test_flagged_input_still_reaches_an_unmoderated_endpoint_of_the_model(gw, key, fake_a, fake_b, moderation):
    fake_b.fake.script(Reply("from b"))
    answer = oai(gw, key).chat.completions.create(
        model="test/mixed", messages=FLAGGED, extra_body={"provider": {"order": ["fake-a", "fake-b"]}}
    )
    assert answer.choices[0].message.content == "from b"
    assert not fake_a.fake.requests and len(moderation.requests) == 1


def test_a_failing_moderation_api_fails_closed(gw, key, fake_a, moderation):
    moderation.script(Status(500), Status(401))
    for _ in range(2):
        with pytest.raises(openai.InternalServerError) as caught:
            oai(gw, key).chat.completions.create(model="test/moderated", messages=CLEAN)
        assert caught.value.status_code == 503
        assert "moderation" in caught.value.body["message"] and MOD_KEY not in caught.value.response.text
    assert not fake_a.fake.requests


def test_a_flagged_stream_is_refused_before_it_starts(gw, key, fake_a):
    fake_a.fake.script(Stream(content="never"))
    with pytest.raises(openai.PermissionDeniedError):
        oai(gw, key).chat.completions.create(model="test/moderated", messages=FLAGGED, stream=True)
    fake_a.fake.reset()
    fake_a.fake.script(Stream(content="clean stream"))
    chunks = list(oai(gw, key).chat.completions.create(model="test/moderated", messages=CLEAN, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "clean stream"
    assert isinstance(generation(gw, key, chunks[0].id)["moderation_latency"], int)


def test_messages_api_answers_a_permission_error(gw, key, fake_a):
    client = anthropic.Anthropic(api_key=key, base_url=gw.url + "/api", max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        client.messages.create(model="test/moderated", max_tokens=64, system="be kind",
                               messages=[{"role": "user", "content": "something forbidden"}])  # fmt: skip
    body = caught.value.body
    assert body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert body["metadata"]["reasons"] == ["violence"] and body["metadata"]["flagged_input"] == "something forbidden"
    fake_a.fake.script(Stream(content="clean"))
    with client.messages.stream(model="test/moderated", max_tokens=64, messages=CLEAN) as stream:
        assert stream.get_final_text() == "clean"


def test_responses_api_answers_403(gw, key, fake_a):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        oai(gw, key).responses.create(model="test/alpha", input="something forbidden", extra_body=MODERATE)
    assert caught.value.body["metadata"]["provider_name"] == "Fake A"
    assert not fake_a.fake.requests


def test_without_a_moderation_api_moderated_endpoints_are_served_and_asking_is_503(make_gateway, fake_a, fake_b):
    bare = make_gateway(catalog(fake_a.base_url, fake_b.base_url))
    key = bare.create_key()["key"]
    fake_a.fake.script(Reply("served unmoderated"))
    answer = oai(bare, key).chat.completions.create(model="test/moderated", messages=FLAGGED)
    assert answer.choices[0].message.content == "served unmoderated"
    with pytest.raises(openai.InternalServerError) as caught:
        oai(bare, key).chat.completions.create(model="test/alpha", messages=CLEAN, extra_body=MODERATE)
    assert caught.value.status_code == 503 and "no moderation service" in caught.value.body["message"]


def test_typescript_sdk(gw, key, fake_a):
    """tests/sdk_ts/plugins_guard.mjs: the 403 parses as the SDK's ForbiddenResponseError, chat and responses."""
    moderation = {"model": "test/alpha", "flagged": "something forbidden", "reasons": ["violence"]}
    results = run_steps("plugins_guard.mjs", {"serverURL": gw.api, "apiKey": key, "moderation": moderation})
    assert set(results) == {"moderation.chat.send", "moderation.responses.send"}
    assert all(r["ok"] for r in results.values()), results
    assert not fake_a.fake.requests
