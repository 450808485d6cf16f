"""Key management: /keys (management keys only) and /key (the calling key). The work is done in
governance.key_service, which the `omnirouter keys` command shares."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.errors import ApiError
from omnirouter.api.jsonio import JSONResponse
from omnirouter.governance import key_service as ks
from omnirouter.governance.key_service import CreateKey, LimitReset, UpdateKey
from omnirouter.state import state

__all__ = ["CreateKey", "LimitReset", "UpdateKey", "routes"]


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "false").lower() == "true"


async def list_keys(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    try:
        offset = int(request.query_params.get("offset", "0"))
    except ValueError:
        raise ApiError(400, "offset must be an integer") from None
    # Without workspace_id, the default workspace's keys (as OpenRouter documents), not every workspace's.
    page = await ks.listed(
        st.db,
        workspace_id=request.query_params.get("workspace_id"),
        include_disabled=_flag(request, "include_disabled"),
        include_expired=_flag(request, "include_expired"),
        offset=offset,
    )
    return JSONResponse({"data": [ks.key_object(st.ledger, k, st.keys) for k in page]})


async def create_key(request: Request) -> JSONResponse:
    creator = await auth.management_key(request)
    st = state(request)
    body: CreateKey = ks.parse(await request.body(), CreateKey)
    record, secret = await ks.create(st.db, body, creator_user_id=creator.creator_user_id, keys=st.keys)
    return JSONResponse({"data": ks.key_object(st.ledger, record, st.keys), "key": secret}, status_code=201)


async def get_key(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    record = await ks.get(st.db, request.path_params["hash"])
    return JSONResponse({"data": ks.key_object(st.ledger, record, st.keys)})


async def update_key(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    record = await ks.get(st.db, request.path_params["hash"])
    body: UpdateKey = ks.parse(await request.body(), UpdateKey)
    record = await ks.update(st.db, record, body, keys=st.keys)
    return JSONResponse({"data": ks.key_object(st.ledger, record, st.keys)})


async def delete_key(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    await ks.delete(st.db, await ks.get(st.db, request.path_params["hash"]), keys=st.keys)
    return JSONResponse({"deleted": True})


async def current_key(request: Request) -> JSONResponse:
    key = await auth.any_key(request)
    st = state(request)
    return JSONResponse({"data": ks.current_key_object(st.ledger, key, st.governance)})


routes = [
    Route("/keys", list_keys, methods=["GET"]),
    Route("/keys", create_key, methods=["POST"]),
    Route("/keys/{hash}", get_key, methods=["GET"]),
    Route("/keys/{hash}", update_key, methods=["PATCH"]),
    Route("/keys/{hash}", delete_key, methods=["DELETE"]),
    Route("/key", current_key, methods=["GET"]),
    Route("/auth/key", current_key, methods=["GET"]),  # the legacy alias (llm-openrouter still calls it)
]
