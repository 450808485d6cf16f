"""The operations beyond chat (embeddings, rerank, images, speech, transcription, video) on the same
pipeline as chat: auth, plan (provider preferences, fallbacks, BYOK, guardrails), reserve, attempt,
settle, record. What differs per operation is a `Modality` (src/omnirouter/modalities/): how its
request is read, which models serve it, what it may cost at most, how each upstream API is asked (its
`handlers`, by provider `api`), and how the answer goes back.

Money: each answer says what it consumed in `Units` (accounting/units.py), priced at the endpoint's
catalog prices; the worst case of the dearest candidate is reserved first, as for chat.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec
from starlette.types import Message, Receive, Scope, Send

from omnirouter.accounting.byok import fee_cost
from omnirouter.accounting.cost import Cost, Usage
from omnirouter.accounting.units import Units, priced
from omnirouter.api import auth, unavailable
from omnirouter.api.ids import generation_id
from omnirouter.catalog.catalog import split_variants
from omnirouter.catalog.types import Endpoint, Model, Pricing, Provider
from omnirouter.errors import MASKED_500_MESSAGE, GatewayError
from omnirouter.formats import openai_chat
from omnirouter.formats.openai_chat import CHAT, ChatRequest
from omnirouter.governance import byok_store
from omnirouter.observability.logs import request_id
from omnirouter.pipeline.answer import send_error
from omnirouter.pipeline.attempt import Outcome, RouteFailed, attempt
from omnirouter.pipeline.call import GENERATION_TEXT, Call
from omnirouter.pipeline.endpoint import read_body
from omnirouter.providers.answers import body_of
from omnirouter.providers.base import Timeouts, UpstreamContext, UpstreamError
from omnirouter.providers.http1 import Framer, Pool, Response, request_head, split_url
from omnirouter.providers.openai_compat import USER_AGENT
from omnirouter.routing.availability import availability_error
from omnirouter.routing.plan import Candidate, Needs
from omnirouter.state import AppState
from omnirouter.store.fit import fit

log = logging.getLogger("omnirouter")

ROUTING_FIELDS = ("model", "models", "provider", "user", "route")


@dataclass
class Upstream:
    """One attempt at one endpoint: where it goes, with which secret, within which timeouts."""

    pool: Pool
    provider: Provider
    endpoint: Endpoint  # `upstream_model` is the name the provider's API knows the model by
    timeouts: Timeouts
    api_key: str | None = dataclasses.field(default=None, repr=False)  # BYOK or the provider's; never logged

    def url(self, path: str) -> str:
        return self.provider.base_url.rstrip("/") + path

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        body: bytes = b"",
        stream: bool = False,
        framer: Framer | None = None,
    ) -> Response:
        """One request; returns once the answer's head is in (read it with providers/answers.py, or
        stream it: a 200 with `stream` and no `framer` is read as SSE). Authentication is the caller's."""
        origin, path = split_url(url)
        if self.provider.ca_file:
            origin = dataclasses.replace(origin, ca_file=self.provider.ca_file)
        head = {"User-Agent": USER_AGENT, **self.provider.headers, **(headers or {})}
        payload = b"%b%d\r\n\r\n%b" % (request_head(origin, method, path, head), len(body), body)
        return await self.pool.request(origin, payload, self.timeouts, stream=stream, framer=framer)

    async def json(self, method: str, url: str, payload: Any = None, *, headers: dict[str, str] | None = None) -> Any:
        """JSON in and out; an answer other than 200 raises its UpstreamError."""
        body = b"" if payload is None else msgspec.json.encode(payload)
        sent = {"Content-Type": "application/json", **(headers or {})} if payload is not None else headers
        raw = await body_of(await self.send(method, url, headers=sent, body=body))
        try:
            return msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise UpstreamError(
                "Upstream sent a response that is not valid JSON",
                status=502,
                raw=raw[:2000].decode(errors="replace"),
                kind="protocol",
            ) from None


class Answered(Protocol):
    units: Units  # what the answer consumed, priced at the endpoint's prices
    # and, optionally, `upstream_id`: the provider's id of the answer, kept on the generation


