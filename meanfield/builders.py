"""From a checked :class:`~meanfield.config.Config` to the objects of a run (no numerics here)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import Backend, BackendError, get_backend
from .config import ConfigError
from .equation import MeanFieldPDE
from .grid import Grid
from .model import (
    IsotropicGaussians,
    NormalLaw,
    PSpin,
    QuadraticPotential,
    ReducedModel,
    ScaledChiLaw,
    activation_from_spec,
    initial_density,
)
from .schedules import TimeChange, time_change_from_spec

__all__ = ["build_model", "build_law", "build_grid", "PDESetup", "build_pde_setup"]


def build_model(spec: Mapping[str, Any]) -> ReducedModel:
    """The model named by ``[model]``."""
    name = spec["name"]
    if name == "isotropic_gaussians":
        return IsotropicGaussians(d=float(spec["d"]), delta=float(spec["delta"]),
                                  activation=activation_from_spec(spec.get("activation", "mmn")),
                                  kernel_tol=float(spec.get("kernel_tol", 1e-10)))
    if name == "pspin":
        return PSpin(d=int(spec["d"]), teacher_seed=int(spec.get("teacher_seed", 0)))
    if name == "quadratic":
        return QuadraticPotential(stiffness=float(spec.get("stiffness", 1.0)),
                                  center=float(spec.get("center", 0.0)))
    raise ValueError(f"unknown model {name!r}")


def build_law(model_spec: Mapping[str, Any], init: Mapping[str, Any]) -> ScaledChiLaw | NormalLaw:
    """The initial law of ``[init]`` for the model of ``[model]`` (grid models only)."""
    if model_spec["name"] == "isotropic_gaussians":
        d = init.get("d", model_spec["d"])
        if not math.isfinite(float(d)):
            raise ValueError("init.d: the initial law w ~ N(0, kappa^2 I/d) needs a finite d")
        return ScaledChiLaw(kappa=float(init["kappa"]), d=int(d))
    return NormalLaw(mean=(float(init.get("mean", 0.0)),), std=(float(init["std"]),))


def build_grid(model: ReducedModel, pde: Mapping[str, Any]) -> Grid:
    """The grid of ``[pde]``: ``[0, r_max]`` for the radial model, ``bounds`` otherwise."""
    cells = pde["cells"]
    cells = tuple(cells) if isinstance(cells, list | tuple) else (int(cells),)
    if "r_max" in pde and pde["r_max"] is not None:
        bounds = ((0.0, float(pde["r_max"])),)
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
    model = build_model(config.model)
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
