"""This server's OpenAPI 3.1 document, generated from its own routes and msgspec schemas.

Paths and methods come from ``omnirouter.app.api_routes()``; bodies from the Structs the handlers
decode with and from ``omnirouter.api.schemas``. Each (path, method) needs an entry in ``OPERATIONS``:
a route without one, or an entry for a route that is not served, is an error, so the document cannot
silently fall behind the server. Operation ids, summaries and tags are the official OpenRouter
document's, so SDK generators produce clients compatible with OpenRouter's.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import msgspec
from starlette.convertors import FloatConvertor, IntegerConvertor
from starlette.routing import BaseRoute, Route

from omnirouter import __version__, modalities
from omnirouter.api import health
from omnirouter.api import messages_schemas as ms
from omnirouter.api import schemas as s
from omnirouter.api.keys import CreateKey, UpdateKey
from omnirouter.formats import responses_schemas as rs
from omnirouter.formats.anthropic_request import MessagesCountTokensRequest, MessagesRequest
from omnirouter.formats.openai_chat import ChatRequestBody
from omnirouter.formats.text_completions import CompletionsRequest

REF = "#/components/schemas/{name}"
JSON = "application/json"
SSE = "text/event-stream"

Auth = Literal["none", "any", "inference", "management"]

_AUTH_NOTE = {
    "none": "No authentication.",
    "any": "Authentication: an API key or a management key.",
    "inference": "Authentication: an API key (a management key gets 403).",
    "management": "Authentication: a management key.",
}

# What each error status means on this server; the body is always the error envelope.
ERROR_DESCRIPTIONS = {
    400: "Bad Request: invalid parameters or body",
    401: "Unauthorized: missing, unknown, disabled or expired key",
    402: "Payment Required: not enough credits, or the key's limit is reached",
    403: "Forbidden: the key is not allowed to do this",
    404: "Not Found",
    409: "Conflict: a concurrent change; try again",
    408: "Request Timeout: the provider did not answer in time",
    410: "Gone: not available on a self-hosted instance",
    413: "Payload Too Large",
    415: "Unsupported Media Type: the upload's content type is not one this operation takes",
    422: "Unprocessable Entity: the provider rejected the request",
    429: (
        "Too Many Requests: rate limited by every provider, a limited key's budget held by requests in flight, "
        "or the key's rpm_limit/tpm_limit (then with X-RateLimit-*)"
    ),
    500: "Internal Server Error",
    502: "Bad Gateway: the provider failed",
    503: "Service Unavailable: every provider failed or is overloaded",
}

PATH_PARAMETERS = {
    "hash": "The key's hash (the `hash` of a key object)",
    "author": "The model's author, the part of its id before the slash",
    "slug": "The model's slug, the part of its id after the slash (variants like `:free` allowed)",
    "id": "The resource's id (a workspace: its id or its slug)",
    "interval": "A workspace budget's interval: daily, weekly, monthly or lifetime",
}
# What a path parameter may be, beyond its type, when that is a closed set.
PATH_SCHEMAS: dict[str, dict[str, Any]] = {"interval": {"enum": ["daily", "weekly", "monthly", "lifetime"]}}

TAGS = {
    "Chat": "Chat completions",
    "Responses": "The OpenAI Responses API (OpenAI SDKs, the Codex CLI), any model",
    "Anthropic Messages": "The Anthropic Messages API (Anthropic SDKs, Claude Code), any model",
    "Completions": "Legacy text completions",
    "Models": "The models this instance can serve",
    "Endpoints": "The provider endpoints serving each model",
    "Providers": "The providers this instance routes to",
    "API Keys": "Key management",
    "Credits": "Instance funding and spend",
    "Generations": "Metadata and stored content of past requests",
    "OpenAPI": "This document",
    "Health": "Probes for orchestrators and load balancers (also served at the root: /health/live, /health/ready)",
}


# A path parameter's description, or (description, what its schema adds to its type).
PathParameter = str | tuple[str, dict[str, Any]]


@dataclass(frozen=True, kw_only=True)
class Operation:
    operation_id: str
    summary: str
    tag: str
    auth: Auth
    errors: tuple[int, ...]
    # The success body (JSON): a Struct, a union of Structs tagged on one field (the answer's variant varies,
    # e.g. the files' negotiated shapes), a raw JSON schema, or None when the operation never succeeds.
    response: type | UnionType | dict[str, Any] | None
    status: int = 200
    response_description: str = "OK"
    body: Any = None  # a Struct, or an Annotated Struct (see _ref)
    body_description: str | None = None
    query: type | None = None
    stream: type | None = None  # an SSE event, served instead of JSON when the request asks to stream
    headers: tuple[str, ...] = ()
    description: str | None = None
    deprecated: bool = False
    error_body: type | None = None  # the error envelope's Struct when it is not OpenRouter's ErrorResponse
    stream_sentinel: str | None = "[DONE]"  # the last `data:` of a stream, if it has one
    # Error answers whose body is not the error envelope: status -> (description, Struct).
    other_errors: dict[int, tuple[str, type]] | None = None
    # Path parameters whose meaning here differs from PATH_PARAMETERS' (e.g. a preset's `slug`): name -> description.
    # A value may be (description, schema): what the parameter's schema adds to its type (e.g. a pattern).
    path_parameters: dict[str, PathParameter] | None = None
    # Media types other than JSON, each with its raw JSON schema: the success answer's (audio, video,
    # file bytes, text; beside `response`'s JSON if there is one) and the request body's (multipart).
    response_media: dict[str, dict[str, Any]] | None = None
    body_media: dict[str, dict[str, Any]] | None = None
    # Structs a schema refers to by name alone (e.g. a oneOf of untagged Structs), made components too.
    components: tuple[type, ...] = ()


# Response headers, by name.
HEADERS = {
    "X-Generation-Id": {"description": "The generation id, for GET /generation", "schema": {"type": "string"}},
    "Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "string"}},
    # On a 429 for a key's rpm_limit/tpm_limit only (accounting/ratelimit.py), as OpenRouter's platform 429s.
    "X-RateLimit-Limit": {"description": "The limit that refused the request", "schema": {"type": "string"}},
    "X-RateLimit-Remaining": {"description": "What is left of it: 0", "schema": {"type": "string"}},
    "X-RateLimit-Reset": {"description": "When a request can be admitted, epoch ms", "schema": {"type": "string"}},
}

_CHAT_BODY = (
    "Only the fields the gateway acts on are described. Every other Chat Completions parameter is forwarded "
    "to the provider as sent, or dropped when the chosen endpoint does not support it."
)

OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/chat/completions", "post"): Operation(
        operation_id="sendChatCompletionRequest",
        summary="Create a chat completion",
        tag="Chat",
        auth="inference",
        body=ChatRequestBody,
        body_description=_CHAT_BODY,
        response=s.ChatResult,
        response_description="The completion; a stream of server-sent events when `stream` is true",
        stream=s.ChatStreamingResponse,
        headers=("X-Generation-Id",),
        errors=(400, 401, 402, 403, 404, 408, 413, 422, 429, 500, 502, 503),
        description=(
            "Routes the request to a provider serving the model, with fallbacks. A stream reports errors that "
            "happen after it started in-band, as a chunk with `error` and finish_reason `error`."
        ),
    ),
    ("/responses", "post"): Operation(
        operation_id="createResponses",
        summary="Create a response",
        tag="Responses",
        auth="inference",
        body=rs.ResponsesRequestBody,
        body_description=(
            "OpenAI's Responses request, stateless as OpenRouter's, with OpenRouter's `models`, `provider`, "
            "`plugins`, `route` and `session_id`. What OpenAI's servers alone act on (`include`, `truncation`, "
            "`prompt_cache_key` ...) is accepted; hosted tools other than functions are left out."
        ),
        response=rs.ResponsesResult,
        response_description="The response; a stream of server-sent events when `stream` is true",
        stream=rs.ResponsesStreamingResponse,
        headers=("X-Generation-Id",),
        errors=(400, 401, 402, 403, 404, 408, 413, 422, 429, 500, 502, 503),
        description=(
            "The same routing, fallbacks and billing as chat, for any model. Errors before a stream starts are "
            "OpenRouter's envelope with their status; after, the stream ends with `response.failed`."
        ),
    ),
    ("/completions", "post"): Operation(
        operation_id="createCompletions",
        summary="Create a text completion (legacy)",
        tag="Completions",
        auth="inference",
        body=CompletionsRequest,
        body_description=(
            "One prompt per request (a string, or an array of one string). Every other Chat Completions "
            "parameter is forwarded as on /chat/completions."
        ),
        response=s.TextCompletionResult,
        response_description="The completion; a stream of server-sent events when `stream` is true",
        stream=s.TextCompletionStreamingResponse,
        headers=("X-Generation-Id",),
        errors=(400, 401, 402, 403, 404, 408, 413, 422, 429, 500, 502, 503),
        description=(
            "The legacy text-completions format on the same routing, fallbacks and billing as chat: the "
            "prompt is sent as one user message and the answer's text comes back in `choices[].text`."
        ),
    ),
    ("/models", "get"): Operation(
        operation_id="getModels",
        summary="List all models and their properties",
        tag="Models",
        auth="none",
        query=s.ModelsQuery,
        response=s.ModelsListResponse,
        errors=(400, 500),
    ),
    ("/models/count", "get"): Operation(
        operation_id="listModelsCount",
        summary="Get total count of available models",
        tag="Models",
        auth="none",
        query=s.ModelFilters,
        response=s.ModelsCountResponse,
        errors=(400, 500),
    ),
    ("/models/user", "get"): Operation(
        operation_id="listModelsUser",
        summary="List models filtered by user provider preferences, privacy settings, and guardrails",
        tag="Models",
        auth="inference",
        query=s.ModelsQuery,
        response=s.ModelsListResponse,
        errors=(400, 401, 403, 500),
    ),
    ("/model/{author}/{slug}", "get"): Operation(
        operation_id="getModel",
        summary="Get a model by its slug",
        tag="Models",
        auth="none",
        response=s.ModelResponse,
        errors=(404, 500),
    ),
    ("/models/{author}/{slug}/endpoints", "get"): Operation(
        operation_id="listEndpoints",
        summary="List all endpoints for a model",
        tag="Endpoints",
        auth="none",
        response=s.ModelEndpointsResponse,
        errors=(404, 500),
    ),
    ("/providers", "get"): Operation(
        operation_id="listProviders",
        summary="List all providers",
        tag="Providers",
        auth="none",
        response=s.ProvidersResponse,
        errors=(500,),
    ),
    ("/endpoints/zdr", "get"): Operation(
        operation_id="listEndpointsZdr",
        summary="Preview the impact of ZDR on the available endpoints",
        tag="Endpoints",
        auth="none",
        response=s.ZdrEndpointsResponse,
        errors=(500,),
    ),
    ("/keys", "get"): Operation(
        operation_id="list",
        summary="List API keys",
        tag="API Keys",
        auth="management",
        query=s.KeysQuery,
        response=s.ApiKeyListResponse,
        errors=(400, 401, 403, 500),
    ),
    ("/keys", "post"): Operation(
        operation_id="createKeys",
        summary="Create a new API key",
        tag="API Keys",
        auth="management",
        body=CreateKey,
        response=s.CreateKeyResponse,
        status=201,
        response_description="Created; `key` is the secret, shown only here",
        errors=(400, 401, 403, 500),
    ),
    ("/keys/{hash}", "get"): Operation(
        operation_id="getKey",
        summary="Get a single API key",
        tag="API Keys",
        auth="management",
        response=s.ApiKeyResponse,
        errors=(401, 403, 404, 500),
    ),
    ("/keys/{hash}", "patch"): Operation(
        operation_id="updateKeys",
        summary="Update an API key",
        tag="API Keys",
        auth="management",
        body=UpdateKey,
        body_description="Only the fields present are changed.",
        response=s.ApiKeyResponse,
        errors=(400, 401, 403, 404, 500),
    ),
    ("/keys/{hash}", "delete"): Operation(
        operation_id="deleteKeys",
        summary="Delete an API key",
        tag="API Keys",
        auth="management",
        response=s.DeleteKeyResponse,
        errors=(401, 403, 404, 500),
    ),
    ("/key", "get"): Operation(
        operation_id="getCurrentKey",
        summary="Get current API key",
        tag="API Keys",
        auth="any",
        response=s.CurrentKeyResponse,
        errors=(401, 500),
    ),
    ("/auth/key", "get"): Operation(
        operation_id="getCurrentKeyLegacy",
        summary="Get current API key (legacy path)",
        tag="API Keys",
        auth="any",
        response=s.CurrentKeyResponse,
        errors=(401, 500),
        description="The older path of `GET /key`, which some clients still call; the same answer.",
        deprecated=True,
    ),
    ("/credits", "get"): Operation(
        operation_id="getCredits",
        summary="Get remaining credits",
        tag="Credits",
        auth="management",
        response=s.CreditsResponse,
        errors=(401, 403, 500),
    ),
    ("/credits/coinbase", "post"): Operation(
        operation_id="createCoinbaseCharge",
        summary="Deprecated Coinbase Commerce charge endpoint",
        tag="Credits",
        auth="management",
        response=None,
        errors=(401, 403, 410, 500),
        deprecated=True,
        description="Always 410: fund the instance with `omnirouter credits add` instead.",
    ),
    ("/generation", "get"): Operation(
        operation_id="getGeneration",
        summary="Get request & usage metadata for a generation",
        tag="Generations",
        auth="any",
        query=s.GenerationQuery,
        response=s.GenerationResponse,
        errors=(400, 401, 404, 500),
        description="An API key sees its own generations; a management key sees every one.",
    ),
    ("/generation/content", "get"): Operation(
        operation_id="listGenerationContent",
        summary="Get stored prompt, completion, and error content for a generation",
        tag="Generations",
        auth="any",
        query=s.GenerationQuery,
        response=s.GenerationContentResponse,
        errors=(400, 401, 403, 404, 500),
        description="Needs prompt logging (OMNIROUTER_LOG_PROMPTS=true); 403 otherwise.",
    ),
    ("/messages", "post"): Operation(
        operation_id="createMessages",
        summary="Create a message",
        tag="Anthropic Messages",
        auth="inference",
        body=MessagesRequest,
        body_description=(
            "Anthropic's Messages request, with OpenRouter's `models`, `fallbacks`, `provider`, `plugins`, `route` "
            "and `session_id`. Fields only Anthropic's servers act on (`context_management`, `container`, "
            "`mcp_servers`, `service_tier`, `speed` ...) are accepted and ignored."
        ),
        response=ms.MessagesResult,
        response_description="The message; a stream of server-sent events when `stream` is true",
        stream=ms.MessagesStreamingResponse,
        stream_sentinel=None,
        headers=("X-Generation-Id",),
        errors=(400, 401, 402, 403, 404, 408, 413, 422, 429, 500, 502, 503),
        error_body=ms.AnthropicMessagesErrorResponse,
        description=(
            "Any model, with the routing, fallbacks and billing of chat completions. Errors come in Anthropic's "
            "envelope with the HTTP status kept; a stream reports errors after it started as an `error` event. "
            "The key may be sent as `x-api-key`; `anthropic-version` and `anthropic-beta` are accepted."
        ),
    ),
    ("/messages/count_tokens", "post"): Operation(
        operation_id="countMessagesTokens",
        summary="Count the input tokens of a message request",
        tag="Anthropic Messages",
        auth="inference",
        body=MessagesCountTokensRequest,
        body_description="The body of a /messages request; `max_tokens` may be left out.",
        response=ms.MessagesCountTokensResult,
        response_description="The estimated input tokens",
        errors=(400, 401, 403, 413, 500),
        error_body=ms.AnthropicMessagesErrorResponse,
        description=(
            "An estimate (no provider is asked, nothing is billed): text and tool definitions at 4 characters a "
            "token, 4 tokens per message, 1,600 per image, 3,000 per PDF page."
        ),
    ),
    ("/health/live", "get"): Operation(
        operation_id="getHealthLive",
        summary="Liveness: the process answers",
        tag="Health",
        auth="none",
        response=health.Live,
        errors=(500,),
        description="Always 200 while the worker's event loop runs; for liveness probes and container health checks.",
    ),
    ("/health/ready", "get"): Operation(
        operation_id="getHealthReady",
        summary="Readiness: this worker can serve requests",
        tag="Health",
        auth="none",
        response=health.Ready,
        errors=(500,),
        other_errors={
            503: (
                "Not ready: stopping after SIGTERM (`draining`), or the database or Redis (with redis_url) "
                "unreachable; `reason` says which",
                health.Ready,
            )
        },
        description=(
            "What the worker already knows, without a query per probe: whether it is stopping, the background "
            "writer's verdict on the database, and a Redis PING shared by the probes of one second."
        ),
    ),
    ("/openapi.json", "get"): Operation(
        operation_id="getOpenAPIDocument",
        summary="Get this server's OpenAPI document",
        tag="OpenAPI",
        auth="none",
        # Not a Struct: the document is whatever this module builds.
        response={"type": "object", "description": "An OpenAPI 3.1 document"},
        response_description="This document",
        errors=(500,),
    ),
}


class UndocumentedRoute(LookupError):
    """A route the app serves has no entry in OPERATIONS (or an entry names a route it does not serve)."""


def _ref(t: Any) -> dict[str, Any]:
    """A reference to the Struct's component (a union's: see _one_of); an ``Annotated[Struct,
    Meta(extra_json_schema=...)]`` adds what the Struct's fields cannot say (e.g. which of two optional
    fields is required) beside it."""
    if _is_union(t):
        return _one_of(t)
    ref: dict[str, Any] = {"$ref": REF.format(name=_struct(t).__name__)}
    for meta in getattr(t, "__metadata__", ()):
        ref.update(getattr(meta, "extra_json_schema", None) or {})
    return ref


def _struct(t: Any) -> type:
    return t.__origin__ if get_origin(t) is Annotated else t


def _is_union(t: Any) -> bool:
    return get_origin(t) in (Union, UnionType)


def _structs(t: Any) -> set[type]:
    """The Structs ``t`` refers to, each a component: a union's members, else the Struct itself."""
    return set(get_args(t)) if _is_union(t) else {_struct(t)}


