"""The kernel-unit flows of :mod:`particles.kernel_gd`, compiled (method ``kernel_gd``, CPU).

Gaussian-kernel units ``theta_i = (c_i, y_i)``, ``y_i`` on the sphere ``S^{d-1}(sqrt d)``
(:class:`meanfield.model.pieces.SphereUnitPieces`); two flows, one scheme (explicit Euler,
tangent step, renormalisation onto the sphere):

* :func:`l2_steps`: the gradient flow of ``N L``, ``L`` the ``L^2(mu)`` loss, from the closed
  forms ``K_ij``, ``F_i`` of :class:`meanfield.model.rve.sphere_kernel.SphereKernelTask`;
* :func:`collocation_steps`: RVE's (4.5) as printed, the gradient flow of ``N E``, ``E`` the
  collocation energy, from ``f(y_i)`` and ``phi(y_i, y_j) = exp(-alpha |y_i - y_j|^2 / 2)``.

Each step of each replica makes one pass over the pairs ``i <= j`` (the pair functions are
symmetric), accumulating per-unit sums (``O(N^2 d)``, no ``N x N`` array), then updates every
unit from the sums of the old state. :func:`make_sphere_advance` draws the noise (the same
numbers as the reference, :func:`noise_block`) and copies the state; these functions agree
with the array-API reference of :mod:`particles.kernel_gd` to round-off (tested).

Argument names: ``c (R, N)`` and ``y (R, N, d)`` are updated in place; ``noise (R, count, N,
d + 1)`` (already scaled; column 0 drives ``c``) is added when ``noisy``;
``gradient_tensor = a + a^(102) + a^(201)``, with which ``grad f(x)_k = (1/d) sum_pq
G_kpq x_p x_q`` and ``f(x) = <x, grad f(x)> / 3`` for the cubic target.

References
----------
G. M. Rotskoff, E. Vanden-Eijnden, Comm. Pure Appl. Math. 75 (2022), arXiv:1805.00915, eq. (4.5).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from meanfield.model.pieces import SphereUnitPieces
from meanfield.model.rve.sphere_kernel import OBJECTIVES
from meanfield.rng import KERNEL_NOISE_BLOCK, Purpose

from ..state import EnsembleState
from .advance import Advance, host
from .philox import JIT

__all__ = ["collocation_steps", "l2_steps", "make_sphere_advance", "noise_block", "noise_amplitude"]


def noise_block(rng: Any, block: int, n: int, d: int) -> Any:
    """Unscaled noise of steps ``block * KERNEL_NOISE_BLOCK ...``: shape ``(R,
    KERNEL_NOISE_BLOCK, N, d + 1)`` (column 0 drives ``c``, columns ``1..d`` the centres, before
    the tangent projection). The one draw of the kernel-unit noise, for both paths."""
    return rng.normal(block, (KERNEL_NOISE_BLOCK, n, d + 1), purpose=Purpose.NOISE)


def noise_amplitude(step: float, beta: float) -> float:
    """``sqrt(2 step / beta)``, after checking ``step > 0`` and ``beta > 0``."""
    if not step > 0:
        raise ValueError(f"step must be > 0, got {step!r}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    return math.sqrt(2.0 * step / beta)


def make_sphere_advance(
    pieces: SphereUnitPieces,
    rng: Any,
    *,
    eps: float,
    beta: float,
    noise_steps: int,
    objective: str = "collocation",
) -> Advance:
    """The compiled steps of the kernel-unit flow ``objective`` (``theta = (c, y)``).

    The same steps as the reference (:func:`particles.kernel_gd.make_kernel_gd`): step ``eps``,
    noise of inverse temperature ``beta`` for the steps ``k < noise_steps``, drawn by
    :func:`noise_block` (same counters, same numbers), one block of steps per kernel call.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    d, alpha = pieces.d, pieces.alpha
    tensor = pieces.tensor
    gradient_tensor = tensor + np.transpose(tensor, (1, 0, 2)) + np.transpose(tensor, (2, 0, 1))
    amplitude = noise_amplitude(eps, beta)
    if objective == "collocation":
        constants: tuple = (gradient_tensor, float(alpha), float(eps))
        kernel: Callable = collocation_steps
    else:
        pair_scale = math.exp(-2.0 * alpha * d)
        coefficients = pieces.coefficients
        constants = (
            gradient_tensor,
            pieces.trace,
            np.asarray(coefficients[0]) * pair_scale,
            np.asarray(coefficients[1]) * (pair_scale * alpha**2),
            np.asarray(coefficients[2:5]) * math.exp(-alpha * d),
            float(alpha),
            float(eps),
        )
        kernel = l2_steps

    def advance(
        state: EnsembleState, to_step: int, report: Callable[[int], None] | None = None
    ) -> EnsembleState:
        theta = host(state.theta)
        c = np.array(theta[..., 0], dtype=np.float64)  # copies: the kernel works in place
        y = np.array(theta[..., 1:], dtype=np.float64)
        k = state.step
        while k < to_step:
            if k < noise_steps and amplitude > 0:
                block, offset = divmod(k, KERNEL_NOISE_BLOCK)
                todo = min(to_step, noise_steps, (block + 1) * KERNEL_NOISE_BLOCK) - k
                noise = np.asarray(noise_block(rng, block, c.shape[-1], d))
                noise = amplitude * noise[:, offset : offset + todo]
                kernel(c, y, *constants, todo, noise, True)
            else:
                todo = to_step - k
                kernel(c, y, *constants, todo, np.zeros((1, 1, 1, 1)), False)
            k += todo
            if report is not None:
                report(todo)
        step = max(k, state.step)
        return state.replace(theta=np.concatenate((c[..., None], y), axis=-1), step=step)

    return advance


