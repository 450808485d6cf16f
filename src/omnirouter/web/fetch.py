"""Fetch a page for a model to read: the web-fetch plugin, the openrouter:web_fetch server tool, and PDFs
given by URL all come through ``fetch_page``.

Every hop (the URL, then each redirect, at most ``web_fetch_max_redirects``) must be http(s), pass the
request's domain lists, and reach only public addresses (web/ssrf.py) unless ``web_fetch_allow_private``.
A DNS name is resolved once, by this module's resolver, which refuses it when any of its addresses is
refused and hands aiohttp exactly the addresses it checked: the connection goes to a checked address and
is never re-resolved (DNS rebinding). Any port is allowed: the rules are about which hosts a fetch may
reach, and public hosts serve pages on other ports too.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from omnirouter.errors import GatewayError
from omnirouter.web.domains import matches
from omnirouter.web.ssrf import parse_ip, refusal

if TYPE_CHECKING:
    from omnirouter.settings import Settings

__all__ = ["CHARS_PER_TOKEN", "Page", "fetch_bytes", "fetch_page", "truncate_tokens"]

CHARS_PER_TOKEN = 4  # max_content_tokens counts approximate tokens of this many characters
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "Omnirouter-WebFetch/1.0 (+https://github.com/omnirouter)"
_HTML = ("text/html", "application/xhtml+xml")
_TEXT = ("text/", "application/json", "application/xml", "application/x-yaml", "application/yaml")


@dataclass(frozen=True, slots=True)
class Page:
    url: str  # the final URL, after redirects
    title: str | None
    text: str  # the main text (HTML through trafilatura; text as it came; a PDF's text)
    content_type: str  # the media type, without parameters


class _Refused(OSError):
    """Raised inside aiohttp's resolver; turned back into the 400 it stands for."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


