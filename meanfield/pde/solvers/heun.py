"""Heun's method (SSP-RK2) with a step from the positivity (CFL and diffusive) bound.

Heun's step is a convex combination of two forward-Euler steps,
``rho_{n+1} = (rho_n + E(E(rho_n))) / 2`` with ``E(rho) = rho + dt f(rho)``, so it keeps every
property an Euler step keeps under the same step bound (positivity, mass): Shu and Osher's
strong-stability-preserving argument.

No host synchronisation
-----------------------
Everything a step decides (its size from the rate bound, the equal-step fit to the next output
time, the snap onto it, the retry when the second stage moves faster) is computed on the
device, as 0-d arrays of the backend: an *attempt* either commits a step or, when rejected,
carries the larger rate into the next attempt, selected with ``where`` rather than a Python
``if``. The time loop (:mod:`~meanfield.pde.controller`) therefore reads the clock from the device
only once every block of attempts, not once per step. Attempts made after the output time is
reached are no-ops (``dt = 0``, nothing committed).

The arithmetic is the host version's, operation for operation (IEEE double on both sides), so
the accepted steps are bit for bit those of a loop that decides on the host (checked in
``tests/meanfield/test_sync_free.py`` against such a loop).

References
----------
S. Gottlieb, C.-W. Shu, E. Tadmor, "Strong stability-preserving high-order time discretization
methods", SIAM Review 43 (2001) 89-112.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from ...backends.arrays import Backend
from ...backends.scalars import scalar_kernel, scalars_for

__all__ = [
    "Carry",
    "Proposal",
    "make_heun_attempt",
    "initial_carry",
    "max_step",
    "MAX_RETRIES",
    "SNAP_RTOL",
]

#: attempts after which a step whose second stage breaks the positivity bound is accepted anyway
MAX_RETRIES = 4
#: equal-step spreading lands the last step on the output time up to round-off: snap onto it
SNAP_RTOL = 1e-9

Array = Any


class Carry(NamedTuple):
    """The loop's state between attempts: ``rho`` and scalars of the loop's namespace (0-d
    device arrays, or Python numbers on NumPy: :mod:`~meanfield.backends.scalars`).

    Attributes
    ----------
    rho : density
    tau : ``int_0^t xi`` of ``rho``
    tau_prev : ``tau`` before the last committed step (``tau`` itself before the first)
    step : committed steps (integer)
    floor : rate carried from a rejected attempt (0 after a commit)
    retries : rejected attempts of the pending step (integer)
    halted : set when a tracker refused a step or the clock stopped (a step size of zero or a
        non-finite time); every later attempt is a no-op
    """

    rho: Array
    tau: Array
    tau_prev: Array
    step: Array
    floor: Array
    retries: Array
    halted: Array


class Proposal(NamedTuple):
    """What an attempt would commit, before the trackers have seen it."""

    rho: Array  # the Heun step from ``carry.rho`` (meaningful only where ``accepted``)
    tau: Array  # its ``tau`` (snapped onto the output time on the last step)
    accepted: Array  # bool: a step is made (active, stage within the bound, clock moves)
    start: Any  # RhsValue at ``carry.rho`` (its psi gives the functionals of the old state)
    floor: Array  # rate to carry when rejected
    rejected: Array  # bool: active, but the second stage broke the bound
    stalled: Array  # bool: active and within the bound, but the clock did not move on


def initial_carry(rho: Array, tau: float, step: int, sx: Any) -> Carry:
    """The carry of density ``rho`` at ``tau`` after ``step`` steps, scalars in ``sx``."""
    return Carry(
        rho,
        sx.const(float(tau)),
        sx.const(float(tau)),
        sx.const(int(step)),
        sx.const(0.0),
        sx.const(0),
        sx.const(False),
    )


def max_step(rate: Any, cfl: float) -> float:
    """Largest step ``cfl / rate`` on the host (infinite when nothing moves)."""
    rate = float(rate)
    return cfl / rate if rate > 0 else math.inf


def make_heun_attempt(
    rhs_fn: Callable, cfl: float, backend: Backend
) -> tuple[Callable[[Carry, Any], Proposal], Callable[[Carry, Proposal, Any], Carry]]:
    """Build ``propose(carry, tau_out) -> Proposal`` and ``commit(carry, proposal, passes)``.

    Parameters
    ----------
    rhs_fn : callable ``rho -> RhsValue``
    cfl : float
        Fraction (``0 < cfl <= 1``) of the forward-Euler positivity bound ``1 / rate`` used.
    backend : Backend
        Decides where the scalars live (:func:`~meanfield.backends.scalars.scalars_for`) and fuses
        the elementwise pieces of the step (on a GPU: three scalar kernels and two array kernels).

    Notes
    -----
    The step is ``cfl / rate`` from the rate at the start of the step, clipped so that the
    remaining interval to ``tau_out`` (a scalar of the loop's namespace) is covered by equal
    steps. If the intermediate stage moves faster, so that its own Euler step would break the
    bound, the attempt is rejected and the next one starts from the larger rate; after
    :data:`MAX_RETRIES` rejections the step is taken. ``commit`` applies a proposal where it
    is accepted and ``passes`` (a boolean of the loop's namespace from the trackers, or None)
    holds; an accepted step that fails ``passes``, or a stalled clock, halts the carry.
    """
    if not 0.0 < cfl <= 1.0:
        raise ValueError(f"cfl must lie in (0, 1], got {cfl}")
    sx = scalars_for(backend)
    plan = scalar_kernel(backend, functools.partial(_plan, cfl=cfl), "heun_plan")
    settle = scalar_kernel(backend, _settle, "heun_settle")
    clock = scalar_kernel(backend, _clock, "heun_clock")
    euler = backend.fuse(_euler, "heun_stage")
    combine = backend.fuse(_combine, "heun_combine")
    agree = sx.const(True)
    xp = backend.xp

    def in_dtype_of(dt: Any, rho: Any) -> Any:
        """The step size in the density's precision: a 0-d float64 device scalar would promote
        a float32 density (a host float does not); float64 runs pass it through."""
        if sx.host or rho.dtype == xp.float64:
            return dt
        return xp.astype(dt, rho.dtype)

    def propose(carry: Carry, tau_out: Any) -> Proposal:
        rho = carry.rho
        start = rhs_fn(rho)
        rate, active, remaining, dt = plan(
            sx.scalar(start.rate), carry.floor, carry.tau, tau_out, carry.halted
        )
        step = in_dtype_of(dt, rho)
        stage = euler(rho, start.drho, step)
        second = rhs_fn(stage)
        new_tau, accepted, floor, rejected, stalled = settle(
            dt, sx.scalar(second.rate), rate, carry.retries, remaining, carry.tau, tau_out, active
        )
        return Proposal(
            combine(rho, stage, second.drho, step),
            new_tau,
            accepted,
            start,
            floor,
            rejected,
            stalled,
        )

    def commit(carry: Carry, proposal: Proposal, passes: Any = None) -> Carry:
        taken, tau, tau_prev, step, floor, retries, halted = clock(
            proposal.accepted,
            agree if passes is None else passes,
            proposal.tau,
            carry.tau,
            carry.tau_prev,
            carry.step,
            proposal.floor,
            carry.retries,
            proposal.rejected,
            proposal.stalled,
            carry.halted,
        )
        return Carry(
            sx.where(taken, proposal.rho, carry.rho), tau, tau_prev, step, floor, retries, halted
        )

    return propose, commit


# ---- the pieces: scalar logic (``sx``) and elementwise array kernels (``m``) ------------------


def _plan(
    sx: Any, start_rate: Any, floor: Any, tau: Any, tau_out: Any, halted: Any, *, cfl: float
) -> tuple:
    """``(rate, active, remaining, dt)``: the step size from the larger of the start rate and
    a rejected attempt's, fitted to the time left."""
    where = sx.where
    rate = where(floor > start_rate, floor, start_rate)
    moving = rate > 0
    dt_max = where(moving, cfl / where(moving, rate, 1.0), math.inf)
    remaining = tau_out - tau
    active = sx.both(remaining > 0, sx.negate(halted))
    remaining = where(active, remaining, 0.0)
    return rate, active, remaining, _fit(dt_max, remaining, sx)


def _settle(
    sx: Any,
    dt: Any,
    second_rate: Any,
    rate: Any,
    retries: Any,
    remaining: Any,
    tau: Any,
    tau_out: Any,
    active: Any,
) -> tuple:
    """``(new_tau, accepted, floor, rejected, stalled)`` once the second stage's rate is known."""
    both, negate, where = sx.both, sx.negate, sx.where
    within = sx.either(dt * second_rate <= 1.0, retries >= MAX_RETRIES)
    new_tau = where(dt >= remaining * (1.0 - SNAP_RTOL), tau_out, tau + dt)
    moves = both(new_tau > tau, sx.isfinite(new_tau))
    accepted = both(active, both(within, moves))
    floor = where(second_rate > rate, second_rate, rate)  # max, keeping rate on NaN
    return (
        new_tau,
        accepted,
        floor,
        both(active, negate(within)),
        both(active, both(within, negate(moves))),
    )


def _clock(
    sx: Any,
    accepted: Any,
    passes: Any,
    new_tau: Any,
    tau: Any,
    tau_prev: Any,
    step: Any,
    floor: Any,
    retries: Any,
    rejected: Any,
    stalled: Any,
    halted: Any,
) -> tuple:
    """``(taken, tau, tau_prev, step, floor, retries, halted)`` after the trackers' verdict."""
    both, where = sx.both, sx.where
    taken = both(accepted, passes)
    refused = both(accepted, sx.negate(taken))
    return (
        taken,
        where(taken, new_tau, tau),
        where(taken, tau, tau_prev),
        where(taken, step + 1, step),
        where(rejected, floor, 0.0),
        where(rejected, retries + 1, 0 * retries),
        sx.either(halted, sx.either(refused, stalled)),
    )


def _euler(m: Any, rho: Any, drho: Any, dt: Any) -> Any:
    """The first stage ``rho + dt f(rho)``."""
    return rho + dt * drho


def _combine(m: Any, rho: Any, stage: Any, drho: Any, dt: Any) -> Any:
    """Heun's step ``(rho + E(stage)) / 2`` with ``E(stage) = stage + dt f(stage)``."""
    return 0.5 * (rho + stage + dt * drho)


def _fit(dt: Any, remaining: Any, sx: Any) -> Any:
    """Step size that reaches ``remaining`` in a whole number of equal steps ``<= dt``.

    ``remaining / ceil(remaining / dt)``, or ``remaining`` itself when one step covers it (and
    when ``remaining`` is 0: an inactive attempt), ``dt`` when ``remaining`` is infinite; 0
    when ``dt`` is (an infinite rate). The guards only keep the branches not taken free of
    divisions by zero.
    """
    usable = dt > 0
    count = sx.ceil(remaining / sx.where(usable, dt, 1.0))
    spread = remaining / sx.where(count >= 1.0, count, 1.0)
    spread = sx.where(sx.isfinite(remaining), spread, dt)
    return sx.where(dt >= remaining, remaining, sx.where(usable, spread, 0.0))
