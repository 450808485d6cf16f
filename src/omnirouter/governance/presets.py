"""Presets on the request path (behaviors §4.4): a request names a preset as `"model": "@preset/slug"`,
as `"preset": "slug"` beside a model, or as `"model": "author/model@preset/slug"`, and the preset's
active version is merged into the internal (chat) request before anything else reads it.

A preset's config is stored in the internal chat form (governance/preset_service.py converts a
/messages or /responses body with that format's `parse` when the preset is created), so one merge
serves every client format. The rules:

- a request field overrides the preset's field of the same name (top level: a request's `provider`
  replaces the preset's `provider` whole); a field the request leaves out or sends as null is the preset's;
- tools are unioned: a request tool replaces the preset tool of the same identity (function tools by
  function name, `openrouter:advisor` / `openrouter:subagent` by type and `parameters.name`, other
  server tools by type alone), preset tools keep their order, request-only tools come after them;
- the preset's system prompt is put first when the request has no system (or developer) message of
  its own; a request that has one keeps it and the preset's is not added (request overrides preset);
- /completions takes no tools: a preset's tools, tool_choice and parallel_tool_calls are not applied there.

The snapshot (section "presets" of governance/registry.py) maps (workspace, slug) to the active
version; it is None while no preset exists, and a request that names no preset costs one string test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from omnirouter.errors import GatewayError, not_found
from omnirouter.governance.keys import KeyRecord
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.jsonio import decode, encode
from omnirouter.store.tables import preset_versions, presets

MARK = "@preset/"
SYSTEM_ROLES = ("system", "developer")
CHAT_ONLY = frozenset({"tools", "tool_choice", "parallel_tool_calls"})  # what /completions cannot render
KEYED_BY_NAME = ("openrouter:advisor", "openrouter:subagent")  # server tools with several per request


def workspace_of(key: KeyRecord) -> str:
    """The workspace whose presets a key sees (a key without one is in the default workspace)."""
    return key.workspace_id or DEFAULT_WORKSPACE_ID


@dataclass(frozen=True, slots=True)
class ActivePreset:
    id: str
    slug: str
    system_prompt: str | None
    config: bytes  # JSON: decoded afresh for each request, which then owns what it was given


class PresetSnapshot:
    """The active version of every active preset, by (workspace id, slug)."""

    __slots__ = ("active",)

    def __init__(self, active: dict[tuple[str, str], ActivePreset]) -> None:
        self.active = active

    def get(self, workspace: str, slug: str) -> ActivePreset | None:
        return self.active.get((workspace, slug))


def load(conn: Connection) -> PresetSnapshot | None:
    """The registry's loader: None while there is no preset at all (the request path then skips at once)."""
    q = (
        select(presets.c.id, presets.c.workspace_id, presets.c.slug, preset_versions.c.system_prompt,
               preset_versions.c.config)
        .join(preset_versions, preset_versions.c.id == presets.c.designated_version_id)
        .where(presets.c.status == "active")
    )  # fmt: skip
    rows = conn.execute(q).all()
    if not rows:
        return None
    return PresetSnapshot(
        {(r.workspace_id, r.slug): ActivePreset(r.id, r.slug, r.system_prompt, encode(r.config)) for r in rows}
    )


def names_preset(body: Mapping[str, Any], client: Mapping[str, Any]) -> bool:
    """Whether a request may name a preset: the cheap test the request path makes first."""
    model = body.get("model")
    return "preset" in client or (type(model) is str and "@" in model)