def _one_of(union: Any) -> dict[str, Any]:
    """A union of Structs tagged on one field: one of their components, with the discriminator SDK
    generators pick the variant by (as OpenRouter's document describes the files' shapes)."""
    configs = {member: getattr(member, "__struct_config__", None) for member in get_args(union)}
    fields = {config.tag_field if config else None for config in configs.values()}
    if len(fields) != 1 or None in fields:
        raise TypeError(f"{union}: a union answer must be of Structs tagged on one field (tag_field)")
    mapping = {str(config.tag): REF.format(name=member.__name__) for member, config in configs.items()}
    discriminator = {"propertyName": fields.pop(), "mapping": mapping}
    return {"oneOf": [{"$ref": ref} for ref in mapping.values()], "discriminator": discriminator}


def _numbers_for_decimals(node: Any) -> None:
    # msgspec describes Decimal as a string, but jsonio writes every Decimal as a JSON number, and
    # msgspec reads one from a number too: the wire format is a number.
    if isinstance(node, dict):
        if node.get("type") == "string" and node.get("format") == "decimal":
            node["type"] = "number"
        for value in node.values():
            _numbers_for_decimals(value)
    elif isinstance(node, list):
        for value in node:
            _numbers_for_decimals(value)


def _query_parameters(query: type) -> list[dict[str, Any]]:
    """One query parameter per field of a query Struct, inlined (they are not components)."""
    _, defs = msgspec.json.schema_components([query], ref_template=REF)
    struct = defs[query.__name__]
    required = set(struct.get("required", ()))
    params = []
    for name, schema in struct["properties"].items():
        schema = dict(schema)
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        if "description" in schema:
            param["description"] = schema.pop("description")
        param["schema"] = schema
        params.append(param)
    return params


