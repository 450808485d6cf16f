"""The upstream HTTP/1.1 client: keep-alive connections per origin, responses parsed by httptools.

Profiled on the request path, aiohttp's client cost ~70 us of a ~280 us request (request objects,
per-request timers, tracing hooks, stream readers) and its line reader most of a relayed stream
chunk. An upstream API call needs much less: one request at a time per connection, a request head
built once per provider, Content-Length, chunked or until-close answers, gzip/deflate, TLS, and
connect, read-idle and total timeouts. Failures are raised as UpstreamError, as the attempt loop
expects them.

Through an egress proxy (see egress.py), decided once per origin when its first connection opens:
an https origin is reached through a CONNECT tunnel (the socket is opened through the proxy, then
handed to the loop with TLS over it), an http one by sending the proxy absolute-form requests.
Direct connections take the same path as without a proxy.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httptools

from omnirouter.providers.base import Timeouts, UpstreamError
from omnirouter.providers.egress import Egress, Proxy, tls_context

MAX_BODY_BYTES = 64 * 1024 * 1024  # a non-streamed answer, or one stream line, larger than this is refused
MAX_PROXY_HEAD = 16 * 1024  # a proxy's answer to CONNECT
_UNDECIDED = object()


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int
    ca_file: str | None = None  # trust only this CA bundle (a provider's `ca_file`), not the default

    @property
    def tls(self) -> bool:
        return self.scheme == "https"

    @property
    def authority(self) -> str:
        """host:port as a request target or Host header writes it."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        return f"{host}:{self.port}"


