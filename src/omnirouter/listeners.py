"""Worker processes that each accept their own share of the connections, and die with their parent.

uvicorn's workers share one listening socket, and whichever worker wakes first accepts every
connection waiting: a client that opens its keep-alive pool at once (an SDK, a load balancer, a
benchmark) lands on one worker while the others idle. On Linux each worker instead listens on a
socket of its own, bound with SO_REUSEPORT to the same address, and the kernel spreads new
connections over them.

A parent killed with SIGKILL cannot stop its workers, and orphans would go on serving with the old
configuration and limits of their own: each worker arranges to end with its parent. And since
SO_REUSEPORT lets another server bind beside live listeners, a server first checks that nothing
listens on its address.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import signal
import socket
import sys
import threading
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

PR_SET_PDEATHSIG = 1  # linux/prctl.h
PARENT_WATCH_SECONDS = 1.0


class AddressInUse(Exception):
    """Something already listens on the address: another server, or the workers one left."""


def spreads_connections() -> bool:
    """Whether SO_REUSEPORT balances connections here (Linux); elsewhere the last socket bound takes all."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _socket_for(host: str) -> socket.socket:
    return socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)


def refuse_if_listening(host: str, port: int) -> None:
    """Raise AddressInUse when any socket listens on host:port, with SO_REUSEPORT or not.

    A bind without SO_REUSEPORT conflicts with every listening socket on the port (SO_REUSEADDR
    spares only connections in TIME_WAIT and sockets that are bound but not listening), so it finds
    the workers that a SO_REUSEPORT bind would silently join, whoever their parent was."""
    if port == 0:
        return
    probe = _socket_for(host)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise AddressInUse(
            f"cannot listen on {host}:{port}: another server (or workers left by one) listens there; "
            f"stop it (`ss -ltnp 'sport = :{port}'` names it) or choose another --port"
        ) from None
    finally:
        probe.close()


def die_with_parent(parent: int) -> None:
    """End this worker (by SIGTERM: a graceful stop) when the process `parent` ends."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) == 0:
                if os.getppid() != parent:  # it ended before prctl took effect: no signal will come
                    os._exit(0)
                return
    # Elsewhere (or without prctl): watch for the parent's end, which re-parents this process.
    threading.Thread(target=_watch_parent, args=(parent,), name="omnirouter-parent-watch", daemon=True).start()


def _watch_parent(parent: int) -> None:
    tick = threading.Event()
    while os.getppid() == parent:
        tick.wait(PARENT_WATCH_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def _bound(host: str, port: int) -> socket.socket:
    sock = _socket_for(host)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _listening(host: str, port: int, backlog: int, parent: int) -> socket.socket:
    # Unpickled in the worker before uvicorn's server runs: the first thing the worker does.
    die_with_parent(parent)
    sock = _bound(host, port)
    sock.listen(backlog)
    return sock


def _adopted(sock: socket.socket, parent: int) -> socket.socket:
    die_with_parent(parent)
    return sock


class OwnListener:
    """Stands in the list of sockets uvicorn hands to each worker. uvicorn passes that list to a
    worker by pickling it; unpickled in the worker, this becomes a socket the worker bound itself."""

    def __init__(self, host: str, port: int, backlog: int) -> None:
        self.host, self.port, self.backlog = host, port, backlog
        self.parent = os.getpid()

    def __reduce__(self) -> tuple[Any, tuple[str, int, int, int]]:
        return _listening, (self.host, self.port, self.backlog, self.parent)


class SharedListener:
    """The one listening socket all workers share (where SO_REUSEPORT does not spread connections),
    passed to each worker as uvicorn passes it; unpickled, it also ties the worker to its parent."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parent = os.getpid()

    def __reduce__(self) -> tuple[Any, tuple[socket.socket, int]]:
        return _adopted, (self.sock, self.parent)


def run_workers(config: uvicorn.Config) -> None:
    """Run `config.workers` workers under uvicorn's supervisor; each ends when this process does."""
    if not spreads_connections():
        with config.bind_socket() as shared:
            Multiprocess(config, sockets=[SharedListener(shared)]).run()  # type: ignore[list-item]
        return
    # The parent keeps the address bound (not listening, so it takes no connections): another program
    # cannot take it while workers restart, a busy address fails here rather than in every worker,
    # and port 0 becomes one port that all workers share.
    with _bound(config.host, config.port) as reserved:
        port = reserved.getsockname()[1]
        Multiprocess(config, sockets=[OwnListener(config.host, port, config.backlog)]).run()  # type: ignore[list-item]
