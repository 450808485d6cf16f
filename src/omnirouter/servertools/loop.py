"""The server-tool loop: ask the model, run the server tools it calls, ask again.

Each step is one `attempt` of the generation (its attempts listed in `provider_responses`), billed at
the prices of the endpoint that answered it. The loop ends when the model answers without calling
a server tool, when it calls one of the client's own functions (that call goes back to the client),
or after one last turn with tool calls disabled (`tool_choice: "none"`) once `max_tool_calls` calls
ran or a `stop_server_tools_when` condition fired.

What bounds the money: the request reserved one step's worst case at admission; between steps, a
key with a limit (or an instance with funded credit) must still have what the steps so far cost
left, that is room for one more step's worst case beside this request's reservation, or the loop
ends with what the model said so far. At most MAX_TOOL_CALLS (30) server tool calls run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from omnirouter.accounting import meter
from omnirouter.accounting.cost import Usage
from omnirouter.errors import GatewayError
from omnirouter.formats.openai_chat import normalize_finish
from omnirouter.jsonio import decode
from omnirouter.servertools import MAX_TOOL_CALLS, ServerTools
from omnirouter.servertools.tools import Result, error

if TYPE_CHECKING:
    from omnirouter.pipeline.attempt import Outcome
    from omnirouter.pipeline.call import Call

ITEM_PREFIX = {"openrouter:web_search": "ws", "openrouter:web_fetch": "wf", "openrouter:datetime": "dt"}


def split_calls(st: ServerTools, calls: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the server tool calls, the client's own)."""
    server, own = [], []
    for c in calls:
        (server if (c.get("function") or {}).get("name") in st.tools else own).append(c)
    return server, own


def affordable(call: Call, spent: Any) -> bool:
    """Whether the key (and the instance's credit) can pay one more step: what the steps so far cost
    must fit in what is left beside this request's own reservation, which covers the next step."""
    ledger = call.st.ledger
    if call.reservation is None or not meter.enforced(ledger, call.key):
        return True
    if call.plugins is not None:
        spent += call.plugins.fee
    remaining = meter.key_remaining(ledger, call.key)
    if remaining is not None and spent > remaining:
        return False
    credit = ledger.credit_remaining()
    return credit is None or spent <= credit


def stops(st: ServerTools, finish: str | None, called: set[str]) -> bool:
    """Whether the loop's budget is spent or a stop condition fired: the next turn is the last."""
    if st.requested >= MAX_TOOL_CALLS:
        return True
    if st.stop_when is None:
        return st.requested >= st.max_tool_calls
    for cond in st.stop_when:
        kind = cond["type"]
        if (
            (kind == "step_count_is" and st.steps >= cond["step_count"])
            or (kind == "has_tool_call" and cond["tool_name"] in called)
            or (kind == "max_tokens_used" and st.usage.total_tokens > cond["max_tokens"])
            or (kind == "max_cost" and st.spent() > cond["max_cost_in_dollars"])
            or (kind == "finish_reason_is" and normalize_finish(finish) == cond["reason"])
        ):
            return True
    return False


