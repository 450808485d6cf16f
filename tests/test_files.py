"""The Files API end to end: through the official OpenAI, Anthropic and OpenRouter SDKs, every answer
validated against OpenRouter's document; uploads over the limit, of the wrong type, another key's files,
deletes; and the same API on an S3-compatible bucket (the fake, SigV4 checked)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from openrouter import OpenRouter, errors
from sqlalchemy import func, select

from omnirouter.files import service
from omnirouter.store.tables import files as files_table
from omnirouter.testing.fakes.s3 import FakeS3, FakeS3Thread
from tests import files_samples as fs
from tests.conftest import standard_config
from tests.gateway import Gateway
from tests.sdk_ts_run import run_steps
from tests.spec_validation import require_spec, validate, validate_response

# Refusals of requests the document calls valid, for tests/test_schemathesis.py: what an upload's bytes
# are decides whether it is accepted, and random bytes are rarely a file of an accepted type.
UPLOAD_REFUSALS = ("Unsupported file type", "The file is empty", "but its content is", "multipart/form-data")
SEMANTIC_REFUSALS = {
    ("/files", "post"): lambda error: any(text in error["message"] for text in UPLOAD_REFUSALS),
}
LIMIT = 256 * 1024  # files_max_bytes of the module's gateways: a 413 costs a quarter MiB, not 32


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any) -> Iterator[Gateway]:
    gateway = Gateway(
        tmp_path_factory.mktemp("files"), standard_config(fake_a.base_url, fake_b.base_url), files_max_bytes=LIMIT
    ).start()
    yield gateway
    gateway.stop()


@pytest.fixture
def key(gw: Gateway) -> str:
    return str(gw.create_key(name="files")["key"])


def objects_dir(gw: Gateway) -> Path:
    return gw.settings.data_dir / "files" / "objects"


def spools(gw: Gateway) -> list[Path]:
    spool_dir = gw.settings.data_dir / "files" / "tmp"
    return list(spool_dir.iterdir()) if spool_dir.exists() else []


def rows(gw: Gateway) -> int:
    async def count() -> int:
        async with gw.state.db.engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(files_table))).scalar() or 0)

    assert gw.loop is not None
    return asyncio.run_coroutine_threadsafe(count(), gw.loop).result(10)


def upload(gw: Gateway, key: str, content: bytes, name: str = "doc.pdf", ctype: str | None = None,
           **headers: str) -> httpx.Response:  # fmt: skip
    file = (name, content, ctype) if ctype else (name, content)
    return httpx.post(gw.api + "/files", headers={"Authorization": f"Bearer {key}", **headers},
                      files={"file": file}, timeout=30)  # fmt: skip


# -- the official OpenAI SDK: files.create / retrieve / list / delete / content


def test_openai_sdk_files(gw: Gateway, key: str) -> None:
    require_spec()
    client = openai.OpenAI(api_key=key, base_url=gw.api)
    made = client.files.create(file=("report.pdf", fs.PDF, "application/pdf"), purpose="user_data")
    assert made.id.startswith("or_file_") and made.object == "file" and made.status == "processed"
    assert (made.filename, made.bytes, made.purpose) == ("report.pdf", len(fs.PDF), "user_data")
    raw = client.files.with_raw_response.retrieve(made.id)
    validate_response("getFileMetadata", raw.http_response.json())
    got = raw.parse()
    assert got.id == made.id and got.bytes == len(fs.PDF) and got.created_at == made.created_at

    others = [client.files.create(file=(f"n{i}.txt", f"note {i}\n".encode()), purpose="assistants") for i in range(3)]
    page = client.files.list(limit=2)
    validate_response("listFiles", client.files.with_raw_response.list(limit=2).http_response.json())
    assert [f.id for f in page.data] == [made.id, others[0].id] and page.has_more
    assert [len(p.data) for p in page.iter_pages()] == [2, 2]  # the SDK pages with `after`
    assert [f.id for f in client.files.list(limit=2)] == [made.id, *(o.id for o in others)]
    assert [f.id for f in client.files.list(purpose="assistants")] == [o.id for o in others]

    with pytest.raises(openai.BadRequestError, match="not downloadable"):
        client.files.content(made.id)
    deleted = client.files.with_raw_response.delete(made.id)
    validate_response("deleteFile", deleted.http_response.json())
    assert deleted.parse().deleted is True and deleted.parse().id == made.id
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(made.id)


# -- the official Anthropic SDK (beta Files API): its shape, with anthropic-beta


def test_anthropic_sdk_files(gw: Gateway, key: str) -> None:
    require_spec()
    client = anthropic.Anthropic(api_key=key, base_url=gw.url)
    made = client.beta.files.upload(file=("scan.png", fs.png(), "image/png"))
    assert made.type == "file" and made.mime_type == "image/png" and made.size_bytes == len(fs.png())
    assert made.filename == "scan.png" and made.downloadable is False
    raw = client.beta.files.with_raw_response.retrieve_metadata(made.id)
    body = raw.http_response.json()
    assert body["_shape"] == "anthropic"
    validate_response("getFileMetadata", body)
    listed = client.beta.files.list()
    assert [f.id for f in listed.data] == [made.id]
    assert client.beta.files.delete(made.id).type == "file_deleted"


# -- the official OpenRouter SDK's typed methods (its conformance checks, wired in by the lead)


def files_upload(c: Any) -> None:
    res = c.sdk.files.upload(file={"file_name": "table.csv", "content": b"a,b\n1,2\n3,4\n", "content_type": "text/csv"})
    assert res.shape == "openrouter" and res.id.startswith("or_file_")
    assert (res.filename, res.mime_type, res.size_bytes, res.downloadable) == ("table.csv", "text/csv", 12, False)


def files_list(c: Any) -> None:
    made = [c.sdk.files.upload(file={"file_name": f"p{i}.md", "content": f"# Page {i}\n".encode()}) for i in range(3)]
    page = c.sdk.files.list(limit=2)
    seen = []
    while page is not None:  # the SDK follows `cursor`
        assert page.result.shape == "openrouter"
        seen += [f.id for f in page.result.data]
        page = page.next()
    assert seen[-3:] == [m.id for m in made]


def files_retrieve(c: Any) -> None:
    made = c.sdk.files.upload(file={"file_name": "a.json", "content": b'{"x": 1}'})
    got = c.sdk.files.retrieve(file_id=made.id)
    assert got.id == made.id and got.mime_type == "application/json" and got.created_at == made.created_at


def files_delete(c: Any) -> None:
    made = c.sdk.files.upload(file={"file_name": "gone.txt", "content": b"bye"})
    res = c.sdk.files.delete(file_id=made.id)
    assert res.shape == "openrouter" and res.id == made.id and res.type == "file_deleted"
    with pytest.raises(errors.OpenRouterError) as err:
        c.sdk.files.retrieve(file_id=made.id)
    assert err.value.status_code == 404


def files_download(c: Any) -> None:
    made = c.sdk.files.upload(file={"file_name": "mine.pdf", "content": fs.PDF})
    with pytest.raises(errors.BadRequestResponseError, match="not downloadable"):
        c.sdk.files.download(file_id=made.id)


CONFORMANCE = {
    "files.list": files_list,
    "files.upload": files_upload,
    "files.retrieve": files_retrieve,
    "files.delete": files_delete,
    "files.download": files_download,
}


class _Ctx:
    def __init__(self, gw: Gateway, key: str) -> None:
        self.gw, self.key = gw, key
        self.sdk = OpenRouter(api_key=key, server_url=gw.api)


@pytest.mark.parametrize("operation", CONFORMANCE)
def test_openrouter_sdk(operation: str, gw: Gateway, key: str) -> None:
    CONFORMANCE[operation](_Ctx(gw, key))


def test_openrouter_shape_validates_against_the_document(gw: Gateway, key: str) -> None:
    require_spec()
    made = upload(gw, key, fs.PDF).json()
    validate_response("uploadFile", made)
    assert made["_shape"] == "openrouter" and made["mime_type"] == "application/pdf"
    client = gw.client(key)
    page = client.get("/files", params={"limit": 1}).json()
    validate_response("listFiles", page)
    validate(page, "OpenRouterFileList")
    assert page["data"][0]["id"] == made["id"] and page["cursor"] is None and page["has_more"] is False
    validate_response("deleteFile", client.delete(f"/files/{made['id']}").json())


def test_pages_by_cursor_after_and_after_id(gw: Gateway, key: str) -> None:
    ids = [upload(gw, key, f"line {i}\n".encode(), name=f"{i}.txt").json()["id"] for i in range(5)]
    client = gw.client(key)
    first = client.get("/files", params={"limit": 2}).json()
    assert [f["id"] for f in first["data"]] == ids[:2] and first["has_more"] and first["last_id"] == ids[1]
    second = client.get("/files", params={"limit": 2, "cursor": first["cursor"]}).json()
    assert [f["id"] for f in second["data"]] == ids[2:4]
    assert [f["id"] for f in client.get("/files", params={"after": ids[3]}).json()["data"]] == ids[4:]
    assert [f["id"] for f in client.get("/files", params={"after_id": ids[2], "limit": 1}).json()["data"]] == ids[3:4]
    for params, message in [
        ({"limit": 0}, "limit"), ({"limit": 1001}, "limit"), ({"limit": "x"}, "limit"),
        ({"order": "desc"}, "asc"), ({"before_id": ids[1]}, "before_id"), ({"provider": "openai"}, "provider"),
    ]:  # fmt: skip
        res = client.get("/files", params=params)
        assert res.status_code == 400 and message in res.json()["error"]["message"], (params, res.text)


# -- refusals: size, type, ownership, keys


def test_an_oversized_upload_is_413_and_leaves_nothing(gw: Gateway, key: str) -> None:
    before_rows, before_objects = rows(gw), set(objects_dir(gw).glob("*")) if objects_dir(gw).exists() else set()
    res = upload(gw, key, b"a" * (LIMIT + 1), name="big.txt")
    assert res.status_code == 413 and "limit" in res.json()["error"]["message"]
    client = openai.OpenAI(api_key=key, base_url=gw.api, max_retries=0)
    with pytest.raises(openai.APIStatusError) as err:
        client.files.create(file=("big.pdf", b"%PDF-" + b"0" * (LIMIT * 3)), purpose="user_data")
    assert err.value.status_code == 413
    assert rows(gw) == before_rows and spools(gw) == []
    assert (set(objects_dir(gw).glob("*")) if objects_dir(gw).exists() else set()) == before_objects
    assert upload(gw, key, b"a" * LIMIT, name="exact.txt").status_code == 200  # the limit itself is allowed


@pytest.mark.parametrize(
    ("content", "ctype", "message"),
    [
        (fs.ELF, None, "Unsupported file type"),
        (fs.plain_zip(), "application/zip", "Unsupported file type"),
        (b"", None, "empty"),
        (fs.png(), "application/pdf", "sent as application/pdf but its content is image/png"),
        (fs.PDF, "image/png", "sent as image/png but its content is application/pdf"),
        (b"just text", "audio/mpeg", "its content is text/plain"),
    ],
)
def test_a_wrong_or_unknown_type_is_refused(gw: Gateway, key: str, content: bytes, ctype: str | None,
                                            message: str) -> None:  # fmt: skip
    before = rows(gw)
    res = upload(gw, key, content, name="x.bin", ctype=ctype)
    assert res.status_code == 400 and message in res.json()["error"]["message"], res.text
    assert rows(gw) == before and spools(gw) == []


def test_the_bytes_not_the_name_or_declared_family_member_decide_the_type(gw: Gateway, key: str) -> None:
    res = upload(gw, key, fs.png(), name="photo.jpg", ctype="image/jpeg")
    assert res.status_code == 200 and res.json()["mime_type"] == "image/png"
    res = upload(gw, key, fs.DOCX, name="letter.bin")
    assert res.json()["mime_type"] == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert upload(gw, key, fs.wav(), name="tone").json()["mime_type"] == "audio/wav"


def test_the_answer_shape_follows_the_client(gw: Gateway, key: str) -> None:
    require_spec()
    auth = {"Authorization": f"Bearer {key}"}
    for data in ({"purpose": "user_data"}, {"purpose": "vision"}):  # OpenAI's field, whatever its value
        res = httpx.post(gw.api + "/files", headers=auth, data=data, files={"file": ("a.png", fs.png())})
        assert res.json()["_shape"] == "openai" and res.json()["purpose"] == data["purpose"]
        validate(res.json(), "OpenAIFile")
    file_id = res.json()["id"]
    for headers, shape in [({}, "openrouter"), ({"anthropic-version": "2023-06-01"}, "anthropic"),
                           ({"User-Agent": "OpenAI/Python 9.9"}, "openai")]:  # fmt: skip
        got = httpx.get(f"{gw.api}/files/{file_id}", headers=auth | headers).json()
        assert got["_shape"] == shape
        validate_response("getFileMetadata", got)


def test_another_keys_file_is_not_found(gw: Gateway, key: str) -> None:
    mine = upload(gw, key, fs.PDF).json()["id"]
    other = gw.client(gw.create_key(name="other")["key"])
    for method, path in [("GET", f"/files/{mine}"), ("DELETE", f"/files/{mine}"), ("GET", f"/files/{mine}/content")]:
        res = other.request(method, path)
        assert res.status_code == 404 and mine in res.json()["error"]["message"], (method, path, res.text)
    assert other.get("/files").json()["data"] == []
    assert gw.client(key).get(f"/files/{mine}").status_code == 200  # still there for its owner
    assert gw.client(key).get("/files/or_file_../../x").status_code == 404


def test_keys_that_may_not_use_files(gw: Gateway, key: str) -> None:
    admin = gw.admin()
    res = admin.get("/files")
    assert res.status_code == 403 and "Management keys cannot" in res.json()["error"]["message"]
    assert admin.post("/files", files={"file": ("a.pdf", fs.PDF)}).status_code == 403
    assert httpx.get(gw.api + "/files").status_code == 401
    res = gw.client(key).get("/files", params={"workspace_id": "a103d8b6-42f0-4e50-9a3c-bf41e2c3c1a7"})
    assert res.status_code == 403
    assert (
        gw.client(key).get("/files", params={"workspace_id": "00000000-0000-4000-8000-000000000000"}).status_code == 200
    )


def test_delete_removes_the_content(gw: Gateway, key: str) -> None:
    made = upload(gw, key, fs.PDF).json()
    stored = objects_dir(gw) / made["id"]
    assert stored.read_bytes() == fs.PDF
    assert gw.client(key).delete(f"/files/{made['id']}").status_code == 200
    assert not stored.exists()
    assert gw.client(key).delete(f"/files/{made['id']}").status_code == 404
    assert made["id"] not in [f["id"] for f in gw.client(key).get("/files").json()["data"]]


# -- on an S3-compatible bucket


@pytest.fixture(scope="module")
def s3() -> Iterator[FakeS3Thread]:
    handle = FakeS3.run_in_thread(bucket="team-files", region="eu-central-1")
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def s3_gw(tmp_path_factory: pytest.TempPathFactory, fake_a: Any, fake_b: Any, s3: FakeS3Thread) -> Iterator[Gateway]:
    os.environ["OMNI_TEST_S3_ACCESS"], os.environ["OMNI_TEST_S3_SECRET"] = s3.fake.access_key, s3.fake.secret_key
    gateway = Gateway(
        tmp_path_factory.mktemp("files-s3"),
        standard_config(fake_a.base_url, fake_b.base_url),
        files_max_bytes=LIMIT,
        files_s3_url=s3.base_url,
        files_s3_bucket="team-files",
        files_s3_region="eu-central-1",
        files_s3_access_key_env="OMNI_TEST_S3_ACCESS",
        files_s3_secret_key_env="OMNI_TEST_S3_SECRET",
    ).start()
    yield gateway
    gateway.stop()
    del os.environ["OMNI_TEST_S3_ACCESS"], os.environ["OMNI_TEST_S3_SECRET"]


def test_files_on_s3(s3_gw: Gateway, s3: FakeS3Thread, fake_a: Any) -> None:
    key = s3_gw.create_key(name="s3")["key"]
    client = openai.OpenAI(api_key=key, base_url=s3_gw.api)
    content = fs.PDF + b"%" + b"x" * 40_000
    made = client.files.create(file=("big.pdf", content), purpose="user_data")
    assert s3.fake.objects[f"files/{made.id}"] == content
    put = next(r for r in reversed(s3.fake.requests) if r.method == "PUT")
    assert put.status == 200 and put.headers["x-amz-content-sha256"] == hashlib.sha256(content).hexdigest()
    assert "/eu-central-1/s3/aws4_request" in put.headers["authorization"]
    assert not (s3_gw.settings.data_dir / "files" / "objects").exists()  # nothing kept locally
    assert spools(s3_gw) == []
    assert client.files.retrieve(made.id).bytes == len(content)
    part = {"type": "file", "file": {"file_id": made.id}}  # read back from the bucket for the upstream
    client.chat.completions.create(model="test/alpha", messages=[{"role": "user", "content": [part]}])
    sent = fake_a.fake.requests[-1].json["messages"][0]["content"][0]["file"]
    assert sent["file_data"] == "data:application/pdf;base64," + base64.b64encode(content).decode()
    client.files.delete(made.id)
    assert f"files/{made.id}" not in s3.fake.objects


def test_a_failing_bucket_keeps_nothing(s3_gw: Gateway, s3: FakeS3Thread) -> None:
    key = s3_gw.create_key(name="s3 failing")["key"]
    before = rows(s3_gw)
    s3.fake.fail_next = 500
    res = upload(s3_gw, key, fs.PDF)
    assert res.status_code == 502 and "File storage upload failed" in res.json()["error"]["message"]
    assert s3.fake.secret_key not in res.text
    assert rows(s3_gw) == before and spools(s3_gw) == []


# -- @openrouter/sdk (node): tests/sdk_ts/files.mjs, one JSON line per check


def test_typescript_sdk(gw: Gateway, key: str) -> None:
    results = run_steps("files.mjs", {"serverURL": gw.api, "apiKey": key})
    assert set(results) == {f"files.{name}" for name in ("upload", "list", "retrieve", "delete", "download", "errors")}
    assert all(r["ok"] for r in results.values()), results


def test_an_upload_cut_off_midway_leaves_nothing(gw: Gateway, key: str) -> None:
    before = rows(gw)
    head = (
        f"POST /api/v1/files HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        "Content-Type: multipart/form-data; boundary=cut\r\nContent-Length: 200000\r\n\r\n"
        '--cut\r\nContent-Disposition: form-data; name="file"; filename="half.pdf"\r\n\r\n'
    ).encode()
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(head + fs.PDF + b"0" * 50_000)
        deadline = time.monotonic() + 5
        while not spools(gw) and time.monotonic() < deadline:  # the spool is being written
            time.sleep(0.01)
        assert spools(gw)
    deadline = time.monotonic() + 5
    while spools(gw) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert spools(gw) == [] and rows(gw) == before


def test_a_deleted_keys_files_are_removed_at_the_next_start(gw: Gateway, key: str) -> None:
    leaving = gw.create_key(name="leaving")
    gone = upload(gw, leaving["key"], fs.PDF).json()["id"]
    kept = upload(gw, key, fs.PDF).json()["id"]
    assert gw.admin().delete(f"/keys/{leaving['data']['hash']}").status_code == 200
    assert gw.loop is not None
    removed = asyncio.run_coroutine_threadsafe(service.sweep_deleted_keys(gw.state), gw.loop).result(10)
    assert removed == 1
    assert not (objects_dir(gw) / gone).exists() and (objects_dir(gw) / kept).exists()
    assert gw.client(key).get(f"/files/{kept}").status_code == 200
