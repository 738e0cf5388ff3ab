"""MkDocs hooks of the documentation site (``mkdocs.yml``, ``hooks:``).

Two things happen at build time, so the site never holds a hand-copied list:

* :func:`config_reference` writes ``reference/config.md`` from the schema: every section and
  key of :data:`meanfield.config.schema.SCHEMA` and every built-in model's keys
  (:attr:`meanfield.model.registry.ModelEntry.keys`), each with its types, default and the doc
  of its :class:`~meanfield.fields.Field`, and the table of ``meanfield info --models``. A
  changed ``Field`` doc changes the page.
* Links from a page to a file of the repository outside ``docs/`` (``../meanfield/fields.py``)
  are rewritten to a page generated from that file (``source/meanfield/fields.py/``): the file
  as it was when the site was built, highlighted. The project names no public repository URL to
  link to, and a copy at build time cannot drift from the text that links to it. A link to a
  file that does not exist is left alone, so ``mkdocs build --strict`` fails on it as on any
  broken link inside ``docs/``.
"""

from __future__ import annotations

import inspect
import math
import posixpath
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

#: where the generated configuration reference goes (in the nav of mkdocs.yml)
CONFIG_PAGE = "reference/config.md"
#: where the pages of repository files go
SOURCE_DIR = "source"
#: an inline link or image target, ``](target)`` or ``](target "title")``, over line breaks
_LINK = re.compile(r"(?P<head>\]\(\s*)(?P<target><[^>]*>|[^)\s]+)(?P<tail>(\s+\"[^\"]*\")?\s*\))")
#: a reference definition, ``[id]: target``
_REF_DEF = re.compile(r"^(?P<head> {0,3}\[[^\]]+\]:\s*)(?P<target>\S+)(?P<tail>.*)$", re.M)
_FENCE = re.compile(r"^ {0,3}(```|~~~)[^\n]*\n.*?^ {0,3}\1[^\n]*$", re.M | re.S)
_LANGUAGES = {
    ".py": "python",
    ".toml": "toml",
    ".sh": "bash",
    ".yml": "yaml",
    ".yaml": "yaml",
    ".json": "json",
    ".cfg": "ini",
    ".md": "markdown",
    ".csv": "text",
    ".txt": "text",
}


# ----------------------------------------------------------------------------- mkdocs events


def on_files(files: Files, config: Any) -> Files:
    """Add the generated pages: the configuration reference, and one page per repository file
    that a page links to."""
    files.append(File.generated(config, CONFIG_PAGE, content=config_reference()))
    root = _repo_root(config)
    linked = set()
    for file in list(files.documentation_pages()):
        if file.generated_by is not None:
            continue
        for target in _targets(file.content_string):
            path = _repository_file(target, file.src_uri, config)
            if path is not None:
                linked.add(path)
    for path in sorted(linked):
        relative = path.relative_to(root).as_posix()
        files.append(
            File.generated(
                config,
                _source_page(relative),
                content=source_page(relative, path.read_text(encoding="utf-8")),
            )
        )
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Files) -> str:
    """Point the page's links to repository files at their generated pages."""
    src_uri = page.file.src_uri
    root = _repo_root(config)

    def fix(match: re.Match) -> str:
        target = match["target"]
        path = _repository_file(target, src_uri, config)
        if path is None:
            return match.group(0)
        _, hash_, fragment = target.strip("<>").partition("#")
        page_uri = _source_page(path.relative_to(root).as_posix())
        new = posixpath.relpath(page_uri, posixpath.dirname(src_uri) or ".")
        return match["head"] + new + hash_ + fragment + match["tail"]

    return _outside_fences(markdown, lambda text: _REF_DEF.sub(fix, _LINK.sub(fix, text)))


# ----------------------------------------------------------------------------- repository links


def _repo_root(config: Any) -> Path:
    """The repository: the directory of ``mkdocs.yml``."""
    return Path(config.config_file_path).resolve().parent


def _targets(markdown: str) -> Iterator[str]:
    found: list[str] = []

    def collect(text: str) -> str:
        found.extend(m["target"] for m in _LINK.finditer(text))
        found.extend(m["target"] for m in _REF_DEF.finditer(text))
        return text

    _outside_fences(markdown, collect)
    return iter(found)


def _repository_file(target: str, src_uri: str, config: Any) -> Path | None:
    """The file of the repository, outside the docs directory, that ``target`` (a link of the
    page ``src_uri``) names; None for any other link (a page, a URL, a missing file)."""
    target = target.strip("<>")
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^/|^#", target):
        return None
    path_part = target.split("#", 1)[0].split("?", 1)[0]
    if not path_part:
        return None
    docs = Path(config.docs_dir).resolve()
    root = _repo_root(config)
    path = (docs / posixpath.dirname(src_uri) / path_part).resolve()
    if path.is_relative_to(docs) or not path.is_relative_to(root) or not path.is_file():
        return None
    try:  # a text file gets a page; a link to any other file is left to fail the build
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None
    return path


def _source_page(relative: str) -> str:
    return f"{SOURCE_DIR}/{relative}.md"


def source_page(relative: str, text: str) -> str:
    """A page showing the repository file ``relative`` (its text ``text``), highlighted."""
    language = _LANGUAGES.get(Path(relative).suffix, "text")
    fence = "`" * max(3, 1 + max((len(m) for m in re.findall(r"`+", text)), default=0))
    return "\n".join(
        [
            "---",
            "search:",
            "  exclude: true",
            "---",
            "",
            f"# `{relative}`",
            "",
            "The file of the repository as it was when this site was built.",
            "",
            f"{fence}{language}",
            text.rstrip("\n"),
            fence,
            "",
        ]
    )


