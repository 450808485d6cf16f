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

With `pin` (serve --pin-workers), each worker also keeps to one CPU of those the server may use, a
CPU no other worker holds while there is one. Left to the scheduler, two workers on two CPUs beside an
upstream and a load generator moved between the CPUs and were switched out twice as often; pinned,
with SQLite, they served a median 7% more requests at 7% less CPU each (19 paired rounds; with
PostgreSQL no difference showed): bench/notes-workers.md.
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
from pathlib import Path
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


def _siblings(parent: int) -> list[int]:
    """The other worker processes of `parent` (uvicorn starts them through multiprocessing's spawn;
    its resource tracker, also a child, is not a worker)."""
    me = os.getpid()
    children = [int(entry) for entry in os.listdir("/proc") if entry.isdigit() and _parent_of(entry) == parent]
    out = []
    for pid in children:
        if pid == me:
            continue
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                out.append(pid)
    return out


def _parent_of(pid: str) -> int:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(raw[raw.rindex(")") + 2 :].split()[1])  # after the name, which may hold spaces


def pin_to_a_cpu(parent: int) -> int | None:
    """Keep this process to the allowed CPU that the fewest sibling workers keep to; returns it, or
    None where there is nothing to choose (one CPU, or no sched_setaffinity).

    Workers that start at once see each other unpinned: each takes the place of its pid among them
    in the least-held CPUs, so they spread without a lock. A worker restarted in a dead one's place
    takes the CPU that the dead one left."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return None
    held = dict.fromkeys(allowed, 0)
    unpinned = [os.getpid()]
    for pid in _siblings(parent):
        try:
            cpus = os.sched_getaffinity(pid)
        except OSError:  # it ended meanwhile
            continue
        if len(cpus) == 1 and (cpu := next(iter(cpus))) in held:
            held[cpu] += 1
        else:
            unpinned.append(pid)
    least = min(held.values())
    candidates = [cpu for cpu in allowed if held[cpu] == least]
    cpu = candidates[sorted(unpinned).index(os.getpid()) % len(candidates)]
    # Every thread of the process so far (threads started later inherit it).
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(int(tid), {cpu})
    return cpu


def _listening(host: str, port: int, backlog: int, parent: int, pin: bool = False) -> socket.socket:
    # Unpickled in the worker before uvicorn's server runs: the first thing the worker does.
    die_with_parent(parent)
    if pin:
        pin_to_a_cpu(parent)
    sock = _bound(host, port)
    sock.listen(backlog)
    return sock


def _adopted(sock: socket.socket, parent: int) -> socket.socket:
    die_with_parent(parent)
    return sock


class OwnListener:
    """Stands in the list of sockets uvicorn hands to each worker. uvicorn passes that list to a
    worker by pickling it; unpickled in the worker, this becomes a socket the worker bound itself."""

    def __init__(self, host: str, port: int, backlog: int, *, pin: bool = False) -> None:
        self.host, self.port, self.backlog, self.pin = host, port, backlog, pin
        self.parent = os.getpid()

    def __reduce__(self) -> tuple[Any, tuple[str, int, int, int, bool]]:
        return _listening, (self.host, self.port, self.backlog, self.parent, self.pin)


class SharedListener:
    """The one listening socket all workers share (where SO_REUSEPORT does not spread connections),
    passed to each worker as uvicorn passes it; unpickled, it also ties the worker to its parent."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parent = os.getpid()

    def __reduce__(self) -> tuple[Any, tuple[socket.socket, int]]:
        return _adopted, (self.sock, self.parent)


class Supervisor(Multiprocess):
    """uvicorn's supervisor, passing SIGTERM on to the workers at once. It reads its signals every
    half second, and only then stops the workers, which meanwhile would accept connections and call
    themselves ready; a rollout wants them to refuse both from the moment the signal came. (SIGINT is
    left as it is: a terminal sends it to the workers too, and a second one forces their exit.)"""

    def __init__(self, config: uvicorn.Config, sockets: list[Any]) -> None:
        super().__init__(config, sockets)
        queue = signal.getsignal(signal.SIGTERM)  # the supervisor's own handler, installed above

        def forward(signum: int, frame: Any) -> None:
            for process in self.processes:
                if process.pid is not None:
                    with contextlib.suppress(OSError):
                        os.kill(process.pid, signal.SIGTERM)
            if callable(queue):
                queue(signum, frame)

        signal.signal(signal.SIGTERM, forward)


def run_workers(config: uvicorn.Config, *, pin: bool = False) -> None:
    """Run `config.workers` workers under uvicorn's supervisor; each ends when this process does.
    With `pin`, each keeps to a CPU of its own (where connections spread over the workers: Linux)."""
    if not spreads_connections():
        with config.bind_socket() as shared:
            Supervisor(config, sockets=[SharedListener(shared)]).run()
        return
    # The parent keeps the address bound (not listening, so it takes no connections): another program
    # cannot take it while workers restart, a busy address fails here rather than in every worker,
    # and port 0 becomes one port that all workers share.
    with _bound(config.host, config.port) as reserved:
        port = reserved.getsockname()[1]
        listener = OwnListener(config.host, port, config.backlog, pin=pin)
        Supervisor(config, sockets=[listener]).run()
