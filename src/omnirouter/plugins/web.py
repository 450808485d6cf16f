"""web (and the `:online` variant): search the web for the last user message and let the model answer
with the results (behaviors §8.7).

Engine `native` passes the provider's own search through (`web_search_options`; the planner keeps
only endpoints that have it). Any other engine runs the search the operator configured (`web_search`
in the settings, web/search.py), whatever engine the client named: a client asking for `exa` on a
gateway that runs SearXNG gets SearXNG, and the generation records the engine that ran. With no
engine named, search is native when every planned endpoint has it, else the configured engine.

The results go into the prompt as a system message before the last user message (the documented
prompt, or the request's `search_prompt`, then the results); the answer carries one `url_citation`
annotation per result, spanning the markdown link (or bare URL) that cites it in the answer, 0..0
where the answer does not cite it. The configured price per search is charged as the `web_search` fee.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from omnirouter.errors import GatewayError
from omnirouter.web.search import SearchOutcome, search

if TYPE_CHECKING:
    from omnirouter.pipeline.call import Call
    from omnirouter.plugins.run import PluginRun
    from omnirouter.routing.plan import Candidate

ID = "web"
NATIVE = "native"
# The engines a request may name: OpenRouter's (WebSearchEngine) and the self-hosted ones.
ENGINES = frozenset({NATIVE, "exa", "firecrawl", "parallel", "perplexity", "searxng", "brave", "tavily"})
DEFAULT_MAX_RESULTS = 5
MAX_RESULTS = 20  # more is asked of no engine (a larger request gets 20)
DEFAULT_PROMPT = (
    "A web search was conducted on {date}. Incorporate the following web search results into your response.\n\n"
    "IMPORTANT: Cite them using markdown links named using the domain of the source.\n"
    "Example: [nytimes.com](https://nytimes.com/some-page)."
)


@dataclass(frozen=True)
class Options:
    engine: str | None
    max_results: int
    search_prompt: str | None
    include_domains: list[str] | None
    exclude_domains: list[str] | None


def _strings(options: dict[str, Any], name: str) -> list[str] | None:
    value = options.get(name)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise GatewayError(400, f"web plugin: {name} must be a list of strings")
    return [v for v in value if v.strip()] or None


def parse_options(options: dict[str, Any] | None) -> Options:
    """The request's options, checked (a clear 400 for what cannot be used)."""
    options = options or {}
    engine = options.get("engine")
    if engine is not None and engine not in ENGINES:
        raise GatewayError(400, f"web plugin: engine must be one of {', '.join(sorted(ENGINES))}")
    max_results = options.get("max_results", DEFAULT_MAX_RESULTS)
    if max_results is None:
        max_results = DEFAULT_MAX_RESULTS
    if isinstance(max_results, bool) or not isinstance(max_results, int) or max_results < 1:
        raise GatewayError(400, "web plugin: max_results must be a positive integer")
    prompt = options.get("search_prompt")
    if prompt is not None and not isinstance(prompt, str):
        raise GatewayError(400, "web plugin: search_prompt must be a string")
    return Options(
        engine, min(max_results, MAX_RESULTS), prompt or None, _strings(options, "include_domains"),
        _strings(options, "exclude_domains"),
    )  # fmt: skip


def named_engine(body: dict[str, Any]) -> tuple[bool, str | None]:
    """(whether the request turns the web plugin on, the engine it names): for the planner's needs."""
    plugins = body.get("plugins")
    if not isinstance(plugins, list):
        return False, None
    found: dict[str, Any] | None = None
    for p in plugins:  # the last entry of an id wins (plugins/__init__.py)
        if isinstance(p, dict) and p.get("id") == ID:
            found = p
    if found is None or found.get("enabled", True) is False:
        return False, None
    engine = found.get("engine")
    return True, engine if isinstance(engine, str) else None


def _has_native(c: Candidate) -> bool:
    return "web_search_options" in (c.supported or ())


def _is_google(c: Candidate) -> bool:
    return c.model.id.startswith("google/") or c.endpoint.provider.startswith("google")


