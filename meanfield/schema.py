"""The configuration schema: every key of every section, as data (no parsing here).

:data:`SCHEMA` maps each section to the keys every model shares, :data:`MODEL_SCHEMA` adds the
keys that only one model uses, and :data:`REDUCED_DIM` gives each model's number of grid axes.
Every key is a frozen :class:`Field`: accepted TOML types, a default or :data:`REQUIRED`, a check
returning what is allowed, a conversion, a one-line doc. :mod:`meanfield.config` walks it.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

__all__ = ["REQUIRED", "SCHEMA", "MODEL_SCHEMA", "REDUCED_DIM", "SECTION_ORDER",
           "REQUIRED_SECTIONS", "OBSERVABLES", "OBSERVABLES_MULTI", "ConfigError", "Derived",
           "Field", "Context", "reduced_dim", "toml_kind", "short_repr"]

Context = dict[str, dict[str, Any]]
"""Sections resolved so far (the section being resolved holds the keys done so far)."""
Check = Callable[[Any, Context], "str | None"]
Convert = Callable[[Any, Context], Any]

INF = math.inf
MAX_SAVE_COUNT = 1_000_000
SECTION_ORDER = ("model", "init", "dynamics", "pde", "particles", "study")
REQUIRED_SECTIONS = ("model", "init", "dynamics")
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
        ``"table"``. An integer is accepted for ``"float"`` (and converted) unless
        ``"integer"`` is listed too; booleans are never numbers.
    doc : str
        One-line description, shown when a required key is missing.
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


_KINDS = ((bool, "boolean"), (int, "integer"), (float, "float"), (str, "string"),
          ((list, tuple), "array"), (Mapping, "table"))


def toml_kind(value: Any) -> str:
    """TOML type name of a Python value (``bool`` is never a number)."""
    return next((name for types, name in _KINDS if isinstance(value, types)),
                type(value).__name__)


def _is_finite_number(value: Any) -> bool:
    try:
        return toml_kind(value) in ("integer", "float") and math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _pairs(value: Any) -> bool:
    """Whether ``value`` is an array of [a, b] pairs of finite numbers."""
    return all(toml_kind(p) == "array" and len(p) == 2 and all(map(_is_finite_number, p))
               for p in value)


def _float_pairs(value: Any, ctx: Context) -> tuple[tuple[float, float], ...]:
    return tuple((float(a), float(b)) for a, b in value)


short_repr = _REPR.repr


def _allowed(text: str, predicate: Callable[[Any], bool]) -> Check:
    """Build a check accepting values that satisfy ``predicate``, else saying ``text``."""

    def check(value: Any, ctx: Context) -> str | None:
        return None if predicate(value) else text

    return check


def _one_of(*choices: Any) -> Check:
    return _allowed("one of " + ", ".join(repr(c) for c in choices), lambda v: v in choices)


def _as_tuple(value: Any, ctx: Context) -> tuple:
    return (value,) if isinstance(value, int) else tuple(value)


def _increasing(values: list) -> bool:
    return all(a < b for a, b in zip(values[:-1], values[1:], strict=True))


def _int_list(value: Any, lo: int) -> bool:
    return all(toml_kind(v) == "integer" and v >= lo for v in value)


# ----------------------------------------------------------------------------- key checks


def _check_dimension(allow_inf: bool) -> Check:
    """Integers >= 2 (integral floats too), and inf when ``allow_inf``."""
    return _allowed("an integer >= 2" + (", or inf" if allow_inf else " (finite)"),
                    lambda v: (v == INF and allow_inf) or (
                        v >= 2 and (isinstance(v, int) or v.is_integer())))


def _to_dimension(value: Any, ctx: Context) -> int | float:
    return value if value == INF else int(value)


def _init_d_default(ctx: Context) -> Any:
    model_d = ctx["model"]["d"]
    if model_d == INF:
        raise ConfigError("missing required key 'init.d': model.d = inf, and the initial law "
                          "w ~ N(0, kappa^2 I/d) needs a finite d (give e.g. init.d = 40)")
    return model_d


def _check_activation(value: Any, ctx: Context) -> str | None:
    text = ("'mmn', 'mmn_nonmonotone', or knots [[t, s], ...]: >= 2 pairs of finite numbers, "
            "t strictly increasing")
    if isinstance(value, str):
        return None if value in ("mmn", "mmn_nonmonotone") else text
    ok = len(value) >= 2 and _pairs(value) and _increasing([p[0] for p in value])
    return None if ok else text


def _convert_activation(value: Any, ctx: Context) -> Any:
    return value if isinstance(value, str) else _float_pairs(value, ctx)


def _check_beta(value: float, ctx: Context) -> str | None:
    if not value > 0:
        return "a float > 0, or inf (noiseless)"
    if value < INF and ctx["model"].get("d") == INF:
        return "inf only, since model.d = inf (the reduced noisy dynamics needs a finite d)"
    return None


def _check_save_times(value: Any, ctx: Context) -> str | None:
    t_end = ctx["dynamics"]["t_end"]
    if toml_kind(value) == "table":
        text = f"a table {{count = N}} with an integer 2 <= N <= {MAX_SAVE_COUNT}"
        count = value.get("count")
        ok = set(value) == {"count"} and toml_kind(count) == "integer"
        return None if ok and 2 <= count <= MAX_SAVE_COUNT else text
    text = f"a non-empty array of numbers, strictly increasing, within [0, t_end = {t_end!r}]"
    ok = len(value) >= 1 and all(_is_finite_number(v) for v in value)
    ok = ok and _increasing(list(value)) and 0 <= value[0] and value[-1] <= t_end
    return None if ok else text


def _convert_save_times(value: Any, ctx: Context) -> tuple[float, ...]:
    if toml_kind(value) == "array":
        return tuple(float(v) for v in value)
    t_end, count = ctx["dynamics"]["t_end"], value["count"]
    return tuple(t_end * i / (count - 1) for i in range(count))


def _check_xi(value: Any, ctx: Context) -> str | None:
    text = ("a float > 0, or a table {power = p, offset = t0} with -1 < p <= 0 and t0 >= 0 "
            "(offset default 0.0), meaning xi(t) = (t + t0)^p")
    if toml_kind(value) == "float":
        return None if 0 < value < INF else text
    keys_ok = "power" in value and set(value) <= {"power", "offset"}
    power, offset = value.get("power"), value.get("offset", 0.0)
    ok = keys_ok and _is_finite_number(power) and _is_finite_number(offset)
    return None if ok and -1 < power <= 0 and offset >= 0 else text


def _convert_xi(value: Any, ctx: Context) -> Any:
    if toml_kind(value) == "float":
        return value
    return {"power": float(value["power"]), "offset": float(value.get("offset", 0.0))}


def reduced_dim(model: Mapping[str, Any]) -> int:
    """Number of axes of the PDE grid of a resolved ``[model]`` section (0: no PDE)."""
    n_axes = REDUCED_DIM[model["name"]]
    return n_axes(model) if callable(n_axes) else n_axes


def _check_cells(value: Any, ctx: Context) -> str | None:
    n_axes = reduced_dim(ctx["model"])
    text = (f"an integer >= 2, or an array of {n_axes} integers >= 2 "
            f"(one per axis of model {ctx['model']['name']!r})")
    if toml_kind(value) == "integer":
        return None if value >= 2 and n_axes == 1 else text
    return None if len(value) == n_axes and _int_list(value, 2) else text


def _check_bounds(value: Any, ctx: Context) -> str | None:
    n_axes = reduced_dim(ctx["model"])
    text = f"an array of {n_axes} pairs [lo, hi] of finite numbers with lo < hi (one per axis)"
    ok = len(value) == n_axes and _pairs(value) and all(lo < hi for lo, hi in value)
    return None if ok else text


def _check_relu_bounds(value: Any, ctx: Context) -> str | None:
    """:func:`_check_bounds`, and the radii r1, r2 (the last two axes) start at r >= 0."""
    text = ("an array of 4 pairs [lo, hi] of finite numbers with lo < hi, one per axis "
            "(a, b, r1, r2), with lo >= 0 on the r1 and r2 axes")
    if _check_bounds(value, ctx) is not None:
        return text
    return None if all(lo >= 0 for lo, _ in value[2:]) else text


def _vector(lo: float | None, doc: str, default: Any = REQUIRED, *, strict: bool = True,
            length: Callable[[Context], int] | None = None) -> Field:
    """A float, or an array of one float per axis (``length(ctx)`` entries), each ``> lo``
    (``>= lo`` when not ``strict``; ``lo = None``: any finite float)."""
    bound = "" if lo is None else f" {'>' if strict else '>='} {lo:g}"

    def ok(v: Any) -> bool:
        if not _is_finite_number(v):
            return False
        return lo is None or (v > lo if strict else v >= lo)

    def check(value: Any, ctx: Context) -> str | None:
        n = length(ctx) if length is not None else reduced_dim(ctx["model"])
        text = f"a finite float{bound}, or an array of {n} of them (one per axis)"
        if toml_kind(value) == "array":
            return None if len(value) == n and all(map(ok, value)) else text
        return None if ok(value) else text

    def convert(value: Any, ctx: Context) -> Any:
        return tuple(float(v) for v in value) if toml_kind(value) == "array" else float(value)

    return Field(("float", "array"), doc, default, check, convert)


def _teacher_dimension(model: Mapping[str, Any]) -> int:
    return sum(model["input_dim"] if name == "w" else 1 for name in model["trained"])


def _check_trained(value: Any, ctx: Context) -> str | None:
    text = "an array of 1 to 3 distinct names among 'a', 'w', 'b' ('w' counts input_dim axes)"
    ok = (len(value) >= 1 and all(v in ("a", "w", "b") for v in value)
          and len(set(value)) == len(value))
    if not ok:
        return text
    n_axes = sum(ctx["model"]["input_dim"] if v == "w" else 1 for v in value)
    return None if n_axes <= 3 else text + f"; here the grid would have {n_axes} axes"


def _check_target(value: Any, ctx: Context) -> str | None:
    from .model.teacher_student import TARGETS  # names only; no numerics at parse time

    k = ctx["model"]["input_dim"]
    names = [name for name, (_, dim) in TARGETS.items() if dim == k]
    text = (f"one of {', '.join(map(repr, names))} (input_dim = {k}), or a teacher table "
            f"{{a = [...], w = [[...], ...], b = [...], activation = 'tanh'}} with {k} inputs "
            "per unit")
    if isinstance(value, str):
        return None if value in names else text
    if set(value) - {"a", "w", "b", "activation"} or not {"a", "w", "b"} <= set(value):
        return text
    a, w, b = value["a"], value["w"], value["b"]
    ok = (toml_kind(a) == toml_kind(w) == toml_kind(b) == "array"
          and len(a) == len(w) == len(b) >= 1
          and all(map(_is_finite_number, a)) and all(map(_is_finite_number, b))
          and all(toml_kind(row) == "array" and len(row) == k and all(map(_is_finite_number, row))
                  for row in w))
    return None if ok and value.get("activation", "tanh") in _SMOOTH else text


def _convert_target(value: Any, ctx: Context) -> Any:
    if isinstance(value, str):
        return value
    return {"a": tuple(float(v) for v in value["a"]),
            "w": tuple(tuple(float(v) for v in row) for row in value["w"]),
            "b": tuple(float(v) for v in value["b"]),
            "activation": value.get("activation", "tanh")}


def _check_s0(value: Any, ctx: Context) -> str | None:
    d = ctx["model"]["d"]
    if d == INF:
        return None if value >= 1 else "an integer >= 1"
    return None if 1 <= value <= d - 1 else f"an integer with 1 <= s0 <= d - 1 = {d - 1}"


def _check_study_n(value: Any, ctx: Context) -> str | None:
    ok = len(value) >= 1 and _int_list(value, 1) and _increasing(list(value))
    return None if ok else "a non-empty array of integers >= 1, strictly increasing"


OBSERVABLES = ("risk", "mean_r", "second_moment_r", "w1", "ks")
#: the observables of models whose grid has 2 or more axes: "mean" gives one table per axis
OBSERVABLES_MULTI = ("risk", "mean", "sliced_w1")


def _observables_for(ctx: Context) -> tuple[str, ...]:
    return OBSERVABLES if reduced_dim(ctx["model"]) <= 1 else OBSERVABLES_MULTI


def _check_observables(value: Any, ctx: Context) -> str | None:
    allowed = _observables_for(ctx)
    ok = len(value) >= 1 and all(isinstance(v, str) and v in allowed for v in value)
    ok = ok and len(set(value)) == len(value)
    where = f" (model {ctx['model']['name']!r})"
    return None if ok else "a non-empty array of distinct names from " + ", ".join(allowed) + where


def _default_observables(ctx: Context) -> tuple[str, ...]:
    return ("risk", "mean_r", "w1") if reduced_dim(ctx["model"]) <= 1 else OBSERVABLES_MULTI


# ----------------------------------------------------------------------------- the schema

_SMOOTH = ("tanh", "erf", "softplus")
#: axes of the full-grid solvable models (the solver has no limit; 4-D is the largest tested,
#: ``tests/meanfield/test_grid_4d.py``, and a 4-D grid of n cells per axis holds n^4 cells)
_FULL_GRID_AXES = (1, 2, 3, 4)
_FLOAT = ("float",)
_INT = ("integer",)
_STR = ("string",)
_BACKENDS = ("auto", "numpy", "cupy")


def _positive_float(doc: str, default: Any = REQUIRED) -> Field:
    return Field(_FLOAT, doc, default, _allowed("a finite float > 0", lambda v: 0 < v < INF))


def _finite_float(doc: str, default: Any = REQUIRED) -> Field:
    return Field(_FLOAT, doc, default, _allowed("a finite float", math.isfinite))


def _int_at_least(lo: int, doc: str, default: Any = REQUIRED) -> Field:
    return Field(_INT, doc, default, _allowed(f"an integer >= {lo}", lambda v: v >= lo))


def _mmn_model_keys(kernel_tol: float, **extra: Field) -> dict[str, Field]:
    """``[model]`` keys of MMN's Gaussian-mixture models (``extra`` after ``d``)."""
    return {
        "d": Field(("integer", "float"), "input dimension (inf allowed)",
                   check=_check_dimension(True), convert=_to_dimension),
        **extra,
        "delta": Field(_FLOAT, "class separation Delta",
                       check=_allowed("a float with 0 < delta < 1", lambda v: 0 < v < 1)),
        "activation": Field(("string", "array"), "activation s(t): name or knots [[t, s], ...]",
                            "mmn", _check_activation, _convert_activation),
        "kernel_tol": Field(_FLOAT, "error bound of the kernel expansion", kernel_tol,
                            _allowed("a float with 0 < kernel_tol <= 1e-3",
                                     lambda v: 0 < v <= 1e-3)),
    }


