"""`openrouter:datetime`: the current date and time, in the timezone the request configures (UTC
by default), as OpenRouter's tool answers: `{"datetime": ISO 8601 with milliseconds, "timezone"}`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from omnirouter.errors import GatewayError
from omnirouter.jsonio import encode
from omnirouter.servertools.tools import Result

NAME = "datetime"
TYPE = "openrouter:datetime"


def _zone(params: dict[str, Any]) -> ZoneInfo | None:
    name = params.get("timezone")
    if name is None or name == "UTC":
        return None
    return ZoneInfo(name)


def check(params: dict[str, Any], settings: Any, where: str) -> None:
    name = params.get("timezone")
    if name is not None and not isinstance(name, str):
        raise GatewayError(400, f"Invalid request: {where}.timezone must be an IANA timezone name")
    try:
        _zone(params)
    except (ZoneInfoNotFoundError, ValueError):
        raise GatewayError(400, f"Invalid request: {where}.timezone {name!r} is not an IANA timezone name") from None


def function(params: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": NAME,
        "description": "Get the current date and time.",
        "parameters": {"type": "object", "properties": {}},
    }


def now(params: dict[str, Any]) -> tuple[str, str]:
    zone = _zone(params)
    moment = datetime.now(UTC)
    if zone is None:
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"), "UTC"
    return moment.astimezone(zone).isoformat(timespec="milliseconds"), str(params["timezone"])


async def run(settings: Any, tool: Any, args: dict[str, Any]) -> Result:
    stamp, zone = now(tool.params)
    answer = {"datetime": stamp, "timezone": zone}
    return Result(encode(answer).decode(), {"type": TYPE, "status": "completed", **answer})
