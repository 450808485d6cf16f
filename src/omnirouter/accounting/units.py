"""What a request to an operation other than chat consumed, in the catalog's pricing units, and its
exact price. Chat bills tokens (accounting/cost.py); embeddings bill input tokens, images each image
made, speech each input character, transcription each second of audio, video each second made, rerank
each search unit; an endpoint's `request` price is added once."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from omnirouter.accounting.cost import ZERO, Cost
from omnirouter.catalog.types import Pricing


@dataclass(frozen=True)
class Units:
    input_tokens: int = 0  # x pricing.prompt
    output_tokens: int = 0  # x pricing.completion
    images: int = 0  # generated images x pricing.image_output
    characters: int = 0  # speech input characters x pricing.character
    audio_seconds: Decimal = ZERO  # transcribed input audio x pricing.audio_second
    video_seconds: Decimal = ZERO  # generated video x pricing.video_second
    search_units: int = 0  # rerank x pricing.search_unit


def priced(pricing: Pricing, units: Units) -> Cost:
    """The charge for `units` at `pricing`: its input part as `prompt`, the rest as `completion`."""
    prompt = units.input_tokens * pricing.prompt + units.characters * pricing.character
    prompt += units.audio_seconds * pricing.audio_second + units.search_units * pricing.search_unit
    completion = units.output_tokens * pricing.completion + units.images * pricing.image_output
    completion += units.video_seconds * pricing.video_second
    return Cost(total=prompt + completion + pricing.request, prompt=prompt, completion=completion)
