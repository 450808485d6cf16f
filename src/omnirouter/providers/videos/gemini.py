"""Gemini's Veo: `POST {base}/models/{model}:predictLongRunning` starts a long-running operation,
`GET {base}/{operation name}` reports it (`done`, then its `response` or `error`), and each generated
sample's `video.uri` downloads the MP4 (with the same `x-goog-api-key`; Google answers it with a
redirect to the file's storage, followed here)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from omnirouter.providers.answers import body_of, error_from_body
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.videos.base import COMPLETED, FAILED, IN_PROGRESS, Progress, Submitted, Upstream, prompt_of

REDIRECTS = 3
# OpenRouter's request fields and the Veo parameters they become.
_PARAMETERS = (
    ("aspect_ratio", "aspectRatio"),
    ("duration", "durationSeconds"),
    ("resolution", "resolution"),
    ("seed", "seed"),
    ("generate_audio", "generateAudio"),
)


def _headers(up: Upstream) -> dict[str, str]:
    return {"x-goog-api-key": up.api_key} if up.api_key else {}


def operation_body(request: dict[str, Any]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for field, name in _PARAMETERS:
        if request.get(field) is not None:
            parameters[name] = request[field]
    instance: dict[str, Any] = {"prompt": prompt_of(request)}
    return {"instances": [instance], "parameters": parameters}


def _samples(operation: dict[str, Any]) -> list[dict[str, Any]]:
    response = operation.get("response") or {}
    generated = response.get("generateVideoResponse") or response
    samples = generated.get("generatedSamples") or generated.get("generatedVideos") or []
    return [s for s in samples if isinstance(s, dict)]


class GeminiVideos:
    async def submit(self, up: Upstream, request: dict[str, Any]) -> Submitted:
        url = up.url(f"/models/{up.endpoint.upstream_model}:predictLongRunning")
        answer = await up.json("POST", url, operation_body(request), headers=_headers(up))
        name = answer.get("name") if isinstance(answer, dict) else None
        if not isinstance(name, str) or not name:
            raise UpstreamError("The provider's answer named no operation", status=502, raw=str(answer)[:2000])
        return Submitted(name)

    async def _operation(self, up: Upstream, name: str) -> dict[str, Any]:
        answer = await up.json("GET", up.url("/" + name.lstrip("/")), headers=_headers(up))
        return answer if isinstance(answer, dict) else {}

    async def progress(self, up: Upstream, upstream_id: str, request: dict[str, Any]) -> Progress:
        operation = await self._operation(up, upstream_id)
        if not operation.get("done"):
            return Progress(IN_PROGRESS)
        if isinstance(error := operation.get("error"), dict):
            return Progress(FAILED, error=str(error.get("message") or "The video could not be generated"))
        samples = _samples(operation)
        if not samples:  # Veo answers a prompt its filters refused with no sample and no error
            return Progress(FAILED, error="The provider returned no video (its safety filters may have refused it)")
        return Progress(COMPLETED, outputs=len(samples))

    async def content(self, up: Upstream, upstream_id: str, index: int, request: dict[str, Any]) -> bytes:
        samples = _samples(await self._operation(up, upstream_id))
        if index >= len(samples):
            raise UpstreamError(f"The job made no video number {index}", status=404)
        url = (samples[index].get("video") or {}).get("uri")
        if not isinstance(url, str) or not url:
            raise UpstreamError("The provider's video has no download address", status=502)
        headers = _headers(up)
        for _ in range(REDIRECTS + 1):
            resp = await up.send("GET", url, headers=headers)
            location = resp.headers.get("location")
            if resp.status not in (301, 302, 303, 307, 308) or not location:
                return await body_of(resp, error_from_body)
            await resp.read()
            resp.close()
            # A signed storage address needs no key (and should not be handed one).
            next_url = urljoin(url, location)
            if up.url("/").split("/")[2] != next_url.split("/")[2]:
                headers = {}
            url = next_url
        raise UpstreamError("The provider's download redirected too many times", status=502)
