"""Request ids and structured logs.

Every HTTP request gets a request id: the caller's `X-Request-Id` when it is a plausible id (what a
proxy in front, such as nginx's `$request_id`, already logged), else the generation id for an
inference request and a fresh `req-...` id for anything else. It is answered in `X-Request-Id`,
stored on the generation (`request_id`), and, with `log_format: json`, written on every log line the
request causes (a context variable: each request runs in a task of its own).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Any

from starlette.types import Message, Send

from omnirouter.api.ids import generation_id
from omnirouter.pipeline.attempt import scrub

REQUEST_ID: ContextVar[str | None] = ContextVar("omnirouter_request_id", default=None)
HEADER = b"x-request-id"
# Letters, digits and the punctuation of UUIDs, ULIDs, nginx and cloud load balancers' ids; at most 128.
_PLAUSIBLE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:=+/-]{0,127}")


def request_id(headers: Mapping[str, str], default: str) -> str:
    """This request's id (the caller's if plausible and not key-like, else `default`), made current."""
    given = headers.get("x-request-id")
    rid = given if given and _PLAUSIBLE.fullmatch(given) and scrub(given, None) == given else default
    REQUEST_ID.set(rid)
    return rid


def new_request_id() -> str:
    return "req-" + generation_id().rsplit("-", 1)[1]


def with_request_id(send: Send, rid: str) -> Send:
    """`send`, with the request id among the response's headers."""
    value = rid.encode()

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", ()), (HEADER, value)]
        await send(message)

    return sending


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the request id during a request, and
    a traceback if any; anything key-like in it redacted (attempt.scrub)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (rid := REQUEST_ID.get()) is not None:
            out["request_id"] = rid
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return scrub(json.dumps(out, ensure_ascii=False, default=str), None) or ""


def log_config(log_format: str, level: str) -> dict[str, Any] | None:
    """uvicorn's `log_config` for `log_format` (None: uvicorn's own text format)."""
    if log_format != "json":
        return None
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {"default": handler},
        "loggers": {
            **{name: {"handlers": ["default"], "propagate": False} for name in ("uvicorn", "uvicorn.access")},
            "aiosqlite": {"level": "INFO"},  # a debug line per statement: nothing an operator reads
        },
        "root": {"handlers": ["default"], "level": level.upper()},
    }
