"""What omnirouter relies on inside uvicorn (batched_writes.py, listeners.py), checked against the
installed uvicorn: a release that changes any of it fails here before it fails in production.
pyproject.toml pins uvicorn to the versions this passes with."""

from __future__ import annotations

import asyncio
import inspect
import pickle
import socket
import threading
import time
from typing import Any

import uvicorn
import uvloop
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.supervisors import Multiprocess

from omnirouter.batched_writes import DIRECT_BODY, BatchingHttpToolsProtocol, connection_options
from omnirouter.settings import Settings

# The protocol's parser callbacks and hooks that BatchingHttpToolsProtocol overrides, with their parameters.
OVERRIDDEN = {
    "__init__": ["self", "config", "server_state", "app_state", "_loop"],
    "connection_made": ["self", "transport"],
    "connection_lost": ["self", "exc"],
    "data_received": ["self", "data"],
    "on_message_begin": ["self"],
    "on_headers_complete": ["self"],
    "on_message_complete": ["self"],
}
# What it reads on the protocol, its FlowControl and its RequestResponseCycle.
PROTOCOL_FIELDS = ("loop", "transport", "flow", "cycle", "scope", "connections")
FLOW_FIELDS = ("read_paused", "write_paused")
CYCLE_FIELDS = (
    "scope",
    "transport",
    "flow",
    "chunked_encoding",
    "disconnected",
    "response_started",
    "response_complete",
    "waiting_for_100_continue",
)


def test_the_overridden_methods_keep_their_signatures():
    for name, params in OVERRIDDEN.items():
        assert list(inspect.signature(getattr(HttpToolsProtocol, name)).parameters) == params, name


def test_the_supervisor_and_config_keep_what_listeners_and_serve_use():
    assert list(inspect.signature(Multiprocess.__init__).parameters) == ["self", "config", "sockets"]
    assert callable(Multiprocess.run) and callable(uvicorn.Config.bind_socket)
    config_params = inspect.signature(uvicorn.Config.__init__).parameters
    for option in ("http", "limit_concurrency", "backlog", "timeout_graceful_shutdown", "workers", "factory"):
        assert option in config_params, option


class _Server:
    """uvicorn serving `app` through the protocol, on a loopback port, in a thread (as `serve` runs it)."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, **connection_options(Settings()), log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=lambda: uvloop.run(self.server.serve(sockets=[self.sock])), daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def test_a_request_through_the_protocol_reaches_the_internals_it_uses():
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        direct = scope["extensions"][DIRECT_BODY]
        cycle: RequestResponseCycle = direct._cycle
        protocol = next(iter(server.server.server_state.connections))
        seen["protocol"] = isinstance(protocol, BatchingHttpToolsProtocol) and all(
            hasattr(protocol, f) for f in PROTOCOL_FIELDS
        )
        seen["flow"] = isinstance(protocol.flow, FlowControl) and all(hasattr(protocol.flow, f) for f in FLOW_FIELDS)
        seen["cycle"] = [f for f in CYCLE_FIELDS if not hasattr(cycle, f)]
        assert not direct.write(b"too early")  # the answer has not started
        await send({"type": "http.response.start", "status": 200, "headers": []})  # chunked: no length
        assert direct.write(b"direct " + body)  # goes out now, after the head
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    with _Server(app) as server, socket.create_connection(("127.0.0.1", server.port), timeout=5) as c:
        # Expect: 100-continue: the body waits for the app's first receive().
        c.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        assert c.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        c.sendall(b"hello")
        answer = b""
        while not answer.endswith(b"0\r\n\r\n"):
            chunk = c.recv(65536)
            assert chunk, answer
            answer += chunk
    assert seen == {"protocol": True, "flow": True, "cycle": []}
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and b"transfer-encoding: chunked" in head
    assert body == b"c\r\ndirect hello\r\n0\r\n\r\n"


def test_the_protocol_factory_is_what_uvicorn_calls():
    """uvicorn builds a protocol per connection with these keywords; the factory with the settings'
    timeouts must take them (and pickle, for the worker processes)."""
    factory = connection_options(Settings(client_header_timeout=3, client_body_timeout=4))["http"]
    config = uvicorn.Config(lambda *a: None, **connection_options(Settings()))
    config.load()
    loop = asyncio.new_event_loop()
    try:
        protocol = pickle.loads(pickle.dumps(factory))(
            config=config, server_state=uvicorn.server.ServerState(), app_state={}, _loop=loop
        )
    finally:
        loop.close()
    assert (protocol.header_timeout, protocol.body_timeout) == (3, 4)


def test_an_open_answer_holds_little_and_hears_its_client_leave():
    """Per open stream, uvicorn's objects keep no deque (760 bytes each: batched_writes makes the
    pipeline and the events' waiters lists) and the protocol's attributes stay few enough for the
    instance dict to share its keys; DirectBody.watch calls back when the client disconnects."""
    seen: dict[str, Any] = {}
    finished = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        try:
            await receive()
            direct = scope["extensions"][DIRECT_BODY]
            protocol = next(iter(server.server.server_state.connections))
            seen["pipeline"] = type(protocol.pipeline).__name__
            seen["waiters"] = [type(e._waiters).__name__ for e in (direct._cycle.message_event,
                                                                   protocol.flow._is_writable_event)]  # fmt: skip
            seen["keys"] = len(protocol.__dict__)
            gone = asyncio.get_running_loop().create_future()
            direct.watch(lambda: gone.set_result("left"))
            await send({"type": "http.response.start", "status": 200, "headers": []})
            assert direct.write(b"first")
            seen["client"] = await asyncio.wait_for(gone, 10)
        finally:
            finished.set()

    with _Server(app) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as c:
            c.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            answer = b""
            while b"first" not in answer:
                chunk = c.recv(65536)
                assert chunk, answer
                answer += chunk
        assert finished.wait(10)
    assert seen["pipeline"] != "deque" and seen["waiters"] == ["list", "list"]
    # CPython 3.11 shares an instance dict's keys among a class's instances up to 29 of them: past
    # that each connection's dict is a table of its own (1.6 KB instead of 0.3).
    assert seen["keys"] <= 29, seen["keys"]
    assert seen["client"] == "left"
