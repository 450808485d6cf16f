"""The fakes' shared core, through a toy wire: what a provider module gets for free."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import omnirouter.testing
from omnirouter.testing import Reply, Status, Stream
from omnirouter.testing.fakes.core import Completion, FakeServer, Frames, Message, NormalRequest, Route, Wire, WireError


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class ToyFrames(Frames):
    def __init__(self, c: Completion) -> None:
        self.c = c

    def head(self) -> bytes:
        return sse("start", {"id": self.c.id})

    def body(self) -> list[bytes]:
        thinking = [sse("thought", {"text": t}) for t in self.c.reasoning_tokens]
        return thinking + [sse("token", {"text": t}) for t in self.c.tokens]

    def finish(self) -> bytes:
        usage = self.c.usage
        return sse("end", {"finish": self.c.finish_reason, "tokens": usage and usage.completion_tokens})

    def broken(self) -> bytes:
        return b"event: token\ndata: {\n\n"

    def error(self, stream: Stream) -> bytes:
        return sse("error", stream.error or {"message": "overloaded"})


class ToyWire(Wire):
    """POST /v1/models/{model}/generate {"prompt", "think"} -> {"text", "usage"}; ``x-toy-key`` auth."""

    name = "FakeToy"
    reasoning_by_default = True

    def routes(self) -> list[Route]:
        return [Route("POST", "/models/{model}/generate"), Route("POST", "/models/{model}/stream", stream=True)]

    def parse(self, body: Any, request: web.Request) -> NormalRequest:
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            raise WireError(400, "prompt is required", "prompt")
        return NormalRequest(
            model=request.match_info["model"],
            messages=[Message("user", body["prompt"])],
            max_tokens=body.get("max_tokens"),
            reasoning=bool(body.get("think")),
        )

    def completion_json(self, c: Completion) -> Any:
        usage = c.usage.prompt_tokens if c.usage else None
        return {"text": c.content, "thought": c.reasoning, "signature": c.reasoning_signature, "usage": usage}

    def frames(self, c: Completion) -> Frames:
        return ToyFrames(c)

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return {"toy_error": {"status": status, "message": message or "failed", "field": param}}

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        return None if request.headers.get("x-toy-key") == api_key else WireError(403, "bad key")


class FakeToy(FakeServer):
    wire = ToyWire()


@pytest.fixture
async def toy() -> AsyncIterator[FakeToy]:
    async with FakeToy(api_key="k1") as fake:
        yield fake


async def post(fake: FakeToy, path: str, body: Any, key: str = "k1") -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.base_url + path, json=body, headers={"x-toy-key": key}) as resp,
    ):
        return resp.status, await resp.text()


async def test_a_wire_gets_echo_usage_reasoning_and_recording(toy: FakeToy) -> None:
    status, text = await post(toy, "/models/toy-1/generate", {"prompt": "hello there", "think": True})
    assert status == 200
    answer = json.loads(text)
    assert answer["text"] == "Echo: hello there"
    assert answer["thought"] and answer["signature"]
    assert answer["usage"] == 2  # 11 characters, 4 a token
    assert toy.last_request.model == "toy-1"  # from the path
    assert toy.last_request.path_params == {"model": "toy-1"}


async def test_script_faults_and_errors_use_the_wire(toy: FakeToy) -> None:
    toy.script(
        Status(429),
        Stream(content="a b c d", error_after=2),
        Reply("x y z", reasoning="hmm", finish_reason="DONE"),
    )
    status, text = await post(toy, "/models/m/generate", {"prompt": "p"})
    assert status == 429 and json.loads(text)["toy_error"]["status"] == 429

    status, text = await post(toy, "/models/m/generate", {"prompt": "p"})
    events = [e for e in text.split("\n\n") if e]
    assert [e.split("\n")[0] for e in events] == ["event: start", "event: token", "event: token", "event: error"]

    status, text = await post(toy, "/models/m/stream", {"prompt": "p"})  # the route streams
    events = [json.loads(e.split("data: ")[1]) for e in text.split("\n\n") if e]
    assert [e.get("text") for e in events[1:-1]] == ["hmm", "x", " y", " z"]
    assert events[-1] == {"finish": "DONE", "tokens": 4}


async def test_bad_body_and_bad_key_answer_in_the_wire_envelope(toy: FakeToy) -> None:
    status, text = await post(toy, "/models/m/generate", {"nope": 1})
    assert status == 400 and json.loads(text)["toy_error"]["field"] == "prompt"
    status, text = await post(toy, "/models/m/generate", {"prompt": "p"}, key="wrong")
    assert status == 403 and json.loads(text)["toy_error"]["message"] == "bad key"
    assert len(toy.requests) == 2  # refused requests are recorded too


async def test_openai_wire_sends_scripted_reasoning() -> None:
    async with omnirouter.testing.FakeOpenAI() as fake:
        fake.script(Reply("ok", reasoning="step one"))
        async with (
            aiohttp.ClientSession() as session,
            session.post(fake.base_url + "/chat/completions", json={"model": "m", "messages": []}) as resp,
        ):
            answer = await resp.json()
    assert answer["choices"][0]["message"]["reasoning"] == "step one"
    assert answer["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2


def test_lazy_exports() -> None:
    assert omnirouter.testing.FakeOpenAI.__module__ == "omnirouter.testing.fakes.openai"
    assert "FakeServer" in omnirouter.testing.__all__
    with pytest.raises(AttributeError):
        _ = omnirouter.testing.FakeNothing
