"""A fake of OpenAI's Videos API (Sora) on loopback: jobs that move through a scripted list of states.

    with FakeOpenAIVideos.run_in_thread() as fake:
        fake.script(Status(503), Job(("queued", "in_progress", "failed"), error="Content policy"))
        ...  # each submission takes one step: a Status refuses it, a Job plans the job it makes

A job's first state is its answer to the submission; each `GET /videos/{id}` moves it one state on, and
the last one stays. A state that is an HTTP status ("503", "404") answers that poll with that error
instead, as a provider having a bad moment (or having lost the job) does. Submissions with no step
left (or with `always(None)`) make `Job()`: queued, then
in progress, then completed. `GET /videos/{id}/content` serves the MP4 of a completed job (the sandbox's
tiny video of its prompt), 404 before that, as the real API does.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from omnirouter.providers.videos.sandbox import tiny_mp4
from omnirouter.testing.fakes.core import (
    FakeServer,
    FakeThread,
    NormalRequest,
    Route,
    Status,
    Wire,
    WireError,
    json_response,
)
from omnirouter.testing.fakes.openai import error_body

__all__ = ["FakeOpenAIVideos", "Job", "OpenAIVideosWire"]


@dataclass(frozen=True)
class Job:
    """A scripted job: its states in order (OpenAI's: queued, in_progress, completed, failed), the
    seconds it reports once completed (None: what was asked, else "4"), and a failure's message."""

    states: tuple[str, ...] = ("queued", "in_progress", "completed")
    seconds: str | None = None
    error: str = "The video could not be generated."


@dataclass
class _Running:
    id: str
    plan: Job
    body: dict[str, Any]
    created_at: int
    polls: int = 0

    @property
    def state(self) -> str:
        return self.plan.states[min(self.polls, len(self.plan.states) - 1)]

    def payload(self) -> dict[str, Any]:
        state = self.state
        done = state == "completed"
        seconds = self.plan.seconds or str(self.body.get("seconds") or "4")
        return {
            "id": self.id,
            "object": "video",
            "model": self.body.get("model"),
            "status": state,
            "progress": 100 if done else (0 if state == "queued" else 50),
            "created_at": self.created_at,
            "completed_at": self.created_at + self.polls if done else None,
            "expires_at": self.created_at + 86400 if done else None,
            "prompt": self.body.get("prompt"),
            "seconds": seconds,
            "size": self.body.get("size") or "720x1280",
            "remixed_from_video_id": None,
            "error": {"code": "video_generation_failed", "message": self.plan.error} if state == "failed" else None,
        }


async def _submit(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    assert isinstance(fake, FakeOpenAIVideos)
    body = fake.last_request.json
    step = fake._queue.popleft() if fake._queue else fake._always
    if isinstance(step, Status):
        return fake._status(step)
    if not isinstance(body, dict) or not isinstance(body.get("prompt"), str) or not body.get("model"):
        return fake._error(WireError(400, "Missing required parameters: model and prompt.", "prompt"))
    job = _Running("video_" + secrets.token_hex(16), step if isinstance(step, Job) else Job(), body, int(time.time()))
    fake.jobs[job.id] = job
    return json_response(job.payload())


async def _retrieve(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    assert isinstance(fake, FakeOpenAIVideos)
    job = fake.jobs.get(request.match_info["video_id"])
    if job is None:
        return json_response(error_body(404, "Video not found.", "not_found"), 404)
    job.polls += 1
    if job.state.isdigit():
        return json_response(error_body(int(job.state)), int(job.state))
    return json_response(job.payload())


async def _content(fake: FakeServer, request: web.Request) -> web.StreamResponse:
    assert isinstance(fake, FakeOpenAIVideos)
    job = fake.jobs.get(request.match_info["video_id"])
    if job is None or job.state != "completed":
        return json_response(error_body(404, "Video content is not available.", "not_found"), 404)
    seconds = int(job.plan.seconds or job.body.get("seconds") or 4)
    return web.Response(body=tiny_mp4(job.body.get("prompt") or "", seconds), content_type="video/mp4")


class OpenAIVideosWire(Wire):
    name: ClassVar[str] = "FakeOpenAIVideos"

    def routes(self) -> list[Route]:
        return [
            Route("POST", "/videos", handler=_submit),
            Route("GET", "/videos/{video_id}", handler=_retrieve),
            Route("GET", "/videos/{video_id}/content", handler=_content),
        ]

    def parse(self, body: Any, request: web.Request) -> NormalRequest:  # no completions on this wire
        raise WireError(404)

    def error_body(self, status: int, message: str | None = None, param: str | None = None) -> Any:
        return error_body(status, message, param=param)

    def check_auth(self, request: web.Request, api_key: str) -> WireError | None:
        if request.headers.get("Authorization") != f"Bearer {api_key}":
            return WireError(401)
        return None


class FakeOpenAIVideos(FakeServer):
    wire = OpenAIVideosWire()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jobs: dict[str, _Running] = {}

    def reset(self) -> None:
        super().reset()
        self.jobs.clear()

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeThread[FakeOpenAIVideos]:
        return FakeThread(cls(**kwargs))