@numba.njit(**JIT)
def _horner(coefficients, z):
    out = coefficients[-1]
    for m in range(coefficients.shape[0] - 2, -1, -1):
        out = out * z + coefficients[m]
    return out


@numba.njit(**JIT)
def _cubic(gradient_tensor, y, r, i, scale, g):
    """``f(v)``, with ``g <- grad f(v)``, at ``v = scale * y[r, i]`` (the 3-spin target)."""
    d = y.shape[2]
    cubic = 0.0
    for k in range(d):
        acc = 0.0
        for p in range(d):
            for q in range(d):
                acc += gradient_tensor[k, p, q] * y[r, i, p] * y[r, i, q]
        g[k] = acc * scale * scale / d
        cubic += g[k] * y[r, i, k] * scale
    return cubic / 3.0


@numba.njit(**JIT)
def _retract(y, r, i, move):
    """``y_i <- sqrt(d) w / |w|``, ``w = y_i + P_{y_i} move`` (``move`` is overwritten)."""
    d = y.shape[2]
    sq = 0.0
    dot = 0.0
    for a in range(d):
        sq += y[r, i, a] * y[r, i, a]
        dot += move[a] * y[r, i, a]
    norm = 0.0
    for a in range(d):
        move[a] = y[r, i, a] + move[a] - dot / sq * y[r, i, a]
        norm += move[a] * move[a]
    norm = math.sqrt(d / norm)
    for a in range(d):
        y[r, i, a] = move[a] * norm


# ---------------------------------------------------------------------- the L2(mu) flow


@numba.njit(**JIT)
def _transpose(y, r, yt):
    """``yt[a, i] = y[r, i, a]``: replica ``r``'s centres, unit-stride along the units."""
    for a in range(yt.shape[0]):
        for i in range(yt.shape[1]):
            yt[a, i] = y[r, i, a]


