"""One inference request on its way through the gateway: what it asked for, where it may go, what it
reserved, and, once answered, what it cost, what it taught the router, and its generation record."""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from omnirouter.accounting import meter
from omnirouter.accounting.byok import byok_charges, fee_cost
from omnirouter.accounting.cost import ZERO, Cost, Usage, compute, worst_case
from omnirouter.accounting.ledger import INSTANCE, Reservation
from omnirouter.catalog.types import Pricing
from omnirouter.errors import GatewayError
from omnirouter.formats.base import ClientFormat
from omnirouter.formats.openai_chat import ChatRequest
from omnirouter.governance import budgets
from omnirouter.governance.keys import KeyRecord
from omnirouter.jsonio import decode, encode, money
from omnirouter.pipeline.attempt import Attempt, Outcome, Passthrough, RouteFailed
from omnirouter.plugins.run import PluginRun
from omnirouter.providers.base import Timeouts, UpstreamContext
from omnirouter.routing.plan import Candidate, Needs, Plan
from omnirouter.routing.sticky import caches, conversation_key
from omnirouter.state import AppState
from omnirouter.store.fit import fit, text_columns
from omnirouter.store.tables import generations

if TYPE_CHECKING:
    from omnirouter.cache import CacheRequest
    from omnirouter.cluster.budgets import Bucket
    from omnirouter.servertools import ServerTools

TOP_UPS = 2  # top-ups of one bucket for one request before it is refused

# The generation columns whose text comes from the client or the upstream (the rest is the gateway's own).
GENERATION_TEXT = text_columns(
    generations,
    only=("session_id", "upstream_id", "finish_reason", "native_finish_reason", "http_referer", "app_title",
          "user_agent", "external_user"),
)  # fmt: skip


def estimate_tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


def usage_of(raw: dict[str, Any] | None) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    ptd = raw.get("prompt_tokens_details") or {}
    ctd = raw.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cached_tokens=int(ptd.get("cached_tokens") or 0),
        cache_write_tokens=int(ptd.get("cache_write_tokens") or 0),
        reasoning_tokens=int(ctd.get("reasoning_tokens") or 0),
    )


def usage_payload(usage: Usage, cost: Cost) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
            "audio_tokens": 0,
            "video_tokens": 0,
        },
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens, "audio_tokens": 0},
        "cost": money(cost.total),
        "is_byok": cost.is_byok,
        "cost_details": {
            "upstream_inference_cost": money(cost.prompt + cost.completion),
            "upstream_inference_prompt_cost": money(cost.prompt),
            "upstream_inference_completions_cost": money(cost.completion),
        },
    }


def _tool_calls_valid(completion: Any) -> bool | None:
    """Whether every tool call's arguments are valid JSON (None: no tool calls)."""
    messages = completion if isinstance(completion, list) else [completion]
    calls = [tc for m in messages if isinstance(m, dict) for tc in m.get("tool_calls") or ()]
    if not calls:
        return None
    try:
        for tc in calls:
            decode((tc.get("function") or {}).get("arguments") or "{}")
    except Exception:
        return False
    return True


