"""Presets: /presets, /presets/{slug}, its versions (any key, its own workspace's presets), and
/presets/{slug}/chat/completions|messages|responses, which create a preset or its next version from an
inference body (management keys only, as the OpenAPI document's 403 says). The work is done in
governance.preset_service, which the `omnirouter presets` command shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.jsonio import JSONResponse
from omnirouter.formats import responses_schemas as rs
from omnirouter.formats.anthropic_request import MessagesRequest
from omnirouter.formats.openai_chat import ChatRequestBody
from omnirouter.governance import preset_service as ps
from omnirouter.governance import registry
from omnirouter.governance.presets import workspace_of
from omnirouter.openapi_doc import Operation, PathParameter
from omnirouter.state import state


async def list_presets(request: Request) -> JSONResponse:
    key = await auth.any_key(request)
    offset, limit = ps.page(request.query_params.get("offset"), request.query_params.get("limit"))
    return JSONResponse(await ps.listed(state(request).db, workspace_of(key), offset, limit))


async def get_preset(request: Request) -> JSONResponse:
    key = await auth.any_key(request)
    found = await ps.get(state(request).db, workspace_of(key), request.path_params["slug"])
    return JSONResponse(ps.GetPresetResponse(data=found))


async def list_versions(request: Request) -> JSONResponse:
    key = await auth.any_key(request)
    offset, limit = ps.page(request.query_params.get("offset"), request.query_params.get("limit"))
    page = await ps.versions(state(request).db, workspace_of(key), request.path_params["slug"], offset, limit)
    return JSONResponse(page)


async def get_version(request: Request) -> JSONResponse:
    key = await auth.any_key(request)
    p = request.path_params
    found = await ps.version(state(request).db, workspace_of(key), p["slug"], p["version"])
    return JSONResponse(ps.GetPresetVersionResponse(data=found))


def _create(fmt: ps.Format) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def create(request: Request) -> JSONResponse:
        key = await auth.management_key(request)
        st = state(request)
        # A version's creator_id is required: the key's user, else who it was (never the key or its hash).
        creator = ps.Creator(user_id=key.creator_user_id, id=key.creator_user_id or "management-key")
        preset = await ps.create_from_body(
            st.db, workspace_of(key), request.path_params["slug"], fmt, await request.body(), creator
        )
        await registry.refresh(st)  # usable on this worker at once (the others hear of it)
        return JSONResponse(ps.CreatePresetFromInferenceResponse(data=preset))

    create.__name__ = f"create_from_{fmt}"
    return create


routes = [
    Route("/presets", list_presets, methods=["GET"]),
    Route("/presets/{slug}", get_preset, methods=["GET"]),
    Route("/presets/{slug}/versions", list_versions, methods=["GET"]),
    Route("/presets/{slug}/versions/{version}", get_version, methods=["GET"]),
    Route("/presets/{slug}/chat/completions", _create("chat"), methods=["POST"]),
    Route("/presets/{slug}/messages", _create("messages"), methods=["POST"]),
    Route("/presets/{slug}/responses", _create("responses"), methods=["POST"]),
]

TAGS = {"Presets": "Named, versioned request configurations, used as `@preset/slug` (docs/api.md, Presets)"}

_SLUG_SCHEMA = {"pattern": ps.SLUG_PATTERN, "maxLength": 64}
_SLUG: dict[str, PathParameter] = {"slug": ("URL-safe slug identifying the preset: " + ps.SLUG_RULE, _SLUG_SCHEMA)}
_CREATE_SLUG: dict[str, PathParameter] = {
    "slug": ("URL-safe slug identifying the preset, created if it does not exist: " + ps.SLUG_RULE, _SLUG_SCHEMA)
}
_CREATE = (
    "Creates a preset (or a new version of an existing one, which becomes the active one) from an inference "
    "request body. Only fields that overlap with the preset config are persisted; other fields (e.g. `messages`, "
    "`input`, `stream`, `prompt`) are silently ignored. The system prompt is kept apart, in the version's "
    "`system_prompt`."
)


def _create_operation(operation_id: str, summary: str, body: object) -> Operation:
    return Operation(
        operation_id=operation_id,
        summary=summary,
        tag="Presets",
        auth="management",
        body=body,
        response=ps.CreatePresetFromInferenceResponse,
        response_description="Preset created or updated",
        errors=(400, 401, 403, 404, 409, 500),  # 404: as OpenRouter's document (a path no route serves)
        description=_CREATE,
        path_parameters=_CREATE_SLUG,
    )


OPERATIONS = {
    ("/presets", "get"): Operation(
        operation_id="listPresets",
        summary="List presets",
        tag="Presets",
        auth="any",
        query=ps.PresetsQuery,
        response=ps.ListPresetsResponse,
        response_description="Paginated list of the workspace's presets, most recently updated first",
        errors=(400, 401, 500),
    ),
    ("/presets/{slug}", "get"): Operation(
        operation_id="getPreset",
        summary="Get a preset",
        tag="Presets",
        auth="any",
        response=ps.GetPresetResponse,
        response_description="Preset with its designated (active) version",
        errors=(401, 404, 500),
        path_parameters=_SLUG,
    ),
    ("/presets/{slug}/versions", "get"): Operation(
        operation_id="listPresetVersions",
        summary="List versions of a preset",
        tag="Presets",
        auth="any",
        query=ps.PresetsQuery,
        response=ps.ListPresetVersionsResponse,
        response_description="Paginated list of the preset's versions, oldest first",
        errors=(400, 401, 404, 500),
        path_parameters=_SLUG,
    ),
    ("/presets/{slug}/versions/{version}", "get"): Operation(
        operation_id="getPresetVersion",
        summary="Get a specific version of a preset",
        tag="Presets",
        auth="any",
        response=ps.GetPresetVersionResponse,
        response_description="The requested preset version",
        errors=(401, 404, 500),
        path_parameters={**_SLUG, "version": "Version number of the preset (1, 2, ...)"},
    ),
    ("/presets/{slug}/chat/completions", "post"): _create_operation(
        "createPresetsChatCompletions", "Create a preset from a chat-completions request body", ChatRequestBody
    ),
    ("/presets/{slug}/messages", "post"): _create_operation(
        "createPresetsMessages", "Create a preset from a messages request body", MessagesRequest
    ),
    ("/presets/{slug}/responses", "post"): _create_operation(
        "createPresetsResponses", "Create a preset from a responses request body", rs.ResponsesRequestBody
    ),
}
