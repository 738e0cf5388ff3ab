"""What ``meanfield run --dry-run`` reports besides the resolved config: an estimate of the work.

The PDE estimate uses the step size at ``t = 0`` (the velocities change during a run, so the
true step count can differ by a factor of a few); the particle count is exact (a fixed step).
Memory is the arrays a run holds at once, output the size of the HDF5 datasets.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from meanfield.backends import to_numpy
from meanfield.config.builders import build_run_setup
from meanfield.pde.solvers.heun import max_step

__all__ = ["estimate_cost", "format_bytes"]

#: density-sized arrays a Heun step holds at once (state, two stages, Psi, fluxes, slopes)
PDE_WORK_ARRAYS = 10
#: theta-sized arrays a particle step holds at once (theta, update, a stage for gd)
PARTICLE_WORK_ARRAYS = 4
BYTES = 8  # float64


def format_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError  # unreachable


def estimate_cost(config: Any) -> list[str]:
    """One line per part of the run: ``[pde]``, then ``[particles]`` (a study: one line per N)."""
    lines = []
    frames = len(config.dynamics["save_times"])
    run = build_run_setup(config)
    if run.pde is not None:
        lines.append(_pde_cost(run.pde, frames))
    if config.study is not None:
        study = config.study
        for n in study["n"]:
            lines.append(
                _particle_cost(config, run.particles, frames, n=n, replicas=study["replicas"])
            )
    elif run.particles is not None:
        lines.append(_particle_cost(config, run.particles, frames))
    return lines


#: point-sized arrays a Runge-Kutta step of the characteristics solver holds at once (state,
#: seven stages, the error estimate); each stage's features and their gradients besides
POINT_WORK_ARRAYS = 9


def _pde_cost(setup: Any, frames: int) -> str:
    if setup.method == "characteristics":
        return _points_cost(setup, frames)
    grid, model = setup.pde.grid, setup.pde.model
    rhs = setup.pde.make_rhs(setup.backend, setup.dtype)
    rate = float(to_numpy(rhs(setup.backend.asarray(setup.rho0, setup.dtype)).rate))
    tau_end = float(setup.time_change.tau(setup.save_times[-1]))
    dt = max_step(rate, setup.cfl)
    steps = tau_end / dt if math.isfinite(dt) else 0.0
    features = model.kernel_features(grid.points()).n_features
    memory = grid.n_cells * (PDE_WORK_ARRAYS + 2 * features) * BYTES
    output = frames * grid.n_cells * BYTES
    return (
        f"pde: {grid.n_cells:,} cells ({' x '.join(map(str, grid.shape))}), "
        f"{features} kernel features, about {max(1, math.ceil(steps)):,} steps (from the "
        f"step size at t = 0), memory ~{format_bytes(memory)}, output "
        f"~{format_bytes(output)}"
    )


def _points_cost(setup: Any, frames: int) -> str:
    """The characteristics solver: points of the initial rule, features, memory, output."""
    grid, rule = setup.grid, setup.rule
    field = setup.pde.field(setup.backend)
    features = setup.model.kernel_features(field.scale_points[:1], field.scale_points).n_features
    n_points, n_axes = rule.n_points, rule.n_axes
    memory = n_points * n_axes * (POINT_WORK_ARRAYS + 7 * features) * BYTES
    output = frames * (grid.n_cells + n_points * n_axes) * BYTES
    refine = setup.refinement
    passes = (
        f"refined up to {refine.max_passes} passes and {refine.max_points:,} points"
        if refine.enabled
        else "no refinement"
    )
    return (
        f"pde: characteristics, {n_points:,} initial points ({rule.n_cells:,} cells x "
        f"{rule.points_per_cell}), {passes}, {features} kernel features, memory "
        f"~{format_bytes(memory)} at the initial points, output ~{format_bytes(output)} "
        f"(densities on {grid.n_cells:,} cells and the points)"
    )


def _particle_cost(
    config: Any, particles: Any, frames: int, *, n: int | None = None, replicas: int | None = None
) -> str:
    spec = dict(config.particles)
    spec["n"] = spec["n"] if n is None else n
    spec["replicas"] = spec["replicas"] if replicas is None else replicas
    steps = round(config.dynamics["t_end"] / spec["step"])
    from particles.run import build_particle_run  # noqa: PLC0415 (heavy, only here)

    run = build_particle_run(particles, n=1, replicas=1)
    dim = int(np.prod(run.state.theta.shape[2:]))
    size = spec["replicas"] * spec["n"] * dim
    reduced = int(np.prod(run.record_fn(run.state, 0.0).reduced.shape[2:])) or 1
    output = frames * spec["replicas"] * spec["n"] * reduced * BYTES
    if spec.get("keep_theta"):
        output += frames * size * BYTES
    return (
        f"particles: {spec['replicas']} replicas x {spec['n']:,} units x {dim} parameters, "
        f"{steps:,} steps of {spec['method']} ({run.engine} engine), memory ~"
        f"{format_bytes(size * PARTICLE_WORK_ARRAYS * BYTES)}, output "
        f"~{format_bytes(output)}"
    )
