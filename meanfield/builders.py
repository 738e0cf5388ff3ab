"""From a checked :class:`~meanfield.config.Config` to the objects of a run (no numerics here)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import Backend, BackendError, get_backend
from .config import ConfigError, reduced_dim
from .equation import MeanFieldPDE
from .grid import Grid
from .model import (
    AnisotropicGaussians,
    CosineInteraction,
    GridTooSmallError,
    IsotropicGaussians,
    LinearUnit,
    NormalLaw,
    PSpin,
    QuadraticPotential,
    ReducedModel,
    ReluSelection,
    ReluSelectionLaw,
    ScaledChiLaw,
    ScaledChiPairLaw,
    TeacherNetwork,
    TeacherStudent,
    activation_from_spec,
    initial_density,
)
from .model.laws import OUTSIDE_MASS_TOL
from .schedules import TimeChange, time_change_from_spec

__all__ = ["build_model", "build_law", "build_grid", "PDESetup", "build_pde_setup",
           "GridTooSmallConfigError", "naming", "model_from_config", "law_from_config"]


def build_model(spec: Mapping[str, Any], pde: Mapping[str, Any] | None = None) -> ReducedModel:
    """The model named by ``[model]`` (``[pde]``, when given, fixes the box on which a
    quadrature model certifies its accuracy)."""
    name = spec["name"]
    if name == "isotropic_gaussians":
        return IsotropicGaussians(d=float(spec["d"]), delta=float(spec["delta"]),
                                  activation=activation_from_spec(spec.get("activation", "mmn")),
                                  kernel_tol=float(spec.get("kernel_tol", 1e-10)))
    if name == "anisotropic_gaussians":
        return AnisotropicGaussians(d=float(spec["d"]), s0=float(spec["s0"]),
                                    delta=float(spec["delta"]),
                                    activation=activation_from_spec(spec.get("activation", "mmn")),
                                    kernel_tol=float(spec.get("kernel_tol", 1e-8)))
    if name == "relu_selection":
        return ReluSelection(d=float(spec["d"]), s0=float(spec["s0"]), delta=float(spec["delta"]),
                             kernel_tol=float(spec.get("kernel_tol", 1e-8)))
    if name == "teacher_student":
        return _teacher_student(spec, pde)
    if name == "pspin":
        return PSpin(d=int(spec["d"]), teacher_seed=int(spec.get("teacher_seed", 0)))
    if name == "quadratic":
        return QuadraticPotential(stiffness=spec.get("stiffness", 1.0),
                                  center=spec.get("center", 0.0), ndim=int(spec.get("ndim", 1)))
    if name == "linear_unit":
        return LinearUnit(theta_star=tuple(spec["theta_star"]),
                          label_var=float(spec.get("label_var", 0.0)))
    if name == "cosine_interaction":
        return CosineInteraction(coupling=float(spec.get("coupling", 1.0)),
                                 quartic=float(spec.get("quartic", 0.0)),
                                 quadratic=float(spec.get("quadratic", 1.0)),
                                 tilt=float(spec.get("tilt", 0.0)), ndim=int(spec.get("ndim", 1)))
    raise ValueError(f"unknown model {name!r}")


def _teacher_student(spec: Mapping[str, Any], pde: Mapping[str, Any] | None) -> TeacherStudent:
    target = spec["target"]
    if not isinstance(target, str):
        target = TeacherNetwork(a=tuple(target["a"]), w=tuple(tuple(r) for r in target["w"]),
                                b=tuple(target["b"]), activation=target.get("activation", "tanh"))
    k = int(spec.get("input_dim", 1))
    fixed_w = spec.get("fixed_w", 1.0)
    fixed_w = (float(fixed_w),) * k if isinstance(fixed_w, int | float) else tuple(fixed_w)
    trained = tuple(n for name in spec.get("trained", ("w", "b"))
                    for n in ((name,) if name != "w" or k == 1 else ("w1", "w2")))
    bounds = tuple(tuple(b) for b in pde["bounds"]) if pde is not None else None
    order = int(spec.get("quad_order", 0))
    return TeacherStudent(k=k, input_law=spec.get("input_law", "gaussian"), target=target,
                          activation=spec.get("activation", "tanh"), trained=trained,
                          fixed_a=float(spec.get("fixed_a", 1.0)), fixed_w=fixed_w,
                          fixed_b=float(spec.get("fixed_b", 0.0)), bounds=bounds,
                          quad_order=order or None, quad_tol=float(spec.get("quad_tol", 1e-8)))


def _per_axis(value: Any, n: int) -> tuple[float, ...]:
    if isinstance(value, tuple | list):
        return tuple(float(v) for v in value)
    return (float(value),) * n


def build_law(model_spec: Mapping[str, Any], init: Mapping[str, Any]
              ) -> ScaledChiLaw | ScaledChiPairLaw | NormalLaw | ReluSelectionLaw:
    """The initial law of ``[init]`` for the model of ``[model]`` (grid models only)."""
    name = model_spec["name"]
    if name in ("isotropic_gaussians", "anisotropic_gaussians", "relu_selection"):
        d = init.get("d", model_spec["d"])
        if not math.isfinite(float(d)):
            raise ValueError("init.d = inf: the initial law w ~ N(0, kappa^2 I/d) needs a finite "
                             "d; allowed: an integer >= 2")
        if name == "relu_selection":
            return ReluSelectionLaw(
                kappa=float(init["kappa"]), d=int(d), s0=int(model_spec["s0"]),
                a_mean=float(init["a_mean"]), a_std=float(init["a_std"]),
                b_mean=float(init["b_mean"]), b_std=float(init["b_std"]))
        if name == "anisotropic_gaussians":
            return ScaledChiPairLaw(kappa=float(init["kappa"]), d=int(d), s0=int(model_spec["s0"]))
        return ScaledChiLaw(kappa=float(init["kappa"]), d=int(d))
    n_axes = reduced_dim(model_spec)
    return NormalLaw(mean=_per_axis(init.get("mean", 0.0), n_axes),
                     std=_per_axis(init["std"], n_axes))


def build_grid(model: ReducedModel, pde: Mapping[str, Any]) -> Grid:
    """The grid of ``[pde]``: ``[0, r_max]`` for the radial model, ``bounds`` otherwise."""
    cells = pde["cells"]
    cells = tuple(cells) if isinstance(cells, list | tuple) else (int(cells),)
    if "r_max" in pde and pde["r_max"] is not None:
        bounds = ((0.0, float(pde["r_max"])),) * model.ndim
    else:
        bounds = tuple(tuple(b) for b in pde["bounds"])
    return Grid(bounds, cells, tuple(model.axis_names))


class GridTooSmallConfigError(ConfigError, GridTooSmallError):
    """The ``[pde]`` box cannot hold the initial law (a :class:`ConfigError` naming
    ``pde.r_max`` or ``pde.bounds``, and a :class:`~meanfield.model.GridTooSmallError`)."""


# ----------------------------------------------------------------------------- naming the keys


@contextmanager
def naming(keys: str, hint: str = "") -> Iterator[None]:
    """Turn a ``ValueError`` or :class:`BackendError` raised inside into a :class:`ConfigError`
    whose message starts with ``keys`` (the config keys that hold the rejected value) and ends
    with ``hint`` (what would be accepted). A :class:`ConfigError` passes unchanged.

    The model, law and grid classes raise plain ``ValueError``: they are used from Python too and
    know nothing of config keys; this is where a config's values become those objects.
    """
    try:
        yield
    except ConfigError:
        raise
    except (ValueError, BackendError) as err:
        text = str(err)
        message = text if text.startswith(keys) or _KEY_FIRST.match(text) else f"{keys}: {text}"
        raise ConfigError(message + (f"; {hint}" if hint else "")) from err


#: a message that already starts with a config key (``init.d: ...``, ``particles.engine = ...``)
_KEY_FIRST = re.compile(r"(model|init|dynamics|pde|particles|study)\.[a-z_0-9]+\b")


def _fmt(value: Any) -> str:
    """A config value as it would be written in TOML (floats with ``:g``)."""
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


def _box_key(pde: Mapping[str, Any]) -> str:
    """The ``[pde]`` key that sets the box of the grid."""
    return "pde.r_max" if pde.get("r_max") is not None else "pde.bounds"


def _box_setting(pde: Mapping[str, Any]) -> str:
    key = _box_key(pde)
    return f"{key} = {_fmt(pde[key.split('.')[1]])}"


#: the models whose :meth:`validate` certifies their kernel expansion to ``model.kernel_tol``
#: on the grid's box
_KERNEL_TOL_MODELS = ("isotropic_gaussians", "anisotropic_gaussians", "relu_selection")

#: the ``[init]`` keys that set the spread of each model's initial law
_LAW_KEYS = {"isotropic_gaussians": "init.kappa", "anisotropic_gaussians": "init.kappa",
             "relu_selection": "init.kappa, init.a_mean, init.a_std, init.b_mean, init.b_std"}


def model_from_config(config: Any) -> ReducedModel:
    """:func:`build_model` of ``config`` (on the box of its ``[pde]``, if any), with errors
    raised as :class:`ConfigError` naming the keys. A teacher-student model chooses its
    quadrature order here, so that an order that cannot reach ``model.quad_tol`` on the box
    is a config error before any work, not a failure in the middle of a run."""
    with naming(f"[model] ({_model_name(config)})"):
        model = build_model(config.model, config.pde)
    if isinstance(model, TeacherStudent) and config.model.get("quad_order", 0) == 0:
        with naming(_quadrature_keys(config), _QUADRATURE_HINT):
            model.tables  # noqa: B018  (the quadrature rule, chosen on the box and kept)
    return model


def _model_name(config: Any) -> str:
    return f"model.name = {config.model['name']!r}"


def _quadrature_keys(config: Any) -> str:
    box = f" on {_box_setting(config.pde)}" if config.pde is not None else ""
    return f"model.quad_tol = {config.model.get('quad_tol', 1e-8):g}{box}"


_QUADRATURE_HINT = ("allowed: a larger model.quad_tol (at most 1e-3), a smaller pde.bounds, or "
                    "a fixed model.quad_order")


def law_from_config(config: Any) -> Any:
    """:func:`build_law` of ``config``, with errors raised as :class:`ConfigError`."""
    with naming("[init]"):
        return build_law(config.model, config.init)


def _grid_too_small(config: Any, law: Any, grid: Grid) -> GridTooSmallConfigError:
    """The error for a ``[pde]`` box that cannot hold the initial law, with a box that can."""
    _, outside = law.cell_masses(grid)
    wider = tuple((min(lo, _round_out(need_lo, up=False)), max(hi, _round_out(need_hi, up=True)))
                  for (lo, hi), (need_lo, need_hi) in zip(grid.bounds, law.box(OUTSIDE_MASS_TOL),
                                                          strict=True))
    key = _box_key(config.pde)
    if key == "pde.r_max":
        allowed = f"pde.r_max >= {max(hi for _, hi in wider):g}"
    else:
        allowed = f"pde.bounds = {_fmt(wider)} or wider"
    law_keys = _LAW_KEYS.get(config.model["name"], "init.mean, init.std")
    return GridTooSmallConfigError(
        f"{_box_setting(config.pde)}: the grid cannot hold the initial law: "
        f"mass {outside:.3g} lies outside it (allowed {OUTSIDE_MASS_TOL:g}); allowed: {allowed} "
        f"(or change {law_keys} so that the initial law fits)")


def _round_out(x: float, *, up: bool) -> float:
    """``x`` rounded away from the inside of a box to two significant digits."""
    if x == 0.0 or not math.isfinite(x):
        return x
    step = 10.0 ** (math.floor(math.log10(abs(x))) - 1)
    n = math.ceil(x / step) if up else math.floor(x / step)
    return float(f"{n * step:.12g}")


@dataclass(frozen=True)
class PDESetup:
    """Everything :func:`~meanfield.controller.integrate` needs."""

    pde: MeanFieldPDE
    rho0: np.ndarray
    save_times: tuple[float, ...]
    time_change: TimeChange
    backend: Backend
    cfl: float
    dtype: Any


def build_pde_setup(config: Any) -> PDESetup:
    """Build the PDE run described by ``config``.

    Raises
    ------
    ConfigError
        For input the schema alone cannot reject: a grid too small for the initial law
        (:class:`GridTooSmallConfigError`), a kernel series or quadrature that cannot reach its
        tolerance on the grid, a backend this machine lacks, float32 (not validated yet). The
        message starts with the keys at fault.
    """
    with naming("[pde]"):  # the stages below name their keys; this is only a safety net
        return _build_pde_setup(config)


def _build_pde_setup(config: Any) -> PDESetup:
    spec, dyn = config.pde, config.dynamics
    if spec.get("dtype", "float64") != "float64":
        raise ConfigError("pde.dtype = 'float32' is not validated for the PDE yet (the invariant "
                          "tolerances assume float64); allowed: 'float64'")
    with naming(f"pde.backend = {spec.get('backend', 'auto')!r}",
                "allowed here: 'numpy' or 'auto'"):
        backend = get_backend(spec.get("backend", "auto"))
    model = model_from_config(config)
    with naming(f"{_box_setting(spec)}, pde.cells = {_fmt(spec['cells'])}"):
        grid = build_grid(model, spec)
    beta = float(dyn.get("beta", math.inf))
    with naming(f"dynamics.beta = {beta:g}", "allowed: dynamics.beta = inf, or a finite model.d"):
        model.check_noise(beta)
    _check_on_grid(config, model, grid)
    with naming("pde.order, pde.limiter, dynamics.l2"):
        pde = MeanFieldPDE(model, grid, beta=beta, l2=float(dyn.get("l2", 0.0)),
                           order=int(spec.get("order", 2)), limiter=spec.get("limiter", "mc"))
    law = law_from_config(config)
    try:
        rho0 = initial_density(law, grid)
    except GridTooSmallError as err:
        raise _grid_too_small(config, law, grid) from err
    with naming("dynamics.xi"):
        time_change = time_change_from_spec(dyn.get("xi", 1.0))
    dtype = getattr(backend.xp, spec.get("dtype", "float64"))
    return PDESetup(pde, rho0, tuple(dyn["save_times"]), time_change, backend,
                    float(spec.get("cfl", 0.8)), dtype)


def _check_on_grid(config: Any, model: ReducedModel, grid: Grid) -> None:
    """``model.validate(grid)`` (for the MMN models: their kernel expansion certified on the
    box) as a config error naming the keys."""
    box = _box_setting(config.pde)
    if config.model["name"] not in _KERNEL_TOL_MODELS:
        with naming(box):
            model.validate(grid)
        return
    with naming(f"model.kernel_tol = {config.model.get('kernel_tol', 1e-8):g} on {box}",
                f"allowed: a larger model.kernel_tol (at most 1e-3), or a smaller "
                f"{_box_key(config.pde)}"):
        model.validate(grid)
