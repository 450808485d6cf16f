"""The sync and the async client behind one synchronous face, so a test written once runs through both:
``both(kind, api_key=..., base_url=...)`` is an ``OpenRouter``, or an ``AsyncOpenRouter`` whose
coroutines run to completion on an event loop of its own (and whose streams iterate synchronously)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Iterator
from typing import Any

from omnirouter.client import AsyncOpenRouter, AsyncStream, OpenRouter

KINDS = ("sync", "async")


class _Awaited:
    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target, self._loop = target, loop

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if callable(value) and not isinstance(value, type):
            return lambda *a, **kw: self._result(value(*a, **kw))
        return value if _plain(value) else _Awaited(value, self._loop)

    def _result(self, value: Any) -> Any:
        if inspect.isawaitable(value):
            value = self._loop.run_until_complete(value)
        return _SyncStream(value, self._loop) if isinstance(value, AsyncStream) else value


class _SyncStream:
    def __init__(self, stream: AsyncStream[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.stream, self._loop = stream, loop
        self.generation_id = stream.generation_id

    def __iter__(self) -> Iterator[Any]:
        events = self.stream.events()
        while True:
            try:
                yield self._loop.run_until_complete(events.__anext__())
            except StopAsyncIteration:
                return

    def close(self) -> None:
        self._loop.run_until_complete(self.stream.aclose())


def _plain(value: Any) -> bool:
    return isinstance(value, str | int | float | bool | bytes | dict | list | tuple | type(None))


class AsyncFacade(_Awaited):
    def __init__(self, **options: Any) -> None:
        loop = asyncio.new_event_loop()
        super().__init__(AsyncOpenRouter(**options), loop)

    def close(self) -> None:
        self._loop.run_until_complete(self._target.aclose())
        self._loop.close()


def both(kind: str, **options: Any) -> Any:
    """An OpenRouter (kind "sync") or an AsyncOpenRouter behind a synchronous face (kind "async")."""
    return OpenRouter(**options) if kind == "sync" else AsyncFacade(**options)
