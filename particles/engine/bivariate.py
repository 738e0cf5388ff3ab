"""Compiled scalar twins of :mod:`meanfield.model.bivariate` (one pair at a time).

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

from meanfield.model.bivariate import C_CLIP, GL_NODES, GL_WEIGHTS, NEAR_ONE

from .philox import JIT

__all__ = ["orthant", "pair_moments"]

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
    hk = h * k
    if abs(c) < NEAR_ONE:
        half_sum = 0.5 * (h * h + k * k)
        half_angle = 0.5 * math.asin(c)
        total = 0.0
        for m in range(_NODES.shape[0]):
            sn = math.sin(half_angle * _NODES[m])
            total += _WEIGHTS[m] * math.exp((sn * hk - half_sum) / (1.0 - sn * sn))
        return total * half_angle / _TWO_PI + _ndtr(-h) * _ndtr(-k)
    negative = c < 0.0
    if negative:
        k = -k
        hk = -hk
    one_minus = max((1.0 - abs(c)) * (1.0 + abs(c)), 1e-300)
    a = math.sqrt(one_minus)
    bs = (h - k) ** 2
    cc = (4.0 - hk) / 8.0
    dd = (12.0 - hk) / 80.0
    exponent = -0.5 * (bs / one_minus + hk)
    total = 0.0
    if exponent > _EXP_CUT:
        total = a * math.exp(exponent) * (1.0 - cc * (bs - one_minus) * (1.0 - dd * bs) / 3.0
                                          + cc * dd * one_minus ** 2)
    if hk > _EXP_CUT:
        b = math.sqrt(bs)
        total -= (math.exp(-0.5 * hk) * _SQRT_TWO_PI * _ndtr(-b / a) * b
                  * (1.0 - cc * bs * (1.0 - dd * bs) / 3.0))
    half_a = 0.5 * a
    summed = 0.0
    for m in range(_NODES.shape[0]):
        xs = (half_a * _NODES[m]) ** 2
        exponent = -0.5 * (bs / xs + hk)
        if exponent > _EXP_CUT:
            sp = 1.0 + cc * xs * (1.0 + 5.0 * dd * xs)
            rs = math.sqrt(1.0 - xs)
            ep = math.exp(-0.5 * hk * xs / (1.0 + rs) ** 2) / rs
            summed += _WEIGHTS[m] * math.exp(exponent) * (sp - ep)
    value = (half_a * summed - total) / _TWO_PI
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
def _ramp_mean(mu, scale, t):
    """``E (mu + scale Z - t)_+``, ``scale > 0``."""
    m = (mu - t) / scale
    return (mu - t) * _ndtr(m) + scale * _phi(m)


@numba.njit(**JIT)
def _shifted(k, h, c):
    """``k - c h`` without cancellation near ``|c| = 1`` (see the array version)."""
    if c >= 0.0:
        return (k - h) + (1.0 - c) * h
    return (k + h) - (1.0 + c) * h


@numba.njit(**JIT)
def pair_moments(a, b, c, knots, jumps, left):
    """``(G, dG/da, dG/dc)`` of ``G = E[s(aX) s(bY)]``, ``a, b > 0``, ``c`` clipped to
    ``[-C_CLIP, C_CLIP]``; ``s = left + sum_i jumps_i (x - knots_i)_+``."""
    c = min(max(c, -C_CLIP), C_CLIP)
    sigma = math.sqrt((1.0 - c) * (1.0 + c))
    n_knots = knots.shape[0]
    value = left * left
    for i in range(n_knots):
        value += left * jumps[i] * (_ramp_mean(0.0, a, knots[i]) + _ramp_mean(0.0, b, knots[i]))
    slope_pairs = 0.0
    along = 0.0
    for i in range(n_knots):
        h = knots[i] / a
        conditional = left
        for j in range(n_knots):
            k = knots[j] / b
            orth = orthant(h, k, c)
            slope_pairs += jumps[i] * jumps[j] * orth
            u = _shifted(k, h, c) / sigma
            v = _shifted(h, k, c) / sigma
            phi_u = _phi(u)
            tail_u = _ndtr(-u)
            ramp = ((c + h * k) * orth - k * _phi(h) * tail_u - h * _phi(k) * _ndtr(-v)
                    + sigma * _phi(h) * phi_u)
            value += jumps[i] * jumps[j] * a * b * ramp
            conditional += jumps[j] * b * sigma * (phi_u - u * tail_u)
        along += jumps[i] * _phi(h) * conditional
    return value, along + c * b * slope_pairs, a * b * slope_pairs
