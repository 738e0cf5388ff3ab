"""The import DAG: meanfield imports neither particles nor compare (its facade resolves the
notebook API lazily, by name); particles never imports compare, nor meanfield's config layer;
cupy is imported only in meanfield/backends/arrays.py; math code never branches on a backend; no
module imports itself back through a cycle, at import time or inside a function; no module of
any package is over 600 lines."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("meanfield", "particles", "compare")
FORBIDDEN = {"meanfield": {"particles", "compare"}, "particles": {"compare"}, "compare": set()}


def _walk_runtime(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` that can run: all but the bodies of ``if TYPE_CHECKING:``."""
    out, todo = [], [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def _imports(path: Path) -> set[str]:
    """Top-level names of every module ``path`` can import (at import time or in a function)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in _walk_runtime(tree):
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
    users = [
        p.relative_to(ROOT).as_posix()
        for pkg in PACKAGES
        for p in _sources(pkg)
        if {"cupy", "cupyx"} & _imports(p)
    ]
    assert users == ["meanfield/backends/arrays.py"]


def test_h5py_is_imported_only_by_io() -> None:
    users = [
        p.relative_to(ROOT).as_posix()
        for pkg in PACKAGES
        for p in _sources(pkg)
        if "h5py" in _imports(p)
    ]
    assert users == ["meanfield/io.py"]


def test_math_modules_never_compare_backend_names() -> None:
    """Capability gaps belong on the Backend object, not in `if name == "cupy"` branches."""
    for module in (
        "pde/operators.py",
        "pde/equation.py",
        "pde/solvers/heun.py",
        "pde/controller.py",
        "pde/sweep.py",
        "backends/scalars.py",
    ):
        text = (ROOT / "meanfield" / module).read_text()
        assert '"cupy"' not in text and "'cupy'" not in text, module


MAX_LINES = 600  # "about 600": one concept per module


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _module_imports(path: Path, *, in_functions: bool = False) -> set[str]:
    """Modules of this repository that ``path`` imports, as dotted names: when it is imported
    (module body only, not inside functions or ``if TYPE_CHECKING``), or, ``in_functions``,
    anywhere it can run (function bodies too)."""
    name = _module_name(path)
    package = name if _is_package(path) else name.rpartition(".")[0]
    known = {_module_name(p) for pkg in PACKAGES for p in _sources(pkg)}
    found: set[str] = set()

    def add(node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            return
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)]
            module = ".".join(base + ([node.module] if node.module else []))
        else:
            module = node.module or ""
        found.add(module)
        found.update(f"{module}.{alias.name}" for alias in node.names)

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If):
                if "TYPE_CHECKING" not in ast.unparse(node.test):
                    visit(node.body)
                    visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
            elif isinstance(node, ast.Import | ast.ImportFrom):
                add(node)

    tree = ast.parse(path.read_text(), filename=str(path))
    if in_functions:
        for node in _walk_runtime(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                add(node)
    else:
        visit(tree.body)
    return {m for m in found if m in known}


def _top_level_imports(path: Path) -> set[str]:
    return _module_imports(path)


def _graph(package: str, *, in_functions: bool = False) -> dict[str, set[str]]:
    """Import edges, with the packages a submodule import runs (``a.b.c`` runs ``a.b``), except
    the root package (the facade) and the importer's own packages (already running)."""
    graph = {}
    for path in _sources(package):
        name = _module_name(path)
        own = {".".join(name.split(".")[:k]) for k in range(1, name.count(".") + 1)}
        edges = set()
        for target in _module_imports(path, in_functions=in_functions):
            parts = target.split(".")
            edges |= {".".join(parts[:k]) for k in range(2, len(parts) + 1)} - own
        graph[name] = edges - {name}
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a list of modules (first == last), or None."""
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, set())):
            if state.get(nxt) == 1:
                return [*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt]
            if nxt not in state and (found := visit(nxt, [*trail, nxt])) is not None:
                return found
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node, [node])) is not None:
            return found
    return None


@pytest.mark.parametrize("in_functions", [False, True], ids=["at-import", "in-functions"])
@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycles(package: str, in_functions: bool) -> None:
    """No cycle among the modules, counting the imports inside functions too: a lazy import
    that closes a cycle hides a layering fault (it only moves the failure to run time)."""
    cycle = _find_cycle(_graph(package, in_functions=in_functions))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_sees_a_cycle_inside_a_function(tmp_path: Path, monkeypatch) -> None:
    """The check above can fail: in a toy package, ``a`` imports ``b`` at import time and ``b``
    imports ``a`` back inside a function: no cycle at import time, one counting functions."""
    package = tmp_path / "meanfield"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from .b import helper\n")
    (package / "b.py").write_text("def helper():\n    from meanfield.a import helper\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert _find_cycle(_graph("meanfield")) is None
    assert _find_cycle(_graph("meanfield", in_functions=True)) == [
        "meanfield.a",
        "meanfield.b",
        "meanfield.a",
    ]


def test_particles_never_import_the_config_layer() -> None:
    """The config layer builds the run (model, backend, options) once; the particles take the
    built objects and never read a config themselves."""
    for path in _sources("particles"):
        bad = {
            m for m in _module_imports(path, in_functions=True) if m.startswith("meanfield.config")
        }
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_import_meanfield_loads_neither_particles_nor_compare() -> None:
    """The facade resolves the notebook API by name, on first use only."""
    code = (
        "import sys, meanfield; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'particles', 'compare'})); "
        "import compare.api; print(meanfield.run is compare.api.run, "
        "meanfield.study is compare.api.study, meanfield.read is compare.api.read, "
        "meanfield.plot is compare.api.plot)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split("\n")
    assert out[0] == "[]", out
    assert out[1] == "True True True True", out


def test_subpackages_never_import_the_facade() -> None:
    """Modules in meanfield's subpackages import their siblings, never ``meanfield`` itself."""
    for path in _sources("meanfield"):
        name = _module_name(path)
        package = name if _is_package(path) else name.rpartition(".")[0]
        if package.count(".") < 1:
            continue  # the facade and the top-level modules
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")
                base = base[: len(base) - max(node.level - 1, 0)] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                assert module != "meanfield", f"{name} imports from meanfield itself"
            elif isinstance(node, ast.Import):
                assert all(alias.name != "meanfield" for alias in node.names), name


def test_modules_stay_small() -> None:
    big = [
        (p.relative_to(ROOT).as_posix(), n)
        for pkg in PACKAGES
        for p in _sources(pkg)
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    ]
    assert not big, big


def test_the_pde_engine_never_imports_the_config_layer() -> None:
    """``meanfield.config`` builds PDEs from configs on top of ``meanfield.pde``; the engine
    itself knows nothing of configs (no cycle between the two subpackages)."""
    for path in _sources("meanfield"):
        if "pde" not in path.relative_to(ROOT / "meanfield").parts[:1]:
            continue
        bad = {m for m in _top_level_imports(path) if m.startswith("meanfield.config")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_only_io_writes_file_attributes() -> None:
    """``meanfield.io`` owns every group's layout and attributes: no other module assigns
    ``x.attrs[...]`` or calls ``x.attrs.update`` (``compare/api.py`` sets xarray objects'
    attributes, not a file's)."""
    writers = []
    for pkg in PACKAGES:
        for path in _sources(pkg):
            name = path.relative_to(ROOT).as_posix()
            if name in ("meanfield/io.py", "compare/api.py"):
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                target = None
                if isinstance(node, ast.Assign | ast.AugAssign):
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    target = next((t for t in targets if isinstance(t, ast.Subscript)), None)
                    target = target.value if target is not None else None
                elif (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "update"
                ):
                    target = node.func.value
                if isinstance(target, ast.Attribute) and target.attr == "attrs":
                    writers.append(f"{name}:{node.lineno}")
    assert not writers, writers
