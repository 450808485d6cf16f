"""What every video upstream does, whatever its wire format: take a job, say how it is going, hand
over what it made. A job outlives the request that submitted it, so each step is its own call, and
the poller (videos/poller.py) makes the later ones with the job's stored request."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from omnirouter.accounting.units import Units
from omnirouter.catalog.types import Endpoint

# Seconds of video a request that names no duration is reserved and billed for when the upstream
# does not say how long its video is: the longest default among the APIs here (Veo's 8; Sora's is 4).
DEFAULT_SECONDS = 8

# The job states of OpenRouter's VideoGenerationResponse.
PENDING, IN_PROGRESS, COMPLETED, FAILED, EXPIRED = "pending", "in_progress", "completed", "failed", "expired"
FINISHED = frozenset({COMPLETED, FAILED, EXPIRED})


class Upstream(Protocol):
    """The part of pipeline/modality.Upstream a video API uses (the poller builds one outside a request)."""

    api_key: str | None
    endpoint: Endpoint  # the model's endpoint at this provider: its upstream_model

    def url(self, path: str) -> str: ...

    async def json(
        self, method: str, url: str, payload: Any = None, *, headers: dict[str, str] | None = None
    ) -> Any: ...

    async def send(
        self, method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes = b"", stream: bool = False
    ) -> Any: ...


@dataclass(frozen=True)
class Submitted:
    """The upstream took the job. Nothing is charged yet (`units` is zero): the job is billed when it
    completes."""

    upstream_id: str
    status: str = PENDING
    units: Units = field(default_factory=Units)


@dataclass(frozen=True)
class Progress:
    """How a job is going. `seconds`: the length of the video made, once completed (None: the
    requested duration); `outputs`: how many videos it made."""

    status: str
    seconds: Decimal | None = None
    error: str | None = None
    outputs: int = 1


class VideoAPI(Protocol):
    async def submit(self, up: Upstream, request: dict[str, Any]) -> Submitted: ...

    async def progress(self, up: Upstream, upstream_id: str, request: dict[str, Any]) -> Progress: ...

    async def content(self, up: Upstream, upstream_id: str, index: int, request: dict[str, Any]) -> bytes: ...


def requested_seconds(request: dict[str, Any]) -> int:
    duration = request.get("duration")
    return duration if isinstance(duration, int) and duration > 0 else DEFAULT_SECONDS


def prompt_of(request: dict[str, Any]) -> str:
    return request.get("prompt") or ""
