"""Provider adapters, one module per upstream wire format, chosen by a provider's `api` field."""

from __future__ import annotations

import aiohttp

from omnirouter.providers.base import Adapter
from omnirouter.providers.openai_compat import OpenAICompatAdapter
from omnirouter.providers.sandbox import SandboxAdapter


def build_adapters(session: aiohttp.ClientSession) -> dict[str, Adapter]:
    """Adapters by wire-format name. A provider whose `api` has no adapter yet is not routable."""
    return {"openai": OpenAICompatAdapter(session), "sandbox": SandboxAdapter()}
