"""The real Claude Code and Codex CLIs through the gateway, each through a turn that uses a tool.

Both are the npm packages pinned in tests/cli_clients (installed by scripts/test with `npm ci`); each
runs offline against a gateway whose upstream is a scripted fake OpenAI-compatible server: the first
answer calls a tool on a file in the test's temp dir, the second answers from the tool's result. What a
user checks: the CLI exits 0 with the answer, the tool really ran (its output reached the upstream), the
usage the CLI reports is the upstream's, and the key is billed for both generations.

Skipped with a reason where node or the packages are missing, except in CI (CI=true), where that is a
failure. What the CLIs send is kept in tests/fixtures/cli/ (recorded requests, long texts cut): those
are replayed here too, with no node needed, so a change that refuses them fails everywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from omnirouter.testing import FakeOpenAIThread, Stream
from tests.conftest import ALPHA_PRICES
from tests.gateway import Gateway

NODE_MODULES = Path(__file__).parent / "cli_clients" / "node_modules"
RECORDED = Path(__file__).parent / "fixtures" / "cli"
MODEL = "test/coder"
SECRET = "the secret word is pelican"
ANSWER = "The secret word is pelican."
# Two generations: the tool call, then the answer; tokens fixed so the bill is known to the digit.
TOOL_TURN_TOKENS = (1000, 20)
ANSWER_TOKENS = (1200, 10)
RUN_SECONDS = 60


def _bill(prompt: int, completion: int) -> Decimal:
    return prompt * Decimal(ALPHA_PRICES["prompt"]) + completion * Decimal(ALPHA_PRICES["completion"])


def _require(path: Path | None, what: str) -> Path:
    if path is not None and path.exists() and shutil.which("node"):
        return path
    reason = f"{what} is not installed: run `npm ci --ignore-scripts` in tests/cli_clients (scripts/test does)"
    if not shutil.which("node"):
        reason = f"node is not installed, so {what} cannot run"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI: {reason}")
    pytest.skip(reason)


def claude_binary() -> Path:
    # The native binary of this platform's package; `npm ci --ignore-scripts` leaves bin/claude.exe a stub
    # that the package's install script would replace with it.
    found = sorted(NODE_MODULES.glob("@anthropic-ai/claude-code-*/claude"))
    return _require(found[0] if found else None, "Claude Code (@anthropic-ai/claude-code)")


def codex_launcher() -> Path:
    return _require(NODE_MODULES / "@openai" / "codex" / "bin" / "codex.js", "the Codex CLI (@openai/codex)")


def base_env(home: Path) -> dict[str, str]:
    """Only what a CLI needs: none of this machine's provider keys, settings or home directory."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb"}


@pytest.fixture
def gateway_for_cli(tmp_path: Path, fake_a: FakeOpenAIThread) -> Iterator[Gateway]:
    # The CLIs ask for up to 32000 output tokens and send ~20k tokens of prompt: a model with room for both.
    config: dict[str, Any] = {
        "providers": [{"slug": "fake-a", "name": "Fake A", "api": "openai", "base_url": fake_a.base_url}],
        "models": [
            {
                "id": MODEL,
                "name": "Coder",
                "context_length": 1_000_000,
                "supported_parameters": ["max_tokens", "temperature", "tools", "tool_choice", "reasoning"],
                "endpoints": [{"provider": "fake-a", "upstream_model": "coder-upstream", "pricing": ALPHA_PRICES}],
            }
        ],
    }
    (tmp_path / "gw").mkdir()
    gw = Gateway(tmp_path / "gw", config).start()
    yield gw
    gw.stop()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    (work / "secret.txt").write_text(SECRET + "\n")
    return work


def key_usage(gw: Gateway, key: str) -> Decimal:
    gw.flush()
    with gw.client(key) as client:
        r = client.get("/key")
    assert r.status_code == 200, r.text
    return Decimal(str(r.json()["data"]["usage"]))


def tool_output_sent_upstream(fake_a: FakeOpenAIThread) -> str:
    """The text of the tool results in the upstream's second request (chat's `tool` messages)."""
    assert len(fake_a.requests) == 2, [r.path for r in fake_a.requests]
    messages = fake_a.requests[1].json["messages"]
    parts = [m.get("content") for m in messages if m.get("role") == "tool"]
    return json.dumps(parts)


