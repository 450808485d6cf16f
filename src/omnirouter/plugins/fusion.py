"""fusion: a panel of models answers the prompt first, then the request's model writes the answer
from theirs (FusionPlugin; docs/plugins.md "Fusion").

The panel (`analysis_models`, at most 8) gets the request's conversation in parallel, each as an
internal non-streamed chat completion billed to the same key and recorded as a generation of its
own (pipeline/subcall.py). Their answers go to the request's own model in one system message (the
prompt below), placed after the conversation's leading system messages; the request's call is then
made as usual, streamed if it streams. The final generation lists the panel's generations in its
`plugins` record (`fusion`). `"model": "openrouter/fusion"` (FusionRouter) runs fusion with the
plugin's `model` writing the answer.

Recursion: sub-calls carry `x-openrouter-fusion-depth: 1`; a request at depth 1 runs without fusion,
and a depth above 1 (only a loop, or a client, could send one) is refused with a 400.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from omnirouter.errors import GatewayError
from omnirouter.pipeline.call import estimate_tokens

if TYPE_CHECKING:
    from omnirouter.catalog.catalog import Catalog
    from omnirouter.pipeline.call import Call
    from omnirouter.plugins.run import PluginRun

ID = "fusion"
ROUTER = "openrouter/fusion"
DEPTH_HEADER = "x-openrouter-fusion-depth"
MAX_DEPTH = 1  # fusion's sub-calls are at depth 1, where fusion does not run again
MAX_PANEL = 8
# OpenRouter's default panel (the "Quality" preset); served here only if the catalog has such models.
DEFAULT_PANEL = ("~anthropic/claude-opus-latest", "~openai/gpt-latest", "~google/gemini-pro-latest")
PRESETS = ("general-high", "general-budget", "general-fast")
# What a panelist's request keeps of the client's, besides the conversation.
COPIED = ("max_tokens", "max_completion_tokens", "temperature", "top_p", "stop", "seed", "user", "reasoning")
# Forwarded so that sub-calls show the same app in the activity as the request.
APP_HEADERS = {"user-agent": "user_agent", "http-referer": "referer", "x-title": "title"}

PROMPT = """Before you answer, a panel of {count} other models answered the same conversation \
independently. Their answers follow, one per <panel_answer> element.{failed}

Write the best possible answer to the user's last message. Use the panel as expert input, not as \
the answer: keep what they agree on, settle their contradictions on the merits, keep the insights \
only some of them had where they hold up, and add what all of them missed. Answer directly, in your \
own words, as if you alone were answering; do not mention the panel.

{answers}"""


def arriving_depth(value: str) -> int:
    """The fusion depth a request arrives with; refused when it is no depth or beyond the limit."""
    try:
        depth = int(value.strip())
    except ValueError:
        raise GatewayError(400, f"{DEPTH_HEADER} must be a whole number") from None
    if not 0 <= depth <= MAX_DEPTH:
        raise GatewayError(400, f"{DEPTH_HEADER} {depth} is outside 0..{MAX_DEPTH}: fusion does not nest")
    return depth


def wanted(call: Call, options: dict[str, Any] | None) -> bool:
    """Named and enabled, or the request's model is `openrouter/fusion`; not in a fusion sub-call."""
    if call.fusion_depth:
        return False
    if options is not None:
        return options.get("enabled", True) is not False
    return call.plan.requested[0].split(":", 1)[0] == ROUTER


class FusionRouter:
    """`openrouter/fusion`: the plugin's `model` writes the answer (default: the first analysis model),
    and fusion runs even when the request does not name the plugin (`wanted` above)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def __call__(self, req: Any, plugins: list[Any] | None, needs_tools: bool, session: str | None) -> list[str]:
        options = next((p for p in plugins or () if isinstance(p, dict) and p.get("id") == ID), {})
        model = options.get("model")
        if model is None:
            panel = options.get("analysis_models")
            model = panel[0] if isinstance(panel, list) and panel else DEFAULT_PANEL[0]
        if not isinstance(model, str) or _resolve(self.catalog, model) is None:
            raise GatewayError(400, f"fusion: model {model!r} is not in this gateway's catalog")
        return [model]


def _resolve(catalog: Catalog, model_id: str) -> Any:
    base = model_id.split(":", 1)[0]
    return catalog.latest(base[1:]) if base.startswith("~") else catalog.model(base)


def panel_of(call: Call, options: dict[str, Any]) -> list[str]:
    """The analysis models, checked: 1 to 8 model ids this gateway's catalog can serve."""
    models = options.get("analysis_models")
    if models is None:
        preset = options.get("preset")
        if preset is not None:
            if preset not in PRESETS:
                raise GatewayError(400, f"fusion: preset must be one of {', '.join(PRESETS)}")
            raise GatewayError(
                400, f"fusion: preset {preset!r} is one of OpenRouter's curated panels, which this gateway does "
                "not have; name the panel in analysis_models",
            )  # fmt: skip
        models = list(DEFAULT_PANEL)
    if not isinstance(models, list) or not models or not all(isinstance(m, str) and m for m in models):
        raise GatewayError(400, "fusion: analysis_models must be a list of 1 to 8 model ids")
    if len(models) > MAX_PANEL:
        raise GatewayError(400, f"fusion: analysis_models names {len(models)} models; at most {MAX_PANEL}")
    for model_id in models:
        if _resolve(call.st.catalog, model_id) is None:
            default = " (the default panel; name analysis_models to choose yours)" if options.get(
                "analysis_models") is None else ""  # fmt: skip
            raise GatewayError(400, f"fusion: analysis model {model_id!r} is not in this gateway's catalog{default}")
    return models


