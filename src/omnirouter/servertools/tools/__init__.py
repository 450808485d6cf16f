"""The server tools themselves, one module each: `NAME` (the function the model calls), `TYPE` (as
requests declare it), `check(params, settings, where)` (400 on a bad configuration), `function(params)`
(the function tool the model sees) and `async run(settings, tool, args) -> Result`."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from omnirouter.accounting.cost import ZERO


@dataclass
class Result:
    """What one call produced: `content` goes to the model as the tool's result; `item` (the
    OpenRouter output item's fields) to the Responses and Messages answers."""

    content: str
    item: dict[str, Any]
    ok: bool = True  # it ran and produced a result (tool_calls_executed); False: an error the model is told
    fee: Decimal = ZERO
    counted: str | None = None  # "search" or "fetch": a web_search_requests / web_fetch_requests
    details: dict[str, Any] = field(default_factory=dict)  # the generation's plugin details (engine, counts)


def error(message: str, item: dict[str, Any]) -> Result:
    from omnirouter.jsonio import encode

    return Result(encode({"error": message}).decode(), {**item, "status": "failed", "error": message}, ok=False)
