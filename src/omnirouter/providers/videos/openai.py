"""OpenAI's Videos API (Sora): `POST /videos` takes a job, `GET /videos/{id}` reports it
(queued, in_progress, completed, failed), `GET /videos/{id}/content` downloads the MP4. Jobs are sent
as JSON (the API takes JSON as well as multipart when there is no reference image to upload)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from omnirouter.providers.answers import body_of, error_from_body
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.videos.base import (
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    PENDING,
    Progress,
    Submitted,
    Upstream,
    prompt_of,
)

_STATUS = {"queued": PENDING, "in_progress": IN_PROGRESS, "completed": COMPLETED, "failed": FAILED}
# Sizes OpenAI's API accepts, by OpenRouter's (resolution, aspect ratio).
_SIZES = {
    ("720p", "16:9"): "1280x720",
    ("720p", "9:16"): "720x1280",
    ("1080p", "16:9"): "1792x1024",
    ("1080p", "9:16"): "1024x1792",
}


def _headers(up: Upstream) -> dict[str, str]:
    return {"Authorization": f"Bearer {up.api_key}"} if up.api_key else {}


def job_body(request: dict[str, Any], upstream_model: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": upstream_model, "prompt": prompt_of(request)}
    if isinstance(request.get("duration"), int):
        body["seconds"] = str(request["duration"])  # OpenAI's seconds are a string ("4", "8", "12")
    size = request.get("size") or _SIZES.get((request.get("resolution") or "720p", request.get("aspect_ratio") or ""))
    if size:
        body["size"] = size
    return body


class OpenAIVideos:
    async def submit(self, up: Upstream, request: dict[str, Any]) -> Submitted:
        answer = await up.json(
            "POST", up.url("/videos"), job_body(request, up.endpoint.upstream_model), headers=_headers(up)
        )
        job_id = answer.get("id") if isinstance(answer, dict) else None
        if not isinstance(job_id, str) or not job_id:
            raise UpstreamError("The provider's answer named no video job", status=502, raw=str(answer)[:2000])
        return Submitted(job_id, _STATUS.get(answer.get("status"), PENDING))

    async def progress(self, up: Upstream, upstream_id: str, request: dict[str, Any]) -> Progress:
        answer = await up.json("GET", up.url(f"/videos/{upstream_id}"), headers=_headers(up))
        status = _STATUS.get(answer.get("status"), IN_PROGRESS)
        if status == FAILED:
            err = answer.get("error") or {}
            message = err.get("message") if isinstance(err, dict) else str(err)
            return Progress(FAILED, error=message or "The provider could not generate the video")
        seconds = None
        if status == COMPLETED and answer.get("seconds") is not None:
            try:
                seconds = Decimal(str(answer["seconds"]))
            except InvalidOperation:
                seconds = None
        return Progress(status, seconds=seconds)

    async def content(self, up: Upstream, upstream_id: str, index: int, request: dict[str, Any]) -> bytes:
        resp = await up.send("GET", up.url(f"/videos/{upstream_id}/content?variant=video"), headers=_headers(up))
        return await body_of(resp, error_from_body)
