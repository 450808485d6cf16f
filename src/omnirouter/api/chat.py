"""POST /chat/completions: auth, decode, plan, reserve, attempt, relay, settle, record."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.types import Receive, Scope, Send

from omnirouter.accounting import meter
from omnirouter.accounting.cost import Cost, Usage, compute, worst_case
from omnirouter.accounting.ledger import Reservation
from omnirouter.api import auth
from omnirouter.api.errors import MASKED_500_MESSAGE, ApiError
from omnirouter.api.ids import generation_id
from omnirouter.api.jsonio import JSONResponse, decode, encode, money
from omnirouter.formats import openai_chat
from omnirouter.formats.openai_chat import ChatRequest, normalize_finish
from omnirouter.governance.keys import KeyRecord
from omnirouter.providers.base import Timeouts, UpstreamError
from omnirouter.routing.attempt import Outcome, attempt, provider_error
from omnirouter.routing.plan import Candidate, plan, requested_models
from omnirouter.state import AppState, state

KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
DONE = b"data: [DONE]\n\n"
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body is larger than the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"Request body is larger than the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def estimate_tokens(chars: int) -> int:
    return max(1, math.ceil(chars / 4))


@dataclass
class Call:
    """One chat request on its way through the gateway."""

    st: AppState
    gen_id: str
    key: KeyRecord
    req: ChatRequest
    body: dict[str, Any]
    requested: list[str]
    candidates: list[Candidate]
    prompt_chars: int
    reservation: Reservation | None = None
    started: float = field(default_factory=time.monotonic)
    created: int = field(default_factory=lambda: int(time.time()))
    referer: str | None = None
    title: str | None = None
    user_agent: str | None = None
    session_id: str | None = None

    # -- money
    def reserve(self) -> None:
        s = self.st.settings
        prompt_tokens = estimate_tokens(self.prompt_chars)

        def max_out(c: Candidate) -> int:
            if self.req.completion_limit:
                return self.req.completion_limit
            ctx = self.st.catalog.endpoint_context_length(c.model, c.endpoint)
            return c.endpoint.max_completion_tokens or (
                max(1, ctx - prompt_tokens) if ctx else meter.DEFAULT_MAX_COMPLETION
            )

        dearest = max(self.candidates, key=lambda c: worst_case(c.endpoint.pricing, prompt_tokens, max_out(c)))
        self.reservation = meter.reserve(
            self.st.ledger,
            self.key,
            dearest.endpoint.pricing,
            prompt_tokens,
            max_out(dearest),
            key_limit_status=s.key_limit_status,
        )

    def release(self) -> None:
        if self.reservation is not None:
            self.st.ledger.release(self.reservation)
            self.reservation = None

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
        cand = outcome.candidate
        cost = compute(cand.endpoint.pricing, usage, finish_reason)
        if self.reservation is not None:
            self.st.ledger.settle(self.reservation, cost.total)
            self.reservation = None
        now = time.monotonic()
        gen_ms = int((now - first_token_at) * 1000) if first_token_at else None
        self.st.recorder.record(
            {
                "id": self.gen_id,
                "request_id": self.gen_id,
                "key_hash": self.key.hash,
                "session_id": self.session_id,
                "upstream_id": upstream_id,
                "model": cand.model.id,
                "provider_name": cand.provider.name,
                "provider_slug": cand.endpoint.slug,
                "api_type": "completions",
                "streamed": streamed,
                "cancelled": cancelled,
                "finish_reason": finish_reason,
                "native_finish_reason": native_finish_reason,
                "created_at": _utc(self.created),
                "latency_ms": int((now - self.started) * 1000),
                "generation_time_ms": gen_ms,
                "tokens_prompt": usage.prompt_tokens,
                "tokens_completion": usage.completion_tokens,
                "native_tokens_prompt": usage.prompt_tokens,
                "native_tokens_completion": usage.completion_tokens,
                "native_tokens_reasoning": usage.reasoning_tokens,
                "native_tokens_cached": usage.cached_tokens,
                "native_tokens_cache_write": usage.cache_write_tokens,
                "total_cost": cost.total,
                "upstream_inference_cost": None,
                "cache_discount": cost.cache_discount,
                "is_byok": False,
                "http_referer": self.referer,
                "app_title": self.title,
                "user_agent": self.user_agent,
                "external_user": self.req.user,
                "provider_responses": [a.record() for a in outcome.attempts],
                "error": error,
                "throughput": (usage.completion_tokens / (gen_ms / 1000)) if gen_ms else None,
            },
            self._content(completion),
        )
        return cost

    def _content(self, completion: Any) -> dict[str, Any] | None:
        if not self.st.settings.log_prompts:
            return None
        prompt = self.body.get("messages", self.body.get("prompt"))
        return {
            "id": self.gen_id,
            "prompt": encode(prompt).decode(),
            "completion": encode(completion).decode(),
        }


def _utc(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


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
        "is_byok": False,
        "cost_details": {
            "upstream_inference_cost": money(cost.prompt + cost.completion),
            "upstream_inference_prompt_cost": money(cost.prompt),
            "upstream_inference_completions_cost": money(cost.completion),
        },
    }


def _timeouts(st: AppState) -> Timeouts:
    s = st.settings
    return Timeouts(s.upstream_connect_timeout, s.upstream_first_byte_timeout, s.upstream_total_timeout)


async def _attempt(call: Call, *, stream: bool) -> Outcome:
    st = call.st
    return await attempt(
        call.candidates,
        call.body,
        st.extras["adapters"],
        st.extras["health"],
        _timeouts(st),
        stream=stream,
        requested=call.requested,
    )


async def chat_completions(request: Request) -> Any:
    gen_id = generation_id()
    try:
        call = await _admit(request, gen_id)
        if call.req.stream:
            return ChatStream(call)
        try:
            outcome = await _attempt(call, stream=False)
        except BaseException:
            call.release()
            raise
    except ApiError as err:  # every chat answer names its generation, errors included
        err.headers = {**(err.headers or {}), "X-Generation-Id": gen_id}
        raise
    return JSONResponse(_finish_completion(call, outcome), headers={"X-Generation-Id": gen_id})


async def _admit(request: Request, gen_id: str) -> Call:
    """Everything before the upstream: who, what, where to, and whether it can be paid for."""
    st = state(request)
    key = await auth.inference_key(request)
    raw = await read_body(request, st.settings.max_body_bytes)
    try:
        body = decode(raw)
    except Exception:
        raise ApiError(400, "Invalid JSON in request body") from None
    req = openai_chat.parse(body)
    candidates = plan(
        st.catalog,
        req,
        openai_chat.requested_parameters(body),
        st.extras["health"],
        default_model=st.settings.default_model,
    )
    h = request.headers
    call = Call(
        st,
        gen_id,
        key,
        req,
        body,
        requested_models(req, st.settings.default_model),
        candidates,
        prompt_chars=len(raw),
        referer=h.get("http-referer"),
        title=h.get("x-openrouter-title") or h.get("x-title"),
        user_agent=h.get("user-agent"),
        session_id=req.session_id or h.get("x-session-id"),
    )
    call.reserve()
    return call


def _finish_completion(call: Call, outcome: Outcome) -> dict[str, Any]:
    """Shape the upstream answer as OpenRouter's, and settle and record it."""
    data = outcome.response or {}
    cand = outcome.candidate
    upstream_id = data.get("id")
    choices = data.get("choices") or []
    finish = native = None
    for choice in choices:
        native = choice.get("finish_reason")
        finish = normalize_finish(native)
        choice["finish_reason"] = finish
        choice["native_finish_reason"] = native
        choice.setdefault("logprobs", None)
    usage = usage_of(data.get("usage"))
    if usage is None:  # an upstream that reports no usage: estimate, so nothing goes unbilled
        text = "".join(str((c.get("message") or {}).get("content") or "") for c in choices)
        usage = Usage(prompt_tokens=estimate_tokens(call.prompt_chars), completion_tokens=estimate_tokens(len(text)))
    cost = call.settle(
        outcome,
        usage,
        finish,
        native,
        streamed=False,
        upstream_id=upstream_id,
        completion=[c.get("message") for c in choices],
    )
    data["id"] = call.gen_id
    data["object"] = "chat.completion"
    data["created"] = call.created
    data["model"] = cand.model.id
    data["provider"] = cand.provider.name
    data.setdefault("system_fingerprint", None)
    data["usage"] = usage_payload(usage, cost)
    return data


