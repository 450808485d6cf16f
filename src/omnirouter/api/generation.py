"""GET /generation and /generation/content: what happened to one request, and what it said."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.errors import ApiError, not_found
from omnirouter.api.jsonio import JSONResponse, decode, money
from omnirouter.governance.keys import KeyRecord
from omnirouter.state import AppState, state
from omnirouter.store import repo


async def _find(request: Request) -> tuple[AppState, dict[str, Any]]:
    key: KeyRecord = await auth.any_key(request)
    st = state(request)
    gen_id = request.query_params.get("id")
    if not gen_id:
        raise ApiError(400, "Missing required query parameter: id")
    row = st.recorder.unflushed.get(gen_id)
    if row is None and "\x00" not in gen_id:  # no id holds a NUL, which PostgreSQL cannot even compare
        async with st.db.engine.connect() as conn:
            row = await repo.get_generation(conn, gen_id)
    # A key sees its own generations; a management key sees every one on the instance.
    if row is None or (not key.is_management and row["key_hash"] != key.hash):
        raise not_found(f"Generation {gen_id} not found")
    return st, row


def generation_object(row: dict[str, Any]) -> dict[str, Any]:
    referer = row["http_referer"]
    plugins = row.get("plugins") or {}  # what plugins did (plugins/run.py)
    return {
        "id": row["id"],
        "request_id": row["request_id"],
        "session_id": row["session_id"],
        "upstream_id": row["upstream_id"],
        "total_cost": money(row["total_cost"]),
        "usage": money(row["total_cost"]),
        "cache_discount": money(row["cache_discount"]),
        "upstream_inference_cost": money(row["upstream_inference_cost"]),
        "created_at": row["created_at"].astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "model": row["model"],
        "app_id": None,
        "streamed": row["streamed"],
        "cancelled": row["cancelled"],
        "provider_name": row["provider_name"],
        "latency": row["latency_ms"],
        "moderation_latency": plugins.get("moderation_latency"),
        "generation_time": row["generation_time_ms"],
        "finish_reason": row["finish_reason"],
        "native_finish_reason": row["native_finish_reason"],
        "service_tier": None,
        "tokens_prompt": row["tokens_prompt"],
        "tokens_completion": row["tokens_completion"],
        "native_tokens_prompt": row["native_tokens_prompt"],
        "native_tokens_completion": row["native_tokens_completion"],
        "native_tokens_completion_images": 0,
        "native_tokens_reasoning": row["native_tokens_reasoning"],
        "native_tokens_cached": row["native_tokens_cached"],
        "num_media_prompt": None,
        "num_input_audio_prompt": None,
        "num_media_completion": None,
        "num_search_results": plugins.get("num_search_results"),
        "num_fetches": plugins.get("num_fetches"),
        "web_search_engine": plugins.get("web_search_engine"),
        # Beyond OpenRouter: "hit" when the response cache answered (cache/), its source in cache_source_id.
        "response_cache": plugins.get("cache"),
        "cache_source_id": plugins.get("cache_source_id"),
        "origin": referer or "",
        "http_referer": referer,
        "app_name": row["app_title"],
        "user_agent": row["user_agent"],
        "external_user": row["external_user"],
        "is_byok": row["is_byok"],
        "api_type": row["api_type"],
        "preset_id": row.get("preset_id"),
        "guardrail_actions": row.get("guardrail_actions"),
        "router": None,
        "provider_responses": row["provider_responses"],
        "data_region": "global",
        "workspace_id": row.get("workspace_id"),
    }


async def get_generation(request: Request) -> JSONResponse:
    _, row = await _find(request)
    return JSONResponse({"data": generation_object(row)})


async def get_generation_content(request: Request) -> JSONResponse:
    st, row = await _find(request)
    if not st.settings.log_prompts:
        raise ApiError(403, "Prompt logging is disabled on this instance (set OMNIROUTER_LOG_PROMPTS=true)")
    stored = st.recorder.unflushed_content.get(row["id"])
    if stored is None:
        async with st.db.engine.connect() as conn:
            stored = await repo.get_generation_content(conn, row["id"])
    if stored is None:  # recorded before logging was turned on
        raise not_found(f"No stored content for generation {row['id']}")
    prompt = decode(stored["prompt"])
    output = decode(stored["completion"]) if stored["completion"] else None
    completion = output.get("content") if isinstance(output, dict) else _joined(output)
    error = row["error"]
    return JSONResponse(
        {
            "data": {
                "input": {"messages": prompt} if isinstance(prompt, list) else {"prompt": prompt},
                "output": {"completion": completion, "reasoning": None},
                "error": None
                if not error
                else {
                    "status": error.get("code"),
                    "message": error.get("message"),
                    "provider_name": row["provider_name"],
                    "raw": None,
                    "previous_errors": [],
                },
            }
        }
    )


def _joined(messages: Any) -> str | None:
    if isinstance(messages, list):
        return "".join(str((m or {}).get("content") or "") for m in messages) or None
    return None


routes = [
    Route("/generation", get_generation, methods=["GET"]),
    Route("/generation/content", get_generation_content, methods=["GET"]),
]
