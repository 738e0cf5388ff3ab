"""Several PDE runs stepped together: a parameter sweep shares the kernel products.

Two kinds of sweep:

* **one equation, S initial laws** (a sweep over ``kappa``): ``rho`` gets a leading run axis and
  the nonlocal products ``Phi^T m`` become matrix products with S columns (BLAS 3 instead of S
  matrix-vector products). :meth:`MeanFieldPDE.make_rhs` already accepts it.
* **S equations on one grid** (a sweep over ``Delta``): :class:`StackedPDE` stacks their
  potentials and kernel features (zero-padded to a common rank) into batched products.

All runs take the same time step, the smallest any of them needs (a sweep costs one step
sequence, not S). Each run is then a valid discretisation of its own equation, with steps no
larger than its solo run's; the two agree to the time-discretisation error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..backends.arrays import Backend, to_numpy
from ..grid import Grid
from ..schedules import TimeChange
from .controller import SYNC_EVERY, Loop
from .equation import MeanFieldPDE, build_functionals, build_rhs
from .operators import make_potential_fn
from .trackers import InvariantViolation

__all__ = ["StackedPDE", "SweepResult", "integrate_sweep"]

#: relative mass drift allowed per run (finite volumes conserve mass to round-off)
MASS_TOL = 1e-10


@dataclass(frozen=True)
class StackedPDE:
    """S equations on one grid, stepped together (e.g. one model at several ``Delta``).

    They must share the grid and everything the transport uses (``beta``, ``order``,
    ``limiter``) and ``l2``; the models, and so ``V``, ``U`` and ``R_#``, may differ.
    """

    pdes: tuple[MeanFieldPDE, ...]

    def __post_init__(self) -> None:
        pdes = tuple(self.pdes)
        if not pdes:
            raise ValueError("a stacked PDE needs at least one equation")
        first = pdes[0]
        for pde in pdes[1:]:
            same = (
                pde.grid == first.grid
                and pde.order == first.order
                and pde.limiter == first.limiter
                and pde.l2 == first.l2
                and (pde.beta == first.beta)
            )
            if not same:
                raise ValueError(
                    "stacked equations must share the grid, beta, l2, order and "
                    "limiter (only the model may differ)"
                )
        object.__setattr__(self, "pdes", pdes)

    @property
    def grid(self) -> Grid:
        return self.pdes[0].grid

    @property
    def n_runs(self) -> int:
        return len(self.pdes)

    def _parts(self, backend: Backend, dtype: Any) -> tuple:
        hosts = [pde.host_parts() for pde in self.pdes]

        def to_xp(a: Any) -> Any:
            return backend.asarray(np.asarray(a), dtype)

        potentials = np.stack([h[0] for h in hosts])
        psi_fn = make_potential_fn(potentials, [h[1] for h in hosts], to_xp)
        norm_sq, log_jac = np.stack([h[2] for h in hosts]), np.stack([h[3] for h in hosts])
        extra = np.stack(
            [pde.extra_potential(h[2], h[3]) for pde, h in zip(self.pdes, hosts, strict=True)]
        )
        return psi_fn, to_xp(extra), (to_xp(potentials), to_xp(norm_sq), to_xp(log_jac))

    def make_rhs(self, backend: Backend, dtype: Any = None) -> Any:
        """``rhs(rho)`` for ``rho`` of shape ``(S, *grid.shape)``."""
        psi_fn, extra, _ = self._parts(backend, dtype)
        return build_rhs(self.grid, self.pdes[0].transport_fn(backend), psi_fn, extra, backend.xp)

    def make_functionals(self, backend: Backend, dtype: Any = None) -> Any:
        """Risk, free energy and mass of each run, shape ``(S,)``."""
        psi_fn, _, parts = self._parts(backend, dtype)
        r_sharp = backend.asarray(np.array([pde.model.r_sharp for pde in self.pdes]), dtype)
        first = self.pdes[0]
        return build_functionals(
            self.grid, r_sharp, first.beta, first.l2, psi_fn, parts, backend.xp
        )


@dataclass(frozen=True)
class SweepResult:
    """Frames of S runs: ``density`` ``(T, S, *grid.shape)``, functionals ``(T, S)``."""

    times: np.ndarray
    density: np.ndarray
    risk: np.ndarray
    free_energy: np.ndarray
    mass: np.ndarray
    n_steps: int
    wall_time: float


def integrate_sweep(
    pde: MeanFieldPDE | StackedPDE,
    rho0: np.ndarray,
    save_times: Sequence[float],
    backend: Backend,
    *,
    time_change: TimeChange | None = None,
    cfl: float = 0.8,
    stepper: str = "heun",
    dtype: Any = None,
    sync_every: int = SYNC_EVERY,
    on_frame: Callable[[float, np.ndarray, list], None] | None = None,
) -> SweepResult:
    """Integrate S runs together and return their frames at ``save_times``.

    Parameters
    ----------
    pde : MeanFieldPDE (S initial laws of one equation) or StackedPDE (S equations)
    rho0 : NumPy array of shape ``(S, *grid.shape)``
        Initial cell averages, one run per row.
    save_times, time_change, cfl, stepper, dtype, sync_every
        As for :func:`~meanfield.pde.controller.integrate`.
    on_frame : callable ``(t, density, [risk, free_energy, mass]) -> None``, optional
        Called with each frame as soon as it is computed (to stream it to a file).

    Raises
    ------
    InvariantViolation
        If a run's mass drifts by more than :data:`MASS_TOL` or its density turns negative.
    """
    grid = pde.grid
    rho0 = np.asarray(rho0, dtype=np.float64)
    if rho0.ndim != grid.ndim + 1 or rho0.shape[1:] != grid.shape:
        raise ValueError(f"rho0 must have shape (S, *{grid.shape}), got {rho0.shape}")
    if isinstance(pde, StackedPDE) and rho0.shape[0] != pde.n_runs:
        raise ValueError(
            f"{pde.n_runs} stacked equations need {pde.n_runs} initial densities, "
            f"got {rho0.shape[0]}"
        )
    time_change = time_change or TimeChange()
    rhs = pde.make_rhs(backend, dtype)
    functionals = pde.make_functionals(backend, dtype)
    mass0 = rho0.reshape(rho0.shape[0], -1).sum(axis=1) * grid.cell_volume
    loop = Loop(
        backend.asarray(rho0, dtype),
        0.0,
        0,
        rhs,
        cfl,
        functionals,
        time_change,
        backend,
        stepper,
        sync_every,
    )
    frames: list[tuple] = []
    wall = time.perf_counter()
    for t_out in save_times:
        loop.advance(float(time_change.tau(float(t_out))))
        density = to_numpy(loop.carry.rho).copy()
        values = [to_numpy(v) for v in functionals(loop.carry.rho)]
        _check(density, values[2], mass0, float(t_out))
        frames.append((density, *values))
        if on_frame is not None:
            on_frame(float(t_out), density, values)
    stack = [np.stack(column) for column in zip(*frames, strict=True)]
    return SweepResult(
        np.asarray(save_times, dtype=np.float64),
        stack[0],
        stack[1],
        stack[2],
        stack[3],
        loop.step,
        time.perf_counter() - wall,
    )


def _check(density: np.ndarray, mass: np.ndarray, mass0: np.ndarray, t: float) -> None:
    drift = np.abs(mass - mass0) / np.maximum(mass0, math.ulp(1.0))
    if np.max(drift) > MASS_TOL:
        run = int(np.argmax(drift))
        raise InvariantViolation(f"t = {t:g}: run {run} lost mass (relative {drift[run]:.3g})")
    if density.min() < 0.0:
        run = int(np.unravel_index(np.argmin(density), density.shape)[0])
        raise InvariantViolation(
            f"t = {t:g}: run {run} has a negative density ({density.min():.3g})"
        )
