"""The configuration schema: the keys every model shares, as data (no parsing here).

:data:`SCHEMA` maps each section to the keys every model shares; each model adds its own keys
in its module (its :class:`~meanfield.model.registry.ModelEntry`), so :data:`MODEL_SCHEMA` and
:data:`REDUCED_DIM` are read-only views of the registry's built-in models. Every key is a frozen
:class:`Field` (:mod:`meanfield.fields`): accepted TOML types, a default or
:data:`REQUIRED`, a check returning what is allowed, a conversion, a one-line doc.
:mod:`meanfield.config` walks it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from ..fields import (
    INF,
    REQUIRED,
    ConfigError,
    Context,
    Derived,
    Field,
    allowed,
    as_tuple,
    axis_count,
    increasing,
    int_at_least,
    int_list,
    is_finite_number,
    one_of,
    positive_float,
    short_repr,
    toml_kind,
)
from ..model.registry import ModelEntry, builtin_entries, entry_point_names, model_entry

__all__ = [
    "REQUIRED",
    "SCHEMA",
    "MODEL_SCHEMA",
    "REDUCED_DIM",
    "SECTION_ORDER",
    "REQUIRED_SECTIONS",
    "OBSERVABLES",
    "OBSERVABLES_MULTI",
    "ConfigError",
    "Derived",
    "Field",
    "Context",
    "reduced_dim",
    "toml_kind",
    "short_repr",
    "model_keys",
    "describe_models",
]

MAX_SAVE_COUNT = 1_000_000


def reduced_dim(model: Mapping[str, Any]) -> int:
    """Number of axes of the PDE grid of a resolved ``[model]`` section (0: no PDE), from the
    model's registry entry."""
    return model_entry(model["name"]).n_axes(model)


SECTION_ORDER = ("model", "init", "dynamics", "pde", "particles", "study")
REQUIRED_SECTIONS = ("model", "init", "dynamics")


# ----------------------------------------------------------------------------- key checks


def _check_model_name(value: Any, ctx: Context) -> str | None:
    """A built-in name, an entry point, or ``module:Attribute`` (loaded here: a module that
    fails to import raises a :class:`ConfigError` naming ``model.name``)."""
    model_entry(value)
    return None


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
    ok = len(value) >= 1 and all(is_finite_number(v) for v in value)
    ok = ok and increasing(list(value)) and 0 <= value[0] and value[-1] <= t_end
    return None if ok else text


def _convert_save_times(value: Any, ctx: Context) -> tuple[float, ...]:
    if toml_kind(value) == "array":
        return tuple(float(v) for v in value)
    t_end, count = ctx["dynamics"]["t_end"], value["count"]
    return tuple(t_end * i / (count - 1) for i in range(count))


def _check_xi(value: Any, ctx: Context) -> str | None:
    text = (
        "a float > 0, or a table {power = p, offset = t0} with -1 < p <= 0 and t0 >= 0 "
        "(offset default 0.0), meaning xi(t) = (t + t0)^p"
    )
    if toml_kind(value) == "float":
        return None if 0 < value < INF else text
    keys_ok = "power" in value and set(value) <= {"power", "offset"}
    power, offset = value.get("power"), value.get("offset", 0.0)
    ok = keys_ok and is_finite_number(power) and is_finite_number(offset)
    return None if ok and -1 < power <= 0 and offset >= 0 else text


def _convert_xi(value: Any, ctx: Context) -> Any:
    if toml_kind(value) == "float":
        return value
    return {"power": float(value["power"]), "offset": float(value.get("offset", 0.0))}


def _check_cells(value: Any, ctx: Context) -> str | None:
    n_axes = axis_count(ctx)
    text = (
        f"an integer >= 2, or an array of {n_axes} integers >= 2 "
        f"(one per axis of model {ctx['model']['name']!r})"
    )
    if toml_kind(value) == "integer":
        return None if value >= 2 and n_axes == 1 else text
    return None if len(value) == n_axes and int_list(value, 2) else text


def _check_method(value: Any, ctx: Context) -> str | None:
    if value not in PDE_METHODS:
        return "one of " + ", ".join(repr(m) for m in PDE_METHODS)
    beta = ctx["dynamics"].get("beta", INF)
    if value == "characteristics" and beta < INF:
        return (
            f"'grid', since dynamics.beta = {beta:g}: the characteristics solver moves "
            "points along the noiseless flow (dynamics.beta = inf)"
        )
    return None


#: initial points per axis of the characteristics solver's rule, by number of axes
DEFAULT_POINTS = {1: 128, 2: 48, 3: 20, 4: 12}


def _default_points(ctx: Context) -> Any:
    n_axes = axis_count(ctx)
    value = DEFAULT_POINTS.get(n_axes, 8) // ctx["pde"]["gauss"] * ctx["pde"]["gauss"]
    return value if n_axes == 1 else [value] * n_axes


