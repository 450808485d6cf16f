"""AWS plumbing for the Bedrock adapter: credentials from the standard chain, SigV4 request signing,
and the event-stream framing of streamed answers.

botocore does all three (the same code the AWS CLI and boto3 run). It takes ~0.2 s to import, so it
is imported when a Bedrock provider is first called, never when the gateway starts.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from omnirouter.providers.base import UpstreamError
from omnirouter.providers.http1 import Framer

SIGNING_SERVICE = "bedrock"
NO_CREDENTIALS = (
    "No AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), "
    "or AWS_PROFILE with ~/.aws/credentials or ~/.aws/config, or a Bedrock API key"
)


class AwsIdentity:
    """One signing identity, resolved from botocore's default chain (environment, AWS_PROFILE and the
    shared credentials and config files, SSO, assume-role, container and instance metadata) once,
    on first use. Temporary credentials refresh themselves before they expire."""

    def __init__(self) -> None:
        self._session: Any = None
        self._credentials: Any = None
        self._lock = asyncio.Lock()

    def _botocore_session(self) -> Any:
        if self._session is None:
            from botocore.session import Session

            self._session = Session()
        return self._session

    def _resolve(self) -> Any:
        return self._botocore_session().get_credentials()

    async def frozen(self) -> Any:
        """The access key, secret and session token to sign this request with."""
        if self._credentials is None:
            async with self._lock:
                if self._credentials is None:
                    # The chain may read files and ask the instance metadata service: not on the loop.
                    self._credentials = await asyncio.to_thread(self._resolve)
                    if self._credentials is None:
                        self._credentials = False  # looked for, none found
        credentials = self._credentials
        if credentials is False:
            raise UpstreamError(NO_CREDENTIALS, status=401, provider_code="NoCredentials")
        refresh_needed = getattr(credentials, "refresh_needed", None)
        if refresh_needed is not None and refresh_needed():
            return await asyncio.to_thread(credentials.get_frozen_credentials)
        return credentials.get_frozen_credentials()

    def region(self) -> str | None:
        """The region the environment or the AWS config file names (AWS_REGION, AWS_DEFAULT_REGION)."""
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        return region or self._botocore_session().get_config_variable("region")


def sign(frozen: Any, region: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
    """`headers` plus X-Amz-Date, X-Amz-Security-Token and the SigV4 Authorization for a POST of
    `body` to `url` (its path already percent-encoded, as it is sent)."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    SigV4Auth(frozen, SIGNING_SERVICE, region).add_auth(request)
    return dict(request.headers.items())


def secrets_of(frozen: Any) -> tuple[str, ...]:
    """What must never appear in an error or a log."""
    return tuple(s for s in (frozen.secret_key, frozen.token) if s)


def event_stream_framer() -> Framer:
    """A framer (see http1.Response) that cuts an `application/vnd.amazon.eventstream` body into
    `(headers, payload)` messages, each checked against its CRCs."""
    from botocore.eventstream import EventStreamBuffer, ParserError

    buffer = EventStreamBuffer()

    def frame(data: bytes) -> list[Any]:
        buffer.add_data(data)
        try:
            return [(message.headers, message.payload) for message in buffer]
        except ParserError as exc:
            raise UpstreamError(
                f"Upstream sent a malformed event-stream message: {exc}", status=502, kind="protocol"
            ) from None

    return frame
