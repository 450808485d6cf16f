"""The documented shapes of the video operations (the OpenAPI document is built from them), named as
OpenRouter's schema names them. Handlers build plain dicts; tests check them against the document."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

import msgspec
from msgspec import UNSET, Meta, UnsetType

from omnirouter.formats.openai_chat import ProviderPrefs

ASPECT_RATIOS = ("16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9", "9:21")
RESOLUTIONS = ("360p", "480p", "720p", "768p", "1080p", "1K", "2K", "4K")
STATUSES = ("pending", "in_progress", "completed", "failed", "cancelled", "expired")
FRAME_TYPES = ("first_frame", "last_frame")
MAX_DURATION = 3600  # seconds: far beyond what any video model makes, and a bound on what is reserved


def _enum(values: Any, description: str) -> Meta:
    return Meta(extra_json_schema={"enum": list(values)}, description=description)


class _Struct(msgspec.Struct, kw_only=True):
    pass


class ReferenceUrl(_Struct):
    url: Annotated[str, Meta(min_length=1)]


class FrameImage(_Struct):
    type: Annotated[str, _enum(["image_url"], "Always image_url")]
    image_url: ReferenceUrl
    frame_type: Annotated[str, _enum(FRAME_TYPES, "Whether this image is the first or the last frame")]


class ImageReference(_Struct, tag_field="type", tag="image_url"):
    image_url: ReferenceUrl


class AudioReference(_Struct, tag_field="type", tag="audio_url"):
    audio_url: ReferenceUrl


class VideoReference(_Struct, tag_field="type", tag="video_url"):
    video_url: ReferenceUrl


InputReference = ImageReference | AudioReference | VideoReference


class VideoGenerationRequest(_Struct):
    """Only the fields the gateway acts on are described; the rest of OpenRouter's are accepted."""

    model: str
    prompt: (
        Annotated[str, Meta(description="What to make; may be left out when frame_images are given")] | UnsetType
    ) = UNSET
    duration: Annotated[int, Meta(ge=1, le=MAX_DURATION, description="Seconds of video")] | UnsetType = UNSET
    aspect_ratio: Annotated[str, _enum(ASPECT_RATIOS, "Aspect ratio of the video")] | UnsetType = UNSET
    resolution: Annotated[str, _enum(RESOLUTIONS, "Resolution of the video")] | UnsetType = UNSET
    size: Annotated[str, Meta(pattern=r"^[0-9]{1,5}x[0-9]{1,5}$", description="WIDTHxHEIGHT")] | UnsetType = UNSET
    seed: Annotated[int, Meta(ge=-(2**63), le=2**63 - 1)] | UnsetType = UNSET
    generate_audio: bool | UnsetType = UNSET
    frame_images: list[FrameImage] | UnsetType = UNSET
    input_references: list[InputReference] | UnsetType = UNSET
    callback_url: (
        Annotated[str, Meta(pattern="^https://", description="Accepted; this gateway does not call it")] | UnsetType
    ) = UNSET
    models: list[str] | UnsetType = UNSET
    provider: ProviderPrefs | UnsetType = UNSET  # routing, read as chat reads it; `options` accepted too
    user: str | UnsetType = UNSET


class VideoGenerationUsage(_Struct):
    cost: Annotated[Decimal | None, Meta(description="USD, exact")]
    is_byok: bool


class VideoGenerationResponse(_Struct):
    id: Annotated[str, Meta(description="The job id, gen-vid-<unix time>-<20 characters>")]
    polling_url: str
    status: Annotated[str, _enum(STATUSES, "The job's state")]
    generation_id: (
        Annotated[str, Meta(description="The generation recorded for the job, for GET /generation")] | UnsetType
    ) = UNSET
    error: str | UnsetType = UNSET
    unsigned_urls: Annotated[list[str], Meta(description="Each video's content URL (needs the key)")] | UnsetType = (
        UNSET
    )
    usage: VideoGenerationUsage | UnsetType = UNSET
    expires_at: Annotated[int, Meta(description="Unix time when the stored videos go")] | UnsetType = UNSET


class VideoModel(_Struct):
    id: str
    canonical_slug: str
    name: str
    created: int
    description: str
    hugging_face_id: str | None
    supported_resolutions: list[str] | None
    supported_aspect_ratios: list[str] | None
    supported_sizes: list[str] | None
    supported_durations: list[int] | None
    supported_frame_images: list[str] | None
    upscale_factor: dict[str, Any] | None
    creativity: list[int] | None
    generate_audio: bool | None
    seed: bool | None
    allowed_passthrough_parameters: list[str]
    pricing_skus: Annotated[dict[str, str] | None, Meta(description="USD per unit, by unit, as strings")]


class VideoModelsListResponse(_Struct):
    data: list[VideoModel]


class VideoContentQuery(_Struct):
    index: Annotated[int, Meta(ge=0, description="Which of the job's videos (default 0)")] | UnsetType = UNSET