def _check_points(value: Any, ctx: Context) -> str | None:
    n_axes, gauss = axis_count(ctx), ctx["pde"]["gauss"]
    text = (
        f"a positive multiple of pde.gauss = {gauss}, or an array of {n_axes} of them "
        f"(one per axis of model {ctx['model']['name']!r})"
    )
    values = [value] if toml_kind(value) == "integer" else list(value)
    if toml_kind(value) == "integer" and n_axes != 1:
        return text
    ok = len(values) == n_axes and int_list(values, gauss) and all(v % gauss == 0 for v in values)
    return None if ok else text


def _check_refine(value: Any, ctx: Context) -> str | None:
    if not 0 <= value < 1:
        return "a float with 0 <= refine < 1 (0: no refinement)"
    if value > 0 and ctx["pde"]["gauss"] < 2:
        return "0, since pde.gauss = 1 (a cell's stretch is measured between its Gauss nodes)"
    return None


def _check_study_n(value: Any, ctx: Context) -> str | None:
    ok = len(value) >= 1 and int_list(value, 1) and increasing(list(value))
    return None if ok else "a non-empty array of integers >= 1, strictly increasing"


#: the discretisations of the DD (``pde.method``)
PDE_METHODS = ("grid", "characteristics")

OBSERVABLES = ("risk", "mean_r", "second_moment_r", "w1", "ks")
#: the observables of models whose grid has 2 or more axes: "mean" gives one table per axis
OBSERVABLES_MULTI = ("risk", "mean", "sliced_w1")


def _observables_for(ctx: Context) -> tuple[str, ...]:
    return OBSERVABLES if axis_count(ctx) <= 1 else OBSERVABLES_MULTI


def _check_observables(value: Any, ctx: Context) -> str | None:
    names = _observables_for(ctx)
    ok = len(value) >= 1 and all(isinstance(v, str) and v in names for v in value)
    ok = ok and len(set(value)) == len(value)
    where = f" (model {ctx['model']['name']!r})"
    return None if ok else "a non-empty array of distinct names from " + ", ".join(names) + where


def _default_observables(ctx: Context) -> tuple[str, ...]:
    return ("risk", "mean_r", "w1") if axis_count(ctx) <= 1 else OBSERVABLES_MULTI


# ----------------------------------------------------------------------------- the schema

_FLOAT = ("float",)
_STR = ("string",)
_BACKENDS = ("auto", "numpy", "cupy")
_INT = ("integer",)


SCHEMA: Mapping[str, Mapping[str, Field]] = MappingProxyType(
    {
        "model": {
            "name": Field(
                _STR,
                "model family: a built-in name (meanfield info --models), or "
                "'package.module:Attribute' of a model of your own",
                check=_check_model_name,
            ),
        },
        "init": {},
        "dynamics": {
            "t_end": positive_float("final time of the dynamics"),
            "save_times": Field(
                ("array", "table"),
                "output times, or {count = N} evenly spaced",
                {"count": 11},
                _check_save_times,
                _convert_save_times,
            ),
            "xi": Field(
                ("float", "table"),
                "step-size schedule xi(t): constant or (t + offset)^power",
                1.0,
                _check_xi,
                _convert_xi,
            ),
            "beta": Field(_FLOAT, "inverse temperature (inf = noiseless)", INF, _check_beta),
            "l2": Field(
                _FLOAT,
                "l2 penalty lambda",
                0.0,
                allowed("a finite float >= 0", lambda v: 0 <= v < INF),
            ),
        },
        "pde": {
            "method": Field(
                _STR,
                "discretisation: 'grid' (finite volumes, any beta) or "
                "'characteristics' (weighted points moved along the noiseless flow)",
                "grid",
                _check_method,
            ),
            "cells": Field(
                ("integer", "array"),
                "cells per axis (characteristics: of the grid the density is reported on)",
                check=_check_cells,
                convert=as_tuple,
            ),
            "order": Field(_INT, "reconstruction order", 2, one_of(1, 2)),
            "limiter": Field(
                _STR, "slope limiter for order 2", "mc", one_of("minmod", "mc", "vanleer")
            ),
            "backend": Field(_STR, "array backend", "auto", one_of(*_BACKENDS)),
            "cfl": Field(
                _FLOAT,
                "fraction of the scheme's positivity bound on dt",
                0.8,
                allowed("a float with 0 < cfl <= 1", lambda v: 0 < v <= 1),
            ),
            "dtype": Field(
                _STR, "floating-point type of the density", "float64", one_of("float64", "float32")
            ),
            "gauss": Field(
                _INT,
                "characteristics: Gauss nodes per axis in each cell of the initial rule",
                2,
                one_of(1, 2, 3, 4),
            ),
            "points": Field(
                ("integer", "array"),
                "characteristics: initial points per axis (cells x gauss)",
                Derived(_default_points),
                _check_points,
                as_tuple,
            ),
            "scheme": Field(
                _STR, "characteristics: embedded Runge-Kutta pair", "dp5", one_of("dp5", "bs3")
            ),
            "tol": Field(
                _FLOAT,
                "characteristics: local error of every point per step, relative to the box width",
                1e-7,
                allowed("a float with 0 < tol <= 1e-2", lambda v: 0 < v <= 1e-2),
            ),
            "refine": Field(
                _FLOAT,
                "characteristics: largest stretch a cell of the initial rule "
                "may keep, relative to the box width (0: no refinement)",
                0.01,
                _check_refine,
            ),
            "refine_passes": int_at_least(
                1, "characteristics: most runs from t = 0 while refining", 6
            ),
            "risk_tol": positive_float(
                "characteristics: refinement stops once the risk at every "
                "output time moves less than this between passes",
                1e-6,
            ),
            "max_points": int_at_least(
                1, "characteristics: most points of a refined rule", 1_000_000
            ),
            "outside_tol": Field(
                _FLOAT,
                "characteristics: most weight of the points allowed "
                "outside the box (the kernel is certified on the box)",
                1e-4,
                allowed("a float with 0 <= outside_tol < 1", lambda v: 0 <= v < 1),
            ),
        },
        "particles": {
            "n": int_at_least(1, "number of particles (network width)"),
            "replicas": int_at_least(1, "independent replicas", 1),
            "method": Field(
                _STR, "particle dynamics", "online_sgd", one_of("online_sgd", "gd", "noisy_sgd")
            ),
            "step": positive_float("step eps: step k is PDE time k * eps"),
            "batch": int_at_least(1, "samples per SGD step", 1),
            "seed": int_at_least(0, "base random seed", 0),
            "backend": Field(_STR, "array backend", "auto", one_of(*_BACKENDS)),
            "quench_batch": int_at_least(0, "batch after quench_time (0: no quench)", 0),
            "quench_time": Field(
                _FLOAT,
                "time at which the batch becomes quench_batch",
                0.0,
                allowed("a finite float >= 0", lambda v: 0 <= v < INF),
            ),
            "test_points": int_at_least(
                2, "fresh test points per record (models with no exact risk)", 10000
            ),
            "keep_theta": Field(("boolean",), "store full theta snapshots", False),
            "engine": Field(
                _STR,
                "particle engine: compiled kernels (numba, CPU) or the NumPy "
                "array code; auto takes the compiled one where it applies",
                "auto",
                one_of("auto", "compiled", "numpy"),
            ),
            "dtype": Field(
                _STR,
                "floating type of the particles (float32 needs the compiled engine)",
                "float64",
                one_of("float64", "float32"),
            ),
        },
        "study": {
            "n": Field(
                ("array",), "swept particle numbers", check=_check_study_n, convert=as_tuple
            ),
            "replicas": int_at_least(2, "replicas per n", 32),
            "observables": Field(
                ("array",),
                "observables measured",
                Derived(_default_observables),
                _check_observables,
                as_tuple,
            ),
        },
    }
)
"""Section -> key -> :class:`Field`, for the keys every model shares."""


