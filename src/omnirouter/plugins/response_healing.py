"""response-healing: repair malformed JSON in structured-output answers (behaviors §8.3).

Only non-streamed requests whose `response_format` is `json_object` or `json_schema`; a stream has
already reached the client when the JSON could be judged. Missing brackets, trailing commas, unquoted
keys, markdown fences and JSON mixed with prose are repaired by `json-repair`; an answer cut short by
`max_tokens` (finish_reason `length`) is left as it came, as OpenRouter documents. A healed answer
says so in the `X-Omnirouter-Healed: true` response header (every client format; bodies stay what
strict clients parse) and in the generation's `plugins.healed`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from json_repair import repair_json

from omnirouter.jsonio import decode, encode

if TYPE_CHECKING:
    from omnirouter.pipeline.call import Call
    from omnirouter.plugins.run import PluginRun

ID = "response-healing"
HEALED_HEADER = "X-Omnirouter-Healed"
_JSON_FORMATS = ("json_object", "json_schema")


def _applies(call: Call) -> bool:
    rf = call.body.get("response_format")
    return not call.req.stream and isinstance(rf, dict) and rf.get("type") in _JSON_FORMATS


async def prepare(call: Call, options: dict[str, Any] | None, run: PluginRun) -> None:
    if _applies(call):
        # The answer is healed as a chat completion: an upstream's own format (Messages to Anthropic)
        # would be rendered as it came, unhealed, so the request is translated instead.
        run.changed(call)


def heal(text: str) -> str | None:
    """The repaired JSON of `text`, or None when it is valid already or holds no JSON to recover."""
    try:
        decode(text)
        return None
    except Exception:  # msgspec.DecodeError; anything else is not valid JSON either
        pass
    repaired = repair_json(text, return_objects=True)
    if not isinstance(repaired, dict | list) or not repaired:  # prose without JSON: nothing to heal to
        return None
    return encode(repaired).decode()


def complete(call: Call, options: dict[str, Any] | None, run: PluginRun, completion: dict[str, Any]) -> None:
    if not _applies(call):
        return
    healed = 0
    for choice in completion.get("choices") or ():
        message = choice.get("message")
        if choice.get("finish_reason") == "length" or not isinstance(message, dict):
            continue  # truncated output cannot be healed into what the model meant
        content = message.get("content")
        if isinstance(content, str) and (fixed := heal(content)) is not None:
            message["content"] = fixed
            healed += 1
    if healed:
        run.details["healed"] = True
        run.headers[HEALED_HEADER] = "true"
