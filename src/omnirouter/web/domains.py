"""Domain filters of a web search: `include_domains` / `exclude_domains` entries are a host
(`openai.com`, which also covers its subdomains), a wildcard host (`*.substack.com`: subdomains only)
or a host with a path (`openai.com/blog`: that path and below)."""

from __future__ import annotations

from fnmatch import fnmatchcase
from urllib.parse import urlsplit


def _split(pattern: str) -> tuple[str, str]:
    pattern = pattern.strip().lower()
    if "://" in pattern:  # someone wrote a URL: its scheme says nothing about the domain
        pattern = pattern.split("://", 1)[1]
    host, _, path = pattern.partition("/")
    return host.removeprefix("www."), path.strip("/")


def matches(url: str, pattern: str) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().removeprefix("www.")
    want_host, want_path = _split(pattern)
    if not want_host:
        return False
    if "*" in want_host or "?" in want_host:
        if not fnmatchcase(host, want_host):
            return False
    elif host != want_host and not host.endswith("." + want_host):
        return False
    if want_path:
        path = parts.path.strip("/").lower()
        return path == want_path or path.startswith(want_path + "/")
    return True


def allowed(url: str, include: list[str] | None, exclude: list[str] | None) -> bool:
    if include and not any(matches(url, p) for p in include):
        return False
    return not (exclude and any(matches(url, p) for p in exclude))


def engine_domains(include: list[str] | None, exclude: list[str] | None) -> tuple[list[str], list[str]]:
    """What to hand an engine that filters by plain domain: each include as its bare domain (a superset
    of the pattern, narrowed again afterwards), and only the excludes that are bare domains (excluding
    `substack.com` for `*.substack.com` would drop results the pattern keeps)."""
    inc: list[str] = []
    for p in include or ():
        host = _split(p)[0].removeprefix("*.")
        if not host or "*" in host or "?" in host:
            inc = []  # one pattern no engine can express: the engine searches everything, we filter
            break
        if host not in inc:
            inc.append(host)
    exc = [h for p in exclude or () if (h := _split(p)[0]) and "*" not in h and not _split(p)[1]]
    return inc, exc
