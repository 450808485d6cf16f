"""Video jobs end to end: POST /videos, GET /videos/{jobId}, its content and GET /videos/models through
the official SDKs and plain HTTP, answers checked against the OpenAPI document; OpenAI's Videos API
(fakes on loopback) and the sandbox as upstreams; fallback at submission; billing once, exactly, when
a job completes and never for a failed one; other keys' and unknown jobs 404; expired videos 410."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from openrouter import OpenRouter, errors
from sqlalchemy import update

from omnirouter.governance.byok_crypto import new_key as fernet_key
from omnirouter.governance.keys import new_key
from omnirouter.providers.videos.sandbox import tiny_mp4
from omnirouter.store.tables import video_jobs
from omnirouter.testing.fakes.core import Status
from omnirouter.testing.fakes.videos import FakeOpenAIVideos, Job
from omnirouter.videos import content, jobs
from omnirouter.videos.schemas import MAX_DURATION
from tests.gateway import Gateway
from tests.sdk_ts_run import run_steps
from tests.served import Served
from tests.spec_validation import spec_available, validate_response

SORA_KEY = "sk-sora-test-7311"
SORA_KEY_ENV = "OMNI_TEST_SORA_KEY"
SANDBOX_SECOND = Decimal("0.05")  # sandbox/video's price per second (catalog/loader.py)
SORA_SECOND = Decimal("0.1")
BACKUP_SECOND = Decimal("0.125")
REQUEST_PRICE = Decimal("0.01")
SORA_PRICES = {"video_second": str(SORA_SECOND), "request": str(REQUEST_PRICE)}
BACKUP_PRICES = {"video_second": str(BACKUP_SECOND)}
FAST = {"video_poll_initial": 0.02, "video_poll_max": 0.1}  # polls every few hundredths of a second


def config(sora: str, backup: str) -> dict[str, Any]:
    video = {"input_modalities": ["text", "image"], "output_modalities": ["video"]}
    return {
        "providers": [
            {"slug": "openai", "name": "OpenAI", "api": "openai", "base_url": sora, "api_key_env": SORA_KEY_ENV},
            {"slug": "backup", "name": "Backup Videos", "api": "openai", "base_url": backup},
        ],
        "models": [
            {
                "id": "openai/sora-2",
                "name": "OpenAI: Sora 2",
                "architecture": video,
                "endpoints": [
                    {"provider": "openai", "upstream_model": "sora-2", "pricing": SORA_PRICES},
                    {"provider": "backup", "upstream_model": "backup-video", "pricing": BACKUP_PRICES},
                ],
            },
            {
                "id": "openai/sora-only",
                "name": "OpenAI: Sora (one endpoint)",
                "architecture": video,
                "endpoints": [
                    {"provider": "openai", "upstream_model": "sora-2", "pricing": {"video_second": str(SORA_SECOND)}}
                ],
            },
        ],
    }


@pytest.fixture(scope="module")
def sora() -> Iterator[Any]:
    handle = FakeOpenAIVideos.run_in_thread(api_key=SORA_KEY)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def backup() -> Iterator[Any]:
    handle = FakeOpenAIVideos.run_in_thread()
    yield handle
    handle.stop()


@pytest.fixture(autouse=True)
def _fresh_fakes(request: pytest.FixtureRequest) -> None:
    for name in ("sora", "backup"):
        if name in request.fixturenames:
            request.getfixturevalue(name).reset()


def start_gateway(tmp: Path, sora: Any, backup: Any, **settings: Any) -> Gateway:
    os.environ[SORA_KEY_ENV] = SORA_KEY
    try:
        return Gateway(tmp, config(sora.base_url, backup.base_url), sandbox=True, **{**FAST, **settings}).start()
    finally:
        os.environ.pop(SORA_KEY_ENV, None)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, sora: Any, backup: Any) -> Iterator[Gateway]:
    gateway = start_gateway(tmp_path_factory.mktemp("videos"), sora, backup, encryption_key=fernet_key())
    yield gateway
    gateway.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return gw.create_key(name="videos")["key"]


def post(gw: Gateway, key: str, body: Any) -> httpx.Response:
    return httpx.post(gw.api + "/videos", json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def get(gw: Gateway, key: str, path: str) -> httpx.Response:
    return httpx.get(gw.api + path, headers={"Authorization": f"Bearer {key}"}, timeout=30)


def traffic(fake: Any) -> list[Any]:
    """The fake's requests about this test's jobs: its submissions, and whatever names a job the fake
    made since it was reset (an earlier test's job may be polled once more before it learns that the
    fake forgot it)."""
    jobs_now = fake.fake.jobs
    return [q for q in fake.requests if q.method == "POST" or any(job_id in q.path for job_id in jobs_now)]


def conforms(operation: str, body: Any, status: str = "200") -> None:
    if spec_available():
        validate_response(operation, body, status)


def finished(gw: Gateway, key: str, job_id: str, timeout: float = 15) -> dict[str, Any]:
    """The job once it completed or failed (the poller runs every few hundredths of a second)."""
    deadline = time.monotonic() + timeout
    while True:
        r = get(gw, key, f"/videos/{job_id}")
        assert r.status_code == 200, r.text
        body = json.loads(r.text, parse_float=Decimal)
        if body["status"] in ("completed", "failed", "expired") or time.monotonic() > deadline:
            conforms("getVideos", r.json())
            return body
        time.sleep(0.02)


def generation(gw: Gateway, key: str, gen_id: str) -> dict[str, Any]:
    with gw.client(key) as c:
        for _ in range(100):
            r = c.get("/generation", params={"id": gen_id})
            if r.status_code != 404:
                break
            time.sleep(0.05)
    assert r.status_code == 200, r.text
    conforms("getGeneration", r.json())
    return json.loads(r.text, parse_float=Decimal)["data"]


def usage_of(gw: Gateway, key: str) -> Decimal:
    gw.flush()
    with gw.client(key) as c:
        return Decimal(str(c.get("/key").json()["data"]["usage"]))


def boxes(data: bytes) -> list[tuple[bytes, int]]:
    """The top-level boxes of an MP4 file: (type, size), checking that they tile the file exactly."""
    found, at = [], 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at : at + 8])
        assert size >= 8, (kind, size)
        found.append((kind, size))
        at += size
    assert at == len(data)
    return found


def movie_seconds(data: bytes) -> Decimal:
    """The duration the movie header declares."""
    at = data.index(b"mvhd") + 4 + 4  # after the box type, its version and flags
    timescale, duration = struct.unpack(">II", data[at + 8 : at + 16])
    return Decimal(duration) / timescale


def on_loop(gw: Gateway, coro: Any) -> Any:
    assert gw.loop is not None
    return asyncio.run_coroutine_threadsafe(coro, gw.loop).result(timeout=10)


# -- the sandbox


def test_sandbox_job_through_the_python_sdk_is_billed_per_second(gw: Gateway, key: str) -> None:
    with OpenRouter(api_key=key, server_url=gw.api) as sdk:
        job = sdk.video_generation.generate(model="sandbox/video", prompt="a red kite over the sea", duration=3)
        assert job.status == "pending" and job.id.startswith("gen-vid-") and job.polling_url.endswith(job.id)
        for _ in range(500):
            polled = sdk.video_generation.get_generation(job_id=job.id)
            if polled.status == "completed":
                break
            time.sleep(0.02)
        assert polled.status == "completed", polled
        assert polled.usage is not None and Decimal(str(polled.usage.cost)) == 3 * SANDBOX_SECOND
        assert polled.unsigned_urls == [f"{gw.api}/videos/{job.id}/content?index=0"]
        video = sdk.video_generation.get_video_content(job_id=job.id).read()
    assert [kind for kind, _ in boxes(video)] == [b"ftyp", b"moov", b"mdat"]
    assert movie_seconds(video) == 3
    gen = generation(gw, key, polled.generation_id or "")
    assert gen["api_type"] == "video" and gen["model"] == "sandbox/video" and gen["total_cost"] == 3 * SANDBOX_SECOND
    assert usage_of(gw, key) == 3 * SANDBOX_SECOND


def test_sandbox_answers_the_document_and_makes_the_same_video_twice(gw: Gateway, key: str) -> None:
    videos = []
    for _ in range(2):
        r = post(gw, key, {"model": "sandbox/video", "prompt": "a lighthouse"})
        assert r.status_code == 202, r.text
        conforms("createVideos", r.json(), "202")
        assert r.json()["polling_url"] == f"{gw.api}/videos/{r.json()['id']}"
        assert finished(gw, key, r.json()["id"])["status"] == "completed"
        content_answer = get(gw, key, f"/videos/{r.json()['id']}/content")
        assert content_answer.status_code == 200 and content_answer.headers["content-type"] == "video/mp4"
        videos.append(content_answer.content)
    assert videos[0] == videos[1] and movie_seconds(videos[0]) == 8  # no duration: the default eight seconds
    # Under the /v1 root too, with URLs under it.
    r = httpx.post(gw.url + "/v1/videos", json={"model": "sandbox/video", "prompt": "v1"},
                   headers={"Authorization": f"Bearer {key}"})  # fmt: skip
    assert r.status_code == 202 and r.json()["polling_url"] == f"{gw.url}/v1/videos/{r.json()['id']}"
    polled = httpx.get(r.json()["polling_url"], headers={"Authorization": f"Bearer {key}"}).json()
    assert polled["polling_url"] == r.json()["polling_url"]


def test_video_models_lists_the_models_that_make_video(gw: Gateway) -> None:
    r = httpx.get(gw.api + "/videos/models", timeout=10)
    assert r.status_code == 200, r.text
    conforms("listVideosModels", r.json())
    listed = {m["id"]: m for m in r.json()["data"]}
    assert set(listed) == {"sandbox/video", "openai/sora-2", "openai/sora-only"}
    assert listed["openai/sora-2"]["pricing_skus"] == {"video_second": "0.1", "request": "0.01"}
    assert listed["sandbox/video"]["canonical_slug"] == "sandbox/video"


# -- OpenAI's Videos API


def test_a_sora_job_is_polled_until_complete_and_billed_once(gw: Gateway, key: str, sora: Any) -> None:
    sora.script(Job(("queued", "in_progress", "in_progress", "completed"), seconds="4"))
    r = post(gw, key, {"model": "openai/sora-only", "prompt": "waves", "duration": 4, "resolution": "720p",
                       "aspect_ratio": "9:16"})  # fmt: skip
    assert r.status_code == 202, r.text
    submitted = traffic(sora)[0]
    assert submitted.path == "/v1/videos" and submitted.headers["Authorization"] == f"Bearer {SORA_KEY}"
    assert submitted.json == {"model": "sora-2", "prompt": "waves", "seconds": "4", "size": "720x1280"}
    body = finished(gw, key, r.json()["id"])
    assert body["status"] == "completed" and body["usage"] == {"cost": 4 * SORA_SECOND, "is_byok": False}
    paths = [req.path for req in traffic(sora)]
    upstream_id = paths[1].rsplit("/", 1)[1]
    assert paths[1:] == [f"/v1/videos/{upstream_id}"] * 3 + [f"/v1/videos/{upstream_id}/content"]
    video = get(gw, key, f"/videos/{body['id']}/content?index=0")
    assert video.status_code == 200 and movie_seconds(video.content) == 4
    assert usage_of(gw, key) == 4 * SORA_SECOND
    # Polled no more, billed no more: later reads change nothing.
    assert finished(gw, key, body["id"])["usage"]["cost"] == 4 * SORA_SECOND
    assert len(traffic(sora)) == 5 and usage_of(gw, key) == 4 * SORA_SECOND
    assert generation(gw, key, body["generation_id"])["total_cost"] == 4 * SORA_SECOND


def test_a_failed_job_costs_nothing(gw: Gateway, key: str, sora: Any) -> None:
    sora.script(Job(("queued", "in_progress", "failed"), error="The prompt was refused by moderation."))
    r = post(gw, key, {"model": "openai/sora-only", "prompt": "something refused"})
    assert r.status_code == 202, r.text
    body = finished(gw, key, r.json()["id"])
    assert body["status"] == "failed" and body["error"] == "The prompt was refused by moderation."
    assert "usage" not in body and "unsigned_urls" not in body
    refused = get(gw, key, f"/videos/{body['id']}/content")
    assert refused.status_code == 409 and "failed" in refused.json()["error"]["message"]
    gen = generation(gw, key, body["generation_id"])
    assert gen["total_cost"] == 0 and gen["finish_reason"] == "error"
    assert usage_of(gw, key) == 0


def test_a_refused_submission_falls_back_to_the_next_provider(gw: Gateway, key: str, sora: Any, backup: Any) -> None:
    sora.script(Status(503))
    order = {"order": ["openai", "backup"], "allow_fallbacks": True}
    r = post(gw, key, {"model": "openai/sora-2", "prompt": "a fox", "duration": 8, "provider": order})
    assert r.status_code == 202, r.text
    body = finished(gw, key, r.json()["id"])
    assert body["status"] == "completed" and body["usage"]["cost"] == 8 * BACKUP_SECOND
    assert len(traffic(sora)) == 1  # its one refusal; the job lives at the backup
    assert [q.method for q in traffic(backup)][:2] == ["POST", "GET"] and traffic(backup)[0].json["model"] == (
        "backup-video"
    )
    gen = generation(gw, key, body["generation_id"])
    assert gen["provider_name"] == "Backup Videos" and gen["total_cost"] == 8 * BACKUP_SECOND


def test_polls_that_fail_are_retried_and_the_job_billed_once(gw: Gateway, key: str, sora: Any) -> None:
    sora.script(Job(("queued", "503", "500", "in_progress", "429", "completed"), seconds="4"))
    job_id = post(gw, key, {"model": "openai/sora-only", "prompt": "bumpy", "duration": 4}).json()["id"]
    body = finished(gw, key, job_id)
    assert body["status"] == "completed" and body["usage"]["cost"] == 4 * SORA_SECOND
    assert usage_of(gw, key) == 4 * SORA_SECOND


def test_a_job_the_provider_lost_fails_and_costs_nothing(gw: Gateway, key: str, sora: Any) -> None:
    sora.script(Job(("queued", "404")))
    body = finished(gw, key, post(gw, key, {"model": "openai/sora-only", "prompt": "lost"}).json()["id"])
    assert body["status"] == "failed" and "refused" in body["error"]
    assert usage_of(gw, key) == 0


def test_a_job_on_the_workspaces_own_key_is_polled_with_it_and_billed_as_byok(gw: Gateway, backup: Any) -> None:
    byok_secret = "sk-backup-workspace-own-2024"
    with gw.admin() as admin:
        team = admin.post("/workspaces", json={"name": "Video team", "slug": "video-team"}).json()["data"]["id"]
        created = admin.post("/byok", json={"provider": "backup", "key": byok_secret, "workspace_id": team})
        assert created.status_code == 201, created.text
    key = gw.create_key(name="video team key", workspace_id=team)["key"]
    backup.script(Job(("queued", "in_progress", "completed"), seconds="4"))
    deadline = time.monotonic() + 5
    while True:  # until this worker's BYOK snapshot has the new key (the next sync)
        r = post(gw, key, {"model": "openai/sora-2", "prompt": "our own key", "duration": 4})
        if traffic(backup) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert r.status_code == 202, r.text
    body = finished(gw, key, r.json()["id"])
    assert body["status"] == "completed" and body["usage"] == {"cost": 0, "is_byok": True}  # no BYOK fee here
    assert {q.headers.get("Authorization") for q in traffic(backup)} == {f"Bearer {byok_secret}"}
    assert len(traffic(backup)) == 4  # submitted, polled twice, downloaded: all with the workspace's key
    gen = generation(gw, key, body["generation_id"])
    assert gen["is_byok"] is True and gen["total_cost"] == 0 and gen["upstream_inference_cost"] == 4 * BACKUP_SECOND
    assert usage_of(gw, key) == 0


def test_the_request_price_is_added_once(gw: Gateway, key: str, sora: Any) -> None:
    sora.script(Job(("queued", "completed"), seconds="12"))
    only = {"order": ["openai"], "allow_fallbacks": False}
    r = post(gw, key, {"model": "openai/sora-2", "prompt": "a long take", "duration": 12, "provider": only})
    body = finished(gw, key, r.json()["id"])
    assert body["usage"]["cost"] == 12 * SORA_SECOND + REQUEST_PRICE
    assert usage_of(gw, key) == 12 * SORA_SECOND + REQUEST_PRICE


def test_every_provider_refusing_is_a_clear_error_and_no_job(gw: Gateway, key: str, sora: Any) -> None:
    sora.script(Status(400, {"error": {"message": "Invalid size for this model.", "type": "invalid_request_error"}}))
    r = post(gw, key, {"model": "openai/sora-only", "prompt": "x", "size": "10x10"})
    assert r.status_code == 400, r.text
    assert "Invalid size" in r.json()["error"]["message"]
    assert usage_of(gw, key) == 0


def test_a_key_that_cannot_afford_the_worst_case_is_refused_before_the_upstream(gw: Gateway, sora: Any) -> None:
    poor = gw.create_key(name="poor", limit=0.5)["key"]  # 8 seconds (the default) would cost 0.8
    r = post(gw, poor, {"model": "openai/sora-only", "prompt": "too dear"})
    assert r.status_code == 402, r.text
    conforms("createVideos", r.json(), "402")
    assert traffic(sora) == []
    assert post(gw, poor, {"model": "openai/sora-only", "prompt": "affordable", "duration": 4}).status_code == 202


def test_running_jobs_hold_their_worst_case_against_the_limit(gw: Gateway, sora: Any) -> None:
    limited = gw.create_key(name="limited", limit=1)["key"]
    sora.always(Job(("queued",)))  # never finishes
    try:
        first = post(gw, limited, {"model": "openai/sora-only", "prompt": "one", "duration": 6})
        assert first.status_code == 202
        second = post(gw, limited, {"model": "openai/sora-only", "prompt": "two", "duration": 6})
        assert second.status_code == 402, second.text  # 0.6 held by the first; 0.6 more does not fit in 1

        async def ended_elsewhere() -> None:  # another worker takes the job's lease and sees it fail
            while (taken := await jobs.claim(gw.state.db, first.json()["id"])) is None:
                await asyncio.sleep(0.01)  # this worker is polling it; its lease goes with the poll
            assert await jobs.fail(gw.state.db, taken, "failed elsewhere")
            gw.state.video_poller.wake.set()

        on_loop(gw, ended_elsewhere())
        deadline = time.monotonic() + 10
        while (again := post(gw, limited, {"model": "openai/sora-only", "prompt": "two", "duration": 6})).status_code \
                == 402 and time.monotonic() < deadline:  # fmt: skip
            time.sleep(0.02)  # until this worker's poller gives back what it held
        assert again.status_code == 202, again.text
    finally:
        sora.always(None)


# -- whose jobs


def test_unknown_and_other_keys_jobs_are_not_found(gw: Gateway, key: str) -> None:
    r = post(gw, key, {"model": "sandbox/video", "prompt": "mine"})
    job_id = r.json()["id"]
    other = gw.create_key(name="someone else")["key"]
    for path in (f"/videos/{job_id}", f"/videos/{job_id}/content"):
        refused = get(gw, other, path)
        assert refused.status_code == 404 and job_id in refused.json()["error"]["message"]
    conforms("getVideos", get(gw, other, f"/videos/{job_id}").json(), "404")
    for path in ("/videos/gen-vid-1-00000000000000000000", "/videos/nope/content", "/videos/" + "x" * 300,
                 "/videos/a%00b", "/videos/%E2%9C%93/content"):  # fmt: skip
        assert get(gw, key, path).status_code == 404
    with OpenRouter(api_key=other, server_url=gw.api) as sdk, pytest.raises(errors.NotFoundResponseError):
        sdk.video_generation.get_generation(job_id=job_id)
    assert httpx.get(gw.api + f"/videos/{job_id}", timeout=10).status_code == 401


def test_content_before_completion_and_of_a_missing_index(gw: Gateway, key: str, sora: Any) -> None:
    sora.always(Job(("queued",)))
    try:
        r = post(gw, key, {"model": "openai/sora-only", "prompt": "slow", "duration": 4})
        early = get(gw, key, f"/videos/{r.json()['id']}/content")
        assert early.status_code == 409 and "not finished" in early.json()["error"]["message"]
    finally:
        sora.always(None)
    done = post(gw, key, {"model": "sandbox/video", "prompt": "indexed"}).json()["id"]
    finished(gw, key, done)
    assert get(gw, key, f"/videos/{done}/content?index=1").status_code == 404
    assert get(gw, key, f"/videos/{done}/content?index=-1").status_code == 400


def test_a_video_stored_on_another_machine_is_fetched_from_the_provider(gw: Gateway, key: str, sora: Any) -> None:
    sora.script(Job(("queued", "completed"), seconds="4"))
    job_id = post(gw, key, {"model": "openai/sora-only", "prompt": "elsewhere", "duration": 4}).json()["id"]
    assert finished(gw, key, job_id)["status"] == "completed"
    kept = get(gw, key, f"/videos/{job_id}/content").content
    content.delete(gw.settings.data_dir, job_id)  # as if another instance, with its own disk, had stored it
    fetched = get(gw, key, f"/videos/{job_id}/content")
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "video/mp4"
    assert fetched.content == kept
    assert [q.path for q in traffic(sora)].count(traffic(sora)[-1].path) == 2  # downloaded again
    assert usage_of(gw, key) == 4 * SORA_SECOND


# -- retention


def test_expired_videos_are_gone_with_a_clear_message(gw: Gateway, key: str) -> None:
    job_id = post(gw, key, {"model": "sandbox/video", "prompt": "short lived", "duration": 1}).json()["id"]
    assert finished(gw, key, job_id)["status"] == "completed"
    stored = content.path_of(gw.settings.data_dir, job_id, 0)
    assert stored.is_file()

    async def age() -> int:
        async with gw.state.db.engine.begin() as conn:
            await conn.execute(
                update(video_jobs).where(video_jobs.c.id == job_id).values(expires_at=jobs.now() - timedelta(seconds=1))
            )
        return await gw.state.video_poller.cleanup()

    assert on_loop(gw, age()) >= 1
    assert not stored.exists()
    gone = get(gw, key, f"/videos/{job_id}/content")
    assert gone.status_code == 410 and "kept 7 days" in gone.json()["error"]["message"]
    body = finished(gw, key, job_id)
    assert body["status"] == "expired" and "unsigned_urls" not in body and body["usage"]["cost"] == SANDBOX_SECOND


# -- bad input


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"model": "sandbox/video"}, "prompt is required"),
        ({"model": "sandbox/video", "prompt": "x", "duration": 0}, "duration"),
        ({"model": "sandbox/video", "prompt": "x", "duration": 2.5}, "duration"),
        ({"model": "sandbox/video", "prompt": "x", "aspect_ratio": "5:4"}, "aspect_ratio"),
        ({"model": "sandbox/video", "prompt": "x", "resolution": "8K"}, "resolution"),
        ({"model": "sandbox/video", "prompt": "x", "size": "big"}, "size"),
        ({"model": "sandbox/video", "prompt": "x", "callback_url": "http://example.com/hook"}, "https"),
        ({"model": "sandbox/video", "prompt": "x", "previous_job_id": "gen-vid-1-abc"}, "previous_job_id"),
        ({"model": "sandbox/video", "frame_images": [{"type": "image_url", "image_url": {"url": "u"}}]}, "frame_type"),
        ({"model": "sandbox/video", "frame_images": [{"type": {}, "image_url": {"url": "u"}}]}, "frame_images[0].type"),
        ({"model": "sandbox/video", "prompt": "x", "input_references": [{"type": ["x"]}]}, "input_references[0]"),
        ({"model": "sandbox/video", "prompt": "x", "duration": 3601}, "from 1 to 3600"),
        ({"model": "sandbox/echo", "prompt": "x"}, "does not support videos"),
        ({"model": "nobody/nothing", "prompt": "x"}, "nobody/nothing"),
        ({"prompt": "x"}, "model"),
        ([1, 2], "JSON object"),
    ],
)
def test_bad_input_is_refused_and_nothing_recorded(gw: Gateway, key: str, body: Any, words: str) -> None:
    r = post(gw, key, body)
    assert r.status_code == 400, r.text
    assert words in r.json()["error"]["message"]
    conforms("createVideos", r.json(), "400")
    gen_id = r.headers["x-generation-id"]
    gw.flush()
    with gw.client(key) as c:
        assert c.get("/generation", params={"id": gen_id}).status_code == 404
    assert usage_of(gw, key) == 0


def test_whole_numbers_written_with_a_point_are_whole_numbers(gw: Gateway, key: str) -> None:
    r = post(gw, key, {"model": "sandbox/video", "prompt": "a point", "duration": 2.0, "seed": 7.0})
    assert r.status_code == 202, r.text
    assert finished(gw, key, r.json()["id"])["usage"]["cost"] == 2 * SANDBOX_SECOND


def test_the_python_sdk_raises_its_typed_error(gw: Gateway, key: str) -> None:
    with OpenRouter(api_key=key, server_url=gw.api) as sdk, pytest.raises(errors.BadRequestResponseError):
        sdk.video_generation.generate(model="sandbox/video", prompt="x", duration=0)


# -- several pollers on one database


def test_two_gateways_on_one_database_bill_each_job_once(tmp_path: Path, gw: Gateway, sora: Any, backup: Any) -> None:
    """A second gateway on the first one's database polls the same jobs: each is billed once."""
    other = Gateway(tmp_path, config(sora.base_url, backup.base_url), sandbox=True,
                    database_url=gw.settings.db_url, **FAST)  # fmt: skip
    os.environ[SORA_KEY_ENV] = SORA_KEY
    try:
        other.start()
    finally:
        os.environ.pop(SORA_KEY_ENV, None)
    try:
        key = gw.create_key(name="shared")["key"]
        sora.always(Job(("queued", "in_progress", "completed"), seconds="2"))
        ids = [post(gw if i % 2 else other, key, {"model": "openai/sora-only", "prompt": f"job {i}", "duration": 2})
               .json()["id"] for i in range(10)]  # fmt: skip
        for job_id in ids:
            assert finished(gw, key, job_id)["status"] == "completed"
        other.flush()
        assert usage_of(gw, key) == 10 * 2 * SORA_SECOND
        downloads = [q for q in traffic(sora) if q.path.endswith("/content")]
        assert len(downloads) == 10  # one worker followed each job to its end
    finally:
        sora.always(None)
        other.server.should_exit = True
        other.thread.join(timeout=30)
        other.sock.close()


