"""Video generation as jobs: `POST /videos` submits one upstream (with fallback across providers, as
every inference operation) and answers 202 at once; `GET /videos/{jobId}` reports it, `GET
/videos/{jobId}/content` serves what it made, `GET /videos/models` lists the models that make video.

The job lives in the database (videos/jobs.py) and each worker's poller follows it upstream
(videos/poller.py). Nothing is charged at submission, only reserved: the key is billed when the job
completes, per second of video (`pricing.video_second`, plus `pricing.request`), and not at all when
it fails (videos/billing.py).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route
from starlette.types import Send

from omnirouter.accounting.units import Units
from omnirouter.api import auth
from omnirouter.api.jsonio import JSONResponse
from omnirouter.api.models import price_str
from omnirouter.catalog.types import Model, Pricing
from omnirouter.errors import GatewayError
from omnirouter.jsonio import decode, encode, money
from omnirouter.openapi_doc import Operation
from omnirouter.pipeline.answer import send_json
from omnirouter.pipeline.modality import ModalityCall, ModalityEndpoint
from omnirouter.providers.base import UpstreamError
from omnirouter.providers.videos import API_OF, handlers
from omnirouter.providers.videos.base import COMPLETED, EXPIRED, FAILED, Submitted, requested_seconds
from omnirouter.routing.plan import Candidate
from omnirouter.state import AppState, state
from omnirouter.videos import content, jobs
from omnirouter.videos import schemas as vs
from omnirouter.videos.jobs import Job
from omnirouter.videos.poller import Poller, poller_of

_SIZE = re.compile(r"^[0-9]{1,5}x[0-9]{1,5}$")
_PARTS = {"image_url", "audio_url", "video_url"}
_JOB_ID_FORM = re.compile(r"^[A-Za-z0-9-]{1,40}$")  # what new_job_id makes; anything else is no job


def _fail(message: str) -> GatewayError:
    return GatewayError(400, message)


def _check_parts(value: Any, name: str, *, frames: bool) -> None:
    if not isinstance(value, list):
        raise _fail(f"{name} must be an array")
    for i, part in enumerate(value):
        kind = part.get("type") if isinstance(part, dict) else None
        allowed = {"image_url"} if frames else _PARTS
        if not isinstance(kind, str) or kind not in allowed:
            raise _fail(f"{name}[{i}].type must be one of {', '.join(sorted(allowed))}")
        url = part.get(kind)
        if not isinstance(url, dict) or not isinstance(url.get("url"), str) or not url["url"]:
            raise _fail(f"{name}[{i}].{kind}.url is required")
        if frames and part.get("frame_type") not in vs.FRAME_TYPES:
            raise _fail(f"{name}[{i}].frame_type must be first_frame or last_frame")


def parse_request(raw: bytes) -> dict[str, Any]:
    """The request as sent, checked field by field against VideoGenerationRequest."""
    try:
        body = decode(raw)
    except Exception:
        raise _fail("Invalid JSON in request body") from None
    if not isinstance(body, dict):
        raise _fail("The request body must be a JSON object")
    if "model" in body and (not isinstance(body["model"], str) or not body["model"]):
        raise _fail("model must be a non-empty string")
    prompt = body.get("prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise _fail("prompt must be a string")
    if not (isinstance(prompt, str) and prompt.strip()) and not body.get("frame_images"):
        raise _fail("prompt is required (it may be left out only when frame_images are given)")
    for name in ("duration", "seed"):  # 8.0 is a whole number in JSON Schema too
        if isinstance(value := body.get(name), float) and value.is_integer():
            body[name] = int(value)
    duration = body.get("duration")
    if duration is not None and (type(duration) is not int or not 1 <= duration <= vs.MAX_DURATION):
        raise _fail(f"duration must be a whole number of seconds, from 1 to {vs.MAX_DURATION}")
    for name, allowed in (("aspect_ratio", vs.ASPECT_RATIOS), ("resolution", vs.RESOLUTIONS)):
        if body.get(name) is not None and body[name] not in allowed:
            raise _fail(f"{name} must be one of {', '.join(allowed)}")
    if body.get("size") is not None and not (isinstance(body["size"], str) and _SIZE.match(body["size"])):
        raise _fail('size must be "WIDTHxHEIGHT", e.g. "1280x720"')
    if body.get("seed") is not None and type(body["seed"]) is not int:
        raise _fail("seed must be an integer")
    if body.get("generate_audio") is not None and type(body["generate_audio"]) is not bool:
        raise _fail("generate_audio must be true or false")
    if body.get("frame_images") is not None:
        _check_parts(body["frame_images"], "frame_images", frames=True)
    if body.get("input_references") is not None:
        _check_parts(body["input_references"], "input_references", frames=False)
    callback = body.get("callback_url")
    if callback is not None and not (isinstance(callback, str) and callback.startswith("https://")):
        raise _fail("callback_url must be an https:// URL")
    if body.get("previous_job_id") is not None:
        raise _fail("previous_job_id: continuing an earlier job is not supported by this gateway")
    return body


class Videos:
    name = "videos"
    api_type = "video"
    handlers = handlers

    def serves(self, model: Model) -> bool:
        return "video" in model.architecture.output_modalities

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        return parse_request(raw)

    def worst_case(self, request: dict[str, Any], cand: Candidate) -> Units:
        return Units(video_seconds=Decimal(requested_seconds(request)))

    async def respond(self, call: ModalityCall, answer: Submitted, send: Send) -> None:
        """Store the job and answer 202; nothing is charged now. The worst case stays reserved (held by
        this worker's poller) until the job ends, so the key's limit counts the jobs it has running."""
        assert call.outcome is not None
        st, cand = call.st, call.outcome.candidate
        job = Job(
            id=jobs.new_job_id(), key_hash=call.key.hash, generation_id=call.gen_id, model=cand.model.id,
            provider_slug=cand.provider.slug, endpoint_slug=cand.endpoint.slug, upstream_id=answer.upstream_id,
            status=answer.status, error=None, request=call.body, seconds=None, cost=None, outputs=0,
            workspace_id=call.key.workspace_id, created_at=jobs.now(), completed_at=None, expires_at=None,
            poll_interval=st.settings.video_poll_initial, poll_errors=0,
            byok_key_id=cand.byok.id if cand.byok is not None else None,
        )  # fmt: skip
        await jobs.create(st.db, job, st.settings.video_poll_initial)
        poller = poller_of(st)
        if call.reservation is not None:
            poller.hold(job.id, call.reservation)
            call.reservation = None  # the request's end must not give it back
        else:
            poller.wake.set()
        polling_url = f"{_ROOT.get()}/videos/{job.id}"
        payload = {"id": job.id, "polling_url": polling_url, "status": job.status, "generation_id": job.generation_id}
        await send_json(send, 202, encode(payload), call.gen_id)


VIDEOS = Videos()


# Where the request came in (scheme, host, API root), for the polling URL of the job it submits.
_ROOT: ContextVar[str] = ContextVar("video_api_root", default="/api/v1")


class _Endpoint(ModalityEndpoint):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}
        host = headers.get("host") or "localhost"
        token = _ROOT.set(f"{scope.get('scheme', 'http')}://{host}{scope['path'].rsplit('/videos', 1)[0]}")
        try:
            await super().__call__(scope, receive, send)
        finally:
            _ROOT.reset(token)


# ------------------------------------------------------------------------------------- GET handlers


async def _own_job(request: Request) -> tuple[AppState, Job]:
    """The caller's job, else 404 (another key's job is not found either)."""
    st = state(request)
    key = await auth.inference_caller(st, request.headers)
    job_id = request.path_params["jobId"]
    job = await jobs.get(st.db, job_id) if _JOB_ID_FORM.match(job_id) else None
    if job is None or job.key_hash != key.hash:
        raise GatewayError(404, f"Video job {job_id} not found")
    if job.status not in (COMPLETED, FAILED):
        poller_of(st)  # follows it, should the app not have started the poller
    return st, job


def _root(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}{request.url.path.rsplit('/videos', 1)[0]}"


def job_body(job: Job, root: str) -> dict[str, Any]:
    status = job.shown_status()
    body: dict[str, Any] = {
        "id": job.id,
        "polling_url": f"{root}/videos/{job.id}",
        "status": status,
        "generation_id": job.generation_id,
    }
    if status == FAILED:
        body["error"] = job.error or "The video could not be generated"
    if job.status == COMPLETED:
        body["usage"] = {"cost": money(job.cost), "is_byok": job.byok_key_id is not None}
        if status == COMPLETED and job.expires_at is not None:
            body["unsigned_urls"] = [f"{root}/videos/{job.id}/content?index={i}" for i in range(job.outputs)]
            body["expires_at"] = int(job.expires_at.timestamp())
    return body


async def get_job(request: Request) -> Response:
    _, job = await _own_job(request)
    return JSONResponse(job_body(job, _root(request)))


def _index(request: Request) -> int:
    raw = request.query_params.get("index")
    if raw in (None, "", "null"):
        return 0
    if not raw.isdigit():
        raise _fail("index must be a whole number, 0 or more")
    return int(raw)


async def get_content(request: Request) -> Response:
    st, job = await _own_job(request)
    index = _index(request)
    status = job.shown_status()
    if status == EXPIRED:
        assert job.expires_at is not None
        days = st.settings.video_retention_days
        raise GatewayError(410, f"The videos of job {job.id} expired at {job.expires_at.isoformat()} "
                                f"(videos are kept {days:g} days after the job completes)")  # fmt: skip
    if status == FAILED:
        raise GatewayError(409, f"Video job {job.id} failed and made no video: {job.error}")
    if status != COMPLETED:
        raise GatewayError(409, f"Video job {job.id} is not finished yet (status {status}); poll its polling_url")
    if index >= job.outputs:
        raise GatewayError(404, f"Video job {job.id} made {job.outputs} video(s): there is no index {index}")
    path = content.path_of(st.settings.data_dir, job.id, index)
    if await asyncio.to_thread(path.is_file):
        return FileResponse(path, media_type="video/mp4")
    return Response(await _from_upstream(st, job, index), media_type="video/mp4")


async def _from_upstream(st: AppState, job: Job, index: int) -> bytes:
    """Another instance stored the video (its own disk): fetch it from the provider instead."""
    poller: Poller = poller_of(st)
    found = poller.where(job)
    if found is None:
        raise GatewayError(502, f"The video of job {job.id} is not stored here and its provider is not configured")
    _, provider, endpoint = found
    try:
        return await API_OF[provider.api].content(
            poller.upstream(provider, endpoint, job), job.upstream_id, index, job.request
        )
    except UpstreamError as err:
        raise GatewayError(502, f"The provider could not hand over the video of job {job.id}: {err.message}") from None


def _pricing_skus(pricing: Pricing) -> dict[str, str] | None:
    skus = {name: price_str(getattr(pricing, name)) for name in ("video_second", "request") if getattr(pricing, name)}
    return skus or None


def model_body(st: AppState, model: Model) -> dict[str, Any]:
    endpoints = st.catalog.live_endpoints(model)
    cheapest = min(endpoints, key=lambda ep: ep.pricing.video_second)
    # The catalog does not describe which sizes or durations a model takes: null is "not stated".
    return {
        "id": model.id, "canonical_slug": model.canonical_slug or model.id, "name": model.name,
        "created": model.created, "description": model.description, "hugging_face_id": model.hugging_face_id,
        "supported_resolutions": None, "supported_aspect_ratios": None, "supported_sizes": None,
        "supported_durations": None, "supported_frame_images": None, "upscale_factor": None, "creativity": None,
        "generate_audio": None, "seed": None, "allowed_passthrough_parameters": [],
        "pricing_skus": _pricing_skus(cheapest.pricing),
    }  # fmt: skip


async def list_models(request: Request) -> Response:
    st = state(request)
    served = [m for m in st.catalog.live_models() if VIDEOS.serves(m)]
    return JSONResponse({"data": [model_body(st, m) for m in sorted(served, key=lambda m: m.id)]})


async def start(st: AppState) -> Callable[[], Awaitable[None]]:
    """The worker's poller, from startup: jobs left unfinished by a restart are followed at once."""
    poller = poller_of(st)
    return poller.close


