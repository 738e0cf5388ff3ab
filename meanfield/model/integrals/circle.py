"""The circle expansion of the anisotropic models' kernels (MMN's variable selection).

Given the class, a unit's projections on the two blocks of inputs (``s0`` informative
coordinates, ``d - s0`` others) have radii ``(tau r1, r2)``; the pair integrals expand in powers
of ``rho = alpha c1 + beta c2``, the cosines ``c1, c2`` of uniform directions in the blocks, on
the circle ``(u, v) = (tau r1, r2) / a``:

* :func:`block_cosine_moments`: ``E[c^k]`` of one block;
* :func:`polar`: ``a`` and ``(u, v)``;
* :func:`even_pairs`, :func:`circle_weights`, :func:`circle_monomials`: the terms of the
  binomial expansion of ``E[rho^k]`` (log-space weights, scaled monomials ``|N| <= 1`` and their
  gradients).

Used by :mod:`meanfield.model.mmn.anisotropic` and :mod:`meanfield.model.mmn.relu_selection`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from .hermite import cosine_moments

__all__ = ["block_cosine_moments", "polar", "even_pairs", "circle_weights", "circle_monomials"]


def block_cosine_moments(n: float, k_max: int) -> np.ndarray:
    """``E[c^k]``, ``k = 0..k_max``, for the cosine ``c`` of a uniform direction in ``R^n``.

    For ``n = 1`` the "direction" is a random sign: ``c = +-1``, even moments 1, odd moments 0
    (the limit of ``prod_{j<m} (2j+1)/(n+2j)`` at ``n = 1``). Otherwise
    :func:`~meanfield.model.integrals.hermite.cosine_moments`.
    """
    if n == 1:
        out = np.zeros(k_max + 1)
        out[::2] = 1.0
        return out
    return cosine_moments(n, k_max)


def polar(tau: float, r1: np.ndarray, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a = |(tau r1, r2)|`` and ``(u, v) = (tau r1, r2) / a`` (``u = v = 0`` at ``a = 0``)."""
    a = np.hypot(tau * r1, r2)
    safe = np.where(a > 0, a, 1.0)
    return a, np.where(a > 0, tau * r1 / safe, 0.0), np.where(a > 0, r2 / safe, 0.0)


def even_pairs(order: int) -> tuple[np.ndarray, np.ndarray]:
    """All ``(k, j)`` with ``k, j`` even, ``0 <= j <= k <= order``, ordered by ``k`` then ``j``."""
    k, j = np.meshgrid(np.arange(0, order + 1, 2), np.arange(0, order + 1, 2), indexing="ij")
    mask = j <= k
    return k[mask], j[mask]


def circle_weights(k: np.ndarray, j: np.ndarray, m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Weights ``(1/2) binom(k, j) E[c1^j] E[c2^m] (j/k)^j (m/k)^m``, ``m = k - j``.

    The binomial expansion of ``E[rho^k]``, ``rho = alpha c1 + beta c2``, for one of the two
    classes (the 1/2), with the scalings of :func:`circle_monomials` (log-space: no overflow at
    high order). ``m1``, ``m2``: the block moments ``E[c1^i]``, ``E[c2^i]``, ``i = 0..k_max``.
    """
    m = k - j
    with np.errstate(divide="ignore"):
        log_w = (
            math.log(0.5)
            + special.gammaln(k + 1.0)
            - special.gammaln(j + 1.0)
            - special.gammaln(m + 1.0)
            + np.log(m1[j])
            + np.log(m2[m])
        )
    kk = np.maximum(k, 1)
    log_circle = special.xlogy(j, j / kk) + special.xlogy(m, m / kk)  # log max u^2j v^2m
    return np.exp(log_w + log_circle)


def circle_monomials(
    tau: float, r1: np.ndarray, r2: np.ndarray, k: np.ndarray, j: np.ndarray, gradients: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``N = (u s_j)^j (v s_m)^m`` ``(M, P)`` and, if asked, ``(dN/dr1, dN/dr2)`` ``(M, P, 2)``.

    ``(u, v) = (tau r1, r2) / a`` (:func:`polar`), ``m = k - j``, ``s_j = sqrt(k/j)``,
    ``s_m = sqrt(k/m)`` (so ``|N| <= 1`` on the circle). With ``du/dr1 = tau v^2 / a``,
    ``du/dr2 = -u v / a``, ``dv/dr1 = -tau u v / a``, ``dv/dr2 = u^2 / a``:

    .. math::

        \\partial_{r_1} N = \\frac{\\tau}{a} (j s_j v^2 N_{j-1,m} - m u N), \\qquad
        \\partial_{r_2} N = \\frac{1}{a} (m s_m u^2 N_{j,m-1} - j v N),

    ``N_{j-1,m} = (u s_j)^{j-1} (v s_m)^m`` (and likewise ``N_{j,m-1}``). Without gradients
    the second array is empty, ``(0, P, 2)``.
    """
    m = k - j
    a, u, v = polar(tau, r1, r2)
    s_j = np.sqrt(k / np.maximum(j, 1)) * (j > 0) + (j == 0)
    s_m = np.sqrt(k / np.maximum(m, 1)) * (m > 0) + (m == 0)
    u2, v2 = u[:, None], v[:, None]
    pow_u, pow_v = (u2 * s_j) ** j, (v2 * s_m) ** m
    mono = pow_u * pow_v
    if not gradients:
        return mono, np.zeros((0, k.size, 2))
    over_a = 1.0 / np.where(a > 0, a, 1.0)[:, None]
    lower_u = (u2 * s_j) ** np.maximum(j - 1, 0) * pow_v  # N_{j-1,m}
    lower_v = pow_u * (v2 * s_m) ** np.maximum(m - 1, 0)  # N_{j,m-1}
    grads = np.stack(
        [
            tau * over_a * (j * s_j * v2**2 * lower_u - m * u2 * mono),
            over_a * (m * s_m * u2**2 * lower_v - j * v2 * mono),
        ],
        axis=-1,
    )
    return mono, grads
