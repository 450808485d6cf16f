"""`omnirouter serve` started and killed as an operator does: workers end with their parent, a second
server refuses an address in use, and a start that cannot succeed says why in one line."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from omnirouter.app import create_app
from omnirouter.settings import Settings
from tests.gateway import postgres_url
from tests.served import children, free_port

LINUX = sys.platform.startswith("linux")


def _state(pid: int) -> str | None:
    """The process's state letter (Z: a zombie, done), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def _workers(parent: int) -> list[int]:
    """The uvicorn workers among the children (not multiprocessing's resource tracker)."""
    workers = []
    for pid in children(parent):
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                workers.append(pid)
    return workers


def _nothing_listens(port: int) -> bool:
    """Whether a plain bind (no SO_REUSEPORT, so no joining live listeners) to the port succeeds."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def start_failure(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run `omnirouter serve` where it cannot start; it must exit by itself."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OMNIROUTER_")}
    environ |= {"OMNIROUTER_DATA_DIR": str(tmp_path / "data"), **env}
    command = [sys.executable, "-m", "omnirouter", "serve", "--port", str(free_port()), *args]
    return subprocess.run(command, env=environ, capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not LINUX, reason="reads /proc")
def test_workers_end_when_their_parent_is_killed(serve):
    s = serve("--sandbox", "--workers", "2")
    workers = _workers(s.proc.pid)
    assert len(workers) == 2, workers
    s.proc.kill()  # SIGKILL: the parent can do nothing about its workers
    s.proc.wait(timeout=10)
    deadline = time.monotonic() + 30  # a graceful stop of idle workers takes well under a second
    while any(_state(pid) not in (None, "Z") for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in workers if _state(pid) not in (None, "Z")] == []
    assert _nothing_listens(s.port)
    s.stop()  # reads what is left of the output, drops the database


@pytest.mark.skipif(not LINUX, reason="SO_REUSEPORT listeners are a Linux matter")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_second_server_refuses_an_address_where_workers_listen(tmp_path: Path, workers: str):
    # What the workers of a server whose parent was killed look like: SO_REUSEPORT listeners.
    # A server's own --workers bind with SO_REUSEPORT and would join them without a word.
    with socket.socket() as orphan:
        orphan.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        orphan.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        orphan.bind(("127.0.0.1", 0))
        orphan.listen()
        port = orphan.getsockname()[1]
        second = start_failure(tmp_path, "--sandbox", "--workers", workers, "--port", str(port))
    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [
        f"Error: cannot listen on 127.0.0.1:{port}: another server (or workers left by one) listens there; "
        f"stop it (`ss -ltnp 'sport = :{port}'` names it) or choose another --port"
    ]


@pytest.mark.skipif(not LINUX, reason="SO_REUSEPORT listeners are a Linux matter")
def test_a_second_server_refuses_the_address_of_a_running_one(serve, tmp_path: Path):
    first = serve("--sandbox", "--workers", "2")
    try:
        second = start_failure(tmp_path, "--sandbox", "--workers", "2", "--port", str(first.port))
        assert second.returncode == 1
        assert f"cannot listen on 127.0.0.1:{first.port}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    finally:
        first.stop()


def _config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "omnirouter.yaml"
    path.write_text(text)
    return str(path)


BAD_STARTS = {
    "bad YAML": ("port: [8000\n", None, "omnirouter.yaml, line 2, column 1: not valid YAML"),
    "invalid setting": ("workers: many\n", None, "invalid setting: `workers` (from "),
    "bad catalog entry": (
        yaml.safe_dump({"models": [{"id": "no-slash", "endpoints": []}]}),
        None,
        "models[0].id: required, of the form author/slug (got 'no-slash')",
    ),
    "Redis beside SQLite": (
        "redis_url: redis://127.0.0.1:6379/0\n",
        "sqlite+aiosqlite:///never-created-{port}.db",
        "redis_url is set but the database is SQLite, which only one machine's processes can share",
    ),
    "unreachable PostgreSQL": (
        "",
        "postgresql+asyncpg://omni:hunter2@127.0.0.1:{port}/omni",
        "cannot reach the database 127.0.0.1:{port}/omni: ",
    ),
}


@pytest.mark.parametrize("case", BAD_STARTS)
def test_a_start_that_cannot_succeed_says_why_in_one_line(tmp_path: Path, case: str):
    text, database_url, expected = BAD_STARTS[case]
    port = free_port()  # nothing listens there
    env = {"OMNIROUTER_DATABASE_URL": database_url.format(port=port)} if database_url else {}
    if postgres_url() and not database_url:
        env["OMNIROUTER_DATABASE_URL"] = postgres_url()  # never reached: the config fails first
    result = start_failure(tmp_path, "--config", _config(tmp_path, text), **env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and expected.format(port=port) in lines[0], lines[0]
    assert "hunter2" not in result.stderr + result.stdout  # the database password is never shown
    if database_url:
        assert "database_url (OMNIROUTER_DATABASE_URL)" in lines[0]  # where to fix it

    debug = start_failure(tmp_path, "--config", _config(tmp_path, text), "--debug", **env)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr


async def _startup(app: Any) -> dict[str, Any]:
    """Run the ASGI lifespan startup as a server does; the message the app answers with."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with contextlib.suppress(Exception):  # the app raises after reporting the failure
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    return sent[0]


@pytest.mark.parametrize("debug", [False, True])
async def test_an_app_that_cannot_start_reports_one_line_to_its_server(tmp_path: Path, debug: bool):
    """Under any ASGI server (and in each `serve` worker): uvicorn logs the failure message as it is."""
    port = free_port()
    url = f"postgresql+asyncpg://omni:hunter2@127.0.0.1:{port}/omni"
    app = create_app(Settings(data_dir=tmp_path, database_url=url, debug=debug))
    message = await _startup(app)
    assert message["type"] == "lifespan.startup.failed"
    if debug:
        assert "Traceback (most recent call last)" in message["message"]
    else:
        assert message["message"].startswith(f"cannot start: cannot reach the database 127.0.0.1:{port}/omni: ")
        assert "\n" not in message["message"] and "hunter2" not in message["message"]