routes = [
    Route("/videos", _Endpoint(VIDEOS), methods=["POST"]),
    Route("/videos/models", list_models, methods=["GET"]),
    Route("/videos/{jobId}", get_job, methods=["GET"]),
    Route("/videos/{jobId}/content", get_content, methods=["GET"]),
]

_JOB_ID = {"jobId": "The video job's id, as POST /videos answered it"}
TAGS = {"Video Generation": "Video generation jobs: submitted, polled, billed when they complete"}
OPERATIONS = {
    ("/videos", "post"): Operation(
        operation_id="createVideos",
        summary="Submit a video generation request",
        tag="Video Generation",
        auth="inference",
        body=vs.VideoGenerationRequest,
        response=vs.VideoGenerationResponse,
        status=202,
        response_description="Accepted: the job, and the URL to poll it at",
        description="Nothing is charged now: the worst case is reserved, and the job is billed when it completes "
        "(per second of video); a failed job costs nothing.",
        errors=(400, 401, 402, 404, 429, 500, 502, 503),
    ),
    ("/videos/{jobId}", "get"): Operation(
        operation_id="getVideos",
        summary="Poll video generation status",
        tag="Video Generation",
        auth="inference",
        response=vs.VideoGenerationResponse,
        response_description="The job: its status, and once completed its content URLs and cost",
        errors=(401, 404, 500),
        path_parameters=_JOB_ID,
    ),
    ("/videos/{jobId}/content", "get"): Operation(
        operation_id="listVideosContent",
        summary="Download generated video content",
        tag="Video Generation",
        auth="inference",
        query=vs.VideoContentQuery,
        response=None,
        response_media={"video/mp4": {"type": "string", "format": "binary"}},
        response_description="The video's bytes (video/mp4)",
        errors=(400, 401, 404, 409, 410, 500, 502),
        path_parameters=_JOB_ID,
    ),
    ("/videos/models", "get"): Operation(
        operation_id="listVideosModels",
        summary="List all video generation models",
        tag="Video Generation",
        auth="none",
        response=vs.VideoModelsListResponse,
        errors=(500,),
    ),
}
