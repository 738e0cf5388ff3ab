"""The counter-based generator of :mod:`meanfield.rng`, compiled: Philox4x32-10 per block.

Every number :class:`meanfield.rng.CounterRNG` draws is a pure function of (stream key, purpose,
counter, element index); these scalar functions compute one 4-word block, or one uniform or
normal number, from the same inputs, so a compiled kernel draws exactly the array version's
numbers without materialising them. The word layout is that of :mod:`meanfield.rng`:

* ``c0 = block & 0xFFFFFFFF``, ``c1 = block >> 32``,
* ``c2 = counter & 0xFFFFFFFF``, ``c3 = (purpose << 16) | (counter >> 32)``;

element ``e`` of a draw uses block ``e // 2``: a uniform takes words ``(x0, x1)`` for even
``e`` and ``(x2, x3)`` for odd ``e``; a normal takes both halves of its block through
Box-Muller, the cosine for even ``e`` and the sine for odd ``e``.

The scalar functions are ``register_jitable``: the same source is compiled into the CPU
kernels (numba) and the GPU kernels (numba-cuda, :mod:`.cuda`). Integer outputs and uniforms
are bit-identical to the array version. Normals call ``log``,
``sqrt``, ``cos`` and ``sin`` of the C library, where NumPy may use its own SIMD kernels:
they can differ in the last unit of precision (tested, see ``tests/particles/test_engine.py``).

All 32-bit words are held in ``uint64`` so the 32 x 32 -> 64-bit products are exact.

References
----------
J. K. Salmon, M. A. Moraes, R. O. Dror, D. E. Shaw, "Parallel random numbers: as easy as
1, 2, 3", SC11 (2011).
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba.extending import register_jitable

from ._cache import refresh_cache

refresh_cache()  # before any kernel of the engine is compiled or loaded from the cache

__all__ = [
    "philox_block",
    "uniform_at",
    "normal_at",
    "normal_pair",
    "block_words",
    "uniform_element",
    "fill_normals",
]

_M0 = np.uint64(0xD2511F53)
_M1 = np.uint64(0xCD9E8D57)
_W0 = np.uint64(0x9E3779B9)
_W1 = np.uint64(0xBB67AE85)
_MASK = np.uint64(0xFFFFFFFF)
_S32 = np.uint64(32)
_S16 = np.uint64(16)
_S5 = np.uint64(5)
_S6 = np.uint64(6)
_S26 = np.uint64(26)
_TWO_M53 = 2.0**-53
_TWO_PI = 2.0 * math.pi

#: compile options shared by every kernel of the engine: cached on disk (no compile per run);
#: NumPy's error model (a division by zero gives inf or NaN, as in the reference, and needs no
#: check, so divisions vectorise)
JIT = {"cache": True, "nogil": True, "error_model": "numpy"}


@register_jitable
def philox_block(k0, k1, block, counter, purpose):
    """Philox4x32-10 of counter ``(block, counter, purpose)`` under key ``(k0, k1)``.

    Parameters
    ----------
    k0, k1 : uint64
        Key words (each ``< 2**32``).
    block : int
        Block index ``j`` (element ``e`` of a draw lives in block ``e // 2``).
    counter : int
        Draw counter, ``< 2**48``.
    purpose : int
        Purpose tag, ``< 2**16``.

    Returns
    -------
    tuple of four uint64
        The output words ``(x0, x1, x2, x3)``.
    """
    b = np.uint64(block)
    c = np.uint64(counter)
    x0 = b & _MASK
    x1 = b >> _S32
    x2 = c & _MASK
    x3 = (np.uint64(purpose) << _S16) | (c >> _S32)
    key0 = np.uint64(k0)
    key1 = np.uint64(k1)
    for _ in range(10):
        p0 = _M0 * x0  # exact: both factors < 2**32
        p1 = _M1 * x2
        y0 = (p1 >> _S32) ^ x1 ^ key0
        y2 = (p0 >> _S32) ^ x3 ^ key1
        x1 = p1 & _MASK
        x3 = p0 & _MASK
        x0 = y0
        x2 = y2
        key0 = (key0 + _W0) & _MASK
        key1 = (key1 + _W1) & _MASK
    return x0, x1, x2, x3


@numba.njit(**JIT)
def block_words(k0, k1, block, counter, purpose):
    """:func:`philox_block` compiled for the CPU (for tests against ``CounterRNG.raw``)."""
    return philox_block(k0, k1, block, counter, purpose)


@numba.njit(**JIT)
def uniform_element(k0, k1, counter, purpose, element):
    """:func:`uniform_at` compiled for the CPU (for tests)."""
    return uniform_at(k0, k1, counter, purpose, element)


@register_jitable
def _unit(hi, lo):
    """``((hi >> 5) * 2**26 + (lo >> 6)) * 2**-53``: a uniform in ``[0, 1)``."""
    mantissa = ((hi >> _S5) << _S26) | (lo >> _S6)
    return float(mantissa) * _TWO_M53


@register_jitable
def uniform_at(k0, k1, counter, purpose, element):
    """Element ``element`` of ``CounterRNG.uniform(counter, ..., purpose)`` of one stream."""
    x0, x1, x2, x3 = philox_block(k0, k1, element >> 1, counter, purpose)
    if element & 1:
        return _unit(x2, x3)
    return _unit(x0, x1)


@register_jitable
def normal_pair(k0, k1, counter, purpose, block):
    """Elements ``2 block`` and ``2 block + 1`` of ``CounterRNG.normal`` (Box-Muller)."""
    x0, x1, x2, x3 = philox_block(k0, k1, block, counter, purpose)
    u1 = _unit(x0, x1)
    u2 = _unit(x2, x3)
    radius = math.sqrt(-2.0 * math.log(1.0 - u1))
    angle = _TWO_PI * u2
    return radius * math.cos(angle), radius * math.sin(angle)


@register_jitable
def normal_at(k0, k1, counter, purpose, element):
    """Element ``element`` of ``CounterRNG.normal(counter, ..., purpose)`` of one stream."""
    first, second = normal_pair(k0, k1, counter, purpose, element >> 1)
    if element & 1:
        return second
    return first


@numba.njit(**JIT)
def fill_normals(out, k0, k1, counter, purpose, start):
    """``out[m] = `` element ``start + m`` of ``CounterRNG.normal(counter, ..., purpose)``.

    Each block is computed once; a run that starts or ends inside a block uses one of its halves.
    """
    n = out.shape[0]
    m = 0
    element = start
    if element & 1 and n > 0:
        out[0] = normal_at(k0, k1, counter, purpose, element)
        m = 1
        element += 1
    while m + 1 < n:
        first, second = normal_pair(k0, k1, counter, purpose, element >> 1)
        out[m] = first
        out[m + 1] = second
        m += 2
        element += 2
    if m < n:
        out[m] = normal_at(k0, k1, counter, purpose, element)
