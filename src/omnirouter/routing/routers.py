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
from decimal import Decimal
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
MILLION = Decimal(1_000_000)
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


class ParetoRouter:
    """`openrouter/pareto-code` and its `pareto-router` plugin (docs/plugins.md "Pareto router").

    The candidates are the servable text models with a `coding_score` (catalog/types.py), able to
    use tools when the request has some. With `min_coding_score` (0.66, OpenRouter's high tier, when
    neither it nor `max_price` is given): those scoring at least that and, with `max_price`, whose
    input price is at most the cap, cheapest first (ties: the higher score, then the id). With
    `max_price` alone, as OpenRouter documents: those within the cap, best score first (ties: the
    cheaper, then the id). The price is a model's cheapest live standard endpoint's prompt price in
    USD per million tokens; `price_source: weighted_avg` falls back to it, as the schema says for
    models without traffic data (this gateway keeps none). The first three are tried in order.
    """

    DEFAULT_MIN_SCORE = 0.66
    PRICE_SOURCES = ("prompt", "weighted_avg")

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def price(self, model: Model) -> Decimal | None:
        """USD per million input tokens; None when no standard endpoint is live."""
        prompt = [e.pricing.prompt for e in self.catalog.live_endpoints(model) if e.variant == "standard"]
        return min(prompt) * MILLION if prompt else None

    def __call__(
        self, req: ChatRequest, plugins: list[Any] | None, needs_tools: bool, session: str | None
    ) -> list[str]:
        plugin = _plugin(plugins, "pareto-router")
        if plugin.get("enabled", True) is False:
            plugin = {}
        min_score, max_price = _pareto_options(plugin)
        scored = [
            (m, price) for m in self.catalog.live_models()
            if m.coding_score is not None and not m.id.startswith("openrouter/")
            and "text" in m.architecture.output_modalities
            and (not needs_tools or "tools" in m.supported_parameters)
            and (price := self.price(m)) is not None and (max_price is None or price <= max_price)
            and (min_score is None or m.coding_score >= min_score)
        ]  # fmt: skip
        if not scored:
            bounds = [f"a coding score of at least {min_score:g}"] if min_score is not None else []
            bounds += [f"an input price of at most ${max_price} per million tokens"] if max_price is not None else []
            bounds_text = " and ".join(bounds)
            raise GatewayError(404, f"No models match your request and model restrictions: none has {bounds_text}")
        if min_score is None:  # max_price alone: the best coder within the cap
            scored.sort(key=lambda mp: (-(mp[0].coding_score or 0.0), mp[1], mp[0].id))
        else:
            scored.sort(key=lambda mp: (mp[1], -(mp[0].coding_score or 0.0), mp[0].id))
        return [m.id for m, _ in scored[:TOP_N]]


def _pareto_options(plugin: dict[str, Any]) -> tuple[float | None, Decimal | None]:
    """(min_coding_score, max_price) of a `pareto-router` plugin, checked (400 otherwise)."""
    score, price = plugin.get("min_coding_score"), plugin.get("max_price")
    for name, value in (("min_coding_score", score), ("max_price", price)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
            raise GatewayError(400, f"pareto-router: {name} must be a number of at least 0")
    if score is not None and score > 1:
        raise GatewayError(400, "pareto-router: min_coding_score must be between 0 and 1")
    source = plugin.get("price_source", "prompt")
    if source not in ParetoRouter.PRICE_SOURCES:
        raise GatewayError(400, f"pareto-router: price_source must be one of {', '.join(ParetoRouter.PRICE_SOURCES)}")
    if score is None and price is None:
        score = ParetoRouter.DEFAULT_MIN_SCORE
    return (None if score is None else float(score)), (None if price is None else Decimal(str(price)))
