"""S3 (or any S3-compatible store): one JSON object per generation, PUT on a path-style URL signed with
SigV4 (botocore's signer, as files/s3.py's), at <pathTemplate>/<traceId>-<timestamp>.json."""

from __future__ import annotations

import asyncio
import hashlib
from urllib.parse import quote

import aiohttp

from omnirouter.observability.events import Event, Target
from omnirouter.observability.send import json_body, request, with_headers

PARALLEL = 8  # PUTs in flight per batch


def key_of(target: Target, e: Event) -> str:
    c, day = target.config, e.start
    path = c.get("pathTemplate", "{prefix}/{date}").format_map(
        {
            "prefix": c.get("prefix", "openrouter-traces"),
            "date": f"{day:%Y-%m-%d}",
            "year": f"{day:%Y}",
            "month": f"{day:%m}",
            "day": f"{day:%d}",
            "apiKeyName": e.key_name or "unknown",
        }
    )
    return f"{path.strip('/')}/{e.id}-{int(e.start.timestamp() * 1000)}.json"


def _base(target: Target) -> str:
    c = target.config
    return (c.get("endpoint") or f"https://s3.{c.get('region') or 'us-east-1'}.amazonaws.com").rstrip("/")


def signed_headers(target: Target, url: str, body: bytes) -> dict[str, str]:
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from omnirouter.files.s3 import _signer

    c = target.config
    req = AWSRequest(method="PUT", url=url, headers={"Content-Type": "application/json"})
    credentials = Credentials(c["accessKeyId"], c["secretAccessKey"], c.get("sessionToken"))
    _signer(credentials, c.get("region") or "us-east-1", hashlib.sha256(body).hexdigest()).add_auth(req)
    return dict(req.headers.items())


async def send(session: aiohttp.ClientSession, target: Target, events: list[Event]) -> None:
    gate = asyncio.Semaphore(PARALLEL)
    bucket = quote(target.config["bucketName"], safe="")

    async def put(e: Event) -> None:
        body = json_body(e.document(target))
        url = f"{_base(target)}/{bucket}/{quote(key_of(target, e), safe='/')}"
        async with gate:
            await request(session, "PUT", url, body, with_headers(target, signed_headers(target, url, body)))

    await asyncio.gather(*(put(e) for e in events))
