"""Client connections that trickle their request (slowloris) are closed; a worker's connections are capped."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway import Gateway

TIMEOUT = 0.5  # the gateway's client_header_timeout and client_body_timeout here
CLOSED_BY = TIMEOUT + 2.0  # the timeout, plus slack for a loaded machine
REQUEST_TIMEOUT = b"HTTP/1.1 408 "


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    g = Gateway(
        tmp_path_factory.mktemp("slow"), sandbox=True, client_header_timeout=TIMEOUT, client_body_timeout=TIMEOUT
    ).start()
    yield g
    g.stop()


def connect(gw: Gateway) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gw.port), timeout=5)


def trickle(sock: socket.socket, data: bytes, every: float, give_up: float) -> tuple[float, bytes]:
    """Send `data` a byte at a time, one every `every` seconds (over again when it runs out), reading
    what the server sends, until it closes the connection or `give_up` seconds pass. Returns the
    seconds until the close (inf if none) and what the server sent."""
    start = time.monotonic()
    received = b""
    i = 0
    sock.settimeout(every)
    while time.monotonic() - start < give_up:
        try:
            sock.sendall(data[i % len(data) : i % len(data) + 1])
        except OSError:  # reset: closed
            return time.monotonic() - start, received
        i += 1
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - start, received
        if not chunk:
            return time.monotonic() - start, received
        received += chunk
    return float("inf"), received


def read_until_closed(sock: socket.socket, give_up: float) -> tuple[float, bytes]:
    """Wait, sending nothing, for the server to close; the seconds it took (inf if it did not) and what it sent."""
    start = time.monotonic()
    received = b""
    sock.settimeout(give_up)
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except TimeoutError:
        return float("inf"), received
    except OSError:
        pass
    return time.monotonic() - start, received


def test_headers_trickled_a_byte_at_a_time_are_cut_off(gw: Gateway) -> None:
    with connect(gw) as sock:
        took, answer = trickle(sock, b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200, 0.05, 10)
    assert TIMEOUT * 0.9 <= took < CLOSED_BY, took
    assert answer.startswith(REQUEST_TIMEOUT), answer


def test_a_connection_that_sends_nothing_is_closed_quietly(gw: Gateway) -> None:
    with connect(gw) as sock:
        took, answer = read_until_closed(sock, 10)
    assert TIMEOUT * 0.9 <= took < CLOSED_BY, took
    assert answer == b""  # nothing was asked: closed as an idle keep-alive connection is


def test_many_slow_connections_are_all_closed_and_requests_still_served(gw: Gateway) -> None:
    socks = [connect(gw) for _ in range(200)]
    try:
        for s in socks:
            s.sendall(b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        assert httpx.get(gw.api + "/models", timeout=5).status_code == 200  # while they hang
        deadline = time.monotonic() + CLOSED_BY
        closes = [read_until_closed(s, max(deadline - time.monotonic(), 0.01)) for s in socks]
    finally:
        for s in socks:
            s.close()
    assert all(took < float("inf") for took, _ in closes)  # every one closed by the deadline
    assert all(answer.startswith(REQUEST_TIMEOUT) for _, answer in closes)
    assert httpx.get(gw.api + "/models", timeout=5).status_code == 200


def test_a_stalled_body_is_cut_off(gw: Gateway) -> None:
    head = f"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gw.management_key}\r\n"
    with connect(gw) as sock:
        sock.sendall(head.encode() + b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na')
        took, answer = read_until_closed(sock, 10)
    assert TIMEOUT * 0.9 <= took < CLOSED_BY, took
    assert answer.startswith(REQUEST_TIMEOUT), answer


def test_a_slow_body_that_keeps_moving_is_served(gw: Gateway) -> None:
    """The body timeout is for silence: an upload slower than it, but never silent that long, completes."""
    body = json.dumps({"name": "slow upload " + "x" * 12}).encode()
    head = (
        f"POST /api/v1/keys HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {gw.management_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with connect(gw) as sock:
        sock.sendall(head)
        start = time.monotonic()
        for i in range(0, len(body), 4):
            time.sleep(TIMEOUT / 5)  # the pace of the upload under test
            sock.sendall(body[i : i + 4])
        assert time.monotonic() - start > TIMEOUT * 1.5  # longer in all than the timeout
        sock.settimeout(10)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 201"), answer


def test_keep_alive_requests_after_a_pause_are_not_cut_off(gw: Gateway) -> None:
    """A pause between two requests on one connection is keep-alive idle time, not a slow request."""
    with httpx.Client(base_url=gw.api, timeout=5) as c:
        assert c.get("/models").status_code == 200
        time.sleep(TIMEOUT * 2)  # the pause under test, longer than the header timeout
        assert c.get("/models").status_code == 200


@pytest.mark.parametrize("cap", [5])
def test_a_worker_answers_503_past_its_connection_cap(tmp_path: Path, cap: int) -> None:
    gw = Gateway(tmp_path, sandbox=True, max_connections_per_worker=cap).start()
    request = b"GET /api/v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
    held: list[socket.socket] = []
    try:
        held = [connect(gw) for _ in range(cap - 1)]
        with connect(gw) as last:  # the cap-th connection is served
            last.sendall(request)
            assert last.recv(65536).startswith(b"HTTP/1.1 200")
            with connect(gw) as over:  # one past the cap
                over.sendall(request)
                assert over.recv(65536).startswith(b"HTTP/1.1 503")
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the server sees the closes when its loop next runs
            with connect(gw) as again:
                again.sendall(request)
                answer = again.recv(65536)
            if answer.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
                break
        assert answer.startswith(b"HTTP/1.1 200"), answer
    finally:
        for s in held:
            s.close()
        gw.stop()
