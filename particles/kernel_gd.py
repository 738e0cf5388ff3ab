"""Population gradient descent of Gaussian-kernel units on the sphere (RVE eq. (4.5)).

The units ``(c_i, y_i)`` of :class:`meanfield.model.sphere_kernel.SphereKernel` follow the
gradient flow of ``N L`` in mean-field time (a rate independent of ``N``), with the exact
population loss of the model (no data batches, cost ``(N d)^2`` per step):

.. math::

    \\dot c_i = F_i - \\frac1N \\sum_j c_j K_{ij}, \\qquad
    \\dot y_i = P_{y_i}\\, c_i \\Big(\\nabla F_i - \\frac1N \\sum_j c_j \\nabla_{y_i} K_{ij}\\Big),

``P_y = I - y y^T / |y|^2`` the tangent projector of the sphere at ``y``.

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
``N L``; it is a device for leaving poor configurations early, and it is switched off for the
second half so that the final loss is the gradient-descent minimum, not a thermal average.

Math code takes ``xp`` and uses array-API calls only; shapes: ``R`` replicas, ``N`` units.

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

import numba
import numpy as np

from meanfield.backends import to_numpy
from meanfield.model.sphere_kernel import SphereKernelTask

__all__ = ["KernelState", "KernelRun", "NOISE_BLOCK", "init_state", "make_advance",
           "make_compiled_advance", "make_kernel_gd", "noise_block", "record_schedule", "retract",
           "run_kernel_gd", "tangent"]

#: purpose tags of the counter-based generator: noise (counter = block of steps), initial
#: centres and initial output weights (counter 0); 4 is the model's test points
PURPOSE_NOISE = 2
#: steps whose noise is drawn in one call: step ``k`` uses row ``k % NOISE_BLOCK`` of the draw
#: with counter ``k // NOISE_BLOCK`` (one generator call per block, not per step)
NOISE_BLOCK = 512
PURPOSE_INIT_Y = 3
PURPOSE_INIT_C = 5


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
    y = task.model.pspin.inputs_from_normals(rng.normal(0, (n, d), purpose=PURPOSE_INIT_Y), xp)
    c = c_std * rng.normal(0, (n,), purpose=PURPOSE_INIT_C)
    return KernelState(c=c, y=y)


def tangent(y: Any, v: Any, xp: Any) -> Any:
    """``P_y v = v - (<v, y> / |y|^2) y``, the tangent part of ``v`` at ``y``, ``(..., d)``."""
    return v - (xp.sum(v * y, axis=-1, keepdims=True)
                / xp.sum(y * y, axis=-1, keepdims=True)) * y


def retract(y: Any, d: int, xp: Any) -> Any:
    """``sqrt(d) y / |y|``: the nearest point of the sphere ``S^{d-1}(sqrt d)``, ``(..., d)``."""
    return (math.sqrt(d) / xp.sqrt(xp.sum(y * y, axis=-1, keepdims=True))) * y


def make_kernel_gd(task: SphereKernelTask, rng: Any, xp: Any, *, step: float, beta: float,
                   noise_steps: int) -> Callable[[KernelState], KernelState]:
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

    Returns
    -------
    callable ``state -> state``
    """
    amplitude = _noise_amplitude(step, beta)
    d = task.model.d
    drawn: dict[int, Any] = {}  # the current block of noise; a cache, never part of the state

    def step_fn(state: KernelState) -> KernelState:
        c, y = state.c, state.y
        n = c.shape[-1]
        _, grad_c, grad_y = task.loss_gradient(c, y, xp)
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


def _noise_amplitude(step: float, beta: float) -> float:
    """``sqrt(2 step / beta)``, after checking ``step > 0`` and ``beta > 0``."""
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step!r}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    return math.sqrt(2.0 * step / beta)


def noise_block(rng: Any, block: int, n: int, d: int) -> Any:
    """Unscaled noise of steps ``block * NOISE_BLOCK ...``: shape ``(R, NOISE_BLOCK, N, d + 1)``.

    Column 0 drives ``c``, columns ``1..d`` the centres (before the tangent projection).
    """
    return rng.normal(block, (NOISE_BLOCK, n, d + 1), purpose=PURPOSE_NOISE)


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