# -- schemathesis (tests/test_schemathesis.py): refusals of schema-valid requests no schema can express


_REFUSED = ("prompt is required", "does not support videos", "No configured provider serves videos")


def _refused(error: dict[str, Any]) -> bool:
    return bool(error.get("availability")) or any(text in error["message"] for text in _REFUSED)


SEMANTIC_REFUSALS = {("/videos", "post"): _refused}


# -- the official SDKs' conformance checks (collected by tests/test_sdk_conformance.py)


def _wait_completed(sdk: OpenRouter, job_id: str) -> Any:
    for _ in range(1000):
        polled = sdk.video_generation.get_generation(job_id=job_id)
        if polled.status in ("completed", "failed"):
            return polled
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} did not finish")


def video_generation_generate(ctx: Any) -> None:
    job = ctx.sdk.video_generation.generate(model="sandbox/video", prompt="conformance", duration=1)
    assert job.status == "pending" and job.id.startswith("gen-vid-")


def video_generation_get_generation(ctx: Any) -> None:
    job = ctx.sdk.video_generation.generate(model="sandbox/video", prompt="conformance", duration=1)
    polled = _wait_completed(ctx.sdk, job.id)
    assert polled.status == "completed" and polled.usage is not None and polled.usage.cost == 0.05


def video_generation_get_video_content(ctx: Any) -> None:
    job = ctx.sdk.video_generation.generate(model="sandbox/video", prompt="conformance", duration=1)
    _wait_completed(ctx.sdk, job.id)
    data = ctx.sdk.video_generation.get_video_content(job_id=job.id).read()
    assert data[4:8] == b"ftyp"