class _CheckedResolver(AbstractResolver):
    """Resolves a name once and answers only with addresses that passed the SSRF check."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_UNSPEC
    ) -> list[ResolveResult]:
        if (literal := parse_ip(host)) is not None:
            infos = [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, str(literal))]
        else:
            loop = asyncio.get_running_loop()
            try:
                found = await loop.getaddrinfo(host, port, family=family, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise OSError(f"cannot resolve {host}: {exc.strerror}") from None
            infos = [(fam, str(sockaddr[0]).split("%", 1)[0]) for fam, _, _, _, sockaddr in found]
        results: list[ResolveResult] = []
        for fam, address in dict.fromkeys(infos):
            ip = parse_ip(address)
            if ip is None:
                continue
            if not self.allow_private and (why := refusal(ip)):
                raise _Refused(GatewayError(400, f"Refused to fetch from {host}: it resolves to {why}"))
            results.append(ResolveResult(hostname=host, host=str(ip), port=port, family=fam, proto=0, flags=0))
        if not results:
            raise OSError(f"cannot resolve {host}")
        return results

    async def close(self) -> None:
        return None


def check_url(
    settings: Settings,
    url: URL,
    allowed_domains: list[str] | None = None,
    blocked_domains: list[str] | None = None,
) -> None:
    """Refuse (400) a URL a fetch may not go to, before any traffic: its scheme, its domain lists, and a
    host written as an IP address (names are checked once resolved)."""
    if url.scheme not in ("http", "https") or not url.host:
        raise GatewayError(400, f"Refused to fetch {url}: only http and https URLs can be fetched")
    host = url.host
    if blocked_domains and any(matches(str(url), p) for p in blocked_domains):
        raise GatewayError(400, f"Refused to fetch {url}: it is in blocked_domains")
    if allowed_domains and not any(matches(str(url), p) for p in allowed_domains):
        raise GatewayError(400, f"Refused to fetch {url}: it is not in allowed_domains")
    if not settings.web_fetch_allow_private and (ip := parse_ip(host)) is not None and (why := refusal(ip)):
        raise GatewayError(400, f"Refused to fetch {url}: {host} is {why}")


def truncate_tokens(text: str, max_tokens: int | None) -> str:
    if max_tokens is None or max_tokens <= 0 or len(text) <= max_tokens * CHARS_PER_TOKEN:
        return text
    return text[: max_tokens * CHARS_PER_TOKEN] + "\n\n[content truncated]"


async def fetch_page(
    settings: Settings,
    url: str,
    *,
    allowed_domains: list[str] | None = None,
    blocked_domains: list[str] | None = None,
    max_content_tokens: int | None = None,
) -> Page:
    """Fetch ``url`` and extract its text. Raises GatewayError: 400 for a URL refused (scheme, domain
    lists, an address not allowed, here or after a redirect), 502 when the fetch fails (HTTP error, too
    large, unreadable), 504 past ``web_fetch_timeout``."""
    final, media_type, charset, body = await _fetch(settings, url, allowed_domains, blocked_domains)
    title, text = await asyncio.to_thread(_extract, media_type, charset, body, str(final))
    return Page(url=str(final), title=title, text=truncate_tokens(text, max_content_tokens), content_type=media_type)


async def fetch_bytes(settings: Settings, url: str) -> tuple[str, str, bytes]:
    """(final URL, media type, body) of ``url``, under the same rules and limits as ``fetch_page``."""
    final, media_type, _, body = await _fetch(settings, url, None, None)
    return str(final), media_type, body


async def _fetch(
    settings: Settings, url: str, allowed_domains: list[str] | None, blocked_domains: list[str] | None
) -> tuple[URL, str, str | None, bytes]:
    try:
        target = URL(url.strip())
    except (ValueError, TypeError):
        raise GatewayError(400, f"Refused to fetch {url!r}: not a URL") from None
    try:
        async with asyncio.timeout(settings.web_fetch_timeout):
            return await _download(settings, target, allowed_domains, blocked_domains)
    except TimeoutError:
        raise GatewayError(504, f"Fetching {target} took longer than {settings.web_fetch_timeout:g} s") from None


async def _download(
    settings: Settings,
    target: URL,
    allowed_domains: list[str] | None,
    blocked_domains: list[str] | None,
) -> tuple[URL, str, str | None, bytes]:
    connector = aiohttp.TCPConnector(resolver=_CheckedResolver(settings.web_fetch_allow_private), use_dns_cache=False)
    headers = {"User-Agent": _USER_AGENT, "Accept": "text/html,application/xhtml+xml,text/*;q=0.9,*/*;q=0.5"}
    async with aiohttp.ClientSession(connector=connector, headers=headers, trust_env=False) as session:
        for _ in range(settings.web_fetch_max_redirects + 1):
            check_url(settings, target, allowed_domains, blocked_domains)
            try:
                async with session.get(target, allow_redirects=False) as response:
                    location = response.headers.get("Location")
                    if response.status in _REDIRECTS and location:
                        target = target.join(URL(location))
                        continue
                    if response.status >= 400:
                        raise GatewayError(502, f"Fetching {target} failed: it answered HTTP {response.status}")
                    body = await _read_capped(response, settings.web_fetch_max_bytes, target)
                    return target, response.content_type, response.charset, body
            except _Refused as exc:
                raise exc.error from None
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, _Refused):
                    raise exc.os_error.error from None
                raise GatewayError(502, f"Fetching {target} failed: cannot connect to {target.host}") from None
            except (aiohttp.ClientError, ValueError) as exc:
                raise GatewayError(502, f"Fetching {target} failed: {type(exc).__name__}") from None
    raise GatewayError(502, f"Fetching failed: more than {settings.web_fetch_max_redirects} redirects")


async def _read_capped(response: aiohttp.ClientResponse, limit: int, url: URL) -> bytes:
    too_large = GatewayError(502, f"Fetching {url} failed: the page is larger than {limit} bytes")
    if response.content_length is not None and response.content_length > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:  # counts decoded bytes: a compressed body cannot inflate past the limit
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _extract(media_type: str, charset: str | None, body: bytes, url: str) -> tuple[str | None, str]:
    """(title, main text) of a fetched body. CPU-bound: runs in a thread."""
    if media_type in _HTML or (media_type in ("", "application/octet-stream") and body.lstrip()[:1] == b"<"):
        return _html_text(body, charset, url)
    if media_type == "application/pdf" or body[:5] == b"%PDF-":
        from omnirouter.files.pdf_text import pdf_text

        try:
            return None, pdf_text(body)
        except GatewayError as exc:
            raise GatewayError(502, f"Fetching {url} failed: {exc.message}") from None
    if media_type.startswith(_TEXT) or media_type.endswith(("+json", "+xml")):
        return None, _decode(body, charset)
    raise GatewayError(502, f"Fetching {url} failed: its content ({media_type or 'unknown type'}) is not text")


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")


def _html_text(body: bytes, charset: str | None, url: str) -> tuple[str | None, str]:
    import json

    import trafilatura

    html: Any = _decode(body, charset) if charset else body  # without a charset, trafilatura detects it
    found = trafilatura.extract(html, url=url, output_format="json", with_metadata=True, include_comments=False)
    if found:
        data = json.loads(found)
        return data.get("title"), data.get("text") or ""
    # Nothing that looks like an article (a tiny page, a list): all its visible text.
    if text := trafilatura.html2txt(html):
        return None, text
    import lxml.html  # a fragment without <html> or <body>, which html2txt reads as empty

    try:
        return None, lxml.html.fromstring(html).text_content().strip()
    except (ValueError, lxml.etree.ParserError):
        return None, ""
