"""An internal, non-streamed chat completion billed to a key: what a plugin runs beside the client's
request (fusion's panel, say). It takes the client's path without a client connection: plan,
guardrails, reservation, attempts, settlement, and a generation of its own (GET /generation shows
it like any other). The caller decides what a failure means; nothing here is sent to the client."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omnirouter import servertools
from omnirouter.api.ids import generation_id
from omnirouter.errors import GatewayError
from omnirouter.formats.openai_chat import CHAT
from omnirouter.governance.keys import KeyRecord
from omnirouter.jsonio import encode
from omnirouter.pipeline.attempt import RouteFailed, attempt
from omnirouter.pipeline.endpoint import _admit, _finish_completion
from omnirouter.state import AppState


@dataclass
class SubCallResult:
    gen_id: str
    model: str  # the model asked for
    completion: dict[str, Any] | None = None  # the OpenRouter chat completion (`model`: who answered)
    error: GatewayError | None = None
    recorded: bool = False  # a generation was recorded under gen_id (not when refused before any attempt)

    @property
    def text(self) -> str:
        """The first choice's text content ("" when it has none)."""
        choices = (self.completion or {}).get("choices") or [{}]
        content = (choices[0].get("message") or {}).get("content")
        if isinstance(content, list):  # content parts
            return "".join(p.get("text") or "" for p in content if isinstance(p, dict))
        return content if isinstance(content, str) else ""


async def complete(
    st: AppState, key: KeyRecord, body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> SubCallResult:
    """Run `body` (an OpenRouter chat request; `stream` is forced off) for `key`. `headers` are the
    request headers it carries (lower-case names: user-agent, x-title, x-openrouter-*-depth ...).
    A GatewayError (refused, every endpoint failed) comes back in the result; anything else raises."""
    gen_id = generation_id()
    result = SubCallResult(gen_id, str(body.get("model")))
    arrived = time.monotonic()
    try:
        call = await _admit(st, CHAT, headers or {}, encode({**body, "stream": False}), gen_id, False, key=key)
    except GatewayError as err:
        result.error = err
        return result
    call.arrived, call.request_id = arrived, gen_id
    try:
        if call.server_tools is None:
            outcome = await attempt(
                st.routing, call.plan, call.body, call.timeouts, stream=False, deadline=call.deadline, ctx=call.ctx
            )
        else:  # the model and the gateway's own tools (web search ...), in a loop, as for a client
            outcome = await servertools.loop.complete(call)
        result.completion = _finish_completion(call, outcome)
    except RouteFailed as err:
        call.failed(err, streamed=False)
        result.error = err
    except GatewayError as err:  # e.g. a plugin of the sub-call refused its answer
        result.error = err
    finally:
        call.release()  # settled by now unless something failed: never leave the key's money held
    result.recorded = result.completion is not None or isinstance(result.error, RouteFailed)
    return result
