"""The SSE answer of an inference endpoint: keep-alive, relay, in-band errors, cancellation.

The stream is produced as OpenRouter chat chunks; the client format's StreamEncoder frames each
(for chat, as it is)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from typing import TYPE_CHECKING, Any

from starlette.types import Receive, Scope, Send

from omnirouter.accounting.cost import Cost, Usage
from omnirouter.batched_writes import DIRECT_BODY, DirectBody
from omnirouter.errors import MASKED_500_MESSAGE, GatewayError
from omnirouter.formats.openai_chat import normalize_finish
from omnirouter.pipeline.answer import send_error
from omnirouter.pipeline.attempt import Outcome, RouteFailed, attempt, provider_error
from omnirouter.pipeline.call import Call, usage_of, usage_payload
from omnirouter.providers.base import StreamResult, UpstreamError
from omnirouter.routing.plan import Candidate
from omnirouter.servertools import loop as servertools_loop

if TYPE_CHECKING:
    from omnirouter.servertools.stream import Steps

KEEPALIVE = b": OPENROUTER PROCESSING\n\n"
_monotonic = time.monotonic  # per relayed chunk: one global lookup, not two
# Relayed bytes queued for a slow client past which the upstream is paused, so that a client that
# reads slowly holds the upstream back (through TCP) instead of growing the gateway's memory.
BACKLOG_LIMIT = 64 * 1024
SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


class KeepAlive:
    """One task per worker for every open stream (not one each): a few times per interval it sends
    `: OPENROUTER PROCESSING` to the streams that have been silent for the whole interval."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.streams: set[InferenceStream] = set()
        self.pending: set[asyncio.Task[None]] = set()
        self.task: asyncio.Task[None] | None = None

    def add(self, stream: InferenceStream) -> None:
        self.streams.add(stream)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._run())

    def discard(self, stream: InferenceStream) -> None:
        self.streams.discard(stream)

    async def _run(self) -> None:
        tick = self.interval / 4
        while self.streams:
            await asyncio.sleep(tick)
            now = time.monotonic()
            for stream in self.streams:
                if now - stream.last_write >= self.interval and not stream.keepalive_due:
                    stream.keepalive_due = True
                    task = asyncio.create_task(self._send(stream))
                    self.pending.add(task)
                    task.add_done_callback(self.pending.discard)

    @staticmethod
    async def _send(stream: InferenceStream) -> None:
        try:
            await stream.keepalive()
        finally:
            stream.keepalive_due = False


