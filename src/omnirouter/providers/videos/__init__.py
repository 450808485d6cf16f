"""Video upstreams, one module per API: OpenAI's Videos API (Sora), Gemini's Veo (predictLongRunning
and its operation), and the sandbox. `API_OF` maps a provider's `api` to its VideoAPI; `handlers` is
the submission step in the form pipeline/modality.py attempts (with fallback across providers)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from omnirouter.providers.videos.base import VideoAPI
from omnirouter.providers.videos.gemini import GeminiVideos
from omnirouter.providers.videos.openai import OpenAIVideos
from omnirouter.providers.videos.sandbox import SandboxVideos

API_OF: dict[str, VideoAPI] = {"openai": OpenAIVideos(), "gemini": GeminiVideos(), "sandbox": SandboxVideos()}


def _submitter(api: VideoAPI) -> Callable[[Any, dict[str, Any]], Awaitable[Any]]:
    async def submit(up: Any, request: dict[str, Any]) -> Any:
        return await api.submit(up, request)

    return submit


handlers = {name: _submitter(api) for name, api in API_OF.items()}
