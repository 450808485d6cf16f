"""The server's own OpenAPI document: valid OpenAPI 3.1, complete, and honest.

Honest means real responses from a running gateway validate against the document's schemas. Bodies
the gateway builds itself are checked strictly (no field the document does not name); chat bodies,
which pass provider extras through, are checked leniently, with their usage checked strictly.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from openapi_spec_validator import validate as validate_openapi
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from omnirouter.app import api_routes
from omnirouter.openapi_doc import OPERATIONS, UndocumentedRoute, build, document
from omnirouter.testing import Reply, Status, Stream
from tests.catalog.catalog_helpers import SPEC_NAMED_KEYS, build_catalog, make_client
from tests.spec_validation import SPEC_PATH, parse_sse, spec_available

HELLO = [{"role": "user", "content": "hello there"}]
JSON = "application/json"
SSE = "text/event-stream"
_URI = "urn:omnirouter:own-openapi"
PUBLIC = {
    ("/models", "get"),
    ("/models/count", "get"),
    ("/model/{author}/{slug}", "get"),
    ("/models/{author}/{slug}/endpoints", "get"),
    ("/providers", "get"),
    ("/endpoints/zdr", "get"),
    ("/openapi.json", "get"),
    ("/health/live", "get"),
    ("/health/ready", "get"),
    ("/auth/keys", "post"),  # the OAuth exchange: the code and its verifier are the credential
    # The listings of models by what they make, public as /models is.
    ("/images/models", "get"),
    ("/images/models/{author}/{slug}/endpoints", "get"),
    ("/videos/models", "get"),
}
# Error answers that are not the error envelope: readiness answers 503 in the shape of its 200.
OWN_ERROR_BODIES = {("/health/ready", "get", "503"): "Ready"}


# ------------------------------------------------------------------------------------------ helpers


def _strict(doc: dict[str, Any]) -> dict[str, Any]:
    """The document with every described object closed: a field the server sends but the document
    does not name fails validation."""
    doc = copy.deepcopy(doc)
    for schema in doc["components"]["schemas"].values():
        if schema.get("type") == "object" and "properties" in schema:
            schema.setdefault("additionalProperties", False)
    return doc


@functools.cache
def _registry(strict: bool) -> Registry:
    doc = _strict(document()) if strict else document()
    return Registry().with_resource(_URI, Resource.from_contents(doc, default_specification=DRAFT202012))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _check(pointer: str, instance: Any, *, strict: bool, label: str) -> None:
    validator = Draft202012Validator({"$ref": f"{_URI}#{pointer}"}, registry=_registry(strict))
    error = best_match(validator.iter_errors(instance))
    if error is not None:
        shown = json.dumps(error.instance, default=str)[:300]
        raise AssertionError(f"{label}: {error.message} at {error.json_path}; value: {shown}")


def conforms(path: str, method: str, status: int, body: Any, *, media: str = JSON, strict: bool = True) -> None:
    """``body`` is valid against what the document says ``method path`` answers with ``status``."""
    op = document()["paths"][path][method]
    assert str(status) in op["responses"], f"{method.upper()} {path} does not document a {status} response"
    assert media in op["responses"][str(status)].get("content", {}), f"{method.upper()} {path} {status}: no {media}"
    pointer = "/" + "/".join(
        _escape(t) for t in ("paths", path, method, "responses", str(status), "content", media, "schema")
    )
    _check(pointer, body, strict=strict, label=f"{method.upper()} {path} {status}")


def conforms_to(name: str, body: Any) -> None:
    """``body`` is valid against the component schema ``name``, strictly."""
    _check(f"/components/schemas/{name}", body, strict=True, label=name)


def events(text: str, sentinel: str | None = "[DONE]") -> list[dict[str, Any]]:
    """The SSE events of a stream as the document describes them, ``{"data": <chunk>}``, and the
    sentinel last (for the operations that end with one; /messages does not)."""
    raw = parse_sse(text)
    if sentinel is not None:
        assert raw and raw[-1]["data"] == sentinel, f"the stream must end with data: {sentinel}"
        raw = raw[:-1]
    return [{**e, "data": json.loads(e["data"])} for e in raw]


def chat(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/chat/completions", json={"model": "test/alpha", "messages": HELLO, **body})


def check_chat(r: httpx.Response) -> dict[str, Any]:
    assert r.status_code == 200, r.text
    body = r.json()
    conforms("/chat/completions", "post", 200, body, strict=False)
    conforms_to("ChatUsage", body["usage"])
    return body


def check_stream(r: httpx.Response) -> list[dict[str, Any]]:
    assert r.status_code == 200 and r.headers["content-type"].startswith(SSE), r.text
    evs = events(r.text)
    for event in evs:
        conforms("/chat/completions", "post", 200, event, media=SSE, strict=False)
    conforms_to("ChatUsage", evs[-1]["data"]["usage"])
    return [e["data"] for e in evs]


# ------------------------------------------------------------------------------- the document itself


def test_served_document_is_valid_openapi_3_1(gateway):
    with httpx.Client(timeout=30) as c:
        r = c.get(gateway.api + "/openapi.json")
        alias = c.get(gateway.url + "/v1/openapi.json")
    assert r.status_code == 200 and r.headers["content-type"] == JSON
    assert alias.status_code == 200 and alias.json() == r.json()
    doc = r.json()
    assert doc == json.loads(json.dumps(document()))
    validate_openapi(doc)  # raises on an invalid document
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"] == "Omnirouter" and doc["info"]["version"]
    assert doc["servers"] == [{"url": "/api/v1"}]
    bearer = doc["components"]["securitySchemes"]["bearer"]
    assert (bearer["type"], bearer["scheme"]) == ("http", "bearer")
    conforms("/openapi.json", "get", 200, doc)


def test_every_route_is_documented_with_its_methods():
    doc = document()
    served = set()
    for route in api_routes():
        for method in route.methods - {"HEAD"}:
            served.add((route.path_format, method.lower()))
            assert method.lower() in doc["paths"].get(route.path_format, {}), f"{method} {route.path} undocumented"
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert documented == served


def test_a_route_without_a_description_fails_the_build():
    async def nope(request):
        return PlainTextResponse("")

    with pytest.raises(UndocumentedRoute, match="GET /nope"):
        build([*api_routes(), Route("/nope", nope, methods=["GET"])])
    with pytest.raises(UndocumentedRoute, match=re.escape("PUT /keys/{hash}")):
        build([*api_routes(), Route("/keys/{hash}", nope, methods=["PUT"])])
    with pytest.raises(UndocumentedRoute, match="does not serve"):
        build([r for r in api_routes() if r.path != "/providers"])


def test_operations_declare_auth_errors_and_unique_ids():
    doc = document()
    ids = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            ids.append(op["operationId"])
            assert op["security"] == ([] if (path, method) in PUBLIC else [{"bearer": []}]), (path, method)
            responses = op["responses"]
            if op["security"]:
                assert "401" in responses, (path, method)
            assert "500" in responses, (path, method)
            for status, response in responses.items():
                if int(status) >= 400:
                    schema = response["content"][JSON]["schema"]
                    envelope = "AnthropicMessagesErrorResponse" if path.startswith("/messages") else "ErrorResponse"
                    envelope = OWN_ERROR_BODIES.get((path, method, status), envelope)
                    assert schema == {"$ref": f"#/components/schemas/{envelope}"}, (path, method, status)
            assert set(op["tags"]) <= {t["name"] for t in doc["tags"]}
    assert len(ids) == len(set(ids))
    chat = doc["paths"]["/chat/completions"]["post"]
    assert chat["requestBody"]["content"][JSON]["schema"]["$ref"] == "#/components/schemas/ChatRequest"
    assert set(chat["responses"]["200"]["content"]) == {JSON, SSE}


def test_operation_ids_match_the_official_document():
    if not spec_available():
        pytest.skip(f"{SPEC_PATH} not found: the official operation ids cannot be compared")
    official = json.loads(Path(SPEC_PATH).read_text(encoding="utf-8"))["paths"]
    ours_only = set()
    for path, method in OPERATIONS:
        theirs = official.get(path, {}).get(method)
        if theirs is None:
            ours_only.add((path, method))
            continue
        ours = document()["paths"][path][method]
        assert ours["operationId"] == theirs["operationId"], (path, method)
        assert ours["tags"] == theirs["tags"], (path, method)
    # /auth/key: the legacy alias; /completions: served by OpenRouter, not in its document (behaviors §11);
    # /messages/count_tokens: Anthropic's, not in OpenRouter's document; the health probes are a
    # self-hosted server's own
    assert ours_only == {
        ("/openapi.json", "get"),
        ("/health/live", "get"),
        ("/health/ready", "get"),
        ("/auth/key", "get"),
        ("/completions", "post"),
        ("/messages/count_tokens", "post"),
    }


def test_money_is_documented_as_a_number():
    schemas = document()["components"]["schemas"]
    assert schemas["ChatUsage"]["properties"]["cost"]["type"] == "number"
    assert schemas["CreateKey"]["properties"]["limit"]["anyOf"][0]["type"] == "number"
    assert "decimal" not in {
        p.get("type") for schema in schemas.values() for p in schema.get("properties", {}).values()
    }


# ------------------------------------------------------- the constraints the server enforces, stated


def _documented_valid(pointer: str, instance: Any) -> bool:
    validator = Draft202012Validator({"$ref": f"{_URI}#{pointer}"}, registry=_registry(False))
    return validator.is_valid(instance)


def _body_pointer(path: str, method: str) -> str:
    return "/" + "/".join(_escape(t) for t in ("paths", path, method, "requestBody", "content", JSON, "schema"))


def _query_pointer(path: str, name: str) -> str:
    index = next(i for i, p in enumerate(document()["paths"][path]["get"]["parameters"]) if p["name"] == name)
    return "/" + "/".join(_escape(str(t)) for t in ("paths", path, "get", "parameters", index, "schema"))


LONG = "x" * 256
KEY_BODIES = [
    {"name": "k"},
    {"name": ""},
    {"name": LONG[:255]},
    {"name": LONG},
    {"name": "k", "limit": 0},
    {"name": "k", "limit": 0.1},
    {"name": "k", "limit": 1e-18},
    {"name": "k", "limit": 1e-19},
    {"name": "k", "limit": -0.01},
    {"name": "k", "limit": 9.9e19},
    {"name": "k", "limit": 1e20},
    {"name": "k", "limit": None, "limit_reset": "weekly"},
    {"name": "k", "limit_reset": "hourly"},
    {"name": "k", "workspace_id": "w" * 50},  # a workspace's slug (created by the test; at most 50 characters)
    {"name": "k", "workspace_id": "w" * 65},
    {"name": "k", "workspace_id": ""},
    {"name": "k", "expires_at": "2099-01-01T00:00:00Z"},
    {"name": "k", "expires_at": "2099-01-01T00:00:00+00:00"},
    {"name": "k", "expires_at": "2099-01-01T02:00:00+02:00"},
    {"name": "k", "external": {"user": "u-1"}},
    {"name": "k", "external": {"user": "u-1", "api_key": "sk-mine"}},
]
CHAT_BODIES = [
    {"messages": HELLO},
    {"prompt": "hi"},
    {"messages": None, "prompt": "hi"},
    {"messages": None},
    {"messages": []},
    {"messages": HELLO, "max_tokens": 1},
    {"messages": HELLO, "max_tokens": 0},
    {"messages": HELLO, "max_tokens": 16.0},
    {"messages": HELLO, "max_tokens": 16.5},
    {"messages": HELLO, "temperature": 2},
    {"messages": HELLO, "temperature": 2.01},
    {"messages": HELLO, "top_p": 1.01},
    {"messages": HELLO, "top_logprobs": 21},
    {"messages": HELLO, "session_id": "s" * 256},
    {"messages": HELLO, "session_id": "s" * 257},
    {"messages": HELLO, "provider": {"max_price": {"prompt": "5"}}},
    {"messages": HELLO, "provider": {"max_price": {"prompt": "cheap"}}},
    {"messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
    {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]},
    {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]},
    {"messages": [{"role": "tool", "content": "42"}]},
    {"messages": [*HELLO, {"role": "assistant", "content": None, "tool_calls": []}]},
]


def _agree(documented: bool, r: httpx.Response, ok: int, label: Any) -> None:
    served = r.status_code == ok
    assert r.status_code in (ok, 400), (label, r.text)
    assert documented == served, f"{label}: the document says {'valid' if documented else 'invalid'}, got {r.text}"


def test_the_document_states_what_key_bodies_may_hold(gateway):
    """A body the document allows is accepted, and one it rules out is refused: a schema-driven client
    never sends what the server refuses (issue 11)."""
    with gateway.admin() as admin:
        key_hash = gateway.create_key(name="patched")["data"]["hash"]
        if admin.get("/workspaces/" + "w" * 50).status_code == 404:  # keys name existing workspaces only
            assert admin.post("/workspaces", json={"name": "w", "slug": "w" * 50}).status_code == 201
        for body in KEY_BODIES:
            documented = _documented_valid(_body_pointer("/keys", "post"), body)
            _agree(documented, admin.post("/keys", json=body), 201, ("POST /keys", body))
            patch = {k: v for k, v in body.items() if k in ("name", "limit", "limit_reset", "workspace_id")}
            documented = _documented_valid(_body_pointer("/keys/{hash}", "patch"), patch)
            _agree(documented, admin.patch(f"/keys/{key_hash}", json=patch), 200, ("PATCH /keys/{hash}", patch))


def test_the_document_states_what_chat_bodies_may_hold(gateway, api_key):
    with gateway.client(api_key) as c:
        for body in CHAT_BODIES:
            body = {"model": "test/alpha", **body}
            documented = _documented_valid(_body_pointer("/chat/completions", "post"), body)
            _agree(documented, c.post("/chat/completions", json=body), 200, ("POST /chat/completions", body))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("output_modalities", "text,image"),
        ("output_modalities", "all"),
        ("output_modalities", "pictures"),
        ("output_modalities", "all,text"),
        ("input_modalities", "text,file"),
        ("input_modalities", "all"),
        ("sort", "pricing-low-to-high"),
        ("sort", "cheapest"),
    ],
)
def test_the_document_states_what_model_filters_may_hold(gateway, name, value):
    documented = _documented_valid(_query_pointer("/models", name), value)
    with httpx.Client(base_url=gateway.api, timeout=30) as c:
        _agree(documented, c.get("/models", params={name: value}), 200, (name, value))


# ----------------------------------------------------------------------- real responses: inference


def test_chat_completion_conforms(gateway, api_key, fake_a):
    fake_a.fake.script(
        Reply("Bonjour!", prompt_tokens=12, completion_tokens=4, cached_tokens=2),
        Reply(tool_calls=[{"name": "lookup", "arguments": {"q": "paris"}}]),
    )
    with gateway.client(api_key) as c:
        plain = check_chat(chat(c))
        tools = check_chat(chat(c, tools=[{"type": "function", "function": {"name": "lookup", "parameters": {}}}]))
    assert plain["choices"][0]["message"]["content"] == "Bonjour!"
    assert tools["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "lookup"
    assert tools["choices"][0]["finish_reason"] == "tool_calls"


def test_stream_chunks_conform(gateway, api_key, fake_a):
    fake_a.fake.script(
        Stream(content="one two three", prompt_tokens=9),
        Stream(tool_calls=[{"name": "lookup", "arguments": {"q": "a longer argument string"}}]),
        Stream(content="a b c d", error_after=2),
    )
    with gateway.client(api_key) as c:
        text = check_stream(chat(c, stream=True))
        tools = check_stream(chat(c, stream=True))
        failed = check_stream(chat(c, stream=True))
    assert "".join(ch["choices"][0]["delta"].get("content") or "" for ch in text if ch["choices"]) == "one two three"
    assert any(ch["choices"] and ch["choices"][0]["delta"].get("tool_calls") for ch in tools)
    errors = [ch for ch in failed if "error" in ch]
    assert len(errors) == 1 and errors[0]["choices"][0]["finish_reason"] == "error"


# ------------------------------------------------------------------- real responses: keys, credits


def test_key_management_conforms(gateway):
    with gateway.admin() as admin:
        fields = {"name": "doc", "limit": 2.5, "limit_reset": "daily", "expires_at": "2099-01-01T00:00:00Z"}
        r = admin.post("/keys", json=fields)
        assert r.status_code == 201, r.text
        conforms("/keys", "post", 201, r.json())
        key_hash = r.json()["data"]["hash"]
        r = admin.get("/keys", params={"include_disabled": "true"})
        assert r.status_code == 200 and r.json()["data"]
        conforms("/keys", "get", 200, r.json())
        r = admin.get(f"/keys/{key_hash}")
        conforms("/keys/{hash}", "get", 200, r.json())
        r = admin.patch(f"/keys/{key_hash}", json={"disabled": True, "limit": None})
        assert r.status_code == 200, r.text
        conforms("/keys/{hash}", "patch", 200, r.json())
        r = admin.delete(f"/keys/{key_hash}")
        assert r.status_code == 200
        conforms("/keys/{hash}", "delete", 200, r.json())
        r = admin.get("/key")
        conforms("/key", "get", 200, r.json())
        assert r.json()["data"]["is_management_key"] is True
        r = admin.get("/credits")
        assert r.status_code == 200
        conforms("/credits", "get", 200, r.json())


def test_current_key_conforms(gateway):
    key = gateway.create_key(limit=1, limit_reset="weekly")["key"]
    with gateway.client(key) as c:
        r = c.get("/key")
    assert r.status_code == 200
    conforms("/key", "get", 200, r.json())


# ---------------------------------------------------------------------- real responses: generations


def test_generation_conforms(gateway, api_key, fake_a):
    fake_a.fake.script(Reply("hi!", prompt_tokens=30, completion_tokens=5, cached_tokens=10))
    with gateway.client(api_key) as c:
        gen_id = chat(c).json()["id"]
        r = c.get("/generation", params={"id": gen_id})
    assert r.status_code == 200, r.text
    conforms("/generation", "get", 200, r.json())


def test_generation_content_conforms(make_gateway, fake_a):
    gw = make_gateway(log_prompts=True)
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("the answer"), Stream(content="a b c d", error_after=1))
    with gw.client(key) as c:
        ok = chat(c).json()["id"]
        failed = c.post("/chat/completions", json={"model": "test/alpha", "prompt": "hi", "stream": True})
        failed_id = events(failed.text)[0]["data"]["id"]
        gw.flush()
        for gen_id in (ok, failed_id):
            r = c.get("/generation", params={"id": gen_id})
            conforms("/generation", "get", 200, r.json())
            r = c.get("/generation/content", params={"id": gen_id})
            assert r.status_code == 200, r.text
            conforms("/generation/content", "get", 200, r.json())
    assert r.json()["data"]["error"] is not None and r.json()["data"]["input"] == {"prompt": "hi"}


# --------------------------------------------------------------------------- real responses: models


def test_catalog_responses_conform(gateway, api_key):
    with gateway.client(api_key) as c:
        for url, path in [
            ("/models", "/models"),
            ("/models?limit=1", "/models"),
            ("/models?output_modalities=all&sort=pricing-low-to-high", "/models"),
            ("/models/count", "/models/count"),
            ("/models/count?providers=fake-b", "/models/count"),
            ("/models/user", "/models/user"),
            ("/model/test/alpha", "/model/{author}/{slug}"),
            ("/models/test/gamma/endpoints", "/models/{author}/{slug}/endpoints"),
            ("/providers", "/providers"),
            ("/endpoints/zdr", "/endpoints/zdr"),
        ]:
            r = c.get(url)
            assert r.status_code == 200, (url, r.text)
            conforms(path, "get", 200, r.json())
    assert r.json()["data"] == []  # the test providers keep data: the list is empty, but well formed


# What the bundled catalog lacks: default parameters, an image model, a local provider's details.
EXTRA_CATALOG = {
    "providers": [
        {
            "slug": "local",
            "name": "Local vLLM",
            "base_url": "http://127.0.0.1:8001/v1",
            "headquarters": "FR",
            "datacenters": ["FR", "DE"],
            "data_policy": {"zdr": True, "privacy_policy_url": "https://example.com/privacy"},
        }
    ],
    "models": [
        {
            "id": "acme/tuned-1",
            "name": "Acme: Tuned 1",
            "hugging_face_id": "acme/tuned-1",
            "knowledge_cutoff": "2025-01",
            "default_parameters": {"temperature": 0.6, "top_k": 40},
            "reasoning": {"supported_efforts": ["low", "high"], "default_effort": "low", "supports_max_tokens": True},
            "endpoints": [
                {
                    "provider": "local",
                    "upstream_model": "tuned-1",
                    "quantization": "fp8",
                    "pricing": {"prompt": "0.000001", "completion": "0.000002", "discount": 0.1},
                }
            ],
        },
        {
            "id": "acme/pixel-1",
            "name": "Acme: Pixel 1",
            "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["image"]},
            "endpoints": [{"provider": "local", "upstream_model": "pixel-1"}],
        },
    ],
}


def test_bundled_catalog_conforms(tmp_path):
    """Every model, endpoint and provider of the bundled catalog and a few more (reasoning, default
    parameters, cache prices, ZDR endpoints, headquarters...), through the same handlers."""
    client = make_client(build_catalog(tmp_path, env=SPEC_NAMED_KEYS, config=EXTRA_CATALOG, sandbox=True))
    listing = client.get("/api/v1/models?output_modalities=all").json()
    conforms("/models", "get", 200, listing)
    assert len(listing["data"]) > 10
    for model in listing["data"]:
        r = client.get(f"/api/v1/model/{model['id']}")
        conforms("/model/{author}/{slug}", "get", 200, r.json())
        r = client.get(f"/api/v1/models/{model['id']}/endpoints")
        conforms("/models/{author}/{slug}/endpoints", "get", 200, r.json())
    providers = client.get("/api/v1/providers").json()
    conforms("/providers", "get", 200, providers)
    zdr = client.get("/api/v1/endpoints/zdr").json()
    assert zdr["data"]
    conforms("/endpoints/zdr", "get", 200, zdr)
    assert any("reasoning" in m for m in listing["data"]) and any(m["default_parameters"] for m in listing["data"])
    assert any("datacenters" in p for p in providers["data"])


# ------------------------------------------------------------------------- real responses: errors


def test_error_envelopes_conform(gateway, api_key, fake_a):
    limited = gateway.create_key(limit=0)["key"]
    fake_a.fake.script(Status(502))
    with (
        httpx.Client(base_url=gateway.api, timeout=30) as anon,
        gateway.client(api_key) as c,
        gateway.client(limited) as poor,
        gateway.admin() as admin,
    ):
        cases = [
            ("/key", "get", anon.get("/key"), 401),
            ("/credits", "get", c.get("/credits"), 403),
            ("/keys", "get", admin.get("/keys", params={"offset": "x"}), 400),
            ("/keys", "post", admin.post("/keys", json={"name": ""}), 400),
            ("/keys/{hash}", "get", admin.get("/keys/nope"), 404),
            ("/keys/{hash}", "patch", admin.patch("/keys/nope", json={}), 404),
            ("/chat/completions", "post", c.post("/chat/completions", content=b"{nope"), 400),
            ("/chat/completions", "post", chat(c, model="acme/fake-1.0"), 400),
            ("/chat/completions", "post", chat(admin), 403),
            ("/chat/completions", "post", chat(poor), 402),
            ("/chat/completions", "post", chat(c), 502),
            ("/models", "get", c.get("/models", params={"sort": "nope"}), 400),
            ("/model/{author}/{slug}", "get", c.get("/model/acme/none"), 404),
            ("/credits/coinbase", "post", anon.post("/credits/coinbase"), 401),
            ("/credits/coinbase", "post", c.post("/credits/coinbase"), 403),
            ("/credits/coinbase", "post", admin.post("/credits/coinbase"), 410),
            ("/generation", "get", c.get("/generation"), 400),
            ("/generation/content", "get", c.get("/generation/content", params={"id": "gen-x"}), 404),
        ]
        unknown = c.get("/no/such/path")
    for path, method, r, status in cases:
        assert r.status_code == status, (path, method, r.text)
        conforms(path, method, status, r.json())
    availability = cases[7][2].json()["error"]["availability"]
    assert availability["code"] == "model_not_found"
    assert cases[10][2].headers["x-generation-id"].startswith("gen-")
    assert unknown.status_code == 404
    conforms_to("ErrorResponse", unknown.json())