def video_generation_list_videos_models(ctx: Any) -> None:
    listed = ctx.sdk.video_generation.list_videos_models()
    assert "sandbox/video" in [m.id for m in listed.data]


CONFORMANCE = {
    "videoGeneration.generate": video_generation_generate,
    "videoGeneration.getGeneration": video_generation_get_generation,
    "videoGeneration.getVideoContent": video_generation_get_video_content,
    "videoGeneration.listVideosModels": video_generation_list_videos_models,
}


def test_conformance_checks_pass_here(gw: Gateway) -> None:
    """CONFORMANCE drives every video operation through the Python SDK (tests/test_sdk_conformance.py
    checks that it names them all); here it runs, on this module's gateway."""

    class Ctx:
        sdk = OpenRouter(api_key=gw.create_key(name="conformance")["key"], server_url=gw.api)

    with Ctx.sdk:
        for check in CONFORMANCE.values():
            check(Ctx)


# -- @openrouter/sdk (node): tests/sdk_ts/videos.mjs, one JSON line per check


def test_typescript_sdk(gw: Gateway, key: str, sora: Any) -> None:
    config = {"serverURL": gw.api, "apiKey": key, "model": "sandbox/video", "soraModel": "openai/sora-only"}
    results = run_steps("videos.mjs", config)
    assert set(results) == {
        "videoGeneration.generate",
        "videoGeneration.getGeneration",
        "videoGeneration.getVideoContent",
        "videoGeneration.listVideosModels",
        "videoGeneration.upstream",
        "errors",
    }
    assert all(r["ok"] for r in results.values()), results
    assert usage_of(gw, key) == 2 * SANDBOX_SECOND + 4 * SORA_SECOND


