"""From a checked :class:`~meanfield.config.Config` to the objects of a run (no numerics here)."""

from __future__ import annotations

import math
from collections.abc import Mapping
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
from .schedules import TimeChange, time_change_from_spec

__all__ = ["build_model", "build_law", "build_grid", "PDESetup", "build_pde_setup"]


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
            raise ValueError("init.d: the initial law w ~ N(0, kappa^2 I/d) needs a finite d")
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
        For input the schema alone cannot reject: a grid too small for the initial law, a
        kernel series that cannot reach its tolerance, float32 (not validated yet).
    """
    try:
        return _build_pde_setup(config)
    except ConfigError:
        raise
    except (ValueError, BackendError) as err:  # constructors validate their parameters
        raise ConfigError(str(err)) from err


def _build_pde_setup(config: Any) -> PDESetup:
    if config.pde.get("dtype", "float64") != "float64":
        raise ConfigError("pde.dtype = 'float32' is not validated for the PDE yet (the invariant "
                          "tolerances assume float64); use 'float64'")
    model = build_model(config.model, config.pde)
    grid = build_grid(model, config.pde)
    dyn = config.dynamics
    beta = float(dyn.get("beta", math.inf))
    model.check_noise(beta)
    model.validate(grid)
    pde = MeanFieldPDE(model, grid, beta=beta, l2=float(dyn.get("l2", 0.0)),
                       order=int(config.pde.get("order", 2)),
                       limiter=config.pde.get("limiter", "mc"))
    rho0 = initial_density(build_law(config.model, config.init), grid)
    backend = get_backend(config.pde.get("backend", "auto"))
    dtype = getattr(backend.xp, config.pde.get("dtype", "float64"))
    return PDESetup(pde, rho0, tuple(dyn["save_times"]), time_change_from_spec(dyn.get("xi", 1.0)),
                    backend, float(config.pde.get("cfl", 0.8)), dtype)