_MMN_INIT = {
    "kappa": _positive_float("initial width: w ~ N(0, kappa^2 I/d)"),
    "d": Field(("integer", "float"), "dimension of the initial law (default model.d)",
               Derived(_init_d_default), _check_dimension(False), _to_dimension),
}

#: ``[init]`` (independent normal coordinates) and ``[pde]`` of the models on the full grid
_FULL_GRID_SECTIONS = {
    "init": {
        "mean": _vector(None, "initial mean of theta", 0.0),
        "std": _vector(0.0, "initial standard deviation of theta"),
    },
    "pde": {
        "bounds": Field(("array",), "grid bounds [[lo, hi], ...], one pair per axis of theta",
                        check=_check_bounds, convert=_float_pairs),
    },
}

SCHEMA: Mapping[str, Mapping[str, Field]] = MappingProxyType({
    "model": {
        "name": Field(_STR, "model family",
                      check=_one_of("isotropic_gaussians", "anisotropic_gaussians",
                                    "relu_selection", "teacher_student", "pspin", "quadratic",
                                    "linear_unit", "cosine_interaction")),
    },
    "init": {},
    "dynamics": {
        "t_end": _positive_float("final time of the dynamics"),
        "save_times": Field(("array", "table"), "output times, or {count = N} evenly spaced",
                            {"count": 11}, _check_save_times, _convert_save_times),
        "xi": Field(("float", "table"), "step-size schedule xi(t): constant or (t + offset)^power",
                    1.0, _check_xi, _convert_xi),
        "beta": Field(_FLOAT, "inverse temperature (inf = noiseless)", INF, _check_beta),
        "l2": Field(_FLOAT, "l2 penalty lambda", 0.0,
                    _allowed("a finite float >= 0", lambda v: 0 <= v < INF)),
    },
    "pde": {
        "cells": Field(("integer", "array"), "cells per axis", check=_check_cells,
                       convert=_as_tuple),
        "order": Field(_INT, "reconstruction order", 2, _one_of(1, 2)),
        "limiter": Field(_STR, "slope limiter for order 2", "mc",
                         _one_of("minmod", "mc", "vanleer")),
        "backend": Field(_STR, "array backend", "auto", _one_of(*_BACKENDS)),
        "cfl": Field(_FLOAT, "fraction of the scheme's positivity bound on dt", 0.8,
                     _allowed("a float with 0 < cfl <= 1", lambda v: 0 < v <= 1)),
        "dtype": Field(_STR, "floating-point type of the density", "float64",
                       _one_of("float64", "float32")),
    },
    "particles": {
        "n": _int_at_least(1, "number of particles (network width)"),
        "replicas": _int_at_least(1, "independent replicas", 1),
        "method": Field(_STR, "particle dynamics", "online_sgd",
                        _one_of("online_sgd", "gd", "noisy_sgd")),
        "step": _positive_float("step eps: step k is PDE time k * eps"),
        "batch": _int_at_least(1, "samples per SGD step", 1),
        "seed": _int_at_least(0, "base random seed", 0),
        "backend": Field(_STR, "array backend", "auto", _one_of(*_BACKENDS)),
        "quench_batch": _int_at_least(0, "batch after quench_time (0: no quench)", 0),
        "quench_time": Field(_FLOAT, "time at which the batch becomes quench_batch", 0.0,
                             _allowed("a finite float >= 0", lambda v: 0 <= v < INF)),
        "test_points": _int_at_least(2, "fresh test points per record (models with no exact "
                                        "risk)", 10000),
        "keep_theta": Field(("boolean",), "store full theta snapshots", False),
        "engine": Field(_STR, "particle engine: compiled kernels (numba, CPU) or the NumPy "
                        "array code; auto takes the compiled one where it applies", "auto",
                        _one_of("auto", "compiled", "numpy")),
        "dtype": Field(_STR, "floating type of the particles (float32 needs the compiled "
                       "engine)", "float64", _one_of("float64", "float32")),
    },
    "study": {
        "n": Field(("array",), "swept particle numbers", check=_check_study_n,
                   convert=_as_tuple),
        "replicas": _int_at_least(2, "replicas per n", 32),
        "observables": Field(("array",), "observables measured",
                             Derived(_default_observables), _check_observables, _as_tuple),
    },
})
"""Section -> key -> :class:`Field`, for the keys every model shares."""

