"""The Files API: GET/POST /files, GET/DELETE /files/{file_id}, GET /files/{file_id}/content.

Files belong to the API key that uploaded them: another key's file is answered as one that does not
exist (404), and a management key, which cannot make the inference requests files are for, gets 403.
The work is in omnirouter.files (store, sniffing, records, the three answer shapes and their Structs).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.jsonio import JSONResponse
from omnirouter.errors import GatewayError
from omnirouter.files import records, schemas, service, shapes
from omnirouter.governance.keys import KeyRecord
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.openapi_doc import Operation
from omnirouter.state import state

PAGE_DEFAULT, PAGE_MAX = 100, 1000
log = logging.getLogger("omnirouter")


async def _caller(request: Request) -> KeyRecord:
    key = await auth.inference_key(request)  # a management key: 403, as on every inference route
    q = request.query_params
    if q.get("provider"):
        raise GatewayError(
            400, "Files are stored by this server: storing them with a provider (`provider`) is not supported"
        )
    workspace = q.get("workspace_id")
    if workspace and workspace != (key.workspace_id or DEFAULT_WORKSPACE_ID):
        raise GatewayError(403, "This key's files are in its own workspace; workspace_id names another")
    return key


async def _owned(request: Request, key: KeyRecord) -> records.FileRecord:
    file_id = request.path_params["file_id"]
    record = await records.get_file(state(request).db.engine, file_id, key.hash)
    if record is None:
        raise GatewayError(404, f"File {file_id} not found")
    return record


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return PAGE_DEFAULT
    if not raw.isdigit() or not 1 <= int(raw) <= PAGE_MAX:
        raise GatewayError(400, f"limit must be an integer from 1 to {PAGE_MAX}")
    return int(raw)


async def list_files(request: Request) -> JSONResponse:
    key = await _caller(request)
    q = request.query_params
    if q.get("order") not in (None, "", "asc"):
        raise GatewayError(400, "order: files are listed oldest first (asc) only")
    if q.get("before_id"):
        raise GatewayError(400, "before_id is not supported: page forward with cursor, after or after_id")
    limit = _limit(q.get("limit"))
    cursor = q.get("cursor")
    after = cursor or q.get("after") or q.get("after_id") or None
    purpose = q.get("purpose") or None  # OpenAI's filter
    rows = await records.list_files(state(request).db.engine, key.hash, after, limit + 1, purpose)
    page, has_more = rows[:limit], len(rows) > limit
    return JSONResponse(shapes.list_object(page, has_more, shapes.negotiate(request.headers)))


async def upload_file(request: Request) -> JSONResponse:
    key = await _caller(request)
    record, sent_purpose = await service.upload(state(request), key, request.receive, request.headers)
    shape = shapes.negotiate(request.headers, purpose=sent_purpose)
    return JSONResponse(shapes.file_object(record, shape))


async def get_file(request: Request) -> JSONResponse:
    key = await _caller(request)
    return JSONResponse(shapes.file_object(await _owned(request, key), shapes.negotiate(request.headers)))


async def delete_file(request: Request) -> JSONResponse:
    key = await _caller(request)
    file_id = request.path_params["file_id"]
    if not await service.remove(state(request), key, file_id):
        raise GatewayError(404, f"File {file_id} not found")
    return JSONResponse(shapes.deleted_object(file_id, shapes.negotiate(request.headers)))


async def file_content(request: Request) -> JSONResponse:
    key = await _caller(request)
    record = await _owned(request, key)
    # As OpenRouter documents it: only files the server made are downloadable, uploads never (OpenAI
    # and Anthropic refuse the same). This server makes none, so every existing file answers 400.
    raise GatewayError(400, f"File {record.id} was uploaded: uploaded files are not downloadable")


async def start(st: Any) -> Callable[[], Awaitable[None]]:
    """At the worker's start: the store from settings (an S3 bucket without its keys stops the server
    here, not at the first upload); spools left by uploads a crash interrupted removed; and, in the
    background, the files of keys deleted since (nobody can reach them)."""
    st.files_service = service.Files(st.settings)
    await asyncio.to_thread(service.sweep_spools, st.files_service)
    sweep = asyncio.create_task(_sweep_deleted_keys(st))

    async def close() -> None:
        sweep.cancel()
        await asyncio.gather(sweep, return_exceptions=True)

    return close


async def _sweep_deleted_keys(st: Any) -> None:
    try:
        if removed := await service.sweep_deleted_keys(st):
            log.info("removed %d files of deleted keys", removed)
    except Exception:  # the database or the bucket is down: the next start tries again
        log.warning("could not remove the files of deleted keys", exc_info=True)


routes = [
    Route("/files", list_files, methods=["GET"]),
    Route("/files", upload_file, methods=["POST"]),
    Route("/files/{file_id}", get_file, methods=["GET"]),
    Route("/files/{file_id}", delete_file, methods=["DELETE"]),
    Route("/files/{file_id}/content", file_content, methods=["GET"]),
]


# -- The OpenAPI document (omnirouter.openapi_doc reads OPERATIONS and TAGS from here).

_Workspace = Annotated[
    str, msgspec.Meta(description="Only the key's own workspace (the default one for a key without one); another: 403")
]


class FileScope(msgspec.Struct, kw_only=True):
    workspace_id: _Workspace | UnsetType = UNSET


class FileListQuery(msgspec.Struct, kw_only=True):
    limit: Annotated[
        int, Meta(ge=1, le=PAGE_MAX, description=f"At most this many files, {PAGE_DEFAULT} by default")
    ] | (UnsetType) = UNSET
    cursor: Annotated[str, Meta(description="The previous page's `cursor`")] | UnsetType = UNSET
    workspace_id: _Workspace | UnsetType = UNSET
    after: Annotated[str, Meta(description="OpenAI-style: list the files after this id")] | UnsetType = UNSET
    after_id: Annotated[str, Meta(description="Anthropic-style: list the files after this id")] | UnsetType = UNSET
    order: Annotated[Literal["asc"], Meta(description="Oldest first, the only order (desc: 400)")] | UnsetType = UNSET
    purpose: Annotated[str, Meta(description="OpenAI-style: only files uploaded with this purpose")] | UnsetType = UNSET


_NEGOTIATION = (
    "The answer's shape (`_shape`) follows the client: `anthropic` with anthropic-version/anthropic-beta headers, "
    "`openai` for OpenAI SDKs (User-Agent OpenAI/...) and uploads with a `purpose`, else `openrouter`."
)
_FILE_ID = {"file_id": "The file's id (or_file_...), as the upload answered it"}

_UPLOAD_FORM = {
    "type": "object",
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "The file's bytes"},
        "purpose": {
            "enum": sorted(service.PURPOSES),
            "type": "string",
            "description": "OpenAI's purpose (user_data by default); sending one asks for OpenAI's shape",
        },
    },
    "required": ["file"],
}

TAGS = {"Files": "Files uploaded once and referenced by id in chat, responses and messages requests"}

OPERATIONS = {
    ("/files", "get"): Operation(
        operation_id="listFiles",
        summary="List files",
        tag="Files",
        auth="inference",
        query=FileListQuery,
        response=schemas.FileList,
        response_description="A page of the key's files, oldest first",
        description=(
            f"The calling key's files, oldest first, at most `limit` (1-1000, default {PAGE_DEFAULT}). Page with "
            "`cursor` (the previous page's), or `after`/`after_id` (an id); `order` is asc only and `before_id` is "
            "not supported (400). `provider` (storing files with a provider) is not supported on any files operation "
            f"(400). {_NEGOTIATION}"
        ),
        errors=(400, 401, 403, 500),
    ),
    ("/files", "post"): Operation(
        operation_id="uploadFile",
        summary="Upload a file",
        tag="Files",
        auth="inference",
        body_media={"multipart/form-data": _UPLOAD_FORM},
        response=schemas.FileObject,
        response_description="The uploaded file's metadata",
        description=(
            "multipart/form-data with a `file` field (and optionally OpenAI's `purpose`). The type is read from the "
            f"content: {service.ACCEPTED}; a declared part Content-Type of another kind is refused (400), as are "
            "empty files. Larger than files_max_bytes: 413, and nothing is kept. "
            f"{_NEGOTIATION}"
        ),
        errors=(400, 401, 403, 413, 500, 502),
    ),
    ("/files/{file_id}", "get"): Operation(
        operation_id="getFileMetadata",
        summary="Get file metadata",
        tag="Files",
        auth="inference",
        query=FileScope,
        response=schemas.FileObject,
        response_description="The file's metadata",
        description=f"Another key's file is not found (404). {_NEGOTIATION}",
        errors=(401, 403, 404, 500),
        path_parameters=_FILE_ID,
    ),
    ("/files/{file_id}", "delete"): Operation(
        operation_id="deleteFile",
        summary="Delete a file",
        tag="Files",
        auth="inference",
        query=FileScope,
        response=schemas.FileDeleted,
        response_description="Deleted: the file's content and metadata are gone",
        description=f"Irreversible. Another key's file is not found (404). {_NEGOTIATION}",
        errors=(401, 403, 404, 500, 502),
        path_parameters=_FILE_ID,
    ),
    ("/files/{file_id}/content", "get"): Operation(
        operation_id="downloadFileContent",
        summary="Download file content",
        tag="Files",
        auth="inference",
        query=FileScope,
        response=None,
        description=(
            "Only files the server created are downloadable, as on OpenRouter; this server creates none, so an "
            "uploaded file answers 400 (and one the key does not own 404)."
        ),
        errors=(400, 401, 403, 404, 500),
        path_parameters=_FILE_ID,
    ),
}
