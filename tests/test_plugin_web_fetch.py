"""The web-fetch plugin and the page fetcher under it: main text out of real HTML, redirects, size and
time limits, and the SSRF rules (unit tests on the address check; end to end only against loopback)."""

from __future__ import annotations

import ipaddress
import socket
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from openrouter import OpenRouter

from omnirouter.errors import GatewayError
from omnirouter.settings import Settings
from omnirouter.testing import Reply, Stream
from omnirouter.testing.fakes.pages import FakePages
from omnirouter.web import fetch
from omnirouter.web.fetch import fetch_page
from omnirouter.web.ssrf import parse_ip, refusal
from tests.conftest import ALPHA_PRICES
from tests.gateway import generation, key_usage

PRICE = Decimal("0.0015")  # web_fetch_price in these tests
ARTICLE = """<!doctype html><html><head><title>Gateways explained</title></head><body>
<nav><a href="/">Home</a> | <a href="/about">About us</a> | <a href="/shop">Shop the sale</a></nav>
<div class="cookie-banner">We use cookies to improve your experience. Accept all cookies?</div>
<article><h1>Gateways explained</h1>
<p>An inference gateway routes each request to one of several providers, retrying elsewhere when one
fails. It keeps one ledger of what every key spent, so that limits hold across providers.</p>
<p>Self-hosting such a gateway keeps prompts inside the operator's own network, which matters to teams
that handle private data and cannot send it through a third party's service.</p>
<p>The routing decision weighs price, latency and recent failures of each provider endpoint.</p>
</article>
<footer>Copyright 2026 Example Corp. All rights reserved. Privacy policy. Terms of service.</footer>
</body></html>"""
MAIN = "An inference gateway routes each request to one of several providers"


def _settings(**overrides: Any) -> Settings:
    return Settings(**{"web_fetch_allow_private": True, "web_fetch_timeout": 5.0, **overrides})


@pytest.fixture(scope="module")
def pages():
    with FakePages.run_in_thread() as p:
        p.page("/article", ARTICLE)
        p.page("/notes.txt", "plain *text* stays   as it is\n", "text/plain; charset=utf-8")
        p.redirect("/moved", "/article")
        p.redirect("/loop", "/loop")
        p.page("/big", "<html><body><p>" + "word " * 1000 + "</p></body></html>")
        p.page("/fragment", "<p>" + "x" * 50 + "</p>")
        p.redirect("/to-ip", p.url("/article"))
        p.slow("/slow", seconds=3)
        p.status("/gone", 410)
        p.page("/image.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64, "image/png")
        yield p


# -- the address check itself (no traffic) ---------------------------------------------------------

REFUSED = [
    "127.0.0.1", "127.255.255.254", "0.0.0.0", "0.1.2.3", "10.0.0.1", "10.255.255.255", "172.16.0.1",
    "172.31.255.255", "192.168.1.1", "100.64.0.1", "100.127.255.254", "169.254.169.254", "169.254.0.1",
    "192.0.0.1", "198.18.0.1", "192.0.2.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::1", "::", "fe80::1", "fe80::1%eth0", "fc00::1", "fd12:3456::1", "fd00:ec2::254", "ff02::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "::127.0.0.1", "64:ff9b::7f00:1",
    "64:ff9b::a9fe:a9fe", "64:ff9b:1::1", "2002:7f00:1::", "2002:a9fe:a9fe::1", "2001:db8::1",
]  # fmt: skip
PUBLIC = ["8.8.8.8", "93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "2a00:1450:4001::200e", "64:ff9b::808:808"]


@pytest.mark.parametrize("address", REFUSED)
def test_refused_address(address):
    ip = parse_ip(address)
    assert ip is not None
    assert refusal(ip) is not None


@pytest.mark.parametrize("address", PUBLIC)
def test_public_address(address):
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),  # decimal
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("0x7f.0.0.1", "127.0.0.1"),  # hex
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),  # short
        ("10.1", "10.0.0.1"),
        ("169.254.43518", "169.254.169.254"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::ffff:7f00:1]", "::ffff:7f00:1"),
    ],
)
def test_ip_spellings(host, address):
    ip = parse_ip(host)
    assert ip == ipaddress.ip_address(address)
    assert refusal(ip) is not None


@pytest.mark.parametrize("host", ["example.com", "256.1.1.1", "1.2.3.4.5", "08.1.1.1", "localhost", "1e3"])
def test_names_are_not_addresses(host):
    assert parse_ip(host) is None


