"""File contents in an S3-compatible bucket (AWS S3, MinIO, Ceph, R2, ...): PutObject, GetObject and
DeleteObject on path-style URLs (`<files_s3_url>/<bucket>/files/<id>`), signed with SigV4.

Why not boto3/aiobotocore: three calls do not need an SDK, and both bring their own HTTP stack. The
signing is botocore's (already the project's for Bedrock, imported on first use): the same code the
AWS CLI signs S3 requests with. The transport is aiohttp (already a dependency), because an upload
streams from the spool file with its length known, and a download streams to the client: the
project's HTTP/1.1 pool (providers/http1.py) sends bodies as one bytes object, which would hold a whole
file in memory. Each call opens its own session: files are not on the hot path, and a session per
call needs no shutdown hook.

The payload is signed (x-amz-content-sha256 is the SHA-256 computed while the upload was spooled), so
a bucket behind plain HTTP still gets an integrity check of every byte.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from omnirouter.errors import GatewayError
from omnirouter.files.stores import CHUNK, Missing

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
TIMEOUT = aiohttp.ClientTimeout(total=None, connect=10, sock_read=60)


def _signer(credentials: Any, region: str, payload_hash: str) -> Any:
    from botocore.auth import S3SigV4Auth

    class _PrecomputedPayload(S3SigV4Auth):
        # The body is a file streamed after signing: its hash is the one taken while it was spooled.
        def payload(self, request: Any) -> str:
            return payload_hash

    return _PrecomputedPayload(credentials, "s3", region)


class S3Store:
    kind = "s3"

    def __init__(self, url: str, bucket: str, region: str, access_key: str, secret_key: str) -> None:
        self.base = url.rstrip("/")
        self.bucket = bucket
        self.region = region
        self._access, self._secret = access_key, secret_key

    def url(self, file_id: str) -> str:
        return f"{self.base}/{quote(self.bucket, safe='')}/files/{quote(file_id, safe='')}"

    def _signed(self, method: str, url: str, payload_hash: str, headers: dict[str, str] | None = None) -> dict:
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        request = AWSRequest(method=method, url=url, headers=dict(headers or {}))
        _signer(Credentials(self._access, self._secret), self.region, payload_hash).add_auth(request)
        return dict(request.headers.items())

    def _failed(self, action: str, status: int, body: bytes) -> GatewayError:
        # The bucket's own words (an S3 error document), never the credentials.
        detail = body[:300].decode("utf-8", "replace")
        return GatewayError(502, f"File storage {action} failed: HTTP {status}", {"storage_error": detail})

    async def put(self, file_id: str, spool: Path, size: int, sha256: str, mime: str) -> None:
        url = self.url(file_id)
        headers = self._signed("PUT", url, sha256, {"Content-Type": mime})
        headers["Content-Length"] = str(size)
        try:
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                with open(spool, "rb") as body:
                    async with session.put(url, data=body, headers=headers) as resp:
                        answer = await resp.read()
                        if resp.status not in (200, 201):
                            raise self._failed("upload", resp.status, answer)
        except aiohttp.ClientError as exc:
            raise GatewayError(502, f"File storage is unreachable: {type(exc).__name__}") from None
        spool.unlink(missing_ok=True)

    async def read(self, file_id: str) -> bytes:
        return b"".join([chunk async for chunk in self.stream(file_id)])

    async def stream(self, file_id: str) -> AsyncIterator[bytes]:
        url = self.url(file_id)
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.get(url, headers=self._signed("GET", url, EMPTY_SHA256)) as resp,
            ):
                if resp.status == 404:
                    raise Missing(file_id)
                if resp.status != 200:
                    raise self._failed("read", resp.status, await resp.read())
                async for chunk in resp.content.iter_chunked(CHUNK):
                    yield chunk
        except aiohttp.ClientError as exc:
            raise GatewayError(502, f"File storage is unreachable: {type(exc).__name__}") from None

    async def delete(self, file_id: str) -> None:
        url = self.url(file_id)
        try:
            async with (
                aiohttp.ClientSession(timeout=TIMEOUT) as session,
                session.delete(url, headers=self._signed("DELETE", url, EMPTY_SHA256)) as resp,
            ):
                answer = await resp.read()
                if resp.status not in (200, 204, 404):
                    raise self._failed("delete", resp.status, answer)
        except aiohttp.ClientError as exc:
            raise GatewayError(502, f"File storage is unreachable: {type(exc).__name__}") from None
