"""A fake S3-compatible object store on loopback: PutObject, GetObject, DeleteObject (path-style,
`/<bucket>/<key>`), every request's SigV4 signature checked against its own access key and secret, and
every signed payload checked against its x-amz-content-sha256. What a real bucket refuses, it refuses
with S3's XML error documents and statuses (403 SignatureDoesNotMatch, 400 XAmzContentSHA256Mismatch,
404 NoSuchKey / NoSuchBucket).

The signature is recomputed here from the AWS documentation's definition (canonical request, string to
sign, HMAC key chain), independently of botocore, which signs the gateway's requests.

    fake = FakeS3.run_in_thread(bucket="files")       # .base_url, .fake.objects, .fake.requests
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from aiohttp import web

UNSIGNED = "UNSIGNED-PAYLOAD"


def _error(status: int, code: str, message: str) -> web.Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return web.Response(status=status, body=body.encode(), content_type="application/xml")


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def _canonical_query(raw: str) -> str:
    pairs = []
    for item in raw.split("&") if raw else []:
        name, _, value = item.partition("=")
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{n}={v}" for n, v in sorted(pairs))


def expected_signature(
    secret: str, method: str, raw_path: str, raw_query: str, headers: Any, signed: list[str], payload: str,
    scope: str, amz_date: str,
) -> str:  # fmt: skip
    """SigV4 as AWS defines it, for S3 (the path as sent, not normalised)."""
    canonical_headers = "".join(f"{h}:{' '.join(headers.get(h, '').split())}\n" for h in signed)
    canonical = "\n".join([method, raw_path, _canonical_query(raw_query), canonical_headers, ";".join(signed), payload])
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    date, region, service, _ = scope.split("/")
    key = _hmac(_hmac(_hmac(_hmac(("AWS4" + secret).encode(), date), region), service), "aws4_request")
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    status: int


@dataclass
class FakeS3:
    access_key: str = "AKIAFAKEOMNIROUTER01"
    secret_key: str = "fake-secret/omnirouter+s3"
    bucket: str = "omnirouter-files"
    region: str = "us-east-1"
    objects: dict[str, bytes] = field(default_factory=dict)  # key -> content
    content_types: dict[str, str] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    fail_next: int | None = None  # answer the next request with this status (a 500: InternalError)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _check_signature(self, request: web.Request, payload: str) -> web.Response | None:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return _error(403, "AccessDenied", "Anonymous access is forbidden")
        fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
        access, _, scope = fields.get("Credential", "").partition("/")
        if access != self.access_key:
            return _error(403, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist")
        signed = fields.get("SignedHeaders", "").split(";")
        if "host" not in signed or "x-amz-date" not in signed or "x-amz-content-sha256" not in signed:
            return _error(403, "AccessDenied", "host, x-amz-date and x-amz-content-sha256 must be signed")
        if scope.split("/")[1:] != [self.region, "s3", "aws4_request"]:
            return _error(403, "SignatureDoesNotMatch", f"Credential scope {scope} is not for {self.region}/s3")
        lowered = {k.lower(): v for k, v in request.headers.items()}
        want = expected_signature(
            self.secret_key, request.method, request.rel_url.raw_path, request.rel_url.raw_query_string, lowered,
            signed, payload, scope, lowered.get("x-amz-date", ""),
        )  # fmt: skip
        if not hmac.compare_digest(want, fields.get("Signature", "")):
            return _error(403, "SignatureDoesNotMatch", "The request signature we calculated does not match")
        return None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        response = await self._answer(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Recorded(request.method, request.path, headers, response.status))
        return response

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        if self.fail_next is not None:
            status, self.fail_next = self.fail_next, None
            await request.read()
            return _error(status, "InternalError", "We encountered an internal error. Please try again.")
        payload = request.headers.get("x-amz-content-sha256", "")
        body = await request.read()
        if payload != UNSIGNED and payload != hashlib.sha256(body).hexdigest():
            return _error(400, "XAmzContentSHA256Mismatch", "The provided x-amz-content-sha256 does not match")
        if (refused := self._check_signature(request, payload)) is not None:
            return refused
        bucket, _, key = request.path.lstrip("/").partition("/")
        if bucket != self.bucket:
            return _error(404, "NoSuchBucket", "The specified bucket does not exist")
        if request.method == "PUT":
            if "Content-Length" not in request.headers:
                return _error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
            self.objects[key] = body
            self.content_types[key] = request.headers.get("Content-Type", "binary/octet-stream")
            return web.Response(status=200, headers={"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
        if request.method == "GET":
            if key not in self.objects:
                return _error(404, "NoSuchKey", "The specified key does not exist.")
            return web.Response(body=self.objects[key], content_type=self.content_types[key])
        if request.method == "DELETE":
            self.objects.pop(key, None)
            self.content_types.pop(key, None)
            return web.Response(status=204)
        return _error(405, "MethodNotAllowed", "The specified method is not allowed against this resource.")

    async def start(self) -> None:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @classmethod
    def run_in_thread(cls, **kwargs: Any) -> FakeS3Thread:
        return FakeS3Thread(cls(**kwargs))


class FakeS3Thread:
    """A FakeS3 served from a daemon thread with its own event loop; `close()` stops it."""

    def __init__(self, fake: FakeS3) -> None:
        self.fake = fake
        self._loop = asyncio.new_event_loop()
        started = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(fake.start())
            started.set()
            self._loop.run_forever()
            self._loop.run_until_complete(fake.stop())

        self._thread = threading.Thread(target=run, name="FakeS3", daemon=True)
        self._thread.start()
        started.wait(10)

    @property
    def base_url(self) -> str:
        return self.fake.base_url

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
