"""Workspaces (/workspaces: CRUD, budgets per interval, members) and the organisation's members
(/organization/members); management key. The work is governance.workspace_service's, which the
`omnirouter workspaces` and `omnirouter members` commands share."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.jsonio import JSONResponse
from omnirouter.governance import key_service as ks
from omnirouter.governance import registry
from omnirouter.governance import workspace_service as ws
from omnirouter.openapi_doc import Operation
from omnirouter.state import state


def _page(request: Request) -> tuple[int, int]:
    return ws.page(request.query_params.get("offset"), request.query_params.get("limit"))


async def _changed(request: Request) -> None:
    """After a write: this worker sees it at once (the others through the change notice)."""
    await registry.refresh(state(request))


async def list_members(request: Request) -> JSONResponse:
    await auth.management_key(request)
    return JSONResponse(await ws.org_members(state(request).db, *_page(request)))


async def list_workspaces(request: Request) -> JSONResponse:
    await auth.management_key(request)
    return JSONResponse(await ws.listed(state(request).db, *_page(request)))


async def create_workspace(request: Request) -> JSONResponse:
    creator = await auth.management_key(request)
    body: ws.CreateWorkspace = ks.parse(await request.body(), ws.CreateWorkspace)
    created = await ws.create(state(request).db, body, created_by=creator.creator_user_id)
    await _changed(request)
    return JSONResponse(ws.WorkspaceResponse(data=created), status_code=201)


async def get_workspace(request: Request) -> JSONResponse:
    await auth.management_key(request)
    return JSONResponse(ws.WorkspaceResponse(data=await ws.get(state(request).db, request.path_params["id"])))


async def update_workspace(request: Request) -> JSONResponse:
    await auth.management_key(request)
    body: ws.UpdateWorkspace = ks.parse(await request.body(), ws.UpdateWorkspace)
    updated = await ws.update_workspace(state(request).db, request.path_params["id"], body)
    await _changed(request)
    return JSONResponse(ws.WorkspaceResponse(data=updated))


async def delete_workspace(request: Request) -> JSONResponse:
    await auth.management_key(request)
    await ws.delete_workspace(state(request).db, request.path_params["id"])
    await _changed(request)
    return JSONResponse(ws.Deleted())


async def list_budgets(request: Request) -> JSONResponse:
    await auth.management_key(request)
    return JSONResponse(await ws.budgets(state(request).db, request.path_params["id"]))


async def get_budget(request: Request) -> JSONResponse:
    await auth.management_key(request)
    p = request.path_params
    return JSONResponse(await ws.budget(state(request).db, p["id"], p["interval"]))


async def set_budget(request: Request) -> JSONResponse:
    await auth.management_key(request)
    p = request.path_params
    body: ws.UpsertBudget = ks.parse(await request.body(), ws.UpsertBudget)
    saved = await ws.set_budget(state(request).db, p["id"], p["interval"], body)
    await _changed(request)
    return JSONResponse(saved)


async def delete_budget(request: Request) -> JSONResponse:
    await auth.management_key(request)
    p = request.path_params
    await ws.delete_budget(state(request).db, p["id"], p["interval"])
    await _changed(request)
    return JSONResponse(ws.Deleted())


async def list_workspace_members(request: Request) -> JSONResponse:
    await auth.management_key(request)
    return JSONResponse(await ws.workspace_members_of(state(request).db, request.path_params["id"], *_page(request)))


async def add_members(request: Request) -> JSONResponse:
    await auth.management_key(request)
    body: ws.MemberIds = ks.parse(await request.body(), ws.MemberIds)
    added = await ws.add_members(state(request).db, request.path_params["id"], body)
    await _changed(request)
    return JSONResponse(added)


async def remove_members(request: Request) -> JSONResponse:
    await auth.management_key(request)
    body: ws.MemberIds = ks.parse(await request.body(), ws.MemberIds)
    removed = await ws.remove_members(state(request).db, request.path_params["id"], body)
    await _changed(request)
    return JSONResponse(removed)


routes = [
    Route("/organization/members", list_members, methods=["GET"]),
    Route("/workspaces", list_workspaces, methods=["GET"]),
    Route("/workspaces", create_workspace, methods=["POST"]),
    Route("/workspaces/{id}", get_workspace, methods=["GET"]),
    Route("/workspaces/{id}", update_workspace, methods=["PATCH"]),
    Route("/workspaces/{id}", delete_workspace, methods=["DELETE"]),
    Route("/workspaces/{id}/budgets", list_budgets, methods=["GET"]),
    Route("/workspaces/{id}/budgets/{interval}", get_budget, methods=["GET"]),
    Route("/workspaces/{id}/budgets/{interval}", set_budget, methods=["PUT"]),
    Route("/workspaces/{id}/budgets/{interval}", delete_budget, methods=["DELETE"]),
    Route("/workspaces/{id}/members", list_workspace_members, methods=["GET"]),
    Route("/workspaces/{id}/members/add", add_members, methods=["POST"]),
    Route("/workspaces/{id}/members/remove", remove_members, methods=["POST"]),
]

TAGS = {
    "Organization": "The organisation's members (created by the operator: `omnirouter members add`)",
    "Workspaces": "Workspaces: keys and governance grouped, with defaults, budgets and members",
}

_REF = " `{id}` is the workspace's id or its slug."


def _op(operation_id: str, summary: str, errors: tuple[int, ...], response: type, **more: object) -> Operation:
    return Operation(
        operation_id=operation_id,
        summary=summary,
        tag="Workspaces",
        auth="management",
        errors=errors,
        response=response,
        **more,  # type: ignore[arg-type]
    )


OPERATIONS = {
    ("/organization/members", "get"): Operation(
        operation_id="listOrganizationMembers",
        summary="List organization members",
        tag="Organization",
        auth="management",
        query=ws.PageQuery,
        response=ws.OrganizationMemberList,
        errors=(400, 401, 403, 500),
    ),
    ("/workspaces", "get"): _op(
        "listWorkspaces",
        "List workspaces",
        (400, 401, 403, 500),
        ws.WorkspaceList,
        query=ws.PageQuery,
        description="The default workspace first, then the others in the order they were created.",
    ),
    ("/workspaces", "post"): _op(
        "createWorkspace",
        "Create a workspace",
        (400, 401, 403, 409, 500),
        ws.WorkspaceResponse,
        body=ws.CreateWorkspace,
        status=201,
        response_description="Created",
        description="409 when the slug is taken.",
    ),
    ("/workspaces/{id}", "get"): _op(
        "getWorkspace", "Get a workspace", (401, 403, 404, 500), ws.WorkspaceResponse, description=_REF.strip()
    ),
    ("/workspaces/{id}", "patch"): _op(
        "updateWorkspace",
        "Update a workspace",
        (400, 401, 403, 404, 409, 500),
        ws.WorkspaceResponse,
        body=ws.UpdateWorkspace,
        body_description="Only the fields present are changed.",
        description="409 when the new slug is taken." + _REF,
    ),
    ("/workspaces/{id}", "delete"): _op(
        "deleteWorkspace",
        "Delete a workspace",
        (401, 403, 404, 409, 500),
        ws.Deleted,
        description=(
            "Its budgets and memberships go with it. 403 for the default workspace; 409 while API keys "
            "still belong to it (delete them or move them with PATCH /keys/{hash} first)." + _REF
        ),
    ),
    ("/workspaces/{id}/budgets", "get"): _op(
        "listWorkspaceBudgets",
        "List workspace budgets",
        (401, 403, 404, 500),
        ws.BudgetList,
        description="Broadest interval first." + _REF,
    ),
    ("/workspaces/{id}/budgets/{interval}", "get"): _op(
        "getWorkspaceBudget",
        "Get a workspace budget",
        (400, 401, 403, 404, 500),
        ws.BudgetResponse,
        description="404 when no budget is set for the interval." + _REF,
    ),
    ("/workspaces/{id}/budgets/{interval}", "put"): _op(
        "upsertWorkspaceBudget",
        "Create or update a workspace budget",
        (400, 401, 403, 404, 500),
        ws.BudgetResponse,
        body=ws.UpsertBudget,
        description=(
            "Limits must strictly decrease as the interval narrows (lifetime > monthly > weekly > daily), "
            "else 400. `include_byok_in_budgets` is workspace-wide: it applies to every interval. Enforced "
            "on every request of the workspace's keys: once spent, 403 `Workspace <interval> budget of $<limit> "
            "exceeded. Contact your org admin.`" + _REF
        ),
    ),
    ("/workspaces/{id}/budgets/{interval}", "delete"): _op(
        "deleteWorkspaceBudget",
        "Delete a workspace budget",
        (400, 401, 403, 404, 500),
        ws.Deleted,
        description="Succeeds for an interval with no budget too." + _REF,
    ),
    ("/workspaces/{id}/members", "get"): _op(
        "listWorkspaceMembers",
        "List workspace members",
        (400, 401, 403, 404, 500),
        ws.WorkspaceMemberList,
        query=ws.PageQuery,
        description="The default workspace's members are every organization member (implicit membership)." + _REF,
    ),
    ("/workspaces/{id}/members/add", "post"): _op(
        "bulkAddWorkspaceMembers",
        "Bulk add members to a workspace",
        (400, 401, 403, 404, 500),
        ws.AddedMembers,
        body=ws.MemberIds,
        description=(
            "Each with the role they hold in the organization. 404 naming any user id that is not an "
            "organization member (nothing is added then)." + _REF
        ),
    ),
    ("/workspaces/{id}/members/remove", "post"): _op(
        "bulkRemoveWorkspaceMembers",
        "Bulk remove members from a workspace",
        (400, 401, 403, 404, 500),
        ws.RemovedMembers,
        body=ws.MemberIds,
        description=(
            "400 for the default workspace (every member belongs to it) and for members with active API keys "
            "in the workspace; 404 for user ids that are not organization members. Nothing is removed then." + _REF
        ),
    ),
}
