"""Compiled scalar twins of :mod:`meanfield.model.integrals.bivariate` (one pair at a time).

The same formulas as the array reference, evaluated per pair inside the pair kernels:
Genz's orthant probability ``L(h, k; c)`` and the closed-form ``G = E[s(aX) s(bY)]``,
``dG/da``, ``dG/dc`` of a piecewise-linear ``s``. ``Phi`` is the C library's ``erfc``; the
array version uses SciPy's ``ndtr``: the two agree to a few units in the last place (tested
against each other).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from meanfield.model.integrals.bivariate import C_CLIP, GL_NODES, GL_WEIGHTS, NEAR_ONE

from .activations import exp_rows
from .philox import JIT

__all__ = ["orthant", "pair_moments", "pair_scratch", "MAX_KNOTS"]

_NODES = np.array(GL_NODES)
_WEIGHTS = np.array(GL_WEIGHTS)
_TWO_PI = 2.0 * math.pi
_SQRT_TWO_PI = math.sqrt(_TWO_PI)
_SQRT_HALF = math.sqrt(0.5)
_EXP_CUT = -100.0


@numba.njit(**JIT)
def _ndtr(x):
    return 0.5 * math.erfc(-x * _SQRT_HALF)


@numba.njit(**JIT)
def _phi(x):
    return math.exp(-0.5 * x * x) / _SQRT_TWO_PI


@numba.njit(**JIT)
def orthant(h, k, c):
    """``P(X > h, Y > k)`` for standard normals with correlation ``-1 < c < 1`` (Genz)."""
    sn, inv, arg, ex, bits, _, _, _, _, shift = pair_scratch()
    far, half_angle, one_minus = _nodes(c, sn, inv, shift)
    return _orthant_at(h, k, c, far, half_angle, one_minus, sn, inv, shift, arg, ex, bits)


@numba.njit(fastmath={"contract"}, **JIT)
def _nodes(c, sn, inv, shift):
    """The node quantities every orthant at correlation ``c`` shares.

    ``|c| < NEAR_ONE``: ``sin`` of the nodes in ``[0, asin c]`` and ``1 / cos^2``; above it,
    the expansion's ``xs``, ``1 / sqrt(1 - xs)`` and ``xs / (1 + sqrt(1 - xs))^2``. Returns
    ``(far, half_angle, one_minus)``.
    """
    far = abs(c) < NEAR_ONE
    half_angle = 0.5 * math.asin(c) if far else 0.0
    one_minus = max((1.0 - abs(c)) * (1.0 + abs(c)), 1e-300)
    for m in range(_NODES.shape[0]):
        if far:
            sn[m] = math.sin(half_angle * _NODES[m])
            inv[m] = 1.0 / (1.0 - sn[m] * sn[m])
        else:
            xs = (0.5 * math.sqrt(one_minus) * _NODES[m]) ** 2
            rs = math.sqrt(1.0 - xs)
            sn[m] = xs
            inv[m] = 1.0 / rs
            shift[m] = xs / (1.0 + rs) ** 2
    return far, half_angle, one_minus


@numba.njit(fastmath={"contract"}, **JIT)
def _orthant_at(h, k, c, far, half_angle, one_minus, sn, inv, shift, arg, ex, bits):
    """``P(X > h, Y > k)`` from the shared node quantities of :func:`_nodes`: below
    ``NEAR_ONE`` Drezner-Wesolowsky's integral over the angle (20 exponentials in one vector
    pass), above it :func:`_near_one`."""
    if not far:
        return _near_one(h, k, c, one_minus, sn, inv, shift, arg, ex, bits)
    hk = h * k
    half_sum = 0.5 * (h * h + k * k)
    n_nodes = _NODES.shape[0]
    for m in range(n_nodes):
        arg[m] = (sn[m] * hk - half_sum) * inv[m]
    exp_rows(arg, ex, bits, n_nodes)
    total = 0.0
    for m in range(n_nodes):
        total += _WEIGHTS[m] * ex[m]
    return total * half_angle / _TWO_PI + _ndtr(-h) * _ndtr(-k)


@numba.njit(fastmath={"contract"}, **JIT)
def _near_one(h, k, c, one_minus, xs, inv_rs, shift, arg, ex, bits):
    """:func:`orthant` for ``|c| >= NEAR_ONE`` with the nodes' ``xs``, ``1/rs`` and
    ``xs / (1 + rs)^2`` precomputed and the 40 exponentials in one vector pass."""
    negative = c < 0.0
    if negative:
        k = -k
    hk = h * k
    a = math.sqrt(one_minus)
    bs = (h - k) ** 2
    cc = (4.0 - hk) / 8.0
    dd = (12.0 - hk) / 80.0
    exponent = -0.5 * (bs / one_minus + hk)
    total = 0.0
    if exponent > _EXP_CUT:
        total = (
            a
            * math.exp(exponent)
            * (1.0 - cc * (bs - one_minus) * (1.0 - dd * bs) / 3.0 + cc * dd * one_minus**2)
        )
    if hk > _EXP_CUT:
        b = math.sqrt(bs)
        total -= (
            math.exp(-0.5 * hk)
            * _SQRT_TWO_PI
            * _ndtr(-b / a)
            * b
            * (1.0 - cc * bs * (1.0 - dd * bs) / 3.0)
        )
    n_nodes = xs.shape[0]
    for m in range(n_nodes):
        e = max(-0.5 * (bs / xs[m] + hk), _EXP_CUT - 1.0)
        arg[m] = e
        arg[n_nodes + m] = min(e - 0.5 * hk * shift[m], 0.0)
    exp_rows(arg, ex, bits, 2 * n_nodes)
    summed = 0.0
    for m in range(n_nodes):
        if arg[m] > _EXP_CUT:
            sp = 1.0 + cc * xs[m] * (1.0 + 5.0 * dd * xs[m])
            summed += _WEIGHTS[m] * (ex[m] * sp - ex[n_nodes + m] * inv_rs[m])
    value = (0.5 * a * summed - total) / _TWO_PI
    if not negative:
        value += _ndtr(-max(h, k))
    elif h >= k:
        value = -value
    elif h < 0.0:
        value = _ndtr(k) - _ndtr(h) - value
    else:
        value = _ndtr(-h) - _ndtr(-k) - value
    return min(max(value, 0.0), 1.0)


@numba.njit(**JIT)
def _shifted(k, h, c):
    """``k - c h`` without cancellation near ``|c| = 1`` (see the array version)."""
    if c >= 0.0:
        return (k - h) + (1.0 - c) * h
    return (k + h) - (1.0 + c) * h


#: knots of a piecewise-linear activation the scratch of :func:`pair_scratch` holds
MAX_KNOTS = 64


@numba.njit(**JIT)
def pair_scratch():
    """Scratch arrays for :func:`pair_moments` (one set per thread)."""
    n = _NODES.shape[0]
    return (
        np.empty(n),
        np.empty(n),
        np.empty(2 * n),
        np.empty(2 * n),
        np.empty(2 * n, dtype=np.int64),
        np.empty(MAX_KNOTS),
        np.empty(MAX_KNOTS),
        np.empty(MAX_KNOTS),
        np.empty(MAX_KNOTS),
        np.empty(n),
    )


@numba.njit(fastmath={"contract"}, **JIT)
def pair_moments(a, b, c, knots, jumps, left, scratch):
    """``(G, dG/da, dG/dc)`` of ``G = E[s(aX) s(bY)]``, ``a, b > 0``, ``c`` clipped to
    ``[-C_CLIP, C_CLIP]``; ``s = left + sum_i jumps_i (x - knots_i)_+``.

    The ``n_knots^2`` orthants of a pair share their correlation: below ``NEAR_ONE`` the
    sines of the quadrature nodes are computed once and the exponentials of the 20 nodes in
    one vector pass (:func:`.activations.exp_rows`); ``phi`` and ``Phi`` of ``t_i / a`` and
    ``t_j / b`` once per knot.
    """
    sn, inv, arg, ex, bits, h_all, k_all, phi_h, phi_k, shift = scratch
    c = min(max(c, -C_CLIP), C_CLIP)
    sigma = math.sqrt((1.0 - c) * (1.0 + c))
    n_knots = knots.shape[0]
    far, half_angle, one_minus = _nodes(c, sn, inv, shift)
    value = left * left
    for i in range(n_knots):
        h_all[i] = knots[i] / a
        k_all[i] = knots[i] / b
        phi_h[i] = _phi(h_all[i])
        phi_k[i] = _phi(k_all[i])
        value += (
            left
            * jumps[i]
            * (
                a * phi_h[i]
                - knots[i] * _ndtr(-h_all[i])
                + b * phi_k[i]
                - knots[i] * _ndtr(-k_all[i])
            )
        )
    slope_pairs = 0.0
    along = 0.0
    for i in range(n_knots):
        h = h_all[i]
        conditional = left
        for j in range(n_knots):
            k = k_all[j]
            orth = _orthant_at(h, k, c, far, half_angle, one_minus, sn, inv, shift, arg, ex, bits)
            slope_pairs += jumps[i] * jumps[j] * orth
            u = _shifted(k, h, c) / sigma
            v = _shifted(h, k, c) / sigma
            phi_u = _phi(u)
            tail_u = _ndtr(-u)
            ramp = (
                (c + h * k) * orth
                - k * phi_h[i] * tail_u
                - h * phi_k[j] * _ndtr(-v)
                + sigma * phi_h[i] * phi_u
            )
            value += jumps[i] * jumps[j] * a * b * ramp
            conditional += jumps[j] * b * sigma * (phi_u - u * tail_u)
        along += jumps[i] * phi_h[i] * conditional
    return value, along + c * b * slope_pairs, a * b * slope_pairs
