"""Provider adapters, one module per upstream wire format, chosen by a provider's `api` field."""

from __future__ import annotations

from omnirouter.providers.anthropic import AnthropicAdapter
from omnirouter.providers.apis import CHAT_APIS
from omnirouter.providers.azure import AzureAdapter
from omnirouter.providers.base import Adapter
from omnirouter.providers.bedrock import BedrockAdapter
from omnirouter.providers.gemini import GeminiAdapter
from omnirouter.providers.http1 import Pool
from omnirouter.providers.openai_compat import OpenAICompatAdapter
from omnirouter.providers.openai_responses import OpenAIResponsesAdapter
from omnirouter.providers.sandbox import SandboxAdapter


def build_adapters(pool: Pool) -> dict[str, Adapter]:
    """Adapters by wire-format name (the names in CHAT_APIS)."""
    adapters: dict[str, Adapter] = {"openai": OpenAICompatAdapter(pool), "sandbox": SandboxAdapter()}
    adapters["gemini"] = GeminiAdapter(pool)
    adapters["anthropic"] = AnthropicAdapter(pool)
    adapters["bedrock"] = BedrockAdapter(pool)
    adapters["azure"] = AzureAdapter(pool)
    adapters["openai-responses"] = OpenAIResponsesAdapter(pool)
    assert adapters.keys() == CHAT_APIS
    return adapters
