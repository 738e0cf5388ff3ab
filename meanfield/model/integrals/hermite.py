"""Hermite functions and the moments of a random cosine: the pieces of the Mehler expansion.

For standard Gaussians ``G, G'`` with correlation ``c`` and functions ``f, g`` (Mehler's formula):

.. math::

    E[f(G) g(G')] = \\sum_k c^k \\frac{E[f(G) He_k(G)] E[g(G') He_k(G')]}{k!} .

Everything here is setup-time NumPy/SciPy code.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["hermite_functions", "cosine_moments", "CRAMER_BOUND"]

#: Cramer's inequality: ``|He_n(x)| exp(-x^2/4) <= 1.0865 sqrt(n!)``, hence the normalised Hermite
#: functions of :func:`hermite_functions` obey ``|psi_n(x)| <= 1.0865 / sqrt(2 pi) < 0.4335``.
CRAMER_BOUND = 1.0865 / math.sqrt(2.0 * math.pi)


def hermite_functions(x: Any, n_max: int, xp: Any = np) -> list:
    """Normalised probabilists' Hermite functions ``psi_n(x) = He_n(x) phi(x) / sqrt(n!)``.

    Parameters
    ----------
    x : array of any shape (of namespace ``xp``)
    n_max : int
        Highest order returned (``n_max >= 0``).

    Returns
    -------
    list of ``n_max + 1`` arrays shaped like ``x``

    Notes
    -----
    Computed with the three-term recurrence
    ``psi_{n+1} = (x psi_n - sqrt(n) psi_{n-1}) / sqrt(n + 1)`` started from ``psi_0 = phi``,
    which is stable and bounded (Cramer's inequality), so no factorial or power of ``x`` is ever
    formed. Where ``phi(x)`` underflows the true values are below ``1e-160`` and come out as 0.
    """
    out = [xp.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)]
    if n_max >= 1:
        out.append(x * out[0])
    for n in range(1, n_max):
        out.append((x * out[n] - math.sqrt(n) * out[n - 1]) / math.sqrt(n + 1.0))
    return out


def cosine_moments(d: float, k_max: int) -> np.ndarray:
    """Moments ``E[c^k]``, ``k = 0..k_max``, of the cosine of two independent uniform directions.

    The cosine ``c`` of the angle between two independent uniform unit vectors of ``R^d`` has
    density proportional to ``(1 - c^2)^((d - 3)/2)`` on ``[-1, 1]``; its odd moments vanish and
    ``E[c^{2m}] = prod_{j<m} (2j + 1) / (d + 2j)``. For ``d = inf`` all moments but the 0th vanish.

    Parameters
    ----------
    d : float
        Dimension (``d >= 2``, or ``math.inf``).
    k_max : int

    Returns
    -------
    array of shape ``(k_max + 1,)``
    """
    if not d >= 2:
        raise ValueError(f"the cosine law needs d >= 2, got {d}")
    out = np.zeros(k_max + 1)
    out[0] = 1.0
    if math.isinf(d):
        return out
    value = 1.0
    for m in range(1, k_max // 2 + 1):
        value *= (2 * m - 1) / (d + 2 * m - 2)
        out[2 * m] = value
    return out
