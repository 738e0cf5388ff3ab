"""Config keys that several models share, for their registry entries.

* the Gaussian-mixture keys of Mei, Montanari and Nguyen's models (``d``, ``delta``,
  ``activation``, ``kernel_tol``; ``[init] kappa, d``) and their cross-section rule on ``s0``;
* the sections of a model whose grid is its parameter space: ``[init] mean, std`` (independent
  normal coordinates, :func:`normal_law`) and ``[pde] bounds`` (:data:`FULL_GRID_SECTIONS`),
  which a user model may reuse as they are.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..fields import (
    INF,
    ConfigError,
    Context,
    Derived,
    Field,
    allowed,
    check_bounds,
    float_pairs,
    increasing,
    pairs,
    positive_float,
    vector,
)
from .laws import NormalLaw
from .registry import model_entry

__all__ = [
    "FULL_GRID_AXES",
    "FULL_GRID_SECTIONS",
    "normal_law",
    "mmn_model_keys",
    "MMN_INIT",
    "check_dimension",
    "to_dimension",
    "check_s0",
    "check_s0_init_d",
    "finite_init_d",
    "KERNEL_TOL_HINT",
]

#: axes of the full-grid solvable models (the solver has no limit; 4-D is the largest tested,
#: ``tests/meanfield/test_grid_4d.py``, and a 4-D grid of n cells per axis holds n^4 cells)
FULL_GRID_AXES = (1, 2, 3, 4)

#: what a model's kernel tolerance that cannot be met on the box allows instead
KERNEL_TOL_HINT = "allowed: a larger model.kernel_tol (at most 1e-3), or a smaller {box}"


def check_dimension(allow_inf: bool) -> Any:
    """Integers >= 2 (integral floats too), and inf when ``allow_inf``."""
    return allowed(
        "an integer >= 2" + (", or inf" if allow_inf else " (finite)"),
        lambda v: (v == INF and allow_inf) or (v >= 2 and (isinstance(v, int) or v.is_integer())),
    )


def to_dimension(value: Any, ctx: Context) -> int | float:
    return value if value == INF else int(value)


def _init_d_default(ctx: Context) -> Any:
    model_d = ctx["model"]["d"]
    if model_d == INF:
        raise ConfigError(
            "missing required key 'init.d': model.d = inf, and the initial law "
            "w ~ N(0, kappa^2 I/d) needs a finite d (give e.g. init.d = 40)"
        )
    return model_d


def _check_activation(value: Any, ctx: Context) -> str | None:
    text = (
        "'mmn', 'mmn_nonmonotone', or knots [[t, s], ...]: >= 2 pairs of finite numbers, "
        "t strictly increasing"
    )
    if isinstance(value, str):
        return None if value in ("mmn", "mmn_nonmonotone") else text
    ok = len(value) >= 2 and pairs(value) and increasing([p[0] for p in value])
    return None if ok else text


def _convert_activation(value: Any, ctx: Context) -> Any:
    return value if isinstance(value, str) else float_pairs(value, ctx)


def check_s0(value: Any, ctx: Context) -> str | None:
    """``model.s0``: ``1 <= s0 <= d - 1``."""
    d = ctx["model"]["d"]
    if d == INF:
        return None if value >= 1 else "an integer >= 1"
    return None if 1 <= value <= d - 1 else f"an integer with 1 <= s0 <= d - 1 = {d - 1}"


def check_s0_init_d(ctx: Context) -> None:
    """The law of ``(r1, r2)`` splits ``w`` into ``s0`` and ``d - s0`` coordinates."""
    model = ctx["model"]
    if not model["s0"] <= ctx["init"]["d"] - 1:
        raise ConfigError(
            f"invalid value for 'init.d': {ctx['init']['d']}; allowed: an integer "
            f">= model.s0 + 1 = {model['s0'] + 1} (the law of (r1, r2) splits w "
            "into s0 and d - s0 coordinates)"
        )


def finite_init_d(model_spec: Mapping[str, Any], init: Mapping[str, Any]) -> int:
    """``init.d`` (default ``model.d``) as an integer; ``ValueError`` when infinite."""
    d = init.get("d", model_spec["d"])
    if not math.isfinite(float(d)):
        raise ValueError(
            "init.d = inf: the initial law w ~ N(0, kappa^2 I/d) needs a finite "
            "d; allowed: an integer >= 2"
        )
    return int(d)


def mmn_model_keys(kernel_tol: float, **extra: Field) -> dict[str, Field]:
    """``[model]`` keys of MMN's Gaussian-mixture models (``extra`` after ``d``)."""
    return {
        "d": Field(
            ("integer", "float"),
            "input dimension (inf allowed)",
            check=check_dimension(True),
            convert=to_dimension,
        ),
        **extra,
        "delta": Field(
            ("float",),
            "class separation Delta",
            check=allowed("a float with 0 < delta < 1", lambda v: 0 < v < 1),
        ),
        "activation": Field(
            ("string", "array"),
            "activation s(t): name or knots [[t, s], ...]",
            "mmn",
            _check_activation,
            _convert_activation,
        ),
        "kernel_tol": Field(
            ("float",),
            "error bound of the kernel expansion",
            kernel_tol,
            allowed("a float with 0 < kernel_tol <= 1e-3", lambda v: 0 < v <= 1e-3),
        ),
    }


MMN_INIT = {
    "kappa": positive_float("initial width: w ~ N(0, kappa^2 I/d)"),
    "d": Field(
        ("integer", "float"),
        "dimension of the initial law (default model.d)",
        Derived(_init_d_default),
        check_dimension(False),
        to_dimension,
    ),
}
"""``[init]`` of MMN's models: ``w ~ N(0, kappa^2 I_d / d)``."""

FULL_GRID_SECTIONS = {
    "init": {
        "mean": vector(None, "initial mean of theta", 0.0),
        "std": vector(0.0, "initial standard deviation of theta"),
    },
    "pde": {
        "bounds": Field(
            ("array",),
            "grid bounds [[lo, hi], ...], one pair per axis of theta",
            check=check_bounds,
            convert=float_pairs,
        ),
    },
}
"""``[init]`` (independent normal coordinates) and ``[pde]`` of the models on the full grid."""


def _per_axis(value: Any, n: int) -> tuple[float, ...]:
    if isinstance(value, tuple | list):
        return tuple(float(v) for v in value)
    return (float(value),) * n


def normal_law(model_spec: Mapping[str, Any], init: Mapping[str, Any]) -> NormalLaw:
    """The law of :data:`FULL_GRID_SECTIONS`' ``[init]``: ``theta_a ~ N(mean_a, std_a^2)``
    on every axis of the model's grid."""
    n_axes = model_entry(model_spec["name"]).n_axes(model_spec)
    return NormalLaw(
        mean=_per_axis(init.get("mean", 0.0), n_axes), std=_per_axis(init["std"], n_axes)
    )
