"""Compiled pair sums of the exact MMN kernel: the ``O(N^2)`` part of the risk and of grad Psi.

For the units of one view (:meth:`IsotropicGaussians.pair_views`) with radii ``r_i``, unit
directions ``u_i`` and ``U_ij = weight sum_tau G(tau r_i, tau r_j, c_ij)``, a replica's row ``i``
needs, over ``j != i``:

* ``sum_j U_ij`` (the risk),
* ``sum_j dU_ij/dr_i`` and ``sum_j dU_ij/dc (u_j - c_ij u_i)`` (grad Psi).

Each row is computed on the fly: the cosines ``c_ij`` by one pass over the directions, then
the Mehler series (vectorised over ``j``, cut at the row's order ``K_i`` from its largest
``|c| <= split``) for the pairs below ``split``, and the closed form of :mod:`.bivariate` for
the pairs above it. No ``N x N`` array is stored. The per-unit tables ``F_k(tau r_i)`` and
``F_k'`` come from the model's own array code (:meth:`PiecewiseLinear.hermite_coefficients`),
as do ``V`` and the diagonal: the compiled code only sums pairs.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from .activations import FAST
from .bivariate import pair_moments, pair_scratch
from .philox import JIT

__all__ = ["pair_sums"]


@numba.njit(parallel=True, fastmath=FAST, **JIT)
def pair_sums(
    directions,
    coeffs,
    slopes,
    a,
    taus,
    weight,
    knots,
    jumps,
    left,
    split,
    tol,
    gradient,
    value,
    radial,
    tangential,
):
    """Row sums of the off-diagonal pair kernel of every replica.

    Parameters
    ----------
    directions : array of shape ``(R, d, N)``
        Unit directions, unit-minor.
    coeffs : array of shape ``(R, T, K + 1, N)``
        ``F_k(tau_t r_i)``, order-major.
    slopes : array of shape ``(R, T, K + 1, N)``
        ``F_k'(tau_t r_i)`` (read only when ``gradient``).
    a : array of shape ``(R, T, N)``
        ``tau_t r_i``.
    taus : array of shape ``(T,)``
    weight : float
        ``U = weight sum_tau G``.
    knots, jumps, left
        The piecewise-linear activation.
    split : float
        Pairs with ``|c| > split`` use the closed form.
    tol : float
        Mehler tolerance: row ``i`` sums ``K_i`` terms, ``c_i^(K_i + 1) <= tol``, ``c_i`` its
        largest ``|c| <= split`` (``K_i <= K``).
    gradient : bool
    value : output, shape ``(R,)``
        ``sum_{i != j} U_ij``.
    radial : output, shape ``(R, N)``
        ``sum_{j != i} dU_ij/dr_i`` (when ``gradient``).
    tangential : output, shape ``(R, d, N)``
        ``sum_{j != i} dU_ij/dc (u_j - c_ij u_i)`` (when ``gradient``).
    """
    n_replicas, dim, n_units = directions.shape
    n_taus = taus.shape[0]
    k_max = coeffs.shape[2] - 1
    log_tol = math.log(tol)
    for rep in numba.prange(n_replicas):
        u = directions[rep]
        cos = np.empty(n_units)
        power = np.empty(n_units)
        below = np.empty(n_units)
        row_value = np.empty(n_units)
        row_radial = np.empty(n_units)
        row_dc = np.empty(n_units)
        scratch = pair_scratch()
        total = 0.0
        for i in range(n_units):
            for j in range(n_units):
                cos[j] = 0.0
            for m in range(dim):
                ui = u[m, i]
                for j in range(n_units):
                    cos[j] += ui * u[m, j]
            cos[i] = 0.0
            c_row = 0.0
            for j in range(n_units):
                c = abs(cos[j])
                if c <= split and j != i:
                    c_row = max(c_row, c)
            order = k_max if c_row >= 1.0 else 1
            if 0.0 < c_row < 1.0:
                order = min(k_max, max(1, int(math.ceil(log_tol / math.log(c_row))) - 1))
            for j in range(n_units):
                row_value[j] = 0.0
                row_radial[j] = 0.0
                row_dc[j] = 0.0
            for t in range(n_taus):
                _mehler_row(
                    i,
                    cos,
                    coeffs[rep, t],
                    slopes[rep, t],
                    order,
                    split,
                    gradient,
                    taus[t],
                    power,
                    below,
                    row_value,
                    row_radial,
                    row_dc,
                )
                for j in range(n_units):
                    if j != i and abs(cos[j]) > split:
                        g, g_a, g_c = pair_moments(
                            a[rep, t, i], a[rep, t, j], cos[j], knots, jumps, left, scratch
                        )
                        row_value[j] += g
                        row_radial[j] += taus[t] * g_a
                        row_dc[j] += g_c
            row_total = 0.0
            for j in range(n_units):
                row_total += row_value[j]
            total += weight * row_total
            if gradient:
                rad = 0.0
                along = 0.0
                for j in range(n_units):
                    rad += row_radial[j]
                    along += row_dc[j] * cos[j]
                radial[rep, i] = weight * rad
                for m in range(dim):
                    acc = 0.0
                    for j in range(n_units):
                        acc += row_dc[j] * u[m, j]
                    tangential[rep, m, i] = weight * (acc - along * u[m, i])
        value[rep] = total


@numba.njit(fastmath=FAST, **JIT)
def _mehler_row(
    i, cos, coeffs, slopes, order, split, gradient, tau, power, below, row_value, row_radial, row_dc
):
    """Add the Mehler terms ``k = 0..order`` of row ``i`` (pairs with ``|c| <= split``)."""
    n_units = cos.shape[0]
    for j in range(n_units):
        keep = 1.0 if (abs(cos[j]) <= split and j != i) else 0.0
        power[j] = keep
        below[j] = keep
    for k in range(order + 1):
        f_i = coeffs[k, i]
        row = coeffs[k]
        for j in range(n_units):
            row_value[j] += power[j] * f_i * row[j]
        if gradient:
            s_i = tau * slopes[k, i]
            for j in range(n_units):
                row_radial[j] += power[j] * s_i * row[j]
            if k >= 1:
                kf = k * f_i
                for j in range(n_units):
                    row_dc[j] += below[j] * kf * row[j]
                    below[j] *= cos[j]
        for j in range(n_units):
            power[j] *= cos[j]
