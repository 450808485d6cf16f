"""The five upstream APIs the scenarios run against, each as two fakes (a primary and a backup for
fallback) behind one gateway, and what a test needs to read from the request an upstream received."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from omnirouter.testing import FakeAnthropic, FakeAzure, FakeBedrock, FakeGemini, FakeOpenAI, FakeOpenAIResponses
from omnirouter.testing.fakes.core import FakeServer, FakeThread, text_of

UPSTREAM_MODELS = {
    "openai": "gpt-4.1",
    "azure": "gpt-41-prod",
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
    "openai-responses": "gpt-5",
    "bedrock": "anthropic.claude-sonnet-4-5-20250929-v1:0",
}
APIS = ("openai", "azure", "anthropic", "gemini", "bedrock", "openai-responses")

# USD per token. Every price a cost can use is set, and set apart, so that a token billed at the
# wrong price shows in the total.
PRICES = {
    "prompt": "0.000003",
    "completion": "0.000015",
    "input_cache_read": "0.0000003",
    "input_cache_write": "0.00000375",
    "internal_reasoning": "0.000011",
    "request": "0.0001",
}
PARAMETERS = [
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "reasoning",
    "include_reasoning",
    "response_format",
    "structured_outputs",
]


def price(name: str) -> Decimal:
    return Decimal(PRICES[name])


def _system_openai(body: dict[str, Any]) -> str:
    return " ".join(
        m["content"] if isinstance(m["content"], str) else " ".join(p["text"] for p in m["content"])
        for m in body["messages"]
        if m["role"] in ("system", "developer")
    )


def _system_anthropic(body: dict[str, Any]) -> str:
    system = body.get("system") or ""
    return system if isinstance(system, str) else " ".join(b["text"] for b in system)


def _system_gemini(body: dict[str, Any]) -> str:
    return " ".join(p["text"] for p in (body.get("systemInstruction") or {}).get("parts", ()))


def _system_bedrock(body: dict[str, Any]) -> str:
    return " ".join(b["text"] for b in body.get("system") or () if "text" in b)


def _system_responses(body: dict[str, Any]) -> str:
    items = body["input"] if isinstance(body["input"], list) else []
    system = [text_of(i.get("content")) for i in items if i.get("role") in ("system", "developer")]
    return " ".join([body["instructions"]] if body.get("instructions") else system)


def _schema_openai(body: dict[str, Any]) -> Any:
    return body["response_format"]["json_schema"]["schema"]


def _schema_anthropic(body: dict[str, Any]) -> Any:
    return body["output_config"]["format"]["schema"]


def _schema_gemini(body: dict[str, Any]) -> Any:
    config = body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    return config.get("responseJsonSchema") or config["responseSchema"]


def _schema_bedrock(body: dict[str, Any]) -> Any:
    return json.loads(body["outputConfig"]["textFormat"]["structure"]["jsonSchema"]["schema"])


def _schema_responses(body: dict[str, Any]) -> Any:
    return body["text"]["format"]["schema"]


def _turns_openai(body: dict[str, Any]) -> int:
    return len([m for m in body["messages"] if m["role"] not in ("system", "developer")])


def _turns_contents(body: dict[str, Any]) -> int:
    return len(body.get("messages") or body.get("contents") or ())


def _turns_responses(body: dict[str, Any]) -> int:
    items = body["input"] if isinstance(body["input"], list) else [body["input"]]
    return len([i for i in items if isinstance(i, str) or i.get("role") in ("user", "assistant")])


@dataclass
class Upstream:
    """One upstream API: its fakes and how its wire carries what the scenarios check."""

    api: str
    cls: type[FakeServer]
    key: str
    system_of: Callable[[dict[str, Any]], str]
    schema_of: Callable[[dict[str, Any]], Any]
    turns_of: Callable[[dict[str, Any]], int]
    signs_reasoning: bool  # its reasoning comes signed, and must go back signed
    reports_cache_writes: bool
    reports_reasoning_tokens: bool = True  # Converse's usage has no reasoning count
    extra: dict[str, Any] = field(default_factory=dict)  # provider fields beside api/base_url/api_key
    fakes: tuple[FakeThread[Any], FakeThread[Any]] | None = None

    @property
    def primary(self) -> FakeThread[Any]:
        assert self.fakes is not None
        return self.fakes[0]

    @property
    def backup(self) -> FakeThread[Any]:
        assert self.fakes is not None
        return self.fakes[1]

    @property
    def model(self) -> str:
        return f"scn/{self.api}"

    @property
    def model_two(self) -> str:
        return f"scn/{self.api}-two"

    @property
    def model_refused(self) -> str:
        return f"scn/{self.api}-refused"

    @property
    def order(self) -> list[str]:
        """provider.order that makes the primary answer first and the backup second."""
        return [f"{self.api}-a", f"{self.api}-b"]

    def backup_name(self) -> str:
        return f"{self.api.capitalize()} B"

    def last_body(self) -> dict[str, Any]:
        return self.primary.requests[-1].json

    def start(self) -> None:
        self.fakes = (self.cls.run_in_thread(api_key=self.key), self.cls.run_in_thread(api_key=self.key))

    def stop(self) -> None:
        for fake in self.fakes or ():
            fake.stop()

    def reset(self) -> None:
        for fake in self.fakes or ():
            fake.reset()

    def config(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Its providers and models for the gateway's configuration."""
        assert self.fakes is not None
        providers = [
            {
                "slug": f"{self.api}-{x}",
                "name": f"{self.api.capitalize()} {x.upper()}",
                "api": self.api,
                "base_url": fake.base_url,
                "api_key": self.key,
                **self.extra,
            }
            for x, fake in zip("ab", self.fakes, strict=True)
        ]
        # The primary again, with a key it refuses (in its own way: Gemini's 400 API_KEY_INVALID,
        # Bedrock's 403, the others' 401).
        providers.append({**providers[0], "slug": f"{self.api}-x", "name": "Refused", "api_key": "wrong-key"})

        models = [model(self.model, [endpoint(self.api, "a")]),
                  model(self.model_two, [endpoint(self.api, "a"), endpoint(self.api, "b")]),
                  model(self.model_refused, [endpoint(self.api, "x")]),
                  model(self.model_across, [endpoint(self.api, "a"), endpoint(self.other_api, "b")])]  # fmt: skip
        return providers, models

    @property
    def other_api(self) -> str:
        """The API of the model_across backup: another one."""
        return "anthropic" if self.api == "openai" else "openai"

    @property
    def model_across(self) -> str:
        return f"scn/{self.api}-across"