@numba.njit(**JIT)
def l2_steps(
    c, y, gradient_tensor, trace, coef_k, coef_q, coef_unit, alpha, step, count, noise, noisy
):
    """``count`` Euler steps of the ``L^2(mu)`` flow of every replica, in place.

    ``coef_k``, ``coef_q``: series of ``K`` and ``Q`` (constants folded in); ``coef_unit``: of
    ``e^{-alpha d} h^(k)``, ``k = 2, 3, 4``; ``trace``: the vector ``b`` of the model.
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
            _transpose(y, r, yt)
            _l2_pair_sums(c[r], yt, coef_k, coef_q, pair_z, kc, qc, qcy, zrow, krow, qrow)
            for i in range(n):
                _l2_unit_update(
                    c,
                    y,
                    r,
                    i,
                    gradient_tensor,
                    trace,
                    coef_unit,
                    alpha,
                    step,
                    kc[i] / n,
                    qc[i] / n,
                    qcy[:, i] / n,
                    g,
                    move,
                    noise,
                    t,
                    noisy,
                )


@numba.njit(fastmath={"contract"}, **JIT)
def _l2_pair_sums(c, yt, coef_k, coef_q, pair_z, kc, qc, qcy, zrow, krow, qrow):
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


@numba.njit(**JIT)
def _l2_unit_update(
    c,
    y,
    r,
    i,
    gradient_tensor,
    trace,
    coef_unit,
    alpha,
    step,
    kc,
    qc,
    qcy,
    g,
    move,
    noise,
    t,
    noisy,
):
    """Euler update of unit ``i`` of replica ``r`` from its pair sums (divided by ``N``)."""
    d = y.shape[2]
    sq = 0.0
    lin = 0.0
    for a in range(d):
        sq += y[r, i, a] * y[r, i, a]
        lin += trace[a] * y[r, i, a]
    z = alpha * alpha * sq * d / 4.0  # z = d u / 2, u = |v|^2 / 2, v = alpha y
    h2 = _horner(coef_unit[0], z)
    h3 = _horner(coef_unit[1], z)
    h4 = _horner(coef_unit[2], z)
    lin *= alpha / d  # <b, v> / d
    cubic = _cubic(gradient_tensor, y, r, i, alpha, g)  # f(v), g = grad f(v)
    value = h3 * cubic + h2 * lin
    ci = c[r, i]
    radial = h4 * cubic + h3 * lin
    for a in range(d):
        grad_f = alpha * (radial * alpha * y[r, i, a] + h3 * g[a] + h2 * trace[a] / d)
        move[a] = step * ci * (grad_f - (qc * y[r, i, a] + qcy[a]))
        if noisy:
            move[a] += noise[r, t, i, a + 1]
    c_new = ci + step * (value - kc)
    if noisy:
        c_new += noise[r, t, i, 0]
    _retract(y, r, i, move)
    c[r, i] = c_new


# ---------------------------------------------------------------------- the flow (4.5)


@numba.njit(**JIT)
def collocation_steps(c, y, gradient_tensor, alpha, step, count, noise, noisy):
    """``count`` Euler steps of (4.5), the flow of ``N E``, of every replica, in place.

    .. math::

        c_i \\mathrel{+}= \\Delta t\\,\\big(f(y_i) - \\tfrac1N (\\Phi c)_i\\big), \\qquad
        y_i \\leftarrow R\\Big(y_i + P_{y_i} \\Delta t\\, c_i \\big(\\nabla f(y_i)
        + \\tfrac{\\alpha}{N} [(\\Phi c)_i y_i - (\\Phi (c y))_i]\\big)\\Big),

    ``Phi_ij = exp(-alpha |y_i - y_j|^2 / 2)``, plus the noise, ``R`` the renormalisation.
    """
    n_rep, n, d = y.shape
    pc = np.empty(n)
    pcy = np.empty((d, n))
    yt = np.empty((d, n))
    row = np.empty(n)
    g = np.empty(d)
    move = np.empty(d)
    for t in range(count):
        for r in range(n_rep):
            _transpose(y, r, yt)
            _collocation_pair_sums(c[r], yt, alpha, pc, pcy, row)
            for i in range(n):
                ci = c[r, i]
                value = _cubic(gradient_tensor, y, r, i, 1.0, g)  # f(y_i), g = grad f(y_i)
                pci = pc[i] / n
                for a in range(d):
                    move[a] = step * ci * (g[a] + alpha * (pci * y[r, i, a] - pcy[a, i] / n))
                    if noisy:
                        move[a] += noise[r, t, i, a + 1]
                c_new = ci + step * (value - pci)
                if noisy:
                    c_new += noise[r, t, i, 0]
                _retract(y, r, i, move)
                c[r, i] = c_new


@numba.njit(fastmath={"contract"}, **JIT)
def _collocation_pair_sums(c, yt, alpha, pc, pcy, row):
    """``pc_i = sum_j Phi_ij c_j`` and ``pcy_i = sum_j Phi_ij c_j y_j``, pairs ``j >= i`` once.

    ``yt (d, N)`` is the transposed centres, so the loops over ``j`` are unit-stride.
    """
    d, n = yt.shape
    pc[:] = 0.0
    pcy[:, :] = 0.0
    half_alpha = 0.5 * alpha
    for i in range(n):
        for j in range(i, n):
            row[j] = 0.0
        for a in range(d):
            yi = yt[a, i]
            for j in range(i, n):
                s = yi - yt[a, j]
                row[j] += s * s
        for j in range(i, n):
            row[j] = math.exp(-half_alpha * row[j])
        row[i] *= 0.5  # the diagonal pair is met once but added to both ends below
        ci = c[i]
        sp = 0.0
        for j in range(i, n):
            sp += row[j] * c[j]
            pc[j] += row[j] * ci
        pc[i] += sp
        for a in range(d):
            sa = 0.0
            yi = yt[a, i]
            for j in range(i, n):
                sa += row[j] * c[j] * yt[a, j]
                pcy[a, j] += row[j] * ci * yi
            pcy[a, i] += sa