# -- a restart


def test_a_job_survives_a_gateway_restart(tmp_path: Path, sora: Any) -> None:
    """`omnirouter serve` takes a job and is killed before its first poll; the next one follows it to
    the end and bills it, once."""
    config_path = tmp_path / "omnirouter.yaml"
    models = config(sora.base_url, sora.base_url)
    models["providers"][0]["api_key"] = SORA_KEY  # the served process gets no test environment
    config_path.write_text(json.dumps(models))
    management = new_key()
    env = {"OMNIROUTER_CONFIG": str(config_path), "OMNIROUTER_MANAGEMENT_KEY": management}
    first = Served(tmp_path, **env)  # polls 2 s after a submission (the default): long after it is killed
    try:
        _restart(first, env, sora)
    finally:
        first.stop(signal.SIGKILL)  # and drops the database both used


def _restart(first: Served, env: dict[str, str], sora: Any) -> None:
    management = env["OMNIROUTER_MANAGEMENT_KEY"]
    r = httpx.post(first.api + "/keys", headers={"Authorization": f"Bearer {management}"}, json={"name": "v"})
    key = r.json()["key"]
    sora.script(Job(("queued", "in_progress", "completed"), seconds="4"))
    submitted = httpx.post(first.api + "/videos", headers={"Authorization": f"Bearer {key}"},
                           json={"model": "openai/sora-only", "prompt": "a restart", "duration": 4})  # fmt: skip
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["id"]
    first.stop(signal.SIGKILL, drop=False)
    assert [q.method for q in traffic(sora)] == ["POST"]

    fast = {"OMNIROUTER_VIDEO_POLL_INITIAL": "0.02", "OMNIROUTER_VIDEO_POLL_MAX": "0.1"}
    second = Served(Path(first.env["OMNIROUTER_DATA_DIR"]).parent, database=first.database, **env, **fast)
    try:
        _follow(second, job_id, key, sora)
    finally:
        second.stop(signal.SIGKILL, drop=False)


