"""Compiled draws of one training sample, the same numbers as the models' ``sample_data``.

A model's ``sample_data(rng, counter, n_samples, xp)`` is called by the NumPy step once per
chunk of steps (``counter`` = the chunk index) and the step takes its rows; sample ``e`` of a
chunk therefore uses elements ``e`` (labels) and ``e k .. e k + k - 1`` (inputs) of the
chunk's draws. These functions compute that one sample directly from the key, the counter and
``e`` (see :mod:`.philox`).
"""

from __future__ import annotations

import math

import numba

from meanfield.model.pieces import DATA_KINDS
from meanfield.rng import Purpose

from .activations import FAST
from .philox import JIT, fill_normals, uniform_at

__all__ = [
    "draw_sample",
    "HOST",
    "MIXTURE",
    "PSPIN",
    "PURPOSE_DATA",
    "PURPOSE_LABEL",
    "PURPOSE_NOISE",
]

#: the data kinds the kernels know; their codes are their indices in
#: :data:`meanfield.model.pieces.DATA_KINDS` (``DataPieces.code``)
_KINDS = ("host", "mixture", "pspin")
if set(_KINDS) != set(DATA_KINDS):
    raise ImportError(
        f"the compiled data laws {_KINDS} are not the kinds of "
        f"meanfield.model.pieces {DATA_KINDS}: add the kernel branches"
    )
HOST, MIXTURE, PSPIN = map(DATA_KINDS.index, _KINDS)

#: purpose tags of the draws (:class:`meanfield.rng.Purpose`) as plain integers for the kernels:
#: inputs, labels (or label noise), SGD noise
PURPOSE_DATA, PURPOSE_LABEL, PURPOSE_NOISE = (
    int(p) for p in (Purpose.DATA, Purpose.LABEL, Purpose.NOISE)
)


@numba.njit(fastmath=FAST, **JIT)
def draw_sample(code, k0, k1, counter, sample, x, class_scales, tensor, pairs):
    """Draw sample ``sample`` of chunk ``counter`` into ``x`` (length ``k``); return ``y``.

    Parameters
    ----------
    code : int
        :data:`MIXTURE` or :data:`PSPIN`.
    k0, k1 : uint64
        The replica's key.
    counter : int
        The chunk index.
    sample : int
        Index of the sample within the chunk.
    x : float64 array of shape ``(k,)``
        Filled with the input.
    class_scales : array of shape ``(2, k)``
        Mixture: per-coordinate scales for ``y = +1`` (row 0) and ``y = -1`` (row 1).
    tensor : array of shape ``(d, d * d)``
        p-spin: the coupling tensor ``T_p,qr``.
    pairs : float64 array of shape ``(d * d,)``
        Scratch (p-spin: the contractions ``sum_p T_p,qr x_p``).
    """
    k = x.shape[0]
    fill_normals(x, k0, k1, counter, PURPOSE_DATA, sample * k)
    if code == MIXTURE:
        row = 0 if uniform_at(k0, k1, counter, PURPOSE_LABEL, sample) < 0.5 else 1
        for j in range(k):
            x[j] = x[j] * class_scales[row, j]
        return 1.0 if row == 0 else -1.0
    # PSPIN: uniform on the sphere of radius sqrt(d), target (1/d) sum T_pqr x_p x_q x_r,
    # summed as sum_qr (sum_p T_p,qr x_p) x_q x_r: the inner sums are rows added to a vector
    total = 0.0
    for j in range(k):
        total += x[j] * x[j]
    norm = math.sqrt(total)
    root = math.sqrt(k)
    for j in range(k):
        x[j] = root * x[j] / norm
    for m in range(k * k):
        pairs[m] = 0.0
    for p in range(k):
        xp = x[p]
        for m in range(k * k):
            pairs[m] += tensor[p, m] * xp
    y = 0.0
    for q in range(k):
        inner = 0.0
        for r in range(k):
            inner += pairs[q * k + r] * x[r]
        y += inner * x[q]
    return y / k
