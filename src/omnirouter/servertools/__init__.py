"""Server tools (behaviors §8.2): `openrouter:web_search`, `openrouter:web_fetch` and
`openrouter:datetime` declared in `tools` are run by the gateway itself, in a loop with the model.

At admission (`prepare`) each server tool in the request becomes a function tool the model can call
(its name is the tool's: `web_search`, `web_fetch`, `datetime`); when the model calls one, the loop
(servertools/loop.py) runs it, appends the assistant's call and the tool's result to the messages,
and asks the model again. A call of one of the client's own functions ends the loop: it goes back
to the client as usual. Every step is an attempt of the one generation, billed at its endpoint's
prices; searches and fetches add their fees (Call.plugins).

A request that declares none pays one scan of its `tools` (most requests have none).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType
from typing import Any

from omnirouter.accounting.cost import ZERO, Cost, Usage
from omnirouter.errors import GatewayError

__all__ = ["MAX_TOOL_CALLS", "ServerTools", "declared", "loop", "prepare"]

MAX_TOOL_CALLS = 30  # the default, and the most a request may ask for
# OpenAI's and Anthropic's spellings of a hosted web search: "automatically converted to
# openrouter:web_search" (the OpenAPI document's ChatWebSearchShorthand).
WEB_SEARCH_SHORTHANDS = frozenset(
    {"web_search", "web_search_preview", "web_search_preview_2025_03_11", "web_search_2025_08_26",
     "web_search_20250305", "web_search_20260209"}
)  # fmt: skip
STOP_CONDITIONS = {
    "step_count_is": ("step_count", int),
    "has_tool_call": ("tool_name", str),
    "max_tokens_used": ("max_tokens", int),
    "max_cost": ("max_cost_in_dollars", (int, float)),
    "finish_reason_is": ("reason", str),
}


def _modules() -> dict[str, ModuleType]:
    from omnirouter.servertools.tools import datetime as datetime_tool
    from omnirouter.servertools.tools import web_fetch, web_search

    return {m.TYPE: m for m in (datetime_tool, web_search, web_fetch)}


def declared(tools: Any) -> bool:
    """Whether a request's `tools` name a server tool (cheap: most requests have no tools at all)."""
    if not isinstance(tools, list):
        return False
    for tool in tools:
        if isinstance(tool, dict):
            kind = tool.get("type")
            if isinstance(kind, str) and (kind.startswith("openrouter:") or kind in WEB_SEARCH_SHORTHANDS):
                return True
    return False


@dataclass
class Tool:
    """One server tool of a request: its module (servertools/tools/) and its `parameters`."""

    module: ModuleType
    params: dict[str, Any]
    uses: int = 0  # calls run so far (max_uses)
    state: dict[str, Any] = field(default_factory=dict)  # what the tool keeps across calls (results given ...)


@dataclass
class ServerTools:
    """A request's server tools, its loop's limits, and what the loop did so far."""

    tools: dict[str, Tool]  # by the function name the model calls
    max_tool_calls: int = MAX_TOOL_CALLS
    stop_when: list[dict[str, Any]] | None = None
    steps: int = 0  # model calls made
    requested: int = 0  # server tool calls the model asked for
    executed: int = 0  # ... that ran and produced a result
    searches: int = 0
    fetches: int = 0
    usage: Usage = field(default_factory=Usage)  # summed over the steps settled so far
    cost: Cost | None = None  # summed over the steps settled so far (without the plugins' fees)
    attempts: list[Any] = field(default_factory=list)  # every step's attempts, in order
    items: list[dict[str, Any]] = field(default_factory=list)  # what ran, for the Responses and Messages answers
    texts: list[str] = field(default_factory=list)  # the text of the steps before the last
    total_usage: Usage | None = None  # every step's, once settled (the answer's usage)

    # -- money: each step at its own endpoint's prices
    def add_step(self, usage: Usage, cost: Cost) -> None:
        self.usage = add_usage(self.usage, usage)
        self.cost = cost if self.cost is None else add_cost(self.cost, cost)

    def with_prior(self, usage: Usage, cost: Cost) -> tuple[Usage, Cost]:
        """The last step's usage and cost plus the earlier steps' (Call.settle)."""
        self.total_usage = add_usage(self.usage, usage)
        return self.total_usage, cost if self.cost is None else add_cost(self.cost, cost)

    def spent(self) -> Decimal:
        return self.cost.total if self.cost is not None else ZERO

    def details(self) -> dict[str, int]:
        """`server_tool_use_details` of the answer's usage."""
        return {
            "tool_calls_requested": self.requested,
            "tool_calls_executed": self.executed,
            "web_search_requests": self.searches,
            "web_fetch_requests": self.fetches,
        }