Handler = Callable[[Upstream, dict[str, Any]], Awaitable[Any]]  # -> an answer with `.units`


class Modality(Protocol):
    name: str  # "embeddings", "rerank", "images", "speech", "transcriptions", "videos"
    api_type: str  # the generation's api_type: embeddings | rerank | image | tts | stt | video
    handlers: Mapping[str, Handler]  # by provider `api`

    def serves(self, model: Model) -> bool:
        """Whether the model may be planned for this operation."""
        ...

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """The validated request, keeping the routing fields (model, models, provider, user) as sent;
        GatewayError for bad input."""
        ...

    def worst_case(self, request: dict[str, Any], cand: Candidate) -> Units:
        """The most the request may consume at this candidate: what is reserved."""
        ...

    async def respond(self, call: ModalityCall, answer: Any, send: Send) -> None:
        """Settle (`call.settle(answer)`) and then send the client its answer."""
        ...


@dataclass
class ModalityCall(Call):
    """One request of an operation beyond chat: chat's reservation, attempts and generation record,
    priced by `Units` instead of tokens."""

    modality: Modality = None  # type: ignore[assignment]
    outcome: Outcome | None = None

    @property
    def api_type(self) -> str:
        return self.modality.api_type

    def _worst(self, c: Candidate, pricing: Pricing, *, whole: bool) -> tuple[Pricing, int, int]:
        """Priced per unit, not per token: the worst case as a price per request."""
        return Pricing(request=priced(pricing, self.modality.worst_case(self.body, c)).total), 0, 0

    async def attempt_one(self, cand: Candidate, timeouts: Timeouts, ctx: UpstreamContext | None) -> Any:
        creds = ctx.credentials.api_key if ctx is not None else None
        assert self.st.http is not None
        upstream = Upstream(self.st.http, cand.provider, cand.endpoint, timeouts, creds or cand.provider.api_key)
        return await self.modality.handlers[cand.provider.api](upstream, self.body)

    def settle(self, answer: Answered) -> Cost:  # type: ignore[override]
        """Charge what the answer consumed, teach the router, and record the generation (once)."""
        outcome = self.outcome
        assert outcome is not None and self.reservation is not None, "settled once, after an answer"
        cand, units = outcome.candidate, answer.units
        cost = priced(cand.endpoint.pricing, units)
        if cand.byok is not None:  # the provider bills the workspace's key; the instance its fee
            cost = fee_cost(cost, self.st.settings.byok_fee_percent)
        spend = self.st.ledger.settle(self.reservation, cost.total, byok_cost=cost.byok_usage)
        self.reservation = None
        tokens = units.input_tokens + units.output_tokens
        if self.rate is not None:
            self.st.rate_limits.settle(self.rate, tokens)
        if cand.endpoint.pricing.is_free:
            self.st.ledger.count(self.key.free_scope, "day")
        started = outcome.attempts[-1].started if outcome.attempts else self.started
        self.st.routing.stats.record_success(
            cand.key, ttft=(outcome.first_byte_at or time.monotonic()) - started, tokens=units.output_tokens,
            generation_seconds=None,
        )  # fmt: skip
        usage = Usage(prompt_tokens=units.input_tokens, completion_tokens=units.output_tokens)
        row = self._row(cand, outcome.attempts, streamed=False, usage=usage, cost=cost, error=None)
        row.update(finish_reason="stop", native_finish_reason="stop", upstream_id=getattr(answer, "upstream_id", None))
        timing = self._timing(outcome.attempts, outcome.first_byte_at)
        self.st.recorder.record(fit(row, GENERATION_TEXT), None, spend, timing)
        return cost


