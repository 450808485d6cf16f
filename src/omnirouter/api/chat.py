"""POST /chat/completions: auth, decode, plan, reserve, then answer (JSON here, SSE in chat_stream)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from omnirouter.accounting.cost import Usage
from omnirouter.api import auth
from omnirouter.api.chat_call import Call, estimate_tokens, usage_of, usage_payload
from omnirouter.api.chat_stream import ChatStream
from omnirouter.api.errors import ApiError
from omnirouter.api.ids import generation_id
from omnirouter.api.jsonio import JSONResponse, decode
from omnirouter.formats import openai_chat
from omnirouter.formats.openai_chat import normalize_finish
from omnirouter.routing.attempt import Outcome, attempt
from omnirouter.routing.plan import Needs
from omnirouter.routing.sticky import conversation_key
from omnirouter.state import state

METADATA_HEADERS = ("x-openrouter-metadata", "x-openrouter-experimental-metadata")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"Request body is larger than the {limit}-byte limit")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"Request body is larger than the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def chat_completions(request: Request) -> Any:
    gen_id = generation_id()
    try:
        call = await _admit(request, gen_id)
        if call.req.stream:
            return ChatStream(call)
        try:
            outcome = await attempt(
                call.st.routing, call.plan, call.body, call.timeouts, stream=False, deadline=call.deadline
            )
        except BaseException:
            call.release()
            raise
    except ApiError as err:  # every chat answer names its generation, errors included
        err.headers = {**(err.headers or {}), "X-Generation-Id": gen_id}
        raise
    return JSONResponse(_finish_completion(call, outcome), headers={"X-Generation-Id": gen_id})


def _web_search(body: dict[str, Any]) -> bool:
    plugins = body.get("plugins")
    return isinstance(plugins, list) and any(
        isinstance(p, dict) and p.get("id") == "web" and p.get("enabled", True) is not False for p in plugins
    )


async def _admit(request: Request, gen_id: str) -> Call:
    """Everything before the upstream: who, what, where to, and whether it can be paid for."""
    st = state(request)
    key = await auth.inference_key(request)
    raw = await read_body(request, st.settings.max_body_bytes)
    try:
        body = decode(raw)
    except Exception:
        raise ApiError(400, "Invalid JSON in request body") from None
    req = openai_chat.parse(body)
    h = request.headers
    needs = Needs(
        params=openai_chat.requested_parameters(body),
        prompt_tokens=estimate_tokens(len(raw)),
        completion_limit=req.completion_limit,
        tools=bool(req.tools),
        response_format=req.response_format is not None,
        web_search=_web_search(body),
        plugins=body.get("plugins"),
    )
    session = req.session_id or h.get("x-session-id") or body.get("prompt_cache_key")
    sticky_key = session or conversation_key(body.get("messages"))
    plan = st.routing.planner.plan(req, needs, sticky=st.routing.sticky.get(sticky_key), session=session)
    if needs.web_search and "web_search_options" not in body:
        body["web_search_options"] = {}  # the planner kept only endpoints with native search
    call = Call(
        st,
        gen_id,
        key,
        req,
        body,
        plan,
        needs,
        prompt_chars=len(raw),
        session=session,
        sticky_key=sticky_key,
        metadata=any(h.get(name, "").lower() == "enabled" for name in METADATA_HEADERS),
        referer=h.get("http-referer"),
        title=h.get("x-openrouter-title") or h.get("x-title"),
        user_agent=h.get("user-agent"),
    )
    call.reserve()
    return call


def _finish_completion(call: Call, outcome: Outcome) -> dict[str, Any]:
    """Shape the upstream answer as OpenRouter's, and settle and record it."""
    data = outcome.response or {}
    cand = outcome.candidate
    choices = data.get("choices") or []
    finish = native = None
    for choice in choices:
        native = choice.get("finish_reason")
        finish = normalize_finish(native)
        choice["finish_reason"] = finish
        choice["native_finish_reason"] = native
        choice.setdefault("logprobs", None)
    usage = usage_of(data.get("usage"))
    if usage is None:  # an upstream that reports no usage: estimate, so nothing goes unbilled
        text = "".join(str((c.get("message") or {}).get("content") or "") for c in choices)
        usage = Usage(prompt_tokens=call.needs.prompt_tokens, completion_tokens=estimate_tokens(len(text)))
    cost = call.settle(
        outcome,
        usage,
        finish,
        native,
        streamed=False,
        upstream_id=data.get("id"),
        completion=[c.get("message") for c in choices],
    )
    data["id"] = call.gen_id
    data["object"] = "chat.completion"
    data["created"] = call.created
    data["model"] = cand.model.id
    data["provider"] = cand.provider.name
    data.setdefault("system_fingerprint", None)
    data["usage"] = usage_payload(usage, cost)
    if call.metadata:
        data["openrouter_metadata"] = call.router_metadata(outcome)
    return data