def split_url(url: str) -> tuple[Origin, str]:
    """An absolute http(s) URL as (origin, path with query)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Origin(parts.scheme, parts.hostname, port), path


def request_head(origin: Origin, method: str, path: str, headers: dict[str, str]) -> bytes:
    """The request line and headers up to `Content-Length: ` (the caller appends the length and body)."""
    default_port = 443 if origin.tls else 80
    host = origin.host if ":" not in origin.host else f"[{origin.host}]"
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host if origin.port == default_port else f'{host}:{origin.port}'}"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")


def _timeout(what: str) -> UpstreamError:
    return UpstreamError(f"Upstream timed out ({what})", kind="timeout")


def _broken(message: str) -> UpstreamError:
    return UpstreamError(message, kind="protocol")


# Cuts a streamed body into events another way than SSE (AWS event-stream): takes each decoded
# piece of the body as it arrives, returns the events it completed; raises UpstreamError if malformed.
Framer = Callable[[bytes], list[Any]]


class Response:
    """One answer. `head` resolves when the status and headers are in; a 200 streamed answer then
    yields its SSE `data:` payloads, or what its `framer` makes of the body (queued in `events`, or
    handed to `on_events` as they arrive); anything else is read whole with `read()`."""

    __slots__ = (
        "complete",
        "conn",
        "deadline",
        "error",
        "events",
        "framed",
        "framer",
        "head",
        "headers",
        "idle_limit",
        "inflate",
        "last_data",
        "line",
        "on_events",
        "parts",
        "paused",
        "received",
        "size",
        "sse",
        "status",
        "stream",
        "timer",
        "unanswered_close",
        "until_eof",
        "waiter",
    )

    def __init__(self, conn: Connection, stream: bool, timeouts: Timeouts, framer: Framer | None = None) -> None:
        loop = conn.loop
        self.conn = conn
        self.stream = stream
        self.framer = framer
        self.framed = False  # a 200 stream cut by `framer`
        self.status = 0
        self.headers: dict[str, str] = {}
        self.head: asyncio.Future[None] = loop.create_future()
        self.complete = False
        self.error: UpstreamError | None = None
        self.received = 0  # bytes of the answer seen so far
        self.unanswered_close = False  # the server closed cleanly before saying anything
        self.parts: list[bytes] = []
        self.size = 0
        self.sse = False
        self.line = b""  # an SSE line not yet ended
        # Events not yet taken: a list (a deque is 760 bytes for each open stream); taken from the front
        # one at a time only until a relay takes them as they come (on_events), so never many.
        self.events: list[bytes] = []
        self.on_events: Callable[[list[bytes]], None] | None = None  # takes events as they arrive
        self.waiter: asyncio.Future[None] | None = None
        self.inflate: Any = None
        self.until_eof = False
        self.paused = False  # reading stopped: whoever takes the events is behind
        now = loop.time()
        self.idle_limit = timeouts.first_byte
        self.last_data = now
        self.deadline = now + timeouts.total
        self.timer: asyncio.TimerHandle | None = loop.call_at(min(self.deadline, now + self.idle_limit), self._watch)

    # -- fed by the connection ----------------------------------------------------------------------

    def started(self, status: int, headers: dict[str, str]) -> None:
        self.status, self.headers = status, headers
        encoding = headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self.inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self.inflate = zlib.decompressobj()
        self.until_eof = (
            status not in (204, 304)
            and "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
        )
        self.sse = self.stream and status == 200 and self.framer is None
        self.framed = self.stream and status == 200 and self.framer is not None
        if not self.head.done():
            self.head.set_result(None)

    def feed(self, data: bytes) -> None:
        if self.inflate is not None:
            try:
                data = self.inflate.decompress(data)
            except zlib.error:
                self.fail(_broken("Upstream sent a body that does not decompress"))
                self.conn.abort()
                return
        if not self.sse:
            if self.framed:
                self._frames(data)
                return
            self.size += len(data)
            if self.size > MAX_BODY_BYTES:
                self.fail(_broken(f"Upstream response is larger than {MAX_BODY_BYTES} bytes"))
                self.conn.abort()
                return
            self.parts.append(data)
            return
        if self.line:
            data = self.line + data
        first = data.find(b"\n")  # not `b"\n" in data`: CPython first tries it as an int, and raises inside
        if first < 0:
            self.line = data
            if len(data) > MAX_BODY_BYTES:
                self.fail(_broken("Upstream sent a stream line that never ends"))
                self.conn.abort()
            return
        end = len(data) - 2
        if first == end and data[-1] == 10:  # the usual read: one whole event, `data: ...\n\n`
            self.line = b""
            if data[:5] != b"data:":
                return
            events = [data[5:end].strip()]
        else:
            lines = data.split(b"\n")
            self.line = lines.pop()
            events = []
            for line in lines:  # a loop, not a comprehension: no function object to build per read
                if line[:5] == b"data:":
                    events.append(line[5:].strip())
            if not events:
                return
        if self.on_events is not None:  # relayed right here: no task switch per event
            self.on_events(events)
        else:
            self.events.extend(events)
            self.wake()

    def finished(self) -> None:
        """The whole message is in."""
        if self.line and self.sse:
            self.feed(b"\n")
        self.resume()  # the connection may be reused: it must read again
        self.complete = True
        self._stop_timer()
        if not self.head.done():
            self.head.set_result(None)
        self.wake()

    def fail(self, error: UpstreamError) -> None:
        if self.complete or self.error is not None:
            return
        self.error = error
        self._stop_timer()
        if not self.head.done():
            self.head.set_exception(error)
            self.head.exception()  # retrieved here: a caller that already left must not leave it unheard
        self.wake()

    # -- read by the adapter ------------------------------------------------------------------------

    async def read(self) -> bytes:
        """The whole body (not for a 200 stream)."""
        while not self.complete:
            if self.error is not None:
                raise self.error
            await self.wait()
        return self.parts[0] if len(self.parts) == 1 else b"".join(self.parts)

    async def next_event(self) -> bytes | None:
        """The next SSE data payload; None once the answer ended."""
        while not self.events:
            if self.error is not None:
                raise self.error
            if self.complete:
                return None
            await self.wait()
        return self.events.pop(0)

    def wait(self) -> asyncio.Future[None]:
        """A future that resolves when events are queued, or the answer ends or fails (awaited
        directly: a queued event resumes no more coroutine frames than it must)."""
        self.waiter = waiter = self.conn.loop.create_future()
        return waiter

    def wake(self) -> None:
        """Resolve the pending `wait()`."""
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def pause(self) -> None:
        """Stop reading until `resume()`: the one taking the events is behind. TCP then holds the
        upstream back, instead of the gateway buffering what it sends. Paused time is not idle time."""
        transport = self.conn.transport
        if not self.paused and not self.complete and transport is not None and not self.conn.closed:
            self.paused = True
            transport.pause_reading()

    def resume(self) -> None:
        if self.paused:
            self.paused = False
            self.last_data = self.conn.loop.time()
            if self.conn.transport is not None and not self.conn.closed:
                self.conn.transport.resume_reading()

    def close(self) -> None:
        """Done with it: an unfinished answer drops its connection (the upstream stops generating)."""
        if not self.complete:
            self.fail(_broken("closed by the gateway"))
            self.conn.abort()

    # -- internals -----------------------------------------------------------------------------------

    def _frames(self, data: bytes) -> None:
        assert self.framer is not None
        try:
            events = self.framer(data)
        except UpstreamError as exc:
            self.fail(exc)
            self.conn.abort()
            return
        if not events:
            return
        if self.on_events is not None:
            self.on_events(events)
        else:
            self.events.extend(events)
            self.wake()

    def _stop_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _watch(self) -> None:
        """Fires at the earlier of the read-idle limit and the total deadline; re-arms while data flows."""
        now = self.conn.loop.time()
        if self.paused:
            self.last_data = now  # we are not reading: the upstream is not idle
        if now >= self.deadline:
            what = "total time"
        elif now - self.last_data >= self.idle_limit:
            what = "no data" if self.received else "no response"
        else:
            self.timer = self.conn.loop.call_at(min(self.deadline, self.last_data + self.idle_limit), self._watch)
            return
        self.timer = None
        self.fail(_timeout(what))
        self.conn.abort()


class Connection(asyncio.Protocol):
    """One keep-alive connection; httptools calls the on_* methods while it parses."""

    __slots__ = ("closed", "idle_since", "loop", "origin", "parser", "pool", "raw_headers", "response", "transport")

    def __init__(self, pool: Pool, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.raw_headers: list[tuple[bytes, bytes]] = []
        self.closed = False
        self.idle_since = 0.0

    def send(self, payload: bytes, stream: bool, timeouts: Timeouts, framer: Framer | None = None) -> Response:
        assert self.transport is not None and self.response is None
        self.response = resp = Response(self, stream, timeouts, framer)
        self.raw_headers = []
        self.transport.write(payload)
        return resp

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol ----------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        resp = self.response
        if resp is None:  # nothing was asked: a server talking out of turn
            self.abort()
            return
        resp.received += len(data)
        resp.last_data = self.loop.time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            resp.fail(_broken(f"Upstream sent a malformed HTTP response: {exc}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        resp = self.response
        if resp is None or resp.complete:
            return
        if resp.head.done() and resp.error is None and resp.until_eof:
            self.on_message_complete()  # an answer delimited by the end of the connection
            return
        reason = "reset" if exc else "closed"
        resp.unanswered_close = exc is None and not resp.received
        resp.fail(_broken(f"Upstream connection {reason} before the response was complete"))

    # -- httptools callbacks -------------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.response is not None
        status = self.parser.get_status_code()
        if status < 200:  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.raw_headers}
        self.raw_headers = []  # not held while the answer streams
        self.response.started(status, headers)

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response.feed(body)

    def on_message_complete(self) -> None:
        resp = self.response
        assert resp is not None
        if resp.error is not None:
            return
        if self.parser.get_status_code() < 200:
            self.raw_headers = []
            return
        self.response = None
        reusable = not self.closed and self.parser.should_keep_alive() and not resp.until_eof
        resp.finished()
        if reusable:
            self.pool.put(self)
        elif not self.closed:
            self.abort()


class ForwardedConnection(Connection):
    """A keep-alive connection to an HTTP proxy that forwards requests for one http origin: each
    request line takes the absolute form, and the proxy's credentials ride along."""

    def __init__(self, pool: Pool, origin: Origin, proxy: Proxy) -> None:
        super().__init__(pool, origin)
        self.proxy = proxy
        default = ":80" if origin.port == 80 else ""
        self.prefix = f"http://{origin.authority}".removesuffix(default).encode("latin-1")
        self.credentials = (
            f"Proxy-Authorization: {proxy.authorization}\r\n".encode("latin-1") if proxy.authorization else b""
        )

    def send(self, payload: bytes, stream: bool, timeouts: Timeouts, framer: Framer | None = None) -> Response:
        method, _, rest = payload.partition(b" ")  # "POST /v1/... HTTP/1.1\r\n..." from request_head
        eol = rest.index(b"\r\n") + 2
        return super().send(
            b"%b %b%b%b%b" % (method, self.prefix, rest[:eol], self.credentials, rest[eol:]), stream, timeouts, framer
        )

    def on_headers_complete(self) -> None:
        if self.parser.get_status_code() == 407 and self.response is not None:
            self.response.fail(_proxy_refused(self.proxy, 407, "Proxy Authentication Required"))
            self.abort()
            return
        super().on_headers_complete()


