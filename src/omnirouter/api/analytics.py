"""GET /activity, GET /analytics/meta, POST /analytics/query and POST /generation/feedback (management
key: the organisation's generations, every workspace's). The work is observability's: activity.py,
analytics.py, and the rollups they read."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert
from starlette.requests import Request
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.errors import ApiError, not_found
from omnirouter.api.jsonio import JSONResponse, decode
from omnirouter.governance import key_service as ks
from omnirouter.governance import workspace_service as ws
from omnirouter.observability import activity as act
from omnirouter.observability import analytics
from omnirouter.observability import schemas as s
from omnirouter.openapi_doc import Operation
from omnirouter.state import state
from omnirouter.store import repo
from omnirouter.store.tables import generation_feedback


async def get_activity(request: Request) -> JSONResponse:
    await auth.management_key(request)
    st = state(request)
    p = request.query_params
    if (group_by := p.get("group_by")) is not None and group_by != "workspace":
        raise ApiError(400, f"Invalid group_by {group_by!r}: the only grouping is 'workspace'")
    today = datetime.now(UTC).date()
    day = act.checked_day(p["date"], today) if p.get("date") is not None else None
    workspace_id = p.get("workspace_id")
    if workspace_id is not None:
        workspace_id = (await ws.get(st.db, workspace_id)).id  # a 404 for a workspace the instance lacks
    query = act.ActivityQuery(
        day=day,
        key_hash=p.get("api_key_hash"),
        user_id=p.get("user_id"),
        workspace_id=workspace_id,
        by_workspace=group_by == "workspace",
    )
    return JSONResponse({"data": await act.activity(st.db, query, today=today)})


async def get_meta(request: Request) -> JSONResponse:
    await auth.management_key(request)
    return JSONResponse({"data": analytics.meta()})


async def query_analytics(request: Request) -> JSONResponse:
    await auth.management_key(request)
    raw = await request.body()
    try:
        body = decode(raw) if raw else None
    except ValueError:
        raise ApiError(400, "Invalid JSON in request body") from None
    query = analytics.parse(body)
    result = await analytics.run(state(request).db, query)
    data: dict[str, Any] = {
        "data": result.rows,
        "metadata": {
            "query_time_ms": round(result.query_time_ms, 3),
            "row_count": len(result.rows),
            "truncated": result.truncated,
        },
    }
    if result.warnings:
        data["warnings"] = result.warnings
    return JSONResponse({"data": data})


async def submit_feedback(request: Request) -> JSONResponse:
    key = await auth.management_key(request)
    st = state(request)
    body: s.SubmitGenerationFeedbackRequest = ks.parse(await request.body(), s.SubmitGenerationFeedbackRequest)
    gen_id = body.generation_id
    row = st.recorder.unflushed.get(gen_id)
    if row is None and "\x00" not in gen_id:
        async with st.db.engine.connect() as conn:
            row = await repo.get_generation(conn, gen_id)
    if row is None:  # a management key's scope is the organisation: every generation on the instance
        raise not_found(f"Generation {gen_id} not found")
    async with st.db.engine.begin() as conn:
        await conn.execute(
            insert(generation_feedback).values(
                id=str(uuid.uuid4()),
                generation_id=gen_id,
                key_hash=key.hash,
                workspace_id=row.get("workspace_id"),
                category=body.category,
                comment=body.comment,
                created_at=datetime.now(UTC),
            )
        )
    return JSONResponse({"data": {"success": True}})


routes = [
    Route("/activity", get_activity, methods=["GET"]),
    Route("/analytics/meta", get_meta, methods=["GET"]),
    Route("/analytics/query", query_analytics, methods=["POST"]),
    Route("/generation/feedback", submit_feedback, methods=["POST"]),
]

TAGS = {"Analytics": "Activity and analytics of this instance's generations (docs/api.md, Analytics)"}

OPERATIONS = {
    ("/activity", "get"): Operation(
        operation_id="getUserActivity",
        summary="Get user activity grouped by endpoint",
        tag="Analytics",
        auth="management",
        query=s.ActivityQuery,
        response=s.ActivityResponse,
        response_description="Returns user activity data grouped by endpoint",
        errors=(400, 401, 403, 404, 500),
        description=(
            "The last 30 completed UTC days of the instance's generations by date, model and endpoint, summed "
            "from daily rollups. `workspace_id` narrows to one workspace; `group_by=workspace` splits each row "
            "per workspace. Activity recorded before workspaces existed is the default workspace's."
        ),
    ),
    ("/analytics/meta", "get"): Operation(
        operation_id="getAnalyticsMeta",
        summary="Get available analytics metrics and dimensions",
        tag="Analytics",
        auth="management",
        response=s.AnalyticsMetaResponse,
        response_description="Returns analytics query metadata",
        errors=(401, 403, 500),
    ),
    ("/analytics/query", "post"): Operation(
        operation_id="queryAnalytics",
        summary="Query analytics data",
        tag="Analytics",
        auth="management",
        body=s.AnalyticsQueryRequest,
        response=s.AnalyticsQueryResponse,
        response_description="Analytics query results",
        errors=(400, 401, 403, 500),
        description=(
            "Metrics by up to two dimensions and a time granularity, over `time_range` (by default the 30 days "
            "up to the end of the current hour). Metric, dimension, operator and granularity names are those of "
            "GET /analytics/meta; any other is a 400 naming it. Answered from the hourly rollups when they hold "
            "what the query needs, from the generations otherwise."
        ),
    ),
    ("/generation/feedback", "post"): Operation(
        operation_id="submitGenerationFeedback",
        summary="Submit feedback for a generation",
        tag="Generations",
        auth="management",
        body=s.SubmitGenerationFeedbackRequest,
        response=s.SubmitGenerationFeedbackResponse,
        response_description="Feedback recorded successfully",
        errors=(400, 401, 403, 404, 500),
        description="Stored with the generation; counted by the `feedback_count` analytics metric.",
    ),
}
