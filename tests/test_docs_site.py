"""The documentation site builds with no warnings, and every public name it documents has a
docstring.

* :func:`test_site_builds_strict` runs ``mkdocs build --strict`` (mkdocs.yml): a broken link or
  anchor, a docstring mkdocstrings cannot read, any warning fails. It needs the ``docs`` extra
  (``pip install -e ".[docs]"``) and skips without it, saying so.
* The documented modules are those of the ``::: module`` directives of ``docs/reference/``. Every
  name of their ``__all__`` that is a function or a class, and every public method and property
  of such a class, must have a docstring (an override may keep its base's, as ``help()`` and
  the site show it): :func:`undocumented` checks this at run time, with no extra installed.
  The constants of ``__all__`` carry their docstring in the source (a string after the
  assignment, or ``#:`` comments above it), which only a static reader sees:
  :func:`test_public_constants_have_docstrings` reads them with griffe, as the site does.
* A docstring's role naming a project object by its full path (``:class:`meanfield.grid.Grid```,
  a link on the site) must name one that exists (:func:`test_cross_references_resolve`).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "reference"
#: the public surface the reference must cover (issue 26); more modules may be added
REQUIRED_MODULES = {
    "compare.api",
    "meanfield",
    "meanfield.config",
    "meanfield.fields",
    "meanfield.model.registry",
    "meanfield.model.base",
    "meanfield.run_setup",
    "meanfield.io",
    "compare.reproduce.base",
}


def directives() -> list[tuple[str, str]]:
    """``(page, module)`` of each ``::: module`` directive of the reference pages (the page's
    name without ``.md``)."""
    found = []
    for page in sorted(REFERENCE.glob("*.md")):
        for module in re.findall(r"^::: ([\w.]+)\s*$", page.read_text(), flags=re.MULTILINE):
            found.append((page.stem, module))
    return found


def documented_modules() -> list[str]:
    """The modules of the ``::: module`` directives of the reference pages."""
    return [module for _, module in directives()]


def _docstring(obj: Any) -> str | None:
    """The docstring the site renders for a function or class (a dataclass's generated
    signature is none)."""
    doc = obj.__dict__.get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    if inspect.isclass(obj) and dataclasses.is_dataclass(obj):
        doc = None if doc and doc.startswith(f"{obj.__name__}(") else doc
    return doc if doc and doc.strip() else None


def _members(cls: type) -> list[str]:
    """The public methods and properties defined in the body of ``cls``."""
    kinds = (property, staticmethod, classmethod, types.FunctionType)
    return [
        name
        for name, raw in vars(cls).items()
        if not name.startswith("_") and isinstance(raw, kinds)
    ]


def _member_docstring(cls: type, name: str) -> str | None:
    """The docstring of method or property ``name`` of ``cls``: its own, or the one of the first
    base class defining it (an override documented once, as ``help()`` shows it)."""
    for klass in cls.__mro__:
        doc = getattr(klass.__dict__.get(name), "__doc__", None)
        if doc and doc.strip():
            return doc
    return None


def undocumented(module: types.ModuleType) -> list[str]:
    """The public names of ``module`` (its ``__all__``) that the site would show without a
    docstring: functions, classes and the public methods and properties of those classes."""
    missing = []
    for name in getattr(module, "__all__", ()):
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            continue
        where = f"{module.__name__}.{name}"
        if inspect.isclass(obj):
            if _docstring(obj) is None:
                missing.append(where)
            missing += [
                f"{where}.{member}"
                for member in _members(obj)
                if _member_docstring(obj, member) is None
            ]
        elif callable(obj) and _docstring(obj) is None:
            missing.append(where)
    return missing


def test_reference_covers_the_public_surface() -> None:
    modules = documented_modules()
    assert REQUIRED_MODULES <= set(modules), REQUIRED_MODULES - set(modules)
    assert len(modules) == len(set(modules)), "a module is documented twice"


@pytest.mark.parametrize("name", documented_modules())
def test_public_names_have_docstrings(name: str) -> None:
    module = importlib.import_module(name)
    assert getattr(module, "__all__", None), f"{name} has no __all__ to document"
    assert undocumented(module) == [], "public names without a docstring"


def test_the_docstring_check_finds_what_is_missing() -> None:
    module = types.ModuleType("synthetic")

    def documented() -> None:
        """Has one."""

    def bare() -> None:
        pass

    class Base:
        """Documented."""

        def hook(self) -> None:
            """Documented on the base."""

    class Plain(Base):
        def hook(self) -> None:  # inherits Base.hook's docstring: fine
            pass

        def method(self) -> None:
            pass

        @property
        def value(self) -> int:
            return 1

    @dataclasses.dataclass
    class Record:
        x: int

    module.__dict__.update(
        documented=documented, bare=bare, Plain=Plain, Record=Record, CONSTANT=3, os=os
    )
    module.__all__ = ["documented", "bare", "Plain", "Record", "CONSTANT", "os"]
    assert undocumented(module) == [
        "synthetic.bare",
        "synthetic.Plain",
        "synthetic.Plain.method",
        "synthetic.Plain.value",
        "synthetic.Record",
    ]


#: a Sphinx role naming an object of this project by its full path (``~`` shortens the title)
ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|data|attr|exc|obj|const):`(?:[^`<]*<)?~?"
    r"(?P<target>(?:meanfield|particles|compare)\.[^`>]+)>?`"
)


def _resolves(target: str) -> bool:
    """Whether ``target`` (``package.module.Object.attribute``) names something: the longest
    importable module prefix, then attributes (a dataclass field counts)."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for j, part in enumerate(parts[i:], start=i):
            fields = getattr(obj, "__dataclass_fields__", {})
            if j == len(parts) - 1 and part in fields:
                return True
            if not hasattr(obj, part):
                return False
            obj = getattr(obj, part)
        return True
    return False


