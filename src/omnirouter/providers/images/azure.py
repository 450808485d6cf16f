"""Azure OpenAI image deployments (`api: azure`): OpenAI's Images API at a deployment's URL,
`{base_url}/openai/deployments/{deployment}/images/generations?api-version=...` (and `/images/edits`),
with an `api-key` header; the endpoint's `upstream_model` is the deployment, as for chat
(providers/azure.py). gpt-image deployments need a preview API version, the default here when the
provider names none."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from omnirouter.providers.images.answer import ImageAnswer
from omnirouter.providers.images.openai import generate_at

if TYPE_CHECKING:
    from omnirouter.pipeline.modality import Upstream

# The first API version with gpt-image-1 (DALL·E 3 works with it too).
IMAGES_API_VERSION = "2025-04-01-preview"


async def generate(up: Upstream, request: dict[str, Any]) -> ImageAnswer:
    version = quote(up.provider.api_version or IMAGES_API_VERSION, safe="")
    deployment = quote(up.endpoint.upstream_model, safe="")

    def url_of(path: str) -> str:
        return up.url(f"/openai/deployments/{deployment}{path}?api-version={version}")

    return await generate_at(up, request, url_of, {"api-key": up.api_key} if up.api_key else {})
