"""The web-fetch plugin: the pages the user's last message links to, fetched and put before the model.

`plugins: [{"id": "web-fetch", "allowed_domains"?, "blocked_domains"?, "max_content_tokens"?, "max_uses"?}]`.
The spec defines only the options; what it does here:
- the http(s) URLs in the last user message's text, in order, without repeats, are fetched in parallel
  (web/fetch.py, under its SSRF rules and limits), at most `max_uses` of them (default 5); the ones beyond
  are not fetched and the model is told so ("once exceeded, the tool returns an error");
- their text goes in one system message right before that user message, each page headed by its title
  and URL; a page that could not be fetched (refused, failed) is named there with why, so the model can
  say so: a link in a message does not fail the request;
- each page fetched is a `url_citation` annotation on the answer, `num_fetches` on the generation, and
  costs `web_fetch_price` (a fee; failed fetches cost nothing).
"""

from __future__ import annotations

import asyncio
import re
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from omnirouter.errors import GatewayError
from omnirouter.pipeline.call import estimate_tokens
from omnirouter.web.fetch import Page, fetch_page

if TYPE_CHECKING:
    from omnirouter.pipeline.call import Call
    from omnirouter.plugins.run import PluginRun

ID = "web-fetch"
DEFAULT_MAX_USES = 5
FEE = "web_fetch"

_URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
_TRAILING = ".,;:!?)]}'\""  # sentence punctuation after a link, not part of it


def urls_in(text: str) -> list[str]:
    found: list[str] = []
    for match in _URL.finditer(text):
        url = match.group(0)
        while url and url[-1] in _TRAILING and not (url[-1] == ")" and url.count("(") >= url.count(")")):
            url = url[:-1]
        if url not in found:
            found.append(url)
    return found


def _last_user_text(messages: Any) -> tuple[int, str] | None:
    if not isinstance(messages, list):
        return None
    for i in range(len(messages) - 1, -1, -1):
        m = messages[i]
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return i, content
            if isinstance(content, list):
                texts = (p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text")
                return i, "\n".join(t for t in texts if isinstance(t, str))
            return i, ""
    return None


def _domains(options: dict[str, Any], name: str) -> list[str] | None:
    value = options.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(d, str) for d in value):
        raise GatewayError(400, f"web-fetch plugin: {name} must be a list of domains")
    return value


def _positive(options: dict[str, Any], name: str) -> int | None:
    value = options.get(name)
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise GatewayError(400, f"web-fetch plugin: {name} must be a positive integer")
    return value


async def prepare(call: Call, options: dict[str, Any] | None, run: PluginRun) -> None:
    options = options or {}
    allowed, blocked = _domains(options, "allowed_domains"), _domains(options, "blocked_domains")
    max_tokens = _positive(options, "max_content_tokens")
    max_uses = _positive(options, "max_uses") or DEFAULT_MAX_USES
    run.details.setdefault("num_fetches", 0)
    found = _last_user_text(call.body.get("messages"))
    urls = urls_in(found[1]) if found else []
    if not found or not urls:
        return
    settings = call.st.settings
    chosen, skipped = urls[:max_uses], urls[max_uses:]
    results = await asyncio.gather(
        *(
            fetch_page(settings, u, allowed_domains=allowed, blocked_domains=blocked, max_content_tokens=max_tokens)
            for u in chosen
        ),
        return_exceptions=True,
    )
    sections: list[str] = []
    fetched = 0
    for url, result in zip(chosen, results, strict=True):
        if isinstance(result, Page):
            fetched += 1
            heading = f"{result.title} ({result.url})" if result.title else result.url
            sections.append(f"--- {heading} ---\n{result.text}")
            citation: dict[str, Any] = {"url": result.url, "title": result.title or result.url}
            run.annotations.append(
                {"type": "url_citation", "url_citation": {**citation, "start_index": 0, "end_index": 0}}
            )
        elif isinstance(result, GatewayError):
            sections.append(f"--- {url} ---\n[not fetched: {result.message}]")
        else:
            raise result
    for url in skipped:
        sections.append(f"--- {url} ---\n[not fetched: the request allows at most {max_uses} fetches (max_uses)]")
    run.details["num_fetches"] += fetched
    if fetched and (price := settings.web_fetch_price) > 0:
        run.charge(FEE, price * Decimal(fetched))
    date = time.strftime("%Y-%m-%d", time.gmtime())
    note = (
        f"The user's message links to web pages; they were fetched on {date}. "
        "Use their content below to answer, and cite a page with a markdown link to its URL.\n\n"
        + "\n\n".join(sections)
    )
    call.body["messages"].insert(found[0], {"role": "system", "content": note})
    call.needs.prompt_tokens += estimate_tokens(len(note))  # what later plugins (compression) go by
    run.changed(call)