def run_kernel_gd(task: SphereKernelTask, state: KernelState, xp: Any, *, n_steps: int,
                  advance_fn: Callable[[KernelState, int], KernelState],
                  record_steps: Sequence[int] | None = None) -> KernelRun:
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
    records = (record_schedule(n_steps, 60) if record_steps is None
               else np.unique(np.asarray(record_steps, dtype=np.int64)))
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


def make_advance(step_fn: Callable[[KernelState], KernelState]
                 ) -> Callable[[KernelState, int], KernelState]:
    """``advance(state, count)``: ``count`` calls of ``step_fn`` (the reference loop)."""

    def advance(state: KernelState, count: int) -> KernelState:
        for _ in range(count):
            state = step_fn(state)
        return state

    return advance


# ---------------------------------------------------------------------- compiled twin (NumPy)

def make_compiled_advance(task: SphereKernelTask, rng: Any, *, step: float, beta: float,
                          noise_steps: int) -> Callable[[KernelState, int], KernelState]:
    """The same steps as ``make_advance(make_kernel_gd(...))``, compiled with numba (NumPy only).

    One pass over the pairs ``i <= j`` per step (``K`` is symmetric), the series summed in
    rows, no ``N x N`` array. The noise is drawn by :func:`noise_block` exactly as in
    :func:`make_kernel_gd` (same counters, same numbers), one block of steps per call.
    Agrees with the reference to round-off (tested).
    """
    model = task.model
    d, alpha = model.d, model.alpha
    tensor = np.asarray(to_numpy(task.tensor), dtype=np.float64)
    gradient_tensor = (tensor + np.transpose(tensor, (1, 0, 2)) + np.transpose(tensor, (2, 0, 1)))
    pair_scale = math.exp(-2.0 * alpha * d)
    coef_k = np.asarray(task.coefficients[0]) * pair_scale
    coef_q = np.asarray(task.coefficients[1]) * (pair_scale * alpha ** 2)
    coef_unit = np.asarray(task.coefficients[2:5]) * math.exp(-alpha * d)
    trace = np.asarray(to_numpy(task.trace), dtype=np.float64)
    amplitude = _noise_amplitude(step, beta)
    constants = (gradient_tensor, trace, coef_k, coef_q, coef_unit, float(alpha), float(step))

    def advance(state: KernelState, count: int) -> KernelState:
        c = np.array(state.c, dtype=np.float64)  # copies: the kernel works in place
        y = np.array(state.y, dtype=np.float64)
        k, end = state.step, state.step + count
        while k < end:
            if k < noise_steps and amplitude > 0:
                block, offset = divmod(k, NOISE_BLOCK)
                todo = min(end, noise_steps, (block + 1) * NOISE_BLOCK) - k
                noise = np.asarray(noise_block(rng, block, c.shape[-1], d))
                noise = amplitude * noise[:, offset:offset + todo]
                _euler_steps(c, y, *constants, todo, noise, True)
            else:
                todo = end - k
                _euler_steps(c, y, *constants, todo, np.zeros((1, 1, 1, 1)), False)
            k += todo
        return KernelState(c=c, y=y, step=k)

    return advance


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _horner(coefficients, z):
    out = coefficients[-1]
    for m in range(coefficients.shape[0] - 2, -1, -1):
        out = out * z + coefficients[m]
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _euler_steps(c, y, gradient_tensor, trace, coef_k, coef_q, coef_unit, alpha, step, count,
                 noise, noisy):
    """``count`` Euler steps of every replica in place; ``c (R, N)``, ``y (R, N, d)``.

    ``noise (R, count, N, d + 1)`` (already scaled) is added when ``noisy``.
    ``coef_k``, ``coef_q``: series of ``K`` and ``Q`` (constants folded in); ``coef_unit``: of
    ``e^{-alpha d} h^(k)``, ``k = 2, 3, 4``; ``gradient_tensor = a + a^(102) + a^(201)``.
    """
    n_rep, n, d = y.shape
    pair_z = d * alpha * alpha / 4.0
    kc = np.empty(n)
    qc = np.empty(n)
    qcy = np.empty((d, n))
    yt = np.empty((d, n))
    zrow = np.empty(n)
    krow = np.empty(n)
    qrow = np.empty(n)
    g = np.empty(d)
    move = np.empty(d)
    for t in range(count):
        for r in range(n_rep):
            for a in range(d):
                for i in range(n):
                    yt[a, i] = y[r, i, a]
            _pair_sums(c[r], yt, coef_k, coef_q, pair_z, kc, qc, qcy, zrow, krow, qrow)
            for i in range(n):
                _unit_update(c, y, r, i, gradient_tensor, trace, coef_unit, alpha, step,
                             kc[i] / n, qc[i] / n, qcy[:, i] / n, g, move, noise, t, noisy)


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _pair_sums(c, yt, coef_k, coef_q, pair_z, kc, qc, qcy, zrow, krow, qrow):
    """``kc_i = sum_j K_ij c_j``, ``qc_i = sum_j Q_ij c_j``, ``qcy_i = sum_j Q_ij c_j y_j``.

    Pairs ``j >= i`` only (``K``, ``Q`` symmetric); the loops over ``j`` are unit-stride on
    ``yt (d, N)`` so that they vectorise, the series summed for a whole row at once.
    """
    d, n = yt.shape
    kc[:] = 0.0
    qc[:] = 0.0
    qcy[:, :] = 0.0
    top = coef_k.shape[0] - 1
    for i in range(n):
        for j in range(i, n):
            zrow[j] = 0.0
        for a in range(d):
            yi = yt[a, i]
            for j in range(i, n):
                s = yi + yt[a, j]
                zrow[j] += s * s
        for j in range(i, n):
            zrow[j] *= pair_z
            krow[j] = coef_k[top]
            qrow[j] = coef_q[top]
        for m in range(top - 1, -1, -1):
            ck = coef_k[m]
            cq = coef_q[m]
            for j in range(i, n):
                krow[j] = krow[j] * zrow[j] + ck
                qrow[j] = qrow[j] * zrow[j] + cq
        ci = c[i]
        krow[i] *= 0.5  # the diagonal pair is met once but added to both ends below
        qrow[i] *= 0.5
        sk = 0.0
        sq = 0.0
        for j in range(i, n):
            sk += krow[j] * c[j]
            sq += qrow[j] * c[j]
            kc[j] += krow[j] * ci
            qc[j] += qrow[j] * ci
        kc[i] += sk
        qc[i] += sq
        for a in range(d):
            sa = 0.0
            yi = yt[a, i]
            for j in range(i, n):
                sa += qrow[j] * c[j] * yt[a, j]
                qcy[a, j] += qrow[j] * ci * yi
            qcy[a, i] += sa


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _unit_update(c, y, r, i, gradient_tensor, trace, coef_unit, alpha, step, kc, qc, qcy, g,
                 move, noise, t, noisy):
    """Euler update of unit ``i`` of replica ``r`` from its pair sums (divided by ``N``)."""
    d = y.shape[2]
    sq = 0.0
    lin = 0.0
    for a in range(d):
        sq += y[r, i, a] * y[r, i, a]
        lin += trace[a] * y[r, i, a]
    u = alpha * alpha * sq / 2.0
    z = u * d / 2.0
    h2 = _horner(coef_unit[0], z)
    h3 = _horner(coef_unit[1], z)
    h4 = _horner(coef_unit[2], z)
    lin *= alpha / d  # <b, v> / d
    cubic = 0.0
    for k in range(d):
        acc = 0.0
        for p in range(d):
            for q in range(d):
                acc += gradient_tensor[k, p, q] * y[r, i, p] * y[r, i, q]
        g[k] = acc * alpha * alpha / d  # grad f(v)
        cubic += g[k] * y[r, i, k] * alpha
    cubic /= 3.0  # f(v) = <v, grad f(v)> / 3 for a cubic form
    value = h3 * cubic + h2 * lin
    ci = c[r, i]
    radial = h4 * cubic + h3 * lin
    dot = 0.0
    for a in range(d):
        grad_f = alpha * (radial * alpha * y[r, i, a] + h3 * g[a] + h2 * trace[a] / d)
        move[a] = step * ci * (grad_f - (qc * y[r, i, a] + qcy[a]))
        if noisy:
            move[a] += noise[r, t, i, a + 1]
        dot += move[a] * y[r, i, a]
    c_new = ci + step * (value - kc)
    if noisy:
        c_new += noise[r, t, i, 0]
    norm = 0.0
    for a in range(d):
        move[a] = y[r, i, a] + move[a] - dot / sq * y[r, i, a]
        norm += move[a] * move[a]
    norm = math.sqrt(d / norm)
    for a in range(d):
        y[r, i, a] = move[a] * norm
    c[r, i] = c_new