class InferenceStream:
    """The SSE answer, as a raw ASGI app so that nothing is committed before it has to be.

    Until the upstream answers, the status is still open: an error becomes a JSON answer with its
    own status. If the upstream stays silent for `stream_keepalive_seconds`, 200 is committed and
    `: OPENROUTER PROCESSING` comments keep the connection alive; from then on errors go in-band.
    """

    # Slots: an instance dict of this many attributes is a table of its own (~1.6 KB per open stream,
    # over the 30 keys Python shares between a class's instances); slots are ~0.3 KB.
    __slots__ = (
        "answer_headers",
        "backlog",
        "backlog_bytes",
        "call",
        "chars",
        "closed",
        "committed",
        "cut_by",
        "direct",
        "done",
        "draining",
        "encoder",
        "finish",
        "first_token_at",
        "images",
        "keepalive_due",
        "last_write",
        "lock",
        "main",
        "native",
        "native_finish",
        "outcome",
        "prefix",
        "pump",
        "send",
        "steps",
        "text",
        "upstream",
        "upstream_id",
        "usage",
    )

    def __init__(self, call: Call) -> None:
        self.call = call
        self.encoder = call.fmt.encoder(call.body)
        self.send: Send | None = None
        self.direct: DirectBody | None = None  # writes relayed events at once, where the server offers it
        self.backlog: list[bytes] = []  # relayed events that wait for send()
        self.backlog_bytes = 0
        self.upstream: StreamResult | None = None  # paused while the backlog is over BACKLOG_LIMIT
        self.pump: asyncio.Task[None] | None = None
        self.committed = False
        self.last_write = time.monotonic()
        self.lock: asyncio.Lock | None = None  # made when a write must wait for another (see _locked)
        self.keepalive_due = False
        self.closed = False  # the last body message went out
        self.finish: str | None = None
        self.native_finish: str | None = None
        self.usage: Usage | None = None
        self.chars = 0
        self.images = 0  # images the answer carried (delta.images), billed per image
        # The completion's text, for the generation's stored content or the response cache (cache/), or
        # for plugins' annotations to point into (plugins/web.py): only kept where it is used; a long
        # answer's pieces are otherwise most of what an open stream holds.
        keep = call.st.settings.log_prompts or call.cache is not None
        self.text: list[str] | None = [] if keep or (call.plugins is not None and call.plugins.annotations) else None
        self.first_token_at: float | None = None
        self.upstream_id: str | None = None
        self.outcome: Outcome | None = None  # the endpoint that answered
        self.native = False  # passed through: the upstream's events are relayed, its chunks only accounted
        self.draining = False  # a background task reads the upstream to the end, and settles
        self.prefix: dict[str, Any] = {
            "id": call.gen_id,
            "object": "chat.completion.chunk",
            "created": call.created,
            "model": call.plan.requested[0],
        }
        self.done = False
        self.answer_headers: list[tuple[bytes, bytes]] = []  # known once an endpoint has answered
        self.main: asyncio.Task[Any] | None = None  # the task answering, cancelled if the client leaves
        self.cut_by: GatewayError | None = None  # the server is stopping: end the answer with this
        self.steps: Steps | None = None  # the loop of a request with server tools (servertools/stream.py)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.send = send
        self.direct = direct = (scope.get("extensions") or {}).get(DIRECT_BODY)
        main = self.main = asyncio.current_task()
        assert main is not None
        watcher: asyncio.Task[None] | None = None
        if direct is not None:
            direct.watch(self._gone)  # the server calls it when the client disconnects: no task waits
        else:

            async def watch_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                self._gone()

            watcher = asyncio.create_task(watch_disconnect())
        keepalive = self.call.st.keepalive
        keepalive.add(self)
        try:
            await self._run()
        except asyncio.CancelledError:
            if self.done:
                raise
            main.uncancel()  # the cancel was ours (client gone, or cut), not the server's
            if self.cut_by is not None and self.outcome is None:  # cut before an endpoint answered
                await self._end_cut()
        finally:
            self.main = None
            if watcher is not None:
                watcher.cancel()
            elif direct is not None:
                direct.watch(None)
            keepalive.discard(self)
            if self.call.reservation is not None and not self.draining:
                self._stopped()

    def cut(self, err: GatewayError) -> None:
        """The server is stopping and this answer ran out of time: end it now, cleanly (an in-band
        `err`, the usage and cost of what was relayed, the end marker), billed for what was relayed."""
        if not self.done and self.main is not None and self.cut_by is None:
            self.cut_by = err
            self.main.cancel()

    async def _end_cut(self) -> None:
        """A cut before any endpoint answered: nothing was generated, nothing is billed."""
        assert self.cut_by is not None
        self.call.release()
        with contextlib.suppress(OSError):
            if not await self._error_before_commit(self.cut_by):
                await self._send_error_chunk(self.cut_by)
                await self._end()

    def _gone(self) -> None:
        """The client disconnected: stop the answer (the main task), unless it is already done."""
        if not self.done and self.main is not None:
            self.main.cancel()

    def _locked(self) -> asyncio.Lock:
        lock = self.lock
        if lock is None:
            lock = self.lock = asyncio.Lock()
        return lock

    async def _write(self, data: bytes, *, more: bool = True) -> None:
        if more and self.committed and not self.closed and (self.lock is None or not self.lock.locked()):
            # The common case, a relayed event: nothing to order it against. (A keep-alive comment
            # that starts meanwhile may go out before or after it; either order is valid SSE.)
            assert self.send is not None
            await self.send({"type": "http.response.body", "body": data, "more_body": True})
            self.last_write = time.monotonic()
            return
        async with self._locked():
            if self.closed:  # a keep-alive that lost the race with the last event
                return
            if not self.committed:
                await self._commit()
            assert self.send is not None
            self.closed = not more
            await self.send({"type": "http.response.body", "body": data, "more_body": more})
            self.last_write = time.monotonic()

    async def _commit(self) -> None:
        assert self.send is not None
        call = self.call
        headers = [
            *SSE_HEADERS,
            (b"x-generation-id", call.gen_id.encode()),
            (b"x-request-id", (call.request_id or call.gen_id).encode()),
            *self.answer_headers,
        ]
        if call.cache is not None:  # X-Omnirouter-Cache: miss (a hit never streams from here)
            headers += [(k.lower().encode(), v.encode()) for k, v in call.cache.headers().items()]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})
        self.committed = True

    async def keepalive(self) -> None:
        """Called by the worker's KeepAlive when this stream has been silent for its interval."""
        with contextlib.suppress(OSError):  # the client is gone; the main task handles that
            await self._write(KEEPALIVE)

    async def _attempt(self) -> Outcome:
        call = self.call
        debug = call.body.get("debug")
        # A chat feature (a chunk of chat's own shape): other formats' streams, passed through
        # ones above all, have no place for it.
        echo = call.fmt.name == "chat" and isinstance(debug, dict) and debug.get("echo_upstream_body") is True

        async def echo_body(cand: Candidate, body: dict[str, Any]) -> None:
            """debug.echo_upstream_body: one chunk per attempted endpoint with what it was sent."""
            chunk = {**self.prefix, "model": cand.model.id, "provider": cand.provider.name, "choices": [],
                     "debug": {"echo_upstream_body": body}}  # fmt: skip
            await self._write(self.encoder.chunk(chunk))

        return await attempt(
            call.st.routing, call.plan, call.body, call.timeouts, stream=True, deadline=call.deadline,
            on_attempt=echo_body if echo else None, ctx=call.ctx, passthrough=call.passthrough,
        )  # fmt: skip

    async def _error_before_commit(self, err: GatewayError) -> bool:
        """Answer with a plain JSON error if nothing was committed yet."""
        async with self._locked():
            if self.committed:
                return False
            assert self.send is not None
            self.committed = self.closed = self.done = True
            await send_error(self.send, self.call.fmt, err, self.call.gen_id, self.call.st.metrics)
            return True

    async def _run(self) -> None:
        call = self.call
        try:
            outcome = await self._attempt()
        except GatewayError as err:
            if isinstance(err, RouteFailed):
                call.failed(err, streamed=True)
            else:
                call.release()
            if not await self._error_before_commit(err):
                await self._send_error_chunk(err)
                await self._end()
            return
        except BaseException:
            call.release()
            raise
        assert outcome.stream is not None and outcome.first_chunk is not None
        self.outcome = outcome
        # Only a stream not yet committed (by a keep-alive or a debug echo) can still carry these.
        self.answer_headers = [(k.lower().encode(), v.encode()) for k, v in outcome.headers().items()]
        cand = outcome.candidate
        self.prefix.update(model=cand.model.id, provider=cand.provider.name)
        cancelled = False
        error: GatewayError | None = None
        stream = self.upstream = outcome.stream
        if outcome.passthrough:  # the upstream speaks the client's format: relay its events
            self.encoder = call.fmt.native_encoder(call.body)  # type: ignore[attr-defined]
            self.native = True
        outcome.body = {}  # the upstream request, not read again: not held for the stream's life
        if call.server_tools is not None:  # each step's server tool calls are the gateway's, not relayed
            from omnirouter.servertools.stream import Steps

            self.steps = Steps(self)
            outcome.first_chunk = self.steps.keep(outcome.first_chunk)
        try:
            await self._first(outcome)
            await stream.relay(self._relay if self.steps is None else self.steps.relay)
            await self._drained()
            if self.steps is not None:  # run the tools the model called, and stream the next steps
                error = await self.steps.run()
                outcome = self.outcome
        except UpstreamError as err:
            error = provider_error(err, cand)
            self.finish = "error"
            await self._drained()
        except asyncio.CancelledError:
            if self.cut_by is None:
                cancelled = True
                await self._cancelled(self.outcome)
                return
            # Cut at shutdown: the upstream is closed below; what was relayed is billed, and the
            # client still gets the cost and the end marker.
            assert self.main is not None
            self.main.uncancel()
            error = self.cut_by
            await self._drained()
        finally:
            outcome = self.outcome  # a server-tool loop's last step (else the same)
            if not cancelled:
                await outcome.stream.close()
        if self.cut_by is not None:
            cost = self._settle(outcome, cancelled=True, error=self.cut_by.body()["error"])
        else:
            cost = self._settle(outcome, cancelled=False, error=error.body()["error"] if error else None)
        if error is not None:
            await self._send_error_chunk(error)
        elif call.plugins is not None and (delta := call.plugins.stream_delta(call, "".join(self.text or ()))):
            await self._write(self.encoder.chunk({**self.prefix, "choices": [{"index": 0, "delta": delta,
                                                                              "finish_reason": None}]}))  # fmt: skip
        if call.cache is not None and error is None and self.cut_by is None:  # a complete answer is kept
            await call.cache.keep_stream(call, self, outcome.candidate.endpoint.slug)
        final: dict[str, Any] = {**self.prefix, "choices": [], "usage": usage_payload(self._usage(), cost)}
        if call.server_tools is not None:  # every step's tokens, and what the tools did
            servertools_loop.finish_usage(call, final["usage"])
        if call.metadata:
            final["openrouter_metadata"] = call.router_metadata(outcome)
        await self._write(self.encoder.chunk(final))
        await self._end()

    async def _first(self, outcome: Outcome) -> None:
        """Relay the chunk the attempt read, and let it go (a local of _run would hold it to the end)."""
        first, outcome.first_chunk = outcome.first_chunk, None
        if frame := self._frame(first):  # type: ignore[arg-type]
            await self._write(frame)

    async def _end(self) -> None:
        self.done = True
        await self._write(self.encoder.done(), more=False)

    def _relay(self, chunks: list[dict[str, Any]]) -> None:
        """Relay the chunks of one upstream read in one write. Called in the upstream connection's
        callback: written at once where the server allows it, else queued for send()."""
        if len(chunks) == 1 and not self.native:  # the usual read: one event (_frame inlined: a call less)
            chunk = chunks[0]
            if not self._account(chunk):
                return
            chunk.update(self.prefix)
            data = self.encoder.chunk(chunk)
        elif len(chunks) == 1:
            data = self._frame(chunks[0])
        else:
            data = b"".join([frame for chunk in chunks if (frame := self._frame(chunk)) is not None])
        if not data:
            return
        direct = self.direct
        if (
            direct is not None
            and self.committed
            and not self.backlog
            and (self.lock is None or not self.lock.locked())
            and direct.write(data)
        ):
            self.last_write = _monotonic()
            return
        self.backlog.append(data)
        self.backlog_bytes += len(data)
        if self.backlog_bytes > BACKLOG_LIMIT and self.upstream is not None:
            self.upstream.pause()
        if self.pump is None or self.pump.done():
            self.pump = asyncio.get_running_loop().create_task(self._pump())

    async def _pump(self) -> None:
        while self.backlog:
            data = b"".join(self.backlog)
            self.backlog.clear()
            self.backlog_bytes = 0
            await self._write(data)
        if self.upstream is not None:
            self.upstream.resume()  # the client took everything: read the upstream again

    async def _drained(self) -> None:
        """Wait until every relayed event went out."""
        if self.pump is not None:
            await self.pump

    def _frame(self, chunk: dict[str, Any]) -> bytes | None:
        """The SSE event relaying an upstream chunk, or None when there is nothing to relay."""
        if self.native:
            return self._frame_native(chunk)
        if self._account(chunk):
            chunk.update(self.prefix)
            return self.encoder.chunk(chunk) or None
        return None

    def _frame_native(self, chunk: dict[str, Any]) -> bytes | None:
        """A passed-through stream: the adapter's chunks are only accounted; its events are relayed."""
        event = chunk.get("native")
        if event is None:
            self._account(chunk)
            return None
        return self.encoder.native(event, self.prefix) or None  # type: ignore[attr-defined]

    def _account(self, chunk: dict[str, Any]) -> bool:
        """Note what a chunk carries (usage, text, finish reason); False if there is nothing to relay."""
        if not isinstance(chunk, dict):
            return False
        if self.upstream_id is None:
            self.upstream_id = chunk.get("id")
        raw_usage = chunk.pop("usage", None)
        if raw_usage is not None and (usage := usage_of(raw_usage)) is not None:
            self.usage = usage
        choices = chunk.get("choices")
        if not choices:
            return False  # the upstream's usage-only chunk: ours, with cost, is sent at the end
        for choice in choices:
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if len(delta) == 1 and content.__class__ is str:  # the common chunk: text and nothing else
                    if content:
                        self.chars += len(content)
                        if self.text is not None:
                            self.text.append(content)
                else:
                    self._count(delta)
            reason = choice.get("finish_reason")
            if reason is not None:
                # An adapter that translates a provider's own reason sends it beside the chat one.
                native = self.native_finish = choice.get("native_finish_reason") or reason
                self.finish = normalize_finish(reason)
                choice["finish_reason"] = self.finish
                choice["native_finish_reason"] = native
            else:
                choice.setdefault("finish_reason", None)
        if self.first_token_at is None and self.chars:
            self.first_token_at = time.monotonic()
        return True

    def _count(self, delta: dict[str, Any]) -> None:
        """The characters a delta generated: text, reasoning, refusal, tool call arguments."""
        for part in ("content", "reasoning", "reasoning_content", "refusal"):
            value = delta.get(part)
            if isinstance(value, str) and value:
                self.chars += len(value)
                if part == "content" and self.text is not None:
                    self.text.append(value)
        for tc in delta.get("tool_calls") or ():
            args = (tc.get("function") or {}).get("arguments")
            if isinstance(args, str):
                self.chars += len(args)
        if images := delta.get("images"):
            self.images += len(images)
        if self.call.cache is not None:  # what the response cache keeps beside the text
            self.call.cache.collect(delta)

    def _usage(self) -> Usage:
        """The upstream's usage when it sent one; otherwise an estimate of what was generated."""
        usage = self.usage or Usage(
            prompt_tokens=self.call.needs.prompt_tokens, completion_tokens=math.ceil(self.chars / 4)
        )
        return dataclasses.replace(usage, images=self.images) if self.images else usage

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
            completion={"role": "assistant", "content": "".join(self.text or ())},
            error=error,
        )

    def _stopped(self) -> None:
        """The answer stopped before it settled (the client left while an upstream error drained, a
        close that failed, a bug): bill what arrived, and above all free what the key holds."""
        if self.outcome is None:
            self.call.release()
        else:
            self._settle(self.outcome, cancelled=True)

    async def _send_error_chunk(self, err: GatewayError) -> None:
        """The in-band error event (behaviors §2.3): an upstream's 5xx is masked (message, provider
        code, raw body); the gateway's own availability verdict keeps its object and attempt list."""
        if (metrics := self.call.st.metrics) is not None:
            metrics.error(err)
        source = err.metadata or {}
        metadata: dict[str, Any] = {"error_type": source.get("error_type", "server")}
        if "previous_errors" in source:
            metadata["previous_errors"] = source["previous_errors"]
        if source.get("provider_code") and err.status < 500:
            metadata["provider_code"] = source["provider_code"]
        own_verdict = bool(err.extra and "availability" in err.extra)
        said = err.status < 500 or own_verdict or err is self.cut_by  # the gateway's own words
        error: dict[str, Any] = {
            "code": err.status,
            "message": err.message if said else MASKED_500_MESSAGE,
            "metadata": metadata,
        }
        if own_verdict:
            error["availability"] = err.extra["availability"]  # type: ignore[index]
        chunk = {
            **self.prefix,
            "error": error,
            "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
        }
        await self._write(self.encoder.chunk(chunk))

    async def _cancelled(self, outcome: Outcome) -> None:
        """The client went away. A provider that can abort stops now and bills what it generated;
        one that cannot keeps generating, so read it to the end in the background and bill all."""
        assert outcome.stream is not None
        self.backlog.clear()
        if self.pump is not None:
            self.pump.cancel()
        outcome.stream.resume()  # paused for the client that has gone: read to the end, or close
        if outcome.candidate.provider.can_abort:
            await outcome.stream.close()
            self._settle(outcome, cancelled=True)
            return

        def account(chunks: list[dict[str, Any]]) -> None:
            for chunk in chunks:
                self._account(chunk)

        async def drain() -> None:
            try:
                await outcome.stream.relay(account)
            except Exception:  # whatever stops it, bill what arrived
                pass
            finally:
                try:
                    await outcome.stream.close()
                finally:
                    self._settle(outcome, cancelled=True)

        task = asyncio.get_running_loop().create_task(drain())
        self.draining = True
        self.call.st.drains.add(task)
        task.add_done_callback(self.call.st.drains.discard)