def add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(
        prompt_tokens=a.prompt_tokens + b.prompt_tokens,
        completion_tokens=a.completion_tokens + b.completion_tokens,
        cached_tokens=a.cached_tokens + b.cached_tokens,
        cache_write_tokens=a.cache_write_tokens + b.cache_write_tokens,
        reasoning_tokens=a.reasoning_tokens + b.reasoning_tokens,
        images=a.images + b.images,
    )


def add_cost(a: Cost, b: Cost) -> Cost:
    return Cost(
        total=a.total + b.total,
        prompt=a.prompt + b.prompt,
        completion=a.completion + b.completion,
        cache_discount=a.cache_discount + b.cache_discount,
        insured=a.insured and b.insured,
        is_byok=a.is_byok or b.is_byok,
        byok_usage=a.byok_usage + b.byok_usage,
        fees=a.fees + b.fees,
    )


def prepare(body: dict[str, Any], settings: Any) -> ServerTools | None:
    """Replace the request's server tools by the function tools the model sees, and read the loop's
    limits (`max_tool_calls`, `stop_server_tools_when`), which are not sent upstream. None: nothing
    for the gateway to run after all (a hosted web search shorthand on an instance without a search
    engine is left out, as it always was, for clients such as the Codex CLI that offer it anyway)."""
    modules = _modules()
    tools: dict[str, Tool] = {}
    out: list[Any] = []
    own_names: set[str] = set()
    for i, entry in enumerate(body["tools"]):
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind in WEB_SEARCH_SHORTHANDS:
            if getattr(settings, "web_search", None) is None:
                continue
            params = entry.get("parameters")
            if not isinstance(params, dict):  # the shorthand's options sit beside its type
                params = {k: v for k, v in entry.items() if k not in ("type", "name", "parameters")}
            kind = "openrouter:web_search"
        elif isinstance(kind, str) and kind.startswith("openrouter:"):
            params = entry.get("parameters") or {}
            if not isinstance(params, dict):
                raise GatewayError(400, f"Invalid request: tools[{i}].parameters must be an object")
        else:
            if kind == "function" and isinstance(fn := entry.get("function"), dict):
                own_names.add(str(fn.get("name")))
            out.append(entry)
            continue
        module = modules.get(kind)
        if module is None:
            supported = ", ".join(sorted(modules))
            raise GatewayError(400, f"Server tool {kind!r} is not supported by this gateway (supported: {supported})")
        module.check(params, settings, f"tools[{i}].parameters")
        if module.NAME in tools:
            raise GatewayError(400, f"Invalid request: server tool {kind!r} is declared twice")
        tools[module.NAME] = Tool(module, params)
        out.append({"type": "function", "function": module.function(params)})
    if clash := own_names & tools.keys():
        raise GatewayError(
            400,
            f"Invalid request: the function {sorted(clash)[0]!r} has the name of a server tool the request declares",
        )
    if out:
        body["tools"] = out
    else:
        body.pop("tools", None)
        body.pop("tool_choice", None)
    if not tools:
        return None
    st = ServerTools(tools)
    limit = body.pop("max_tool_calls", None)
    if limit is not None:
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise GatewayError(400, "Invalid request: max_tool_calls must be a non-negative integer")
        st.max_tool_calls = min(limit, MAX_TOOL_CALLS)
    stop_when = body.pop("stop_server_tools_when", None)
    if stop_when is not None:
        st.stop_when = _stop_conditions(stop_when)
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and (kind := choice.get("type")) != "function" and isinstance(kind, str):
        # ChatServerToolChoice: a server tool forced by its type
        if kind in WEB_SEARCH_SHORTHANDS:
            kind = "openrouter:web_search"
        module = modules.get(kind)
        if module is None or module.NAME not in tools:
            raise GatewayError(400, f"Invalid request: tool_choice names {kind!r}, which the request does not declare")
        body["tool_choice"] = {"type": "function", "function": {"name": module.NAME}}
    return st


def _stop_conditions(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise GatewayError(400, "Invalid request: stop_server_tools_when must be a non-empty array of conditions")
    for i, cond in enumerate(raw):
        kind = cond.get("type") if isinstance(cond, dict) else None
        if kind not in STOP_CONDITIONS:
            names = ", ".join(STOP_CONDITIONS)
            raise GatewayError(400, f"Invalid request: stop_server_tools_when[{i}].type must be one of {names}")
        name, types = STOP_CONDITIONS[kind]
        value = cond.get(name)
        if not isinstance(value, types) or isinstance(value, bool):
            raise GatewayError(400, f"Invalid request: stop_server_tools_when[{i}] ({kind}) needs `{name}`")
    return raw


from omnirouter.servertools import loop  # noqa: E402  (the loop uses this module's names)