# -- fetch_page against loopback pages --------------------------------------------------------------


async def test_main_text_without_boilerplate(pages):
    page = await fetch_page(_settings(), pages.url("/article"))
    assert MAIN in page.text
    assert "Self-hosting such a gateway" in page.text
    for junk in ("Shop the sale", "cookies", "All rights reserved"):
        assert junk not in page.text
    assert page.title == "Gateways explained"
    assert (page.url, page.content_type) == (pages.url("/article"), "text/html")


async def test_fragment_text(pages):
    assert (await fetch_page(_settings(), pages.url("/fragment"))).text == "x" * 50


async def test_plain_text_as_it_is(pages):
    page = await fetch_page(_settings(), pages.url("/notes.txt"))
    assert (page.text, page.content_type, page.title) == ("plain *text* stays   as it is\n", "text/plain", None)


async def test_redirect_gives_the_final_url(pages):
    page = await fetch_page(_settings(), pages.url("/moved"))
    assert page.url == pages.url("/article")
    assert MAIN in page.text


async def test_redirects_are_bounded(pages):
    with pytest.raises(GatewayError) as err:
        await fetch_page(_settings(web_fetch_max_redirects=3), pages.url("/loop"))
    assert err.value.status == 502
    assert "more than 3 redirects" in err.value.message


async def test_size_limit(pages):
    with pytest.raises(GatewayError) as err:
        await fetch_page(_settings(web_fetch_max_bytes=1000), pages.url("/big"))
    assert err.value.status == 502
    assert "larger than 1000 bytes" in err.value.message
    assert "word " * 100 in (await fetch_page(_settings(web_fetch_max_bytes=10_000), pages.url("/big"))).text


async def test_time_limit(pages):
    with pytest.raises(GatewayError) as err:
        await fetch_page(_settings(web_fetch_timeout=0.3), pages.url("/slow"))
    assert err.value.status == 504
    assert "longer than 0.3 s" in err.value.message


async def test_token_limit_truncates(pages):
    page = await fetch_page(_settings(), pages.url("/big"), max_content_tokens=10)
    assert page.text == "word " * 8 + "\n\n[content truncated]"


@pytest.mark.parametrize(("path", "status", "words"), [("/gone", 502, "HTTP 410"), ("/image.png", 502, "image/png")])
async def test_failures(pages, path, status, words):
    with pytest.raises(GatewayError) as err:
        await fetch_page(_settings(), pages.url(path))
    assert err.value.status == status
    assert words in err.value.message


async def test_domain_lists(pages):
    url = pages.url("/article")
    with pytest.raises(GatewayError) as err:
        await fetch_page(_settings(), url, blocked_domains=["127.0.0.1"])
    assert (err.value.status, "blocked_domains" in err.value.message) == (400, True)
    with pytest.raises(GatewayError) as err:
        await fetch_page(_settings(), url, allowed_domains=["example.com"])
    assert (err.value.status, "allowed_domains" in err.value.message) == (400, True)
    assert MAIN in (await fetch_page(_settings(), url, allowed_domains=["127.0.0.1"])).text
    # The lists apply to every hop: a redirect out of the allowed domains is refused.
    with pytest.raises(GatewayError) as err:
        await fetch_page(_settings(), pages.url("/to-ip", host="localhost"), allowed_domains=["localhost"])
    assert err.value.status == 400


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "gopher://x/", "http:///nohost", "nonsense"]
)
async def test_only_http_urls(url):
    with pytest.raises(GatewayError) as err:
        await fetch_page(_settings(), url)
    assert err.value.status == 400


# -- SSRF refusals with the default settings ---------------------------------------------------------


def _spellings(port: int) -> list[str]:
    return [
        f"http://127.0.0.1:{port}/article",
        f"http://localhost:{port}/article",  # a name that resolves to loopback
        f"http://2130706433:{port}/article",
        f"http://0177.0.0.1:{port}/article",
        f"http://0x7f.0.0.1:{port}/article",
        f"http://127.1:{port}/article",
        f"http://[::1]:{port}/article",
        f"http://[::ffff:127.0.0.1]:{port}/article",
        f"http://[::ffff:7f00:1]:{port}/article",
        f"http://[64:ff9b::127.0.0.1]:{port}/article",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://10.0.0.1/",
        "http://0.0.0.0:{port}/",
    ]


