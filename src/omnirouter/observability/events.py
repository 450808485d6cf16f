"""What a destination is sent about one generation, built at delivery from the stored generation row
(and its logged content when the destination may have it). Every wire format (observability/send/)
starts from an Event; the webhook and S3 ones send `Event.document()` as is."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import msgspec

from omnirouter.governance.key_service import iso

# Money stays exact on the wire: Decimal as a JSON number with its own digits.
ENCODER = msgspec.json.Encoder(decimal_format="number")


@dataclass(frozen=True)
class Target:
    """A destination as the deliverer holds it: its whole config (secrets decrypted) and options."""

    id: str
    type: str
    config: dict[str, Any]
    privacy_mode: bool
    broadcast_generation_cost: bool
    broadcast_generation_identity: bool
    broadcast_generation_request_context: bool

    def __repr__(self) -> str:  # never the config: it holds the credentials
        return f"Target(id={self.id!r}, type={self.type!r})"


def _parsed(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


@dataclass
class Event:
    row: dict[str, Any]  # the generation (columns of tables.generations)
    key_name: str | None
    input: Any = None  # the prompt (messages), only when logged and the destination may have it
    output: Any = None
    has_content: bool = False

    @classmethod
    def of(cls, row: dict[str, Any], key_name: str | None, content: tuple[str, str | None] | None,
           target: Target) -> Event:  # fmt: skip
        if content is None or target.privacy_mode:
            return cls(row, key_name)
        return cls(row, key_name, _parsed(content[0]), _parsed(content[1]), True)

    @property
    def id(self) -> str:
        return self.row["id"]

    @property
    def start(self) -> datetime:
        return self.row["created_at"]

    @property
    def end(self) -> datetime:
        return self.start + timedelta(milliseconds=self.row.get("latency_ms") or 0)

    @property
    def provider(self) -> str | None:
        return self.row.get("provider_slug") or self.row.get("provider_name")

    @property
    def operation(self) -> str:
        """The OpenTelemetry GenAI operation name."""
        return {"embeddings": "embeddings"}.get(self.row.get("api_type") or "", "chat")

    def trace_id(self) -> bytes:  # 16 bytes, stable for the generation
        return hashlib.sha256(self.id.encode()).digest()[:16]

    def span_id(self) -> bytes:  # 8 bytes
        return hashlib.sha256(self.id.encode()).digest()[16:24]

    def usage(self) -> dict[str, int]:
        r = self.row
        prompt, completion = r.get("tokens_prompt") or 0, r.get("tokens_completion") or 0
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "reasoning_tokens": r.get("native_tokens_reasoning") or 0,
            "cached_tokens": r.get("native_tokens_cached") or 0,
        }

    def cost(self) -> dict[str, Any]:
        r = self.row
        return {
            "total_cost": r.get("total_cost"),
            "upstream_inference_cost": r.get("upstream_inference_cost"),
            "cache_discount": r.get("cache_discount"),
            "is_byok": bool(r.get("is_byok")),
        }

    def document(self, target: Target) -> dict[str, Any]:
        """The generic event (webhook, S3): the generation's metadata, and what the destination's
        options add: cost, identity, request context, content."""
        r = self.row
        doc: dict[str, Any] = {
            "type": "generation",
            "id": self.id,
            "request_id": r.get("request_id"),
            "created_at": iso(self.start),
            "model": r.get("model"),
            "provider": self.provider,
            "api_type": r.get("api_type"),
            "streamed": bool(r.get("streamed")),
            "cancelled": bool(r.get("cancelled")),
            "finish_reason": r.get("finish_reason"),
            "native_finish_reason": r.get("native_finish_reason"),
            "latency_ms": r.get("latency_ms"),
            "generation_time_ms": r.get("generation_time_ms"),
            "session_id": r.get("session_id"),
            "workspace_id": r.get("workspace_id"),
            "usage": self.usage(),
            "error": r.get("error"),
        }
        if target.broadcast_generation_cost:
            doc["cost"] = self.cost()
        if target.broadcast_generation_identity:
            doc["identity"] = {"api_key_hash": r.get("key_hash"), "api_key_name": self.key_name,
                               "user_id": r.get("external_user")}  # fmt: skip
        if target.broadcast_generation_request_context:
            doc["request_context"] = {"http_referer": r.get("http_referer"), "app_title": r.get("app_title"),
                                      "user_agent": r.get("user_agent")}  # fmt: skip
        if self.has_content:
            doc["input"], doc["output"] = self.input, self.output
        return doc

    def metadata(self, target: Target) -> dict[str, Any]:
        """The document without content, usage or cost: what traces carry as metadata."""
        doc = self.document(target)
        for k in ("input", "output", "usage", "cost", "type"):
            doc.pop(k, None)
        return doc


def messages(value: Any, role: str) -> list[dict[str, str]]:
    """Chat messages as {role, content} with text content, whatever shape was logged."""
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for item in items:
        if isinstance(item, dict):
            content = item.get("content")
            if not isinstance(content, str):
                content = json.dumps(content) if content is not None else ""
            out.append({"role": str(item.get("role") or role), "content": content})
        else:
            out.append({"role": role, "content": item if isinstance(item, str) else json.dumps(item)})
    return out
