"""Schemathesis over the server's own OpenAPI document, against a live gateway.

For every operation, requests generated from the document (valid ones, and invalid ones) must never
get a 5xx, and every answer must be one the document lists, with its media type, headers and schema.
A request the document allows must not be refused as malformed (so a schema-driven client never
sends what the server then refuses), a method it does not list gets 405 with `Allow`, an operation
that declares authentication enforces it, and every generation the run caused can be written.
A bounded, derandomized number of examples per operation keeps the run short and repeatable.

`negative_data_rejection` is left out on purpose: the server reads some query values leniently
(`null` or an empty value means "not set", a boolean is true only when it is `true`).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    allow_header_conformance,
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from omnirouter.app import api_routes
from omnirouter.openapi_doc import _module_entries, document
from tests.conftest import standard_config
from tests.gateway import Gateway
from tests.test_openapi import SSE, conforms, events

EXAMPLES = 30  # per operation and phase: the whole document in 15-25 s on two busy cores
SERVED_MODEL = "test/alpha"

GUARDRAIL_REFUSALS = ("does not exist", "Invalid regex pattern", "may appear once", "not available on this server",
                      "Unknown provider", "Unknown model")  # fmt: skip

# Refusals of schema-valid requests that no schema can express: they depend on the server's state
# (which models it serves, whether it has a default model), on the clock, or are the operation's only
# answer.
SEMANTIC_REFUSALS = {
    ("/chat/completions", "post"): lambda error: (
        error.get("availability", {}).get("code") == "model_not_found" or "No model specified" in error["message"]
    ),
    ("/completions", "post"): lambda error: (
        error.get("availability", {}).get("code") == "model_not_found" or "No model specified" in error["message"]
    ),
    # /messages: Anthropic's envelope; a tool_result must answer an earlier tool_use, and Anthropic's
    # `fallbacks` and OpenRouter's `models` say the same thing, so only one may be given.
    ("/messages", "post"): lambda error: any(
        text in error["message"]
        for text in (
            "No model specified",
            "valid model ID",  # "is not a valid model ID", "are not valid model IDs"
            "matches no earlier tool_use",
            "cannot be combined",
        )
    ),
    ("/messages/count_tokens", "post"): lambda error: any(
        text in error["message"] for text in ("matches no earlier tool_use", "cannot be combined")
    ),
    # /responses: also, a function_call_output must answer an earlier function_call (same call_id).
    ("/responses", "post"): lambda error: (
        error.get("availability", {}).get("code") == "model_not_found"
        or any(text in error["message"] for text in ("No model specified", "no function_call item before it"))
    ),
    # /keys: a workspace that exists (by id or slug), an expiry in the future.
    ("/keys", "post"): lambda error: any(t in error["message"] for t in ("must be in the future", "no workspace")),
    ("/keys/{hash}", "patch"): lambda error: "no workspace" in error["message"],
    ("/credits/coinbase", "post"): lambda error: error["code"] == 410,
    # OAuth codes: http only to loopback hosts, no credentials in the URL, a method only with a
    # challenge, an S256 challenge of 43 characters, a workspace that exists, a key expiry in the future.
    ("/auth/keys/code", "post"): lambda error: any(
        text in error["message"]
        for text in (
            "callback_url must",
            "without a code_challenge",
            "code_challenge for S256",
            "workspace_id: no workspace",
            "in the future",
        )
    ),
    # /guardrails: a workspace, models and providers that exist, a regex that passes the write-time check
    # (no schema says "no nested quantifiers"), each builtin once, no builtin this server cannot run.
    ("/guardrails", "post"): lambda error: any(text in error["message"] for text in GUARDRAIL_REFUSALS),
    ("/guardrails/{id}", "patch"): lambda error: any(text in error["message"] for text in GUARDRAIL_REFUSALS),
    # /byok: the instance has no OMNIROUTER_ENCRYPTION_KEY here; the provider, workspace and API keys
    # named must exist; is_fallback and is_byok_only exclude each other.
    ("/byok", "post"): lambda error: any(
        text in error["message"]
        for text in ("OMNIROUTER_ENCRYPTION_KEY", "Unknown provider", "no workspace", "do not exist", "cannot both")
    ),
}

# A preset made from an inference body is checked as its endpoint checks a request; and it is stored,
# which PostgreSQL's text refuses with a NUL character anywhere in it (no schema can say so of every string).
for _fmt in ("/chat/completions", "/messages", "/responses"):
    SEMANTIC_REFUSALS[("/presets/{slug}" + _fmt, "post")] = lambda error, checked=SEMANTIC_REFUSALS[(_fmt, "post")]: (
        checked(error) or "cannot hold NUL characters" in error["message"]
    )

# The operations beyond chat: each test module says which refusals are its operations' (SEMANTIC_REFUSALS
# there), and their requests go to the sandbox's model of the operation.
MODALITY_TESTS = (
    "embeddings",
    "rerank",
    "images",
    "speech",
    "transcriptions",
    "videos",
    "files",
    "observability_destinations",
    "analytics",
)
for _name in MODALITY_TESTS:
    SEMANTIC_REFUSALS.update(getattr(importlib.import_module(f"tests.test_{_name}"), "SEMANTIC_REFUSALS", {}))
SANDBOX_MODELS = {
    ("/embeddings", "post"): "sandbox/embed",
    ("/rerank", "post"): "sandbox/rerank",
    ("/images", "post"): "sandbox/image",
    ("/images/generations", "post"): "sandbox/image",
    ("/audio/speech", "post"): "sandbox/speech",
    ("/audio/transcriptions", "post"): "sandbox/transcribe",
    ("/videos", "post"): "sandbox/video",
}


def _or_unknown_model(refused: Any) -> Any:
    """A made-up model name among `models` is refused as on chat, and a request the provider itself
    refuses (the sandbox has no opus audio) as the provider says; and what the module says."""
    return lambda error: (
        error.get("availability", {}).get("code") == "model_not_found"
        or "provider_name" in (error.get("metadata") or {})
        or (refused is not None and refused(error))
    )


for _op in SANDBOX_MODELS:
    SEMANTIC_REFUSALS[_op] = _or_unknown_model(SEMANTIC_REFUSALS.get(_op))


def body_conforms(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' response_schema_conformance; for a stream, each event's JSON against the event
    schema. (The document writes an SSE event as `{"data": <chunk>}`, as OpenRouter's own does for
    SDK generators; schemathesis would read `data` as the raw string.)"""
    if response.headers.get("content-type", [""])[0].startswith(SSE):
        path, method = case.operation.path, case.operation.method.lower()
        media = document()["paths"][path][method]["responses"][str(response.status_code)]["content"][SSE]
        for event in events(response.text, media.get("x-speakeasy-sse-sentinel")):
            conforms(path, method, response.status_code, event, media=SSE, strict=False)  # as test_openapi
        return None
    return response_schema_conformance(ctx, response, case)