def _proxy_refused(proxy: Proxy, status: int, reason: str) -> UpstreamError:
    if status == 407:
        what = "refused the credentials given" if proxy.authorization else "requires credentials"
        message = f"Egress proxy {proxy.label} {what} (HTTP 407)"
    else:
        message = f"Egress proxy {proxy.label} refused the tunnel: HTTP {status} {reason}".rstrip()
    return UpstreamError(message, kind="connect")


class Pool:
    """Idle keep-alive connections per origin, reused newest first. The egress proxy settings
    (and the default CAs) are read from the environment when the pool is made, unless given."""

    def __init__(
        self,
        *,
        idle_timeout: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
        egress: Egress | None = None,
    ) -> None:
        self.idle_timeout = idle_timeout
        self.egress = egress if egress is not None else Egress.from_environment()
        if ssl_context is None and (self.egress.ca_file or self.egress.ca_dir):
            try:  # named by the operator: a wrong path stops the start, not every TLS connection
                ssl_context = self.egress.default_tls()
            except OSError as exc:
                raise ValueError(f"SSL_CERT_FILE / SSL_CERT_DIR: cannot load: {exc.strerror or exc}") from None
        self._ssl = ssl_context
        self._ca_contexts: dict[str, ssl.SSLContext] = {}  # per provider `ca_file`
        self._via: dict[Origin, Proxy | None] = {}  # the proxy decided for each origin, once
        self._idle: dict[Origin, list[Connection]] = {}
        self._open: set[Connection] = set()

    async def request(
        self, origin: Origin, payload: bytes, timeouts: Timeouts, *, stream: bool, framer: Framer | None = None
    ) -> Response:
        """Send one request (head and body in `payload`); return once the answer's head is in. A
        `framer` (one per request: it holds a partial event) cuts a 200 stream instead of SSE."""
        conn = self._reusable(origin)
        if conn is not None:
            resp = conn.send(payload, stream, timeouts, framer)
            try:
                await resp.head
                return resp
            except UpstreamError:
                # A kept-alive connection the server closed (FIN, no answer) just as it was reused:
                # the request was not taken, so try once on a fresh connection. A reset or a partial
                # answer may mean it was, and is the attempt's failure.
                if not resp.unanswered_close:
                    raise
            except BaseException:
                resp.close()
                raise
        conn = await self._connect(origin, timeouts.connect)
        resp = conn.send(payload, stream, timeouts, framer)
        try:
            await resp.head
        except BaseException:
            resp.close()
            raise
        return resp

    def put(self, conn: Connection) -> None:
        now = conn.idle_since = conn.loop.time()
        idle = self._idle.setdefault(conn.origin, [])
        while idle and now - idle[0].idle_since >= self.idle_timeout:  # reuse takes the newest: age out the oldest
            idle.pop(0).abort()
        idle.append(conn)

    def forget(self, conn: Connection) -> None:
        self._open.discard(conn)
        idle = self._idle.get(conn.origin)
        if idle and conn in idle:
            idle.remove(conn)

    def close(self) -> None:
        for conn in list(self._open):
            conn.abort()
        self._idle.clear()

    def _reusable(self, origin: Origin) -> Connection | None:
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.loop.time() - conn.idle_since < self.idle_timeout:
                return conn
            conn.abort()
        return None

    def _ssl_context(self, origin: Origin) -> ssl.SSLContext:
        if origin.ca_file is not None:
            context = self._ca_contexts.get(origin.ca_file)
            if context is None:
                try:
                    context = self._ca_contexts[origin.ca_file] = tls_context(origin.ca_file)
                except (OSError, ssl.SSLError) as exc:
                    raise UpstreamError(
                        f"Could not load the CA file {origin.ca_file}: {exc.strerror or exc}", kind="connect"
                    ) from None
            return context
        if self._ssl is None:
            self._ssl = self.egress.default_tls()  # the system's CAs, loaded on the first https connection
        return self._ssl

    def _proxy(self, origin: Origin) -> Proxy | None:
        proxy = self._via.get(origin, _UNDECIDED)
        if proxy is _UNDECIDED:
            proxy = self._via[origin] = self.egress.proxy_for(origin.tls, origin.host, origin.port)
        return proxy  # type: ignore[return-value]

    async def _connect(self, origin: Origin, timeout: float) -> Connection:
        loop = asyncio.get_running_loop()
        tls = self._ssl_context(origin) if origin.tls else None
        proxy = self._proxy(origin)
        try:
            async with asyncio.timeout(timeout):
                if proxy is None:
                    _, conn = await loop.create_connection(
                        lambda: Connection(self, origin),
                        origin.host,
                        origin.port,
                        ssl=tls,
                        server_hostname=origin.host if tls else None,
                    )
                elif tls is None:
                    _, conn = await self._proxy_call(
                        proxy,
                        loop.create_connection(
                            lambda: ForwardedConnection(self, origin, proxy), proxy.host, proxy.port
                        ),
                    )
                else:
                    sock = await self._proxy_call(proxy, _tunnel(proxy, origin))
                    try:
                        _, conn = await loop.create_connection(
                            lambda: Connection(self, origin), sock=sock, ssl=tls, server_hostname=origin.host
                        )
                    except BaseException:
                        sock.close()
                        raise
        except TimeoutError:
            raise _timeout("connect") from None
        except (OSError, ssl.SSLError) as exc:
            raise UpstreamError(f"Could not connect to upstream: {exc.strerror or exc}", kind="connect") from None
        self._open.add(conn)
        return conn

    @staticmethod
    async def _proxy_call(proxy: Proxy, step: Any) -> Any:
        """Await a step that talks to the proxy; its socket errors name the proxy, not the upstream."""
        try:
            return await step
        except OSError as exc:
            raise UpstreamError(
                f"Could not connect to the egress proxy {proxy.label}: {exc.strerror or exc}", kind="connect"
            ) from None