def _follow(second: Served, job_id: str, key: str, sora: Any) -> None:
    deadline = time.monotonic() + 20
    while True:
        polled = httpx.get(f"{second.api}/videos/{job_id}", headers={"Authorization": f"Bearer {key}"})
        assert polled.status_code == 200, polled.text
        if polled.json()["status"] == "completed" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    body = json.loads(polled.text, parse_float=Decimal)
    assert body["status"] == "completed" and body["usage"]["cost"] == 4 * SORA_SECOND
    video = httpx.get(f"{second.api}/videos/{job_id}/content", headers={"Authorization": f"Bearer {key}"})
    assert video.status_code == 200 and movie_seconds(video.content) == 4
    deadline = time.monotonic() + 10
    while (usage := httpx.get(second.api + "/key", headers={"Authorization": f"Bearer {key}"})
           .json()["data"]["usage"]) == 0 and time.monotonic() < deadline:  # fmt: skip
        time.sleep(0.05)  # the spend reaches the database at the next flush
    assert Decimal(str(usage)) == 4 * SORA_SECOND
    assert [q.method for q in sora.requests].count("POST") == 1


# -- the sandbox's video, box by box


def test_the_sandbox_video_is_a_well_formed_mp4_of_the_length_asked() -> None:
    for seconds in (1, 3, 8, 13, MAX_DURATION):
        video = tiny_mp4("a prompt", seconds)
        assert [kind for kind, _ in boxes(video)] == [b"ftyp", b"moov", b"mdat"]
        assert movie_seconds(video) == seconds
        frames = min(seconds, 8)
        assert boxes(video)[2][1] == 8 + frames * 16 * 16 * 3  # the frames, uncompressed RGB
        at = video.index(b"stts") + 8  # after its type, version and flags
        entries, count, delta = struct.unpack(">III", video[at : at + 12])
        assert (entries, count * delta) == (1, seconds * 1000)  # every frame together last the movie
        at = video.index(b"stco") + 8
        assert struct.unpack(">II", video[at : at + 8]) == (1, len(video) - boxes(video)[2][1] + 8)
    assert tiny_mp4("a prompt", 3) != tiny_mp4("another prompt", 3)
