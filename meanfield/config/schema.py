"""The configuration schema: the keys every model shares, as data (no parsing here).

:data:`SCHEMA` maps each section to the keys every model shares; each model adds its own keys
in its module (its :class:`~meanfield.model.registry.ModelEntry`), so :data:`MODEL_SCHEMA` and
:data:`REDUCED_DIM` are read-only views of the registry's built-in models. Every key is a frozen
:class:`Field` (:mod:`meanfield.config.fields`): accepted TOML types, a default or
:data:`REQUIRED`, a check returning what is allowed, a conversion, a one-line doc.
:mod:`meanfield.config` walks it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from ..model.registry import ModelEntry, builtin_entries, entry_point_names, model_entry
from .fields import (
    INF,
    REQUIRED,
    ConfigError,
    Context,
    Derived,
    Field,
    allowed,
    as_tuple,
    increasing,
    int_at_least,
    int_list,
    is_finite_number,
    one_of,
    positive_float,
    reduced_dim,
    short_repr,
    toml_kind,
)

__all__ = ["REQUIRED", "SCHEMA", "MODEL_SCHEMA", "REDUCED_DIM", "SECTION_ORDER",
           "REQUIRED_SECTIONS", "OBSERVABLES", "OBSERVABLES_MULTI", "ConfigError", "Derived",
           "Field", "Context", "reduced_dim", "toml_kind", "short_repr", "model_keys",
           "describe_models"]

MAX_SAVE_COUNT = 1_000_000
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
    text = ("a float > 0, or a table {power = p, offset = t0} with -1 < p <= 0 and t0 >= 0 "
            "(offset default 0.0), meaning xi(t) = (t + t0)^p")
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
    n_axes = reduced_dim(ctx["model"])
    text = (f"an integer >= 2, or an array of {n_axes} integers >= 2 "
            f"(one per axis of model {ctx['model']['name']!r})")
    if toml_kind(value) == "integer":
        return None if value >= 2 and n_axes == 1 else text
    return None if len(value) == n_axes and int_list(value, 2) else text


def _check_study_n(value: Any, ctx: Context) -> str | None:
    ok = len(value) >= 1 and int_list(value, 1) and increasing(list(value))
    return None if ok else "a non-empty array of integers >= 1, strictly increasing"


OBSERVABLES = ("risk", "mean_r", "second_moment_r", "w1", "ks")
#: the observables of models whose grid has 2 or more axes: "mean" gives one table per axis
OBSERVABLES_MULTI = ("risk", "mean", "sliced_w1")


def _observables_for(ctx: Context) -> tuple[str, ...]:
    return OBSERVABLES if reduced_dim(ctx["model"]) <= 1 else OBSERVABLES_MULTI


def _check_observables(value: Any, ctx: Context) -> str | None:
    names = _observables_for(ctx)
    ok = len(value) >= 1 and all(isinstance(v, str) and v in names for v in value)
    ok = ok and len(set(value)) == len(value)
    where = f" (model {ctx['model']['name']!r})"
    return None if ok else "a non-empty array of distinct names from " + ", ".join(names) + where


def _default_observables(ctx: Context) -> tuple[str, ...]:
    return ("risk", "mean_r", "w1") if reduced_dim(ctx["model"]) <= 1 else OBSERVABLES_MULTI


# ----------------------------------------------------------------------------- the schema

_FLOAT = ("float",)
_STR = ("string",)
_BACKENDS = ("auto", "numpy", "cupy")
_INT = ("integer",)


SCHEMA: Mapping[str, Mapping[str, Field]] = MappingProxyType({
    "model": {
        "name": Field(_STR, "model family: a built-in name (meanfield info --models), or "
                      "'package.module:Attribute' of a model of your own",
                      check=_check_model_name),
    },
    "init": {},
    "dynamics": {
        "t_end": positive_float("final time of the dynamics"),
        "save_times": Field(("array", "table"), "output times, or {count = N} evenly spaced",
                            {"count": 11}, _check_save_times, _convert_save_times),
        "xi": Field(("float", "table"), "step-size schedule xi(t): constant or (t + offset)^power",
                    1.0, _check_xi, _convert_xi),
        "beta": Field(_FLOAT, "inverse temperature (inf = noiseless)", INF, _check_beta),
        "l2": Field(_FLOAT, "l2 penalty lambda", 0.0,
                    allowed("a finite float >= 0", lambda v: 0 <= v < INF)),
    },
    "pde": {
        "cells": Field(("integer", "array"), "cells per axis", check=_check_cells,
                       convert=as_tuple),
        "order": Field(_INT, "reconstruction order", 2, one_of(1, 2)),
        "limiter": Field(_STR, "slope limiter for order 2", "mc",
                         one_of("minmod", "mc", "vanleer")),
        "backend": Field(_STR, "array backend", "auto", one_of(*_BACKENDS)),
        "cfl": Field(_FLOAT, "fraction of the scheme's positivity bound on dt", 0.8,
                     allowed("a float with 0 < cfl <= 1", lambda v: 0 < v <= 1)),
        "dtype": Field(_STR, "floating-point type of the density", "float64",
                       one_of("float64", "float32")),
    },
    "particles": {
        "n": int_at_least(1, "number of particles (network width)"),
        "replicas": int_at_least(1, "independent replicas", 1),
        "method": Field(_STR, "particle dynamics", "online_sgd",
                        one_of("online_sgd", "gd", "noisy_sgd")),
        "step": positive_float("step eps: step k is PDE time k * eps"),
        "batch": int_at_least(1, "samples per SGD step", 1),
        "seed": int_at_least(0, "base random seed", 0),
        "backend": Field(_STR, "array backend", "auto", one_of(*_BACKENDS)),
        "quench_batch": int_at_least(0, "batch after quench_time (0: no quench)", 0),
        "quench_time": Field(_FLOAT, "time at which the batch becomes quench_batch", 0.0,
                             allowed("a finite float >= 0", lambda v: 0 <= v < INF)),
        "test_points": int_at_least(2, "fresh test points per record (models with no exact "
                                        "risk)", 10000),
        "keep_theta": Field(("boolean",), "store full theta snapshots", False),
        "engine": Field(_STR, "particle engine: compiled kernels (numba, CPU) or the NumPy "
                        "array code; auto takes the compiled one where it applies", "auto",
                        one_of("auto", "compiled", "numpy")),
        "dtype": Field(_STR, "floating type of the particles (float32 needs the compiled "
                       "engine)", "float64", one_of("float64", "float32")),
    },
    "study": {
        "n": Field(("array",), "swept particle numbers", check=_check_study_n,
                   convert=as_tuple),
        "replicas": int_at_least(2, "replicas per n", 32),
        "observables": Field(("array",), "observables measured",
                             Derived(_default_observables), _check_observables, as_tuple),
    },
})
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
    lambda entry: entry.keys)
"""Model name -> section -> key -> :class:`Field`, for keys only that model uses."""

REDUCED_DIM: Mapping[str, int | Callable[[Mapping[str, Any]], int]] = _RegistryView(
    lambda entry: entry.reduced_dim if entry.pde else 0)
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
        axes = ("axes set by [model]" if callable(entry.reduced_dim)
                else f"{entry.reduced_dim}-D grid")
        offers = [f"PDE ({axes})" if entry.pde else "no PDE"] + (
            ["particles"] if entry.particles else [])
        lines = [f"{name}: {entry.doc}" if entry.doc else name,
                 f"  offers: {', '.join(offers)}"]
        for section in SECTION_ORDER:
            for key, spec in entry.fields(section).items():
                lines.append(f"  {section + '.' + key:<22} {' or '.join(spec.types)}, "
                             f"{_default_text(spec)}: {spec.doc}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