MODEL_SCHEMA: Mapping[str, Mapping[str, Mapping[str, Field]]] = MappingProxyType({
    "isotropic_gaussians": {
        "model": _mmn_model_keys(1e-10),
        "init": _MMN_INIT,
        "pde": {"r_max": _positive_float("outer radius of the radial grid [0, r_max]")},
    },
    "anisotropic_gaussians": {
        "model": _mmn_model_keys(1e-8, s0=Field(
            _INT, "number of informative coordinates (1 <= s0 <= d - 1)", check=_check_s0)),
        "init": _MMN_INIT,
        "pde": {"r_max": _positive_float("outer radius of the grid [0, r_max]^2 over (r1, r2)")},
    },
    "relu_selection": {
        "model": {
            "d": Field(("integer", "float"), "input dimension (inf allowed)",
                       check=_check_dimension(True), convert=_to_dimension),
            "s0": Field(_INT, "number of informative coordinates (1 <= s0 <= d - 1)",
                        check=_check_s0),
            "delta": Field(_FLOAT, "class separation Delta",
                           check=_allowed("a float with 0 < delta < 1", lambda v: 0 < v < 1)),
            "kernel_tol": Field(_FLOAT, "error bound of the kernel expansion, relative to "
                                "max U(q, q) on the grid", 1e-8,
                                _allowed("a float with 0 < kernel_tol <= 1e-3",
                                         lambda v: 0 < v <= 1e-3)),
        },
        "init": {
            **_MMN_INIT,
            "a_mean": _finite_float("mean of the initial output weight a"),
            "a_std": _positive_float("standard deviation of the initial output weight a"),
            "b_mean": _finite_float("mean of the initial offset b"),
            "b_std": _positive_float("standard deviation of the initial offset b"),
        },
        "pde": {
            "bounds": Field(("array",), "grid bounds [[lo, hi], ...] over (a, b, r1, r2); "
                            "r1, r2 >= 0", check=_check_relu_bounds, convert=_float_pairs),
        },
    },
    "teacher_student": {
        "model": {
            "input_dim": Field(_INT, "input dimension k of x", 1, _one_of(1, 2)),
            "input_law": Field(_STR, "law of x: N(0, I_k) or uniform on [-1, 1]^k", "gaussian",
                               _one_of("gaussian", "uniform")),
            "target": Field(("string", "table"), "named target f(x) or a teacher network table",
                            check=_check_target, convert=_convert_target),
            "activation": Field(_STR, "student activation", "tanh", _one_of(*_SMOOTH)),
            "trained": Field(("array",), "trained parameters of a act(<w, x> + b), in grid "
                             "axis order", ("w", "b"), _check_trained, _as_tuple),
            "fixed_a": _finite_float("a when not trained", 1.0),
            "fixed_w": _vector(None, "w when not trained (float: every input)", 1.0,
                               length=lambda ctx: ctx["model"]["input_dim"]),
            "fixed_b": _finite_float("b when not trained", 0.0),
            "quad_order": _int_at_least(0, "Gauss nodes per input axis (0: chosen from "
                                           "quad_tol)", 0),
            "quad_tol": Field(_FLOAT, "tolerance of the quadrature order choice", 1e-8,
                              _allowed("a float with 0 < quad_tol <= 1e-3",
                                       lambda v: 0 < v <= 1e-3)),
        },
        **_FULL_GRID_SECTIONS,
    },
    "pspin": {
        "model": {
            "d": _int_at_least(2, "input dimension d (x uniform on the sphere of radius sqrt(d))"),
            "teacher_seed": _int_at_least(0, "seed of the teacher tensor a_pqr", 0),
        },
    },
    "quadratic": {
        "model": {
            "ndim": Field(_INT, "number of axes of theta", 1, _one_of(*_FULL_GRID_AXES)),
            "stiffness": _vector(0.0, "V = stiffness/2 (theta - center)^2, per axis", 1.0),
            "center": _vector(None, "minimiser of V", 0.0),
        },
        **_FULL_GRID_SECTIONS,
    },
    "linear_unit": {
        "model": {
            "theta_star": Field(("array",), "teacher theta_*: y = <theta_*, x> + noise, "
                                "x ~ N(0, I_D), D = 1 to 4 entries",
                                check=_allowed("an array of 1 to 4 finite floats",
                                               lambda v: 1 <= len(v) <= max(_FULL_GRID_AXES)
                                               and all(map(_is_finite_number, v))),
                                convert=lambda v, ctx: tuple(float(x) for x in v)),
            "label_var": Field(_FLOAT, "variance of the label noise", 0.0,
                               _allowed("a finite float >= 0", lambda v: 0 <= v < INF)),
        },
        **_FULL_GRID_SECTIONS,
    },
    "cosine_interaction": {
        "model": {
            "ndim": Field(_INT, "number of axes of theta", 1, _one_of(*_FULL_GRID_AXES)),
            "coupling": Field(_FLOAT, "J in U = J sum_a cos(theta_a - theta'_a)", 1.0,
                              _allowed("a finite float >= 0", lambda v: 0 <= v < INF)),
            "quartic": Field(_FLOAT, "q in V = sum_a q/4 theta^4 + k/2 theta^2 + b theta", 0.0,
                             _allowed("a finite float >= 0", lambda v: 0 <= v < INF)),
            "quadratic": _finite_float("k in V", 1.0),
            "tilt": _finite_float("b in V", 0.0),
        },
        **_FULL_GRID_SECTIONS,
    },
})
"""Model name -> section -> key -> :class:`Field`, for keys only that model uses."""

REDUCED_DIM: Mapping[str, int | Callable[[Mapping[str, Any]], int]] = MappingProxyType({
    "isotropic_gaussians": 1,
    "anisotropic_gaussians": 2,
    "relu_selection": 4,
    "teacher_student": _teacher_dimension,
    "pspin": 0,
    "quadratic": lambda model: model["ndim"],
    "linear_unit": lambda model: len(model["theta_star"]),
    "cosine_interaction": lambda model: model["ndim"],
})
"""Number of axes of each model's PDE grid: a number, or a function of the resolved
``[model]`` section (see :func:`reduced_dim`)."""
