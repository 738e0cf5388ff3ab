"""Griffe extension of the documentation site: the docstrings' reStructuredText bits as Markdown.

The docstrings are numpy-style (read by mkdocstrings' numpy parser) but use a few Sphinx
constructs, which Markdown would print verbatim. This extension (``mkdocs.yml``, mkdocstrings'
``extensions``) rewrites them in each docstring of a loaded package before it is parsed:

* roles (``:class:`~meanfield.grid.Grid```, ``:func:`run```, ``:meth:`Experiment.check```,
  ``:mod:``, ``:data:``, ``:attr:``, ``:exc:``, ``:obj:``) become *optional* cross-references:
  a link where the target is rendered on the site, plain code where it is not (a module not in
  the API reference, numpy, xarray), never a warning. A relative name is resolved in the scope
  of the docstring's object, as Python would; ``~`` keeps the last component as the title;
* ``:math:`x``` becomes inline math, and a ``.. math::`` directive a display block (rendered by
  ``pymdownx.arithmatex`` and MathJax);
* a reStructuredText simple table (``====  ====`` borders) is kept as preformatted text, and a
  citation ``.. [1] ...`` is a paragraph starting ``[1]``;
* an attribute without a docstring takes the ``#:`` comment lines right above it (Sphinx's
  convention, which the code uses for its constants);
* a method or property without a docstring takes the one of the base class it overrides, as
  ``help()`` does.

Nothing here changes the code; the docstrings stay valid for ``help()`` and Sphinx.
"""

from __future__ import annotations

import html
import re
from typing import Any

import griffe

#: a role: ``:kind:`target``` (``:py:kind:`` too)
_ROLE = re.compile(
    r":(?:py:)?(?P<kind>class|func|meth|mod|data|attr|exc|obj|const|math):"
    r"`(?P<text>[^`]+)`"
)
#: a role whose text runs onto the next line
_BROKEN_ROLE = re.compile(r"(?P<head>:(?:py:)?[a-z]+:`[^`\n]*)\n[ \t]*(?P<tail>[^`\n]*`)")
#: ``.. math::`` at some indent, the rest of the line being the first line of the formula
_MATH_DIRECTIVE = re.compile(r"^(?P<indent>[ \t]*)\.\. math::[ \t]*(?P<rest>.*)$")
_TABLE_BORDER = re.compile(r"^[ \t]*=+( +=+)+[ \t]*$")
_FENCE = re.compile(r"^[ \t]*(```|~~~)")
#: a numpy-style citation, ``.. [1] Author, title``
_CITATION = re.compile(r"^(?P<indent>[ \t]*)\.\. \[(?P<label>[\w#*]+)\][ \t]+")
_UNDERLINE = re.compile(r"^[ \t]*-{3,}[ \t]*$")
#: the numpy sections whose entries are ``name : type`` lines (or a type alone)
_ITEM_SECTIONS = {
    "Parameters",
    "Other Parameters",
    "Attributes",
    "Returns",
    "Yields",
    "Receives",
    "Raises",
    "Warns",
    "Methods",
}


class SphinxToMarkdown(griffe.Extension):
    """Rewrite the Sphinx roles, math and simple tables of every docstring of a package.

    Parameters
    ----------
    packages : list of str, optional
        The top-level packages whose docstrings are rewritten (default: every package loaded).
    """

    def __init__(self, packages: list[str] | None = None) -> None:
        super().__init__()
        self.packages = None if packages is None else set(packages)

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        """Rewrite the docstrings of ``pkg`` and everything defined in it, once it is loaded
        (the whole package: a relative name resolves against its imports)."""
        if self.packages is not None and pkg.name not in self.packages:
            return
        _rewrite_tree(pkg, set())
        _inherit_tree(pkg, set())


def _rewrite_tree(obj: griffe.Object, seen: set[str]) -> None:
    if obj.path in seen:
        return
    seen.add(obj.path)
    if obj.docstring is None and obj.is_attribute:
        obj.docstring = _comment_docstring(obj)
    if obj.docstring is not None:
        obj.docstring.value = rewrite(obj.docstring.value, obj)
    for member in obj.members.values():
        if not member.is_alias:
            _rewrite_tree(member, seen)


def _inherit_tree(obj: griffe.Object, seen: set[str]) -> None:
    """A method or property of a class without a docstring takes that of the first base class
    defining it (as ``inspect.getdoc`` does): an override documented once, on the base."""
    if obj.path in seen:
        return
    seen.add(obj.path)
    for member in obj.members.values():
        if member.is_alias:
            continue
        if obj.is_class and member.docstring is None and not member.is_class:
            member.docstring = _base_docstring(obj, member)
        _inherit_tree(member, seen)


def _base_docstring(cls: Any, member: Any) -> griffe.Docstring | None:
    try:
        bases = cls.mro()
    except Exception:  # noqa: BLE001 (a base griffe cannot resolve: nothing to inherit)
        return None
    for base in bases:
        found = base.members.get(member.name)
        if found is not None and not found.is_alias and found.docstring is not None:
            return griffe.Docstring(found.docstring.value, parent=member)
    return None


