"""The node side of the SDK checks: a script of tests/sdk_ts run against a gateway, its config as JSON
on stdin, one JSON line per check out ({"operation", "ok", "error"?})."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

TS_DIR = Path(__file__).parent / "sdk_ts"


def unavailable() -> str | None:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (TS_DIR / "node_modules" / "@openrouter" / "sdk").is_dir():
        return f"@openrouter/sdk is not installed in {TS_DIR} (scripts/test installs it; or run npm ci there)"
    return None


def require_node() -> None:
    """Skip without node or the SDKs, except in CI, where they are required."""
    if (reason := unavailable()) is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the TypeScript SDK run is required in CI: {reason}")
        pytest.skip(reason)


def run_steps(script: str, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The results of tests/sdk_ts/`script`, by operation."""
    require_node()
    proc = subprocess.run(
        ["node", str(TS_DIR / script)], input=json.dumps(config), capture_output=True, text=True, timeout=120,
        cwd=TS_DIR,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return {r["operation"]: r for r in map(json.loads, filter(str.strip, proc.stdout.splitlines()))}
