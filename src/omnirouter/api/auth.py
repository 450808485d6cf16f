"""Who is calling: the bearer key, checked against the in-memory key store.

A key this worker has not seen yet (created on another worker within the last sync interval) costs
one primary-key lookup; every other request is a dict lookup.
"""

from __future__ import annotations

from starlette.requests import Request

from omnirouter.api.errors import ApiError
from omnirouter.governance.keys import KeyRecord, bearer_token, is_well_formed, key_hash
from omnirouter.state import state
from omnirouter.store import repo

MANAGEMENT_ONLY = "Only management keys can perform this operation"
INFERENCE_ONLY = "Management keys cannot be used for inference requests; use an API key"


async def any_key(request: Request) -> KeyRecord:
    st = state(request)
    token = bearer_token(request.headers.get("authorization"))
    if token is None and request.headers.get("x-api-key"):  # Anthropic SDKs send this header
        token = request.headers["x-api-key"].strip()
    known = None
    if token and is_well_formed(token) and key_hash(token) not in st.keys.by_hash:
        async with st.db.engine.connect() as conn:
            known = await repo.get_key(conn, key_hash(token))
        if known is not None:
            st.keys.put(known)
    return st.keys.check(token, known=known)


async def inference_key(request: Request) -> KeyRecord:
    key = await any_key(request)
    if key.is_management:
        raise ApiError(403, INFERENCE_ONLY)
    return key


async def management_key(request: Request) -> KeyRecord:
    key = await any_key(request)
    if not key.is_management:
        raise ApiError(403, MANAGEMENT_ONLY)
    return key