def endpoint(api: str, x: str) -> dict[str, Any]:
    return {"provider": f"{api}-{x}", "upstream_model": UPSTREAM_MODELS[api], "pricing": PRICES,
            "max_completion_tokens": 16000}  # fmt: skip


def model(id_: str, endpoints: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": id_, "name": id_, "context_length": 200000, "supported_parameters": PARAMETERS,
            "endpoints": endpoints}  # fmt: skip


def all_upstreams() -> dict[str, Upstream]:
    return {
        "openai": Upstream(
            "openai",
            FakeOpenAI,
            "sk-openai-scenarios",
            _system_openai,
            _schema_openai,
            _turns_openai,
            signs_reasoning=False,
            reports_cache_writes=False,
        ),
        "azure": Upstream(
            "azure",
            FakeAzure,
            "azure-scenarios",
            _system_openai,
            _schema_openai,
            _turns_openai,
            signs_reasoning=False,
            reports_cache_writes=False,
            extra={"api_version": "2025-01-01-preview"},
        ),
        "anthropic": Upstream(
            "anthropic",
            FakeAnthropic,
            "sk-ant-scenarios",
            _system_anthropic,
            _schema_anthropic,
            _turns_contents,
            signs_reasoning=True,
            reports_cache_writes=True,
        ),
        "gemini": Upstream(
            "gemini",
            FakeGemini,
            "gemini-scenarios",
            _system_gemini,
            _schema_gemini,
            _turns_contents,
            signs_reasoning=True,
            reports_cache_writes=False,
        ),
        # A Bedrock API key (bearer) rather than SigV4: the scenarios need no AWS environment.
        "bedrock": Upstream(
            "bedrock",
            FakeBedrock,
            "bedrock-api-key-scenarios",
            _system_bedrock,
            _schema_bedrock,
            _turns_contents,
            signs_reasoning=True,
            reports_cache_writes=True,
            reports_reasoning_tokens=False,
            extra={"region": "us-east-1"},
        ),
        # Its encrypted reasoning is what it signs: it refuses encrypted_content it did not issue.
        "openai-responses": Upstream(
            "openai-responses",
            FakeOpenAIResponses,
            "sk-openai-responses-scenarios",
            _system_responses,
            _schema_responses,
            _turns_responses,
            signs_reasoning=True,
            reports_cache_writes=False,
        ),
    }


def gateway_config(upstreams: dict[str, Upstream]) -> dict[str, Any]:
    providers: list[dict[str, Any]] = []
    models: list[dict[str, Any]] = []
    for upstream in upstreams.values():
        p, m = upstream.config()
        providers += p
        models += m
    return {"providers": providers, "models": models}


def started(upstreams: dict[str, Upstream]) -> Iterator[dict[str, Upstream]]:
    for upstream in upstreams.values():
        upstream.start()
    try:
        yield upstreams
    finally:
        for upstream in upstreams.values():
            upstream.stop()
