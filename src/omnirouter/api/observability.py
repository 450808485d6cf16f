"""Observability destinations: /observability/destinations and /observability/destinations/{id}
(management keys only). The work is done in observability.destinations; credentials are stored
encrypted and answered masked."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.byok import _int
from omnirouter.api.jsonio import JSONResponse
from omnirouter.governance.byok_crypto import keyring_of
from omnirouter.governance.key_service import parse
from omnirouter.observability import destinations as ds
from omnirouter.observability.filters import check_rules
from omnirouter.openapi_doc import Operation
from omnirouter.state import state


async def list_destinations(request: Request) -> JSONResponse:
    await auth.management_key(request)
    q = request.query_params
    page, total = await ds.listed(
        state(request).db,
        workspace_id=q.get("workspace_id") or None,
        offset=_int(request, "offset", 0),
        limit=_int(request, "limit", ds.PAGE_DEFAULT),
    )
    data = [ds.destination_object(row, pending) for row, pending in page]
    return JSONResponse(ds.DestinationListResponse(data=data, total_count=total))


async def create_destination(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    body: ds.CreateDestination = parse(await request.body(), ds.CreateDestination)
    check_rules(ds._rules(body.filter_rules))
    row, reveal = await ds.create(st.db, keyring_of(st.settings), body)
    return JSONResponse(ds.DestinationResponse(data=ds.destination_object(row, reveal=reveal)), status_code=201)


async def get_destination(request: Request) -> JSONResponse:
    await auth.management_key(request)
    row, pending = await ds.get(state(request).db, request.path_params["id"])
    return JSONResponse(ds.DestinationResponse(data=ds.destination_object(row, pending)))


async def update_destination(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    row, pending = await ds.get(st.db, request.path_params["id"])
    body: ds.UpdateDestination = parse(await request.body(), ds.UpdateDestination)
    if body.filter_rules:
        check_rules(ds._rules(body.filter_rules))
    row = await ds.update_destination(st.db, keyring_of(st.settings), row, body)
    return JSONResponse(ds.DestinationResponse(data=ds.destination_object(row, pending)))


async def delete_destination(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    row, _ = await ds.get(st.db, request.path_params["id"])
    await ds.delete(st.db, row)
    return JSONResponse(ds.DeleteDestinationResponse(deleted=True))


PATH, ITEM = "/observability/destinations", "/observability/destinations/{id}"
routes = [
    Route(PATH, list_destinations, methods=["GET"]),
    Route(PATH, create_destination, methods=["POST"]),
    Route(ITEM, get_destination, methods=["GET"]),
    Route(ITEM, update_destination, methods=["PATCH"]),
    Route(ITEM, delete_destination, methods=["DELETE"]),
]

_ID = {"id": "The destination ID (UUID)."}

TAGS = {"Observability": "Observability endpoints"}

OPERATIONS = {
    (PATH, "get"): Operation(
        operation_id="listObservabilityDestinations",
        summary="List observability destinations",
        tag="Observability",
        auth="management",
        query=ds.DestinationQuery,
        response=ds.DestinationListResponse,
        response_description="One page of a workspace's destinations (the default workspace's without workspace_id)",
        errors=(400, 401, 403, 500),
    ),
    (PATH, "post"): Operation(
        operation_id="createObservabilityDestination",
        summary="Create an observability destination",
        tag="Observability",
        auth="management",
        body=ds.CreateDestination,
        response=ds.DestinationResponse,
        status=201,
        response_description="Created; credentials are stored encrypted and shown masked (a webhook's generated "
        "signing secret is shown in full in this answer only)",
        description="Types delivered here: webhook, otel-collector, langfuse, langsmith, s3, datadog (the others "
        "are a 400). Answers 400 when the instance has no OMNIROUTER_ENCRYPTION_KEY to encrypt credentials with, "
        "and 409 past 5 destinations of one type in a workspace.",
        errors=(400, 401, 403, 409, 500),
    ),
    (ITEM, "get"): Operation(
        operation_id="getObservabilityDestination",
        summary="Get an observability destination",
        tag="Observability",
        auth="management",
        response=ds.DestinationResponse,
        errors=(401, 403, 404, 500),
        path_parameters=_ID,
    ),
    (ITEM, "patch"): Operation(
        operation_id="updateObservabilityDestination",
        summary="Update an observability destination",
        tag="Observability",
        auth="management",
        body=ds.UpdateDestination,
        body_description="Only the fields present are changed; in `config`, a masked value sent back keeps "
        "what it masks and null resets a field.",
        response=ds.DestinationResponse,
        errors=(400, 401, 403, 404, 500),
        path_parameters=_ID,
    ),
    (ITEM, "delete"): Operation(
        operation_id="deleteObservabilityDestination",
        summary="Delete an observability destination",
        tag="Observability",
        auth="management",
        response=ds.DeleteDestinationResponse,
        response_description="Deleted: its credentials are wiped and its undelivered events dropped",
        errors=(401, 403, 404, 500),
        path_parameters=_ID,
    ),
}