def _outside_fences(markdown: str, fn: Any) -> str:
    """Apply ``fn`` to the text between fenced code blocks, leave the blocks alone."""
    out, last = [], 0
    for match in _FENCE.finditer(markdown):
        out += [fn(markdown[last : match.start()]), match.group(0)]
        last = match.end()
    out.append(fn(markdown[last:]))
    return "".join(out)


# ----------------------------------------------------------------------------- config reference


def config_reference() -> str:
    """The configuration reference page, from the schema and the model registry."""
    from meanfield.config.schema import REQUIRED_SECTIONS, SCHEMA, SECTION_ORDER
    from meanfield.model.registry import builtin_entries

    entries = builtin_entries()
    lines = [
        "# Configuration reference",
        "",
        "<!-- generated by docs/hooks.py from meanfield.config.schema.SCHEMA and the model "
        "registry at every build: edit the Field docs in the code, not this page -->",
        "",
        "A run config is a TOML file with the sections "
        + ", ".join(f"`[{s}]`" for s in SECTION_ORDER)
        + " ("
        + ", ".join(f"`[{s}]`" for s in REQUIRED_SECTIONS)
        + " required). "
        "`[model] name` picks the model; each model adds keys of its own to the keys every "
        "model shares. The tables below are generated from the schema "
        "([`meanfield.config.schema.SCHEMA`][meanfield.config.SCHEMA]) and from each "
        "built-in model's [`ModelEntry.keys`][meanfield.model.registry.ModelEntry], so they "
        "are what `meanfield check` and `meanfield run` accept. "
        "`meanfield info --models [NAME]` prints the same from the installed package, "
        "models of installed plug-ins included.",
        "",
        "*Types* are TOML types (an integer is accepted for a float); *default* is "
        "**required** where there is none, and *derived* where it is computed from keys "
        "resolved before it; *allowed* is what the key's check accepts, where the check says "
        "so in one phrase (other checks name what is allowed in their error message).",
        "",
        "## Models",
        "",
        "| model | offers | description |",
        "| --- | --- | --- |",
    ]
    for name, entry in entries.items():
        lines.append(
            f"| [`{name}`](#model-{_anchor(name)}) | {_offers(entry)} | {_cell(entry.doc)} |"
        )
    lines += ["", "## Keys every model shares", ""]
    for section in SECTION_ORDER:
        lines += [f"### `[{section}]`", ""]
        if SCHEMA[section]:
            lines += _key_table([(section, key, spec) for key, spec in SCHEMA[section].items()])
        else:
            lines += ["No shared keys: the model's own keys only.", ""]
    lines += ["## Keys of each model", ""]
    for name, entry in entries.items():
        lines += [
            f"### `{name}` {{#model-{_anchor(name)}}}",
            "",
            _text(entry.doc),
            "",
            f"Offers: {_offers(entry)}.",
            "",
        ]
        keys = [
            (section, key, spec)
            for section in SECTION_ORDER
            for key, spec in entry.fields(section).items()
        ]
        lines += _key_table(keys) if keys else ["No keys of its own.", ""]
    return "\n".join(lines)


def _offers(entry: Any) -> str:
    if entry.pde:
        axes = (
            "grid axes set by `[model]`"
            if callable(entry.reduced_dim)
            else f"{entry.reduced_dim}-D grid"
        )
        parts = [f"PDE ({axes})"]
    else:
        parts = ["no PDE"]
    return ", ".join(parts + (["particles"] if entry.particles else []))


def _key_table(keys: list[tuple[str, str, Any]]) -> list[str]:
    """A table of ``(section, key, Field)``: the key, its types, default, what its check
    allows and its doc."""
    rows = ["| key | types | default | allowed | description |", "| --- | --- | --- | --- | --- |"]
    for section, key, spec in keys:
        rows.append(
            f"| `{section}.{key}` | {' or '.join(spec.types)} | {_default(spec)} "
            f"| {_cell(_allowed(spec))} | {_cell(spec.doc)} |"
        )
    return [*rows, ""]


def _default(spec: Any) -> str:
    from meanfield.fields import REQUIRED, Derived

    if spec.default is REQUIRED:
        return "**required**"
    if isinstance(spec.default, Derived):
        return "*derived*"
    return _code(_toml(spec.default))


def _toml(value: Any) -> str:
    """A default as it would be written in the TOML file (``inf``, ``true``, ``{count = 11}``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def _allowed(spec: Any) -> str:
    """The phrase of a check built by :func:`meanfield.fields.allowed` (``one_of`` and the
    ``positive_float``-like helpers); empty for any other check."""
    check = spec.check
    if check is None or not getattr(check, "__qualname__", "").startswith("allowed."):
        return ""
    text = inspect.getclosurevars(check).nonlocals.get("text")
    return text if isinstance(text, str) else ""


def _anchor(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _code(text: str) -> str:
    text = text.replace("|", "\\|")
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


_ESCAPE = re.compile(r"([\\`*_\[\]{}|>#])")


def _text(text: str) -> str:
    """Plain text for Markdown: its markup characters escaped (a Field doc is plain text)."""
    text = _ESCAPE.sub(r"\\\1", " ".join(str(text).split()))
    return text.replace("<", "&lt;")


def _cell(text: str) -> str:
    return _text(text) if text else ""
