"""Every package the code imports is declared in pyproject.toml: the package's own code in its
dependencies, the tests' in the `test` extra, the benchmark's in the `bench` extra. A package that
only arrives through another's dependencies (httptools through uvicorn[standard]) can vanish with
that package's next release."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9._-]+", requirement)[0]).lower()  # type: ignore[index]


def _declared(*extras: str) -> set[str]:
    reqs = PROJECT["dependencies"] + [r for extra in extras for r in PROJECT["optional-dependencies"][extra]]
    return {_name(r) for r in reqs}


def _imported(folder: Path) -> dict[str, Path]:
    """Top-level modules imported by the .py files under folder (not relative imports), with a file each."""
    local = {p.stem for p in folder.rglob("*.py")} | {p.name for p in folder.rglob("*") if p.is_dir()}
    found: dict[str, Path] = {}
    for path in folder.rglob("*.py"):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top not in local | {"omnirouter", "tests", "bench"}:
                    found.setdefault(top, path)
    return found


@pytest.mark.parametrize(("folder", "extras"), [("src", ()), ("tests", ("test",)), ("bench", ("bench", "test"))])
def test_every_imported_package_is_declared(folder: str, extras: tuple[str, ...]) -> None:
    declared = _declared(*extras)
    distributions = packages_distributions()
    undeclared = {
        module: str(path.relative_to(ROOT))
        for module, path in _imported(ROOT / folder).items()
        if not {_name(d) for d in distributions.get(module, [module])} & declared
    }
    assert undeclared == {}
