"""BYOK provider keys: /byok and /byok/{id} (management keys only). The work is done in
governance.byok_service, which the `omnirouter byok` command shares; a key is never answered in clear."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.jsonio import JSONResponse
from omnirouter.errors import GatewayError
from omnirouter.governance import byok_service as bs
from omnirouter.governance import registry
from omnirouter.governance.byok_crypto import keyring_of
from omnirouter.governance.key_service import parse
from omnirouter.openapi_doc import Operation
from omnirouter.state import state


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise GatewayError(400, f"{name} must be an integer") from None


async def list_byok(request: Request) -> JSONResponse:
    await auth.management_key(request)
    q = request.query_params
    rows, total = await bs.listed(
        state(request).db,
        workspace_id=q.get("workspace_id") or None,
        provider=q.get("provider") or None,
        offset=_int(request, "offset", 0),
        limit=_int(request, "limit", bs.PAGE_DEFAULT),
    )
    return JSONResponse(bs.BYOKKeyListResponse(data=[bs.byok_object(r) for r in rows], total_count=total))


async def create_byok(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    body: bs.CreateBYOKKey = parse(await request.body(), bs.CreateBYOKKey)
    row = await bs.create(st.db, keyring_of(st.settings), body, st.catalog.providers)
    await registry.refresh(st)  # usable on this worker at once (the others hear of it)
    return JSONResponse(bs.BYOKKeyResponse(data=bs.byok_object(row)), status_code=201)


async def get_byok(request: Request) -> JSONResponse:
    await auth.management_key(request)
    row = await bs.get(state(request).db, request.path_params["id"])
    return JSONResponse(bs.BYOKKeyResponse(data=bs.byok_object(row)))


async def update_byok(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    row = await bs.get(st.db, request.path_params["id"])
    body: bs.UpdateBYOKKey = parse(await request.body(), bs.UpdateBYOKKey)
    row = await bs.update_key(st.db, keyring_of(st.settings), row, body)
    await registry.refresh(st)
    return JSONResponse(bs.BYOKKeyResponse(data=bs.byok_object(row)))


async def delete_byok(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    await bs.delete(st.db, await bs.get(st.db, request.path_params["id"]))
    await registry.refresh(st)
    return JSONResponse(bs.DeleteBYOKKeyResponse(deleted=True))


routes = [
    Route("/byok", list_byok, methods=["GET"]),
    Route("/byok", create_byok, methods=["POST"]),
    Route("/byok/{id}", get_byok, methods=["GET"]),
    Route("/byok/{id}", update_byok, methods=["PATCH"]),
    Route("/byok/{id}", delete_byok, methods=["DELETE"]),
]

_ID = {"id": "The BYOK key's id (a UUID)"}

TAGS = {"BYOK": "Provider keys a workspace brings (bring your own key), tried before the instance's own"}

OPERATIONS = {
    ("/byok", "get"): Operation(
        operation_id="listBYOKKeys",
        summary="List BYOK provider credentials",
        tag="BYOK",
        auth="management",
        query=bs.BYOKQuery,
        response=bs.BYOKKeyListResponse,
        response_description="One page of a workspace's BYOK keys (the default workspace's without workspace_id)",
        errors=(400, 401, 403, 500),
    ),
    ("/byok", "post"): Operation(
        operation_id="createBYOKKey",
        summary="Create a BYOK provider credential",
        tag="BYOK",
        auth="management",
        body=bs.CreateBYOKKey,
        response=bs.BYOKKeyResponse,
        status=201,
        response_description="Created; the key is stored encrypted and shown only as a masked label",
        description="Answers 400 when the instance has no OMNIROUTER_ENCRYPTION_KEY to encrypt the key with.",
        errors=(400, 401, 403, 500),
    ),
    ("/byok/{id}", "get"): Operation(
        operation_id="getBYOKKey",
        summary="Get a BYOK provider credential",
        tag="BYOK",
        auth="management",
        response=bs.BYOKKeyResponse,
        errors=(401, 403, 404, 500),
        path_parameters=_ID,
    ),
    ("/byok/{id}", "patch"): Operation(
        operation_id="updateBYOKKey",
        summary="Update a BYOK provider credential",
        tag="BYOK",
        auth="management",
        body=bs.UpdateBYOKKey,
        body_description="Only the fields present are changed; `key` replaces the provider key.",
        response=bs.BYOKKeyResponse,
        errors=(400, 401, 403, 404, 500),
        path_parameters=_ID,
    ),
    ("/byok/{id}", "delete"): Operation(
        operation_id="deleteBYOKKey",
        summary="Delete a BYOK provider credential",
        tag="BYOK",
        auth="management",
        response=bs.DeleteBYOKKeyResponse,
        response_description="Deleted: its encrypted key is wiped",
        errors=(401, 403, 404, 500),
        path_parameters=_ID,
    ),
}
