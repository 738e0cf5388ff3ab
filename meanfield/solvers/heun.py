"""Heun's method (SSP-RK2) with a step from the positivity (CFL and diffusive) bound.

Heun's step is a convex combination of two forward-Euler steps,
``rho_{n+1} = (rho_n + E(E(rho_n))) / 2`` with ``E(rho) = rho + dt f(rho)``, so it keeps every
property an Euler step keeps under the same step bound (positivity, mass): Shu and Osher's
strong-stability-preserving argument.

References
----------
S. Gottlieb, C.-W. Shu, E. Tadmor, "Strong stability-preserving high-order time discretization
methods", SIAM Review 43 (2001) 89-112.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["StepResult", "make_heun_stepper"]

#: how often a step whose second stage breaks the positivity bound is retried with a smaller dt
MAX_RETRIES = 4


class StepResult(NamedTuple):
    """One accepted step: new density, step size, and the rhs evaluated at the old density."""

    rho: Any
    dt: float
    start: Any  # RhsValue at the start of the step (its psi gives the risk of the old state)


def max_step(rate: Any, cfl: float) -> float:
    """Largest step ``cfl / rate`` (infinite when nothing moves)."""
    rate = float(rate)
    return cfl / rate if rate > 0 else math.inf


def make_heun_stepper(rhs_fn: Callable, cfl: float = 0.8) -> Callable:
    """Build ``step(rho, dt_cap) -> StepResult``.

    Parameters
    ----------
    rhs_fn : callable ``rho -> RhsValue``
    cfl : float
        Fraction (``0 < cfl <= 1``) of the forward-Euler positivity bound ``1 / rate`` used.

    Notes
    -----
    The step is chosen from the rate at the start of the step; if the intermediate stage moves
    faster, so that its own Euler step would break the bound, the step is redone with the larger
    rate. The step never exceeds ``dt_cap``, and output times are hit by spreading the
    remaining interval over equal steps.
    """
    if not 0.0 < cfl <= 1.0:
        raise ValueError(f"cfl must lie in (0, 1], got {cfl}")

    def step(rho: Any, dt_cap: float) -> StepResult:
        start = rhs_fn(rho)
        rate = float(start.rate)
        for _ in range(MAX_RETRIES + 1):
            dt = _fit(max_step(rate, cfl), dt_cap)
            stage = rho + dt * start.drho
            second = rhs_fn(stage)
            stage_rate = float(second.rate)
            if dt * stage_rate <= 1.0:
                break
            rate = max(rate, stage_rate)
        return StepResult(0.5 * (rho + stage + dt * second.drho), dt, start)

    return step


def _fit(dt: float, remaining: float) -> float:
    """Step size that reaches ``remaining`` in a whole number of equal steps ``<= dt``."""
    if dt >= remaining:
        return remaining
    if math.isinf(remaining):
        return dt
    return remaining / math.ceil(remaining / dt)