async def test_private_addresses_refused_by_default(pages):
    settings = Settings()
    assert settings.web_fetch_allow_private is False
    before = len(pages.requests)
    for url in _spellings(pages.port):
        with pytest.raises(GatewayError) as err:
            await fetch_page(settings, url)
        assert err.value.status == 400, url
        assert "Refused" in err.value.message, url
    assert len(pages.requests) == before  # nothing reached the server


async def test_redirect_to_loopback_refused(pages, monkeypatch):
    """A page the rules allow (here: 127.0.0.1, let through for this test alone) that redirects to a
    loopback address: the redirect is refused before any connection."""
    real = fetch.refusal
    monkeypatch.setattr(fetch, "refusal", lambda ip: None if str(ip) == "127.0.0.1" else real(ip))
    for target in ("http://127.0.0.2/secret", "http://[::1]/secret", "http://2130706434/secret"):
        pages.redirect("/to-loopback", target)
        before = len(pages.requests)
        with pytest.raises(GatewayError) as err:
            await fetch_page(Settings(), pages.url("/to-loopback"))
        assert err.value.status == 400
        assert "loopback" in err.value.message
        assert pages.requests[before:] == ["/to-loopback"]


async def test_every_resolved_address_is_checked(monkeypatch):
    """A name with one public and one loopback address is refused, and a name's checked addresses are
    what the connection uses (the resolver answers with them; nothing resolves the name again)."""
    import asyncio

    loop = asyncio.get_running_loop()
    answers = {
        "mixed.test": ["93.184.216.34", "127.0.0.1"],
        "public.test": ["93.184.216.34"],
    }

    async def getaddrinfo(host, port, **_):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in answers[host]]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    resolver = fetch._CheckedResolver(allow_private=False)
    with pytest.raises(fetch._Refused) as err:
        await resolver.resolve("mixed.test", 80)
    assert "loopback" in err.value.error.message
    [only] = await resolver.resolve("public.test", 443)
    assert (only["host"], only["hostname"], only["port"]) == ("93.184.216.34", "public.test", 443)


# -- the plugin through the SDKs ------------------------------------------------------------------------


@pytest.fixture
def gw(make_gateway):
    return make_gateway(web_fetch_allow_private=True, web_fetch_price=str(PRICE))


def _context(fake) -> str:
    """The system message the plugin put before the user's message, as the upstream got it."""
    messages = fake.fake.last_request.json["messages"]
    [note] = [m["content"] for m in messages if m["role"] == "system"]
    assert messages[-1]["role"] == "user"
    return note


def _model_cost(prompt: int, completion: int) -> Decimal:
    return prompt * Decimal(ALPHA_PRICES["prompt"]) + completion * Decimal(ALPHA_PRICES["completion"])


def test_chat_openai_sdk(gw, pages, fake_a):
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("It routes requests.", prompt_tokens=100, completion_tokens=5))
    client = openai.OpenAI(base_url=gw.api, api_key=key)
    url = pages.url("/moved")
    completion = client.chat.completions.create(
        model="test/alpha",
        messages=[{"role": "user", "content": f"Summarize {url}."}],
        extra_body={"plugins": [{"id": "web-fetch"}]},
    )
    note = _context(fake_a)
    assert MAIN in note and pages.url("/article") in note and "Shop the sale" not in note
    [citation] = completion.choices[0].message.annotations
    assert citation.type == "url_citation"
    assert (citation.url_citation.url, citation.url_citation.title) == (pages.url("/article"), "Gateways explained")
    row = generation(gw, key, completion.id)
    assert row["num_fetches"] == 1
    assert row["total_cost"] == _model_cost(100, 5) + PRICE
    assert key_usage(gw, key) == _model_cost(100, 5) + PRICE


def test_chat_streamed(gw, pages, fake_a):
    key = gw.create_key()["key"]
    fake_a.fake.script(Stream("Two pages.", prompt_tokens=50, completion_tokens=3))
    client = openai.OpenAI(base_url=gw.api, api_key=key)
    urls = [pages.url("/article"), pages.url("/notes.txt"), pages.url("/gone")]
    chunks = list(
        client.chat.completions.create(
            model="test/alpha",
            messages=[{"role": "user", "content": "Compare " + ", ".join(urls)}],
            extra_body={"plugins": [{"id": "web-fetch", "max_uses": 2}]},
            stream=True,
        )
    )
    annotations = [a for c in chunks for ch in c.choices for a in (getattr(ch.delta, "annotations", None) or ())]
    assert [a["url_citation"]["url"] for a in annotations] == urls[:2]
    note = _context(fake_a)
    assert MAIN in note and "plain *text* stays" in note
    assert f"--- {urls[2]} ---\n[not fetched: the request allows at most 2 fetches (max_uses)]" in note
    row = generation(gw, key, chunks[0].id)
    assert row["num_fetches"] == 2
    assert row["total_cost"] == _model_cost(50, 3) + 2 * PRICE