class _RegistryView(Mapping):
    """A read-only, live view of the built-in models' registry entries."""

    def __init__(self, value: Callable[[ModelEntry], Any]) -> None:
        self._value = value

    def __getitem__(self, name: str) -> Any:
        return self._value(builtin_entries()[name])

    def __iter__(self) -> Iterator[str]:
        return iter(builtin_entries())

    def __len__(self) -> int:
        return len(builtin_entries())


MODEL_SCHEMA: Mapping[str, Mapping[str, Mapping[str, Field]]] = _RegistryView(
    lambda entry: entry.keys
)
"""Model name -> section -> key -> :class:`Field`, for keys only that model uses."""

REDUCED_DIM: Mapping[str, int | Callable[[Mapping[str, Any]], int]] = _RegistryView(
    lambda entry: entry.reduced_dim if entry.pde else 0
)
"""Number of axes of each model's PDE grid: a number, or a function of the resolved
``[model]`` section (see :func:`reduced_dim`)."""


def model_keys(section: str, model_name: str) -> dict[str, Field]:
    """The keys of ``section`` for model ``model_name``: the shared ones, then the model's."""
    return {**SCHEMA[section], **model_entry(model_name).fields(section)}


# ----------------------------------------------------------------------------- description


def _default_text(spec: Field) -> str:
    if spec.default is REQUIRED:
        return "required"
    if isinstance(spec.default, Derived):
        return "default derived"
    return f"default {short_repr(spec.default)}"


def describe_models(names: Iterable[str] = ()) -> str:
    """Text listing each model (all built-in and installed ones when ``names`` is empty) with
    what it offers and its keys: ``section.key  types, default  help``."""
    listing = not names
    names = list(names) or [*builtin_entries(), *entry_point_names()]
    blocks = []
    for name in names:
        try:
            entry = model_entry(name)
        except ConfigError as err:
            if not listing:
                raise
            blocks.append(f"{name}: cannot be loaded: {err}")
            continue
        axes = (
            "axes set by [model]" if callable(entry.reduced_dim) else f"{entry.reduced_dim}-D grid"
        )
        offers = [f"PDE ({axes})" if entry.pde else "no PDE"] + (
            ["particles"] if entry.particles else []
        )
        lines = [f"{name}: {entry.doc}" if entry.doc else name, f"  offers: {', '.join(offers)}"]
        for section in SECTION_ORDER:
            for key, spec in entry.fields(section).items():
                lines.append(
                    f"  {section + '.' + key:<22} {' or '.join(spec.types)}, "
                    f"{_default_text(spec)}: {spec.doc}"
                )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
