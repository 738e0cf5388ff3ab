"""Gaussian integrals of the ramp ``z -> (sig z + b)_+``: the ReLU unit with an offset.

For ``sig > 0`` write ``(sig z + b)_+ = sig (z - t)_+``, ``t = -b/sig``. Gaussian integration by
parts ``k`` times, ``E[f(Z) He_k(Z)] = E[f^{(k)}(Z)]``, with ``d^2/dz^2 (z - t)_+ = delta(z - t)``
and ``E[delta^{(n)}(Z - t)] = He_n(t) phi(t)``, gives the normalised Mehler coefficients

.. math::

    F_0 = b \\Phi(b/\\sigma) + \\sigma \\varphi(b/\\sigma), \\quad
    F_1 = \\sigma \\Phi(b/\\sigma), \\quad
    F_k = \\frac{\\sigma\\, He_{k-2}(t) \\varphi(t)}{\\sqrt{k!}}
        = \\frac{\\sigma\\, \\psi_{k-2}(t)}{\\sqrt{k (k-1)}} \\;(k \\ge 2),

``psi_n`` the normalised Hermite functions (bounded, :func:`~.hermite.hermite_functions`: no
factorial or power is formed), so that ``E[(sig X + b)_+ (sig' Y + b')_+] = sum_k c^k F_k F_k'``
for ``corr(X, Y) = c``. One integration fewer gives the offset derivatives
``dF_0/db = Phi(b/sig)``, ``dF_k/db = psi_{k-1}(t) / sqrt(k)``; ``F_k`` is 1-homogeneous in
``(sig, b)``, so ``dF_k/dsig = (F_k - b dF_k/db) / sig``. Parseval:
``sum_k F_k^2 = E(sig Z + b)_+^2 = (sig^2 + b^2) Phi(b/sig) + b sig phi(b/sig)``. At ``sig = 0``
the unit is the constant ``b_+``: ``F_0 = b_+``, ``F_k = 0``.

Array-API code: arguments of any shapes that broadcast, and a
:class:`~meanfield.backends.Backend` for ``Phi`` (default NumPy).
"""

from __future__ import annotations

import math
from typing import Any

from ...backends.arrays import Backend
from ..activations import NUMPY
from .hermite import hermite_functions

__all__ = ["ramp_mean", "ramp_second_moment", "ramp_hermite_coefficients", "ramp_hermite_slopes"]

_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _ratio(sig: Any, b: Any, xp: Any) -> tuple[Any, Any, Any]:
    """``b / sig`` (0 where ``sig = 0``), the safe ``sig`` and the mask ``sig > 0``."""
    positive = sig > 0
    safe = xp.where(positive, sig, 1.0 + 0.0 * sig)
    return xp.where(positive, b / safe, 0.0 * b), safe, positive


def ramp_mean(sig: Any, b: Any, backend: Backend | None = None) -> Any:
    """``F_0 = E(sig Z + b)_+ = b Phi(b/sig) + sig phi(b/sig)`` (``b_+`` at ``sig = 0``)."""
    bk = backend or NUMPY
    xp = bk.xp
    beta, safe, positive = _ratio(sig, b, xp)
    value = b * bk.ndtr(beta) + safe * xp.exp(-0.5 * beta * beta) / _SQRT_2PI
    return xp.where(positive, value, xp.maximum(b, 0.0 * b))


def ramp_second_moment(sig: Any, b: Any, backend: Backend | None = None) -> Any:
    """``E(sig Z + b)_+^2 = (sig^2 + b^2) Phi(b/sig) + b sig phi(b/sig)`` (``b_+^2`` at 0)."""
    bk = backend or NUMPY
    xp = bk.xp
    beta, safe, positive = _ratio(sig, b, xp)
    value = (safe * safe + b * b) * bk.ndtr(beta) + b * safe * xp.exp(
        -0.5 * beta * beta
    ) / _SQRT_2PI
    return xp.where(positive, value, xp.maximum(b, 0.0 * b) ** 2)


def ramp_hermite_coefficients(sig: Any, b: Any, k_max: int, backend: Backend | None = None) -> Any:
    """``F_k(sig, b) = E[(sig Z + b)_+ He_k(Z)] / sqrt(k!)``, ``k = 0..k_max``: ``(..., K + 1)``.

    Then ``E[(sig X + b)_+ (sig' Y + b')_+] = sum_k c^k F_k(sig, b) F_k(sig', b')`` for
    ``corr(X, Y) = c`` (Mehler). Closed forms in the module docstring.
    """
    bk = backend or NUMPY
    xp = bk.xp
    beta, safe, positive = _ratio(sig, b, xp)
    zero = 0.0 * beta
    cols = [ramp_mean(sig, b, bk)]
    if k_max >= 1:
        cols.append(xp.where(positive, safe * bk.ndtr(beta), zero))
    if k_max >= 2:
        psi = hermite_functions(-beta, k_max - 2, xp)
        for k in range(2, k_max + 1):
            cols.append(xp.where(positive, safe * psi[k - 2] / math.sqrt(k * (k - 1.0)), zero))
    return xp.stack(cols, axis=-1)


def ramp_hermite_slopes(
    sig: Any, b: Any, coeffs: Any, backend: Backend | None = None
) -> tuple[Any, Any]:
    """``(dF_k/dsig, dF_k/db)`` for ``k = 0..K`` from ``coeffs`` = the ``F_k`` up to ``K``.

    ``dF_0/db = Phi(b/sig)``, ``dF_k/db = psi_{k-1}(-b/sig) / sqrt(k)``; ``dF_k/dsig =
    (F_k - b dF_k/db) / sig`` (1-homogeneity). At ``sig = 0`` both are returned as 0 (grid
    cells and particles never sit exactly there).
    """
    bk = backend or NUMPY
    xp = bk.xp
    beta, safe, positive = _ratio(sig, b, xp)
    k_max = coeffs.shape[-1] - 1
    zero = 0.0 * beta
    cols = [bk.ndtr(beta)]
    if k_max >= 1:
        psi = hermite_functions(-beta, k_max - 1, xp)
        cols += [psi[k - 1] / math.sqrt(k) for k in range(1, k_max + 1)]
    d_b = xp.stack([xp.where(positive, c, zero) for c in cols], axis=-1)
    d_sig = (coeffs - b[..., None] * d_b) / safe[..., None]
    return xp.where(positive[..., None], d_sig, 0.0 * d_sig), d_b
