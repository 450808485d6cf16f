"""Image generation: POST /images (OpenRouter's ImageGenerationRequest/Response); for OpenAI SDKs, POST
/images/generations (`client.images.generate`) and POST /images/edits (`client.images.edit`, a form) in
OpenAI's shapes; GET /images/models and GET /images/models/{author}/{slug}/endpoints.

Generation runs on the shared inference pipeline (pipeline/modality.py: auth, plan, reserve, attempt with
fallbacks, settle, record); the upstreams are providers/images/ (OpenAI Images, Gemini, the sandbox).
A request is billed per image returned (pricing.image_output) and per token where the upstream counts
them (pricing.prompt / completion), only when at least one usable image came back (providers/images/answer.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal
from weakref import WeakKeyDictionary

import msgspec
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Send

from omnirouter.accounting.units import Units
from omnirouter.api.schemas import CostDetails
from omnirouter.catalog.catalog import Catalog, split_variants
from omnirouter.catalog.types import Endpoint, Model
from omnirouter.errors import GatewayError
from omnirouter.jsonio import encode, money
from omnirouter.openapi_doc import Operation
from omnirouter.pipeline.answer import send_json
from omnirouter.pipeline.modality import ModalityEndpoint
from omnirouter.providers.images import azure, edit_form, gemini, openai, sandbox
from omnirouter.providers.images.answer import ImageAnswer
from omnirouter.providers.images.request import (
    ASPECT_RATIOS,
    MAX_REFERENCES,
    ImageGenerationRequest,
    Size,
    prompt_of,
    validated,
)

# A worst case for the reservation when an endpoint prices tokens, by the quality asked: gpt-image-1 counts
# at most 400 output tokens for a low-quality image, 1584 for a medium one and 6240 for a high one
# (1536x1024); Gemini at most 2000 (4K) whatever the quality.
WORST_OUTPUT_TOKENS_PER_IMAGE = {"low": 2048, "medium": 2048, "high": 8192}
WORST_OUTPUT_TOKENS_UNSAID = 8192  # "auto" or nothing: the model may choose high
WORST_INPUT_TOKENS_PER_REFERENCE = 1024


# ------------------------------------------------------------------------------------------- shapes


class ImageData(msgspec.Struct, kw_only=True, omit_defaults=True):
    b64_json: str
    media_type: str | None = None


class ImageUsage(msgspec.Struct, kw_only=True):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: Decimal
    is_byok: bool
    cost_details: CostDetails


class ImageGenerationResponse(msgspec.Struct, kw_only=True):
    created: int
    data: list[ImageData]
    usage: ImageUsage


class OpenAIImagesRequest(msgspec.Struct, kw_only=True):
    """OpenAI's images.generate body. Its other fields (style, moderation, partial_images) are accepted
    and ignored; `quality` "hd"/"standard" (DALL·E 3's words) read as high/auto."""

    model: str
    prompt: Annotated[str, Meta(min_length=1)]
    n: Annotated[int, Meta(ge=1, le=10)] = 1
    size: Size | None = None
    quality: Literal["auto", "low", "medium", "high", "standard", "hd"] | None = None
    response_format: Literal["url", "b64_json"] | None = None
    output_format: Literal["png", "jpeg", "webp"] | None = None
    output_compression: Annotated[int, Meta(ge=0, le=100)] | None = None
    background: Literal["auto", "transparent", "opaque"] | None = None
    user: str | None = None
    stream: Literal[False] | None = None  # partial images are not streamed here: use POST /images


class OpenAIImage(msgspec.Struct, kw_only=True, omit_defaults=True):
    b64_json: str | None = None
    url: str | None = None  # response_format "url": a data URL (this gateway keeps no images to link to)


class OpenAIInputTokensDetails(msgspec.Struct, kw_only=True):
    text_tokens: int
    image_tokens: int


class OpenAIImagesUsage(msgspec.Struct, kw_only=True):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    input_tokens_details: OpenAIInputTokensDetails
    cost: Decimal


class OpenAIImagesResponse(msgspec.Struct, kw_only=True, omit_defaults=True):
    created: int
    data: list[OpenAIImage]
    usage: OpenAIImagesUsage
    output_format: str | None = None


# ------------------------------------------------------------------------------------------- generation


def _decode(raw: bytes) -> Any:
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise GatewayError(400, "Request body must be valid JSON") from None


def _convert(body: Any, kind: type, *, strict: bool = True) -> Any:
    """`body` as `kind`; a form's text fields (`strict` False) may carry numbers as text."""
    if not isinstance(body, dict):
        raise GatewayError(400, "Request body must be a JSON object")
    # JSON has one number type: 2.0 is the integer 2 (n, seed, output_compression), as chat reads it.
    body = {k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in body.items()}
    try:
        return msgspec.convert(body, kind, strict=strict)
    except msgspec.ValidationError as exc:
        raise GatewayError(400, f"Invalid request: {exc}") from None


class Images:
    """The `images` modality (pipeline/modality.Modality): OpenRouter's shapes, or OpenAI's: its
    images.generate JSON body, or its images.edit form."""

    name = "images"
    api_type = "image"
    handlers: Mapping[str, Any] = {
        "openai": openai.generate,
        "azure": azure.generate,
        "gemini": gemini.generate,
        "sandbox": sandbox.generate,
    }

    def __init__(self, shape: Literal["openrouter", "openai", "openai-edit"] = "openrouter") -> None:
        self.shape = shape
        self.openai_shape = shape != "openrouter"

    def serves(self, model: Model) -> bool:
        return "image" in model.architecture.output_modalities

    def parse(self, raw: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        if self.shape == "openrouter":
            return validated(_convert(_decode(raw), ImageGenerationRequest))
        if self.shape == "openai-edit":
            fields, references = edit_form.read(raw, headers.get("content-type", ""))
            req: OpenAIImagesRequest = _convert(fields, OpenAIImagesRequest, strict=False)
        else:
            req, references = _convert(_decode(raw), OpenAIImagesRequest), []
        quality = {"hd": "high", "standard": "auto"}.get(req.quality or "", req.quality)
        fields = {
            "model": req.model,
            "prompt": req.prompt,
            "n": req.n,
            "size": req.size,
            "quality": quality,
            "output_format": req.output_format,
            "output_compression": req.output_compression,
            "background": req.background,
            "user": req.user,
            "input_references": [{"type": "image_url", "image_url": {"url": url}} for url in references] or None,
        }
        out = validated(_convert({k: v for k, v in fields.items() if v is not None}, ImageGenerationRequest))
        out["response_format"] = req.response_format or "b64_json"
        return out

    def worst_case(self, request: dict[str, Any], cand: Any) -> Units:
        n = request.get("n") or 1
        prompt_tokens = len(prompt_of(request)) // 2 + 1  # generous: 2 characters a token
        prompt_tokens += len(request.get("references") or ()) * WORST_INPUT_TOKENS_PER_REFERENCE
        per_image = WORST_OUTPUT_TOKENS_PER_IMAGE.get(request.get("quality") or "", WORST_OUTPUT_TOKENS_UNSAID)
        return Units(input_tokens=prompt_tokens * n, output_tokens=per_image * n, images=n)

    async def respond(self, call: Any, answer: ImageAnswer, send: Send) -> None:
        cost = call.settle(answer)
        units = answer.units
        total = units.input_tokens + units.output_tokens
        payload: Any
        if self.openai_shape:
            as_url = call.body.get("response_format") == "url"
            data = [
                OpenAIImage(url=f"data:{i.media_type or 'image/png'};base64,{i.b64}")
                if as_url
                else OpenAIImage(b64_json=i.b64)
                for i in answer.images
            ]
            usage = OpenAIImagesUsage(
                input_tokens=units.input_tokens,
                output_tokens=units.output_tokens,
                total_tokens=total,
                # The upstream's split of its input is not kept: every input token is counted as text.
                input_tokens_details=OpenAIInputTokensDetails(text_tokens=units.input_tokens, image_tokens=0),
                cost=money(cost.total),
            )
            payload = OpenAIImagesResponse(created=call.created, data=data, usage=usage)
        else:
            payload = ImageGenerationResponse(
                created=call.created,
                data=[ImageData(b64_json=i.b64, media_type=i.media_type) for i in answer.images],
                usage=ImageUsage(
                    prompt_tokens=units.input_tokens,
                    completion_tokens=units.output_tokens,
                    total_tokens=total,
                    cost=money(cost.total),
                    is_byok=cost.is_byok,
                    cost_details=CostDetails(
                        upstream_inference_cost=money(cost.prompt + cost.completion),
                        upstream_inference_prompt_cost=money(cost.prompt),
                        upstream_inference_completions_cost=money(cost.completion),
                    ),
                ),
            )
        await send_json(send, 200, encode(payload), call.gen_id, {})


IMAGES = Images()
OPENAI_IMAGES = Images("openai")
OPENAI_IMAGE_EDITS = Images("openai-edit")


# ------------------------------------------------------------------------------------------- listings

ImageInput = Literal["text", "image", "file", "audio", "video"]
ImageOutput = Literal["text", "image", "embeddings", "audio", "video", "rerank", "speech", "transcription"]


class EnumCapability(msgspec.Struct, kw_only=True, tag_field="type", tag="enum"):
    values: list[str]


class RangeCapability(msgspec.Struct, kw_only=True, tag_field="type", tag="range"):
    min: int
    max: int


class BooleanCapability(msgspec.Struct, kw_only=True, tag_field="type", tag="boolean"):
    pass


Capability = EnumCapability | RangeCapability | BooleanCapability


class ImageModelArchitecture(msgspec.Struct, kw_only=True):
    input_modalities: list[ImageInput]
    output_modalities: list[ImageOutput]


class ImageModelListItem(msgspec.Struct, kw_only=True):
    id: str
    name: str
    description: str
    created: int
    architecture: ImageModelArchitecture
    supported_parameters: dict[str, Capability]
    supports_streaming: bool
    endpoints: str  # the URL of its per-endpoint records


class ImageModelsListResponse(msgspec.Struct, kw_only=True):
    data: list[ImageModelListItem]


class ImagePricingEntry(msgspec.Struct, kw_only=True):
    billable: Literal["output_image", "input_image", "input_font", "input_reference", "input_text"]
    unit: Literal["image", "megapixel", "token"]
    cost_usd: Decimal


class ImageEndpoint(msgspec.Struct, kw_only=True):
    provider_name: str
    provider_slug: str
    provider_tag: str | None
    supported_parameters: dict[str, Capability]
    allowed_passthrough_parameters: list[str]
    supports_streaming: bool
    pricing: list[ImagePricingEntry]


class ImageModelEndpointsResponse(msgspec.Struct, kw_only=True):
    id: str
    endpoints: list[ImageEndpoint]


_N = RangeCapability(min=1, max=10)
_BOOL = BooleanCapability()


def _enum(*values: str) -> EnumCapability:
    return EnumCapability(values=list(values))


def _parameters(api: str, upstream_model: str) -> dict[str, Capability]:
    """What one endpoint takes, by the API it speaks (and, for OpenAI, the model family)."""
    common: dict[str, Capability] = {"n": _N, "prompt": _BOOL}
    if api == "sandbox":
        return {**common, "aspect_ratio": _enum(*ASPECT_RATIOS), "size": _BOOL, "seed": _BOOL,
                "output_format": _enum("png", "svg"), "input_references": _BOOL}  # fmt: skip
    if api == "gemini":
        return {**common, "aspect_ratio": _enum(*gemini.RATIOS), "resolution": _enum(*gemini.SIZES), "size": _BOOL,
                "seed": _BOOL, "input_references": _BOOL}  # fmt: skip
    if upstream_model.startswith("gpt-image"):
        return {**common, "size": _enum(*openai.GPT_IMAGE_SIZES.values()), "aspect_ratio": _enum("1:1", "3:2", "2:3"),
                "quality": _enum("auto", "low", "medium", "high"), "background": _enum("auto", "transparent", "opaque"),
                "output_format": _enum("png", "jpeg", "webp"), "output_compression": RangeCapability(min=0, max=100),
                "input_references": _BOOL}  # fmt: skip
    if upstream_model.startswith("dall-e-3"):
        return {**common, "n": RangeCapability(min=1, max=1), "size": _enum(*openai.DALL_E_3_SIZES.values()),
                "aspect_ratio": _enum("1:1", "16:9", "9:16"), "quality": _enum("auto", "high")}  # fmt: skip
    return {**common, "size": _BOOL, "aspect_ratio": _BOOL, "resolution": _BOOL}


def _pricing(ep: Endpoint) -> list[ImagePricingEntry]:
    p = ep.pricing
    lines = [
        ("output_image", "image", p.image_output),
        ("input_image", "image", p.image),
        ("input_text", "token", p.prompt),
        ("output_image", "token", p.completion),
    ]
    return [ImagePricingEntry(billable=b, unit=u, cost_usd=money(cost)) for b, u, cost in lines if cost]  # type: ignore[arg-type]


def _modalities(values: list[str], allowed: tuple[str, ...]) -> list[Any]:
    return [v for v in values if v in allowed]


class _Listing:
    """One catalog's image listings, built once (the catalog is immutable)."""

    def __init__(self, catalog: Catalog, root: str) -> None:
        self.catalog = catalog
        self.items: list[ImageModelListItem] = []
        self.endpoints: dict[str, bytes] = {}
        for model in catalog.live_models():
            if not IMAGES.serves(model):
                continue
            eps = [ep for ep in catalog.live_endpoints(model) if catalog.providers[ep.provider].api in IMAGES.handlers]
            if not eps:
                continue
            records = [self._endpoint(ep) for ep in eps]
            union: dict[str, Capability] = {}
            for r in records:
                for name, cap in r.supported_parameters.items():
                    union.setdefault(name, cap)
            arch = model.architecture
            self.items.append(
                ImageModelListItem(
                    id=model.id,
                    name=model.name,
                    description=model.description,
                    created=model.created,
                    architecture=ImageModelArchitecture(
                        input_modalities=_modalities(arch.input_modalities, ImageInput.__args__),  # type: ignore[attr-defined]
                        output_modalities=_modalities(arch.output_modalities, ImageOutput.__args__),  # type: ignore[attr-defined]
                    ),
                    supported_parameters=union,
                    supports_streaming=False,
                    endpoints=f"{root}/images/models/{model.id}/endpoints",
                )
            )
            self.endpoints[model.id] = encode(ImageModelEndpointsResponse(id=model.id, endpoints=records))
        self.models_bytes = encode(ImageModelsListResponse(data=self.items))

    def _endpoint(self, ep: Endpoint) -> ImageEndpoint:
        provider = self.catalog.providers[ep.provider]
        return ImageEndpoint(
            provider_name=provider.name,
            provider_slug=provider.slug,
            provider_tag=ep.slug,
            supported_parameters=_parameters(provider.api, ep.upstream_model),
            allowed_passthrough_parameters=[],
            supports_streaming=False,
            pricing=_pricing(ep),
        )


_listings: WeakKeyDictionary[Catalog, dict[str, _Listing]] = WeakKeyDictionary()


def _listing(request: Request) -> _Listing:
    catalog: Catalog = request.app.state.omni.catalog
    root = "/v1" if request.url.path.startswith("/v1/") else "/api/v1"
    by_root = _listings.setdefault(catalog, {})
    if (listing := by_root.get(root)) is None:
        listing = by_root[root] = _Listing(catalog, root)
    return listing


async def list_models(request: Request) -> Response:
    return Response(_listing(request).models_bytes, media_type="application/json")


async def list_endpoints(request: Request) -> Response:
    listing = _listing(request)
    name = f"{request.path_params['author']}/{request.path_params['slug']}"
    model = listing.catalog.model(name) or listing.catalog.model(split_variants(name)[0])
    if model is None:
        raise GatewayError(404, f"Model {name} not found")
    if (found := listing.endpoints.get(model.id)) is None:
        raise GatewayError(404, f"Model {model.id} is not an image generation model served here")
    return Response(found, media_type="application/json")


routes = [
    Route("/images", ModalityEndpoint(IMAGES), methods=["POST"]),
    Route("/images/generations", ModalityEndpoint(OPENAI_IMAGES), methods=["POST"]),
    Route("/images/edits", ModalityEndpoint(OPENAI_IMAGE_EDITS), methods=["POST"]),
    Route("/images/models", list_models, methods=["GET"]),
    Route("/images/models/{author}/{slug}/endpoints", list_endpoints, methods=["GET"]),
]


def _edit_form() -> dict[str, Any]:
    """The /images/edits form's schema: images.generate's fields as form fields, and the image files."""
    fields = msgspec.json.schema(OpenAIImagesRequest)["$defs"]["OpenAIImagesRequest"]
    properties = {}
    for name, schema in fields["properties"].items():
        if name == "stream":
            continue
        # A form field is sent or not: it has no null (`anyOf: [X, null]` is X).
        options = [o for o in schema.get("anyOf", [schema]) if o != {"type": "null"}]
        properties[name] = {k: v for k, v in options[0].items() if k != "default"}
    image = {"type": "string", "format": "binary", "description": "An image to start from"}
    properties["image[]"] = {"type": "array", "items": image, "minItems": 1, "maxItems": MAX_REFERENCES}
    return {"type": "object", "properties": properties, "required": [*fields["required"], "image[]"]}


TAGS = {"Images": "Image generation: from a prompt, and from reference images"}

_INFERENCE_ERRORS = (400, 401, 402, 403, 404, 408, 413, 429, 500, 502, 503)

OPERATIONS = {
    ("/images", "post"): Operation(
        operation_id="createImages",
        summary="Generate an image",
        tag="Images",
        auth="inference",
        body=ImageGenerationRequest,
        body_description=(
            "`size` is a tier (512, 1K, 2K, 4K; as `resolution`) or pixels such as 1536x1024, which must agree with "
            "`resolution` and `aspect_ratio` when those are given. `input_references` (data URLs) make it an edit. "
            "`stream` is accepted and answered with the whole result as JSON."
        ),
        response=ImageGenerationResponse,
        response_description="The images, base64; billed per image (and per token where the provider counts them)",
        headers=("X-Generation-Id",),
        errors=_INFERENCE_ERRORS,
    ),
    ("/images/generations", "post"): Operation(
        operation_id="createImagesOpenAI",
        summary="Generate an image (OpenAI's Images API)",
        tag="Images",
        auth="inference",
        body=OpenAIImagesRequest,
        body_description="OpenAI's images.generate body, for OpenAI SDKs; `response_format` url answers data URLs.",
        response=OpenAIImagesResponse,
        headers=("X-Generation-Id",),
        errors=_INFERENCE_ERRORS,
    ),
    ("/images/edits", "post"): Operation(
        operation_id="createImageEditsOpenAI",
        summary="Edit images (OpenAI's Images API)",
        tag="Images",
        auth="inference",
        body_media={"multipart/form-data": _edit_form()},
        body_description=(
            "OpenAI's images.edit form: the images to start from as `image[]` (or `image`) files, PNG, JPEG, WebP "
            "or GIF, and the other fields as POST /images/generations takes them. No `mask`."
        ),
        response=OpenAIImagesResponse,
        headers=("X-Generation-Id",),
        errors=_INFERENCE_ERRORS,
    ),
    ("/images/models", "get"): Operation(
        operation_id="listImageModels",
        summary="List image generation models",
        tag="Images",
        auth="none",
        response=ImageModelsListResponse,
        response_description="Every model this instance can generate images with",
        errors=(500,),
    ),
    ("/images/models/{author}/{slug}/endpoints", "get"): Operation(
        operation_id="listImageModelEndpoints",
        summary="List endpoints for an image model",
        tag="Images",
        auth="none",
        response=ImageModelEndpointsResponse,
        response_description="Each endpoint's parameters and prices",
        errors=(404, 500),
    ),
}
