"""The `web` plugin and `:online` (behaviors §8.7): searches through the operator's engine (each
engine's API faked on loopback), results injected into the prompt, citations in all three formats
through the official SDKs, the fee exact in /generation, /key and /credits; native search passed
through; failures clear and free."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from openrouter import OpenRouter

from omnirouter.errors import GatewayError
from omnirouter.settings import WebSearch
from omnirouter.testing import Reply, Stream
from omnirouter.testing.fakes.search import DEFAULT_PAGES, FakeSearch, Page
from omnirouter.web import domains
from omnirouter.web.search import search
from tests.conftest import standard_config
from tests.gateway import Gateway, generation, key_usage
from tests.sdk_ts_run import run_steps
from tests.spec_validation import require_spec, validate_response, validate_sse

FEE = Decimal("0.004")
KEY_ENV = "OMNIROUTER_TEST_SEARCH_KEY"
SEARCH_KEY = "sk-search-secret-7f3a"
QUESTION = "What happened at the launch?"
CITED = "It launched on Tuesday, says [news.example.com](https://news.example.com/2026/launch)."
# test/alpha: $1 and $2 per million prompt and completion tokens
TOKENS = {"prompt_tokens": 100, "completion_tokens": 20}
MODEL_COST = Decimal("0.00014")


def config(a: str, b: str) -> dict[str, Any]:
    """The standard catalog plus a model with native search, and a Google one."""
    base = standard_config(a, b)
    native = ["max_tokens", "temperature", "web_search_options"]
    base["models"] += [
        {"id": "test/native", "name": "Native search", "context_length": 32768, "supported_parameters": native,
         "endpoints": [{"provider": "fake-a", "upstream_model": "native-up",
                        "pricing": {"prompt": "0.000001", "completion": "0.000002"}}]},
        {"id": "google/gemini-test", "name": "Gemini (test)", "context_length": 32768,
         "supported_parameters": native,
         "endpoints": [{"provider": "fake-a", "upstream_model": "gemini-up",
                        "pricing": {"prompt": "0.000001", "completion": "0.000002"}}]},
    ]  # fmt: skip
    return base


@pytest.fixture(scope="module")
def searxng() -> Iterator[Any]:
    handle = FakeSearch.run_in_thread("searxng", api_key=None)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh_search(request: pytest.FixtureRequest) -> None:
    if "searxng" in request.fixturenames:
        request.getfixturevalue("searxng").fake.reset()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any, searxng: Any) -> Iterator[Gateway]:
    engine = {"engine": "searxng", "base_url": searxng.base_url, "price_per_search": str(FEE)}
    g = Gateway(tmp_path_factory.mktemp("web"), config(fake_a.base_url, fake_b.base_url), web_search=engine).start()
    yield g
    g.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return gw.create_key()["key"]


def oai(gw: Gateway, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.api, api_key=key, max_retries=0)


def claude(gw: Gateway, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gw.url + "/api", auth_token=key, max_retries=0)


def upstream_messages(fake: Any) -> list[dict[str, Any]]:
    return fake.fake.requests[-1].json["messages"]


def injected(fake: Any) -> str:
    """The system message the plugin put before the question."""
    messages = upstream_messages(fake)
    assert messages[-1] == {"role": "user", "content": QUESTION}
    assert messages[-2]["role"] == "system"
    return messages[-2]["content"]


WEB = {"plugins": [{"id": "web"}]}


# -- the engines, each against its API's fake


@pytest.mark.sqlite_pass  # no database in it
@pytest.mark.parametrize("engine", ["searxng", "brave", "tavily", "exa", "firecrawl", "perplexity"])
def test_each_engine_speaks_its_api(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    needs_key = engine != "searxng"
    monkeypatch.setenv(KEY_ENV, SEARCH_KEY)
    with FakeSearch.run_in_thread(engine, api_key=SEARCH_KEY if needs_key else None) as fake:
        settings = _settings(engine, fake.base_url, api_key_env=KEY_ENV if needs_key else None)
        outcome = asyncio.run(search(settings, "launch news", max_results=2))
        assert outcome.engine == engine and outcome.fee == FEE
        assert [(r.url, r.title, r.content) for r in outcome.results] == [
            (p.url, p.title, p.snippet) for p in DEFAULT_PAGES[:2]
        ] or engine == "exa"
        if engine == "exa":  # highlights are the snippet
            assert [r.content for r in outcome.results] == [p.snippet for p in DEFAULT_PAGES[:2]]
        if engine in ("searxng", "brave", "tavily", "exa", "perplexity"):
            assert outcome.results[0].published == "2026-11-30"
        (sent,) = fake.fake.requests
        assert sent.query == "launch news"
        assert fake.fake.refused == 0
        if engine != "searxng":  # SearXNG has no count parameter: the gateway cuts the list
            assert sent.count == 2


@pytest.mark.sqlite_pass  # no database in it
@pytest.mark.parametrize("engine", ["brave", "tavily", "exa", "firecrawl", "perplexity"])
def test_a_wrong_key_is_a_clear_error_that_never_shows_the_key(engine: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SEARCH_KEY)
    with FakeSearch.run_in_thread(engine, api_key="another-key") as fake:
        with pytest.raises(GatewayError) as caught:
            asyncio.run(search(_settings(engine, fake.base_url, api_key_env=KEY_ENV), "q"))
        assert caught.value.status == 502
        assert caught.value.message == f"Web search failed: the {engine} engine answered HTTP 401"
        assert fake.fake.refused == 1


@pytest.mark.sqlite_pass  # no database in it
def test_an_unset_key_and_no_engine_are_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BRAVE_API_KEY", raising=False)
    with pytest.raises(GatewayError) as caught:
        asyncio.run(search(_settings("brave", "http://127.0.0.1:9"), "q"))
    assert (caught.value.status, caught.value.message) == (
        503, "Web search is not available: the brave API key (BRAVE_API_KEY) is not set",
    )  # fmt: skip
    with pytest.raises(GatewayError) as caught:
        asyncio.run(search(type("S", (), {"web_search": None})(), "q"))
    assert caught.value.status == 503


@pytest.mark.sqlite_pass  # no database in it
def test_engines_that_filter_get_the_bare_domains(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, SEARCH_KEY)
    for engine in ("tavily", "exa", "perplexity"):
        with FakeSearch.run_in_thread(engine, api_key=SEARCH_KEY) as fake:
            settings = _settings(engine, fake.base_url, api_key_env=KEY_ENV)
            asyncio.run(search(settings, "q", include_domains=["*.example.com", "example.org/posts"]))
            asyncio.run(search(settings, "q", exclude_domains=["example.net", "*.substack.com"]))
            first, second = fake.fake.requests
            assert first.include == ["example.com", "example.org"] and not first.exclude
            assert second.exclude == ["example.net"] and not second.include  # a wildcard exclusion is ours


def _settings(engine: str, base_url: str, api_key_env: str | None = None) -> Any:
    return type("S", (), {"web_search": WebSearch(engine=engine, base_url=base_url, api_key_env=api_key_env,
                                                  price_per_search=FEE)})()  # fmt: skip


@pytest.mark.sqlite_pass  # no database in it
@pytest.mark.parametrize(
    ("url", "pattern", "hit"),
    [
        ("https://openai.com/blog/post", "openai.com", True),
        ("https://www.openai.com/", "openai.com", True),
        ("https://cdn.openai.com/x", "openai.com", True),
        ("https://notopenai.com/", "openai.com", False),
        ("https://foo.substack.com/p/1", "*.substack.com", True),
        ("https://substack.com/", "*.substack.com", False),
        ("https://openai.com/blog/post", "openai.com/blog", True),
        ("https://openai.com/blogger", "openai.com/blog", False),
        ("https://openai.com/research", "openai.com/blog", False),
        ("https://OpenAI.com/Blog", "openai.com/blog", True),
    ],
)
def test_domain_patterns(url: str, pattern: str, hit: bool) -> None:
    assert domains.matches(url, pattern) is hit


# -- the plugin, through the SDKs


def test_chat_searches_injects_cites_and_charges(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    fake_a.fake.script(Reply(CITED, **TOKENS))
    raw = oai(gw, key).chat.completions.with_raw_response.create(
        model="test/alpha", messages=[{"role": "user", "content": QUESTION}], extra_body=WEB
    )
    answer = raw.parse()
    assert searxng.fake.requests[-1].query == QUESTION
    prompt = injected(fake_a)
    assert prompt.startswith("A web search was conducted on 20")
    assert "IMPORTANT: Cite them using markdown links named using the domain of the source." in prompt
    assert "Example: [nytimes.com](https://nytimes.com/some-page)." in prompt
    for page in DEFAULT_PAGES:
        assert page.url in prompt and page.title in prompt and page.snippet in prompt
    notes = answer.choices[0].message.annotations
    assert [(a.type, a.url_citation.url, a.url_citation.title) for a in notes] == [
        ("url_citation", p.url, p.title) for p in DEFAULT_PAGES
    ]
    link = "[news.example.com](https://news.example.com/2026/launch)"
    first = notes[0].url_citation
    assert CITED[first.start_index : first.end_index] == link
    assert (notes[1].url_citation.start_index, notes[1].url_citation.end_index) == (0, 0)  # not cited
    body = json.loads(raw.http_response.text, parse_float=Decimal)
    assert body["choices"][0]["message"]["annotations"][0]["url_citation"]["content"] == DEFAULT_PAGES[0].snippet
    assert body["usage"]["cost"] == MODEL_COST + FEE
    g = generation(gw, key, answer.id)
    assert g["total_cost"] == MODEL_COST + FEE
    assert (g["web_search_engine"], g["num_search_results"]) == ("searxng", 3)
    assert key_usage(gw, key) == MODEL_COST + FEE


def test_chat_stream_ends_with_the_citations(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    fake_a.fake.script(Stream(CITED, **TOKENS))
    chunks = list(
        oai(gw, key).chat.completions.create(
            model="test/alpha", messages=[{"role": "user", "content": QUESTION}], extra_body=WEB, stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == CITED
    notes = [a for c in chunks if c.choices for a in (c.choices[0].delta.model_extra or {}).get("annotations") or ()]
    assert [a["url_citation"]["url"] for a in notes] == [p.url for p in DEFAULT_PAGES]
    assert all(a["type"] == "url_citation" for a in notes)
    first = notes[0]["url_citation"]
    assert (
        CITED[first["start_index"] : first["end_index"]] == "[news.example.com](https://news.example.com/2026/launch)"
    )
    assert (notes[2]["url_citation"]["start_index"], notes[2]["url_citation"]["end_index"]) == (0, 0)
    assert chunks[-1].usage is not None
    assert Decimal(str(chunks[-1].usage.model_extra["cost"])) == MODEL_COST + FEE
    assert generation(gw, key, chunks[0].id)["total_cost"] == MODEL_COST + FEE
    assert "launch" in injected(fake_a)


def test_online_variant_searches_for_a_model_without_native_search(gw: Gateway, key: str, fake_a: Any,
                                                                   searxng: Any) -> None:  # fmt: skip
    fake_a.fake.script(Reply(CITED, **TOKENS))
    answer = oai(gw, key).chat.completions.create(
        model="test/alpha:online", messages=[{"role": "user", "content": QUESTION}]
    )
    assert answer.model == "test/alpha"
    assert len(searxng.fake.requests) == 1 and "A web search was conducted" in injected(fake_a)
    assert len(answer.choices[0].message.annotations) == 3
    g = generation(gw, key, answer.id)
    assert (g["web_search_engine"], g["num_search_results"], g["total_cost"]) == ("searxng", 3, MODEL_COST + FEE)


def test_openrouter_sdk_parses_the_citations(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    fake_a.fake.script(Reply(CITED, **TOKENS))
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        res = sdk.chat.send(
            model="test/alpha", messages=[{"role": "user", "content": QUESTION}],
            plugins=[{"id": "web", "max_results": 2, "search_prompt": "Fresh results:"}],
        )  # fmt: skip
    # (Its ChatAssistantMessage declares no annotations: the strict model parses the answer that has them.)
    assert res.choices[0].message.content == CITED
    prompt = injected(fake_a)
    assert prompt.startswith("Fresh results:") and "A web search was conducted" not in prompt
    assert DEFAULT_PAGES[2].url not in prompt
    assert generation(gw, key, res.id)["num_search_results"] == 2


def test_responses_renders_url_citations(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    fake_a.fake.script(Reply(CITED, **TOKENS))
    res = oai(gw, key).responses.create(model="test/alpha", input=QUESTION, extra_body=WEB)
    (part,) = res.output[0].content
    assert part.text == CITED
    assert [(a.type, a.url, a.title) for a in part.annotations] == [
        ("url_citation", p.url, p.title) for p in DEFAULT_PAGES
    ]
    assert CITED[part.annotations[0].start_index : part.annotations[0].end_index].startswith("[news.example.com]")
    assert Decimal(str(res.usage.model_extra["cost"])) == MODEL_COST + FEE
    assert "A web search was conducted" in injected(fake_a)


def test_responses_stream_adds_the_annotations(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    fake_a.fake.script(Stream(CITED, **TOKENS))
    events = list(oai(gw, key).responses.create(model="test/alpha", input=QUESTION, extra_body=WEB, stream=True))
    added = [e for e in events if e.type == "response.output_text.annotation.added"]
    assert [(e.annotation.type, e.annotation.url) for e in added] == [("url_citation", p.url) for p in DEFAULT_PAGES]
    assert [e.annotation_index for e in added] == [0, 1, 2]
    done = next(e for e in events if e.type == "response.completed").response
    (part,) = done.output[0].content
    assert part.text == CITED and [a.url for a in part.annotations] == [p.url for p in DEFAULT_PAGES]
    assert CITED[part.annotations[0].start_index : part.annotations[0].end_index].endswith("/2026/launch)")
    assert added[0].annotation.start_index == part.annotations[0].start_index > 0
    assert Decimal(str(done.usage.model_extra["cost"])) == MODEL_COST + FEE


def test_messages_renders_web_search_citations(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    fake_a.fake.script(Reply(CITED, **TOKENS))
    message = claude(gw, key).messages.create(
        model="test/alpha", max_tokens=256, messages=[{"role": "user", "content": QUESTION}], extra_body=WEB
    )
    (block,) = message.content
    assert block.type == "text" and block.text == CITED
    assert [(c.type, c.url, c.title, c.cited_text) for c in block.citations] == [
        ("web_search_result_location", p.url, p.title, p.snippet) for p in DEFAULT_PAGES
    ]
    assert "A web search was conducted" in injected(fake_a)
    assert generation(gw, key, message.id)["total_cost"] == MODEL_COST + FEE


def test_messages_stream_sends_citations_deltas(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    fake_a.fake.script(Stream(CITED, **TOKENS))
    with claude(gw, key).messages.stream(
        model="test/alpha", max_tokens=256, messages=[{"role": "user", "content": QUESTION}], extra_body=WEB
    ) as stream:
        kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
        message = stream.get_final_message()
    assert kinds.count("citations_delta") == 3
    (block,) = message.content
    assert block.text == CITED
    assert [c.url for c in block.citations] == [p.url for p in DEFAULT_PAGES]


# -- engine choice


def test_a_named_engine_runs_the_operators_engine(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    fake_a.fake.script(Reply("ok", **TOKENS))
    answer = oai(gw, key).chat.completions.create(
        model="test/alpha", messages=[{"role": "user", "content": QUESTION}],
        extra_body={"plugins": [{"id": "web", "engine": "exa"}]},
    )  # fmt: skip
    assert len(searxng.fake.requests) == 1
    assert generation(gw, key, answer.id)["web_search_engine"] == "searxng"


def test_native_search_passes_through(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    for plugin in ({"id": "web", "engine": "native"}, {"id": "web"}):  # none named: native where there is
        fake_a.fake.script(Reply("ok", **TOKENS))
        answer = oai(gw, key).chat.completions.create(
            model="test/native", messages=[{"role": "user", "content": QUESTION}], extra_body={"plugins": [plugin]}
        )
        sent = fake_a.fake.requests[-1].json
        assert sent["web_search_options"] == {}
        assert sent["messages"] == [{"role": "user", "content": QUESTION}]
        g = generation(gw, key, answer.id)
        assert (g["web_search_engine"], g["total_cost"]) == ("native", MODEL_COST)
    assert searxng.fake.requests == []


def test_google_native_with_domain_filters_is_400(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    plugin = {"id": "web", "engine": "native", "include_domains": ["example.com"]}
    with pytest.raises(openai.BadRequestError) as caught:
        oai(gw, key).chat.completions.create(
            model="google/gemini-test", messages=[{"role": "user", "content": QUESTION}],
            extra_body={"plugins": [plugin]},
        )  # fmt: skip
    assert "Domain filters are not supported with native web search on Google models" in str(caught.value)
    assert fake_a.fake.requests == [] and key_usage(gw, key) == 0
    # No engine named: the operator's engine searches instead, and filters.
    fake_a.fake.script(Reply("ok", **TOKENS))
    plugin = {"id": "web", "include_domains": ["*.example.com"]}
    answer = oai(gw, key).chat.completions.create(
        model="google/gemini-test", messages=[{"role": "user", "content": QUESTION}], extra_body={"plugins": [plugin]}
    )
    assert [a.url_citation.url for a in answer.choices[0].message.annotations] == [DEFAULT_PAGES[0].url]
    assert "web_search_options" not in fake_a.fake.requests[-1].json


def test_domain_filters_apply_to_the_results(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    searxng.fake.pages = [
        Page("https://openai.com/blog/a", "Blog", "a"),
        Page("https://openai.com/research/b", "Research", "b"),
        Page("https://x.substack.com/p/c", "Letter", "c"),
        Page("https://substack.com/about", "About", "d"),
        Page("https://elsewhere.org/e", "Else", "e"),
    ]
    cases = [
        ({"include_domains": ["openai.com/blog", "*.substack.com"]}, ["https://openai.com/blog/a", "https://x.substack.com/p/c"]),
        ({"exclude_domains": ["*.substack.com", "openai.com/research"]},
         ["https://openai.com/blog/a", "https://substack.com/about", "https://elsewhere.org/e"]),
    ]  # fmt: skip
    for filters, kept in cases:
        fake_a.fake.script(Reply("ok", **TOKENS))
        answer = oai(gw, key).chat.completions.create(
            model="test/alpha", messages=[{"role": "user", "content": QUESTION}],
            extra_body={"plugins": [{"id": "web", **filters}]},
        )  # fmt: skip
        assert [a.url_citation.url for a in answer.choices[0].message.annotations] == kept
        prompt = injected(fake_a)
        assert all((p.url in prompt) == (p.url in kept) for p in searxng.fake.pages)
        assert generation(gw, key, answer.id)["num_search_results"] == len(kept)


# -- failures and the unchanged path


def test_engine_failure_is_clear_and_charges_nothing(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    searxng.fake.fail = 500
    with pytest.raises(openai.APIStatusError) as caught:
        oai(gw, key).chat.completions.create(
            model="test/alpha", messages=[{"role": "user", "content": QUESTION}], extra_body=WEB
        )
    assert caught.value.status_code == 502
    assert caught.value.body["message"] == "Web search failed: the searxng engine answered HTTP 500"
    assert fake_a.fake.requests == []
    with pytest.raises(anthropic.APIStatusError) as caught_m:
        claude(gw, key).messages.create(
            model="test/alpha", max_tokens=64, messages=[{"role": "user", "content": QUESTION}], extra_body=WEB
        )
    assert caught_m.value.status_code == 502 and "searxng engine answered HTTP 500" in str(caught_m.value)
    assert key_usage(gw, key) == 0


def test_bad_options_are_400(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    for plugin, message in [
        ({"id": "web", "engine": "bing"}, "web plugin: engine must be one of"),
        ({"id": "web", "max_results": 0}, "web plugin: max_results must be a positive integer"),
        ({"id": "web", "include_domains": "example.com"}, "web plugin: include_domains must be a list of strings"),
    ]:
        with pytest.raises(openai.BadRequestError) as caught:
            oai(gw, key).chat.completions.create(
                model="test/alpha", messages=[{"role": "user", "content": QUESTION}], extra_body={"plugins": [plugin]}
            )
        assert message in str(caught.value)
    assert searxng.fake.requests == [] and fake_a.fake.requests == []


def test_a_request_without_the_plugin_is_unchanged(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    fake_a.fake.script(Reply(CITED, **TOKENS))
    answer = oai(gw, key).chat.completions.create(model="test/alpha", messages=[{"role": "user", "content": QUESTION}])
    assert fake_a.fake.requests[-1].json["messages"] == [{"role": "user", "content": QUESTION}]
    assert "web_search_options" not in fake_a.fake.requests[-1].json
    assert not answer.choices[0].message.annotations and searxng.fake.requests == []
    g = generation(gw, key, answer.id)
    assert (g["web_search_engine"], g["num_search_results"], g["total_cost"]) == (None, None, MODEL_COST)


def test_without_an_engine(make_gateway: Callable[..., Gateway], fake_a: Any) -> None:
    """No engine configured: a named engine is 503, and a model without native search still needs it."""
    g = make_gateway(config(fake_a.base_url, fake_a.base_url))
    secret = g.create_key()["key"]
    with pytest.raises(openai.APIStatusError) as caught:
        oai(g, secret).chat.completions.create(
            model="test/alpha", messages=[{"role": "user", "content": QUESTION}],
            extra_body={"plugins": [{"id": "web", "engine": "exa"}]},
        )  # fmt: skip
    assert caught.value.status_code == 503 and "no search engine is configured" in str(caught.value)
    with pytest.raises(openai.APIStatusError) as caught:
        oai(g, secret).chat.completions.create(model="test/alpha:online", messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 404  # no endpoint searches, and nothing else can
    assert fake_a.fake.requests == []


def test_fee_in_generation_key_and_credits(make_gateway: Callable[..., Gateway], fake_a: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv(KEY_ENV, SEARCH_KEY)
    with FakeSearch.run_in_thread("brave", api_key=SEARCH_KEY) as brave:
        engine = {"engine": "brave", "base_url": brave.base_url, "api_key_env": KEY_ENV, "price_per_search": "0.0125"}
        g = make_gateway(config(fake_a.base_url, fake_a.base_url), web_search=engine)
        secret = g.create_key()["key"]
        ids = []
        for _ in range(2):
            fake_a.fake.script(Reply("ok", **TOKENS))
            ids.append(oai(g, secret).chat.completions.create(
                model="test/alpha", messages=[{"role": "user", "content": QUESTION}], extra_body=WEB).id)  # fmt: skip
        assert brave.fake.requests[0].headers["X-Subscription-Token"] == SEARCH_KEY
    each = MODEL_COST + Decimal("0.0125")
    for gen_id in ids:
        row = generation(g, secret, gen_id)
        assert (row["total_cost"], row["web_search_engine"], row["num_search_results"]) == (each, "brave", 3)
    assert key_usage(g, secret) == 2 * each
    with g.admin() as admin:
        credits = json.loads(admin.get("/credits").text, parse_float=Decimal)["data"]
    assert credits["total_usage"] == 2 * each


def test_search_key_is_never_in_an_error(make_gateway: Callable[..., Gateway], fake_a: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv(KEY_ENV, SEARCH_KEY)
    with FakeSearch.run_in_thread("tavily", api_key="not-this-one") as tavily:
        engine = {"engine": "tavily", "base_url": tavily.base_url, "api_key_env": KEY_ENV}
        g = make_gateway(config(fake_a.base_url, fake_a.base_url), web_search=engine)
        with g.client(g.create_key()["key"]) as c:
            r = c.post("/chat/completions", json={"model": "test/alpha", **WEB,
                                                  "messages": [{"role": "user", "content": QUESTION}]})  # fmt: skip
    assert r.status_code == 502 and SEARCH_KEY not in r.text
    assert r.json()["error"]["message"] == "Web search failed: the tavily engine answered HTTP 401"


@pytest.mark.sqlite_pass  # no database in it
def test_settings_from_env_json(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from omnirouter.settings import Settings

    monkeypatch.setenv("OMNIROUTER_WEB_SEARCH", json.dumps({"engine": "exa", "price_per_search": "0.007"}))
    s = Settings(data_dir=tmp_path)
    assert s.web_search is not None and (s.web_search.engine, s.web_search.price_per_search) == (
        "exa",
        Decimal("0.007"),
    )
    monkeypatch.setenv("OMNIROUTER_WEB_SEARCH", json.dumps({"engine": "searxng"}))
    with pytest.raises(ValueError, match="engine searxng needs base_url"):
        Settings(data_dir=tmp_path)


def test_typescript_sdk(gw: Gateway, key: str, fake_a: Any, searxng: Any) -> None:
    """tests/sdk_ts/web_search.mjs: the plugin through @openrouter/sdk, chat and responses, streamed and not."""
    fake_a.fake.always(Reply(CITED, **TOKENS))
    config = {"serverURL": gw.api, "apiKey": key, "model": "test/alpha", "cited": CITED,
              "urls": [p.url for p in DEFAULT_PAGES], "cost": float(MODEL_COST + FEE)}  # fmt: skip
    results = run_steps("web_search.mjs", config)
    assert set(results) == {"web.chat.send", "web.chat.send(stream)", "web.responses.send",
                            "web.responses.send(stream)"}  # fmt: skip
    assert all(r["ok"] for r in results.values()), results
    assert len(searxng.fake.requests) == 4
    assert key_usage(gw, key) == 4 * (MODEL_COST + FEE)


@pytest.mark.parametrize(
    ("path", "op", "body"),
    [
        ("/chat/completions", "sendChatCompletionRequest", {"messages": [{"role": "user", "content": QUESTION}]}),
        ("/responses", "createResponses", {"input": QUESTION}),
        ("/messages", "createMessages", {"max_tokens": 64, "messages": [{"role": "user", "content": QUESTION}]}),
    ],
)
def test_answers_with_citations_match_the_spec(gw: Gateway, key: str, fake_a: Any, searxng: Any, path: str, op: str,
                                               body: dict[str, Any]) -> None:  # fmt: skip
    require_spec()
    fake_a.fake.always(Reply(CITED, **TOKENS))
    request = {"model": "test/alpha", **WEB, **body}
    with gw.client(key) as c:
        r = c.post(path, json=request)
        assert r.status_code == 200, r.text
        validate_response(op, r.json())
        assert "url_citation" in r.text or "web_search_result_location" in r.text
        s = c.post(path, json={**request, "stream": True})
        assert s.status_code == 200, s.text
        events = validate_sse(op, s.text, require_done=path != "/messages")
    assert any("url_citation" in json.dumps(e) or "web_search_result_location" in json.dumps(e) for e in events)
