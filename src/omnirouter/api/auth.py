"""Who is calling: the bearer key, checked against the in-memory key store.

A key this worker has not seen yet (created on another worker within the last sync interval) costs
one primary-key lookup; every other request is a dict lookup. A well-formed key the database does
not have is remembered for a while (KeyStore.unknown), so repeating it costs no further query.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.requests import Request

from omnirouter.api.errors import ApiError
from omnirouter.governance.keys import KeyRecord, bearer_token, is_well_formed, key_hash
from omnirouter.state import AppState, state
from omnirouter.store import repo

MANAGEMENT_ONLY = "Only management keys can perform this operation"
INFERENCE_ONLY = "Management keys cannot be used for inference requests; use an API key"


async def key_of(st: AppState, headers: Mapping[str, str]) -> KeyRecord:
    """The calling key from request headers (any mapping with lower-case names)."""
    token = bearer_token(headers.get("authorization"))
    if token is None and (api_key := headers.get("x-api-key")):  # Anthropic SDKs send this header
        token = api_key.strip()
    if not token:
        raise ApiError(401, "Missing Authentication header")
    digest = key_hash(token)
    record = st.keys.by_hash.get(digest)
    if record is None and is_well_formed(token) and digest not in st.keys.unknown:
        async with st.db.engine.connect() as conn:
            record = await repo.get_key(conn, digest)
        if record is not None:
            st.keys.put(record)
        else:
            st.keys.unknown.add(digest)
    return st.keys.admit(record)


def for_inference(key: KeyRecord) -> KeyRecord:
    if key.is_management:
        raise ApiError(403, INFERENCE_ONLY)
    return key


async def inference_caller(st: AppState, headers: Mapping[str, str]) -> KeyRecord:
    """The key of an inference request, marked as used now (in memory; the recorder persists it)."""
    key = for_inference(await key_of(st, headers))
    st.keys.touch(key)
    return key


async def any_key(request: Request) -> KeyRecord:
    return await key_of(state(request), request.headers)


async def inference_key(request: Request) -> KeyRecord:
    return for_inference(await any_key(request))


async def management_key(request: Request) -> KeyRecord:
    key = await any_key(request)
    if not key.is_management:
        raise ApiError(403, MANAGEMENT_ONLY)
    return key
