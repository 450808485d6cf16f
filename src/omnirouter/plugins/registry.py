"""The plugins, in the order they run (see plugins/__init__.py). Adding a plugin is one line here."""

from __future__ import annotations

from omnirouter.plugins import REGISTRY

_ORDER: tuple[str, ...] = (
    # what decides whether the request may go at all, then what adds to the prompt, then what shrinks it
    "moderation",
    "fusion",
    "file_parser",
    "web_fetch",
    "web",
    "context_compression",
    "response_healing",
)

for _name in _ORDER:
    _module = __import__(f"omnirouter.plugins.{_name}", fromlist=["ID"])
    REGISTRY.append((_module.ID, _module))
