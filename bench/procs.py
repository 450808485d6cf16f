"""Child processes: each in its own process group, pinned with taskset, all killed on exit.

Every server and load generator the harness starts goes through `spawn`, so one `stop_all` (run from
`finally`, atexit and the SIGTERM/SIGHUP handlers) reaches every one of them and their children.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
_LIVE: list[Proc] = []
# Proxy variables would send a child's loopback traffic elsewhere; OMNIROUTER_* from the caller's
# shell (e.g. a PostgreSQL URL from the test suite) would change what is measured.
_DROPPED_ENV = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k.lower() not in _DROPPED_ENV and not k.startswith("OMNIROUTER_") and k != "VIRTUAL_ENV"
    }
    env.update(extra)
    return env


def have_taskset() -> bool:
    return shutil.which("taskset") is not None


class Proc:
    """A started child. `rss_kb` and `cpu_seconds` cover the whole process tree (uvicorn workers)."""

    def __init__(self, name: str, popen: subprocess.Popen[bytes], log: Path, cores: str | None) -> None:
        self.name = name
        self.popen = popen
        self.log = log
        self.cores = cores

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tree(self) -> list[int]:
        return process_tree(self.pid)

    def rss_kb(self) -> int:
        return sum(rss_kb(p) for p in self.tree())

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(p) for p in self.tree())

    def output(self, limit: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-limit:]
        except OSError:
            return ""

    def stop(self, timeout: float = 10.0) -> None:
        if self in _LIVE:
            _LIVE.remove(self)
        if self.popen.poll() is not None:
            return
        # The child leads its own session, so its process group is exactly the tree we started.
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            try:
                self.popen.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Workers that escaped the group (none expected) would keep ports and CPU: kill them too.
        for pid in process_tree(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def spawn(
    name: str, argv: list[str], *, cores: str | None, env: dict[str, str], log_dir: Path, cwd: Path | None = None
) -> Proc:
    """Start `argv` pinned to `cores` (taskset syntax, e.g. "0" or "0,1"), output to a log file."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / f"{name}.log"
    cmd = ["taskset", "-c", cores, *argv] if cores is not None and have_taskset() else list(argv)
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )
    proc = Proc(name, popen, log, cores)
    _LIVE.append(proc)
    return proc


def stop_all() -> None:
    for proc in list(reversed(_LIVE)):
        proc.stop(timeout=5.0)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_cleanup() -> None:
    """Children die with the harness: on normal exit, errors, Ctrl-C, SIGTERM and SIGHUP."""
    atexit.register(stop_all)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) is not signal.SIG_IGN:  # nohup: keep ignoring hang-ups
            signal.signal(sig, _raise_interrupt)


NOFILE_WANTED = 1 << 18  # a gateway at 10,000 streams holds 20,000 sockets, its client 10,000


def raise_nofile() -> None:
    """Children inherit the limit on open files: lift the soft limit to the hard one, and as root the
    hard one too (up to fs.nr_open) where it is below what the stream ladder needs."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    want = hard
    if hard != resource.RLIM_INFINITY and hard < NOFILE_WANTED:
        with contextlib.suppress(OSError, ValueError):
            want = min(NOFILE_WANTED, int(Path("/proc/sys/fs/nr_open").read_text()))
    for limit in (want, hard):
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
            return


# -- /proc --------------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        if Path(f"/proc/{pid}").exists():
            out.append(pid)
        todo.extend(children.get(pid, ()))
    return out


def rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    fields = _stat_fields(pid)
    # utime and stime are fields 14 and 15 of stat, 12 and 13 after the name.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK if fields else 0.0


def steal_seconds() -> float:
    """CPU time the host gave to others while this guest's CPUs wanted it, summed over CPUs."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
        return int(fields[8]) / CLK_TCK  # "cpu user nice system idle iowait irq softirq steal ..."
    except (OSError, IndexError, ValueError):
        return 0.0


# -- small synchronous HTTP for setup (http.client never consults proxy variables) --------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def http_json(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 10
) -> tuple[int, Any]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw) if raw else None
        except ValueError:
            return resp.status, raw.decode(errors="replace")
    finally:
        conn.close()


def wait_http(proc: Proc, port: int, path: str, timeout: float, headers: dict[str, str] | None = None) -> None:
    """Wait until GET path answers 2xx; fail early with the child's output if it died."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.output()}")
        try:
            status, _ = http_json(port, "GET", path, headers=headers, timeout=2)
            if 200 <= status < 300:
                return
            last = f"HTTP {status}"
        except OSError as exc:
            last = str(exc)
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} not ready after {timeout:.0f}s ({last}):\n{proc.output()}")


def wait_line(proc: Proc, prefix: str, timeout: float) -> str:
    """Wait for a line starting with `prefix` in the child's output; return the rest of it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in proc.output(100_000).splitlines():
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        if not proc.alive():
            break
        time.sleep(0.05)
    raise RuntimeError(f"{proc.name}: no '{prefix}' line after {timeout:.0f}s:\n{proc.output()}")


def start_redis(work: Path, *, cores: str | None = None) -> tuple[Proc, str]:
    """A redis-server of the run's own on a free port (nothing kept on disk), once it answers PING;
    its URL."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
    port = free_port()
    argv = [server, "--port", str(port), "--bind", HOST, "--save", "", "--dir", str(work)]
    proc = spawn(f"redis-{port}", argv, cores=cores, env=clean_env(), log_dir=work)
    deadline = time.monotonic() + 10
    while True:
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.5) as s:
            s.sendall(b"PING\r\n")
            if s.recv(16).startswith(b"+PONG"):
                return proc, f"redis://{HOST}:{port}/0"
        if time.monotonic() > deadline or not proc.alive():
            raise RuntimeError(f"redis-server did not start: {proc.output()}")
        time.sleep(0.02)