def test_claude_code_reads_a_file_through_the_gateway(
    gateway_for_cli: Gateway, fake_a: FakeOpenAIThread, workdir: Path, tmp_path: Path
) -> None:
    claude = claude_binary()
    secret = workdir / "secret.txt"
    fake_a.script(
        Stream("", tool_calls=[{"name": "Read", "arguments": {"file_path": str(secret)}}],
               prompt_tokens=TOOL_TURN_TOKENS[0], completion_tokens=TOOL_TURN_TOKENS[1]),
        Stream(ANSWER, prompt_tokens=ANSWER_TOKENS[0], completion_tokens=ANSWER_TOKENS[1]),
    )  # fmt: skip
    key = gateway_for_cli.create_key()["key"]
    home = tmp_path / "claude-home"
    env = {
        **base_env(home),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "ANTHROPIC_BASE_URL": gateway_for_cli.url + "/api",
        "ANTHROPIC_AUTH_TOKEN": key,  # sent as Authorization: Bearer
        "ANTHROPIC_MODEL": MODEL,
        # Nothing but the model calls: no update checks, telemetry or error reports.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    run = subprocess.run(
        [str(claude), "-p", "What is the secret word in secret.txt?", "--output-format", "stream-json",
         "--verbose", "--allowedTools", "Read"],
        cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_SECONDS,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    (result,) = [e for e in events if e["type"] == "result"]
    assert result["is_error"] is False, result
    assert result["result"] == ANSWER
    assert result["num_turns"] == 2
    assert SECRET in tool_output_sent_upstream(fake_a)
    assert result["usage"]["input_tokens"] == TOOL_TURN_TOKENS[0] + ANSWER_TOKENS[0]
    assert result["usage"]["output_tokens"] == TOOL_TURN_TOKENS[1] + ANSWER_TOKENS[1]
    assert key_usage(gateway_for_cli, key) == _bill(*TOOL_TURN_TOKENS) + _bill(*ANSWER_TOKENS)
    # The assistant messages Claude Code saw are the gateway's generations, each recorded as billed.
    ids = list(dict.fromkeys(e["message"]["id"] for e in events if e["type"] == "assistant"))
    with gateway_for_cli.client(key) as client:
        recorded = [client.get("/generation", params={"id": i}).json()["data"] for i in ids]
    assert [(g["native_tokens_prompt"], g["native_tokens_completion"], g["finish_reason"]) for g in recorded] == [
        (*TOOL_TURN_TOKENS, "tool_calls"),
        (*ANSWER_TOKENS, "stop"),
    ]
    assert [Decimal(str(g["total_cost"])) for g in recorded] == [_bill(*TOOL_TURN_TOKENS), _bill(*ANSWER_TOKENS)]
    assert all(g["user_agent"].startswith("claude-cli/") for g in recorded)


def test_codex_runs_a_command_through_the_gateway(
    gateway_for_cli: Gateway, fake_a: FakeOpenAIThread, workdir: Path, tmp_path: Path
) -> None:
    codex = codex_launcher()
    fake_a.script(
        Stream("", tool_calls=[{"name": "exec_command", "arguments": {"cmd": "cat secret.txt"}}],
               prompt_tokens=TOOL_TURN_TOKENS[0], completion_tokens=TOOL_TURN_TOKENS[1]),
        Stream(ANSWER, prompt_tokens=ANSWER_TOKENS[0], completion_tokens=ANSWER_TOKENS[1]),
    )  # fmt: skip
    key = gateway_for_cli.create_key()["key"]
    home = tmp_path / "codex-home"
    (home / ".codex").mkdir(parents=True)
    # A custom provider speaking the Responses API; no retries, so a failure shows at once.
    (home / ".codex" / "config.toml").write_text(
        f'model = "{MODEL}"\n'
        'model_provider = "omnirouter"\n\n'
        "[model_providers.omnirouter]\n"
        'name = "Omnirouter"\n'
        f'base_url = "{gateway_for_cli.api}"\n'
        'env_key = "OMNIROUTER_API_KEY"\n'
        'wire_api = "responses"\n'
        "request_max_retries = 0\n"
        "stream_max_retries = 0\n"
    )
    env = {**base_env(home), "CODEX_HOME": str(home / ".codex"), "OMNIROUTER_API_KEY": key}
    run = subprocess.run(
        ["node", str(codex), "exec", "--json", "--ephemeral", "--skip-git-repo-check",
         "--dangerously-bypass-approvals-and-sandbox", "What is the secret word in secret.txt?"],
        cwd=workdir, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=RUN_SECONDS,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    events = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    items = [e["item"] for e in events if e["type"] == "item.completed"]
    commands = [i for i in items if i["type"] == "command_execution"]
    assert [(c["exit_code"], c["aggregated_output"]) for c in commands] == [(0, SECRET + "\n")], events
    assert [i["text"] for i in items if i["type"] == "agent_message"] == [ANSWER], events
    assert SECRET in tool_output_sent_upstream(fake_a)
    (usage,) = [e["usage"] for e in events if e["type"] == "turn.completed"]
    assert usage["input_tokens"] == TOOL_TURN_TOKENS[0] + ANSWER_TOKENS[0]
    assert usage["output_tokens"] == TOOL_TURN_TOKENS[1] + ANSWER_TOKENS[1]
    assert key_usage(gateway_for_cli, key) == _bill(*TOOL_TURN_TOKENS) + _bill(*ANSWER_TOKENS)


@pytest.mark.parametrize("name", ["claude_code_first_turn", "claude_code_tool_turn", "codex_tool_turn"])
def test_recorded_cli_requests_are_accepted(gateway_for_cli: Gateway, fake_a: FakeOpenAIThread, name: str) -> None:
    recorded = json.loads((RECORDED / f"{name}.json").read_text())
    key = gateway_for_cli.create_key()["key"]
    headers = {k: v for k, v in recorded["headers"].items() if k.lower() not in ("authorization", "x-api-key")}
    auth = "x-api-key" if any(k.lower() == "x-api-key" for k in recorded["headers"]) else "authorization"
    headers[auth] = key if auth == "x-api-key" else f"Bearer {key}"
    body = {**recorded["body"], "model": MODEL}
    fake_a.script(Stream("Recorded request answered."))
    url = gateway_for_cli.url + recorded["path"] + (f"?{recorded['query']}" if recorded["query"] else "")
    with httpx.Client(timeout=30) as client:
        r = client.post(url, headers=headers, json=body)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [line.removeprefix("event: ") for line in r.text.splitlines() if line.startswith("event: ")]
    assert events[-1] == ("response.completed" if name.startswith("codex") else "message_stop"), r.text
    assert streamed_text(r.text) == "Recorded request answered."


def streamed_text(sse: str) -> str:
    """The answer's text in an Anthropic Messages or an OpenAI Responses event stream."""
    text = ""
    for line in sse.splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            event = json.loads(line.removeprefix("data: "))
            if event.get("type") == "content_block_delta" and event["delta"].get("type") == "text_delta":
                text += event["delta"]["text"]
            elif event.get("type") == "response.output_text.delta":
                text += event["delta"]
    return text
