"""Video jobs on Gemini's Veo (a fake on loopback): the long-running operation is started in Veo's
format, polled until done, its video downloaded through Google's redirect, and billed once per second
asked for (Veo does not report its length); a failed operation and one that made no video cost nothing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from omnirouter.testing.fakes.core import Status
from omnirouter.testing.fakes.videos_gemini import FakeGeminiVideos, Job
from tests.gateway import Gateway
from tests.test_videos import FAST, finished, generation, get, movie_seconds, post, usage_of

VEO_KEY = "g-veo-test-5150"
VEO_KEY_ENV = "OMNI_TEST_VEO_KEY"
VEO_SECOND = Decimal("0.4")


@pytest.fixture(scope="module")
def veo() -> Iterator[Any]:
    handle = FakeGeminiVideos.run_in_thread(api_key=VEO_KEY)
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh(veo: Any) -> None:
    veo.reset()


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, veo: Any) -> Iterator[Gateway]:
    config = {
        "providers": [
            {"slug": "google-ai-studio", "name": "Google AI Studio", "api": "gemini", "base_url": veo.base_url,
             "api_key_env": VEO_KEY_ENV},
        ],
        "models": [
            {
                "id": "google/veo-3.1",
                "name": "Google: Veo 3.1",
                "architecture": {"input_modalities": ["text", "image"], "output_modalities": ["video"]},
                "endpoints": [{"provider": "google-ai-studio", "upstream_model": "veo-3.1-generate-preview",
                               "pricing": {"video_second": str(VEO_SECOND)}}],
            },
        ],
    }  # fmt: skip
    os.environ[VEO_KEY_ENV] = VEO_KEY
    try:
        gateway = Gateway(Path(tmp_path_factory.mktemp("veo")), config, **FAST).start()
    finally:
        os.environ.pop(VEO_KEY_ENV, None)
    yield gateway
    gateway.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return gw.create_key(name="veo")["key"]


def test_a_veo_operation_is_followed_downloaded_and_billed(gw: Gateway, key: str, veo: Any) -> None:
    veo.script(Job(("running", "running", "completed")))
    r = post(gw, key, {"model": "google/veo-3.1", "prompt": "a glacier calving", "duration": 6,
                       "aspect_ratio": "16:9", "resolution": "720p", "seed": 7})  # fmt: skip
    assert r.status_code == 202, r.text
    started = veo.requests[0]
    assert started.path == "/v1beta/models/veo-3.1-generate-preview:predictLongRunning"
    assert started.headers["x-goog-api-key"] == VEO_KEY
    assert started.json == {
        "instances": [{"prompt": "a glacier calving"}],
        "parameters": {"aspectRatio": "16:9", "durationSeconds": 6, "resolution": "720p", "seed": 7},
    }
    body = finished(gw, key, r.json()["id"])
    assert body["status"] == "completed" and body["usage"]["cost"] == 6 * VEO_SECOND
    paths = [q.path for q in veo.requests]
    assert paths[-2].endswith(":download") and paths[-1].startswith("/v1beta/storage/")
    video = get(gw, key, f"/videos/{body['id']}/content")
    assert video.status_code == 200 and movie_seconds(video.content) == 6
    assert usage_of(gw, key) == 6 * VEO_SECOND
    assert generation(gw, key, body["generation_id"])["provider_name"] == "Google AI Studio"


def test_a_failed_operation_costs_nothing(gw: Gateway, key: str, veo: Any) -> None:
    veo.script(Job(("running", "failed"), error="The request was blocked by safety filters."))
    body = finished(gw, key, post(gw, key, {"model": "google/veo-3.1", "prompt": "refused"}).json()["id"])
    assert body["status"] == "failed" and body["error"] == "The request was blocked by safety filters."
    assert usage_of(gw, key) == 0


def test_a_rate_limited_start_is_an_error_with_its_status(gw: Gateway, key: str, veo: Any) -> None:
    veo.script(Status(429, retry_after=3))
    r = post(gw, key, {"model": "google/veo-3.1", "prompt": "busy"})
    assert r.status_code == 429, r.text
    assert usage_of(gw, key) == 0
