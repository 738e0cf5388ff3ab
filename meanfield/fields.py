"""Configuration keys as data: :class:`Field`, :class:`ConfigError` and the checks keys share.

A key is a frozen :class:`Field` (accepted TOML types, a default or :data:`REQUIRED`, a check
returning what is allowed, a conversion, a one-line doc). The shared sections live in
:mod:`meanfield.config.schema`; each model declares its own keys in its module
(:class:`meanfield.model.registry.ModelEntry`) with the helpers here. This module imports nothing
of the package: it is the floor both the model layer and the config layer build on. What a check
needs of a model (its grid axes) comes through the parse context (:data:`AXES`).

Examples
--------
>>> spec = positive_float("initial width")
>>> spec.check(0.5, {}) is None, spec.check(-1.0, {})
(True, 'a finite float > 0')
"""

from __future__ import annotations

import difflib
import math
import re
import reprlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = [
    "INF",
    "REQUIRED",
    "ConfigError",
    "Context",
    "Derived",
    "Field",
    "allowed",
    "one_of",
    "as_tuple",
    "float_pairs",
    "toml_kind",
    "short_repr",
    "is_finite_number",
    "pairs",
    "increasing",
    "int_list",
    "positive_float",
    "finite_float",
    "int_at_least",
    "vector",
    "check_bounds",
    "AXES",
    "axis_count",
    "naming",
    "resolve_value",
    "unknown_key",
]

Context = dict[str, dict[str, Any]]
"""Sections resolved so far (the section being resolved holds the keys done so far)."""
Check = Callable[[Any, Context], "str | None"]
Convert = Callable[[Any, Context], Any]

#: ``math.inf``, the TOML ``inf`` (a noiseless ``dynamics.beta``, an unbounded check)
INF = math.inf
_REPR = reprlib.Repr()
_REPR.maxstring, _REPR.maxother, _REPR.maxlong = 60, 60, 40
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = 6


