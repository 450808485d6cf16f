"""Upstream handlers for `POST /embeddings`, one module per provider API, by the provider's `api`.

Each is `async embed(upstream, request) -> Embeddings` (common.py): `upstream` is the seam's one
attempt at one endpoint (pipeline/modality.py `Upstream`: its URL, secret and HTTP pool), `request`
what modalities/embeddings.py parsed.
"""

from __future__ import annotations

from omnirouter.providers.embeddings import azure, bedrock, cohere, gemini, jina, openai, sandbox, voyage

HANDLERS = {
    "openai": openai.embed,
    "azure": azure.embed,
    "gemini": gemini.embed,
    "bedrock": bedrock.embed,
    "cohere": cohere.embed,
    "voyage": voyage.embed,
    "jina": jina.embed,
    "sandbox": sandbox.embed,
}

# The provider APIs new with embeddings (providers/apis.py must list them to make them routable).
NEW_APIS = frozenset({"cohere", "voyage", "jina"})