class ModalityEndpoint:
    """`POST` of one operation beyond chat, as a raw ASGI app (errors in OpenRouter's envelope)."""

    def __init__(self, modality: Modality) -> None:
        self.modality = modality

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        st: AppState = scope["app"].state.omni
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        arrived = time.monotonic()
        gen_id = generation_id()
        rid = request_id(headers, gen_id)  # for the logs, the answer's X-Request-Id and the generation
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            if not started and not any(k == b"x-request-id" for k, _ in message.get("headers", ())):
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", rid.encode())]
            started = True
            await send(message)

        try:
            limit = getattr(self.modality, "max_body_bytes", None)
            raw = await read_body(receive, headers, limit(st.settings) if limit else st.settings.max_body_bytes)
            call = await self._admit(st, headers, raw, gen_id)
            call.arrived, call.request_id = arrived, rid
            del raw
            try:
                call.outcome = await attempt(
                    st.routing, call.plan, call.body, call.timeouts, stream=False, deadline=call.deadline,
                    send=call.attempt_one,
                )  # fmt: skip
                await self.modality.respond(call, call.outcome.response, tracked)
            except RouteFailed as err:
                call.failed(err, streamed=False)
                raise
            finally:
                call.release()  # settled by now unless something failed: never leave the key's money held
        except GatewayError as err:
            if not started:
                await send_error(send, CHAT, err, gen_id, st.metrics)
            return
        except Exception as exc:
            if not started and (answer := unavailable.answer(st, exc)) is not None:
                await send_error(send, CHAT, answer, gen_id, st.metrics)
                return
            log.exception("unhandled error on POST %s", scope["path"])
            if not started:
                await send_error(send, CHAT, GatewayError(500, MASKED_500_MESSAGE), gen_id, st.metrics)

    async def _admit(self, st: AppState, h: Mapping[str, str], raw: bytes, gen_id: str) -> ModalityCall:
        """Who, what, where to, and whether it can be paid for, as chat's `_admit` (pipeline/endpoint.py)."""
        m = self.modality
        key = await auth.inference_caller(st, h)
        body = m.parse(raw, h)
        try:
            req = msgspec.convert({k: body[k] for k in ROUTING_FIELDS if k in body}, ChatRequest)
        except msgspec.ValidationError as exc:
            raise GatewayError(400, f"Invalid request: {exc}") from None
        if not req.model and not req.models:
            raise GatewayError(400, "model is required")
        if req.provider is not None and req.provider.max_price is not None:
            openai_chat.check_max_price(req.provider.max_price)
        for model_id in [req.model] if req.model else req.models or []:
            base, _ = split_variants(model_id)
            model = st.catalog.model(base)
            if model is not None and not m.serves(model):
                raise GatewayError(400, f"{model_id} does not support {m.name}")
        byok = st.governance.get("byok")
        keyless = zdr = byok_store.NONE
        if byok is not None:
            keyless, zdr = byok_store.routing_sets(byok, key, req, st.catalog)
        needs = Needs(params=set(), prompt_tokens=0, completion_limit=None, serves=m.serves)
        plan = st.routing.planner.plan(req, needs, byok_providers=keyless, byok_zdr=zdr)
        plan.candidates = [c for c in plan.candidates if c.provider.api in m.handlers]
        if not plan.candidates:
            raise availability_error(
                "no_endpoints", f"No configured provider serves {m.name} for {', '.join(plan.requested)}",
                plan.requested,
            )  # fmt: skip
        guarded = None  # guardrails: models, providers, data policy (and content, where the body has text)
        guardrails = st.governance.get("guardrails")
        if guardrails is not None and (policy := guardrails.policy(key)) is not None:
            guarded = policy.enforce(body, plan, st.catalog)
        if byok is not None:
            byok_store.apply(byok, plan, key, req)
        call = ModalityCall(
            st, CHAT, gen_id, key, req, body, plan, needs, prompt_chars=len(raw),
            session=h.get("x-session-id"),  # for grouping only (behaviors: header-only beyond chat)
            referer=h.get("http-referer"), title=h.get("x-openrouter-title") or h.get("x-title"),
            user_agent=h.get("user-agent"), guardrail_actions=guarded, modality=m,
        )  # fmt: skip
        if key.rpm_limit or key.tpm_limit:
            call.rate = await st.rate_limits.admit(key, 0)
        try:
            if (top_up := call.reserve()) is not None:
                await top_up
        except GatewayError:
            if call.rate is not None:
                st.rate_limits.settle(call.rate, 0)
            raise
        return call
