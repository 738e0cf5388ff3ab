"""Counter-based random numbers (Philox4x32-10) written with array-API calls only.

A :class:`CounterRNG` holds one Philox key per stream (one stream per replica of a particle
ensemble, replicas being the leading array axis). Every number is a pure function of

    (stream key, purpose tag, counter, element index),

so a run is reproducible and resumable from any counter (e.g. the SGD step index), replicas are
generated together without a Python loop, and stream ``i`` gives the same numbers whether it is
drawn alone, in a subset (:meth:`CounterRNG.select`) or among any number of other streams.

After the keys are set up, only functions of the array API standard are called on the namespace
``xp`` (``astype``, ``arange``, ``full_like``, ``stack``, ``reshape``, ``log``, ``sqrt``,
``cos``, ``sin`` and the ``* + & ^ >> <<`` operators), so the same code runs on NumPy, on CuPy
(generated on the device) and on :mod:`array_api_strict`.

Reproducibility across backends
-------------------------------
:meth:`CounterRNG.raw` and :meth:`CounterRNG.uniform` use only exact integer arithmetic and
exact integer-to-float conversions, so they are bit-identical on every backend and machine.
:meth:`CounterRNG.normal` also calls ``log``, ``sqrt``, ``cos`` and ``sin``: it is bit-identical
between backends that share the elementwise math library (NumPy and ``array_api_strict``);
elsewhere (CuPy's CUDA math library, or NumPy builds with different SIMD kernels) the results
can differ by a few units in the last place, because the standard does not require these
functions to be correctly rounded.

Word layout
-----------
Philox4x32 maps a counter of four 32-bit words ``(c0, c1, c2, c3)`` and a key of two 32-bit words
``(k0, k1)`` to four 32-bit output words. Here, for stream ``s``, ``counter`` ``c < 2**48``,
``purpose`` ``p < 2**16`` and block index ``j``:

* key ``= (keys[s, 0], keys[s, 1])``;
* ``c0 = j & 0xFFFFFFFF``, ``c1 = j >> 32``,
* ``c2 = c & 0xFFFFFFFF``, ``c3 = (p << 16) | (c >> 32)``.

All 32-bit words are held in ``uint64`` arrays, so that the 32x32 -> 64-bit products of the round
function are exact.

References
----------
.. [1] J. K. Salmon, M. A. Moraes, R. O. Dror and D. E. Shaw, "Parallel random numbers: as easy
   as 1, 2, 3", Proc. SC11 (2011), doi:10.1145/2063384.2063405.
.. [2] G. E. P. Box and M. E. Muller, "A note on the generation of random normal deviates",
   Ann. Math. Statist. 29 (1958) 610-611.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import numpy as np

__all__ = [
    "CounterRNG",
    "philox4x32_10",
    "Purpose",
    "CHUNK_NUMBERS",
    "MAX_CHUNK_STEPS",
    "chunk_steps",
    "KERNEL_NOISE_BLOCK",
]


class Purpose(IntEnum):
    """The purpose tags of the draws (the ``purpose`` word of every counter), one per role.

    Two draws at the same counter are independent when their purposes differ; every module that
    draws names its purpose here, so no two roles share a tag by accident. The values are part
    of every stored run (they fix the numbers): never change one.
    """

    #: data inputs ``x`` (per chunk of steps; see :func:`chunk_steps`)
    DATA = 0
    #: labels, or the label noise, drawn beside the inputs
    LABEL = 1
    #: the noise of noisy SGD and of the Langevin and kernel-unit flows (counter: the step, or
    #: the block of steps of :data:`KERNEL_NOISE_BLOCK`)
    NOISE = 2
    #: the initial units (counter 0); the centres of the kernel units
    INIT = 3
    #: Monte Carlo test points of a record (counter: the index of the output time)
    TEST = 4
    #: a second initial draw: the output weights of the kernel units (counter 0)
    INIT_OUTPUT = 5
    #: the test points of a final evaluation after the run (rve-pspin), never drawn in a run
    #: that draws :attr:`INIT_OUTPUT`
    FINAL_TEST = 5


#: numbers drawn per generator call when a draw is made for a chunk of steps at once: it
#: amortises the generator's per-call cost, and fixes which numbers each step takes
CHUNK_NUMBERS = 1 << 18
#: most steps per chunk
MAX_CHUNK_STEPS = 1024
#: steps whose kernel-unit noise one call draws: step ``k`` takes row ``k % KERNEL_NOISE_BLOCK``
#: of the draw with counter ``k // KERNEL_NOISE_BLOCK`` (:mod:`particles.kernel_gd`)
KERNEL_NOISE_BLOCK = 512


def chunk_steps(numbers_per_step: int) -> int:
    """Steps per chunk of the data draws: chunk ``c`` is counter ``c`` and holds the samples of
    steps ``c * n .. (c + 1) * n - 1``, ``n = chunk_steps(numbers_per_step)``.

    The one rule of the data chunks, shared by the NumPy steps and the compiled engine, which
    must take the same numbers: ``numbers_per_step`` is ``R * B * dim`` (replicas, batch and
    parameters per unit), and a chunk is about :data:`CHUNK_NUMBERS` numbers, between 1 and
    :data:`MAX_CHUNK_STEPS` steps.
    """
    return max(1, min(MAX_CHUNK_STEPS, CHUNK_NUMBERS // max(numbers_per_step, 1)))


#: Philox4x32 round multipliers and Weyl key increments (Salmon et al. 2011, Random123)
PHILOX_M0 = 0xD2511F53
PHILOX_M1 = 0xCD9E8D57
PHILOX_W0 = 0x9E3779B9
PHILOX_W1 = 0xBB67AE85
N_ROUNDS = 10
MASK32 = 0xFFFFFFFF
#: exclusive upper bounds of ``counter`` and ``purpose``
COUNTER_LIMIT = 1 << 48
PURPOSE_LIMIT = 1 << 16
_TWO_M53 = 2.0**-53  # 53-bit uniform spacing
_TWO_PI = 2.0 * math.pi


def _lane_constants(like: Any, xp: Any) -> tuple[Any, Any]:
    """Per-lane multipliers ``(M0, M1)`` and Weyl increments ``(W0, W1)`` as uint64 arrays.

    Parameters
    ----------
    like : uint64 array with ``ndim >= 1``
        Array whose device is used and whose number of dimensions the results match.
    xp : module
        Array namespace.

    Returns
    -------
    mult, weyl : uint64 arrays of shape (2, 1, ..., 1)
        Built on the device from ``arange`` (no host-to-device copy).
    """
    lane = xp.arange(2, dtype=xp.uint64, device=like.device)
    lane = xp.reshape(lane, (2,) + (1,) * (like.ndim - 1))
    first = 1 - lane  # (1, 0): selects the lane-0 constant
    mult = first * (PHILOX_M0 - PHILOX_M1) + PHILOX_M1
    weyl = lane * (PHILOX_W1 - PHILOX_W0) + PHILOX_W0
    return mult, weyl


def _philox_lanes(even: Any, odd: Any, key: Any, xp: Any) -> tuple[Any, Any]:
    """Philox4x32-10 on 32-bit words in ``uint64`` arrays, two words per array ("lanes").

    Parameters
    ----------
    even : uint64 array of shape (2, ...)
        Counter words ``(c0, c2)`` along axis 0, each ``< 2**32``.
    odd : uint64 array of shape (2, ...)
        Counter words ``(c1, c3)`` along axis 0, broadcastable with ``even``.
    key : uint64 array of shape (2, ...)
        Key words ``(k0, k1)`` along axis 0, broadcastable with ``even``.
    xp : module
        Array namespace.

    Returns
    -------
    even, odd : uint64 arrays of shape (2, ...)
        Output words ``(x0, x2)`` and ``(x1, x3)``, of the broadcast shape.

    Notes
    -----
    One round, with ``mulhilo(a, b) = (a * b >> 32, a * b & 0xFFFFFFFF)``:

    .. math::

        (h_0, l_0) = \\mathrm{mulhilo}(M_0, x_0),\\quad (h_1, l_1) = \\mathrm{mulhilo}(M_1, x_2),
        \\quad (x_0, x_1, x_2, x_3) \\leftarrow (h_1 \\oplus x_1 \\oplus k_0,\\; l_1,\\;
        h_0 \\oplus x_3 \\oplus k_1,\\; l_0),

    and the key is bumped by the Weyl constants ``(W0, W1)`` (mod ``2**32``) between rounds.
    Keeping ``(x0, x2)`` and ``(x1, x3)`` stacked halves the number of array operations (and of
    GPU kernel launches); the swap of ``h0, h1`` and of ``l0, l1`` is a reversed slice of the lanes.
    """
    ndim = max(even.ndim, odd.ndim, key.ndim)
    # trailing singleton axes, so that broadcasting keeps the lane axis first
    even, odd, key = (xp.reshape(a, a.shape + (1,) * (ndim - a.ndim)) for a in (even, odd, key))
    mult, weyl = _lane_constants(key, xp)
    rounds = xp.arange(N_ROUNDS, dtype=xp.uint64, device=key.device)
    rounds = xp.reshape(rounds, (N_ROUNDS,) + (1,) * ndim)
    # all round keys at once: k_r = (k + r W) mod 2**32 (exact: r W < 2**36)
    schedule = (key + rounds * weyl) & MASK32
    for round_index in range(N_ROUNDS):
        product = even * mult  # exact: both factors < 2**32, so the product is < 2**64
        even = (product >> 32)[::-1, ...] ^ odd ^ schedule[round_index, ...]  # [::-1]: swap lanes
        odd = (product & MASK32)[::-1, ...]
    return even, odd


def philox4x32_10(counter: Any, key: Any, xp: Any) -> Any:
    """Philox4x32-10 block function on arrays of counters and keys.

    Parameters
    ----------
    counter : uint64 array of shape (..., 4)
        Counter words ``(c0, c1, c2, c3)``, each ``< 2**32``.
    key : uint64 array of shape (..., 2)
        Key words ``(k0, k1)``, each ``< 2**32``; leading axes broadcast with ``counter``'s.
    xp : module
        Array-API namespace of ``counter`` and ``key``.

    Returns
    -------
    uint64 array of shape (..., 4)
        Output words, in the word order of Random123's ``philox4x32_R(10, ctr, key)``.
    """
    even = xp.stack((counter[..., 0], counter[..., 2]), axis=0)
    odd = xp.stack((counter[..., 1], counter[..., 3]), axis=0)
    lanes = xp.stack((key[..., 0], key[..., 1]), axis=0)
    even, odd = _philox_lanes(even, odd, lanes, xp)
    return _interleave(even, odd, xp)


def _interleave(even: Any, odd: Any, xp: Any) -> Any:
    """Words ``(x0, x2)``, ``(x1, x3)`` on axis 0 -> ``(x0, x1, x2, x3)`` on the last axis.

    Parameters
    ----------
    even, odd : uint64 arrays of shape (2, ...)
        Broadcastable lane arrays.
    xp : module
        Array namespace.

    Returns
    -------
    uint64 array of shape (..., 4)
    """
    even, odd = xp.broadcast_arrays(even, odd)
    words = xp.stack((even, odd), axis=-1)  # (lane, ..., parity); word = 2 * lane + parity
    ndim = words.ndim
    words = xp.permute_dims(words, tuple(range(1, ndim - 1)) + (0, ndim - 1))
    return xp.reshape(words, words.shape[:-2] + (4,))


def _words_to_unit(hi: Any, lo: Any, xp: Any) -> Any:
    """Uniform float64 in ``[0, 1)`` with 53-bit resolution from two 32-bit words.

    Parameters
    ----------
    hi, lo : uint64 arrays of the same shape
        32-bit words; the top 27 bits of ``hi`` and the top 26 bits of ``lo`` are used.
    xp : module
        Array namespace.

    Returns
    -------
    float64 array of the same shape
        ``((hi >> 5) * 2**26 + (lo >> 6)) * 2**-53``, every multiple of ``2**-53`` in ``[0, 1)``
        being equally likely. The integer is ``< 2**53``, so the conversion is exact.
    """
    mantissa = ((hi >> 5) << 26) | (lo >> 6)
    return xp.astype(mantissa, xp.float64) * _TWO_M53


def _check_counter(counter: int, purpose: int) -> None:
    """Raise ``ValueError`` unless ``0 <= counter < 2**48`` and ``0 <= purpose < 2**16``."""
    if not 0 <= int(counter) < COUNTER_LIMIT:
        raise ValueError(f"counter must be in [0, 2**48), got {counter}")
    if not 0 <= int(purpose) < PURPOSE_LIMIT:
        raise ValueError(f"purpose must be in [0, 2**16), got {purpose}")


@dataclass(frozen=True)
class CounterRNG:
    """Independent Philox4x32-10 streams, one per replica, evaluated together.

    Parameters
    ----------
    keys : uint64 array of shape (n_streams, 2)
        Philox key words (each ``< 2**32``) of every stream, on the backend of ``xp``.
    xp : module
        Array-API namespace of ``keys``; all numbers are generated with it, on ``keys``' device.

    Notes
    -----
    Draws are indexed by ``(counter, purpose)``: use a new counter (e.g. the step index) for each
    draw of a given purpose, and distinct ``purpose`` tags (e.g. 0 = data, 1 = labels,
    2 = noise) for the different draws made at one counter. Reusing a pair repeats the numbers.
    See the module docstring for the Philox word layout and the cross-backend guarantees.

    References
    ----------
    .. [1] J. K. Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC11 (2011).
    """

    keys: Any
    xp: Any

    def __post_init__(self) -> None:
        if len(self.keys.shape) != 2 or self.keys.shape[1] != 2:
            raise ValueError(f"keys must have shape (n_streams, 2), got {self.keys.shape}")
        if self.keys.dtype != self.xp.uint64:
            raise ValueError(f"keys must be uint64 holding 32-bit words, got {self.keys.dtype}")

    @classmethod
    def from_seed(
        cls, seed: int, n_streams: int, xp: Any, asarray: Callable | None = None
    ) -> CounterRNG:
        """Keys of ``n_streams`` streams spawned from one seed.

        Parameters
        ----------
        seed : int
            Non-negative seed of :class:`numpy.random.SeedSequence`.
        n_streams : int
            Number of streams (replicas).
        xp : module
            Array-API namespace to generate with.
        asarray : callable, optional
            ``asarray(host_array, dtype=xp.uint64)`` moving the host keys to the backend
            (e.g. :meth:`meanfield.backends.Backend.asarray`); default ``xp.asarray``.

        Returns
        -------
        CounterRNG
            Stream ``i`` has key ``SeedSequence(seed).spawn(n_streams)[i].generate_state(2,
            uint32)``, which does not depend on ``n_streams``.
        """
        if n_streams < 0:
            raise ValueError(f"n_streams must be >= 0, got {n_streams}")
        children = np.random.SeedSequence(seed).spawn(n_streams)
        host = np.zeros((n_streams, 2), dtype=np.uint64)
        for i, child in enumerate(children):
            host[i] = child.generate_state(2, np.uint32)
        move = xp.asarray if asarray is None else asarray
        return cls(keys=move(host, dtype=xp.uint64), xp=xp)

    @property
    def n_streams(self) -> int:
        """Number of streams (the leading axis of every draw)."""
        return int(self.keys.shape[0])

    def select(self, streams: slice | Sequence[int]) -> CounterRNG:
        """The streams ``streams`` alone; they give the same numbers as in the full set.

        Parameters
        ----------
        streams : slice or sequence of int
            Stream indices, in the order wanted.

        Returns
        -------
        CounterRNG
            With ``keys`` of shape (len(streams), 2).
        """
        xp = self.xp
        if isinstance(streams, slice):
            return CounterRNG(keys=self.keys[streams, :], xp=xp)
        index = xp.asarray([int(i) for i in streams], dtype=xp.int64, device=self.keys.device)
        return CounterRNG(keys=xp.take(self.keys, index, axis=0), xp=xp)

    def raw(self, counter: int, n_blocks: int, purpose: int = 0) -> Any:
        """Philox output blocks ``0 .. n_blocks - 1`` of every stream.

        Parameters
        ----------
        counter : int
            Draw counter, ``0 <= counter < 2**48`` (e.g. the step index).
        n_blocks : int
            Number of 4-word blocks per stream.
        purpose : int, default 0
            Tag separating independent draws at one counter, ``0 <= purpose < 2**16``.

        Returns
        -------
        uint64 array of shape (n_streams, n_blocks, 4)
            32-bit output words. Block ``j`` of stream ``s`` is
            ``philox4x32_10((j & 0xFFFFFFFF, j >> 32, counter & 0xFFFFFFFF,
            (purpose << 16) | (counter >> 32)), keys[s])``.
        """
        even, odd = self._lanes(counter, n_blocks, purpose)
        return _interleave(even, odd, self.xp)

    def _lanes(self, counter: int, n_blocks: int, purpose: int) -> tuple[Any, Any]:
        """Output words ``(x0, x2)`` and ``(x1, x3)``, each of shape (2, n_streams, n_blocks)."""
        _check_counter(counter, purpose)
        xp = self.xp
        block = xp.arange(n_blocks, dtype=xp.uint64, device=self.keys.device)
        block = xp.reshape(block, (1, 1, n_blocks))
        c2 = xp.full_like(block, int(counter) & MASK32)
        c3 = xp.full_like(block, (int(purpose) << 16) | (int(counter) >> 32))
        even = xp.concat((block & MASK32, c2), axis=0)  # (c0, c2) of shape (2, 1, n_blocks)
        odd = xp.concat((block >> 32, c3), axis=0)  # (c1, c3)
        key = xp.reshape(xp.permute_dims(self.keys, (1, 0)), (2, self.n_streams, 1))
        return _philox_lanes(even, odd, key, xp)

    def _unit_pairs(self, counter: int, n_pairs: int, purpose: int) -> tuple[Any, Any]:
        """Two uniform arrays in ``[0, 1)`` of shape (n_streams, n_pairs), one block per pair.

        The first uses words ``(x0, x1)`` of each block, the second ``(x2, x3)``.
        """
        even, odd = self._lanes(counter, n_pairs, purpose)
        units = _words_to_unit(even, odd, self.xp)
        return units[0, ...], units[1, ...]

    def uniform(self, counter: int, shape: tuple[int, ...], purpose: int = 0) -> Any:
        """Uniform numbers in ``[0, 1)`` with 53-bit resolution.

        Parameters
        ----------
        counter : int
            Draw counter, ``0 <= counter < 2**48``.
        shape : tuple of int
            Shape per stream.
        purpose : int, default 0
            Purpose tag, ``0 <= purpose < 2**16``.

        Returns
        -------
        float64 array of shape (n_streams, *shape)
            Element ``e`` (C order) of a stream uses words ``2 (e mod 2)`` and ``2 (e mod 2) + 1``
            of block ``e // 2``, as ``((hi >> 5) * 2**26 + (lo >> 6)) * 2**-53``.
        """
        xp = self.xp
        n = math.prod(shape)
        first, second = self._unit_pairs(counter, (n + 1) // 2, purpose)
        pairs = xp.stack((first, second), axis=-1)  # (n_streams, n_blocks, 2)
        flat = xp.reshape(pairs, (self.n_streams, 2 * pairs.shape[1]))
        return xp.reshape(flat[:, :n], (self.n_streams, *shape))

    def normal(self, counter: int, shape: tuple[int, ...], purpose: int = 0) -> Any:
        """Standard normal numbers by the Box-Muller transform, both outputs used.

        Parameters
        ----------
        counter : int
            Draw counter, ``0 <= counter < 2**48``.
        shape : tuple of int
            Shape per stream.
        purpose : int, default 0
            Purpose tag, ``0 <= purpose < 2**16``.

        Returns
        -------
        float64 array of shape (n_streams, *shape)
            Elements ``2i`` and ``2i + 1`` (C order) of a stream come from block ``i``:

            .. math::

                z_{2i} = r \\cos(2\\pi u_2),\\quad z_{2i+1} = r \\sin(2\\pi u_2),\\quad
                r = \\sqrt{-2 \\log(1 - u_1)},

            with ``u_1, u_2`` the two uniforms of :meth:`uniform` from that block; ``1 - u_1``
            lies in ``(0, 1]``, so the logarithm is finite (``|z| < 8.6``).
        """
        xp = self.xp
        n = math.prod(shape)
        first, second = self._unit_pairs(counter, (n + 1) // 2, purpose)
        radius = xp.sqrt(-2.0 * xp.log(1.0 - first))  # 1 - first is exact and in (0, 1]
        angle = _TWO_PI * second
        pairs = xp.stack((radius * xp.cos(angle), radius * xp.sin(angle)), axis=-1)
        flat = xp.reshape(pairs, (self.n_streams, 2 * pairs.shape[1]))
        return xp.reshape(flat[:, :n], (self.n_streams, *shape))
