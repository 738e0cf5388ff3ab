"""docs/extending.md runs: its ```python blocks, in order, in one namespace, in an empty directory.

A fenced block whose first line is ``# file: NAME`` is a file of the walkthrough (the one-file
model module, the configs): it is written to ``NAME`` in that directory, as the reader saves it,
and not executed. The blocks run at the small sizes of ``MEANFIELD_DOCS_QUICK=1``; their own
assertions (each with its tolerance's reason) are the checks.

``python tests/test_docs_extending.py`` runs the page at full size in a scratch directory,
printing what the blocks print (the output shown in the page), and copies the figure to
``docs/figures/relu-isotropic.png``.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "extending.md"
SHIPPED_CONFIG = ROOT / "data" / "configs" / "relu-isotropic.toml"
FIGURE = "relu-isotropic.png"
QUICK_ENV = "MEANFIELD_DOCS_QUICK"

#: a fenced block at the start of a line: its language, its first line number, its text
FENCE = re.compile(r"^```(\w*)[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
FILE_MARK = re.compile(r"# file: (\S+)[ \t]*\n")


def doc_blocks(text: str) -> list[tuple[str, int, str]]:
    """``(language, line of the block's first line, text)`` of each fenced block, in order."""
    return [
        (m.group(1), text.count("\n", 0, m.start(2)) + 1, m.group(2)) for m in FENCE.finditer(text)
    ]


def file_blocks(text: str) -> dict[str, str]:
    """The files of the walkthrough: name -> content (without the ``# file:`` line)."""
    files = {}
    for _, _, body in doc_blocks(text):
        mark = FILE_MARK.match(body)
        if mark:
            files[mark.group(1)] = body[mark.end() :]
    return files


def run_doc(workdir: Path) -> dict:
    """Write the files and execute the python blocks of the page in ``workdir``; return the
    namespace. The caller sets the working directory, ``sys.path`` and the size knob."""
    text = DOC.read_text()
    namespace: dict = {"__name__": "__docs_extending__"}
    n_executed = 0
    for language, line, body in doc_blocks(text):
        mark = FILE_MARK.match(body)
        if mark:
            (workdir / mark.group(1)).write_text(body[mark.end() :])
        elif language == "python":
            # padded so that a traceback names the line of docs/extending.md
            exec(compile("\n" * (line - 1) + body, str(DOC), "exec"), namespace)
            n_executed += 1
    namespace["__n_executed__"] = n_executed
    return namespace


def _forget_modules_under(directory: Path, before: set[str]) -> None:
    """Drop the modules imported from ``directory`` (the page's ``mymodel``)."""
    for name in set(sys.modules) - before:
        path = getattr(sys.modules[name], "__file__", None)
        if path and Path(path).resolve().is_relative_to(directory.resolve()):
            del sys.modules[name]


def test_the_page_runs_and_its_checks_pass(tmp_path: Path, monkeypatch) -> None:
    from meanfield.model import registry

    monkeypatch.setenv(QUICK_ENV, "1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))  # the reader's session imports mymodel from here
    before = set(sys.modules)
    # the registry keeps each model it loaded by name ("mymodel:ToyLinear"): restore it too
    loaded = dict(registry.REGISTRY._loaded)
    start = time.perf_counter()
    try:
        namespace = run_doc(tmp_path)
    finally:
        _forget_modules_under(tmp_path, before)
        registry.REGISTRY._loaded.clear()
        registry.REGISTRY._loaded.update(loaded)
    assert namespace["QUICK"] is True
    assert namespace["__n_executed__"] >= 8  # every block was found (a broken fence skips some)
    for name in (
        "mymodel.py",
        "toy.toml",
        "toy.h5",
        "relu-isotropic.toml",
        "relu-isotropic.h5",
        FIGURE,
    ):
        assert (tmp_path / name).is_file(), name
    assert "mymodel" not in sys.modules
    # the page's own budget in CI (the test's is about 40 s on one idle core)
    assert time.perf_counter() - start < 120


def test_the_page_shows_the_shipped_config() -> None:
    """The config block of section 3 is data/configs/relu-isotropic.toml, comments included."""
    assert file_blocks(DOC.read_text())["relu-isotropic.toml"] == SHIPPED_CONFIG.read_text()


def test_the_page_links_the_files_it_names() -> None:
    text = DOC.read_text()
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        if "://" not in target:
            assert (DOC.parent / target).exists(), target


def main() -> None:
    """Run the page at full size in a scratch directory; copy its figure into docs/figures."""
    os.environ.pop(QUICK_ENV, None)
    # run as a script, this file's directory leads sys.path, and its meanfield/ (the tests)
    # would hide the package
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent]
    os.environ.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        os.chdir(workdir)
        sys.path.insert(0, str(workdir))
        start = time.perf_counter()
        run_doc(workdir)
        print(f"[the page ran in {time.perf_counter() - start:.0f} s]")
        shutil.copy(workdir / FIGURE, DOC.parent / "figures" / FIGURE)
        os.chdir(ROOT)
    print(f"[wrote {DOC.parent / 'figures' / FIGURE}]")


if __name__ == "__main__":
    main()
