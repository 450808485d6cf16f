"""The files package without a server: what the sniffer calls each kind of file, the upload reader's
limit, the local store, and the S3 store against the fake bucket (SigV4 checked there)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from omnirouter.errors import GatewayError
from omnirouter.files import records
from omnirouter.files.s3 import S3Store
from omnirouter.files.service import STALE_SPOOL, Files, sweep_spools
from omnirouter.files.sniff import Sniffer, contradicts
from omnirouter.files.stores import LocalStore, Missing, Spools
from omnirouter.files.upload import receive_upload
from omnirouter.testing.fakes.s3 import FakeS3, FakeS3Thread
from tests import files_samples as fs


def sniffed(tmp_path: Path, content: bytes, chunk: int = 7) -> str | None:
    path = tmp_path / "f"
    path.write_bytes(content)
    s = Sniffer()
    for i in range(0, len(content), chunk):  # in pieces, as an upload arrives
        s.feed(content[i : i + chunk])
    return s.kind(path)


@pytest.mark.parametrize(
    ("content", "kind"),
    [
        (fs.PDF, "application/pdf"),
        (fs.png(), "image/png"),
        (fs.JPEG, "image/jpeg"),
        (fs.GIF, "image/gif"),
        (fs.WEBP, "image/webp"),
        (fs.wav(), "audio/wav"),
        (fs.MP3, "audio/mpeg"),
        (fs.MP3_FRAMES, "audio/mpeg"),
        (fs.FLAC, "audio/flac"),
        (fs.OGG, "audio/ogg"),
        (fs.DOCX, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        (fs.XLSX, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (fs.PPTX, "application/vnd.openxmlformats-officedocument.presentationml.presentation"),
        (b'{"a": [1, 2], "b": "c"}', "application/json"),
        (b'{"a": 1}\n{"a": 2}\n{"a": 3}\n', "application/x-ndjson"),
        (b"name,qty\napple,3\npear,5\n", "text/csv"),
        (b"# Title\n\nSome *text* and a [link](https://example.com).\n", "text/markdown"),
        ("Plain words, caf\u00e9 and \u00fcber, nothing else.\n".encode(), "text/plain"),
    ],
)
def test_the_bytes_say_what_a_file_is(tmp_path: Path, content: bytes, kind: str) -> None:
    assert sniffed(tmp_path, content) == kind


@pytest.mark.parametrize(
    "content",
    [fs.ELF, fs.plain_zip(), b"caf\xe9 latin-1 is not UTF-8", b"text with a \x00 NUL", b"\xff\xfe\x00\x00junk"],
    ids=["executable", "zip-not-office", "latin-1", "nul", "junk"],
)
def test_what_is_not_accepted_has_no_kind(tmp_path: Path, content: bytes) -> None:
    assert sniffed(tmp_path, content) is None


def test_a_utf8_character_cut_between_chunks_is_still_text(tmp_path: Path) -> None:
    text = ("\u00e9\u20ac" * 100).encode()
    assert sniffed(tmp_path, text, chunk=5) == "text/plain"


def test_a_long_text_is_judged_by_its_head(tmp_path: Path) -> None:
    lines = b"".join(b'{"n": %d}\n' % i for i in range(20_000))  # > 64 KiB of NDJSON
    assert sniffed(tmp_path, lines, chunk=65536) == "application/x-ndjson"


@pytest.mark.parametrize(
    ("declared", "detected", "refused"),
    [
        (None, "application/pdf", False),
        ("application/octet-stream", "image/png", False),
        ("image/jpeg", "image/png", False),  # the same family: the bytes decide the type
        ("text/plain", "application/json", False),
        ("application/json; charset=utf-8", "application/x-ndjson", False),
        ("audio/mp3", "audio/mpeg", False),
        ("application/pdf", "image/png", True),
        ("image/png", "application/pdf", True),
        ("text/plain", "application/pdf", True),
        ("application/zip", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", True),
        ("video/mp4", "audio/mpeg", True),
    ],
)
def test_a_declared_type_of_another_kind_contradicts(declared: str | None, detected: str, refused: bool) -> None:
    assert contradicts(declared, detected) is refused


def test_ids_sort_by_creation_time_and_are_checked() -> None:
    a, b = records.new_id(1_700_000_000_000), records.new_id(1_700_000_000_001)
    assert a < b and records.well_formed(a) and records.well_formed(b)
    assert not records.well_formed("or_file_../../etc/passwd")
    assert not records.well_formed("file-abc")


def _multipart(boundary: str, parts: list[tuple[str, str | None, str | None, bytes]]) -> bytes:
    out = b""
    for name, filename, ctype, data in parts:
        disp = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode()
        if ctype:
            out += f"Content-Type: {ctype}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def _receiver(body: bytes, chunk: int = 1000):  # type: ignore[no-untyped-def]
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] or [b""]

    async def receive() -> dict:
        piece = pieces.pop(0)
        return {"type": "http.request", "body": piece, "more_body": bool(pieces)}

    return receive


async def test_an_upload_streams_to_the_spool_with_its_fields(tmp_path: Path) -> None:
    content = fs.png(40, 40)
    body = _multipart("XyZ", [("purpose", None, None, b"vision"), ("file", "a.png", "image/png", content)])
    up = await receive_upload(_receiver(body), {"content-type": "multipart/form-data; boundary=XyZ"},
                              tmp_path / "s.part", 1 << 20)  # fmt: skip
    assert (tmp_path / "s.part").read_bytes() == content
    assert (up.filename, up.declared_type, up.size, up.fields) == (
        "a.png",
        "image/png",
        len(content),
        {"purpose": "vision"},
    )
    assert up.sha256 == hashlib.sha256(content).hexdigest()
    assert up.sniffer.kind(tmp_path / "s.part") == "image/png"


async def test_an_upload_over_the_limit_stops_being_written(tmp_path: Path) -> None:
    body = _multipart("b", [("file", "big.txt", "text/plain", b"x" * 50_000)])
    with pytest.raises(GatewayError) as err:
        await receive_upload(_receiver(body), {"content-type": "multipart/form-data; boundary=b"},
                             tmp_path / "s.part", 10_000)  # fmt: skip
    assert err.value.status == 413
    assert (tmp_path / "s.part").stat().st_size <= 10_000


@pytest.mark.parametrize(
    ("ctype", "body", "message"),
    [
        ("application/json", b"{}", "multipart/form-data"),
        ("multipart/form-data; boundary=b", _multipart("b", [("purpose", None, None, b"x")]), "No `file`"),
        ("multipart/form-data; boundary=b", _multipart("b", [("file", "a", None, b"1"), ("file", "b", None, b"2")]),
         "one file"),
    ],
)  # fmt: skip
async def test_an_upload_without_one_file_is_refused(tmp_path: Path, ctype: str, body: bytes, message: str) -> None:
    with pytest.raises(GatewayError, match=message) as err:
        await receive_upload(_receiver(body), {"content-type": ctype}, tmp_path / "s.part", 1 << 20)
    assert err.value.status == 400


async def test_the_local_store_renames_a_finished_spool_into_place(tmp_path: Path) -> None:
    store, spools = LocalStore(tmp_path), Spools(tmp_path)
    spool = spools.new()
    spool.write_bytes(b"hello")
    await store.put("or_file_x", spool, 5, "", "text/plain")
    assert not spool.exists() and await store.read("or_file_x") == b"hello"
    assert b"".join([c async for c in store.stream("or_file_x")]) == b"hello"
    await store.delete("or_file_x")
    with pytest.raises(Missing):
        await store.read("or_file_x")
    await store.delete("or_file_x")  # twice: no error


@pytest.fixture(scope="module")
def s3() -> Iterator[FakeS3Thread]:
    handle = FakeS3.run_in_thread()
    yield handle
    handle.close()


def _store(fake: FakeS3, secret: str | None = None, region: str | None = None) -> S3Store:
    return S3Store(fake.base_url, fake.bucket, region or fake.region, fake.access_key, secret or fake.secret_key)


async def test_the_s3_store_puts_gets_and_deletes_signed(s3: FakeS3Thread, tmp_path: Path) -> None:
    fake = s3.fake
    content = fs.PDF * 1000
    spool = tmp_path / "s.part"
    spool.write_bytes(content)
    store = _store(fake)
    await store.put("or_file_abc", spool, len(content), hashlib.sha256(content).hexdigest(), "application/pdf")
    assert fake.objects["files/or_file_abc"] == content and not spool.exists()
    assert fake.content_types["files/or_file_abc"] == "application/pdf"
    assert await store.read("or_file_abc") == content
    await store.delete("or_file_abc")
    assert "files/or_file_abc" not in fake.objects
    with pytest.raises(Missing):
        await store.read("or_file_abc")
    assert [r.status for r in fake.requests[-4:]] == [200, 200, 204, 404]
    put = fake.requests[-4].headers
    assert put["authorization"].startswith("AWS4-HMAC-SHA256 Credential=" + fake.access_key)
    assert put["x-amz-content-sha256"] == hashlib.sha256(content).hexdigest()


async def test_the_fake_bucket_refuses_a_wrong_signature_and_a_wrong_payload(s3: FakeS3Thread, tmp_path: Path) -> None:
    fake = s3.fake
    spool = tmp_path / "s.part"
    spool.write_bytes(b"data")
    with pytest.raises(GatewayError) as err:
        await _store(fake, secret="not-the-secret").put(
            "or_file_a", spool, 4, hashlib.sha256(b"data").hexdigest(), "text/plain"
        )
    assert err.value.status == 502 and "SignatureDoesNotMatch" in err.value.metadata["storage_error"]
    assert "not-the-secret" not in str(err.value.body())
    with pytest.raises(GatewayError) as err:
        await _store(fake, region="eu-west-3").put(
            "or_file_a", spool, 4, hashlib.sha256(b"data").hexdigest(), "text/plain"
        )
    assert "SignatureDoesNotMatch" in err.value.metadata["storage_error"]
    with pytest.raises(GatewayError) as err:
        await _store(fake).put("or_file_a", spool, 4, hashlib.sha256(b"other").hexdigest(), "text/plain")
    assert "XAmzContentSHA256Mismatch" in err.value.metadata["storage_error"]
    assert "files/or_file_a" not in fake.objects


def _settings(tmp_path: Path, **overrides: object) -> SimpleNamespace:
    base = {"files_dir": None, "data_dir": tmp_path, "files_max_bytes": 1024, "files_s3_url": None,
            "files_s3_bucket": None, "files_s3_region": "us-east-1", "files_s3_access_key_env": "S3_AK",
            "files_s3_secret_key_env": "S3_SK"}  # fmt: skip
    return SimpleNamespace(**(base | overrides))


def test_the_store_follows_the_settings(tmp_path: Path) -> None:
    local = Files(_settings(tmp_path))
    assert isinstance(local.store, LocalStore) and local.store.objects == tmp_path / "files" / "objects"
    assert Files(_settings(tmp_path, files_dir=tmp_path / "elsewhere")).spools.dir == tmp_path / "elsewhere" / "tmp"
    s3 = _settings(tmp_path, files_s3_url="http://127.0.0.1:9", files_s3_bucket="b")
    assert isinstance(Files(s3, env={"S3_AK": "ak", "S3_SK": "sk"}).store, S3Store)
    with pytest.raises(ValueError, match="S3_AK or S3_SK is empty"):
        Files(s3, env={"S3_AK": "ak"})


def test_spools_a_crash_left_are_swept_and_running_ones_kept(tmp_path: Path) -> None:
    files = Files(_settings(tmp_path))
    old, fresh = files.spools.new(), files.spools.new()
    old.write_bytes(b"half")
    fresh.write_bytes(b"in progress")
    os.utime(old, (time.time() - 2 * STALE_SPOOL, time.time() - 2 * STALE_SPOOL))
    assert sweep_spools(files) == 1
    assert not old.exists() and fresh.exists()