def test_cross_references_resolve() -> None:
    """A role naming an object of the project by its full path (the site links it) names one
    that exists: a moved or renamed object leaves no stale reference behind."""
    stale = []
    for package in ("meanfield", "particles", "compare"):
        for path in sorted((ROOT / package).rglob("*.py")):
            for match in ROLE.finditer(path.read_text()):
                target = re.sub(r"\s+", "", match["target"])
                if not _resolves(target):
                    stale.append(f"{path.relative_to(ROOT)}: {target}")
    assert stale == [], "cross-references to objects that do not exist"


def test_the_reference_check_finds_stale_names() -> None:
    assert _resolves("meanfield.fields.Field")
    assert _resolves("meanfield.model.registry.ModelEntry.keys")  # a dataclass field
    assert _resolves("meanfield.io")
    assert not _resolves("meanfield.config.fields.Field")
    assert not _resolves("meanfield.fields.NoSuchThing")
    found = ROLE.search("see :class:`~meanfield.fields.Field` and")
    assert found is not None and found["target"] == "meanfield.fields.Field"


# ----------------------------------------------------------------------------- with the extra


def _require(*modules: str) -> None:
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:  # its parent package is missing
            found = False
        if not found:
            pytest.skip(
                f"{name} is not installed: the docs extra (pip install -e '.[docs]') "
                "builds the documentation site"
            )


