"""Azure OpenAI embeddings (`api: azure`): OpenAI's request and answer at a deployment's URL,
`{base_url}/openai/deployments/{deployment}/embeddings?api-version=...`, with an `api-key` header; the
endpoint's `upstream_model` is the deployment, as for chat (providers/azure.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from omnirouter.providers.azure import DEFAULT_API_VERSION
from omnirouter.providers.embeddings.common import Embeddings
from omnirouter.providers.embeddings.openai import embed_at


async def embed(upstream: Any, request: dict[str, Any]) -> Embeddings:
    provider = upstream.provider
    version = provider.api_version or DEFAULT_API_VERSION
    deployment = quote(upstream.endpoint.upstream_model, safe="")
    url = upstream.url(f"/openai/deployments/{deployment}/embeddings?api-version={quote(version, safe='')}")
    headers = {"Content-Type": "application/json"}
    if upstream.api_key:
        headers["api-key"] = upstream.api_key
    return await embed_at(upstream, request, url, headers)
