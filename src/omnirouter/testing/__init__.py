"""Fake upstreams for tests and benchmarks: real HTTP servers on loopback with scripted faults.

    from omnirouter.testing import FakeOpenAI, Status, Stream

Each fake is one wire module on a shared core (``omnirouter.testing.fakes``). Names are imported
lazily, so that ``python -m omnirouter.testing.fake_openai`` does not import the module twice (once
as a package member, once as ``__main__``) and a test loads only the fakes it uses. Adding a fake
is one line in ``_HOMES`` (and, for editors, one in the TYPE_CHECKING block).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for editors and type checkers; the lazy table below is what runs
    from omnirouter.testing.fakes.anthropic import FakeAnthropic, FakeAnthropicThread  # noqa: F401
    from omnirouter.testing.fakes.audio import Audio, FakeOpenAIAudio, FakeOpenAIAudioThread, Transcription  # noqa: F401
    from omnirouter.testing.fakes.azure import FakeAzure  # noqa: F401
    from omnirouter.testing.fakes.bedrock import FakeBedrock, FakeBedrockThread  # noqa: F401
    from omnirouter.testing.fakes.core import (  # noqa: F401
        BrokenJSON,
        Delay,
        FakeServer,
        FakeThread,
        RecordedRequest,
        Reply,
        Reset,
        Status,
        Step,
        Stream,
    )
    from omnirouter.testing.fakes.embeddings import (  # noqa: F401
        FakeAzureEmbed,
        FakeCohereEmbed,
        FakeGeminiEmbed,
        FakeJinaEmbed,
        FakeOpenAIEmbed,
        FakeVoyageEmbed,
    )
    from omnirouter.testing.fakes.embeddings_bedrock import FakeBedrockEmbed  # noqa: F401
    from omnirouter.testing.fakes.gemini import FakeGemini, FakeGeminiThread  # noqa: F401
    from omnirouter.testing.fakes.images import FakeAzureImages, FakeOpenAIImages, ImageReply  # noqa: F401
    from omnirouter.testing.fakes.images_gemini import FakeGeminiImages  # noqa: F401
    from omnirouter.testing.fakes.openai import FakeOpenAI, FakeOpenAIThread  # noqa: F401
    from omnirouter.testing.fakes.openai_responses import FakeOpenAIResponses, FakeOpenAIResponsesThread  # noqa: F401
    from omnirouter.testing.fakes.rerank import FakeCohereRerank, FakeJinaRerank, Ranked  # noqa: F401
    from omnirouter.testing.fakes.s3 import FakeS3, FakeS3Thread  # noqa: F401
    from omnirouter.testing.fakes.videos import FakeOpenAIVideos  # noqa: F401
    from omnirouter.testing.fakes.videos_gemini import FakeGeminiVideos  # noqa: F401

_CORE = "omnirouter.testing.fakes.core"
# Exported name -> the module that defines it.
_HOMES: dict[str, str] = {
    "BrokenJSON": _CORE,
    "Delay": _CORE,
    "FakeServer": _CORE,
    "FakeThread": _CORE,
    "RecordedRequest": _CORE,
    "Reply": _CORE,
    "Reset": _CORE,
    "Status": _CORE,
    "Step": _CORE,
    "Stream": _CORE,
    "FakeOpenAI": "omnirouter.testing.fakes.openai",
    "FakeOpenAIThread": "omnirouter.testing.fakes.openai",
    "FakeAzure": "omnirouter.testing.fakes.azure",
    "FakeAnthropic": "omnirouter.testing.fakes.anthropic",
    "FakeAnthropicThread": "omnirouter.testing.fakes.anthropic",
    "FakeBedrock": "omnirouter.testing.fakes.bedrock",
    "FakeBedrockThread": "omnirouter.testing.fakes.bedrock",
    "FakeGemini": "omnirouter.testing.fakes.gemini",
    "FakeGeminiThread": "omnirouter.testing.fakes.gemini",
    "FakeOpenAIResponses": "omnirouter.testing.fakes.openai_responses",
    "FakeOpenAIResponsesThread": "omnirouter.testing.fakes.openai_responses",
    # The operations beyond chat (issue 16): embeddings, rerank, images, audio, video, file storage.
    "FakeOpenAIEmbed": "omnirouter.testing.fakes.embeddings",
    "FakeAzureEmbed": "omnirouter.testing.fakes.embeddings",
    "FakeGeminiEmbed": "omnirouter.testing.fakes.embeddings",
    "FakeCohereEmbed": "omnirouter.testing.fakes.embeddings",
    "FakeVoyageEmbed": "omnirouter.testing.fakes.embeddings",
    "FakeJinaEmbed": "omnirouter.testing.fakes.embeddings",
    "FakeBedrockEmbed": "omnirouter.testing.fakes.embeddings_bedrock",
    "FakeCohereRerank": "omnirouter.testing.fakes.rerank",
    "FakeJinaRerank": "omnirouter.testing.fakes.rerank",
    "Ranked": "omnirouter.testing.fakes.rerank",
    "FakeOpenAIImages": "omnirouter.testing.fakes.images",
    "FakeAzureImages": "omnirouter.testing.fakes.images",
    "ImageReply": "omnirouter.testing.fakes.images",
    "FakeGeminiImages": "omnirouter.testing.fakes.images_gemini",
    "FakeOpenAIAudio": "omnirouter.testing.fakes.audio",
    "FakeOpenAIAudioThread": "omnirouter.testing.fakes.audio",
    "Audio": "omnirouter.testing.fakes.audio",
    "Transcription": "omnirouter.testing.fakes.audio",
    "FakeOpenAIVideos": "omnirouter.testing.fakes.videos",
    "FakeGeminiVideos": "omnirouter.testing.fakes.videos_gemini",
    "FakeS3": "omnirouter.testing.fakes.s3",
    "FakeS3Thread": "omnirouter.testing.fakes.s3",
}

__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if (home := _HOMES.get(name)) is not None:
        return getattr(importlib.import_module(home), name)
    raise AttributeError(f"module 'omnirouter.testing' has no attribute {name!r}")