def _load_hooks() -> types.ModuleType:
    _require("mkdocs")
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _mkdocs(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(config),
            "--site-dir",
            str(site),
        ],
        cwd=config.parent,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def test_site_builds_strict(tmp_path: Path) -> None:
    _require("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
    result = _mkdocs(ROOT / "mkdocs.yml", tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    site = tmp_path / "site"
    # every public name of a documented module is rendered (mkdocstrings leaves out a name
    # without a docstring): a heading per name of __all__, and per public method or property
    # of a class; meanfield's notebook API is rendered from compare.api
    import meanfield

    missing = []
    for page, name in directives():
        html = (site / "reference" / page / "index.html").read_text()
        module = importlib.import_module(name)
        for public in module.__all__:
            if name == "meanfield" and public in meanfield._NOTEBOOK_API:
                continue
            value = getattr(module, public)
            ids = [f"{name}.{public}"]
            if inspect.isclass(value) and value.__module__.split(".")[0] == name.split(".")[0]:
                ids += [f"{name}.{public}.{member}" for member in _members(value)]
            missing += [i for i in ids if f'id="{i}"' not in html]
    assert missing == [], "public names not rendered on their reference page"
    # ... and the configuration reference from the schema: every key, with its doc
    from meanfield.config.schema import SCHEMA
    from meanfield.model.registry import builtin_entries

    hooks = _load_hooks()
    keys = (site / "reference" / "config" / "index.html").read_text()
    for section, fields in SCHEMA.items():
        for key, spec in fields.items():
            assert f"<code>{section}.{key}</code>" in keys
            assert _html_text(hooks._text(spec.doc)) in keys, (section, key)
    for name, entry in builtin_entries().items():
        assert f'id="model-{hooks._anchor(name)}"' in keys, name
        for section, fields in entry.keys.items():
            for key in fields:
                assert f"<code>{section}.{key}</code>" in keys, (name, section, key)


def _html_text(markdown: str) -> str:
    """What Markdown makes of an escaped plain text (its backslash escapes gone, ``>`` and ``&``
    as entities)."""
    text = re.sub(r"\\(.)", r"\1", markdown)
    return text.replace("&", "&amp;").replace("&amp;lt;", "&lt;").replace(">", "&gt;")


def test_config_page_follows_the_field_docs(monkeypatch: pytest.MonkeyPatch) -> None:
    hooks = _load_hooks()
    from meanfield.config import schema
    from meanfield.fields import Field

    changed = {
        **schema.SCHEMA,
        "dynamics": {**schema.SCHEMA["dynamics"], "t_end": Field(("float",), "a changed doc")},
    }
    monkeypatch.setattr(schema, "SCHEMA", changed)
    page = hooks.config_reference()
    assert "| `dynamics.t_end` | float | **required** |  | a changed doc |" in page


def test_links_to_repository_files(tmp_path: Path) -> None:
    hooks = _load_hooks()
    config = types.SimpleNamespace(
        config_file_path=str(ROOT / "mkdocs.yml"), docs_dir=str(ROOT / "docs")
    )
    page = types.SimpleNamespace(file=types.SimpleNamespace(src_uri="reference/x.md"))
    markdown = textwrap.dedent("""\
        [fields](../../meanfield/fields.py), [a page](../solver.md#equation),
        [missing](../../meanfield/no_such_file.py), [web](https://example.org/a.py),
        [wrapped
        link](../../meanfield/io.py "the io module")

        ```python
        [in code](../../meanfield/fields.py)
        ```
        """)
    out = hooks.on_page_markdown(markdown, page, config, None)
    assert "[fields](../source/meanfield/fields.py.md)" in out
    assert '](../source/meanfield/io.py.md "the io module")' in out
    assert "[a page](../solver.md#equation)" in out  # a page: MkDocs checks it
    assert "[missing](../../meanfield/no_such_file.py)" in out  # left broken: strict fails
    assert "[web](https://example.org/a.py)" in out
    assert "[in code](../../meanfield/fields.py)" in out


def test_strict_build_fails_on_broken_links(tmp_path: Path) -> None:
    """mkdocs.yml's settings (inherited: validation, markdown, the hook) make a link to a missing
    page, a missing anchor or a missing repository file fail the build, and only those."""
    _require("mkdocs", "material")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text(
        "# Home\n\n[gone](gone.md), [no anchor](index.md#nowhere), "
        "[no file](../missing.py), [a file](../present.py)\n"
    )
    (tmp_path / "present.py").write_text("x = 1\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(
        textwrap.dedent(f"""\
        INHERIT: {ROOT / "mkdocs.yml"}
        site_name: probe
        docs_dir: docs
        hooks: [{ROOT / "docs" / "hooks.py"}]
        plugins: [search]
        nav: [index.md, reference/config.md]
        """)
    )
    result = _mkdocs(config, tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    warnings = [line for line in output.splitlines() if line.startswith("WARNING")]
    assert len(warnings) == 3, output
    for target, warning in zip(("'gone.md'", "'../missing.py'", "#nowhere"), warnings, strict=True):
        assert target in warning, output
    assert (tmp_path / "site" / "source" / "present.py" / "index.html").is_file()


def test_public_constants_have_docstrings() -> None:
    """The constants (and type aliases) of each documented ``__all__`` have a docstring, read as
    the site reads it (griffe, with docs/griffe_sphinx.py for ``#:`` comments)."""
    _require("griffe")
    import griffe

    extension = {str(ROOT / "docs" / "griffe_sphinx.py") + ":SphinxToMarkdown": {}}
    loader = griffe.GriffeLoader(
        search_paths=[str(ROOT)], extensions=griffe.load_extensions(extension)
    )
    for package in ("meanfield", "compare"):
        loader.load(package)
    missing = []
    for name in documented_modules():
        module = importlib.import_module(name)
        static = loader.modules_collection[name]
        for public in module.__all__:
            value = getattr(module, public)
            if inspect.isclass(value) or inspect.ismodule(value) or inspect.isroutine(value):
                continue  # checked at run time
            member = static.members.get(public)
            target = member.final_target if member is not None and member.is_alias else member
            if target is None or target.docstring is None or not target.docstring.value.strip():
                missing.append(f"{name}.{public}")
    assert missing == [], "public constants without a docstring (a string or #: comments)"
