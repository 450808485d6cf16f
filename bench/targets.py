"""What is measured: the fake upstreams, omnirouter, and LiteLLM proxy (installed on demand)."""

from __future__ import annotations

import secrets
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from bench.procs import HOST, Proc, clean_env, free_port, http_json, spawn, wait_http, wait_line
from bench.upstream import READY

MODEL = "bench/model"  # echo upstream: latency, throughput, memory
PACED_MODEL = "bench/paced"  # paced upstream: concurrent streams
UPSTREAM_MODEL = "bench-upstream"  # what gateways send upstream (the fake accepts any name)
PRICING = {"prompt": "0.000001", "completion": "0.000002"}


@dataclass
class Upstream:
    proc: Proc
    port: int
    base_url: str


@dataclass
class Target:
    """One thing to send requests to. `direct` is the upstream itself."""

    name: str
    port: int
    path: str
    headers: dict[str, str]
    model: str
    proc: Proc  # whose memory and CPU count (its whole process tree)
    stream_port: int = 0  # the paced endpoint: the gateway itself, or the paced upstream for direct
    stream_model: str = PACED_MODEL
    stream_proc: Proc | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.stream_port = self.stream_port or self.port
        self.stream_proc = self.stream_proc or self.proc


def start_upstream(name: str, core: str, log_dir: Path, chunks: int | None = None, delay: float = 0.0) -> Upstream:
    """The echo upstream (bench.echo), or with `chunks` the paced one (bench.paced)."""
    argv = [sys.executable, "-m", "bench.echo", "--port", "0"]
    if chunks is not None:
        argv = [sys.executable, "-m", "bench.paced", "--port", "0", "--chunks", str(chunks)]
        argv += ["--chunk-delay", str(delay)]
    proc = spawn(name, argv, cores=core, env=clean_env(), log_dir=log_dir, cwd=Path(__file__).parent.parent)
    base_url = wait_line(proc, READY, timeout=30)
    return Upstream(proc, urlsplit(base_url).port or 0, base_url)


def start_relay(core: str, paced: Upstream, log_dir: Path) -> Target:
    """The bare byte relay (bench.relay) in front of the paced upstream: figure 4's floor."""
    argv = [sys.executable, "-m", "bench.relay", "--port", "0", "--upstream-port", str(paced.port)]
    proc = spawn("byte-relay", argv, cores=core, env=clean_env(), log_dir=log_dir, cwd=Path(__file__).parent.parent)
    port = urlsplit(wait_line(proc, READY, timeout=30)).port or 0
    return Target("byte-relay", port, "/v1/chat/completions", {}, UPSTREAM_MODEL, proc, stream_model=UPSTREAM_MODEL)


def direct(echo: Upstream, paced: Upstream) -> Target:
    return Target(
        "direct",
        echo.port,
        "/v1/chat/completions",
        {},
        UPSTREAM_MODEL,
        echo.proc,
        stream_port=paced.port,
        stream_model=UPSTREAM_MODEL,
        stream_proc=paced.proc,
    )