def query_of(messages: Any) -> str:
    """The text of the last user message."""
    for m in reversed(messages if isinstance(messages, list) else ()):
        if isinstance(m, dict) and m.get("role") == "user":
            content = m.get("content")
            if isinstance(content, str):
                return content.strip()
            if isinstance(content, list):
                texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
                return " ".join(t for t in texts if isinstance(t, str)).strip()
            return ""
    return ""


async def prepare(call: Call, options: dict[str, Any] | None, run: PluginRun) -> None:
    opts = parse_options(options)
    candidates = call.plan.candidates
    filtered = bool(opts.include_domains or opts.exclude_domains)
    configured = call.st.settings.web_search is not None
    native = opts.engine == NATIVE or (
        opts.engine is None
        and all(_has_native(c) for c in candidates)
        # Google's native search cannot filter domains: the operator's engine can
        and not (filtered and configured and any(_is_google(c) for c in candidates))
    )
    if native:
        if filtered and any(_is_google(c) for c in candidates):
            raise GatewayError(400, "Domain filters are not supported with native web search on Google models")
        if "web_search_options" not in call.body:
            call.body["web_search_options"] = {}
            run.changed(call)
        run.details["web_search_engine"] = NATIVE
        return
    query = query_of(call.body.get("messages"))
    if not query:
        raise GatewayError(400, "web plugin: there is no user message text to search for")
    outcome = await search(
        call.st.settings,
        query,
        max_results=opts.max_results,
        include_domains=opts.include_domains,
        exclude_domains=opts.exclude_domains,
    )
    _inject(call, opts, outcome)
    run.changed(call)
    run.charge("web_search", outcome.fee)
    run.details["web_search_engine"] = outcome.engine
    run.details["num_search_results"] = len(outcome.results)
    run.annotations.extend(
        {
            "type": "url_citation",
            "url_citation": {"url": r.url, "title": r.title, "content": r.content, "start_index": 0, "end_index": 0},
        }
        for r in outcome.results
    )


def _inject(call: Call, opts: Options, outcome: SearchOutcome) -> None:
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    head = opts.search_prompt or DEFAULT_PROMPT.format(date=today)
    blocks = [head]
    for n, r in enumerate(outcome.results, 1):
        lines = [f"[{n}] {r.title}", f"URL: {r.url}"]
        if r.published:
            lines.append(f"Published: {r.published}")
        if r.content:
            lines.append(r.content)
        blocks.append("\n".join(lines))
    if not outcome.results:
        blocks.append("(The search found no results.)")
    messages = list(call.body.get("messages") or ())
    last_user = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "user"), default=0)
    messages.insert(last_user, {"role": "system", "content": "\n\n".join(blocks)})
    call.body["messages"] = messages
    if "web_search_options" in call.body and call.body["web_search_options"] == {}:
        del call.body["web_search_options"]  # the gateway searched: the provider need not


def complete(call: Call, options: dict[str, Any] | None, run: PluginRun, completion: dict[str, Any]) -> None:
    for choice in completion.get("choices") or ():
        content = (choice.get("message") or {}).get("content")
        if isinstance(content, str):
            place(run.annotations, content)
            return


def stream_delta(call: Call, options: dict[str, Any] | None, run: PluginRun) -> None:
    place(run.annotations, run.text)  # the annotations themselves go out with the run's last delta


def place(annotations: list[dict[str, Any]], text: str) -> None:
    """Point each citation not yet placed at the markdown link (or bare URL) citing its source."""
    if not text:
        return
    for a in annotations:
        cite = a.get("url_citation") if a.get("type") == "url_citation" else None
        if not isinstance(cite, dict) or cite.get("start_index") or cite.get("end_index"):
            continue  # not a citation, or one placed already
        if (span := cited_span(text, cite["url"])) is not None:
            cite["start_index"], cite["end_index"] = span


def cited_span(text: str, url: str) -> tuple[int, int] | None:
    """Where `text` cites `url`: its markdown link `[label](url)`, else the bare URL."""
    link = re.search(r"\[[^\]\n]*\]\(" + re.escape(url) + r"/?\)", text)
    if link is not None:
        return link.start(), link.end()
    at = text.find(url)
    return (at, at + len(url)) if at >= 0 else None
