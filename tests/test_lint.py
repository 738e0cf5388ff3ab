"""The tree passes ruff's lint rules and its formatter's check, and the public modules pass mypy
(their configuration: pyproject.toml's [tool.ruff] and [tool.mypy]). The tools come with the
``test`` extra; without them these checks skip and say why."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> list[str]:
    """The command of ``name`` from this interpreter's environment, or skip."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return [found]


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_check_passes() -> None:
    result = _run([*_tool("ruff"), "check", "."])
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_check_passes() -> None:
    result = _run([*_tool("ruff"), "format", "--check", "."])
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes_on_the_public_modules() -> None:
    result = _run([*_tool("mypy")])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success" in result.stdout, result.stdout