def start_omnirouter(
    name: str,
    cores: str,
    workers: int,
    echo: Upstream,
    paced: Upstream,
    work: Path,
    database_url: str | None = None,
    extra_args: list[str] | None = None,
) -> Target:
    """`omnirouter serve` as in production: auth with a real key, cost accounting and generation
    recording on (the defaults), SQLite in a fresh data dir, or the database at `database_url` (which
    the caller provides empty: clean_env drops the caller's OMNIROUTER_DATABASE_URL)."""
    data = work / f"{name}-data"
    data.mkdir(parents=True, exist_ok=True)
    config = {
        "providers": [
            {"slug": "bench", "name": "Bench", "api": "openai", "base_url": echo.base_url},
            {"slug": "bench-paced", "name": "Bench paced", "api": "openai", "base_url": paced.base_url},
        ],
        "models": [
            {"id": MODEL, "endpoints": [{"provider": "bench", "upstream_model": UPSTREAM_MODEL, "pricing": PRICING}]},
            {
                "id": PACED_MODEL,
                "endpoints": [{"provider": "bench-paced", "upstream_model": UPSTREAM_MODEL, "pricing": PRICING}],
            },
        ],
    }
    config_file = work / f"{name}.yaml"
    config_file.write_text(yaml.safe_dump(config))
    management = "sk-or-v1-" + secrets.token_hex(32)
    port = free_port()
    env = clean_env(OMNIROUTER_DATA_DIR=str(data), OMNIROUTER_MANAGEMENT_KEY=management, OMNIROUTER_LOG_LEVEL="warning")
    if database_url:
        env["OMNIROUTER_DATABASE_URL"] = database_url
    argv = [sys.executable, "-m", "omnirouter", "serve", "--config", str(config_file), "--host", HOST]
    argv += ["--port", str(port), "--workers", str(workers), *(extra_args or [])]
    proc = spawn(name, argv, cores=cores, env=env, log_dir=work)
    wait_http(proc, port, "/api/v1/models", timeout=60)
    status, created = http_json(
        port, "POST", "/api/v1/keys", {"name": "bench"}, {"Authorization": f"Bearer {management}"}
    )
    if status >= 300 or not isinstance(created, dict) or "key" not in created:
        raise RuntimeError(f"{name}: creating an inference key failed: HTTP {status} {created}")
    headers = {"Authorization": f"Bearer {created['key']}"}
    return Target(name, port, "/api/v1/chat/completions", headers, MODEL, proc)


# -- LiteLLM ------------------------------------------------------------------------------------------


def ensure_litellm(venv: Path, log_dir: Path) -> tuple[Path, str]:
    """LiteLLM proxy in its own venv (created once, then reused). Returns (executable, version)."""
    exe = venv / "bin" / "litellm"
    python = venv / "bin" / "python"
    if not exe.exists():
        log_dir.mkdir(parents=True, exist_ok=True)
        with open(log_dir / "litellm-install.log", "wb") as log:
            steps = [
                [sys.executable, "-m", "venv", str(venv)],
                [str(python), "-m", "pip", "install", "--quiet", "litellm[proxy]"],
            ]
            for step in steps:
                done = subprocess.run(step, stdout=log, stderr=subprocess.STDOUT, env=clean_env(), timeout=1200)
                if done.returncode != 0:
                    tail = (log_dir / "litellm-install.log").read_text(errors="replace")[-1500:]
                    raise RuntimeError(f"`{' '.join(step)}` failed ({done.returncode}): {tail}")
    out = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0 or not exe.exists():
        raise RuntimeError(f"litellm is not usable in {venv}: {out.stderr[-500:]}")
    return exe, out.stdout.strip()


def start_litellm(exe: Path, core: str, echo: Upstream, paced: Upstream, work: Path) -> Target:
    """LiteLLM proxy: one worker, master-key auth, logging at ERROR, both models as OpenAI-compatible."""
    master = "sk-" + secrets.token_hex(16)

    def route(name: str, upstream: Upstream) -> dict[str, object]:
        params = {"model": f"openai/{UPSTREAM_MODEL}", "api_base": upstream.base_url, "api_key": "sk-fake"}
        return {"model_name": name, "litellm_params": params}

    config = {
        "model_list": [route(MODEL, echo), route(PACED_MODEL, paced)],
        "general_settings": {"master_key": master},
        "litellm_settings": {"set_verbose": False},
    }
    config_file = work / "litellm.yaml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    # A local cost map: the default fetches one from the internet at start.
    env = clean_env(LITELLM_LOG="ERROR", LITELLM_LOCAL_MODEL_COST_MAP="True")
    argv = [str(exe), "--config", str(config_file), "--host", HOST, "--port", str(port), "--num_workers", "1"]
    proc = spawn("litellm", argv, cores=core, env=env, log_dir=work)
    headers = {"Authorization": f"Bearer {master}"}
    wait_http(proc, port, "/health/liveliness", timeout=180)
    return Target("litellm", port, "/v1/chat/completions", headers, MODEL, proc)
