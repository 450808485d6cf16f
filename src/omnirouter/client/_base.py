"""What the sync and async clients share and that does no I/O: configuration, building a request,
reading an answer, the retry policy, and reading server-sent events."""

from __future__ import annotations

import base64
import hashlib
import os
import random
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, TypeVar, get_args
from urllib.parse import quote

import httpx
import msgspec

from omnirouter import __version__
from omnirouter.client import errors
from omnirouter.client.readable import read, readable
from omnirouter.jsonio import encode

T = TypeVar("T")

DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
DEFAULT_TIMEOUT = 600.0  # a long generation streams for minutes; connect failures still fail fast
CONNECT_TIMEOUT = 10.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_RETRY_DEADLINE = 60.0  # seconds from the first attempt after which no retry starts
BACKOFF_BASE = 0.5  # seconds before the first retry without a Retry-After; doubled each time, at most 8
RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))

FileInput = bytes | str | Path | IO[bytes]


@dataclass(frozen=True)
class Config:
    api_key: str | None = field(repr=False)  # never in a repr, a log line or a traceback's locals
    base_url: str
    timeout: float
    max_retries: int
    retry_deadline: float
    headers: dict[str, str] = field(repr=False)  # Authorization

    @classmethod
    def of(
        cls,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        max_retries: int,
        retry_deadline: float,
        app_url: str | None,
        app_title: str | None,
        app_categories: Sequence[str] | None,
        default_headers: Mapping[str, str] | None,
    ) -> Config:
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        api_key = api_key if api_key is not None else os.environ.get("OPENROUTER_API_KEY")
        base_url = (base_url or os.environ.get("OPENROUTER_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        headers = {"User-Agent": f"omnirouter-python/{__version__}", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        # OpenRouter's app attribution headers.
        if app_url:
            headers["HTTP-Referer"] = app_url
        if app_title:  # X-Title is the older name, which servers that predate the newer one read
            headers["X-OpenRouter-Title"] = headers["X-Title"] = app_title
        if app_categories:
            headers["X-OpenRouter-Categories"] = ",".join(app_categories)
        headers.update(default_headers or {})
        return cls(api_key, base_url, timeout, max_retries, retry_deadline, headers)

    @property
    def http_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=min(CONNECT_TIMEOUT, self.timeout))


class Binary(msgspec.Struct, frozen=True):
    """A binary answer (audio, video, a file's bytes) and its media type."""

    content: bytes
    content_type: str


@dataclass(frozen=True)
class RawResponse(Generic[T]):
    """What ``client.with_raw_response`` methods answer: the typed result and the response's status
    and headers (the generation id of an image, audio or embeddings call, rate-limit headers...)."""

    data: T
    status_code: int
    headers: httpx.Headers

    @property
    def generation_id(self) -> str | None:
        return self.headers.get("x-generation-id")


@dataclass
class Call:
    """One operation: where it goes, what it sends, and how to read what comes back."""

    method: str
    path: str
    cast: Any = None  # the result's type; None for an answer read as Binary
    query: Mapping[str, Any] | None = None
    body: Any = None  # JSON: a dict or a Struct
    files: dict[str, tuple[str, bytes, str]] | None = None  # multipart form: name -> (filename, bytes, type)
    form: dict[str, str] | None = None
    stream: type | None = None  # the event type when the answer streams
    text: bool = False  # a text answer (text/plain, srt, vtt) is returned as a str
    headers: Mapping[str, str] | None = None

    def request(self, http: httpx.Client | httpx.AsyncClient, config: Config) -> httpx.Request:
        """The request, with the client's URL, key, headers and timeout: an http_client of the caller's
        own needs none of them set."""
        headers = dict(config.headers)
        if self.stream is not None:
            headers["Accept"] = "text/event-stream"
        headers.update(self.headers or {})
        kwargs: dict[str, Any] = {"params": _query(self.query), "headers": headers, "timeout": config.http_timeout}
        if self.files is not None:
            kwargs["files"], kwargs["data"] = self.files, self.form
        elif self.body is not None:
            kwargs["content"] = encode(self.body)
            headers.setdefault("Content-Type", "application/json")
        return http.build_request(self.method, config.base_url + self.path, **kwargs)


def path(template: str, *parts: str | int) -> str:
    """A path with its parameters percent-encoded, so an id cannot reach another route."""
    return template.format(*(_segment(p) for p in parts))


def _segment(part: str | int) -> str:
    text = str(part)
    if not text:
        raise ValueError("a path parameter may not be empty")
    return quote(text, safe=":@")


def _query(query: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not query:
        return None
    out: dict[str, Any] = {}
    for name, value in query.items():
        if value is None:
            continue
        out[name] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def body_of(fields: Mapping[str, Any], body: Any = None) -> Any:
    """A request body: keyword fields as given (None is sent as null: it clears a field on an update),
    or a body given whole (a dict or a request Struct)."""
    if body is not None:
        if fields:
            raise TypeError("pass the body whole or as keyword arguments, not both")
        return body
    return dict(fields)


def file_part(name: str, file: FileInput, filename: str | None, content_type: str | None) -> tuple[str, bytes, str]:
    """A multipart part from bytes, a path or an open binary file (read once, so a retry sends it again)."""
    if isinstance(file, str | Path):
        data, filename = Path(file).read_bytes(), filename or Path(file).name
    elif isinstance(file, bytes):
        data = file
    else:
        data = file.read()
        filename = filename or Path(getattr(file, "name", "") or name).name
    return filename or name, data, content_type or "application/octet-stream"


def decode(call: Call, response: httpx.Response) -> Any:
    content_type = response.headers.get("content-type", "")
    if call.cast is None:
        return Binary(response.content, content_type)
    if call.text and "json" not in content_type:
        return response.text
    try:
        return read(response.content, call.cast)
    except msgspec.DecodeError as exc:
        raise errors.APIError(
            f"the answer is not a {getattr(call.cast, '__name__', 'result')}: {exc}",
            status=response.status_code,
            body=response.text[:2000],
            headers=response.headers,
        ) from None


@dataclass
class Retrying:
    """When to try again: 408, 429 and 5xx answers and lost connections, at most `max_retries`
    times, and never past `deadline` seconds after the first attempt (a Retry-After that would end
    beyond it ends the retries instead)."""

    max_retries: int
    deadline: float
    started: float = field(default_factory=time.monotonic)
    attempt: int = 0

    def delay(self, error: errors.OpenRouterError) -> float | None:
        if self.attempt >= self.max_retries:
            return None
        if isinstance(error, errors.APIError):
            if error.status not in RETRY_STATUSES or error.in_stream:
                return None
            wait = errors.retry_after(error.headers, error.body)
        elif isinstance(error, errors.APIConnectionError):
            wait = None
        else:
            return None
        if wait is None:  # exponential backoff with jitter: 0.5, 1, 2 ... 8 s, each 75-100%
            wait = min(8.0, BACKOFF_BASE * 2**self.attempt) * (1 - 0.25 * random.random())
        if time.monotonic() + wait - self.started > self.deadline:
            return None
        self.attempt += 1
        return wait


class SSEReader:
    """Server-sent events from lines: `event:` and `data:` fields, comments (`: OPENROUTER PROCESSING`)
    skipped, an event ending at a blank line."""

    def __init__(self) -> None:
        self.event: str | None = None
        self.data: list[str] = []

    def line(self, line: str) -> tuple[str | None, str] | None:
        if not line:
            if not self.data:
                self.event = None
                return None
            event, self.event = (self.event, "\n".join(self.data)), None
            self.data = []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self.data.append(value)
        elif name == "event":
            self.event = value
        return None


# The events that end a Responses stream, and those that end a Messages one.
_RESPONSE_ENDS = frozenset({"response.completed", "response.incomplete", "response.failed"})


class EventReader(Generic[T]):
    """A stream's events as typed items; the errors it reports after it started raised; `done` once
    its last event (or `[DONE]`) was read, so a stream cut short is told from one that finished."""

    def __init__(self, item: type[T], headers: Mapping[str, str]) -> None:
        self.item = readable(item)
        self.headers = headers
        self.done = False
        # A union of tagged Structs (the Messages events) reads only its own types: the others (Anthropic's
        # `ping`, a type added after this client) are skipped, as Anthropic's SDK does.
        members = [getattr(m, "__struct_config__", None) for m in get_args(item)]
        self.tags = {c.tag for c in members if c is not None} if members and all(members) else None

    def read(self, event: str | None, data: str) -> T | None:
        if data == "[DONE]":
            self.done = True
            return None
        try:
            raw = msgspec.json.decode(data)
        except msgspec.DecodeError:
            raise errors.make(502, f"a stream event is not JSON: {data[:200]!r}", headers=self.headers,
                              in_stream=True) from None  # fmt: skip
        if not isinstance(raw, dict):
            return None
        kind = raw.get("type")
        if self.tags is not None and kind not in self.tags and kind != "error":
            return None
        if kind == "error" or event == "error":  # Messages' and Responses' error events
            self.done = True
            raise errors.in_stream(raw.get("error") if isinstance(raw.get("error"), dict) else raw, self.headers)
        if isinstance(raw.get("error"), dict) and "choices" in raw:  # a chat chunk's in-band error
            self.done = True
            raise errors.in_stream(raw["error"], self.headers)
        if kind == "response.failed":
            self.done = True
            response = raw.get("response") or {}
            raise errors.in_stream(response.get("error") or {}, self.headers, response.get("error_type"))
        if kind in _RESPONSE_ENDS or kind == "message_stop":
            self.done = True
        return msgspec.convert(raw, self.item, strict=False)

    def cut(self) -> errors.APIConnectionError:
        return errors.APIConnectionError("the stream ended before it was complete")


def connection_error(exc: httpx.HTTPError) -> errors.APIConnectionError:
    if isinstance(exc, httpx.TimeoutException):
        return errors.APITimeoutError(f"no answer in time ({type(exc).__name__})")
    return errors.APIConnectionError(f"{type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class PKCE:
    """A PKCE verifier and its S256 challenge (RFC 7636), for auth.create_code / exchange_code."""

    verifier: str
    challenge: str
    method: str = "S256"

    @classmethod
    def new(cls) -> PKCE:
        verifier = secrets.token_urlsafe(64)[:96]
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())
