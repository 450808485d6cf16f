"""The server-tool loop of a streamed answer (pipeline/stream.py): each step's text is relayed as
it comes; the server tool calls' deltas, the steps' own finish reasons and usage are kept back; the
tools run, and the next step continues the same stream. One usage chunk ends it, as always."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnirouter.accounting.cost import Usage
from omnirouter.errors import GatewayError
from omnirouter.pipeline.attempt import RouteFailed, attempt
from omnirouter.pipeline.call import estimate_tokens, usage_of
from omnirouter.servertools import loop

if TYPE_CHECKING:
    from omnirouter.pipeline.stream import InferenceStream


class Steps:
    """One stream's loop: what the current step's chunks carried, and the messages of the next."""

    __slots__ = ("body", "calls", "chars", "finish", "last", "stream", "text", "usage")

    def __init__(self, stream: InferenceStream) -> None:
        self.stream = stream
        self.body = loop.step_body(stream.call)
        self.last = False
        self._step()

    def _step(self) -> None:
        self.calls: dict[int, dict[str, Any]] = {}  # index -> {"id", "type", "function": {name, arguments}}
        self.usage: Usage | None = None
        self.finish: str | None = None
        self.text: list[str] = []
        self.chars = 0

    # -- filtering one step's chunks
    def keep(self, chunk: Any) -> Any:
        """The chunk as the client gets it (None: nothing left to relay)."""
        if not isinstance(chunk, dict):
            return chunk
        raw = chunk.pop("usage", None)
        if raw is not None:
            self.usage = usage_of(raw) or self.usage
        st = self.stream.call.server_tools
        assert st is not None
        choices = chunk.get("choices")
        if not choices:
            return None
        for choice in choices:
            delta = choice.get("delta") or {}
            if isinstance(content := delta.get("content"), str) and content:
                self.text.append(content)
                self.chars += len(content)
            if fragments := delta.get("tool_calls"):
                kept = []
                for frag in fragments:
                    index = frag.get("index", 0)
                    entry = self.calls.setdefault(index, {"id": "", "type": "function",
                                                          "function": {"name": "", "arguments": ""}})  # fmt: skip
                    fn = frag.get("function") or {}
                    if frag.get("id"):
                        entry["id"] = frag["id"]
                    if fn.get("name"):
                        entry["function"]["name"] += fn["name"]
                    if isinstance(fn.get("arguments"), str):
                        entry["function"]["arguments"] += fn["arguments"]
                        self.chars += len(fn["arguments"])
                    if entry["function"]["name"] not in st.tools:
                        kept.append(frag)
                if kept:
                    delta["tool_calls"] = kept
                else:
                    del delta["tool_calls"]
            if (reason := choice.get("finish_reason")) is not None:
                self.finish = reason
                server, own = loop.split_calls(st, list(self.calls.values()))
                if server and not own:
                    if self.last:  # the last turn called a tool all the same: its calls are not run
                        choice["finish_reason"] = choice["native_finish_reason"] = "stop"
                    else:  # the loop goes on: not the answer's end
                        choice["finish_reason"] = None
                        choice.pop("native_finish_reason", None)
        if all(not c.get("delta") and c.get("finish_reason") is None for c in choices):
            return None
        return chunk

    def relay(self, chunks: list[Any]) -> None:
        """The stream's relay callback for a loop's step."""
        kept = [c for chunk in chunks if (c := self.keep(chunk)) is not None]
        if kept:
            self.stream._relay(kept)

    # -- between steps
    async def run(self) -> GatewayError | None:
        """After a step's stream ended: run the server tools it called and stream the next step,
        until a step ends the loop. `stream.outcome` is the last step's, `stream.usage` its usage.
        Returns the error that ended the loop when a later step found no endpoint (the steps before
        are billed)."""
        s = self.stream
        call = s.call
        st = call.server_tools
        assert st is not None
        while True:
            outcome = s.outcome
            assert outcome is not None
            st.steps += 1
            server, own = loop.split_calls(st, [self.calls[i] for i in sorted(self.calls)])
            usage = self.usage or Usage(prompt_tokens=call.needs.prompt_tokens,
                                        completion_tokens=estimate_tokens(self.chars))  # fmt: skip
            step_cost = call.price(outcome.candidate, usage, self.finish)
            if self.last or not server or own or not loop.affordable(call, st.spent() + step_cost.total):
                s.usage = usage
                if server and not own and not self.last:  # the loop stops here: the answer ends now
                    s.finish = s.native_finish = "stop"
                    end = {"index": 0, "delta": {}, "finish_reason": "stop", "native_finish_reason": "stop"}
                    await s._write(s.encoder.chunk({**s.prefix, "choices": [end]}))
                outcome.attempts[:0] = st.attempts
                return None
            st.add_step(usage, step_cost)
            st.attempts.extend(outcome.attempts)
            s.chars = 0  # what a cancel bills from here on is the next step's (this one is added up)
            text = "".join(self.text)
            if text:
                st.texts.append(text)
            await outcome.stream.close()  # type: ignore[union-attr]
            self.body["messages"].append(loop.assistant_turn(text, server))
            made = await loop.run_calls(call, server, self.body["messages"])
            if call.fmt.name != "chat":  # the Responses and Messages streams show what ran
                for item in made:
                    await s._write(s.encoder.chunk({**s.prefix, "choices": [], "server_tool_item": item}))
            if loop.stops(st, self.finish, {str(c["function"]["name"]) for c in server}):
                self.last = True
                self.body["tool_choice"] = "none"
            self._step()
            try:
                nxt = await attempt(
                    call.st.routing, call.plan, self.body, call.timeouts, stream=True, deadline=call.deadline,
                    ctx=call.ctx,
                )  # fmt: skip
            except RouteFailed as err:  # billed: the steps before; this one is an error that cost nothing
                outcome.attempts = [*st.attempts, *err.attempts]  # (st.attempts has this outcome's)
                s.usage, s.finish, s.native_finish = Usage(), "error", "error"
                return err
            s.outcome = nxt
            s.upstream = nxt.stream
            nxt.body = {}
            s.prefix.update(model=nxt.candidate.model.id, provider=nxt.candidate.provider.name)
            first, nxt.first_chunk = nxt.first_chunk, None
            self.relay([first])
            await nxt.stream.relay(self.relay)  # type: ignore[union-attr]
            await s._drained()