class ChatStream:
    """The SSE answer, as a raw ASGI app so that nothing is committed before it has to be.

    Until the upstream answers, the status is still open: an error becomes a JSON answer with its
    own status. If the upstream stays silent for `stream_keepalive_seconds`, 200 is committed and
    `: OPENROUTER PROCESSING` comments keep the connection alive; from then on errors go in-band.
    """

    def __init__(self, call: Call) -> None:
        self.call = call
        self.send: Send | None = None
        self.committed = False
        self.last_write = time.monotonic()
        self.lock = asyncio.Lock()
        self.finish: str | None = None
        self.native_finish: str | None = None
        self.usage: Usage | None = None
        self.chars = 0
        self.text: list[str] = []
        self.first_token_at: float | None = None
        self.upstream_id: str | None = None
        self.prefix: dict[str, Any] = {
            "id": call.gen_id,
            "object": "chat.completion.chunk",
            "created": call.created,
            "model": call.requested[0],
        }
        self.done = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.send = send
        main = asyncio.current_task()
        assert main is not None

        async def watch_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            if not self.done:
                main.cancel()

        watcher = asyncio.create_task(watch_disconnect())
        keepalive = asyncio.create_task(self._keepalive())
        try:
            await self._run()
        except asyncio.CancelledError:
            if self.done:
                raise
            main.uncancel()  # the cancel was ours (client gone), not the server's
        finally:
            watcher.cancel()
            keepalive.cancel()

    async def _write(self, data: bytes, *, more: bool = True) -> None:
        async with self.lock:
            if not self.committed:
                await self._commit()
            assert self.send is not None
            await self.send({"type": "http.response.body", "body": data, "more_body": more})
            self.last_write = time.monotonic()

    async def _commit(self) -> None:
        assert self.send is not None
        headers = [*SSE_HEADERS, (b"x-generation-id", self.call.gen_id.encode())]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})
        self.committed = True

    async def _keepalive(self) -> None:
        interval = self.call.st.settings.stream_keepalive_seconds
        with contextlib.suppress(OSError):  # the client is gone; the main task handles that
            while True:
                await asyncio.sleep(max(0.0, self.last_write + interval - time.monotonic()))
                if time.monotonic() - self.last_write >= interval:
                    await self._write(KEEPALIVE)

    async def _error_before_commit(self, err: ApiError) -> bool:
        """Answer with a plain JSON error if nothing was committed yet."""
        async with self.lock:
            if self.committed:
                return False
            assert self.send is not None
            response = err.response()
            response.headers["x-generation-id"] = self.call.gen_id
            self.committed = True
            self.done = True
            await response({"type": "http"}, _no_receive, self.send)
            return True

    async def _run(self) -> None:
        call = self.call
        try:
            outcome = await _attempt(call, stream=True)
        except ApiError as err:
            call.release()
            if not await self._error_before_commit(err):
                await self._send_error_chunk(err)
                await self._end()
            return
        except BaseException:
            call.release()
            raise
        assert outcome.stream is not None and outcome.first_chunk is not None
        cand = outcome.candidate
        self.prefix.update(model=cand.model.id, provider=cand.provider.name)
        cancelled = False
        error: ApiError | None = None
        try:
            await self._relay(outcome.first_chunk)
            async for chunk in outcome.stream.chunks:
                await self._relay(chunk)
        except UpstreamError as err:
            error = provider_error(err, cand)
            self.finish = "error"
        except asyncio.CancelledError:
            cancelled = True
            await self._cancelled(outcome)
            return
        finally:
            if not cancelled:
                await outcome.stream.close()
        cost = self._settle(outcome, cancelled=False, error=error.body()["error"] if error else None)
        if error is not None:
            await self._send_error_chunk(error)
        await self._write(
            b"data: " + encode({**self.prefix, "choices": [], "usage": usage_payload(self._usage(), cost)}) + b"\n\n"
        )
        await self._end()

    async def _end(self) -> None:
        self.done = True
        await self._write(DONE, more=False)

    async def _relay(self, chunk: dict[str, Any]) -> None:
        if self._account(chunk):
            chunk.update(self.prefix)
            await self._write(b"data: " + encode(chunk) + b"\n\n")

    def _account(self, chunk: dict[str, Any]) -> bool:
        """Note what a chunk carries (usage, text, finish reason); False if there is nothing to relay."""
        if not isinstance(chunk, dict):
            return False
        if self.upstream_id is None:
            self.upstream_id = chunk.get("id")
        usage = usage_of(chunk.pop("usage", None))
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices")
        if not choices:
            return False  # the upstream's usage-only chunk: ours, with cost, is sent at the end
        for choice in choices:
            delta = choice.get("delta") or {}
            for part in ("content", "reasoning", "reasoning_content", "refusal"):
                value = delta.get(part)
                if isinstance(value, str) and value:
                    self.chars += len(value)
                    if part == "content":
                        self.text.append(value)
            for tc in delta.get("tool_calls") or ():
                args = (tc.get("function") or {}).get("arguments")
                if isinstance(args, str):
                    self.chars += len(args)
            native = choice.get("finish_reason")
            if native is not None:
                self.native_finish = native
                self.finish = normalize_finish(native)
                choice["finish_reason"] = self.finish
                choice["native_finish_reason"] = native
            else:
                choice.setdefault("finish_reason", None)
        if self.first_token_at is None and self.chars:
            self.first_token_at = time.monotonic()
        return True

    def _usage(self) -> Usage:
        """The upstream's usage when it sent one; otherwise an estimate of what was generated."""
        if self.usage is not None:
            return self.usage
        completion = math.ceil(self.chars / 4)
        return Usage(prompt_tokens=estimate_tokens(self.call.prompt_chars), completion_tokens=completion)

    def _settle(self, outcome: Outcome, *, cancelled: bool, error: dict[str, Any] | None = None) -> Cost:
        return self.call.settle(
            outcome,
            self._usage(),
            self.finish,
            self.native_finish,
            streamed=True,
            cancelled=cancelled,
            upstream_id=self.upstream_id,
            first_token_at=self.first_token_at,
            completion={"role": "assistant", "content": "".join(self.text)},
            error=error,
        )

    async def _send_error_chunk(self, err: ApiError) -> None:
        """The in-band error event (behaviors §2.3): a 5xx's message is masked."""
        metadata: dict[str, Any] = {"error_type": (err.metadata or {}).get("error_type", "server")}
        provider_code = (err.metadata or {}).get("provider_code")
        if provider_code and err.status < 500:
            metadata["provider_code"] = provider_code
        chunk = {
            **self.prefix,
            "error": {
                "code": err.status,
                "message": err.message if err.status < 500 else MASKED_500_MESSAGE,
                "metadata": metadata,
            },
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }
        await self._write(b"data: " + encode(chunk) + b"\n\n")

    async def _cancelled(self, outcome: Outcome) -> None:
        """The client went away. A provider that can abort stops now and bills what it generated;
        one that cannot keeps generating, so read it to the end in the background and bill all."""
        assert outcome.stream is not None
        if outcome.candidate.provider.can_abort:
            await outcome.stream.close()
            self._settle(outcome, cancelled=True)
            return

        async def drain() -> None:
            try:
                async for chunk in outcome.stream.chunks:
                    self._account(chunk)
            except Exception:  # whatever stops it, bill what arrived
                pass
            finally:
                await outcome.stream.close()
                self._settle(outcome, cancelled=True)

        task = asyncio.get_running_loop().create_task(drain())
        self.call.st.extras.setdefault("drains", set()).add(task)
        task.add_done_callback(self.call.st.extras["drains"].discard)


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}
