"""The upstream HTTP/1.1 client against scripted servers on loopback: framing, keep-alive, stale
connections, compression, timeouts and TLS, as an upstream provider could send them."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import Awaitable, Callable

import pytest
import trustme

from omnirouter.providers.base import Timeouts, UpstreamError
from omnirouter.providers.http1 import Pool, request_head, split_url

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
FAST = Timeouts(connect=2, first_byte=2, total=10)


class Server:
    """A loopback server whose every connection runs `handler`; counts connections and requests."""

    def __init__(self, handler: Handler, ssl_context: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.ssl = ssl_context
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        body = await reader.readexactly(length)
        self.requests.append(head + body)
        return body

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}/v1/chat/completions"


def payload(url: str, body: bytes = b'{"x":1}', headers: dict[str, str] | None = None) -> bytes:
    origin, path = split_url(url)
    return request_head(origin, "POST", path, headers or {"Content-Type": "application/json"}) + (
        b"%d\r\n\r\n%b" % (len(body), body)
    )


async def post(pool: Pool, url: str, *, stream: bool = False, timeouts: Timeouts = FAST) -> tuple[int, bytes]:
    origin, _ = split_url(url)
    resp = await pool.request(origin, payload(url), timeouts, stream=stream)
    try:
        return resp.status, await resp.read()
    finally:
        resp.close()


def answer(body: bytes, status: str = "200 OK", extra: str = "") -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


async def post_once(raw_answer: bytes) -> tuple[int, bytes]:
    """POST once to a server that answers every request with `raw_answer`."""

    async def handler(reader, writer):
        await srv.read_request(reader)
        writer.write(raw_answer)

    async with Server(handler) as srv:
        pool = Pool()
        try:
            return await post(pool, srv.url())
        finally:
            pool.close()


async def test_request_head_and_body_reach_the_server():
    async def handler(reader, writer):
        body = await srv.read_request(reader)
        writer.write(answer(b'{"echo":' + body + b"}"))

    async with Server(handler) as srv:
        pool = Pool()
        status, body = await post(pool, srv.url())
        pool.close()
    assert (status, body) == (200, b'{"echo":{"x":1}}')
    head = srv.requests[0].split(b"\r\n")
    assert head[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert f"Host: 127.0.0.1:{srv.port}".encode() in head
    assert b"Content-Length: 7" in head


async def test_keep_alive_reuses_one_connection():
    async def handler(reader, writer):
        while True:
            await srv.read_request(reader)
            writer.write(answer(b"{}"))

    async with Server(handler) as srv:
        pool = Pool()
        for _ in range(5):
            assert await post(pool, srv.url()) == (200, b"{}")
        pool.close()
    assert (srv.connections, len(srv.requests)) == (1, 5)


async def test_idle_connections_past_the_idle_timeout_are_closed():
    async def handler(reader, writer):
        while True:
            await srv.read_request(reader)
            await asyncio.sleep(0.01)
            writer.write(answer(b"{}"))

    async with Server(handler) as srv:
        pool = Pool(idle_timeout=0.2)
        await asyncio.gather(*(post(pool, srv.url()) for _ in range(3)))  # three connections at once
        for _ in range(2):  # only the newest keeps being reused; the two older ones age out
            await asyncio.sleep(0.12)
            assert await post(pool, srv.url()) == (200, b"{}")
        await asyncio.sleep(0.01)
        assert len(pool._open) == 1
        await asyncio.sleep(0.25)
        assert await post(pool, srv.url()) == (200, b"{}")  # the last one went stale too: a fresh one
        await asyncio.sleep(0.01)
        assert len(pool._open) == 1
        pool.close()
    assert srv.connections >= 4


async def test_connection_close_answer_is_not_reused():
    async def handler(reader, writer):
        await srv.read_request(reader)
        writer.write(answer(b"{}", extra="Connection: close\r\n"))

    async with Server(handler) as srv:
        pool = Pool()
        for _ in range(3):
            assert await post(pool, srv.url()) == (200, b"{}")
        pool.close()
    assert srv.connections == 3


async def test_chunked_and_until_close_bodies():
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    assert await post_once(chunked) == (200, b"abcde")
    assert await post_once(b"HTTP/1.1 200 OK\r\n\r\nall of it") == (200, b"all of it")  # ends with the connection


async def test_answer_without_a_body_does_not_wait_for_the_close():
    async def handler(reader, writer):
        while True:
            await srv.read_request(reader)
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")

    async with Server(handler) as srv:
        pool = Pool()
        for _ in range(2):
            assert await post(pool, srv.url(), timeouts=Timeouts(2, 1, 2)) == (204, b"")
        pool.close()
    assert srv.connections == 1


async def test_gzip_body_is_decompressed():
    raw = answer(gzip.compress(b'{"ok":true}'), extra="Content-Encoding: gzip\r\n")
    assert await post_once(raw) == (200, b'{"ok":true}')


async def test_interim_100_continue_is_skipped():
    assert await post_once(b"HTTP/1.1 100 Continue\r\n\r\n" + answer(b"{}")) == (200, b"{}")


async def test_error_status_and_headers_are_returned():
    async def handler(reader, writer):
        await srv.read_request(reader)
        writer.write(answer(b'{"error":"slow down"}', status="429 Too Many Requests", extra="Retry-After: 7\r\n"))

    async with Server(handler) as srv:
        pool = Pool()
        origin, _ = split_url(srv.url())
        resp = await pool.request(origin, payload(srv.url()), FAST, stream=True)
        assert (resp.status, resp.headers["retry-after"]) == (429, "7")
        assert await resp.read() == b'{"error":"slow down"}'
        pool.close()


async def test_stream_events_arrive_as_sent_across_packet_boundaries():
    events = [b'data: {"n":1}\n\n', b'data: {"n":2}\r\n\r\n', b": comment\n\n", b"data: [DONE]\n\n"]

    async def handler(reader, writer):
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
        wire = b"".join(events)
        for i in range(0, len(wire), 5):  # split mid-line, mid-event
            piece = wire[i : i + 5]
            writer.write(b"%x\r\n%b\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.001)
        writer.write(b"0\r\n\r\n")
        while True:
            await srv.read_request(reader)
            writer.write(answer(b"{}"))

    async with Server(handler) as srv:
        pool = Pool()
        origin, _ = split_url(srv.url())
        resp = await pool.request(origin, payload(srv.url()), FAST, stream=True)
        got = []
        while (event := await resp.next_event()) is not None:
            got.append(event)
        assert got == [b'{"n":1}', b'{"n":2}', b"[DONE]"]
        assert await post(pool, srv.url()) == (200, b"{}")  # the connection went back to the pool
        pool.close()
    assert srv.connections == 1


async def test_closing_an_unfinished_stream_drops_the_connection():
    closed = asyncio.Event()

    async def handler(reader, writer):
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(1000):
                writer.write(b'f\r\ndata: {"n":1}\n\n\r\n')
                await writer.drain()
                await asyncio.sleep(0.01)
        except ConnectionError:
            closed.set()

    async with Server(handler) as srv:
        pool = Pool()
        origin, _ = split_url(srv.url())
        resp = await pool.request(origin, payload(srv.url()), FAST, stream=True)
        assert await resp.next_event() == b'{"n":1}'
        resp.close()
        await asyncio.wait_for(closed.wait(), 5)
        pool.close()


async def test_idle_connection_closed_by_the_server_is_not_used():
    async def handler(reader, writer):
        await srv.read_request(reader)
        writer.write(answer(b"{}"))
        await writer.drain()  # then close while the client holds the connection idle

    async with Server(handler) as srv:
        pool = Pool()
        assert await post(pool, srv.url()) == (200, b"{}")
        await asyncio.sleep(0.05)
        assert await post(pool, srv.url()) == (200, b"{}")
        pool.close()
    assert (srv.connections, len(srv.requests)) == (2, 2)


async def test_close_without_answer_on_a_reused_connection_is_retried_once():
    seen = 0

    async def handler(reader, writer):
        nonlocal seen
        while True:
            await srv.read_request(reader)
            seen += 1
            if seen == 2:  # the keep-alive race: the server closes as the second request arrives
                return
            writer.write(answer(b"{}"))

    async with Server(handler) as srv:
        pool = Pool()
        assert await post(pool, srv.url()) == (200, b"{}")
        assert await post(pool, srv.url()) == (200, b"{}")
        pool.close()
    assert srv.connections == 2


async def test_reset_partial_or_malformed_answer_is_a_failure_not_a_retry():
    async def reset(reader, writer):
        await srv.read_request(reader)
        writer.transport.abort()

    async def partial(reader, writer):
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{")

    async def malformed(reader, writer):
        await srv.read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")

    for handler in (reset, partial, malformed):
        async with Server(handler) as srv:
            pool = Pool()
            with pytest.raises(UpstreamError) as info:
                await post(pool, srv.url())
            assert info.value.kind == "protocol"
            pool.close()
        assert len(srv.requests) == 1


@pytest.mark.parametrize(
    ("first_byte", "total", "what"),
    [(0.2, 10, "no response"), (10, 0.3, "total time")],
)
async def test_silent_server_times_out(first_byte, total, what):
    async def handler(reader, writer):
        await srv.read_request(reader)
        await asyncio.sleep(5)

    async with Server(handler) as srv:
        pool = Pool()
        started = asyncio.get_running_loop().time()
        with pytest.raises(UpstreamError) as info:
            await post(pool, srv.url(), timeouts=Timeouts(connect=2, first_byte=first_byte, total=total))
        assert info.value.kind == "timeout" and what in info.value.message
        assert asyncio.get_running_loop().time() - started < 2
        pool.close()


async def test_stream_that_stalls_mid_way_times_out_but_steady_one_does_not():
    async def handler(reader, writer):
        await srv.read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(8):  # 0.4 s in all, each gap under the 0.2 s idle limit
            writer.write(b'f\r\ndata: {"n":1}\n\n\r\n')
            await writer.drain()
            await asyncio.sleep(0.05)
        await asyncio.sleep(5)

    async with Server(handler) as srv:
        pool = Pool()
        origin, _ = split_url(srv.url())
        resp = await pool.request(origin, payload(srv.url()), Timeouts(2, 0.2, 10), stream=True)
        events = 0
        with pytest.raises(UpstreamError) as info:
            while await resp.next_event() is not None:
                events += 1
        assert events == 8 and info.value.kind == "timeout" and "no data" in info.value.message
        pool.close()


async def test_refused_connection_is_a_connect_error():
    async with Server(lambda r, w: asyncio.sleep(0)) as srv:
        url = srv.url()
    pool = Pool()
    with pytest.raises(UpstreamError) as info:
        await post(pool, url)
    assert info.value.kind == "connect"


async def test_https_with_a_trusted_certificate(tmp_path):
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)

    async def handler(reader, writer):
        while True:
            await srv.read_request(reader)
            writer.write(answer(b'{"tls":true}'))

    async with Server(handler, server_ctx) as srv:
        url = f"https://localhost:{srv.port}/v1/chat/completions"
        pool = Pool(ssl_context=client_ctx)
        assert await post(pool, url) == (200, b'{"tls":true}')
        assert await post(pool, url) == (200, b'{"tls":true}')
        pool.close()
        assert srv.connections == 1
        # The default context does not trust the test CA: the handshake fails as a connect error.
        with pytest.raises(UpstreamError) as info:
            await post(Pool(), url)
        assert info.value.kind == "connect"
