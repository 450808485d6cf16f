"""GET /openapi.json: this server's own OpenAPI document (filled in by omnirouter.openapi_doc)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api.jsonio import JSONResponse


async def openapi_json(request: Request) -> JSONResponse:
    from omnirouter.openapi_doc import document

    return JSONResponse(document())


routes = [Route("/openapi.json", openapi_json, methods=["GET"])]
