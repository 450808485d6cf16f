"""Builders for routing tests: configs with priced endpoints, planners without HTTP, and chat calls
against a gateway that return what a client sees (status, body or SSE events, generation record)."""

from __future__ import annotations

import contextlib
import json
import random
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
from tests.gateway import Gateway

from omnirouter.api.jsonio import encode
from omnirouter.app import build_routing
from omnirouter.catalog.loader import CatalogLayers
from omnirouter.formats import openai_chat
from omnirouter.pipeline.call import estimate_tokens
from omnirouter.plugins.context_compression import asked as compression_asked
from omnirouter.routing.engine import Routing
from omnirouter.routing.plan import Needs, Plan
from omnirouter.settings import Settings

HELLO = [{"role": "user", "content": "hello there"}]
PER_MILLION = Decimal("0.000001")


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting to it is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def provider(slug: str, base_url: str = "http://127.0.0.1:9/v1", **fields: Any) -> dict[str, Any]:
    name = " ".join(part.capitalize() for part in slug.split("-"))
    return {"slug": slug, "name": name, "api": "openai", "base_url": base_url, **fields}


def per_million(prompt: float | str, completion: float | str, **extra: Any) -> dict[str, str]:
    """Prices given in USD per million tokens, written per token as the catalog wants them."""
    out = {
        "prompt": str(Decimal(str(prompt)) * PER_MILLION),
        "completion": str(Decimal(str(completion)) * PER_MILLION),
    }
    for k, v in extra.items():
        out[k] = str(Decimal(str(v)) * PER_MILLION) if k.startswith("input_cache") else str(v)
    return out


def endpoint(prov: str, upstream: str | None = None, prompt: float = 1, completion: float = 1, **fields: Any) -> dict:
    return {"provider": prov, "upstream_model": upstream or f"{prov}-model", "pricing": per_million(prompt, completion),
            **fields}  # fmt: skip


