"""An inference endpoint: auth, decode, plan, reserve, attempt, then answer (JSON here, SSE in
pipeline/stream.py), in the client format it was built with (formats/base.py)."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Mapping
from typing import Any

from starlette.types import Receive, Scope, Send

from omnirouter import cache as response_cache
from omnirouter import plugins, servertools
from omnirouter.accounting.cost import Usage
from omnirouter.api import auth, unavailable
from omnirouter.api.ids import generation_id
from omnirouter.cache import hit as cache_hit
from omnirouter.errors import MASKED_500_MESSAGE, GatewayError
from omnirouter.files.resolve import inline_files
from omnirouter.formats import openai_chat
from omnirouter.formats.base import ClientFormat
from omnirouter.formats.openai_chat import normalize_finish
from omnirouter.governance import byok_store, presets
from omnirouter.governance.keys import KeyRecord
from omnirouter.governance.workspaces import DEFAULT_WORKSPACE_ID
from omnirouter.jsonio import decode, encode
from omnirouter.observability.logs import request_id
from omnirouter.pipeline.answer import send_error, send_json
from omnirouter.pipeline.attempt import Outcome, Passthrough, RouteFailed, attempt
from omnirouter.pipeline.call import Call, estimate_tokens, usage_of, usage_payload
from omnirouter.pipeline.stream import InferenceStream
from omnirouter.plugins import web as web_plugin
from omnirouter.plugins.context_compression import asked as compression_asked
from omnirouter.providers.base import FORWARDED_HEADERS, UpstreamContext
from omnirouter.routing.plan import Needs
from omnirouter.routing.sticky import conversation_key
from omnirouter.state import AppState

log = logging.getLogger("omnirouter")

METADATA_HEADERS = ("x-openrouter-metadata", "x-openrouter-experimental-metadata")


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise GatewayError(413, f"Request body is larger than the {limit}-byte limit")
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise GatewayError(400, "The client closed the connection while sending the request")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise GatewayError(413, f"Request body is larger than the {limit}-byte limit")
        chunks.append(chunk)
        if not message.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class InferenceEndpoint:
    """One inference operation as a raw ASGI app: the hottest paths skip Starlette's request and
    response objects (app.py dispatches to them before Starlette's router). `fmt` is the client
    format it speaks; everything else is the same for every format."""

    def __init__(self, fmt: ClientFormat) -> None:
        self.fmt = fmt
        # Whether an upstream may speak this format (chat's is the internal form, which goes to
        # OpenAI-compatible upstreams as it is anyway), settled once rather than per request.
        self.passes_through = fmt.native_api is not None and hasattr(fmt, "native_request")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        st: AppState = scope["app"].state.omni
        fmt = self.fmt
        arrived = time.monotonic()
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}  # names come lower-case
        gen_id = generation_id()
        rid = request_id(headers, gen_id)  # for the logs, the answer's X-Request-Id and the generation
        try:
            raw = await read_body(receive, headers, st.settings.max_body_bytes)
            call = await _admit(st, fmt, headers, raw, gen_id, self.passes_through)
            call.arrived, call.request_id = arrived, rid
            if call.cache is not None and call.cache.hit is not None:  # answered from the response cache
                await cache_hit.answer(call, send)
                _answered(scope, "cached")
                return
            if call.req.stream:
                del raw, headers  # not held while the stream lasts (the prompt's bytes above all)
                await InferenceStream(call)(scope, receive, send)
                _answered(scope, "streamed")
                return
            try:
                if call.server_tools is None:
                    outcome = await attempt(
                        st.routing, call.plan, call.body, call.timeouts, stream=False, deadline=call.deadline,
                        ctx=call.ctx, passthrough=call.passthrough,
                    )  # fmt: skip
                else:  # the model and the gateway's own tools, in a loop (servertools/loop.py)
                    outcome = await servertools.loop.complete(call)
                completion = _finish_completion(call, outcome)
                if call.cache is not None:  # kept before the answer goes out: the next request may hit it
                    await call.cache.keep_completion(call, completion, outcome.candidate.endpoint.slug)
                if outcome.native is not None:
                    payload = encode(fmt.render_native(outcome.native, completion, call.body))  # type: ignore[attr-defined]
                else:
                    payload = encode(fmt.render(completion, call.body))
            except RouteFailed as err:
                call.failed(err, streamed=False)
                raise
            finally:
                call.release()  # settled by now unless something failed: never leave the key's money held
            answer_headers = outcome.headers()
            if call.cache is not None:
                answer_headers = {**answer_headers, **call.cache.headers()}
            if call.plugins is not None and call.plugins.headers:  # e.g. X-Omnirouter-Healed
                answer_headers = {**answer_headers, **call.plugins.headers}
        except GatewayError as err:
            await send_error(send, fmt, err, gen_id, st.metrics)
            _answered(scope, err.status)
            return
        except Exception as exc:
            if (unreachable := unavailable.answer(st, exc)) is not None:  # the key lookup needs the database
                await send_error(send, fmt, unreachable, gen_id, st.metrics)
                return
            log.exception("unhandled error on POST %s", scope["path"])
            await send_error(send, fmt, GatewayError(500, MASKED_500_MESSAGE), gen_id, st.metrics)
            return
        await send_json(send, 200, payload, gen_id, answer_headers)
        _answered(scope, 200)


def _answered(scope: Scope, status: int | str) -> None:
    """One line per answer at log_level debug (with log_format json, it carries the request id)."""
    if log.isEnabledFor(logging.DEBUG):
        log.debug("POST %s answered %s", scope["path"], status)


def _web_search(body: dict[str, Any], engine: bool) -> tuple[bool, bool]:
    """(the web plugin asks endpoints with native search, the gateway's engine may search instead):
    engine `native` needs native search; another named engine needs nothing of the endpoints (the
    gateway searches); none named prefers native search. `engine`: the operator configured one."""
    if "plugins" not in body:
        return False, engine
    on, named = web_plugin.named_engine(body)
    if not on:
        return False, engine
    if named == web_plugin.NATIVE:
        return True, False
    return named is None, engine


async def _admit(
    st: AppState,
    fmt: ClientFormat,
    h: Mapping[str, str],
    raw: bytes,
    gen_id: str,
    passes_through: bool,
    key: KeyRecord | None = None,
) -> Call:
    """Everything before the upstream: who, what, where to, and whether it can be paid for. `key`:
    the caller already known (a plugin's internal sub-call, pipeline/subcall.py), instead of `h`'s."""
    subcall = key is not None  # a plugin's own completion: never answered from the response cache
    if key is None:
        key = await auth.inference_caller(st, h)
    try:
        decoded = decode(raw)
    except Exception:
        raise GatewayError(400, "Invalid JSON in request body") from None
    if b"file_id" in raw:  # uploaded files named by id: their content, for their owner only (files/resolve.py)
        raw = await inline_files(st, key, decoded, raw)  # before parsing, which takes inline content only
    body = fmt.parse(decoded, h)  # the internal (chat) request
    preset_id = None  # a preset the request names, merged into it (governance/presets.py)
    if "preset" in decoded or (type(m := body.get("model")) is str and "@" in m):
        preset_id = presets.apply(st.governance.get("presets"), key, body, decoded, fmt.name)
        raw = encode(body)  # the prompt's size as sent (the estimate below), with the preset's prompt and tools
    if (workspaces := st.governance.get("workspaces")) is not None:  # workspace defaults (governance/workspaces.py)
        workspaces.apply_defaults(key, body)
    cache = None  # the response cache (cache/), for a request, preset or key that names it: cheap tests for the rest
    if (
        key.response_cache_ttl_seconds is not None
        or not h.keys().isdisjoint(response_cache.HEADERS)
        or "cache_enabled" in body
        or "cache_ttl_seconds" in body
    ) and not subcall:
        cache = response_cache.start(st, key, h, body)
    tools = body.get("tools")  # server tools become functions the model calls (servertools/)
    server_tools = servertools.prepare(body, st.settings) if tools and servertools.declared(tools) else None
    req = openai_chat.parse(body)
    web_search, web_engine = _web_search(body, st.settings.web_search is not None)
    needs = Needs(
        params=openai_chat.requested_parameters(body),
        prompt_tokens=estimate_tokens(len(raw)),
        completion_limit=req.completion_limit,
        tools=bool(req.tools),
        response_format=req.response_format is not None,
        web_search=web_search,
        web_engine=web_engine,
        plugins=body.get("plugins"),
        compress=compression_asked(body) if "plugins" in body or "transforms" in body else None,
    )
    cache_key = body.get("prompt_cache_key")
    session = (
        req.session_id
        or h.get("x-session-id")
        or h.get("x-claude-code-session-id")  # one per Claude Code conversation: keeps its cache warm
        or (cache_key if isinstance(cache_key, str) else None)
    )
    # Hashing the conversation is only worth it when some conversation already sticks somewhere.
    sticky_key = session or (conversation_key(body.get("messages")) if st.routing.sticky else None)
    # BYOK: the workspace's keys may bring providers the instance has none for (planned for them alone).
    byok = st.governance.get("byok")
    keyless = zdr = byok_store.NONE
    if byok is not None:
        keyless, zdr = byok_store.routing_sets(byok, key, req, st.catalog)
    plan = st.routing.planner.plan(
        req, needs, sticky=st.routing.sticky.get(sticky_key), session=session, byok_providers=keyless, byok_zdr=zdr
    )
    # Guardrails, before anything goes upstream: models, providers, ZDR, content (governance/guardrails.py).
    guarded = None
    if (guardrails := st.governance.get("guardrails")) is not None and (policy := guardrails.policy(key)) is not None:
        opted_in = any(h.get(name, "").lower() == "enabled" for name in METADATA_HEADERS)
        guarded = policy.enforce(body, plan, st.catalog, metadata=opted_in)
    if byok is not None:  # the workspace's own provider keys first
        byok_store.apply(byok, plan, key, req)
    forwarded: dict[str, str] | None = None
    for name in FORWARDED_HEADERS:  # rarely any: no dict built for a request without
        if name in h:
            forwarded = {**(forwarded or {}), name: h[name]}
    call = Call(
        st,
        fmt,
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
        ctx=UpstreamContext(headers=forwarded) if forwarded else None,
        # With a preset merged in, the client's own body is no longer the request: it is translated.
        # A cached request is translated too: its answer is kept in the internal form, for any format.
        passthrough=_passthrough(fmt, body)
        if passes_through and preset_id is None and cache is None and server_tools is None
        else None,
        preset_id=preset_id,
        guardrail_actions=guarded,
        server_tools=server_tools,
    )
    if "x-openrouter-fusion-depth" in h:  # a sub-call of fusion (or a client claiming one): no fusion again
        from omnirouter.plugins.fusion import arriving_depth

        call.fusion_depth = arriving_depth(h["x-openrouter-fusion-depth"])
    if key.rpm_limit or key.tpm_limit:  # only a rate-limited key waits for the shared count (accounting/ratelimit.py)
        call.rate = await st.rate_limits.admit(key, needs.prompt_tokens)
    if cache is not None:  # keyed by the body as it goes upstream (presets, defaults, guardrails applied)
        found = await cache.lookup(fmt.name, key.workspace_id or DEFAULT_WORKSPACE_ID, body)
        if found:  # answered from the cache: nothing to hold
            call.cache = cache
            return call
        call.cache = cache if found is not None else None
    try:
        if (top_up := call.reserve()) is not None:  # rare: a shared budget's lease ran short
            await top_up
    except GatewayError:
        if call.rate is not None:  # refused for money: no token went anywhere (the request still counts)
            st.rate_limits.settle(call.rate, 0)
        raise
    if (run := plugins.start(call)) is None and server_tools is not None:
        run = plugins.PluginRun([])  # where the server tools' fees and details go
    if run is not None:  # searches, files, moderation ... (plugins/)
        call.plugins = run
        try:
            await run.prepare(call)
        except BaseException:
            call.release()
            if call.rate is not None:
                st.rate_limits.settle(call.rate, 0)
            raise
    return call


def _passthrough(fmt: Any, request: dict[str, Any]) -> Passthrough:
    """How to send this request as it came, to an upstream that speaks its format."""
    return Passthrough(fmt.native_api, functools.partial(fmt.native_request, request))


def _finish_completion(call: Call, outcome: Outcome) -> dict[str, Any]:
    """Shape the upstream answer as OpenRouter's, and settle and record it."""
    data = outcome.response or {}
    cand = outcome.candidate
    choices = data.get("choices") or []
    finish = native = None
    images = 0  # generated images (modalities: ["image", ...]), billed per image
    for choice in choices:
        if (message := choice.get("message")) and "images" in message:
            images += len(message["images"] or ())
        reason = choice.get("finish_reason")
        finish = normalize_finish(reason)
        # An adapter that translates a provider's own reason sends it beside the chat one.
        native = choice.get("native_finish_reason") or reason
        choice["finish_reason"] = finish
        choice["native_finish_reason"] = native
        choice.setdefault("logprobs", None)
    usage = usage_of(data.get("usage"))
    if usage is None:  # an upstream that reports no usage: estimate, so nothing goes unbilled
        text = "".join(str((c.get("message") or {}).get("content") or "") for c in choices)
        usage = Usage(prompt_tokens=call.needs.prompt_tokens, completion_tokens=estimate_tokens(len(text)))
    if images:
        usage = dataclasses.replace(usage, images=images)
    if call.plugins is not None:  # healing, annotations ... before the answer is billed and recorded
        call.plugins.complete(call, data)
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
    if call.server_tools is not None:
        servertools.loop.finish_usage(call, data["usage"])
        if call.fmt.name != "chat":  # output items / content blocks of what ran (formats/)
            data["server_tool_items"] = call.server_tools.items
    if call.metadata:
        data["openrouter_metadata"] = call.router_metadata(outcome)
    return data
