"""Plugins: what the gateway does around a model call (behaviors §8.7), one module each.

A request names plugins in `plugins: [{id, enabled?, ...options}]` (or by the legacy `transforms`, or
the `:online` variant); some also run unasked (context compression for small contexts, moderation
for moderated endpoints). Every plugin module offers, all optional:

- ``ID``: the plugin's id, as requests name it.
- ``wanted(call, options) -> bool``: for a plugin that may run unasked, whether it runs (``options``
  is None when the request did not name it). Without ``wanted``, a plugin runs only when named.
- ``async prepare(call, options, run)``: before the upstream is called, after the plan and the
  reservation. It may rewrite ``call.body`` (then it calls ``run.changed(call)``), add fees and
  generation details to ``run``, or raise a GatewayError that answers the request.
- ``complete(call, options, run, completion)``: a non-streamed answer (an OpenRouter chat completion)
  before the client format renders it.
- ``stream_delta(call, options, run) -> dict | None``: a streamed answer, once the upstream is done:
  a delta to send in one last content chunk before the usage chunk (annotations, say).

Order matters and is fixed here: what changes the prompt's content first, what shrinks it last.
A request without plugins pays one attribute check (`Call.plugins` is None).
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

from omnirouter.plugins.run import PluginRun

if TYPE_CHECKING:
    from omnirouter.pipeline.call import Call

__all__ = ["REGISTRY", "PluginRun", "requested", "start"]

# (id, module) in the order they run. Modules register themselves in plugins/registry.py.
REGISTRY: list[tuple[str, ModuleType]] = []
UNASKED: list[ModuleType] = []  # the registered modules that may run unasked (they have `wanted`)


def requested(body: dict[str, Any], extra: list[dict[str, Any]] | None = None) -> dict[str, dict[str, Any]]:
    """The plugins a request names, by id, with their options: `plugins` entries (the last one of an
    id wins; `enabled: false` turns it off), the legacy `transforms`, and what the plan added
    (`:online`). A disabled plugin stays in the map with `enabled: False`, so that a plugin that runs
    unasked can tell "off" from "not named"."""
    named: dict[str, dict[str, Any]] = {}
    transforms = body.get("transforms")
    if isinstance(transforms, list):  # behaviors §8.6: ["middle-out"] turns it on, [] off
        named["context-compression"] = (
            {"id": "context-compression", "engine": "middle-out"}
            if "middle-out" in transforms
            else {"id": "context-compression", "enabled": False}
        )
    for entry in extra or ():
        named.setdefault(entry["id"], entry)
    plugins = body.get("plugins")
    if isinstance(plugins, list):
        for entry in plugins:
            if isinstance(entry, dict) and isinstance(entry.get("id"), str):
                named[entry["id"]] = entry
    return named


def start(call: Call) -> PluginRun | None:
    """The plugins this request runs, or None (the common case: nothing to do)."""
    if not UNASKED and not REGISTRY:
        _load()
    body = call.body
    if "plugins" not in body and "transforms" not in body and not call.plan.plugins:  # most requests
        unasked = [(module, None) for module in UNASKED if module.wanted(call, None)]
        return PluginRun(unasked) if unasked else None  # type: ignore[arg-type]
    named = requested(body, call.plan.plugins)
    chosen: list[tuple[ModuleType, dict[str, Any] | None]] = []
    for plugin_id, module in REGISTRY:
        options = named.get(plugin_id)
        wanted = getattr(module, "wanted", None)
        if wanted is not None:
            if wanted(call, options):
                chosen.append((module, options))
        elif options is not None and options.get("enabled", True) is not False:
            chosen.append((module, options))
    return PluginRun(chosen) if chosen else None


def _load() -> None:
    """Fill REGISTRY (plugins/registry.py) and UNASKED once: importing it per request would cost more
    than the rest of this module's work on a request that names no plugin."""
    from omnirouter.plugins import registry  # noqa: F401

    UNASKED.extend(module for _, module in REGISTRY if hasattr(module, "wanted"))