class ConfigError(ValueError):
    """An invalid run configuration; the message is one line naming the key and what is allowed."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).splitlines()))


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()
"""Marks a :class:`Field` without a default."""


@dataclass(frozen=True)
class Derived:
    """A default ``fn(ctx)`` computed from the keys resolved before it (may raise)."""

    fn: Callable[[Context], Any]


@dataclass(frozen=True)
class Field:
    """Specification of one configuration key.

    Parameters
    ----------
    types : tuple of str
        Accepted TOML types among ``"integer"``, ``"float"``, ``"string"``, ``"array"``,
        ``"table"``, ``"boolean"``. An integer is accepted for ``"float"`` (and converted) unless
        ``"integer"`` is listed too; booleans are never numbers.
    doc : str
        One-line description, shown when a required key is missing and by
        ``meanfield info --models``.
    default : object
        Raw default (resolved like a user value), a :class:`Derived`, or :data:`REQUIRED`.
    check : callable, optional
        ``check(value, ctx) -> None`` when allowed, else a text saying what is allowed.
    convert : callable, optional
        ``convert(value, ctx) -> resolved value`` applied after the check.
    """

    types: tuple[str, ...]
    doc: str
    default: Any = REQUIRED
    check: Check | None = None
    convert: Convert | None = None


_KINDS = (
    (bool, "boolean"),
    (int, "integer"),
    (float, "float"),
    (str, "string"),
    ((list, tuple), "array"),
    (Mapping, "table"),
)


def toml_kind(value: Any) -> str:
    """TOML type name of a Python value (``bool`` is never a number)."""
    return next((name for types, name in _KINDS if isinstance(value, types)), type(value).__name__)


def is_finite_number(value: Any) -> bool:
    """Whether ``value`` is a TOML integer or float with a finite value."""
    try:
        return toml_kind(value) in ("integer", "float") and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def pairs(value: Any) -> bool:
    """Whether ``value`` is an array of [a, b] pairs of finite numbers."""
    return all(
        toml_kind(p) == "array" and len(p) == 2 and all(map(is_finite_number, p)) for p in value
    )


def float_pairs(value: Any, ctx: Context) -> tuple[tuple[float, float], ...]:
    """Conversion of an array of pairs to a tuple of float pairs."""
    return tuple((float(a), float(b)) for a, b in value)


def short_repr(value: Any) -> str:
    """``repr(value)``, shortened for an error message (long strings, numbers and containers
    are cut with ``...``)."""
    return _REPR.repr(value)


def allowed(text: str, predicate: Callable[[Any], bool]) -> Check:
    """Build a check accepting values that satisfy ``predicate``, else saying ``text``."""

    def check(value: Any, ctx: Context) -> str | None:
        return None if predicate(value) else text

    return check


def one_of(*choices: Any) -> Check:
    """A check accepting exactly ``choices``."""
    return allowed("one of " + ", ".join(repr(c) for c in choices), lambda v: v in choices)


def as_tuple(value: Any, ctx: Context) -> tuple:
    """Conversion of an array (or a lone integer) to a tuple."""
    return (value,) if isinstance(value, int) else tuple(value)


def increasing(values: list) -> bool:
    """Whether ``values`` is strictly increasing."""
    return all(a < b for a, b in zip(values[:-1], values[1:], strict=True))


def int_list(value: Any, lo: int) -> bool:
    """Whether every entry of ``value`` is an integer ``>= lo``."""
    return all(toml_kind(v) == "integer" and v >= lo for v in value)


def positive_float(doc: str, default: Any = REQUIRED) -> Field:
    """A finite float ``> 0``."""
    return Field(("float",), doc, default, allowed("a finite float > 0", lambda v: 0 < v < INF))


def finite_float(doc: str, default: Any = REQUIRED) -> Field:
    """Any finite float."""
    return Field(("float",), doc, default, allowed("a finite float", math.isfinite))


def int_at_least(lo: int, doc: str, default: Any = REQUIRED) -> Field:
    """An integer ``>= lo``."""
    return Field(("integer",), doc, default, allowed(f"an integer >= {lo}", lambda v: v >= lo))


#: the parse context's entry that carries the model's grid: ``ctx[AXES]["count"](model_section)``
#: is the number of PDE grid axes (the parser puts the model entry's ``n_axes`` there)
AXES = "axes"


def axis_count(ctx: Context) -> int:
    """Number of axes of the PDE grid of the model being parsed (0: no PDE), through the parse
    context (``ctx["model"]`` may still be partly resolved: the count reads only the keys its
    model's entry needs, which come first)."""
    return int(ctx[AXES]["count"](ctx["model"]))


def vector(
    lo: float | None,
    doc: str,
    default: Any = REQUIRED,
    *,
    strict: bool = True,
    length: Callable[[Context], int] | None = None,
) -> Field:
    """A float, or an array of one float per axis (``length(ctx)`` entries, default the model's
    grid axes), each ``> lo`` (``>= lo`` when not ``strict``; ``lo = None``: any finite float)."""
    bound = "" if lo is None else f" {'>' if strict else '>='} {lo:g}"

    def ok(v: Any) -> bool:
        if not is_finite_number(v):
            return False
        return lo is None or (v > lo if strict else v >= lo)

    def check(value: Any, ctx: Context) -> str | None:
        n = length(ctx) if length is not None else axis_count(ctx)
        text = f"a finite float{bound}, or an array of {n} of them (one per axis)"
        if toml_kind(value) == "array":
            return None if len(value) == n and all(map(ok, value)) else text
        return None if ok(value) else text

    def convert(value: Any, ctx: Context) -> Any:
        return tuple(float(v) for v in value) if toml_kind(value) == "array" else float(value)

    return Field(("float", "array"), doc, default, check, convert)


def check_bounds(value: Any, ctx: Context) -> str | None:
    """``pde.bounds``: one pair ``[lo, hi]`` with ``lo < hi`` per axis of the model's grid."""
    n_axes = axis_count(ctx)
    text = f"an array of {n_axes} pairs [lo, hi] of finite numbers with lo < hi (one per axis)"
    ok = len(value) == n_axes and pairs(value) and all(lo < hi for lo, hi in value)
    return None if ok else text


# ----------------------------------------------------------------------------- naming the keys


@contextmanager
def naming(
    keys: str, hint: str = "", *, errors: tuple[type[Exception], ...] = (ValueError,)
) -> Iterator[None]:
    """Turn an error of ``errors`` raised inside into a :class:`ConfigError` whose message
    starts with ``keys`` (the config keys that hold the rejected value) and ends with ``hint``
    (what would be accepted). A :class:`ConfigError` passes unchanged.

    The model, law, grid and particle classes raise plain ``ValueError``: they are used from
    Python too and know nothing of config keys; this is where a config's values become them.
    """
    try:
        yield
    except ConfigError:
        raise
    except errors as err:
        text = str(err)
        message = text if text.startswith(keys) or _KEY_FIRST.match(text) else f"{keys}: {text}"
        raise ConfigError(message + (f"; {hint}" if hint else "")) from err


#: a message that already starts with a config key (``init.d: ...``, ``particles.engine = ...``)
_KEY_FIRST = re.compile(r"(model|init|dynamics|pde|particles|study)\.[a-z_0-9]+\b")


# ----------------------------------------------------------------------------- resolving a key


def resolve_value(where: str, spec: Field, value: Any, ctx: Context) -> Any:
    """Type-check, check and convert one raw value of key ``where`` (``section.key``): the one
    resolution of a key, for the run configs and for the experiments' own sections."""
    kind = toml_kind(value)
    if kind == "integer" and "float" in spec.types and "integer" not in spec.types:
        try:
            value, kind = float(value), "float"
        except OverflowError:
            raise ConfigError(
                f"invalid value for {where!r}: {short_repr(value)}; allowed: a float-sized number"
            ) from None
    if kind not in spec.types:
        raise ConfigError(
            f"wrong type for {where!r}: got {kind} {short_repr(value)}, "
            f"expected {' or '.join(spec.types)}"
        )
    message = spec.check(value, ctx) if spec.check is not None else None
    if message is not None:
        raise ConfigError(f"invalid value for {where!r}: {short_repr(value)}; allowed: {message}")
    return spec.convert(value, ctx) if spec.convert is not None else value


def unknown_key(section: str, key: str, allowed_keys: Any) -> ConfigError:
    """The error for ``section.key`` not among ``allowed_keys``, with the closest one."""
    close = difflib.get_close_matches(str(key), list(allowed_keys), n=1)
    hint = (
        f"did you mean '{section}.{close[0]}'?"
        if close
        else (f"allowed keys in [{section}]: " + ", ".join(allowed_keys))
    )
    return ConfigError(f"unknown key '{section}.{key}'; {hint}")