@dataclass
class Call:
    st: AppState
    fmt: ClientFormat  # the client's format: how answers, stream events and errors are rendered
    gen_id: str
    key: KeyRecord
    req: ChatRequest
    body: dict[str, Any]
    plan: Plan
    needs: Needs
    prompt_chars: int
    session: str | None = None  # explicit: session_id, x-session-id or prompt_cache_key
    sticky_key: str | None = None  # the session, or a hash of the conversation's start
    metadata: bool = False  # X-OpenRouter-Metadata: enabled
    referer: str | None = None
    title: str | None = None
    user_agent: str | None = None
    ctx: UpstreamContext | None = None  # forwarded headers (credentials later), for the adapters
    passthrough: Passthrough | None = None  # the client's own body, for an upstream of its format
    preset_id: str | None = None  # the preset the request used (governance/presets.py)
    guardrail_actions: list[dict[str, Any]] | None = None  # what guardrails redacted or flagged
    fusion_depth: int = 0  # x-openrouter-fusion-depth: 1 for fusion's own sub-calls (plugins/fusion.py)
    plugins: PluginRun | None = None  # the plugins it runs (plugins/__init__.py); None for most requests
    server_tools: ServerTools | None = None  # the server tools it declares (servertools/); None for most requests
    cache: CacheRequest | None = None  # its use of the response cache (cache/); None for most requests
    reservation: Reservation | None = None
    rate: Any = None  # a rate-limited key's admission (accounting/ratelimit.py Ticket), corrected at settle
    started: float = field(default_factory=time.monotonic)
    arrived: float | None = None  # when its first byte came (monotonic), before auth and planning
    request_id: str | None = None  # X-Request-Id (observability/logs.py); the generation id by default
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def api_type(self) -> str:
        """The generation's `api_type`."""
        return "completions"

    @property
    def timeouts(self) -> Timeouts:
        s = self.st.settings
        return Timeouts(s.upstream_connect_timeout, s.upstream_first_byte_timeout, s.upstream_total_timeout)

    @property
    def deadline(self) -> float:
        return self.started + self.st.settings.request_deadline_seconds

    # -- money
    def reserve(self) -> Coroutine[Any, Any, None] | None:
        """Hold the request's worst case, or raise the GatewayError that refuses it. Returns what to
        await when the worker's lease of a shared budget must be topped up first (else None)."""
        ledger = self.st.ledger
        governed = budgets.for_key(self.st.governance, self.key)  # guardrails' and workspaces' budgets
        if not governed and not meter.enforced(ledger, self.key):  # the common case: no limit, no funded credit
            self.reservation = ledger.reserve((self.key.scope, INSTANCE), ZERO)
            return None
        candidates = self.plan.candidates
        # A BYOK candidate is charged its fee, and its full cost where a budget counts BYOK (accounting/byok.py).
        charged = byok_charges(self.st.settings.byok_fee_percent, self.key, governed) if self.plan.byok else None
        if charged is not None and charged.free and all(c.byok is not None for c in candidates):
            # Nothing any budget counts; still every budget's scope, whose byok_usage it adds to.
            self.reservation = ledger.reserve(meter.scopes_of(self.key, governed), ZERO)
            return None

        def pricing(c: Candidate) -> Pricing:
            return c.endpoint.pricing if c.byok is None or charged is None else charged.pricing(c.endpoint.pricing)

        dearest = max(candidates, key=lambda c: worst_case(*self._worst(c, pricing(c), whole=False)))
        exposure = max(worst_case(*self._worst(c, pricing(c), whole=True)) for c in candidates)
        admit = functools.partial(
            meter.reserve,
            ledger,
            self.key,
            *self._worst(dearest, pricing(dearest), whole=False),
            key_limit_status=self.st.settings.key_limit_status,
            exposure=exposure,
            leases=self.st.leases,
            governed=governed,
        )
        try:
            self.reservation = admit()
        except meter.TopUp as short:
            return self._top_up(admit, short)
        except GatewayError as refused:
            return self._own_keys_only(refused)
        return None

    def _worst(self, c: Candidate, pricing: Pricing, *, whole: bool) -> tuple[Pricing, int, int]:
        """The most `c` may cost, as (prices, prompt tokens, completion tokens): at the completion the
        request asks for, or (`whole`) at the most the endpoint can produce whatever it asks."""
        prompt_tokens = self.needs.prompt_tokens
        if not whole and (asked := self.req.completion_limit):
            return pricing, prompt_tokens, asked
        ctx = self.st.catalog.endpoint_context_length(c.model, c.endpoint)
        most = c.endpoint.max_completion_tokens or (
            max(1, ctx - prompt_tokens) if ctx else meter.DEFAULT_MAX_COMPLETION
        )
        return pricing, prompt_tokens, most

    def _own_keys_only(self, refused: GatewayError) -> Coroutine[Any, Any, None] | None:
        """Refused for money: the workspace's own (BYOK) keys may still serve it, for what they cost."""
        own = [c for c in self.plan.candidates if c.byok is not None]
        if not own or len(own) == len(self.plan.candidates):
            raise refused
        self.plan.candidates = own
        return self.reserve()

    async def _top_up(self, admit: Callable[..., Reservation], short: meter.TopUp) -> None:
        """Top up the lease that fell short (each bucket at most twice: the room a top-up made may be
        taken by requests admitted meanwhile), then admit within it or refuse."""
        assert self.st.leases is not None
        tries: Counter[Bucket] = Counter()
        while True:
            tries[short.bucket] += 1
            await self.st.leases.top_up(short.bucket, short.limit, short.minimum, short.want)
            try:
                self.reservation = admit(tried=[b for b, n in tries.items() if n >= TOP_UPS])
                return
            except meter.TopUp as again:
                short = again
            except GatewayError as refused:
                if (top_up := self._own_keys_only(refused)) is not None:
                    await top_up
                return

    def release(self) -> None:
        if self.reservation is not None:
            self.st.ledger.release(self.reservation)
            self.reservation = None

    def price(self, cand: Candidate, usage: Usage, finish_reason: str | None) -> Cost:
        """What `usage` costs at `cand`'s prices (a BYOK endpoint: the instance's fee)."""
        cost = compute(cand.endpoint.pricing, usage, finish_reason)
        if cand.byok is not None:  # the provider bills the workspace's key; the instance its fee
            cost = fee_cost(cost, self.st.settings.byok_fee_percent)
        return cost

    def settle(
        self,
        outcome: Outcome,
        usage: Usage,
        finish_reason: str | None,
        native_finish_reason: str | None,
        *,
        streamed: bool,
        cancelled: bool = False,
        upstream_id: str | None = None,
        first_token_at: float | None = None,
        completion: Any = None,
        error: dict[str, Any] | None = None,
    ) -> Cost:
        """Charge what the request cost, teach the router what it saw, and record the generation."""
        cand = outcome.candidate
        cost = self.price(cand, usage, finish_reason)
        if self.server_tools is not None:  # a server-tool loop's earlier steps, each at its own prices
            usage, cost = self.server_tools.with_prior(usage, cost)
        if self.plugins is not None and (fee := self.plugins.fee):  # searches, fetches ... (to the instance)
            cost = dataclasses.replace(cost, total=cost.total + fee, fees=fee)
        spend = None
        if self.reservation is not None:
            spend = self.st.ledger.settle(self.reservation, cost.total, byok_cost=cost.byok_usage)
            self.reservation = None
        if self.rate is not None:  # its real tokens against the key's tpm_limit
            self.st.rate_limits.settle(self.rate, usage.total_tokens)
        if cand.endpoint.pricing.is_free:  # the key's free-model requests today, for GET /key
            self.st.ledger.count(self.key.free_scope, "day")
        gen_seconds = (time.monotonic() - first_token_at) if first_token_at else None
        self._learn(outcome, usage, finish_reason, completion, first_token_at, gen_seconds, cancelled)
        row = self._row(cand, outcome.attempts, streamed=streamed, usage=usage, cost=cost, error=error)
        row.update(
            upstream_id=upstream_id,
            cancelled=cancelled,
            finish_reason=finish_reason,
            native_finish_reason=native_finish_reason,
            generation_time_ms=int(gen_seconds * 1000) if gen_seconds is not None else None,
            throughput=(usage.completion_tokens / gen_seconds) if gen_seconds else None,
        )
        fit(row, GENERATION_TEXT)  # what the client or the upstream sent must not fail the batch
        # Journaled before the caller sends the cost to the client (store/journal.py).
        self.st.recorder.record(row, self._content(completion), spend, self._timing(outcome.attempts,
                                outcome.first_byte_at, first_token_at))  # fmt: skip
        return cost

    def settle_hit(self, stored: dict[str, Any], price: Decimal, details: dict[str, Any]) -> Cost:
        """A response-cache hit (cache/): nothing was reserved and no upstream called; charged `price`
        alone, under every scope the request counts in, and recorded with billable counters 0."""
        cost = Cost(total=price, fees=price)
        ledger = self.st.ledger
        scopes = meter.scopes_of(self.key, budgets.for_key(self.st.governance, self.key))
        spend = ledger.settle(ledger.reserve(scopes, ZERO), price)
        if self.rate is not None:  # the request counts against rpm_limit, no token against tpm_limit
            self.st.rate_limits.settle(self.rate, 0)
        row = self._row(self.plan.candidates[0], [], streamed=self.req.stream, usage=Usage(), cost=cost, error=None)
        row.update(model=stored["model"], provider_name=stored["provider"], provider_slug=stored["slug"],
                   is_byok=False, finish_reason=stored["finish_reason"],
                   native_finish_reason=stored["native_finish_reason"], plugins=details)  # fmt: skip
        self.st.recorder.record(fit(row, GENERATION_TEXT), self._content(stored["message"]), spend, self._timing([]))
        return cost

    def failed(self, err: RouteFailed, *, streamed: bool) -> None:
        """Every attempt failed: nothing is charged, and the generation still lists the attempts."""
        self.release()
        if self.rate is not None:  # no tokens went anywhere: the prompt's estimate leaves the key's TPM
            self.st.rate_limits.settle(self.rate, 0)
        last = err.attempts[-1].candidate
        row = self._row(last, err.attempts, streamed=streamed, usage=Usage(), cost=Cost(total=ZERO),
                        error=err.body()["error"])  # fmt: skip
        row["finish_reason"] = "error"
        self.st.recorder.record(fit(row, GENERATION_TEXT), self._content(None), None, self._timing(err.attempts))

    def _timing(
        self, attempts: list[Attempt], first_byte: float | None = None, first_token: float | None = None
    ) -> Any:
        """The request's timestamps, for metrics and traces (observability/metrics.py Timing), if watched."""
        if self.st.recorder.watch is None:
            return None
        # Floats only (no attempt objects): the collector stops tracking such a tuple at its first pass.
        starts = tuple([a.started for a in attempts])
        return (self.arrived or self.started, starts, first_byte, first_token, time.monotonic())

    def _row(
        self,
        cand: Candidate,
        attempts: list[Attempt],
        *,
        streamed: bool,
        usage: Usage,
        cost: Cost,
        error: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The generation record's columns."""
        return {
            "id": self.gen_id,
            "request_id": self.request_id or self.gen_id,
            "key_hash": self.key.hash,
            "session_id": self.session,
            "upstream_id": None,
            "model": cand.model.id,
            "provider_name": cand.provider.name,
            "provider_slug": cand.endpoint.slug,
            "api_type": self.api_type,
            "streamed": streamed,
            "cancelled": False,
            "finish_reason": None,
            "native_finish_reason": None,
            "created_at": datetime.fromtimestamp(self.created, UTC),
            "latency_ms": int((time.monotonic() - self.started) * 1000),
            "generation_time_ms": None,
            "tokens_prompt": usage.prompt_tokens,
            "tokens_completion": usage.completion_tokens,
            "native_tokens_prompt": usage.prompt_tokens,
            "native_tokens_completion": usage.completion_tokens,
            "native_tokens_reasoning": usage.reasoning_tokens,
            "native_tokens_cached": usage.cached_tokens,
            "native_tokens_cache_write": usage.cache_write_tokens,
            "total_cost": cost.total,
            # What the provider bills the workspace's own key (only BYOK requests have one, as OpenRouter's).
            "upstream_inference_cost": cost.prompt + cost.completion if cost.is_byok else None,
            "cache_discount": cost.cache_discount,
            "is_byok": cand.byok is not None,
            "http_referer": self.referer,
            "app_title": self.title,
            "user_agent": self.user_agent,
            "external_user": self.req.user,
            "provider_responses": [a.record() for a in attempts],
            "error": error,
            "throughput": None,
            "preset_id": self.preset_id,
            "guardrail_actions": self.guardrail_actions,
            "workspace_id": self.key.workspace_id,  # the workspace the generation is attributed to
            "plugins": self.plugins.record() if self.plugins is not None else None,
        }

    def _learn(
        self,
        outcome: Outcome,
        usage: Usage,
        finish_reason: str | None,
        completion: Any,
        first_token_at: float | None,
        gen_seconds: float | None,
        cancelled: bool,
    ) -> None:
        """Feed the endpoint's measured stats and the session's sticky route."""
        routing = self.st.routing
        cand = outcome.candidate
        if finish_reason == "error":  # failed after its first byte: too late to fall back, not to learn
            routing.health.failed(cand.key)
            routing.stats.record_failure(cand.key)
            routing.sticky.forget(self.sticky_key)
            return
        attempt_started = outcome.attempts[-1].started if outcome.attempts else self.started
        ttft = (first_token_at or outcome.first_byte_at or time.monotonic()) - attempt_started
        if not cancelled:
            routing.stats.record_success(
                cand.key, ttft=ttft, tokens=usage.completion_tokens, generation_seconds=gen_seconds
            )
        if self.needs.tools and (valid := _tool_calls_valid(completion)) is not None:
            routing.stats.record_tool_call(cand.key, valid)
        prefs = self.req.provider
        stuck = routing.sticky.get(self.sticky_key)
        if stuck and any((a.candidate.model.id, a.candidate.endpoint.slug) == stuck for a in outcome.attempts[:-1]):
            routing.sticky.forget(self.sticky_key)  # its endpoint failed on the way: re-route next time
        # A named session sticks from its first success; an inferred one once the cache was hit.
        hit = self.session is not None or usage.cached_tokens > 0
        if hit and not (prefs and prefs.order) and caches(cand.endpoint):
            sticky_key = self.sticky_key or conversation_key(self.body.get("messages"))
            if sticky_key:
                routing.sticky.remember(sticky_key, cand.model.id, cand.endpoint.slug)

    def _content(self, completion: Any) -> dict[str, Any] | None:
        if not self.st.settings.log_prompts:
            return None
        prompt = self.body.get("messages") or self.body.get("prompt")
        return {"id": self.gen_id, "prompt": encode(prompt).decode(), "completion": encode(completion).decode()}

    def router_metadata(self, outcome: Outcome | None) -> dict[str, Any]:
        """`openrouter_metadata`, for clients that send `X-OpenRouter-Metadata: enabled`."""
        served = outcome.candidate if outcome else None
        attempts = outcome.attempts if outcome else []
        return {
            "requested": self.plan.requested[0],
            "strategy": self.plan.strategy,
            "region": None,
            "summary": (
                f"{served.model.id} via {served.provider.name} after {len(attempts)} attempt(s)"
                if served
                else "no endpoint answered"
            ),
            "attempt": len(attempts),
            "is_byok": served is not None and served.byok is not None,
            "endpoints": {
                "total": self.plan.total_endpoints,
                "available": [
                    {"provider": c.provider.name, "model": c.model.id, "selected": c is served}
                    for c in self.plan.candidates
                ],
            },
            "attempts": [
                {"provider": a.candidate.provider.name, "model": a.candidate.model.id, "status": a.status or 502}
                for a in attempts
            ],
        }
