"""Guardrails: /guardrails* (management keys only), 13 operations. The work is done in
governance.guardrail_service, which the `omnirouter guardrails` command shares."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType
from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.jsonio import JSONResponse
from omnirouter.errors import GatewayError
from omnirouter.governance import guardrail_service as gs
from omnirouter.governance import registry
from omnirouter.governance.guardrail_service import BulkKeys, BulkMembers, CreateGuardrail, UpdateGuardrail
from omnirouter.governance.key_service import OFFSET_MAX
from omnirouter.openapi_doc import Operation
from omnirouter.state import state

# -- the shapes clients read (the official document's names)


class ContentFilterEntry(msgspec.Struct, kw_only=True):
    pattern: str
    action: Literal["redact", "block", "flag"]
    label: str | None


class ContentFilterBuiltinEntry(msgspec.Struct, kw_only=True):
    slug: gs.BuiltinSlug
    action: Literal["redact", "block", "flag"]
    label: Annotated[str, Meta(description="The redaction placeholder, e.g. [EMAIL]")]
    scan_scope: Literal["user_only", "all_messages"] | UnsetType = UNSET


class Guardrail(msgspec.Struct, kw_only=True):
    id: Annotated[str, Meta(extra_json_schema={"format": "uuid"})]
    name: str
    description: str | None
    workspace_id: str
    limit_usd: Annotated[Decimal, Meta(extra_json_schema={"minimum": 0})] | None  # money: every digit the ledger has
    reset_interval: gs.Interval | None
    include_byok_in_budgets: bool
    allowed_models: list[str] | None
    ignored_models: list[str] | None
    allowed_providers: list[str] | None
    ignored_providers: list[str] | None
    enforce_zdr: bool | None
    enforce_zdr_anthropic: bool | None
    enforce_zdr_openai: bool | None
    enforce_zdr_google: bool | None
    enforce_zdr_xai: bool | None
    enforce_zdr_other: bool | None
    enable_free_model_publication: bool | None
    enable_free_model_training: bool | None
    enable_paid_model_training: bool | None
    content_filters: list[ContentFilterEntry] | None
    content_filter_builtins: list[ContentFilterBuiltinEntry] | None
    created_at: str
    updated_at: str | None


class GuardrailResponse(msgspec.Struct, kw_only=True):
    data: Guardrail


class ListGuardrailsResponse(msgspec.Struct, kw_only=True):
    data: list[Guardrail]
    total_count: int


class DeleteGuardrailResponse(msgspec.Struct, kw_only=True):
    deleted: Literal[True]


class KeyAssignment(msgspec.Struct, kw_only=True):
    id: str
    key_hash: str
    guardrail_id: str
    key_name: str
    key_label: str
    assigned_by: str | None
    created_at: str


class MemberAssignment(msgspec.Struct, kw_only=True):
    id: str
    user_id: str
    organization_id: str
    guardrail_id: str
    assigned_by: str | None
    created_at: str


class ListKeyAssignmentsResponse(msgspec.Struct, kw_only=True):
    data: list[KeyAssignment]
    total_count: int


class ListMemberAssignmentsResponse(msgspec.Struct, kw_only=True):
    data: list[MemberAssignment]
    total_count: int


class AssignedCount(msgspec.Struct, kw_only=True):
    assigned_count: int


class UnassignedCount(msgspec.Struct, kw_only=True):
    unassigned_count: int


class PageQuery(msgspec.Struct, kw_only=True):
    offset: Annotated[int, Meta(ge=0, le=OFFSET_MAX, description="Records to skip")] | UnsetType | None = UNSET
    limit: Annotated[int, Meta(ge=1, le=gs.MAX_LIMIT, description="Records to return (default 50)")] | UnsetType = UNSET


class GuardrailsQuery(PageQuery, kw_only=True):
    workspace_id: Annotated[str, Meta(description="The workspace (default: the default workspace)")] | UnsetType = UNSET


# -- handlers


def _int(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value in ("", "null"):
        return None
    try:
        return int(value)
    except ValueError:
        raise GatewayError(400, f"{name} must be an integer") from None


def _page(request: Request) -> dict[str, int | None]:
    return {"offset": _int(request, "offset"), "limit": _int(request, "limit")}


async def list_guardrails(request: Request) -> JSONResponse:
    await auth.management_key(request)
    data, total = await gs.listed(
        state(request).db, workspace_id=request.query_params.get("workspace_id"), **_page(request)
    )
    return JSONResponse({"data": data, "total_count": total})


async def create_guardrail(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    body: CreateGuardrail = gs.parse(await request.body(), CreateGuardrail)
    created = await gs.create(st.db, body, st.catalog)
    return JSONResponse({"data": created}, status_code=201)


async def get_guardrail(request: Request) -> JSONResponse:
    await auth.management_key(request)
    return JSONResponse({"data": await gs.get(state(request).db, request.path_params["id"])})


async def update_guardrail(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    body: UpdateGuardrail = gs.parse(await request.body(), UpdateGuardrail)
    updated = await gs.update(st.db, request.path_params["id"], body, st.catalog)
    await registry.refresh(st)
    return JSONResponse({"data": updated})


async def delete_guardrail(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    await gs.delete(st.db, request.path_params["id"])
    await registry.refresh(st)
    return JSONResponse({"deleted": True})


async def _bulk(request: Request, kind: type[msgspec.Struct], op: Any, field: str, **kw: Any) -> JSONResponse:
    caller = await auth.management_key(request)
    st = state(request)
    body = gs.parse(await request.body(), kind)
    if kw.get("assign"):
        count = await op(st.db, request.path_params["id"], body, caller.creator_user_id)
    else:
        count = await op(st.db, request.path_params["id"], body)
    await registry.refresh(st)
    return JSONResponse({field: count})


async def assign_keys(request: Request) -> JSONResponse:
    return await _bulk(request, BulkKeys, gs.assign_keys, "assigned_count", assign=True)


async def unassign_keys(request: Request) -> JSONResponse:
    return await _bulk(request, BulkKeys, gs.unassign_keys, "unassigned_count")


async def assign_members(request: Request) -> JSONResponse:
    return await _bulk(request, BulkMembers, gs.assign_members, "assigned_count", assign=True)


async def unassign_members(request: Request) -> JSONResponse:
    return await _bulk(request, BulkMembers, gs.unassign_members, "unassigned_count")


async def guardrail_key_assignments(request: Request) -> JSONResponse:
    await auth.management_key(request)
    data, total = await gs.key_assignments(state(request).db, request.path_params["id"], **_page(request))
    return JSONResponse({"data": data, "total_count": total})


async def guardrail_member_assignments(request: Request) -> JSONResponse:
    await auth.management_key(request)
    data, total = await gs.member_assignments(state(request).db, request.path_params["id"], **_page(request))
    return JSONResponse({"data": data, "total_count": total})


async def all_key_assignments(request: Request) -> JSONResponse:
    await auth.management_key(request)
    data, total = await gs.key_assignments(state(request).db, None, **_page(request))
    return JSONResponse({"data": data, "total_count": total})


async def all_member_assignments(request: Request) -> JSONResponse:
    await auth.management_key(request)
    data, total = await gs.member_assignments(state(request).db, None, **_page(request))
    return JSONResponse({"data": data, "total_count": total})


routes = [
    Route("/guardrails", list_guardrails, methods=["GET"]),
    Route("/guardrails", create_guardrail, methods=["POST"]),
    Route("/guardrails/assignments/keys", all_key_assignments, methods=["GET"]),
    Route("/guardrails/assignments/members", all_member_assignments, methods=["GET"]),
    Route("/guardrails/{id}", get_guardrail, methods=["GET"]),
    Route("/guardrails/{id}", update_guardrail, methods=["PATCH"]),
    Route("/guardrails/{id}", delete_guardrail, methods=["DELETE"]),
    Route("/guardrails/{id}/assignments/keys", guardrail_key_assignments, methods=["GET"]),
    Route("/guardrails/{id}/assignments/keys", assign_keys, methods=["POST"]),
    Route("/guardrails/{id}/assignments/keys/remove", unassign_keys, methods=["POST"]),
    Route("/guardrails/{id}/assignments/members", guardrail_member_assignments, methods=["GET"]),
    Route("/guardrails/{id}/assignments/members", assign_members, methods=["POST"]),
    Route("/guardrails/{id}/assignments/members/remove", unassign_members, methods=["POST"]),
]

# -- the OpenAPI document's entries (operation ids, summaries and tag as OpenRouter's)

_ID = {"id": "The guardrail's id (a UUID)"}
_TAG = "Guardrails"


def _op(operation_id: str, summary: str, response: Any, errors: tuple[int, ...], **kw: Any) -> Operation:
    return Operation(operation_id=operation_id, summary=summary, tag=_TAG, auth="management", response=response,
                     errors=errors, **kw)  # fmt: skip


OPERATIONS = {
    ("/guardrails", "get"): _op(
        "listGuardrails",
        "List guardrails",
        ListGuardrailsResponse,
        (400, 401, 403, 500),
        query=GuardrailsQuery,
        description="A workspace's guardrails, oldest first (the default workspace's unless `workspace_id`).",
    ),
    ("/guardrails", "post"): _op(
        "createGuardrail",
        "Create a guardrail",
        GuardrailResponse,
        (400, 401, 403, 409, 500),
        status=201,
        body=CreateGuardrail,
        response_description="The created guardrail",
        description=(
            "A guardrail enforces nothing until it is assigned to keys or members. Regex content filters are "
            "checked now: lookarounds, backreferences and nested quantifiers are refused (400, metadata.code "
            "`invalid_regex_pattern`). Names are unique within a workspace (409)."
        ),
    ),
    ("/guardrails/{id}", "get"): _op(
        "getGuardrail",
        "Get a guardrail",
        GuardrailResponse,
        (401, 403, 404, 500),
        path_parameters=_ID,
        description="404 also for a workspace's default guardrail not configured yet.",
    ),
    ("/guardrails/{id}", "patch"): _op(
        "updateGuardrail",
        "Update a guardrail",
        GuardrailResponse,
        (400, 401, 403, 404, 409, 500),
        body=UpdateGuardrail,
        path_parameters=_ID,
        description=(
            "Collection fields are replaced whole. PATCH of a workspace's `default_guardrail_id` configures that "
            "default guardrail, which then applies to all of the workspace's traffic; its name cannot change."
        ),
    ),
    ("/guardrails/{id}", "delete"): _op(
        "deleteGuardrail", "Delete a guardrail", DeleteGuardrailResponse, (401, 403, 404, 500), path_parameters=_ID
    ),
    ("/guardrails/{id}/assignments/keys", "get"): _op(
        "listGuardrailKeyAssignments",
        "List key assignments for a guardrail",
        ListKeyAssignmentsResponse,
        (400, 401, 403, 404, 500),
        query=PageQuery,
        path_parameters=_ID,
    ),
    ("/guardrails/{id}/assignments/keys", "post"): _op(
        "bulkAssignKeysToGuardrail",
        "Bulk assign keys to a guardrail",
        AssignedCount,
        (400, 401, 403, 404, 409, 500),
        body=BulkKeys,
        path_parameters=_ID,
        description="A key holds one direct guardrail: assigning replaces it. Unknown keys: 404, nothing assigned.",
    ),
    ("/guardrails/{id}/assignments/keys/remove", "post"): _op(
        "bulkUnassignKeysFromGuardrail",
        "Bulk unassign keys from a guardrail",
        UnassignedCount,
        (400, 401, 403, 404, 500),
        body=BulkKeys,
        path_parameters=_ID,
    ),
    ("/guardrails/{id}/assignments/members", "get"): _op(
        "listGuardrailMemberAssignments",
        "List member assignments for a guardrail",
        ListMemberAssignmentsResponse,
        (400, 401, 403, 404, 500),
        query=PageQuery,
        path_parameters=_ID,
    ),
    ("/guardrails/{id}/assignments/members", "post"): _op(
        "bulkAssignMembersToGuardrail",
        "Bulk assign members to a guardrail",
        AssignedCount,
        (400, 401, 403, 404, 409, 500),
        body=BulkMembers,
        path_parameters=_ID,
        description="A member's keys follow the member's guardrail. Unknown members: 404, nothing assigned.",
    ),
    ("/guardrails/{id}/assignments/members/remove", "post"): _op(
        "bulkUnassignMembersFromGuardrail",
        "Bulk unassign members from a guardrail",
        UnassignedCount,
        (400, 401, 403, 404, 500),
        body=BulkMembers,
        path_parameters=_ID,
    ),
    ("/guardrails/assignments/keys", "get"): _op(
        "listKeyAssignments",
        "List all key assignments",
        ListKeyAssignmentsResponse,
        (400, 401, 403, 500),
        query=PageQuery,
    ),
    ("/guardrails/assignments/members", "get"): _op(
        "listMemberAssignments",
        "List all member assignments",
        ListMemberAssignmentsResponse,
        (400, 401, 403, 500),
        query=PageQuery,
    ),
}
TAGS = {_TAG: "Policies on models, providers, data retention, content and spend, assigned to keys and members"}