def accepts_valid_data(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis' positive_data_acceptance, except for the SEMANTIC_REFUSALS."""
    refused = SEMANTIC_REFUSALS.get((case.operation.path, case.operation.method.lower()))
    if refused is not None and 400 <= response.status_code < 500 and refused(response.json()["error"]):
        return None
    return positive_data_acceptance(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    body_conforms,
    accepts_valid_data,
    unsupported_method,
    allow_header_conformance,
    missing_required_header,
    ignored_auth,
]

schema = schemathesis.openapi.from_dict(document())


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[tuple[Gateway, str]]:
    """A gateway of this module's own (the run creates and deletes keys), and an API key on it. Last,
    what the run sent must have been writable: a record the database refuses fails the teardown."""
    gw = Gateway(tmp_path_factory.mktemp("st"), standard_config(fake_a.base_url, fake_b.base_url), sandbox=True)
    gw.start()
    try:
        yield gw, gw.create_key(name="schemathesis")["key"]
        gw.flush()
        assert not gw.state.recorder.unflushed
    finally:
        gw.stop()


# The client formats' request bodies are the document's largest schemas: generating them cost more
# than every other operation together (185 of 283 s at 30 examples), so they get fewer examples.
FORMATS = ["/chat/completions", "/completions", "/messages", "/responses"]
FORMAT_EXAMPLES = 10
RUN = {"derandomize": True, "deadline": None, "database": None, "suppress_health_check": list(HealthCheck)}


@schema.exclude(path=FORMATS).parametrize()
@settings(max_examples=EXAMPLES, **RUN)
def test_api_conforms_to_its_document(case: Any, target: tuple[Gateway, str]) -> None:
    _call_and_validate(case, target)


@schema.include(path=FORMATS).parametrize()
@settings(max_examples=FORMAT_EXAMPLES, **RUN)
def test_client_formats_conform_to_the_document(case: Any, target: tuple[Gateway, str]) -> None:
    _call_and_validate(case, target)


def _call_and_validate(case: Any, target: tuple[Gateway, str]) -> None:
    gw, api_key = target
    operation = (case.operation.path, case.operation.method.lower())
    auth = _module_entries(api_routes())[0][operation].auth  # with those the API modules declare
    key = gw.management_key if auth == "management" else api_key
    headers = {} if auth == "none" else {"Authorization": f"Bearer {key}"}
    inference = operation in (
        ("/chat/completions", "post"),
        ("/completions", "post"),
        ("/messages", "post"),
        ("/responses", "post"),
    )
    if inference and isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = SERVED_MODEL  # past routing, to the (fake) upstream and back
    elif operation in SANDBOX_MODELS and isinstance(case.body, dict) and "model" in case.body:
        case.body["model"] = SANDBOX_MODELS[operation]
    case.call_and_validate(base_url=gw.api, headers=headers, checks=CHECKS, timeout=30)
