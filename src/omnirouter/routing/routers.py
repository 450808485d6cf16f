"""Router models: `openrouter/auto` and `openrouter/free` choose concrete models (behaviors §4.3).

openrouter/auto, the method: OpenRouter ranks models by the community's spend per task, which a
self-hosted instance does not have. Here the prompt's last user message is classified into a task
(code, math, reasoning, creative or general) by keywords; the candidates are the operator's allowed
models (`auto_router_models`, default every servable text model), narrowed by the request's
`auto-router` plugin (`allowed_models`, `excluded_models`, wildcards allowed) and by what the request
needs (tools). Models suited to the task (reasoning models for math and reasoning, coding models and
tool-capable ones for code) rank first; within that, `cost_tier` picks the price band: `low` (the
default) cheapest first, `medium` from the middle, `high`/`xhigh`/`max` dearest first, price standing
in for capability. The top three are tried in order. A session (`session_id`) keeps its model while
it stays among the top candidates.
"""

from __future__ import annotations

import fnmatch
import random
import re
import time
from collections.abc import Sequence
from typing import Any

from omnirouter.catalog.catalog import Catalog
from omnirouter.catalog.types import Model
from omnirouter.errors import GatewayError
from omnirouter.formats.chat_messages import TextPart
from omnirouter.formats.openai_chat import ChatRequest

TASK_PATTERNS = {
    "code": re.compile(
        r"```|\b(code|function|bug|compile|python|javascript|typescript|rust|golang|java|sql|regex|refactor|"
        r"stack ?trace|exception|api)\b", re.I,
    ),
    "math": re.compile(r"\b(prove|integral|derivative|equation|theorem|calculate|solve)\b|[=+\-*/^]\s*\d", re.I),
    "reasoning": re.compile(r"\b(step by step|reason|logic|puzzle|analy[sz]e|plan)\b", re.I),
    "creative": re.compile(r"\b(story|poem|write a|lyrics|fiction|essay|slogan)\b", re.I),
}  # fmt: skip
COST_TIERS = ("low", "medium", "high", "xhigh", "max")
TOP_N = 3
STICKY_SECONDS = 600.0
MAX_SESSIONS = 100_000


def classify(text: str) -> str:
    for task, pattern in TASK_PATTERNS.items():
        if pattern.search(text):
            return task
    return "general"


def _last_user_text(messages: Sequence[Any] | None) -> str:
    for m in reversed(messages or []):
        if getattr(m, "role", None) == "user":
            content = m.content
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.text for p in content if isinstance(p, TextPart))
    return ""


def _plugin(plugins: list[Any] | None, plugin_id: str) -> dict[str, Any]:
    return next((p for p in plugins or [] if isinstance(p, dict) and p.get("id") == plugin_id), {})


def _matches_any(model_id: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(model_id, p) for p in patterns)


class AutoRouter:
    def __init__(self, catalog: Catalog, allowed: list[str] | None = None) -> None:
        self.catalog = catalog
        self.allowed = allowed
        self._sessions: dict[str, tuple[str, float]] = {}

    def candidates(self, plugin: dict[str, Any], needs_tools: bool) -> list[Model]:
        allowed = plugin.get("allowed_models") or None
        excluded = plugin.get("excluded_models") or []
        out = []
        for m in self.catalog.live_models():
            if m.id.startswith("openrouter/") or "text" not in m.architecture.output_modalities:
                continue
            if self.allowed is not None and not _matches_any(m.id, self.allowed):
                continue
            if (allowed and not _matches_any(m.id, allowed)) or _matches_any(m.id, excluded):
                continue
            if needs_tools and "tools" not in m.supported_parameters:
                continue
            out.append(m)
        return out

    def __call__(
        self, req: ChatRequest, plugins: list[Any] | None, needs_tools: bool, session: str | None
    ) -> list[str]:
        plugin = _plugin(plugins, "auto-router")
        if plugin.get("pin_model"):
            return [str(plugin["pin_model"])]
        models = self.candidates(plugin, needs_tools)
        if not models:
            raise GatewayError(404, "No models match your request and model restrictions")
        tier = plugin.get("cost_tier") or "low"
        if tier not in COST_TIERS:
            raise GatewayError(400, f"cost_tier must be one of {', '.join(COST_TIERS)}")
        ranked = self.rank(models, classify(_last_user_text(req.messages) or (req.prompt or "")), tier)[:TOP_N]
        ids = [m.id for m in ranked]
        if session:
            prior = self._sessions.pop(session, None)
            if prior and prior[1] > time.monotonic() and prior[0] in ids:
                ids.remove(prior[0])
                ids.insert(0, prior[0])
            if len(self._sessions) >= MAX_SESSIONS:  # bounded: drop the least recently used tenth
                for old in list(self._sessions)[: MAX_SESSIONS // 10]:
                    del self._sessions[old]
            self._sessions[session] = (ids[0], time.monotonic() + STICKY_SECONDS)
        return ids

    def rank(self, models: list[Model], task: str, tier: str) -> list[Model]:
        def suited(m: Model) -> bool:
            if task in ("math", "reasoning"):
                return m.reasoning is not None
            if task == "code":
                return "cod" in m.id or "tools" in m.supported_parameters
            return True

        def price(m: Model) -> float:  # of what can serve it here, not of endpoints switched off
            eps = [e for e in self.catalog.live_endpoints(m) if e.variant == "standard"]
            return min((float(e.pricing.prompt + e.pricing.completion) for e in eps), default=0.0)

        by_price = sorted(models, key=lambda m: (price(m), m.id))
        if tier in ("high", "xhigh", "max"):
            by_price.reverse()
        elif tier == "medium":
            mid = len(by_price) // 2  # start from the middle band, alternating outwards
            by_price = sorted(by_price, key=lambda m: (abs(by_price.index(m) - mid), by_price.index(m)))
        return sorted(by_price, key=lambda m: not suited(m))  # stable: suited first, price order kept


class FreeRouter:
    """`openrouter/free`: a random free model that can do what the request needs."""

    def __init__(self, catalog: Catalog, rng: random.Random | None = None) -> None:
        self.catalog = catalog
        self.rng = rng or random.Random()

    def __call__(
        self, req: ChatRequest, plugins: list[Any] | None, needs_tools: bool, session: str | None
    ) -> list[str]:
        free = [
            m.id for m in self.catalog.live_models()
            if any(e.pricing.is_free for e in self.catalog.live_endpoints(m))
            and (not needs_tools or "tools" in m.supported_parameters)
        ]  # fmt: skip
        if not free:
            raise GatewayError(404, "No free models are available on this instance for this request")
        self.rng.shuffle(free)
        return [f"{m}:free" for m in free[:TOP_N]]
