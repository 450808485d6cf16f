"""GET /credits: what the instance was funded with and what it has spent; POST /credits/coinbase: 410."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from omnirouter.accounting.ledger import INSTANCE
from omnirouter.api import auth
from omnirouter.api.errors import ApiError
from omnirouter.api.jsonio import JSONResponse, money
from omnirouter.state import state


async def get_credits(request: Request) -> JSONResponse:
    await auth.management_key(request)
    ledger = state(request).ledger
    usage = ledger.spent(INSTANCE, "total")[0]
    # Unfunded instances have unlimited credit; they report what was spent, and credits = usage.
    total = ledger.credits if ledger.credits is not None else usage
    return JSONResponse({"data": {"total_credits": money(total), "total_usage": money(usage)}})


async def coinbase(request: Request) -> JSONResponse:
    await auth.management_key(request)  # a management operation: who is asking comes before the answer
    raise ApiError(410, "Coinbase charges are not available on a self-hosted instance; use `omnirouter credits add`")


routes = [
    Route("/credits", get_credits, methods=["GET"]),
    Route("/credits/coinbase", coinbase, methods=["POST"]),
]
