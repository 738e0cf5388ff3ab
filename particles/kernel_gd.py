"""Population gradient flows of Gaussian-kernel units on the sphere (RVE eq. (4.5)).

The units ``(c_i, y_i)`` of :class:`meanfield.model.rve.sphere_kernel.SphereKernel` follow the
gradient flow of ``N J`` in mean-field time (a rate independent of ``N``) for one of two
objectives ``J`` (no data batches, cost ``(N d)^2`` per step), chosen by name:

* ``"collocation"`` (the default): RVE's (4.5) as printed, ``J = E`` the collocation energy,

  .. math::

      \\dot c_i = f(y_i) - \\frac1N \\sum_j c_j \\varphi(y_i, y_j), \\qquad
      \\dot y_i = P_{y_i}\\Big[c_i \\nabla f(y_i) - \\frac1N \\sum_j c_i c_j
      \\nabla_{y_i} \\varphi(y_i, y_j)\\Big];

* ``"l2"``: ``J = L`` the ``L^2(mu)`` loss, with ``K_ij = E phi_i phi_j``, ``F_i = E f phi_i``,

  .. math::

      \\dot c_i = F_i - \\frac1N \\sum_j c_j K_{ij}, \\qquad
      \\dot y_i = P_{y_i}\\, c_i \\Big(\\nabla F_i
      - \\frac1N \\sum_j c_j \\nabla_{y_i} K_{ij}\\Big),

``P_y = I - y y^T / |y|^2`` the tangent projector of the sphere at ``y``. The gradients are
:meth:`SphereKernelTask.objective_gradient`; the loss recorded is ``L`` for both.

Scheme (explicit Euler, step ``step``; step ``k`` is time ``k * step``):

* ``c <- c + step * cdot + sqrt(2 step / beta) g_c`` and
  ``y <- R(y + step * ydot + P_y sqrt(2 step / beta) g_y)``, ``g ~ N(0, I)``, the noise only for
  the first ``noise_steps`` steps (plain gradient descent afterwards);
* ``R(y) = sqrt(d) y / |y|`` renormalises the centres onto the sphere after every step. It is
  the nearest point of the sphere (the metric projection), a first-order retraction: a tangent
  step ``h`` lands at distance ``O(|h|^2)`` from the geodesic step, so the scheme stays a
  consistent first-order discretisation of the flow on the sphere with no drift off it, and
  with the tangent noise it is the standard projected Euler-Maruyama scheme whose ``O(step)``
  radial pull-back supplies the curvature drift of Brownian motion on the sphere. The
  alternative, stepping along geodesics (exponential map), costs a ``sin``/``cos`` per unit for
  no gain at first order.

The noise ``sqrt(2 step / beta)`` matches a Langevin dynamics at temperature ``1/beta`` for
``N J``; it is a device for leaving poor configurations early, and it is switched off for the
second half so that the final loss is the gradient-descent minimum, not a thermal average.
:func:`run_until_flat` runs on in chunks until the loss is flat.

Math code takes ``xp`` and uses array-API calls only; shapes: ``R`` replicas, ``N`` units.

One engine method
-----------------
The flows are the particle method ``kernel_gd`` of :mod:`particles.methods`, like SGD and GD:
:func:`make_kernel_gd_step` is its NumPy reference on an :class:`~particles.state.EnsembleState`
with ``theta = (c, y_1, ..., y_d)`` (``D = d + 1``), and the compiled engine runs it where the
model offers its pieces (:meth:`SphereKernelTask.engine_pieces`; the kernels are
:mod:`particles.engine.sphere`, chosen by :func:`particles.engine.select_engine`).
:class:`KernelState` ``(c, y)`` and the advances ``(state, count) -> state`` of
:func:`run_kernel_gd` are views of the same steps: :func:`make_kernel_gd_advance` builds one on
either engine.

References
----------
G. M. Rotskoff, E. Vanden-Eijnden, Comm. Pure Appl. Math. 75 (2022), arXiv:1805.00915, eq. (4.5).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from meanfield.backends import to_numpy
from meanfield.model.rve.sphere_kernel import OBJECTIVES, SphereKernelTask
from meanfield.rng import KERNEL_NOISE_BLOCK, Purpose

from .engine import make_advance as make_engine_advance
from .engine import select_engine
from .engine.sphere import noise_amplitude, noise_block
from .state import EnsembleState

__all__ = [
    "FlatRun",
    "KernelRun",
    "KernelState",
    "NOISE_BLOCK",
    "OBJECTIVES",
    "TREND_FRACTION",
    "init_state",
    "loop_advance",
    "make_compiled_advance",
    "make_kernel_gd",
    "make_kernel_gd_advance",
    "make_kernel_gd_step",
    "noise_block",
    "record_schedule",
    "retract",
    "run_kernel_gd",
    "run_until_flat",
    "tangent",
    "to_ensemble",
    "to_kernel_state",
    "trend_at_end",
]

#: steps whose noise is drawn in one call (:data:`meanfield.rng.KERNEL_NOISE_BLOCK`): step ``k``
#: uses row ``k % NOISE_BLOCK`` of the draw with counter ``k // NOISE_BLOCK``
NOISE_BLOCK = KERNEL_NOISE_BLOCK
#: the final fraction of the steps over which :func:`trend_at_end` measures the loss change
TREND_FRACTION = 0.2


@dataclass(frozen=True)
class KernelState:
    """Units of every replica and the number of steps taken.

    Attributes
    ----------
    c : array of shape ``(R, N)``
        Output weights.
    y : array of shape ``(R, N, d)``
        Centres, ``|y_i| = sqrt d``.
    step : int
        Steps taken so far.
    """

    c: Any
    y: Any
    step: int = 0

    def replace(self, **changes: Any) -> KernelState:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class KernelRun:
    """Outcome of :func:`run_kernel_gd`.

    Attributes
    ----------
    record_steps : ndarray of shape ``(T,)``
        Steps at which the loss was recorded (before that step is taken).
    loss : ndarray of shape ``(R, T)``
        Closed-form loss at ``record_steps``.
    state : KernelState
        The final state, on the backend.
    """

    record_steps: np.ndarray
    loss: np.ndarray
    state: KernelState


def init_state(task: SphereKernelTask, rng: Any, n: int, c_std: float, xp: Any) -> KernelState:
    """Initial law: centres i.i.d. uniform on the sphere, ``c_i ~ N(0, c_std^2)`` i.i.d.

    Parameters
    ----------
    task : SphereKernelTask
    rng : counter-based generator with ``normal(counter, shape, purpose)`` giving ``(R, ...)``
    n : int
        Units per replica.
    c_std : float
        Standard deviation of the initial output weights; ``0`` starts from ``f_n = 0``.
    xp : array namespace
    """
    d = task.model.d
    y = task.model.pspin.inputs_from_normals(rng.normal(0, (n, d), purpose=Purpose.INIT), xp)
    c = c_std * rng.normal(0, (n,), purpose=Purpose.INIT_OUTPUT)
    return KernelState(c=c, y=y)


def tangent(y: Any, v: Any, xp: Any) -> Any:
    """``P_y v = v - (<v, y> / |y|^2) y``, the tangent part of ``v`` at ``y``, ``(..., d)``."""
    return v - (xp.sum(v * y, axis=-1, keepdims=True) / xp.sum(y * y, axis=-1, keepdims=True)) * y


def retract(y: Any, d: int, xp: Any) -> Any:
    """``sqrt(d) y / |y|``: the nearest point of the sphere ``S^{d-1}(sqrt d)``, ``(..., d)``."""
    return (math.sqrt(d) / xp.sqrt(xp.sum(y * y, axis=-1, keepdims=True))) * y


def make_kernel_gd(
    task: SphereKernelTask,
    rng: Any,
    xp: Any,
    *,
    step: float,
    beta: float,
    noise_steps: int,
    objective: str = "collocation",
) -> Callable[[KernelState], KernelState]:
    """One explicit Euler step of the mean-field gradient flow, noisy for the first steps.

    Parameters
    ----------
    task : SphereKernelTask
    rng : counter-based generator
        Draws the noise by :func:`noise_block` (counter ``step // NOISE_BLOCK``); unused when
        ``noise_steps == 0`` or ``beta == inf``.
    xp : array namespace
    step : float
        Time step, ``> 0``.
    beta : float
        Inverse temperature of the noise, ``> 0`` (``inf``: no noise).
    noise_steps : int
        Steps ``k < noise_steps`` add the noise.
    objective : {"collocation", "l2"}
        The energy whose flow is run: (4.5) as printed, or the ``L^2(mu)`` loss.

    Returns
    -------
    callable ``state -> state``
    """
    gradient_fn = task.objective_gradient(objective)
    amplitude = noise_amplitude(step, beta)
    d = task.model.d
    drawn: dict[int, Any] = {}  # the current block of noise; a cache, never part of the state

    def step_fn(state: KernelState) -> KernelState:
        c, y = state.c, state.y
        n = c.shape[-1]
        _, grad_c, grad_y = gradient_fn(c, y, xp)
        c_new = c - (step * n) * grad_c
        move = -(step * n) * grad_y
        if state.step < noise_steps and amplitude > 0:
            block = state.step // NOISE_BLOCK
            if block not in drawn:
                drawn.clear()
                drawn[block] = noise_block(rng, block, n, d)
            g = drawn[block][:, state.step % NOISE_BLOCK, ...]
            c_new = c_new + amplitude * g[..., 0]
            move = move + amplitude * g[..., 1:]
        y_new = retract(y + tangent(y, move, xp), d, xp)
        return KernelState(c=c_new, y=y_new, step=state.step + 1)

    return step_fn


def to_ensemble(state: KernelState, xp: Any = np) -> EnsembleState:
    """``(c, y)`` as the ensemble state of the engine: ``theta = (c, y_1, ..., y_d)``."""
    return EnsembleState(xp.concat((state.c[..., None], state.y), axis=-1), state.step)


def to_kernel_state(state: EnsembleState, xp: Any = np) -> KernelState:
    """The inverse of :func:`to_ensemble` (contiguous copies of ``c`` and ``y``)."""
    theta = state.theta
    return KernelState(
        c=xp.asarray(theta[..., 0], copy=True),
        y=xp.asarray(theta[..., 1:], copy=True),
        step=state.step,
    )


def make_kernel_gd_step(
    model: SphereKernelTask,
    rng: Any,
    backend: Any,
    *,
    eps: float,
    beta: float,
    noise_steps: int,
    objective: str = "collocation",
) -> Callable[[EnsembleState], EnsembleState]:
    """The NumPy reference of method ``kernel_gd`` (:mod:`particles.methods`): one step of
    :func:`make_kernel_gd` on ``theta = (c, y)``."""
    xp = backend.xp
    step_fn = make_kernel_gd(
        model, rng, xp, step=eps, beta=beta, noise_steps=noise_steps, objective=objective
    )

    def step(state: EnsembleState) -> EnsembleState:
        return to_ensemble(step_fn(to_kernel_state(state, xp)), xp)

    return step


def record_schedule(n_steps: int, n_records: int, extra: Sequence[int] = ()) -> np.ndarray:
    """About ``n_records`` log-spaced steps in ``[0, n_steps]``, with 0, ``n_steps`` and ``extra``.

    Returns
    -------
    ndarray of int64, sorted, unique
    """
    spaced = np.geomspace(1, max(n_steps, 1), max(n_records - 1, 1))
    steps = np.concatenate([[0, n_steps], np.rint(spaced), np.asarray(extra, dtype=float)])
    steps = np.unique(steps.astype(np.int64))
    return steps[(steps >= 0) & (steps <= n_steps)]


def run_kernel_gd(
    task: SphereKernelTask,
    state: KernelState,
    xp: Any,
    *,
    n_steps: int,
    advance_fn: Callable[[KernelState, int], KernelState],
    record_steps: Sequence[int] | None = None,
) -> KernelRun:
    """Advance ``n_steps`` steps, recording the closed-form loss on the way.

    Parameters
    ----------
    task : SphereKernelTask
    state : KernelState
    xp : array namespace
    n_steps : int
        Steps to take.
    advance_fn : callable ``(state, count) -> state``
        Takes ``count`` steps: :func:`make_advance` (the reference) or
        :func:`make_compiled_advance`.
    record_steps : sequence of int, optional
        Steps (counted from ``state.step``) at which to record the loss, in ``[0, n_steps]``;
        default ``record_schedule(n_steps, 60)``.

    Returns
    -------
    KernelRun
    """
    records = (
        record_schedule(n_steps, 60)
        if record_steps is None
        else np.unique(np.asarray(record_steps, dtype=np.int64))
    )
    if records.size and (records[0] < 0 or records[-1] > n_steps):
        raise ValueError(f"record steps must lie in [0, {n_steps}]")
    losses = []
    done = 0
    for target in records:
        state = advance_fn(state, int(target) - done)
        done = int(target)
        losses.append(to_numpy(task.loss(state.c, state.y, xp)))
    state = advance_fn(state, n_steps - done)
    loss = np.stack(losses, axis=-1) if losses else np.zeros((state.c.shape[0], 0))
    return KernelRun(record_steps=records, loss=loss, state=state)


def loop_advance(
    step_fn: Callable[[KernelState], KernelState],
) -> Callable[[KernelState, int], KernelState]:
    """``advance(state, count)``: ``count`` calls of ``step_fn`` (the reference loop)."""

    def advance(state: KernelState, count: int) -> KernelState:
        for _ in range(count):
            state = step_fn(state)
        return state

    return advance


@dataclass(frozen=True)
class FlatRun(KernelRun):
    """Outcome of :func:`run_until_flat`: a :class:`KernelRun` and its convergence check.

    Attributes
    ----------
    final_trend : ndarray of shape ``(R,)``
        :func:`trend_at_end` of the records.
    converged : bool
        ``|final_trend| <= flat_tolerance`` for every replica (else ``max_steps`` was reached).
    """

    final_trend: np.ndarray
    converged: bool


def trend_at_end(record_steps: np.ndarray, loss: np.ndarray) -> np.ndarray:
    """``(L(s) - L(T)) / L(T)``: the relative fall over (at least) the last 20 % of the steps.

    ``T`` is the last record and ``s`` the last record at or before ``(1 - TREND_FRACTION) T``.

    Parameters
    ----------
    record_steps : array of shape ``(T,)``, increasing
    loss : array of shape ``(R, T)``

    Returns
    -------
    ndarray of shape ``(R,)``
    """
    record_steps = np.asarray(record_steps)
    at = int(np.flatnonzero(record_steps <= (1.0 - TREND_FRACTION) * record_steps[-1])[-1])
    loss = np.asarray(loss)
    return (loss[:, at] - loss[:, -1]) / loss[:, -1]


def run_until_flat(
    task: SphereKernelTask,
    state: KernelState,
    xp: Any,
    *,
    advance_fn: Callable[[KernelState, int], KernelState],
    first_steps: int,
    max_steps: int,
    flat_tolerance: float,
    n_records: int = 60,
    extra: Sequence[int] = (),
) -> FlatRun:
    """Advance until the loss is flat or ``max_steps`` steps are taken.

    The first chunk is ``first_steps`` steps, recorded at ``record_schedule(first_steps,
    n_records, extra)`` and at ``floor(0.8 first_steps)``. Then, while some replica has
    ``|trend_at_end| > flat_tolerance``, the run is lengthened from ``T`` to
    ``min(ceil(T / 0.8), max_steps)`` steps (recorded at its end), so that the previous end is
    the start of the last 20 %: the check then compares the loss ``T / 0.8`` steps in with the
    loss at ``T``. ``state.step`` should be 0 (step counts are absolute).

    Returns
    -------
    FlatRun
    """
    if not 1 <= first_steps <= max_steps:
        raise ValueError(f"need 1 <= first_steps <= max_steps, got {first_steps}, {max_steps}")
    trend_step = int(math.floor((1.0 - TREND_FRACTION) * first_steps))
    out = run_kernel_gd(
        task,
        state,
        xp,
        n_steps=first_steps,
        advance_fn=advance_fn,
        record_steps=record_schedule(first_steps, n_records, [*extra, trend_step]),
    )
    steps, losses, state, total = [out.record_steps], [out.loss], out.state, first_steps
    while True:
        trend = trend_at_end(np.concatenate(steps), np.concatenate(losses, axis=-1))
        if np.all(np.abs(trend) <= flat_tolerance) or total >= max_steps:
            break
        count = min(math.ceil(total / (1.0 - TREND_FRACTION)), max_steps) - total
        chunk = run_kernel_gd(
            task, state, xp, n_steps=count, advance_fn=advance_fn, record_steps=[count]
        )
        steps.append(chunk.record_steps + total)
        losses.append(chunk.loss)
        state, total = chunk.state, total + count
    return FlatRun(
        record_steps=np.concatenate(steps),
        loss=np.concatenate(losses, axis=-1),
        state=state,
        final_trend=trend,
        converged=bool(np.all(np.abs(trend) <= flat_tolerance)),
    )


# ---------------------------------------------------------------------- either engine


def make_kernel_gd_advance(
    task: SphereKernelTask,
    rng: Any,
    xp: Any,
    *,
    engine: str = "auto",
    step: float,
    beta: float,
    noise_steps: int,
    objective: str = "collocation",
) -> Callable[[KernelState, int], KernelState]:
    """``advance(state, count)`` of method ``kernel_gd`` on the engine ``select_engine`` picks
    for ``engine`` (``"auto"``, ``"compiled"`` or ``"numpy"``): the compiled kernels where the
    task offers them on the NumPy backend, else the reference loop of :func:`make_kernel_gd`."""
    task.objective_gradient(objective)  # checks the name
    # the backend's name from its namespace: numpy, or array_api_compat's wrapper of it
    backend_name = getattr(xp, "__name__", "").rpartition(".")[2]
    choice = select_engine(engine, task, "kernel_gd", backend_name)
    if choice.engine == "numpy":
        return loop_advance(
            make_kernel_gd(
                task, rng, xp, step=step, beta=beta, noise_steps=noise_steps, objective=objective
            )
        )
    compiled = make_engine_advance(
        task,
        rng,
        method="kernel_gd",
        eps=step,
        beta=beta,
        noise_steps=noise_steps,
        objective=objective,
        choice=choice,
    )

    def advance(state: KernelState, count: int) -> KernelState:
        return to_kernel_state(compiled(to_ensemble(state), state.step + count))

    return advance


def make_compiled_advance(
    task: SphereKernelTask,
    rng: Any,
    *,
    step: float,
    beta: float,
    noise_steps: int,
    objective: str = "collocation",
) -> Callable[[KernelState, int], KernelState]:
    """The same steps as ``loop_advance(make_kernel_gd(...))``, compiled with numba (NumPy only):
    :func:`make_kernel_gd_advance` on the compiled engine.

    One pass over the pairs ``i <= j`` per step (the pair functions are symmetric), no
    ``N x N`` array (:mod:`particles.engine.sphere`). The noise is drawn by :func:`noise_block`
    exactly as in :func:`make_kernel_gd` (same counters, same numbers), one block of steps per
    call. Agrees with the reference to round-off (tested).
    """
    return make_kernel_gd_advance(
        task,
        rng,
        np,
        engine="compiled",
        step=step,
        beta=beta,
        noise_steps=noise_steps,
        objective=objective,
    )