def _sub_request(call: Call, options: dict[str, Any], model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "messages": call.body["messages"]}
    for name in COPIED:
        if name in call.body:
            body[name] = call.body[name]
    tools = options.get("tools")
    if isinstance(tools, list) and tools:  # server tools for the panel, when the request names them
        body["tools"] = tools
        if isinstance(options.get("max_tool_calls"), int):
            body["max_tool_calls"] = options["max_tool_calls"]
    return body


def _sub_headers(call: Call) -> dict[str, str]:
    headers = {DEPTH_HEADER: str(call.fusion_depth + 1)}
    for name, attr in APP_HEADERS.items():
        if value := getattr(call, attr):
            headers[name] = value
    return headers


def context_message(answers: list[tuple[str, str]], failed: int) -> dict[str, Any]:
    """The system message that hands the panel's answers (model, text) to the final model."""
    blocks = "\n\n".join(f'<panel_answer model="{model}">\n{text}\n</panel_answer>' for model, text in answers)
    note = f" {failed} more panel model(s) failed and are left out." if failed else ""
    return {"role": "system", "content": PROMPT.format(count=len(answers), failed=note, answers=blocks)}


def _insert(messages: list[Any], message: dict[str, Any]) -> list[Any]:
    """After the conversation's leading system (or developer) messages, before the rest."""
    at = 0
    while at < len(messages) and isinstance(messages[at], dict) and messages[at].get("role") in ("system", "developer"):
        at += 1
    return [*messages[:at], message, *messages[at:]]


def _error_status(errors: list[GatewayError]) -> int:
    """Every panelist failed: their common refusal (402: no credit, 403, 429 ...), else 502, as the
    upstreams behind the final answer failed."""
    statuses = {e.status for e in errors}
    return status if len(statuses) == 1 and 400 <= (status := statuses.pop()) < 500 else 502


async def prepare(call: Call, options: dict[str, Any] | None, run: PluginRun) -> None:
    from omnirouter.pipeline import subcall  # (it imports the endpoint, which imports this lazily)

    options = options or {}
    messages = call.body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise GatewayError(400, "fusion: the request needs messages")
    panel = panel_of(call, options)
    headers = _sub_headers(call)
    # The request's own hold is let go while the panel runs (a limited key's room is the panel's to
    # reserve), and taken again below for the final call, whose prompt the panel's answers make longer.
    call.release()
    results = await asyncio.gather(
        *(subcall.complete(call.st, call.key, _sub_request(call, options, m), headers) for m in panel)
    )
    run.details["fusion"] = [
        {"id": r.gen_id if r.recorded else None, "model": (r.completion or {}).get("model") or r.model,
         **({"error": r.error.message} if r.error is not None else {})}
        for r in results
    ]  # fmt: skip
    answered = [r for r in results if r.completion is not None]
    if not answered:
        errors = [r.error for r in results if r.error is not None]
        reasons = "; ".join(f"{r.model}: {r.error.message}" for r in results if r.error is not None)
        raise GatewayError(_error_status(errors), f"fusion: every analysis model failed ({reasons})")
    answers = [((r.completion or {}).get("model") or r.model, r.text) for r in answered]
    context = context_message(answers, len(results) - len(answered))
    call.body["messages"] = _insert(messages, context)
    call.needs.prompt_tokens += estimate_tokens(len(context["content"]))
    run.changed(call)
    # Refused here (the panel already paid for) if the final call no longer fits the key's limit.
    if (top_up := call.reserve()) is not None:
        await top_up
