"""The import DAG: meanfield imports neither particles nor compare; particles never imports
compare; cupy is imported only in meanfield/backend.py; math code never branches on a backend."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("meanfield", "particles", "compare")
FORBIDDEN = {"meanfield": {"particles", "compare"}, "particles": {"compare"}, "compare": set()}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_go_one_way(package: str) -> None:
    for path in _sources(package):
        bad = _imports(path) & FORBIDDEN[package]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_cupy_is_imported_in_exactly_one_module() -> None:
    users = [p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in _sources(pkg)
             if {"cupy", "cupyx"} & _imports(p)]
    assert users == ["meanfield/backend.py"]


def test_h5py_is_imported_only_by_io() -> None:
    users = [p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in _sources(pkg)
             if "h5py" in _imports(p)]
    assert users == ["meanfield/io.py"]


def test_math_modules_never_compare_backend_names() -> None:
    """Capability gaps belong on the Backend object, not in `if name == "cupy"` branches."""
    for module in ("operators.py", "equation.py", "solvers/heun.py", "controller.py"):
        text = (ROOT / "meanfield" / module).read_text()
        assert '"cupy"' not in text and "'cupy'" not in text, module
