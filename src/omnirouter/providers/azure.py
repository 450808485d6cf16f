"""Azure OpenAI: the OpenAI chat wire at a deployment's URL, authenticated with an ``api-key`` header.

A provider with ``api: azure`` has the resource URL as ``base_url`` (``https://NAME.openai.azure.com``)
and optionally an ``api_version``; an endpoint's ``upstream_model`` is the deployment name. Requests,
answers, streams and errors are OpenAI's, so everything but the target is openai_compat's.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from omnirouter.catalog.types import Endpoint, Provider
from omnirouter.providers.http1 import Origin
from omnirouter.providers.openai_compat import OpenAICompatAdapter, build_target

# The latest generally available data-plane version when this was written; a provider overrides it.
DEFAULT_API_VERSION = "2024-10-21"


def deployment_url(provider: Provider, deployment: str) -> str:
    version = provider.api_version or DEFAULT_API_VERSION
    return (
        f"{provider.base_url.rstrip('/')}/openai/deployments/{quote(deployment, safe='')}"
        f"/chat/completions?api-version={quote(version, safe='')}"
    )


class AzureAdapter(OpenAICompatAdapter):
    def target(self, provider: Provider, endpoint: Endpoint, api_key: str | None) -> tuple[Origin, bytes]:
        key = api_key or provider.api_key
        auth = {"api-key": key} if key else {}
        return build_target(provider, deployment_url(provider, endpoint.upstream_model), auth)

    def target_key(self, provider: Provider, endpoint: Endpoint) -> Any:
        return provider.slug, endpoint.upstream_model  # one URL per deployment
