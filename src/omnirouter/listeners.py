"""Worker processes that each accept their own share of the connections.

uvicorn's workers share one listening socket, and whichever worker wakes first accepts every
connection waiting: a client that opens its keep-alive pool at once (an SDK, a load balancer, a
benchmark) lands on one worker while the others idle. On Linux each worker instead listens on a
socket of its own, bound with SO_REUSEPORT to the same address, and the kernel spreads new
connections over them.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess


def spreads_connections() -> bool:
    """Whether SO_REUSEPORT balances connections here (Linux); elsewhere the last socket bound takes all."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def _bound(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _listening(host: str, port: int, backlog: int) -> socket.socket:
    sock = _bound(host, port)
    sock.listen(backlog)
    return sock


class OwnListener:
    """Stands in the list of sockets uvicorn hands to each worker. uvicorn passes that list to a
    worker by pickling it; unpickled in the worker, this becomes a socket the worker bound itself."""

    def __init__(self, host: str, port: int, backlog: int) -> None:
        self.host, self.port, self.backlog = host, port, backlog

    def __reduce__(self) -> tuple[Any, tuple[str, int, int]]:
        return _listening, (self.host, self.port, self.backlog)


def run_workers(config: uvicorn.Config) -> None:
    """Run `config.workers` workers under uvicorn's supervisor, each with its own listening socket."""
    # The parent keeps the address bound (not listening, so it takes no connections): another program
    # cannot take it while workers restart, a busy address fails here rather than in every worker,
    # and port 0 becomes one port that all workers share.
    with _bound(config.host, config.port) as reserved:
        port = reserved.getsockname()[1]
        Multiprocess(config, sockets=[OwnListener(config.host, port, config.backlog)]).run()  # type: ignore[list-item]
