"""Compiled activations ``h`` and slopes ``h'`` over a row of pre-activations.

The kinds and their parameters come from the model (:class:`meanfield.model.pieces.
ActivationPieces`); the formulas are those of the model's array code, which the tests compare
with: :class:`~meanfield.model.activations.PiecewiseLinear` (right derivative at the knots),
the p-spin sigmoid (``exp`` of ``-|z|`` only), and the smooth activations of
:mod:`meanfield.model.integrals.smooth` (``erf`` here is the C library's, which agrees with the
model's rational approximation to a few units in the last place).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import register_jitable

from meanfield.model.pieces import ACTIVATION_KINDS

from .philox import JIT

__all__ = [
    "apply_activation",
    "activation_at",
    "exp_rows",
    "PIECEWISE_LINEAR",
    "LINEAR",
    "SIGMOID",
    "TANH",
    "ERF",
    "SOFTPLUS",
]

#: the kinds the kernels below have a branch for; their codes are their indices in
#: :data:`meanfield.model.pieces.ACTIVATION_KINDS` (``ActivationPieces.code``)
_KINDS = ("piecewise_linear", "linear", "sigmoid", "tanh", "erf", "softplus")
if set(_KINDS) != set(ACTIVATION_KINDS):
    raise ImportError(
        f"the compiled activations {_KINDS} are not the kinds of "
        f"meanfield.model.pieces {ACTIVATION_KINDS}: add the kernel branches"
    )
PIECEWISE_LINEAR, LINEAR, SIGMOID, TANH, ERF, SOFTPLUS = map(ACTIVATION_KINDS.index, _KINDS)

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)

# exp(x) = 2^k exp(r), x = k ln 2 + r, |r| <= ln(2)/2 (Cody-Waite split of ln 2, fdlibm's words)
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
#: Taylor coefficients 1/m!, m = 13 .. 2: the remainder is below 4e-18 on |r| <= ln(2)/2
_TAYLOR = tuple(1.0 / math.factorial(m) for m in range(13, 1, -1))
#: exp underflows below this; the result is then 2^-1022 (sigmoids of |z| > 708 are exact to
#: far below round-off anyway)
_EXP_FLOOR = -708.0

#: fast-math flags of the hot loops: reassociation lets sums over units and inputs vectorise,
#: contraction allows fused multiply-adds (both change results in the last bits only); no flag
#: that assumes finite values, so a diverging run still shows NaN or inf
FAST = {"reassoc", "contract", "nsz"}


@numba.njit(fastmath={"contract"}, **JIT)
def exp_rows(x, out, bits, count):
    """``out[n] = exp(x[n])`` for ``x[n] <= 0``, in loops the compiler vectorises.

    The C library's ``exp`` is a scalar call; this one is written with arithmetic only, so a
    row of a few hundred units takes one vector pass (six times faster here) and differs from
    NumPy's ``exp`` by at most one unit in the last place (tested). Only contraction to fused
    multiply-adds is allowed: reassociation would undo the exact split of ``k ln 2``.
    ``bits`` is int64 scratch of length ``count``.
    """
    c13, c12, c11, c10, c9, c8, c7, c6, c5, c4, c3, c2 = _TAYLOR
    for n in range(count):
        v = max(x[n], _EXP_FLOOR)
        k = math.floor(v * _LOG2E + 0.5)
        r = (v - k * _LN2_HI) - k * _LN2_LO
        p = c13 * r + c12
        p = (((p * r + c11) * r + c10) * r + c9) * r + c8
        p = (((p * r + c7) * r + c6) * r + c5) * r + c4
        p = ((((p * r + c3) * r + c2) * r + 1.0) * r) + 1.0
        out[n] = p
        bits[n] = (np.int64(k) + 1023) << 52  # the float64 2^k, as integer bits
    scale = bits.view(np.float64)
    for n in range(count):
        out[n] = out[n] * scale[n]


@numba.njit(fastmath=FAST, **JIT)
def apply_activation(code, z, h, slope, count, knots, jumps, left, bits):
    """``h[n] = h(z[n])``, ``slope[n] = h'(z[n])`` for ``n < count``.

    Parameters
    ----------
    code : int
        Activation kind (module constants).
    z, h, slope : 1-D arrays
    count : int
    knots, jumps : 1-D float64 arrays
        Piecewise-linear knots and slope jumps (``h = left + sum_i J_i (z - t_i)_+``).
    left : float
    bits : int64 array of length ``>= count``
        Scratch for :func:`exp_rows`.
    """
    if code == PIECEWISE_LINEAR:
        for n in range(count):
            h[n] = left
            slope[n] = 0.0
        for m in range(knots.shape[0]):
            t = knots[m]
            jump = jumps[m]
            for n in range(count):
                v = z[n]
                h[n] += jump * max(v - t, 0.0)
                slope[n] += jump if v >= t else 0.0
    elif code == LINEAR:
        for n in range(count):
            h[n] = z[n]
            slope[n] = 1.0
    elif code == SIGMOID:  # exp of -|z| only: no overflow
        for n in range(count):
            slope[n] = -abs(z[n])
        exp_rows(slope, h, bits, count)
        for n in range(count):
            e = h[n]
            s = (1.0 if z[n] >= 0.0 else e) / (1.0 + e)
            h[n] = s
            slope[n] = s * (1.0 - s)
    elif code == TANH:
        for n in range(count):
            t = math.tanh(z[n])
            h[n] = t
            slope[n] = 1.0 - t * t
    elif code == ERF:
        for n in range(count):
            v = z[n]
            h[n] = math.erf(v)
            slope[n] = _TWO_OVER_SQRT_PI * math.exp(-v * v)
    else:  # SOFTPLUS: log(1 + e^z) without overflow, slope the logistic function
        for n in range(count):
            v = z[n]
            h[n] = max(v, 0.0) + math.log1p(math.exp(-abs(v)))
            slope[n] = 0.5 + 0.5 * math.tanh(0.5 * v)


@register_jitable
def activation_at(code, z, knots, jumps, left):
    """``(h(z), h'(z))`` of one pre-activation: the scalar form of :func:`apply_activation`
    (the GPU kernels' per-thread evaluation; the sigmoid takes ``exp`` of ``-|z|`` only)."""
    if code == PIECEWISE_LINEAR:
        value = left
        slope = 0.0
        for m in range(knots.shape[0]):
            value += jumps[m] * max(z - knots[m], 0.0)
            slope += jumps[m] if z >= knots[m] else 0.0
        return value, slope
    if code == LINEAR:
        return z, 1.0
    if code == SIGMOID:
        e = math.exp(-abs(z))
        s = (1.0 if z >= 0.0 else e) / (1.0 + e)
        return s, s * (1.0 - s)
    if code == TANH:
        t = math.tanh(z)
        return t, 1.0 - t * t
    if code == ERF:
        return math.erf(z), _TWO_OVER_SQRT_PI * math.exp(-z * z)
    return max(z, 0.0) + math.log1p(math.exp(-abs(z))), 0.5 + 0.5 * math.tanh(0.5 * z)
