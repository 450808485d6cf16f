"""moderation: the prompt goes through the operator's moderation API before any model sees it
(behaviors §1.3, §8.7).

It runs when a request names the plugin, and unasked whenever an endpoint planned for the request is
`is_moderated` in the catalog, if the operator configured a moderation API (setting `moderation`:
OpenAI's `POST /v1/moderations` or a compatible one). Without that setting a moderated endpoint is
served unmoderated (is_moderated is then the catalog's word only), and a request that names the plugin
is refused with 503: it asked for a check this gateway cannot make.

Flagged input answers 403 with `ModerationErrorMetadata` and costs nothing. When only some planned
endpoints are moderated and the request did not ask for moderation itself, flagged input still goes
to the others. A moderation API that fails (unreachable, an error, a timeout, no key) refuses the
request with 503: fail closed, never unmoderated to a moderated endpoint. `moderation_latency` (ms)
goes on the generation.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from omnirouter.errors import GatewayError
from omnirouter.jsonio import decode, encode

if TYPE_CHECKING:
    from omnirouter.pipeline.call import Call
    from omnirouter.plugins.run import PluginRun
    from omnirouter.settings import ModerationEndpoint

ID = "moderation"
FLAGGED_INPUT_MAX = 100  # ModerationErrorMetadata.flagged_input: longer text is cut in the middle
_ELLIPSIS = "..."

log = logging.getLogger("omnirouter")


class ModerationUnavailable(Exception):
    """The moderation API gave no verdict (the reason is for the log, never the client)."""


def _named(options: dict[str, Any] | None) -> bool:
    return options is not None and options.get("enabled", True) is not False


def wanted(call: Call, options: dict[str, Any] | None) -> bool:
    if _named(options):
        return True
    return call.st.settings.moderation is not None and any(c.endpoint.is_moderated for c in call.plan.candidates)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def inputs(body: dict[str, Any]) -> list[str]:
    """The prompt's texts to moderate: every message's but the assistant's (a model wrote those)."""
    texts = []
    for message in body.get("messages") or ():
        if isinstance(message, dict) and message.get("role") != "assistant" and (t := _text(message.get("content"))):
            texts.append(t)
    return texts


def shorten(text: str, limit: int = FLAGGED_INPUT_MAX) -> str:
    """`text` as ModerationErrorMetadata.flagged_input: at most `limit` characters, cut in the middle."""
    if len(text) <= limit:
        return text
    keep = limit - len(_ELLIPSIS)
    head = (keep + 1) // 2
    return text[:head] + _ELLIPSIS + text[len(text) - (keep - head) :]


async def moderate(config: ModerationEndpoint, texts: list[str]) -> list[dict[str, Any]]:
    """The API's `results`, one per text (OpenAI's wire: {flagged, categories, category_scores})."""
    headers = {"Content-Type": "application/json"}
    if config.api_key_env:
        if not (secret := os.environ.get(config.api_key_env)):
            raise ModerationUnavailable(f"the variable {config.api_key_env} is not set")
        headers["Authorization"] = f"Bearer {secret}"
    url = config.base_url.rstrip("/") + "/moderations"
    body = encode({"model": config.model, "input": texts})
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=config.timeout)) as session,
            session.post(url, data=body, headers=headers) as res,
        ):
            raw = await res.read()
            if res.status != 200:
                raise ModerationUnavailable(f"HTTP {res.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise ModerationUnavailable(type(exc).__name__) from None
    try:
        results = decode(raw)["results"]
    except Exception:
        raise ModerationUnavailable("an answer without results") from None
    if not isinstance(results, list) or len(results) != len(texts) or not all(isinstance(r, dict) for r in results):
        raise ModerationUnavailable("an answer without one result per input")
    return results


async def prepare(call: Call, options: dict[str, Any] | None, run: PluginRun) -> None:
    config = call.st.settings.moderation
    if config is None:  # only a request that names the plugin gets here without one (see wanted)
        raise GatewayError(
            503, "Moderation was requested, but this gateway has no moderation service configured",
            {"error_type": "provider_unavailable"},
        )  # fmt: skip
    texts = inputs(call.body)
    if not texts:
        return
    started = time.monotonic()
    try:
        results = await moderate(config, texts)
    except ModerationUnavailable as why:
        log.warning("moderation failed (%s): request %s refused", why, call.gen_id)
        raise GatewayError(
            503, "The moderation service is unavailable, and this request must be moderated",
            {"error_type": "provider_unavailable"},
        ) from None  # fmt: skip
    run.details["moderation_latency"] = int((time.monotonic() - started) * 1000)
    flagged = next(((t, r) for t, r in zip(texts, results, strict=True) if r.get("flagged")), None)
    if flagged is None:
        return
    candidates = call.plan.candidates
    if not _named(options) and (unmoderated := [c for c in candidates if not c.endpoint.is_moderated]):
        call.plan.candidates = unmoderated  # only the moderated endpoints refuse this input
        return
    text, result = flagged
    by = next((c for c in candidates if c.endpoint.is_moderated), candidates[0])
    categories = result.get("categories")
    reasons = sorted(k for k, v in categories.items() if v is True) if isinstance(categories, dict) else []
    why = (
        "Your chosen model requires moderation and your input was flagged"
        if by.endpoint.is_moderated
        else ("Your input was flagged by moderation")
    )
    raise GatewayError(
        403,
        f"{why}: {', '.join(reasons) or 'flagged'}",
        {"reasons": reasons, "flagged_input": shorten(text), "provider_name": by.provider.name,
         "model_slug": by.model.id},
    )  # fmt: skip