async def run_calls(call: Call, calls: list[dict[str, Any]], messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the model's server tool calls in order; their results join `messages`. Returns the items
    they make (for the Responses and Messages answers)."""
    st = call.server_tools
    assert st is not None
    made = []
    for c in calls:
        fn = c.get("function") or {}
        name = str(fn.get("name"))
        tool = st.tools[name]
        st.requested += 1
        item = {"type": tool.module.TYPE}
        try:
            args = decode(fn.get("arguments") or "{}")
            if not isinstance(args, dict):
                raise ValueError
        except Exception:
            result: Result = error("The tool's arguments are not a JSON object", item)
            args = {}
        else:
            if st.stop_when is None and st.executed >= st.max_tool_calls:
                result = error("The server tool budget of this request (max_tool_calls) is spent", item)
            else:
                result = await tool.module.run(call.st.settings, tool, args)
        if result.ok:
            st.executed += 1
            tool.uses += 1
            if result.counted == "search":
                st.searches += 1
            elif result.counted == "fetch":
                st.fetches += 1
        _charge(call, tool.module.NAME, result)
        n = len(st.items)
        entry = {**result.item, "id": f"{ITEM_PREFIX.get(result.item['type'], 'st')}_{call.gen_id[4:]}_{n}",
                 "call_id": str(c.get("id") or ""), "name": name, "arguments": args}  # fmt: skip
        entry.setdefault("status", "completed")
        st.items.append(entry)
        made.append(entry)
        messages.append({"role": "tool", "tool_call_id": str(c.get("id") or ""), "content": result.content})
    return made


def _charge(call: Call, name: str, result: Result) -> None:
    run = call.plugins
    if run is None:
        return
    if result.fee:
        run.charge(name, result.fee)
    for key, value in result.details.items():
        if isinstance(value, int) and not isinstance(value, bool):
            run.details[key] = run.details.get(key, 0) + value
        else:
            run.details[key] = value


def assistant_turn(
    content: str | None, calls: list[dict[str, Any]], message: dict[str, Any] | None = None
) -> dict[str, Any]:
    turn: dict[str, Any] = {"role": "assistant", "content": content or None, "tool_calls": calls}
    if message is not None and message.get("reasoning_details"):  # sent back unmodified (behaviors §8.4)
        turn["reasoning_details"] = message["reasoning_details"]
    return turn


def step_body(call: Call) -> dict[str, Any]:
    """The request the steps send: the client's, with messages the loop may add to."""
    return {**call.body, "messages": list(call.body.get("messages") or ())}


# -- the JSON answer


async def complete(call: Call) -> Outcome:
    """Run the loop for a non-streamed answer: the last step's outcome, whose message carries the
    text of every step, and whose attempts are every step's."""
    from omnirouter.pipeline.attempt import RouteFailed, attempt
    from omnirouter.pipeline.call import estimate_tokens, usage_of

    st = call.server_tools
    assert st is not None
    body = step_body(call)
    last = False
    previous: Outcome | None = None
    while True:
        try:
            outcome = await attempt(
                call.st.routing, call.plan, body, call.timeouts, stream=False, deadline=call.deadline, ctx=call.ctx
            )
        except RouteFailed as err:
            if previous is None:
                raise
            # A later step found no endpoint: the steps before are billed, the answer is the error.
            previous.attempts = [*st.attempts, *err.attempts]
            call.settle(previous, Usage(), "error", "error", streamed=False, error=err.body()["error"])
            raise GatewayError(err.status, err.message, err.metadata, headers=err.headers, extra=err.extra) from None
        previous = outcome
        st.steps += 1
        data = outcome.response or {}
        choice = (data.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        server, own = split_calls(st, message.get("tool_calls") or [])
        content = message.get("content") if isinstance(message.get("content"), str) else None
        finish = choice.get("finish_reason")
        usage = usage_of(data.get("usage")) or Usage(
            prompt_tokens=call.needs.prompt_tokens, completion_tokens=estimate_tokens(len(content or ""))
        )
        step_cost = call.price(outcome.candidate, usage, finish)
        done = last or not server or bool(own) or not affordable(call, st.spent() + step_cost.total)
        if done:
            if server:  # not run: the loop ended (the client's own calls, the budget, the money)
                message["tool_calls"] = own or None
                if not own:
                    message.pop("tool_calls", None)
                    if finish in ("tool_calls", "tool_use"):
                        choice["finish_reason"] = "stop"
            if st.texts:
                message["content"] = "".join(st.texts) + (content or "")
            outcome.attempts = [*st.attempts, *outcome.attempts]
            return outcome
        st.add_step(usage, step_cost)
        st.attempts.extend(outcome.attempts)
        if content:
            st.texts.append(content)
        body["messages"].append(assistant_turn(content, server, message))
        await run_calls(call, server, body["messages"])
        called = {str((c.get("function") or {}).get("name")) for c in server}
        if stops(st, finish, called):
            last = True
            body["tool_choice"] = "none"


def finish_usage(call: Call, payload: dict[str, Any]) -> None:
    """The answer's usage: every step's tokens, and what the server tools did."""
    st = call.server_tools
    assert st is not None
    if st.total_usage is not None:
        u = st.total_usage
        payload["prompt_tokens"], payload["completion_tokens"] = u.prompt_tokens, u.completion_tokens
        payload["total_tokens"] = u.total_tokens
        payload["prompt_tokens_details"]["cached_tokens"] = u.cached_tokens
        payload["prompt_tokens_details"]["cache_write_tokens"] = u.cache_write_tokens
        payload["completion_tokens_details"]["reasoning_tokens"] = u.reasoning_tokens
    payload["server_tool_use_details"] = st.details()


def items_of(call: Call) -> list[dict[str, Any]]:
    st = call.server_tools
    return st.items if st is not None else []