_CONVERTOR_TYPES = {IntegerConvertor: "integer", FloatConvertor: "number"}


def _path_parameters(route: Route, own: dict[str, PathParameter] | None = None) -> list[dict[str, Any]]:
    params = []
    described = {**PATH_PARAMETERS, **(own or {})}
    for name, convertor in route.param_convertors.items():
        if name not in described:
            raise UndocumentedRoute(f"path parameter {name!r} of {route.path} has no description in PATH_PARAMETERS")
        kind = _CONVERTOR_TYPES.get(type(convertor), "string")
        text, extra = described[name], PATH_SCHEMAS.get(name, {})
        if isinstance(text, tuple):
            text, extra = text
        params.append({"name": name, "in": "path", "required": True, "description": text,
                       "schema": {"type": kind, **extra}})  # fmt: skip
    return params


def _error_response(status: int, generation_header: bool, body: type) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERROR_DESCRIPTIONS[status],
        "content": {JSON: {"schema": _ref(body)}},
    }
    headers = {}
    if generation_header:
        headers["X-Generation-Id"] = HEADERS["X-Generation-Id"]
    if status in (429, 503):
        headers["Retry-After"] = HEADERS["Retry-After"]
    if status == 429 and generation_header:  # an inference endpoint: the key's rate limits
        headers.update({h: HEADERS[h] for h in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")})
    if headers:
        response["headers"] = headers
    return response


def _operation(route: Route, op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": " ".join(x for x in (op.description, _AUTH_NOTE[op.auth]) if x),
        "tags": [op.tag],
        "security": [] if op.auth == "none" else [{"bearer": []}],
    }
    if op.deprecated:
        out["deprecated"] = True
    parameters = _path_parameters(route, op.path_parameters) + (_query_parameters(op.query) if op.query else [])
    if parameters:
        out["parameters"] = parameters
    if op.body is not None or op.body_media:
        body_content = {JSON: {"schema": _ref(op.body)}} if op.body is not None else {}
        body_content.update({media: {"schema": schema} for media, schema in (op.body_media or {}).items()})
        body: dict[str, Any] = {"required": True, "content": body_content}
        if op.body_description:
            body["description"] = op.body_description
        out["requestBody"] = body
    responses: dict[str, Any] = {}
    if op.response is not None or op.response_media:
        content: dict[str, Any] = {}
        if op.response is not None:
            content[JSON] = {"schema": op.response if isinstance(op.response, dict) else _ref(op.response)}
        content.update({media: {"schema": schema} for media, schema in (op.response_media or {}).items()})
        if op.stream is not None:
            content[SSE] = {"schema": _ref(op.stream)}
            if op.stream_sentinel is not None:
                content[SSE]["x-speakeasy-sse-sentinel"] = op.stream_sentinel
        success: dict[str, Any] = {"description": op.response_description, "content": content}
        if op.headers:
            success["headers"] = {name: HEADERS[name] for name in op.headers}
        responses[str(op.status)] = success
    for status in op.errors:
        responses[str(status)] = _error_response(
            status, "X-Generation-Id" in op.headers, op.error_body or s.ErrorResponse
        )
    for status, (description, body) in (op.other_errors or {}).items():
        responses[str(status)] = {"description": description, "content": {JSON: {"schema": _ref(body)}}}
    out["responses"] = responses
    return out


def _module_entries(routes: list[BaseRoute]) -> tuple[dict[tuple[str, str], Operation], dict[str, str]]:
    """OPERATIONS and TAGS, with those a route's own module declares beside its handlers (the API
    modules that came after this file describe their operations themselves)."""
    operations, tags = dict(OPERATIONS), dict(TAGS)
    # An operation beyond chat is served by pipeline/modality.py's endpoint: its module describes it.
    served = {sys.modules[r.endpoint.__module__] for r in routes if isinstance(r, Route)}
    for module in served | set(modalities.modules()):
        operations.update(getattr(module, "OPERATIONS", {}))
        tags.update(getattr(module, "TAGS", {}))
    return operations, tags


def build(routes: Iterable[BaseRoute]) -> dict[str, Any]:
    routes = list(routes)
    operations, tags = _module_entries(routes)
    paths: dict[str, dict[str, Any]] = {}
    used: set[tuple[str, str]] = set()
    for route in routes:
        if not isinstance(route, Route) or not route.methods:
            raise UndocumentedRoute(f"{route!r}: only plain routes with methods can be documented")
        path = route.path_format
        for method in sorted(m.lower() for m in route.methods if m != "HEAD"):
            op = operations.get((path, method))
            if op is None:
                raise UndocumentedRoute(f"{method.upper()} {path} is served but has no entry in OPERATIONS")
            used.add((path, method))
            paths.setdefault(path, {})[method] = _operation(route, op)
    if stale := sorted(set(operations) - used):
        raise UndocumentedRoute(f"OPERATIONS describes routes the app does not serve: {stale}")

    types: set[type] = {s.ErrorResponse}
    for key in used:
        op = operations[key]
        parts = (op.body, op.response, op.stream, op.error_body, *(b for _, b in (op.other_errors or {}).values()))
        types |= {struct for t in parts if t is not None and not isinstance(t, dict) for struct in _structs(t)}
        types |= set(op.components)
    _, components = msgspec.json.schema_components(sorted(types, key=lambda t: t.__name__), ref_template=REF)
    _numbers_for_decimals(components)

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Omnirouter",
            "version": __version__,
            "description": (
                "A self-hosted, OpenRouter-compatible LLM gateway. The API is served under both /api/v1 "
                "and /v1. Authenticate with `Authorization: Bearer <key>`: an API key for inference, a "
                "management key for key management and credits."
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/api/v1"}],
        "tags": [{"name": name, "description": text} for name, text in tags.items()],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key or a management key (`x-api-key: <key>` is accepted too)",
                }
            },
        },
    }


@cache
def document() -> dict[str, Any]:
    from omnirouter.app import api_routes  # here: omnirouter.app imports the handlers that serve this

    return build(api_routes())