def _comment_docstring(attr: griffe.Object) -> griffe.Docstring | None:
    """The ``#:`` comment lines right above an attribute's assignment (Sphinx's convention for
    documenting a constant), as its docstring."""
    try:
        lines = attr.lines_collection[attr.filepath]
    except (KeyError, TypeError):
        return None
    start = (attr.lineno or 0) - 1  # 0-based index of the assignment
    found: list[str] = []
    i = start - 1
    while i >= 0 and lines[i].lstrip().startswith("#:"):
        found.insert(0, lines[i].lstrip()[2:].strip())
        i -= 1
    if not found:
        return None
    return griffe.Docstring("\n".join(found), lineno=i + 2, endlineno=start, parent=attr)


def rewrite(text: str, scope: Any = None) -> str:
    """The docstring ``text`` with its roles, math and tables in Markdown (``scope``: the griffe
    object whose docstring it is, for relative names)."""
    text = _BROKEN_ROLE.sub(_join_role, text)
    lines = _tables_as_text(_math_blocks(text.splitlines()))
    out, fenced, items_at = [], False, None
    for i, line in enumerate(lines):
        if _FENCE.match(line):
            fenced = not fenced
        if fenced:
            out.append(line)
            continue
        underlined = i + 1 < len(lines) and _UNDERLINE.match(lines[i + 1])
        if underlined and _indent(lines[i + 1]) == _indent(line):
            items_at = _indent(line) if line.strip() in _ITEM_SECTIONS else None
        elif (
            items_at is not None
            and line.strip()
            and _indent(line) == items_at
            and not _UNDERLINE.match(line)
        ):
            # ``name : type`` (or a bare type): the type is shown as it is written (griffe reads
            # it as an expression where it can), so a role there is its plain name and
            # ``literal`` markup goes
            out.append(_ROLE.sub(_plain, line).replace("``", ""))
            continue
        line = _CITATION.sub(r"\g<indent>\\[\g<label>\\] ", line)
        out.append(_ROLE.sub(lambda m: _role(m, scope), line))
    return "\n".join(out)


def _join_role(match: re.Match) -> str:
    """A role broken over two lines, on one (a dotted path joined without the space)."""
    head, tail = match["head"], match["tail"]
    return head + ("" if head.endswith(".") else " ") + tail


def _plain(match: re.Match) -> str:
    if match["kind"] == "math":
        return match["text"]
    title, _, target = match["text"].partition("<")
    if target:
        return target.rstrip(">").strip()
    return title.strip().lstrip("~")  # the full name: griffe resolves it to a link


def _role(match: re.Match, scope: Any) -> str:
    kind, text = match["kind"], match["text"]
    if kind == "math":
        return rf"\({text}\)"
    title, _, target = text.partition("<")  # :class:`title <target>`
    if target:
        title, target = title.strip(), target.rstrip(">").strip()
    else:
        target = text.strip()
        short = target.startswith("~")
        target = target.lstrip("~")
        title = target.rsplit(".", 1)[-1] if short else target
    if kind in ("func", "meth") and not title.endswith(")"):
        title += "()"
    identifier = _resolve(target.lstrip("."), scope)
    return (
        f'<autoref identifier="{html.escape(identifier)}" optional>'
        f"<code>{html.escape(title)}</code></autoref>"
    )


def _resolve(target: str, scope: Any) -> str:
    """The full path of ``target`` seen from ``scope``: its first component resolved as Python
    would (members, then the enclosing scopes); unchanged when it cannot be."""
    if scope is None:
        return target
    head, dot, tail = target.partition(".")
    try:
        resolved = scope.resolve(head)
    except Exception:  # noqa: BLE001 (griffe's NameResolutionError, or an alias it cannot follow)
        return target
    return resolved + dot + tail


def _math_blocks(lines: list[str]) -> list[str]:
    """``.. math::`` and its indented body as a ``\\[ ... \\]`` display block."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _MATH_DIRECTIVE.match(lines[i])
        if match is None:
            out.append(lines[i])
            i += 1
            continue
        indent = match["indent"]
        body = [match["rest"]] if match["rest"].strip() else []
        i += 1
        while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > len(indent)):
            body.append(lines[i].strip())
            i += 1
        while body and not body[-1]:
            body.pop()
        formula = [b for b in body if b]
        out += ["", indent + r"\[", *(indent + b for b in formula), indent + r"\]", ""]
    return out


def _tables_as_text(lines: list[str]) -> list[str]:
    """Each simple table (three border lines of ``=``) in a ``text`` fence."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not _TABLE_BORDER.match(lines[i]):
            out.append(lines[i])
            i += 1
            continue
        borders = [j for j in range(i, len(lines)) if _TABLE_BORDER.match(lines[j])][:3]
        if len(borders) < 3:
            out.append(lines[i])
            i += 1
            continue
        indent = lines[i][: _indent(lines[i])]
        out += ["", indent + "```text", *lines[i : borders[2] + 1], indent + "```", ""]
        i = borders[2] + 1
    return out


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())
