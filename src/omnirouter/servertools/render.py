"""What ran, in the client formats: Responses output items (`openrouter:web_search` ...,
OpenRouter's Output*ServerToolItem) and Messages content blocks (`server_tool_use` followed by
`web_search_tool_result` / `web_fetch_tool_result`, as Anthropic's own server tools answer; the
datetime tool has no Anthropic block, so a Messages answer shows it only in its usage)."""

from __future__ import annotations

from typing import Any

# The fields of each Responses item (OutputWebSearchServerToolItem, OutputWebFetchServerToolItem,
# OutputDatetimeItem); the rest of an entry is the gateway's own bookkeeping.
RESPONSES_FIELDS = ("type", "id", "status", "action", "datetime", "timezone", "url", "title", "content", "error",
                    "httpStatus")  # fmt: skip


def responses_item(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry[k] for k in RESPONSES_FIELDS if k in entry}


def responses_usage(raw: dict[str, Any], out: dict[str, Any]) -> None:
    if (details := raw.get("server_tool_use_details")) is not None:
        out["server_tool_use_details"] = details


def messages_blocks(entry: dict[str, Any]) -> list[dict[str, Any]]:
    kind = entry.get("type")
    if kind not in ("openrouter:web_search", "openrouter:web_fetch"):
        return []
    use_id = "srvtoolu_" + str(entry["id"])
    name = "web_search" if kind == "openrouter:web_search" else "web_fetch"
    use = {"type": "server_tool_use", "id": use_id, "name": name, "input": entry.get("arguments") or {},
           "caller": {"type": "direct"}}  # fmt: skip
    failed = entry.get("status") == "failed"
    if name == "web_search":
        content: Any = (
            {"type": "web_search_tool_result_error", "error_code": "unavailable"}
            if failed
            else [
                {
                    "type": "web_search_result",
                    "url": r["url"],
                    "title": r["title"],
                    "encrypted_content": "",
                    "page_age": None,
                }
                for r in entry.get("results") or ()
            ]
        )
        result = {"type": "web_search_tool_result", "tool_use_id": use_id, "content": content,
                  "caller": {"type": "direct"}}  # fmt: skip
    else:
        content = (
            {"type": "web_fetch_tool_result_error", "error_code": "url_not_accessible"}
            if failed
            else {
                "type": "web_fetch_result",
                "url": entry.get("url") or "",
                "retrieved_at": entry.get("retrieved_at"),
                "content": {
                    "type": "document",
                    "title": entry.get("title") or None,
                    "citations": None,
                    "source": {"type": "text", "media_type": "text/plain", "data": entry.get("content") or ""},
                },
            }
        )
        result = {"type": "web_fetch_tool_result", "tool_use_id": use_id, "content": content,
                  "caller": {"type": "direct"}}  # fmt: skip
    return [use, result]


def messages_usage(raw: dict[str, Any], out: dict[str, Any]) -> None:
    if (details := raw.get("server_tool_use_details")) is not None:
        out["server_tool_use"] = {
            "web_search_requests": details.get("web_search_requests") or 0,
            "web_fetch_requests": details.get("web_fetch_requests") or 0,
        }