async def _tunnel(proxy: Proxy, origin: Origin) -> socket.socket:
    """A socket connected through `proxy` to `origin` by CONNECT, ready for the TLS handshake."""
    loop = asyncio.get_running_loop()
    sock = await _open_socket(proxy.host, proxy.port)
    try:
        target = origin.authority
        credentials = f"Proxy-Authorization: {proxy.authorization}\r\n" if proxy.authorization else ""
        await loop.sock_sendall(sock, f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{credentials}\r\n".encode())
        head = b""
        while (end := head.find(b"\r\n\r\n")) < 0:
            data = await loop.sock_recv(sock, 4096)
            if not data:
                raise UpstreamError(
                    f"Egress proxy {proxy.label} closed the connection before answering CONNECT", kind="connect"
                )
            head += data
            if len(head) > MAX_PROXY_HEAD:
                raise UpstreamError(
                    f"Egress proxy {proxy.label} sent an answer to CONNECT that never ends", kind="connect"
                )
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        version, _, rest = line.partition(" ")
        code, _, reason = rest.partition(" ")
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise UpstreamError(f"Egress proxy {proxy.label} did not answer CONNECT in HTTP", kind="connect")
        if not 200 <= int(code) < 300:
            raise _proxy_refused(proxy, int(code), reason)
        if end + 4 != len(head):  # the upstream speaks after the client hello, never before
            raise UpstreamError(f"Egress proxy {proxy.label} sent data after its answer to CONNECT", kind="connect")
        return sock
    except BaseException:
        sock.close()
        raise


async def _open_socket(host: str, port: int) -> socket.socket:
    """A non-blocking TCP socket connected to host:port (each resolved address tried in turn)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    error: OSError = OSError(f"{host} did not resolve")
    for family, kind, proto, _, address in infos:
        sock = socket.socket(family, kind, proto)  # proto IPPROTO_TCP: asyncio then sets TCP_NODELAY
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
        except BaseException:
            sock.close()
            raise
    raise error
