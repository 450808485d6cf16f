"""The documentation a user reads matches what the code does."""

from __future__ import annotations

import re
from pathlib import Path

from omnirouter.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def test_every_setting_is_documented():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    table = doc.split("\n## ", 1)[0]  # the settings' table; later sections have tables of other things
    documented = set(re.findall(r"^\| `([a-z0-9_]+)` \|", table, re.M))
    assert documented == set(Settings.model_fields), "docs/configuration.md and settings.py disagree"


def test_readme_has_the_two_setup_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Set up", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["./scripts/serve --sandbox", "./scripts/test"]
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()
