"""The OpenRouter chat stream as the Responses API's SSE events.

Order (the OpenAPI StreamEvents, as OpenAI sends them): `response.created`, `response.in_progress`,
then per output item `response.output_item.added`, its content events (`content_part.added`,
`output_text.delta` ... `output_text.done`, `content_part.done`; reasoning text and summary events;
`function_call_arguments.delta` ... `.done`), `response.output_item.done`; last the whole response
in `response.completed`, `response.incomplete` or `response.failed`, then `data: [DONE]`. Every event
carries a `sequence_number` counting from 0.
"""

from __future__ import annotations

from typing import Any

from omnirouter.formats import responses_output as out
from omnirouter.jsonio import encode

DONE = b"data: [DONE]\n\n"


def _frame(kind: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + encode(payload) + b"\n\n"


class _Message:
    __slots__ = ("annotations", "delta_head", "id", "index", "refusal", "refusal_index", "status", "text",
                 "text_index")  # fmt: skip

    def __init__(self, index: int, item: str) -> None:
        self.index, self.id = index, item
        self.status = "in_progress"
        self.text: list[str] | None = None  # its output_text part, once opened
        self.annotations: list[dict[str, Any]] = []  # its output_text's (url_citation)
        self.refusal: list[str] | None = None  # its refusal part, once opened
        self.text_index = self.refusal_index = -1
        self.delta_head = b""

    def open_text(self) -> int:
        self.text_index = self.parts()
        self.text = []
        # The text delta is the most frequent event: its bytes up to the delta are made once.
        self.delta_head = (
            b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":"'
            + self.id.encode()
            + b'","output_index":'
            + str(self.index).encode()
            + b',"content_index":'
            + str(self.text_index).encode()
            + b',"logprobs":[],"delta":'
        )
        return self.text_index

    def open_refusal(self) -> int:
        self.refusal_index = self.parts()
        self.refusal = []
        return self.refusal_index

    def parts(self) -> int:
        return (self.text is not None) + (self.refusal is not None)

    def content(self) -> list[dict[str, Any]]:
        parts: list[tuple[int, dict[str, Any]]] = []
        if self.text is not None:
            parts.append((self.text_index, out.text_part("".join(self.text), self.annotations)))
        if self.refusal is not None:
            parts.append((self.refusal_index, {"type": "refusal", "refusal": "".join(self.refusal)}))
        return [part for _, part in sorted(parts, key=lambda p: p[0])]

    def item(self) -> dict[str, Any]:
        return {"type": "message", "id": self.id, "role": "assistant", "status": self.status,
                "content": self.content()}  # fmt: skip


class _Reasoning:
    __slots__ = ("index", "r", "status", "summary_open")

    def __init__(self, index: int, r: out.ReasoningItem) -> None:
        self.index, self.r = index, r
        self.status = "in_progress"
        self.summary_open = False

    @property
    def id(self) -> str:
        return self.r.id

    def item(self) -> dict[str, Any]:
        return self.r.item(self.status)


class _Call:
    __slots__ = ("args", "call_id", "id", "index", "name", "status")

    def __init__(self, index: int, item: str, call_id: str, name: str) -> None:
        self.index, self.id, self.call_id, self.name = index, item, call_id, name
        self.args: list[str] = []
        self.status = "in_progress"


class _ServerTool:
    """An item of a server tool the gateway ran: complete when it appears."""

    def __init__(self, index: int, body: dict[str, Any]) -> None:
        self.index, self.body, self.id, self.status = index, body, body["id"], body["status"]

    def item(self) -> dict[str, Any]:
        return self.body


class ResponsesEncoder:
    """One stream's state: the output items so far, and the sequence number of the next event."""

    def __init__(self, echo: dict[str, Any] | None, namespaced: dict[str, tuple[str, str]]) -> None:
        self.echo = echo
        self.namespaced = namespaced
        self.seq = 0
        self.started = self.ended = False
        self.gen_id = ""
        self.created = 0
        self.model = ""
        self.items: list[_Message | _Reasoning | _Call | _ServerTool] = []  # in output_index order
        self.open: list[_Message | _Reasoning | _Call] = []
        self.calls: dict[int, _Call] = {}  # by the chat tool call's index
        self.finish_reason: str | None = None
        self.error: dict[str, Any] | None = None
        self.usage: Any = None
        self.metadata: Any = None

    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        payload["sequence_number"] = self.seq
        self.seq += 1
        return _frame(kind, payload)

    # -- the StreamEncoder protocol

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        parts: list[bytes] = []
        if not self.started:
            parts.append(self._start(chunk))
        if (model := chunk.get("model")) is not None:
            self.model = model
        if "debug" in chunk:
            parts.append(self._event("response.debug", {"type": "response.debug", "debug": chunk["debug"]}))
        if (error := chunk.get("error")) is not None:
            self.error = error
        if (ran := chunk.get("server_tool_item")) is not None:  # a server tool ran (servertools/)
            self._server_tool(ran, parts)
        choices = chunk.get("choices")
        for choice in choices or ():
            delta = choice.get("delta")
            if delta:
                content = delta.get("content")
                if len(delta) == 1 and content.__class__ is str:  # the common chunk: text only
                    if content:
                        parts.append(self._text(content))
                else:
                    self._delta(delta, parts)
            reason = choice.get("finish_reason")
            if reason is not None and reason != "error":
                self.finish_reason = reason
        if not choices and "usage" in chunk:  # the last chunk: usage with cost
            self.usage = chunk["usage"]
            self.metadata = chunk.get("openrouter_metadata")
            parts.append(self._end())
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def done(self) -> bytes:
        head = b""
        if not self.started:
            head = self._start({})
        if not self.ended:
            head += self._end()
        return head + DONE

    # -- lifecycle

    def _start(self, chunk: dict[str, Any]) -> bytes:
        self.started = True
        self.gen_id = str(chunk.get("id") or "")
        self.created = int(chunk.get("created") or 0)
        self.model = str(chunk.get("model") or "")
        body = out.response(self.gen_id, self.created, self.model, "in_progress", self.echo)
        return self._event("response.created", {"type": "response.created", "response": body}) + self._event(
            "response.in_progress", {"type": "response.in_progress", "response": body}
        )

    def _end(self) -> bytes:
        self.ended = True
        body = out.response(self.gen_id, self.created, self.model, "in_progress", self.echo)
        out.finish(body, self.finish_reason, self.error)
        parts: list[bytes] = []
        self._close(parts, "completed" if body["status"] == "completed" else "incomplete")
        body["output"] = [self._done_item(item) for item in self.items]
        if (used := out.usage(self.usage)) is not None:
            body["usage"] = used
        if self.metadata is not None:
            body["openrouter_metadata"] = self.metadata
        kind = f"response.{body['status']}"
        parts.append(self._event(kind, {"type": kind, "response": body}))
        return b"".join(parts)

    # -- deltas

    def _delta(self, delta: dict[str, Any], parts: list[bytes]) -> None:
        details = delta.get("reasoning_details")
        if details:  # the same reasoning as `reasoning`, with signatures and encrypted blocks
            for detail in details:
                if isinstance(detail, dict):
                    self._reasoning(detail, parts)
        elif isinstance(reasoning := delta.get("reasoning"), str) and reasoning:
            self._reasoning({"type": "reasoning.text", "text": reasoning}, parts)
        content = delta.get("content")
        if isinstance(content, str) and content:
            parts.append(self._text(content))
        if isinstance(refusal := delta.get("refusal"), str) and refusal:
            self._refusal(refusal, parts)
        for call in delta.get("tool_calls") or ():
            if isinstance(call, dict):
                self._tool_call(call, parts)
        if annotations := delta.get("annotations"):  # citations, in the stream's last content chunk
            self._annotations(out.url_citations(annotations), parts)

    def _text(self, text: str) -> bytes:
        current = self.open[-1] if self.open else None
        if not isinstance(current, _Message) or current.text is None:
            opened: list[bytes] = []
            current = self._message(opened)
            k = current.open_text()
            opened.append(self._event("response.content_part.added", {
                "type": "response.content_part.added", "item_id": current.id, "output_index": current.index,
                "content_index": k, "part": out.text_part(""),
            }))  # fmt: skip
            head = b"".join(opened)
        else:
            head = b""
        current.text.append(text)  # type: ignore[union-attr]
        seq = self.seq
        self.seq += 1
        return head + current.delta_head + encode(text) + b',"sequence_number":' + str(seq).encode() + b"}\n\n"

    def _annotations(self, annotations: list[dict[str, Any]], parts: list[bytes]) -> None:
        """Each as `response.output_text.annotation.added` on the open text (an empty one if none)."""
        if not annotations:
            return
        current = self.open[-1] if self.open else None
        if not isinstance(current, _Message) or current.text is None:
            parts.append(self._text(""))  # opens the message and its output_text part
            current = self.open[-1]
        assert isinstance(current, _Message)
        for a in annotations:
            current.annotations.append(a)
            parts.append(self._event("response.output_text.annotation.added", {
                "type": "response.output_text.annotation.added", "item_id": current.id,
                "output_index": current.index, "content_index": current.text_index,
                "annotation_index": len(current.annotations) - 1, "annotation": a,
            }))  # fmt: skip

    def _refusal(self, refusal: str, parts: list[bytes]) -> None:
        current = self.open[-1] if self.open else None
        if not isinstance(current, _Message) or current.refusal is None:
            current = self._message(parts)
            k = current.open_refusal()
            parts.append(self._event("response.content_part.added", {
                "type": "response.content_part.added", "item_id": current.id, "output_index": current.index,
                "content_index": k, "part": {"type": "refusal", "refusal": ""},
            }))  # fmt: skip
        current.refusal.append(refusal)  # type: ignore[union-attr]
        parts.append(self._event("response.refusal.delta", {
            "type": "response.refusal.delta", "item_id": current.id, "output_index": current.index,
            "content_index": current.refusal_index, "delta": refusal,
        }))  # fmt: skip

    def _message(self, parts: list[bytes]) -> _Message:
        """The open message item, or a new one (ending the items open before it)."""
        current = self.open[-1] if self.open else None
        if isinstance(current, _Message):
            return current
        self._close(parts, "completed")
        current = _Message(len(self.items), out.item_id("msg", self.gen_id, len(self.items)))
        self.items.append(current)
        self.open.append(current)
        parts.append(self._added(current.index, current.item()))
        return current

    def _reasoning(self, detail: dict[str, Any], parts: list[bytes]) -> None:
        current = self.open[-1] if self.open else None
        if not isinstance(current, _Reasoning) or not current.r.takes(detail):
            self._close(parts, "completed")
            before = [i.r for i in self.items if isinstance(i, _Reasoning)]
            current = _Reasoning(len(self.items), out.ReasoningItem.starting(detail, self.gen_id, before))
            self.items.append(current)
            self.open.append(current)
            parts.append(self._added(current.index, current.item()))
        r, ids = current.r, {"item_id": current.id, "output_index": current.index}
        kind = detail.get("type")
        if kind == "reasoning.text" and isinstance(text := detail.get("text"), str) and text:
            # (No content_part events: the OpenAPI document allows only output_text and refusal parts in them.)
            if r.text is None:
                r.text = []
            r.text.append(text)
            parts.append(self._event("response.reasoning_text.delta", {
                "type": "response.reasoning_text.delta", **ids, "content_index": 0, "delta": text,
            }))  # fmt: skip
        elif kind == "reasoning.summary" and isinstance(summary := detail.get("summary"), str) and summary:
            if not current.summary_open:
                current.summary_open = True
                r.summary.append("")
                parts.append(self._event("response.reasoning_summary_part.added", {
                    "type": "response.reasoning_summary_part.added", **ids, "summary_index": len(r.summary) - 1,
                    "part": {"type": "summary_text", "text": ""},
                }))  # fmt: skip
            r.summary[-1] += summary
            parts.append(self._event("response.reasoning_summary_text.delta", {
                "type": "response.reasoning_summary_text.delta", **ids, "summary_index": len(r.summary) - 1,
                "delta": summary,
            }))  # fmt: skip
        elif kind == "reasoning.encrypted" and isinstance(data := detail.get("data"), str):
            r.encrypted = data
        r.note(detail)

    def _tool_call(self, call: dict[str, Any], parts: list[bytes]) -> None:
        index = call.get("index")
        index = index if isinstance(index, int) else len(self.calls)
        fn = call.get("function") or {}
        current = self.calls.get(index)
        if current is None:
            self._close(parts, "completed", keep_calls=True)
            n = len(self.calls)
            call_id = call.get("id") if isinstance(call.get("id"), str) else out.item_id("call", self.gen_id, n)
            current = _Call(len(self.items), out.item_id("fc", self.gen_id, n), call_id, str(fn.get("name") or ""))
            self.items.append(current)
            self.open.append(current)
            self.calls[index] = current
            parts.append(self._added(current.index, self._call_item(current)))
        elif fn.get("name") and not current.name:
            current.name = fn["name"]
        args = fn.get("arguments")
        if isinstance(args, str) and args:
            current.args.append(args)
            if current.status == "in_progress":  # (a fragment after its item ended only joins the total)
                parts.append(self._event("response.function_call_arguments.delta", {
                    "type": "response.function_call_arguments.delta", "item_id": current.id,
                    "output_index": current.index, "delta": args,
                }))  # fmt: skip

    # -- items

    def _server_tool(self, entry: dict[str, Any], parts: list[bytes]) -> None:
        from omnirouter.servertools.render import responses_item

        self._close(parts, "completed")
        item = _ServerTool(len(self.items), responses_item(entry))
        self.items.append(item)
        parts.append(self._added(item.index, item.item()))
        parts.append(self._event("response.output_item.done",
                                 {"type": "response.output_item.done", "output_index": item.index,
                                  "item": item.item()}))  # fmt: skip

    def _added(self, index: int, item: dict[str, Any]) -> bytes:
        return self._event("response.output_item.added",
                           {"type": "response.output_item.added", "output_index": index, "item": item})  # fmt: skip

    def _call_item(self, call: _Call) -> dict[str, Any]:
        return out.function_call(call.id, call.call_id, call.name, "".join(call.args), call.status, self.namespaced)

    def _done_item(self, item: _Message | _Reasoning | _Call | _ServerTool) -> dict[str, Any]:
        return self._call_item(item) if isinstance(item, _Call) else item.item()

    def _close(self, parts: list[bytes], status: str, *, keep_calls: bool = False) -> None:
        """End the open items (all, or all but function calls) with their done events."""
        still: list[_Message | _Reasoning | _Call] = []
        for item in self.open:
            if keep_calls and isinstance(item, _Call):
                still.append(item)
                continue
            item.status = status
            ids = {"item_id": item.id, "output_index": item.index}
            if isinstance(item, _Message):
                for k, part in enumerate(item.content()):
                    if part["type"] == "output_text":
                        parts.append(self._event("response.output_text.done", {
                            "type": "response.output_text.done", **ids, "content_index": k, "text": part["text"],
                            "logprobs": [],
                        }))  # fmt: skip
                    else:
                        parts.append(self._event("response.refusal.done", {
                            "type": "response.refusal.done", **ids, "content_index": k, "refusal": part["refusal"],
                        }))  # fmt: skip
                    parts.append(self._event("response.content_part.done", {
                        "type": "response.content_part.done", **ids, "content_index": k, "part": part,
                    }))  # fmt: skip
            elif isinstance(item, _Reasoning):
                r = item.r
                if r.text is not None:
                    text = "".join(r.text)
                    parts.append(self._event("response.reasoning_text.done", {
                        "type": "response.reasoning_text.done", **ids, "content_index": 0, "text": text,
                    }))  # fmt: skip
                if item.summary_open:
                    k, text = len(r.summary) - 1, r.summary[-1]
                    parts.append(self._event("response.reasoning_summary_text.done", {
                        "type": "response.reasoning_summary_text.done", **ids, "summary_index": k, "text": text,
                    }))  # fmt: skip
                    parts.append(self._event("response.reasoning_summary_part.done", {
                        "type": "response.reasoning_summary_part.done", **ids, "summary_index": k,
                        "part": {"type": "summary_text", "text": text},
                    }))  # fmt: skip
            else:
                shown = self._call_item(item)
                parts.append(self._event("response.function_call_arguments.done", {
                    "type": "response.function_call_arguments.done", **ids, "name": shown["name"],
                    "arguments": shown["arguments"],
                }))  # fmt: skip
            parts.append(self._event("response.output_item.done", {
                "type": "response.output_item.done", "output_index": item.index, "item": self._done_item(item),
            }))  # fmt: skip
        self.open = still
