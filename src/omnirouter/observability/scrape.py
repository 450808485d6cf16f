"""GET /metrics: this gateway's Prometheus metrics (observability/metrics.py), at the root where
scrapers look, and under /api/v1 as every operation.

Protected by the `metrics` setting: a management key or `metrics_token` as the bearer
("management", the default), no auth ("open"), or not served at all ("off").
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from omnirouter.api import auth
from omnirouter.api.errors import ApiError
from omnirouter.governance.keys import bearer_token
from omnirouter.observability.metrics import CONTENT_TYPE
from omnirouter.openapi_doc import Operation
from omnirouter.state import state


async def metrics(request: Request) -> Response:
    st = state(request)
    if st.metrics is None:
        raise ApiError(404, "Not Found")
    if st.settings.metrics == "management":
        token = st.settings.metrics_token
        given = bearer_token(request.headers.get("authorization"))
        if token is None or given is None or not hmac.compare_digest(given.encode(), token.get_secret_value().encode()):
            await auth.management_key(request)
    return Response(st.metrics.render(), media_type=CONTENT_TYPE)


routes = [Route("/metrics", metrics, methods=["GET"])]

TAGS = {"Metrics": "Prometheus metrics of this gateway (also served at the root: /metrics)"}

OPERATIONS = {
    ("/metrics", "get"): Operation(
        operation_id="getMetrics",
        summary="Prometheus metrics",
        tag="Metrics",
        auth="management",
        response=None,
        response_media={CONTENT_TYPE.split(";")[0]: {"type": "string"}},
        response_description="The Prometheus text exposition format",
        errors=(401, 403, 404, 500),
        description=(
            "Requests, errors, tokens and cost by model, provider and key name; gateway overhead, time to first "
            "token and duration histograms; circuit states, streams in flight and the recorder's queue; summed "
            "over every worker. With the `metrics` setting at `management` (the default) the bearer is a "
            "management key or `metrics_token`; `open` needs none; `off` answers 404 (docs/api.md, Metrics)."
        ),
    ),
}
