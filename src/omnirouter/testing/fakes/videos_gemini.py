"""A fake of Gemini's Veo on loopback: `predictLongRunning` starts an operation, whose `GET` moves it
through a scripted list of states (as fakes/videos.py's `Job`: "completed" and "failed" end it, any
other is still running), and a finished operation's video downloads through a redirect, as Google's
file URIs answer.

    with FakeGeminiVideos.run_in_thread(api_key="g-key") as fake:
        fake.script(Status(429), Job(("running", "completed")))
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from omnirouter.providers.videos.sandbox import tiny_mp4
from omnirouter.testing.fakes.core import FakeServer, FakeThread, NormalRequest, Route, Status, Wire, WireError
from omnirouter.testing.fakes.core import json_response as _json
from omnirouter.testing.fakes.gemini import error_body
from omnirouter.testing.fakes.videos import Job

__all__ = ["FakeGeminiVideos", "GeminiVideosWire", "Job"]


@dataclass
class _Operation:
    name: str
    plan: Job
    body: dict[str, Any]
    polls: int = 0

    @property
    def state(self) -> str:
        return self.plan.states[min(self.polls, len(self.plan.states) - 1)]

    @property
    def file_id(self) -> str:
        return self.name.rsplit("/", 1)[1]

    def payload(self, base_url: str) -> dict[str, Any]:
        state = self.state
        if state == "failed":
            return {"name": self.name, "done": True, "error": {"code": 3, "message": self.plan.error}}
        if state != "completed":
            return {"name": self.name, "done": False}
        uri = f"{base_url}/files/{self.file_id}:download?alt=media"
        samples = [{"video": {"uri": uri}}]
        return {
            "name": self.name,
            "done": True,
            "response": {
                "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                "generateVideoResponse": {"generatedSamples": samples},
            },
        }

    def seconds(self) -> int:
        return int(((self.body.get("parameters") or {}).get("durationSeconds")) or 8)

    def prompt(self) -> str:
        instances = self.body.get("instances") or [{}]
        return str(instances[0].get("prompt") or "")


async def _start(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    assert isinstance(fake, FakeGeminiVideos)
    body = fake.last_request.json
    step = fake._queue.popleft() if fake._queue else fake._always
    if isinstance(step, Status):
        return fake._status(step)
    if not isinstance(body, dict) or not isinstance(body.get("instances"), list) or not body["instances"]:
        return fake._error(WireError(400, "* GenerateVideoRequest.instances: at least one instance is required"))
    model = request.match_info["model"]
    op = _Operation(f"models/{model}/operations/{secrets.token_hex(8)}", step if isinstance(step, Job) else Job(), body)
    fake.operations[op.name] = op
    return _json({"name": op.name})


async def _operation(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    assert isinstance(fake, FakeGeminiVideos)
    op = fake.operations.get(f"models/{request.match_info['model']}/operations/{request.match_info['op']}")
    if op is None:
        return _json(error_body(404, "Operation not found."), 404)
    op.polls += 1
    return _json(op.payload(fake.base_url))


async def _download(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    assert isinstance(fake, FakeGeminiVideos)
    raise web.HTTPFound(f"{fake.base_path}/storage/{request.match_info['file']}.mp4")


async def _storage(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    assert isinstance(fake, FakeGeminiVideos)
    file_id = request.match_info["file"]
    op = next((o for o in fake.operations.values() if o.file_id == file_id and o.state == "completed"), None)
    if op is None:
        return _json(error_body(404, "File not found."), 404)
    return web.Response(body=tiny_mp4(op.prompt(), op.seconds()), content_type="video/mp4")


class GeminiVideosWire(Wire):
    name: ClassVar[str] = "FakeGeminiVideos"
    base_path: ClassVar[str] = "/v1beta"

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/models/{model}:predictLongRunning", handler=_start),
            Route("GET", "/models/{model}/operations/{op}", handler=_operation),
            Route("GET", "/files/{file}:download", handler=_download),
            Route("GET", "/storage/{file}.mp4", handler=_storage),
        ]

    def parse(self, body: Any, request: web.Request) -> NormalRequest:  # no completions on this wire
        raise WireError(404)

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return error_body(status, message, reason=param)

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        if request.path.startswith(f"{self.base_path}/storage/"):
            return None  # a signed storage address: no key
        if request.headers.get("x-goog-api-key") != api_key:
            return WireError(400, "API key not valid. Please pass a valid API key.", "API_KEY_INVALID")
        return None


class FakeGeminiVideos(FakeServer):
    wire = GeminiVideosWire()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.operations: dict[str, _Operation] = {}

    def reset(self) -> None:
        super().reset()
        self.operations.clear()

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeThread[FakeGeminiVideos]:
        return FakeThread(cls(**kwargs))
