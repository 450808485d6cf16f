"""The destination types this gateway delivers to, and what each one's `config` holds: which fields
are required, which are secrets (encrypted at rest, shown masked), and their defaults (as in
OpenRouter's document). Validation here is what POST and PATCH /observability/destinations check."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from omnirouter.errors import GatewayError

# Every type of OpenRouter's document; only SUPPORTED ones can be created here.
DOCUMENTED = (
    "arize", "braintrust", "clickhouse", "datadog", "grafana", "langfuse", "langsmith", "newrelic", "opik",
    "otel-collector", "posthog", "ramp", "s3", "sentry", "snowflake", "weave", "webhook",
)  # fmt: skip


@dataclass(frozen=True)
class Kind:
    required: tuple[str, ...]
    optional: dict[str, Any]  # field -> default (None: no default)
    secret: frozenset[str] = field(default_factory=frozenset)  # besides `headers`, whose values always are
    urls: tuple[str, ...] = ()  # fields that must be http(s) URLs


KINDS: dict[str, Kind] = {
    # `secret` is Omnirouter's: the HMAC-SHA256 key of the signature header (generated when omitted).
    "webhook": Kind(("url",), {"method": "POST", "headers": None, "secret": None}, frozenset({"secret"}), ("url",)),
    "otel-collector": Kind(("endpoint",), {"headers": None}, urls=("endpoint",)),
    "langfuse": Kind(
        ("publicKey", "secretKey"),
        {"baseUrl": "https://us.cloud.langfuse.com", "headers": None},
        frozenset({"publicKey", "secretKey"}),
        ("baseUrl",),
    ),
    "langsmith": Kind(
        ("apiKey",),
        {"endpoint": "https://api.smith.langchain.com", "project": "main", "workspaceId": None, "headers": None},
        frozenset({"apiKey"}),
        ("endpoint",),
    ),
    "s3": Kind(
        ("bucketName", "accessKeyId", "secretAccessKey"),
        {
            "endpoint": None,
            "region": None,
            "prefix": "openrouter-traces",
            "pathTemplate": "{prefix}/{date}",
            "sessionToken": None,
            "headers": None,
        },
        frozenset({"accessKeyId", "secretAccessKey", "sessionToken"}),
        ("endpoint",),
    ),
    "datadog": Kind(
        ("apiKey", "mlApp"), {"url": "https://api.us5.datadoghq.com", "headers": None}, frozenset({"apiKey"}), ("url",)
    ),
}
SUPPORTED = tuple(KINDS)
MAX_STRING = 2048
MAX_HEADERS = 32


def check_type(kind: str) -> Kind:
    if kind not in KINDS:
        raise GatewayError(
            400,
            f"type {kind!r}: this gateway delivers to {', '.join(SUPPORTED)}"
            + (" (the others of OpenRouter's list are not supported here)" if kind in DOCUMENTED else ""),
        )
    return KINDS[kind]


def validate(kind_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """The whole config (defaults filled in), or a 400 naming the first field at fault."""
    kind = check_type(kind_name)
    known = set(kind.required) | set(kind.optional)
    if unknown := sorted(set(config) - known):
        raise GatewayError(400, f"config: unknown field(s) {unknown} for type {kind_name!r}; known: {sorted(known)}")
    full: dict[str, Any] = {}
    for name in (*kind.required, *kind.optional):
        value = config.get(name, kind.optional.get(name))
        if value is None:
            if name in kind.required:
                raise GatewayError(400, f"config.{name} is required for type {kind_name!r}")
            continue
        if name == "headers":
            full[name] = _headers(value)
            continue
        if not isinstance(value, str) or not value or len(value) > MAX_STRING or "\x00" in value:
            raise GatewayError(400, f"config.{name} must be a non-empty string of at most {MAX_STRING} characters")
        if name in kind.urls and urlsplit(value).scheme not in ("http", "https"):
            raise GatewayError(400, f"config.{name} must be an http:// or https:// URL")
        full[name] = value
    if kind_name == "webhook":
        if full["method"] not in ("POST", "PUT"):
            raise GatewayError(400, "config.method must be POST or PUT")
        full.setdefault("secret", "whsec_" + secrets.token_urlsafe(32))
    return full


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > MAX_HEADERS:
        raise GatewayError(400, f"config.headers must be an object of at most {MAX_HEADERS} string values")
    for k, v in value.items():
        if not isinstance(v, str) or not k or any(c in k + v for c in "\r\n\x00") or len(k) + len(v) > MAX_STRING:
            raise GatewayError(400, "config.headers: each header is a name and a string value on one line")
    return dict(value)


def split(kind_name: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the plain fields, the secret fields): header values are always secret (they often carry a token)."""
    kind = KINDS[kind_name]
    hidden = kind.secret | {"headers"}
    return {k: v for k, v in config.items() if k not in hidden}, {k: v for k, v in config.items() if k in hidden}