def model(model_id: str, endpoints: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {"id": model_id, "name": model_id, "context_length": 100_000, "endpoints": endpoints, **fields}


def config(providers: list[dict[str, Any]], models: list[dict[str, Any]], **settings: Any) -> dict[str, Any]:
    return {"providers": providers, "models": models, **settings}


# -- the planner alone


def routing_for(cfg: dict[str, Any], *, seed: int = 0, **settings: Any) -> Routing:
    """A worker's routing state over just this config's catalog, with a seeded RNG and no adapters."""
    layers = CatalogLayers()
    layers.add_config({k: cfg[k] for k in ("providers", "models") if k in cfg}, "test config")
    catalog = layers.build(env={}, sandbox=False)
    routing = build_routing(Settings(**settings), catalog, {})
    routing.planner.rng = random.Random(seed)
    return routing


def needs_of(body: dict[str, Any]) -> Needs:
    """What chat._admit derives from a body, for calling the planner directly."""
    req = openai_chat.parse(body)
    plugins = body.get("plugins")
    web = isinstance(plugins, list) and any(isinstance(p, dict) and p.get("id") == "web" for p in plugins)
    return Needs(
        params=openai_chat.requested_parameters(body),
        prompt_tokens=estimate_tokens(len(encode(body))),
        completion_limit=req.completion_limit,
        tools=bool(req.tools),
        response_format=req.response_format is not None,
        web_search=web,
        plugins=plugins,
        compress=compression_asked(body),
    )


def plan(routing: Routing, body: dict[str, Any], **kw: Any) -> Plan:
    body = {"messages": HELLO, **body}
    return routing.planner.plan(openai_chat.parse(body), needs_of(body), **kw)


def slugs(p: Plan) -> list[str]:
    """The plan's endpoints in order, as "model@slug" (just the slug when one model is asked)."""
    models = {c.model.id for c in p.candidates}
    return [c.endpoint.slug if len(models) == 1 else f"{c.model.id}@{c.endpoint.slug}" for c in p.candidates]


# -- through a gateway


@contextlib.contextmanager
def running_gateway(tmp_path_factory: Any, cfg: dict[str, Any], **settings: Any) -> Iterator[Gateway]:
    """A gateway over `cfg` for a module's tests (each test resets the state it depends on)."""
    gw = Gateway(tmp_path_factory.mktemp("routing"), cfg, **settings).start()
    try:
        yield gw
    finally:
        gw.stop()


def client(gw: Any, key: str) -> httpx.Client:
    """Like gw.client(key), without loading a CA bundle per client (~40 ms): loopback is plain HTTP."""
    return httpx.Client(base_url=gw.api, headers={"Authorization": f"Bearer {key}"}, timeout=30, verify=False)


@dataclass
class Answer:
    """What a client saw: the status, the JSON body (non-stream or error) or the SSE events."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any] | None = None
    events: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False  # the stream ended with data: [DONE]

    @property
    def gen_id(self) -> str:
        return self.headers["x-generation-id"]

    @property
    def error(self) -> dict[str, Any]:
        assert self.body is not None and "error" in self.body, self.body
        return self.body["error"]

    @property
    def content(self) -> str:
        if self.body is not None and "choices" in self.body:
            return self.body["choices"][0]["message"]["content"] or ""
        return "".join((c.get("delta") or {}).get("content") or "" for e in self.events for c in e.get("choices", []))

    @property
    def usage(self) -> dict[str, Any]:
        if self.events:
            return next(e["usage"] for e in reversed(self.events) if e.get("usage"))
        assert self.body is not None
        return self.body["usage"]

    @property
    def cost(self) -> Decimal:
        return Decimal(str(self.usage["cost"]))

    @property
    def provider(self) -> str | None:
        if self.body is not None:
            return self.body.get("provider")
        return next((e["provider"] for e in self.events if e.get("choices")), None)


def chat(gw: Any, key: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Answer:
    body = {"messages": HELLO, **body}
    with client(gw, key) as c:
        if not body.get("stream"):
            r = c.post("/chat/completions", json=body, headers=headers)
            return Answer(r.status_code, dict(r.headers), json.loads(r.text, parse_float=Decimal))
        with c.stream("POST", "/chat/completions", json=body, headers=headers) as r:
            text = r.read().decode()
            if not r.headers.get("content-type", "").startswith("text/event-stream"):
                return Answer(r.status_code, dict(r.headers), json.loads(text, parse_float=Decimal))
            answer = Answer(r.status_code, dict(r.headers))
            for line in text.splitlines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    answer.done = True
                else:
                    answer.events.append(json.loads(data, parse_float=Decimal))
            return answer


def generation(gw: Any, key: str, gen_id: str, timeout: float = 2.0) -> dict[str, Any]:
    """GET /generation, retried briefly: records are written off the request path."""
    deadline = time.monotonic() + timeout
    with client(gw, key) as c:
        while True:
            r = c.get("/generation", params={"id": gen_id})
            if r.status_code == 200:
                return json.loads(r.text, parse_float=Decimal)["data"]
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
    raise AssertionError(f"generation {gen_id} never appeared: {r.status_code} {r.text}")


def attempts(gen: dict[str, Any]) -> list[tuple[str, int]]:
    return [(p["provider_name"], p["status"]) for p in gen["provider_responses"]]


def key_usage(gw: Any, key: str) -> Decimal:
    with client(gw, key) as c:
        return Decimal(str(c.get("/key").json()["data"]["usage"]))


def cost_of(usage: dict[str, Any], prices: dict[str, str]) -> Decimal:
    """What usage costs at an endpoint's per-token prices (no cache, no reasoning price)."""
    return (
        usage["prompt_tokens"] * Decimal(prices["prompt"])
        + usage["completion_tokens"] * Decimal(prices["completion"])
        + Decimal(prices.get("request", "0"))
    )