def apply(
    snapshot: PresetSnapshot | None, key: KeyRecord, body: dict[str, Any], client: Mapping[str, Any], fmt: str
) -> str | None:
    """Merge the preset a request names into its internal body `body` (in place: a format's body may be a
    dict subclass carrying more); `client` is the body as the client sent it (where `preset` is read, as
    a format's parse may not carry it over). Returns the preset's id, or None when none is named."""
    slug = None
    model = body.get("model")
    if type(model) is str and (at := model.find(MARK)) >= 0:
        slug = model[at + len(MARK) :]
        if at:
            body["model"] = model[:at]  # author/model@preset/slug: the request's model, the preset's rest
        else:
            del body["model"]  # @preset/slug: the preset's model
    named = client.get("preset")
    if named is not None:
        if not isinstance(named, str):
            raise GatewayError(400, "Invalid request: preset must be a string (a preset's slug)")
        if slug is not None and named != slug:
            raise GatewayError(400, f"Invalid request: the model names preset '{slug}' and `preset` names '{named}'")
        slug = named
    if slug is None:  # an "@" that names no preset: the model is looked up as it is
        return None
    body.pop("preset", None)
    preset = snapshot.get(workspace_of(key), slug) if snapshot is not None else None
    if preset is None:
        raise not_found(f"Preset '{slug}' not found")
    merge(body, preset, fmt)
    return preset.id


def merge(body: dict[str, Any], preset: ActivePreset, fmt: str) -> None:
    config: dict[str, Any] = decode(preset.config)
    tools = config.pop("tools", None)
    for name, value in config.items():
        if body.get(name) is None and not (fmt == "completions" and name in CHAT_ONLY):
            body[name] = value
    if tools and fmt != "completions":
        theirs = body.get("tools")
        if theirs is None:
            body["tools"] = tools
        elif isinstance(theirs, list):  # anything else is the request's own error, which parse reports
            body["tools"] = union_tools(tools, theirs)
    messages = body.get("messages")
    added_system = preset.system_prompt and isinstance(messages, list) and not _has_system(messages)
    if added_system:
        body["messages"] = [{"role": "system", "content": preset.system_prompt}, *messages]
    echo = getattr(body, "echo", None)  # a Responses request: its answer repeats what was applied
    if isinstance(echo, dict):
        _echo_applied(echo, body, preset.system_prompt if added_system else None)


# The parameters a Response object repeats, by their Responses name, and the internal name they have.
ECHOED = {"temperature": "temperature", "top_p": "top_p", "presence_penalty": "presence_penalty",
          "frequency_penalty": "frequency_penalty", "max_output_tokens": "max_tokens"}  # fmt: skip


def _echo_applied(echo: dict[str, Any], body: dict[str, Any], system_prompt: str | None) -> None:
    for name, internal in ECHOED.items():
        if echo.get(name) is None and body.get(internal) is not None:
            echo[name] = body[internal]
    if system_prompt is not None and echo.get("instructions") is None:
        echo["instructions"] = system_prompt


def tool_identity(tool: Any) -> tuple[Any, ...]:
    """What makes two tools the same tool (behaviors §4.4)."""
    if not isinstance(tool, dict):
        return ("", id(tool))  # not a tool: never the same as another (the request's validation refuses it)
    kind = tool.get("type")
    if kind == "function":
        fn = tool.get("function")
        return ("function", fn.get("name") if isinstance(fn, dict) else None)
    if kind in KEYED_BY_NAME:
        params = tool.get("parameters")
        return (kind, params.get("name") if isinstance(params, dict) else None)
    return (kind,)


def union_tools(preset_tools: list[Any], request_tools: list[Any]) -> list[Any]:
    """The preset's tools in their order, each replaced by the request's tool of the same identity,
    then the request's other tools in theirs."""
    ours = {tool_identity(t) for t in preset_tools}
    replacing: dict[tuple[Any, ...], Any] = {}
    for t in request_tools:
        replacing.setdefault(tool_identity(t), t)
    merged = [replacing.get(tool_identity(t), t) for t in preset_tools]
    merged += [t for t in request_tools if tool_identity(t) not in ours]
    return merged


def _has_system(messages: list[Any]) -> bool:
    return any(isinstance(m, dict) and m.get("role") in SYSTEM_ROLES for m in messages)


def system_prompt_of(messages: Any) -> str | None:
    """The text of the system (or developer) messages a conversation starts with."""
    parts: list[str] = []
    for m in messages if isinstance(messages, list) else ():
        if not isinstance(m, dict) or m.get("role") not in SYSTEM_ROLES:
            break
        content = m.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts.append("".join(p.get("text") or "" for p in content if isinstance(p, dict)))
    return "\n\n".join(p for p in parts if p) or None