def test_failed_and_refused_fetches_cost_nothing(make_gateway, pages, fake_a):
    gw = make_gateway(web_fetch_price=str(PRICE))  # the default: private addresses refused
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("Cannot read it.", prompt_tokens=20, completion_tokens=4))
    before = len(pages.requests)
    with gw.client(key) as c:
        r = c.post(
            "/chat/completions",
            json={
                "model": "test/alpha",
                "messages": [{"role": "user", "content": f"Read http://localhost:{pages.port}/article please"}],
                "plugins": [{"id": "web-fetch"}],
            },
        )
    assert r.status_code == 200, r.text
    assert not r.json()["choices"][0]["message"].get("annotations")
    assert "[not fetched: Refused to fetch from localhost: it resolves to a loopback address]" in _context(fake_a)
    assert len(pages.requests) == before
    row = generation(gw, key, r.json()["id"])
    assert row["num_fetches"] == 0
    assert row["total_cost"] == _model_cost(20, 4)


def test_bad_options_are_400(gw):
    key = gw.create_key()["key"]
    with gw.client(key) as c:
        r = c.post(
            "/chat/completions",
            json={
                "model": "test/alpha",
                "messages": [{"role": "user", "content": "hi"}],
                "plugins": [{"id": "web-fetch", "max_uses": 0}],
            },
        )
    assert r.status_code == 400
    assert "max_uses must be a positive integer" in r.json()["error"]["message"]


def test_responses_openai_sdk(gw, pages, fake_a):
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("Routing.", prompt_tokens=80, completion_tokens=2))
    client = openai.OpenAI(base_url=gw.api, api_key=key)
    raw = client.responses.with_raw_response.create(
        model="test/alpha",
        input=f"What does {pages.url('/article')} say?",
        extra_body={"plugins": [{"id": "web-fetch", "max_content_tokens": 20}]},
    )
    response = raw.parse()
    assert response.output_text == "Routing."
    [citation] = response.output[-1].content[0].annotations
    assert (citation.type, citation.url) == ("url_citation", pages.url("/article"))
    note = _context(fake_a)
    assert "An inference gateway routes" in note and "[content truncated]" in note
    assert "Self-hosting" not in note  # past the 20 tokens
    row = generation(gw, key, raw.headers["x-generation-id"])
    assert (row["num_fetches"], row["total_cost"]) == (1, _model_cost(80, 2) + PRICE)


def test_messages_anthropic_sdk(gw, pages, fake_a):
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("Routing.", prompt_tokens=70, completion_tokens=2))
    client = anthropic.Anthropic(base_url=gw.url + "/api", api_key=key)
    message = client.messages.create(
        model="test/alpha",
        max_tokens=100,
        messages=[{"role": "user", "content": [{"type": "text", "text": f"Read {pages.url('/article')}."}]}],
        extra_body={"plugins": [{"id": "web-fetch", "blocked_domains": ["localhost"]}]},
    )
    assert message.content[0].text == "Routing."
    [citation] = message.content[0].citations
    assert (citation.type, citation.url) == ("web_search_result_location", pages.url("/article"))
    assert MAIN in _context(fake_a)
    row = generation(gw, key, message.id)
    assert (row["num_fetches"], row["total_cost"]) == (1, _model_cost(70, 2) + PRICE)


def test_openrouter_sdk(gw, pages, fake_a):
    key = gw.create_key()["key"]
    fake_a.fake.script(Reply("Routing.", prompt_tokens=60, completion_tokens=2))
    with OpenRouter(api_key=key, server_url=gw.api) as client:
        result = client.chat.send(
            model="test/alpha",
            messages=[{"role": "user", "content": f"Read {pages.url('/article')}"}],
            plugins=[{"id": "web-fetch", "allowed_domains": ["127.0.0.1"]}],
        )
    assert result.choices[0].message.content == "Routing."
    assert MAIN in _context(fake_a)
    row = generation(gw, key, result.id)
    assert (row["num_fetches"], row["total_cost"]) == (1, _model_cost(60, 2) + PRICE)
